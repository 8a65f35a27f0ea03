//! `stratum ballista scheduler|executor`: the processes of a Ballista cluster that
//! `stratum run --cluster` sends stage one to. They are this binary so that they know the SQL
//! functions stratum adds; see docs/SCALE.md for a cluster of several machines.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::{Result, bail};
use stratum_core::model::ClusterUrl;
use stratum_engine::cluster;
#[cfg(feature = "cluster")]
use stratum_engine::cluster::ExecutorSettings;

#[derive(clap::Subcommand, Debug)]
pub enum BallistaCommand {
    /// Run a scheduler: it plans the queries `run --cluster df://HOST:PORT` sends and hands
    /// their tasks to the executors that registered with it
    Scheduler {
        /// Address to listen on
        #[arg(long, default_value = "127.0.0.1:50050")]
        bind: SocketAddr,
    },
    /// Run an executor: it registers with the scheduler and runs the tasks it is given,
    /// reading the Parquet files by the paths the client registered (shared storage)
    Executor {
        /// The scheduler, df://host:port
        #[arg(long, default_value = "df://127.0.0.1:50050")]
        scheduler: ClusterUrl,
        /// Host to listen on (and that the scheduler reaches it by)
        #[arg(long, default_value = "127.0.0.1")]
        bind_host: String,
        /// Port serving task results (Arrow Flight)
        #[arg(long, default_value_t = 50051)]
        port: u16,
        /// Port taking tasks from the scheduler (gRPC)
        #[arg(long, default_value_t = 50052)]
        grpc_port: u16,
        /// Tasks at once (default: one per core)
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Folder for shuffle files (default: a temporary folder)
        #[arg(long)]
        work_dir: Option<String>,
    },
}

pub async fn run(command: &BallistaCommand) -> Result<ExitCode> {
    if !cluster::SUPPORTED {
        bail!("{}", cluster::NOT_BUILT);
    }
    serve(command).await
}

#[cfg(feature = "cluster")]
async fn serve(command: &BallistaCommand) -> Result<ExitCode> {
    match command {
        BallistaCommand::Scheduler { bind } => {
            eprintln!("Ballista scheduler listening on {bind} (df://{bind})");
            cluster::run_scheduler(*bind)
                .await
                .map_err(|e| anyhow::anyhow!("scheduler on {bind}: {e}"))?;
        }
        BallistaCommand::Executor {
            scheduler,
            bind_host,
            port,
            grpc_port,
            threads,
            work_dir,
        } => {
            eprintln!(
                "Ballista executor on {bind_host}:{port} (tasks on {grpc_port}) for the scheduler {scheduler}"
            );
            cluster::run_executor(ExecutorSettings {
                scheduler: scheduler.clone(),
                bind_host: bind_host.clone(),
                port: *port,
                grpc_port: *grpc_port,
                threads: *threads,
                work_dir: work_dir.clone(),
            })
            .await
            .map_err(|e| anyhow::anyhow!("executor for {scheduler}: {e}"))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(not(feature = "cluster"))]
async fn serve(_: &BallistaCommand) -> Result<ExitCode> {
    bail!("{}", cluster::NOT_BUILT)
}
