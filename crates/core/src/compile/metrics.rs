//! `[metrics.*]`: event, attribute, derived, rollup and lifetime metrics, in dependency order.

use std::collections::HashSet;

use super::{Checked, Ctx, HelpIfNone, in_dependency_order, valid_name};
use crate::cond::sql_identifiers;
use crate::diagnostic::{Code, Diagnostic};
use crate::model::{Metric, MetricKind, Window};
use crate::policy::{Literal, PolicyFile, WindowDef};
use crate::time::Offset;

pub(super) fn compile(raw: &PolicyFile, checked: &Checked, cx: &mut Ctx<'_>) -> Vec<Metric> {
    let source_names: Vec<&str> = checked.sources.keys().map(String::as_str).collect();
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
                let Some(src) = checked.sources.get(source) else {
                    cx.push(Diagnostic::unknown(
                        Code::UnknownSource,
                        format!("{key}.source"),
                        "source",
                        source,
                        source_names.iter().copied(),
                    ));
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
                    cx.push(Diagnostic::unknown(
                        Code::UnknownMetric,
                        format!("{key}.rollup.metric"),
                        "metric",
                        &r.metric,
                        metric_names.iter().copied(),
                    ));
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
    order_metrics(metrics, cx)
}

fn is_zero_default_aggregate(expr: &str) -> bool {
    let lower = expr.trim_start().to_lowercase();
    lower.starts_with("count(") || lower.starts_with("sum(")
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
    in_dependency_order(
        metrics,
        &items,
        |m| &m.name,
        Code::MetricCycle,
        "metrics",
        cx,
    )
}
