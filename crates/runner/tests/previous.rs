//! A run continuing from the previous one when the customer ids are integers: the frame
//! holds them in numeric order, the store in byte order ("10" < "9"), and the previous
//! run's standings must still reach each customer's own row — the holds, the recorded
//! migration and churn. Twelve customers, so that byte and numeric order differ.

use std::path::Path;

use stratum_runner::{Quiet, RunOptions};
use stratum_store::{Store, testing};

const POLICY: &str = r#"
[policy]
name = "numbers"
activity = "orders"

[sources.customers]
path = "customers.parquet"
key = "customer_id"

[sources.transactions]
path = "transactions.csv"
key = "customer_id"
time = "date"
columns = { customer_id = "int", amount = "float" }

[metrics.spend]
source = "transactions"
expr = "sum(amount)"
window = "1 months"
default = 0

[metrics.orders]
source = "transactions"
expr = "count(*)"
window = "1 months"
default = 0

[ladders.card]
value = "spend"

[ladders.card.hold]
downgrade_after_runs = 2

[[ladders.card.levels]]
name = "gold"
when = "spend >= 1000"

[[ladders.card.levels]]
name = "basic"
rest = true
"#;

/// Customer i spends `1000 + i` in January (all gold); in February customers 2, 10 and 11
/// spend 10 (the rules give basic: held at gold for this run) and customer 12 nothing
/// (inactive, held too); the rest stay gold.
fn write(dir: &Path, february: bool) {
    std::fs::write(dir.join("policy.toml"), POLICY).unwrap();
    let mut transactions = String::from("customer_id,date,amount\n");
    for i in 1..=12 {
        transactions.push_str(&format!("{i},2026-01-15,{}\n", 1000 + i));
        if february {
            match i {
                2 | 10 | 11 => transactions.push_str(&format!("{i},2026-02-15,10\n")),
                12 => {}
                _ => transactions.push_str(&format!("{i},2026-02-15,{}\n", 1000 + i)),
            }
        }
    }
    // Parquet with an integer key: the frame holds the customers in numeric order.
    use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch};
    let ids: ArrayRef = std::sync::Arc::new(Int64Array::from_iter_values(1..=12));
    let batch = RecordBatch::try_from_iter([("customer_id", ids)]).unwrap();
    let file = std::fs::File::create(dir.join("customers.parquet")).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    std::fs::write(dir.join("transactions.csv"), transactions).unwrap();
}

async fn run(dir: &Path, store: &Store, as_of: &str) -> i64 {
    let loaded = stratum_runner::load_policy(&dir.join("policy.toml")).unwrap();
    let options = RunOptions {
        as_of: Some(as_of.into()),
        out_dir: Some(dir.join("out")),
        recorded_by: "tester".into(),
        ..Default::default()
    };
    stratum_runner::run(&loaded, &options, Some(store), &mut Quiet)
        .await
        .unwrap()
        .run_id
        .expect("recorded")
}

#[tokio::test]
async fn integer_ids_continue_their_own_standings() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&testing::sqlite_in(dir.path())).await.unwrap();
    write(dir.path(), false);
    let first = run(dir.path(), &store, "2026-01-31").await;
    write(dir.path(), true);
    let second = run(dir.path(), &store, "2026-02-28").await;

    // Everyone stays gold: the three who fell are held for a run, 12 too.
    let levels = store.levels(second).await.unwrap();
    assert_eq!(levels.len(), 12);
    assert!(
        levels.iter().all(|(_, _, level)| level == "gold"),
        "{levels:?}"
    );
    let csv = std::fs::read_to_string(dir.path().join("out/assignments.csv")).unwrap();
    let order: Vec<&str> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(
        order,
        [
            "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"
        ]
    );
    let held: Vec<&str> = csv
        .lines()
        .filter(|l| l.contains("held at gold"))
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(held, ["2", "10", "11", "12"]);
    let states = store.states(second).await.unwrap();
    for (customer, below) in [
        ("1", 0),
        ("2", 1),
        ("9", 0),
        ("10", 1),
        ("11", 1),
        ("12", 1),
    ] {
        assert_eq!(
            states["card"][customer].below_runs, below,
            "customer {customer}"
        );
    }

    // The recorded migration: all twelve gold → gold; churn: 12 was active and is not.
    let summary = store
        .run_summaries(&[second])
        .await
        .unwrap()
        .into_iter()
        .map(|(_, _, text)| serde_json::from_str::<serde_json::Value>(&text).unwrap())
        .next()
        .unwrap();
    assert_eq!(summary["previous_run"], first);
    assert_eq!(
        summary["moves"], // February's spend: 1000 + i for the eight who kept buying, 10 each for three.
        serde_json::json!([["gold", "gold", 12, 8073.0]])
    );
    let gold = &summary["activity"][0];
    assert_eq!(gold["level"], "gold");
    assert_eq!(gold["active_before"], 12);
    assert_eq!(gold["active"], 11);
    assert_eq!(gold["churned"], 1);
}
