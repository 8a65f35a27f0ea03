//! Metric definitions compiled to SQL. Stage one aggregates each event source once per
//! distinct (window, filter) and each attribute source once; stage two joins those small
//! per-customer tables onto the customers and computes derived metrics and household rollups
//! layer by layer.

use chrono::NaiveDate;
use datafusion::arrow::datatypes::DataType;
use stratum_core::model::{MetricKind, Policy, Window};
use stratum_core::policy::{CUSTOMERS, Literal};

/// The table the lifetime metrics are joined from in stage two.
pub const LIFETIME_TABLE: &str = "__lifetime";

/// Quotes an identifier for DataFusion SQL.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn literal(l: &Literal) -> String {
    match l {
        Literal::Num(n) => format!("CAST({n:?} AS DOUBLE)"),
        Literal::Text(t) => format!("'{}'", t.replace('\'', "''")),
    }
}

/// A date bound in the form the time column compares with cheaply.
pub fn bound(date: NaiveDate, time_type: &DataType) -> String {
    match time_type {
        DataType::Date32 | DataType::Date64 => format!("DATE '{date}'"),
        _ => format!("CAST('{date}T00:00:00' AS TIMESTAMP)"),
    }
}

/// Replaces `$as_of` with the evaluation date.
pub fn with_as_of(expr: &str, as_of: NaiveDate) -> String {
    expr.replace("$as_of", &format!("DATE '{as_of}'"))
}

/// One stage-one aggregate: an event source over one window and filter.
#[derive(Debug, Clone)]
pub struct Aggregate {
    pub table: String,
    pub source: String,
    pub window: Option<Window>,
    pub filter: Option<String>,
    /// Metric names computed here.
    pub metrics: Vec<String>,
    pub sql: String,
}

/// How a source's key meets the customers' key: natively when both have the same type (cheap
/// integer joins on Parquet), else both as text.
pub trait KeyTypes {
    fn time_type(&self, source: &str) -> DataType;
    fn same_key_type(&self, source: &str) -> bool;
}

fn key_expr(key: &str, native: bool) -> String {
    if native {
        key.to_string()
    } else {
        format!("CAST({key} AS VARCHAR)")
    }
}

pub fn aggregates(policy: &Policy, as_of: NaiveDate, types: &dyn KeyTypes) -> Vec<Aggregate> {
    let mut out: Vec<Aggregate> = Vec::new();
    for m in &policy.metrics {
        let MetricKind::Event {
            source,
            window,
            filter,
            ..
        } = &m.kind
        else {
            continue;
        };
        match out
            .iter_mut()
            .find(|a| a.source == *source && a.window == *window && a.filter == *filter)
        {
            Some(a) => a.metrics.push(m.name.clone()),
            None => out.push(Aggregate {
                table: format!("__agg_{}", out.len()),
                source: source.clone(),
                window: *window,
                filter: filter.clone(),
                metrics: vec![m.name.clone()],
                sql: String::new(),
            }),
        }
    }
    for a in &mut out {
        let src = policy
            .source(&a.source)
            .expect("compiled policy names known sources");
        let key = ident(&src.key);
        let time = ident(
            src.time
                .as_deref()
                .expect("event sources have a time column"),
        );
        let tt = types.time_type(&a.source);
        let native = types.same_key_type(&a.source);
        let end_of_as_of = as_of + chrono::Days::new(1);
        let (start, end) = match a.window {
            Some(w) => {
                let (s, e) = w.bounds(as_of);
                (Some(s), e)
            }
            None => (None, end_of_as_of),
        };
        let mut conds = vec![format!("{time} < {}", bound(end, &tt))];
        if let Some(s) = start {
            conds.push(format!("{time} >= {}", bound(s, &tt)));
        }
        if let Some(f) = &a.filter {
            conds.push(format!("({})", with_as_of(f, as_of)));
        }
        let exprs: Vec<String> = a
            .metrics
            .iter()
            .map(|name| {
                let expr = match &policy.metric(name).expect("metric exists").kind {
                    MetricKind::Event { expr, .. } => expr.clone(),
                    _ => unreachable!(),
                };
                format!(
                    "({}) AS {}",
                    with_as_of(&expr, as_of),
                    ident(&format!("__m_{name}"))
                )
            })
            .collect();
        a.sql = format!(
            "SELECT {} AS \"__k\", count(*) AS \"__rows\", {} FROM {} WHERE {} GROUP BY {key}",
            key_expr(&key, native),
            exprs.join(", "),
            ident(&a.source),
            conds.join(" AND ")
        );
    }
    out
}

/// Stage two: one row per customer with every metric and its native key `__key`, by which
/// the rows are put in order afterwards (in Rust, on every core: cheaper than a sort and a
/// one-thread merge of every column in the query). `upto` limits
/// the derived layers to the metrics before and including that one (used to find which
/// derived metric a planning error belongs to).
pub fn frame_query(
    policy: &Policy,
    aggs: &[Aggregate],
    as_of: NaiveDate,
    upto: Option<&str>,
    types: &dyn KeyTypes,
) -> String {
    let customers = policy
        .source(CUSTOMERS)
        .expect("compiled policy has customers");
    let ckey = format!("c.{}", ident(&customers.key));
    let mut select = vec![
        // The native key: ordered and turned into text in Rust, cheaper than in the query.
        format!("{ckey} AS \"__key\""),
    ];
    for (i, a) in aggs.iter().enumerate() {
        select.push(format!("{}.\"__rows\" AS \"__rows_{i}\"", ident(&a.table)));
    }
    if let Some(tags) = &customers.tags {
        select.push(format!("CAST(c.{} AS VARCHAR) AS \"__tags\"", ident(tags)));
    }
    let mut groups: Vec<&str> = Vec::new();
    for m in &policy.metrics {
        if let MetricKind::Rollup { group, .. } = &m.kind
            && !groups.contains(&group.as_str())
        {
            groups.push(group);
        }
    }
    for g in &groups {
        select.push(format!("c.{} AS {}", ident(g), ident(&format!("__g_{g}"))));
    }
    let mut joins = Vec::new();
    for a in aggs {
        joins.push(format!(
            "LEFT JOIN {t} ON {} = {t}.\"__k\"",
            key_expr(&ckey, types.same_key_type(&a.source)),
            t = ident(&a.table)
        ));
    }
    if let Some((l, _)) = policy.lifetime_metrics() {
        let t = ident(LIFETIME_TABLE);
        joins.push(format!(
            "LEFT JOIN {t} ON {} = {t}.\"__k\"",
            key_expr(&ckey, types.same_key_type(&l.source)),
        ));
    }
    let mut attr_sources: Vec<&str> = Vec::new();
    let mut depth: Vec<(String, usize)> = Vec::new();
    for m in &policy.metrics {
        let default = |d: &Option<Literal>, e: String| match d {
            Some(l) => format!("COALESCE({e}, {})", literal(l)),
            None => e,
        };
        match &m.kind {
            MetricKind::Event { default: d, .. } => {
                let a = aggs
                    .iter()
                    .find(|a| a.metrics.contains(&m.name))
                    .expect("every event metric has an aggregate");
                select.push(format!(
                    "{} AS {}",
                    default(
                        d,
                        format!("{}.{}", ident(&a.table), ident(&format!("__m_{}", m.name)))
                    ),
                    ident(&m.name)
                ));
                depth.push((m.name.clone(), 0));
            }
            MetricKind::Attribute {
                source,
                expr,
                default: d,
            } => {
                let e = with_as_of(expr, as_of);
                if source == CUSTOMERS {
                    select.push(format!(
                        "{} AS {}",
                        default(d, format!("({e})")),
                        ident(&m.name)
                    ));
                } else {
                    let alias = format!("__attr_{source}");
                    if !attr_sources.contains(&source.as_str()) {
                        attr_sources.push(source);
                    }
                    select.push(format!(
                        "{} AS {}",
                        default(
                            d,
                            format!("{}.{}", ident(&alias), ident(&format!("__m_{}", m.name)))
                        ),
                        ident(&m.name)
                    ));
                }
                depth.push((m.name.clone(), 0));
            }
            MetricKind::Lifetime { default: d, .. } => {
                select.push(format!(
                    "{} AS {}",
                    default(
                        d,
                        format!(
                            "{}.{}",
                            ident(LIFETIME_TABLE),
                            ident(&format!("__m_{}", m.name))
                        )
                    ),
                    ident(&m.name)
                ));
                depth.push((m.name.clone(), 0));
            }
            MetricKind::Derived { deps, .. } => {
                let d = deps
                    .iter()
                    .filter_map(|x| depth.iter().find(|(n, _)| n == x).map(|p| p.1))
                    .max()
                    .unwrap_or(0)
                    + 1;
                depth.push((m.name.clone(), d));
            }
            MetricKind::Rollup { metric, .. } => {
                let d = depth.iter().find(|(n, _)| n == metric).map_or(0, |p| p.1) + 1;
                depth.push((m.name.clone(), d));
            }
        }
    }
    for source in &attr_sources {
        let src = policy.source(source).expect("known source");
        let exprs: Vec<String> = policy
            .metrics
            .iter()
            .filter_map(|m| match &m.kind {
                MetricKind::Attribute {
                    source: s, expr, ..
                } if s == source => Some(format!(
                    "({}) AS {}",
                    with_as_of(expr, as_of),
                    ident(&format!("__m_{}", m.name))
                )),
                _ => None,
            })
            .collect();
        let alias = ident(&format!("__attr_{source}"));
        let native = types.same_key_type(source);
        joins.push(format!(
            "LEFT JOIN (SELECT {} AS \"__k\", {} FROM {}) AS {alias} ON {} = {alias}.\"__k\"",
            key_expr(&ident(&src.key), native),
            exprs.join(", "),
            ident(source),
            key_expr(&ckey, native)
        ));
    }

    let mut ctes = vec![format!(
        "\"__l0\" AS (SELECT {} FROM {} AS c {})",
        select.join(", "),
        ident(CUSTOMERS),
        joins.join(" ")
    )];
    let max_depth = depth.iter().map(|(_, d)| *d).max().unwrap_or(0);
    let stop_at = upto.and_then(|u| policy.metrics.iter().position(|m| m.name == u));
    let included = |name: &str| match stop_at {
        None => true,
        Some(i) => policy
            .metrics
            .iter()
            .position(|m| m.name == name)
            .is_some_and(|p| p <= i),
    };
    for level in 1..=max_depth {
        let mut cols = Vec::new();
        for m in &policy.metrics {
            if depth.iter().find(|(n, _)| *n == m.name).map(|p| p.1) != Some(level)
                || !included(&m.name)
            {
                continue;
            }
            let expr = match &m.kind {
                MetricKind::Derived { expr, .. } => format!("({})", with_as_of(expr, as_of)),
                MetricKind::Rollup { group, metric, agg } => {
                    let g = ident(&format!("__g_{group}"));
                    let v = ident(metric);
                    let alone = match agg {
                        stratum_core::policy::RollupAgg::Count => {
                            format!("CASE WHEN {v} IS NULL THEN 0 ELSE 1 END")
                        }
                        _ => v.clone(),
                    };
                    format!(
                        "CASE WHEN {g} IS NULL THEN {alone} ELSE {}({v}) OVER (PARTITION BY {g}) END",
                        agg.sql()
                    )
                }
                _ => continue,
            };
            cols.push(format!("{expr} AS {}", ident(&m.name)));
        }
        let prev = format!("\"__l{}\"", level - 1);
        let body = if cols.is_empty() {
            format!("SELECT * FROM {prev}")
        } else {
            format!("SELECT *, {} FROM {prev}", cols.join(", "))
        };
        ctes.push(format!("\"__l{level}\" AS ({body})"));
    }
    let mut out_cols = vec!["\"__key\"".to_string()];
    if customers.tags.is_some() {
        out_cols.push("\"__tags\"".into());
    }
    out_cols.extend((0..aggs.len()).map(|i| format!("\"__rows_{i}\"")));
    for m in &policy.metrics {
        if included(&m.name) {
            out_cols.push(ident(&m.name));
        }
    }
    format!(
        "WITH {} SELECT {} FROM \"__l{max_depth}\"",
        ctes.join(", "),
        out_cols.join(", ")
    )
}
