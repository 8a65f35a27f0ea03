//! The pipeline's state in the store: logging contacts moves prospects, class changes are
//! kept with who, when, from, to and why, and bad logs change nothing.

use chrono::{NaiveDate, TimeZone, Utc};
use stratum_core::pipeline::{Channel, Intent, Outcome};
use stratum_store::{Actor, NewInteraction, Store, StoreError};

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn lin() -> Actor {
    Actor {
        name: "lin".into(),
        origin: "test".into(),
    }
}

fn contact(customer: &str, on: &str) -> NewInteraction {
    NewInteraction {
        customer_id: customer.into(),
        rep: "lin".into(),
        on: d(on),
        at: Utc.with_ymd_and_hms(2026, 10, 12, 2, 30, 0).unwrap(),
        channel: Channel::Call,
        outcome: Outcome::Reached,
        intent: None,
        class: None,
        next_contact: None,
        notes: String::new(),
    }
}

async fn contacts_move_prospects_and_keep_class_changes(url: String) {
    let store = Store::open(&url).await.unwrap();
    // New to the pipeline without a class: refused, nothing written.
    let refused = store
        .log_interaction(&contact("C1", "2026-10-12"), &lin())
        .await;
    assert!(
        matches!(&refused, Err(StoreError::Invalid(m)) if m == "customer C1 is new to the pipeline: give the class the contact put it in"),
        "{refused:?}"
    );
    assert!(store.interactions_of("C1").await.unwrap().is_empty());
    // First contact: class 0.
    let first = NewInteraction {
        class: Some("0".into()),
        ..contact("C1", "2026-10-12")
    };
    let row = store.log_interaction(&first, &lin()).await.unwrap();
    assert_eq!(
        (row.channel.as_str(), row.outcome.as_str()),
        ("call", "reached")
    );
    let p = store.prospect("C1").await.unwrap().unwrap();
    assert_eq!(
        (
            p.class.as_str(),
            p.class_since,
            p.last_contact,
            p.next_contact,
            p.intent
        ),
        ("0", d("2026-10-12"), Some(d("2026-10-12")), None, None)
    );
    // A later contact: key person reached, good intent, class 2, call again on the 15th.
    let second = NewInteraction {
        class: Some("2".into()),
        intent: Some(Intent::Good),
        next_contact: Some(d("2026-10-15")),
        notes: "KP willing, wants the price list".into(),
        ..contact("C1", "2026-10-13")
    };
    store.log_interaction(&second, &lin()).await.unwrap();
    // A no-answer keeps class and intent, clears the set date (the cycle decides).
    let third = NewInteraction {
        outcome: Outcome::NoAnswer,
        ..contact("C1", "2026-10-15")
    };
    store.log_interaction(&third, &lin()).await.unwrap();
    let p = store.prospect("C1").await.unwrap().unwrap();
    assert_eq!(
        (
            p.class.as_str(),
            p.class_since,
            p.last_contact,
            p.next_contact,
            p.intent
        ),
        (
            "2",
            d("2026-10-13"),
            Some(d("2026-10-15")),
            None,
            Some(Intent::Good)
        )
    );
    let changes: Vec<(Option<String>, String, NaiveDate, String)> = store
        .class_changes_of("C1")
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.from_class, c.to_class, c.on_date, c.reason))
        .collect();
    assert_eq!(
        changes,
        [
            (
                None,
                "0".to_string(),
                d("2026-10-12"),
                "call reached".to_string()
            ),
            (
                Some("0".to_string()),
                "2".to_string(),
                d("2026-10-13"),
                "KP willing, wants the price list".to_string()
            ),
        ]
    );
    let logged = store.interactions_of("C1").await.unwrap();
    assert_eq!(logged.len(), 3);
    assert_eq!(logged[0].outcome, "no_answer", "the latest first");
    let week = store
        .interactions_between(d("2026-10-13"), d("2026-10-15"))
        .await
        .unwrap();
    assert_eq!(week.len(), 2);
    // A next date before the contact is refused and changes nothing.
    let backwards = NewInteraction {
        next_contact: Some(d("2026-10-01")),
        ..contact("C1", "2026-10-16")
    };
    let refused = store.log_interaction(&backwards, &lin()).await;
    assert!(
        matches!(refused, Err(StoreError::Invalid(_))),
        "{refused:?}"
    );
    assert_eq!(store.interactions_of("C1").await.unwrap().len(), 3);
    let audit: Vec<String> = store
        .audit_log(10)
        .await
        .unwrap()
        .into_iter()
        .map(|a| format!("{} {} {}", a.actor, a.action, a.detail))
        .collect();
    assert!(
        audit.contains(&"lin interaction.add #2 call reached, class 0 → 2".to_string()),
        "{audit:?}"
    );
}

async fn assignments_own_customers_and_hand_prospects_over(url: String) {
    use stratum_store::{AppliedAssignments, Handover};
    let store = Store::open(&url).await.unwrap();
    for c in ["C1", "C3"] {
        let first = NewInteraction {
            class: Some("0".into()),
            ..contact(c, "2026-10-12")
        };
        store.log_interaction(&first, &lin()).await.unwrap();
    }
    let to = |c: &str, m: &str| Handover {
        customer_id: c.into(),
        to: m.into(),
        reason: "assigned: new".into(),
    };
    assert_eq!(store.assignments_version("p").await.unwrap(), None);
    let applied = store
        .apply_assignments(
            "p",
            &[to("C1", "km01"), to("C2", "km02")],
            d("2026-11-02"),
            &lin(),
        )
        .await
        .unwrap();
    assert_eq!(
        applied,
        AppliedAssignments {
            assigned: 2,
            released: 0,
            prospects_moved: 1
        }
    );
    let first_version = store.assignments_version("p").await.unwrap();
    assert!(first_version.is_some());
    assert_eq!(store.assignments_version("other").await.unwrap(), None);
    assert_eq!(
        store.owner_of("p", "C1").await.unwrap().as_deref(),
        Some("km01")
    );
    assert_eq!(store.owner_of("other", "C1").await.unwrap(), None);
    // The prospect follows its manager, due with them the day of the handover.
    let p = store.prospect("C1").await.unwrap().unwrap();
    assert_eq!(
        (p.rep.as_str(), p.next_contact),
        ("km01", Some(d("2026-11-02")))
    );
    let changes = store.rep_changes_of("C1").await.unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(
        (
            changes[0].from_rep.as_str(),
            changes[0].to_rep.as_str(),
            changes[0].on_date,
            changes[0].changed_by.as_str(),
            changes[0].reason.as_str()
        ),
        ("lin", "km01", d("2026-11-02"), "lin", "assigned: new")
    );
    // The same set again changes nothing.
    let again = store
        .apply_assignments(
            "p",
            &[to("C1", "km01"), to("C2", "km02")],
            d("2026-11-03"),
            &lin(),
        )
        .await
        .unwrap();
    assert_eq!(again, AppliedAssignments::default());
    assert_ne!(store.assignments_version("p").await.unwrap(), first_version);
    // C1 leaves the levels, C2 changes manager.
    let next = store
        .apply_assignments("p", &[to("C2", "km01")], d("2026-11-04"), &lin())
        .await
        .unwrap();
    assert_eq!(
        next,
        AppliedAssignments {
            assigned: 1,
            released: 1,
            prospects_moved: 0
        }
    );
    assert_eq!(store.owner_of("p", "C1").await.unwrap(), None);
    let now: Vec<(String, String)> = store
        .manager_assignments("p")
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.customer_id, a.manager))
        .collect();
    assert_eq!(now, [("C2".to_string(), "km01".to_string())]);
    // A handover from the pool; a contact by someone else leaves the prospect with its rep.
    assert_eq!(
        store
            .hand_prospects(&[to("C3", "ana"), to("C9", "ana")], d("2026-11-05"), &lin())
            .await
            .unwrap(),
        1,
        "C9 is not in the pipeline"
    );
    assert_eq!(
        store
            .hand_prospects(&[to("C3", "ana")], d("2026-11-05"), &lin())
            .await
            .unwrap(),
        0
    );
    let by_bo = NewInteraction {
        rep: "bo".into(),
        ..contact("C3", "2026-11-06")
    };
    store.log_interaction(&by_bo, &lin()).await.unwrap();
    assert_eq!(store.prospect("C3").await.unwrap().unwrap().rep, "ana");
    let audit: Vec<String> = store
        .audit_log(20)
        .await
        .unwrap()
        .into_iter()
        .map(|a| format!("{} {} {}", a.action, a.subject, a.detail))
        .collect();
    assert!(
        audit.contains(
            &"assignment.apply p 1 assigned, 1 released, 0 prospects handed over".to_string()
        ),
        "{audit:?}"
    );
    assert!(audit.contains(&"prospect.handover pipeline 1 prospects handed over".to_string()));
}

/// A register logged in one go leaves the pipeline as logging it contact by contact does
/// (in batches: more contacts than one statement takes).
async fn bulk_logging_matches_one_by_one(url: String) {
    // The backend under test logs in bulk; SQLite one by one is the reference.
    let bulk = Store::open(&url).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let one = Store::open(&stratum_store::testing::sqlite_in(dir.path()))
        .await
        .unwrap();
    let mut register: Vec<NewInteraction> = Vec::new();
    for i in 0..1100 {
        register.push(NewInteraction {
            class: Some(["0", "1", "4"][i % 3].into()),
            intent: (i % 4 == 0).then_some(Intent::Good),
            ..contact(&format!("C{i:04}"), "2026-10-09")
        });
    }
    // Later contacts: a class change, a set date, one by another rep, one without a class.
    register.push(NewInteraction {
        class: Some("2".into()),
        next_contact: Some(d("2026-10-20")),
        notes: "wants a quote".into(),
        ..contact("C0001", "2026-10-12")
    });
    register.push(NewInteraction {
        rep: "bo".into(),
        outcome: Outcome::NoAnswer,
        ..contact("C0002", "2026-10-13")
    });
    register.push(contact("C0001", "2026-10-14"));
    for new in &register {
        one.log_interaction(new, &lin()).await.unwrap();
    }
    assert_eq!(
        bulk.log_interactions(&register, &lin()).await.unwrap(),
        1103
    );
    let prospects = |s: Vec<stratum_store::ProspectRow>| -> Vec<_> {
        s.into_iter()
            .map(|p| {
                (
                    p.customer_id,
                    p.rep,
                    p.class,
                    p.class_since,
                    p.last_contact,
                    p.next_contact,
                    p.intent,
                )
            })
            .collect()
    };
    assert_eq!(
        prospects(bulk.prospects().await.unwrap()),
        prospects(one.prospects().await.unwrap())
    );
    for c in ["C0001", "C0002", "C1099"] {
        let strip = |rows: Vec<stratum_store::InteractionRow>| -> Vec<_> {
            rows.into_iter()
                .map(|r| {
                    (
                        r.on_date,
                        r.rep,
                        r.outcome,
                        r.class,
                        r.next_contact,
                        r.notes,
                    )
                })
                .collect()
        };
        assert_eq!(
            strip(bulk.interactions_of(c).await.unwrap()),
            strip(one.interactions_of(c).await.unwrap())
        );
        assert_eq!(
            bulk.class_changes_of(c).await.unwrap(),
            one.class_changes_of(c).await.unwrap()
        );
    }
    assert_eq!(bulk.all_class_changes().await.unwrap().len(), 1101);
    let audit = bulk.audit_log(5).await.unwrap();
    assert_eq!(
        (audit[0].action.as_str(), audit[0].detail.as_str()),
        (
            "interaction.import",
            "1103 contacts of 1100 customers, 1101 class changes"
        )
    );
    // A bad contact anywhere: nothing is logged.
    let other = tempfile::tempdir().unwrap();
    let fresh = Store::open(&stratum_store::testing::sqlite_in(other.path()))
        .await
        .unwrap();
    let mut bad = register.clone();
    bad.push(contact("C9999", "2026-10-14"));
    assert!(matches!(
        fresh.log_interactions(&bad, &lin()).await,
        Err(StoreError::Invalid(m)) if m.contains("C9999 is new to the pipeline")
    ));
    assert!(fresh.prospects().await.unwrap().is_empty());
}

stratum_store::on_both!(
    bulk_logging_matches_one_by_one,
    contacts_move_prospects_and_keep_class_changes,
    assignments_own_customers_and_hand_prospects_over
);
