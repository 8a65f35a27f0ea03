//! The sales team's reports ("three tables, one card"): the funnel by class, the daily
//! activity per rep, plan against actual per week, the intent customers' contact status and
//! the lost-sale reasons. Each is rows of its own type (what the API serializes) and a
//! [`Report`] (the same rows as a table: the CLI prints it, every edge exports it as CSV).

use std::collections::HashMap;

use chrono::{Datelike, NaiveDate};
use serde::Serialize;
use stratum_core::pipeline::{Channel, Intent, Outcome};
use stratum_store::Store;

use super::{calendar, pipeline_of, prospects};
use crate::{LoadedPolicy, RunError};

/// One class of the funnel over a period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunnelRow {
    pub class: String,
    /// Prospects in the class now.
    pub now: usize,
    /// Customers who entered the class in the period (first contacts included).
    pub entered: usize,
    /// Customers who left the class in the period.
    pub left: usize,
    /// Where those who left went: (class, customers), most first.
    pub moved_to: Vec<(String, usize)>,
    /// The median working days spent in the class by those who left it in the period.
    pub median_days: Option<u32>,
}

/// The funnel by class for `from` to `to` (inclusive): who is where now, who entered, where
/// those who left went (the conversion between classes) and how long they stayed — from
/// the class changes the store keeps. `reps`: only the prospects those reps hold now.
pub async fn funnel(
    loaded: &LoadedPolicy,
    store: &Store,
    from: NaiveDate,
    to: NaiveDate,
    reps: Option<&[String]>,
) -> Result<Vec<FunnelRow>, RunError> {
    let pipeline = pipeline_of(loaded)?;
    let calendar = calendar(loaded)?;
    let held: Vec<stratum_store::ProspectRow> = store
        .prospects()
        .await?
        .into_iter()
        .filter(|p| reps.is_none_or(|reps| reps.contains(&p.rep)))
        .collect();
    let counted: std::collections::HashSet<&str> =
        held.iter().map(|p| p.customer_id.as_str()).collect();
    let changes = store.all_class_changes().await?;
    let mut rows: Vec<FunnelRow> = pipeline
        .classes
        .iter()
        .map(|c| FunnelRow {
            class: c.name.clone(),
            now: held.iter().filter(|p| p.class == c.name).count(),
            entered: 0,
            left: 0,
            moved_to: Vec::new(),
            median_days: None,
        })
        .collect();
    let mut stays: Vec<Vec<u32>> = vec![Vec::new(); rows.len()];
    // Changes come per customer in the order they were made: each one ends the stay the
    // customer's previous change began.
    let mut entered_at: HashMap<&str, NaiveDate> = Default::default();
    for c in changes
        .iter()
        .filter(|c| reps.is_none() || counted.contains(c.customer_id.as_str()))
    {
        let in_period = c.on_date >= from && c.on_date <= to;
        if let Some(from_class) = &c.from_class
            && let Some(i) = rows.iter().position(|r| &r.class == from_class)
            && in_period
        {
            rows[i].left += 1;
            match rows[i].moved_to.iter_mut().find(|(k, _)| *k == c.to_class) {
                Some((_, n)) => *n += 1,
                None => rows[i].moved_to.push((c.to_class.clone(), 1)),
            }
            if let Some(since) = entered_at.get(c.customer_id.as_str()) {
                stays[i].push(calendar.working_days_between(*since, c.on_date));
            }
        }
        if in_period && let Some(i) = rows.iter().position(|r| r.class == c.to_class) {
            rows[i].entered += 1;
        }
        entered_at.insert(&c.customer_id, c.on_date);
    }
    for (row, mut days) in rows.iter_mut().zip(stays) {
        row.moved_to
            .sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        days.sort_unstable();
        row.median_days = (!days.is_empty()).then(|| days[days.len() / 2]);
    }
    Ok(rows)
}

/// One rep's contacts on one day, against the weekday's target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActivityRow {
    pub rep: String,
    pub day: NaiveDate,
    pub contacts: usize,
    pub target: Option<u32>,
    /// Contacts per outcome, in `Outcome::ALL`'s order.
    pub outcomes: Vec<usize>,
    /// Contacts per channel, in `Channel::ALL`'s order.
    pub channels: Vec<usize>,
}

/// The interactions of the period, of `reps` only when given.
async fn contacts_of(
    store: &Store,
    from: NaiveDate,
    to: NaiveDate,
    reps: Option<&[String]>,
) -> Result<Vec<stratum_store::InteractionRow>, RunError> {
    Ok(store
        .interactions_between(from, to)
        .await?
        .into_iter()
        .filter(|i| reps.is_none_or(|reps| reps.contains(&i.rep)))
        .collect())
}

/// The daily activity report for `from` to `to` (inclusive): per rep and day with contacts,
/// how many by outcome and by channel, and the weekday's target.
pub async fn activity(
    loaded: &LoadedPolicy,
    store: &Store,
    from: NaiveDate,
    to: NaiveDate,
    reps: Option<&[String]>,
) -> Result<Vec<ActivityRow>, RunError> {
    let pipeline = pipeline_of(loaded)?;
    let mut rows: Vec<ActivityRow> = Vec::new();
    let mut at_of: HashMap<(String, NaiveDate), usize> = HashMap::new();
    for i in contacts_of(store, from, to, reps).await? {
        let at = *at_of.entry((i.rep.clone(), i.on_date)).or_insert_with(|| {
            rows.push(ActivityRow {
                rep: i.rep.clone(),
                day: i.on_date,
                contacts: 0,
                target: pipeline.target_on(i.on_date),
                outcomes: vec![0; Outcome::ALL.len()],
                channels: vec![0; Channel::ALL.len()],
            });
            rows.len() - 1
        });
        let row = &mut rows[at];
        row.contacts += 1;
        if let Some(o) = Outcome::ALL.iter().position(|o| o.as_str() == i.outcome) {
            row.outcomes[o] += 1;
        }
        if let Some(c) = Channel::ALL.iter().position(|c| c.as_str() == i.channel) {
            row.channels[c] += 1;
        }
    }
    rows.sort_by(|a, b| a.rep.cmp(&b.rep).then(a.day.cmp(&b.day)));
    Ok(rows)
}

/// One rep's week: the contacts planned (the weekly targets of its working days) against
/// those made.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WeekRow {
    pub rep: String,
    /// The Monday the week starts on.
    pub week: NaiveDate,
    pub working_days: u32,
    pub planned: u32,
    pub contacts: usize,
    pub reached: usize,
}

/// Plan against actual per rep and week, for the weeks `from` to `to` touch (each week
/// counted from its Monday, the period's days only; a week without a working day or a
/// contact is left out).
pub async fn weeks(
    loaded: &LoadedPolicy,
    store: &Store,
    from: NaiveDate,
    to: NaiveDate,
    reps: Option<&[String]>,
) -> Result<Vec<WeekRow>, RunError> {
    let pipeline = pipeline_of(loaded)?;
    let calendar = calendar(loaded)?;
    let monday = |d: NaiveDate| d - chrono::Days::new(d.weekday().num_days_from_monday() as u64);
    let contacts = contacts_of(store, from, to, reps).await?;
    // Every rep who made a contact, and those asked for who hold prospects (a rep who made
    // none still has a plan; a lead holding nobody is not a rep).
    let mut names: Vec<String> = contacts.iter().map(|i| i.rep.clone()).collect();
    if let Some(reps) = reps {
        let holding: std::collections::HashSet<String> = store
            .prospects()
            .await?
            .into_iter()
            .map(|p| p.rep)
            .collect();
        names.extend(reps.iter().filter(|r| holding.contains(*r)).cloned());
    }
    names.sort();
    names.dedup();
    let mut weeks: Vec<NaiveDate> = from
        .iter_days()
        .take_while(|d| *d <= to)
        .map(monday)
        .collect();
    weeks.dedup();
    let mut rows = Vec::new();
    for rep in &names {
        for &week in &weeks {
            let days: Vec<NaiveDate> = week
                .iter_days()
                .take(7)
                .filter(|d| *d >= from && *d <= to && calendar.is_working(*d))
                .collect();
            let mine = contacts
                .iter()
                .filter(|i| &i.rep == rep && monday(i.on_date) == week);
            let (contacts, reached) = mine.fold((0, 0), |(n, r), i| {
                (
                    n + 1,
                    r + usize::from(i.outcome == Outcome::Reached.as_str()),
                )
            });
            if days.is_empty() && contacts == 0 {
                continue;
            }
            rows.push(WeekRow {
                rep: rep.clone(),
                week,
                working_days: days.len() as u32,
                planned: days.iter().filter_map(|d| pipeline.target_on(*d)).sum(),
                contacts,
                reached,
            });
        }
    }
    Ok(rows)
}

/// An intent customer (possible, good or very likely at the last contact) and how its
/// follow-up stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntentRow {
    pub customer_id: String,
    pub rep: String,
    pub class: String,
    pub intent: &'static str,
    pub last_contact: Option<NaiveDate>,
    /// When the next contact falls due.
    pub due: NaiveDate,
    /// Working days past due on `date` (0: not overdue).
    pub overdue_days: u32,
}

/// The intent customers' contact status on `date`: likeliest first, then the most overdue.
pub async fn intents(
    loaded: &LoadedPolicy,
    store: &Store,
    date: NaiveDate,
    reps: Option<&[String]>,
) -> Result<Vec<IntentRow>, RunError> {
    let pipeline = pipeline_of(loaded)?;
    let calendar = calendar(loaded)?;
    let rows: Vec<stratum_store::ProspectRow> = store
        .prospects()
        .await?
        .into_iter()
        .filter(|p| reps.is_none_or(|reps| reps.contains(&p.rep)))
        .filter(|p| p.intent.is_some_and(|i| i >= Intent::Possible))
        .collect();
    let mut out: Vec<IntentRow> = prospects(pipeline, &rows)?
        .iter()
        .map(|p| {
            let due = pipeline.due_date(&calendar, p);
            let first_day = calendar.add_working_days(due, 0);
            IntentRow {
                customer_id: p.customer_id.clone(),
                rep: p.rep.clone(),
                class: pipeline.classes[p.class].name.clone(),
                intent: p.intent.map_or("", Intent::as_str),
                last_contact: p.last_contact,
                due,
                overdue_days: if first_day < date {
                    calendar.working_days_between(first_day, date)
                } else {
                    0
                },
            }
        })
        .collect();
    let rank = |i: &str| Intent::ALL.iter().position(|x| x.as_str() == i);
    out.sort_by(|a, b| {
        rank(b.intent)
            .cmp(&rank(a.intent))
            .then(b.overdue_days.cmp(&a.overdue_days))
            .then(a.customer_id.cmp(&b.customer_id))
    });
    Ok(out)
}

/// Why sales were lost: the notes of refused contacts, counted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LostReason {
    /// The note as written (case and spaces folded), or "(no reason given)".
    pub reason: String,
    pub contacts: usize,
    pub customers: usize,
}

/// The lost-sale reasons of `from` to `to`: every refused contact's note, most frequent
/// first.
pub async fn lost_reasons(
    store: &Store,
    from: NaiveDate,
    to: NaiveDate,
    reps: Option<&[String]>,
) -> Result<Vec<LostReason>, RunError> {
    let mut by_reason: HashMap<String, (usize, std::collections::HashSet<String>)> = HashMap::new();
    for i in contacts_of(store, from, to, reps).await? {
        if i.outcome != Outcome::Refused.as_str() {
            continue;
        }
        let folded = i.notes.split_whitespace().collect::<Vec<_>>().join(" ");
        let reason = match folded.to_lowercase() {
            r if r.is_empty() => "(no reason given)".to_string(),
            r => r,
        };
        let entry = by_reason.entry(reason).or_default();
        entry.0 += 1;
        entry.1.insert(i.customer_id);
    }
    let mut out: Vec<LostReason> = by_reason
        .into_iter()
        .map(|(reason, (contacts, customers))| LostReason {
            reason,
            contacts,
            customers: customers.len(),
        })
        .collect();
    out.sort_by(|a, b| b.contacts.cmp(&a.contacts).then(a.reason.cmp(&b.reason)));
    Ok(out)
}

/// Which report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    Funnel,
    Activity,
    Weeks,
    Intents,
    Lost,
}

impl ReportKind {
    pub const ALL: [ReportKind; 5] = [
        ReportKind::Funnel,
        ReportKind::Activity,
        ReportKind::Weeks,
        ReportKind::Intents,
        ReportKind::Lost,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Funnel => "funnel",
            ReportKind::Activity => "activity",
            ReportKind::Weeks => "weeks",
            ReportKind::Intents => "intents",
            ReportKind::Lost => "lost",
        }
    }
}

impl std::str::FromStr for ReportKind {
    type Err = String;
    fn from_str(s: &str) -> Result<ReportKind, String> {
        ReportKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = ReportKind::ALL.iter().map(|k| k.as_str()).collect();
                format!("unknown report `{s}`: use one of {}", names.join(", "))
            })
    }
}

/// A report's rows.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    Funnel(Vec<FunnelRow>),
    Activity(Vec<ActivityRow>),
    Weeks(Vec<WeekRow>),
    Intents(Vec<IntentRow>),
    Lost(Vec<LostReason>),
}

/// A report over the period (`intents`: as of `to`), of `reps` only when given.
pub async fn report(
    loaded: &LoadedPolicy,
    store: &Store,
    kind: ReportKind,
    from: NaiveDate,
    to: NaiveDate,
    reps: Option<&[String]>,
) -> Result<Report, RunError> {
    Ok(match kind {
        ReportKind::Funnel => Report::Funnel(funnel(loaded, store, from, to, reps).await?),
        ReportKind::Activity => Report::Activity(activity(loaded, store, from, to, reps).await?),
        ReportKind::Weeks => Report::Weeks(weeks(loaded, store, from, to, reps).await?),
        ReportKind::Intents => Report::Intents(intents(loaded, store, to, reps).await?),
        ReportKind::Lost => Report::Lost(lost_reasons(store, from, to, reps).await?),
    })
}

fn share(part: usize, whole: usize) -> String {
    if whole == 0 {
        String::new()
    } else {
        format!("{:.0}%", 100.0 * part as f64 / whole as f64)
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(String::new, |v| v.to_string())
}

impl Report {
    /// The column names and the rows as text: what the CLI prints and CSV exports hold.
    pub fn table(&self) -> (Vec<String>, Vec<Vec<String>>) {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        match self {
            Report::Funnel(rows) => (
                names(&["class", "now", "entered", "left", "moved_to", "median_days"]),
                rows.iter()
                    .map(|r| {
                        let moved: Vec<String> = r
                            .moved_to
                            .iter()
                            .map(|(c, n)| format!("{c}: {n} ({})", share(*n, r.left)))
                            .collect();
                        vec![
                            r.class.clone(),
                            r.now.to_string(),
                            r.entered.to_string(),
                            r.left.to_string(),
                            moved.join("; "),
                            opt(r.median_days),
                        ]
                    })
                    .collect(),
            ),
            Report::Activity(rows) => {
                let mut head = names(&["rep", "day", "contacts", "target"]);
                head.extend(Outcome::ALL.iter().map(|o| o.as_str().to_string()));
                head.extend(Channel::ALL.iter().map(|c| c.as_str().to_string()));
                let body = rows
                    .iter()
                    .map(|r| {
                        let mut row = vec![
                            r.rep.clone(),
                            r.day.to_string(),
                            r.contacts.to_string(),
                            opt(r.target),
                        ];
                        row.extend(r.outcomes.iter().chain(&r.channels).map(|n| n.to_string()));
                        row
                    })
                    .collect();
                (head, body)
            }
            Report::Weeks(rows) => (
                names(&[
                    "rep",
                    "week",
                    "working_days",
                    "planned",
                    "contacts",
                    "done",
                    "reached",
                ]),
                rows.iter()
                    .map(|r| {
                        vec![
                            r.rep.clone(),
                            r.week.to_string(),
                            r.working_days.to_string(),
                            r.planned.to_string(),
                            r.contacts.to_string(),
                            share(r.contacts, r.planned as usize),
                            r.reached.to_string(),
                        ]
                    })
                    .collect(),
            ),
            Report::Intents(rows) => (
                names(&[
                    "customer_id",
                    "rep",
                    "class",
                    "intent",
                    "last_contact",
                    "due",
                    "overdue_days",
                ]),
                rows.iter()
                    .map(|r| {
                        vec![
                            r.customer_id.clone(),
                            r.rep.clone(),
                            r.class.clone(),
                            r.intent.to_string(),
                            opt(r.last_contact),
                            r.due.to_string(),
                            r.overdue_days.to_string(),
                        ]
                    })
                    .collect(),
            ),
            Report::Lost(rows) => (
                names(&["reason", "contacts", "customers"]),
                rows.iter()
                    .map(|r| {
                        vec![
                            r.reason.clone(),
                            r.contacts.to_string(),
                            r.customers.to_string(),
                        ]
                    })
                    .collect(),
            ),
        }
    }

    /// Which of [`Report::table`]'s columns hold numbers (shown right-aligned): every
    /// column but names, dates, words and the funnel's moves.
    pub fn numeric(&self) -> Vec<bool> {
        match self {
            Report::Funnel(_) => vec![false, true, true, true, false, true],
            Report::Activity(_) => {
                let mut n = vec![false, false, true, true];
                n.extend(std::iter::repeat_n(
                    true,
                    Outcome::ALL.len() + Channel::ALL.len(),
                ));
                n
            }
            Report::Weeks(_) => vec![false, false, true, true, true, true, true],
            Report::Intents(_) => vec![false, false, false, false, false, false, true],
            Report::Lost(_) => vec![false, true, true],
        }
    }

    /// The report as CSV, a header line first.
    pub fn csv(&self) -> Vec<u8> {
        let (head, rows) = self.table();
        let mut w = csv::Writer::from_writer(Vec::new());
        // Writing into memory cannot fail.
        w.write_record(&head).expect("in memory");
        for r in &rows {
            w.write_record(r).expect("in memory");
        }
        w.into_inner().expect("in memory")
    }

    /// The report as aligned text columns (numbers right-aligned).
    pub fn text(&self) -> String {
        let (head, rows) = self.table();
        let mut widths: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
        for r in &rows {
            for (w, cell) in widths.iter_mut().zip(r) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let numeric = self.numeric();
        let line = |cells: &[String], out: &mut String| {
            let mut parts = Vec::new();
            for (i, cell) in cells.iter().enumerate() {
                let pad = widths[i] - cell.chars().count();
                parts.push(if numeric[i] {
                    format!("{}{cell}", " ".repeat(pad))
                } else {
                    format!("{cell}{}", " ".repeat(pad))
                });
            }
            out.push_str(parts.join("  ").trim_end());
            out.push('\n');
        };
        let mut out = String::new();
        line(&head, &mut out);
        for r in &rows {
            line(r, &mut out);
        }
        out
    }
}
