//! The pipeline's reports page ("three tables, one card"): the funnel by class, the daily
//! activity per rep, plan against actual per week, the intent customers' follow-up and the
//! lost-sale reasons for a period (default: this month so far), each with a CSV download —
//! from the same functions as `stratum funnel` and the others and the API. Agents see their
//! own, and a team lead its team's.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use stratum_runner::pipeline::ReportKind;

use super::{Page, Session, not_for, refused, render};
use crate::AppState;

#[derive(Deserialize, Default)]
pub(super) struct PeriodQuery {
    from: Option<chrono::NaiveDate>,
    to: Option<chrono::NaiveDate>,
    /// The report to download (`/pipeline/export`).
    report: Option<String>,
}

/// One report as the page shows it.
struct Shown {
    kind: &'static str,
    title: &'static str,
    head: Vec<String>,
    rows: Vec<Vec<String>>,
    /// Which columns are numbers (right-aligned).
    numeric: Vec<bool>,
}

#[derive(Template)]
#[template(path = "reports.html")]
struct ReportsPage<'a> {
    t: &'static super::i18n::Text,
    s: &'a Session,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
    reports: Vec<Shown>,
}

fn period(state: &AppState, q: &PeriodQuery) -> (chrono::NaiveDate, chrono::NaiveDate) {
    let to = q.to.unwrap_or_else(|| state.today());
    let from = q
        .from
        .unwrap_or_else(|| chrono::Datelike::with_day(&to, 1).unwrap_or(to));
    (from, to)
}

async fn report_for(
    state: &AppState,
    session: &Session,
    kind: ReportKind,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
) -> Result<stratum_runner::pipeline::Report, axum::response::Response> {
    let reps = crate::access::visible_owners(state.teams(), &session.principal());
    stratum_runner::pipeline::report(&state.policy, &state.store, kind, from, to, reps.as_deref())
        .await
        .map_err(|e| refused(e.into()))
}

/// Every report for the period.
pub(super) async fn reports(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<PeriodQuery>,
) -> Page {
    if let Some(refusal) = not_for(&session, super::calls::CALLS_PAGE, "pipeline reports") {
        return Err(refusal);
    }
    let (from, to) = period(&state, &q);
    let t = session.t;
    let mut reports = Vec::new();
    for kind in ReportKind::ALL {
        let report = report_for(&state, &session, kind, from, to).await?;
        let (head, rows) = report.table();
        let numeric = report.numeric();
        reports.push(Shown {
            kind: kind.as_str(),
            title: match kind {
                ReportKind::Funnel => t.funnel,
                ReportKind::Activity => t.activity,
                ReportKind::Weeks => t.weeks,
                ReportKind::Intents => t.intents,
                ReportKind::Lost => t.lost,
            },
            head: head.iter().map(|h| t.column(h).to_string()).collect(),
            rows,
            numeric,
        });
    }
    Ok(render(
        StatusCode::OK,
        ReportsPage {
            t,
            s: &session,
            from,
            to,
            reports,
        },
    ))
}

/// One report of the period as CSV (the columns `stratum` and the API export).
pub(super) async fn export(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<PeriodQuery>,
) -> Page {
    if let Some(refusal) = not_for(&session, super::calls::CALLS_PAGE, "pipeline reports") {
        return Err(refusal);
    }
    let kind: ReportKind = q
        .report
        .as_deref()
        .unwrap_or("")
        .parse()
        .map_err(|e: String| refused(crate::error::ApiError::invalid(e)))?;
    let (from, to) = period(&state, &q);
    let report = report_for(&state, &session, kind, from, to).await?;
    let name = format!("{}-{from}-{to}.csv", kind.as_str());
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        report.csv(),
    )
        .into_response())
}
