//! The demo company: persons, companies and dealers with heavy-tailed spend (so the 80/20
//! shape holds), monthly invoices with late payments, daily balances for bank customers,
//! households, tags, manual scores and a couple of manual overrides.

use std::path::{Path, PathBuf};

use chrono::{Datelike, Days, NaiveDate};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal, Pareto, Poisson};

use crate::{DemoError, write_err};

/// The date the demo data ends and its policies evaluate at.
pub const AS_OF: &str = "2026-10-31";

fn as_of() -> NaiveDate {
    NaiveDate::parse_from_str(AS_OF, "%Y-%m-%d").expect("valid constant")
}

#[derive(Debug, Clone)]
pub struct Customer {
    pub id: String,
    pub customer_type: &'static str,
    pub region: &'static str,
    pub industry: &'static str,
    pub company_nature: &'static str,
    pub owner: String,
    pub household_id: String,
    pub tags: String,
    pub signup_date: NaiveDate,
    pub credit_card_limit: f64,
    pub registered_capital: f64,
    pub payment_method: &'static str,
    pub plan_completion: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct Transaction {
    pub customer_id: String,
    pub date: NaiveDate,
    pub amount: f64,
    pub cost: f64,
}

#[derive(Debug, Clone)]
pub struct Invoice {
    pub customer_id: String,
    pub invoice_id: String,
    pub issued: NaiveDate,
    pub due_date: NaiveDate,
    pub paid_date: Option<NaiveDate>,
    pub amount: f64,
}

#[derive(Debug, Clone)]
pub struct Balance {
    pub customer_id: String,
    pub date: NaiveDate,
    pub balance: f64,
}

#[derive(Debug, Clone, Default)]
pub struct DemoData {
    pub customers: Vec<Customer>,
    pub transactions: Vec<Transaction>,
    pub invoices: Vec<Invoice>,
    pub balances: Vec<Balance>,
    /// (customer_id, relationship_top, strategic_importance)
    pub manual_scores: Vec<(String, f64, f64)>,
    /// (customer_id, ladder, level, reason)
    pub overrides: Vec<(String, String, String, String)>,
}

fn money(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Generates the demo company. `n` customers; the same seed gives the same data.
pub fn generate(n: usize, seed: u64) -> DemoData {
    let mut rng = StdRng::seed_from_u64(seed);
    let end = as_of();
    let start = end - Days::new(3 * 365);
    let size_dist = Pareto::<f64>::new(1.0, 1.16).expect("valid");
    let mut data = DemoData::default();
    let mut household = 0usize;
    let mut household_left = 0usize;
    let mut household_wealth = 0.0;

    for i in 0..n {
        let id = format!("C{:05}", i + 1);
        let u: f64 = rng.random();
        let customer_type = if u < 0.6 {
            "person"
        } else if u < 0.9 {
            "company"
        } else {
            "dealer"
        };
        let is_org = customer_type != "person";
        let size = size_dist.sample(&mut rng).min(400.0);
        let region = ["north", "south", "east", "west"][rng.random_range(0..4)];
        let industry = if is_org {
            ["manufacturing", "retail", "finance", "government", "energy"][rng.random_range(0..5)]
        } else {
            ""
        };
        let company_nature = if is_org {
            [
                "government",
                "state_owned",
                "joint_stock",
                "private",
                "private",
            ][rng.random_range(0..5)]
        } else {
            ""
        };
        let mut tags = Vec::new();
        if rng.random_bool(0.01) {
            tags.push("blacklist");
        }
        if rng.random_bool(0.02) {
            tags.push("complainer");
        }
        if rng.random_bool(0.01) {
            tags.push("group_key_person");
        }
        // Persons join households of 2-4 about half the time.
        let mut household_id = String::new();
        if customer_type == "person" {
            if household_left == 0 && rng.random_bool(0.25) {
                household += 1;
                household_left = rng.random_range(2..=4);
                household_wealth = LogNormal::<f64>::new(11.3, 1.4)
                    .expect("valid")
                    .sample(&mut rng);
            }
            if household_left > 0 {
                household_left -= 1;
                household_id = format!("H{household:04}");
                tags.push("family_card");
            }
        }
        let signup_date = start - Days::new(rng.random_range(0..1500));
        let credit_card_limit = if customer_type == "person" {
            [0.0, 0.0, 10_000.0, 30_000.0, 50_000.0, 100_000.0][rng.random_range(0..6)]
        } else {
            0.0
        };
        let registered_capital = if customer_type == "company" {
            money(
                LogNormal::<f64>::new(16.0, 1.3)
                    .expect("valid")
                    .sample(&mut rng),
            )
        } else {
            0.0
        };
        let payment_method = if customer_type == "dealer" {
            ["transfer", "credit", "cash"][rng.random_range(0..3)]
        } else {
            ""
        };
        let plan_completion = (customer_type == "dealer")
            .then(|| (rng.random_range(0.6..1.3f64) * 100.0).round() / 100.0);
        data.customers.push(Customer {
            id: id.clone(),
            customer_type,
            region,
            industry,
            company_nature,
            owner: format!("rep{:02}", rng.random_range(1..=12)),
            household_id: household_id.clone(),
            tags: tags.join(";"),
            signup_date,
            credit_card_limit,
            registered_capital,
            payment_method,
            plan_completion,
        });

        // Orders: about 5% never buy; 12% stopped buying some time ago.
        let type_scale = match customer_type {
            "person" => 1.0,
            "company" => 6.0,
            _ => 12.0,
        };
        let never = rng.random_bool(0.05);
        let newcomer = !never && rng.random_bool(0.06);
        let stopped_at = rng
            .random_bool(0.12)
            .then(|| end - Days::new(rng.random_range(190..900)));
        let trend: f64 = rng.random_range(-0.6..0.6);
        let margin: f64 = rng.random_range(0.04..0.45);
        let reliability: f64 = rng.random_range(0.5..1.0);
        if newcomer {
            // First purchases in the last five months: the "new" lifecycle stage.
            let ticket = LogNormal::<f64>::new((300.0f64 * type_scale).ln(), 0.6).expect("valid");
            for _ in 0..rng.random_range(1..=2) {
                let amount = money(ticket.sample(&mut rng));
                data.transactions.push(Transaction {
                    customer_id: id.clone(),
                    date: end - Days::new(rng.random_range(0..150)),
                    amount,
                    cost: money(amount * (1.0 - margin)),
                });
            }
        } else if !never {
            let lambda = (3.0 + 4.0 * size.powf(0.45)).min(80.0);
            let orders = Poisson::<f64>::new(lambda).expect("valid").sample(&mut rng) as usize;
            let ticket = LogNormal::<f64>::new((300.0 * type_scale * size.powf(0.45)).ln(), 0.6)
                .expect("valid");
            for _ in 0..orders {
                // Later dates are more or less likely by the customer's trend.
                let t: f64 = rng.random::<f64>();
                let t = if trend >= 0.0 {
                    t.powf(1.0 - trend)
                } else {
                    1.0 - (1.0 - t).powf(1.0 + trend)
                };
                let date = start + Days::new((t * (3.0 * 365.0 - 1.0)) as u64);
                if stopped_at.is_some_and(|s| date > s) {
                    continue;
                }
                let amount = money(ticket.sample(&mut rng));
                data.transactions.push(Transaction {
                    customer_id: id.clone(),
                    date,
                    amount,
                    cost: money(amount * (1.0 - margin)),
                });
                if rng.random_bool(0.02) {
                    // A refund of the order a few days later.
                    let refund_date = (date + Days::new(rng.random_range(1..20))).min(end);
                    data.transactions.push(Transaction {
                        customer_id: id.clone(),
                        date: refund_date,
                        amount: -amount,
                        cost: -money(amount * (1.0 - margin)),
                    });
                }
            }
        }

        // Organisations are invoiced monthly for what they bought, due in 30 days.
        if is_org {
            let mut months: Vec<(i32, u32, f64)> = Vec::new();
            for t in data
                .transactions
                .iter()
                .rev()
                .take_while(|t| t.customer_id == id)
            {
                if t.date < end - Days::new(2 * 365) {
                    continue;
                }
                let key = (t.date.year(), t.date.month());
                match months.iter_mut().find(|m| (m.0, m.1) == key) {
                    Some(m) => m.2 += t.amount,
                    None => months.push((key.0, key.1, t.amount)),
                }
            }
            months.sort_by_key(|m| (m.0, m.1));
            for (k, (y, m, amount)) in months.into_iter().enumerate() {
                if amount <= 0.0 {
                    continue;
                }
                let first_next = if m == 12 {
                    NaiveDate::from_ymd_opt(y + 1, 1, 1)
                } else {
                    NaiveDate::from_ymd_opt(y, m + 1, 1)
                }
                .expect("valid month");
                let issued = (first_next - Days::new(1)).min(end);
                let due_date = issued + Days::new(30);
                let paid_date = if rng.random_bool(reliability) {
                    Some(due_date - Days::new(rng.random_range(0..15)))
                } else if rng.random_bool(0.85) {
                    Some(due_date + Days::new(rng.random_range(1..90)))
                } else {
                    None
                };
                let paid_date = paid_date.filter(|p| *p <= end);
                data.invoices.push(Invoice {
                    customer_id: id.clone(),
                    invoice_id: format!("INV-{}-{k:03}", &id[1..]),
                    issued,
                    due_date,
                    paid_date,
                    amount: money(amount),
                });
            }
        }

        // Persons keep deposits: daily balances for the last 120 days.
        if customer_type == "person" {
            let base = if household_id.is_empty() {
                LogNormal::<f64>::new(10.9, 1.5)
                    .expect("valid")
                    .sample(&mut rng)
            } else {
                household_wealth * rng.random_range(0.3..1.7)
            };
            for d in 0..120u64 {
                let wobble: f64 = rng.random_range(0.95..1.05);
                data.balances.push(Balance {
                    customer_id: id.clone(),
                    date: end - Days::new(d),
                    balance: money(base * wobble),
                });
            }
        }

        if customer_type == "company" && rng.random_bool(0.9) {
            data.manual_scores.push((
                id.clone(),
                f64::from(rng.random_range(0..=20u8)),
                f64::from(rng.random_range(0..=20u8)),
            ));
        }
    }
    data.balances
        .sort_by(|a, b| (a.date, &a.customer_id).cmp(&(b.date, &b.customer_id)));
    data.transactions
        .sort_by(|a, b| (a.date, &a.customer_id).cmp(&(b.date, &b.customer_id)));
    if n >= 20 {
        data.overrides.push((
            "C00007".into(),
            "pyramid".into(),
            "key".into(),
            "strategic account, approved by the sales director".into(),
        ));
        data.overrides.push((
            "C00013".into(),
            "abc".into(),
            "C".into(),
            "in legal dispute; no active development".into(),
        ));
    }
    data
}

fn opt_num(v: Option<f64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

fn num(v: f64) -> String {
    if v == 0.0 {
        String::new()
    } else {
        v.to_string()
    }
}

impl DemoData {
    /// Writes the data as CSV files into `dir`.
    pub fn write_csv(&self, dir: &Path) -> Result<Vec<PathBuf>, DemoError> {
        let mut written = Vec::new();
        let mut file = |name: &str,
                        header: &[&str],
                        rows: &mut dyn Iterator<Item = Vec<String>>|
         -> Result<(), DemoError> {
            let path = dir.join(name);
            let mut w = csv::Writer::from_path(&path).map_err(|e| write_err(&path, e))?;
            w.write_record(header).map_err(|e| write_err(&path, e))?;
            for r in rows {
                w.write_record(&r).map_err(|e| write_err(&path, e))?;
            }
            w.flush().map_err(|e| write_err(&path, e))?;
            written.push(path);
            Ok(())
        };
        file(
            "customers.csv",
            &[
                "customer_id",
                "customer_type",
                "region",
                "industry",
                "company_nature",
                "owner",
                "household_id",
                "tags",
                "signup_date",
                "credit_card_limit",
                "registered_capital",
                "payment_method",
                "plan_completion",
            ],
            &mut self.customers.iter().map(|c| {
                vec![
                    c.id.clone(),
                    c.customer_type.into(),
                    c.region.into(),
                    c.industry.into(),
                    c.company_nature.into(),
                    c.owner.clone(),
                    c.household_id.clone(),
                    c.tags.clone(),
                    c.signup_date.to_string(),
                    c.credit_card_limit.to_string(),
                    num(c.registered_capital),
                    c.payment_method.into(),
                    opt_num(c.plan_completion),
                ]
            }),
        )?;
        file(
            "transactions.csv",
            &["customer_id", "date", "amount", "cost"],
            &mut self.transactions.iter().map(|t| {
                vec![
                    t.customer_id.clone(),
                    t.date.to_string(),
                    t.amount.to_string(),
                    t.cost.to_string(),
                ]
            }),
        )?;
        file(
            "invoices.csv",
            &[
                "invoice_id",
                "customer_id",
                "issued",
                "due_date",
                "paid_date",
                "amount",
            ],
            &mut self.invoices.iter().map(|i| {
                vec![
                    i.invoice_id.clone(),
                    i.customer_id.clone(),
                    i.issued.to_string(),
                    i.due_date.to_string(),
                    i.paid_date.map(|d| d.to_string()).unwrap_or_default(),
                    i.amount.to_string(),
                ]
            }),
        )?;
        file(
            "balances.csv",
            &["customer_id", "date", "balance"],
            &mut self.balances.iter().map(|b| {
                vec![
                    b.customer_id.clone(),
                    b.date.to_string(),
                    b.balance.to_string(),
                ]
            }),
        )?;
        file(
            "manual_scores.csv",
            &["customer_id", "relationship_top", "strategic_importance"],
            &mut self
                .manual_scores
                .iter()
                .map(|(id, r, s)| vec![id.clone(), r.to_string(), s.to_string()]),
        )?;
        file(
            "overrides.csv",
            &["customer_id", "ladder", "level", "reason"],
            &mut self
                .overrides
                .iter()
                .map(|(c, l, v, r)| vec![c.clone(), l.clone(), v.clone(), r.clone()]),
        )?;
        file(
            "contacts.csv",
            &stratum_demo_contacts_header(),
            &mut self.contacts().into_iter(),
        )?;
        file(
            "calendar.csv",
            &["date", "kind", "note"],
            &mut CALENDAR_2026
                .iter()
                .map(|(d, k, n)| vec![d.to_string(), k.to_string(), n.to_string()]),
        )?;
        Ok(written)
    }
}

fn stratum_demo_contacts_header() -> [&'static str; 9] {
    [
        "customer_id",
        "rep",
        "on",
        "channel",
        "outcome",
        "intent",
        "class",
        "next_contact",
        "notes",
    ]
}

/// The demo's sales team: reps rep01 to rep04 work the first 40 of their customers through
/// October 2026 (the register `stratum import-contacts data/contacts.csv` logs).
const TEAM: [&str; 4] = ["rep01", "rep02", "rep03", "rep04"];

impl DemoData {
    /// A month of contacts by the sales team: each prospect's first contact in the first
    /// working week after National Day puts it in a class, later ones follow the class's
    /// cycle (as `[pipeline]` in the demo policy sets it) with outcomes, intents and the
    /// odd move between classes. Its own seed: the rest of the demo data is unchanged.
    fn contacts(&self) -> Vec<Vec<String>> {
        use rand::Rng as _;
        use rand::SeedableRng as _;
        // The demo crate stands alone (no workspace crates), so the calendar is read here:
        // the engine's `core::calendar` reads the same file for `stratum calls`.
        let working = |d: NaiveDate| match CALENDAR_2026.iter().find(|(x, ..)| *x == d.to_string())
        {
            Some((_, kind, _)) => *kind == "workday",
            None => !matches!(d.weekday(), chrono::Weekday::Sat | chrono::Weekday::Sun),
        };
        let add_working_days = |mut d: NaiveDate, n: u32| {
            let mut left = n;
            while left > 0 || !working(d) {
                d = d.succ_opt().expect("dates far from the end of time");
                if working(d) && left > 0 {
                    left -= 1;
                }
            }
            d
        };
        let mut rng = StdRng::seed_from_u64(20261008);
        // (class, follow-up working days), as the demo policy's [pipeline].
        let classes = [
            ("0", 1),
            ("1", 1),
            ("2", 3),
            ("key-3", 5),
            ("ordinary-3", 8),
            ("4", 14),
            ("5", 22),
            ("6", 22),
            ("7", 22),
        ];
        let first_class = |u: f64| match u {
            u if u < 0.15 => 0,
            u if u < 0.20 => 1,
            u if u < 0.25 => 2,
            u if u < 0.35 => 3,
            u if u < 0.45 => 4,
            u if u < 0.80 => 5,
            u if u < 0.90 => 6,
            u if u < 0.95 => 7,
            _ => 8,
        };
        let end = NaiveDate::from_ymd_opt(2026, 10, 30).expect("a date");
        let mut rows: Vec<(NaiveDate, Vec<String>)> = Vec::new();
        for rep in TEAM {
            let mine = self.customers.iter().filter(|c| c.owner == rep).take(40);
            for c in mine {
                let mut on = add_working_days(
                    NaiveDate::from_ymd_opt(2026, 10, 8).expect("a date"),
                    rng.random_range(0..5),
                );
                let mut class = first_class(rng.random());
                let mut first = true;
                while on <= end {
                    let outcome = match rng.random::<f64>() {
                        u if u < 0.6 => "reached",
                        u if u < 0.85 => "no_answer",
                        u if u < 0.95 => "busy",
                        _ => "refused",
                    };
                    let mut moved = first;
                    if !first && outcome == "reached" && rng.random_bool(0.2) {
                        // By index into `classes`: 0 → key-3, 4 or 5; 5 → 4; 4 → key-3;
                        // key-3 and ordinary-3 → 2; 2 → 1.
                        let next = match class {
                            0 => [3, 5, 6][rng.random_range(0..3)],
                            6 => 5,
                            5 => 3,
                            3 | 4 => 2,
                            2 => 1,
                            other => other,
                        };
                        moved = next != class;
                        class = next;
                    }
                    let intent = (outcome == "reached").then(|| {
                        ["poor", "unclear", "possible", "good", "very_likely"]
                            [rng.random_range(0..5)]
                    });
                    let channel = if rng.random_bool(0.9) {
                        "call"
                    } else {
                        "visit"
                    };
                    rows.push((
                        on,
                        vec![
                            c.id.clone(),
                            rep.to_string(),
                            on.to_string(),
                            channel.to_string(),
                            outcome.to_string(),
                            intent.unwrap_or("").to_string(),
                            if moved {
                                classes[class].0.to_string()
                            } else {
                                String::new()
                            },
                            String::new(),
                            if outcome == "refused" {
                                // Picked without the generator, so the rest of the month
                                // stays as it was.
                                let at = c.id.bytes().map(usize::from).sum::<usize>()
                                    + on.ordinal() as usize;
                                LOST_REASONS[at % LOST_REASONS.len()].to_string()
                            } else if first {
                                "first contact".to_string()
                            } else {
                                String::new()
                            },
                        ],
                    ));
                    first = false;
                    on = add_working_days(on, classes[class].1);
                }
            }
        }
        // A register in the order the contacts were made.
        rows.sort_by(|a, b| a.0.cmp(&b.0).then(a.1[0].cmp(&b.1[0])));
        rows.into_iter().map(|(_, r)| r).collect()
    }
}

/// Why the demo's refusals refused: the lost-sale reasons report counts them.
const LOST_REASONS: [&str; 5] = [
    "price too high",
    "went with a competitor",
    "no budget this year",
    "not the decision maker",
    "no need now",
];

/// The sales pipeline's working days in 2026 (the demo's `data/calendar.csv`): China's
/// public holidays and the weekends worked to bridge them (调休), as the State Council's
/// schedule sets them out; illustrative, check the year's notice before relying on it.
const CALENDAR_2026: &[(&str, &str, &str)] = &[
    ("2026-01-01", "holiday", "New Year"),
    ("2026-01-02", "holiday", "New Year"),
    ("2026-01-04", "workday", "New Year bridge"),
    ("2026-02-14", "workday", "Spring Festival bridge"),
    ("2026-02-16", "holiday", "Spring Festival"),
    ("2026-02-17", "holiday", "Spring Festival"),
    ("2026-02-18", "holiday", "Spring Festival"),
    ("2026-02-19", "holiday", "Spring Festival"),
    ("2026-02-20", "holiday", "Spring Festival"),
    ("2026-02-23", "holiday", "Spring Festival"),
    ("2026-02-28", "workday", "Spring Festival bridge"),
    ("2026-04-06", "holiday", "Qingming"),
    ("2026-05-01", "holiday", "Labour Day"),
    ("2026-05-04", "holiday", "Labour Day"),
    ("2026-05-05", "holiday", "Labour Day"),
    ("2026-05-09", "workday", "Labour Day bridge"),
    ("2026-06-19", "holiday", "Dragon Boat"),
    ("2026-09-20", "workday", "National Day bridge"),
    ("2026-09-25", "holiday", "Mid-Autumn"),
    ("2026-10-01", "holiday", "National Day"),
    ("2026-10-02", "holiday", "National Day"),
    ("2026-10-05", "holiday", "National Day"),
    ("2026-10-06", "holiday", "National Day"),
    ("2026-10-07", "holiday", "National Day"),
    ("2026-10-10", "workday", "National Day bridge"),
];
