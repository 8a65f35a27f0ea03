//! The key-account managers page (客户经理制): the policy's `[assignment]` over the served
//! run — each manager's load, who moves and why — and, for admins, the button that makes
//! the plan the owners (the same plan and apply as `stratum assign` and the API).

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use stratum_core::assign::Why;
use stratum_store::Role;

use super::{CsrfForm, Page, RUNS_PAGE, Session, form_refused, not_for, refused, render};
use crate::AppState;

/// Who may apply assignments (the API's `POST /api/assignments`).
const APPLIERS: &[Role] = &[Role::Admin];

struct Load {
    manager: String,
    rating: u32,
    capacity: String,
    planned: usize,
    assigned_now: usize,
}

#[derive(Template)]
#[template(path = "assignments.html")]
struct AssignmentsPage<'a> {
    t: &'static super::i18n::Text,
    s: &'a Session,
    /// None without `[assignment]` in the policy.
    rule: Option<(String, String, bool)>,
    loads: Vec<Load>,
    total: usize,
    /// (customer, manager, why) of those who move.
    moves: Vec<(String, String, String)>,
    may_apply: bool,
    problem: Option<String>,
}

pub(super) async fn assignments(State(state): State<AppState>, session: Session) -> Page {
    if let Some(refusal) = not_for(&session, RUNS_PAGE, "assignments") {
        return Err(refusal);
    }
    let may_apply = APPLIERS.contains(&session.role);
    let empty = |problem: String| AssignmentsPage {
        t: session.t,
        s: &session,
        rule: None,
        loads: Vec::new(),
        total: 0,
        moves: Vec::new(),
        may_apply: false,
        problem: Some(problem),
    };
    if state.policy.policy.assignment.is_none() {
        return Ok(render(
            StatusCode::OK,
            empty(session.t.no_assignment.into()),
        ));
    }
    let (rule, done) = match crate::routes::pipeline::plan_of(&state).await {
        Ok(plan) => plan,
        Err(e) if super::shown_on_form(&e) => {
            return Ok(render(StatusCode::OK, empty(e.message)));
        }
        Err(e) => return Err(refused(e)),
    };
    let saved = state
        .store
        .manager_assignments(state.policy.policy.history_name())
        .await
        .map_err(|e| refused(e.into()))?;
    let loads = rule
        .managers
        .iter()
        .map(|m| Load {
            manager: m.name.clone(),
            rating: m.rating,
            capacity: m.capacity.map_or_else(|| "—".into(), |c| c.to_string()),
            planned: done.iter().filter(|a| a.manager == m.name).count(),
            assigned_now: saved.iter().filter(|a| a.manager == m.name).count(),
        })
        .collect();
    let moves = done
        .iter()
        .filter(|a| a.why != Why::Kept)
        .map(|a| (a.customer_id.clone(), a.manager.clone(), a.why.to_string()))
        .collect();
    Ok(render(
        StatusCode::OK,
        AssignmentsPage {
            t: session.t,
            s: &session,
            rule: Some((rule.ladder.clone(), rule.levels.join(", "), rule.by_rating)),
            loads,
            total: done.len(),
            moves,
            may_apply,
            problem: None,
        },
    ))
}

/// Applies the plan shown (recomputed now: the served run may have changed since).
pub(super) async fn apply(
    State(state): State<AppState>,
    session: Session,
    Form(form): Form<CsrfForm>,
) -> Page {
    if let Some(refusal) = form_refused(&session, &form.csrf, APPLIERS, "apply assignments") {
        return Err(refusal);
    }
    let (_, done) = crate::routes::pipeline::plan_of(&state)
        .await
        .map_err(refused)?;
    stratum_runner::pipeline::apply_assignments(
        &state.policy,
        &state.store,
        &done,
        state.today(),
        &session.principal().actor(),
    )
    .await
    .map_err(|e| refused(e.into()))?;
    state.refresh().await.map_err(|e| refused(e.into()))?;
    Ok(Redirect::to("/assignments").into_response())
}
