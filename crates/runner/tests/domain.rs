//! Every example of the domain notes as a test: small hand-made fixtures, the demo's own
//! policies, and placements checked by hand (the arithmetic is in the comments).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use stratum_engine::BadRows;
use stratum_runner::{Quiet, RunError, RunOptions, RunOutcome};

/// A throwaway workspace: data files and a policy in a fresh temp dir.
struct Ws {
    dir: tempfile::TempDir,
}

impl Ws {
    fn new() -> Self {
        Ws {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn file(&self, name: &str, text: &str) -> &Self {
        let p = self.path(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
        self
    }
    /// One of the demo crate's policies, at its usual place.
    fn demo_policy(&self, name: &str) -> &Self {
        let text = stratum_demo::POLICIES
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap()
            .1;
        self.file(name, text)
    }
    /// `stratum gen` benchmark data (Parquet) and its policy under `bench/`.
    fn bench(&self, customers: usize, transactions: usize, invoices: usize, seed: u64) -> &Self {
        let options = stratum_demo::GenOptions {
            customers,
            transactions,
            invoices,
            parquet: true,
            seed,
        };
        stratum_demo::generate_bench(&self.path("bench"), &options).unwrap();
        self
    }
    async fn run_with(
        &self,
        policy: &str,
        options: RunOptions,
    ) -> Result<(RunOutcome, Levels), RunError> {
        let loaded = stratum_runner::load_policy(&self.path(policy))?;
        let out = options.out_dir.clone().unwrap_or_else(|| self.path("out"));
        let options = RunOptions {
            out_dir: Some(out.clone()),
            ..options
        };
        let outcome = stratum_runner::run(&loaded, &options, None, &mut Quiet).await?;
        Ok((outcome, Levels::read(&out.join("assignments.csv"))))
    }
    async fn run(&self, policy: &str) -> (RunOutcome, Levels) {
        match self.run_with(policy, RunOptions::default()).await {
            Ok(r) => r,
            Err(e) => panic!("run failed: {e}"),
        }
    }
}

/// assignments.csv read back: (ladder, customer) → (level, score, rank, explanation).
#[derive(Debug)]
struct Levels(BTreeMap<(String, String), (String, String, String, String)>);

impl Levels {
    fn read(path: &Path) -> Self {
        let mut r = csv::Reader::from_path(path).unwrap();
        let mut map = BTreeMap::new();
        for rec in r.records() {
            let rec = rec.unwrap();
            map.insert(
                (rec[1].to_string(), rec[0].to_string()),
                (
                    rec[2].to_string(),
                    rec[3].to_string(),
                    rec[4].to_string(),
                    rec[5].to_string(),
                ),
            );
        }
        Levels(map)
    }
    fn level(&self, ladder: &str, id: &str) -> &str {
        &self
            .0
            .get(&(ladder.to_string(), id.to_string()))
            .unwrap_or_else(|| panic!("no row for {ladder}/{id}"))
            .0
    }
    fn score(&self, ladder: &str, id: &str) -> f64 {
        self.0[&(ladder.to_string(), id.to_string())]
            .1
            .parse()
            .unwrap()
    }
    fn why(&self, ladder: &str, id: &str) -> &str {
        &self.0[&(ladder.to_string(), id.to_string())].3
    }
    /// Customers per level, as "level: id id id" lines, for readable diffs.
    fn members(&self, ladder: &str) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for ((l, id), (level, ..)) in &self.0 {
            if l == ladder {
                out.entry(level.clone()).or_default().push(id.clone());
            }
        }
        out
    }
}

fn ids(prefix: &str, range: std::ops::RangeInclusive<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}{i:03}")).collect()
}

// ---------------------------------------------------------------------------------------
// 1. Rank quotas: the 1 / 19 / 30 / 50 pyramid, with the profit pyramid beside it.

const PYRAMID: &str = r#"
[policy]
as_of = "2026-10-31"
[sources.customers]
path = "customers.csv"
key = "customer_id"
[sources.transactions]
path = "transactions.csv"
key = "customer_id"
time = "date"
[metrics.revenue_12m]
source = "transactions"
expr = "sum(amount)"
window = "12 months"
[ladders.pyramid]
rank_by = "revenue_12m"
[[ladders.pyramid.levels]]
name = "key"
top_share = 0.01
[[ladders.pyramid.levels]]
name = "major"
top_share = 0.19
[[ladders.pyramid.levels]]
name = "ordinary"
top_share = 0.30
[[ladders.pyramid.levels]]
name = "small"
rest = true
"#;

#[tokio::test]
async fn pyramid_takes_1_19_30_50_percent_by_rank_and_reports_the_value_pyramid() {
    let ws = Ws::new();
    let mut customers = String::from("customer_id\n");
    let mut tx = String::from("customer_id,date,amount\n");
    for i in 1..=100 {
        customers.push_str(&format!("C{i:03}\n"));
        // C001 spends 1,000, C002 990, … C100 10.
        tx.push_str(&format!("C{i:03},2026-06-01,{}\n", (101 - i) * 10));
    }
    // Outside the 12-month window (too old, and after as_of): must not count.
    tx.push_str("C100,2025-10-31,1000000\nC099,2026-11-01,1000000\n");
    ws.file("customers.csv", &customers)
        .file("transactions.csv", &tx)
        .file("p.toml", PYRAMID);
    let (outcome, levels) = ws.run("p.toml").await;
    let m = levels.members("pyramid");
    assert_eq!(m["key"], ids("C", 1..=1));
    assert_eq!(m["major"], ids("C", 2..=20));
    assert_eq!(m["ordinary"], ids("C", 21..=50));
    assert_eq!(m["small"], ids("C", 51..=100));
    assert_eq!(levels.score("pyramid", "C100"), 10.0);

    // Total 50,500; key holds 1,000; the top 20 hold 10 × (100 + … + 81) = 18,100.
    let s = &outcome.ladders[0];
    assert_eq!(s.rows[0].count, 1);
    assert!((s.rows[0].value_share.unwrap() - 1000.0 / 50500.0).abs() < 1e-12);
    assert!((s.pareto_top20.unwrap() - 18100.0 / 50500.0).abs() < 1e-12);
    assert!(
        levels
            .why("pyramid", "C001")
            .contains("rank 1 of 100 by revenue_12m"),
        "{}",
        levels.why("pyramid", "C001")
    );
}

#[tokio::test]
async fn ties_are_broken_by_customer_id() {
    let ws = Ws::new();
    let policy = PYRAMID.replace("top_share = 0.01", "top_n = 2");
    ws.file("customers.csv", "customer_id\nT4\nT3\nT2\nT1\n")
        .file("transactions.csv", "customer_id,date,amount\nT1,2026-06-01,90\nT3,2026-06-01,50\nT2,2026-06-01,50\nT4,2026-06-01,10\n")
        .file("p.toml", &policy);
    let (_, levels) = ws.run("p.toml").await;
    // T2 and T3 tie at 50: T2 comes first by id, so the top 2 are T1 and T2.
    assert_eq!(levels.members("pyramid")["key"], vec!["T1", "T2"]);
    // Whole-number ids tie-break as numbers: 19755 before 162858 (as text it would lose).
    ws.file("customers.csv", "customer_id\n162858\n19755\n5\n")
        .file(
            "transactions.csv",
            "customer_id,date,amount\n5,2026-06-01,90\n162858,2026-06-01,50\n19755,2026-06-01,50\n",
        );
    let (_, levels) = ws.run("p.toml").await;
    assert_eq!(levels.members("pyramid")["key"], vec!["19755", "5"]);
}

// ---------------------------------------------------------------------------------------
// 2. Absolute thresholds: Industrial Bank with family cards, Bank of Communications.

fn bank_fixture() -> Ws {
    let ws = Ws::new();
    ws.demo_policy("policies/bank.toml");
    let people = [
        ("P1", "", 1_200_000.0, 0),
        ("P2", "H1", 700_000.0, 0),
        ("P3", "H1", 900_000.0, 0),
        ("P4", "", 350_000.0, 0),
        ("P5", "H2", 260_000.0, 0),
        ("P6", "H2", 240_000.0, 0),
        ("P7", "", 90_000.0, 0),
        ("P8", "", 120_000.0, 0),
        ("Q1", "", 6_000_000.0, 0),
        ("Q2", "", 600_000.0, 0),
        ("Q3", "", 60_000.0, 50_000),
        ("Q4", "", 60_000.0, 30_000),
        ("Q5", "", 10_000.0, 0),
    ];
    let mut customers =
        String::from("customer_id,customer_type,household_id,credit_card_limit,tags\n");
    let mut balances = String::from("customer_id,date,balance\n");
    for (id, household, balance, limit) in people {
        customers.push_str(&format!("{id},person,{household},{limit},\n"));
        for day in ["2026-10-29", "2026-10-30", "2026-10-31"] {
            balances.push_str(&format!("{id},{day},{balance}\n"));
        }
    }
    customers.push_str("X1,company,,0,\n");
    // 150 days before as_of: outside the 90-day window.
    balances.push_str("P7,2026-06-03,50000000\n");
    ws.file("data/customers.csv", &customers)
        .file("data/balances.csv", &balances);
    ws
}

#[tokio::test]
async fn bank_card_tiers_with_family_cards_and_the_shared_vip_queue() {
    let ws = bank_fixture();
    let (_, levels) = ws.run("policies/bank.toml").await;
    let ib = |id| levels.level("industrial_bank", id).to_string();
    // Own assets: P1 ≥ 1M. Family H1 averages (700k + 900k) / 2 = 800k ≥ 800k: P2 and P3.
    assert_eq!([ib("P1"), ib("P2"), ib("P3")], ["black_gold"; 3]);
    // P4 350k ≥ 300k. Family H2 averages 250k ≥ 250k: P5 (260k) and P6 (240k).
    assert_eq!([ib("P4"), ib("P5"), ib("P6")], ["platinum"; 3]);
    // P8 120k ≥ 100k; P7 90k alone (the 50M balance is outside the 90 days).
    assert_eq!(ib("P8"), "gold");
    assert_eq!(ib("P7"), "silver");
    assert_eq!(ib("X1"), "(not applicable)");
    assert!(
        levels
            .why("industrial_bank", "P2")
            .contains("family_avg_assets 800,000 >= 800,000"),
        "{}",
        levels.why("industrial_bank", "P2")
    );

    let bc = |id| levels.level("bocom", id).to_string();
    assert_eq!(bc("Q1"), "diamond");
    assert_eq!(bc("Q2"), "vip");
    // A platinum credit card with a limit ≥ 50k shares the VIP queue.
    assert_eq!(bc("Q3"), "vip");
    assert_eq!(bc("Q4"), "wealth");
    assert_eq!(bc("Q5"), "ordinary");
}

#[tokio::test]
async fn explain_says_what_it_takes_to_reach_the_next_level() {
    let ws = bank_fixture();
    let loaded = stratum_runner::load_policy(&ws.path("policies/bank.toml")).unwrap();
    let (_, e) = stratum_runner::explain(&loaded, &RunOptions::default(), None, "P4")
        .await
        .unwrap();
    let ib = e
        .placements
        .iter()
        .find(|p| p.ladder == "industrial_bank")
        .unwrap();
    assert_eq!(ib.level, "platinum");
    assert_eq!(
        ib.next,
        "needs 650,000 more avg_assets_90d (has 350,000, black_gold requires >= 1,000,000) for black_gold"
    );
    let (_, e) = stratum_runner::explain(&loaded, &RunOptions::default(), None, "P7")
        .await
        .unwrap();
    let ib = e
        .placements
        .iter()
        .find(|p| p.ladder == "industrial_bank")
        .unwrap();
    assert_eq!(
        ib.next,
        "needs 10,000 more avg_assets_90d (has 90,000, gold requires >= 100,000) for gold"
    );
    let err = stratum_runner::explain(&loaded, &RunOptions::default(), None, "NOPE")
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "customer `NOPE` is not in the customers source"
    );
}

// ---------------------------------------------------------------------------------------
// 3. Weighted composite 10 / 30 / 60 on a 100-point base, with tag and manual overrides.

fn main_policy_fixture(customers: &str, transactions: &str, invoices: &str, overrides: &str) -> Ws {
    let ws = Ws::new();
    ws.demo_policy("stratum.toml")
        .file("data/customers.csv", customers)
        .file("data/transactions.csv", transactions)
        .file("data/invoices.csv", invoices)
        .file("data/overrides.csv", overrides);
    ws
}

#[tokio::test]
async fn weighted_composite_scores_and_pyramid_with_overrides() {
    let ws = main_policy_fixture(
        "customer_id,owner,tags,household_id\nA,wang,,H1\nB,wang,blacklist,H1\nC,li,,H2\nD,li,,H3\nE,li,,H3\n",
        "customer_id,date,amount,cost\nA,2026-06-01,100,90\nB,2026-06-01,400,380\nC,2026-06-01,200,150\nD,2026-06-01,300,260\n",
        "customer_id,issued,due_date,paid_date,amount\n\
         A,2026-05-01,2026-05-31,2026-05-20,100\n\
         B,2026-05-01,2026-05-31,2026-05-31,100\nB,2026-06-01,2026-07-01,2026-07-09,100\n\
         C,2026-05-01,2026-05-31,2026-05-02,100\n\
         D,2026-05-01,2026-05-31,2026-06-30,100\n\
         E,2026-03-01,2026-03-31,2026-03-01,10\nE,2026-04-01,2026-05-01,2026-04-02,10\nE,2026-05-01,2026-05-31,2026-05-03,10\nE,2026-06-01,2026-07-01,,10\n",
        "customer_id,ladder,level,reason\nE,pyramid,key,test pin\n",
    );
    let (_, levels) = ws.run("stratum.toml").await;
    // Percentiles (strictly below ÷ 4):
    //   on_time_rate  A 1 → .75, B .5 → .25, C 1 → .75, D 0 → 0, E .75 → .5
    //   revenue_12m   E 0 → 0, A 100 → .25, C 200 → .5, D 300 → .75, B 400 → 1
    //   profit_12m    E 0 → 0, A 10 → .25, B 20 → .5, D 40 → .75, C 50 → 1
    // Score = 100 × (.1 credit + .3 revenue + .6 profit).
    let expected = [
        ("A", 30.0),
        ("B", 62.5),
        ("C", 82.5),
        ("D", 67.5),
        ("E", 5.0),
    ];
    for (id, score) in expected {
        assert!(
            (levels.score("pyramid", id) - score).abs() < 1e-6,
            "{id}: {}",
            levels.score("pyramid", id)
        );
    }
    // Five customers: key round(0.05) = 0, major round(1.0) = 1 → C, ordinary round(2.5) − 1 = 2
    // → D, B; the rest small. Then B is blacklisted (pinned to small) and E is pinned to key.
    let py = |id| levels.level("pyramid", id).to_string();
    assert_eq!(
        [py("C"), py("D"), py("B"), py("A"), py("E")],
        ["major", "ordinary", "small", "small", "key"]
    );
    assert_eq!(
        levels.why("pyramid", "B"),
        "pinned by tag 'blacklist'; the rules alone gave ordinary"
    );
    assert_eq!(
        levels.why("pyramid", "E"),
        "pinned by manual override (test pin); the rules alone gave small"
    );
    // The file also carries the level the rules alone gave, the owner and the tags.
    let csv = std::fs::read_to_string(ws.path("out/assignments.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("customer_id,ladder,level,score,rank,explanation,rule_level,owner,tags")
    );
    let row = |id: &str| {
        csv.lines()
            .find(|l| l.starts_with(&format!("{id},pyramid,")))
            .unwrap()
            .to_string()
    };
    assert_eq!(
        row("B"),
        "B,pyramid,small,62.5,3,pinned by tag 'blacklist'; the rules alone gave ordinary,ordinary,wang,blacklist"
    );
    assert_eq!(
        row("E"),
        "E,pyramid,key,5,5,pinned by manual override (test pin); the rules alone gave small,small,li,"
    );
    assert!(row("C").ends_with(",major,li,"), "{}", row("C"));
}

// ---------------------------------------------------------------------------------------
// 3b. Cumulative value share (ABC / Pareto).

#[tokio::test]
async fn abc_takes_the_customers_holding_the_first_80_and_next_15_percent() {
    let ws = Ws::new();
    let values = [50, 20, 10, 8, 5, 3, 2, 1, 1, 0];
    let mut customers = String::from("customer_id\n");
    let mut tx = String::from("customer_id,date,amount,cost\n");
    for (i, v) in values.iter().enumerate() {
        customers.push_str(&format!("V{i:02}\n"));
        tx.push_str(&format!("V{i:02},2026-06-01,{v},0\n"));
    }
    let policy = r#"
[policy]
as_of = "2026-10-31"
[sources.customers]
path = "customers.csv"
key = "customer_id"
[sources.transactions]
path = "transactions.csv"
key = "customer_id"
time = "date"
[metrics.profit_12m]
source = "transactions"
expr = "sum(amount - cost)"
window = "12 months"
[ladders.abc]
rank_by = "profit_12m"
[[ladders.abc.levels]]
name = "A"
value_share = 0.80
[[ladders.abc.levels]]
name = "B"
value_share = 0.15
[[ladders.abc.levels]]
name = "C"
rest = true
"#;
    ws.file("customers.csv", &customers)
        .file("transactions.csv", &tx)
        .file("p.toml", policy);
    let (outcome, levels) = ws.run("p.toml").await;
    // Total 100. A: 50, 20, 10 (80 reached). B: until 95: 8, 5, 3 (96). C: the rest.
    let m = levels.members("abc");
    assert_eq!(m["A"], ["V00", "V01", "V02"]);
    assert_eq!(m["B"], ["V03", "V04", "V05"]);
    assert_eq!(m["C"], ["V06", "V07", "V08", "V09"]);
    assert_eq!(outcome.ladders[0].rows[0].value_share, Some(0.8));
}

// ---------------------------------------------------------------------------------------
// 4. Scorecard with bands and manual inputs: the real-estate A / B / C.

fn property_fixture(manual: &str) -> Ws {
    let ws = Ws::new();
    ws.demo_policy("policies/property.toml")
        .file(
            "data/customers.csv",
            "customer_id,customer_type,company_nature,registered_capital\n\
             K1,company,government,60000000\nK2,company,joint_stock,20000000\nK3,company,private,5000000\n\
             K4,company,state_owned,60000000\nP1,person,,\n",
        )
        .file(
            "data/transactions.csv",
            "customer_id,date,amount,cost\n\
             K1,2026-06-01,600000,350000\nK1,2025-06-01,400000,0\n\
             K2,2026-06-01,110000,10000\nK2,2025-06-01,100000,0\n\
             K3,2026-06-01,20000,10000\nK3,2025-06-01,25000,0\n\
             K4,2026-06-01,600000,350000\nK4,2025-06-01,400000,0\n",
        )
        .file("data/manual_scores.csv", manual);
    ws
}

#[tokio::test]
async fn real_estate_scorecard_grades_a_b_c_with_manual_inputs() {
    let ws = property_fixture(
        "customer_id,relationship_top,strategic_importance\nK1,18,17\nK2,14,12\nK3,,20\nK4,10,4\n",
    );
    let (_, levels) = ws.run("policies/property.toml").await;
    // K1: nature 15 + strength 15 + growth (0.5) 15 + profit (250k) 15 + 18 + 17 = 95 → A
    // K2: 10 + 8 + growth 0.1 → 8 + profit 100k → 8 + 14 + 12 = 60 → B (60 ≤ total < 75)
    // K3: 5 + 3 + growth −0.2 → 3 + profit 10k → 3 + no input 0 + 20 = 34 → C
    // K4: 15 + 15 + 15 + 15 + 10 + 4 = 74 → B
    for (id, score, grade) in [
        ("K1", 95.0, "A"),
        ("K2", 60.0, "B"),
        ("K3", 34.0, "C"),
        ("K4", 74.0, "B"),
    ] {
        assert_eq!(levels.score("property_grade", id), score, "{id}");
        assert_eq!(levels.level("property_grade", id), grade, "{id}");
    }
    assert_eq!(levels.level("property_grade", "P1"), "(not applicable)");

    let loaded = stratum_runner::load_policy(&ws.path("policies/property.toml")).unwrap();
    let (_, e) = stratum_runner::explain(&loaded, &RunOptions::default(), None, "K3")
        .await
        .unwrap();
    let (_, total, parts) = &e.scores[0];
    assert_eq!(*total, 34.0);
    let detail: Vec<String> = parts
        .iter()
        .map(|c| format!("{}: {}", c.label, c.detail))
        .collect();
    assert_eq!(detail[0], "customer nature: 'private' → 5 points");
    assert_eq!(
        detail[1],
        "strength: 5,000,000 in 'weak' < 10,000,000 → 3 points"
    );
    assert_eq!(
        detail[4],
        "relationship with top management: no value: 0 points"
    );
}

#[tokio::test]
async fn manual_points_above_the_dimension_maximum_are_an_error() {
    let ws = property_fixture("customer_id,relationship_top,strategic_importance\nK1,25,17\n");
    let err = ws
        .run_with("policies/property.toml", RunOptions::default())
        .await
        .unwrap_err();
    assert!(err.is_user_error());
    assert_eq!(
        err.to_string(),
        "scores.property_card: customer `K1`: `relationship_top` = 25 is outside 0..20 points of dimension `relationship with top management`"
    );
    assert!(
        !ws.path("out/assignments.csv").exists(),
        "nothing is written on error"
    );
}

// ---------------------------------------------------------------------------------------
// 5 and 6. Multi-condition B2B grades (with their holes) and dealer credit A–E.

#[tokio::test]
async fn b2b_grades_and_dealer_credit_ratings() {
    let ws = Ws::new();
    ws.demo_policy("policies/b2b.toml")
        .file(
            "data/customers.csv",
            "customer_id,customer_type,payment_method,plan_completion,tags\n\
             B_A1,company,,,\nB_A2,company,,,\nB_H1,company,,,\nB_H2,company,,,\nB_B1,company,,,\nB_B2,company,,,\nB_C,company,,,\n\
             D_A,dealer,transfer,1.1,\nD_B,dealer,credit,1.1,\nD_C,dealer,cash,0.85,\nD_D,dealer,cash,0.5,\nD_E,dealer,cash,1.0,\n",
        )
        .file(
            "data/transactions.csv",
            "customer_id,date,amount,cost\n\
             B_A1,2026-06-01,600000,480000\nB_A1,2025-06-01,500000,400000\n\
             B_A2,2026-06-01,250000,200000\n\
             B_H1,2026-06-01,400000,300000\n\
             B_H2,2026-06-01,150000,100000\n\
             B_B1,2026-06-01,70000,50000\nB_B1,2025-06-01,60000,50000\n\
             B_B2,2026-06-01,30000,20000\nB_B2,2025-06-01,30000,20000\n\
             B_C,2026-06-01,800000,760000\n",
        )
        .file(
            "data/invoices.csv",
            "customer_id,issued,due_date,paid_date,amount\n\
             B_A1,2026-06-30,2026-07-30,2026-07-20,600000\n\
             B_A2,2026-06-30,2026-07-30,2026-07-20,250000\n\
             B_H1,2026-06-30,2026-07-30,2026-07-20,400000\n\
             B_H2,2026-06-30,2026-07-30,2026-07-20,150000\n\
             B_C,2026-06-30,2026-07-30,2026-09-20,800000\n\
             D_A,2026-03-31,2026-04-30,2026-04-30,1300000\n\
             D_B,2026-03-31,2026-04-30,2026-04-30,700000\n\
             D_C,2026-03-31,2026-04-30,2026-05-30,300000\n\
             D_D,2026-03-31,2026-04-30,2026-04-30,100000\n\
             D_E,2026-03-31,2026-04-30,2026-04-30,12000\nD_E,2026-04-30,2026-05-30,,50000\n",
        );
    let (_, levels) = ws.run("policies/b2b.toml").await;
    let g = |id| levels.level("b2b_grade", id).to_string();
    assert_eq!(g("B_A1"), "A1"); // 600k, on time
    assert_eq!(g("B_A2"), "A2"); // 250k, on time
    assert_eq!(g("B_H1"), "D"); // 400k: in the 300k–500k hole
    assert_eq!(g("B_H2"), "D"); // 150k: in the 100k–200k hole
    assert_eq!(g("B_B1"), "B1"); // 70k, growth 70/60 − 1 = 16.7%
    assert_eq!(g("B_B2"), "B2"); // 30k, growth 0
    assert_eq!(g("B_C"), "C"); // 800k but paid late and a 5% margin
    assert_eq!(g("D_A"), "(not applicable)");

    let d = |id| levels.level("dealer_credit", id).to_string();
    // Paid in the last 12 months ÷ 12: 108,333 / 58,333 / 25,000 / 8,333 / 1,000 (unpaid excluded).
    assert_eq!(
        [d("D_A"), d("D_B"), d("D_C"), d("D_D"), d("D_E")],
        ["A", "B", "C", "D", "E"]
    );
    assert_eq!(d("B_A1"), "(not applicable)");
    let loaded = stratum_runner::load_policy(&ws.path("policies/b2b.toml")).unwrap();
    let ladder = loaded.policy.ladder("dealer_credit").unwrap();
    let limits: Vec<i64> = ladder
        .levels
        .iter()
        .map(|l| l.attributes["credit_limit"].as_integer().unwrap())
        .collect();
    assert_eq!(limits, [2_000_000, 1_000_000, 500_000, 100_000, 0]);
}

#[tokio::test]
async fn check_reports_the_holes_in_the_b2b_grades_and_the_retailer_levels() {
    let ws = Ws::new();
    ws.demo_policy("policies/b2b.toml")
        .demo_policy("policies/retail_members.toml");
    stratum_demo::generate(60, 1)
        .write_csv(&{
            std::fs::create_dir_all(ws.path("data")).unwrap();
            ws.path("data")
        })
        .unwrap();
    let report = stratum_runner::check(&ws.path("policies/b2b.toml"), &Default::default())
        .await
        .unwrap();
    let gaps: Vec<&str> = report
        .diagnostics
        .iter()
        .filter(|d| d.code == "threshold_gap")
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(
        gaps,
        [
            "gap in ladder `b2b_grade`: annual_volume in (300,000, 500,000] matches neither `A2` ([200,000, 300,000]) nor `A1` (> 500,000); they fall to `D`",
            "gap in ladder `b2b_grade`: annual_volume in [100,000, 200,000) matches neither `B1` ([50,000, 100,000)) nor `A2` ([200,000, 300,000]); they fall to `D`",
        ]
    );
    assert!(!report.has_errors());
    let loc = report.diagnostics[0].location.as_ref().unwrap();
    assert!(loc.file.ends_with("b2b.toml") && loc.line > 1);

    let report = stratum_runner::check(
        &ws.path("policies/retail_members.toml"),
        &Default::default(),
    )
    .await
    .unwrap();
    let messages: Vec<&str> = report
        .diagnostics
        .iter()
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(
        messages,
        [
            "gap in ladder `member`: spend_12m in [50,000, 100,000) matches neither `gold` ([10,000, 50,000)) nor `platinum` ([100,000, 200,000)); they fall to `vip`, below `gold`"
        ]
    );
}

// ---------------------------------------------------------------------------------------
// Lifecycle stages: potential → new → developing → mature → loyal → dormant.

#[tokio::test]
async fn lifecycle_stages() {
    let mut tx = String::from("customer_id,date,amount,cost\n");
    let mut add = |id: &str, dates: &[String]| {
        for d in dates {
            tx.push_str(&format!("{id},{d},100,50\n"));
        }
    };
    let days_ago = |n: i64| {
        (chrono::NaiveDate::from_ymd_opt(2026, 10, 31).unwrap() - chrono::Days::new(n as u64))
            .to_string()
    };
    add("L_new", &[days_ago(30)]);
    add("L_dev", &[days_ago(90), days_ago(60), days_ago(20)]);
    // Ten orders, only two in the last year: mature, not loyal.
    let mut mature: Vec<String> = (0..8).map(|i| days_ago(400 + i * 30)).collect();
    mature.extend([days_ago(100), days_ago(10)]);
    add("L_mat", &mature);
    add(
        "L_loy",
        &(0..12).map(|i| days_ago(10 + i * 25)).collect::<Vec<_>>(),
    );
    add("L_dt", &[days_ago(300), days_ago(250), days_ago(200)]);
    add("L_dp", &[days_ago(700), days_ago(400)]);
    let ws = main_policy_fixture(
        "customer_id,owner,tags,household_id\nL_pot,li,,H\nL_new,li,,H\nL_dev,li,,H\nL_mat,li,,H\nL_loy,li,,H\nL_dt,li,,H\nL_dp,li,,H\n",
        &tx,
        "customer_id,issued,due_date,paid_date,amount\n",
        "customer_id,ladder,level,reason\n",
    );
    // No invoices at all: a source with no rows stops a run unless allowed (guards.rs).
    let allow_empty = RunOptions {
        guard: stratum_runner::GuardOptions {
            allow_shrink: true,
            ..Default::default()
        },
        ..Default::default()
    };
    let (_, levels) = ws.run_with("stratum.toml", allow_empty).await.unwrap();
    let stage = |id| levels.level("lifecycle", id).to_string();
    assert_eq!(
        ["L_pot", "L_new", "L_dev", "L_mat", "L_loy", "L_dt", "L_dp"].map(stage),
        [
            "potential",
            "new",
            "developing",
            "mature",
            "loyal",
            "dormant_temporary",
            "dormant_permanent"
        ]
    );
    assert_eq!(levels.why("lifecycle", "L_dp"), "days_since_last 400 > 365");
}

// ---------------------------------------------------------------------------------------
// Bad input: located errors, quarantine, nothing changed.

const SMALL: &str = r#"
[policy]
as_of = "2026-10-31"
[sources.customers]
path = "customers.csv"
key = "customer_id"
[sources.transactions]
path = "transactions.csv"
key = "customer_id"
time = "date"
[metrics.revenue]
source = "transactions"
expr = "sum(amount)"
[ladders.value]
[[ladders.value.levels]]
name = "big"
when = "revenue >= 100"
[[ladders.value.levels]]
name = "small"
rest = true
"#;

fn small(tx: &str) -> Ws {
    let ws = Ws::new();
    ws.file("customers.csv", "customer_id\nA\nB\nC\n")
        .file("transactions.csv", tx)
        .file("p.toml", SMALL);
    ws
}

#[tokio::test]
async fn bad_rows_are_named_by_file_line_and_column() {
    let cases = [
        (
            "customer_id,date,amount\nA,2026-01-01,5\nB,2026-01-01,abc\nC,2026-01-01,7.5\n",
            "transactions.csv:3: column `amount`: value 'abc' is not a valid float",
        ),
        (
            "customer_id,date,amount\nA,2026-01-01,5\nB,2026-01-01,6\nC,2026-01-01\n",
            "transactions.csv:4: row has 2 fields, the header has 3",
        ),
        (
            "customer_id,date,amount\nA,2026-01-01,5\nB,2026-13-45,6\n",
            "transactions.csv:3: column `date`: value '2026-13-45' is not a valid date",
        ),
        (
            "customer_id,date,amount\nA,2026-01-01,5\n,2026-01-01,6\n",
            "transactions.csv:3: column `customer_id`: customer key is empty",
        ),
    ];
    for (tx, expected) in cases {
        let ws = small(tx);
        let err = ws
            .run_with("p.toml", RunOptions::default())
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), expected);
        assert!(err.is_user_error());
    }
}

#[tokio::test]
async fn quarantine_keeps_going_and_accounts_for_every_row() {
    let ws = small(
        "customer_id,date,amount\nA,2026-01-01,150\nB,2026-01-01,abc\nC,2026-01-01,20\nC,2026-01-01\nB,2026-02-01,30\n",
    );
    let (outcome, levels) = ws
        .run_with(
            "p.toml",
            RunOptions {
                on_bad_rows: BadRows::Quarantine,
                // Two of five rows are bad: far past the default 1% (guards.rs tests it).
                guard: stratum_runner::GuardOptions {
                    max_rejects: Some(stratum_core::RejectLimit::Rows(2)),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let tx = outcome
        .sources
        .iter()
        .find(|s| s.name == "transactions")
        .unwrap();
    assert_eq!(
        (tx.stats.read, tx.stats.accepted, tx.stats.rejected),
        (5, 3, 2)
    );
    assert_eq!(levels.level("value", "A"), "big");
    assert_eq!(levels.level("value", "B"), "small");
    let rejects = std::fs::read_to_string(outcome.files.rejects_csv.unwrap()).unwrap();
    assert_eq!(
        rejects,
        "source,file,line,column,reason,record\n\
         transactions,transactions.csv,3,amount,value 'abc' is not a valid float,\"B,2026-01-01,abc\"\n\
         transactions,transactions.csv,5,,\"row has 2 fields, the header has 3\",\"C,2026-01-01\"\n"
    );
}

#[tokio::test]
async fn policy_and_schema_mistakes_are_located_and_change_nothing() {
    let ws = small("customer_id,date,amount\nA,2026-01-01,150\n");
    ws.run("p.toml").await;
    let before = std::fs::read(ws.path("out/assignments.csv")).unwrap();

    ws.file(
        "p.toml",
        &SMALL.replace("expr = \"sum(amount)\"", "expr = \"sum(amout)\""),
    );
    let err = ws
        .run_with("p.toml", RunOptions::default())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("metric `revenue` (key `metrics.revenue`):"),
        "{text}"
    );
    assert!(text.contains("amout"), "{text}");
    assert!(
        text.contains("; did you mean `amount`? (columns of source `transactions` in transactions.csv: customer_id, date, amount)"),
        "{text}"
    );
    // `check` says the same, at the metric's line in the policy.
    let report = stratum_runner::check(&ws.path("p.toml"), &Default::default())
        .await
        .unwrap();
    let d = report
        .diagnostics
        .iter()
        .find(|d| d.code == "data")
        .expect("a data error");
    assert_eq!(d.key, "metrics.revenue.expr");
    assert_eq!(d.location.as_ref().map(|l| l.line), Some(13), "{d}");

    ws.file(
        "p.toml",
        &SMALL.replace("key = \"customer_id\"\ntime", "key = \"customer\"\ntime"),
    );
    let err = ws
        .run_with("p.toml", RunOptions::default())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "transactions.csv: column `customer` (source `transactions`) is missing; did you mean `customer_id`? (columns: customer_id, date, amount)"
    );

    ws.file(
        "p.toml",
        &SMALL.replace("when = \"revenue >= 100\"", "when = \"revenu >= 100\""),
    );
    let err = ws
        .run_with("p.toml", RunOptions::default())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("unknown metric or score `revenu`"), "{text}");
    assert!(text.contains("p.toml:17:1"), "{text}");
    assert!(text.contains("did you mean `revenue`?"), "{text}");

    ws.file("p.toml", SMALL)
        .file("customers.csv", "customer_id\nA\nB\nA\n");
    let err = ws
        .run_with("p.toml", RunOptions::default())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "customers.csv:4: column `customer_id`: duplicate key 'A' (first seen on line 2)"
    );

    assert_eq!(
        std::fs::read(ws.path("out/assignments.csv")).unwrap(),
        before,
        "a failed run changes nothing"
    );
}

#[tokio::test]
async fn refunds_net_out_and_customers_without_events_are_placed() {
    let ws = small(
        "customer_id,date,amount\nA,2026-01-01,150\nA,2026-01-05,-150\nB,2026-01-01,100\nZ,2026-01-01,999\n",
    );
    let (outcome, levels) = ws.run("p.toml").await;
    assert_eq!(levels.level("value", "A"), "small"); // 150 − 150 = 0
    assert_eq!(levels.level("value", "B"), "big");
    assert_eq!(levels.level("value", "C"), "small"); // no events: sum defaults to 0
    assert_eq!(
        outcome.orphans.len(),
        1,
        "events for unknown customer Z are reported"
    );
    assert_eq!(
        (outcome.orphans[0].rows, outcome.orphans[0].customer_ids),
        (1, 1)
    );
}

#[tokio::test]
async fn json_lines_sources_read_like_csv() {
    let ws = Ws::new();
    ws.file("customers.jsonl", "{\"customer_id\": \"A\"}\n{\"customer_id\": \"B\"}\n")
        .file(
            "transactions.jsonl",
            "{\"customer_id\": \"A\", \"date\": \"2026-01-01\", \"amount\": 150}\n{\"customer_id\": \"B\", \"date\": \"2026-01-01\", \"amount\": 5.5}\n",
        )
        .file("p.toml", &SMALL.replace(".csv", ".jsonl"));
    let (_, levels) = ws.run("p.toml").await;
    assert_eq!(levels.level("value", "A"), "big");
    assert_eq!(levels.level("value", "B"), "small");
    ws.file(
        "transactions.jsonl",
        "{\"customer_id\": \"A\", \"date\": \"2026-01-01\", \"amount\": 150}\nnot json\n",
    );
    let err = ws
        .run_with("p.toml", RunOptions::default())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("transactions.jsonl:2: row is not valid JSON"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------
// Determinism: thread count and input row order do not change any placement.

#[tokio::test]
async fn results_do_not_depend_on_thread_count_or_row_order() {
    let ws = Ws::new();
    stratum_demo::init(&ws.path("demo"), 400, false).unwrap();
    let one = run_demo(&ws, 1, "out1").await;
    let four = run_demo(&ws, 4, "out4").await;
    assert_eq!(one, four);

    // Reverse the transaction rows (keeping the header) and run again.
    let path = ws.path("demo/data/transactions.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let header = lines.remove(0);
    lines.reverse();
    std::fs::write(&path, format!("{header}\n{}\n", lines.join("\n"))).unwrap();
    assert_eq!(run_demo(&ws, 2, "out_reversed").await, one);
}

async fn run_demo(ws: &Ws, threads: usize, out: &str) -> String {
    let out = ws.path(out);
    let loaded = stratum_runner::load_policy(&ws.path("demo/stratum.toml")).unwrap();
    let options = RunOptions {
        target_partitions: threads,
        out_dir: Some(out.clone()),
        ..Default::default()
    };
    stratum_runner::run(&loaded, &options, None, &mut Quiet)
        .await
        .unwrap();
    std::fs::read_to_string(out.join("assignments.csv")).unwrap()
}

// ---------------------------------------------------------------------------------------
// `stratum gen` data with the benchmark policy: exact pyramid counts on Parquet.

#[tokio::test]
async fn generated_parquet_data_runs_the_benchmark_policy() {
    let ws = Ws::new();
    ws.bench(1000, 20_000, 2_000, 3);
    let (outcome, _) = ws.run("bench/bench.toml").await;
    let counts: Vec<usize> = outcome.ladders[0].rows.iter().map(|r| r.count).collect();
    assert_eq!(counts, [10, 190, 300, 500]);
    let tx = outcome
        .sources
        .iter()
        .find(|s| s.name == "transactions")
        .unwrap();
    assert_eq!(tx.stats.read, 20_000);
}

/// A Parquet customers file with a key listed twice: the run stops naming the file and the
/// key (found in stage two, where a duplicate customer is two neighbouring rows), writes
/// nothing, and `check` reports the same.
#[tokio::test]
async fn a_duplicate_customer_in_parquet_is_named_by_run_and_check() {
    use datafusion::dataframe::DataFrameWriteOptions;
    use datafusion::prelude::{ParquetReadOptions, SessionContext};

    let ws = Ws::new();
    ws.bench(200, 2_000, 200, 7);
    let customers = ws.path("bench/customers.parquet");
    let ctx = SessionContext::new();
    ctx.register_parquet(
        "c",
        customers.to_str().unwrap(),
        ParquetReadOptions::default(),
    )
    .await
    .unwrap();
    let doubled = ctx
        .sql("SELECT * FROM c UNION ALL SELECT * FROM c WHERE customer_id = 117")
        .await
        .unwrap();
    let rewritten = ws.path("bench/doubled.parquet");
    doubled
        .write_parquet(
            rewritten.to_str().unwrap(),
            DataFrameWriteOptions::new().with_single_file_output(true),
            None,
        )
        .await
        .unwrap();
    std::fs::rename(&rewritten, &customers).unwrap();

    let err = ws
        .run_with("bench/bench.toml", RunOptions::default())
        .await
        .unwrap_err();
    let expected = "customers.parquet: key '117' appears more than once in source `customers`, \
                    which must have one row per customer";
    assert_eq!(err.to_string(), expected);
    assert!(!ws.path("out/assignments.csv").exists(), "nothing written");

    let report = stratum_runner::check(&ws.path("bench/bench.toml"), &Default::default())
        .await
        .unwrap();
    assert!(report.has_errors());
    let messages: Vec<&str> = report
        .diagnostics
        .iter()
        .map(|d| d.message.as_str())
        .collect();
    assert!(messages.contains(&expected), "{messages:?}");
}

/// From 100,000 customers with few rows each, stage one skips DataFusion's partial
/// aggregation (rows go straight to hash-partitioned final aggregations). Its metrics must
/// equal a plain GROUP BY over the same files, customer by customer.
#[tokio::test]
async fn many_customers_with_few_rows_each_aggregate_like_a_plain_group_by() {
    use datafusion::arrow::array::{Array, Int64Array};
    use datafusion::prelude::{ParquetReadOptions, SessionContext};

    let ws = Ws::new();
    ws.bench(100_000, 300_000, 50_000, 5);
    let (outcome, levels) = ws.run("bench/bench.toml").await;
    assert_eq!(outcome.customers, 100_000);
    let counts: Vec<usize> = outcome.ladders[0].rows.iter().map(|r| r.count).collect();
    assert_eq!(counts, [1_000, 19_000, 30_000, 50_000]);
    assert_eq!(
        levels
            .members("pyramid")
            .values()
            .map(Vec::len)
            .sum::<usize>(),
        100_000
    );

    let ctx = SessionContext::new();
    let parquet = |name: &str| ws.path(name).display().to_string();
    for (table, file) in [
        ("metrics", "out/metrics.parquet"),
        ("assignments", "out/assignments.parquet"),
        ("transactions", "bench/transactions.parquet"),
        ("invoices", "bench/invoices.parquet"),
    ] {
        ctx.register_parquet(table, &parquet(file), ParquetReadOptions::default())
            .await
            .unwrap();
    }
    let count = |sql: &'static str| {
        let ctx = ctx.clone();
        async move {
            let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
            let column = batches[0].column(0);
            column
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .value(0)
        }
    };
    let differing = count(
        "WITH tx AS (SELECT CAST(customer_id AS VARCHAR) AS id, sum(amount) AS revenue, \
                     sum(amount - cost) AS profit FROM transactions \
                     WHERE date >= DATE '2025-11-01' AND date < DATE '2026-11-01' GROUP BY customer_id), \
              inv AS (SELECT CAST(customer_id AS VARCHAR) AS id, avg(CASE WHEN paid_date IS NOT NULL \
                     AND paid_date <= due_date THEN 1.0 ELSE 0.0 END) AS on_time FROM invoices \
                     WHERE issued >= DATE '2025-11-01' AND issued < DATE '2026-11-01' GROUP BY customer_id) \
         SELECT count(*) FROM metrics m LEFT JOIN tx ON tx.id = m.customer_id \
         LEFT JOIN inv ON inv.id = m.customer_id \
         WHERE abs(m.revenue_12m - coalesce(tx.revenue, 0)) > 1e-6 \
            OR abs(m.profit_12m - coalesce(tx.profit, 0)) > 1e-6 \
            OR abs(m.on_time_rate - coalesce(inv.on_time, 1.0)) > 1e-6",
    )
    .await;
    assert_eq!(differing, 0);
    // Not vacuous: tens of thousands of customers bought in the window.
    let buyers = count("SELECT count(*) FROM metrics WHERE revenue_12m <> 0").await;
    assert!(buyers > 30_000, "{buyers} customers with revenue");
    // The outputs are written in batches of 64Ki rows: every customer once in each file.
    for sql in [
        "SELECT count(DISTINCT customer_id) FROM metrics",
        "SELECT count(*) FROM metrics",
        "SELECT count(DISTINCT customer_id) FROM assignments",
        "SELECT count(*) FROM assignments",
    ] {
        assert_eq!(count(sql).await, 100_000, "{sql}");
    }
}

// ---------------------------------------------------------------------------------------
// Lifetime models as metrics (BG/NBD, Gamma-Gamma) and the churn warning.

const CDNOW_POLICY: &str = r#"
[policy]
as_of = "1997-09-30"
[sources.customers]
path = "customers.csv"
key = "customer_id"
[sources.transactions]
path = "transactions.csv"
key = "customer_id"
time = "date"
[lifetime]
source = "transactions"
amount = "amount"
filter = "amount >= 0"   # CDNOW has purchases of $0; refunds are negative
[metrics.alive]
lifetime = "p_alive"
[metrics.next_39_weeks]
lifetime = "expected_purchases(39)"
[metrics.clv_12m]
lifetime = "clv(12, 0.01)"
[metrics.repeat_purchases]
lifetime = "frequency"
default = 0
[metrics.twice_clv]
expr = "clv_12m * 2"
[ladders.alive]
rank_by = "alive"
[[ladders.alive.levels]]
name = "active"
when = "alive >= 0.5"
[[ladders.alive.levels]]
name = "at_risk"
when = "alive < 0.5"
[[ladders.alive.levels]]
name = "never_bought"
rest = true
[ladders.next]
rank_by = "next_39_weeks"
[[ladders.next.levels]]
name = "all"
rest = true
[ladders.value]
rank_by = "twice_clv"
[[ladders.value.levels]]
name = "all"
rest = true
[churn]
p_alive = "alive"
below = 0.5
drop = 0.2
value = "clv_12m"
ladder = "alive"
"#;

/// The CDNOW sample as a policy's data: 2,357 buyers, one customer who never bought, and a
/// refund row the `[lifetime] filter` keeps out of the purchases.
fn cdnow_workspace() -> Ws {
    let raw = include_str!("../../core/tests/fixtures/cdnow/CDNOW_sample.txt");
    let mut tx = String::from("customer_id,date,amount\n");
    let mut customers = String::from("customer_id\nNOBUY\n");
    let mut seen = std::collections::BTreeSet::new();
    for l in raw.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = l.split_whitespace().collect();
        let date = format!("{}-{}-{}", &f[2][..4], &f[2][4..6], &f[2][6..]);
        tx.push_str(&format!("{},{date},{}\n", f[1], f[4]));
        if seen.insert(f[1].to_string()) {
            customers.push_str(&format!("{}\n", f[1]));
        }
    }
    // A refund on a day 0001 did not buy: not a purchase.
    tx.push_str("0001,1997-09-01,-5\n");
    let ws = Ws::new();
    ws.file("customers.csv", &customers)
        .file("transactions.csv", &tx)
        .file("p.toml", CDNOW_POLICY);
    ws
}

#[tokio::test]
async fn lifetime_metrics_reproduce_the_cdnow_fit_and_predictions() {
    let ws = cdnow_workspace();
    let (outcome, levels) = ws.run("p.toml").await;
    let fit = outcome.lifetime.expect("the run reports the fit");
    assert_eq!(fit.customers, 2357);
    let bg = fit.purchases;
    let near = |got: f64, want: f64| (got - want).abs() <= 0.01;
    assert!(
        near(bg.r, 0.243) && near(bg.alpha, 4.414) && near(bg.a, 0.793) && near(bg.b, 2.426),
        "{bg:?}"
    );
    let (gg, _) = fit.spend.expect("clv needs the spend model");
    assert!(
        near(gg.p, 6.25) && near(gg.q, 3.74) && near(gg.v, 15.44),
        "{gg:?}"
    );
    // Customer 0001 is the paper's example (x = 2, t_x = 30.43, T = 38.86). lifetimes gives
    // p_alive 0.72661, 1.22591 purchases in 39 weeks and a 12-month CLV of 36.278 with its
    // fit (crates/core/tests/fixtures/cdnow/lifetimes_reference.json).
    let close = |got: f64, want: f64| (got - want).abs() <= 1e-3 * want.abs().max(1.0);
    let alive = levels.score("alive", "0001");
    let next = levels.score("next", "0001");
    let clv = levels.score("value", "0001") / 2.0;
    assert!(close(alive, 0.726609), "{alive}");
    assert!(close(next, 1.225910), "{next}");
    assert!(close(clv, 36.278496), "{clv}");
    assert_eq!(levels.level("alive", "0001"), "active");
    // 0002 bought twice early on: lifetimes' p_alive is 0.2122.
    assert!(close(levels.score("alive", "0002"), 0.212227));
    assert_eq!(levels.level("alive", "0002"), "at_risk");
    // No purchases: no prediction (null), so only `rest` takes the customer.
    assert_eq!(levels.level("alive", "NOBUY"), "never_bought");
    let members = levels.members("alive");
    assert_eq!(
        members.values().map(Vec::len).sum::<usize>(),
        2358,
        "one level per customer"
    );

    // explain shows the models.
    let loaded = stratum_runner::load_policy(&ws.path("p.toml")).unwrap();
    let (_, e) = stratum_runner::explain(&loaded, &RunOptions::default(), None, "0001")
        .await
        .unwrap();
    assert!(
        e.models.len() == 2
            && e.models[0].starts_with("BG/NBD over 2357 customers (unit: week): r 0.24"),
        "{:?}",
        e.models
    );
    assert!(e.to_string().contains("lifetime models"), "{e}");
}

async fn levels_at(ws: &Ws, date: &str) -> Levels {
    let out = ws.path(&format!("out-{date}"));
    let options = RunOptions {
        as_of: Some(date.into()),
        out_dir: Some(out),
        ..Default::default()
    };
    ws.run_with("p.toml", options).await.unwrap().1
}

#[tokio::test]
async fn churn_lists_who_fell_below_or_dropped_with_value_at_risk() {
    let ws = cdnow_workspace();
    let loaded = stratum_runner::load_policy(&ws.path("p.toml")).unwrap();
    let options = RunOptions::default();
    let since = chrono::NaiveDate::from_ymd_opt(1997, 6, 30).unwrap();
    let report = stratum_runner::churn(&loaded, &options, None, Some(since))
        .await
        .unwrap();
    assert_eq!(
        (report.as_of.to_string(), report.since),
        ("1997-09-30".into(), Some(since))
    );
    assert!(!report.warnings.is_empty());
    // Check every warning against the two evaluations' metrics, computed independently.
    let (now, before) = (
        levels_at(&ws, "1997-09-30").await,
        levels_at(&ws, "1997-06-30").await,
    );
    let mut expected = Vec::new();
    for id in now.members("alive").values().flatten() {
        let Ok(p) = now.0[&("alive".to_string(), id.clone())].1.parse::<f64>() else {
            continue; // no purchases: no p_alive
        };
        let q = before
            .0
            .get(&("alive".to_string(), id.clone()))
            .and_then(|r| r.1.parse::<f64>().ok());
        let why = match q {
            Some(q) if q >= 0.5 && p < 0.5 => "fell below threshold",
            Some(q) if q - p > 0.2 => "dropped",
            Some(_) => continue,
            None if p < 0.5 => "below threshold",
            None => continue,
        };
        expected.push((id.clone(), why));
    }
    let mut got: Vec<(String, &str)> = report
        .warnings
        .iter()
        .map(|w| (w.customer_id.clone(), w.reason.as_str()))
        .collect();
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
    // Highest value at risk first; every warning carries its level and value.
    let values: Vec<f64> = report
        .warnings
        .iter()
        .map(|w| w.value_at_risk.unwrap())
        .collect();
    assert!(values.windows(2).all(|w| w[0] >= w[1]));
    assert!(
        report
            .warnings
            .iter()
            .all(|w| w.level.as_deref() == Some("at_risk") || w.reason.as_str() == "dropped")
    );

    // A date that is not before the evaluation is refused, naming it.
    let err = stratum_runner::churn(
        &loaded,
        &options,
        None,
        Some(chrono::NaiveDate::from_ymd_opt(1997, 9, 30).unwrap()),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("--since 1997-09-30 must be before"),
        "{err}"
    );
}
