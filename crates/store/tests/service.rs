//! The redemption ledger on both databases: 64 concurrent clients racing for the last unit
//! of a quota, idempotent retries (also concurrent), cancellation restoring the quota, a
//! period rollover at local midnight in Asia/Shanghai, users and keys, call-backs.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use stratum_core::QuotaPeriod;
use stratum_store::{Actor, NewRedemption, Role, Store, StoreError};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn agent() -> Actor {
    Actor {
        name: "agent.wang".into(),
        origin: "test".into(),
    }
}

/// A yearly benefit (free SIM replacement) for a gold customer: quota 2 per calendar year.
fn sim(customer: &str, at: &str, key: Option<&str>, quota: Option<u32>) -> NewRedemption {
    let at = t(at);
    NewRedemption {
        customer_id: customer.into(),
        benefit: "sim_replacement".into(),
        quantity: 1,
        level: "gold".into(),
        idempotency_key: key.map(str::to_string),
        at,
        window: QuotaPeriod::Year.window(at, chrono_tz::Asia::Shanghai),
        quota,
        grant_hours: None,
    }
}

async fn sixty_four_clients_never_exceed_the_quota(url: String) {
    let store = Arc::new(Store::open(&url).await.unwrap());
    // Two of three units used: the 64 clients race for the last one.
    for _ in 0..2 {
        store
            .redeem(&sim("C1", "2026-03-01T08:00:00Z", None, Some(3)), &agent())
            .await
            .unwrap();
    }
    let mut clients = Vec::new();
    for i in 0..64 {
        let store = store.clone();
        clients.push(tokio::spawn(async move {
            let key = format!("race-{i}");
            store
                .redeem(
                    &sim("C1", "2026-03-02T08:00:00Z", Some(&key), Some(3)),
                    &agent(),
                )
                .await
        }));
    }
    let (mut won, mut refused) = (0, 0);
    for c in clients {
        match c.await.unwrap() {
            Ok(r) => {
                assert_eq!(r.used, 3);
                won += 1;
            }
            Err(StoreError::QuotaExceeded { used, quota, .. }) => {
                assert_eq!((used, quota), (3, 3));
                refused += 1;
            }
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!((won, refused), (1, 63));
    let window = QuotaPeriod::Year.window(t("2026-03-02T08:00:00Z"), chrono_tz::Asia::Shanghai);
    assert_eq!(
        store.usage("C1", "sim_replacement", window).await.unwrap(),
        3
    );
    assert_eq!(store.redemptions("C1").await.unwrap().len(), 3);

    // From an empty quota of 10, exactly 10 of 64 win.
    let mut clients = Vec::new();
    for _ in 0..64 {
        let store = store.clone();
        clients.push(tokio::spawn(async move {
            store
                .redeem(&sim("C2", "2026-03-02T08:00:00Z", None, Some(10)), &agent())
                .await
        }));
    }
    let mut won = 0;
    for c in clients {
        if c.await.unwrap().is_ok() {
            won += 1;
        }
    }
    assert_eq!(won, 10);
    assert_eq!(
        store.usage("C2", "sim_replacement", window).await.unwrap(),
        10
    );
}

async fn retries_with_the_same_key_count_once(url: String) {
    let store = Arc::new(Store::open(&url).await.unwrap());
    let first = store
        .redeem(
            &sim("C1", "2026-03-01T08:00:00Z", Some("k-1"), Some(2)),
            &agent(),
        )
        .await
        .unwrap();
    assert!(!first.replayed);
    let again = store
        .redeem(
            &sim("C1", "2026-03-01T08:00:05Z", Some("k-1"), Some(2)),
            &agent(),
        )
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(again.redemption.id, first.redemption.id);
    assert_eq!(again.used, 1);

    // Sixteen concurrent retries of one new request: one redemption.
    let mut clients = Vec::new();
    for _ in 0..16 {
        let store = store.clone();
        clients.push(tokio::spawn(async move {
            store
                .redeem(
                    &sim("C1", "2026-03-01T09:00:00Z", Some("k-2"), Some(2)),
                    &agent(),
                )
                .await
                .unwrap()
        }));
    }
    let mut ids = Vec::new();
    for c in clients {
        ids.push(c.await.unwrap().redemption.id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(store.redemptions("C1").await.unwrap().len(), 2);

    // The key reused for another customer is refused, and nothing is written.
    let err = store
        .redeem(
            &sim("C9", "2026-03-01T08:00:00Z", Some("k-1"), Some(2)),
            &agent(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::IdempotencyConflict(_)), "{err}");
    assert!(store.redemptions("C9").await.unwrap().is_empty());
}

/// One key sent for sixteen different customers at the same moment: one redemption, and
/// fifteen `IdempotencyConflict`s (the requests do not share a lock row, so the key's unique
/// index decides; that must not surface as a database fault).
async fn one_key_for_many_customers_at_once_is_a_conflict_not_a_fault(url: String) {
    let store = Arc::new(Store::open(&url).await.unwrap());
    let start = Arc::new(tokio::sync::Barrier::new(16));
    let mut clients = Vec::new();
    for i in 0..16 {
        let (store, start) = (store.clone(), start.clone());
        clients.push(tokio::spawn(async move {
            start.wait().await;
            store
                .redeem(
                    &sim(
                        &format!("K{i}"),
                        "2026-03-01T08:00:00Z",
                        Some("same"),
                        Some(2),
                    ),
                    &agent(),
                )
                .await
        }));
    }
    let (mut won, mut conflicts) = (0, 0);
    for c in clients {
        match c.await.unwrap() {
            Ok(r) => {
                assert!(!r.replayed);
                won += 1;
            }
            Err(StoreError::IdempotencyConflict(_)) => conflicts += 1,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!((won, conflicts), (1, 15));
    let mut written = 0;
    for i in 0..16 {
        written += store.redemptions(&format!("K{i}")).await.unwrap().len();
    }
    assert_eq!(written, 1);
}

async fn cancelling_restores_the_quota(url: String) {
    let store = Store::open(&url).await.unwrap();
    let a = store
        .redeem(&sim("C1", "2026-03-01T08:00:00Z", None, Some(1)), &agent())
        .await
        .unwrap();
    let refused = store
        .redeem(&sim("C1", "2026-03-02T08:00:00Z", None, Some(1)), &agent())
        .await
        .unwrap_err();
    assert!(refused.is_user_error());
    assert!(
        refused
            .to_string()
            .contains("customer C1 has used 1 of 1 `sim_replacement` this period"),
        "{refused}"
    );
    let cancelled = store
        .cancel_redemption(a.redemption.id, &agent())
        .await
        .unwrap();
    assert_eq!(cancelled.status, "cancelled");
    assert_eq!(cancelled.cancelled_by.as_deref(), Some("agent.wang"));
    let again = store.cancel_redemption(a.redemption.id, &agent()).await;
    assert!(matches!(again, Err(StoreError::Invalid(_))));
    assert!(matches!(
        store.cancel_redemption(999, &agent()).await,
        Err(StoreError::NotFound(_))
    ));
    let b = store
        .redeem(&sim("C1", "2026-03-02T08:00:00Z", None, Some(1)), &agent())
        .await
        .unwrap();
    assert_eq!(b.used, 1);
    let actions: Vec<String> = store
        .audit_log(10)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.action)
        .collect();
    assert_eq!(
        actions,
        ["redemption.add", "redemption.cancel", "redemption.add"]
    );
}

/// Emergency reactivation: twice a month, 24 h each, months starting at local midnight in
/// Shanghai (UTC+8).
async fn the_quota_resets_at_the_local_period_boundary(url: String) {
    let store = Store::open(&url).await.unwrap();
    let tz = chrono_tz::Asia::Shanghai;
    let reactivate = |at: &str| {
        let at = t(at);
        NewRedemption {
            customer_id: "C1".into(),
            benefit: "emergency_reactivation".into(),
            quantity: 1,
            level: "gold".into(),
            idempotency_key: None,
            at,
            window: QuotaPeriod::Month.window(at, tz),
            quota: Some(2),
            grant_hours: Some(24),
        }
    };
    let first = store
        .redeem(&reactivate("2026-11-03T02:00:00Z"), &agent())
        .await
        .unwrap();
    assert_eq!(
        first.redemption.expires_at.as_deref(),
        Some("2026-11-04T02:00:00.000Z")
    );
    // 23:59:59 on 30 November in Shanghai: still November, the second and last use.
    store
        .redeem(&reactivate("2026-11-30T15:59:59Z"), &agent())
        .await
        .unwrap();
    // 23:59:59.5 local: refused.
    let err = store
        .redeem(&reactivate("2026-11-30T15:59:59.500Z"), &agent())
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::QuotaExceeded { used: 2, .. }),
        "{err}"
    );
    // Midnight, 1 December in Shanghai (16:00 UTC on 30 November): a new month.
    let december = store
        .redeem(&reactivate("2026-11-30T16:00:00Z"), &agent())
        .await
        .unwrap();
    assert_eq!(december.used, 1);
}

async fn unlimited_and_zero_quantities(url: String) {
    let store = Store::open(&url).await.unwrap();
    for i in 0..5 {
        let r = store
            .redeem(&sim("C5", "2026-03-01T08:00:00Z", None, None), &agent())
            .await
            .unwrap();
        assert_eq!(r.used, i + 1);
    }
    let mut zero = sim("C5", "2026-03-01T08:00:00Z", None, None);
    zero.quantity = 0;
    assert!(matches!(
        store.redeem(&zero, &agent()).await,
        Err(StoreError::Invalid(_))
    ));
}

async fn users_keys_and_callbacks(url: String) {
    let store = Store::open(&url).await.unwrap();
    let admin = Actor {
        name: "admin".into(),
        origin: "cli".into(),
    };
    store
        .add_user("agent.wang", Role::Agent, &admin)
        .await
        .unwrap();
    let dup = store
        .add_user("agent.wang", Role::Agent, &admin)
        .await
        .unwrap_err();
    assert!(dup.to_string().contains("exists already"), "{dup}");
    // A role is one type from the database to the flag: text that is none is refused
    // where it is parsed, with the roles that exist.
    assert_eq!(
        "boss".parse::<Role>().unwrap_err(),
        "unknown role `boss`: use one of admin, analyst, agent, service"
    );
    assert_eq!("analyst".parse::<Role>(), Ok(Role::Analyst));
    store
        .add_api_key("k1", "agent.wang", "$argon2id$fake", &admin)
        .await
        .unwrap();
    let key = store.api_key("k1").await.unwrap().unwrap();
    assert_eq!((key.role.as_str(), key.usable), ("agent", true));
    store.revoke_api_key("k1", &admin).await.unwrap();
    assert!(!store.api_key("k1").await.unwrap().unwrap().usable);
    assert!(store.api_key("nope").await.unwrap().is_none());
    assert!(matches!(
        store.add_api_key("k2", "nobody", "h", &admin).await,
        Err(StoreError::NotFound(_))
    ));
    // A disabled user gets no key that could never work; enabled again, its keys work.
    store
        .add_api_key("k3", "agent.wang", "sha256:x", &admin)
        .await
        .unwrap();
    store.disable_user("agent.wang", &admin).await.unwrap();
    assert!(!store.api_key("k3").await.unwrap().unwrap().usable);
    let refused = store
        .add_api_key("k4", "agent.wang", "sha256:y", &admin)
        .await
        .unwrap_err();
    assert_eq!(
        refused.to_string(),
        "user `agent.wang` is disabled, so a key for it would never work; `stratum user enable agent.wang` first"
    );
    store.enable_user("agent.wang", &admin).await.unwrap();
    assert!(store.api_key("k3").await.unwrap().unwrap().usable);
    assert!(matches!(
        store.enable_user("agent.wang", &admin).await,
        Err(StoreError::NotFound(_))
    ));
    let keys: Vec<(String, bool, bool)> = store
        .api_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.id, k.revoked_at.is_some(), k.user_disabled))
        .collect();
    assert_eq!(
        keys,
        [
            ("k1".to_string(), true, false),
            ("k3".to_string(), false, false)
        ]
    );

    let cb = store
        .add_callback(
            "C1",
            "gold",
            t("2026-11-24T10:00:00Z"),
            t("2026-11-25T10:00:00Z"),
            &agent(),
        )
        .await
        .unwrap();
    assert_eq!(cb.due_at, "2026-11-25T10:00:00.000Z");
    assert_eq!(store.open_callbacks().await.unwrap().len(), 1);
    let done = store.complete_callback(cb.id, &agent()).await.unwrap();
    assert_eq!(done.done_by.as_deref(), Some("agent.wang"));
    assert!(store.open_callbacks().await.unwrap().is_empty());
}

stratum_store::on_both!(
    one_key_for_many_customers_at_once_is_a_conflict_not_a_fault,
    sixty_four_clients_never_exceed_the_quota,
    retries_with_the_same_key_count_once,
    cancelling_restores_the_quota,
    the_quota_resets_at_the_local_period_boundary,
    unlimited_and_zero_quantities,
    users_keys_and_callbacks,
);
