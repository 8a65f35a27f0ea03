//! The pipeline over the API: a rep logs contacts for its own customers and reads its own
//! call list; an admin reads anyone's; refusals name why.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use stratum_server::{AppState, app, create_key};
use stratum_store::{Actor, Role, Store};
use tower::ServiceExt;

const POLICY: &str = r#"
[policy]
name = "pipeline"
as_of = "2026-10-31"

[sources.customers]
path = "customers.csv"
key = "customer_id"

[metrics.owner]
source = "customers"
expr = "owner"

[service]
ladder = "all"
owner = "owner"
timezone = "Asia/Shanghai"

[ladders.all]
[[ladders.all.levels]]
name = "everyone"
rest = true

[pipeline]
calendar = "calendar.csv"
daily_capacity = 2
weekly_targets = { mon = 35 }
escalation = { remind_after = 1, manager_after = 2 }

[[pipeline.classes]]
name = "1"
capacity = 1
follow_up_days = 1
pay_within_days = 2

[[pipeline.classes]]
name = "4"
follow_up_days = 10

[teams]
chen = ["lin"]

[assignment]
levels = ["everyone"]

[assignment.managers]
km = {}
"#;

struct Fixture {
    _dir: tempfile::TempDir,
    state: AppState,
    keys: std::collections::HashMap<&'static str, String>,
}

async fn fixture(url: String) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.toml"), POLICY).unwrap();
    std::fs::write(
        dir.path().join("customers.csv"),
        "customer_id,owner\nC1,lin\nC2,lin\nC3,lin\nC4,wu\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("calendar.csv"),
        "date,kind,note\n2026-10-01,holiday,National Day\n2026-10-02,holiday,National Day\n\
         2026-10-05,holiday,National Day\n2026-10-06,holiday,National Day\n\
         2026-10-07,holiday,National Day\n2026-10-10,workday,bridge\n",
    )
    .unwrap();
    let store = Store::open(&url).await.unwrap();
    let loaded = stratum_runner::load_policy(&dir.path().join("policy.toml")).unwrap();
    let options = stratum_runner::RunOptions {
        out_dir: Some(dir.path().join("out")),
        ..Default::default()
    };
    stratum_runner::run(&loaded, &options, Some(&store), &mut stratum_runner::Quiet)
        .await
        .unwrap();
    let root = Actor {
        name: "root".into(),
        origin: "test".into(),
    };
    let mut keys = std::collections::HashMap::new();
    for (name, role) in [
        ("boss", Role::Admin),
        ("mei", Role::Analyst),
        ("lin", Role::Agent),
        ("wu", Role::Agent),
        ("chen", Role::Agent),
        ("km", Role::Agent),
    ] {
        store.add_user(name, role, &root).await.unwrap();
        keys.insert(name, create_key(&store, name, &root).await.unwrap());
    }
    let state = AppState::new(store, loaded).with_clock(|| {
        chrono::DateTime::parse_from_rfc3339("2026-10-12T01:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc)
    });
    Fixture {
        _dir: dir,
        state,
        keys,
    }
}

impl Fixture {
    /// A GET answered with text (a CSV export).
    async fn text(&self, who: &str, uri: &str) -> (StatusCode, String) {
        let req = Request::builder()
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.keys[who]))
            .body(Body::empty())
            .unwrap();
        let resp = app(self.state.clone()).oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    async fn send(
        &self,
        who: &str,
        method: &str,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.keys[who]));
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
            .unwrap();
        let resp = app(self.state.clone()).oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }
}

async fn reps_log_contacts_and_work_their_call_lists(url: String) {
    let f = fixture(url).await;
    // Lin's customers: C1 class 1 contacted before the holiday (due the first working day
    // after it), C2 class 4 long ago, C3 class 1 set for the 13th.
    for (customer, body) in [
        (
            "C1",
            json!({"outcome": "reached", "class": "1", "intent": "good", "on": "2026-09-30"}),
        ),
        (
            "C2",
            json!({"outcome": "no_answer", "channel": "visit", "class": "4", "on": "2026-09-01"}),
        ),
        (
            "C3",
            json!({"outcome": "reached", "class": "1", "on": "2026-10-09", "next_contact": "2026-10-13"}),
        ),
    ] {
        let (status, row) = f
            .send(
                "lin",
                "POST",
                &format!("/api/customers/{customer}/interactions"),
                Some(body),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{row}");
        assert_eq!(row["rep"], "lin");
    }
    // Monday the 12th (the clock: 09:00 in Shanghai), capacity 2: C1 (class 1, overdue,
    // past its 2-day payment deadline), then C2; nothing carried.
    let (status, list) = f.send("lin", "GET", "/api/calls", None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["date"], "2026-10-12");
    assert_eq!(list["target"], 35);
    let ids: Vec<&str> = list["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["customer_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["C1", "C2"]);
    assert_eq!(list["calls"][0]["due"], "2026-10-08");
    assert_eq!(list["calls"][0]["overdue"], true);
    assert_eq!(list["calls"][0]["past_deadline"], true);
    assert_eq!(list["calls"][0]["intent"], "good");
    // Due the 8th, not called the 8th, the 9th or Saturday the 10th (worked): three
    // working days overdue, past the manager's two.
    assert_eq!(list["calls"][0]["overdue_days"], 3);
    assert_eq!(list["calls"][0]["escalation"], "tell_manager");
    assert_eq!(list["calls"][0]["block"], "morning");
    assert_eq!(list["calls"][1]["block"], "afternoon");
    // Coverage: 3 customers at 2 a day, 18 working days in October; class 1 holds 2 of 1.
    assert_eq!(
        (
            &list["held"],
            &list["coverage_days"],
            &list["month_working_days"]
        ),
        (&json!(3), &json!(2), &json!(18))
    );
    assert_eq!(
        list["over_capacity"],
        json!([{"class": "1", "held": 2, "capacity": 1}])
    );
    // The 13th: C3 is set for it; capacity 2 carries the last one.
    let (_, list) = f
        .send("boss", "GET", "/api/calls?rep=lin&date=2026-10-13", None)
        .await;
    assert_eq!(list["calls"].as_array().unwrap().len(), 2);
    assert_eq!(list["carried"].as_array().unwrap().len(), 1);
    let (_, sunday) = f
        .send("lin", "GET", "/api/calls?date=2026-10-11", None)
        .await;
    assert_eq!(sunday["working_day"], false);
    // The card's contacts.
    let (status, c1) = f
        .send("mei", "GET", "/api/customers/C1/interactions", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(c1["prospect"]["class"], "1");
    assert_eq!(c1["interactions"][0]["outcome"], "reached");
    assert_eq!(c1["class_changes"][0]["to_class"], "1");
    // Refusals: another rep's customer, another rep's list, a bad word, an unknown class.
    let (status, e) = f
        .send(
            "wu",
            "POST",
            "/api/customers/C1/interactions",
            Some(json!({"outcome": "reached"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{e}");
    let (status, e) = f.send("wu", "GET", "/api/calls?rep=lin", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        e["message"],
        "lin's pipeline is not yours: an agent reads its own, or its team's when it leads one"
    );
    let (status, e) = f
        .send(
            "lin",
            "POST",
            "/api/customers/C1/interactions",
            Some(json!({"outcome": "maybe"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .starts_with("outcome: unknown outcome `maybe`"),
        "{e}"
    );
    let (status, e) = f
        .send(
            "boss",
            "POST",
            "/api/customers/C4/interactions",
            Some(json!({"outcome": "reached", "class": "9"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(
        e["message"],
        "unknown class `9`: the policy's classes are 1, 4"
    );
    let (status, _) = f
        .send(
            "boss",
            "POST",
            "/api/customers/C9/interactions",
            Some(json!({"outcome": "reached", "class": "1"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "an id the served run does not have"
    );
    let (status, _) = f
        .send(
            "mei",
            "POST",
            "/api/customers/C1/interactions",
            Some(json!({"outcome": "reached"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "analysts read, they do not log"
    );
}

/// A team lead sees its team's customers, lists, activity and escalations and nobody
/// else's; applied assignments move owners, permissions and prospects.
async fn leads_see_their_team_and_assignments_move_owners(url: String) {
    let f = fixture(url).await;
    for (who, customer, body) in [
        (
            "lin",
            "C1",
            json!({"outcome": "reached", "class": "1", "intent": "good", "on": "2026-10-09"}),
        ),
        (
            "wu",
            "C4",
            json!({"outcome": "refused", "class": "1", "on": "2026-10-09", "notes": "Too  expensive"}),
        ),
    ] {
        let (status, row) = f
            .send(
                who,
                "POST",
                &format!("/api/customers/{customer}/interactions"),
                Some(body),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{row}");
    }
    let f = &f;
    let status =
        |who: &'static str, uri: &'static str| async move { f.send(who, "GET", uri, None).await.0 };
    // Chen leads lin: lin's list and customers, not wu's; lin does not read chen's.
    assert_eq!(status("chen", "/api/calls?rep=lin").await, StatusCode::OK);
    assert_eq!(
        status("chen", "/api/customers/C1/interactions").await,
        StatusCode::OK
    );
    assert_eq!(
        status("chen", "/api/customers/C4/interactions").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status("chen", "/api/calls?rep=wu").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status("lin", "/api/calls?rep=chen").await,
        StatusCode::FORBIDDEN
    );
    let (_, search) = f.send("chen", "GET", "/api/customers?q=C", None).await;
    let found: Vec<&str> = search["customers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["customer_id"].as_str().unwrap())
        .collect();
    assert_eq!(found, ["C1", "C2", "C3"], "{search}");
    let (_, activity) = f
        .send(
            "chen",
            "GET",
            "/api/pipeline/activity?from=2026-10-01&to=2026-10-31",
            None,
        )
        .await;
    let reps: Vec<&str> = activity["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["rep"].as_str().unwrap())
        .collect();
    assert_eq!(reps, ["lin"], "{activity}");
    // Contacted on Friday the 9th, class 1 (daily), due Saturday the 10th (a working day):
    // on Wednesday the 14th three working days overdue, past `manager_after = 2`.
    let (_, esc) = f
        .send(
            "chen",
            "GET",
            "/api/pipeline/escalations?date=2026-10-14",
            None,
        )
        .await;
    assert_eq!(
        esc["escalations"],
        json!([{"customer_id": "C1", "rep": "lin", "lead": "chen", "class": "1",
                "overdue_days": 3, "step": "tell_manager", "hand_to": null}]),
        "wu's C4 is not chen's to see"
    );
    let (_, esc) = f
        .send(
            "boss",
            "GET",
            "/api/pipeline/escalations?date=2026-10-14",
            None,
        )
        .await;
    assert_eq!(esc["escalations"].as_array().unwrap().len(), 2);
    // Acting on the pool step is an admin's; this policy has none, so nobody is handed on.
    let (code, _) = f
        .send("lin", "POST", "/api/pipeline/escalations", Some(json!({})))
        .await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    let (code, acted) = f
        .send(
            "boss",
            "POST",
            "/api/pipeline/escalations",
            Some(json!({"date": "2026-10-14"})),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{acted}");
    assert_eq!(
        (
            acted["handed_over"].as_u64(),
            acted["escalations"].as_array().map(Vec::len)
        ),
        (Some(0), Some(2))
    );
    // The reports, over chen's team: plan against actual (Mondays planned at 35; the
    // National Day week has only Thursday, Friday and the bridging Saturday), the intent
    // customers, the lost-sale reasons (wu's refusal is not chen's team's).
    let (_, weeks) = f
        .send(
            "chen",
            "GET",
            "/api/pipeline/weeks?from=2026-10-05&to=2026-10-16",
            None,
        )
        .await;
    assert_eq!(
        weeks["weeks"],
        json!([
            {"rep": "lin", "week": "2026-10-05", "working_days": 3, "planned": 0, "contacts": 1, "reached": 1},
            {"rep": "lin", "week": "2026-10-12", "working_days": 5, "planned": 35, "contacts": 0, "reached": 0}
        ])
    );
    let (_, intents) = f
        .send("chen", "GET", "/api/pipeline/intents?to=2026-10-14", None)
        .await;
    assert_eq!(
        intents["customers"],
        json!([{"customer_id": "C1", "rep": "lin", "class": "1", "intent": "good",
                "last_contact": "2026-10-09", "due": "2026-10-10", "overdue_days": 3}])
    );
    let lost = |who: &'static str| async move {
        f.send(
            who,
            "GET",
            "/api/pipeline/lost?from=2026-10-01&to=2026-10-31",
            None,
        )
        .await
        .1["reasons"]
            .clone()
    };
    assert_eq!(
        lost("boss").await,
        json!([{"reason": "too expensive", "contacts": 1, "customers": 1}])
    );
    assert_eq!(lost("chen").await, json!([]));
    let csv = f
        .text(
            "chen",
            "/api/pipeline/funnel?from=2026-10-01&to=2026-10-31&format=csv",
        )
        .await;
    assert_eq!(
        csv,
        (
            StatusCode::OK,
            "class,now,entered,left,moved_to,median_days\n1,1,1,0,,\n4,0,0,0,,\n".to_string()
        )
    );
    let (code, e) = f
        .send("chen", "GET", "/api/pipeline/funnel?format=xml", None)
        .await;
    assert_eq!(
        (code, e["message"].as_str()),
        (
            StatusCode::BAD_REQUEST,
            Some("format `xml`: use json or csv")
        )
    );
    // The plan: everyone to km, nobody's manager yet; analysts read it, admins apply it.
    let (code, plan) = f.send("mei", "GET", "/api/assignments/plan", None).await;
    assert_eq!(code, StatusCode::OK, "{plan}");
    assert_eq!(plan["moved"], 4);
    assert_eq!(
        plan["managers"],
        json!([{"manager": "km", "customers": 4, "capacity": null, "rating": 0}])
    );
    assert_eq!(
        plan["assignments"][3],
        json!({"customer_id": "C4", "manager": "km", "why": "wu is not among the managers"})
    );
    let (code, _) = f.send("mei", "POST", "/api/assignments", None).await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    let (code, applied) = f.send("boss", "POST", "/api/assignments", None).await;
    assert_eq!(code, StatusCode::OK, "{applied}");
    assert_eq!(
        applied["applied"],
        json!({"assigned": 4, "released": 0, "prospects_moved": 2})
    );
    // Owners now: km sees C2 (never a prospect); lin does not any more, nor chen.
    assert_eq!(
        status("km", "/api/customers/C2/interactions").await,
        StatusCode::OK
    );
    assert_eq!(
        status("lin", "/api/customers/C2/interactions").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status("chen", "/api/customers/C1/interactions").await,
        StatusCode::FORBIDDEN
    );
    let (_, list) = f
        .send("km", "GET", "/api/calls?date=2026-10-14", None)
        .await;
    assert_eq!(list["held"], 2, "C1 and C4 followed their manager: {list}");
    let (_, saved) = f.send("mei", "GET", "/api/assignments", None).await;
    assert_eq!(saved["assignments"].as_array().unwrap().len(), 4);
    assert_eq!(saved["assignments"][0]["assigned_by"], "boss");
    let (_, plan) = f.send("mei", "GET", "/api/assignments/plan", None).await;
    assert_eq!(plan["moved"], 0, "stable once applied");
}

stratum_store::on_both!(
    reps_log_contacts_and_work_their_call_lists,
    leads_see_their_team_and_assignments_move_owners
);
