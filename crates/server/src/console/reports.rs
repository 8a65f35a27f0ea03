//! The pipeline's reports page: the funnel by class and the daily activity per rep for a
//! period (default: this month so far), from the same functions as `stratum funnel`,
//! `stratum activity` and the API. Agents see their own activity only.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use stratum_core::pipeline::{Channel, Outcome};
use stratum_store::Role;

use super::{Page, Session, not_for, refused, render};
use crate::AppState;

#[derive(Deserialize, Default)]
pub(super) struct PeriodQuery {
    from: Option<chrono::NaiveDate>,
    to: Option<chrono::NaiveDate>,
}

#[derive(Template)]
#[template(path = "reports.html")]
struct ReportsPage<'a> {
    t: &'static super::i18n::Text,
    s: &'a Session,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
    /// None for agents (the funnel is the team's).
    funnel: Option<Vec<stratum_runner::pipeline::FunnelRow>>,
    activity: Vec<stratum_runner::pipeline::ActivityRow>,
    words: Vec<&'static str>,
}

impl ReportsPage<'_> {
    fn moved(&self, row: &stratum_runner::pipeline::FunnelRow) -> String {
        row.moved_to
            .iter()
            .map(|(class, n)| format!("{class} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
    fn counts(&self, row: &stratum_runner::pipeline::ActivityRow) -> Vec<usize> {
        row.outcomes.iter().chain(&row.channels).copied().collect()
    }
}

/// The funnel and the activity for the period.
pub(super) async fn reports(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<PeriodQuery>,
) -> Page {
    if let Some(refusal) = not_for(&session, super::calls::CALLS_PAGE, "pipeline reports") {
        return Err(refusal);
    }
    let to = q.to.unwrap_or_else(|| state.today());
    let from = q
        .from
        .unwrap_or_else(|| chrono::Datelike::with_day(&to, 1).unwrap_or(to));
    let loaded = &state.policy;
    let agent = session.role == Role::Agent;
    let visible = crate::access::visible_owners(state.teams(), &session.principal());
    let funnel = if agent {
        None
    } else {
        Some(
            stratum_runner::pipeline::funnel(loaded, &state.store, from, to)
                .await
                .map_err(|e| refused(e.into()))?,
        )
    };
    let activity = stratum_runner::pipeline::activity(loaded, &state.store, from, to)
        .await
        .map_err(|e| refused(e.into()))?
        .into_iter()
        .filter(|r| visible.as_ref().is_none_or(|reps| reps.contains(&r.rep)))
        .collect();
    Ok(render(
        StatusCode::OK,
        ReportsPage {
            t: session.t,
            s: &session,
            from,
            to,
            funnel,
            activity,
            words: Outcome::ALL
                .iter()
                .map(|o| o.as_str())
                .chain(Channel::ALL.iter().map(|c| c.as_str()))
                .collect(),
        },
    ))
}
