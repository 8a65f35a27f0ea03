//! # stratum-server
//!
//! The REST API (`stratum serve`): customers with their current levels, history and
//! next-level gap; runs and diffs; the benefits catalog and the redemption ledger; queue
//! ordering and call-backs; the SLA report; overrides, manual inputs and users. Only this
//! crate knows HTTP: it turns requests into calls on the store, the runner and the pure
//! service rules in core, and their errors into one table of JSON error codes.
//!
//! [`app`] builds the router from a state, separate from binding a socket, so tests drive it
//! with `oneshot`.

mod access;
pub mod auth;
mod console;
pub mod error;
mod lookup;
mod openapi;
mod routes;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use chrono::{DateTime, Utc};
use stratum_core::Service;
use stratum_runner::LoadedPolicy;
use stratum_store::Store;

pub use auth::{MIN_PASSWORD_CHARS, Principal, Role, create_key, hash_password};
pub use console::{LOGIN_CSRF_COOKIE, SESSION_COOKIE};
pub use error::{ApiError, ERROR_CODES, ErrorCode};
pub use lookup::{LadderLevel, LevelTable, REFRESH_EVERY};
pub use openapi::openapi_document;
pub use routes::{ANY, Method, Route, routes};

/// The largest request body accepted.
pub const BODY_LIMIT: usize = 64 * 1024;

/// How the server bounds what clients can make it do (`stratum serve` flags; defaults here).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A client must send a request's headers within this time, or the connection is closed
    /// (also an idle kept-alive connection's next request).
    pub header_read_timeout: std::time::Duration,
    /// A request must be answered within this time (503 `timeout`); runs started through
    /// the API are exempt (they are one at a time, and stopping one half-way helps no one).
    pub request_timeout: std::time::Duration,
    /// Connections open at once; further clients wait in the listen backlog.
    pub max_connections: usize,
    /// The longest a draft simulation or a recomputed explanation may evaluate.
    pub evaluation_timeout: std::time::Duration,
    /// The memory DataFusion's operators may hold during one (bytes).
    pub evaluation_memory: usize,
    /// A console session unused this long is ended (the next page asks to sign in again).
    pub session_idle: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: std::time::Duration::from_secs(10),
            request_timeout: std::time::Duration::from_secs(60),
            max_connections: 512,
            evaluation_timeout: std::time::Duration::from_secs(50),
            evaluation_memory: 2 << 30,
            session_idle: std::time::Duration::from_secs(30 * 60),
        }
    }
}

/// What every request handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub policy: Arc<LoadedPolicy>,
    keys: Arc<auth::KeyCache>,
    lookup: Arc<lookup::Lookup>,
    /// Held while a run started through the API goes on: one at a time.
    running: Arc<tokio::sync::Mutex<()>>,
    /// The last run started from the console, with its stages as they come.
    pub(crate) console_run: Arc<std::sync::Mutex<Option<console::RunJob>>>,
    /// Held while a draft is simulated or an explanation recomputed: one at a time, since
    /// each reads every source.
    evaluating: Arc<tokio::sync::Semaphore>,
    pub(crate) limits: Limits,
    clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.store)
            .field("policy", &self.policy.path)
            .finish()
    }
}

impl AppState {
    pub fn new(store: Store, policy: LoadedPolicy) -> AppState {
        AppState {
            store,
            policy: Arc::new(policy),
            keys: Arc::default(),
            lookup: Arc::default(),
            running: Arc::default(),
            console_run: Arc::default(),
            evaluating: Arc::new(tokio::sync::Semaphore::new(1)),
            limits: Limits::default(),
            clock: Arc::new(Utc::now),
        }
    }

    /// Replaces the default limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// A turn to evaluate a policy (simulate, recomputed explain), or `busy` while another
    /// is going on. The permit moves into the evaluation, so it is held until the work
    /// stops even if the client has gone.
    pub(crate) fn evaluation_turn(&self) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
        self.evaluating.clone().try_acquire_owned().map_err(|_| {
            ApiError::new(
                ErrorCode::Busy,
                "another simulation or recomputed explanation is running; try again shortly",
            )
        })
    }

    /// Fixes "now" (quota periods, queue waits), for tests.
    pub fn with_clock(mut self, clock: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// Checks for a run newer than the one whose levels are served from memory and loads it.
    /// `serve` calls this every [`REFRESH_EVERY`]; returns whether a new run was loaded.
    pub async fn refresh(&self) -> Result<bool, stratum_store::StoreError> {
        match self
            .store
            .latest_run_id(self.policy.policy.history_name())
            .await?
        {
            Some(latest) => {
                let household = self.policy.policy.settings.household.as_deref();
                self.lookup.ensure(&self.store, latest, household).await
            }
            // Every run retired: nothing is served any more.
            None => Ok(self.lookup.clear()),
        }
    }

    /// The latest run's levels, loaded on first use.
    pub(crate) async fn level_table(&self) -> Result<Arc<LevelTable>, ApiError> {
        if let Some(table) = self.lookup.current() {
            return Ok(table);
        }
        self.refresh().await?;
        self.lookup.current().ok_or_else(|| {
            ApiError::new(
                ErrorCode::RunNotFound,
                "no run recorded yet: run `stratum run`",
            )
        })
    }

    /// Who leads whom (`[teams]`).
    pub(crate) fn teams(&self) -> &stratum_core::teams::Teams {
        &self.policy.policy.teams
    }

    /// Today in the service's time zone (UTC without one): the day call lists and reports
    /// default to.
    pub(crate) fn today(&self) -> chrono::NaiveDate {
        match self.policy.policy.service.as_ref() {
            Some(s) => self.now().with_timezone(&s.timezone).date_naive(),
            None => self.now().date_naive(),
        }
    }

    /// The ladder a customer's service level is read from: `[service] ladder`, else the
    /// policy's first (what searches and lists show beside each customer).
    pub(crate) fn service_ladder(&self) -> String {
        let policy = &self.policy.policy;
        match policy.service.as_ref() {
            Some(s) => s.ladder_name.clone(),
            None => policy.ladders[0].name.clone(),
        }
    }

    pub(crate) fn service(&self) -> Result<&Service, ApiError> {
        self.policy.policy.service.as_ref().ok_or_else(|| {
            ApiError::new(
                ErrorCode::NotFound,
                "the policy has no [service] or [benefits] section",
            )
        })
    }
}

/// The whole API.
pub fn app(state: AppState) -> Router {
    let timeout = state.limits.request_timeout;
    routes::router(&state)
        .merge(console::router())
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(axum::middleware::from_fn(move |req, next| {
            logged_with_timeout(timeout, req, next)
        }))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        // A bug in one handler answers that request with a 500 (and is logged) instead of
        // dropping the connection without an answer.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .with_state(state)
}

fn panicked(panic: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    let what = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("a panic");
    use axum::response::IntoResponse;
    ApiError::internal(format!("a request handler panicked: {what}")).into_response()
}

/// Who a request turned out to be, filled in by the key check, for the request log.
#[derive(Clone, Default)]
pub(crate) struct RequestUser(pub(crate) Arc<std::sync::OnceLock<String>>);

/// Answers `503 timeout` when a request takes longer than the limit (runs excepted), and
/// logs one line per request (target `stratum::access`): method, route, status, time and
/// user. Never the key, the query string or the body.
async fn logged_with_timeout(
    limit: std::time::Duration,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| req.uri().path().to_string());
    let user = RequestUser::default();
    req.extensions_mut().insert(user.clone());
    let exempt = method == axum::http::Method::POST && route == "/api/runs";
    let response = if exempt {
        next.run(req).await
    } else {
        match tokio::time::timeout(limit, next.run(req)).await {
            Ok(response) => response,
            Err(_) => ApiError::new(
                ErrorCode::Timeout,
                format!("the request took longer than {} seconds", limit.as_secs()),
            )
            .into_response(),
        }
    };
    tracing::info!(
        target: "stratum::access",
        %method,
        route = %route,
        status = response.status().as_u16(),
        ms = %format_args!("{:.3}", started.elapsed().as_secs_f64() * 1000.0),
        user = user.0.get().map(String::as_str).unwrap_or("-"),
    );
    response
}

/// Serves the API on `listen` until the process is stopped: at most `max_connections` at
/// once, each closed when a request's headers do not arrive within the header timeout.
pub async fn serve(state: AppState, listen: std::net::SocketAddr) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    // Load the latest run before the first request, then watch for newer ones.
    if let Err(e) = state.refresh().await {
        tracing::warn!("cannot load the latest run's levels yet: {e}");
    }
    let watcher = state.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(REFRESH_EVERY);
        loop {
            every.tick().await;
            if let Err(e) = watcher.refresh().await {
                tracing::warn!("checking for a newer run: {e}");
            }
        }
    });
    let limits = state.limits;
    tracing::info!(%listen, ?limits, "serving the API");
    let router = app(state);
    let connections = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    loop {
        // Wait for a free slot before accepting: clients beyond the limit queue in the
        // kernel's backlog instead of costing memory here.
        let permit = connections
            .clone()
            .acquire_owned()
            .await
            .expect("the connection semaphore is never closed");
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: wait a moment rather than spin.
                tracing::warn!("accepting a connection: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let router = router.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut()
                        .insert(axum::extract::ConnectInfo(peer));
                    tower::ServiceExt::oneshot(router.clone(), req.map(axum::body::Body::new))
                },
            );
            let result = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
            if let Err(e) = result {
                tracing::debug!(%peer, "connection closed: {e}");
            }
            drop(permit);
        });
    }
}
