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
        summary: "A rep's call list for a day (`rep`, default the caller: an agent reads its own or, leading a team, its members'; `date`, default today): due by class cycle or set date, overdue first, capacity and class quotas, morning and afternoon blocks",
        roles: Some(&[Role::Admin, Role::Analyst, Role::Agent]),
        own_customers: false,
        does: "read call lists",
        handler: |m| on(m, calls),
    },
    Route {
        method: Method::Get,
        path: "/api/pipeline/funnel",
        summary: "The funnel by class for `from`..`to`: prospects now, entered, left, where those who left went, median working days in class",
        roles: Some(&[Role::Admin, Role::Analyst, Role::Agent]),
        own_customers: false,
        does: "read pipeline reports",
        handler: |m| on(m, funnel),
    },
    Route {
        method: Method::Get,
        path: "/api/pipeline/activity",
        summary: "The daily activity report for `from`..`to`: per rep and day, contacts against the weekday's target, by outcome and channel (`rep`: one rep; agents: their own and, leading a team, their members')",
        roles: Some(&[Role::Admin, Role::Analyst, Role::Agent]),
        own_customers: false,
        does: "read pipeline reports",
        handler: |m| on(m, activity),
    },
    Route {
        method: Method::Get,
        path: "/api/pipeline/weeks",
        summary: "Plan against actual per rep and week for `from`..`to`: working days, contacts planned by the weekly targets, made, reached",
        roles: Some(&[Role::Admin, Role::Analyst, Role::Agent]),
        own_customers: false,
        does: "read pipeline reports",
        handler: |m| on(m, weeks),
    },
    Route {
        method: Method::Get,
        path: "/api/pipeline/intents",
        summary: "The intent customers (possible, good, very likely) on `to`: rep, class, last contact, due, working days overdue",
        roles: Some(&[Role::Admin, Role::Analyst, Role::Agent]),
        own_customers: false,
        does: "read pipeline reports",
        handler: |m| on(m, intents),
    },
    Route {
        method: Method::Get,
        path: "/api/pipeline/lost",
        summary: "The lost-sale reasons of `from`..`to`: the notes of refused contacts, counted",
        roles: Some(&[Role::Admin, Role::Analyst, Role::Agent]),
        own_customers: false,
        does: "read pipeline reports",
        handler: |m| on(m, lost),
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
    Route {
        method: Method::Get,
        path: "/api/pipeline/escalations",
        summary: "The overdue follow-ups of `date` (default today) that reached a step of `[pipeline.escalation]`: remind the rep, tell the team lead, return to the pool (with the teammate who takes it); agents: their own and their team's",
        roles: Some(&[Role::Admin, Role::Analyst, Role::Agent]),
        own_customers: false,
        does: "read escalations",
        handler: |m| on(m, escalations),
    },
    Route {
        method: Method::Post,
        path: "/api/pipeline/escalations",
        summary: "Act on the pool step of body {date?}: each customer returned to the pool is handed to the member of its rep's team holding fewest prospects",
        roles: Some(&[Role::Admin]),
        own_customers: false,
        does: "hand over escalated prospects",
        handler: |m| on(m, return_to_pool),
    },
    Route {
        method: Method::Get,
        path: "/api/assignments",
        summary: "The dedicated managers saved (`stratum assign --apply`): customer, manager, since, reason, by whom",
        roles: Some(&[Role::Admin, Role::Analyst]),
        own_customers: false,
        does: "read assignments",
        handler: |m| on(m, assignments),
    },
    Route {
        method: Method::Get,
        path: "/api/assignments/plan",
        summary: "What the policy's `[assignment]` gives the served run now: each customer's manager and why (kept, new, moved), per manager counts",
        roles: Some(&[Role::Admin, Role::Analyst]),
        own_customers: false,
        does: "plan assignments",
        handler: |m| on(m, plan),
    },
    Route {
        method: Method::Post,
        path: "/api/assignments",
        summary: "Apply the plan: the managers become the customers' owners (agent permissions, the pipeline's reps); customers no longer on the levels are released",
        roles: Some(&[Role::Admin]),
        own_customers: false,
        does: "apply assignments",
        handler: |m| on(m, apply),
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
    authorize_rep(state.teams(), &who, &rep)?;
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
    /// Default: the first of `to`'s month.
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    rep: Option<String>,
    /// `csv` for the report as CSV (the CLI's and the console's columns).
    format: Option<String>,
}

/// A pipeline report for the period, over the reps the caller sees (one with `rep`): JSON
/// of its rows by default, CSV with `format=csv`.
async fn pipeline_report(
    state: &AppState,
    who: &Principal,
    kind: stratum_runner::pipeline::ReportKind,
    q: PeriodQuery,
) -> ApiResult {
    if let Some(rep) = &q.rep {
        authorize_rep(state.teams(), who, rep)?;
    }
    let reps: Option<Vec<String>> = match q.rep {
        Some(rep) => Some(vec![rep]),
        None => visible_owners(state.teams(), who),
    };
    let to = q.to.unwrap_or_else(|| state.today());
    let from = q
        .from
        .unwrap_or_else(|| chrono::Datelike::with_day(&to, 1).unwrap_or(to));
    if from > to {
        return Err(ApiError::invalid(format!("from {from} is after to {to}")));
    }
    let report = stratum_runner::pipeline::report(
        &state.policy,
        &state.store,
        kind,
        from,
        to,
        reps.as_deref(),
    )
    .await?;
    match q.format.as_deref() {
        None | Some("json") => {}
        Some("csv") => {
            let name = format!("{}-{from}-{to}.csv", kind.as_str());
            return Ok((
                [
                    (
                        axum::http::header::CONTENT_TYPE,
                        "text/csv; charset=utf-8".to_string(),
                    ),
                    (
                        axum::http::header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{name}\""),
                    ),
                ],
                report.csv(),
            )
                .into_response());
        }
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "format `{other}`: use json or csv"
            )));
        }
    }
    use stratum_runner::pipeline::Report;
    let rows = match report {
        Report::Funnel(rows) => serde_json::to_value(
            rows.into_iter()
                .map(|r| FunnelClass {
                    class: r.class,
                    now: r.now,
                    entered: r.entered,
                    left: r.left,
                    moved_to: r
                        .moved_to
                        .into_iter()
                        .map(|(class, customers)| MovedTo { class, customers })
                        .collect(),
                    median_days: r.median_days,
                })
                .collect::<Vec<_>>(),
        ),
        Report::Activity(rows) => serde_json::to_value(
            rows.into_iter()
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
                .collect::<Vec<_>>(),
        ),
        Report::Weeks(rows) => serde_json::to_value(rows),
        Report::Intents(rows) => serde_json::to_value(rows),
        Report::Lost(rows) => serde_json::to_value(rows),
    }
    .map_err(|e| ApiError::internal(e.to_string()))?;
    let key = match kind {
        stratum_runner::pipeline::ReportKind::Funnel => "classes",
        stratum_runner::pipeline::ReportKind::Activity => "days",
        stratum_runner::pipeline::ReportKind::Weeks => "weeks",
        stratum_runner::pipeline::ReportKind::Intents => "customers",
        stratum_runner::pipeline::ReportKind::Lost => "reasons",
    };
    ok(serde_json::json!({ "from": from, "to": to, key: rows }))
}

macro_rules! report_route {
    ($name:ident, $kind:ident) => {
        async fn $name(
            State(state): State<AppState>,
            who: Principal,
            AppQuery(q): AppQuery<PeriodQuery>,
        ) -> ApiResult {
            pipeline_report(&state, &who, stratum_runner::pipeline::ReportKind::$kind, q).await
        }
    };
}
report_route!(funnel, Funnel);
report_route!(activity, Activity);
report_route!(weeks, Weeks);
report_route!(intents, Intents);
report_route!(lost, Lost);

#[derive(Serialize)]
struct FunnelClass {
    class: String,
    now: usize,
    entered: usize,
    left: usize,
    moved_to: Vec<MovedTo>,
    median_days: Option<u32>,
}

#[derive(Serialize)]
struct MovedTo {
    class: String,
    customers: usize,
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

#[derive(Deserialize)]
struct DayQuery {
    date: Option<NaiveDate>,
}

#[derive(Serialize)]
struct EscalationEntry {
    customer_id: String,
    rep: String,
    lead: Option<String>,
    class: String,
    overdue_days: u32,
    step: &'static str,
    hand_to: Option<String>,
}

fn escalation_entry(e: stratum_runner::pipeline::Escalated) -> EscalationEntry {
    EscalationEntry {
        step: e.step.code(),
        customer_id: e.customer_id,
        rep: e.rep,
        lead: e.lead,
        class: e.class,
        overdue_days: e.overdue_days,
        hand_to: e.hand_to,
    }
}

async fn escalations(
    State(state): State<AppState>,
    who: Principal,
    AppQuery(q): AppQuery<DayQuery>,
) -> ApiResult {
    let date = q.date.unwrap_or_else(|| state.today());
    let visible = visible_owners(state.teams(), &who);
    let all = stratum_runner::pipeline::escalations(&state.policy, &state.store, date).await?;
    ok(serde_json::json!({
        "date": date,
        "escalations": all
            .into_iter()
            .filter(|e| visible.as_ref().is_none_or(|reps| reps.contains(&e.rep)))
            .map(escalation_entry)
            .collect::<Vec<_>>(),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PoolBody {
    date: Option<NaiveDate>,
}

async fn return_to_pool(
    State(state): State<AppState>,
    who: Principal,
    AppJson(b): AppJson<PoolBody>,
) -> ApiResult {
    let date = b.date.unwrap_or_else(|| state.today());
    let (all, handed_over) =
        stratum_runner::pipeline::return_to_pool(&state.policy, &state.store, date, &who.actor())
            .await?;
    ok(serde_json::json!({
        "date": date,
        "handed_over": handed_over,
        "escalations": all.into_iter().map(escalation_entry).collect::<Vec<_>>(),
    }))
}

async fn assignments(State(state): State<AppState>) -> ApiResult {
    let policy = state.policy.policy.history_name();
    ok(serde_json::json!({
        "assignments": state.store.manager_assignments(policy).await?,
    }))
}

#[derive(Serialize)]
struct Plan {
    ladder: String,
    levels: Vec<String>,
    managers: Vec<ManagerLoad>,
    moved: usize,
    assignments: Vec<Planned>,
}

#[derive(Serialize)]
struct ManagerLoad {
    manager: String,
    customers: usize,
    capacity: Option<usize>,
    rating: u32,
}

#[derive(Serialize)]
struct Planned {
    customer_id: String,
    manager: String,
    why: String,
}

/// The policy's `[assignment]` over the served run.
pub(crate) async fn plan_of(
    state: &AppState,
) -> Result<
    (
        stratum_core::assign::AssignmentRule,
        Vec<stratum_core::assign::Assignment>,
    ),
    ApiError,
> {
    let rule = stratum_runner::pipeline::assignment_rule(&state.policy, None, &[], &[])?;
    let done =
        stratum_runner::pipeline::assign_managers(&state.policy, &state.store, &rule).await?;
    Ok((rule, done))
}

fn plan_answer(
    rule: stratum_core::assign::AssignmentRule,
    done: Vec<stratum_core::assign::Assignment>,
) -> Plan {
    Plan {
        managers: rule
            .managers
            .iter()
            .map(|m| ManagerLoad {
                manager: m.name.clone(),
                customers: done.iter().filter(|a| a.manager == m.name).count(),
                capacity: m.capacity,
                rating: m.rating,
            })
            .collect(),
        moved: done
            .iter()
            .filter(|a| a.why != stratum_core::assign::Why::Kept)
            .count(),
        ladder: rule.ladder,
        levels: rule.levels,
        assignments: done
            .into_iter()
            .map(|a| Planned {
                why: a.why.to_string(),
                customer_id: a.customer_id,
                manager: a.manager,
            })
            .collect(),
    }
}

async fn plan(State(state): State<AppState>) -> ApiResult {
    let (rule, done) = plan_of(&state).await?;
    ok(plan_answer(rule, done))
}

async fn apply(State(state): State<AppState>, who: Principal) -> ApiResult {
    let (rule, done) = plan_of(&state).await?;
    let applied = stratum_runner::pipeline::apply_assignments(
        &state.policy,
        &state.store,
        &done,
        state.today(),
        &who.actor(),
    )
    .await?;
    // Owners are served from memory: read them again now rather than at the next refresh.
    state.refresh().await?;
    ok(serde_json::json!({
        "applied": applied,
        "plan": plan_answer(rule, done),
    }))
}
