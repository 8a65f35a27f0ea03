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

pub mod auth;
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

pub use auth::{Principal, Role, create_key};
pub use error::{ApiError, ERROR_CODES};
pub use lookup::{LadderLevel, LevelTable, REFRESH_EVERY};
pub use openapi::{ROUTES, openapi_document};

/// The largest request body accepted.
pub const BODY_LIMIT: usize = 64 * 1024;

/// What every request handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub policy: Arc<LoadedPolicy>,
    keys: Arc<auth::KeyCache>,
    lookup: Arc<lookup::Lookup>,
    /// Held while a run started through the API goes on: one at a time.
    running: Arc<tokio::sync::Mutex<()>>,
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
            clock: Arc::new(Utc::now),
        }
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
            Some(latest) => self.lookup.ensure(&self.store, latest).await,
            None => Ok(false),
        }
    }

    /// The latest run's levels, loaded on first use.
    pub(crate) async fn level_table(&self) -> Result<Arc<LevelTable>, ApiError> {
        if let Some(table) = self.lookup.current() {
            return Ok(table);
        }
        self.refresh().await?;
        self.lookup
            .current()
            .ok_or_else(|| ApiError::new("run_not_found", "no run recorded yet: run `stratum run`"))
    }

    pub(crate) fn service(&self) -> Result<&Service, ApiError> {
        self.policy.policy.service.as_ref().ok_or_else(|| {
            ApiError::new(
                "not_found",
                "the policy has no [service] or [benefits] section",
            )
        })
    }
}

/// The whole API.
pub fn app(state: AppState) -> Router {
    routes::router()
        .fallback(routes::not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// Serves the API on `listen` until the process is stopped.
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
    tracing::info!(%listen, "serving the API");
    axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .await
}
