//! Engine errors, split like the rest of Stratum: user errors (the data or the policy) say
//! where the problem is; internal errors are bugs or environment failures.

use stratum_core::diagnostic::did_you_mean;

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("source `{source_name}`: file {file} does not exist")]
    FileNotFound { source_name: String, file: String },
    #[error("source `{source_name}`: cannot read {file}: {message}")]
    Unreadable {
        source_name: String,
        file: String,
        message: String,
    },
    #[error(
        "{file}: column `{column}` (source `{source_name}`) is missing{}",
        suggestion(column, available)
    )]
    MissingColumn {
        source_name: String,
        file: String,
        column: String,
        available: Vec<String>,
    },
    #[error("{file}:{line}{}: {message}", column.as_ref().map(|c| format!(": column `{c}`")).unwrap_or_default())]
    BadRow {
        file: String,
        line: u64,
        column: Option<String>,
        message: String,
    },
    #[error("{file}: column `{column}` (source `{source_name}`) has type {found}; {expected}")]
    WrongType {
        source_name: String,
        file: String,
        column: String,
        found: String,
        expected: String,
    },
    #[error(
        "{file}: key '{key}' appears more than once in source `{source_name}`, which must have one row per customer"
    )]
    DuplicateKey {
        source_name: String,
        file: String,
        key: String,
    },
    #[error("metric `{metric}` (key `metrics.{metric}`): {message}")]
    Metric { metric: String, message: String },
    #[error("[lifetime]: {0}")]
    Lifetime(String),
    #[error("{0}")]
    Config(String),
    /// The cluster stage one was sent to could not be reached or failed.
    #[error("stage one on the cluster {cluster}: {message}")]
    Cluster { cluster: String, message: String },
}

fn suggestion(column: &str, available: &[String]) -> String {
    let mut out = String::new();
    if let Some(best) = did_you_mean(column, available.iter().map(String::as_str)) {
        out.push_str(&format!("; did you mean `{best}`?"));
    }
    out.push_str(&format!(" (columns: {})", available.join(", ")));
    out
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    User(#[from] UserError),
    #[error("internal engine error: {0}")]
    Internal(String),
    /// An integer division by zero while computing metrics; the caller names the metrics
    /// (it becomes a [`UserError`] before it leaves the engine).
    #[error("a metric divides a whole number by zero: {0}")]
    Division(String),
}

impl EngineError {
    /// The policy's or the data's fault (exit 1, a 4xx), not a bug.
    pub fn is_user_error(&self) -> bool {
        match self {
            EngineError::User(_) | EngineError::Division(_) => true,
            EngineError::Internal(_) => false,
        }
    }
}

impl From<datafusion::error::DataFusionError> for EngineError {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        if crate::divides_by_zero(&e) {
            return EngineError::Division(e.to_string());
        }
        if crate::out_of_memory(&e) {
            return EngineError::User(UserError::Config(format!(
                "the evaluation needs more memory than it is allowed here: {}",
                e.find_root()
            )));
        }
        EngineError::Internal(e.to_string())
    }
}

impl From<datafusion::arrow::error::ArrowError> for EngineError {
    fn from(e: datafusion::arrow::error::ArrowError) -> Self {
        EngineError::Internal(e.to_string())
    }
}
