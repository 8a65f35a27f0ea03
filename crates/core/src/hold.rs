//! Grace and hysteresis between runs. The rules say where a customer qualifies today; the
//! hold says where it stays, given where it was at the previous run. Downgrades are felt by
//! customers, so a ladder can wait for several runs, a number of days, or the end of a
//! qualification period before moving someone down; a level can also lapse after a number of
//! days (an expiring status). Pure: the previous state comes in, the new state goes out.

use chrono::{Datelike, Days, NaiveDate};

use crate::model::Ladder;
use crate::policy::{HoldDef, Period};

/// A customer's standing on one ladder after a run, carried to the next run by the store.
/// `L` is how the level is named: an index into the ladder in core (`levels.len()` =
/// unplaced), the level's name in the store, so a changed policy can be matched up (a level
/// that no longer exists starts the customer afresh).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing<L> {
    /// Where the customer stands after holds (before overrides).
    pub level: L,
    /// When the customer reached `level`.
    pub since: NaiveDate,
    /// The last run date at which the rules placed it on `level` or higher.
    pub last_qualified: NaiveDate,
    /// Consecutive runs the rules placed it below `level`, and since when.
    pub below_runs: u32,
    pub below_since: Option<NaiveDate>,
    /// Consecutive runs the rules placed it above `level`.
    pub above_runs: u32,
}

impl<L> Standing<L> {
    /// The same standing with the level named another way.
    pub fn with_level<M>(&self, level: M) -> Standing<M> {
        Standing {
            level,
            since: self.since,
            last_qualified: self.last_qualified,
            below_runs: self.below_runs,
            below_since: self.below_since,
            above_runs: self.above_runs,
        }
    }
}

/// A standing with the level as an index into the ladder.
pub type HoldState = Standing<usize>;
/// A standing with the level by name, as the store keeps it.
pub type PriorState = Standing<String>;

/// Why a customer is not on the level the rules give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// Where the rules alone place it.
    pub rule_level: usize,
    /// True when the rules place it higher and the upgrade waits.
    pub upgrade: bool,
    /// The first run date at which the move can happen, when a date decides it.
    pub until: Option<NaiveDate>,
    /// Further consecutive runs needed, when a run count decides it.
    pub runs_left: u32,
}

/// What the hold decided for one customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldOutcome {
    pub level: usize,
    pub state: HoldState,
    pub hold: Option<Hold>,
    /// The previous level lapsed (`valid_days`) at this run.
    pub expired: bool,
}

/// The last day of the period that contains `date`.
pub fn period_end(period: Period, date: NaiveDate) -> NaiveDate {
    let (y, m) = (date.year(), date.month());
    let last_month = match period {
        Period::Month => m,
        Period::Quarter => (m - 1) / 3 * 3 + 3,
        Period::Year => 12,
    };
    let (ny, nm) = if last_month == 12 {
        (y + 1, 1)
    } else {
        (y, last_month + 1)
    };
    NaiveDate::from_ymd_opt(ny, nm, 1).expect("valid month start") - Days::new(1)
}

fn fresh(level: usize, as_of: NaiveDate) -> HoldState {
    HoldState {
        level,
        since: as_of,
        last_qualified: as_of,
        below_runs: 0,
        below_since: None,
        above_runs: 0,
    }
}

/// Decides one customer's level on a ladder. `rule_level` is where the rules place it now
/// (lower index = higher level; `levels.len()` = unplaced); `prior` is its standing after the
/// previous run, already translated to this ladder's indices (`None`: first run, or its level
/// no longer exists).
pub fn decide(
    ladder: &Ladder,
    rule_level: usize,
    prior: Option<&HoldState>,
    as_of: NaiveDate,
) -> HoldOutcome {
    let rules = &ladder.hold;
    let plain = |expired| HoldOutcome {
        level: rule_level,
        state: fresh(rule_level, as_of),
        hold: None,
        expired,
    };
    let Some(p) = prior else {
        return plain(false);
    };
    let held = p.level;
    // An expiring status: once lapsed, the customer is where the rules put it, no grace.
    let lapsed = ladder
        .levels
        .get(held)
        .and_then(|l| l.valid_days)
        .is_some_and(|d| as_of >= p.since + Days::new(u64::from(d)));
    if lapsed {
        return plain(rule_level > held);
    }
    if rule_level == held {
        return HoldOutcome {
            level: held,
            state: HoldState {
                last_qualified: as_of,
                below_runs: 0,
                below_since: None,
                above_runs: 0,
                ..p.clone()
            },
            hold: None,
            expired: false,
        };
    }
    if rule_level < held {
        let needed = rules.upgrade_after_runs.unwrap_or(1);
        let above_runs = p.above_runs + 1;
        if above_runs >= needed {
            return plain(false);
        }
        return HoldOutcome {
            level: held,
            state: HoldState {
                last_qualified: as_of,
                below_runs: 0,
                below_since: None,
                above_runs,
                ..p.clone()
            },
            hold: Some(Hold {
                rule_level,
                upgrade: true,
                until: None,
                runs_left: needed - above_runs,
            }),
            expired: false,
        };
    }
    // The rules place it lower: a downgrade, once every configured wait is over.
    let below_runs = p.below_runs + 1;
    let below_since = p.below_since.unwrap_or(as_of);
    let runs_left = rules
        .downgrade_after_runs
        .unwrap_or(1)
        .saturating_sub(below_runs);
    let until = downgrade_date(rules, below_since, p.last_qualified);
    if runs_left == 0 && until.is_none_or(|d| as_of >= d) {
        return plain(false);
    }
    HoldOutcome {
        level: held,
        state: HoldState {
            below_runs,
            below_since: Some(below_since),
            above_runs: 0,
            ..p.clone()
        },
        hold: Some(Hold {
            rule_level,
            upgrade: false,
            until: until.filter(|d| as_of < *d),
            runs_left,
        }),
        expired: false,
    }
}

/// The first date a downgrade may happen, when a date rule is configured.
fn downgrade_date(
    rules: &HoldDef,
    below_since: NaiveDate,
    last_qualified: NaiveDate,
) -> Option<NaiveDate> {
    let grace = rules
        .grace_days
        .map(|d| below_since + Days::new(u64::from(d)));
    let period = rules
        .qualification_period
        .map(|p| period_end(p, last_qualified) + Days::new(1));
    match (grace, period) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Level, Rule};

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn ladder(hold: HoldDef, valid_days: Option<u32>) -> Ladder {
        let level = |name: &str| Level {
            name: name.into(),
            title: None,
            label: Default::default(),
            rule: Rule::Rest,
            valid_days: None,
            attributes: Default::default(),
        };
        let mut gold = level("gold");
        gold.valid_days = valid_days;
        Ladder {
            name: "card".into(),
            title: None,
            label: Default::default(),
            applies_to: None,
            rank_by: None,
            value: None,
            levels: vec![gold, level("silver"), level("basic")],
            overrides: vec![],
            hold,
            better: Default::default(),
            cluster: None,
        }
    }

    fn state(level: usize, since: &str) -> HoldState {
        fresh(level, date(since))
    }

    #[test]
    fn period_ends() {
        assert_eq!(
            period_end(Period::Month, date("2026-02-10")),
            date("2026-02-28")
        );
        assert_eq!(
            period_end(Period::Quarter, date("2026-11-05")),
            date("2026-12-31")
        );
        assert_eq!(
            period_end(Period::Quarter, date("2026-04-01")),
            date("2026-06-30")
        );
        assert_eq!(
            period_end(Period::Year, date("2026-03-01")),
            date("2026-12-31")
        );
    }

    #[test]
    fn without_rules_the_customer_follows_the_rules() {
        let l = ladder(HoldDef::default(), None);
        let out = decide(&l, 2, Some(&state(0, "2026-01-31")), date("2026-02-28"));
        assert_eq!(out.level, 2);
        assert_eq!(out.hold, None);
        assert_eq!(out.state, state(2, "2026-02-28"));
    }

    #[test]
    fn downgrade_after_two_runs_below() {
        let l = ladder(
            HoldDef {
                downgrade_after_runs: Some(2),
                ..Default::default()
            },
            None,
        );
        let first = decide(&l, 1, Some(&state(0, "2026-01-31")), date("2026-02-28"));
        assert_eq!(first.level, 0);
        assert_eq!(
            first.hold,
            Some(Hold {
                rule_level: 1,
                upgrade: false,
                until: None,
                runs_left: 1
            })
        );
        assert_eq!(first.state.below_runs, 1);
        assert_eq!(first.state.below_since, Some(date("2026-02-28")));
        let second = decide(&l, 1, Some(&first.state), date("2026-03-31"));
        assert_eq!(second.level, 1);
        assert_eq!(second.state, state(1, "2026-03-31"));
        // Requalifying in between resets the count.
        let back = decide(&l, 0, Some(&first.state), date("2026-03-31"));
        assert_eq!(back.level, 0);
        assert_eq!(back.state.below_runs, 0);
        assert_eq!(back.state.since, date("2026-01-31"));
    }

    #[test]
    fn grace_days_hold_until_a_date() {
        let l = ladder(
            HoldDef {
                grace_days: Some(90),
                ..Default::default()
            },
            None,
        );
        let a = decide(&l, 2, Some(&state(0, "2026-01-31")), date("2026-03-31"));
        assert_eq!(a.level, 0);
        assert_eq!(a.hold.as_ref().unwrap().until, Some(date("2026-06-29")));
        let b = decide(&l, 2, Some(&a.state), date("2026-06-28"));
        assert_eq!(b.level, 0);
        let c = decide(&l, 1, Some(&b.state), date("2026-06-29"));
        assert_eq!(c.level, 1);
        assert_eq!(c.hold, None);
    }

    #[test]
    fn qualification_period_holds_to_the_end_of_the_year() {
        let l = ladder(
            HoldDef {
                qualification_period: Some(Period::Year),
                ..Default::default()
            },
            None,
        );
        let a = decide(&l, 1, Some(&state(0, "2026-03-31")), date("2026-11-30"));
        assert_eq!(a.level, 0);
        assert_eq!(a.hold.as_ref().unwrap().until, Some(date("2027-01-01")));
        let b = decide(&l, 1, Some(&a.state), date("2027-01-31"));
        assert_eq!(b.level, 1);
    }

    #[test]
    fn upgrade_can_wait_for_runs() {
        let l = ladder(
            HoldDef {
                upgrade_after_runs: Some(2),
                ..Default::default()
            },
            None,
        );
        let a = decide(&l, 0, Some(&state(2, "2026-01-31")), date("2026-02-28"));
        assert_eq!(a.level, 2);
        assert!(a.hold.as_ref().unwrap().upgrade);
        let b = decide(&l, 0, Some(&a.state), date("2026-03-31"));
        assert_eq!(b.level, 0);
        assert_eq!(b.state.since, date("2026-03-31"));
    }

    #[test]
    fn an_expiring_level_lapses_without_grace() {
        let l = ladder(
            HoldDef {
                grace_days: Some(365),
                ..Default::default()
            },
            Some(180),
        );
        let before = decide(&l, 1, Some(&state(0, "2026-01-01")), date("2026-06-29"));
        assert_eq!(before.level, 0, "inside validity the grace holds");
        let after = decide(&l, 1, Some(&before.state), date("2026-06-30"));
        assert_eq!(after.level, 1);
        assert!(after.expired);
        // Requalifying after the lapse starts a new validity.
        let renewed = decide(&l, 0, Some(&state(0, "2026-01-01")), date("2026-07-01"));
        assert_eq!(renewed.state.since, date("2026-07-01"));
    }
}
