//! The policy as written: a serde model of the TOML file. `compile` turns it into checked,
//! resolved structures; nothing here evaluates anything.

use crate::diagnostic::Code;
use indexmap::IndexMap;
use serde::Deserialize;

use crate::diagnostic::{Diagnostic, Diagnostics, did_you_mean};
use crate::source_map::SourceMap;

/// The name of the source that lists the customers; every policy has one.
pub const CUSTOMERS: &str = "customers";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    #[serde(default)]
    pub policy: PolicyMeta,
    #[serde(default)]
    pub sources: IndexMap<String, SourceDef>,
    #[serde(default)]
    pub metrics: IndexMap<String, MetricDef>,
    #[serde(default)]
    pub scores: IndexMap<String, ScoreDef>,
    #[serde(default)]
    pub ladders: IndexMap<String, LadderDef>,
    /// How levels turn into service: queue order, SLA targets, owners, timezone.
    pub service: Option<ServiceDef>,
    /// The benefits catalog: quotas per level of the service ladder.
    #[serde(default)]
    pub benefits: IndexMap<String, BenefitDef>,
    /// The lifetime models (BG/NBD, Gamma-Gamma) behind `lifetime = "…"` metrics.
    pub lifetime: Option<LifetimeDef>,
    /// The churn warning read by `stratum churn`.
    pub churn: Option<ChurnDef>,
    /// The sales pipeline: maturity classes, follow-up cycles, daily call lists.
    pub pipeline: Option<PipelineDef>,
    /// Team lead → the members of the lead's team.
    #[serde(default)]
    pub teams: IndexMap<String, Vec<String>>,
    /// Dedicated managers (客户经理制) for the customers of some levels.
    pub assignment: Option<AssignmentDef>,
    /// Where the engine runs: locally (default) or stage one on a Ballista cluster.
    pub engine: Option<EngineDef>,
}

/// `[engine]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineDef {
    /// A Ballista scheduler, `df://host:port`, that runs the stage-one aggregations over
    /// Parquet event sources (docs/SCALE.md).
    pub cluster: Option<String>,
    /// How long a stage-one aggregation may wait for the cluster before the run stops
    /// (default 1800): a scheduler without executors queues work forever.
    pub timeout_seconds: Option<u64>,
}

/// `[assignment]`: which levels get a dedicated manager, and the managers who take them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignmentDef {
    /// The ladder whose levels are named; default the service ladder.
    pub ladder: Option<String>,
    pub levels: Vec<String>,
    /// The most valuable customers who move go to the best-rated managers first.
    #[serde(default)]
    pub by_rating: bool,
    /// Manager (a user name) → capacity and rating.
    pub managers: IndexMap<String, ManagerDef>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagerDef {
    /// The most customers the manager holds.
    pub capacity: Option<usize>,
    /// Higher is better; default 0.
    #[serde(default)]
    pub rating: u32,
}

/// `[pipeline]`: the sales team's maturity classes and how its daily call lists are made.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineDef {
    /// The working-day calendar (CSV `date,kind,note`), relative to the policy's folder;
    /// without one, Monday to Friday are worked.
    pub calendar: Option<String>,
    /// Contacts a rep makes on a working day (default 60).
    pub daily_capacity: Option<u32>,
    /// Contacts planned per weekday (`mon` … `sun`), shown against what was done.
    #[serde(default)]
    pub weekly_targets: IndexMap<String, u32>,
    /// The classes, in the order the call list serves them.
    #[serde(default)]
    pub classes: Vec<PipelineClassDef>,
    /// Contacts per day from a group of classes: at least `min` when that many are due, at
    /// most `max`.
    #[serde(default)]
    pub quotas: Vec<PipelineQuotaDef>,
    /// How an overdue follow-up escalates, in working days overdue.
    pub escalation: Option<EscalationDef>,
}

/// `[pipeline.escalation]`: working days a follow-up may be overdue before the rep is
/// reminded, then the rep's manager, then the customer goes back to the pool.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationDef {
    pub remind_after: Option<u32>,
    pub manager_after: Option<u32>,
    pub pool_after: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineClassDef {
    pub name: String,
    #[serde(default)]
    pub label: Label,
    pub description: Option<String>,
    /// How many customers of the class a rep should hold at most.
    pub capacity: Option<u32>,
    /// Working days between two contacts (the seed's "every 2–5 working days" is 5).
    pub follow_up_days: u32,
    /// Working days from entering the class by which the customer should have paid.
    pub pay_within_days: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineQuotaDef {
    pub classes: Vec<String>,
    pub min: Option<u32>,
    pub max: Option<u32>,
}

/// `[churn]`: who `stratum churn` warns about, and what it shows with them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChurnDef {
    /// The metric holding each customer's probability of being alive (default `p_alive`).
    pub p_alive: Option<String>,
    /// Warn when it falls below this (from at or above it); default 0.5.
    pub below: Option<f64>,
    /// Warn when it drops by more than this since the previous run; default 0.2.
    pub drop: Option<f64>,
    /// The metric shown as value at risk (e.g. a `clv(12, 0.01)` metric).
    pub value: Option<String>,
    /// The ladder whose level's `action` attribute is the recommended action.
    pub ladder: Option<String>,
}

/// `[lifetime]`: which purchases the lifetime models are fitted to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifetimeDef {
    /// An event source; every row through `as_of` is a purchase (several on one day count as
    /// one).
    pub source: String,
    /// SQL expression for a row's spend; needed by `clv`, `expected_spend` and `monetary`.
    pub amount: Option<String>,
    /// SQL predicate choosing the rows that are purchases.
    pub filter: Option<String>,
    /// day, week (default) or month: the unit of recency, age and horizons.
    pub unit: Option<String>,
}

/// `[service]`: which ladder decides service and how the queue, call-backs and the SLA report
/// read it. Per-level settings are level attributes: `sla_seconds`, `sla_target`,
/// `callback_hours`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceDef {
    /// The ladder whose level decides service; default: the first ladder.
    pub ladder: Option<String>,
    /// IANA timezone in which quota periods (day, month, year) start; default UTC.
    pub timezone: Option<String>,
    /// A text metric naming the user (agent) who owns each customer.
    pub owner: Option<String>,
    /// Customers with any of these tags are served last; default `["blacklist"]`.
    pub last_tags: Option<Vec<String>>,
    /// Every this many minutes of waiting moves a caller up one level in the queue, so the
    /// lowest levels are not starved; default 10, 0 turns aging off.
    pub aging_minutes: Option<u32>,
    /// Default answer-time target in seconds for levels without `sla_seconds`; default 20.
    pub sla_seconds: Option<f64>,
    /// Default share to answer within the target for levels without `sla_target`; default 0.85.
    pub sla_target: Option<f64>,
}

/// `[benefits.NAME]`: a benefit with a quota per level.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenefitDef {
    pub title: Option<String>,
    /// The benefit's name per console language.
    #[serde(default)]
    pub label: Label,
    /// `day`, `month`, `year` (calendar periods in the service timezone) or `"N days"` (a
    /// rolling window ending now); default `year`.
    pub period: Option<String>,
    /// Level name → a number of uses per period, or `"unlimited"`. Levels not listed are not
    /// eligible.
    pub quota: IndexMap<String, QuotaDef>,
    /// Each use grants the benefit for this many hours (e.g. emergency reactivation, 24 h).
    pub grant_hours: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum QuotaDef {
    Count(i64),
    Word(String),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyMeta {
    pub name: Option<String>,
    pub description: Option<String>,
    /// Default evaluation date (`YYYY-MM-DD`); `--as-of` overrides it; otherwise today.
    pub as_of: Option<String>,
    /// Display only, e.g. "CNY".
    pub currency: Option<String>,
    /// CSV of manual level pins: customer_id, ladder, level, reason.
    pub overrides_file: Option<String>,
    /// The metric counting a customer's purchases (events) in the current window; the run
    /// history's repeat-purchase and churn rates are read from it.
    pub activity: Option<String>,
    /// The text metric naming a customer's household or group (e.g. `household_id`): the
    /// console's customer card lists the customers sharing its value.
    pub household: Option<String>,
    /// Rows of a source that may be rejected (`--on-bad-rows quarantine`) before a run
    /// stops: `"1%"` of the rows read (default) or a number of rows.
    pub max_rejects: Option<LimitDef>,
    /// How far a source's rows may drop from the last recorded run before a run stops
    /// (default `"50%"`); `--allow-shrink` lets one run through.
    pub max_shrink: Option<String>,
    /// A metric infinite or NaN for some customers (an overflowing sum, a division by
    /// zero): `"warn"` (default; the value counts as missing) or `"error"` (the run stops).
    pub non_finite: Option<String>,
}

/// A limit written as a number (`50`) or text (`"1%"`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum LimitDef {
    Rows(u64),
    Text(String),
}

impl LimitDef {
    pub fn as_text(&self) -> String {
        match self {
            LimitDef::Rows(n) => n.to_string(),
            LimitDef::Text(s) => s.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceFormat {
    Csv,
    Parquet,
    #[serde(alias = "ndjson", alias = "json")]
    Jsonl,
    /// Manual inputs kept in the store.
    Inputs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    String,
    Int,
    Float,
    Bool,
    Date,
    Timestamp,
}

impl ColumnType {
    pub fn name(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Int => "int",
            Self::Float => "float",
            Self::Bool => "bool",
            Self::Date => "date",
            Self::Timestamp => "timestamp",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceDef {
    pub description: Option<String>,
    /// Path relative to the policy file's folder (not for `format = "inputs"`).
    #[serde(default)]
    pub path: String,
    /// csv, parquet or jsonl, taken from the file extension when omitted; or "inputs": the
    /// manual inputs kept in the history database (`stratum input set`), one row per
    /// customer with a column per field.
    pub format: Option<SourceFormat>,
    /// The customer key column.
    pub key: String,
    /// The event time column; sources without one are attribute tables (one row per customer).
    pub time: Option<String>,
    /// Column types for text formats; columns not named are inferred.
    #[serde(default)]
    pub columns: IndexMap<String, ColumnType>,
    /// Customers source only: the column holding tags, separated by `tag_separator`.
    pub tags: Option<String>,
    pub tag_separator: Option<String>,
    /// CSV only: field delimiter (default ",").
    pub delimiter: Option<String>,
    /// Customers source only: derive the customers from an event source instead of a file,
    /// one per distinct key, with `first_seen` and `last_seen` (the earliest and latest
    /// event time) as columns.
    pub from: Option<String>,
}

impl SourceDef {
    pub fn resolved_format(&self) -> Option<SourceFormat> {
        self.format.or_else(|| {
            let lower = self.path.to_lowercase();
            if lower.ends_with(".csv") || lower.ends_with(".tsv") {
                Some(SourceFormat::Csv)
            } else if lower.ends_with(".parquet") || lower.ends_with(".pq") {
                Some(SourceFormat::Parquet)
            } else if lower.ends_with(".jsonl")
                || lower.ends_with(".ndjson")
                || lower.ends_with(".json")
            {
                Some(SourceFormat::Jsonl)
            } else {
                None
            }
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum WindowDef {
    /// "12 months": from 12 months before the end of `as_of` to the end of `as_of`.
    Last(String),
    /// { from = "24 months", to = "12 months" }: both measured back from the end of `as_of`.
    Between { from: String, to: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RollupAgg {
    Avg,
    Sum,
    Min,
    Max,
    Count,
}

impl RollupAgg {
    pub fn sql(self) -> &'static str {
        match self {
            Self::Avg => "avg",
            Self::Sum => "sum",
            Self::Min => "min",
            Self::Max => "max",
            Self::Count => "count",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollupDef {
    /// Column of the customers source that groups customers (household, company group).
    pub group: String,
    /// The metric aggregated over the group's members.
    pub metric: String,
    pub agg: RollupAgg,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Literal {
    Num(f64),
    Text(String),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricDef {
    pub description: Option<String>,
    /// The source the expression reads; omitted for a metric computed from other metrics.
    pub source: Option<String>,
    /// SQL: an aggregate over an event source, a column expression over an attribute source,
    /// or an expression over other metrics.
    pub expr: Option<String>,
    pub window: Option<WindowDef>,
    /// SQL predicate on the source's rows, applied before aggregating.
    pub filter: Option<String>,
    /// Value for customers with no rows; `count`/`sum` aggregates default to 0, others to null.
    pub default: Option<Literal>,
    pub rollup: Option<RollupDef>,
    /// A lifetime-model measure: `p_alive`, `expected_purchases(26)`, `clv(12, 0.01)`, …
    pub lifetime: Option<String>,
    /// Display unit, e.g. "CNY" or "days".
    pub unit: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScoreKind {
    Weighted,
    Scorecard,
    Rfm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Normalize {
    #[default]
    Percentile,
    Minmax,
    Raw,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreDef {
    pub kind: ScoreKind,
    pub description: Option<String>,
    // weighted
    pub normalize: Option<Normalize>,
    pub scale: Option<f64>,
    #[serde(default)]
    pub parts: Vec<WeightedPart>,
    // scorecard
    #[serde(default)]
    pub dimensions: Vec<Dimension>,
    // rfm
    pub recency: Option<String>,
    pub frequency: Option<String>,
    pub monetary: Option<String>,
    pub bins: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightedPart {
    pub metric: String,
    pub weight: f64,
    pub normalize: Option<Normalize>,
    #[serde(default)]
    pub lower_is_better: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dimension {
    pub name: String,
    pub metric: String,
    pub max_points: Option<f64>,
    /// Text value → points.
    pub categories: Option<IndexMap<String, f64>>,
    /// Numeric bands, first match wins: `min <= value < max`.
    pub bands: Option<Vec<Band>>,
    /// Points for a customer without a value (default 0), e.g. "no revenue in the earlier
    /// year: 15 points".
    pub missing: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Band {
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub points: f64,
    pub label: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LadderDef {
    pub title: Option<String>,
    /// The ladder's name per console language: `label = { zh = "客户金字塔", en = "Pyramid" }`.
    #[serde(default)]
    pub label: Label,
    pub description: Option<String>,
    /// The measure that orders customers for quotas, value shares, ranks and ties.
    pub rank_by: Option<String>,
    /// Condition choosing who this ladder grades (e.g. `customer_type = 'dealer'`); others are
    /// shown as not applicable and do not count towards shares.
    pub applies_to: Option<String>,
    /// The measure summed per level in the report (the profit pyramid); defaults to `rank_by`.
    pub value: Option<String>,
    /// The levels, best first (a cluster ladder may leave them out: `cluster_1` … `cluster_k`).
    #[serde(default)]
    pub levels: Vec<LevelDef>,
    #[serde(default)]
    pub overrides: Vec<OverrideDef>,
    /// Grace and hysteresis between runs; without it a customer takes the level the rules
    /// give at every run.
    pub hold: Option<HoldDef>,
    /// Which way is better: `"up"` (default: the first level is the best, as in a pyramid)
    /// or `"down"` (a risk ladder such as credit watch: the first level is the worst).
    pub better: Option<Better>,
    /// k-means segments as levels: the levels take the clusters, highest mean `value` first.
    pub cluster: Option<ClusterDef>,
}

/// `[ladders.X.cluster]`: which features k-means groups customers by, and how.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClusterDef {
    /// Metrics or scores, each a dimension of the distance.
    pub features: Vec<String>,
    /// `none`, `zscore` (default), `log1p-zscore`, `minmax` or `rank`: one for every
    /// feature, or a table per feature (`{ spend = "log1p-zscore" }`, the rest z-score).
    pub transform: Option<TransformDef>,
    /// The number of clusters (the number of levels that take clusters), or a range
    /// `"2..6"` chosen at every run by the silhouette score, the chosen k taking the first
    /// levels.
    pub k: Option<KDef>,
    /// k-means++ starts; the lowest inertia is kept (default 10).
    pub restarts: Option<u32>,
    /// The seed every start is drawn from (default 0): the same data give the same clusters.
    pub seed: Option<u64>,
    /// A customer lacking a feature: `"median"` (default: the graded customers' median) or
    /// the name of a level that takes such customers instead of a cluster.
    pub missing: Option<String>,
    /// Fixed centres, per cluster level, in the features' own units: customers are only
    /// assigned to the nearest, no k-means runs.
    pub centres: Option<std::collections::BTreeMap<String, Vec<f64>>>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum KDef {
    Fixed(usize),
    Range(String),
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum TransformDef {
    All(String),
    PerFeature(std::collections::BTreeMap<String, String>),
}

/// A language the console speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    En,
    Zh,
}

impl Lang {
    /// `en` or `zh` (a language tag's primary part).
    pub fn parse(tag: &str) -> Option<Lang> {
        match tag.trim().to_ascii_lowercase().as_str() {
            "en" => Some(Lang::En),
            "zh" => Some(Lang::Zh),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh",
        }
    }
}

/// A name shown to people, per language (`label = { zh = "关键客户", en = "Key" }`); either
/// may be left out, and the policy's own name is shown instead.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Label {
    pub zh: Option<String>,
    pub en: Option<String>,
}

impl Label {
    pub fn get(&self, lang: Lang) -> Option<&str> {
        match lang {
            Lang::En => self.en.as_deref(),
            Lang::Zh => self.zh.as_deref(),
        }
    }
}

/// Which end of a ladder is the better one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    /// The first level is the best: moving towards it is an upgrade.
    #[default]
    Up,
    /// The first level is the worst (risk, arrears): moving away from it is the upgrade.
    Down,
}

/// `[ladders.NAME.hold]`: how fast customers move between runs. Every option set must be met
/// before a downgrade happens; upgrades wait only for `upgrade_after_runs`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldDef {
    /// Upgrade only after the rules place the customer higher at this many consecutive runs
    /// (1 = at once, the default).
    pub upgrade_after_runs: Option<u32>,
    /// Downgrade only after the rules place the customer lower at this many consecutive runs.
    pub downgrade_after_runs: Option<u32>,
    /// Downgrade only once the customer has been below its level for this many days.
    pub grace_days: Option<u32>,
    /// Downgrade only after the end of the qualification period (month, quarter or year) in
    /// which the customer last qualified for its level.
    pub qualification_period: Option<Period>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    Month,
    Quarter,
    Year,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LevelDef {
    pub name: String,
    pub title: Option<String>,
    /// The level's name per console language: `label = { zh = "关键客户", en = "Key" }`.
    #[serde(default)]
    pub label: Label,
    /// Condition over metrics and scores (SQL syntax).
    pub when: Option<String>,
    /// The next share of all customers by `rank_by` (0.01 = 1%).
    pub top_share: Option<f64>,
    /// The next N customers by `rank_by`.
    pub top_n: Option<u64>,
    /// Customers holding the next share of total `value`, taken in `rank_by` order (ABC/Pareto).
    pub value_share: Option<f64>,
    /// Everyone not placed above.
    #[serde(default)]
    pub rest: bool,
    /// The level lapses this many days after the customer reached it; the customer then takes
    /// whatever the rules give, without grace (an expiring status).
    pub valid_days: Option<u32>,
    /// Free-form attributes later stages read: benefits, SLA, follow-up days, credit limit…
    #[serde(default)]
    pub attributes: toml::Table,
}

/// How an override places a customer: one type from the policy file through the store,
/// the API (serde) and the CLI (`FromStr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OverrideMode {
    /// The customer is placed exactly on the level.
    #[default]
    Pin,
    /// The customer is placed on the level or above.
    Floor,
    /// The customer is placed on the level or below.
    Ceiling,
}

impl OverrideMode {
    pub const ALL: [OverrideMode; 3] = [
        OverrideMode::Pin,
        OverrideMode::Floor,
        OverrideMode::Ceiling,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OverrideMode::Pin => "pin",
            OverrideMode::Floor => "floor",
            OverrideMode::Ceiling => "ceiling",
        }
    }
}

impl std::fmt::Display for OverrideMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for OverrideMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        OverrideMode::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| format!("override mode `{s}` must be pin, floor or ceiling"))
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideDef {
    pub tag: String,
    pub level: String,
    #[serde(default)]
    pub mode: OverrideMode,
}

/// Reads TOML text into the model, turning syntax and shape errors into located diagnostics.
pub fn parse_policy(file: &str, text: &str) -> Result<(PolicyFile, SourceMap), Diagnostics> {
    let map = SourceMap::new(file, text);
    match toml::from_str::<PolicyFile>(text) {
        Ok(policy) => Ok((policy, map)),
        Err(err) => {
            let message = err.message().to_string();
            let mut diag = Diagnostic::new(Code::InvalidPolicy, "", message.clone());
            diag.location = err.span().map(|s| map.location_of_offset(s.start));
            if let Some((wrong, expected)) = unknown_field_parts(&message) {
                diag = match did_you_mean(&wrong, expected.iter().map(String::as_str)) {
                    Some(best) => diag.with_help(format!("did you mean `{best}`?")),
                    None => diag.with_help(format!("expected one of: {}", expected.join(", "))),
                };
            }
            Err(Diagnostics(vec![diag]))
        }
    }
}

/// Splits serde's "unknown field `x`, expected one of `a`, `b`" into its parts.
fn unknown_field_parts(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (wrong, rest) = rest.split_once('`')?;
    let expected = rest
        .split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s.to_string())
        .collect();
    Some((wrong.to_string(), expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_is_located_with_a_suggestion() {
        let text = "[sources.customers]\npath = \"c.csv\"\nkey = \"id\"\n\n[metrics.revenue]\nsource = \"customers\"\nexpresion = \"sum(x)\"\n";
        let err = parse_policy("p.toml", text).unwrap_err();
        let d = &err.0[0];
        assert_eq!(d.location.as_ref().unwrap().line, 7);
        assert_eq!(d.help.as_deref(), Some("did you mean `expr`?"));
    }

    #[test]
    fn wrong_type_is_located() {
        let text = "[sources.customers]\npath = \"c.csv\"\nkey = 5\n";
        let err = parse_policy("p.toml", text).unwrap_err();
        assert_eq!(err.0[0].location.as_ref().unwrap().line, 3);
        assert!(err.0[0].message.contains("string"), "{}", err.0[0].message);
    }
}
