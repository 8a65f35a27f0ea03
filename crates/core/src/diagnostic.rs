//! Diagnostics that point at the policy file: severity, key path, line and column, and a hint.

use std::fmt;

/// How serious a finding is: errors stop a run, warnings are printed and the run goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

/// A line and column (both 1-based) in a named file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// Declares every diagnostic code once: its variant, its text (stable: scripts match on it),
/// its severity, and when it is given (docs/POLICY.md lists this table; a test keeps the two
/// in step).
macro_rules! diagnostic_codes {
    ($($variant:ident = $code:literal, $severity:ident, $when:literal;)*) => {
        /// What a diagnostic is about; its severity comes with it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code {
            $($variant,)*
        }

        impl Code {
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $code,)*
                }
            }

            pub const fn severity(self) -> Severity {
                match self {
                    $(Code::$variant => Severity::$severity,)*
                }
            }

            pub const fn when(self) -> &'static str {
                match self {
                    $(Code::$variant => $when,)*
                }
            }
        }

        /// Every code, in the order docs/POLICY.md lists them.
        pub const DIAGNOSTIC_CODES: &[Code] = &[$(Code::$variant,)*];
    };
}

diagnostic_codes! {
    AmbiguousRule = "ambiguous_rule", Error, "a level gives more than one rule (`when`, `top_share`, `top_n`, `value_share`, `rest`)";
    BandGap = "band_gap", Warning, "values between two bands of a dimension that fall in no band (and score 0)";
    ChurnWithoutModel = "churn_without_model", Warning, "`[churn] p_alive` names a metric that is not a lifetime measure";
    CustomersWithTime = "customers_with_time", Error, "the customers source has a `time` column (it holds one row per customer)";
    Data = "data", Error, "`check` read the data and a source or metric failed (missing column, bad type); located at the metric's expression";
    DuplicateLevel = "duplicate_level", Error, "a ladder names a level twice";
    DuplicateName = "duplicate_name", Error, "a name that is both a metric and a score";
    EmptyScore = "empty_score", Error, "a weighted score without parts, or a scorecard without dimensions";
    ExpressionTooLarge = "expression_too_large", Error, "an expression, filter or condition beyond 8 KiB, 256 operators or 32 nested parentheses";
    InvalidAssignment = "invalid_assignment", Error, "an `[assignment]` without levels or managers, naming a level its ladder lacks, or a capacity of 0";
    InvalidBins = "invalid_bins", Error, "RFM `bins` not between 2 and 10";
    InvalidCluster = "invalid_cluster", Error, "a cluster ladder without features or a value, with an unknown transform, a `k` other than its cluster levels, a level with a rule, or a `missing` level it lacks";
    InvalidChurn = "invalid_churn", Error, "a `[churn]` threshold that is not a probability between 0 and 1";
    InvalidCondition = "invalid_condition", Error, "a `when`, `applies_to` or `filter` that does not parse or mixes types";
    InvalidDerivedSource = "invalid_derived_source", Error, "`from` on a source other than customers, with a path, or naming no event source";
    InvalidDimension = "invalid_dimension", Error, "a scorecard dimension with both `categories` and `bands`, or neither, or bad bands";
    InvalidExpr = "invalid_expr", Error, "a metric expression that does not parse as SQL";
    InvalidGrant = "invalid_grant", Error, "a benefit's `grant_hours` below 1";
    InvalidHold = "invalid_hold", Error, "a ladder's `hold` counts (grace, hysteresis runs) below 1";
    InvalidInputsSource = "invalid_inputs_source", Error, "a `format = \"inputs\"` source with a path or a time, or as the customers source";
    InvalidLifetime = "invalid_lifetime", Error, "a `[lifetime]` table that cannot be used (the message says why)";
    InvalidEngine = "invalid_engine", Error, "an `[engine] cluster` that is not `df://host:port`, or a `timeout_seconds` of 0";
    InvalidLimit = "invalid_limit", Error, "`max_rejects`, `max_shrink` or `non_finite` that cannot be read";
    InvalidMetric = "invalid_metric", Error, "a metric that is not exactly one of `source` + `expr`, `expr` alone, `rollup` or `lifetime`";
    InvalidName = "invalid_name", Error, "a name that is not a plain identifier (letters, digits, underscores)";
    InvalidPeriod = "invalid_period", Error, "a quota period that is not day, month, year or \"N days\"";
    InvalidPipeline = "invalid_pipeline", Error, "a `[pipeline]` class, quota, target or calendar that cannot be used (the message says why)";
    InvalidPolicy = "invalid_policy", Error, "the file is not valid TOML or has an unknown key";
    InvalidQuota = "invalid_quota", Error, "a benefit quota that is not a number of uses (0 or more) or \"unlimited\"";
    InvalidShare = "invalid_share", Error, "a `top_share` or `value_share` outside (0, 1]";
    InvalidSlaTarget = "invalid_sla_target", Error, "an SLA target outside (0, 1]";
    InvalidTeams = "invalid_teams", Error, "a `[teams]` lead without members, listed in its own team, or a member with two leads";
    InvalidTimezone = "invalid_timezone", Error, "`[service] timezone` is not an IANA zone name";
    InvalidUnit = "invalid_unit", Error, "`[lifetime] unit` is not day, week or month";
    InvalidWeight = "invalid_weight", Error, "a composite part's weight that is not a positive number";
    InvalidWindow = "invalid_window", Error, "a window or offset that is not \"N days/weeks/months/years\" or is longer than 200 years";
    LifetimeWithoutTime = "lifetime_without_time", Error, "the `[lifetime]` source has no `time` column";
    MetricCycle = "metric_cycle", Error, "metrics that depend on each other in a circle";
    MissingAmount = "missing_amount", Error, "a lifetime spend measure without an `amount` column";
    MissingCustomers = "missing_customers", Error, "no `[sources.customers]`";
    MissingExpr = "missing_expr", Error, "a metric without `expr`";
    MissingField = "missing_field", Error, "a required key is absent (the message names it)";
    MissingLifetime = "missing_lifetime", Error, "a lifetime metric without a `[lifetime]` table";
    MissingPath = "missing_path", Error, "a file source without `path`";
    MissingRankBy = "missing_rank_by", Error, "a quota level (`top_share`, `top_n`, `value_share`) on a ladder without `rank_by`";
    MissingRule = "missing_rule", Error, "a level without a rule";
    NoLadders = "no_ladders", Warning, "the policy places nobody: it has no ladders";
    NoLevels = "no_levels", Error, "a ladder without levels";
    NoRestLevel = "no_rest_level", Warning, "customers matching no level would be unplaced";
    NonFiniteMetric = "non_finite_metric", Warning, "a run computed NaN or infinite values; they count as missing (`non_finite = \"error\"` stops the run)";
    PointsOverMax = "points_over_max", Warning, "a band, category or `missing` giving more points than the dimension's `max_points`";
    ReservedLevel = "reserved_level", Error, "a level named like a placeholder: `(unplaced)`, `(not applicable)`";
    ScoreCycle = "score_cycle", Error, "scores that depend on each other in a circle";
    SharesOverOne = "shares_over_one", Error, "a ladder's shares add up to more than 1";
    ShrinkAllowed = "shrink_allowed", Warning, "a source far smaller than at the last recorded run, let through by `--allow-shrink`";
    TagsOutsideCustomers = "tags_outside_customers", Error, "`tags` on a source other than customers";
    ThresholdGap = "threshold_gap", Warning, "for the metric most levels grade on, a range that lies between two levels' ranges; says where such customers fall (e.g. the retailer's 50k–100k falls to `vip`, below `gold`). For whole-number metrics (a `count(…)`, an `int` column) only a range holding a whole number is a gap";
    ThresholdOverlap = "threshold_overlap", Warning, "a level's bounded range reaching into the range of the level above";
    UnknownCustomer = "unknown_customer", Warning, "an override pins a customer the data does not have; ignored";
    UnknownFormat = "unknown_format", Error, "a source format other than csv, jsonl, parquet or inputs";
    UnknownLadder = "unknown_ladder", Error, "a reference to a ladder the policy does not have";
    UnknownLevel = "unknown_level", Error, "a reference to a level its ladder does not have";
    UnknownMetric = "unknown_metric", Error, "a reference to a metric or column that does not exist (with a did-you-mean)";
    UnknownSource = "unknown_source", Error, "a metric or lifetime table names a source the policy does not have";
    UnreachableLevel = "unreachable_level", Warning, "after `rest`, a contradiction (`x > 5 AND x < 3`), a zero share, or a range entirely taken by an earlier level";
    UnusedMetric = "unused_metric", Warning, "a metric no score, ladder or other metric reads";
    WeightsSum = "weights_sum", Warning, "weights of a weighted score do not add up to 1";
    WindowOnAttributes = "window_on_attributes", Error, "a `window` on a metric over an attribute source (no `time` column)";
}

#[cfg(test)]
mod code_tests {
    use super::{Code, DIAGNOSTIC_CODES, Severity};

    /// docs/POLICY.md lists every code, row for row, and nothing else.
    #[test]
    fn the_policy_docs_list_every_diagnostic_code() {
        let doc =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/POLICY.md"))
                .unwrap();
        let documented: Vec<&str> = doc
            .lines()
            .skip_while(|l| !l.starts_with("| code | severity | when |"))
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .collect();
        let expected: Vec<String> = DIAGNOSTIC_CODES
            .iter()
            .map(|c| {
                let severity = match c.severity() {
                    Severity::Error => "error",
                    Severity::Warning => "warning",
                };
                format!("| `{}` | {severity} | {} |", c.as_str(), c.when())
            })
            .collect();
        assert_eq!(documented, expected);
        let mut names: Vec<&str> = DIAGNOSTIC_CODES.iter().map(|c| c.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(
            names.len(),
            DIAGNOSTIC_CODES.len(),
            "a code is declared twice"
        );
        assert_eq!(Code::ThresholdGap.as_str(), "threshold_gap");
    }
}

/// One finding about a policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Stable short code, e.g. `unknown_metric`, `threshold_gap`.
    pub code: &'static str,
    pub message: String,
    /// Dotted key path in the policy, e.g. `ladders.value.levels[2].when`.
    pub key: String,
    pub location: Option<Location>,
    pub help: Option<String>,
}

impl Diagnostic {
    /// A finding of `code` (its severity is the code's) at the policy key `key`.
    pub fn new(code: Code, key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            severity: code.severity(),
            code: code.as_str(),
            message: message.into(),
            key: key.into(),
            location: None,
            help: None,
        }
    }

    /// "unknown `what` `name`", with the nearest of `candidates` suggested: the one message
    /// for a name that refers to nothing (`what`: "metric", "source", "ladder", "metric or
    /// score").
    pub fn unknown<'a>(
        code: Code,
        key: impl Into<String>,
        what: &str,
        name: &str,
        candidates: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        Diagnostic::new(code, key, format!("unknown {what} `{name}`")).suggest(name, candidates)
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds "did you mean `x`?" when a candidate is close enough to `wrong`.
    pub fn suggest<'a>(self, wrong: &str, candidates: impl IntoIterator<Item = &'a str>) -> Self {
        match did_you_mean(wrong, candidates) {
            Some(best) => self.with_help(format!("did you mean `{best}`?")),
            None => self,
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{label}[{}]: {}", self.code, self.message)?;
        match &self.location {
            Some(loc) => write!(f, "\n  --> {loc} (key `{}`)", self.key)?,
            None if !self.key.is_empty() => write!(f, "\n  --> key `{}`", self.key)?,
            None => {}
        }
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

/// The closest candidate by Jaro-Winkler similarity, if it is close enough to be a useful hint.
pub fn did_you_mean<'a>(
    wrong: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let wrong_lower = wrong.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(&wrong_lower, &c.to_lowercase()), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// A set of diagnostics, returned when a policy cannot be used.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.is_error())
    }
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| !d.is_error())
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}
