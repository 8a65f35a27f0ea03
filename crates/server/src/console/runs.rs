//! The runs page: the served policy's recorded runs (who, when, as of, how long, how many),
//! starting a run with its stages shown live, and comparing any two runs (migration matrix,
//! the customers who moved, exported as CSV or Parquet).

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;

use super::{Page, RUNS_PAGE, Session, charts, form_refused, internal, not_for, refused, render};
use crate::AppState;

/// A run started from the console: who started it, its stages so far, and how it ended.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct RunJob {
    pub by: String,
    pub started_at: String,
    pub stages: Vec<String>,
    /// The run recorded, once it is.
    pub run_id: Option<i64>,
    /// Why it was not recorded, if it failed.
    pub failed: Option<String>,
    pub finished: bool,
}

/// Reports a console run's stages into its job, where the runs page reads them.
struct JobProgress(Arc<std::sync::Mutex<Option<RunJob>>>);

impl stratum_runner::Progress for JobProgress {
    fn stage(&mut self, message: &str) {
        let mut job = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(job) = job.as_mut() {
            job.stages.push(message.to_string());
        }
    }
}

/// A run as the runs page lists it.
struct RunRow {
    id: i64,
    as_of: String,
    customers: String,
    recorded_by: String,
    finished: String,
    /// Seconds from start to recorded.
    took: String,
    state: String,
}

#[derive(Template)]
#[template(path = "runs.html")]
struct RunsPage<'a> {
    t: &'static super::i18n::Text,
    s: &'a Session,
    policy: &'a str,
    runs: Vec<RunRow>,
    job: Option<RunJob>,
    /// The two runs the compare form starts on: the last two.
    from: i64,
    to: i64,
}

fn seconds_between(start: &str, end: &str) -> String {
    match (
        chrono::DateTime::parse_from_rfc3339(start),
        chrono::DateTime::parse_from_rfc3339(end),
    ) {
        (Ok(a), Ok(b)) => format!("{:.1} s", (b - a).num_milliseconds() as f64 / 1000.0),
        _ => String::new(),
    }
}

/// The served policy's recorded runs, newest first, the served one marked; the form to
/// start a run and the last console run's progress; the form to compare two runs.
pub(super) async fn runs(State(state): State<AppState>, session: Session) -> Page {
    if let Some(refusal) = not_for(&session, RUNS_PAGE, "runs") {
        return Err(refusal);
    }
    let t = session.t;
    let policy = state.policy.policy.history_name();
    let served = state.store.latest_run_id(policy).await.map_err(internal)?;
    let mut rows: Vec<RunRow> = state
        .store
        .runs(Some(policy))
        .await
        .map_err(internal)?
        .into_iter()
        .map(|r| RunRow {
            state: if Some(r.id) == served {
                t.served.to_string()
            } else if r.is_retired() {
                format!(
                    "retired by {}",
                    r.retired_by.as_deref().unwrap_or("unknown")
                )
            } else {
                String::new()
            },
            id: r.id,
            as_of: session.date(&r.as_of),
            customers: stratum_core::fmt_num(r.customers as f64),
            took: seconds_between(&r.started_at, &r.finished_at),
            recorded_by: r.recorded_by,
            finished: r.finished_at,
        })
        .collect();
    rows.reverse();
    let (to, from) = (
        rows.first().map_or(0, |r| r.id),
        rows.get(1).map_or(0, |r| r.id),
    );
    let job = state
        .console_run
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    Ok(render(
        StatusCode::OK,
        RunsPage {
            t,
            s: &session,
            policy,
            runs: rows,
            job,
            from,
            to,
        },
    ))
}

#[derive(Deserialize)]
pub(super) struct StartForm {
    csrf: String,
    #[serde(default)]
    as_of: String,
}

/// Starts a run of the served policy (one at a time, audited) and goes back to the runs
/// page, which follows its stages.
pub(super) async fn start(
    State(state): State<AppState>,
    session: Session,
    Form(form): Form<StartForm>,
) -> Page {
    if let Some(refusal) = form_refused(&session, &form.csrf, RUNS_PAGE, "start runs") {
        return Err(refusal);
    }
    let who = session.principal();
    let as_of = form.as_of.trim();
    let options = stratum_runner::RunOptions {
        as_of: (!as_of.is_empty()).then(|| as_of.to_string()),
        recorded_by: who.user.clone(),
        ..Default::default()
    };
    let job = state.console_run.clone();
    let progress = Box::new(JobProgress(job.clone()));
    // Claimed before the job is replaced, so a refused start leaves the running one shown.
    let task = crate::routes::runs::spawn_run(&state, &who, options, progress).map_err(refused)?;
    *job.lock().unwrap_or_else(|p| p.into_inner()) = Some(RunJob {
        by: who.user.clone(),
        started_at: state
            .now()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        stages: Vec::new(),
        run_id: None,
        failed: None,
        finished: false,
    });
    tokio::spawn(async move {
        let ended = task.await;
        let mut job = job.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(job) = job.as_mut() {
            job.finished = true;
            match ended {
                Ok(Ok(outcome)) => job.run_id = outcome.run_id,
                Ok(Err(e)) => job.failed = Some(e.message),
                Err(e) => job.failed = Some(format!("the run stopped: {e}")),
            }
        }
    });
    Ok(Redirect::to("/runs").into_response())
}

/// The console run's progress as JSON, for the runs page's script.
pub(super) async fn job(State(state): State<AppState>, session: Session) -> Page {
    if let Some(refusal) = not_for(&session, RUNS_PAGE, "runs") {
        return Err(refusal);
    }
    let job = state
        .console_run
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    Ok(axum::Json(job).into_response())
}

#[derive(Deserialize)]
pub(super) struct CompareQuery {
    from: i64,
    to: i64,
    #[serde(default)]
    format: String,
}

/// One ladder of a comparison.
struct LadderCompare {
    ladder: String,
    heatmap_svg: String,
    upgrades: String,
    downgrades: String,
    arrived: String,
    left: String,
    /// (customer, from, to, up/down), the first [`MOVES_SHOWN`].
    moves: Vec<(String, String, String, &'static str)>,
    more: usize,
}

#[derive(Template)]
#[template(path = "compare.html")]
struct ComparePage<'a> {
    t: &'static super::i18n::Text,
    s: &'a Session,
    from: i64,
    to: i64,
    from_as_of: String,
    to_as_of: String,
    ladders: Vec<LadderCompare>,
}

/// Moves listed per ladder on the page (the export has them all).
const MOVES_SHOWN: usize = 200;

/// Two runs compared: per ladder the migration matrix as a heat map, the counts up, down,
/// new and gone, and the customers who moved; `format=csv|parquet` downloads the moves.
pub(super) async fn compare(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<CompareQuery>,
) -> Page {
    if let Some(refusal) = not_for(&session, RUNS_PAGE, "runs") {
        return Err(refusal);
    }
    let policy = state.policy.policy.history_name();
    let report = stratum_runner::diff(&state.store, Some(policy), Some(q.from), Some(q.to), false)
        .await
        .map_err(|e| refused(e.into()))?;
    match q.format.as_str() {
        "" => {}
        "csv" | "parquet" => return export(report, &q.format).await,
        other => {
            return Err((
                StatusCode::BAD_REQUEST,
                format!("format `{other}`: use csv or parquet"),
            )
                .into_response());
        }
    }
    let (t, lang) = (session.t, session.lang);
    let ladders = report
        .ladders
        .iter()
        .map(|l| {
            let (policy_ladder, shown) = super::level_names(&state, &l.ladder, lang);
            let moves: Vec<_> = l
                .cells
                .iter()
                .filter_map(|c| {
                    Some((
                        c.from_level.as_deref().map(&shown),
                        shown(c.to_level.as_deref()?),
                        c.customers as u64,
                        c.value,
                    ))
                })
                .collect();
            let levels: Vec<String> = l.levels.iter().map(|x| shown(x)).collect();
            LadderCompare {
                ladder: policy_ladder.map_or(l.ladder.clone(), |p| p.shown(lang).to_string()),
                heatmap_svg: charts::heatmap(&moves, &levels, t.chart),
                upgrades: stratum_core::fmt_num(l.upgrades as f64),
                downgrades: stratum_core::fmt_num(l.downgrades as f64),
                arrived: stratum_core::fmt_num(l.arrived as f64),
                left: stratum_core::fmt_num(l.left as f64),
                moves: l
                    .moves
                    .iter()
                    .take(MOVES_SHOWN)
                    .map(|(m, d)| {
                        (
                            m.customer_id.clone(),
                            shown(&m.from_level),
                            shown(&m.to_level),
                            match d {
                                1 => t.up,
                                -1 => t.down,
                                _ => "",
                            },
                        )
                    })
                    .collect(),
                more: l.moves.len().saturating_sub(MOVES_SHOWN),
            }
        })
        .collect();
    Ok(render(
        StatusCode::OK,
        ComparePage {
            t,
            s: &session,
            from: report.from.id,
            to: report.to.id,
            from_as_of: session.date(&report.from.as_of),
            to_as_of: session.date(&report.to.as_of),
            ladders,
        },
    ))
}

/// The moves between two runs as a download: written by the runner's writer (the same file
/// `stratum diff --out` writes) to a temporary file, then sent.
async fn export(report: stratum_runner::DiffReport, format: &str) -> Page {
    let name = format!("moves-{}-{}.{format}", report.from.id, report.to.id);
    let dir = std::env::temp_dir().join(format!("stratum-export-{}", crate::auth::random_hex(8)));
    let path = dir.join(&name);
    let bytes = stratum_runner::blocking::blocking(move || {
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let written = stratum_runner::write_moves(&path, &report)
            .map_err(|e| e.to_string())
            .and_then(|_| std::fs::read(&path).map_err(|e| e.to_string()));
        let _ = std::fs::remove_dir_all(&dir);
        written
    })
    .await
    .map_err(internal)?;
    let content_type = if format == "csv" {
        "text/csv; charset=utf-8"
    } else {
        "application/vnd.apache.parquet"
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        bytes,
    )
        .into_response())
}
