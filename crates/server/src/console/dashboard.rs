//! The dashboard: per ladder of the served run, the pyramids, the Lorenz curve, the
//! migration since the previous run and the trends over the last runs — all read from the
//! summaries recorded with each run, never from its rows.

use std::collections::HashMap;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use stratum_core::evaluate::NOT_APPLICABLE;
use stratum_core::{RecordedSummary, fmt_num};

use super::{Page, Session, charts, internal, render};
use crate::AppState;

/// One ladder on the dashboard.
struct LadderView {
    name: String,
    heading: String,
    value_name: String,
    pareto: Option<String>,
    count_svg: String,
    value_svg: Option<String>,
    lorenz_svg: Option<String>,
    /// The graded levels as shown in the session's language.
    levels: Vec<String>,
    /// Customers per level, then value share, repeat-purchase and churn rates, over runs.
    trends: Vec<Trend>,
    heatmap_svg: Option<String>,
    /// A cluster ladder's centres, per feature.
    centres_svg: Option<String>,
    previous_run: i64,
    upgrades: usize,
    downgrades: usize,
    /// The counts with thousands separators.
    upgrades_text: String,
    downgrades_text: String,
    /// (customer, from, to), levels as shown.
    upgraded: Vec<(String, String, String)>,
    downgraded: Vec<(String, String, String)>,
}

/// One figure per level at each of the last runs.
struct Trend {
    title: String,
    /// The class tests and styles find the table by.
    class: &'static str,
    rows: Vec<TrendRow>,
}

struct TrendRow {
    run: i64,
    as_of: String,
    cells: Vec<String>,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage<'a> {
    t: &'static super::i18n::Text,
    s: &'a Session,
    /// Every ladder (name, as shown) for the switch, and the one shown.
    tabs: Vec<(String, String)>,
    shown: String,
    policy: &'a str,
    run: Option<&'a stratum_store::RunInfo>,
    as_of: String,
    customers: String,
    ladders: Vec<LadderView>,
}

/// Runs whose figures the dashboard shows beside the served one.
const HISTORY_RUNS: usize = 6;

fn percent(v: Option<f64>) -> String {
    v.map_or("–".to_string(), |x| format!("{:.1}%", x * 100.0))
}

/// The dashboard: per ladder of the served run, the count pyramid beside the value pyramid,
/// the Lorenz curve with the Pareto figure, the migration since the previous run, and the
/// level counts and KPIs of `stratum report` over the last runs.
#[derive(serde::Deserialize, Default)]
pub(super) struct Which {
    #[serde(default)]
    ladder: String,
}

pub(super) async fn home(
    State(state): State<AppState>,
    session: Session,
    axum::extract::Query(which): axum::extract::Query<Which>,
) -> Page {
    // One ladder at a time: the one asked for, else the service ladder.
    let shown = if state
        .policy
        .policy
        .ladders
        .iter()
        .any(|l| l.name == which.ladder)
    {
        which.ladder.clone()
    } else {
        state.service_ladder()
    };
    let policy = state.policy.policy.history_name();
    let served = state.store.latest_run_id(policy).await.map_err(internal)?;
    let run = match served {
        Some(id) => Some(state.store.run(id).await.map_err(internal)?),
        None => None,
    };
    let (t, lang) = (session.t, session.lang);
    let mut ladders = Vec::new();
    if let Some(run) = &run {
        // Oldest first, as a trend reads.
        let mut recent: Vec<stratum_store::RunInfo> = state
            .store
            .runs(Some(policy))
            .await
            .map_err(internal)?
            .into_iter()
            .filter(|r| !r.is_retired() && r.id <= run.id)
            .rev()
            .take(HISTORY_RUNS)
            .collect();
        recent.reverse();
        let ids: Vec<i64> = recent.iter().map(|r| r.id).collect();
        let mut recorded: HashMap<(i64, String), RecordedSummary> = HashMap::new();
        for (run_id, ladder, json) in state.store.run_summaries(&ids).await.map_err(internal)? {
            let summary: RecordedSummary = serde_json::from_str(&json).map_err(internal)?;
            recorded.insert((run_id, ladder), summary);
        }
        let unit = state
            .policy
            .policy
            .settings
            .currency
            .as_deref()
            .unwrap_or("");
        for ladder in state
            .policy
            .policy
            .ladders
            .iter()
            .filter(|l| l.name == shown)
        {
            let Some(now) = recorded.get(&(run.id, ladder.name.clone())) else {
                continue;
            };
            let shown = |level: &str| ladder.level_shown(level, lang).to_string();
            // The summary with its levels as shown, for the charts.
            let mut s = now.summary.clone();
            for row in &mut s.rows {
                row.level = shown(&row.level);
            }
            if let Some(c) = &mut s.clusters {
                for centre in &mut c.clusters {
                    centre.level = shown(&centre.level);
                }
            }
            let names: Vec<String> = now
                .summary
                .rows
                .iter()
                .filter(|r| r.level != NOT_APPLICABLE)
                .map(|r| r.level.clone())
                .collect();
            let levels: Vec<String> = names.iter().map(|l| shown(l)).collect();
            let moves: Vec<_> = now
                .moves
                .iter()
                .map(|(from, to, n, v)| (from.as_deref().map(shown), shown(to), *n, *v))
                .collect();
            let value_name = s.value_name.clone().unwrap_or_default();
            let trend =
                |title: &str,
                 class: &'static str,
                 cell: &dyn Fn(&RecordedSummary, &str) -> String| Trend {
                    title: title.to_string(),
                    class,
                    rows: recent
                        .iter()
                        .filter_map(|r| {
                            let then = recorded.get(&(r.id, ladder.name.clone()))?;
                            Some(TrendRow {
                                run: r.id,
                                as_of: session.date(&r.as_of),
                                cells: names.iter().map(|l| cell(then, l)).collect(),
                            })
                        })
                        .collect(),
                };
            let row_of = |then: &RecordedSummary, l: &str| {
                then.summary.rows.iter().find(|row| row.level == l).cloned()
            };
            let activity_of = |then: &RecordedSummary, l: &str| {
                then.activity.iter().find(|a| a.level == l).cloned()
            };
            let mut trends = vec![trend(t.per_level_over_runs, "counts", &|then, l| {
                fmt_num(row_of(then, l).map_or(0, |r| r.count) as f64)
            })];
            if now.summary.value_name.is_some() {
                trends.push(trend(
                    &format!("{}: {}", t.value_share, value_name),
                    "value-share",
                    &|then, l| percent(row_of(then, l).and_then(|r| r.value_share)),
                ));
            }
            if !now.activity.is_empty() {
                trends.push(trend(t.repeat_rate, "repeat", &|then, l| {
                    percent(activity_of(then, l).and_then(|a| a.repeat_rate()))
                }));
                trends.push(trend(t.churn_rate, "churn", &|then, l| {
                    percent(activity_of(then, l).and_then(|a| a.churn_rate()))
                }));
            }
            let movers = |list: &[(String, String, String)]| -> Vec<(String, String, String)> {
                list.iter()
                    .map(|(id, from, to)| (id.clone(), shown(from), shown(to)))
                    .collect()
            };
            ladders.push(LadderView {
                name: ladder.name.clone(),
                heading: match (ladder.label.get(lang), &s.title) {
                    (Some(label), Some(title)) if lang == stratum_core::Lang::En => {
                        format!("{label} — {title}")
                    }
                    (Some(label), _) => label.to_string(),
                    (None, Some(title)) => format!("{} — {title}", s.ladder),
                    (None, None) => s.ladder.clone(),
                },
                pareto: s.pareto_top20.map(|p| format!("{:.1}%", p * 100.0)),
                count_svg: charts::pyramid(&s, charts::Pyramid::Customers, unit, t.chart),
                value_svg: s
                    .value_name
                    .is_some()
                    .then(|| charts::pyramid(&s, charts::Pyramid::Value, unit, t.chart)),
                lorenz_svg: (!now.lorenz.is_empty())
                    .then(|| charts::lorenz(&now.lorenz, &value_name, s.pareto_top20, t.chart)),
                centres_svg: s.clusters.as_ref().map(|c| charts::centres(c, t.chart)),
                heatmap_svg: now
                    .previous_run
                    .map(|_| charts::heatmap(&moves, &levels, t.chart)),
                previous_run: now.previous_run.unwrap_or_default(),
                upgrades: now.upgrades as usize,
                downgrades: now.downgrades as usize,
                upgrades_text: fmt_num(now.upgrades as f64),
                downgrades_text: fmt_num(now.downgrades as f64),
                upgraded: movers(&now.upgraded),
                downgraded: movers(&now.downgraded),
                value_name,
                levels,
                trends,
            });
        }
    }
    Ok(render(
        StatusCode::OK,
        HomePage {
            t,
            s: &session,
            tabs: state
                .policy
                .policy
                .ladders
                .iter()
                .map(|l| (l.name.clone(), l.shown(lang).to_string()))
                .collect(),
            shown,
            policy,
            as_of: run
                .as_ref()
                .map(|r| session.date(&r.as_of))
                .unwrap_or_default(),
            customers: run
                .as_ref()
                .map(|r| fmt_num(r.customers as f64))
                .unwrap_or_default(),
            run: run.as_ref(),
            ladders,
        },
    ))
}
