//! The API's routes, one module per resource, each with its table of [`Route`]s: method,
//! path, summary and the roles allowed. The router, the role check and the OpenAPI document
//! are all built from those tables, so a route cannot be served without its roles or
//! documented with others. A refused caller is refused before its handler runs, and for
//! agents every customer a request names goes through `access` first, so a refused request
//! learns nothing.

pub(crate) mod benefits;
pub(crate) mod customers;
mod desk;
mod extract;
pub(crate) mod manual;
pub(crate) mod pipeline;
pub(crate) mod runs;
mod users;

use axum::Json;
use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::middleware::Next;
use axum::response::IntoResponse;
use axum::routing::{MethodFilter, MethodRouter};
use chrono::DateTime;
use serde_json::Value;
use stratum_store::CurrentLevel;

use crate::auth::{Principal, Role};
use crate::error::{ApiError, ErrorCode};
use crate::{AppState, openapi};

/// What the resource modules share.
mod prelude {
    pub(crate) use axum::Json;
    pub(crate) use axum::extract::State;
    pub(crate) use axum::http::{HeaderMap, StatusCode};
    pub(crate) use axum::response::IntoResponse;
    pub(crate) use axum::routing::on;
    pub(crate) use chrono::{DateTime, Utc};
    pub(crate) use serde::Deserialize;
    pub(crate) use serde_json::Value;

    pub(crate) use super::extract::{AppJson, AppPath, AppQuery};
    pub(crate) use super::{
        ANY, ApiResult, Method, Route, current_levels, latest_run, local_times, not_found_as, ok,
        ok_local, service_level,
    };
    pub(crate) use crate::AppState;
    pub(crate) use crate::access::{
        Customer, authorize, authorize_in, authorize_rep, visible_owners,
    };
    pub(crate) use crate::auth::{Principal, Role};
    pub(crate) use crate::error::{ApiError, ErrorCode};
}

pub(crate) type ApiResult = Result<axum::response::Response, ApiError>;

/// An HTTP method a route answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
        }
    }
    fn filter(self) -> MethodFilter {
        match self {
            Method::Get => MethodFilter::GET,
            Method::Post => MethodFilter::POST,
            Method::Put => MethodFilter::PUT,
        }
    }
}

/// A quota, or what is left of one: a number of units, or `"unlimited"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Units {
    Count(u32),
    Unlimited,
}

impl Units {
    /// A level's quota (a level not eligible has none: callers leave those benefits out).
    pub(crate) fn of(quota: stratum_core::Quota) -> Units {
        match quota {
            stratum_core::Quota::Limited(n) => Units::Count(n),
            _ => Units::Unlimited,
        }
    }

    /// What is left of `quota` once `used` units are used.
    pub(crate) fn left(quota: stratum_core::Quota, used: u32) -> Units {
        match quota {
            stratum_core::Quota::Limited(n) => Units::Count(n.saturating_sub(used)),
            _ => Units::Unlimited,
        }
    }
}

impl std::fmt::Display for Units {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Units::Count(n) => write!(f, "{}", stratum_core::fmt_num(f64::from(*n))),
            Units::Unlimited => f.write_str("unlimited"),
        }
    }
}

impl serde::Serialize for Units {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Units::Count(n) => serializer.serialize_u32(*n),
            Units::Unlimited => serializer.serialize_str("unlimited"),
        }
    }
}

/// Every role: a route any caller with a key may use.
pub const ANY: &[Role] = &Role::ALL;

/// One route: what it is, who may call it, and its handler.
#[derive(Debug)]
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub summary: &'static str,
    /// The roles allowed; `None`: open, no key needed.
    pub roles: Option<&'static [Role]>,
    /// The route names customers (path or body): an agent may use it only for its own.
    pub own_customers: bool,
    /// What a refused caller tried, for the 403 message ("the agent role may not …").
    pub does: &'static str,
    handler: fn(MethodFilter) -> MethodRouter<AppState>,
}

impl Route {
    /// The roles as docs/API.md and the OpenAPI document state them:
    /// `admin, analyst, agent (own customers), service`, or `open`.
    pub fn roles_text(&self) -> String {
        match self.roles {
            None => "open".to_string(),
            Some(roles) => roles
                .iter()
                .map(|r| match r {
                    Role::Agent if self.own_customers => "agent (own customers)".to_string(),
                    r => r.to_string(),
                })
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

const META: &[Route] = &[
    Route {
        method: Method::Get,
        path: "/health",
        summary: "Liveness; needs no key",
        roles: None,
        own_customers: false,
        does: "check liveness",
        handler: |m| axum::routing::on(m, health),
    },
    Route {
        method: Method::Get,
        path: "/openapi.json",
        summary: "This document",
        roles: Some(ANY),
        own_customers: false,
        does: "read the API document",
        handler: |m| axum::routing::on(m, openapi_json),
    },
];

/// Every route of the API, resource by resource.
pub fn routes() -> impl Iterator<Item = &'static Route> {
    [
        META,
        customers::ROUTES,
        benefits::ROUTES,
        runs::ROUTES,
        desk::ROUTES,
        manual::ROUTES,
        pipeline::ROUTES,
        users::ROUTES,
    ]
    .into_iter()
    .flatten()
}

/// The router of every route, each behind the role check its table row names.
pub(crate) fn router(state: &AppState) -> Router<AppState> {
    routes().fold(Router::new(), |router, route| {
        let endpoint = (route.handler)(route.method.filter()).route_layer(
            axum::middleware::from_fn_with_state(
                state.clone(),
                move |State(state): State<AppState>, req: Request, next: Next| {
                    allowed(route, state, req, next)
                },
            ),
        );
        router.route(route.path, endpoint)
    })
}

/// The role check of [`Route::roles`]: authenticates the caller, refuses a role the route
/// does not allow, and hands the [`Principal`] to the handler.
async fn allowed(
    route: &'static Route,
    state: AppState,
    req: Request,
    next: Next,
) -> axum::response::Response {
    let Some(roles) = route.roles else {
        return next.run(req).await;
    };
    let (mut parts, body) = req.into_parts();
    let who = match Principal::from_request_parts(&mut parts, &state).await {
        Ok(who) => who,
        Err(e) => return e.into_response(),
    };
    if let Err(refused) = who.require(roles, route.does) {
        return refused.into_response();
    }
    parts.extensions.insert(who);
    next.run(Request::from_parts(parts, body)).await
}

#[derive(serde::Serialize)]
struct Health {
    status: &'static str,
}

async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

async fn openapi_json() -> Json<Value> {
    Json(openapi::openapi_document())
}

pub(crate) fn ok(value: impl serde::Serialize) -> ApiResult {
    Ok(Json(value).into_response())
}

/// An answer whose times are in the service's time zone, with its offset: a call centre in
/// Shanghai sends `+08:00` and gets `+08:00` back. Every RFC 3339 string under a key ending
/// in `_at`, or named `at`, `now`, `period_start` or `period_end`, is converted; without a
/// `[service]` section times stay in UTC.
pub(crate) fn local_times(state: &AppState, value: impl serde::Serialize) -> Value {
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

pub(crate) fn ok_local(state: &AppState, value: impl serde::Serialize) -> ApiResult {
    ok(local_times(state, value))
}

/// Answers the store's "not found" with a more specific code.
pub(crate) fn not_found_as(code: ErrorCode) -> impl Fn(stratum_store::StoreError) -> ApiError {
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

/// The latest run of the server's policy.
pub(crate) async fn latest_run(state: &AppState) -> Result<i64, ApiError> {
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

pub(crate) async fn current_levels(
    state: &AppState,
    customer: &str,
) -> Result<Vec<CurrentLevel>, ApiError> {
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
pub(crate) fn service_level(
    state: &AppState,
    levels: &[CurrentLevel],
) -> Result<Option<usize>, ApiError> {
    let service = state.service()?;
    Ok(levels
        .iter()
        .find(|l| l.ladder == service.ladder_name)
        .and_then(|l| service.level_index(&l.level)))
}

/// A body that may be left out: empty means the defaults.
pub(crate) fn optional_json<T: serde::de::DeserializeOwned + Default>(
    body: &[u8],
) -> Result<T, ApiError> {
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
pub(crate) async fn evaluation<T: Send + 'static>(
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

/// A sum of money as the CLI prints it: to the cent (a float sum of a million amounts ends
/// in `…0000006`).
pub(crate) fn money(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// A ladder's count and value pyramids, as runs and simulations answer them.
#[derive(serde::Serialize)]
pub(crate) struct LadderPyramid<'a> {
    ladder: &'a str,
    value: Option<&'a str>,
    pareto_top20: Option<f64>,
    levels: Vec<PyramidLevel<'a>>,
    /// A cluster ladder's centres (in the features' units), inertia and iterations.
    #[serde(skip_serializing_if = "Option::is_none")]
    clusters: Option<&'a stratum_core::evaluate::ClusterSummary>,
}

#[derive(serde::Serialize)]
struct PyramidLevel<'a> {
    level: &'a str,
    customers: usize,
    share: f64,
    value: f64,
    value_share: Option<f64>,
}

pub(crate) fn ladder_summary(l: &stratum_core::LadderSummary) -> LadderPyramid<'_> {
    LadderPyramid {
        ladder: &l.ladder,
        value: l.value_name.as_deref(),
        pareto_top20: l.pareto_top20,
        clusters: l.clusters.as_ref(),
        levels: l
            .rows
            .iter()
            .map(|r| PyramidLevel {
                level: &r.level,
                customers: r.count,
                share: r.share,
                value: money(r.value),
                value_share: r.value_share,
            })
            .collect(),
    }
}
