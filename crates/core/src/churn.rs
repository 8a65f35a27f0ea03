//! The churn warning: customers whose probability of being alive fell below a threshold, or
//! dropped by more than a set amount, between two evaluations, with their value at risk and
//! the action the policy recommends for their stage.

use crate::compile::{Ladder, Metric, MetricKind};
use crate::diagnostic::Code;
use crate::diagnostic::Diagnostic;
use crate::policy::ChurnDef;
use crate::{Evaluation, Frame};

/// `[churn]`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ChurnRule {
    pub p_alive: String,
    pub below: f64,
    pub drop: f64,
    pub value: Option<String>,
    pub ladder: Option<String>,
}

pub(crate) fn compile(
    def: &ChurnDef,
    ladders: &[Ladder],
    metrics: &[Metric],
    push: &mut dyn FnMut(Diagnostic),
) -> Option<ChurnRule> {
    let names = || metrics.iter().map(|m| m.name.as_str());
    let mut ok = true;
    let p_alive = def.p_alive.clone().unwrap_or_else(|| "p_alive".into());
    let mut metric = |key: &str, name: &str, push: &mut dyn FnMut(Diagnostic)| {
        if !metrics.iter().any(|m| m.name == name) {
            push(
                Diagnostic::new(
                    Code::UnknownMetric,
                    format!("churn.{key}"),
                    format!("unknown metric `{name}`"),
                )
                .suggest(name, names()),
            );
            ok = false;
        }
    };
    metric("p_alive", &p_alive, push);
    if let Some(v) = &def.value {
        metric("value", v, push);
    }
    for (key, v) in [("below", def.below), ("drop", def.drop)] {
        if v.is_some_and(|v| !(0.0..=1.0).contains(&v)) {
            push(Diagnostic::new(
                Code::InvalidChurn,
                format!("churn.{key}"),
                format!("`{key}` is a probability: between 0 and 1"),
            ));
            ok = false;
        }
    }
    if let Some(l) = &def.ladder
        && !ladders.iter().any(|x| &x.name == l)
    {
        push(
            Diagnostic::new(
                Code::UnknownLadder,
                "churn.ladder",
                format!("unknown ladder `{l}`"),
            )
            .suggest(l, ladders.iter().map(|x| x.name.as_str())),
        );
        ok = false;
    }
    if ok
        && !metrics
            .iter()
            .any(|m| m.name == p_alive && matches!(m.kind, MetricKind::Lifetime { .. }))
    {
        push(Diagnostic::new(
            Code::ChurnWithoutModel,
            "churn.p_alive",
            format!(
                "`{p_alive}` is not a lifetime metric; it is read as a probability all the same"
            ),
        ));
    }
    ok.then(|| ChurnRule {
        p_alive,
        below: def.below.unwrap_or(0.5),
        drop: def.drop.unwrap_or(0.2),
        value: def.value.clone(),
        ladder: def.ladder.clone(),
    })
}

/// Why a customer is on the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChurnReason {
    /// p_alive was at or above the threshold and is now below it.
    FellBelow,
    /// p_alive dropped by more than the set amount (and did not cross the threshold).
    Dropped,
    /// Nothing earlier to compare with (no earlier evaluation, or no purchases by then); p_alive
    /// is below the threshold.
    Below,
}

impl ChurnReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ChurnReason::FellBelow => "fell below threshold",
            ChurnReason::Dropped => "dropped",
            ChurnReason::Below => "below threshold",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChurnWarning {
    pub customer_id: String,
    pub before: Option<f64>,
    pub now: f64,
    pub reason: ChurnReason,
    pub value_at_risk: Option<f64>,
    pub level: Option<String>,
    pub action: Option<String>,
}

/// Compares `now` with `before` (the same policy at an earlier date; `None` when there is
/// none, and then only the threshold applies). Customers without a p_alive now (no
/// purchases) are not warned about; customers new since `before` are compared with the
/// threshold alone. Sorted by value at risk, highest first, then by customer id.
pub fn warnings(rule: &ChurnRule, now: &Evaluation, before: Option<&Frame>) -> Vec<ChurnWarning> {
    let frame = &now.frame;
    let Some(alive) = frame.column(&rule.p_alive) else {
        return Vec::new();
    };
    let value = rule.value.as_ref().and_then(|v| frame.column(v));
    let before_alive = before.and_then(|b| b.column(&rule.p_alive).map(|c| (b, c)));
    let ladder = rule
        .ladder
        .as_ref()
        .and_then(|l| now.ladders.iter().position(|x| &x.name == l));
    let mut out = Vec::new();
    for (row, id) in frame.ids().iter().enumerate() {
        let Some(p) = alive.num(row) else { continue };
        let prior = before_alive.and_then(|(b, c)| b.row_of(id).and_then(|r| c.num(r)));
        let reason = match prior {
            Some(q) if q >= rule.below && p < rule.below => ChurnReason::FellBelow,
            Some(q) if q - p > rule.drop => ChurnReason::Dropped,
            Some(_) => continue,
            None if p < rule.below => ChurnReason::Below,
            None => continue,
        };
        let (level, action) = match ladder {
            Some(li) => {
                let idx = now.results[li].level[row];
                let levels = &now.ladders[li].levels;
                let level = levels.get(idx);
                (
                    Some(now.level_name(li, idx).to_string()),
                    level
                        .and_then(|l| l.attributes.get("action"))
                        .and_then(|a| a.as_str())
                        .map(str::to_string),
                )
            }
            None => (None, None),
        };
        out.push(ChurnWarning {
            customer_id: id.to_string(),
            before: prior,
            now: p,
            reason,
            value_at_risk: value.and_then(|c| c.num(row)),
            level,
            action,
        });
    }
    out.sort_by(|a, b| {
        b.value_at_risk
            .unwrap_or(f64::NEG_INFINITY)
            .total_cmp(&a.value_at_risk.unwrap_or(f64::NEG_INFINITY))
            .then_with(|| a.customer_id.cmp(&b.customer_id))
    });
    out
}
