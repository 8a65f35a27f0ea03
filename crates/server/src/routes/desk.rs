//! The service desk: queue order by level, missed calls and call-backs, the SLA report.

use stratum_core::{Call, Waiting};

use serde::Serialize;
use stratum_core::{QueuePlace, SlaRow};
use stratum_store::CallbackRow;

use super::prelude::*;

pub(super) const ROUTES: &[Route] = &[
    Route {
        method: Method::Post,
        path: "/api/queue/order",
        summary: "Order a waiting list by level with aging, the blacklist last: body {waiting: [{customer_id, arrived_at}], now?}",
        roles: Some(&[Role::Admin, Role::Agent, Role::Service]),
        own_customers: true,
        does: "order the queue",
        handler: |m| on(m, queue_order),
    },
    Route {
        method: Method::Post,
        path: "/api/calls/missed",
        summary: "Log a missed call; creates a call-back task where the level has one: body {customer_id, at?}",
        roles: Some(&[Role::Admin, Role::Agent, Role::Service]),
        own_customers: true,
        does: "log missed calls",
        handler: |m| on(m, missed_call),
    },
    Route {
        method: Method::Get,
        path: "/api/callbacks",
        summary: "Open call-back tasks, earliest due first",
        roles: Some(ANY),
        own_customers: true,
        does: "list call-backs",
        handler: |m| on(m, callbacks),
    },
    Route {
        method: Method::Post,
        path: "/api/callbacks/{id}/done",
        summary: "Complete a call-back",
        roles: Some(&[Role::Admin, Role::Agent, Role::Service]),
        own_customers: true,
        does: "complete call-backs",
        handler: |m| on(m, callback_done),
    },
    Route {
        method: Method::Post,
        path: "/api/sla/report",
        summary: "Share of calls answered within each level's target: body {calls: [{customer_id, queued_at, answered_at|null}]}",
        roles: Some(&[Role::Admin, Role::Analyst]),
        own_customers: false,
        does: "read the SLA report",
        handler: |m| on(m, sla_report),
    },
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueueBody {
    waiting: Vec<WaitingIn>,
    now: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WaitingIn {
    customer_id: String,
    arrived_at: DateTime<Utc>,
}

async fn queue_order(
    State(state): State<AppState>,
    who: Principal,
    AppJson(body): AppJson<QueueBody>,
) -> ApiResult {
    if body.waiting.len() > 1000 {
        return Err(ApiError::invalid(
            "at most 1000 waiting callers per request",
        ));
    }
    let service = state.service()?;
    // One run for the whole request: every caller is ordered by the same levels.
    let table = state.level_table().await?;
    for w in &body.waiting {
        authorize_in(&table, state.teams(), &who, &w.customer_id)?;
    }
    let ids: Vec<&str> = body
        .waiting
        .iter()
        .map(|w| w.customer_id.as_str())
        .collect();
    let tags = state
        .store
        .tags_of_many(state.policy.policy.history_name(), &ids)
        .await?;
    let waiting: Vec<Waiting> = body
        .waiting
        .iter()
        .map(|w| Waiting {
            customer_id: w.customer_id.clone(),
            arrived_at: w.arrived_at,
            level: table
                .level_on(&w.customer_id, &service.ladder_name)
                .and_then(|l| service.level_index(l)),
            last: tags
                .get(&w.customer_id)
                .is_some_and(|t| t.iter().any(|t| service.last_tags.contains(t))),
        })
        .collect();
    let now = body.now.unwrap_or_else(|| state.now());
    ok_local(
        &state,
        QueueOrder {
            now,
            aging_minutes: service.aging_minutes,
            order: service.order_queue(&waiting, now),
        },
    )
}

#[derive(Serialize)]
struct QueueOrder {
    now: DateTime<Utc>,
    aging_minutes: u32,
    order: Vec<QueuePlace>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MissedBody {
    customer_id: String,
    at: Option<DateTime<Utc>>,
}

async fn missed_call(
    State(state): State<AppState>,
    who: Principal,
    AppJson(body): AppJson<MissedBody>,
) -> ApiResult {
    authorize(&state, &who, &body.customer_id).await?;
    let service = state.service()?;
    let levels = current_levels(&state, &body.customer_id).await?;
    let level = service_level(&state, &levels)?;
    let at = body.at.unwrap_or_else(|| state.now());
    match service.callback_due(level, at) {
        Some(due) => {
            let row = state
                .store
                .add_callback(
                    &body.customer_id,
                    &service.levels[level.expect("due implies a level")],
                    at,
                    due,
                    &who.actor(),
                )
                .await?;
            Ok((
                StatusCode::CREATED,
                Json(local_times(
                    &state,
                    Missed {
                        callback: Some(row),
                        reason: None,
                    },
                )),
            )
                .into_response())
        }
        None => ok(Missed {
            callback: None,
            reason: Some("the customer's level gets no call-back"),
        }),
    }
}

#[derive(Serialize)]
struct Missed {
    callback: Option<CallbackRow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
}

async fn callbacks(State(state): State<AppState>, who: Principal) -> ApiResult {
    let mut open = state.store.open_callbacks().await?;
    if who.role == Role::Agent {
        let mut mine = Vec::new();
        for c in open {
            if authorize(&state, &who, &c.customer_id).await.is_ok() {
                mine.push(c);
            }
        }
        open = mine;
    }
    ok_local(&state, Callbacks { callbacks: open })
}

#[derive(Serialize)]
struct Callbacks {
    callbacks: Vec<CallbackRow>,
}

async fn callback_done(
    State(state): State<AppState>,
    who: Principal,
    AppPath(id): AppPath<i64>,
) -> ApiResult {
    let open = state.store.open_callbacks().await?;
    if let Some(c) = open.iter().find(|c| c.id == id) {
        authorize(&state, &who, &c.customer_id).await?;
    }
    let done = state.store.complete_callback(id, &who.actor()).await?;
    ok_local(&state, done)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SlaBody {
    calls: Vec<CallIn>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallIn {
    customer_id: String,
    queued_at: DateTime<Utc>,
    answered_at: Option<DateTime<Utc>>,
}

async fn sla_report(
    State(state): State<AppState>,
    who: Principal,
    AppJson(body): AppJson<SlaBody>,
) -> ApiResult {
    let service = state.service()?;
    let table = state.level_table().await?;
    for c in &body.calls {
        authorize_in(&table, state.teams(), &who, &c.customer_id)?;
    }
    let mut calls = Vec::with_capacity(body.calls.len());
    for (i, c) in body.calls.iter().enumerate() {
        if c.answered_at.is_some_and(|a| a < c.queued_at) {
            return Err(ApiError::invalid(format!(
                "calls[{i}]: answered_at is before queued_at"
            )));
        }
        calls.push(Call {
            customer_id: c.customer_id.clone(),
            level: table
                .level_on(&c.customer_id, &service.ladder_name)
                .and_then(|l| service.level_index(l)),
            queued_at: c.queued_at,
            answered_at: c.answered_at,
        });
    }
    ok(Sla {
        ladder: &service.ladder_name,
        report: service.sla_report(&calls),
    })
}

#[derive(Serialize)]
struct Sla<'a> {
    ladder: &'a str,
    report: Vec<SlaRow>,
}
