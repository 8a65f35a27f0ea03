//! # stratum-runner
//!
//! The only crate that knows the order of the stages: read the policy, load the sources
//! (engine), compute metrics as of a date (engine), score and place (core), and write the
//! outputs. The CLI and the server call these functions; neither needs to know how a run is
//! put together.
//!
//! ## The async contract
//!
//! Every public `async fn` here returns a `Send` future that may run on any tokio runtime,
//! current-thread included, and never holds an executor thread for long: the store and
//! DataFusion are awaited; every CPU-bound stage (text parsing and model fitting in the
//! engine; scoring and placing, explanations, the output files, the metric encoding and the
//! input fingerprints here) runs on tokio's blocking pool through
//! [`blocking`](stratum_engine::blocking), the one hand-off, with owned data (the policy is
//! an `Arc`, an evaluation moves). So callers simply `.await` them — the server in its
//! handlers or in a task of its own when the work must outlive the request. Dropping a
//! future cancels what is awaited; a blocking stage under way finishes and is discarded.

mod guard;
mod history;
mod lock;
pub mod manual;
mod output;
mod pins;
pub mod pipeline;
mod previous;
mod record;
pub use record::PART_SEPARATOR;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stratum_core::diagnostic::Code;

use chrono::NaiveDate;
use stratum_core::lint::lint;
use stratum_core::{
    CustomerExplanation, Diagnostic, Diagnostics, EvalError, Inputs, LadderSummary, ManualPin,
    Policy, Prior, evaluate_with,
};
use stratum_engine::blocking::{blocking, start};
use stratum_engine::{BadRows, Engine, EngineError, EngineOptions, LoadStats, Orphans};
use stratum_store::{Store, StoreError};

pub use guard::GuardOptions;
pub use history::{
    DiffReport, KpiRow, LadderDiff, PendingChange, Simulation, diff, export_run, history,
    pending_changes, report, simulate, write_kpis, write_moves,
};
pub use output::OutputFiles;
pub use stratum_engine::blocking;

/// Why a command failed. `is_user_error` tells the policy's or data's fault from a bug.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot read policy {path}: {message}")]
    PolicyFile { path: String, message: String },
    #[error("{0}")]
    Policy(Diagnostics),
    #[error("{0}")]
    Engine(#[from] EngineError),
    #[error("{0}")]
    Eval(#[from] EvalError),
    #[error("{file}:{line}: {message}")]
    Overrides {
        file: String,
        line: u64,
        message: String,
    },
    #[error("invalid as_of date `{0}`; write YYYY-MM-DD")]
    AsOf(String),
    #[error(
        "another run is going on in this workspace ({holder}); wait for it to finish (lock {path})"
    )]
    Locked { path: String, holder: String },
    #[error("{0}")]
    NonFinite(String),
    /// Something a person entered that the policy or the served run refuses.
    #[error("{0}")]
    Refused(String),
    #[error("as_of {as_of} {why}")]
    AsOfOutOfRange { as_of: NaiveDate, why: String },
    #[error("customer `{0}` is not in the customers source")]
    UnknownCustomer(String),
    #[error("cannot write {path}: {message}")]
    Output { path: String, message: String },
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error(
        "customer `{0}` has no recorded placement in any run (`stratum runs` lists the runs; `stratum run` records one)"
    )]
    NeverPlaced(String),
    #[error("{}", match .0 {
        Some(name) => format!("policy `{name}` has no recorded run: `stratum run` records one"),
        None => "the history is empty: `stratum run` records a run".to_string(),
    })]
    EmptyHistory(Option<String>),
    #[error("policy `{0}` has only one recorded run; a diff needs two")]
    OneRun(String),
    #[error(
        "run #{run} is a run of policy `{run_policy}`, not of `{policy}`; pass --across-policies to compare runs of different policies"
    )]
    OtherPolicy {
        run: i64,
        run_policy: String,
        policy: String,
    },
    #[error(
        "run #{from} is of policy `{from_policy}` and run #{to} of `{to_policy}`; pass --across-policies to compare runs of different policies"
    )]
    PoliciesDiffer {
        from: i64,
        from_policy: String,
        to: i64,
        to_policy: String,
    },
    #[error(
        "{0}: the policy has no [churn] table; add one naming the p_alive metric (see docs/POLICY.md, \"Lifetime models\")"
    )]
    NoChurnRule(String),
    #[error("--since {since} must be before the evaluation date {as_of}")]
    SinceNotBefore { since: NaiveDate, as_of: NaiveDate },
    #[error("the owner metric `{0}` must be text (a column of the customers source)")]
    OwnerNotText(String),
    /// A bug: an invariant of the runner broke.
    #[error("internal error: {0}")]
    Internal(String),
    #[error(
        "source `{source_name}` ({file}): {rejected} of {read} rows rejected, more than the limit of {limit}; \
         the run stops so a mostly unreadable export does not become history (see rejects in the output, \
         or raise `--max-rejects` / `[policy] max_rejects`)"
    )]
    TooManyRejects {
        source_name: String,
        file: String,
        read: u64,
        rejected: u64,
        limit: stratum_core::RejectLimit,
    },
    #[error("{}", shrunk_message(.source_name, .file, *.rows, *.before, *.max_shrink))]
    Shrunk {
        source_name: String,
        file: String,
        rows: u64,
        before: Option<u64>,
        max_shrink: f64,
    },
}

fn shrunk_message(
    source: &str,
    file: &str,
    rows: u64,
    before: Option<u64>,
    max_shrink: f64,
) -> String {
    let what = match before {
        Some(b) if rows > 0 => format!(
            "has {} rows, {} at the last recorded run (down more than {}%)",
            stratum_core::fmt_num(rows as f64),
            stratum_core::fmt_num(b as f64),
            stratum_core::fmt_num(max_shrink * 100.0)
        ),
        Some(b) => format!(
            "has no rows ({} at the last recorded run)",
            stratum_core::fmt_num(b as f64)
        ),
        None => "has no rows".to_string(),
    };
    format!(
        "source `{source}` ({file}) {what}; the run stops in case the export was cut short. \
         If the data really shrank, run again with `--allow-shrink` (recorded with the run)"
    )
}

/// "metric `x` is infinite or not a number for 2 customers (C1, C2)".
fn non_finite_text(n: &stratum_engine::NonFinite) -> String {
    format!(
        "metric `{}` is infinite or not a number (an overflow, or a division by zero) for {} customer{} ({}{})",
        n.metric,
        stratum_core::fmt_num(n.customers as f64),
        if n.customers == 1 { "" } else { "s" },
        n.examples.join(", "),
        if n.customers as usize > n.examples.len() {
            ", …"
        } else {
            ""
        }
    )
}

impl RunError {
    /// The policy's, the data's or the caller's fault (exit 1, a 4xx), not a bug (exit 3, a
    /// 500). Every variant is named: a new one must be classified.
    pub fn is_user_error(&self) -> bool {
        match self {
            RunError::Engine(e) => e.is_user_error(),
            RunError::Eval(e) => e.is_user_error(),
            RunError::Store(e) => e.is_user_error(),
            RunError::PolicyFile { .. }
            | RunError::Policy(_)
            | RunError::Overrides { .. }
            | RunError::AsOf(_)
            | RunError::Locked { .. }
            | RunError::NonFinite(_)
            | RunError::Refused(_)
            | RunError::AsOfOutOfRange { .. }
            | RunError::UnknownCustomer(_)
            | RunError::TooManyRejects { .. }
            | RunError::Shrunk { .. }
            | RunError::NeverPlaced(_)
            | RunError::EmptyHistory(_)
            | RunError::OneRun(_)
            | RunError::OtherPolicy { .. }
            | RunError::PoliciesDiffer { .. }
            | RunError::NoChurnRule(_)
            | RunError::SinceNotBefore { .. }
            | RunError::OwnerNotText(_) => true,
            RunError::Output { .. } | RunError::Internal(_) => false,
        }
    }
}

/// Reports stage changes; the CLI shows them as a progress bar or plain lines. `Send`, so
/// that the runner's futures are.
pub trait Progress: Send {
    fn stage(&mut self, message: &str);
}

/// Progress that goes nowhere.
#[derive(Debug, Default)]
pub struct Quiet;
impl Progress for Quiet {
    fn stage(&mut self, _message: &str) {}
}

/// A policy read from disk, with the folder its relative paths start from.
#[derive(Debug)]
pub struct LoadedPolicy {
    /// Shared with the evaluations made of it, which move to the blocking pool.
    pub policy: Arc<Policy>,
    pub path: PathBuf,
    pub base_dir: PathBuf,
    pub text: String,
}

pub fn load_policy(path: &Path) -> Result<LoadedPolicy, RunError> {
    let text = std::fs::read_to_string(path).map_err(|e| RunError::PolicyFile {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    LoadedPolicy::from_text(path, text, base_dir)
}

impl LoadedPolicy {
    /// A policy that is not a file of its own (a draft sent to the API): `path` names it in
    /// errors, `base_dir` is where its relative source paths start.
    pub fn from_text(path: &Path, text: String, base_dir: PathBuf) -> Result<Self, RunError> {
        let display = path.display().to_string();
        let policy = Policy::from_str(&display, &text).map_err(RunError::Policy)?;
        Ok(LoadedPolicy {
            policy: Arc::new(policy),
            path: path.to_path_buf(),
            base_dir,
            text,
        })
    }
}

/// `as_of`: the flag, else the policy's, else today.
pub fn resolve_as_of(policy: &Policy, flag: Option<&str>) -> Result<NaiveDate, RunError> {
    match flag.or(policy.settings.as_of.as_deref()) {
        Some(s) => {
            NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| RunError::AsOf(s.to_string()))
        }
        None => Ok(chrono::Local::now().date_naive()),
    }
}

/// The earliest `as_of` a run takes: an earlier date is a typo, not a customer base.
pub const EARLIEST_AS_OF: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
/// Days past today an `as_of` may be without `allow_future_as_of` (time zones, a run
/// started just before midnight).
pub const FUTURE_GRACE_DAYS: u64 = 1;

/// Refuses an `as_of` before 1970 or, unless allowed, more than a day after today.
pub fn check_as_of(as_of: NaiveDate, allow_future: bool) -> Result<(), RunError> {
    let today = chrono::Local::now().date_naive();
    if as_of < EARLIEST_AS_OF {
        return Err(RunError::AsOfOutOfRange {
            as_of,
            why: format!("is before {EARLIEST_AS_OF}; check the date"),
        });
    }
    if !allow_future && as_of > today + chrono::Days::new(FUTURE_GRACE_DAYS) {
        return Err(RunError::AsOfOutOfRange {
            as_of,
            why: format!(
                "is in the future (today is {today}); a run dated ahead would be compared and held against as if it were the latest. Pass --allow-future-as-of (API: \"allow_future_as_of\": true) if you mean it"
            ),
        });
    }
    Ok(())
}

/// What `check` found.
#[derive(Debug)]
pub struct CheckReport {
    pub diagnostics: Vec<Diagnostic>,
    /// Each event metric's window as dates, when the policy compiled: the lines of
    /// [`window_lines`].
    pub windows: Vec<String>,
}

/// Each event metric's window as concrete dates, one line each, headed by the date:
/// `revenue_12m  2025-11-01 <= date < 2026-11-01`. `as_of` counts its own day.
pub fn window_lines(policy: &Policy, as_of: NaiveDate) -> Vec<String> {
    let windows = policy.metric_windows(as_of);
    if windows.is_empty() {
        return Vec::new();
    }
    let width = windows.iter().map(|(m, ..)| m.len()).max().unwrap_or(0);
    let mut lines = vec![format!(
        "metric windows as of {as_of} (the as_of day included: events before {} count):",
        as_of + chrono::Days::new(1)
    )];
    for (metric, start, end) in windows {
        lines.push(match start {
            Some(s) => format!("  {metric:<width$}  {s} <= date < {end}"),
            None => format!("  {metric:<width$}  all history, date < {end}"),
        });
    }
    lines
}

impl CheckReport {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Validates a policy and lints it; then loads its sources and plans every metric, so missing
/// files and columns are found before a run.
pub async fn check(path: &Path, options: &EngineOptions) -> Result<CheckReport, RunError> {
    let loaded = match load_policy(path) {
        Ok(l) => l,
        Err(RunError::Policy(d)) => {
            return Ok(CheckReport {
                diagnostics: d.0,
                windows: Vec::new(),
            });
        }
        Err(e) => return Err(e),
    };
    let mut diagnostics = lint(&loaded.policy);
    let as_of = resolve_as_of(&loaded.policy, None)?;
    let windows = window_lines(&loaded.policy, as_of);
    let engine = Engine::load(&loaded.policy, &loaded.base_dir, options, &mut |_| {}).await;
    let problem = match engine {
        Ok(engine) => match engine.check_unique_keys().await {
            Ok(()) => engine.validate(&loaded.policy, as_of).await.err(),
            Err(e) => Some(e),
        },
        Err(e) => Some(e),
    };
    match problem {
        Some(EngineError::User(u)) => {
            // A metric's problem is located at its expression in the policy.
            let key = match &u {
                stratum_engine::UserError::Metric { metric, .. }
                    if loaded.policy.metrics.iter().any(|m| &m.name == metric) =>
                {
                    format!("metrics.{metric}.expr")
                }
                _ => String::new(),
            };
            let mut d = Diagnostic::new(Code::Data, &key, u.to_string());
            d.location = loaded.policy.map.locate(&key);
            diagnostics.push(d);
        }
        Some(internal) => return Err(internal.into()),
        None => {}
    }
    diagnostics.sort_by_key(|d| std::cmp::Reverse(d.severity));
    Ok(CheckReport {
        diagnostics,
        windows,
    })
}

/// Options of a run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub as_of: Option<String>,
    pub out_dir: Option<PathBuf>,
    pub on_bad_rows: BadRows,
    pub target_partitions: usize,
    /// Who starts the run, recorded with it.
    pub recorded_by: String,
    /// Beyond the policy's input guards.
    pub guard: GuardOptions,
    /// Accept an `as_of` more than a day after today.
    pub allow_future_as_of: bool,
    /// See `EngineOptions::memory_limit`.
    pub memory_limit: Option<usize>,
    /// Also write `metrics.csv` beside `metrics.parquet`.
    pub metrics_csv: bool,
    /// `--cluster`: where stage one runs, over the policy's `[engine] cluster`.
    pub cluster: Option<stratum_engine::cluster::ClusterTarget>,
}

/// The embedded default history database of a workspace folder.
pub fn default_database_url(workspace: &Path) -> String {
    format!(
        "sqlite://{}?mode=rwc",
        workspace.join("stratum.db").display()
    )
}

impl RunOptions {
    fn engine_options(&self) -> EngineOptions {
        EngineOptions {
            on_bad_rows: self.on_bad_rows,
            target_partitions: self.target_partitions,
            inputs: Vec::new(),
            memory_limit: self.memory_limit,
            cluster: self.cluster.clone(),
        }
    }
}

/// Per source: rows read, accepted, rejected.
#[derive(Debug, Clone)]
pub struct SourceSummary {
    pub name: String,
    pub file: String,
    pub stats: LoadStats,
}

/// Everything a run reports.
#[derive(Debug)]
pub struct RunOutcome {
    pub as_of: NaiveDate,
    pub customers: usize,
    pub sources: Vec<SourceSummary>,
    pub orphans: Vec<Orphans>,
    pub warnings: Vec<Diagnostic>,
    pub ladders: Vec<LadderSummary>,
    pub files: OutputFiles,
    pub timings: Vec<(String, Duration)>,
    /// The run's id in the history, when recorded.
    pub run_id: Option<i64>,
    /// The run the holds continued from.
    pub previous_run: Option<i64>,
    /// The lifetime models, when the policy has lifetime metrics.
    pub lifetime: Option<stratum_core::clv::LifetimeFit>,
}

struct Evaluated {
    evaluation: stratum_core::Evaluation,
    engine: Engine,
    orphans: Vec<Orphans>,
    lifetime: Option<stratum_core::clv::LifetimeFit>,
    as_of: NaiveDate,
    timings: Vec<(String, Duration)>,
    warnings: Vec<Diagnostic>,
    previous_run: Option<i64>,
    /// The previous run lined up with this one's rows (with a store and a previous run).
    previous: Option<previous::Previous>,
    /// This run's rows in byte order of the id, the store's order (`None`: in it already,
    /// or no store).
    byte_order: Arc<Option<Vec<u32>>>,
    /// Sources let through by `--allow-shrink`.
    shrink_allowed: Vec<String>,
    non_finite: Vec<stratum_engine::NonFinite>,
}

/// What the store adds to an evaluation: overrides and tags people entered, and the standing
/// after the previous run.
struct Kept {
    inputs: Vec<stratum_engine::ManualInput>,
    pins: Vec<ManualPin>,
    tags: Vec<(String, String)>,
    prior: Prior,
    /// The previous run's ladders, for the holds and the migration this run records.
    previous_ladders: Vec<stratum_store::RecordedLadder>,
    previous_run: Option<i64>,
    /// Rows per source at the last recorded run of the policy.
    recorded_rows: std::collections::HashMap<String, u64>,
}

async fn kept(store: &Store, policy: &Policy, as_of: NaiveDate) -> Result<Kept, RunError> {
    let mut pins = Vec::new();
    for o in store.overrides().await? {
        // Overrides of other policies' ladders live in the same store; skip them.
        if !o.active_on(as_of) || policy.ladder(&o.ladder).is_none() {
            continue;
        }
        let mode = o.mode;
        let until = o.until.map_or(String::new(), |d| format!(", until {d}"));
        pins.push(ManualPin {
            customer_id: o.customer_id,
            ladder: o.ladder,
            level: o.level,
            reason: format!("{} — {}{until}", o.reason, o.created_by),
            origin: format!("override #{}", o.id),
            mode,
        });
    }
    let tags = store
        .tags()
        .await?
        .into_iter()
        .map(|t| (t.customer_id, t.tag))
        .collect();
    let previous = store.previous_run(policy.history_name(), as_of).await?;
    let mut prior = Prior::default();
    let mut previous_ladders = Vec::new();
    if let Some(run) = &previous {
        previous_ladders = store.recorded_ladders(run.id).await?;
        if policy.ladders.iter().any(|l| l.cluster.is_some()) {
            for (_, ladder, text) in store.run_summaries(&[run.id]).await? {
                // A summary this binary cannot read only costs the matching: the clusters
                // then take their levels by value, as at a first run.
                let recorded =
                    serde_json::from_str::<stratum_core::evaluate::RecordedSummary>(&text);
                if let Some(clusters) = recorded.ok().and_then(|r| r.summary.clusters) {
                    prior.clusters.insert(ladder, clusters);
                }
            }
        }
    }
    let inputs = store
        .inputs()
        .await?
        .into_iter()
        .map(|i| stratum_engine::ManualInput {
            customer_id: i.customer_id,
            field: i.field,
            value: i.value,
        })
        .collect();
    let recorded_rows = store
        .last_recorded_run(policy.history_name())
        .await?
        .map(|r| guard::recorded_rows(&r.inputs))
        .unwrap_or_default();
    Ok(Kept {
        inputs,
        pins,
        tags,
        prior,
        previous_ladders,
        previous_run: previous.map(|r| r.id),
        recorded_rows,
    })
}

async fn evaluate_policy(
    loaded: &LoadedPolicy,
    options: &RunOptions,
    store: Option<&Store>,
    progress: &mut dyn Progress,
) -> Result<Evaluated, RunError> {
    let policy = &loaded.policy;
    let as_of = resolve_as_of(policy, options.as_of.as_deref())?;
    check_as_of(as_of, options.allow_future_as_of)?;
    let mut timings = Vec::new();
    let t = Instant::now();
    let mut kept = match store {
        Some(s) => Some(kept(s, policy, as_of).await?),
        None => None,
    };
    if store.is_some() {
        timings.push(("history".to_string(), t.elapsed()));
    }
    let mut engine_options = options.engine_options();
    if let Some(k) = &mut kept {
        engine_options.inputs = std::mem::take(&mut k.inputs);
    }
    let t = Instant::now();
    let engine = Engine::load(policy, &loaded.base_dir, &engine_options, &mut |m| {
        progress.stage(m)
    })
    .await?;
    timings.push(("load".to_string(), t.elapsed()));
    let no_history = std::collections::HashMap::new();
    let shrink_allowed = guard::check(
        &engine,
        &policy.guards,
        options.guard,
        kept.as_ref().map_or(&no_history, |k| &k.recorded_rows),
    )?;
    let pins = match &policy.settings.overrides_file {
        Some(f) => pins::read(&loaded.base_dir.join(f), f)?,
        None => Vec::new(),
    };
    progress.stage(&format!("computing metrics as of {as_of}"));
    let t = Instant::now();
    let out = engine.metrics(policy, as_of).await?;
    timings.push(("metrics".to_string(), t.elapsed()));
    if let Some(n) = out.non_finite.first()
        && policy.guards.non_finite_is_error
    {
        return Err(RunError::NonFinite(non_finite_text(n)));
    }
    // The owner metric names people: a number there is the policy's mistake, found before
    // anything is scored or written.
    if let Some(owner) = policy.service.as_ref().and_then(|s| s.owner.as_deref())
        && !matches!(out.frame.column(owner), Some(stratum_core::Column::Text(_)))
    {
        return Err(RunError::OwnerNotText(owner.to_string()));
    }
    progress.stage("scoring and placing");
    let t = Instant::now();
    let mut frame = out.frame;
    // A row of the overrides file naming a customer the data does not have: the file's
    // line in fail mode; in quarantine a reject like any other bad row.
    let mut file_pins = Vec::with_capacity(pins.len());
    let mut engine = engine;
    for pin in pins {
        if frame.row_of(&pin.customer_id).is_some() {
            file_pins.push(pin);
            continue;
        }
        let (file, line) = pin
            .origin
            .rsplit_once(':')
            .map(|(f, l)| (f.to_string(), l.parse().unwrap_or(0)))
            .unwrap_or((pin.origin.clone(), 0));
        let reason = format!(
            "customer `{}` is not in the customers source",
            pin.customer_id
        );
        if options.on_bad_rows == BadRows::Fail {
            return Err(RunError::Overrides {
                file,
                line,
                message: reason,
            });
        }
        engine.rejects.push(stratum_engine::Reject {
            source: "overrides_file".into(),
            file,
            line,
            column: Some("customer_id".into()),
            reason,
            record: format!("{},{},{}", pin.customer_id, pin.ladder, pin.level),
        });
    }
    let mut pins = file_pins;
    let mut warnings: Vec<Diagnostic> = out
        .non_finite
        .iter()
        .map(|n| {
            Diagnostic::new(
                Code::NonFiniteMetric,
                format!("metrics.{}", n.metric),
                format!("{}; they count as missing (`[policy] non_finite = \"error\"` stops the run instead)", non_finite_text(n)),
            )
        })
        .collect();
    warnings.extend(shrink_allowed
        .iter()
        .map(|name| {
            Diagnostic::new(
                Code::ShrinkAllowed,
                format!("sources.{name}"),
                format!("source `{name}` has far fewer rows than at the last recorded run (or none); let through by --allow-shrink"),
            )
        }));
    // A million ids hashed only when the store has tags or pins to place.
    if let Some(k) = kept
        .as_ref()
        .filter(|k| !k.tags.is_empty() || !k.pins.is_empty())
    {
        let rows: std::collections::HashMap<&str, usize> = frame
            .ids()
            .iter()
            .enumerate()
            .map(|(i, id)| (id, i))
            .collect();
        let tag_rows: Vec<(usize, &str)> = k
            .tags
            .iter()
            .filter_map(|(c, t)| rows.get(c.as_str()).map(|&r| (r, t.as_str())))
            .collect();
        for p in &k.pins {
            if rows.contains_key(p.customer_id.as_str()) {
                pins.push(p.clone());
            } else {
                warnings.push(Diagnostic::new(
                    Code::UnknownCustomer,
                    &p.origin,
                    format!(
                        "{} pins customer `{}`, who is not in the customers source; ignored",
                        p.origin, p.customer_id
                    ),
                ));
            }
        }
        drop(rows);
        for (row, tag) in tag_rows {
            frame.add_tag(row, tag);
        }
    }
    let mut prior = kept.as_mut().map(|k| std::mem::take(&mut k.prior));
    let previous_ladders = kept
        .as_mut()
        .map(|k| std::mem::take(&mut k.previous_ladders));
    let policy = Arc::clone(policy);
    let (evaluation, previous, byte_order) = blocking(move || {
        // With a store, the rows in its order, for the previous run's alignment here and
        // the recording later.
        let byte_order = match &previous_ladders {
            Some(_) => frame.ids().byte_order(),
            None => None,
        };
        let previous = previous_ladders
            .map(|l| previous::Previous::align(l, frame.ids(), byte_order.as_deref()));
        if let (Some(prior), Some(previous)) = (prior.as_mut(), &previous) {
            prior.ladders = previous.prior_ladders();
        }
        let inputs = Inputs {
            pins: &pins,
            as_of: Some(as_of),
            prior: prior.as_ref(),
        };
        evaluate_with(policy, frame, inputs).map(|ev| (ev, previous, byte_order))
    })
    .await?;
    timings.push(("score+place".to_string(), t.elapsed()));
    Ok(Evaluated {
        evaluation,
        engine,
        orphans: out.orphans,
        lifetime: out.lifetime,
        as_of,
        timings,
        warnings,
        previous,
        byte_order: Arc::new(byte_order),
        previous_run: kept.and_then(|k| k.previous_run),
        shrink_allowed,
        non_finite: out.non_finite,
    })
}

/// Evaluates every ladder for every customer, records the run in the store (when given) and
/// writes the outputs. The store is written in one transaction, side by side with the files;
/// the files are renamed into place only after the run is committed, so a run that fails to
/// record leaves both the history and the output directory as they were.
pub async fn run(
    loaded: &LoadedPolicy,
    options: &RunOptions,
    store: Option<&Store>,
    progress: &mut dyn Progress,
) -> Result<RunOutcome, RunError> {
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let _lock = lock::RunLock::acquire(
        &loaded.base_dir,
        &format!(
            "policy {}, started by {}",
            loaded.path.display(),
            options.recorded_by
        ),
    )?;
    let out_dir = options
        .out_dir
        .clone()
        .unwrap_or_else(|| loaded.base_dir.join("out"));
    output::prepare_dir(&out_dir)?;
    let fingerprints = store.map(|_| record::start_fingerprints(loaded));
    let Evaluated {
        evaluation,
        engine,
        orphans,
        lifetime,
        as_of,
        mut timings,
        warnings: mut kept_warnings,
        previous_run,
        previous,
        byte_order,
        shrink_allowed,
        non_finite,
    } = evaluate_policy(loaded, options, store, progress).await?;
    let evaluation = Arc::new(evaluation);
    // Recording needs every explanation at once (the store sorts and chunks them), so they
    // are built up front; without a store the writers take them as they are built.
    let batches = match store {
        Some(_) => {
            let t = Instant::now();
            let ev = Arc::clone(&evaluation);
            let batches: Vec<_> = blocking(move || output::assignments(&ev).collect()).await;
            timings.push(("explain".to_string(), t.elapsed()));
            Some(Arc::new(batches))
        }
        None => None,
    };
    let ladders: Vec<LadderSummary> = (0..evaluation.ladders.len())
        .map(|i| evaluation.summary(i))
        .collect();
    // The files are written on the blocking pool while the store records the run (the two
    // take similar time); they are renamed into place only once the run is committed.
    progress.stage(&match store {
        Some(store) => format!(
            "recording the run in {} and writing {}",
            store.url(),
            out_dir.display()
        ),
        None => format!("writing {}", out_dir.display()),
    });
    let writer = {
        let (ev, batches, dir) = (Arc::clone(&evaluation), batches.clone(), out_dir.clone());
        let (summaries, rejects, non_finite) =
            (ladders.clone(), engine.rejects.clone(), non_finite.clone());
        let metrics_csv = options.metrics_csv;
        start(move || {
            let t = Instant::now();
            let assignments: Box<dyn Iterator<Item = _>> = match &batches {
                Some(batches) => Box::new(batches.iter().cloned()),
                None => Box::new(output::assignments(&ev)),
            };
            let staged = output::write_all(
                &dir,
                &ev,
                assignments,
                &output::RunReport {
                    summaries: &summaries,
                    rejects: &rejects,
                    non_finite: &non_finite,
                    as_of,
                    metrics_csv,
                },
            );
            (staged, t.elapsed())
        })
    };
    // Both halves meet before the commit: the run is committed only once its files are
    // staged, and the files are renamed into place only after the commit. A failure to
    // write the files therefore records nothing; a failure to record leaves the previous
    // files. The one window left is a rename failing after the commit (same folder, so
    // rare); the error then says the run is recorded and where its staged files are.
    let mut writer = Some(writer);
    let mut staged = None;
    let recorded = match (store, fingerprints, &batches) {
        (Some(store), Some(fingerprints), Some(batches)) => {
            let t = Instant::now();
            // Encoded on the blocking pool from now on, while the results go in.
            let metrics = {
                let (ev, order) = (Arc::clone(&evaluation), Arc::clone(&byte_order));
                start(move || record::metric_chunks(&ev, order.as_deref()))
            };
            // The previous run's levels (read with its standings), for the migration the run
            // records with its summaries.
            let previous = previous_run.zip(previous);
            let summaries = {
                let (ev, ladders) = (Arc::clone(&evaluation), ladders.clone());
                blocking(move || {
                    let previous = previous.as_ref().map(|(id, p)| (*id, p));
                    record::recorded_summaries(&ev, &ladders, previous)
                })
                .await
            };
            tracing::debug!(
                seconds = t.elapsed().as_secs_f64(),
                "run summaries and migration built"
            );
            let metrics = async { metrics.await.map(Some) };
            let files_ready = async {
                let Some(w) = writer.take() else {
                    return Ok(());
                };
                let result = w.await;
                let outcome = match &result.0 {
                    Ok(_) => Ok(()),
                    Err(e) => Err(format!("the output files could not be written: {e}")),
                };
                staged = Some(result);
                outcome
            };
            let result = match (fingerprints.await, summaries) {
                (Ok(inputs), Ok(summaries)) => {
                    record::record(
                        store,
                        loaded,
                        &evaluation,
                        batches,
                        byte_order.as_deref(),
                        as_of,
                        started_at,
                        guard::with_rows(&inputs, &engine, &shrink_allowed),
                        &options.recorded_by,
                        summaries,
                        metrics,
                        files_ready,
                    )
                    .await
                }
                (Err(e), _) | (_, Err(e)) => Err(e),
            };
            Some((result, t.elapsed()))
        }
        _ => None,
    };
    // Without a store, or when recording stopped before asking: wait for the files.
    if let Some(w) = writer.take() {
        staged = Some(w.await);
    }
    let (staged, write_time) = staged.expect("the writer was awaited");
    // A write failure is the error to report, whether or not recording got to ask.
    let staged = staged?;
    let run_id = match recorded {
        Some((result, record_time)) => {
            timings.push(("record".to_string(), record_time));
            Some(result?)
        }
        None => None,
    };
    // Without a store the explanations are built as the files are written.
    let write_stage = if store.is_some() {
        "write"
    } else {
        "explain+write"
    };
    timings.push((write_stage.to_string(), write_time));
    let files = staged.commit().map_err(|e| match (run_id, e) {
        (Some(id), RunError::Output { path, message }) => RunError::Output {
            path,
            message: format!(
                "{message}; run #{id} is recorded, and its files are staged beside it as .partial files"
            ),
        },
        (_, e) => e,
    })?;
    let sources = engine
        .sources
        .iter()
        .map(|s| SourceSummary {
            name: s.name.clone(),
            file: s.file.clone(),
            stats: s.stats.clone(),
        })
        .collect();
    let mut warnings = lint(&loaded.policy);
    warnings.append(&mut kept_warnings);
    Ok(RunOutcome {
        as_of,
        customers: evaluation.frame.len(),
        sources,
        orphans,
        warnings,
        ladders,
        files,
        timings,
        run_id,
        previous_run,
        lifetime,
    })
}

/// Explains one customer: metrics, score contributions, placements and next-level gaps.
pub async fn explain(
    loaded: &LoadedPolicy,
    options: &RunOptions,
    store: Option<&Store>,
    customer_id: &str,
) -> Result<(NaiveDate, CustomerExplanation), RunError> {
    let ev = evaluate_policy(loaded, options, store, &mut Quiet).await?;
    let row = ev
        .evaluation
        .frame
        .row_of(customer_id)
        .ok_or_else(|| RunError::UnknownCustomer(customer_id.to_string()))?;
    let mut explanation = ev.evaluation.explain(row);
    explanation.models = ev.lifetime.iter().flat_map(|f| f.describe()).collect();
    Ok((ev.as_of, explanation))
}

/// The SQL a run would execute.
pub async fn show_sql(loaded: &LoadedPolicy, options: &RunOptions) -> Result<String, RunError> {
    let as_of = resolve_as_of(&loaded.policy, options.as_of.as_deref())?;
    let engine_options = options.engine_options();
    let engine = Engine::load(
        &loaded.policy,
        &loaded.base_dir,
        &engine_options,
        &mut |_| {},
    )
    .await?;
    Ok(engine.explain_sql(&loaded.policy, as_of))
}

/// What `stratum churn` found.
#[derive(Debug)]
pub struct ChurnReport {
    pub as_of: NaiveDate,
    /// The date compared with: given, or the previous recorded run's.
    pub since: Option<NaiveDate>,
    /// The recorded run `since` came from, when it came from one.
    pub since_run: Option<i64>,
    pub rule: stratum_core::churn::ChurnRule,
    pub customers: usize,
    pub warnings: Vec<stratum_core::churn::ChurnWarning>,
    pub lifetime: Option<stratum_core::clv::LifetimeFit>,
}

/// Evaluates the policy as of its date and as of `since` (default: the as_of of the
/// previous recorded run of this policy) and lists the customers `[churn]` warns about.
/// Nothing is recorded.
pub async fn churn(
    loaded: &LoadedPolicy,
    options: &RunOptions,
    store: Option<&Store>,
    since: Option<NaiveDate>,
) -> Result<ChurnReport, RunError> {
    let rule = loaded
        .policy
        .churn
        .clone()
        .ok_or_else(|| RunError::NoChurnRule(loaded.path.display().to_string()))?;
    let now = evaluate_policy(loaded, options, store, &mut Quiet).await?;
    let (since, since_run) = match (since, store) {
        (Some(d), _) => (Some(d), None),
        (None, Some(s)) => match s
            .previous_run(loaded.policy.history_name(), now.as_of)
            .await?
        {
            Some(run) => (Some(run.as_of), Some(run.id)),
            None => (None, None),
        },
        (None, None) => (None, None),
    };
    if let Some(d) = since
        && d >= now.as_of
    {
        return Err(RunError::SinceNotBefore {
            since: d,
            as_of: now.as_of,
        });
    }
    let before = match since {
        Some(d) => {
            let earlier = RunOptions {
                as_of: Some(d.to_string()),
                out_dir: None,
                ..options.clone()
            };
            Some(
                evaluate_policy(loaded, &earlier, store, &mut Quiet)
                    .await?
                    .evaluation
                    .frame,
            )
        }
        None => None,
    };
    let warnings = stratum_core::churn::warnings(&rule, &now.evaluation, before.as_ref());
    Ok(ChurnReport {
        as_of: now.as_of,
        since,
        since_run,
        rule,
        customers: now.evaluation.frame.len(),
        warnings,
        lifetime: now.lifetime,
    })
}

/// The async contract, checked by the compiler: the runner's futures are `Send`.
#[allow(dead_code)]
fn futures_are_send(loaded: &LoadedPolicy, options: &RunOptions, store: &Store, quiet: &mut Quiet) {
    fn send<T: Send>(_: T) {}
    send(run(loaded, options, Some(store), quiet));
    send(explain(loaded, options, Some(store), "C1"));
    send(churn(loaded, options, Some(store), None));
    send(simulate(loaded, options, store, quiet));
    send(check(&loaded.path, &EngineOptions::default()));
    send(show_sql(loaded, options));
}
