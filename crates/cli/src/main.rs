//! The `stratum` command: `init`, `check`, `run`, `explain`, `gen`, and over the run history
//! `migrate`, `runs`, `history`, `diff`, `simulate`, `report`, `override`, `input`, `tag`,
//! `audit` (see `kept.rs`).
//!
//! Arguments are parsed in two phases (clap's raw arguments, then validated settings), and
//! errors map to exit codes: 0 success, 1 the policy or the data is wrong, 2 bad usage,
//! 3 an internal error.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use stratum_core::{LadderSummary, fmt_num};
use stratum_engine::BadRows;
use stratum_runner::{Progress, RunError, RunOptions};
use stratum_store::{Store, StoreError};

/// `println!` that returns the write's error instead of panicking, so that a closed pipe
/// (`stratum report | head`) ends the command quietly (see `main`).
macro_rules! out {
    () => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock())?
    }};
    ($($arg:tt)+) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)+)?
    }};
}

/// `print!`, likewise.
macro_rules! out_part {
    ($($arg:tt)+) => {{
        use std::io::Write as _;
        write!(std::io::stdout().lock(), $($arg)+)?
    }};
}

mod ballista;
mod cluster;
mod clv;
mod kept;
mod malloc;
mod pipeline;
mod service;
mod settings;

use settings::Settings;

#[derive(Parser, Debug)]
#[command(
    name = "stratum",
    version,
    about = "Customer tiering from a declarative policy over your own event data"
)]
struct Cli {
    /// Workspace folder (holds stratum.toml)
    #[arg(short = 'C', long = "dir", global = true, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Policy file (default: DIR/stratum.toml)
    #[arg(long, global = true, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// History database: postgres://user:pass@host/db or sqlite://FILE (default:
    /// sqlite://DIR/stratum.db, created on first use)
    #[arg(long, global = true, env = "STRATUM_DATABASE_URL", value_name = "URL")]
    database: Option<String>,
    /// Who is acting, recorded with runs and changes (default: $USER)
    #[arg(long, global = true, env = "STRATUM_USER", value_name = "NAME")]
    by: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
enum OnBadRows {
    /// Stop at the first bad row, naming file, line and column
    Fail,
    /// Keep going and write every bad row with its reason to rejects.csv
    Quarantine,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
enum GenFormat {
    Parquet,
    Csv,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a demo workspace: generated data and example policies for every domain example
    Init(InitArgs),
    /// Validate and lint a policy (exit 0 clean or warnings only, 1 errors)
    Check(CheckArgs),
    /// Evaluate every ladder for every customer and write the outputs
    Run(RunArgs),
    /// Explain one customer: metrics, score contributions, placements, next-level gaps
    Explain(ExplainArgs),
    /// Apply pending schema migrations to the history database
    Migrate,
    #[command(flatten)]
    Kept(kept::KeptCommand),
    #[command(flatten)]
    Service(service::ServiceCommand),
    #[command(flatten)]
    Clv(clv::ClvCommand),
    #[command(flatten)]
    Pipeline(pipeline::PipelineCommand),
    /// k-means over a CSV file's columns: inertia and silhouette per k, sizes and centres,
    /// each row's cluster (to choose features, transforms and k for a cluster ladder)
    Cluster(cluster::ClusterArgs),
    /// A DataFusion Ballista scheduler or executor for `run --cluster` (docs/SCALE.md)
    #[command(subcommand)]
    Ballista(ballista::BallistaCommand),
    /// Generate benchmark-size data
    Gen(GenArgs),
}

/// `stratum init`.
#[derive(clap::Args, Debug)]
struct InitArgs {
    dir: PathBuf,
    /// Number of demo customers
    #[arg(long, default_value_t = 2000)]
    customers: usize,
    /// Overwrite an existing workspace
    #[arg(long)]
    force: bool,
}

/// `stratum check`.
#[derive(clap::Args, Debug)]
struct CheckArgs {
    /// Policy file (default: the workspace's stratum.toml)
    policy_file: Option<PathBuf>,
}

/// `stratum run`.
#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Evaluation date, YYYY-MM-DD (default: the policy's as_of, else today)
    #[arg(long)]
    as_of: Option<String>,
    /// Output folder (default: DIR/out)
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "fail")]
    on_bad_rows: OnBadRows,
    /// Rows of a source that may be rejected in quarantine before the run stops: a share
    /// ("1%", the default, or the policy's max_rejects) or a number of rows
    #[arg(long, value_name = "LIMIT", value_parser = parse_reject_limit)]
    max_rejects: Option<stratum_core::RejectLimit>,
    /// Run although a source has no rows or far fewer than at the last recorded run
    /// (more than the policy's max_shrink, default 50%); recorded with the run
    #[arg(long)]
    allow_shrink: bool,
    /// Accept an as-of date more than a day after today (a run dated ahead is compared
    /// and held against as if it were the latest)
    #[arg(long)]
    allow_future_as_of: bool,
    /// Also write metrics.csv (every metric and score per customer) for spreadsheets
    #[arg(long)]
    metrics_csv: bool,
    /// Query threads (default: one per core)
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Run stage one's aggregations over Parquet event sources on a Ballista cluster:
    /// df://host:port (a scheduler), standalone (one started in this process), or local
    /// (here, whatever the policy's [engine] cluster says); needs --features cluster
    #[arg(long, value_name = "URL")]
    cluster: Option<stratum_engine::cluster::ClusterTarget>,
    /// Print the SQL the run executes, and stop
    #[arg(long)]
    show_sql: bool,
    /// Do not record the run in the history database
    #[arg(long)]
    no_record: bool,
}

/// `stratum explain`.
#[derive(clap::Args, Debug)]
struct ExplainArgs {
    customer_id: String,
    #[arg(long)]
    as_of: Option<String>,
    #[arg(long, value_enum, default_value = "fail")]
    on_bad_rows: OnBadRows,
}

/// `stratum gen`.
#[derive(clap::Args, Debug)]
struct GenArgs {
    #[arg(long)]
    customers: usize,
    #[arg(long)]
    transactions: usize,
    /// Invoices (default: a tenth of the transactions)
    #[arg(long)]
    invoices: Option<usize>,
    #[arg(long, value_enum, default_value = "parquet")]
    format: GenFormat,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    dir: PathBuf,
}

/// Progress on a terminal: a spinner; elsewhere: plain lines on stderr.
enum Reporter {
    Bar(ProgressBar),
    Lines,
}

impl Reporter {
    fn new() -> Self {
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed}] {msg}")
                    .expect("valid template"),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            Reporter::Bar(bar)
        } else {
            Reporter::Lines
        }
    }
    fn finish(&self) {
        if let Reporter::Bar(b) = self {
            b.finish_and_clear();
        }
    }
}

impl Progress for Reporter {
    fn stage(&mut self, message: &str) {
        match self {
            Reporter::Bar(b) => b.set_message(message.to_string()),
            Reporter::Lines => eprintln!("stratum: {message}"),
        }
    }
}

/// After a recomputed explanation: where the served run recorded the customer when that
/// differs, and the manual changes made since that apply from the next run, so the CLI and
/// the API never leave one customer with two unexplained levels.
async fn print_recorded(
    store: &Store,
    loaded: &stratum_runner::LoadedPolicy,
    customer_id: &str,
    explanation: &stratum_core::CustomerExplanation,
) -> Result<()> {
    let Some(run_id) = store.latest_run_id(loaded.policy.history_name()).await? else {
        return Ok(());
    };
    let run = store.run(run_id).await?;
    let recorded = store.levels_of(run_id, customer_id).await?;
    let differs: Vec<String> = explanation
        .placements
        .iter()
        .filter_map(|p| {
            let r = recorded.iter().find(|r| r.ladder == p.ladder)?;
            (r.level != p.level).then(|| {
                format!(
                    "  {}: {} in the run, {} recomputed now",
                    p.ladder, r.level, p.level
                )
            })
        })
        .collect();
    let pending = stratum_runner::pending_changes(store, &loaded.policy, &run, customer_id).await?;
    if differs.is_empty() && pending.is_empty() {
        return Ok(());
    }
    out!(
        "\nrecorded: run #{} as of {} (what lookups and the API serve until the next run)",
        run.id,
        run.as_of
    );
    for d in differs {
        out!("{d}");
    }
    for p in pending {
        out!(
            "  pending from the next run: override #{} ({} {} on {}), {} by {} at {}",
            p.override_id,
            p.mode,
            p.level,
            p.ladder,
            p.change,
            p.by,
            p.at
        );
    }
    Ok(())
}

/// Whether writing to stdout failed because its reader went away.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// An error and its causes, each cause once: library errors that wrap another usually
/// repeat its text already (`#[error("{0}")]`), and anyhow's `{:#}` would print it twice.
fn error_text(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
    }
    text
}

/// Stack of every runtime thread (tokio's default is 2 MiB).
const THREAD_STACK_BYTES: usize = 16 << 20;

fn parse_reject_limit(s: &str) -> Result<stratum_core::RejectLimit, String> {
    s.parse()
}

fn bad_rows(v: OnBadRows) -> BadRows {
    match v {
        OnBadRows::Fail => BadRows::Fail,
        OnBadRows::Quarantine => BadRows::Quarantine,
    }
}

/// A cluster ladder's centres, in the features' own units, under its level table.
fn print_clusters(c: &stratum_core::evaluate::ClusterSummary, width: usize) -> Result<()> {
    let widths: Vec<usize> = c.features.iter().map(|f| f.len().max(10)).collect();
    let matched = c.clusters.iter().any(|k| k.moved.is_some());
    let mut head = format!("  {:<width$}", "centres");
    for (f, w) in c.features.iter().zip(&widths) {
        head.push_str(&format!("  {f:>w$}"));
    }
    if matched {
        head.push_str("  moved (sd)");
    }
    out!("{head}");
    let rows = c
        .clusters
        .iter()
        .map(|k| (k.level.as_str(), &k.centre))
        .chain([("all", &c.mean)]);
    let moved = c.clusters.iter().map(|k| k.moved).chain([None]);
    for ((name, centre), moved) in rows.zip(moved) {
        let mut line = format!("  {name:<width$}");
        for (v, w) in centre.iter().zip(&widths) {
            line.push_str(&format!(
                "  {:>w$}",
                fmt_num(stratum_core::frame::round4(*v))
            ));
        }
        if let Some(m) = moved {
            line.push_str(&format!("  {m:>10.3}"));
        }
        out!("{line}");
    }
    if !c.choices.is_empty() {
        let tried: Vec<String> = c
            .choices
            .iter()
            .map(|k| {
                let mark = if k.k == c.clusters.len() {
                    " (chosen)"
                } else {
                    ""
                };
                format!("{}: {:.3}{mark}", k.k, k.silhouette)
            })
            .collect();
        out!("  k by silhouette: {}", tried.join(", "));
    }
    let imputed = match c.imputed {
        0 => String::new(),
        n => format!(
            ", {} with a median for a missing feature",
            fmt_num(n as f64)
        ),
    };
    out!(
        "  k-means: {} clusters, inertia {}, {} iterations{imputed}",
        c.clusters.len(),
        fmt_num(stratum_core::frame::round4(c.inertia)),
        c.iterations
    );
    Ok(())
}

fn print_ladder(s: &LadderSummary) -> Result<()> {
    let title = s
        .title
        .as_deref()
        .map(|t| format!(" — {t}"))
        .unwrap_or_default();
    out!("\nladder {}{title}", s.ladder);
    let value = s.value_name.as_deref();
    let width = s
        .rows
        .iter()
        .map(|r| r.level.len())
        .max()
        .unwrap_or(5)
        .max(5);
    match value {
        Some(v) => out!(
            "  {:<width$}  {:>10}  {:>7}  {:>16}  {:>7}",
            "level",
            "customers",
            "share",
            v,
            "share"
        ),
        None => out!("  {:<width$}  {:>10}  {:>7}", "level", "customers", "share"),
    }
    for r in &s.rows {
        let share = if r.level == stratum_core::evaluate::NOT_APPLICABLE {
            "-".to_string()
        } else {
            format!("{:.1}%", r.share * 100.0)
        };
        match value {
            Some(_) => out!(
                "  {:<width$}  {:>10}  {:>7}  {:>16}  {:>7}",
                r.level,
                fmt_num(r.count as f64),
                share,
                fmt_num(r.value),
                r.value_share
                    .map(|v| format!("{:.1}%", v * 100.0))
                    .unwrap_or_else(|| "-".into())
            ),
            None => out!(
                "  {:<width$}  {:>10}  {:>7}",
                r.level,
                fmt_num(r.count as f64),
                share
            ),
        }
    }
    if let Some(c) = &s.clusters {
        print_clusters(c, width)?;
    }
    if let (Some(p), Some(v)) = (s.pareto_top20, value) {
        out!(
            "  Pareto: the top 20% of customers by {v} hold {:.1}% of it",
            p * 100.0
        );
    }
    Ok(())
}

async fn run_command(command: &Command, settings: &Settings) -> Result<ExitCode> {
    match command {
        Command::Init(args) => init(args).await,
        Command::Check(args) => check(args, settings).await,
        Command::Run(args) => run(args, settings).await,
        Command::Explain(args) => explain(args, settings).await,
        Command::Migrate => kept::migrate(settings).await,
        Command::Kept(k) => kept::run(settings, k).await,
        Command::Service(s) => service::run(settings, s).await,
        Command::Clv(c) => clv::run(settings, c).await,
        Command::Pipeline(p) => pipeline::run(settings, p).await,
        Command::Cluster(args) => cluster::run(args),
        Command::Ballista(b) => ballista::run(b).await,
        Command::Gen(args) => generate(args).await,
    }
}

async fn init(args: &InitArgs) -> Result<ExitCode> {
    let InitArgs {
        dir,
        customers,
        force,
    } = args;
    let report = stratum_demo::init(dir, *customers, *force)
        .with_context(|| format!("creating {}", dir.display()))?;
    out!("created demo workspace {}", dir.display());
    for f in &report.files {
        out!("  {}", f.display());
    }
    out!("\nnext: stratum -C {} run", dir.display());
    Ok(ExitCode::SUCCESS)
}

async fn check(args: &CheckArgs, settings: &Settings) -> Result<ExitCode> {
    let CheckArgs { policy_file } = args;
    let path = settings.policy_path(policy_file.as_deref());
    let report = stratum_runner::check(&path, &Default::default()).await?;
    for d in &report.diagnostics {
        out!("{d}\n");
    }
    for line in &report.windows {
        out!("{line}");
    }
    if !report.windows.is_empty() {
        out!();
    }
    let errors = report.diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = report.diagnostics.len() - errors;
    out!(
        "{}: {errors} error(s), {warnings} warning(s)",
        path.display()
    );
    Ok(if errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

async fn run(args: &RunArgs, settings: &Settings) -> Result<ExitCode> {
    let RunArgs {
        as_of,
        out,
        on_bad_rows,
        max_rejects,
        allow_shrink,
        allow_future_as_of,
        metrics_csv,
        threads,
        cluster,
        show_sql,
        no_record,
    } = args;
    let path = settings.policy_path(None);
    let loaded = stratum_runner::load_policy(&path)?;
    let options = RunOptions {
        as_of: as_of.clone(),
        out_dir: out.clone(),
        on_bad_rows: bad_rows(*on_bad_rows),
        target_partitions: *threads,
        recorded_by: settings.actor.clone(),
        guard: stratum_runner::GuardOptions {
            max_rejects: *max_rejects,
            allow_shrink: *allow_shrink,
        },
        allow_future_as_of: *allow_future_as_of,
        memory_limit: None,
        metrics_csv: *metrics_csv,
        cluster: cluster.clone(),
    };
    if *show_sql {
        out!("{}", stratum_runner::show_sql(&loaded, &options).await?);
        return Ok(ExitCode::SUCCESS);
    }
    let store = if *no_record {
        None
    } else {
        Some(settings.open_store().await?)
    };
    let mut reporter = Reporter::new();
    let outcome = stratum_runner::run(&loaded, &options, store.as_ref(), &mut reporter).await;
    reporter.finish();
    let outcome = outcome?;
    for w in &outcome.warnings {
        eprintln!("{w}\n");
    }
    out!(
        "policy {} as of {}: {} customers",
        path.display(),
        outcome.as_of,
        fmt_num(outcome.customers as f64)
    );
    for s in &outcome.sources {
        out!(
            "  {:<14} {:<28} read {} = accepted {} + rejected {}",
            s.name,
            s.file,
            fmt_num(s.stats.read as f64),
            fmt_num(s.stats.accepted as f64),
            fmt_num(s.stats.rejected as f64)
        );
    }
    for o in &outcome.orphans {
        out!(
            "  note: {} rows of `{}` name {} customer id(s) missing from customers; they count for no one",
            fmt_num(o.rows as f64),
            o.source,
            fmt_num(o.customer_ids as f64)
        );
    }
    if let Some(fit) = &outcome.lifetime {
        out!("\nlifetime models");
        for line in fit.describe() {
            out!("  {line}");
        }
    }
    for l in &outcome.ladders {
        print_ladder(l)?;
    }
    out!("\nwrote {}", outcome.files.assignments_parquet.display());
    out!("wrote {}", outcome.files.assignments_csv.display());
    out!("wrote {}", outcome.files.metrics_parquet.display());
    if let Some(m) = &outcome.files.metrics_csv {
        out!("wrote {}", m.display());
    }
    if let Some(r) = &outcome.files.rejects_csv {
        out!("wrote {} (rejected rows with reasons)", r.display());
    }
    if let (Some(id), Some(store)) = (outcome.run_id, &store) {
        match outcome.previous_run {
            Some(p) => out!(
                "recorded run #{id} in {} (holds continue from run #{p}; `stratum diff` compares them)",
                store.url()
            ),
            None => out!("recorded run #{id} in {}", store.url()),
        }
    }
    let timing: Vec<String> = outcome
        .timings
        .iter()
        .map(|(k, d)| format!("{k} {:.2}s", d.as_secs_f64()))
        .collect();
    eprintln!("timings: {}", timing.join(", "));
    if let Some(store) = store {
        store.close().await?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn explain(args: &ExplainArgs, settings: &Settings) -> Result<ExitCode> {
    let ExplainArgs {
        customer_id,
        as_of,
        on_bad_rows,
    } = args;
    let path = settings.policy_path(None);
    let loaded = stratum_runner::load_policy(&path)?;
    let options = RunOptions {
        as_of: as_of.clone(),
        on_bad_rows: bad_rows(*on_bad_rows),
        ..Default::default()
    };
    // With a history, the explanation shows holds and stored overrides too.
    let store = settings.open_existing_store().await?;
    let (as_of, explanation) =
        stratum_runner::explain(&loaded, &options, store.as_ref(), customer_id).await?;
    out!("as of {as_of}, policy {}", path.display());
    out_part!("{explanation}");
    let windows = stratum_runner::window_lines(&loaded.policy, as_of);
    if !windows.is_empty() {
        out!("\n{}", windows.join("\n"));
    }
    if let Some(store) = &store {
        print_recorded(store, &loaded, customer_id, &explanation).await?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn generate(args: &GenArgs) -> Result<ExitCode> {
    let GenArgs {
        customers,
        transactions,
        invoices,
        format,
        seed,
        dir,
    } = args;
    if *customers == 0 {
        bail!("--customers must be at least 1");
    }
    let options = stratum_demo::GenOptions {
        customers: *customers,
        transactions: *transactions,
        invoices: invoices.unwrap_or(transactions / 10),
        parquet: matches!(format, GenFormat::Parquet),
        seed: *seed,
    };
    let files = stratum_demo::generate_bench(dir, &options)
        .with_context(|| format!("writing {}", dir.display()))?;
    for f in files {
        out!("wrote {}", f.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = Settings::resolve(&cli);
    let serving = matches!(
        cli.command,
        Command::Service(service::ServiceCommand::Serve { .. })
    );
    // `serve` logs a line per request and which run it serves unless STRATUM_LOG says
    // otherwise; batch commands only errors (libraries' warnings, e.g. sqlx's slow
    // statements at a million customers, are noise on a terminal).
    let filter = match std::env::var("STRATUM_LOG") {
        Ok(f) if !f.is_empty() => tracing_subscriber::EnvFilter::new(f),
        _ if serving => {
            tracing_subscriber::EnvFilter::new("error,stratum::access=info,stratum_server=info")
        }
        _ => tracing_subscriber::EnvFilter::new("error"),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    if !serving {
        malloc::one_arena();
    }
    // Deep (but within the policy's limits) expressions are planned recursively by
    // DataFusion; a roomy stack keeps every thread well clear of an overflow.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(THREAD_STACK_BYTES)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(3);
        }
    };
    match runtime.block_on(run_command(&cli.command, &settings)) {
        Ok(code) => code,
        // `stratum report | head` closes stdout early: end quietly, as other command-line
        // tools do (every line goes out through `out!`, which returns the write's error).
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            let user = err
                .downcast_ref::<RunError>()
                .map(RunError::is_user_error)
                .or_else(|| {
                    err.downcast_ref::<StoreError>()
                        .map(StoreError::is_user_error)
                });
            eprintln!("error: {}", error_text(&err));
            match user {
                Some(false) => ExitCode::from(3),
                _ => ExitCode::from(1),
            }
        }
    }
}
