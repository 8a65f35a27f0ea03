//! The sales pipeline: a rep's call list for a day, and the contacts logged per customer.

use chrono::NaiveDate;
use serde::Serialize;
use stratum_core::pipeline::{Channel, Intent, Outcome};

use super::prelude::*;

/// Who works the pipeline: admins for anyone, agents (reps) for their own customers.
pub(crate) const CONTACT_LOGGERS: &[Role] = &[Role::Admin, Role::Agent];

pub(super) const ROUTES: &[Route] = &[
    Route {
        method: Method::Get,
        path: "/api/calls",
        summary: "A rep's call list for a day (`rep`, default the caller; `date`, default today): due by class cycle or set date, overdue first, capacity and class quotas, morning and afternoon blocks",
        roles: Some(&[Role::Admin, Role::Analyst, Role::Agent]),
        own_customers: false,
        does: "read call lists",
        handler: |m| on(m, calls),
    },
    Route {
        method: Method::Get,
        path: "/api/pipeline/funnel",
        summary: "The funnel by class for `from`..`to`: prospects now, entered, where those who left went, median working days in class",
        roles: Some(&[Role::Admin, Role::Analyst]),
        own_customers: false,
        does: "read pipeline reports",
        handler: |m| on(m, funnel),
    },
    Route {
        method: Method::Get,
        path: "/api/pipeline/activity",
        summary: "The daily activity report for `from`..`to`: per rep and day, contacts against the weekday's target, by outcome and channel (`rep`: one rep; agents: their own)",
        roles: Some(&[Role::Admin, Role::Analyst, Role::Agent]),
        own_customers: false,
        does: "read pipeline reports",
        handler: |m| on(m, activity),
    },
    Route {
        method: Method::Get,
        path: "/api/customers/{id}/interactions",
        summary: "The customer's logged contacts (latest first), its pipeline class and class changes",
        roles: Some(&[Role::Admin, Role::Analyst, Role::Agent]),
        own_customers: true,
        does: "read interactions",
        handler: |m| on(m, interactions),
    },
    Route {
        method: Method::Post,
        path: "/api/customers/{id}/interactions",
        summary: "Log a contact: body {outcome, channel?, intent?, class?, next_contact?, on?, notes?, new_customer?}; moves the customer in the pipeline",
        roles: Some(CONTACT_LOGGERS),
        own_customers: true,
        does: "log contacts",
        handler: |m| on(m, log),
    },
];

#[derive(Deserialize)]
struct CallsQuery {
    rep: Option<String>,
    date: Option<NaiveDate>,
}

async fn calls(
    State(state): State<AppState>,
    who: Principal,
    AppQuery(q): AppQuery<CallsQuery>,
) -> ApiResult {
    let rep = q.rep.unwrap_or_else(|| who.user.clone());
    if who.role == Role::Agent && rep != who.user {
        return Err(ApiError::forbidden(format!(
            "an agent reads its own call list, not {rep}'s"
        )));
    }
    let date = q.date.unwrap_or_else(|| state.today());
    let loaded = &state.policy;
    let pipeline = stratum_runner::pipeline::pipeline_of(loaded)?;
    let lists =
        stratum_runner::pipeline::call_lists(loaded, &state.store, date, Some(&rep)).await?;
    let list = lists.into_iter().next().expect("one rep asked, one list");
    let entry = |c: &stratum_core::pipeline::Call| CallEntry {
        customer_id: c.customer_id.clone(),
        class: pipeline.classes[c.class].name.clone(),
        due: c.due,
        overdue: c.overdue,
        overdue_days: c.overdue_days,
        escalation: c.escalation.map(stratum_core::pipeline::Escalation::code),
        past_deadline: c.past_deadline,
        intent: c.intent.map(Intent::as_str),
        block: if c.block == 0 { "morning" } else { "afternoon" },
    };
    ok(CallsAnswer {
        rep: list.rep.clone(),
        date,
        working_day: list.working_day,
        target: list.target,
        held: list.held,
        coverage_days: list.coverage_days,
        month_working_days: list.month_working_days,
        over_capacity: list
            .over_capacity
            .iter()
            .map(|(class, held, capacity)| OverCapacity {
                class: pipeline.classes[*class].name.clone(),
                held: *held,
                capacity: *capacity,
            })
            .collect(),
        calls: list.calls.iter().map(entry).collect(),
        carried: list.carried.iter().map(entry).collect(),
    })
}

#[derive(Serialize)]
struct CallsAnswer {
    rep: String,
    date: NaiveDate,
    working_day: bool,
    target: Option<u32>,
    held: u32,
    coverage_days: u32,
    month_working_days: u32,
    over_capacity: Vec<OverCapacity>,
    calls: Vec<CallEntry>,
    carried: Vec<CallEntry>,
}

#[derive(Serialize)]
struct OverCapacity {
    class: String,
    held: u32,
    capacity: u32,
}

#[derive(Serialize)]
struct CallEntry {
    customer_id: String,
    class: String,
    due: NaiveDate,
    overdue: bool,
    overdue_days: u32,
    escalation: Option<&'static str>,
    past_deadline: bool,
    intent: Option<&'static str>,
    block: &'static str,
}

async fn interactions(State(state): State<AppState>, customer: Customer) -> ApiResult {
    let id = customer.id;
    ok(Interactions {
        prospect: state.store.prospect(&id).await?,
        interactions: state.store.interactions_of(&id).await?,
        class_changes: state.store.class_changes_of(&id).await?,
        customer_id: id,
    })
}

#[derive(Serialize)]
struct Interactions {
    customer_id: String,
    prospect: Option<stratum_store::ProspectRow>,
    interactions: Vec<stratum_store::InteractionRow>,
    class_changes: Vec<stratum_store::ClassChangeRow>,
}

/// A word of a closed set, read from a body field (the error names the field).
fn word<T: std::str::FromStr<Err = String>>(field: &str, text: &str) -> Result<T, ApiError> {
    text.parse()
        .map_err(|e: String| ApiError::invalid(format!("{field}: {e}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogBody {
    outcome: String,
    channel: Option<String>,
    intent: Option<String>,
    class: Option<String>,
    next_contact: Option<NaiveDate>,
    on: Option<NaiveDate>,
    #[serde(default)]
    notes: String,
    /// Admins only: the rep the contact counts for (agents log their own).
    rep: Option<String>,
    #[serde(default)]
    new_customer: bool,
}

async fn log(
    State(state): State<AppState>,
    customer: Customer,
    AppJson(b): AppJson<LogBody>,
) -> ApiResult {
    let Customer { id, who } = customer;
    let rep = match (who.role, b.rep) {
        (Role::Agent, Some(rep)) if rep != who.user => {
            return Err(ApiError::forbidden(format!(
                "an agent logs its own contacts, not {rep}'s"
            )));
        }
        (_, Some(rep)) => rep,
        (_, None) => who.user.clone(),
    };
    let new = stratum_store::NewInteraction {
        customer_id: id,
        rep,
        on: b.on.unwrap_or_else(|| state.today()),
        at: state.now(),
        channel: match b.channel {
            Some(c) => word::<Channel>("channel", &c)?,
            None => Channel::Call,
        },
        outcome: word::<Outcome>("outcome", &b.outcome)?,
        intent: b.intent.map(|i| word::<Intent>("intent", &i)).transpose()?,
        class: b.class,
        next_contact: b.next_contact,
        notes: b.notes,
    };
    let row = stratum_runner::pipeline::log_contact(
        &state.policy,
        &state.store,
        &new,
        b.new_customer,
        &who.actor(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(row)).into_response())
}

#[derive(Deserialize)]
struct PeriodQuery {
    from: NaiveDate,
    to: Option<NaiveDate>,
    rep: Option<String>,
}

async fn funnel(State(state): State<AppState>, AppQuery(q): AppQuery<PeriodQuery>) -> ApiResult {
    let to = q.to.unwrap_or_else(|| state.today());
    let rows = stratum_runner::pipeline::funnel(&state.policy, &state.store, q.from, to).await?;
    ok(Funnel {
        from: q.from,
        to,
        classes: rows
            .into_iter()
            .map(|r| FunnelClass {
                class: r.class,
                now: r.now,
                entered: r.entered,
                moved_to: r
                    .moved_to
                    .into_iter()
                    .map(|(class, customers)| MovedTo { class, customers })
                    .collect(),
                median_days: r.median_days,
            })
            .collect(),
    })
}

#[derive(Serialize)]
struct Funnel {
    from: NaiveDate,
    to: NaiveDate,
    classes: Vec<FunnelClass>,
}

#[derive(Serialize)]
struct FunnelClass {
    class: String,
    now: usize,
    entered: usize,
    moved_to: Vec<MovedTo>,
    median_days: Option<u32>,
}

#[derive(Serialize)]
struct MovedTo {
    class: String,
    customers: usize,
}

async fn activity(
    State(state): State<AppState>,
    who: Principal,
    AppQuery(q): AppQuery<PeriodQuery>,
) -> ApiResult {
    let rep = match (who.role, q.rep) {
        (Role::Agent, Some(rep)) if rep != who.user => {
            return Err(ApiError::forbidden(format!(
                "an agent reads its own activity, not {rep}'s"
            )));
        }
        (Role::Agent, _) => Some(who.user.clone()),
        (_, rep) => rep,
    };
    let to = q.to.unwrap_or_else(|| state.today());
    let rows = stratum_runner::pipeline::activity(&state.policy, &state.store, q.from, to).await?;
    ok(Activity {
        from: q.from,
        to,
        days: rows
            .into_iter()
            .filter(|r| rep.as_ref().is_none_or(|rep| &r.rep == rep))
            .map(|r| ActivityDay {
                outcomes: Outcome::ALL
                    .iter()
                    .zip(&r.outcomes)
                    .map(|(o, n)| (o.as_str(), *n))
                    .collect(),
                channels: Channel::ALL
                    .iter()
                    .zip(&r.channels)
                    .map(|(c, n)| (c.as_str(), *n))
                    .collect(),
                rep: r.rep,
                day: r.day,
                contacts: r.contacts,
                target: r.target,
            })
            .collect(),
    })
}

#[derive(Serialize)]
struct Activity {
    from: NaiveDate,
    to: NaiveDate,
    days: Vec<ActivityDay>,
}

#[derive(Serialize)]
struct ActivityDay {
    rep: String,
    day: NaiveDate,
    contacts: usize,
    target: Option<u32>,
    outcomes: std::collections::BTreeMap<&'static str, usize>,
    channels: std::collections::BTreeMap<&'static str, usize>,
}
