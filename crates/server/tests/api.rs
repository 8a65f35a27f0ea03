//! The API through `app().oneshot(...)`: every route in the OpenAPI table is routed, each
//! role gets what it may and a 403 otherwise (an agent learns nothing about another agent's
//! customer), redemptions with quotas and idempotency keys, queue order, call-backs, the SLA
//! report, and bad input answered with a 4xx code that writes nothing. Every test runs on
//! SQLite and on PostgreSQL.
//!
//! Fixture: Beijing Unicom VIP levels by 12-month spend (supreme ≥ 1000, diamond ≥ 500,
//! gold ≥ 200, silver the rest); C1 1200 supreme, C2 300 gold, C3 600 diamond, C4 50
//! silver and blacklisted, C5 250 gold. Agent wang owns C1 and C2, agent li the others.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use stratum_server::{AppState, Role, app, create_key, routes};
use stratum_store::{Actor, Store};
use tower::ServiceExt;

const POLICY: &str = r#"
[policy]
name = "vip"

[sources.customers]
path = "customers.csv"
key = "customer_id"
tags = "tags"
columns = { owner = "string" }

[sources.transactions]
path = "transactions.csv"
key = "customer_id"
time = "date"
columns = { amount = "float" }

[metrics.spend]
source = "transactions"
expr = "sum(amount)"
window = "12 months"
default = 0

[metrics.owner]
source = "customers"
expr = "owner"

[service]
ladder = "vip"
timezone = "Asia/Shanghai"
owner = "owner"
aging_minutes = 10

[benefits.sim_replacement]
title = "Free SIM replacement"
period = "year"
quota = { silver = 1, gold = 2, diamond = 3, supreme = "unlimited" }

[benefits.airport_lounge]
period = "month"
quota = { supreme = 2, diamond = 1 }

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

struct Fixture {
    _dir: tempfile::TempDir,
    state: AppState,
    admin: String,
    analyst: String,
    wang: String,
    li: String,
    service: String,
}

async fn fixture(url: String) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    std::fs::write(p("policy.toml"), POLICY).unwrap();
    std::fs::write(
        p("customers.csv"),
        "customer_id,owner,tags\nC1,wang,\nC2,wang,\nC3,li,\nC4,li,blacklist\nC5,li,\n",
    )
    .unwrap();
    std::fs::write(
        p("transactions.csv"),
        "customer_id,date,amount\nC1,2026-10-01,1200\nC2,2026-10-01,300\nC3,2026-10-01,600\n\
         C4,2026-10-01,50\nC5,2026-10-01,250\n",
    )
    .unwrap();
    let store = Store::open(&url).await.unwrap();
    let loaded = stratum_runner::load_policy(&p("policy.toml")).unwrap();
    let options = stratum_runner::RunOptions {
        as_of: Some("2026-10-31".into()),
        out_dir: Some(p("out")),
        ..Default::default()
    };
    stratum_runner::run(&loaded, &options, Some(&store), &mut stratum_runner::Quiet)
        .await
        .unwrap();
    let root = Actor {
        name: "root".into(),
        origin: "test".into(),
    };
    let mut keys = Vec::new();
    for (name, role) in [
        ("admin", "admin"),
        ("ana", "analyst"),
        ("wang", "agent"),
        ("li", "agent"),
        ("ivr", "service"),
    ] {
        store
            .add_user(name, role.parse().unwrap(), &root)
            .await
            .unwrap();
        keys.push(create_key(&store, name, &root).await.unwrap());
    }
    let now = chrono::DateTime::parse_from_rfc3339("2026-11-24T02:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let state = AppState::new(store, loaded).with_clock(move || now);
    let mut keys = keys.into_iter();
    Fixture {
        _dir: dir,
        state,
        admin: keys.next().unwrap(),
        analyst: keys.next().unwrap(),
        wang: keys.next().unwrap(),
        li: keys.next().unwrap(),
        service: keys.next().unwrap(),
    }
}

impl Fixture {
    /// The same store, keys and policy behind a server started afresh (no cached keys, no
    /// failure counts, the lookup table built again).
    fn restarted(&self) -> Fixture {
        Fixture {
            _dir: tempfile::tempdir().unwrap(),
            state: AppState::new(
                self.state.store.clone(),
                stratum_runner::load_policy(&self.state.policy.path).unwrap(),
            ),
            admin: self.admin.clone(),
            analyst: self.analyst.clone(),
            wang: self.wang.clone(),
            li: self.li.clone(),
            service: self.service.clone(),
        }
    }

    /// Changes the data for a second run: C3 spends 1500 in November (supreme as of
    /// 2026-11-30). Returns the workspace folder.
    fn c3_spends_1500_in_november(&self) -> std::path::PathBuf {
        let dir = self.state.policy.path.parent().unwrap().to_path_buf();
        std::fs::write(
            dir.join("transactions.csv"),
            "customer_id,date,amount\nC1,2026-10-01,1200\nC2,2026-10-01,300\n\
             C3,2026-11-01,1500\nC4,2026-10-01,50\nC5,2026-10-01,250\n",
        )
        .unwrap();
        dir
    }

    async fn call(
        &self,
        method: &str,
        uri: &str,
        key: Option<&str>,
        body: Option<&str>,
    ) -> (StatusCode, Value) {
        self.call_with(method, uri, key, body, &[]).await
    }

    async fn call_with(
        &self,
        method: &str,
        uri: &str,
        key: Option<&str>,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(k) = key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        for (h, v) in headers {
            req = req.header(*h, *v);
        }
        let req = req
            .body(
                body.map(|b| Body::from(b.to_string()))
                    .unwrap_or_else(Body::empty),
            )
            .unwrap();
        let resp = app(self.state.clone()).oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, value)
    }
}

fn assert_error(got: &(StatusCode, Value), status: u16, code: &str) {
    assert_eq!(got.0.as_u16(), status, "{}", got.1);
    assert_eq!(got.1["code"], code, "{}", got.1);
    for field in ["message", "type", "link"] {
        assert!(
            got.1[field].is_string(),
            "error body lacks {field}: {}",
            got.1
        );
    }
}

async fn only_health_is_open_and_keys_are_checked(url: String) {
    let f = fixture(url).await;
    let (status, body) = f.call("GET", "/health", None, None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
    assert_error(
        &f.call("GET", "/api/customers/C1", None, None).await,
        401,
        "missing_api_key",
    );
    assert_error(
        &f.call("GET", "/openapi.json", None, None).await,
        401,
        "missing_api_key",
    );
    let forged = format!("{}x", f.admin);
    assert_error(
        &f.call("GET", "/api/customers/C1", Some(&forged), None)
            .await,
        401,
        "invalid_api_key",
    );
    assert_error(
        &f.call("GET", "/api/customers/C1", Some("stk_nope_nope"), None)
            .await,
        401,
        "invalid_api_key",
    );
    // A revoked key stops working (a fresh app: no cached verification).
    let id = f.analyst.split('_').nth(1).unwrap();
    let root = Actor {
        name: "root".into(),
        origin: "test".into(),
    };
    f.state.store.revoke_api_key(id, &root).await.unwrap();
    let fresh = f.restarted();
    assert_error(
        &fresh.call("GET", "/api/runs", Some(&f.analyst), None).await,
        401,
        "invalid_api_key",
    );
}

async fn every_documented_route_is_routed(url: String) {
    let f = fixture(url).await;
    let (status, doc) = f.call("GET", "/openapi.json", Some(&f.admin), None).await;
    assert_eq!(status, StatusCode::OK);
    let paths = doc["paths"].as_object().unwrap();
    let mut documented = 0;
    for route in routes() {
        let (method, path) = (route.method.as_str().to_lowercase(), route.path);
        assert!(
            paths[path][&method].is_object(),
            "{method} {path} missing from the document"
        );
        documented += 1;
        let uri = path
            .replace(
                "{id}",
                if path.contains("redemptions/")
                    || path.contains("callbacks/")
                    || path.contains("runs/")
                    || path.contains("overrides/")
                {
                    "1"
                } else {
                    "C1"
                },
            )
            .replace("{field}", "relationship")
            .replace("{name}", "nobody");
        let body = if method == "get" { None } else { Some("{}") };
        let (status, body) = f
            .call(&method.to_uppercase(), &uri, Some(&f.admin), body)
            .await;
        assert!(
            body["code"] != "route_not_found" && status != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}: {status} {body}"
        );
    }
    let operations: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(operations, documented);
    // The role check is the table's: each role is refused exactly where its row leaves it
    // out, before the handler reads anything.
    let keys = [
        (Role::Admin, &f.admin),
        (Role::Analyst, &f.analyst),
        (Role::Agent, &f.wang),
        (Role::Service, &f.service),
    ];
    for route in routes() {
        let Some(roles) = route.roles else { continue };
        let uri = route
            .path
            .replace("{id}", "C1")
            .replace("{field}", "relationship")
            .replace("{name}", "nobody");
        let body = (route.method != stratum_server::Method::Get).then_some("{}");
        for (role, key) in keys {
            let (status, answer) = f.call(route.method.as_str(), &uri, Some(key), body).await;
            let refused_by_role = status == StatusCode::FORBIDDEN
                && answer["message"] == format!("the {role} role may not {}", route.does);
            assert_eq!(
                refused_by_role,
                !roles.contains(&role),
                "{role} on {} {}: {status} {answer}",
                route.method.as_str(),
                route.path
            );
        }
    }
    assert_error(
        &f.call("GET", "/api/nothing", Some(&f.admin), None).await,
        404,
        "route_not_found",
    );
}

async fn customer_card_levels_and_benefits(url: String) {
    let f = fixture(url).await;
    let (status, card) = f
        .call("GET", "/api/customers/C2", Some(&f.service), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{card}");
    assert_eq!(card["owner"], "wang");
    assert_eq!(card["levels"][0]["ladder"], "vip");
    assert_eq!(card["levels"][0]["level"], "gold");
    assert_eq!(card["pending_changes"], json!([]));
    // An override added since the run: the card still shows the recorded level, and says
    // what changes at the next run.
    let body = r#"{"customer_id":"C2","ladder":"vip","level":"diamond","mode":"floor","reason":"retention offer"}"#;
    let (status, _) = f
        .call("POST", "/api/overrides", Some(&f.admin), Some(body))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, card) = f
        .call("GET", "/api/customers/C2", Some(&f.service), None)
        .await;
    assert_eq!(card["levels"][0]["level"], "gold");
    let pending = &card["pending_changes"][0];
    assert_eq!(
        (
            &pending["ladder"],
            &pending["level"],
            &pending["mode"],
            &pending["change"],
            &pending["by"]
        ),
        (
            &json!("vip"),
            &json!("diamond"),
            &json!("floor"),
            &json!("added"),
            &json!("admin")
        )
    );
    assert_eq!(
        card["benefits"].as_array().unwrap().len(),
        1,
        "gold has no lounge: {card}"
    );
    assert_eq!(card["benefits"][0]["benefit"], "sim_replacement");
    assert_eq!(card["benefits"][0]["quota"], 2);
    assert_eq!(card["benefits"][0]["remaining"], 2);
    // The year starts at midnight in Shanghai.
    // Times are answered in the service's zone (Asia/Shanghai): the same instant as
    // 2025-12-31T16:00:00Z.
    assert_eq!(
        card["benefits"][0]["period_start"],
        "2026-01-01T00:00:00+08:00"
    );

    let (_, c1) = f
        .call("GET", "/api/customers/C1", Some(&f.admin), None)
        .await;
    assert_eq!(c1["levels"][0]["level"], "supreme");
    assert_eq!(c1["benefits"][0]["quota"], "unlimited");
    let (_, c4) = f
        .call("GET", "/api/customers/C4", Some(&f.admin), None)
        .await;
    assert_eq!(c4["tags"], json!(["blacklist"]));

    assert_error(
        &f.call("GET", "/api/customers/C99", Some(&f.admin), None)
            .await,
        404,
        "customer_not_found",
    );
    let (status, history) = f
        .call("GET", "/api/customers/C3/history", Some(&f.analyst), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(history["history"][0]["level"], "diamond");
    let (status, found) = f
        .call("GET", "/api/customers?q=C&limit=10", Some(&f.analyst), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let levels: Vec<&str> = found["customers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["level"].as_str().unwrap())
        .collect();
    assert_eq!(levels, ["supreme", "gold", "diamond", "silver", "gold"]);
    let (status, ex) = f
        .call(
            "GET",
            "/api/customers/C3/explain?recompute=true",
            Some(&f.analyst),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{ex}");
    assert_eq!(ex["placements"][0]["level"], "diamond");
    assert!(
        ex["placements"][0]["next_level_gap"]
            .as_str()
            .unwrap()
            .contains("400"),
        "{ex}"
    );
}

async fn agents_see_and_redeem_only_their_own_customers(url: String) {
    let f = fixture(url).await;
    let (status, _) = f
        .call("GET", "/api/customers/C1", Some(&f.wang), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let refused = f
        .call("GET", "/api/customers/C3", Some(&f.wang), None)
        .await;
    assert_error(&refused, 403, "forbidden");
    assert!(
        !refused.1.to_string().contains("diamond"),
        "nothing leaks: {}",
        refused.1
    );
    // An unknown customer looks the same as another agent's.
    assert_error(
        &f.call("GET", "/api/customers/C99", Some(&f.wang), None)
            .await,
        403,
        "forbidden",
    );
    assert_error(
        &f.call("GET", "/api/customers/C3/history", Some(&f.wang), None)
            .await,
        403,
        "forbidden",
    );
    assert_error(
        &f.call("GET", "/api/customers/C3/redemptions", Some(&f.wang), None)
            .await,
        403,
        "forbidden",
    );
    assert_error(
        &f.call(
            "POST",
            "/api/customers/C3/redemptions",
            Some(&f.wang),
            Some(r#"{"benefit":"sim_replacement"}"#),
        )
        .await,
        403,
        "forbidden",
    );
    assert!(f.state.store.redemptions("C3").await.unwrap().is_empty());
    let (_, found) = f
        .call("GET", "/api/customers?q=C", Some(&f.wang), None)
        .await;
    let ids: Vec<&str> = found["customers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["customer_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["C1", "C2"]);
    // The limit counts the agent's own customers: li owns C3..C5, first in id order is C3,
    // although C1 and C2 come first among all customers.
    let (_, found) = f
        .call("GET", "/api/customers?q=C&limit=1", Some(&f.li), None)
        .await;
    assert_eq!(found["customers"][0]["customer_id"], "C3", "{found}");
    assert_eq!(found["customers"].as_array().unwrap().len(), 1, "{found}");
    let (status, _) = f
        .call(
            "POST",
            "/api/customers/C2/redemptions",
            Some(&f.wang),
            Some(r#"{"benefit":"sim_replacement"}"#),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // Li may not cancel Wang's customer's redemption.
    let id = f.state.store.redemptions("C2").await.unwrap()[0].id;
    assert_error(
        &f.call(
            "POST",
            &format!("/api/redemptions/{id}/cancel"),
            Some(&f.li),
            None,
        )
        .await,
        403,
        "forbidden",
    );
}

async fn roles_limit_what_each_key_may_do(url: String) {
    let f = fixture(url).await;
    let redeem = r#"{"benefit":"sim_replacement"}"#;
    assert_error(
        &f.call(
            "POST",
            "/api/customers/C2/redemptions",
            Some(&f.analyst),
            Some(redeem),
        )
        .await,
        403,
        "forbidden",
    );
    assert_eq!(
        f.call("GET", "/api/runs", Some(&f.analyst), None).await.0,
        StatusCode::OK
    );
    assert_error(
        &f.call("GET", "/api/runs", Some(&f.service), None).await,
        403,
        "forbidden",
    );
    assert_error(
        &f.call("GET", "/api/audit", Some(&f.analyst), None).await,
        403,
        "forbidden",
    );
    let pin =
        r#"{"customer_id":"C5","ladder":"vip","level":"diamond","reason":"strategic account"}"#;
    assert_error(
        &f.call("POST", "/api/overrides", Some(&f.analyst), Some(pin))
            .await,
        403,
        "forbidden",
    );
    assert_error(
        &f.call(
            "POST",
            "/api/users",
            Some(&f.wang),
            Some(r#"{"name":"x","role":"admin"}"#),
        )
        .await,
        403,
        "forbidden",
    );
    let (status, _) = f
        .call("POST", "/api/overrides", Some(&f.admin), Some(pin))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let bad_level = r#"{"customer_id":"C5","ladder":"vip","level":"platinum","reason":"x"}"#;
    assert_error(
        &f.call("POST", "/api/overrides", Some(&f.admin), Some(bad_level))
            .await,
        400,
        "invalid_request",
    );
    let (status, users) = f
        .call(
            "POST",
            "/api/users",
            Some(&f.admin),
            Some(r#"{"name":"zhao","role":"agent"}"#),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{users}");
    let (_, audit) = f
        .call("GET", "/api/audit?limit=2", Some(&f.admin), None)
        .await;
    let last: Vec<(&str, &str)> = audit["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["action"].as_str().unwrap(), a["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(last, [("user.add", "admin"), ("override.add", "admin")]);
    let (status, diff) = f.call("GET", "/api/diff", Some(&f.analyst), None).await;
    assert_error(&(status, diff), 404, "run_not_found");
}

async fn redemptions_respect_quotas_and_idempotency_keys(url: String) {
    let f = fixture(url).await;
    let url = "/api/customers/C2/redemptions";
    let body = r#"{"benefit":"sim_replacement","quantity":1}"#;
    let key = [("idempotency-key", "till-7-0001")];
    let first = f
        .call_with("POST", url, Some(&f.service), Some(body), &key)
        .await;
    assert_eq!(first.0, StatusCode::CREATED, "{}", first.1);
    assert_eq!(
        (first.1["used"].clone(), first.1["remaining"].clone()),
        (json!(1), json!(1))
    );
    let retry = f
        .call_with("POST", url, Some(&f.service), Some(body), &key)
        .await;
    assert_eq!(retry.0, StatusCode::OK);
    assert_eq!(retry.1["replayed"], true);
    assert_eq!(retry.1["redemption"]["id"], first.1["redemption"]["id"]);
    let second = f.call("POST", url, Some(&f.service), Some(body)).await;
    assert_eq!(second.1["remaining"], 0);
    let third = f.call("POST", url, Some(&f.service), Some(body)).await;
    assert_error(&third, 409, "quota_exceeded");
    let reused = f
        .call_with(
            "POST",
            url,
            Some(&f.service),
            Some(r#"{"benefit":"sim_replacement","quantity":2}"#),
            &key,
        )
        .await;
    assert_error(&reused, 422, "idempotency_conflict");
    let id = first.1["redemption"]["id"].as_i64().unwrap();
    let (status, cancelled) = f
        .call(
            "POST",
            &format!("/api/redemptions/{id}/cancel"),
            Some(&f.service),
            None,
        )
        .await;
    assert_eq!(
        (status, cancelled["status"].clone()),
        (StatusCode::OK, json!("cancelled"))
    );
    assert_error(
        &f.call(
            "POST",
            &format!("/api/redemptions/{id}/cancel"),
            Some(&f.service),
            None,
        )
        .await,
        400,
        "invalid_request",
    );
    assert_error(
        &f.call(
            "POST",
            "/api/redemptions/999/cancel",
            Some(&f.service),
            None,
        )
        .await,
        404,
        "redemption_not_found",
    );
    let again = f.call("POST", url, Some(&f.service), Some(body)).await;
    assert_eq!(again.0, StatusCode::CREATED);
    let (_, list) = f.call("GET", url, Some(&f.service), None).await;
    let statuses: Vec<&str> = list["redemptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["active", "active", "cancelled"]);
    // Gold is not eligible for the lounge.
    assert_error(
        &f.call(
            "POST",
            url,
            Some(&f.service),
            Some(r#"{"benefit":"airport_lounge"}"#),
        )
        .await,
        422,
        "not_eligible",
    );
}

async fn bad_input_gets_a_4xx_and_writes_nothing(url: String) {
    let f = fixture(url).await;
    let url = "/api/customers/C2/redemptions";
    let k = Some(f.service.as_str());
    let malformed = f
        .call("POST", url, k, Some(r#"{"benefit": "sim_replacement""#))
        .await;
    assert_error(&malformed, 400, "invalid_json");
    let wrong_type = f.call("POST", url, k, Some(r#"{"benefit": 5}"#)).await;
    assert_error(&wrong_type, 400, "invalid_json");
    assert!(
        wrong_type.1["message"]
            .as_str()
            .unwrap()
            .contains("benefit"),
        "{}",
        wrong_type.1
    );
    let negative = f
        .call(
            "POST",
            url,
            k,
            Some(r#"{"benefit":"sim_replacement","quantity":-1}"#),
        )
        .await;
    assert_error(&negative, 400, "invalid_request");
    assert!(negative.1["message"].as_str().unwrap().contains("-1"));
    assert_error(
        &f.call(
            "POST",
            "/api/customers/C99/redemptions",
            k,
            Some(r#"{"benefit":"sim_replacement"}"#),
        )
        .await,
        404,
        "customer_not_found",
    );
    assert_error(
        &f.call("POST", url, k, Some(r#"{"benefit":"golf"}"#)).await,
        404,
        "benefit_not_found",
    );
    let huge = format!(r#"{{"benefit":"{}"}}"#, "x".repeat(100_000));
    assert_error(
        &f.call("POST", url, k, Some(&huge)).await,
        413,
        "payload_too_large",
    );
    for c in ["C2", "C99"] {
        assert!(
            f.state.store.redemptions(c).await.unwrap().is_empty(),
            "nothing written for {c}"
        );
    }
    assert!(
        f.state
            .store
            .audit_log(10)
            .await
            .unwrap()
            .iter()
            .all(|a| a.action != "redemption.add")
    );
}

async fn queue_callbacks_and_sla_report(url: String) {
    let f = fixture(url).await;
    let queue = r#"{"now":"2026-11-24T10:00:00Z","waiting":[
        {"customer_id":"C4","arrived_at":"2026-11-24T09:00:00Z"},
        {"customer_id":"C2","arrived_at":"2026-11-24T09:59:00Z"},
        {"customer_id":"C5","arrived_at":"2026-11-24T09:39:00Z"},
        {"customer_id":"C1","arrived_at":"2026-11-24T09:59:30Z"},
        {"customer_id":"C3","arrived_at":"2026-11-24T09:58:00Z"}]}"#;
    let (status, order) = f
        .call("POST", "/api/queue/order", Some(&f.service), Some(queue))
        .await;
    assert_eq!(status, StatusCode::OK, "{order}");
    assert_eq!(order["now"], "2026-11-24T18:00:00+08:00", "{order}");
    assert_eq!(
        order["order"][0]["arrived_at"].as_str().unwrap().len(),
        25,
        "{order}"
    );
    let ids: Vec<&str> = order["order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["customer_id"].as_str().unwrap())
        .collect();
    // C5 (gold) waited 21 minutes: two levels up, level with supreme but earlier; C4 is
    // blacklisted, so last although it waited an hour.
    assert_eq!(ids, ["C5", "C1", "C3", "C2", "C4"]);

    let (status, cb) = f
        .call(
            "POST",
            "/api/calls/missed",
            Some(&f.service),
            Some(r#"{"customer_id":"C2","at":"2026-11-24T10:00:00Z"}"#),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{cb}");
    assert_eq!(cb["callback"]["due_at"], "2026-11-25T18:00:00+08:00");
    let (status, none) = f
        .call(
            "POST",
            "/api/calls/missed",
            Some(&f.service),
            Some(r#"{"customer_id":"C1"}"#),
        )
        .await;
    assert_eq!(
        (status, none["callback"].clone()),
        (StatusCode::OK, Value::Null)
    );
    let (_, open) = f.call("GET", "/api/callbacks", Some(&f.li), None).await;
    assert!(
        open["callbacks"].as_array().unwrap().is_empty(),
        "C2 is wang's: {open}"
    );
    let (_, open) = f.call("GET", "/api/callbacks", Some(&f.wang), None).await;
    let id = open["callbacks"][0]["id"].as_i64().unwrap();
    let (status, done) = f
        .call(
            "POST",
            &format!("/api/callbacks/{id}/done"),
            Some(&f.wang),
            None,
        )
        .await;
    assert_eq!(
        (status, done["done_by"].clone()),
        (StatusCode::OK, json!("wang"))
    );

    let mut calls = Vec::new();
    // Supreme C1: 9 of 10 within 20 s -> 90%, target 90%.
    for i in 0..10 {
        let wait = if i == 9 { 25 } else { 10 };
        calls.push(json!({"customer_id":"C1","queued_at":"2026-11-24T10:00:00Z","answered_at": format!("2026-11-24T10:00:{wait:02}Z")}));
    }
    // Gold C2: one answered in 5 s, one abandoned -> 50%, target 85%.
    calls.push(json!({"customer_id":"C2","queued_at":"2026-11-24T10:00:00Z","answered_at":"2026-11-24T10:00:05Z"}));
    calls.push(json!({"customer_id":"C2","queued_at":"2026-11-24T10:00:00Z","answered_at":null}));
    let body = json!({"calls": calls}).to_string();
    let (status, sla) = f
        .call("POST", "/api/sla/report", Some(&f.analyst), Some(&body))
        .await;
    assert_eq!(status, StatusCode::OK, "{sla}");
    let rows = sla["report"].as_array().unwrap();
    assert_eq!(rows[0]["level"], "supreme");
    assert_eq!(
        (
            rows[0]["calls"].clone(),
            rows[0]["within_target"].clone(),
            rows[0]["met"].clone()
        ),
        (json!(10), json!(9), json!(true))
    );
    assert_eq!(rows[2]["level"], "gold");
    assert_eq!(
        (
            rows[2]["share_within_target"].clone(),
            rows[2]["met"].clone()
        ),
        (json!(0.5), json!(false))
    );
    assert_error(
        &f.call("POST", "/api/sla/report", Some(&f.service), Some(&body))
            .await,
        403,
        "forbidden",
    );
    let backwards = r#"{"calls":[{"customer_id":"C1","queued_at":"2026-11-24T10:00:00Z","answered_at":"2026-11-24T09:00:00Z"}]}"#;
    assert_error(
        &f.call("POST", "/api/sla/report", Some(&f.analyst), Some(backwards))
            .await,
        400,
        "invalid_request",
    );
}

async fn tier_lookup_serves_the_latest_run_from_memory(url: String) {
    let f = fixture(url).await;
    let (status, c3) = f
        .call("GET", "/api/customers/C3/levels", Some(&f.service), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{c3}");
    let first_run = c3["run_id"].as_i64().unwrap();
    assert_eq!(
        c3,
        json!({
            "customer_id": "C3", "run_id": first_run, "as_of": "2026-10-31", "owner": "li",
            "levels": [{"ladder": "vip", "level": "diamond", "score": 600.0, "rank": 2}],
        })
    );
    assert!(!f.state.refresh().await.unwrap(), "no newer run yet");

    // Agents: their own customers only; an unknown customer looks the same as another's.
    let (status, _) = f
        .call("GET", "/api/customers/C3/levels", Some(&f.li), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let refused = f
        .call("GET", "/api/customers/C3/levels", Some(&f.wang), None)
        .await;
    assert_error(&refused, 403, "forbidden");
    assert!(!refused.1.to_string().contains("diamond"));
    assert_error(
        &f.call("GET", "/api/customers/C99/levels", Some(&f.wang), None)
            .await,
        403,
        "forbidden",
    );
    assert_error(
        &f.call("GET", "/api/customers/C99/levels", Some(&f.admin), None)
            .await,
        404,
        "customer_not_found",
    );

    // A newer run recorded by another process is served once `refresh` (every 2 s in
    // `serve`) has loaded it; until then the previous run is served whole.
    let dir = f.c3_spends_1500_in_november();
    let options = stratum_runner::RunOptions {
        as_of: Some("2026-11-30".into()),
        out_dir: Some(dir.join("out")),
        ..Default::default()
    };
    stratum_runner::run(
        &f.state.policy,
        &options,
        Some(&f.state.store),
        &mut stratum_runner::Quiet,
    )
    .await
    .unwrap();
    let (_, stale) = f
        .call("GET", "/api/customers/C3/levels", Some(&f.service), None)
        .await;
    assert_eq!(stale["run_id"], first_run);
    assert!(f.state.refresh().await.unwrap(), "the new run is loaded");
    let (_, fresh) = f
        .call("GET", "/api/customers/C3/levels", Some(&f.service), None)
        .await;
    assert_eq!(fresh["run_id"], first_run + 1);
    assert_eq!(fresh["as_of"], "2026-11-30");
    assert_eq!(fresh["levels"][0]["level"], "supreme");
    assert_eq!(fresh["levels"][0]["rank"], 1);
}

async fn analysts_run_and_simulate_over_the_api(url: String) {
    let f = fixture(url).await;
    let first = f.state.store.latest_run_id("vip").await.unwrap().unwrap();
    for key in [&f.wang, &f.service] {
        assert_error(
            &f.call("POST", "/api/runs", Some(key), None).await,
            403,
            "forbidden",
        );
        assert_error(
            &f.call(
                "POST",
                "/api/simulate",
                Some(key),
                Some(r#"{"policy": ""}"#),
            )
            .await,
            403,
            "forbidden",
        );
    }
    assert_error(
        &f.call(
            "POST",
            "/api/runs",
            Some(&f.analyst),
            Some(r#"{"as_of": "30/11/2026"}"#),
        )
        .await,
        400,
        "invalid_request",
    );

    // What if diamond started at 250? C2 (300) and C5 (250) would move up from gold.
    let draft = POLICY.replace("spend >= 500", "spend >= 250");
    let body = json!({"policy": draft, "as_of": "2026-10-31"}).to_string();
    let (status, sim) = f
        .call("POST", "/api/simulate", Some(&f.analyst), Some(&body))
        .await;
    assert_eq!(status, StatusCode::OK, "{sim}");
    assert_eq!(sim["base_run"], first);
    let ladder = &sim["ladders"][0];
    assert_eq!(ladder["upgrades"], 2, "{sim}");
    assert_eq!(ladder["downgrades"], 0);
    let moves: Vec<(String, String, i64)> = ladder["moves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["from"].as_str().unwrap().to_string(),
                m["to"].as_str().unwrap().to_string(),
                m["customers"].as_i64().unwrap(),
            )
        })
        .collect();
    let m = |a: &str, b: &str, n| (a.to_string(), b.to_string(), n);
    assert_eq!(
        moves,
        [
            m("supreme", "supreme", 1),
            m("diamond", "diamond", 1),
            m("gold", "diamond", 2),
            m("silver", "silver", 1)
        ]
    );
    assert_eq!(
        f.state.store.runs(None).await.unwrap().len(),
        1,
        "simulate records nothing"
    );
    // A draft is evaluated on the server: it may read only the served policy's files.
    let elsewhere = POLICY.replace("\"transactions.csv\"", "\"/etc/passwd.csv\"");
    let refused = f
        .call(
            "POST",
            "/api/simulate",
            Some(&f.admin),
            Some(&json!({ "policy": elsewhere }).to_string()),
        )
        .await;
    assert_error(&refused, 400, "invalid_request");
    assert!(
        refused.1["message"]
            .as_str()
            .unwrap()
            .contains("/etc/passwd")
    );
    let broken = f
        .call(
            "POST",
            "/api/simulate",
            Some(&f.admin),
            Some(&json!({ "policy": POLICY.replace("rest = true", "rest = maybe") }).to_string()),
        )
        .await;
    assert_error(&broken, 422, "invalid_policy");
    assert!(
        broken.1["message"]
            .as_str()
            .unwrap()
            .contains("draft policy:"),
        "the error names where: {}",
        broken.1
    );

    // A run over changed data, recorded and served at once.
    f.c3_spends_1500_in_november();
    let (status, run) = f
        .call(
            "POST",
            "/api/runs",
            Some(&f.analyst),
            Some(r#"{"as_of": "2026-11-30"}"#),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{run}");
    assert_eq!(run["run_id"], first + 1);
    assert_eq!(run["previous_run"], first);
    assert_eq!(run["customers"], 5);
    let counts: Vec<(String, i64)> = run["ladders"][0]["levels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["level"].as_str().unwrap().to_string(),
                l["customers"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        counts,
        [
            ("supreme".to_string(), 2),
            ("diamond".to_string(), 0),
            ("gold".to_string(), 2),
            ("silver".to_string(), 1)
        ]
    );
    let (_, c3) = f
        .call("GET", "/api/customers/C3/levels", Some(&f.service), None)
        .await;
    assert_eq!(c3["run_id"], first + 1);
    assert_eq!(c3["levels"][0]["level"], "supreme");
    let runs = f.state.store.runs(None).await.unwrap();
    assert_eq!(runs.last().unwrap().recorded_by, "ana");
    let (_, audit) = f.call("GET", "/api/audit", Some(&f.admin), None).await;
    assert!(
        audit.to_string().contains("run.start"),
        "the run is in the audit log: {audit}"
    );
}

async fn disabled_users_keys_stop_working(url: String) {
    let f = fixture(url).await;
    assert_error(
        &f.call("POST", "/api/users/li/disable", Some(&f.analyst), None)
            .await,
        403,
        "forbidden",
    );
    let (status, body) = f
        .call("POST", "/api/users/li/disable", Some(&f.admin), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_error(
        &f.call("POST", "/api/users/li/disable", Some(&f.admin), None)
            .await,
        404,
        "user_not_found",
    );
    // A server that has not seen li's key yet refuses it at once (a running one within the
    // key cache's minute).
    let fresh = f.restarted();
    assert_error(
        &fresh
            .call("GET", "/api/customers/C3/levels", Some(&fresh.li), None)
            .await,
        401,
        "invalid_api_key",
    );
    let (status, _) = fresh
        .call("GET", "/api/customers/C1/levels", Some(&fresh.wang), None)
        .await;
    assert_eq!(status, StatusCode::OK, "other users are untouched");
    let users = fresh.state.store.users().await.unwrap();
    let li = users.iter().find(|u| u.name == "li").unwrap();
    assert!(li.disabled_at.is_some());
    let (_, audit) = fresh
        .call("GET", "/api/audit", Some(&fresh.admin), None)
        .await;
    assert!(audit.to_string().contains("user.disable"), "{audit}");
}

/// Issue 16, defect 6: every route that names a customer refuses an agent any customer not
/// its own, existing (C3, li's) or not (C99), the same way; its own (C1) goes through.
async fn every_customer_route_applies_one_ownership_rule(url: String) {
    let f = fixture(url).await;
    let waiting = |c: &str| {
        format!(r#"{{"waiting":[{{"customer_id":"{c}","arrived_at":"2026-11-24T01:00:00Z"}}]}}"#)
    };
    let missed = |c: &str| format!(r#"{{"customer_id":"{c}"}}"#);
    let redeem = r#"{"benefit":"sim_replacement"}"#.to_string();
    let routes: Vec<(&str, String, Option<String>)> = ["C3", "C99", "C1"]
        .iter()
        .flat_map(|c| {
            vec![
                ("GET", format!("/api/customers/{c}"), None),
                ("GET", format!("/api/customers/{c}/levels"), None),
                ("GET", format!("/api/customers/{c}/history"), None),
                ("GET", format!("/api/customers/{c}/explain"), None),
                ("GET", format!("/api/customers/{c}/redemptions"), None),
                (
                    "POST",
                    format!("/api/customers/{c}/redemptions"),
                    Some(redeem.clone()),
                ),
                ("POST", "/api/queue/order".to_string(), Some(waiting(c))),
                ("POST", "/api/calls/missed".to_string(), Some(missed(c))),
            ]
        })
        .collect();
    for (method, uri, body) in &routes {
        let got = f.call(method, uri, Some(&f.wang), body.as_deref()).await;
        let own = uri.contains("C1") || body.as_deref().is_some_and(|b| b.contains("C1"));
        if own {
            assert_ne!(
                got.0,
                StatusCode::FORBIDDEN,
                "{method} {uri} {body:?}: {}",
                got.1
            );
            assert!(
                got.0.is_success(),
                "{method} {uri} {body:?}: {} {}",
                got.0,
                got.1
            );
        } else {
            assert_error(&got, 403, "forbidden");
            assert!(!got.1.to_string().contains("diamond"), "{}", got.1);
        }
    }
    // Nothing was written for the refused customers.
    assert!(f.state.store.redemptions("C3").await.unwrap().is_empty());
    let open = f.state.store.open_callbacks().await.unwrap();
    assert!(open.iter().all(|c| c.customer_id != "C3"), "{open:?}");
    // Other roles see every customer.
    for key in [&f.admin, &f.analyst, &f.service] {
        let (status, _) = f
            .call("GET", "/api/customers/C3/levels", Some(key), None)
            .await;
        assert_eq!(status, StatusCode::OK);
    }
}

/// Issue 16, defects 3, 4, 8, 9, 11: a draft too deep to plan is a 422 and the server keeps
/// answering; wrong secrets for a known key id are refused before any hash after ten tries;
/// a run dated far ahead is refused; 405 and 413 answer the JSON error body; explain reads
/// the served run unless an analyst asks to recompute.
async fn the_server_stays_up_and_bounded(url: String) {
    let f = fixture(url).await;
    let policy = std::fs::read_to_string(&f.state.policy.path).unwrap();
    let huge = format!("sum(amount){}", " + sum(amount)".repeat(1_000));
    let draft = policy.replace("expr = \"sum(amount)\"", &format!("expr = \"{huge}\""));
    let body = json!({ "policy": draft }).to_string();
    let got = f
        .call("POST", "/api/simulate", Some(&f.analyst), Some(&body))
        .await;
    assert_error(&got, 422, "invalid_policy");
    assert!(
        got.1["message"]
            .as_str()
            .unwrap()
            .contains("metrics.spend.expr"),
        "{}",
        got.1
    );
    let deep = format!("x = 1{}", " OR x = 1".repeat(30_000));
    let draft = policy.replace("when = \"spend >= 1000\"", &format!("when = \"{deep}\""));
    let body = json!({ "policy": draft }).to_string();
    let got = f
        .call("POST", "/api/simulate", Some(&f.analyst), Some(&body))
        .await;
    // Over 64 KiB: refused before it is read.
    assert_error(&got, 413, "payload_too_large");
    let (status, _) = f.call("GET", "/health", None, None).await;
    assert_eq!(status, StatusCode::OK);

    // Ten wrong secrets for the admin's key id, then refusals without a check, even for
    // the right secret, until the window ends.
    let id = f.admin.split('_').nth(1).unwrap();
    let wrong = format!("stk_{id}_{}", "0".repeat(48));
    for _ in 0..stratum_server::auth::MAX_FAILURES_PER_KEY {
        assert_error(
            &f.call("GET", "/api/runs", Some(&wrong), None).await,
            401,
            "invalid_api_key",
        );
    }
    assert_error(
        &f.call("GET", "/api/runs", Some(&wrong), None).await,
        429,
        "too_many_attempts",
    );
    assert_error(
        &f.call("GET", "/api/benefits", Some(&f.admin), None).await,
        429,
        "too_many_attempts",
    );
    // Other keys are unaffected.
    let (status, _) = f.call("GET", "/api/runs", Some(&f.analyst), None).await;
    assert_eq!(status, StatusCode::OK);

    for date in ["2999-12-31", "1900-01-01"] {
        let body = format!(r#"{{"as_of":"{date}"}}"#);
        let got = f
            .call("POST", "/api/runs", Some(&f.analyst), Some(&body))
            .await;
        assert_error(&got, 400, "invalid_request");
    }
    assert_eq!(f.state.store.runs(None).await.unwrap().len(), 1);
    assert_error(
        &f.call("DELETE", "/api/benefits", Some(&f.analyst), None)
            .await,
        405,
        "method_not_allowed",
    );
    // Error links resolve in the server's own document; run inputs are JSON, not a string.
    let got = f.call("GET", "/api/users", Some(&f.analyst), None).await;
    assert_eq!(
        got.1["link"],
        "/openapi.json#/components/x-error-codes/forbidden"
    );
    let (_, doc) = f.call("GET", "/openapi.json", Some(&f.analyst), None).await;
    assert_eq!(
        doc["components"]["x-error-codes"]["forbidden"]["status"],
        403
    );
    let (_, runs) = f.call("GET", "/api/runs", Some(&f.analyst), None).await;
    assert!(runs["runs"][0]["inputs"].is_array(), "{runs}");
    assert_eq!(
        runs["runs"][0]["inputs"][0]["source"], "customers",
        "{runs}"
    );
    let big = format!(r#"{{"as_of":"{}"}}"#, "x".repeat(70_000));
    assert_error(
        &f.call("POST", "/api/runs", Some(&f.analyst), Some(&big))
            .await,
        413,
        "payload_too_large",
    );

    let (status, ex) = f
        .call("GET", "/api/customers/C1/explain", Some(&f.wang), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{ex}");
    assert_eq!(ex["recorded"], true);
    assert_eq!(ex["run_id"], 1);
    assert_eq!(ex["placements"][0]["level"], "supreme");
    assert_eq!(
        ex["metrics"],
        json!([{"metric": "spend", "value": 1200.0}, {"metric": "owner", "value": "wang"}])
    );
    assert_error(
        &f.call(
            "GET",
            "/api/customers/C1/explain?recompute=true",
            Some(&f.wang),
            None,
        )
        .await,
        403,
        "forbidden",
    );
    let (status, ex) = f
        .call(
            "GET",
            "/api/customers/C1/explain?recompute=true",
            Some(&f.analyst),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{ex}");
    assert_eq!(ex["recorded"], false);
    assert_eq!(ex["placements"][0]["level"], "supreme");
    // (A server started afresh: the flood above left the admin's key id blocked here.)
    let fresh = f.restarted();
    // An override mode is one of three: anything else is refused as it is read.
    let body =
        r#"{"customer_id":"C1","ladder":"vip","level":"gold","mode":"sometimes","reason":"x"}"#;
    let got = fresh
        .call("POST", "/api/overrides", Some(&f.admin), Some(body))
        .await;
    assert_error(&got, 400, "invalid_json");
    assert!(
        got.1["message"]
            .as_str()
            .unwrap()
            .contains("`pin`, `floor`, `ceiling`"),
        "{}",
        got.1
    );
}

/// Issue 16, defect 5: a second policy's run over the same store does not change who owns
/// a customer under the first.
async fn another_policys_run_leaves_owners_alone(url: String) {
    let f = fixture(url).await;
    let dir = f.state.policy.path.parent().unwrap().to_path_buf();
    let second = POLICY
        .replace("name = \"vip\"", "name = \"regions\"")
        .replace("expr = \"owner\"", "expr = \"'north'\"");
    std::fs::write(dir.join("second.toml"), second).unwrap();
    let loaded = stratum_runner::load_policy(&dir.join("second.toml")).unwrap();
    let options = stratum_runner::RunOptions {
        as_of: Some("2026-10-31".into()),
        out_dir: Some(dir.join("out-second")),
        ..Default::default()
    };
    stratum_runner::run(
        &loaded,
        &options,
        Some(&f.state.store),
        &mut stratum_runner::Quiet,
    )
    .await
    .unwrap();
    assert_eq!(
        f.state
            .store
            .owner_of("regions", "C1")
            .await
            .unwrap()
            .as_deref(),
        Some("north")
    );
    // A server for the first policy, started afresh, still has wang owning C1.
    let g = f.restarted();
    let (status, card) = g
        .call("GET", "/api/customers/C1", Some(&g.wang), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{card}");
    assert_eq!(card["owner"], "wang");
    let (status, levels) = g
        .call("GET", "/api/customers/C1/levels", Some(&g.wang), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{levels}");
    assert_eq!(levels["owner"], "wang");
}

stratum_store::on_both!(
    every_customer_route_applies_one_ownership_rule,
    the_server_stays_up_and_bounded,
    another_policys_run_leaves_owners_alone,
    only_health_is_open_and_keys_are_checked,
    every_documented_route_is_routed,
    customer_card_levels_and_benefits,
    agents_see_and_redeem_only_their_own_customers,
    roles_limit_what_each_key_may_do,
    redemptions_respect_quotas_and_idempotency_keys,
    bad_input_gets_a_4xx_and_writes_nothing,
    queue_callbacks_and_sla_report,
    tier_lookup_serves_the_latest_run_from_memory,
    analysts_run_and_simulate_over_the_api,
    disabled_users_keys_stop_working,
);

/// Issue 16, defect 9: on a real socket, a client that sends half a request header is
/// disconnected after the header timeout instead of holding its connection for good, and the
/// server keeps answering others.
#[tokio::test]
async fn a_half_sent_request_is_cut_off_after_the_header_timeout() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let f = fixture(stratum_store::testing::sqlite_in(dir.path())).await;
    let limits = stratum_server::Limits {
        header_read_timeout: std::time::Duration::from_millis(500),
        ..Default::default()
    };
    let addr = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    let state = f.state.clone().with_limits(limits);
    tokio::spawn(stratum_server::serve(state, addr));
    // Plain blocking sockets, on a thread of their own.
    let outcome = tokio::task::spawn_blocking(move || {
        let connect = || {
            for _ in 0..200 {
                if let Ok(s) = std::net::TcpStream::connect(addr) {
                    return s;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            panic!("the server did not start");
        };
        let mut slow = connect();
        slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .unwrap();
        slow.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let started = std::time::Instant::now();
        let mut buf = Vec::new();
        let closed = match slow.read_to_end(&mut buf) {
            Ok(_) => true,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        };
        let waited = started.elapsed();
        let mut ok = connect();
        ok.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        ok.read_to_string(&mut answer).unwrap();
        (closed, waited, answer)
    })
    .await
    .unwrap();
    let (closed, waited, answer) = outcome;
    assert!(closed, "the half-sent connection is still open after 5 s");
    assert!(
        waited >= std::time::Duration::from_millis(400)
            && waited < std::time::Duration::from_secs(4),
        "{waited:?}"
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[test]
fn the_api_docs_list_every_error_code_and_route() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/API.md")).unwrap();
    for (code, status, kind, _) in stratum_server::ERROR_CODES {
        assert!(
            doc.contains(&format!("| {code} | {status} | {kind} |")),
            "docs/API.md lacks the row of error `{code}`"
        );
    }
    // The routes table of docs/API.md, row for row: `| METHOD | `path` | roles | what |`.
    let documented: std::collections::BTreeSet<(String, String, String)> = doc
        .lines()
        .skip_while(|l| !l.starts_with("| method | path | roles |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (
                cells[1].to_string(),
                cells[2].trim_matches('`').to_string(),
                cells[3].to_string(),
            )
        })
        .collect();
    let served: std::collections::BTreeSet<(String, String, String)> = routes()
        .map(|r| {
            (
                r.method.as_str().to_string(),
                r.path.to_string(),
                r.roles_text(),
            )
        })
        .collect();
    let missing: Vec<_> = served.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&served).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "docs/API.md's route table differs from the routes: missing {missing:?}, not served {stale:?}"
    );
}
