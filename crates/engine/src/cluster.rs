//! Stage one on a DataFusion Ballista cluster, for event logs past one machine.
//!
//! Only the stage-one aggregations over Parquet event sources travel: they read the files
//! the scheduler's executors can reach (shared storage, the same path everywhere) and send
//! back one row per customer. Stage two, scoring and placement stay local, so the result is
//! the local run's. Sources the strict CSV / JSON-lines reader loaded, manual inputs and
//! sources without a time column are aggregated locally: they live in this process's memory.
//!
//! The scheduler and executors are this binary too (`stratum cluster scheduler|executor`),
//! so that they know the SQL functions stratum adds (`days_between`). Without the `cluster`
//! feature the types remain and a cluster is refused with a message saying how to build one.

use std::fmt;

use stratum_core::model::ClusterUrl;

/// Where stage one runs when not here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterTarget {
    /// A running scheduler.
    Scheduler(ClusterUrl),
    /// A scheduler and an executor started inside this process (for trying it out and tests).
    Standalone,
    /// Here, whatever the policy's `[engine] cluster` says.
    Local,
}

impl std::str::FromStr for ClusterTarget {
    type Err = String;

    fn from_str(text: &str) -> Result<ClusterTarget, String> {
        match text {
            "standalone" => Ok(ClusterTarget::Standalone),
            "local" => Ok(ClusterTarget::Local),
            url => url.parse().map(ClusterTarget::Scheduler),
        }
    }
}

impl fmt::Display for ClusterTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClusterTarget::Scheduler(url) => write!(f, "{url}"),
            ClusterTarget::Standalone => f.write_str("standalone"),
            ClusterTarget::Local => f.write_str("local"),
        }
    }
}

/// Whether this build can reach a cluster.
pub const SUPPORTED: bool = cfg!(feature = "cluster");

/// What a build without the feature says when asked for a cluster.
pub const NOT_BUILT: &str = "this stratum was built without cluster support; build it with \
     `cargo build --release -p stratum-cli --features cluster` (docs/SCALE.md)";

/// An executor's settings (`stratum cluster executor`).
#[derive(Debug, Clone)]
pub struct ExecutorSettings {
    pub scheduler: ClusterUrl,
    /// The address it listens on for the scheduler and serves results from.
    pub bind_host: String,
    pub port: u16,
    pub grpc_port: u16,
    /// Tasks it runs at once; 0: one per core.
    pub threads: usize,
    /// Where it keeps shuffle files; a temporary folder if none.
    pub work_dir: Option<String>,
}

#[cfg(feature = "cluster")]
pub use enabled::{run_executor, run_scheduler, session};

#[cfg(feature = "cluster")]
mod enabled {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use ballista::prelude::SessionContextExt;
    use ballista_core::registry::BallistaFunctionRegistry;
    use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
    use ballista_scheduler::cluster::BallistaCluster;
    use ballista_scheduler::config::SchedulerConfig;
    use ballista_scheduler::scheduler_process::start_server;
    use datafusion::execution::SessionStateBuilder;
    use datafusion::execution::context::SessionState;
    use datafusion::prelude::{SessionConfig, SessionContext};

    use super::{ClusterTarget, ExecutorSettings};
    use crate::udf::DaysBetween;

    fn with_stratum_functions(mut state: SessionState) -> datafusion::error::Result<SessionState> {
        use datafusion::execution::FunctionRegistry;
        state.register_udf(Arc::new(DaysBetween::udf()))?;
        Ok(state)
    }

    /// A session whose queries run on the cluster.
    pub async fn session(target: &ClusterTarget) -> datafusion::error::Result<SessionContext> {
        use ballista::prelude::SessionConfigExt;
        let state = SessionStateBuilder::new()
            .with_default_features()
            .with_config(SessionConfig::new_with_ballista())
            .build();
        let state = with_stratum_functions(state)?;
        match target {
            ClusterTarget::Scheduler(url) => {
                SessionContext::remote_with_state(&url.to_string(), state).await
            }
            ClusterTarget::Standalone => SessionContext::standalone_with_state(state).await,
            ClusterTarget::Local => Err(datafusion::error::DataFusionError::Internal(
                "a local run has no cluster session".into(),
            )),
        }
    }

    /// Runs a scheduler on `bind` until the process is stopped.
    pub async fn run_scheduler(bind: SocketAddr) -> Result<(), String> {
        let config = SchedulerConfig::default()
            .with_hostname(bind.ip().to_string())
            .with_port(bind.port())
            .with_override_session_builder(Arc::new(|config| {
                with_stratum_functions(ballista_core::utils::default_session_builder(config)?)
            }));
        let cluster = BallistaCluster::new_from_config(&config)
            .await
            .map_err(|e| e.to_string())?;
        start_server(cluster, bind, Arc::new(config))
            .await
            .map_err(|e| e.to_string())
    }

    /// Runs an executor until the process is stopped or its scheduler goes away.
    pub async fn run_executor(settings: ExecutorSettings) -> Result<(), String> {
        let mut functions = BallistaFunctionRegistry::default();
        let days_between = Arc::new(DaysBetween::udf());
        functions
            .scalar_functions
            .insert(days_between.name().to_string(), days_between);
        let defaults = ExecutorProcessConfig::default();
        let config = ExecutorProcessConfig {
            bind_host: settings.bind_host.clone(),
            external_host: Some(settings.bind_host),
            port: settings.port,
            grpc_port: settings.grpc_port,
            scheduler_host: settings.scheduler.host,
            scheduler_port: settings.scheduler.port,
            scheduler_connect_timeout_seconds: 10,
            vcores: if settings.threads == 0 {
                defaults.vcores
            } else {
                settings.threads
            },
            work_dir: settings.work_dir,
            print_thread_info: false,
            override_function_registry: Some(Arc::new(functions)),
            ..defaults
        };
        start_executor_process(Arc::new(config))
            .await
            .map_err(|e| e.to_string())
    }
}
