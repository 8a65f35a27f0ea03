//! Placing every customer on exactly one level of a ladder. Levels are tried top to bottom;
//! each takes from the customers not yet placed. Rank order is `rank_by` descending, missing
//! values last, ties broken by customer id ascending (as numbers when every id is a whole
//! number, else as text), so results never depend on input order or thread count.

use rayon::slice::ParallelSliceMut;

use crate::cond::Cond;
use crate::frame::Frame;
use crate::hold::HoldState;
use crate::model::{Ladder, Rule};
use crate::policy::OverrideMode;

/// Why a customer sits on its level. One per customer per ladder, so the rare variants box
/// their payload: 24 bytes instead of 48, 24 MB less per ladder at a million customers.
#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    /// The level's `when` condition held.
    Condition,
    /// Within the level's rank quota (`top_share` / `top_n`).
    Quota,
    /// Among the customers holding the level's share of value.
    ValueShare { value_before: f64, total: f64 },
    /// Matched no level above a `rest` level.
    Rest,
    /// Matched no level and the ladder has no `rest` level.
    Unplaced,
    /// Nearest the centre of the cluster its level takes (a cluster ladder; the distances are
    /// in [`LadderResult::clusters`]).
    Cluster,
    /// Lacked a feature of a cluster ladder whose `missing` names this level.
    MissingFeatures,
    /// Outside the ladder's `applies_to`.
    NotApplicable,
    /// Kept on its level by the ladder's hold (grace, hysteresis); `rule_reason` says where
    /// the rules alone put it.
    Held {
        hold: Box<crate::hold::Hold>,
        rule_reason: Box<Reason>,
    },
    /// Moved by an override; `rule_level` is where the rules alone put it.
    Override {
        source: Box<OverrideSource>,
        mode: OverrideMode,
        rule_level: usize,
    },
}

impl Reason {
    /// Where the rules alone placed a customer now at `level`: before holds and overrides.
    pub fn rule_level(&self, level: usize) -> usize {
        match self {
            Reason::Held { hold, .. } => hold.rule_level,
            Reason::Override { rule_level, .. } => *rule_level,
            Reason::Condition
            | Reason::Quota
            | Reason::ValueShare { .. }
            | Reason::Rest
            | Reason::Cluster
            | Reason::MissingFeatures
            | Reason::Unplaced
            | Reason::NotApplicable => level,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum OverrideSource {
    Tag(String),
    Manual { reason: String },
}

/// A manual pin read from the overrides file.
#[derive(Debug, Clone, PartialEq)]
pub struct ManualPin {
    pub customer_id: String,
    pub ladder: String,
    pub level: String,
    pub reason: String,
    /// Where it came from, for error messages (e.g. "overrides.csv:4").
    pub origin: String,
    /// Pin by default; floor or ceiling only when asked for.
    pub mode: OverrideMode,
}

/// The outcome of one ladder for every customer.
#[derive(Debug, Clone)]
pub struct LadderResult {
    /// Level index per customer; `levels.len()` means unplaced, `levels.len() + 1` not
    /// applicable.
    pub level: Vec<usize>,
    pub reason: Vec<Reason>,
    /// 1-based position in rank order, when the ladder has `rank_by`.
    pub rank: Option<Vec<u32>>,
    /// Per level, the lowest `rank_by` value among customers its rank rule took.
    pub cutoff: Vec<Option<f64>>,
    /// Customers the ladder grades (inside `applies_to`).
    pub graded: usize,
    /// Each customer's standing to carry to the next run (empty when the evaluation has no
    /// date; `None` for customers the ladder does not grade).
    pub state: Vec<Option<HoldState>>,
    /// A cluster ladder's k-means: centres, sizes, each customer's distances.
    pub clusters: Option<Box<crate::cluster::Clusters>>,
}

impl LadderResult {
    pub fn count(&self, level: usize) -> usize {
        self.level.iter().filter(|l| **l == level).count()
    }
}

/// Customers in rank order: `rank_by` descending, missing last, then id ascending: as
/// numbers when every id is a whole number ("19755" before "162858"), else as text.
pub fn rank_order(frame: &Frame, col: usize) -> Vec<usize> {
    let column = frame.column_at(col);
    let id_order = id_order(frame);
    // Compact (key, row) pairs sorted on every core: the key puts values in descending order
    // with missing ones last, so a comparison is one integer compare. Runs of equal values
    // are then put in id order; most runs are single customers, but customers with no
    // activity can tie by the hundred thousand.
    let mut keyed: Vec<(u64, u32)> = (0..frame.len())
        .map(|r| (descending_key(column.num(r)), r as u32))
        .collect();
    keyed.par_sort_unstable_by_key(|p| p.0);
    let by_id = |a: &(u64, u32), b: &(u64, u32)| id_order(a.1 as usize, b.1 as usize);
    let mut start = 0;
    while start < keyed.len() {
        let key = keyed[start].0;
        let mut end = start + 1;
        while end < keyed.len() && keyed[end].0 == key {
            end += 1;
        }
        let run = &mut keyed[start..end];
        if run.len() > LARGE_TIE {
            run.par_sort_unstable_by(by_id);
        } else if run.len() > 1 {
            run.sort_unstable_by(by_id);
        }
        start = end;
    }
    keyed.into_iter().map(|(_, r)| r as usize).collect()
}

/// The order of customer ids, by row: as numbers when every id is a whole number
/// ("19755" before "162858"), else as text; equal numbers ("007", "7") by their text, so the
/// order is total. Whatever depends on an order (ties, k-means starts) uses this one.
pub fn id_order(frame: &Frame) -> impl Fn(usize, usize) -> std::cmp::Ordering + Sync + '_ {
    let ids = frame.ids();
    let numeric: Option<Vec<i64>> = (0..frame.len())
        .map(|r| ids[r].parse::<i64>().ok())
        .collect();
    move |a, b| {
        let by_number = numeric
            .as_ref()
            .map_or(std::cmp::Ordering::Equal, |n| n[a].cmp(&n[b]));
        by_number.then_with(|| ids[a].cmp(&ids[b]))
    }
}

/// Tied customers beyond which their id order is sorted on every core.
const LARGE_TIE: usize = 4096;

/// An integer whose ascending order is `value`'s descending order (as `f64::total_cmp`),
/// with missing values and NaN after every number.
fn descending_key(value: Option<f64>) -> u64 {
    match value {
        Some(v) if !v.is_nan() => {
            let bits = v.to_bits();
            // Negative numbers count down from zero, positive ones up from the middle.
            let ascending = if bits >> 63 == 1 {
                !bits
            } else {
                bits | 1 << 63
            };
            !ascending
        }
        _ => u64::MAX,
    }
}

/// Every customer unplaced, but those outside the ladder's `applies_to`: not applicable.
pub(crate) fn start(ladder: &Ladder, frame: &Frame) -> (Vec<usize>, Vec<Reason>) {
    let unplaced = ladder.levels.len();
    let n_all = frame.len();
    let mut level = vec![unplaced; n_all];
    let mut reason = vec![Reason::Unplaced; n_all];
    if let Some(scope) = &ladder.applies_to {
        for row in 0..n_all {
            if !scope.eval(frame, row) {
                level[row] = unplaced + 1;
                reason[row] = Reason::NotApplicable;
            }
        }
    }
    (level, reason)
}

/// Places everyone. `conds` are the ladder's conditions already resolved against `frame`
/// (same shape as `ladder.levels`).
pub fn place(
    ladder: &Ladder,
    frame: &Frame,
    rank_col: Option<usize>,
    value_col: Option<usize>,
) -> LadderResult {
    let n_all = frame.len();
    let unplaced = ladder.levels.len();
    let (mut level, mut reason) = start(ladder, frame);
    // Shares are of the customers the ladder grades.
    let n = level.iter().filter(|l| **l == unplaced).count();
    let mut cutoff = vec![None; ladder.levels.len()];
    let order = rank_col.map(|c| rank_order(frame, c));
    let order: Option<Vec<usize>> =
        order.map(|o| o.into_iter().filter(|&r| level[r] == unplaced).collect());
    let rank = order.as_ref().map(|o| {
        let mut r = vec![0u32; n_all];
        for (pos, &row) in o.iter().enumerate() {
            r[row] = (pos + 1) as u32;
        }
        r
    });
    let total_value: f64 = value_col.map_or(0.0, |c| {
        (0..n_all)
            .filter(|&r| level[r] == unplaced)
            .filter_map(|r| frame.column_at(c).num(r))
            .filter(|v| *v > 0.0)
            .sum()
    });
    let eligible =
        |cond: &Option<Cond>, row: usize| cond.as_ref().is_none_or(|c| c.eval(frame, row));

    let mut share_so_far = 0.0;
    let mut slots_so_far: usize = 0;
    let mut value_share_so_far = 0.0;
    let mut value_taken = 0.0;
    for (li, lvl) in ladder.levels.iter().enumerate() {
        match &lvl.rule {
            Rule::When(cond) => {
                for row in 0..n_all {
                    if level[row] == unplaced && cond.eval(frame, row) {
                        level[row] = li;
                        reason[row] = Reason::Condition;
                    }
                }
            }
            Rule::Rest => {
                for row in 0..n_all {
                    if level[row] == unplaced {
                        level[row] = li;
                        reason[row] = Reason::Rest;
                    }
                }
            }
            Rule::TopShare { when, .. } | Rule::TopN { when, .. } => {
                let slots = match &lvl.rule {
                    Rule::TopShare { share, .. } => {
                        // Cumulative rounding keeps every boundary within half a customer.
                        share_so_far += share;
                        let target = (share_so_far * n as f64).round() as usize;
                        let slots = target.saturating_sub(slots_so_far);
                        slots_so_far = target.max(slots_so_far);
                        slots
                    }
                    Rule::TopN { n: top, .. } => *top as usize,
                    _ => unreachable!(),
                };
                let Some(order) = &order else { continue };
                let rank_values =
                    frame.column_at(rank_col.expect("rank order implies rank column"));
                let mut taken = 0;
                for &row in order {
                    if taken == slots {
                        break;
                    }
                    if level[row] == unplaced && eligible(when, row) {
                        level[row] = li;
                        reason[row] = Reason::Quota;
                        cutoff[li] = rank_values.num(row).or(cutoff[li]);
                        taken += 1;
                    }
                }
            }
            // Placed by `cluster::place` instead: a cluster ladder has no other rules.
            Rule::Cluster { .. } | Rule::MissingFeatures => {}
            Rule::ValueShare { share, when } => {
                value_share_so_far += share;
                let (Some(order), Some(vc)) = (&order, value_col) else {
                    continue;
                };
                let threshold = value_share_so_far * total_value;
                let rank_values =
                    frame.column_at(rank_col.expect("rank order implies rank column"));
                for &row in order {
                    if value_taken >= threshold {
                        break;
                    }
                    let v = frame.column_at(vc).num(row).unwrap_or(0.0);
                    if level[row] != unplaced || v <= 0.0 || !eligible(when, row) {
                        continue;
                    }
                    level[row] = li;
                    reason[row] = Reason::ValueShare {
                        value_before: value_taken,
                        total: total_value,
                    };
                    cutoff[li] = rank_values.num(row).or(cutoff[li]);
                    value_taken += v;
                }
            }
        }
    }

    LadderResult {
        level,
        reason,
        rank,
        cutoff,
        graded: n,
        state: Vec::new(),
        clusters: None,
    }
}

/// Applies the ladder's tag overrides, in the order written.
pub fn apply_tag_overrides(ladder: &Ladder, frame: &Frame, result: &mut LadderResult) {
    let unplaced = ladder.levels.len();
    let LadderResult { level, reason, .. } = result;
    for o in &ladder.overrides {
        let Some(target) = ladder.level_index(&o.level) else {
            continue;
        };
        for row in 0..frame.len() {
            if level[row] <= unplaced && frame.tags(row).contains(&o.tag) {
                apply_override(
                    &mut level[row],
                    &mut reason[row],
                    target,
                    o.mode,
                    OverrideSource::Tag(o.tag.clone()),
                );
            }
        }
    }
}

/// Moves one customer according to an override's mode; records where the rules had put it.
pub fn apply_override(
    level: &mut usize,
    reason: &mut Reason,
    target: usize,
    mode: OverrideMode,
    source: OverrideSource,
) {
    let rule_level = match reason {
        Reason::Override { rule_level, .. } => *rule_level,
        _ => *level,
    };
    // Lower index = higher level.
    let new = match mode {
        OverrideMode::Pin => target,
        OverrideMode::Floor => (*level).min(target),
        OverrideMode::Ceiling => (*level).max(target),
    };
    if new != *level || mode == OverrideMode::Pin {
        *level = new;
        *reason = Reason::Override {
            source: Box::new(source),
            mode,
            rule_level,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::descending_key;

    #[test]
    fn descending_keys_order_values_high_to_low_with_missing_last() {
        let values = [
            Some(f64::INFINITY),
            Some(1e300),
            Some(2.5),
            Some(1.0),
            Some(f64::MIN_POSITIVE),
            Some(0.0),
            Some(-0.0),
            Some(-1.0),
            Some(-1e300),
            Some(f64::NEG_INFINITY),
            Some(f64::NAN),
        ];
        let keys: Vec<u64> = values.iter().map(|v| descending_key(*v)).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
        assert_eq!(descending_key(None), descending_key(Some(f64::NAN)));
        assert_eq!(descending_key(Some(-f64::NAN)), u64::MAX);
    }

    #[test]
    fn a_reason_is_three_words() {
        // A million customers hold one per ladder: keep the rare variants boxed.
        assert_eq!(std::mem::size_of::<super::Reason>(), 24);
    }
}
