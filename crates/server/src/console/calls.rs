//! The call list page: a rep's day (an agent's own; admins and analysts pick a rep), each
//! call with a form to log it (outcome, class, intent, next date, notes), which takes it off
//! the list. The same call list and the same checked logging as `/api/calls` and
//! `POST /api/customers/{id}/interactions`.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;
use stratum_core::pipeline::{Channel, Intent, Outcome};
use stratum_store::Role;

use super::{Page, Session, form_refused, internal, refused, render, shown_on_form};
use crate::AppState;
use crate::routes::pipeline::CONTACT_LOGGERS;

/// Who sees call lists (agents their own).
pub(crate) const CALLS_PAGE: &[Role] = &[Role::Admin, Role::Analyst, Role::Agent];

#[derive(Deserialize, Default)]
pub(super) struct CallsQuery {
    #[serde(default)]
    rep: String,
    date: Option<chrono::NaiveDate>,
}

struct CallRow {
    customer_id: String,
    class: String,
    due: String,
    flags: String,
    block: &'static str,
}

#[derive(Template)]
#[template(path = "calls.html")]
struct CallsPage<'a> {
    t: &'static super::i18n::Text,
    s: &'a Session,
    rep: String,
    date: chrono::NaiveDate,
    date_shown: String,
    working_day: bool,
    target: Option<u32>,
    calls: Vec<CallRow>,
    carried: usize,
    coverage: String,
    /// (name, shown) of every class, for the log form.
    classes: Vec<(String, String)>,
    outcomes: Vec<&'static str>,
    channels: Vec<&'static str>,
    intents: Vec<&'static str>,
    may_log: bool,
    team: Vec<String>,
    /// (customer, rep, working days overdue, step, lead or who takes it) of those the
    /// viewer oversees.
    escalations: Vec<[String; 5]>,
    problem: Option<String>,
}

async fn calls_page(
    state: &AppState,
    session: &Session,
    query: &CallsQuery,
    problem: Option<String>,
    status: StatusCode,
) -> Page {
    if let Some(refusal) = super::not_for(session, CALLS_PAGE, "call list") {
        return Err(refusal);
    }
    let rep = match query.rep.trim() {
        "" => session.user.clone(),
        rep => rep.to_string(),
    };
    crate::access::authorize_rep(state.teams(), &session.principal(), &rep).map_err(refused)?;
    // A team lead picks among its team's lists.
    let team: Vec<String> = match crate::access::visible_owners(state.teams(), &session.principal())
    {
        Some(team) if team.len() > 1 => team,
        _ => Vec::new(),
    };
    let date = query.date.unwrap_or_else(|| state.today());
    let loaded = &state.policy;
    let Ok(pipeline) = stratum_runner::pipeline::pipeline_of(loaded) else {
        // A policy without a sales pipeline: the page says so rather than failing.
        return Ok(render(
            StatusCode::OK,
            CallsPage {
                t: session.t,
                s: session,
                rep,
                date,
                date_shown: session.date(&date),
                working_day: false,
                target: None,
                calls: Vec::new(),
                carried: 0,
                coverage: String::new(),
                classes: Vec::new(),
                outcomes: Vec::new(),
                channels: Vec::new(),
                intents: Vec::new(),
                may_log: false,
                team,
                escalations: Vec::new(),
                problem: Some(session.t.no_pipeline.to_string()),
            },
        ));
    };
    let lists = stratum_runner::pipeline::call_lists(loaded, &state.store, date, Some(&rep))
        .await
        .map_err(|e| refused(e.into()))?;
    let list = lists
        .into_iter()
        .next()
        .ok_or_else(|| internal("no call list"))?;
    let lang = session.lang;
    let t = session.t;
    let step_text = |step: stratum_core::pipeline::Escalation| match step {
        stratum_core::pipeline::Escalation::RemindRep => t.remind_rep,
        stratum_core::pipeline::Escalation::TellManager => t.tell_manager,
        stratum_core::pipeline::Escalation::ReturnToPool => t.return_to_pool,
    };
    // Leads and admins see the escalations of everyone they oversee; a rep's own are the
    // flags on its list.
    let visible = crate::access::visible_owners(state.teams(), &session.principal());
    let escalations: Vec<[String; 5]> = if visible.as_ref().is_none_or(|v| v.len() > 1) {
        stratum_runner::pipeline::escalations(loaded, &state.store, date)
            .await
            .map_err(|e| refused(e.into()))?
            .into_iter()
            .filter(|e| visible.as_ref().is_none_or(|v| v.contains(&e.rep)))
            .map(|e| {
                [
                    e.customer_id,
                    e.rep,
                    e.overdue_days.to_string(),
                    step_text(e.step).to_string(),
                    e.hand_to.or(e.lead).unwrap_or_default(),
                ]
            })
            .collect()
    } else {
        Vec::new()
    };
    let calls = list
        .calls
        .iter()
        .map(|c| {
            let mut flags = Vec::new();
            if c.overdue {
                flags.push(t.overdue);
            }
            if let Some(step) = c.escalation {
                flags.push(step_text(step));
            }
            if c.past_deadline {
                flags.push(t.past_deadline);
            }
            CallRow {
                customer_id: c.customer_id.clone(),
                class: pipeline.classes[c.class]
                    .label
                    .get(lang)
                    .unwrap_or(&pipeline.classes[c.class].name)
                    .to_string(),
                due: session.date(&c.due),
                flags: flags
                    .into_iter()
                    .map(str::to_string)
                    .chain(c.intent.map(|i| i.as_str().replace('_', " ")))
                    .collect::<Vec<_>>()
                    .join(", "),
                block: if c.block == 0 { t.morning } else { t.afternoon },
            }
        })
        .collect();
    Ok(render(
        status,
        CallsPage {
            t,
            s: session,
            rep,
            date,
            date_shown: session.date(&date),
            working_day: list.working_day,
            target: list.target,
            calls,
            carried: list.carried.len(),
            coverage: super::i18n::coverage(
                lang,
                list.held,
                pipeline.daily_capacity,
                list.coverage_days,
                list.month_working_days,
                &list
                    .over_capacity
                    .iter()
                    .map(|(c, h, cap)| (pipeline.classes[*c].name.clone(), *h, *cap))
                    .collect::<Vec<_>>(),
            ),
            classes: pipeline
                .classes
                .iter()
                .map(|c| {
                    (
                        c.name.clone(),
                        c.label.get(lang).unwrap_or(&c.name).to_string(),
                    )
                })
                .collect(),
            outcomes: Outcome::ALL.iter().map(|o| o.as_str()).collect(),
            channels: Channel::ALL.iter().map(|c| c.as_str()).collect(),
            intents: Intent::ALL.iter().map(|i| i.as_str()).collect(),
            may_log: CONTACT_LOGGERS.contains(&session.role),
            team,
            escalations,
            problem,
        },
    ))
}

/// A rep's call list for a day.
pub(super) async fn calls(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<CallsQuery>,
) -> Page {
    calls_page(&state, &session, &query, None, StatusCode::OK).await
}

#[derive(Deserialize)]
pub(super) struct LogForm {
    csrf: String,
    date: chrono::NaiveDate,
    rep: String,
    channel: String,
    outcome: String,
    #[serde(default)]
    intent: String,
    #[serde(default)]
    class: String,
    #[serde(default)]
    next_contact: String,
    #[serde(default)]
    notes: String,
}

/// Logs a call from the list (for the customer in the path, on the list's day) and shows
/// the list again, without it.
pub(super) async fn log(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Form(form): Form<LogForm>,
) -> Page {
    if let Some(refusal) = form_refused(&session, &form.csrf, CONTACT_LOGGERS, "log contacts") {
        return Err(refusal);
    }
    let who = session.principal();
    crate::access::authorize(&state, &who, &id)
        .await
        .map_err(refused)?;
    let back = CallsQuery {
        rep: form.rep.clone(),
        date: Some(form.date),
    };
    let problem = |message: String| {
        calls_page(
            &state,
            &session,
            &back,
            Some(message),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
    };
    let rep = if session.role == Role::Agent {
        session.user.clone()
    } else {
        form.rep.clone()
    };
    let parsed = (|| -> Result<stratum_store::NewInteraction, String> {
        let optional = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        Ok(stratum_store::NewInteraction {
            customer_id: id.clone(),
            rep,
            on: form.date,
            at: state.now(),
            channel: form.channel.parse::<Channel>()?,
            outcome: form.outcome.parse::<Outcome>()?,
            intent: optional(&form.intent)
                .map(|i| i.parse::<Intent>())
                .transpose()?,
            class: optional(&form.class),
            next_contact: optional(&form.next_contact)
                .map(|d| {
                    chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d")
                        .map_err(|_| format!("`{d}` is not a date (YYYY-MM-DD)"))
                })
                .transpose()?,
            notes: form.notes.trim().to_string(),
        })
    })();
    let new = match parsed {
        Ok(n) => n,
        Err(message) => return problem(message).await,
    };
    match stratum_runner::pipeline::log_contact(
        &state.policy,
        &state.store,
        &new,
        false,
        &who.actor(),
    )
    .await
    {
        Ok(_) => Ok(Redirect::to(&format!(
            "/calls?rep={}&date={}",
            super::percent_encode(&form.rep),
            form.date
        ))
        .into_response()),
        Err(e) => {
            let e: crate::error::ApiError = e.into();
            if shown_on_form(&e) {
                problem(e.message).await
            } else {
                Err(refused(e))
            }
        }
    }
}
