//! The checked policy: what compilation (`compile`) makes of a policy file and all that the
//! rest of Stratum reads — sources with their formats resolved, metrics in dependency order,
//! scores, ladders with parsed conditions, service, lifetime models, churn rule, guards and
//! the `[policy]` settings. Nothing downstream reads the raw file (`policy::PolicyFile`).

use chrono::{Days, NaiveDate};
use indexmap::IndexMap;

use crate::cond::Cond;
use crate::diagnostic::Diagnostic;
use crate::policy::*;
use crate::service::Service;
use crate::source_map::SourceMap;
use crate::time::Offset;

/// `[policy]`, checked: what the runner reads of it (the guards are [`Policy::guards`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolicySettings {
    /// The name runs are kept under (see [`Policy::history_name`]).
    pub name: Option<String>,
    /// The default evaluation date, as written (`YYYY-MM-DD`).
    pub as_of: Option<String>,
    /// Display only, e.g. "CNY".
    pub currency: Option<String>,
    /// The CSV of manual level pins, relative to the policy's folder.
    pub overrides_file: Option<String>,
    /// The metric counting a customer's purchases in the window (repeat and churn rates).
    pub activity: Option<String>,
    /// The text metric naming a customer's household (the console lists its members).
    pub household: Option<String>,
    /// `[engine] cluster`: the Ballista scheduler stage one runs on.
    pub cluster: Option<ClusterUrl>,
    /// `[engine] timeout_seconds`: how long one stage-one aggregation may wait for the
    /// cluster ([`DEFAULT_CLUSTER_TIMEOUT_SECONDS`] if not set).
    pub cluster_timeout_seconds: Option<u64>,
}

/// How long a stage-one aggregation waits for a cluster unless the policy says otherwise.
pub const DEFAULT_CLUSTER_TIMEOUT_SECONDS: u64 = 1800;

/// A Ballista scheduler's address, written `df://host:port` (port 50050 if left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterUrl {
    pub host: String,
    pub port: u16,
}

/// The port Ballista schedulers listen on unless told otherwise.
pub const DEFAULT_SCHEDULER_PORT: u16 = 50050;

impl std::str::FromStr for ClusterUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<ClusterUrl, String> {
        let rest = text.strip_prefix("df://").ok_or_else(|| {
            format!("`{text}` does not start with df:// (e.g. df://scheduler:50050)")
        })?;
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) => (
                host,
                port.parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| format!("`{port}` in `{text}` is not a port number"))?,
            ),
            None => (rest, DEFAULT_SCHEDULER_PORT),
        };
        if host.is_empty() || host.contains(['/', '@', '?', '#', ' ']) {
            return Err(format!(
                "`{text}` names no host (e.g. df://scheduler:50050)"
            ));
        }
        Ok(ClusterUrl {
            host: host.to_string(),
            port,
        })
    }
}

impl std::fmt::Display for ClusterUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "df://{}:{}", self.host, self.port)
    }
}

/// A source, checked: its format resolved (from `format` or the file's extension; a source
/// derived with `from` has its event source's).
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// Relative to the policy's folder; empty for `inputs` and derived sources.
    pub path: String,
    pub format: SourceFormat,
    pub key: String,
    pub time: Option<String>,
    pub columns: IndexMap<String, ColumnType>,
    pub tags: Option<String>,
    pub tag_separator: Option<String>,
    pub delimiter: Option<String>,
    /// Customers only: derived from this event source.
    pub from: Option<String>,
}

/// `[churn]`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ChurnRule {
    pub p_alive: String,
    pub below: f64,
    pub drop: f64,
    pub value: Option<String>,
    pub ladder: Option<String>,
}

/// Where a customer is when it holds no level of a ladder. Their names are written where
/// level names are (outputs, the history), so a policy may not name a level so
/// (`reserved_level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholder {
    /// Matched no level, and the ladder has no `rest` level.
    Unplaced,
    /// Outside the ladder's `applies_to`.
    NotApplicable,
}

impl Placeholder {
    pub const ALL: [Placeholder; 2] = [Placeholder::Unplaced, Placeholder::NotApplicable];

    pub const fn name(self) -> &'static str {
        match self {
            Placeholder::Unplaced => "(unplaced)",
            Placeholder::NotApplicable => "(not applicable)",
        }
    }

    /// The placeholder a level name is, if it is one.
    pub fn named(name: &str) -> Option<Placeholder> {
        Placeholder::ALL.into_iter().find(|p| p.name() == name)
    }

    pub(crate) fn meaning(self) -> &'static str {
        match self {
            Placeholder::Unplaced => "who matches no level",
            Placeholder::NotApplicable => "outside a ladder's applies_to",
        }
    }
}

pub const UNPLACED: &str = Placeholder::Unplaced.name();
pub const NOT_APPLICABLE: &str = Placeholder::NotApplicable.name();

/// A metric's time window, measured back from the end of the `as_of` day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: Offset,
    pub to: Option<Offset>,
}

impl Window {
    /// `[start, end)` as dates: the window covers whole days, and `as_of` is included.
    pub fn bounds(&self, as_of: NaiveDate) -> (NaiveDate, NaiveDate) {
        let end_of_as_of = as_of + Days::new(1);
        let end = self.to.map_or(end_of_as_of, |o| o.before(end_of_as_of));
        (self.from.before(end_of_as_of), end)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum MetricKind {
    /// Aggregate over an event source within a window (always ending by `as_of`).
    Event {
        source: String,
        expr: String,
        window: Option<Window>,
        filter: Option<String>,
        default: Option<Literal>,
    },
    /// Expression over one row per customer of an attribute source (customers, manual inputs).
    Attribute {
        source: String,
        expr: String,
        default: Option<Literal>,
    },
    /// Expression over other metrics.
    Derived { expr: String, deps: Vec<String> },
    /// A lifetime-model measure over the `[lifetime]` purchases (null for customers without
    /// purchases unless `default` says otherwise).
    Lifetime {
        measure: crate::clv::Measure,
        default: Option<Literal>,
    },
    /// Aggregate of a metric over the members of the customer's group (household).
    Rollup {
        group: String,
        metric: String,
        agg: RollupAgg,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub name: String,
    pub kind: MetricKind,
    pub unit: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    pub input: String,
    pub weight: f64,
    pub normalize: Normalize,
    pub lower_is_better: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ScoreSpec {
    Weighted {
        scale: f64,
        parts: Vec<Part>,
    },
    Scorecard {
        dimensions: Vec<Dimension>,
    },
    Rfm {
        recency: String,
        frequency: String,
        monetary: String,
        bins: u32,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    pub name: String,
    pub spec: ScoreSpec,
}

impl Score {
    /// Extra numeric columns this score adds beside its own (RFM's r, f, m).
    pub fn sub_names(&self) -> Vec<String> {
        match self.spec {
            ScoreSpec::Rfm { .. } => ["r", "f", "m"]
                .iter()
                .map(|s| format!("{}_{s}", self.name))
                .collect(),
            _ => Vec::new(),
        }
    }
    pub fn inputs(&self) -> Vec<&str> {
        match &self.spec {
            ScoreSpec::Weighted { parts, .. } => parts.iter().map(|p| p.input.as_str()).collect(),
            ScoreSpec::Scorecard { dimensions } => {
                dimensions.iter().map(|d| d.metric.as_str()).collect()
            }
            ScoreSpec::Rfm {
                recency,
                frequency,
                monetary,
                ..
            } => vec![recency, frequency, monetary],
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    When(Cond),
    TopShare {
        share: f64,
        when: Option<Cond>,
    },
    TopN {
        n: u64,
        when: Option<Cond>,
    },
    ValueShare {
        share: f64,
        when: Option<Cond>,
    },
    Rest,
    /// A cluster ladder's level: the cluster with the `order`-th highest mean value (0 = the
    /// highest).
    Cluster {
        order: usize,
    },
    /// A cluster ladder's level for customers lacking a feature (`missing = "<level>"`).
    MissingFeatures,
}

/// A cluster ladder's k-means, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterRule {
    pub features: Vec<String>,
    /// One per feature.
    pub transforms: Vec<crate::cluster::Transform>,
    /// `k` is the number of levels taking clusters, or the top of `k_range`.
    pub options: crate::cluster::KMeansOptions,
    /// Set when the policy gives a range: k is chosen at every run by the silhouette.
    pub k_range: Option<std::ops::RangeInclusive<usize>>,
    /// Fixed centres (level index, centre in the features' units), in level order: assign
    /// only.
    pub centres: Option<Vec<(usize, Vec<f64>)>>,
    pub missing: MissingFeature,
}

/// What a cluster ladder does with a customer lacking a feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingFeature {
    /// Cluster it with the graded customers' median in place of what it lacks.
    Median,
    /// Place it on this level (index) instead.
    Level(usize),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Level {
    pub name: String,
    pub title: Option<String>,
    pub label: Label,
    pub rule: Rule,
    pub valid_days: Option<u32>,
    pub attributes: toml::Table,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ladder {
    pub name: String,
    pub title: Option<String>,
    pub label: Label,
    pub applies_to: Option<Cond>,
    pub rank_by: Option<String>,
    pub value: Option<String>,
    pub levels: Vec<Level>,
    pub overrides: Vec<OverrideDef>,
    pub hold: HoldDef,
    /// Which way is better (`better = "down"` for risk ladders).
    pub better: crate::policy::Better,
    /// Set for a ladder whose levels are k-means clusters.
    pub cluster: Option<ClusterRule>,
}

impl Level {
    /// The level's name in a language: its label, else its name.
    pub fn shown(&self, lang: Lang) -> &str {
        self.label.get(lang).unwrap_or(&self.name)
    }
}

impl Ladder {
    /// The ladder's name in a language: its label, else its name (the title is a sentence,
    /// for headings).
    pub fn shown(&self, lang: Lang) -> &str {
        self.label.get(lang).unwrap_or(&self.name)
    }
    /// A level's name in a language, by the level's name (`n/a` and unknown names as given).
    pub fn level_shown<'a>(&'a self, level: &'a str, lang: Lang) -> &'a str {
        self.levels
            .iter()
            .find(|l| l.name == level)
            .map_or(level, |l| l.shown(lang))
    }
    pub fn level_index(&self, name: &str) -> Option<usize> {
        self.levels.iter().position(|l| l.name == name)
    }
    /// The measure summed per level in reports.
    pub fn value_measure(&self) -> Option<&str> {
        self.value.as_deref().or(self.rank_by.as_deref())
    }
}

/// A checked policy, ready to evaluate.
#[derive(Debug)]
pub struct Policy {
    /// `[policy]`: name, default date, overrides file, activity metric.
    pub settings: PolicySettings,
    /// Every source, its format resolved.
    pub sources: IndexMap<String, Source>,
    pub map: SourceMap,
    /// In dependency order.
    pub metrics: Vec<Metric>,
    /// In dependency order.
    pub scores: Vec<Score>,
    pub ladders: Vec<Ladder>,
    /// Present when the policy has `[service]` or `[benefits.*]`.
    pub service: Option<Service>,
    /// Present when the policy has `[lifetime]`.
    pub lifetime: Option<Lifetime>,
    /// Present when the policy has `[churn]`.
    pub churn: Option<ChurnRule>,
    /// Present when the policy has `[pipeline]`.
    pub pipeline: Option<crate::pipeline::Pipeline>,
    /// `[teams]`: who leads whom (empty without).
    pub teams: crate::teams::Teams,
    /// Present when the policy has `[assignment]`.
    pub assignment: Option<crate::assign::AssignmentRule>,
    /// Warnings found while compiling (lint adds more).
    pub warnings: Vec<Diagnostic>,
    /// `[policy] max_rejects` and `max_shrink`.
    pub guards: crate::guard::Guards,
}

/// `[lifetime]`, checked: the purchases the lifetime models are fitted to.
#[derive(Debug, Clone, PartialEq)]
pub struct Lifetime {
    pub source: String,
    pub amount: Option<String>,
    pub filter: Option<String>,
    pub unit: crate::clv::TimeUnit,
}

impl Policy {
    /// Each event metric's window as of `as_of`, as dates: `[start, end)`, start `None` for
    /// all history. What `check` and `explain` print, so "as of" is never misread.
    pub fn metric_windows(&self, as_of: NaiveDate) -> Vec<(&str, Option<NaiveDate>, NaiveDate)> {
        self.metrics
            .iter()
            .filter_map(|m| match &m.kind {
                MetricKind::Event { window, .. } => Some(match window {
                    Some(w) => {
                        let (start, end) = w.bounds(as_of);
                        (m.name.as_str(), Some(start), end)
                    }
                    None => (m.name.as_str(), None, as_of + Days::new(1)),
                }),
                _ => None,
            })
            .collect()
    }

    /// `[lifetime]` with the metrics that read it (name, measure), when any does: only then
    /// are the models fitted.
    pub fn lifetime_metrics(&self) -> Option<(&Lifetime, Vec<(&str, crate::clv::Measure)>)> {
        let lifetime = self.lifetime.as_ref()?;
        let metrics: Vec<(&str, crate::clv::Measure)> = self
            .metrics
            .iter()
            .filter_map(|m| match &m.kind {
                MetricKind::Lifetime { measure, .. } => Some((m.name.as_str(), *measure)),
                _ => None,
            })
            .collect();
        (!metrics.is_empty()).then_some((lifetime, metrics))
    }

    /// The name runs are kept under: `[policy] name`, else "default".
    pub fn history_name(&self) -> &str {
        self.settings.name.as_deref().unwrap_or("default")
    }

    pub fn source(&self, name: &str) -> Option<&Source> {
        self.sources.get(name)
    }
    pub fn metric(&self, name: &str) -> Option<&Metric> {
        self.metrics.iter().find(|m| m.name == name)
    }
    pub fn ladder(&self, name: &str) -> Option<&Ladder> {
        self.ladders.iter().find(|l| l.name == name)
    }
    pub fn locate(&self, mut d: Diagnostic) -> Diagnostic {
        if d.location.is_none() {
            d.location = self.map.locate(&d.key);
        }
        d
    }
    /// Names usable in conditions and as score inputs: metrics, scores and score parts.
    pub fn value_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.metrics.iter().map(|m| m.name.clone()).collect();
        for s in &self.scores {
            names.push(s.name.clone());
            names.extend(s.sub_names());
        }
        names
    }
}
