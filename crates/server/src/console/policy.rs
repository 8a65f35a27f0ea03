//! The policy page: the served policy rendered for people (sources, metrics with their SQL,
//! scores with their weights, ladders with their rules and attributes, benefits), the
//! warnings `stratum check` gives, and the what-if form, which evaluates a pasted draft over
//! today's data and shows how customers would move and what the benefits would cost.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use stratum_core::model::{Ladder, MetricKind, Rule, ScoreSpec};
use stratum_core::{Policy, Quota, fmt_num};
use stratum_store::Role;

use super::{Page, Session, charts, form_refused, refused, render, shown_on_form};
use crate::AppState;

/// Who may evaluate drafts (the API's `POST /api/simulate` allows the same).
pub(crate) const WHAT_IF: &[Role] = &[Role::Admin, Role::Analyst];

struct SourceView {
    name: String,
    path: String,
    format: String,
    key: String,
    time: String,
}

struct MetricView {
    name: String,
    kind: &'static str,
    source: String,
    sql: String,
    window: String,
}

struct ScoreView {
    name: String,
    kind: &'static str,
    /// (part, how it counts)
    parts: Vec<(String, String)>,
}

struct LevelView {
    name: String,
    shown: String,
    rule: String,
    attributes: String,
}

struct LadderView {
    name: String,
    shown: String,
    rank_by: String,
    value: String,
    applies_to: String,
    levels: Vec<LevelView>,
}

struct BenefitView {
    name: String,
    period: String,
    /// Quota per level of the service ladder, in its order.
    quotas: Vec<String>,
}

/// A what-if's outcome for one ladder.
struct DraftLadder {
    ladder: String,
    heatmap_svg: String,
    upgrades: String,
    downgrades: String,
    cost: Option<(String, String, String)>,
}

#[derive(Template)]
#[template(path = "policy.html")]
struct PolicyPage<'a> {
    t: &'static super::i18n::Text,
    s: &'a Session,
    name: &'a str,
    file: String,
    text: &'a str,
    sources: Vec<SourceView>,
    metrics: Vec<MetricView>,
    scores: Vec<ScoreView>,
    ladders: Vec<LadderView>,
    service_levels: Vec<String>,
    benefits: Vec<BenefitView>,
    warnings: Vec<(String, String)>,
    may_try: bool,
    draft: String,
    problem: Option<String>,
    outcome: Option<(String, Vec<DraftLadder>)>,
}

fn rule_text(ladder: &Ladder, rule: &Rule) -> String {
    let by = ladder.rank_by.as_deref().unwrap_or("rank");
    let and_when = |when: &Option<stratum_core::cond::Cond>| {
        when.as_ref()
            .map(|c| format!(" where {}", c.render(None)))
            .unwrap_or_default()
    };
    match rule {
        Rule::When(c) => c.render(None),
        Rule::TopShare { share, when } => {
            format!(
                "the next top {}% by {by}{}",
                fmt_num(share * 100.0),
                and_when(when)
            )
        }
        Rule::TopN { n, when } => format!("the next top {n} by {by}{}", and_when(when)),
        Rule::ValueShare { share, when } => format!(
            "customers holding the next {}% of {} in {by} order{}",
            fmt_num(share * 100.0),
            ladder.value_measure().unwrap_or("value"),
            and_when(when)
        ),
        Rule::Rest => "everyone not placed above".to_string(),
        Rule::Cluster { order } => {
            let features = ladder
                .cluster
                .as_ref()
                .map(|c| c.features.join(", "))
                .unwrap_or_default();
            let rank = match order {
                0 => String::new(),
                n => format!("{} ", ordinal(n + 1)),
            };
            format!(
                "the k-means cluster (over {features}) with the {rank}highest mean {}",
                ladder.value_measure().unwrap_or("value")
            )
        }
        Rule::MissingFeatures => "customers lacking a clustering feature".to_string(),
    }
}

fn ordinal(n: usize) -> String {
    match n {
        2 => "2nd".to_string(),
        3 => "3rd".to_string(),
        n => format!("{n}th"),
    }
}

fn metric_view(
    m: &stratum_core::model::Metric,
    windows: &[(&str, Option<chrono::NaiveDate>, chrono::NaiveDate)],
) -> MetricView {
    let window = windows
        .iter()
        .find(|(name, ..)| *name == m.name)
        .map(|(_, start, end)| match start {
            Some(s) => format!("{s} ≤ date < {end}"),
            None => format!("date < {end}"),
        })
        .unwrap_or_default();
    let (kind, source, sql) = match &m.kind {
        MetricKind::Event {
            source,
            expr,
            filter,
            ..
        } => (
            "event",
            source.clone(),
            match filter {
                Some(f) => format!("{expr} WHERE {f}"),
                None => expr.clone(),
            },
        ),
        MetricKind::Attribute { source, expr, .. } => ("attribute", source.clone(), expr.clone()),
        MetricKind::Derived { expr, .. } => ("derived", String::new(), expr.clone()),
        MetricKind::Lifetime { measure, .. } => (
            "lifetime",
            String::new(),
            format!("{measure:?}").to_lowercase(),
        ),
        MetricKind::Rollup { group, metric, agg } => (
            "rollup",
            String::new(),
            format!("{}({metric}) over {group}", agg.sql()),
        ),
    };
    MetricView {
        name: m.name.clone(),
        kind,
        source,
        sql,
        window,
    }
}

fn score_view(score: &stratum_core::model::Score) -> ScoreView {
    match &score.spec {
        ScoreSpec::Weighted { scale, parts } => ScoreView {
            name: score.name.clone(),
            kind: "weighted",
            parts: parts
                .iter()
                .map(|p| {
                    (
                        p.input.clone(),
                        format!(
                            "weight {} × {}, {}{} (scale {})",
                            p.weight,
                            format!("{:?}", p.normalize).to_lowercase(),
                            if p.lower_is_better {
                                "lower is better"
                            } else {
                                "higher is better"
                            },
                            "",
                            fmt_num(*scale)
                        ),
                    )
                })
                .collect(),
        },
        ScoreSpec::Scorecard { dimensions } => ScoreView {
            name: score.name.clone(),
            kind: "scorecard",
            parts: dimensions
                .iter()
                .map(|d| {
                    let mut how = Vec::new();
                    if let Some(cats) = &d.categories {
                        how.extend(cats.iter().map(|(k, p)| format!("'{k}' → {p}")));
                    }
                    if let Some(bands) = &d.bands {
                        how.extend(bands.iter().map(|b| {
                            format!(
                                "{}–{} → {}",
                                b.min.map(fmt_num).unwrap_or_default(),
                                b.max.map(fmt_num).unwrap_or_default(),
                                b.points
                            )
                        }));
                    }
                    if let Some(m) = d.missing {
                        how.push(format!("missing → {m}"));
                    }
                    (format!("{} ({})", d.name, d.metric), how.join("; "))
                })
                .collect(),
        },
        ScoreSpec::Rfm {
            recency,
            frequency,
            monetary,
            bins,
        } => ScoreView {
            name: score.name.clone(),
            kind: "rfm",
            parts: vec![
                (
                    "R".into(),
                    format!("{recency}, {bins} bins, lower is better"),
                ),
                ("F".into(), format!("{frequency}, {bins} bins")),
                ("M".into(), format!("{monetary}, {bins} bins")),
            ],
        },
    }
}

fn quota_text(q: Quota) -> String {
    match q {
        Quota::NotEligible => "–".into(),
        Quota::Limited(n) => n.to_string(),
        Quota::Unlimited => "∞".into(),
    }
}

#[derive(Deserialize, Default)]
pub(super) struct WhatIfForm {
    csrf: String,
    draft: String,
}

async fn policy_page(
    state: &AppState,
    session: &Session,
    draft: String,
    problem: Option<String>,
    outcome: Option<(String, Vec<DraftLadder>)>,
    status: StatusCode,
) -> Page {
    let loaded = &state.policy;
    let policy: &Policy = &loaded.policy;
    let lang = session.lang;
    let as_of = match state
        .store
        .latest_run_id(policy.history_name())
        .await
        .map_err(super::internal)?
    {
        Some(id) => state.store.run(id).await.map_err(super::internal)?.as_of,
        None => chrono::Utc::now().date_naive(),
    };
    let windows = policy.metric_windows(as_of);
    let warnings = stratum_core::lint::lint(policy)
        .into_iter()
        .map(|d| (d.key.clone(), d.message.clone()))
        .collect();
    let (service_levels, benefits) = match policy.service.as_ref() {
        Some(service) => {
            let ladder = policy
                .ladders
                .iter()
                .find(|l| l.name == service.ladder_name);
            (
                ladder
                    .map(|l| l.levels.iter().map(|v| v.shown(lang).to_string()).collect())
                    .unwrap_or_default(),
                service
                    .benefits
                    .iter()
                    .map(|b| BenefitView {
                        name: b.shown(lang).to_string(),
                        period: format!("{:?}", b.period).to_lowercase(),
                        quotas: b.quota.iter().map(|q| quota_text(*q)).collect(),
                    })
                    .collect(),
            )
        }
        None => (Vec::new(), Vec::new()),
    };
    Ok(render(
        status,
        PolicyPage {
            t: session.t,
            s: session,
            name: policy.history_name(),
            file: loaded.path.display().to_string(),
            text: &loaded.text,
            sources: policy
                .sources
                .iter()
                .map(|(name, s)| SourceView {
                    name: name.clone(),
                    path: s.path.clone(),
                    format: format!("{:?}", s.format).to_lowercase(),
                    key: s.key.clone(),
                    time: s.time.clone().unwrap_or_default(),
                })
                .collect(),
            metrics: policy
                .metrics
                .iter()
                .map(|m| metric_view(m, &windows))
                .collect(),
            scores: policy.scores.iter().map(score_view).collect(),
            ladders: policy
                .ladders
                .iter()
                .map(|l| LadderView {
                    name: l.name.clone(),
                    shown: l.shown(lang).to_string(),
                    rank_by: l.rank_by.clone().unwrap_or_default(),
                    value: l.value_measure().unwrap_or("").to_string(),
                    applies_to: l
                        .applies_to
                        .as_ref()
                        .map(|c| c.render(None))
                        .unwrap_or_default(),
                    levels: l
                        .levels
                        .iter()
                        .map(|v| LevelView {
                            name: v.name.clone(),
                            shown: v.shown(lang).to_string(),
                            rule: rule_text(l, &v.rule),
                            attributes: v
                                .attributes
                                .iter()
                                .map(|(k, x)| format!("{k} = {x}"))
                                .collect::<Vec<_>>()
                                .join(", "),
                        })
                        .collect(),
                })
                .collect(),
            service_levels,
            benefits,
            warnings,
            may_try: WHAT_IF.contains(&session.role),
            draft,
            problem,
            outcome,
        },
    ))
}

/// The served policy, rendered, with `check`'s warnings and the what-if form.
pub(super) async fn policy(State(state): State<AppState>, session: Session) -> Page {
    let draft = state.policy.text.clone();
    policy_page(&state, &session, draft, None, None, StatusCode::OK).await
}

/// Evaluates the pasted draft over today's data against the served run, recording nothing,
/// and shows the policy page with the migration it would cause and the benefit cost.
pub(super) async fn what_if(
    State(state): State<AppState>,
    session: Session,
    Form(form): Form<WhatIfForm>,
) -> Page {
    if let Some(refusal) = form_refused(&session, &form.csrf, WHAT_IF, "simulate drafts") {
        return Err(refusal);
    }
    let (t, lang) = (session.t, session.lang);
    let sim = match crate::routes::runs::simulate_draft(
        &state,
        &session.principal(),
        form.draft.clone(),
        None,
    )
    .await
    {
        Ok(sim) => sim,
        Err(e) if shown_on_form(&e) || e.code.entry().0 == 503 => {
            return policy_page(
                &state,
                &session,
                form.draft,
                Some(e.message),
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
        Err(e) => return Err(refused(e)),
    };
    let ladders = sim
        .ladders
        .iter()
        .map(|l| {
            let (served, shown) = super::level_names(&state, &l.ladder, lang);
            let moves: Vec<_> = l
                .cells
                .iter()
                .map(|(from, to, n)| (from.as_deref().map(&shown), shown(to), *n as u64, 0.0))
                .collect();
            // `(unplaced)` and `(not applicable)` only where someone is there.
            let levels: Vec<String> = l
                .levels
                .iter()
                .filter(|x| {
                    !x.starts_with('(')
                        || l.cells.iter().any(|(from, to, n)| {
                            *n > 0 && (to == *x || from.as_deref() == Some(x.as_str()))
                        })
                })
                .map(|x| shown(x))
                .collect();
            DraftLadder {
                ladder: served.map_or(l.ladder.clone(), |p| p.shown(lang).to_string()),
                heatmap_svg: charts::heatmap(&moves, &levels, t.chart),
                upgrades: fmt_num(l.upgrades as f64),
                downgrades: fmt_num(l.downgrades as f64),
                cost: match (l.cost_before, l.cost_after) {
                    (Some(before), Some(after)) => Some((
                        fmt_num(before),
                        fmt_num(after),
                        format!(
                            "{}{}",
                            if after >= before { "+" } else { "−" },
                            fmt_num((after - before).abs())
                        ),
                    )),
                    _ => None,
                },
            }
        })
        .collect();
    let base = match &sim.base {
        Some(run) => format!("#{} ({})", run.id, session.date(&run.as_of)),
        None => "–".to_string(),
    };
    policy_page(
        &state,
        &session,
        form.draft,
        None,
        Some((base, ladders)),
        StatusCode::OK,
    )
    .await
}
