//! The sales pipeline: maturity classes with a follow-up cycle, a capacity and a payment
//! deadline each, and the daily call list a rep works through (DOMAIN.md "Sales pipeline
//! classes and daily work"). Pure: the store keeps the prospects' state and the
//! interactions; this module says who is due on a day, in which order, and who is flagged.

use chrono::{Datelike, NaiveDate, Weekday};

use crate::calendar::Calendar;
use crate::policy::Label;

/// `[pipeline]`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    /// The calendar file, relative to the policy's folder (read by the runner).
    pub calendar: Option<String>,
    pub daily_capacity: u32,
    /// Planned contacts per weekday, Monday first.
    pub weekly_targets: [Option<u32>; 7],
    /// In the order the call list serves them.
    pub classes: Vec<PipelineClass>,
    pub quotas: Vec<ClassQuota>,
    /// Working days overdue at which an overdue follow-up escalates, in order: remind the
    /// rep, tell the rep's manager, return the customer to the pool (each `None`: not used).
    pub escalation: [Option<u32>; 3],
}

/// What an overdue follow-up has come to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Escalation {
    RemindRep,
    TellManager,
    ReturnToPool,
}

impl Escalation {
    /// The step as the API names it.
    pub fn code(self) -> &'static str {
        match self {
            Escalation::RemindRep => "remind_rep",
            Escalation::TellManager => "tell_manager",
            Escalation::ReturnToPool => "return_to_pool",
        }
    }
    /// The step in words.
    pub fn as_str(self) -> &'static str {
        match self {
            Escalation::RemindRep => "remind the rep",
            Escalation::TellManager => "tell the team lead",
            Escalation::ReturnToPool => "return to the pool",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PipelineClass {
    pub name: String,
    pub label: Label,
    pub description: Option<String>,
    pub capacity: Option<u32>,
    pub follow_up_days: u32,
    pub pay_within_days: Option<u32>,
}

/// Contacts per day from a group of classes (indexes into [`Pipeline::classes`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ClassQuota {
    pub classes: Vec<usize>,
    pub min: u32,
    pub max: Option<u32>,
}

/// Generates a closed set of words with `as_str`, `FromStr` (naming the choices) and
/// `Display`: what an interaction's channel and outcome may be.
macro_rules! words {
    ($(#[$doc:meta])* $name:ident, $what:literal { $($variant:ident = $word:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $($variant,)*
        }

        impl $name {
            pub const ALL: &[$name] = &[$($name::$variant,)*];
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word,)*
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<$name, String> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s.trim())
                    .ok_or_else(|| {
                        let names: Vec<&str> = $name::ALL.iter().map(|v| v.as_str()).collect();
                        format!(concat!("unknown ", $what, " `{}`: use one of {}"), s, names.join(", "))
                    })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

words! {
    /// How likely a prospect is to buy, as the rep judged it at the last contact (in
    /// order: a later word is likelier).
    Intent, "intent" {
        Poor = "poor",
        Unclear = "unclear",
        Possible = "possible",
        Good = "good",
        VeryLikely = "very_likely",
    }
}

words! {
    /// How a contact was made (the walk-in and phone-in registers are two of them).
    Channel, "channel" {
        Call = "call",
        Visit = "visit",
        WalkIn = "walk_in",
        PhoneIn = "phone_in",
        Message = "message",
    }
}

words! {
    /// What came of a contact.
    Outcome, "outcome" {
        Reached = "reached",
        NoAnswer = "no_answer",
        Busy = "busy",
        Refused = "refused",
        WrongNumber = "wrong_number",
    }
}

/// A customer in the pipeline as the store keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Prospect {
    pub customer_id: String,
    pub rep: String,
    /// Index into [`Pipeline::classes`].
    pub class: usize,
    /// The day the customer entered its class (payment deadlines count from it).
    pub class_since: NaiveDate,
    pub last_contact: Option<NaiveDate>,
    /// The date the rep set at the last contact; overrides the class's cycle.
    pub next_contact: Option<NaiveDate>,
    pub intent: Option<Intent>,
}

/// One customer on a call list.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub customer_id: String,
    pub class: usize,
    /// The day the contact fell due.
    pub due: NaiveDate,
    /// Due on an earlier working day and not contacted since.
    pub overdue: bool,
    /// Working days since it fell due (0 when due today).
    pub overdue_days: u32,
    /// The furthest step of `[pipeline.escalation]` the overdue days have reached.
    pub escalation: Option<Escalation>,
    /// The class's payment deadline has passed.
    pub past_deadline: bool,
    pub intent: Option<Intent>,
    /// 0: morning, 1: afternoon.
    pub block: u8,
}

/// A rep's list for one day.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CallList {
    pub rep: String,
    pub date: NaiveDate,
    /// False on a weekend or holiday: the list is empty.
    pub working_day: bool,
    pub calls: Vec<Call>,
    /// Due today but beyond the day's capacity or a class's quota: tomorrow's first calls.
    pub carried: Vec<Call>,
    /// The day's planned contacts (the weekly target for the weekday).
    pub target: Option<u32>,
    /// Customers the rep holds in the pipeline.
    pub held: u32,
    /// (class, held, capacity) for each class the rep holds more of than it should.
    pub over_capacity: Vec<(usize, u32, u32)>,
    /// Working days a full pass over everyone the rep holds takes at the daily capacity
    /// (a rep holding 1,000 at 60 a day: 17), and the working days of the date's month.
    pub coverage_days: u32,
    pub month_working_days: u32,
}

impl Pipeline {
    pub fn class_index(&self, name: &str) -> Option<usize> {
        self.classes.iter().position(|c| c.name == name)
    }

    /// The weekday's planned contacts.
    pub fn target_on(&self, d: NaiveDate) -> Option<u32> {
        self.weekly_targets[d.weekday().num_days_from_monday() as usize]
    }

    /// When `p`'s next contact falls due: the date the rep set, else the class's cycle after
    /// the last contact, else at once (the day it entered the class).
    pub fn due_date(&self, calendar: &Calendar, p: &Prospect) -> NaiveDate {
        if let Some(next) = p.next_contact {
            return next;
        }
        match p.last_contact {
            Some(last) => calendar.add_working_days(last, self.classes[p.class].follow_up_days),
            None => p.class_since,
        }
    }

    /// The furthest escalation step `overdue_days` working days overdue reach.
    pub fn escalation_of(&self, overdue_days: u32) -> Option<Escalation> {
        let steps = [
            Escalation::RemindRep,
            Escalation::TellManager,
            Escalation::ReturnToPool,
        ];
        self.escalation
            .iter()
            .zip(steps)
            .filter(|(after, _)| after.is_some_and(|a| overdue_days >= a && overdue_days > 0))
            .map(|(_, step)| step)
            .max()
    }

    /// Whether the class's payment deadline has passed on `date`.
    pub fn past_deadline(&self, calendar: &Calendar, p: &Prospect, date: NaiveDate) -> bool {
        self.classes[p.class]
            .pay_within_days
            .is_some_and(|days| calendar.working_days_between(p.class_since, date) > days)
    }

    /// The call list of every rep with a prospect, for `date`: who is due (their date or
    /// their class's cycle), overdue first, then by class in the policy's order, then by
    /// intent (very likely first), then the earliest due, then the customer id; at least
    /// each quota's `min` from its classes when that many are due, never more than its
    /// `max`, and no more than the day's capacity; the first half of the list in the
    /// morning block, the rest in the afternoon.
    pub fn call_lists(
        &self,
        calendar: &Calendar,
        prospects: &[Prospect],
        date: NaiveDate,
    ) -> Vec<CallList> {
        // One pass to group by rep (a floor of a hundred reps would otherwise scan every
        // prospect a hundred times), reps in name order.
        let mut by_rep: std::collections::BTreeMap<&str, Vec<&Prospect>> = Default::default();
        for p in prospects {
            by_rep.entry(p.rep.as_str()).or_default().push(p);
        }
        by_rep
            .into_iter()
            .map(|(rep, mine)| self.call_list(calendar, rep, &mine, date))
            .collect()
    }

    fn call_list(
        &self,
        calendar: &Calendar,
        rep: &str,
        prospects: &[&Prospect],
        date: NaiveDate,
    ) -> CallList {
        let held = prospects.len() as u32;
        let mut list = CallList {
            rep: rep.to_string(),
            date,
            working_day: calendar.is_working(date),
            target: self.target_on(date),
            held,
            over_capacity: self.over_capacity(prospects),
            coverage_days: held.div_ceil(self.daily_capacity.max(1)),
            month_working_days: calendar.working_days_in_month(date),
            ..CallList::default()
        };
        if !list.working_day {
            return list;
        }
        let mut due: Vec<Call> = prospects
            .iter()
            .filter_map(|p| {
                let due = self.due_date(calendar, p);
                let first_day = calendar.add_working_days(due, 0);
                let overdue_days = if first_day < date {
                    calendar.working_days_between(first_day, date)
                } else {
                    0
                };
                (due <= date).then(|| Call {
                    customer_id: p.customer_id.clone(),
                    class: p.class,
                    due,
                    // Due on a working day before today: a day was missed.
                    overdue: first_day < date,
                    overdue_days,
                    escalation: self.escalation_of(overdue_days),
                    past_deadline: self.past_deadline(calendar, p, date),
                    intent: p.intent,
                    block: 0,
                })
            })
            .collect();
        due.sort_by(|a, b| {
            b.overdue
                .cmp(&a.overdue)
                .then(a.class.cmp(&b.class))
                .then(b.intent.cmp(&a.intent))
                .then(a.due.cmp(&b.due))
                .then(a.customer_id.cmp(&b.customer_id))
        });
        let capacity = self.daily_capacity as usize;
        let mut taken = vec![false; due.len()];
        let mut per_quota = vec![0u32; self.quotas.len()];
        let quotas_of = |class: usize| -> Vec<usize> {
            (0..self.quotas.len())
                .filter(|&q| self.quotas[q].classes.contains(&class))
                .collect()
        };
        let fits = |per_quota: &[u32], class: usize| {
            quotas_of(class)
                .iter()
                .all(|&q| self.quotas[q].max.is_none_or(|m| per_quota[q] < m))
        };
        let mut count = 0;
        // First each quota's minimum, in list order, so a long overdue tail of one class
        // cannot crowd out the classes the policy wants worked every day.
        for (q, quota) in self.quotas.iter().enumerate() {
            for (i, call) in due.iter().enumerate() {
                if count >= capacity || per_quota[q] >= quota.min {
                    break;
                }
                if !taken[i] && quota.classes.contains(&call.class) && fits(&per_quota, call.class)
                {
                    taken[i] = true;
                    count += 1;
                    for q in quotas_of(call.class) {
                        per_quota[q] += 1;
                    }
                }
            }
        }
        for (i, call) in due.iter().enumerate() {
            if count >= capacity {
                break;
            }
            if !taken[i] && fits(&per_quota, call.class) {
                taken[i] = true;
                count += 1;
                for q in quotas_of(call.class) {
                    per_quota[q] += 1;
                }
            }
        }
        let morning = count.div_ceil(2);
        for (i, mut call) in due.into_iter().enumerate() {
            if taken[i] {
                call.block = u8::from(list.calls.len() >= morning);
                list.calls.push(call);
            } else {
                list.carried.push(call);
            }
        }
        list
    }

    /// Per class, how many customers a rep holds beyond the class's capacity: (class, held,
    /// capacity) for each class over it.
    pub fn over_capacity(&self, prospects: &[&Prospect]) -> Vec<(usize, u32, u32)> {
        let mut held = vec![0u32; self.classes.len()];
        for p in prospects {
            held[p.class] += 1;
        }
        self.classes
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                c.capacity
                    .filter(|&cap| held[i] > cap)
                    .map(|cap| (i, held[i], cap))
            })
            .collect()
    }
}

/// The weekday a `weekly_targets` key names (`mon` … `sun`).
pub fn weekday_of(key: &str) -> Option<Weekday> {
    match key {
        "mon" => Some(Weekday::Mon),
        "tue" => Some(Weekday::Tue),
        "wed" => Some(Weekday::Wed),
        "thu" => Some(Weekday::Thu),
        "fri" => Some(Weekday::Fri),
        "sat" => Some(Weekday::Sat),
        "sun" => Some(Weekday::Sun),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn class(name: &str, follow_up_days: u32, pay_within_days: Option<u32>) -> PipelineClass {
        PipelineClass {
            name: name.into(),
            label: Label::default(),
            description: None,
            capacity: None,
            follow_up_days,
            pay_within_days,
        }
    }

    /// Classes 0 (daily), 1 (daily, pay within 2), 3 (every 5), 4 (every 10).
    fn pipeline(capacity: u32, quotas: Vec<ClassQuota>) -> Pipeline {
        Pipeline {
            calendar: None,
            daily_capacity: capacity,
            weekly_targets: [Some(35), Some(25), Some(25), Some(20), Some(15), None, None],
            classes: vec![
                class("0", 1, None),
                class("1", 1, Some(2)),
                class("3", 5, Some(10)),
                class("4", 10, None),
            ],
            quotas,
            escalation: [Some(2), Some(5), Some(10)],
        }
    }

    fn prospect(id: &str, class: usize, last: Option<&str>, next: Option<&str>) -> Prospect {
        Prospect {
            customer_id: id.into(),
            rep: "lin".into(),
            class,
            class_since: d("2026-09-01"),
            last_contact: last.map(d),
            next_contact: next.map(d),
            intent: None,
        }
    }

    const GOLDEN_WEEK: &str = "date,kind,note\n2026-09-20,workday,bridge\n\
        2026-10-01,holiday,National Day\n2026-10-02,holiday,National Day\n\
        2026-10-05,holiday,National Day\n2026-10-06,holiday,National Day\n\
        2026-10-07,holiday,National Day\n2026-10-10,workday,bridge\n";

    #[test]
    fn each_customer_is_due_on_exactly_the_right_working_days() {
        let cal = Calendar::parse(GOLDEN_WEEK, "c.csv").unwrap();
        let p = pipeline(60, vec![]);
        // Class 3 (every 5 working days), last contacted Friday September 25: due five
        // working days later, over the National Day holiday: Sep 28, 29, 30, Oct 8, 9 → Oct 9.
        let c3 = prospect("C3", 2, Some("2026-09-25"), None);
        let mut days_listed = Vec::new();
        let mut day = d("2026-09-26");
        while day <= d("2026-10-12") {
            let lists = p.call_lists(&cal, std::slice::from_ref(&c3), day);
            if lists[0].calls.iter().any(|c| c.customer_id == "C3") {
                days_listed.push((day, lists[0].calls[0].overdue));
            }
            day = day + chrono::Days::new(1);
        }
        // Uncalled, it stays on every working day from then on, overdue after the first.
        assert_eq!(
            days_listed,
            [
                (d("2026-10-09"), false),
                (d("2026-10-10"), true),
                (d("2026-10-12"), true)
            ]
        );
        // A date the rep set wins over the cycle; a holiday is not a working day.
        let set = prospect("C4", 3, Some("2026-09-25"), Some("2026-09-29"));
        assert_eq!(p.due_date(&cal, &set), d("2026-09-29"));
        let holiday = p.call_lists(&cal, &[c3.clone(), set], d("2026-10-05"));
        assert!(!holiday[0].working_day && holiday[0].calls.is_empty());
        // A date set on a holiday falls due then and is not overdue on the next working day.
        let on_holiday = prospect("C5", 3, None, Some("2026-10-03"));
        let list = &p.call_lists(&cal, &[on_holiday], d("2026-10-08"))[0];
        assert_eq!((list.calls.len(), list.calls[0].overdue), (1, false));
    }

    #[test]
    fn overdue_first_then_class_then_intent_then_due_and_deadlines_flagged() {
        let cal = Calendar::default();
        let p = pipeline(60, vec![]);
        let mut good = prospect("B", 3, Some("2026-09-01"), None);
        good.intent = Some(Intent::Good);
        let mut likely = prospect("C", 3, Some("2026-09-01"), None);
        likely.intent = Some(Intent::VeryLikely);
        let paying = prospect("D", 1, Some("2026-10-14"), None);
        let late = prospect("A", 0, None, Some("2026-10-12"));
        let lists = p.call_lists(&cal, &[good, likely, paying, late], d("2026-10-15"));
        let order: Vec<(&str, bool)> = lists[0]
            .calls
            .iter()
            .map(|c| (c.customer_id.as_str(), c.overdue))
            .collect();
        // A (set for Monday) and the class-4 customers (due Sep 15) are overdue; among
        // those, class order, then intent: very likely before good. D (class 1, contacted
        // yesterday) is due today.
        assert_eq!(order, [("A", true), ("C", true), ("B", true), ("D", false)]);
        // D entered class 1 on September 1st: its 2-day payment deadline has long passed.
        assert!(lists[0].calls[3].past_deadline);
        assert!(!lists[0].calls[0].past_deadline);
        assert_eq!(lists[0].target, Some(20), "Thursday's target");
        // Coverage: 4 customers at 60 a day, one working day; October has 22.
        assert_eq!(
            (
                lists[0].held,
                lists[0].coverage_days,
                lists[0].month_working_days
            ),
            (4, 1, 22)
        );
    }

    #[test]
    fn capacity_and_quotas_hold_and_the_rest_is_carried() {
        let cal = Calendar::default();
        // Classes 3 and 4 together: at least 2, at most 2; class 0 at most 3. Capacity 6.
        let quotas = vec![
            ClassQuota {
                classes: vec![2, 3],
                min: 2,
                max: Some(2),
            },
            ClassQuota {
                classes: vec![0],
                min: 0,
                max: Some(3),
            },
        ];
        let p = pipeline(6, quotas);
        let mut all = Vec::new();
        // Everyone is overdue; classes 0 and 1 come first in the list's order and would
        // fill the day alone.
        for i in 0..6 {
            all.push(prospect(&format!("P1-{i}"), 1, Some("2026-10-01"), None));
        }
        for i in 0..5 {
            all.push(prospect(&format!("P0-{i}"), 0, None, None));
        }
        for i in 0..4 {
            all.push(prospect(&format!("P3-{i}"), 2, Some("2026-09-01"), None));
        }
        let list = &p.call_lists(&cal, &all, d("2026-10-15"))[0];
        let ids: Vec<&str> = list.calls.iter().map(|c| c.customer_id.as_str()).collect();
        // Two class-3 calls reserved by the minimum; then the list's order: class 0 up to
        // its maximum of 3, then class 1 until the day is full. Listed in the list's order.
        assert_eq!(ids, ["P0-0", "P0-1", "P0-2", "P1-0", "P3-0", "P3-1"]);
        assert_eq!(list.carried.len(), 15 - 6);
        assert_eq!(list.carried[0].customer_id, "P0-3", "tomorrow's first call");
        // Morning and afternoon halves.
        let blocks: Vec<u8> = list.calls.iter().map(|c| c.block).collect();
        assert_eq!(blocks, [0, 0, 0, 1, 1, 1]);
        // With room, the class-3/4 group stops at its maximum.
        let roomy = pipeline(60, p.quotas.clone());
        let list = &roomy.call_lists(&cal, &all, d("2026-10-15"))[0];
        let group = list.calls.iter().filter(|c| c.class >= 2).count();
        let zero = list.calls.iter().filter(|c| c.class == 0).count();
        assert_eq!((group, zero, list.calls.len()), (2, 3, 11));
        assert_eq!(list.carried.len(), 4);
        // Capacity flags: more class-1 customers than the class allows.
        let mut capped = roomy.clone();
        capped.classes[1].capacity = Some(5);
        let mine: Vec<&Prospect> = all.iter().collect();
        assert_eq!(capped.over_capacity(&mine), [(1, 6, 5)]);
    }

    /// A team's October (National Day with its moved weekends): three reps, each prospect
    /// called every day it is listed. With room, everyone appears on exactly the days its
    /// cycle gives and no other; with a tight capacity, every day keeps the capacity and
    /// the quotas, and whoever is carried is overdue the next working day.
    #[test]
    fn a_simulated_month_lists_everyone_on_exactly_its_days() {
        let cal = Calendar::parse(GOLDEN_WEEK, "c.csv").unwrap();
        let reps = ["lin", "wu", "zhao"];
        let mut team: Vec<Prospect> = Vec::new();
        for (r, rep) in reps.iter().enumerate() {
            for i in 0..30 {
                let class = (i + r) % 4;
                let mut p = prospect(&format!("{rep}-{i:02}"), class, None, None);
                p.rep = rep.to_string();
                // First contacts spread over the second half of September.
                p.class_since = d("2026-09-14") + chrono::Days::new((i % 12) as u64);
                p.last_contact = Some(p.class_since);
                team.push(p);
            }
        }
        let p = pipeline(1000, vec![]);
        // The days each prospect should be called, computed from the cycle alone.
        let expected = |x: &Prospect| {
            let mut days = Vec::new();
            let mut next =
                cal.add_working_days(x.last_contact.unwrap(), p.classes[x.class].follow_up_days);
            while next <= d("2026-10-31") {
                days.push(next);
                next = cal.add_working_days(next, p.classes[x.class].follow_up_days);
            }
            days
        };
        let want: Vec<Vec<NaiveDate>> = team.iter().map(expected).collect();
        let mut got: Vec<Vec<NaiveDate>> = vec![Vec::new(); team.len()];
        let mut state = team.clone();
        let mut day = d("2026-09-14");
        while day <= d("2026-10-31") {
            for list in p.call_lists(&cal, &state, day) {
                assert!(
                    list.working_day || list.calls.is_empty(),
                    "{day}: a list on a day off"
                );
                assert!(list.carried.is_empty());
                for call in &list.calls {
                    assert!(
                        !call.overdue,
                        "{day}: {} overdue though called every day",
                        call.customer_id
                    );
                    let at = state
                        .iter()
                        .position(|x| x.customer_id == call.customer_id)
                        .unwrap();
                    got[at].push(day);
                    state[at].last_contact = Some(day);
                }
            }
            day = day + chrono::Days::new(1);
        }
        assert_eq!(got, want);
        // Not one call on the holiday or its Saturday; some on the Saturday worked.
        let all: Vec<NaiveDate> = got.iter().flatten().copied().collect();
        assert!(!all.contains(&d("2026-10-03")) && !all.contains(&d("2026-10-05")));
        assert!(all.contains(&d("2026-10-10")));

        // Capacity 4 with class 0 at most 1 and classes 3 and 4 at least 1: every day holds
        // both; whoever is carried is overdue when called on a later working day.
        let quotas = vec![
            ClassQuota {
                classes: vec![0],
                min: 0,
                max: Some(1),
            },
            ClassQuota {
                classes: vec![2, 3],
                min: 1,
                max: None,
            },
        ];
        let tight = pipeline(4, quotas);
        let mut state = team.clone();
        let mut carried: Vec<String> = Vec::new();
        let mut day = d("2026-10-08");
        while day <= d("2026-10-31") {
            if !cal.is_working(day) {
                day = day + chrono::Days::new(1);
                continue;
            }
            let lists = tight.call_lists(&cal, &state, day);
            let mut next_carried = Vec::new();
            for list in &lists {
                assert!(list.calls.len() <= 4, "{day} {}", list.rep);
                assert!(list.calls.iter().filter(|c| c.class == 0).count() <= 1);
                let due_34 = list.calls.iter().chain(&list.carried).any(|c| c.class >= 2);
                if due_34 {
                    assert!(
                        list.calls.iter().any(|c| c.class >= 2),
                        "{day}: the minimum of classes 3 and 4"
                    );
                }
                for c in &list.carried {
                    next_carried.push(c.customer_id.clone());
                }
                for c in &list.calls {
                    if carried.contains(&c.customer_id) {
                        assert!(
                            c.overdue,
                            "{day}: {} carried yesterday is overdue",
                            c.customer_id
                        );
                    }
                    let at = state
                        .iter()
                        .position(|x| x.customer_id == c.customer_id)
                        .unwrap();
                    state[at].last_contact = Some(day);
                }
            }
            carried = next_carried;
            day = day + chrono::Days::new(1);
        }
    }

    #[test]
    fn an_overdue_follow_up_escalates_on_the_working_days_the_policy_says() {
        let cal = Calendar::parse(GOLDEN_WEEK, "c.csv").unwrap();
        let p = pipeline(60, vec![]);
        // Set for Monday September 28 and never called: overdue from the 29th.
        let x = prospect("X", 3, None, Some("2026-09-28"));
        let step = |day: &str| {
            let list = &p.call_lists(&cal, std::slice::from_ref(&x), d(day))[0];
            (list.calls[0].overdue_days, list.calls[0].escalation)
        };
        assert_eq!(step("2026-09-28"), (0, None));
        assert_eq!(step("2026-09-29"), (1, None));
        // Two working days overdue: Sep 29 and 30 → the rep is reminded on the 30th.
        assert_eq!(step("2026-09-30"), (2, Some(Escalation::RemindRep)));
        // The holiday does not count: Oct 8 is the third working day, Oct 10 (a Saturday
        // worked) the fifth → the manager.
        assert_eq!(step("2026-10-08"), (3, Some(Escalation::RemindRep)));
        assert_eq!(step("2026-10-10"), (5, Some(Escalation::TellManager)));
        // Ten working days: Oct 8, 9, 10, 12, 13, 14, 15 after Sep 29, 30 → Oct 16.
        assert_eq!(step("2026-10-15"), (9, Some(Escalation::TellManager)));
        assert_eq!(step("2026-10-16"), (10, Some(Escalation::ReturnToPool)));
        let mut none = p.clone();
        none.escalation = [None; 3];
        assert_eq!(none.escalation_of(30), None);
    }
}
