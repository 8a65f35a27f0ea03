//! Turns a [`PolicyFile`] into a checked [`Policy`]: names resolved, conditions parsed, metrics
//! ordered by dependency, windows understood. Every problem becomes a located diagnostic.

use crate::diagnostic::Code;
use std::collections::{HashMap, HashSet};

use chrono::{Days, NaiveDate};

use crate::cond::{Cond, parse_condition, sql_identifiers};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::policy::*;
use crate::service::{Benefit, Quota, QuotaPeriod, Service};
use crate::source_map::SourceMap;

pub use crate::time::{MAX_WINDOW_YEARS, Offset, TimeUnit};

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
    TopShare { share: f64, when: Option<Cond> },
    TopN { n: u64, when: Option<Cond> },
    ValueShare { share: f64, when: Option<Cond> },
    Rest,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Level {
    pub name: String,
    pub title: Option<String>,
    pub rule: Rule,
    pub valid_days: Option<u32>,
    pub attributes: toml::Table,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ladder {
    pub name: String,
    pub title: Option<String>,
    pub applies_to: Option<Cond>,
    pub rank_by: Option<String>,
    pub value: Option<String>,
    pub levels: Vec<Level>,
    pub overrides: Vec<OverrideDef>,
    pub hold: HoldDef,
    /// Which way is better (`better = "down"` for risk ladders).
    pub better: crate::policy::Better,
}

impl Ladder {
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
    pub file: PolicyFile,
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
    pub churn: Option<crate::churn::ChurnRule>,
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
        self.file.policy.name.as_deref().unwrap_or("default")
    }

    /// Parses and checks policy text. `file` names it in diagnostics.
    pub fn from_str(file: &str, text: &str) -> Result<Policy, Diagnostics> {
        let (raw, map) = parse_policy(file, text)?;
        compile(raw, map)
    }

    pub fn source(&self, name: &str) -> Option<&SourceDef> {
        self.file.sources.get(name)
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

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    // Lower case only: SQL folds unquoted identifiers to lower case, so `Revenue` in an
    // expression would never find a metric named `Revenue`.
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn is_zero_default_aggregate(expr: &str) -> bool {
    let lower = expr.trim_start().to_lowercase();
    lower.starts_with("count(") || lower.starts_with("sum(")
}

struct Ctx<'a> {
    map: &'a SourceMap,
    diags: Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn push(&mut self, mut d: Diagnostic) {
        if d.location.is_none() {
            d.location = self.map.locate(&d.key);
        }
        self.diags.push(d);
    }
}

pub fn compile(raw: PolicyFile, map: SourceMap) -> Result<Policy, Diagnostics> {
    let mut cx = Ctx {
        map: &map,
        diags: Vec::new(),
    };

    // Sources.
    if !raw.sources.contains_key(CUSTOMERS) {
        cx.push(
            Diagnostic::new(
                Code::MissingCustomers,
                "sources",
                "the policy has no `[sources.customers]` table",
            )
            .with_help("every policy lists its customers in a source named `customers`"),
        );
    }
    for (name, src) in &raw.sources {
        let key = format!("sources.{name}");
        if !valid_name(name) {
            cx.push(Diagnostic::new(
                Code::InvalidName,
                &key,
                format!("source name `{name}` must be lower-case letters, digits and _"),
            ));
        }
        if let Some(from) = &src.from {
            let event = raw
                .sources
                .get(from)
                .filter(|s| s.time.is_some() && s.from.is_none());
            if name != CUSTOMERS {
                cx.push(Diagnostic::new(
                    Code::InvalidDerivedSource,
                    format!("{key}.from"),
                    "only the customers source can be derived from another source",
                ));
            } else if !src.path.is_empty() {
                cx.push(Diagnostic::new(
                    Code::InvalidDerivedSource,
                    format!("{key}.from"),
                    "a customers source takes either `path` or `from`, not both",
                ));
            } else if event.is_none() {
                cx.push(
                    Diagnostic::new(
                        Code::InvalidDerivedSource,
                        format!("{key}.from"),
                        format!("`{from}` is not an event source (a source with a `time` column)"),
                    )
                    .suggest(
                        from,
                        raw.sources
                            .iter()
                            .filter(|(_, s)| s.time.is_some())
                            .map(|(n, _)| n.as_str()),
                    ),
                );
            }
        } else if src.format == Some(SourceFormat::Inputs) {
            if !src.path.is_empty() || src.time.is_some() || name == CUSTOMERS {
                cx.push(Diagnostic::new(
                    Code::InvalidInputsSource,
                    &key,
                    "a `format = \"inputs\"` source reads the manual inputs kept in the history \
                     database: it takes no path and no time, and cannot be the customers source",
                ));
            }
        } else if src.path.is_empty() {
            cx.push(
                Diagnostic::new(
                    Code::MissingPath,
                    format!("{key}.path"),
                    "the source has no path",
                )
                .with_help("add path = \"<file relative to the policy>\""),
            );
        } else if src.resolved_format().is_none() {
            cx.push(
                Diagnostic::new(
                    Code::UnknownFormat,
                    format!("{key}.path"),
                    format!("cannot tell the format of `{}`", src.path),
                )
                .with_help("add format = \"csv\", \"parquet\" or \"jsonl\""),
            );
        }
        if name == CUSTOMERS && src.time.is_some() {
            cx.push(Diagnostic::new(
                Code::CustomersWithTime,
                format!("{key}.time"),
                "the customers source has one row per customer and takes no `time` column",
            ));
        }
        if name != CUSTOMERS && src.tags.is_some() {
            cx.push(Diagnostic::new(
                Code::TagsOutsideCustomers,
                format!("{key}.tags"),
                "only the customers source can name a tags column",
            ));
        }
    }
    let source_names: Vec<&str> = raw.sources.keys().map(String::as_str).collect();

    // Metrics.
    let metric_names: HashSet<&str> = raw.metrics.keys().map(String::as_str).collect();
    let mut metrics = Vec::new();
    for (name, def) in &raw.metrics {
        let key = format!("metrics.{name}");
        if !valid_name(name) {
            cx.push(Diagnostic::new(
                Code::InvalidName,
                &key,
                format!("metric name `{name}` must be lower-case letters, digits and _"),
            ));
            continue;
        }
        if let Some(text) = &def.lifetime {
            if def.source.is_some()
                || def.expr.is_some()
                || def.rollup.is_some()
                || def.window.is_some()
                || def.filter.is_some()
            {
                cx.push(
                    Diagnostic::new(
                        Code::InvalidMetric,
                        format!("{key}.lifetime"),
                        format!("metric `{name}` has `lifetime`, which takes no source, expr, window, filter or rollup"),
                    )
                    .with_help("the purchases the models are fitted to are set once, under `[lifetime]`"),
                );
                continue;
            }
            let measure = match crate::clv::Measure::parse(text) {
                Ok(m) => m,
                Err(e) => {
                    cx.push(Diagnostic::new(
                        Code::InvalidLifetime,
                        format!("{key}.lifetime"),
                        e,
                    ));
                    continue;
                }
            };
            match &raw.lifetime {
                None => {
                    cx.push(
                        Diagnostic::new(
                            Code::MissingLifetime,
                            format!("{key}.lifetime"),
                            format!("metric `{name}` needs the `[lifetime]` table"),
                        )
                        .with_help("add [lifetime] with source = \"<event source>\" (and amount = \"<spend column>\" for clv)"),
                    );
                    continue;
                }
                Some(l) if measure.needs_spend() && l.amount.is_none() => {
                    cx.push(Diagnostic::new(
                        Code::MissingAmount,
                        format!("{key}.lifetime"),
                        format!("`{text}` needs the spend model: add `amount` under `[lifetime]`"),
                    ));
                    continue;
                }
                Some(_) => {}
            }
            metrics.push(Metric {
                name: name.clone(),
                kind: MetricKind::Lifetime {
                    measure,
                    default: def.default.clone(),
                },
                unit: def.unit.clone(),
            });
            continue;
        }
        let mut too_large = false;
        for (field, text) in [("expr", &def.expr), ("filter", &def.filter)] {
            if let Some(Err(e)) = text.as_deref().map(crate::cond::check_size) {
                cx.push(Diagnostic::new(
                    Code::ExpressionTooLarge,
                    format!("{key}.{field}"),
                    e,
                ));
                too_large = true;
            }
        }
        if too_large {
            continue;
        }
        let kind = match (&def.source, &def.expr, &def.rollup) {
            (Some(source), Some(expr), None) => {
                let Some(src) = raw.sources.get(source) else {
                    cx.push(
                        Diagnostic::new(
                            Code::UnknownSource,
                            format!("{key}.source"),
                            format!("unknown source `{source}`"),
                        )
                        .suggest(source, source_names.iter().copied()),
                    );
                    continue;
                };
                if src.time.is_some() {
                    let window = match &def.window {
                        None => None,
                        Some(WindowDef::Last(s)) => match Offset::parse(s) {
                            Ok(from) => Some(Window { from, to: None }),
                            Err(e) => {
                                cx.push(Diagnostic::new(
                                    Code::InvalidWindow,
                                    format!("{key}.window"),
                                    e,
                                ));
                                continue;
                            }
                        },
                        Some(WindowDef::Between { from, to }) => {
                            match (Offset::parse(from), Offset::parse(to)) {
                                (Ok(from), Ok(to)) => Some(Window { from, to: Some(to) }),
                                (Err(e), _) | (_, Err(e)) => {
                                    cx.push(Diagnostic::new(
                                        Code::InvalidWindow,
                                        format!("{key}.window"),
                                        e,
                                    ));
                                    continue;
                                }
                            }
                        }
                    };
                    let default = def
                        .default
                        .clone()
                        .or_else(|| is_zero_default_aggregate(expr).then_some(Literal::Num(0.0)));
                    MetricKind::Event {
                        source: source.clone(),
                        expr: expr.clone(),
                        window,
                        filter: def.filter.clone(),
                        default,
                    }
                } else {
                    if def.window.is_some() || def.filter.is_some() {
                        cx.push(Diagnostic::new(
                            Code::WindowOnAttributes,
                            format!("{key}.window"),
                            format!("source `{source}` has no time column, so `window` and `filter` do not apply"),
                        ));
                    }
                    MetricKind::Attribute {
                        source: source.clone(),
                        expr: expr.clone(),
                        default: def.default.clone(),
                    }
                }
            }
            (None, Some(expr), None) => {
                let known = |n: &str| metric_names.contains(n);
                match sql_identifiers(expr, &known) {
                    Ok(ids) => {
                        let mut deps = Vec::new();
                        for id in ids {
                            if id == *name {
                                cx.push(Diagnostic::new(
                                    Code::MetricCycle,
                                    format!("{key}.expr"),
                                    format!("metric `{name}` refers to itself"),
                                ));
                            } else if metric_names.contains(id.as_str()) {
                                if !deps.contains(&id) {
                                    deps.push(id);
                                }
                            } else {
                                cx.push(
                                    Diagnostic::new(Code::UnknownMetric, format!("{key}.expr"), format!("unknown metric `{id}` in `{expr}`"))
                                        .suggest(&id, metric_names.iter().copied())
                                        .with_help_if_none("a metric without `source` is computed from other metrics; add `source` to read a table"),
                                );
                            }
                        }
                        MetricKind::Derived {
                            expr: expr.clone(),
                            deps,
                        }
                    }
                    Err(e) => {
                        cx.push(Diagnostic::new(Code::InvalidExpr, format!("{key}.expr"), e));
                        continue;
                    }
                }
            }
            (None, None, Some(r)) => {
                if !metric_names.contains(r.metric.as_str()) {
                    cx.push(
                        Diagnostic::new(
                            Code::UnknownMetric,
                            format!("{key}.rollup.metric"),
                            format!("unknown metric `{}`", r.metric),
                        )
                        .suggest(&r.metric, metric_names.iter().copied()),
                    );
                    continue;
                }
                MetricKind::Rollup {
                    group: r.group.clone(),
                    metric: r.metric.clone(),
                    agg: r.agg,
                }
            }
            (Some(_), None, None) => {
                cx.push(Diagnostic::new(
                    Code::MissingExpr,
                    &key,
                    format!("metric `{name}` names a source but no `expr`"),
                ));
                continue;
            }
            _ => {
                cx.push(
                    Diagnostic::new(Code::InvalidMetric, &key, format!("metric `{name}` needs exactly one of: `source` + `expr`, `expr` alone, or `rollup`")),
                );
                continue;
            }
        };
        metrics.push(Metric {
            name: name.clone(),
            kind,
            unit: def.unit.clone(),
        });
    }
    let metrics = order_metrics(metrics, &mut cx);
    let lifetime = raw
        .lifetime
        .as_ref()
        .and_then(|l| compile_lifetime(l, &raw.sources, &mut cx));

    // Scores.
    let mut value_names: Vec<String> = metrics.iter().map(|m| m.name.clone()).collect();
    let mut scores = Vec::new();
    for (name, def) in &raw.scores {
        let key = format!("scores.{name}");
        if !valid_name(name) {
            cx.push(Diagnostic::new(
                Code::InvalidName,
                &key,
                format!("score name `{name}` must be lower-case letters, digits and _"),
            ));
            continue;
        }
        if metric_names.contains(name.as_str()) {
            cx.push(Diagnostic::new(
                Code::DuplicateName,
                &key,
                format!("`{name}` is both a metric and a score"),
            ));
            continue;
        }
        if let Some(spec) = compile_score(name, def, &key, &mut cx) {
            scores.push(Score {
                name: name.clone(),
                spec,
            });
        }
    }
    let scores = order_scores(scores, &value_names, &mut cx);
    for s in &scores {
        value_names.push(s.name.clone());
        value_names.extend(s.sub_names());
    }

    // Ladders.
    let mut ladders = Vec::new();
    for (name, def) in &raw.ladders {
        if let Some(l) = compile_ladder(name, def, &value_names, &mut cx) {
            ladders.push(l);
        }
    }
    if let Some(a) = &raw.policy.activity
        && !metrics.iter().any(|m| &m.name == a)
    {
        cx.push(
            Diagnostic::new(
                Code::UnknownMetric,
                "policy.activity",
                format!("unknown metric `{a}`"),
            )
            .suggest(a, metrics.iter().map(|m| m.name.as_str())),
        );
    }
    let guards = crate::guard::compile(
        raw.policy
            .max_rejects
            .as_ref()
            .map(crate::policy::LimitDef::as_text)
            .as_deref(),
        raw.policy.max_shrink.as_deref(),
        raw.policy.non_finite.as_deref(),
        &mut |d| cx.push(d),
    );
    if raw.ladders.is_empty() {
        cx.push(Diagnostic::new(
            Code::NoLadders,
            "ladders",
            "the policy defines no ladders, so no one is placed",
        ));
    }

    if cx.diags.iter().any(Diagnostic::is_error) {
        return Err(Diagnostics(cx.diags));
    }
    let service = compile_service(&raw, &ladders, &metrics, &mut cx);
    let churn = raw
        .churn
        .as_ref()
        .and_then(|c| crate::churn::compile(c, &ladders, &metrics, &mut |d| cx.push(d)));
    if cx.diags.iter().any(Diagnostic::is_error) {
        return Err(Diagnostics(cx.diags));
    }
    let warnings = cx.diags;
    Ok(Policy {
        file: raw,
        map,
        metrics,
        scores,
        ladders,
        service,
        lifetime,
        churn,
        warnings,
        guards,
    })
}

/// `[lifetime]`, checked against the sources.
fn compile_lifetime(
    def: &LifetimeDef,
    sources: &indexmap::IndexMap<String, SourceDef>,
    cx: &mut Ctx<'_>,
) -> Option<Lifetime> {
    let unit = match def.unit.as_deref() {
        None => TimeUnit::Week,
        Some(u) => match TimeUnit::parse(u) {
            // The models' periods: a year is longer than any customer's purchase rhythm.
            Some(unit) if unit != TimeUnit::Year => unit,
            _ => {
                cx.push(Diagnostic::new(
                    Code::InvalidUnit,
                    "lifetime.unit",
                    format!("unknown unit `{u}`; use day, week or month"),
                ));
                return None;
            }
        },
    };
    match sources.get(&def.source) {
        None => {
            cx.push(
                Diagnostic::new(
                    Code::UnknownSource,
                    "lifetime.source",
                    format!("unknown source `{}`", def.source),
                )
                .suggest(&def.source, sources.keys().map(String::as_str)),
            );
            return None;
        }
        Some(src) if src.time.is_none() => {
            cx.push(Diagnostic::new(
                Code::LifetimeWithoutTime,
                "lifetime.source",
                format!(
                    "source `{}` has no time column; the lifetime models need dated purchases",
                    def.source
                ),
            ));
            return None;
        }
        Some(_) => {}
    }
    Some(Lifetime {
        source: def.source.clone(),
        amount: def.amount.clone(),
        filter: def.filter.clone(),
        unit,
    })
}

/// `[service]` and `[benefits.*]`, checked against the ladders and metrics.
fn compile_service(
    raw: &PolicyFile,
    ladders: &[Ladder],
    metrics: &[Metric],
    cx: &mut Ctx<'_>,
) -> Option<Service> {
    if raw.service.is_none() && raw.benefits.is_empty() {
        return None;
    }
    let def = raw.service.clone().unwrap_or_default();
    let ladder = match &def.ladder {
        Some(name) => match ladders.iter().position(|l| &l.name == name) {
            Some(i) => i,
            None => {
                cx.push(
                    Diagnostic::new(
                        Code::UnknownLadder,
                        "service.ladder",
                        format!("no ladder named `{name}`"),
                    )
                    .suggest(name, ladders.iter().map(|l| l.name.as_str())),
                );
                return None;
            }
        },
        None if !ladders.is_empty() => 0,
        None => {
            cx.push(Diagnostic::new(
                Code::UnknownLadder,
                "service",
                "service and benefits need a ladder, and the policy has none",
            ));
            return None;
        }
    };
    let lad = &ladders[ladder];
    let timezone = match def.timezone.as_deref() {
        None => chrono_tz::UTC,
        Some(name) => match name.parse::<chrono_tz::Tz>() {
            Ok(tz) => tz,
            Err(_) => {
                cx.push(
                    Diagnostic::new(
                        Code::InvalidTimezone,
                        "service.timezone",
                        format!("`{name}` is not an IANA timezone"),
                    )
                    .with_help("e.g. \"Asia/Shanghai\", \"Europe/Berlin\", \"UTC\""),
                );
                chrono_tz::UTC
            }
        },
    };
    if let Some(owner) = &def.owner
        && !metrics.iter().any(|m| &m.name == owner)
    {
        cx.push(
            Diagnostic::new(
                Code::UnknownMetric,
                "service.owner",
                format!(
                    "no metric named `{owner}` (the owner is a text metric of the customers source)"
                ),
            )
            .suggest(owner, metrics.iter().map(|m| m.name.as_str())),
        );
    }
    let seconds = def.sla_seconds.unwrap_or(20.0);
    let target = def.sla_target.unwrap_or(0.85);
    if !(0.0..=1.0).contains(&target) {
        cx.push(Diagnostic::new(
            Code::InvalidSlaTarget,
            "service.sla_target",
            format!("sla_target is a share between 0 and 1, not {target}"),
        ));
    }
    let (sla_seconds, sla_target, callback_hours) =
        crate::service::sla_defaults(lad, seconds, target);
    let mut benefits = Vec::new();
    for (name, b) in &raw.benefits {
        let key = format!("benefits.{name}");
        let period = match b.period.as_deref() {
            None => QuotaPeriod::Year,
            Some(text) => match QuotaPeriod::parse(text) {
                Some(p) => p,
                None => {
                    cx.push(
                        Diagnostic::new(
                            Code::InvalidPeriod,
                            format!("{key}.period"),
                            format!("`{text}` is not a quota period"),
                        )
                        .with_help("use day, month, year, or a rolling window such as \"30 days\""),
                    );
                    continue;
                }
            },
        };
        let mut quota = vec![Quota::NotEligible; lad.levels.len()];
        for (level, q) in &b.quota {
            let Some(l) = lad.level_index(level) else {
                cx.push(
                    Diagnostic::new(
                        Code::UnknownLevel,
                        format!("{key}.quota.{level}"),
                        format!("ladder `{}` has no level `{level}`", lad.name),
                    )
                    .suggest(level, lad.levels.iter().map(|l| l.name.as_str())),
                );
                continue;
            };
            quota[l] = match q {
                QuotaDef::Count(n) if *n >= 0 => Quota::Limited(*n as u32),
                QuotaDef::Word(w) if w == "unlimited" => Quota::Unlimited,
                other => {
                    cx.push(Diagnostic::new(
                        Code::InvalidQuota,
                        format!("{key}.quota.{level}"),
                        format!(
                            "a quota is a number of uses (0 or more) or \"unlimited\", not {}",
                            match other {
                                QuotaDef::Count(n) => n.to_string(),
                                QuotaDef::Word(w) => format!("\"{w}\""),
                            }
                        ),
                    ));
                    continue;
                }
            };
        }
        if b.grant_hours == Some(0) {
            cx.push(Diagnostic::new(
                Code::InvalidGrant,
                format!("{key}.grant_hours"),
                "grant_hours must be at least 1",
            ));
        }
        benefits.push(Benefit {
            name: name.clone(),
            title: b.title.clone(),
            period,
            quota,
            grant_hours: b.grant_hours,
        });
    }
    Some(Service {
        ladder,
        ladder_name: lad.name.clone(),
        levels: lad.levels.iter().map(|l| l.name.clone()).collect(),
        timezone,
        owner: def.owner.clone(),
        last_tags: def
            .last_tags
            .clone()
            .unwrap_or_else(|| vec!["blacklist".to_string()]),
        aging_minutes: def.aging_minutes.unwrap_or(10),
        sla_seconds,
        sla_target,
        default_sla: (seconds, target),
        callback_hours,
        benefits,
    })
}

trait HelpIfNone {
    fn with_help_if_none(self, help: &str) -> Self;
}
impl HelpIfNone for Diagnostic {
    fn with_help_if_none(self, help: &str) -> Self {
        if self.help.is_some() {
            self
        } else {
            self.with_help(help)
        }
    }
}

fn order_metrics(metrics: Vec<Metric>, cx: &mut Ctx<'_>) -> Vec<Metric> {
    let deps_of = |m: &Metric| -> Vec<String> {
        match &m.kind {
            MetricKind::Derived { deps, .. } => deps.clone(),
            MetricKind::Rollup { metric, .. } => vec![metric.clone()],
            _ => Vec::new(),
        }
    };
    let items: Vec<(String, Vec<String>)> = metrics
        .iter()
        .map(|m| (m.name.clone(), deps_of(m)))
        .collect();
    match topo_order(&items) {
        Ok(order) => {
            let mut by_name: HashMap<String, Metric> =
                metrics.into_iter().map(|m| (m.name.clone(), m)).collect();
            order
                .into_iter()
                .filter_map(|n| by_name.remove(&n))
                .collect()
        }
        Err(cycle) => {
            cx.push(Diagnostic::new(
                Code::MetricCycle,
                format!("metrics.{}", cycle[0]),
                format!(
                    "metrics depend on each other in a cycle: {}",
                    cycle.join(" → ")
                ),
            ));
            metrics
        }
    }
}

/// Kahn's algorithm keeping the written order among independent items; on a cycle, its members.
fn topo_order(items: &[(String, Vec<String>)]) -> Result<Vec<String>, Vec<String>> {
    let names: HashSet<&str> = items.iter().map(|(n, _)| n.as_str()).collect();
    let mut done: HashSet<String> = HashSet::new();
    let mut order = Vec::new();
    while order.len() < items.len() {
        let mut progressed = false;
        for (name, deps) in items {
            if done.contains(name) {
                continue;
            }
            if deps
                .iter()
                .all(|d| done.contains(d) || !names.contains(d.as_str()))
            {
                done.insert(name.clone());
                order.push(name.clone());
                progressed = true;
            }
        }
        if !progressed {
            return Err(items
                .iter()
                .filter(|(n, _)| !done.contains(n))
                .map(|(n, _)| n.clone())
                .collect());
        }
    }
    Ok(order)
}

fn compile_score(name: &str, def: &ScoreDef, key: &str, cx: &mut Ctx<'_>) -> Option<ScoreSpec> {
    match def.kind {
        ScoreKind::Weighted => {
            if def.parts.is_empty() {
                cx.push(Diagnostic::new(
                    Code::EmptyScore,
                    format!("{key}.parts"),
                    format!("weighted score `{name}` has no `[[scores.{name}.parts]]`"),
                ));
                return None;
            }
            let normalize = def.normalize.unwrap_or_default();
            let mut parts = Vec::new();
            for (i, p) in def.parts.iter().enumerate() {
                if !(p.weight.is_finite() && p.weight > 0.0) {
                    cx.push(Diagnostic::new(
                        Code::InvalidWeight,
                        format!("{key}.parts[{i}].weight"),
                        format!("weight {} must be a positive number", p.weight),
                    ));
                }
                parts.push(Part {
                    input: p.metric.clone(),
                    weight: p.weight,
                    normalize: p.normalize.unwrap_or(normalize),
                    lower_is_better: p.lower_is_better,
                });
            }
            let sum: f64 = parts.iter().map(|p| p.weight).sum();
            if (sum - 1.0).abs() > 1e-6 {
                cx.push(
                    Diagnostic::new(
                        Code::WeightsSum,
                        format!("{key}.parts"),
                        format!("weights of `{name}` sum to {sum}, not 1"),
                    )
                    .with_help(
                        "the score's maximum is then not its scale; make the weights add up to 1",
                    ),
                );
            }
            Some(ScoreSpec::Weighted {
                scale: def.scale.unwrap_or(100.0),
                parts,
            })
        }
        ScoreKind::Scorecard => {
            if def.dimensions.is_empty() {
                cx.push(Diagnostic::new(
                    Code::EmptyScore,
                    format!("{key}.dimensions"),
                    format!("scorecard `{name}` has no dimensions"),
                ));
                return None;
            }
            for (i, d) in def.dimensions.iter().enumerate() {
                let dkey = format!("{key}.dimensions[{i}]");
                if d.categories.is_some() && d.bands.is_some() {
                    cx.push(Diagnostic::new(
                        Code::InvalidDimension,
                        &dkey,
                        format!(
                            "dimension `{}` has both `categories` and `bands`; choose one",
                            d.name
                        ),
                    ));
                }
                if let (Some(max), Some(missing)) = (d.max_points, d.missing)
                    && !(0.0..=max).contains(&missing)
                {
                    cx.push(Diagnostic::new(
                        Code::PointsOverMax,
                        format!("{dkey}.missing"),
                        format!(
                            "dimension `{}` gives {} points for a missing value, outside 0..{}",
                            d.name,
                            crate::fmt_num(missing),
                            crate::fmt_num(max)
                        ),
                    ));
                }
                if let (Some(max), Some(bands)) = (d.max_points, &d.bands) {
                    for (j, b) in bands.iter().enumerate() {
                        if b.points > max {
                            cx.push(Diagnostic::new(
                                Code::PointsOverMax,
                                format!("{dkey}.bands[{j}]"),
                                format!("band gives {} points, above max_points {max}", b.points),
                            ));
                        }
                    }
                }
                if let (Some(max), Some(cats)) = (d.max_points, &d.categories) {
                    for (cat, pts) in cats {
                        if *pts > max {
                            cx.push(Diagnostic::new(
                                Code::PointsOverMax,
                                format!("{dkey}.categories"),
                                format!(
                                    "category `{cat}` gives {pts} points, above max_points {max}"
                                ),
                            ));
                        }
                    }
                }
                if let Some(bands) = &d.bands {
                    lint_bands(bands, &dkey, &d.name, cx);
                }
            }
            Some(ScoreSpec::Scorecard {
                dimensions: def.dimensions.clone(),
            })
        }
        ScoreKind::Rfm => {
            let field = |v: &Option<String>, f: &str, cx: &mut Ctx<'_>| -> Option<String> {
                if v.is_none() {
                    cx.push(Diagnostic::new(
                        Code::MissingField,
                        key,
                        format!("RFM score `{name}` needs `{f}`"),
                    ));
                }
                v.clone()
            };
            let (r, f, m) = (
                field(&def.recency, "recency", cx),
                field(&def.frequency, "frequency", cx),
                field(&def.monetary, "monetary", cx),
            );
            let bins = def.bins.unwrap_or(5);
            if !(2..=10).contains(&bins) {
                cx.push(Diagnostic::new(
                    Code::InvalidBins,
                    format!("{key}.bins"),
                    "bins must be between 2 and 10",
                ));
            }
            Some(ScoreSpec::Rfm {
                recency: r?,
                frequency: f?,
                monetary: m?,
                bins,
            })
        }
    }
}

fn lint_bands(bands: &[Band], key: &str, dim: &str, cx: &mut Ctx<'_>) {
    let mut sorted: Vec<&Band> = bands.iter().collect();
    sorted.sort_by(|a, b| {
        a.min
            .unwrap_or(f64::NEG_INFINITY)
            .total_cmp(&b.min.unwrap_or(f64::NEG_INFINITY))
    });
    for pair in sorted.windows(2) {
        let (lo, hi) = (pair[0], pair[1]);
        let lo_max = lo.max.unwrap_or(f64::INFINITY);
        let hi_min = hi.min.unwrap_or(f64::NEG_INFINITY);
        if lo_max < hi_min {
            cx.push(Diagnostic::new(
                Code::BandGap,
                format!("{key}.bands"),
                format!(
                    "dimension `{dim}`: values in [{lo_max}, {hi_min}) fall in no band and score 0"
                ),
            ));
        }
    }
}

fn order_scores(scores: Vec<Score>, metric_names: &[String], cx: &mut Ctx<'_>) -> Vec<Score> {
    let score_names: Vec<String> = scores
        .iter()
        .flat_map(|s| {
            let mut v = vec![s.name.clone()];
            v.extend(s.sub_names());
            v
        })
        .collect();
    let all: Vec<&str> = metric_names
        .iter()
        .chain(score_names.iter())
        .map(String::as_str)
        .collect();
    let mut items = Vec::new();
    for s in &scores {
        let mut deps = Vec::new();
        for (i, input) in s.inputs().into_iter().enumerate() {
            let key = match &s.spec {
                ScoreSpec::Weighted { .. } => format!("scores.{}.parts[{i}].metric", s.name),
                ScoreSpec::Scorecard { .. } => format!("scores.{}.dimensions[{i}].metric", s.name),
                ScoreSpec::Rfm { .. } => format!(
                    "scores.{}.{}",
                    s.name,
                    ["recency", "frequency", "monetary"][i]
                ),
            };
            if !all.contains(&input) {
                cx.push(
                    Diagnostic::new(
                        Code::UnknownMetric,
                        key,
                        format!("unknown metric or score `{input}`"),
                    )
                    .suggest(input, all.iter().copied()),
                );
            } else if let Some(owner) = scores
                .iter()
                .find(|o| o.name == input || o.sub_names().iter().any(|n| n == input))
            {
                deps.push(owner.name.clone());
            }
        }
        items.push((s.name.clone(), deps));
    }
    match topo_order(&items) {
        Ok(order) => {
            let mut by_name: HashMap<String, Score> =
                scores.into_iter().map(|s| (s.name.clone(), s)).collect();
            order
                .into_iter()
                .filter_map(|n| by_name.remove(&n))
                .collect()
        }
        Err(cycle) => {
            cx.push(Diagnostic::new(
                Code::ScoreCycle,
                format!("scores.{}", cycle[0]),
                format!(
                    "scores depend on each other in a cycle: {}",
                    cycle.join(" → ")
                ),
            ));
            scores
        }
    }
}

fn compile_condition(text: &str, key: &str, names: &[String], cx: &mut Ctx<'_>) -> Option<Cond> {
    match parse_condition(text) {
        Ok(cond) => {
            let mut ok = true;
            for n in cond.names() {
                if !names.iter().any(|k| k == n) {
                    ok = false;
                    cx.push(
                        Diagnostic::new(
                            Code::UnknownMetric,
                            key,
                            format!("unknown metric or score `{n}` in `{text}`"),
                        )
                        .suggest(n, names.iter().map(String::as_str)),
                    );
                }
            }
            ok.then_some(cond)
        }
        Err(e) => {
            cx.push(Diagnostic::new(Code::InvalidCondition, key, e));
            None
        }
    }
}

fn compile_ladder(
    name: &str,
    def: &LadderDef,
    names: &[String],
    cx: &mut Ctx<'_>,
) -> Option<Ladder> {
    let key = format!("ladders.{name}");
    let mut ok = true;
    if !valid_name(name) {
        cx.push(Diagnostic::new(
            Code::InvalidName,
            &key,
            format!("ladder name `{name}` must be lower-case letters, digits and _"),
        ));
        ok = false;
    }
    for (field, value) in [("rank_by", &def.rank_by), ("value", &def.value)] {
        if let Some(v) = value
            && !names.iter().any(|n| n == v)
        {
            cx.push(
                Diagnostic::new(
                    Code::UnknownMetric,
                    format!("{key}.{field}"),
                    format!("unknown metric or score `{v}`"),
                )
                .suggest(v, names.iter().map(String::as_str)),
            );
            ok = false;
        }
    }
    if def.levels.is_empty() {
        cx.push(Diagnostic::new(
            Code::NoLevels,
            &key,
            format!("ladder `{name}` has no levels"),
        ));
        return None;
    }
    let applies_to = match &def.applies_to {
        Some(text) => {
            let c = compile_condition(text, &format!("{key}.applies_to"), names, cx);
            ok &= c.is_some();
            c
        }
        None => None,
    };
    let mut levels = Vec::new();
    let mut seen = HashSet::new();
    let mut share_sum = 0.0;
    for (i, l) in def.levels.iter().enumerate() {
        let lkey = format!("{key}.levels[{i}]");
        if let Some(placeholder) = crate::evaluate::Placeholder::named(&l.name) {
            cx.push(
                Diagnostic::new(
                    Code::ReservedLevel,
                    format!("{lkey}.name"),
                    format!(
                        "`{}` is what Stratum calls a customer {}; a level cannot be named so",
                        l.name,
                        placeholder.meaning()
                    ),
                )
                .with_help("rename the level"),
            );
            ok = false;
        }
        if !seen.insert(l.name.as_str()) {
            cx.push(Diagnostic::new(
                Code::DuplicateLevel,
                format!("{lkey}.name"),
                format!("level `{}` appears twice in ladder `{name}`", l.name),
            ));
            ok = false;
        }
        let when = match &l.when {
            Some(text) => match compile_condition(text, &format!("{lkey}.when"), names, cx) {
                Some(c) => Some(c),
                None => {
                    ok = false;
                    continue;
                }
            },
            None => None,
        };
        let quotas = [
            l.top_share.is_some(),
            l.top_n.is_some(),
            l.value_share.is_some(),
            l.rest,
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if quotas > 1 {
            cx.push(Diagnostic::new(
                Code::AmbiguousRule,
                &lkey,
                format!(
                    "level `{}` has more than one of top_share, top_n, value_share, rest",
                    l.name
                ),
            ));
            ok = false;
            continue;
        }
        let needs_rank = l.top_share.is_some() || l.top_n.is_some() || l.value_share.is_some();
        if needs_rank && def.rank_by.is_none() {
            cx.push(
                Diagnostic::new(
                    Code::MissingRankBy,
                    &key,
                    format!(
                        "level `{}` takes customers by rank, so ladder `{name}` needs `rank_by`",
                        l.name
                    ),
                )
                .with_help("add rank_by = \"<metric or score>\" to the ladder"),
            );
            ok = false;
        }
        for (field, share) in [("top_share", l.top_share), ("value_share", l.value_share)] {
            if let Some(s) = share
                && !(s.is_finite() && (0.0..=1.0).contains(&s))
            {
                cx.push(Diagnostic::new(
                    Code::InvalidShare,
                    format!("{lkey}.{field}"),
                    format!("{field} {s} must be between 0 and 1 (0.19 = 19%)"),
                ));
                ok = false;
            }
        }
        let rule = match (l.top_share, l.top_n, l.value_share, l.rest, when) {
            (Some(share), _, _, _, when) => {
                share_sum += share;
                Rule::TopShare { share, when }
            }
            (_, Some(n), _, _, when) => Rule::TopN { n, when },
            (_, _, Some(share), _, when) => Rule::ValueShare { share, when },
            (_, _, _, true, None) => Rule::Rest,
            (_, _, _, true, Some(_)) => {
                cx.push(Diagnostic::new(Code::AmbiguousRule, &lkey, format!("level `{}` is `rest` and also has `when`; a rest level takes everyone left", l.name)));
                ok = false;
                continue;
            }
            (None, None, None, false, Some(c)) => Rule::When(c),
            (None, None, None, false, None) => {
                cx.push(
                    Diagnostic::new(
                        Code::MissingRule,
                        &lkey,
                        format!("level `{}` has no rule", l.name),
                    )
                    .with_help("give it one of: when, top_share, top_n, value_share, rest = true"),
                );
                ok = false;
                continue;
            }
        };
        levels.push(Level {
            name: l.name.clone(),
            title: l.title.clone(),
            rule,
            valid_days: l.valid_days,
            attributes: l.attributes.clone(),
        });
    }
    if let Some(h) = &def.hold {
        for (field, v) in [
            ("upgrade_after_runs", h.upgrade_after_runs),
            ("downgrade_after_runs", h.downgrade_after_runs),
        ] {
            if v == Some(0) {
                cx.push(Diagnostic::new(
                    Code::InvalidHold,
                    format!("{key}.hold.{field}"),
                    format!("{field} must be at least 1 (1 = at the first run)"),
                ));
                ok = false;
            }
        }
    }
    if share_sum > 1.0 + 1e-9 {
        cx.push(Diagnostic::new(
            Code::SharesOverOne,
            &key,
            format!("top_share levels of `{name}` add up to {share_sum}, more than 100%"),
        ));
        ok = false;
    }
    for (i, o) in def.overrides.iter().enumerate() {
        if !def.levels.iter().any(|l| l.name == o.level) {
            cx.push(
                Diagnostic::new(
                    Code::UnknownLevel,
                    format!("{key}.overrides[{i}].level"),
                    format!("unknown level `{}` in ladder `{name}`", o.level),
                )
                .suggest(&o.level, def.levels.iter().map(|l| l.name.as_str())),
            );
            ok = false;
        }
    }
    ok.then(|| Ladder {
        name: name.to_string(),
        title: def.title.clone(),
        applies_to,
        rank_by: def.rank_by.clone(),
        value: def.value.clone(),
        levels,
        overrides: def.overrides.clone(),
        hold: def.hold.clone().unwrap_or_default(),
        better: def.better.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[sources.customers]
path = "customers.csv"
key = "customer_id"

[sources.tx]
path = "tx.csv"
key = "customer_id"
time = "ts"

[metrics.revenue]
source = "tx"
expr = "sum(amount)"
window = "12 months"

[metrics.prev]
source = "tx"
expr = "sum(amount)"
window = { from = "24 months", to = "12 months" }

[metrics.growth]
expr = "revenue / nullif(prev, 0) - 1"
"#;

    #[test]
    fn compiles_and_orders_metrics() {
        let text = format!(
            "{BASE}\n[ladders.v]\nrank_by = \"revenue\"\n[[ladders.v.levels]]\nname = \"top\"\ntop_share = 0.2\n[[ladders.v.levels]]\nname = \"rest\"\nrest = true\n"
        );
        let p = Policy::from_str("p.toml", &text).unwrap();
        let names: Vec<_> = p.metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["revenue", "prev", "growth"]);
        match &p.metrics[0].kind {
            MetricKind::Event {
                default, window, ..
            } => {
                assert_eq!(default, &Some(Literal::Num(0.0)));
                let (s, e) = window
                    .unwrap()
                    .bounds(NaiveDate::from_ymd_opt(2026, 10, 31).unwrap());
                assert_eq!(s.to_string(), "2025-11-01");
                assert_eq!(e.to_string(), "2026-11-01");
            }
            other => panic!("{other:?}"),
        }
        match &p.metrics[1].kind {
            MetricKind::Event { window, .. } => {
                let (s, e) = window
                    .unwrap()
                    .bounds(NaiveDate::from_ymd_opt(2026, 10, 31).unwrap());
                assert_eq!(
                    (s.to_string(), e.to_string()),
                    ("2024-11-01".into(), "2025-11-01".into())
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn windows_longer_than_two_centuries_and_huge_expressions_are_located_errors() {
        let ladder = "\n[ladders.v]\n[[ladders.v.levels]]\nname = \"rest\"\nrest = true\n";
        let text = format!("{BASE}{ladder}")
            .replace("window = \"12 months\"", "window = \"300000 years\"");
        let err = Policy::from_str("p.toml", &text).unwrap_err().to_string();
        assert!(
            err.contains("`300000 years` is longer than 200 years"),
            "{err}"
        );
        assert!(err.contains("metrics.revenue.window"), "{err}");
        assert!(Offset::parse("200 years").is_ok());
        assert!(Offset::parse("4294967295 months").is_err());
        let huge = format!("sum(amount){}", " + sum(amount)".repeat(1_000));
        let text = format!("{BASE}{ladder}").replace(
            "expr = \"sum(amount)\"\nwindow = \"12",
            &format!("expr = \"{huge}\"\nwindow = \"12"),
        );
        let err = Policy::from_str("p.toml", &text).unwrap_err().to_string();
        assert!(err.contains("error[expression_too_large]"), "{err}");
        assert!(err.contains("metrics.revenue.expr"), "{err}");
    }

    #[test]
    fn unknown_name_in_condition_is_located_with_suggestion() {
        let text = format!(
            "{BASE}\n[ladders.v]\n[[ladders.v.levels]]\nname = \"gold\"\nwhen = \"revenu >= 100\"\n[[ladders.v.levels]]\nname = \"rest\"\nrest = true\n"
        );
        let err = Policy::from_str("p.toml", &text).unwrap_err();
        let d = err.errors().next().unwrap();
        assert_eq!(d.code, "unknown_metric");
        assert_eq!(d.key, "ladders.v.levels[0].when");
        assert_eq!(d.location.as_ref().unwrap().line, 27);
        assert_eq!(d.help.as_deref(), Some("did you mean `revenue`?"));
    }

    #[test]
    fn lifetime_metrics_and_churn_are_checked_where_they_are_written() {
        let ladder = "[ladders.l]\n[[ladders.l.levels]]\nname = \"all\"\nrest = true\n";
        let errors = |extra: &str| -> Vec<(&'static str, String, String)> {
            let text = format!("{BASE}\n{ladder}{extra}");
            Policy::from_str("p.toml", &text)
                .unwrap_err()
                .errors()
                .map(|d| (d.code, d.key.clone(), d.message.clone()))
                .collect()
        };
        // No [lifetime] table.
        let e = errors("[metrics.alive]\nlifetime = \"p_alive\"\n");
        assert_eq!(
            (e[0].0, e[0].1.as_str()),
            ("missing_lifetime", "metrics.alive.lifetime")
        );
        let lifetime = "[lifetime]\nsource = \"tx\"\n";
        // A misspelt measure gets a did-you-mean; clv without an amount names what is missing.
        let e = errors(&format!(
            "{lifetime}[metrics.alive]\nlifetime = \"p_alvie\"\n"
        ));
        assert_eq!(e[0].0, "invalid_lifetime");
        assert!(e[0].2.contains("did you mean `p_alive`?"), "{e:?}");
        let e = errors(&format!("{lifetime}[metrics.v]\nlifetime = \"clv(12)\"\n"));
        assert!(e[0].2.contains("clv(MONTHS, MONTHLY_DISCOUNT)"), "{e:?}");
        let e = errors(&format!(
            "{lifetime}[metrics.v]\nlifetime = \"clv(12, 0.01)\"\n"
        ));
        assert_eq!(e[0].0, "missing_amount");
        // The source must be an event source; the unit one of three.
        let e = errors(
            "[lifetime]\nsource = \"customers\"\nunit = \"fortnight\"\n[metrics.a]\nlifetime = \"p_alive\"\n",
        );
        let codes: Vec<_> = e.iter().map(|x| x.0).collect();
        assert_eq!(codes, ["invalid_unit"]);
        let e = errors("[lifetime]\nsource = \"customers\"\n[metrics.a]\nlifetime = \"p_alive\"\n");
        assert_eq!(e[0].0, "lifetime_without_time");
        // [churn] names metrics and a ladder that exist, and probabilities.
        let e = errors(&format!(
            "{lifetime}[metrics.alive]\nlifetime = \"p_alive\"\n[churn]\np_alive = \"alve\"\nbelow = 1.5\nladder = \"m\"\n"
        ));
        let codes: Vec<_> = e.iter().map(|x| (x.0, x.1.as_str())).collect();
        assert_eq!(
            codes,
            [
                ("unknown_metric", "churn.p_alive"),
                ("invalid_churn", "churn.below"),
                ("unknown_ladder", "churn.ladder")
            ]
        );
        // And a correct one compiles, with the defaults.
        let text = format!(
            "{BASE}\n{ladder}{lifetime}amount = \"amount\"\n[metrics.p_alive]\nlifetime = \"p_alive\"\n[metrics.v]\nlifetime = \"clv(12, 0.01)\"\n[churn]\nvalue = \"v\"\n"
        );
        let p = Policy::from_str("p.toml", &text).unwrap();
        let churn = p.churn.unwrap();
        assert_eq!(
            (churn.p_alive.as_str(), churn.below, churn.drop),
            ("p_alive", 0.5, 0.2)
        );
        assert_eq!(p.lifetime.unwrap().unit, TimeUnit::Week);
    }

    #[test]
    fn cycles_and_missing_rules_are_errors() {
        let text = "[sources.customers]\npath=\"c.csv\"\nkey=\"id\"\n[metrics.a]\nexpr=\"b + 1\"\n[metrics.b]\nexpr=\"a + 1\"\n[ladders.l]\n[[ladders.l.levels]]\nname=\"x\"\n";
        let err = Policy::from_str("p.toml", text).unwrap_err();
        let codes: Vec<_> = err.errors().map(|d| d.code).collect();
        assert!(codes.contains(&"metric_cycle"), "{codes:?}");
        assert!(codes.contains(&"missing_rule"), "{codes:?}");
    }

    #[test]
    fn quota_levels_need_rank_by_and_shares_at_most_one() {
        let text = format!(
            "{BASE}\n[ladders.v]\n[[ladders.v.levels]]\nname = \"a\"\ntop_share = 0.7\n[[ladders.v.levels]]\nname = \"b\"\ntop_share = 0.5\n"
        );
        let err = Policy::from_str("p.toml", &text).unwrap_err();
        let codes: Vec<_> = err.errors().map(|d| d.code).collect();
        assert!(codes.contains(&"missing_rank_by"));
        assert!(codes.contains(&"shares_over_one"));
    }

    #[test]
    fn a_level_named_like_a_placeholder_is_an_error() {
        let text = format!(
            "{BASE}\n[ladders.v]\n[[ladders.v.levels]]\nname = \"gold\"\nwhen = \"true\"\n[[ladders.v.levels]]\nname = \"(unplaced)\"\nrest = true\n"
        );
        let err = Policy::from_str("p.toml", &text).unwrap_err();
        let d = err.errors().find(|d| d.code == "reserved_level").unwrap();
        assert_eq!(d.key, "ladders.v.levels[1].name");
        assert_eq!(
            d.message,
            "`(unplaced)` is what Stratum calls a customer who matches no level; a level cannot be named so"
        );
    }

    #[test]
    fn units_parse_once_for_windows_quotas_and_models() {
        assert_eq!(TimeUnit::parse("weeks"), Some(TimeUnit::Week));
        assert_eq!("month".parse::<TimeUnit>(), Ok(TimeUnit::Month));
        assert!("fortnight".parse::<TimeUnit>().is_err());
        assert_eq!(
            QuotaPeriod::parse("30 days"),
            Some(QuotaPeriod::Rolling { days: 30 })
        );
        assert_eq!(QuotaPeriod::parse("0 days"), None);
        assert_eq!(QuotaPeriod::parse("2 weeks"), None);
    }

    #[test]
    fn offsets_parse() {
        assert_eq!(
            Offset::parse("90 days").unwrap(),
            Offset {
                amount: 90,
                unit: TimeUnit::Day
            }
        );
        assert_eq!(Offset::parse("1 year").unwrap().unit, TimeUnit::Year);
        assert!(Offset::parse("twelve months").is_err());
        assert!(
            Offset::parse("3 fortnights")
                .unwrap_err()
                .contains("unknown unit")
        );
    }
}
