//! The store on both databases: schema and migrations, an all-or-nothing run, overrides with
//! expiry, inputs and tags with their audit trail. Each case runs on a fresh SQLite file and
//! on a fresh PostgreSQL database.

use chrono::NaiveDate;
use stratum_core::Standing;
use stratum_store::{Actor, AssignmentRow, NewOverride, NewRun, Store, testing};

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn actor() -> Actor {
    Actor {
        name: "li.wei".into(),
        origin: "test".into(),
    }
}

fn new_run(as_of: &str) -> NewRun {
    NewRun {
        policy_name: "p".into(),
        policy_file: "p.toml".into(),
        policy_text: "[policy]\nname = \"p\"\n".into(),
        as_of: d(as_of),
        started_at: "2026-11-24T00:00:00Z".into(),
        customers: 3,
        inputs: "[]".into(),
        recorded_by: "tester".into(),
        facts: vec![stratum_store::CustomerFacts {
            customer_id: "C1".into(),
            owner: Some("agent.wang".into()),
            tags: "blacklist".into(),
        }],
        summaries: Vec::new(),
    }
}

fn row<'a>(customer: &'a str, level: &'a str) -> AssignmentRow<'a> {
    AssignmentRow {
        ladder: "tier",
        customer_id: customer,
        level,
        rule_level: level,
        score: Some(1.5),
        rank: Some(1),
        value: Some(10.0),
        activity: Some(2.0),
        state: Some(Standing {
            level,
            since: d("2026-01-31"),
            last_qualified: d("2026-01-31"),
            below_runs: 0,
            below_since: None,
            above_runs: 0,
        }),
        explanation: "because",
    }
}

async fn schema_is_created_and_reported(url: String) {
    let store = Store::open(&url).await.unwrap();
    let status = store.schema_status().await.unwrap();
    assert_eq!(status.applied, vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    assert!(status.pending.is_empty());
    assert!(
        store.migrate().await.unwrap().is_empty(),
        "nothing left to apply"
    );
    // Opening again finds the schema current.
    let again = Store::open(&url).await.unwrap();
    assert_eq!(
        again.schema_status().await.unwrap().applied,
        vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    );
}

async fn a_failed_run_leaves_nothing(url: String) {
    let store = Store::open(&url).await.unwrap();
    let good = [row("A", "gold"), row("B", "silver")];
    let first = store
        .record_run(&new_run("2026-01-31"), &good, &mut |_| {})
        .await
        .unwrap();
    // 2,500 rows, the last one a duplicate key. Rows go in key order, and "C999" sorts last
    // of C0..C2498, so the insert fails after two full batches went in.
    let ids: Vec<String> = (0..2499).map(|i| format!("C{i}")).collect();
    let mut rows: Vec<AssignmentRow> = ids.iter().map(|id| row(id, "gold")).collect();
    rows.push(row("C999", "gold"));
    let mut batches = 0;
    let err = store
        .record_run(&new_run("2026-02-28"), &rows, &mut |_| batches += 1)
        .await
        .unwrap_err();
    assert!(!err.is_user_error(), "{err}");
    assert_eq!(batches, 2, "two batches were written before the failure");
    let runs = store.runs(None).await.unwrap();
    assert_eq!(runs.len(), 1, "no half run is visible");
    assert_eq!(runs[0].id, first);
    assert_eq!(store.levels(first).await.unwrap().len(), 2);
    let states = store.states(first).await.unwrap();
    assert_eq!(states["tier"]["B"].level, "silver");
    // The next run goes in cleanly.
    let second = store
        .record_run(&new_run("2026-02-28"), &good[..1], &mut |_| {})
        .await
        .unwrap();
    assert!(second > first);
    assert_eq!(
        store
            .previous_run("p", d("2026-02-28"))
            .await
            .unwrap()
            .unwrap()
            .id,
        first
    );
    assert!(
        store
            .previous_run("p", d("2026-01-31"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        store.run(9999).await.unwrap_err(),
        stratum_store::StoreError::NotFound(_)
    ));
}

async fn overrides_inputs_and_tags_are_audited(url: String) {
    let store = Store::open(&url).await.unwrap();
    let id = store
        .add_override(
            &NewOverride {
                customer_id: "C9".into(),
                ladder: "tier".into(),
                level: "gold".into(),
                mode: stratum_core::OverrideMode::Floor,
                reason: "strategic account".into(),
                until: Some(d("2026-03-31")),
            },
            &actor(),
        )
        .await
        .unwrap();
    // A mode is a type now: an unknown one is refused where it is read (CLI, API, policy).
    let bad = "sometimes"
        .parse::<stratum_core::OverrideMode>()
        .unwrap_err();
    assert!(bad.contains("pin, floor or ceiling"), "{bad}");
    let o = &store.overrides().await.unwrap()[0];
    assert_eq!(
        (o.id, o.mode.as_str(), o.until),
        (id, "floor", Some(d("2026-03-31")))
    );
    assert!(o.active_on(d("2026-03-31")));
    assert!(
        !o.active_on(d("2026-04-01")),
        "expired the day after `until`"
    );
    store
        .remove_override(id, "account lost", &actor())
        .await
        .unwrap();
    assert!(!store.overrides().await.unwrap()[0].active_on(d("2026-01-01")));
    assert!(
        store
            .remove_override(id, "again", &actor())
            .await
            .unwrap_err()
            .is_user_error()
    );

    store
        .set_input("C9", "relationship_top", "15", "met the CEO", &actor())
        .await
        .unwrap();
    store
        .set_input("C9", "relationship_top", "18", "second meeting", &actor())
        .await
        .unwrap();
    let inputs = store.inputs().await.unwrap();
    assert_eq!(inputs.len(), 1);
    assert_eq!(inputs[0].value, "18");
    // Setting the value it has already changes nothing and is not audited as a change.
    let audited = store.audit_log(1000).await.unwrap().len();
    assert!(
        !store
            .set_input("C9", "relationship_top", "18", "again", &actor())
            .await
            .unwrap()
    );
    assert_eq!(store.audit_log(1000).await.unwrap().len(), audited);
    assert_eq!(store.inputs().await.unwrap()[0].reason, "second meeting");
    store
        .add_tag("C9", "blacklist", "chargebacks", &actor())
        .await
        .unwrap();
    assert!(
        store
            .add_tag("C9", "blacklist", "again", &actor())
            .await
            .is_err()
    );
    assert_eq!(store.tags().await.unwrap()[0].tag, "blacklist");
    store
        .remove_tag("C9", "blacklist", "cleared", &actor())
        .await
        .unwrap();
    assert!(store.tags().await.unwrap().is_empty());
    assert!(
        store
            .set_input("C9", "x", "1", "  ", &actor())
            .await
            .unwrap_err()
            .to_string()
            .contains("reason must not be empty")
    );

    // Narrowed by action kind, subject and day.
    let overrides = store
        .audit_search(
            &stratum_store::AuditFilter {
                action: Some("override".into()),
                ..Default::default()
            },
            100,
        )
        .await
        .unwrap();
    assert!(!overrides.is_empty());
    assert!(overrides.iter().all(|a| a.action.starts_with("override.")));
    let c9 = store
        .audit_search(
            &stratum_store::AuditFilter {
                subject: Some("C9".into()),
                action: Some("input.set".into()),
                since: Some(chrono::Utc::now().date_naive()),
                until: Some(chrono::Utc::now().date_naive()),
                ..Default::default()
            },
            100,
        )
        .await
        .unwrap();
    assert_eq!(c9.len(), 2, "{c9:?}");
    let none = store
        .audit_search(
            &stratum_store::AuditFilter {
                actor: Some("nobody".into()),
                ..Default::default()
            },
            100,
        )
        .await
        .unwrap();
    assert!(none.is_empty());
    let log = store.audit_log(100).await.unwrap();
    let actions: Vec<&str> = log.iter().rev().map(|a| a.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "override.add",
            "override.remove",
            "input.set",
            "input.set",
            "tag.add",
            "tag.remove"
        ]
    );
    assert!(
        log.iter()
            .all(|a| a.actor == "li.wei" && a.origin == "test")
    );
    assert_eq!(
        log[2].detail, "relationship_top: 15 -> 18: second meeting",
        "the change keeps the old value"
    );
}

/// The API's in-memory lookup is built from `run_standings`: every value must come back
/// exactly as recorded (scores to the last bit, missing scores and ranks as missing).
async fn standings_come_back_exactly_in_bulk(url: String) {
    let store = Store::open(&url).await.unwrap();
    let mut a = row("A", "gold");
    a.score = Some(0.1 + 0.2);
    a.rank = Some(7);
    let mut b = row("B", "silver");
    b.score = None;
    b.rank = None;
    let mut c = row("C1", "silver");
    c.score = Some(-1_234_567.891_011_121_2);
    // And 500 awkward reals.
    let real = |i: usize| ((i * 7919 + 1) as f64).ln() / 3.0 + i as f64 * 1e-9 - 1e3;
    let ids: Vec<String> = (0..500).map(|i| format!("D{i:03}")).collect();
    let mut rows = vec![a, b, c];
    for (i, id) in ids.iter().enumerate() {
        let mut r = row(id, "bronze");
        r.score = Some(real(i));
        rows.push(r);
    }
    let id = store
        .record_run(&new_run("2026-01-31"), &rows, &mut |_| {})
        .await
        .unwrap();
    let got = store.run_standings(id).await.unwrap();
    let (bulk, mut rows): (Vec<_>, Vec<_>) =
        got.rows.into_iter().partition(|r| r.level == "bronze");
    for r in bulk {
        let i: usize = r.customer_id[1..].parse().unwrap();
        assert_eq!(r.score.map(f64::to_bits), Some(real(i).to_bits()), "{r:?}");
    }
    assert_eq!(got.run.id, id);
    rows.sort_by(|x, y| x.customer_id.cmp(&y.customer_id));
    let want = |customer: &str, level: &str, score: Option<f64>, rank: Option<i64>| {
        stratum_store::StandingRow {
            ladder: "tier".into(),
            customer_id: customer.into(),
            level: level.into(),
            score,
            rank,
        }
    };
    assert_eq!(
        rows,
        vec![
            want("A", "gold", Some(0.1 + 0.2), Some(7)),
            want("B", "silver", None, None),
            want("C1", "silver", Some(-1_234_567.891_011_121_2), Some(1)),
        ]
    );
    assert_eq!(
        got.owners,
        vec![("C1".to_string(), "agent.wang".to_string())]
    );
}

/// Many customers' tags at once (the queue, the SLA report): the recorded run's, from the
/// data, and the store's, each customer once.
async fn tags_of_many_customers_at_once(url: String) {
    let store = Store::open(&url).await.unwrap();
    store
        .add_tag("C9", "blacklist", "chargebacks", &actor())
        .await
        .unwrap();
    store
        .add_tag("C1", "vip_watch", "board member", &actor())
        .await
        .unwrap();
    // Many customers' tags at once: the recorded run's (from the data) and the store's.
    store
        .record_run(&new_run("2026-01-31"), &[row("C1", "gold")], &mut |_| {})
        .await
        .unwrap();
    let many = store
        .tags_of_many("p", &["C1", "C9", "C2", "C9"])
        .await
        .unwrap();
    assert_eq!(
        many.into_iter()
            .collect::<std::collections::BTreeMap<_, _>>(),
        [
            (
                "C1".to_string(),
                vec!["blacklist".to_string(), "vip_watch".to_string()]
            ),
            ("C9".to_string(), vec!["blacklist".to_string()]),
        ]
        .into()
    );
    assert_eq!(store.tags_of("p", "C9").await.unwrap(), ["blacklist"]);
}

/// A policy's customer facts are those of its latest run that recorded any: a run without
/// `[service]` keeps the earlier facts, a later run with facts replaces them all (a customer
/// gone from the data has no owner any more). Spread over several chunks.
async fn facts_come_from_the_latest_run_that_recorded_any(url: String) {
    let store = Store::open(&url).await.unwrap();
    let facts =
        |owner: &str, customers: std::ops::Range<usize>| -> Vec<stratum_store::CustomerFacts> {
            customers
                .map(|i| stratum_store::CustomerFacts {
                    customer_id: format!("C{i}"),
                    owner: (i % 7 != 0).then(|| format!("{owner}{}", i % 3)),
                    tags: if i % 5 == 0 {
                        "vip,new".into()
                    } else {
                        String::new()
                    },
                })
                .collect()
        };
    let record = |facts: Vec<stratum_store::CustomerFacts>, as_of: &str| {
        let run = NewRun {
            facts,
            ..new_run(as_of)
        };
        let store = &store;
        async move {
            store
                .record_run(&run, &[row("C1", "gold")], &mut |_| {})
                .await
                .unwrap()
        }
    };
    record(facts("wang", 0..2500), "2026-01-31").await;
    record(Vec::new(), "2026-02-28").await;
    assert_eq!(
        store.owner_of("p", "C1").await.unwrap().as_deref(),
        Some("wang1")
    );
    assert_eq!(
        store.owner_of("p", "C2402").await.unwrap().as_deref(),
        Some("wang2")
    );
    assert_eq!(
        store.owner_of("p", "C2498").await.unwrap().as_deref(),
        Some("wang2")
    );
    assert_eq!(store.owner_of("p", "C14").await.unwrap(), None);
    assert_eq!(store.owner_of("p", "C2500").await.unwrap(), None);
    assert_eq!(store.owner_of("p", "A").await.unwrap(), None);
    assert_eq!(store.owner_of("p", "D").await.unwrap(), None);
    assert_eq!(store.tags_of("p", "C1995").await.unwrap(), ["new", "vip"]);
    assert_eq!(
        store.owner_and_tags_of("p", "C1000").await.unwrap(),
        (
            Some("wang1".to_string()),
            vec!["new".to_string(), "vip".to_string()]
        )
    );
    assert_eq!(
        store.owner_and_tags_of("p", "nobody").await.unwrap(),
        (None, Vec::new())
    );
    let tagged = store.data_tags("p").await.unwrap();
    assert_eq!(tagged.len(), 500);
    assert_eq!(tagged[0], ("C0".to_string(), "vip,new".to_string()));
    assert!(tagged.windows(2).all(|w| w[0].0 < w[1].0), "in id order");
    let many = store
        .tags_of_many("p", &["C2495", "C5", "C6", "C1000", "nobody"])
        .await
        .unwrap();
    assert_eq!(
        many.into_iter()
            .collect::<std::collections::BTreeMap<_, _>>(),
        [
            (
                "C1000".to_string(),
                vec!["new".to_string(), "vip".to_string()]
            ),
            (
                "C2495".to_string(),
                vec!["new".to_string(), "vip".to_string()]
            ),
            ("C5".to_string(), vec!["new".to_string(), "vip".to_string()]),
        ]
        .into()
    );
    let third = record(facts("zhao", 1000..1200), "2026-03-31").await;
    assert_eq!(store.owner_of("p", "C1").await.unwrap(), None);
    assert_eq!(
        store.owner_of("p", "C1003").await.unwrap().as_deref(),
        Some("zhao1")
    );
    assert_eq!(store.data_tags("p").await.unwrap().len(), 40);
    let standings = store.run_standings(third).await.unwrap();
    // 29 of the 200 (multiples of 7) have no owner.
    assert_eq!(standings.owners.len(), 171);
    assert_eq!(
        standings.owners[0],
        ("C1000".to_string(), "zhao1".to_string())
    );
    assert_eq!(standings.tags.len(), 40);
}

/// Streamed rows must come in the store's order; a row out of order fails the run, which
/// leaves nothing behind.
async fn streamed_rows_out_of_order_record_nothing(url: String) {
    let store = Store::open(&url).await.unwrap();
    let rows = [row("C2", "gold"), row("C10", "silver")];
    let err = store
        .record_run_if(
            &new_run("2026-01-31"),
            rows.iter().cloned(),
            &mut |_| {},
            async { Ok(None) },
            async { Ok(()) },
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "internal error: rows out of order: ladder tier customer C10 after ladder tier customer C2"
    );
    assert!(store.runs(None).await.unwrap().is_empty());
    assert_eq!(store.owner_of("p", "C1").await.unwrap(), None);
}

stratum_store::on_both!(
    streamed_rows_out_of_order_record_nothing,
    facts_come_from_the_latest_run_that_recorded_any,
    tags_of_many_customers_at_once,
    standings_come_back_exactly_in_bulk,
    schema_is_created_and_reported,
    a_failed_run_leaves_nothing,
    overrides_inputs_and_tags_are_audited,
);

#[tokio::test]
async fn a_new_sqlite_file_is_created_on_first_use() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fresh.db");
    let store = Store::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    assert!(path.exists());
    assert!(store.runs(None).await.unwrap().is_empty());
    // An explicit mode is kept: read-write only does not create.
    let missing = dir.path().join("missing.db");
    let err = Store::open(&format!("sqlite://{}?mode=rw", missing.display()))
        .await
        .unwrap_err();
    assert!(err.is_user_error(), "{err}");
    assert!(!missing.exists());
}

#[tokio::test]
async fn bad_urls_are_user_errors() {
    let err = Store::open("mysql://x").await.unwrap_err();
    assert!(err.is_user_error());
    assert!(err.to_string().contains("sqlite: or postgres://"), "{err}");
    let _ = testing::postgres_admin_url;
}
