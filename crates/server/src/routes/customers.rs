//! Customers: search, the card, the tier lookup, the level history and why a customer is where it is.

use serde::Serialize;
use stratum_core::{Quota, QuotaPeriod};
use stratum_runner::PendingChange;
use stratum_store::CurrentLevel;

use super::Units;

use super::evaluation;
use super::prelude::*;

pub(super) const ROUTES: &[Route] = &[
    Route {
        method: Method::Get,
        path: "/api/customers",
        summary: "Search customers by id prefix (`q`, `limit`) with their service level",
        roles: Some(ANY),
        own_customers: true,
        does: "search customers",
        handler: |m| on(m, search_customers),
    },
    Route {
        method: Method::Get,
        path: "/api/customers/{id}",
        summary: "Customer card: levels on every ladder with explanations, owner, tags, benefits with quota used and remaining",
        roles: Some(ANY),
        own_customers: true,
        does: "read customer cards",
        handler: |m| on(m, customer_card),
    },
    Route {
        method: Method::Get,
        path: "/api/customers/{id}/levels",
        summary: "Tier lookup: level, score and rank on every ladder of the served run (from memory)",
        roles: Some(ANY),
        own_customers: true,
        does: "look up levels",
        handler: |m| on(m, customer_levels),
    },
    Route {
        method: Method::Get,
        path: "/api/customers/{id}/history",
        summary: "Level timeline across runs with reasons",
        roles: Some(ANY),
        own_customers: true,
        does: "read level histories",
        handler: |m| on(m, customer_history),
    },
    Route {
        method: Method::Get,
        path: "/api/customers/{id}/explain",
        summary: "What the served run recorded: metrics, placements, explanations, pending changes; `?recompute=true` (admin, analyst) evaluates the policy afresh, one at a time, time-limited",
        roles: Some(&[Role::Admin, Role::Analyst, Role::Agent]),
        own_customers: true,
        does: "explain placements",
        handler: |m| on(m, customer_explain),
    },
];

#[derive(Deserialize)]
struct SearchQuery {
    #[serde(default)]
    q: String,
    limit: Option<i64>,
}

async fn search_customers(
    State(state): State<AppState>,
    who: Principal,
    AppQuery(query): AppQuery<SearchQuery>,
) -> ApiResult {
    let limit = query.limit.unwrap_or(20);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit must be between 1 and 1000"));
    }
    let run = latest_run(&state).await?;
    let ladder = state.service_ladder();
    // An agent's search is over the customers it sees, filtered before the limit.
    let found: Vec<(String, String)> = if let Some(owners) = visible_owners(state.teams(), &who) {
        let table = state.level_table().await?;
        table
            .owned_by(&owners, &query.q, limit as usize)
            .into_iter()
            .map(|c| {
                let level = table
                    .levels(c)
                    .and_then(|l| l.into_iter().find(|l| l.ladder == ladder))
                    .map(|l| l.level.to_string())
                    .unwrap_or_default();
                (c.to_string(), level)
            })
            .collect()
    } else {
        state
            .store
            .search_customers(run, &ladder, &query.q, limit)
            .await?
    };
    let customers = found
        .into_iter()
        .map(|(customer_id, level)| Found {
            customer_id,
            ladder: &ladder,
            level,
        })
        .collect();
    ok(Search {
        run_id: run,
        customers,
    })
}

#[derive(Serialize)]
struct Search<'a> {
    run_id: i64,
    customers: Vec<Found<'a>>,
}

#[derive(Serialize)]
struct Found<'a> {
    customer_id: String,
    ladder: &'a str,
    level: String,
}

async fn customer_card(State(state): State<AppState>, customer: Customer) -> ApiResult {
    let card = card(&state, &customer.id).await?;
    ok_local(&state, card)
}

/// A customer's card: the served run's levels with their explanations, owner, tags, the
/// benefits the service level gives with this period's use, and the manual changes pending
/// for the next run. The API's card and the console's customer page both show this.
pub(crate) async fn card<'a>(state: &'a AppState, id: &'a str) -> Result<Card<'a>, ApiError> {
    let levels = current_levels(state, id).await?;
    let policy_name = state.policy.policy.history_name();
    let (owner, tags) = state.store.owner_and_tags_of(policy_name, id).await?;
    let mut benefits = Vec::new();
    if let Some(service) = state.policy.policy.service.as_ref() {
        let level = service_level(state, &levels)?;
        let now = state.now();
        for b in &service.benefits {
            let quota = b.quota_for(level);
            if quota == Quota::NotEligible {
                continue;
            }
            let window = b.period.window(now, service.timezone);
            let used = state.store.usage(id, &b.name, window).await?;
            benefits.push(BenefitLeft {
                benefit: &b.name,
                title: b.title.as_deref(),
                period: b.period,
                period_start: window.0,
                period_end: window.1,
                quota: Units::of(quota),
                used,
                remaining: Units::left(quota, used),
                grant_hours: b.grant_hours,
            });
        }
    }
    let run = state.store.run(levels[0].run_id).await?;
    let pending_changes =
        stratum_runner::pending_changes(&state.store, &state.policy.policy, &run, id).await?;
    Ok(Card {
        customer_id: id,
        owner,
        tags,
        levels,
        benefits,
        pending_changes,
    })
}

#[derive(Serialize)]
pub(crate) struct Card<'a> {
    pub customer_id: &'a str,
    pub owner: Option<String>,
    pub tags: Vec<String>,
    pub levels: Vec<CurrentLevel>,
    pub benefits: Vec<BenefitLeft<'a>>,
    pub pending_changes: Vec<PendingChange>,
}

/// A benefit on the card: its quota this period, used and left.
#[derive(Serialize)]
pub(crate) struct BenefitLeft<'a> {
    pub benefit: &'a str,
    pub title: Option<&'a str>,
    pub period: QuotaPeriod,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub quota: Units,
    pub used: u32,
    pub remaining: Units,
    pub grant_hours: Option<u32>,
}

/// The tier lookup: the customer's level, score and rank on every ladder of the latest run,
/// from memory (see `lookup`).
async fn customer_levels(State(state): State<AppState>, customer: Customer) -> ApiResult {
    let id = customer.id;
    let table = state.level_table().await?;
    let owner = table.owner(&id);
    let levels = table.levels(&id).ok_or_else(|| {
        ApiError::new(
            ErrorCode::CustomerNotFound,
            format!("customer {id} is not in the latest run (#{})", table.run.id),
        )
    })?;
    ok(Levels {
        customer_id: &id,
        run_id: table.run.id,
        as_of: table.run.as_of,
        owner,
        levels,
    })
}

#[derive(Serialize)]
struct Levels<'a> {
    customer_id: &'a str,
    run_id: i64,
    as_of: chrono::NaiveDate,
    owner: Option<&'a str>,
    levels: Vec<crate::LadderLevel<'a>>,
}

async fn customer_history(State(state): State<AppState>, customer: Customer) -> ApiResult {
    let id = customer.id;
    let rows = state.store.history(&id).await?;
    if rows.is_empty() {
        return Err(ApiError::new(
            ErrorCode::CustomerNotFound,
            format!("customer {id} is in no recorded run"),
        ));
    }
    ok(History {
        customer_id: id,
        history: rows,
    })
}

#[derive(Serialize)]
struct History {
    customer_id: String,
    history: Vec<stratum_store::HistoryRow>,
}

#[derive(Deserialize)]
struct ExplainQuery {
    /// Recompute the policy over today's data instead of reading the served run.
    #[serde(default)]
    recompute: bool,
}

/// Why a customer is where it is: by default what the served run recorded (level, score,
/// rank and explanation per ladder; milliseconds, the same level every other view shows).
/// `?recompute=true` (admins and analysts) evaluates the policy afresh for the metrics,
/// score contributions and gaps to the next level; one at a time, with a time limit.
async fn customer_explain(
    State(state): State<AppState>,
    customer: Customer,
    AppQuery(query): AppQuery<ExplainQuery>,
) -> ApiResult {
    let Customer { id, who } = customer;
    if !query.recompute {
        let levels = current_levels(&state, &id).await?;
        let (run_id, as_of) = (levels[0].run_id, levels[0].as_of.clone());
        let text: Vec<String> = levels
            .iter()
            .map(|l| format!("{}: {} — {}", l.ladder, l.level, l.explanation))
            .collect();
        let placements = levels
            .iter()
            .map(|l| RecordedPlacement {
                ladder: &l.ladder,
                level: &l.level,
                rank: l.rank,
                score: l.score,
                because: &l.explanation,
            })
            .collect();
        let metrics = state
            .store
            .metrics_of(run_id, &id)
            .await?
            .unwrap_or_default()
            .into_iter()
            // Scores' part points are the console's breakdown, not metrics.
            .filter(|(metric, _)| !metric.contains(stratum_runner::PART_SEPARATOR))
            .map(|(metric, value)| MetricValue { metric, value })
            .collect();
        let run = state.store.run(run_id).await?;
        let pending =
            stratum_runner::pending_changes(&state.store, &state.policy.policy, &run, &id).await?;
        return ok(Recorded {
            customer_id: &id,
            run_id,
            as_of,
            recorded: true,
            metrics,
            placements,
            text: text.join("\n"),
            pending_changes: pending,
        });
    }
    who.require(&[Role::Admin, Role::Analyst], "recompute explanations")?;
    let turn = state.evaluation_turn()?;
    let (limit, memory) = (
        state.limits.evaluation_timeout,
        state.limits.evaluation_memory,
    );
    let options = stratum_runner::RunOptions {
        memory_limit: Some(memory),
        ..Default::default()
    };
    let (policy, store, customer) = (state.policy.clone(), state.store.clone(), id.clone());
    let explained = evaluation(turn, limit, async move {
        stratum_runner::explain(&policy, &options, Some(&store), &customer).await
    })
    .await?;
    let (as_of, ex) = match explained {
        Ok(x) => x,
        Err(stratum_runner::RunError::UnknownCustomer(_)) => {
            return Err(ApiError::new(
                ErrorCode::CustomerNotFound,
                format!("no customer {id} in the policy's data"),
            ));
        }
        Err(e) => return Err(ApiError::internal(e)),
    };
    let placements = ex
        .placements
        .iter()
        .map(|p| Recomputed {
            ladder: &p.ladder,
            level: &p.level,
            rank: p.rank,
            because: &p.because,
            next_level_gap: &p.next,
        })
        .collect();
    ok(Explained {
        customer_id: &id,
        as_of,
        recorded: false,
        tags: &ex.tags,
        metrics: ex
            .metrics
            .iter()
            .map(|(metric, value)| MetricValue {
                metric: metric.as_str(),
                value: value.as_str(),
            })
            .collect(),
        placements,
        models: &ex.models,
        text: ex.to_string(),
    })
}

/// An explanation read from the served run.
#[derive(Serialize)]
struct Recorded<'a> {
    customer_id: &'a str,
    run_id: i64,
    as_of: String,
    recorded: bool,
    metrics: Vec<MetricValue<String, Value>>,
    placements: Vec<RecordedPlacement<'a>>,
    text: String,
    pending_changes: Vec<PendingChange>,
}

#[derive(Serialize)]
struct MetricValue<M: Serialize, V: Serialize> {
    metric: M,
    value: V,
}

#[derive(Serialize)]
struct RecordedPlacement<'a> {
    ladder: &'a str,
    level: &'a str,
    rank: Option<i64>,
    score: Option<f64>,
    because: &'a str,
}

/// An explanation evaluated afresh (`?recompute=true`).
#[derive(Serialize)]
struct Explained<'a> {
    customer_id: &'a str,
    as_of: chrono::NaiveDate,
    recorded: bool,
    tags: &'a [String],
    metrics: Vec<MetricValue<&'a str, &'a str>>,
    placements: Vec<Recomputed<'a>>,
    models: &'a [String],
    text: String,
}

#[derive(Serialize)]
struct Recomputed<'a> {
    ladder: &'a str,
    level: &'a str,
    rank: Option<u32>,
    because: &'a str,
    next_level_gap: &'a str,
}
