//! The handlers. Each checks the caller's role first, and for agents that they own the
//! customer, before reading anything, so a refused request learns nothing.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use stratum_core::{Call, Quota, Waiting};
use stratum_store::{CurrentLevel, NewOverride, NewRedemption};

use crate::access::{Customer, authorize};
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ErrorCode};
use crate::{AppState, openapi};

use Role::{Admin, Agent, Analyst, Service as Svc};

type ApiResult = Result<axum::response::Response, ApiError>;

fn ok(value: impl serde::Serialize) -> ApiResult {
    Ok(Json(value).into_response())
}

/// An answer whose times are in the service's time zone, with its offset: a call centre in
/// Shanghai sends `+08:00` and gets `+08:00` back. Every RFC 3339 string under a key ending
/// in `_at`, or named `at`, `now`, `period_start` or `period_end`, is converted; without a
/// `[service]` section times stay in UTC.
fn local_times(state: &AppState, value: impl serde::Serialize) -> Value {
    let mut value = serde_json::to_value(value).unwrap_or(Value::Null);
    if let Some(service) = state.policy.policy.service.as_ref() {
        let tz = service.timezone;
        let convert = |s: &str| -> Option<String> {
            let t = DateTime::parse_from_rfc3339(s).ok()?;
            Some(
                t.with_timezone(&tz)
                    .fixed_offset()
                    .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false),
            )
        };
        fn walk(v: &mut Value, convert: &dyn Fn(&str) -> Option<String>) {
            match v {
                Value::Object(map) => {
                    for (k, v) in map.iter_mut() {
                        let is_time = k.ends_with("_at")
                            || matches!(k.as_str(), "at" | "now" | "period_start" | "period_end");
                        match v {
                            Value::String(s) if is_time => {
                                if let Some(local) = convert(s) {
                                    *s = local;
                                }
                            }
                            _ => walk(v, convert),
                        }
                    }
                }
                Value::Array(items) => items.iter_mut().for_each(|v| walk(v, convert)),
                _ => {}
            }
        }
        walk(&mut value, &convert);
    }
    value
}

fn ok_local(state: &AppState, value: impl serde::Serialize) -> ApiResult {
    ok(local_times(state, value))
}

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/openapi.json", get(openapi_json))
        .route("/api/customers", get(search_customers))
        .route("/api/customers/{id}", get(customer_card))
        .route("/api/customers/{id}/levels", get(customer_levels))
        .route("/api/customers/{id}/history", get(customer_history))
        .route("/api/customers/{id}/explain", get(customer_explain))
        .route(
            "/api/customers/{id}/redemptions",
            get(list_redemptions).post(redeem),
        )
        .route("/api/customers/{id}/inputs/{field}", put(set_input))
        .route("/api/redemptions/{id}/cancel", post(cancel_redemption))
        .route("/api/benefits", get(benefits))
        .route("/api/runs", get(runs).post(start_run))
        .route("/api/simulate", post(simulate))
        .route("/api/runs/{id}", get(run))
        .route("/api/diff", get(diff))
        .route("/api/queue/order", post(queue_order))
        .route("/api/calls/missed", post(missed_call))
        .route("/api/callbacks", get(callbacks))
        .route("/api/callbacks/{id}/done", post(callback_done))
        .route("/api/sla/report", post(sla_report))
        .route("/api/overrides", get(overrides).post(add_override))
        .route("/api/overrides/{id}/remove", post(remove_override))
        .route("/api/inputs", get(inputs))
        .route("/api/users", get(users).post(add_user))
        .route("/api/users/{name}/disable", post(disable_user))
        .route("/api/audit", get(audit))
}

/// Answers the store's "not found" with a more specific code.
fn not_found_as(code: ErrorCode) -> impl Fn(stratum_store::StoreError) -> ApiError {
    move |e| match e {
        stratum_store::StoreError::NotFound(m) => ApiError::new(code, m),
        e => e.into(),
    }
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::RouteNotFound, "no such route; see /openapi.json")
}

pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "the route exists with another method; see /openapi.json",
    )
}

async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn openapi_json(_who: Principal) -> Json<Value> {
    Json(openapi::openapi_document())
}

/// The latest run of the server's policy.
async fn latest_run(state: &AppState) -> Result<i64, ApiError> {
    state
        .store
        .latest_run_id(state.policy.policy.history_name())
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::RunNotFound,
                "no run recorded yet: run `stratum run`",
            )
        })
}

async fn current_levels(state: &AppState, customer: &str) -> Result<Vec<CurrentLevel>, ApiError> {
    let run = latest_run(state).await?;
    let levels = state.store.levels_of(run, customer).await?;
    if levels.is_empty() {
        return Err(ApiError::new(
            ErrorCode::CustomerNotFound,
            format!("customer {customer} is not in the latest run (#{run})"),
        ));
    }
    Ok(levels)
}

/// The customer's level index on the service ladder.
fn service_level(state: &AppState, levels: &[CurrentLevel]) -> Result<Option<usize>, ApiError> {
    let service = state.service()?;
    Ok(levels
        .iter()
        .find(|l| l.ladder == service.ladder_name)
        .and_then(|l| service.level_index(&l.level)))
}

#[derive(Deserialize)]
struct SearchQuery {
    #[serde(default)]
    q: String,
    limit: Option<i64>,
}

async fn search_customers(
    State(state): State<AppState>,
    who: Principal,
    query: Result<Query<SearchQuery>, QueryRejection>,
) -> ApiResult {
    let Query(query) = query?;
    let limit = query.limit.unwrap_or(20);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit must be between 1 and 1000"));
    }
    let run = latest_run(&state).await?;
    let ladder = match state.policy.policy.service.as_ref() {
        Some(s) => s.ladder_name.clone(),
        None => state.policy.policy.ladders[0].name.clone(),
    };
    // An agent's search is over its own customers, filtered before the limit.
    let found: Vec<(String, String)> = if who.role == Agent {
        let table = state.level_table().await?;
        table
            .owned_by(&who.user, &query.q, limit as usize)
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
    let out: Vec<Value> = found
        .into_iter()
        .map(|(customer, level)| json!({"customer_id": customer, "ladder": ladder, "level": level}))
        .collect();
    ok(json!({"run_id": run, "customers": out}))
}

async fn customer_card(State(state): State<AppState>, customer: Customer) -> ApiResult {
    let id = customer.id;
    let levels = current_levels(&state, &id).await?;
    let policy_name = state.policy.policy.history_name();
    let owner = state.store.owner_of(policy_name, &id).await?;
    let tags = state.store.tags_of(policy_name, &id).await?;
    let mut benefits = Vec::new();
    if let Some(service) = state.policy.policy.service.as_ref() {
        let level = service_level(&state, &levels)?;
        let now = state.now();
        for b in &service.benefits {
            let quota = b.quota_for(level);
            if quota == Quota::NotEligible {
                continue;
            }
            let window = b.period.window(now, service.timezone);
            let used = state.store.usage(&id, &b.name, window).await?;
            let (quota_json, remaining) = match quota {
                Quota::Limited(n) => (json!(n), json!(n.saturating_sub(used))),
                _ => (json!("unlimited"), json!("unlimited")),
            };
            benefits.push(json!({
                "benefit": b.name, "title": b.title, "period": b.period,
                "period_start": window.0, "period_end": window.1,
                "quota": quota_json, "used": used, "remaining": remaining,
                "grant_hours": b.grant_hours,
            }));
        }
    }
    let run = state.store.run(levels[0].run_id).await?;
    let pending =
        stratum_runner::pending_changes(&state.store, &state.policy.policy, &run, &id).await?;
    ok_local(
        &state,
        json!({
            "customer_id": id, "owner": owner, "tags": tags, "levels": levels, "benefits": benefits,
            "pending_changes": pending,
        }),
    )
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
    ok(json!({
        "customer_id": id, "run_id": table.run.id, "as_of": table.run.as_of,
        "owner": owner, "levels": levels,
    }))
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
    ok(json!({"customer_id": id, "history": rows}))
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
    query: Result<Query<ExplainQuery>, QueryRejection>,
) -> ApiResult {
    let Customer { id, who } = customer;
    who.require(&[Admin, Analyst, Agent], "explain placements")?;
    let Query(query) = query?;
    if !query.recompute {
        let levels = current_levels(&state, &id).await?;
        let (run_id, as_of) = (levels[0].run_id, levels[0].as_of.clone());
        let text: Vec<String> = levels
            .iter()
            .map(|l| format!("{}: {} — {}", l.ladder, l.level, l.explanation))
            .collect();
        let placements: Vec<Value> = levels
            .iter()
            .map(|l| {
                json!({"ladder": l.ladder, "level": l.level, "rank": l.rank,
                       "score": l.score, "because": l.explanation})
            })
            .collect();
        let metrics: Vec<Value> = state
            .store
            .metrics_of(run_id, &id)
            .await?
            .unwrap_or_default()
            .into_iter()
            .map(|(metric, value)| json!({"metric": metric, "value": value}))
            .collect();
        let run = state.store.run(run_id).await?;
        let pending =
            stratum_runner::pending_changes(&state.store, &state.policy.policy, &run, &id).await?;
        return ok(json!({
            "customer_id": id, "run_id": run_id, "as_of": as_of, "recorded": true,
            "metrics": metrics, "placements": placements, "text": text.join("\n"),
            "pending_changes": pending,
        }));
    }
    who.require(&[Admin, Analyst], "recompute explanations")?;
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
    let placements: Vec<Value> = ex
        .placements
        .iter()
        .map(|p| {
            json!({"ladder": p.ladder, "level": p.level, "rank": p.rank,
                   "because": p.because, "next_level_gap": p.next})
        })
        .collect();
    ok(json!({
        "customer_id": id, "as_of": as_of, "recorded": false, "tags": ex.tags,
        "metrics": ex.metrics.iter().map(|(k, v)| json!({"metric": k, "value": v})).collect::<Vec<_>>(),
        "placements": placements, "models": ex.models, "text": ex.to_string(),
    }))
}

async fn benefits(State(state): State<AppState>, who: Principal) -> ApiResult {
    who.require(&[Admin, Analyst, Agent, Svc], "read the benefits catalog")?;
    let service = state.service()?;
    let out: Vec<Value> = service
        .benefits
        .iter()
        .map(|b| {
            let quota: serde_json::Map<String, Value> = service
                .levels
                .iter()
                .zip(&b.quota)
                .filter_map(|(level, q)| match q {
                    Quota::Limited(n) => Some((level.clone(), json!(n))),
                    Quota::Unlimited => Some((level.clone(), json!("unlimited"))),
                    Quota::NotEligible => None,
                })
                .collect();
            json!({"benefit": b.name, "title": b.title, "period": b.period,
                   "quota": quota, "grant_hours": b.grant_hours})
        })
        .collect();
    ok(json!({"ladder": service.ladder_name, "timezone": service.timezone.name(), "benefits": out}))
}

async fn list_redemptions(State(state): State<AppState>, customer: Customer) -> ApiResult {
    let id = customer.id;
    let redemptions = state.store.redemptions(&id).await?;
    ok_local(
        &state,
        json!({"customer_id": id, "redemptions": redemptions}),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RedeemBody {
    benefit: String,
    quantity: Option<i64>,
}

async fn redeem(
    State(state): State<AppState>,
    customer: Customer,
    headers: HeaderMap,
    body: Result<Json<RedeemBody>, JsonRejection>,
) -> ApiResult {
    let Customer { id, who } = customer;
    who.require(&[Admin, Agent, Svc], "redeem benefits")?;
    let Json(body) = body?;
    let quantity = body.quantity.unwrap_or(1);
    if !(1..=1000).contains(&quantity) {
        return Err(ApiError::invalid(format!(
            "quantity must be between 1 and 1000, not {quantity}"
        )));
    }
    let key = match headers.get("idempotency-key") {
        Some(v) => Some(
            v.to_str()
                .ok()
                .filter(|k| !k.is_empty() && k.len() <= 200)
                .ok_or_else(|| {
                    ApiError::invalid("Idempotency-Key must be 1-200 visible characters")
                })?
                .to_string(),
        ),
        None => None,
    };
    let service = state.service()?;
    let benefit = service.benefit(&body.benefit).ok_or_else(|| {
        ApiError::new(
            ErrorCode::BenefitNotFound,
            format!("the catalog has no benefit `{}`", body.benefit),
        )
    })?;
    let levels = current_levels(&state, &id).await?;
    let level = service_level(&state, &levels)?;
    let quota = match benefit.quota_for(level) {
        Quota::NotEligible => {
            return Err(ApiError::new(
                ErrorCode::NotEligible,
                format!(
                    "customer {id} ({}) is not eligible for `{}`",
                    level
                        .map(|l| service.levels[l].as_str())
                        .unwrap_or("no level"),
                    benefit.name
                ),
            ));
        }
        Quota::Limited(n) => Some(n),
        Quota::Unlimited => None,
    };
    let now = state.now();
    let redeemed = state
        .store
        .redeem(
            &NewRedemption {
                customer_id: id.clone(),
                benefit: benefit.name.clone(),
                quantity: quantity as u32,
                level: level.map(|l| service.levels[l].clone()).unwrap_or_default(),
                idempotency_key: key,
                at: now,
                window: benefit.period.window(now, service.timezone),
                quota,
                grant_hours: benefit.grant_hours,
            },
            &who.actor(),
        )
        .await?;
    let status = if redeemed.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let body = json!({
        "redemption": redeemed.redemption, "replayed": redeemed.replayed,
        "used": redeemed.used,
        "remaining": quota.map(|q| json!(q.saturating_sub(redeemed.used))).unwrap_or(json!("unlimited")),
    });
    Ok((status, Json(local_times(&state, body))).into_response())
}

async fn cancel_redemption(
    State(state): State<AppState>,
    who: Principal,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult {
    let Path(id) = id?;
    who.require(&[Admin, Agent, Svc], "cancel redemptions")?;
    let existing = state
        .store
        .redemption(id)
        .await
        .map_err(not_found_as(ErrorCode::RedemptionNotFound))?;
    authorize(&state, &who, &existing.customer_id).await?;
    let cancelled = state.store.cancel_redemption(id, &who.actor()).await?;
    ok_local(&state, cancelled)
}

async fn runs(State(state): State<AppState>, who: Principal) -> ApiResult {
    who.require(&[Admin, Analyst], "list runs")?;
    let policy = state.policy.policy.history_name();
    ok(json!({"runs": state.store.runs(Some(policy)).await?}))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RunBody {
    as_of: Option<String>,
    /// Accept an `as_of` more than a day after today.
    #[serde(default)]
    allow_future_as_of: bool,
}

/// A body that may be left out: empty means the defaults.
fn optional_json<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::new(ErrorCode::InvalidJson, e.to_string()))
}

fn evaluation_timed_out(limit: std::time::Duration) -> ApiError {
    ApiError::new(
        ErrorCode::Timeout,
        format!(
            "the evaluation took longer than {} seconds and was stopped",
            limit.as_secs()
        ),
    )
}

/// Runs an evaluation (a recomputed explanation, a simulation) as a task of its own that
/// holds `turn` and is stopped after `limit`: the permit bounds the work itself, whether or
/// not the client waits for it.
async fn evaluation<T: Send + 'static>(
    turn: tokio::sync::OwnedSemaphorePermit,
    limit: std::time::Duration,
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::spawn(async move {
        let _turn = turn;
        tokio::time::timeout(limit, work).await
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|_| evaluation_timed_out(limit))
}

/// Runs the served policy over its data and records the run, like `stratum run`; one at a
/// time. The lookup table switches to the new run before the answer.
async fn start_run(
    State(state): State<AppState>,
    who: Principal,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    who.require(&[Admin, Analyst], "start runs")?;
    let body: RunBody = optional_json(&body?)?;
    let running = state.running.clone().try_lock_owned().map_err(|_| {
        ApiError::new(
            ErrorCode::RunInProgress,
            "a run started through the API is still going; try again when it has finished",
        )
    })?;
    let options = stratum_runner::RunOptions {
        as_of: body.as_of,
        allow_future_as_of: body.allow_future_as_of,
        recorded_by: who.user.clone(),
        ..Default::default()
    };
    let (policy, store) = (state.policy.clone(), state.store.clone());
    // A task of its own: a client that hangs up does not stop a run half recorded.
    let outcome = tokio::spawn(async move {
        let _running = running;
        stratum_runner::run(&policy, &options, Some(&store), &mut stratum_runner::Quiet).await
    })
    .await
    .map_err(ApiError::internal)??;
    let run_id = outcome
        .run_id
        .ok_or_else(|| ApiError::internal("a recorded run has no id"))?;
    state
        .store
        .audit_event(
            &who.actor(),
            "run.start",
            &run_id.to_string(),
            &format!("as of {}, {} customers", outcome.as_of, outcome.customers),
        )
        .await?;
    state.refresh().await?;
    let ladders: Vec<Value> = outcome.ladders.iter().map(ladder_summary).collect();
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "run_id": run_id, "as_of": outcome.as_of, "customers": outcome.customers,
            "previous_run": outcome.previous_run, "ladders": ladders,
        })),
    )
        .into_response())
}

/// A sum of money as the CLI prints it: to the cent (a float sum of a million amounts ends
/// in `…0000006`).
fn money(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn ladder_summary(l: &stratum_core::LadderSummary) -> Value {
    json!({
        "ladder": l.ladder, "value": l.value_name, "pareto_top20": l.pareto_top20,
        "levels": l.rows.iter().map(|r| json!({
            "level": r.level, "customers": r.count, "share": r.share,
            "value": money(r.value), "value_share": r.value_share,
        })).collect::<Vec<_>>(),
    })
}

/// The files a policy reads: its sources and its overrides file.
fn files_read(policy: &stratum_runner::LoadedPolicy) -> Vec<&str> {
    let file = &policy.policy.file;
    file.sources
        .values()
        .map(|s| s.path.as_str())
        .chain(file.policy.overrides_file.as_deref())
        .collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SimulateBody {
    /// The draft policy's TOML text.
    policy: String,
    as_of: Option<String>,
}

/// What-if: evaluates a draft policy over the served policy's data and compares it with the
/// latest run, recording nothing.
async fn simulate(
    State(state): State<AppState>,
    who: Principal,
    body: Result<Json<SimulateBody>, JsonRejection>,
) -> ApiResult {
    who.require(&[Admin, Analyst], "simulate drafts")?;
    let Json(body) = body?;
    let served = &state.policy;
    let draft = stratum_runner::LoadedPolicy::from_text(
        std::path::Path::new("draft policy"),
        body.policy,
        served.base_dir.clone(),
    )?;
    // A draft may only read what the served policy reads: it is evaluated on the server.
    let allowed = files_read(served);
    let read = files_read(&draft);
    for path in read {
        if !allowed.contains(&path) {
            return Err(ApiError::invalid(format!(
                "the draft reads `{path}`, which the served policy does not; over the API a \
                 draft may only read the served policy's files"
            )));
        }
    }
    let options = stratum_runner::RunOptions {
        as_of: body.as_of,
        recorded_by: who.user.clone(),
        memory_limit: Some(state.limits.evaluation_memory),
        ..Default::default()
    };
    let turn = state.evaluation_turn()?;
    let limit = state.limits.evaluation_timeout;
    let store = state.store.clone();
    let sim = evaluation(turn, limit, async move {
        stratum_runner::simulate(&draft, &options, &store, &mut stratum_runner::Quiet).await
    })
    .await??;
    let ladders: Vec<Value> = sim
        .ladders
        .iter()
        .map(|l| {
            json!({
                "ladder": l.ladder, "levels": l.levels,
                "moves": l.cells.iter().map(|(from, to, n)| json!({"from": from, "to": to, "customers": n})).collect::<Vec<_>>(),
                "upgrades": l.upgrades, "downgrades": l.downgrades,
                "benefit_cost_before": l.cost_before, "benefit_cost_after": l.cost_after,
            })
        })
        .collect();
    ok(json!({
        "base_run": sim.base.as_ref().map(|r| r.id), "as_of": sim.as_of,
        "ladders": ladders,
        "summaries": sim.summaries.iter().map(ladder_summary).collect::<Vec<_>>(),
    }))
}

async fn run(
    State(state): State<AppState>,
    who: Principal,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult {
    let Path(id) = id?;
    who.require(&[Admin, Analyst], "read runs")?;
    let run = state
        .store
        .run(id)
        .await
        .map_err(not_found_as(ErrorCode::RunNotFound))?;
    ok(run)
}

#[derive(Deserialize)]
struct DiffQuery {
    from: Option<i64>,
    to: Option<i64>,
}

async fn diff(
    State(state): State<AppState>,
    who: Principal,
    query: Result<Query<DiffQuery>, QueryRejection>,
) -> ApiResult {
    who.require(&[Admin, Analyst], "compare runs")?;
    let Query(q) = query?;
    let runs = state
        .store
        .runs(Some(state.policy.policy.history_name()))
        .await?;
    let (from, to) = match (q.from, q.to) {
        (Some(a), Some(b)) => (a, b),
        (None, None) if runs.len() >= 2 => (runs[runs.len() - 2].id, runs[runs.len() - 1].id),
        (None, None) => {
            return Err(ApiError::new(
                ErrorCode::RunNotFound,
                "a diff needs two recorded runs",
            ));
        }
        _ => return Err(ApiError::invalid("give both `from` and `to`, or neither")),
    };
    for id in [from, to] {
        state
            .store
            .run(id)
            .await
            .map_err(not_found_as(ErrorCode::RunNotFound))?;
    }
    let matrix: Vec<Value> = state
        .store
        .migration_matrix(from, to)
        .await?
        .into_iter()
        .map(|c| {
            json!({"ladder": c.ladder, "from_level": c.from_level, "to_level": c.to_level,
                   "customers": c.customers, "value": money(c.value)})
        })
        .collect();
    ok(json!({"from": from, "to": to, "matrix": matrix}))
}

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

async fn customer_standing(
    state: &AppState,
    customer: &str,
) -> Result<(Option<usize>, bool), ApiError> {
    let service = state.service()?;
    let run = latest_run(state).await?;
    let levels = state.store.levels_of(run, customer).await?;
    let level = service_level(state, &levels)?;
    let tags = state
        .store
        .tags_of(state.policy.policy.history_name(), customer)
        .await?;
    let last = tags.iter().any(|t| service.last_tags.contains(t));
    Ok((level, last))
}

async fn queue_order(
    State(state): State<AppState>,
    who: Principal,
    body: Result<Json<QueueBody>, JsonRejection>,
) -> ApiResult {
    who.require(&[Admin, Agent, Svc], "order the queue")?;
    let Json(body) = body?;
    if body.waiting.len() > 1000 {
        return Err(ApiError::invalid(
            "at most 1000 waiting callers per request",
        ));
    }
    let service = state.service()?;
    let mut waiting = Vec::with_capacity(body.waiting.len());
    for w in &body.waiting {
        authorize(&state, &who, &w.customer_id).await?;
    }
    for w in &body.waiting {
        let (level, last) = customer_standing(&state, &w.customer_id).await?;
        waiting.push(Waiting {
            customer_id: w.customer_id.clone(),
            arrived_at: w.arrived_at,
            level,
            last,
        });
    }
    let now = body.now.unwrap_or_else(|| state.now());
    ok_local(
        &state,
        json!({"now": now, "aging_minutes": service.aging_minutes,
              "order": service.order_queue(&waiting, now)}),
    )
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
    body: Result<Json<MissedBody>, JsonRejection>,
) -> ApiResult {
    who.require(&[Admin, Agent, Svc], "log missed calls")?;
    let Json(body) = body?;
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
                Json(local_times(&state, json!({"callback": row}))),
            )
                .into_response())
        }
        None => ok(json!({"callback": null,
                          "reason": "the customer's level gets no call-back"})),
    }
}

async fn callbacks(State(state): State<AppState>, who: Principal) -> ApiResult {
    who.require(&[Admin, Analyst, Agent, Svc], "list call-backs")?;
    let mut open = state.store.open_callbacks().await?;
    if who.role == Agent {
        let mut mine = Vec::new();
        for c in open {
            if authorize(&state, &who, &c.customer_id).await.is_ok() {
                mine.push(c);
            }
        }
        open = mine;
    }
    ok_local(&state, json!({"callbacks": open}))
}

async fn callback_done(
    State(state): State<AppState>,
    who: Principal,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult {
    let Path(id) = id?;
    who.require(&[Admin, Agent, Svc], "complete call-backs")?;
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
    body: Result<Json<SlaBody>, JsonRejection>,
) -> ApiResult {
    who.require(&[Admin, Analyst], "read the SLA report")?;
    let Json(body) = body?;
    let service = state.service()?;
    let run = latest_run(&state).await?;
    for c in &body.calls {
        authorize(&state, &who, &c.customer_id).await?;
    }
    let mut calls = Vec::with_capacity(body.calls.len());
    for (i, c) in body.calls.iter().enumerate() {
        if c.answered_at.is_some_and(|a| a < c.queued_at) {
            return Err(ApiError::invalid(format!(
                "calls[{i}]: answered_at is before queued_at"
            )));
        }
        let levels = state.store.levels_of(run, &c.customer_id).await?;
        calls.push(Call {
            customer_id: c.customer_id.clone(),
            level: service_level(&state, &levels)?,
            queued_at: c.queued_at,
            answered_at: c.answered_at,
        });
    }
    ok(json!({"ladder": service.ladder_name, "report": service.sla_report(&calls)}))
}

async fn overrides(State(state): State<AppState>, who: Principal) -> ApiResult {
    who.require(&[Admin, Analyst], "list overrides")?;
    ok(json!({"overrides": state.store.overrides().await?}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OverrideBody {
    customer_id: String,
    ladder: String,
    level: String,
    mode: Option<stratum_core::OverrideMode>,
    reason: String,
    until: Option<chrono::NaiveDate>,
    /// The customer is not in the served run yet.
    #[serde(default)]
    new_customer: bool,
}

async fn add_override(
    State(state): State<AppState>,
    who: Principal,
    body: Result<Json<OverrideBody>, JsonRejection>,
) -> ApiResult {
    who.require(&[Admin], "change overrides")?;
    let Json(b) = body?;
    let policy = &state.policy.policy;
    stratum_runner::manual::check_override(policy, &b.ladder, &b.level)?;
    stratum_runner::manual::check_customer(&state.store, policy, &b.customer_id, b.new_customer)
        .await?;
    let mode = b.mode.unwrap_or_default();
    let id = state
        .store
        .add_override(
            &NewOverride {
                customer_id: b.customer_id,
                ladder: b.ladder,
                level: b.level,
                mode,
                reason: b.reason,
                until: b.until,
            },
            &who.actor(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(json!({"id": id}))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReasonBody {
    reason: String,
}

async fn remove_override(
    State(state): State<AppState>,
    who: Principal,
    id: Result<Path<i64>, PathRejection>,
    body: Result<Json<ReasonBody>, JsonRejection>,
) -> ApiResult {
    let Path(id) = id?;
    who.require(&[Admin], "change overrides")?;
    let Json(b) = body?;
    state
        .store
        .remove_override(id, &b.reason, &who.actor())
        .await?;
    ok(json!({"removed": id}))
}

async fn inputs(State(state): State<AppState>, who: Principal) -> ApiResult {
    who.require(&[Admin, Analyst], "list manual inputs")?;
    ok(json!({"inputs": state.store.inputs().await?}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputBody {
    value: String,
    reason: String,
}

async fn set_input(
    State(state): State<AppState>,
    target: Customer,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<Json<InputBody>, JsonRejection>,
) -> ApiResult {
    let Path((customer, field)) = path?;
    let who = target.who;
    who.require(&[Admin], "change manual inputs")?;
    let Json(b) = body?;
    let policy = &state.policy.policy;
    stratum_runner::manual::check_input(policy, &field, &b.value)?;
    stratum_runner::manual::check_customer(&state.store, policy, &customer, false).await?;
    let changed = state
        .store
        .set_input(&customer, &field, &b.value, &b.reason, &who.actor())
        .await?;
    ok(json!({"customer_id": customer, "field": field, "value": b.value, "changed": changed}))
}

async fn users(State(state): State<AppState>, who: Principal) -> ApiResult {
    who.require(&[Admin], "list users")?;
    ok(json!({"users": state.store.users().await?}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserBody {
    name: String,
    role: String,
}

async fn add_user(
    State(state): State<AppState>,
    who: Principal,
    body: Result<Json<UserBody>, JsonRejection>,
) -> ApiResult {
    who.require(&[Admin], "add users")?;
    let Json(b) = body?;
    state.store.add_user(&b.name, &b.role, &who.actor()).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"name": b.name, "role": b.role})),
    )
        .into_response())
}

async fn disable_user(
    State(state): State<AppState>,
    who: Principal,
    name: Result<Path<String>, PathRejection>,
) -> ApiResult {
    who.require(&[Admin], "disable users")?;
    let Path(name) = name?;
    state
        .store
        .disable_user(&name, &who.actor())
        .await
        .map_err(not_found_as(ErrorCode::UserNotFound))?;
    ok(json!({"name": name, "disabled": true}))
}

#[derive(Deserialize)]
struct AuditQuery {
    limit: Option<i64>,
    user: Option<String>,
    customer: Option<String>,
    action: Option<String>,
    since: Option<chrono::NaiveDate>,
    until: Option<chrono::NaiveDate>,
}

async fn audit(
    State(state): State<AppState>,
    who: Principal,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> ApiResult {
    who.require(&[Admin], "read the audit log")?;
    let Query(q) = query?;
    let limit = q.limit.unwrap_or(100).clamp(1, 10_000);
    let filter = stratum_store::AuditFilter {
        actor: q.user,
        subject: q.customer,
        action: q.action,
        since: q.since,
        until: q.until,
    };
    ok(json!({"audit": state.store.audit_search(&filter, limit).await?}))
}
