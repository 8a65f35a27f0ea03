//! Differentiated service, the pure part: the benefits catalog with quota periods, queue
//! ordering with aging, call-back deadlines and the SLA report. The store keeps the
//! redemption ledger and the server serves it; the rules live here so they can be tested
//! without either.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Serialize;

/// The service settings and benefits of a policy, checked against its ladders.
#[derive(Debug, Clone)]
pub struct Service {
    /// Index of the ladder that decides service.
    pub ladder: usize,
    pub ladder_name: String,
    /// Level names of that ladder, best first.
    pub levels: Vec<String>,
    pub timezone: Tz,
    /// The text metric naming each customer's owner (agent).
    pub owner: Option<String>,
    pub last_tags: Vec<String>,
    pub aging_minutes: u32,
    /// Per level: answer within this many seconds…
    pub sla_seconds: Vec<f64>,
    /// …for at least this share of calls.
    pub sla_target: Vec<f64>,
    /// The `[service]` targets (seconds, share), for callers with no level.
    pub default_sla: (f64, f64),
    /// Per level: a missed caller is called back within this many hours (None: no call-back).
    pub callback_hours: Vec<Option<u32>>,
    pub benefits: Vec<Benefit>,
}

/// How often a benefit's quota renews.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QuotaPeriod {
    Day,
    Month,
    Year,
    /// The last N days up to now.
    Rolling {
        days: u32,
    },
}

/// What one level may use of a benefit per period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Quota {
    NotEligible,
    Limited(u32),
    Unlimited,
}

#[derive(Debug, Clone, Serialize)]
pub struct Benefit {
    pub name: String,
    pub title: Option<String>,
    pub label: crate::policy::Label,
    pub period: QuotaPeriod,
    /// Per level of the service ladder.
    pub quota: Vec<Quota>,
    pub grant_hours: Option<u32>,
}

impl Benefit {
    /// The benefit's name in a language: its label, else its title, else its name.
    pub fn shown(&self, lang: crate::policy::Lang) -> &str {
        self.label
            .get(lang)
            .or(self.title.as_deref())
            .unwrap_or(&self.name)
    }
    /// The quota of a level (`None`: the customer has no level on the service ladder).
    pub fn quota_for(&self, level: Option<usize>) -> Quota {
        level
            .and_then(|l| self.quota.get(l).copied())
            .unwrap_or(Quota::NotEligible)
    }
}

impl QuotaPeriod {
    /// Parses `day`, `month`, `year` or `N days`.
    pub fn parse(text: &str) -> Option<QuotaPeriod> {
        match text.trim() {
            "day" => Some(QuotaPeriod::Day),
            "month" => Some(QuotaPeriod::Month),
            "year" => Some(QuotaPeriod::Year),
            other => match crate::time::Offset::parse(other) {
                Ok(crate::time::Offset {
                    amount,
                    unit: crate::time::TimeUnit::Day,
                }) if amount > 0 => Some(QuotaPeriod::Rolling { days: amount }),
                _ => None,
            },
        }
    }

    /// The period containing `now`, as a half-open UTC interval. Calendar periods start at
    /// local midnight in `tz`; a rolling window is the `days` days ending at `now`.
    pub fn window(&self, now: DateTime<Utc>, tz: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
        let local = now.with_timezone(&tz).date_naive();
        let (start, end) = match self {
            QuotaPeriod::Rolling { days } => {
                return (
                    now - Duration::days(i64::from(*days)),
                    now + Duration::milliseconds(1),
                );
            }
            QuotaPeriod::Day => (local, local + Duration::days(1)),
            QuotaPeriod::Month => {
                let start = local.with_day(1).expect("day 1 exists");
                let end = if start.month() == 12 {
                    NaiveDate::from_ymd_opt(start.year() + 1, 1, 1)
                } else {
                    NaiveDate::from_ymd_opt(start.year(), start.month() + 1, 1)
                }
                .expect("first of a month exists");
                (start, end)
            }
            QuotaPeriod::Year => (
                NaiveDate::from_ymd_opt(local.year(), 1, 1).expect("1 January"),
                NaiveDate::from_ymd_opt(local.year() + 1, 1, 1).expect("1 January"),
            ),
        };
        (local_midnight(start, tz), local_midnight(end, tz))
    }
}

/// Midnight of a date in `tz`, in UTC. Where midnight does not exist (a DST jump at 00:00)
/// the first instant of the day is taken.
fn local_midnight(date: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let naive = date.and_hms_opt(0, 0, 0).expect("midnight");
    match tz.from_local_datetime(&naive) {
        chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
            t.with_timezone(&Utc)
        }
        chrono::LocalResult::None => {
            let later = naive + Duration::hours(1);
            tz.from_local_datetime(&later)
                .earliest()
                .expect("an hour after a gap exists")
                .with_timezone(&Utc)
        }
    }
}

/// One caller waiting in the queue.
#[derive(Debug, Clone)]
pub struct Waiting {
    pub customer_id: String,
    pub arrived_at: DateTime<Utc>,
    /// Level on the service ladder; `None` for unknown customers (served as the lowest).
    pub level: Option<usize>,
    /// Carries one of the service's `last_tags` (blacklist).
    pub last: bool,
}

/// A caller's place in the ordered queue and why.
#[derive(Debug, Clone, Serialize)]
pub struct QueuePlace {
    pub position: usize,
    pub customer_id: String,
    pub level: Option<String>,
    pub arrived_at: DateTime<Utc>,
    pub waited_seconds: i64,
    /// The level rank used for ordering after aging (0 = best level).
    pub effective_rank: usize,
    pub last: bool,
}

impl Service {
    /// Orders a waiting list: blacklisted callers last; otherwise by level, best first, where
    /// every `aging_minutes` a caller has waited counts as one level better (so a small
    /// customer waiting long enough overtakes new arrivals above it); then by arrival, then
    /// by customer id.
    pub fn order_queue(&self, waiting: &[Waiting], now: DateTime<Utc>) -> Vec<QueuePlace> {
        let lowest = self.levels.len();
        let mut places: Vec<QueuePlace> = waiting
            .iter()
            .map(|w| {
                let waited = (now - w.arrived_at).num_seconds().max(0);
                let rank = w.level.unwrap_or(lowest).min(lowest);
                let bonus = match self.aging_minutes {
                    0 => 0,
                    m => (waited / (i64::from(m) * 60)) as usize,
                };
                QueuePlace {
                    position: 0,
                    customer_id: w.customer_id.clone(),
                    level: w.level.and_then(|l| self.levels.get(l).cloned()),
                    arrived_at: w.arrived_at,
                    waited_seconds: waited,
                    effective_rank: rank.saturating_sub(bonus),
                    last: w.last,
                }
            })
            .collect();
        places.sort_by(|a, b| {
            (a.last, a.effective_rank, a.arrived_at, &a.customer_id).cmp(&(
                b.last,
                b.effective_rank,
                b.arrived_at,
                &b.customer_id,
            ))
        });
        for (i, p) in places.iter_mut().enumerate() {
            p.position = i + 1;
        }
        places
    }

    /// When a caller of `level` who was not connected at `missed_at` must be called back.
    pub fn callback_due(
        &self,
        level: Option<usize>,
        missed_at: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let hours = (*self.callback_hours.get(level?)?)?;
        Some(missed_at + Duration::hours(i64::from(hours)))
    }

    /// Share of calls answered within the target, per level (plus unknown customers).
    /// An abandoned call counts as not answered within the target.
    pub fn sla_report(&self, calls: &[Call]) -> Vec<SlaRow> {
        let n = self.levels.len();
        let mut rows: Vec<SlaRow> = (0..=n)
            .map(|l| SlaRow {
                level: self.levels.get(l).cloned(),
                target_seconds: self
                    .sla_seconds
                    .get(l)
                    .copied()
                    .unwrap_or(self.default_sla.0),
                target_share: self
                    .sla_target
                    .get(l)
                    .copied()
                    .unwrap_or(self.default_sla.1),
                calls: 0,
                answered: 0,
                abandoned: 0,
                within_target: 0,
                share_within_target: None,
                met: None,
            })
            .collect();
        for call in calls {
            let row = &mut rows[call.level.unwrap_or(n).min(n)];
            row.calls += 1;
            match call.answered_at {
                Some(at) => {
                    row.answered += 1;
                    let waited = (at - call.queued_at).num_milliseconds() as f64 / 1000.0;
                    if waited <= row.target_seconds {
                        row.within_target += 1;
                    }
                }
                None => row.abandoned += 1,
            }
        }
        for row in &mut rows {
            if row.calls > 0 {
                let share = row.within_target as f64 / row.calls as f64;
                row.share_within_target = Some(share);
                row.met = Some(share + 1e-12 >= row.target_share);
            }
        }
        rows.retain(|r| r.level.is_some() || r.calls > 0);
        rows
    }

    pub fn benefit(&self, name: &str) -> Option<&Benefit> {
        self.benefits.iter().find(|b| b.name == name)
    }

    pub fn level_index(&self, name: &str) -> Option<usize> {
        self.levels.iter().position(|l| l == name)
    }
}

/// One call-centre log line.
#[derive(Debug, Clone)]
pub struct Call {
    pub customer_id: String,
    pub level: Option<usize>,
    pub queued_at: DateTime<Utc>,
    /// `None`: abandoned before a person answered.
    pub answered_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SlaRow {
    /// `None`: callers with no level on the service ladder.
    pub level: Option<String>,
    pub target_seconds: f64,
    pub target_share: f64,
    pub calls: u64,
    pub answered: u64,
    pub abandoned: u64,
    pub within_target: u64,
    pub share_within_target: Option<f64>,
    pub met: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Policy;

    /// Beijing Unicom's VIP levels (DOMAIN.md "Differentiated service").
    const POLICY: &str = r#"
[sources.customers]
path = "c.csv"
key = "id"
columns = { spend = "float", manager = "string" }

[metrics.spend]
source = "customers"
expr = "spend"

[metrics.manager]
source = "customers"
expr = "manager"

[service]
ladder = "vip"
timezone = "Asia/Shanghai"
owner = "manager"

[benefits.sim_replacement]
title = "Free SIM replacement"
period = "year"
quota = { silver = 1, gold = 2, diamond = 3, supreme = "unlimited" }

[benefits.emergency_reactivation]
period = "month"
quota = { silver = 2, gold = 2, diamond = 2, supreme = 2 }
grant_hours = 24

[ladders.vip]
rank_by = "spend"

[[ladders.vip.levels]]
name = "supreme"
when = "spend >= 1000"
attributes = { sla_seconds = 20, sla_target = 0.9 }

[[ladders.vip.levels]]
name = "diamond"
when = "spend >= 500"
attributes = { sla_seconds = 20, sla_target = 0.9 }

[[ladders.vip.levels]]
name = "gold"
when = "spend >= 200"
attributes = { callback_hours = 24 }

[[ladders.vip.levels]]
name = "silver"
rest = true
"#;

    fn service() -> Service {
        Policy::from_str("p.toml", POLICY).unwrap().service.unwrap()
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn quotas_per_level_from_the_catalog() {
        let s = service();
        let sim = s.benefit("sim_replacement").unwrap();
        assert_eq!(
            sim.quota,
            [
                Quota::Unlimited,
                Quota::Limited(3),
                Quota::Limited(2),
                Quota::Limited(1)
            ]
        );
        assert_eq!(sim.quota_for(None), Quota::NotEligible);
        let er = s.benefit("emergency_reactivation").unwrap();
        assert_eq!(er.period, QuotaPeriod::Month);
        assert_eq!(er.grant_hours, Some(24));
        assert_eq!(s.owner.as_deref(), Some("manager"));
        assert_eq!(s.sla_target, [0.9, 0.9, 0.85, 0.85]);
        assert_eq!(s.callback_hours, [None, None, Some(24), None]);
    }

    #[test]
    fn calendar_periods_start_at_local_midnight() {
        let tz: Tz = "Asia/Shanghai".parse().unwrap();
        // 2026-11-30 17:00 UTC is already 1 December 01:00 in Shanghai.
        let now = t("2026-11-30T17:00:00Z");
        assert_eq!(
            QuotaPeriod::Month.window(now, tz),
            (t("2026-11-30T16:00:00Z"), t("2026-12-31T16:00:00Z"))
        );
        assert_eq!(
            QuotaPeriod::Day.window(now, tz),
            (t("2026-11-30T16:00:00Z"), t("2026-12-01T16:00:00Z"))
        );
        assert_eq!(
            QuotaPeriod::Year.window(t("2026-12-31T16:30:00Z"), tz),
            (t("2026-12-31T16:00:00Z"), t("2027-12-31T16:00:00Z"))
        );
        assert_eq!(
            QuotaPeriod::Month.window(now, chrono_tz::UTC),
            (t("2026-11-01T00:00:00Z"), t("2026-12-01T00:00:00Z"))
        );
        let rolling = QuotaPeriod::parse("30 days").unwrap();
        assert_eq!(rolling, QuotaPeriod::Rolling { days: 30 });
        assert_eq!(rolling.window(now, tz).0, t("2026-10-31T17:00:00Z"));
        assert_eq!(QuotaPeriod::parse("fortnight"), None);
    }

    #[test]
    fn queue_puts_levels_first_ages_the_rest_and_the_blacklist_last() {
        let s = service(); // aging: one level per 10 minutes
        let now = t("2026-11-24T10:00:00Z");
        let w = |id: &str, at: &str, level: Option<usize>, last: bool| Waiting {
            customer_id: id.into(),
            arrived_at: t(at),
            level,
            last,
        };
        let order = s.order_queue(
            &[
                w("silver-new", "2026-11-24T09:59:00Z", Some(3), false),
                w("blacklisted-supreme", "2026-11-24T09:00:00Z", Some(0), true),
                w("gold", "2026-11-24T09:58:00Z", Some(2), false),
                // Waited 31 minutes: three levels up, from silver (3) to supreme (0).
                w("silver-old", "2026-11-24T09:29:00Z", Some(3), false),
                w("supreme", "2026-11-24T09:59:30Z", Some(0), false),
                w("unknown", "2026-11-24T09:50:00Z", None, false),
            ],
            now,
        );
        let ids: Vec<_> = order.iter().map(|p| p.customer_id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "silver-old",
                "supreme",
                "gold",
                "unknown",
                "silver-new",
                "blacklisted-supreme"
            ]
        );
        assert_eq!(order[0].effective_rank, 0);
        assert_eq!(order[0].waited_seconds, 31 * 60);
        assert_eq!(order[3].effective_rank, 3, "unknown (4) aged one level");
        assert_eq!(order[5].position, 6);
    }

    #[test]
    fn callbacks_are_due_for_configured_levels_only() {
        let s = service();
        let at = t("2026-11-24T10:00:00Z");
        assert_eq!(s.callback_due(Some(2), at), Some(t("2026-11-25T10:00:00Z")));
        assert_eq!(s.callback_due(Some(0), at), None);
        assert_eq!(s.callback_due(None, at), None);
    }

    #[test]
    fn sla_report_counts_answers_within_each_levels_target() {
        let s = service();
        let call = |level: Option<usize>, wait: Option<i64>| Call {
            customer_id: "c".into(),
            level,
            queued_at: t("2026-11-24T10:00:00Z"),
            answered_at: wait.map(|w| t("2026-11-24T10:00:00Z") + Duration::seconds(w)),
        };
        let mut calls = Vec::new();
        // Supreme: 9 of 10 within 20 s (one at exactly 20 s counts) -> 90%, target 90%: met.
        for i in 0..8 {
            calls.push(call(Some(0), Some(i)));
        }
        calls.push(call(Some(0), Some(20)));
        calls.push(call(Some(0), Some(21)));
        // Gold: 4 calls, 3 within, 1 abandoned -> 75% < 85%: missed.
        for _ in 0..3 {
            calls.push(call(Some(2), Some(5)));
        }
        calls.push(call(Some(2), None));
        calls.push(call(None, Some(60)));
        let rows = s.sla_report(&calls);
        let levels: Vec<_> = rows.iter().map(|r| r.level.clone()).collect();
        assert_eq!(
            levels,
            [
                Some("supreme".into()),
                Some("diamond".into()),
                Some("gold".into()),
                Some("silver".into()),
                None
            ]
        );
        assert_eq!((rows[0].calls, rows[0].within_target), (10, 9));
        assert_eq!(rows[0].share_within_target, Some(0.9));
        assert_eq!(rows[0].met, Some(true));
        assert_eq!(rows[1].calls, 0);
        assert_eq!(rows[1].met, None);
        assert_eq!(
            (rows[2].calls, rows[2].abandoned, rows[2].within_target),
            (4, 1, 3)
        );
        assert_eq!(rows[2].met, Some(false));
        assert_eq!(rows[4].share_within_target, Some(0.0));
    }

    #[test]
    fn callers_without_a_level_get_the_service_defaults() {
        let text = POLICY.replace(
            "owner = \"manager\"",
            "owner = \"manager\"\nsla_seconds = 30\nsla_target = 0.8",
        );
        let s = Policy::from_str("p.toml", &text).unwrap().service.unwrap();
        let rows = s.sla_report(&[Call {
            customer_id: "walk-in".into(),
            level: None,
            queued_at: t("2026-11-24T10:00:00Z"),
            answered_at: Some(t("2026-11-24T10:00:25Z")),
        }]);
        let no_level = rows.last().unwrap();
        assert_eq!(no_level.level, None);
        assert_eq!(
            (no_level.target_seconds, no_level.target_share),
            (30.0, 0.8)
        );
        assert_eq!(no_level.met, Some(true), "25 s is within 30 s");
        assert_eq!(
            rows[2].target_seconds, 30.0,
            "gold has no sla_seconds of its own"
        );
    }

    #[test]
    fn catalog_mistakes_are_located_errors() {
        let bad = POLICY
            .replace("gold = 2, diamond", "glod = 2, diamond")
            .replace("\"Asia/Shanghai\"", "\"Asia/Shanghia\"")
            .replace("period = \"month\"", "period = \"fortnight\"");
        let err = Policy::from_str("p.toml", &bad).unwrap_err();
        let found: Vec<_> = err.errors().map(|d| (d.code, d.key.as_str())).collect();
        assert_eq!(
            found,
            [
                ("invalid_timezone", "service.timezone"),
                ("unknown_level", "benefits.sim_replacement.quota.glod"),
                ("invalid_period", "benefits.emergency_reactivation.period"),
            ]
        );
        let unknown = err.errors().nth(1).unwrap();
        assert_eq!(unknown.help.as_deref(), Some("did you mean `gold`?"));
        assert!(unknown.location.is_some());
    }
}
