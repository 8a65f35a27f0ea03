//! Lint: what is legal but probably wrong. Threshold gaps and overlaps between levels (the
//! B2B A1…D grades and the retailer's member levels both have holes), unreachable levels,
//! ladders without a `rest` level, and metrics nobody reads.

use crate::diagnostic::Code;
use std::collections::HashSet;

use crate::cond::Interval;
use crate::diagnostic::Diagnostic;
use crate::model::{MetricKind, Policy, Rule};

/// All warnings for a compiled policy, located in the file.
pub fn lint(policy: &Policy) -> Vec<Diagnostic> {
    let mut out: Vec<Diagnostic> = policy.warnings.clone();
    for ladder in &policy.ladders {
        lint_ladder(policy, ladder, &mut out);
    }
    unused_metrics(policy, &mut out);
    out.into_iter().map(|d| policy.locate(d)).collect()
}

fn lint_ladder(policy: &Policy, ladder: &crate::model::Ladder, out: &mut Vec<Diagnostic>) {
    let key = format!("ladders.{}", ladder.name);
    if ladder.cluster.is_some() {
        // Every graded customer takes a cluster (or the missing level): nothing to lint.
        return;
    }
    let rest_at = ladder
        .levels
        .iter()
        .position(|l| matches!(l.rule, Rule::Rest));
    if let Some(r) = rest_at {
        for (i, l) in ladder.levels.iter().enumerate().skip(r + 1) {
            out.push(Diagnostic::new(
                Code::UnreachableLevel,
                format!("{key}.levels[{i}]"),
                format!(
                    "level `{}` comes after the rest level `{}` and can never be reached",
                    l.name, ladder.levels[r].name
                ),
            ));
        }
    } else {
        let covers_all = ladder
            .levels
            .iter()
            .all(|l| matches!(l.rule, Rule::TopShare { when: None, .. }))
            && (ladder
                .levels
                .iter()
                .map(|l| match l.rule {
                    Rule::TopShare { share, .. } => share,
                    _ => 0.0,
                })
                .sum::<f64>()
                - 1.0)
                .abs()
                < 1e-9;
        if !covers_all {
            out.push(
                Diagnostic::new(
                    Code::NoRestLevel,
                    &key,
                    format!("ladder `{}` has no `rest` level; customers matching no level are reported as unplaced", ladder.name),
                )
                .with_help("add a last level with rest = true"),
            );
        }
    }

    // Per level: a numeric summary of its `when`, if it is a plain conjunction.
    struct Summary {
        index: usize,
        name: String,
        intervals: Vec<(String, Interval)>,
        other: bool,
    }
    let mut summaries = Vec::new();
    for (i, l) in ladder.levels.iter().enumerate() {
        match &l.rule {
            Rule::When(c) => {
                if let Some((intervals, other)) = c.intervals() {
                    for (m, iv) in &intervals {
                        if iv.is_empty() {
                            out.push(Diagnostic::new(
                                Code::UnreachableLevel,
                                format!("{key}.levels[{i}].when"),
                                format!("level `{}` can never match: its conditions on `{m}` contradict each other", l.name),
                            ));
                        }
                    }
                    summaries.push(Summary {
                        index: i,
                        name: l.name.clone(),
                        intervals,
                        other,
                    });
                }
            }
            Rule::TopShare { share, .. } | Rule::ValueShare { share, .. } if *share == 0.0 => {
                out.push(Diagnostic::new(
                    Code::UnreachableLevel,
                    format!("{key}.levels[{i}]"),
                    format!("level `{}` takes a 0 share and stays empty", l.name),
                ));
            }
            Rule::TopN { n: 0, .. } => {
                out.push(Diagnostic::new(
                    Code::UnreachableLevel,
                    format!("{key}.levels[{i}]"),
                    format!("level `{}` takes the top 0 and stays empty", l.name),
                ));
            }
            _ => {}
        }
    }

    // The metric most levels are graded on.
    let mut counts: Vec<(String, usize)> = Vec::new();
    for s in &summaries {
        for (m, _) in &s.intervals {
            match counts.iter_mut().find(|(n, _)| n == m) {
                Some((_, c)) => *c += 1,
                None => counts.push((m.clone(), 1)),
            }
        }
    }
    let Some((primary, uses)) = counts.iter().max_by_key(|(_, c)| *c).cloned() else {
        return;
    };
    if uses < 2 {
        return;
    }
    let mut ranged: Vec<(&Summary, Interval, bool)> = summaries
        .iter()
        .filter_map(|s| {
            let iv = s.intervals.iter().find(|(m, _)| *m == primary)?.1;
            let extra = s.other || s.intervals.len() > 1;
            (!iv.is_empty()).then_some((s, iv, extra))
        })
        .collect();

    // A level entirely inside an earlier, unconditional level's range can never match.
    for (s, iv, _) in &ranged {
        for (earlier, eiv, eextra) in &ranged {
            if earlier.index < s.index && !eextra && contains(*eiv, *iv) {
                out.push(Diagnostic::new(
                    Code::UnreachableLevel,
                    format!("{key}.levels[{}].when", s.index),
                    format!(
                        "level `{}` ({primary} {}) is never reached: `{}` above it takes every {primary} {}",
                        s.name,
                        iv.describe(),
                        earlier.name,
                        eiv.describe()
                    ),
                ));
                break;
            }
        }
    }

    // Sort by lower bound, highest first; among equal bounds the earlier level last, so it
    // is the one compared with the range below.
    let low = |iv: &Interval| iv.low.map_or(f64::NEG_INFINITY, |b| b.0);
    ranged.sort_by(|a, b| {
        low(&b.1)
            .total_cmp(&low(&a.1))
            .then(b.0.index.cmp(&a.0.index))
    });
    for pair in ranged.windows(2) {
        let (upper, u_iv, _) = &pair[0];
        let (lower, l_iv, _) = &pair[1];
        let Some((ulo, ulo_inc)) = u_iv.low else {
            continue;
        };
        let (lhi, lhi_inc) = l_iv.high.unwrap_or((f64::INFINITY, true));
        let integer = integer_valued(policy, &primary);
        // A count can never be 1.5: for whole-number metrics only a gap holding a whole
        // number is one.
        let holds_integer = || {
            let first = if lhi_inc {
                lhi.floor() + 1.0
            } else {
                lhi.ceil()
            };
            first < ulo || (first == ulo && !ulo_inc)
        };
        if (lhi < ulo || (lhi == ulo && !lhi_inc && !ulo_inc)) && (!integer || holds_integer()) {
            let gap = Interval {
                low: Some((lhi, !lhi_inc)),
                high: Some((ulo, !ulo_inc)),
            };
            // Where do such customers land? The first level, in ladder order, that takes the
            // whole gap without further conditions; else the rest level.
            let catcher = ranged
                .iter()
                .filter(|(_, iv, extra)| !extra && contains(*iv, gap))
                .map(|(s, _, _)| s.index)
                .min();
            let fallback = match catcher {
                Some(i) if i > lower.index => format!(
                    "they fall to `{}`, below `{}`",
                    ladder.levels[i].name, lower.name
                ),
                Some(i) => format!("they fall to `{}`", ladder.levels[i].name),
                None => ladder
                    .levels
                    .iter()
                    .position(|l| matches!(l.rule, Rule::Rest))
                    .map(|r| format!("they fall to `{}`", ladder.levels[r].name))
                    .unwrap_or_else(|| "they are left unplaced".into()),
            };
            out.push(
                Diagnostic::new(
                    Code::ThresholdGap,
                    format!("{key}.levels[{}].when", lower.index),
                    format!(
                        "gap in ladder `{}`: {primary} in {} matches neither `{}` ({}) nor `{}` ({}); {fallback}",
                        ladder.name,
                        gap.describe(),
                        lower.name,
                        l_iv.describe(),
                        upper.name,
                        u_iv.describe()
                    ),
                )
                .with_help("close the range, or say in the policy why these customers belong elsewhere"),
            );
        } else if l_iv.high.is_some() && lhi > ulo && u_iv.high.is_none_or(|(uhi, _)| uhi >= lhi) {
            // A bounded range reaching into the range above: the boundaries disagree.
            out.push(Diagnostic::new(
                Code::ThresholdOverlap,
                format!("{key}.levels[{}].when", upper.index.max(lower.index)),
                format!(
                    "overlap in ladder `{}`: {primary} in {} is claimed by both `{}` ({}) and `{}` ({}); the earlier level wins",
                    ladder.name,
                    Interval { low: u_iv.low, high: l_iv.high }.describe(),
                    upper.name,
                    u_iv.describe(),
                    lower.name,
                    l_iv.describe()
                ),
            ));
        }
    }
}

fn contains(outer: Interval, inner: Interval) -> bool {
    let low_ok = match (outer.low, inner.low) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some((o, oi)), Some((i, ii))) => o < i || (o == i && (oi || !ii)),
    };
    let high_ok = match (outer.high, inner.high) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some((o, oi)), Some((i, ii))) => o > i || (o == i && (oi || !ii)),
    };
    low_ok && high_ok
}

/// Whether a metric only takes whole numbers: a `count(…)` aggregate, or a column the
/// source declares `int`.
fn integer_valued(policy: &Policy, name: &str) -> bool {
    use crate::model::MetricKind;
    let Some(metric) = policy.metrics.iter().find(|m| m.name == name) else {
        return false;
    };
    match &metric.kind {
        MetricKind::Event { expr, .. } => {
            // `count(…)` as the whole expression: its opening parenthesis closes at the end.
            let e = expr.trim().to_ascii_lowercase();
            let Some(args) = e.strip_prefix("count(") else {
                return false;
            };
            let mut depth = 1usize;
            for (i, c) in args.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            return i == args.len() - 1;
                        }
                    }
                    _ => {}
                }
            }
            false
        }
        MetricKind::Attribute { source, expr, .. } => policy
            .source(source)
            .and_then(|s| s.columns.get(expr.trim()))
            .is_some_and(|t| *t == crate::policy::ColumnType::Int),
        _ => false,
    }
}

fn unused_metrics(policy: &Policy, out: &mut Vec<Diagnostic>) {
    let mut used: HashSet<&str> = HashSet::new();
    for m in &policy.metrics {
        match &m.kind {
            MetricKind::Derived { deps, .. } => used.extend(deps.iter().map(String::as_str)),
            MetricKind::Rollup { metric, .. } => {
                used.insert(metric);
            }
            _ => {}
        }
    }
    for s in &policy.scores {
        used.extend(s.inputs());
    }
    if let Some(c) = &policy.churn {
        used.insert(&c.p_alive);
        used.extend(c.value.as_deref());
    }
    for l in &policy.ladders {
        used.extend(l.rank_by.as_deref());
        if let Some(c) = &l.applies_to {
            used.extend(c.names());
        }
        used.extend(l.value.as_deref());
        if let Some(c) = &l.cluster {
            used.extend(c.features.iter().map(String::as_str));
        }
        for level in &l.levels {
            let cond = match &level.rule {
                Rule::When(c) => Some(c),
                Rule::TopShare { when, .. }
                | Rule::TopN { when, .. }
                | Rule::ValueShare { when, .. } => when.as_ref(),
                Rule::Rest | Rule::Cluster { .. } | Rule::MissingFeatures => None,
            };
            if let Some(c) = cond {
                used.extend(c.names());
            }
        }
    }
    // Read outside the ladders: the owner by the API, the activity by the run history, the
    // household by the console's card.
    used.extend(policy.service.as_ref().and_then(|s| s.owner.as_deref()));
    used.extend(policy.settings.activity.as_deref());
    used.extend(policy.settings.household.as_deref());
    for m in &policy.metrics {
        if !used.contains(m.name.as_str()) {
            out.push(
                Diagnostic::new(Code::UnusedMetric, format!("metrics.{}", m.name), format!("metric `{}` is not used by any score, ladder or other metric", m.name))
                    .with_help("it is still computed and written to metrics.parquet; remove it if it is not needed"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::lint;
    use crate::model::Policy;

    #[test]
    fn metrics_read_by_the_service_or_the_history_are_used() {
        let text = r#"
[policy]
activity = "orders"

[sources.customers]
path = "customers.csv"
key = "customer_id"

[metrics.spend]
source = "customers"
expr = "spend"

[metrics.orders]
source = "customers"
expr = "orders"

[metrics.manager]
source = "customers"
expr = "manager"

[metrics.forgotten]
source = "customers"
expr = "region"

[service]
owner = "manager"

[ladders.vip]
[[ladders.vip.levels]]
name = "gold"
when = "spend >= 100"
[[ladders.vip.levels]]
name = "silver"
rest = true
"#;
        let policy = Policy::from_str("p.toml", text).unwrap();
        let unused: Vec<String> = lint(&policy)
            .into_iter()
            .filter(|d| d.code == "unused_metric")
            .map(|d| d.message)
            .collect();
        assert_eq!(
            unused,
            ["metric `forgotten` is not used by any score, ladder or other metric"]
        );
    }

    #[test]
    fn whole_number_metrics_have_whole_number_gaps() {
        let policy = |expr: &str, second: &str| {
            let text = format!(
                "[sources.customers]\npath = \"c.csv\"\nkey = \"id\"\n\
                 [sources.tx]\npath = \"t.csv\"\nkey = \"id\"\ntime = \"ts\"\n\
                 [metrics.purchase_days]\nsource = \"tx\"\nexpr = \"{expr}\"\n\
                 [ladders.l]\n[[ladders.l.levels]]\nname = \"often\"\nwhen = \"purchase_days >= 2\"\n\
                 [[ladders.l.levels]]\nname = \"once\"\nwhen = \"{second}\"\n\
                 [[ladders.l.levels]]\nname = \"never\"\nrest = true\n"
            );
            Policy::from_str("p.toml", &text).unwrap()
        };
        let gaps = |p: &Policy| {
            lint(p)
                .into_iter()
                .filter(|d| d.code == "threshold_gap")
                .map(|d| d.message)
                .collect::<Vec<_>>()
        };
        // A count between 1 and 2 cannot be: no gap.
        let count = policy(
            "count(DISTINCT CAST(ts AS DATE))",
            "purchase_days >= 1 AND purchase_days <= 1",
        );
        assert!(gaps(&count).is_empty(), "{:?}", gaps(&count));
        // A sum can be 1.5.
        let sum = policy("sum(amount)", "purchase_days >= 1 AND purchase_days <= 1");
        assert_eq!(gaps(&sum).len(), 1, "{:?}", gaps(&sum));
        // Between 0 and 2 there is 1, a whole number: a gap for a count too.
        let wide = policy("count(*)", "purchase_days <= 0");
        assert_eq!(gaps(&wide).len(), 1, "{:?}", gaps(&wide));
    }
}
