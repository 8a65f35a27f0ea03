//! # stratum-runner
//!
//! The only crate that knows the order of the stages: read the policy, load the sources
//! (engine), compute metrics as of a date (engine), score and place (core), and write the
//! outputs. The CLI and, later, the server call these functions; neither needs to know how a
//! run is put together.

mod output;
mod pins;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use stratum_core::lint::lint;
use stratum_core::{
    CustomerExplanation, Diagnostic, Diagnostics, EvalError, LadderSummary, Policy, evaluate,
};
use stratum_engine::{BadRows, Engine, EngineError, EngineOptions, LoadStats, Orphans};

pub use output::OutputFiles;

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
    #[error("customer `{0}` is not in the customers source")]
    UnknownCustomer(String),
    #[error("cannot write {path}: {message}")]
    Output { path: String, message: String },
}

impl RunError {
    pub fn is_user_error(&self) -> bool {
        !matches!(
            self,
            RunError::Engine(EngineError::Internal(_))
                | RunError::Eval(EvalError::Internal(_))
                | RunError::Output { .. }
        )
    }
}

/// Reports stage changes; the CLI shows them as a progress bar or plain lines.
pub trait Progress {
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
    pub policy: Policy,
    pub path: PathBuf,
    pub base_dir: PathBuf,
    pub text: String,
}

pub fn load_policy(path: &Path) -> Result<LoadedPolicy, RunError> {
    let text = std::fs::read_to_string(path).map_err(|e| RunError::PolicyFile {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    let display = path.display().to_string();
    let policy = Policy::from_str(&display, &text).map_err(RunError::Policy)?;
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    Ok(LoadedPolicy {
        policy,
        path: path.to_path_buf(),
        base_dir,
        text,
    })
}

/// `as_of`: the flag, else the policy's, else today.
pub fn resolve_as_of(policy: &Policy, flag: Option<&str>) -> Result<NaiveDate, RunError> {
    match flag.or(policy.file.policy.as_of.as_deref()) {
        Some(s) => {
            NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| RunError::AsOf(s.to_string()))
        }
        None => Ok(chrono::Local::now().date_naive()),
    }
}

/// What `check` found.
#[derive(Debug)]
pub struct CheckReport {
    pub diagnostics: Vec<Diagnostic>,
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
        Err(RunError::Policy(d)) => return Ok(CheckReport { diagnostics: d.0 }),
        Err(e) => return Err(e),
    };
    let mut diagnostics = lint(&loaded.policy);
    let as_of = resolve_as_of(&loaded.policy, None)?;
    let engine = Engine::load(&loaded.policy, &loaded.base_dir, options, &mut |_| {}).await;
    let problem = match engine {
        Ok(engine) => engine.validate(&loaded.policy, as_of).await.err(),
        Err(e) => Some(e),
    };
    match problem {
        Some(EngineError::User(u)) => {
            diagnostics.push(Diagnostic::error("data", "", u.to_string()))
        }
        Some(internal) => return Err(internal.into()),
        None => {}
    }
    diagnostics.sort_by_key(|d| std::cmp::Reverse(d.severity));
    Ok(CheckReport { diagnostics })
}

/// Options of a run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub as_of: Option<String>,
    pub out_dir: Option<PathBuf>,
    pub on_bad_rows: BadRows,
    pub target_partitions: usize,
}

impl RunOptions {
    fn engine_options(&self) -> EngineOptions {
        EngineOptions {
            on_bad_rows: self.on_bad_rows,
            target_partitions: self.target_partitions,
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
}

struct Evaluated<'p> {
    evaluation: stratum_core::Evaluation<'p>,
    engine: Engine,
    orphans: Vec<Orphans>,
    as_of: NaiveDate,
    timings: Vec<(String, Duration)>,
}

async fn evaluate_policy<'p>(
    loaded: &'p LoadedPolicy,
    options: &RunOptions,
    progress: &mut dyn Progress,
) -> Result<Evaluated<'p>, RunError> {
    let policy = &loaded.policy;
    let as_of = resolve_as_of(policy, options.as_of.as_deref())?;
    let engine_options = options.engine_options();
    let mut timings = Vec::new();
    let t = Instant::now();
    let engine = Engine::load(policy, &loaded.base_dir, &engine_options, &mut |m| {
        progress.stage(m)
    })
    .await?;
    timings.push(("load".to_string(), t.elapsed()));
    let pins = match &policy.file.policy.overrides_file {
        Some(f) => pins::read(&loaded.base_dir.join(f), f)?,
        None => Vec::new(),
    };
    progress.stage(&format!("computing metrics as of {as_of}"));
    let t = Instant::now();
    let out = engine.metrics(policy, as_of).await?;
    timings.push(("metrics".to_string(), t.elapsed()));
    progress.stage("scoring and placing");
    let t = Instant::now();
    let evaluation = tokio::task::block_in_place(|| evaluate(policy, out.frame, &pins))?;
    timings.push(("score+place".to_string(), t.elapsed()));
    Ok(Evaluated {
        evaluation,
        engine,
        orphans: out.orphans,
        as_of,
        timings,
    })
}

/// Evaluates every ladder for every customer and writes the outputs.
pub async fn run(
    loaded: &LoadedPolicy,
    options: &RunOptions,
    progress: &mut dyn Progress,
) -> Result<RunOutcome, RunError> {
    let Evaluated {
        evaluation,
        engine,
        orphans,
        as_of,
        mut timings,
    } = evaluate_policy(loaded, options, progress).await?;
    let out_dir = options
        .out_dir
        .clone()
        .unwrap_or_else(|| loaded.base_dir.join("out"));
    progress.stage(&format!("writing {}", out_dir.display()));
    let t = Instant::now();
    let files = tokio::task::block_in_place(|| {
        output::write_all(&out_dir, &evaluation, &engine.rejects, as_of)
    })?;
    timings.push(("write".to_string(), t.elapsed()));
    let ladders = (0..evaluation.ladders.len())
        .map(|i| evaluation.summary(i))
        .collect();
    let sources = engine
        .sources
        .iter()
        .map(|s| SourceSummary {
            name: s.name.clone(),
            file: s.file.clone(),
            stats: s.stats.clone(),
        })
        .collect();
    Ok(RunOutcome {
        as_of,
        customers: evaluation.frame.len(),
        sources,
        orphans,
        warnings: lint(&loaded.policy),
        ladders,
        files,
        timings,
    })
}

/// Explains one customer: metrics, score contributions, placements and next-level gaps.
pub async fn explain(
    loaded: &LoadedPolicy,
    options: &RunOptions,
    customer_id: &str,
) -> Result<(NaiveDate, CustomerExplanation), RunError> {
    let ev = evaluate_policy(loaded, options, &mut Quiet).await?;
    let row = ev
        .evaluation
        .frame
        .row_of(customer_id)
        .ok_or_else(|| RunError::UnknownCustomer(customer_id.to_string()))?;
    Ok((ev.as_of, ev.evaluation.explain(row)))
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
