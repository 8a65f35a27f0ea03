//! The churn warning: customers whose probability of being alive fell below a threshold, or
//! dropped by more than a set amount, between two evaluations, with their value at risk and
//! the action the policy recommends for their stage.

pub use crate::model::ChurnRule;
use crate::{Evaluation, Frame};

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
