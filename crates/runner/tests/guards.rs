//! What must never become a recorded run: a stray quote that swallows a file, an export cut
//! short or mostly unreadable, outputs that cannot be written, a second run at the same time,
//! a run dated far ahead; and numbers that overflow or divide by zero. Each reproduction of
//! issue 16 is a test here, on a SQLite store in the workspace.

use std::path::PathBuf;

use stratum_core::RejectLimit;
use stratum_engine::BadRows;
use stratum_runner::{GuardOptions, Quiet, RunError, RunOptions, RunOutcome};
use stratum_store::{Actor, Store};

const POLICY: &str = r#"
[policy]
name = "guards"

[sources.customers]
path = "customers.csv"
key = "customer_id"

[sources.transactions]
path = "transactions.csv"
key = "customer_id"
time = "date"
columns = { amount = "float" }

[metrics.revenue]
source = "transactions"
expr = "sum(amount)"
default = 0

[ladders.value]
[[ladders.value.levels]]
name = "big"
when = "revenue >= 100"
[[ladders.value.levels]]
name = "small"
rest = true
"#;

/// A workspace with `n` customers C01.. and one transaction each (C01 spends 150).
struct Ws {
    dir: tempfile::TempDir,
}

impl Ws {
    fn new(n: usize) -> Ws {
        let ws = Ws {
            dir: tempfile::tempdir().unwrap(),
        };
        let mut customers = String::from("customer_id,name\n");
        let mut tx = String::from("customer_id,date,amount\n");
        for i in 1..=n {
            customers.push_str(&format!("C{i:02},name {i}\n"));
            tx.push_str(&format!(
                "C{i:02},2026-10-{:02},{}\n",
                i % 28 + 1,
                if i == 1 { 150 } else { 10 }
            ));
        }
        ws.file("customers.csv", &customers)
            .file("transactions.csv", &tx)
            .file("p.toml", POLICY);
        ws
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn file(&self, name: &str, text: &str) -> &Ws {
        std::fs::write(self.path(name), text).unwrap();
        self
    }
    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap()
    }
    async fn store(&self) -> Store {
        Store::open(&stratum_runner::default_database_url(self.dir.path()))
            .await
            .unwrap()
    }
    fn options(&self) -> RunOptions {
        RunOptions {
            as_of: Some("2026-10-31".into()),
            recorded_by: "tester".into(),
            ..Default::default()
        }
    }
    fn quarantine(&self) -> RunOptions {
        RunOptions {
            on_bad_rows: BadRows::Quarantine,
            ..self.options()
        }
    }
    async fn run(&self, store: &Store, options: RunOptions) -> Result<RunOutcome, RunError> {
        let loaded = stratum_runner::load_policy(&self.path("p.toml"))?;
        stratum_runner::run(&loaded, &options, Some(store), &mut Quiet).await
    }
}

async fn run_count(store: &Store) -> usize {
    store.runs(None).await.unwrap().len()
}

#[tokio::test]
async fn a_stray_quote_is_one_bad_line_and_every_other_line_is_read() {
    let ws = Ws::new(200);
    // Line 6 of the customers file (C05) opens a quoted field that never closes.
    let customers = ws
        .read("customers.csv")
        .replace("C05,name 5", "C05,\"name 5");
    ws.file("customers.csv", &customers);
    let store = ws.store().await;
    let outcome = ws.run(&store, ws.quarantine()).await.unwrap();
    let c = &outcome.sources[0];
    assert_eq!(c.name, "customers");
    assert_eq!(
        (c.stats.read, c.stats.accepted, c.stats.rejected),
        (200, 199, 1)
    );
    assert_eq!(outcome.customers, 199);
    let rejects = std::fs::read_to_string(outcome.files.rejects_csv.unwrap()).unwrap();
    assert_eq!(
        rejects,
        "source,file,line,column,reason,record\n\
         customers,customers.csv,6,,row has a quoted field that is never closed (a quote opens a field on this line and no record ends within the next lines),\"C05,\"\"name 5\"\n"
    );
    // In fail mode the same file stops at that line.
    let err = ws.run(&store, ws.options()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "customers.csv:6: row has a quoted field that is never closed (a quote opens a field on this line and no record ends within the next lines)"
    );
    assert_eq!(run_count(&store).await, 1);
}

#[tokio::test]
async fn a_quoted_field_over_two_lines_is_one_row() {
    let ws = Ws::new(3);
    ws.file(
        "customers.csv",
        "customer_id,name\nC01,\"first line\nsecond line\"\nC02,b\nC03,c\n",
    );
    let store = ws.store().await;
    let outcome = ws.run(&store, ws.options()).await.unwrap();
    let c = &outcome.sources[0];
    assert_eq!(
        (c.stats.read, c.stats.accepted, c.stats.rejected),
        (3, 3, 0)
    );
}

#[tokio::test]
async fn more_rejects_than_the_limit_stop_the_run_and_record_nothing() {
    let ws = Ws::new(200);
    let tx = ws
        .read("transactions.csv")
        .replace("C07,2026-10-08,10", "C07,2026-10-08,ten");
    let tx = tx.replace("C09,2026-10-10,10", "C09,2026-10-10,nine");
    let tx = tx.replace("C11,2026-10-12,10", "C11,2026-10-12,x");
    ws.file("transactions.csv", &tx);
    let store = ws.store().await;
    let quarantine = ws.quarantine();
    let err = ws.run(&store, quarantine.clone()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "source `transactions` (transactions.csv): 3 of 200 rows rejected, more than the limit of 1%; \
         the run stops so a mostly unreadable export does not become history (see rejects in the output, \
         or raise `--max-rejects` / `[policy] max_rejects`)"
    );
    assert!(err.is_user_error());
    assert_eq!(run_count(&store).await, 0);
    assert!(!ws.path("out/assignments.csv").exists());
    // A higher limit lets it through, from the flag or the policy.
    let outcome = ws
        .run(
            &store,
            RunOptions {
                guard: GuardOptions {
                    max_rejects: Some(RejectLimit::Rows(3)),
                    ..Default::default()
                },
                ..quarantine.clone()
            },
        )
        .await
        .unwrap();
    assert_eq!(outcome.sources[1].stats.rejected, 3);
    ws.file(
        "p.toml",
        &POLICY.replace(
            "name = \"guards\"",
            "name = \"guards\"\nmax_rejects = \"1.5%\"",
        ),
    );
    ws.run(&store, quarantine).await.unwrap();
    assert_eq!(run_count(&store).await, 2);
}

#[tokio::test]
async fn an_empty_or_shrunken_export_stops_the_run_unless_allowed() {
    let ws = Ws::new(100);
    let store = ws.store().await;
    let full = ws.read("transactions.csv");
    // Cut to its header: no rows at all, even on a first run.
    ws.file("transactions.csv", "customer_id,date,amount\n");
    let err = ws.run(&store, ws.options()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "source `transactions` (transactions.csv) has no rows; the run stops in case the export was cut short. \
         If the data really shrank, run again with `--allow-shrink` (recorded with the run)"
    );
    assert_eq!(run_count(&store).await, 0);

    ws.file("transactions.csv", &full);
    ws.run(&store, ws.options()).await.unwrap();
    // 40 of the 100 rows left: down 60%, more than the default 50%.
    let cut: String = full.lines().take(41).map(|l| format!("{l}\n")).collect();
    ws.file("transactions.csv", &cut);
    let err = ws.run(&store, ws.options()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "source `transactions` (transactions.csv) has 40 rows, 100 at the last recorded run (down more than 50%); \
         the run stops in case the export was cut short. If the data really shrank, run again with \
         `--allow-shrink` (recorded with the run)"
    );
    assert_eq!(run_count(&store).await, 1);
    let outcome = ws
        .run(
            &store,
            RunOptions {
                guard: GuardOptions {
                    allow_shrink: true,
                    ..Default::default()
                },
                ..ws.options()
            },
        )
        .await
        .unwrap();
    assert!(
        outcome.warnings.iter().any(|w| w.code == "shrink_allowed"),
        "{:?}",
        outcome.warnings
    );
    let run = store.run(outcome.run_id.unwrap()).await.unwrap();
    let inputs: serde_json::Value = serde_json::from_str(&run.inputs).unwrap();
    let tx = inputs
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["source"] == "transactions")
        .unwrap();
    assert_eq!(tx["rows"], 40);
    assert_eq!(tx["shrink_allowed"], true);
    // The next run compares with that one (40 rows), so 40 again passes.
    ws.run(&store, ws.options()).await.unwrap();
    assert_eq!(run_count(&store).await, 3);
}

#[tokio::test]
async fn outputs_that_cannot_be_written_record_nothing() {
    let ws = Ws::new(10);
    let store = ws.store().await;
    ws.file("out", "x");
    let err = ws.run(&store, ws.options()).await.unwrap_err();
    assert!(err.to_string().starts_with("cannot write "), "{err}");
    assert_eq!(run_count(&store).await, 0);
}

#[tokio::test]
async fn a_second_run_in_the_same_workspace_is_refused_while_one_runs() {
    let ws = Ws::new(10);
    let store = ws.store().await;
    // Another process holding the workspace's lock (here: this test, by hand).
    let held = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(ws.path(".stratum.lock"))
        .unwrap();
    held.lock().unwrap();
    std::fs::write(
        ws.path(".stratum.lock"),
        "pid 1, policy p.toml, started by someone",
    )
    .unwrap();
    let err = ws.run(&store, ws.options()).await.unwrap_err();
    assert!(
        err.to_string().starts_with(
            "another run is going on in this workspace (pid 1, policy p.toml, started by someone); wait for it to finish (lock "
        ),
        "{err}"
    );
    assert_eq!(run_count(&store).await, 0);
    held.unlock().unwrap();
    ws.run(&store, ws.options()).await.unwrap();
    assert_eq!(run_count(&store).await, 1);
}

#[tokio::test]
async fn a_far_future_or_ancient_as_of_is_refused_and_a_retired_run_is_not_served() {
    let ws = Ws::new(10);
    let store = ws.store().await;
    for date in ["2999-12-31", "1900-01-01"] {
        let err = ws
            .run(
                &store,
                RunOptions {
                    as_of: Some(date.into()),
                    ..ws.options()
                },
            )
            .await
            .unwrap_err();
        assert!(matches!(err, RunError::AsOfOutOfRange { .. }), "{err}");
    }
    assert_eq!(run_count(&store).await, 0);
    let first = ws.run(&store, ws.options()).await.unwrap().run_id.unwrap();
    let future = ws
        .run(
            &store,
            RunOptions {
                as_of: Some("2999-12-31".into()),
                allow_future_as_of: true,
                ..ws.options()
            },
        )
        .await
        .unwrap()
        .run_id
        .unwrap();
    // Served: the run recorded last, not the one dated furthest ahead...
    assert_eq!(store.latest_run_id("guards").await.unwrap(), Some(future));
    let again = ws.run(&store, ws.options()).await.unwrap().run_id.unwrap();
    assert_eq!(store.latest_run_id("guards").await.unwrap(), Some(again));
    // ...and a retired run is neither served nor held from.
    let actor = Actor {
        name: "ops".into(),
        origin: "test".into(),
    };
    store
        .retire_run(again, "typo in the export", &actor)
        .await
        .unwrap();
    assert_eq!(store.latest_run_id("guards").await.unwrap(), Some(future));
    store
        .retire_run(future, "dated ahead", &actor)
        .await
        .unwrap();
    assert_eq!(store.latest_run_id("guards").await.unwrap(), Some(first));
    let next = ws.run(&store, ws.options()).await.unwrap();
    assert_eq!(
        next.previous_run, None,
        "holds continue from no retired run"
    );
    store
        .pin_served_run("guards", Some(first), &actor)
        .await
        .unwrap();
    assert_eq!(store.latest_run_id("guards").await.unwrap(), Some(first));
    let audit: Vec<String> = store
        .audit_log(10)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.action)
        .collect();
    assert_eq!(
        audit[..4],
        ["run.pin", "run.record", "run.retire", "run.retire"]
    );
}

#[tokio::test]
async fn overflowing_and_dividing_metrics_are_reported_not_silently_missing() {
    let ws = Ws::new(3);
    ws.file(
        "transactions.csv",
        "customer_id,date,amount\nC01,2026-10-01,1e308\nC01,2026-10-02,1e308\nC02,2026-10-01,5\n",
    );
    let store = ws.store().await;
    let outcome = ws.run(&store, ws.options()).await.unwrap();
    let warning = outcome
        .warnings
        .iter()
        .find(|w| w.code == "non_finite_metric")
        .expect("a warning");
    assert_eq!(
        warning.message,
        "metric `revenue` is infinite or not a number (an overflow, or a division by zero) for 1 customer (C01); \
         they count as missing (`[policy] non_finite = \"error\"` stops the run instead)"
    );
    let summary = std::fs::read_to_string(&outcome.files.summary_json).unwrap();
    let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(
        summary["non_finite_metrics"],
        serde_json::json!([{"metric": "revenue", "customers": 1, "examples": ["C01"]}])
    );
    // The policy can make it an error.
    ws.file(
        "p.toml",
        &POLICY.replace(
            "name = \"guards\"",
            "name = \"guards\"\nnon_finite = \"error\"",
        ),
    );
    let err = ws.run(&store, ws.options()).await.unwrap_err();
    assert!(
        err.to_string().starts_with("metric `revenue` is infinite"),
        "{err}"
    );
    // An integer division by zero names the metric, as the user's error it is.
    ws.file(
        "p.toml",
        &POLICY.replace("expr = \"sum(amount)\"", "expr = \"count(*) / 0\""),
    );
    let err = ws.run(&store, ws.options()).await.unwrap_err();
    assert!(err.is_user_error());
    assert!(
        err.to_string().starts_with(
            "metric `revenue` (key `metrics.revenue`): divides a whole number by zero for some customer"
        ),
        "{err}"
    );
    assert_eq!(run_count(&store).await, 1);
}

#[tokio::test]
async fn an_overrides_row_for_an_unknown_customer_is_a_reject_in_quarantine() {
    let ws = Ws::new(3);
    ws.file(
        "p.toml",
        &POLICY.replace(
            "name = \"guards\"",
            "name = \"guards\"\noverrides_file = \"overrides.csv\"\nmax_rejects = 5",
        ),
    )
    .file(
        "overrides.csv",
        "customer_id,ladder,level,reason\nC02,value,big,friend\nC99,value,big,typo\n",
    );
    let store = ws.store().await;
    let err = ws.run(&store, ws.options()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "overrides.csv:3: customer `C99` is not in the customers source"
    );
    let outcome = ws.run(&store, ws.quarantine()).await.unwrap();
    let rejects = std::fs::read_to_string(outcome.files.rejects_csv.unwrap()).unwrap();
    assert_eq!(
        rejects,
        "source,file,line,column,reason,record\n\
         overrides_file,overrides.csv,3,customer_id,customer `C99` is not in the customers source,\"C99,value,big\"\n"
    );
    let assignments = std::fs::read_to_string(&outcome.files.assignments_csv).unwrap();
    assert!(assignments.contains("C02,value,big"), "{assignments}");
}

#[tokio::test]
async fn json_lines_with_a_bad_byte_or_a_key_twice_are_bad_rows_with_their_lines() {
    let ws = Ws::new(3);
    let mut bytes = b"{\"customer_id\":\"C01\",\"date\":\"2026-10-01\",\"amount\":150}\n".to_vec();
    bytes
        .extend_from_slice(b"{\"customer_id\":\"C02\",\"date\":\"2026-10-01\",\"amount\":\xff5}\n");
    bytes.extend_from_slice(
        b"{\"customer_id\":\"C03\",\"date\":\"2026-10-01\",\"amount\":5,\"amount\":500}\n",
    );
    std::fs::write(ws.path("transactions.jsonl"), bytes).unwrap();
    ws.file(
        "p.toml",
        &POLICY
            .replace("transactions.csv", "transactions.jsonl")
            .replace("name = \"guards\"", "name = \"guards\"\nmax_rejects = 2"),
    );
    let store = ws.store().await;
    let err = ws.run(&store, ws.options()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "transactions.jsonl:2: row is not valid UTF-8; save the export as UTF-8"
    );
    let outcome = ws.run(&store, ws.quarantine()).await.unwrap();
    let t = &outcome.sources[1];
    assert_eq!(
        (t.stats.read, t.stats.accepted, t.stats.rejected),
        (3, 1, 2)
    );
    let rejects = std::fs::read_to_string(outcome.files.rejects_csv.unwrap()).unwrap();
    assert!(
        rejects.contains(
            "transactions,transactions.jsonl,3,,\"row has the key \"\"amount\"\" twice\""
        ),
        "{rejects}"
    );
}

#[tokio::test]
async fn an_evaluation_over_its_memory_limit_is_a_user_error() {
    let ws = Ws::new(2_000);
    let loaded = stratum_runner::load_policy(&ws.path("p.toml")).unwrap();
    let options = RunOptions {
        memory_limit: Some(4 * 1024),
        ..ws.options()
    };
    let err = stratum_runner::run(&loaded, &options, None, &mut Quiet)
        .await
        .unwrap_err();
    assert!(err.is_user_error(), "{err}");
    assert!(
        err.to_string()
            .starts_with("the evaluation needs more memory than it is allowed here:"),
        "{err}"
    );
    // The same run without the limit goes through.
    stratum_runner::run(&loaded, &ws.options(), None, &mut Quiet)
        .await
        .unwrap();
}

/// `--metrics-csv` (issue 17, point 20): the same columns as metrics.parquet, as CSV.
#[tokio::test]
async fn metrics_can_be_written_as_csv_too() {
    let ws = Ws::new(3);
    let store = ws.store().await;
    let outcome = ws
        .run(
            &store,
            RunOptions {
                metrics_csv: true,
                ..ws.options()
            },
        )
        .await
        .unwrap();
    let path = outcome.files.metrics_csv.expect("metrics.csv");
    assert_eq!(
        std::fs::read_to_string(path).unwrap(),
        "customer_id,tags,revenue\nC01,,150.0\nC02,,10.0\nC03,,10.0\n"
    );
    // Without the flag there is none (and none is left from before).
    let outcome = ws.run(&store, ws.options()).await.unwrap();
    assert!(outcome.files.metrics_csv.is_none());
    assert!(!ws.path("out/metrics.csv").exists());
}

/// A risk ladder (`better = "down"`, issue 17 point 10): leaving the worst level is the
/// upgrade in diffs and reports, and explain says what it takes to improve.
#[tokio::test]
async fn a_risk_ladder_counts_leaving_its_first_level_as_the_upgrade() {
    let ws = Ws::new(3);
    let risk = POLICY
        .replace("[ladders.value]", "[ladders.value]\nbetter = \"down\"")
        .replace(
            "name = \"big\"\nwhen = \"revenue >= 100\"",
            "name = \"late\"\nwhen = \"revenue >= 100\"",
        )
        .replace("name = \"small\"", "name = \"ok\"");
    ws.file("p.toml", &risk);
    let store = ws.store().await;
    // C01 spends 150: late. Then it spends 50: ok, an improvement.
    ws.run(
        &store,
        RunOptions {
            as_of: Some("2026-10-31".into()),
            ..ws.options()
        },
    )
    .await
    .unwrap();
    let tx = ws
        .read("transactions.csv")
        .replace("C01,2026-10-02,150", "C01,2026-10-02,50");
    ws.file("transactions.csv", &tx);
    ws.run(&store, ws.options()).await.unwrap();
    let d = stratum_runner::diff(&store, Some("guards"), None, None, false)
        .await
        .unwrap();
    assert_eq!((d.ladders[0].upgrades, d.ladders[0].downgrades), (1, 0));
    let loaded = stratum_runner::load_policy(&ws.path("p.toml")).unwrap();
    let tx = ws
        .read("transactions.csv")
        .replace("C01,2026-10-02,50", "C01,2026-10-02,150");
    ws.file("transactions.csv", &tx);
    let (_, ex) = stratum_runner::explain(&loaded, &ws.options(), None, "C01")
        .await
        .unwrap();
    assert_eq!(
        ex.placements[0].next,
        "to improve to ok, stop meeting late's rule: revenue >= 100"
    );
}

/// A transaction log alone is enough (issue 17, point 12): the customers are its distinct
/// keys, with `first_seen` and `last_seen`.
#[tokio::test]
async fn customers_can_be_derived_from_an_event_source() {
    let ws = Ws::new(3);
    std::fs::remove_file(ws.path("customers.csv")).unwrap();
    ws.file(
        "transactions.csv",
        "customer_id,date,amount\nC01,2026-10-01,150\nC01,2026-10-20,10\nC02,2026-09-05,20\n",
    );
    let derived = POLICY
        .replace(
            "[sources.customers]\npath = \"customers.csv\"\nkey = \"customer_id\"",
            "[sources.customers]\nfrom = \"transactions\"\nkey = \"customer_id\"",
        )
        .replace(
            "[ladders.value]",
            "[metrics.first_seen]\nsource = \"customers\"\nexpr = \"first_seen\"\n\n[ladders.value]",
        );
    ws.file("p.toml", &derived);
    let store = ws.store().await;
    let outcome = ws.run(&store, ws.options()).await.unwrap();
    assert_eq!(outcome.customers, 2);
    let c = &outcome
        .sources
        .iter()
        .find(|s| s.name == "customers")
        .unwrap();
    assert_eq!(c.file, "(distinct customer_id of transactions.csv)");
    assert_eq!(c.stats.accepted, 2);
    let assignments = std::fs::read_to_string(&outcome.files.assignments_csv).unwrap();
    assert!(assignments.contains("C01,value,big"), "{assignments}");
    assert!(assignments.contains("C02,value,small"), "{assignments}");
    let metrics = stratum_store::Store::open(&stratum_runner::default_database_url(ws.dir.path()))
        .await
        .unwrap()
        .metrics_of(outcome.run_id.unwrap(), "C01")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(metrics[1].0, "first_seen");
    // Only the customers source can be derived, and only from an event source.
    let wrong = derived.replace("from = \"transactions\"", "from = \"customers\"");
    ws.file("p.toml", &wrong);
    let err = ws.run(&store, ws.options()).await.unwrap_err().to_string();
    assert!(
        err.contains("`customers` is not an event source (a source with a `time` column)"),
        "{err}"
    );
}
