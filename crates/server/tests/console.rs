//! The console's sign-in: passwords, sessions kept in the store, cookies, CSRF tokens, the
//! failure limit, idle expiry and the audit trail, on SQLite and PostgreSQL.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use stratum_server::{AppState, LOGIN_CSRF_COOKIE, SESSION_COOKIE, app, create_key, hash_password};
use stratum_store::{Actor, Role, Store};
use tower::ServiceExt;

const POLICY: &str = r#"
[policy]
name = "console"
as_of = "2026-10-31"
household = "household"

[sources.customers]
path = "customers.csv"
key = "customer_id"

[metrics.spend]
source = "customers"
expr = "spend"

[metrics.owner]
source = "customers"
expr = "owner"

[metrics.household]
source = "customers"
expr = "household_id"

[sources.manual]
format = "inputs"
key = "customer_id"
columns = { relationship = "float" }

[metrics.relationship]
source = "manual"
expr = "relationship"
default = 0

[scores.value]
kind = "weighted"
normalize = "minmax"
scale = 100
[[scores.value.parts]]
metric = "spend"
weight = 1.0

[service]
ladder = "tier"
owner = "owner"
timezone = "Asia/Shanghai"

[benefits.lounge]
title = "Airport lounge"
period = "year"
quota = { gold = 2 }

[pipeline]
daily_capacity = 5
weekly_targets = { tue = 25 }

[[pipeline.classes]]
name = "1"
label = { zh = "1 类：合同已回", en = "1: contract back" }
follow_up_days = 1
pay_within_days = 2

[[pipeline.classes]]
name = "4"
follow_up_days = 10

[ladders.tier]
label = { zh = "等级" }
[[ladders.tier.levels]]
name = "gold"
label = { zh = "金卡" }
when = "spend >= 100"
[[ladders.tier.levels]]
name = "basic"
rest = true
"#;

struct Fixture {
    _dir: tempfile::TempDir,
    state: AppState,
    clock: Arc<Mutex<chrono::DateTime<chrono::Utc>>>,
}

/// A page's answer: status, the `Set-Cookie` headers, `Location`, and the body.
struct Answer {
    status: StatusCode,
    cookies: Vec<String>,
    location: Option<String>,
    body: String,
}

impl Answer {
    /// `name=value` of a cookie this answer sets, for the next request.
    fn cookie(&self, name: &str) -> Option<String> {
        self.cookies
            .iter()
            .find(|c| c.starts_with(&format!("{name}=")))
            .map(|c| c.split(';').next().unwrap().to_string())
    }
    /// The value of a hidden form field named `csrf`.
    fn csrf_field(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a csrf field")
            + 19;
        self.body[at..].split('"').next().unwrap().to_string()
    }
}

async fn fixture(url: String) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.toml"), POLICY).unwrap();
    std::fs::write(
        dir.path().join("customers.csv"),
        "customer_id,spend,owner,household_id\nC1,150,wang,H1\nC2,20,li,H1\n",
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
    for (name, role) in [
        ("mei", Role::Analyst),
        ("wang", Role::Agent),
        ("boss", Role::Admin),
        ("ivr", Role::Service),
    ] {
        store.add_user(name, role, &root).await.unwrap();
        store
            .set_password(
                name,
                &hash_password("correct horse battery").unwrap(),
                &root,
            )
            .await
            .unwrap();
    }
    let clock = Arc::new(Mutex::new(
        chrono::DateTime::parse_from_rfc3339("2026-11-24T02:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc),
    ));
    let now = clock.clone();
    let state = AppState::new(store, loaded).with_clock(move || *now.lock().unwrap());
    Fixture {
        _dir: dir,
        state,
        clock,
    }
}

impl Fixture {
    async fn send(&self, method: &str, uri: &str, cookies: &[&str], form: Option<&str>) -> Answer {
        self.send_with(method, uri, cookies, form, &[]).await
    }

    async fn send_with(
        &self,
        method: &str,
        uri: &str,
        cookies: &[&str],
        form: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut req = Request::builder().method(method).uri(uri);
        if !cookies.is_empty() {
            req = req.header(header::COOKIE, cookies.join("; "));
        }
        if form.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        for (h, v) in headers {
            req = req.header(*h, *v);
        }
        let req = req
            .body(
                form.map(|f| Body::from(f.to_string()))
                    .unwrap_or_else(Body::empty),
            )
            .unwrap();
        let resp = app(self.state.clone()).oneshot(req).await.unwrap();
        let status = resp.status();
        let cookies = resp
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        let location = resp
            .headers()
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap().to_string());
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            cookies,
            location,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// Opens the sign-in form and submits it; the answer and the form's CSRF cookie.
    async fn sign_in(&self, name: &str, password: &str) -> (Answer, String) {
        let page = self.send("GET", "/login", &[], None).await;
        let csrf_cookie = page.cookie(LOGIN_CSRF_COOKIE).expect("a CSRF cookie");
        let form = format!("name={name}&password={password}&csrf={}", page.csrf_field());
        let answer = self
            .send("POST", "/login", &[&csrf_cookie], Some(&form))
            .await;
        (answer, csrf_cookie)
    }

    /// Signs `name` in with the fixture's password; its session cookie.
    async fn session(&self, name: &str) -> String {
        self.session_with(name, "correct+horse+battery").await
    }

    async fn session_with(&self, name: &str, password: &str) -> String {
        let (ok, _) = self.sign_in(name, password).await;
        assert_eq!(ok.status, StatusCode::SEE_OTHER, "{name}: {}", ok.body);
        ok.cookie(SESSION_COOKIE).unwrap()
    }

    async fn audit_actions(&self) -> Vec<String> {
        let mut actions: Vec<String> = self
            .state
            .store
            .audit_log(100)
            .await
            .unwrap()
            .into_iter()
            .map(|a| format!("{} {}", a.action, a.subject))
            .filter(|a| a.starts_with("log"))
            .collect();
        actions.reverse();
        actions
    }
}

async fn signing_in_and_out(url: String) {
    let f = fixture(url).await;
    // Not signed in: every page sends the browser to the sign-in form.
    let home = f.send("GET", "/", &[], None).await;
    assert_eq!(home.status, StatusCode::SEE_OTHER);
    assert_eq!(home.location.as_deref(), Some("/login"));

    let page = f.send("GET", "/login", &[], None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains("<form method=\"post\" action=\"/login\">")
    );
    let csrf = page
        .cookies
        .iter()
        .find(|c| c.starts_with(LOGIN_CSRF_COOKIE))
        .unwrap();
    assert!(
        csrf.contains("HttpOnly") && csrf.contains("SameSite=Strict"),
        "{csrf}"
    );

    // A wrong password: the form again with a message, audited, no session.
    let (wrong, _) = f.sign_in("mei", "not the password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("wrong user name or password"));
    assert!(wrong.cookie(SESSION_COOKIE).is_none());
    // An unknown user reads the same.
    let (unknown, _) = f.sign_in("nobody", "correct horse battery").await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert!(unknown.body.contains("wrong user name or password"));

    // The right one: a session cookie (HttpOnly, SameSite=Strict, not Secure over HTTP).
    let (ok, _) = f.sign_in("mei", "correct+horse+battery").await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    assert_eq!(ok.location.as_deref(), Some("/"));
    let set = ok
        .cookies
        .iter()
        .find(|c| c.starts_with(SESSION_COOKIE))
        .unwrap();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/"));
    assert!(!set.contains("Secure"), "{set}");
    let session = ok.cookie(SESSION_COOKIE).unwrap();

    let home = f.send("GET", "/", &[&session], None).await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(
        home.body.contains("signed in as mei (analyst)"),
        "{}",
        home.body
    );
    assert!(
        home.body
            .contains("Serving run #1 as of 2026-10-31 (2 customers).")
    );
    // The dashboard draws the recorded run's pyramid (no value measure here: counts only).
    assert!(
        home.body.contains(">gold: 1 (50.0%)</text>"),
        "{}",
        home.body
    );
    assert!(
        home.body.contains(">basic: 1 (50.0%)</text>"),
        "{}",
        home.body
    );
    assert!(
        home.body.contains(
            "<th scope=\"row\">#1 (2026-10-31)</th><td class=\"num\">1</td><td class=\"num\">1</td>"
        ),
        "{}",
        home.body
    );

    // The session is the store's: a server started afresh knows it.
    let restarted = Fixture {
        _dir: tempfile::tempdir().unwrap(),
        state: {
            let now = f.clock.clone();
            AppState::new(
                f.state.store.clone(),
                stratum_runner::load_policy(&f.state.policy.path).unwrap(),
            )
            .with_clock(move || *now.lock().unwrap())
        },
        clock: f.clock.clone(),
    };
    let again = restarted.send("GET", "/", &[&session], None).await;
    assert_eq!(again.status, StatusCode::OK);

    // A session cookie is not an API key.
    let api = f.send("GET", "/api/runs", &[&session], None).await;
    assert_eq!(api.status, StatusCode::UNAUTHORIZED);

    // Signing out needs the page's CSRF token.
    let forged = f
        .send("POST", "/logout", &[&session], Some("csrf=guess"))
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(
        f.send("GET", "/", &[&session], None).await.status,
        StatusCode::OK
    );
    let token = home.csrf_field();
    let out = f
        .send(
            "POST",
            "/logout",
            &[&session],
            Some(&format!("csrf={token}")),
        )
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.location.as_deref(), Some("/login"));
    let after = f.send("GET", "/", &[&session], None).await;
    assert_eq!(after.location.as_deref(), Some("/login"));

    assert_eq!(
        f.audit_actions().await,
        [
            "login.fail mei",
            "login.fail nobody",
            "login mei",
            "logout mei"
        ]
    );
}

async fn forms_need_their_csrf_token(url: String) {
    let f = fixture(url).await;
    // A sign-in posted without the form's cookie (another site's form) is refused.
    let page = f.send("GET", "/login", &[], None).await;
    let form = format!(
        "name=mei&password=correct+horse+battery&csrf={}",
        page.csrf_field()
    );
    let cross = f.send("POST", "/login", &[], Some(&form)).await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);
    assert!(cross.cookie(SESSION_COOKIE).is_none());
    // Behind a proxy that says HTTPS, cookies are Secure.
    let secure = f
        .send_with(
            "GET",
            "/login",
            &[],
            None,
            &[("x-forwarded-proto", "https")],
        )
        .await;
    let csrf = secure
        .cookies
        .iter()
        .find(|c| c.starts_with(LOGIN_CSRF_COOKIE))
        .unwrap();
    assert!(csrf.contains("Secure"), "{csrf}");
}

async fn failed_sign_ins_lock_the_name_for_a_while(url: String) {
    let f = fixture(url).await;
    for _ in 0..10 {
        let (wrong, _) = f.sign_in("mei", "wrong password").await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    }
    // Locked: even the right password is refused, before it is checked.
    let (locked, _) = f.sign_in("mei", "correct+horse+battery").await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        locked
            .body
            .contains("too many failed sign-ins; try again in 60 seconds")
    );
    assert!(locked.cookie(SESSION_COOKIE).is_none());
}

async fn idle_sessions_and_disabled_users_end(url: String) {
    let f = fixture(url).await;
    let (ok, _) = f.sign_in("mei", "correct+horse+battery").await;
    let session = ok.cookie(SESSION_COOKIE).unwrap();
    // 29 minutes later the session still works (and counts as used now)…
    *f.clock.lock().unwrap() += chrono::TimeDelta::minutes(29);
    assert_eq!(
        f.send("GET", "/", &[&session], None).await.status,
        StatusCode::OK
    );
    *f.clock.lock().unwrap() += chrono::TimeDelta::minutes(29);
    assert_eq!(
        f.send("GET", "/", &[&session], None).await.status,
        StatusCode::OK
    );
    // …31 minutes unused, it has ended.
    *f.clock.lock().unwrap() += chrono::TimeDelta::minutes(31);
    let idle = f.send("GET", "/", &[&session], None).await;
    assert_eq!(idle.location.as_deref(), Some("/login"));
    // Sessions left idle without a visit are swept at the next sign-in.
    let forgotten = f.session("boss").await;
    *f.clock.lock().unwrap() += chrono::TimeDelta::minutes(45);
    let _ = f.session("wang").await;
    let token = forgotten.split('=').nth(1).unwrap();
    let hex: String = <sha2::Sha256 as sha2::Digest>::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let digest = format!("sha256:{hex}");
    assert!(
        f.state.store.session(&digest).await.unwrap().is_none(),
        "the forgotten session is gone from the store"
    );

    let (ok, _) = f.sign_in("mei", "correct+horse+battery").await;
    let session = ok.cookie(SESSION_COOKIE).unwrap();
    let root = Actor {
        name: "root".into(),
        origin: "test".into(),
    };
    f.state.store.disable_user("mei", &root).await.unwrap();
    let disabled = f.send("GET", "/", &[&session], None).await;
    assert_eq!(disabled.location.as_deref(), Some("/login"));
    let (refused, _) = f.sign_in("mei", "correct+horse+battery").await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    // API keys keep working for the API, beside the console.
    let key = create_key(&f.state.store, "ivr", &root).await.unwrap();
    let req = Request::builder()
        .uri("/api/benefits")
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .body(Body::empty())
        .unwrap();
    let resp = app(f.state.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[test]
fn short_passwords_are_refused() {
    assert_eq!(
        hash_password("short").unwrap_err(),
        "a password has at least 10 characters"
    );
    let hash = hash_password("long enough password").unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
}

async fn customer_pages_follow_the_ownership_rule(url: String) {
    let f = fixture(url).await;
    let (ok, _) = f.sign_in("mei", "correct+horse+battery").await;
    let analyst = ok.cookie(SESSION_COOKIE).unwrap();
    let list = f.send("GET", "/customers?q=C", &[&analyst], None).await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(
        list.body
            .contains(r#"<td><a href="/customers/C1">C1</a></td><td>gold</td><td>wang</td>"#)
            && list
                .body
                .contains(r#"<td><a href="/customers/C2">C2</a></td><td>basic</td><td>li</td>"#),
        "{}",
        list.body
    );
    let card = f.send("GET", "/customers/C1", &[&analyst], None).await;
    assert_eq!(card.status, StatusCode::OK);
    assert!(card.body.contains("<h1>Customer C1</h1>"), "{}", card.body);
    assert!(
        card.body.contains("<dt>Owner</dt><dd>wang</dd>"),
        "{}",
        card.body
    );
    assert!(
        card.body
            .contains(r#"<th scope="row">tier</th><td class="level">gold</td>"#),
        "{}",
        card.body
    );
    assert!(card.body.contains("spend 150 &#62;= 100"), "{}", card.body);
    assert!(
        card.body.contains(
            r#"<td class="num">#1</td><td class="date">2026-10-31</td><td>tier</td><td>gold</td>"#
        ),
        "{}",
        card.body
    );
    let unknown = f.send("GET", "/customers/C9", &[&analyst], None).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    // An agent finds and opens only its own customers; another's is refused like a made-up id.
    let (ok, _) = f.sign_in("wang", "correct+horse+battery").await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    let agent = ok.cookie(SESSION_COOKIE).unwrap();
    let mine = f.send("GET", "/customers?q=C", &[&agent], None).await;
    assert!(mine.body.contains("/customers/C1") && !mine.body.contains("/customers/C2"));
    assert!(mine.body.contains("yours only"), "{}", mine.body);
    assert_eq!(
        f.send("GET", "/customers/C1", &[&agent], None).await.status,
        StatusCode::OK
    );
    for other in ["C2", "C9"] {
        let refused = f
            .send("GET", &format!("/customers/{other}"), &[&agent], None)
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{other}");
        assert_eq!(
            refused.body,
            format!("customer {other} is not one of yours")
        );
    }
}

/// Redeem and cancel from the card: a redeemer's form with the session's CSRF token, the
/// quota counted as the API counts it, a repeated form redeeming once.
async fn benefits_are_redeemed_and_cancelled_from_the_card(url: String) {
    let f = fixture(url).await;
    let (ok, _) = f.sign_in("wang", "correct+horse+battery").await;
    let agent = ok.cookie(SESSION_COOKIE).unwrap();
    let card = f.send("GET", "/customers/C1", &[&agent], None).await;
    let row = |body: &str| {
        let at = body
            .find("<th scope=\"row\">Airport lounge</th>")
            .expect("the lounge row");
        body[at..].split("</tr>").next().unwrap().to_string()
    };
    assert!(
        row(&card.body)
            .contains(r#"<td class="num">2</td><td class="num">0</td><td class="num">2</td>"#),
        "{}",
        row(&card.body)
    );
    let key_at = card.body.find("name=\"key\" value=\"").unwrap() + 18;
    let key = card.body[key_at..].split('"').next().unwrap().to_string();
    let form = format!("csrf={}&benefit=lounge&key={key}", card.csrf_field());
    // Without the page's token: refused, nothing redeemed.
    let forged = f
        .send(
            "POST",
            "/customers/C1/redemptions",
            &[&agent],
            Some(&format!("csrf=x&benefit=lounge&key={key}")),
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    for _ in 0..2 {
        // Submitted twice (a double click): one redemption.
        let done = f
            .send("POST", "/customers/C1/redemptions", &[&agent], Some(&form))
            .await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
        assert_eq!(done.location.as_deref(), Some("/customers/C1"));
    }
    let card = f.send("GET", "/customers/C1", &[&agent], None).await;
    assert!(
        row(&card.body)
            .contains(r#"<td class="num">2</td><td class="num">1</td><td class="num">1</td>"#),
        "{}",
        row(&card.body)
    );
    // The redemption, in the service's time zone (10:00 in Shanghai is 02:00 UTC).
    assert!(card.body.contains(r#"<td class="num">1</td><td>lounge</td><td class="num">1</td><td>gold</td><td class="date">2026-11-24 10:00</td><td>active</td>"#), "{}", card.body);
    let cancel = f
        .send(
            "POST",
            "/redemptions/1/cancel",
            &[&agent],
            Some(&format!("csrf={}", card.csrf_field())),
        )
        .await;
    assert_eq!(cancel.location.as_deref(), Some("/customers/C1"));
    let card = f.send("GET", "/customers/C1", &[&agent], None).await;
    assert!(
        row(&card.body)
            .contains(r#"<td class="num">2</td><td class="num">0</td><td class="num">2</td>"#)
    );
    assert!(card.body.contains("<td>cancelled</td>"));
    // An analyst sees the card but no forms, and a posted form is refused.
    let (ok, _) = f.sign_in("mei", "correct+horse+battery").await;
    let analyst = ok.cookie(SESSION_COOKIE).unwrap();
    let card = f.send("GET", "/customers/C1", &[&analyst], None).await;
    assert!(!card.body.contains("Redeem one"), "{}", card.body);
    let refused = f
        .send(
            "POST",
            "/customers/C1/redemptions",
            &[&analyst],
            Some(&format!("csrf={}&benefit=lounge&key=k", card.csrf_field())),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.body, "the analyst role may not redeem benefits");
}

/// Every page answers its roles and refuses the others (403 with the reason); every page's
/// structure is closed.
async fn every_page_answers_the_roles_it_names(url: String) {
    let f = fixture(url).await;
    let pages: [(&str, &[&str]); 9] = [
        ("/pipeline", &["boss", "mei", "wang"]),
        ("/calls", &["boss", "mei", "wang"]),
        ("/policy", &["boss", "mei", "wang", "ivr"]),
        ("/mine", &["wang"]),
        ("/", &["boss", "mei", "wang", "ivr"]),
        ("/customers", &["boss", "mei", "wang", "ivr"]),
        ("/customers/C1", &["boss", "mei", "wang", "ivr"]),
        ("/runs", &["boss", "mei"]),
        ("/admin", &["boss"]),
    ];
    for user in ["boss", "mei", "wang", "ivr"] {
        let (ok, _) = f.sign_in(user, "correct+horse+battery").await;
        let session = ok.cookie(SESSION_COOKIE).unwrap();
        for (page, allowed) in pages {
            let answer = f.send("GET", page, &[&session], None).await;
            if allowed.contains(&user) {
                assert_eq!(
                    answer.status,
                    StatusCode::OK,
                    "{user} {page}: {}",
                    answer.body
                );
                for tag in ["html", "main", "table", "form", "section", "svg", "header"] {
                    assert_eq!(
                        answer.body.matches(&format!("<{tag}")).count(),
                        answer.body.matches(&format!("</{tag}>")).count(),
                        "{user} {page}: <{tag}> not closed"
                    );
                }
            } else {
                assert_eq!(answer.status, StatusCode::FORBIDDEN, "{user} {page}");
                assert!(
                    answer.body.contains("role may not see the"),
                    "{}",
                    answer.body
                );
            }
        }
    }
    // The admin page lists users, keys and the audit log, narrowed on request.
    let (ok, _) = f.sign_in("boss", "correct+horse+battery").await;
    let session = ok.cookie(SESSION_COOKIE).unwrap();
    let admin = f
        .send("GET", "/admin?action=login", &[&session], None)
        .await;
    assert!(
        admin.body.contains("<td>wang</td><td>agent</td>"),
        "{}",
        admin.body
    );
    assert!(
        admin.body.contains("<td>login</td><td>boss</td>"),
        "{}",
        admin.body
    );
    assert!(
        !admin.body.contains("<td>user.add</td>"),
        "filtered to logins: {}",
        admin.body
    );
    // An admin disables a user and revokes a key from the page (CSRF-checked, audited).
    let root = Actor {
        name: "root".into(),
        origin: "test".into(),
    };
    let key = create_key(&f.state.store, "ivr", &root).await.unwrap();
    let key_id = key.split('_').nth(1).unwrap().to_string();
    let csrf = admin.csrf_field();
    let forged = f
        .send(
            "POST",
            "/admin/users/ivr/disable",
            &[&session],
            Some("csrf=guess"),
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let disabled = f
        .send(
            "POST",
            "/admin/users/ivr/disable",
            &[&session],
            Some(&format!("csrf={csrf}")),
        )
        .await;
    assert_eq!(disabled.location.as_deref(), Some("/admin"));
    let revoked = f
        .send(
            "POST",
            &format!("/admin/keys/{key_id}/revoke"),
            &[&session],
            Some(&format!("csrf={csrf}")),
        )
        .await;
    assert_eq!(revoked.location.as_deref(), Some("/admin"));
    let admin = f.send("GET", "/admin", &[&session], None).await;
    let row_of = |start: &str| {
        let at = admin.body.find(start).expect("the row");
        admin.body[at..].split("</tr>").next().unwrap().to_string()
    };
    assert!(row_of("<td>ivr</td><td>service</td>").contains("<td>disabled</td>"));
    assert!(row_of(&format!("<td>{key_id}</td><td>ivr</td>")).contains("<td>revoked</td>"));
    assert!(
        admin.body.contains("<td>user.disable</td><td>ivr</td>"),
        "{}",
        admin.body
    );
    assert!(
        admin
            .body
            .contains(&format!("<td>key.revoke</td><td>{key_id}</td>")),
        "{}",
        admin.body
    );
    let (refused, _) = f.sign_in("ivr", "correct+horse+battery").await;
    assert_eq!(
        refused.status,
        StatusCode::UNAUTHORIZED,
        "a disabled user cannot sign in"
    );
    // Not for analysts.
    let (ok, _) = f.sign_in("mei", "correct+horse+battery").await;
    let analyst = ok.cookie(SESSION_COOKIE).unwrap();
    let home = f.send("GET", "/", &[&analyst], None).await;
    let no = f
        .send(
            "POST",
            "/admin/users/wang/disable",
            &[&analyst],
            Some(&format!("csrf={}", home.csrf_field())),
        )
        .await;
    assert_eq!(no.status, StatusCode::FORBIDDEN);

    let (ok, _) = f.sign_in("wang", "correct+horse+battery").await;
    let agent = ok.cookie(SESSION_COOKIE).unwrap();
    let mine = f.send("GET", "/mine", &[&agent], None).await;
    assert!(
        mine.body
            .contains(r#"<td><a href="/customers/C1">C1</a></td><td>gold</td>"#)
            && !mine.body.contains("/customers/C2"),
        "{}",
        mine.body
    );
    let runs = f.send("GET", "/runs", &[&session], None).await;
    assert!(
        runs.body.contains(
            r#"<td class="num">#1</td><td class="date">2026-10-31</td><td class="num">2</td>"#
        ),
        "{}",
        runs.body
    );
    assert!(runs.body.contains("<td>served</td>"));
}

/// The card rebuilds the customer's recorded row: what the next level needs, the score part
/// by part, the household's other members.
async fn the_card_says_what_the_next_level_needs(url: String) {
    let f = fixture(url).await;
    let analyst = f.session("mei").await;
    let card = f.send("GET", "/customers/C2", &[&analyst], None).await;
    assert_eq!(card.status, StatusCode::OK, "{}", card.body);
    assert!(
        card.body.contains(
            r#"<td class="gap">needs 80 more spend (has 20, gold requires &#62;= 100) for gold</td>"#
        ),
        "{}",
        card.body
    );
    assert!(
        card.body.contains(r#"<dt>household</dt><dd>H1</dd>"#)
            && card
                .body
                .contains(r#"<dd class="household"><a href="/customers/C1">C1</a> </dd>"#),
        "{}",
        card.body
    );
    let c1 = f.send("GET", "/customers/C1", &[&analyst], None).await;
    assert!(
        c1.body
            .contains(r#"<td class="gap">already on the top level</td>"#)
    );
    // minmax over 20..150: C1's spend is the top, 100 points of 100.
    assert!(
        c1.body
            .contains("<caption>Score breakdown: value = 100.00</caption>"),
        "{}",
        c1.body
    );
    assert!(
        c1.body.contains(
            r#"<tr><th scope="row">spend</th><td class="num">150</td><td>× 1 (minmax)</td><td class="num">100.00</td></tr>"#
        ),
        "{}",
        c1.body
    );
    assert!(
        card.body
            .contains("<caption>Score breakdown: value = 0.00</caption>")
    );
}

/// Pages follow Accept-Language, the header's switch sets a cookie that wins over it, and
/// the policy's labels name ladders and levels in the language.
async fn pages_speak_chinese_and_english(url: String) {
    let f = fixture(url).await;
    let analyst = f.session("mei").await;
    let zh = [("accept-language", "zh-CN,zh;q=0.9,en;q=0.8")];
    let home = f.send_with("GET", "/", &[&analyst], None, &zh).await;
    assert!(
        home.body.contains(r#"<html lang="zh-CN">"#),
        "{}",
        home.body
    );
    assert!(home.body.contains(r#"<a href="/policy">分级策略</a>"#));
    assert!(
        home.body
            .contains("当前分级：运行 #1 截至 2026年10月31日 (2 位客户)."),
        "{}",
        home.body
    );
    assert!(
        home.body.contains(">金卡: 1 (50.0%)</text>"),
        "{}",
        home.body
    );
    assert!(home.body.contains(">各级客户数</text>"));
    assert!(home.body.contains("<h2>等级</h2>"), "{}", home.body);
    let card = f
        .send_with("GET", "/customers/C1", &[&analyst], None, &zh)
        .await;
    assert!(
        card.body
            .contains(r#"<th scope="row">等级</th><td class="level">金卡</td>"#),
        "{}",
        card.body
    );
    // The switch: a cookie, then back to the page; English now, whatever the header says.
    let switch = f
        .send("GET", "/lang/en?back=/customers%3Fq%3DC", &[&analyst], None)
        .await;
    assert_eq!(switch.status, StatusCode::SEE_OTHER);
    assert_eq!(switch.location.as_deref(), Some("/customers?q=C"));
    let lang = switch.cookie("stratum_lang").unwrap();
    assert_eq!(lang, "stratum_lang=en");
    let en = f.send_with("GET", "/", &[&analyst, &lang], None, &zh).await;
    assert!(en.body.contains(r#"<html lang="en">"#));
    assert!(en.body.contains(">gold: 1 (50.0%)</text>"));
    // The way back stays on this site.
    for back in [
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example",
    ] {
        let away = f
            .send("GET", &format!("/lang/zh?back={back}"), &[&analyst], None)
            .await;
        assert_eq!(away.location.as_deref(), Some("/"), "{back}");
    }
    assert_eq!(
        f.send("GET", "/lang/fr", &[&analyst], None).await.status,
        StatusCode::NOT_FOUND
    );
}

/// Overrides and manual inputs from the card: admins only, a reason required, audited,
/// pending until the next run.
async fn overrides_and_inputs_are_edited_from_the_card(url: String) {
    let f = fixture(url).await;
    let admin = f.session("boss").await;
    let card = f.send("GET", "/customers/C2", &[&admin], None).await;
    let csrf = card.csrf_field();
    let post = |path: &'static str, form: String, who: String| {
        let f = &f;
        async move { f.send("POST", path, &[&who], Some(&form)).await }
    };
    let no_reason = post(
        "/customers/C2/overrides",
        format!("csrf={csrf}&ladder=tier&level=gold&mode=pin&reason=+&until="),
        admin.clone(),
    )
    .await;
    assert_eq!(no_reason.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        no_reason.body.contains("an override needs a reason"),
        "{}",
        no_reason.body
    );
    let bad_date = post(
        "/customers/C2/overrides",
        format!("csrf={csrf}&ladder=tier&level=gold&mode=pin&reason=vip&until=soon"),
        admin.clone(),
    )
    .await;
    assert!(bad_date.body.contains("`soon` is not a date (YYYY-MM-DD)"));
    let unknown = post(
        "/customers/C2/overrides",
        format!("csrf={csrf}&ladder=tier&level=platinum&mode=pin&reason=vip&until="),
        admin.clone(),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(unknown.body.contains("platinum"), "{}", unknown.body);
    let forged = post(
        "/customers/C2/overrides",
        "csrf=guess&ladder=tier&level=gold&mode=pin&reason=vip&until=".to_string(),
        admin.clone(),
    )
    .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let added = post(
        "/customers/C2/overrides",
        format!("csrf={csrf}&ladder=tier&level=gold&mode=pin&reason=vip+guest&until=2026-12-31"),
        admin.clone(),
    )
    .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    assert_eq!(added.location.as_deref(), Some("/customers/C2"));
    let card = f.send("GET", "/customers/C2", &[&admin], None).await;
    assert!(
        card.body.contains(
            r#"<td class="num">1</td><td>tier</td><td>pin gold (≤ 2026-12-31)</td><td>vip guest</td><td>boss</td>"#
        ),
        "{}",
        card.body
    );
    assert!(
        card.body.contains("override #1: pin gold on tier"),
        "{}",
        card.body
    );
    // An input, checked against its declared type.
    let not_a_number = post(
        "/customers/C2/inputs",
        format!("csrf={csrf}&field=relationship&value=lots&reason=met+them"),
        admin.clone(),
    )
    .await;
    assert_eq!(not_a_number.status, StatusCode::UNPROCESSABLE_ENTITY);
    let set = post(
        "/customers/C2/inputs",
        format!("csrf={csrf}&field=relationship&value=4&reason=met+them"),
        admin.clone(),
    )
    .await;
    assert_eq!(set.status, StatusCode::SEE_OTHER, "{}", set.body);
    let card = f.send("GET", "/customers/C2", &[&admin], None).await;
    assert!(
        card.body
            .contains(r#"<th scope="row">relationship</th><td>4</td><td>met them (boss,"#),
        "{}",
        card.body
    );
    // Removing needs a reason too.
    let bare = post(
        "/overrides/1/remove",
        format!("csrf={csrf}&customer=C2&reason="),
        admin.clone(),
    )
    .await;
    assert_eq!(bare.status, StatusCode::UNPROCESSABLE_ENTITY);
    let removed = post(
        "/overrides/1/remove",
        format!("csrf={csrf}&customer=C2&reason=left+the+board"),
        admin.clone(),
    )
    .await;
    assert_eq!(removed.location.as_deref(), Some("/customers/C2"));
    let card = f.send("GET", "/customers/C2", &[&admin], None).await;
    assert!(!card.body.contains("vip guest"));
    // Analysts and agents see no forms and are refused.
    let analyst = f.session("mei").await;
    let card = f.send("GET", "/customers/C2", &[&analyst], None).await;
    assert!(!card.body.contains("action=\"/customers/C2/overrides\""));
    let refused = post(
        "/customers/C2/overrides",
        format!(
            "csrf={}&ladder=tier&level=gold&mode=pin&reason=x&until=",
            card.csrf_field()
        ),
        analyst,
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.body, "the analyst role may not change overrides");
    let actions: Vec<String> = f
        .state
        .store
        .audit_log(100)
        .await
        .unwrap()
        .into_iter()
        .map(|a| format!("{} {} {}", a.actor, a.action, a.subject))
        .collect();
    for want in [
        "boss override.add C2",
        "boss input.set C2",
        "boss override.remove C2",
    ] {
        assert!(actions.iter().any(|a| a == want), "{want}: {actions:?}");
    }
}

/// The policy page renders the served policy; analysts evaluate a draft and see how
/// customers would move; agents see no form and are refused.
async fn the_policy_page_and_its_what_if(url: String) {
    let f = fixture(url).await;
    let analyst = f.session("mei").await;
    let page = f.send("GET", "/policy", &[&analyst], None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains(r#"<tr><th scope="row">gold</th><td>spend &#62;= 100</td>"#),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("weight 1 × minmax, higher is better (scale 100)")
    );
    let draft = f.state.policy.text.replace("spend >= 100", "spend >= 10");
    let form = format!(
        "csrf={}&draft={}",
        page.csrf_field(),
        draft
            .bytes()
            .map(|b| format!("%{b:02X}"))
            .collect::<String>()
    );
    let tried = f
        .send("POST", "/policy/what-if", &[&analyst], Some(&form))
        .await;
    assert_eq!(tried.status, StatusCode::OK, "{}", tried.body);
    assert!(
        tried.body.contains("<h3>tier: 1 up, 0 down</h3>"),
        "{}",
        tried.body
    );
    assert!(
        tried
            .body
            .contains(r#"data-from="basic" data-to="gold" data-customers="1""#),
        "{}",
        tried.body
    );
    // Nothing recorded.
    assert_eq!(f.state.store.runs(None).await.unwrap().len(), 1);
    let broken = f
        .send(
            "POST",
            "/policy/what-if",
            &[&analyst],
            Some(&format!("csrf={}&draft=%5Bladders", page.csrf_field())),
        )
        .await;
    assert_eq!(broken.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(broken.body.contains(r#"<p class="error" role="alert">"#));
    let agent = f.session("wang").await;
    let page = f.send("GET", "/policy", &[&agent], None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("/policy/what-if"));
    let refused = f
        .send(
            "POST",
            "/policy/what-if",
            &[&agent],
            Some(&format!("csrf={}&draft=x", page.csrf_field())),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
}

/// A run started from the runs page: its stages followed until it is recorded, then the two
/// runs compared and the moves exported.
async fn runs_are_started_followed_and_compared(url: String) {
    let f = fixture(url).await;
    let analyst = f.session("mei").await;
    let page = f.send("GET", "/runs", &[&analyst], None).await;
    let forged = f
        .send("POST", "/runs", &[&analyst], Some("csrf=guess"))
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    std::fs::write(
        f.state.policy.base_dir.join("customers.csv"),
        "customer_id,spend,owner,household_id\nC1,150,wang,H1\nC2,120,li,H1\n",
    )
    .unwrap();
    let started = f
        .send(
            "POST",
            "/runs",
            &[&analyst],
            Some(&format!("csrf={}&as_of=2026-11-30", page.csrf_field())),
        )
        .await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    let mut job = String::new();
    for _ in 0..200 {
        job = f.send("GET", "/runs/job", &[&analyst], None).await.body;
        if job.contains("\"finished\":true") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        job.contains("\"run_id\":2") && job.contains("scoring and placing"),
        "{job}"
    );
    let page = f.send("GET", "/runs", &[&analyst], None).await;
    assert!(page.body.contains("<h2>#2 ✓ (mei,"), "{}", page.body);
    assert!(
        page.body.contains(
            r#"<td class="num">#2</td><td class="date">2026-11-30</td><td class="num">2</td><td>mei</td>"#
        ),
        "{}",
        page.body
    );
    let compared = f
        .send("GET", "/runs/compare?from=1&to=2", &[&analyst], None)
        .await;
    assert_eq!(compared.status, StatusCode::OK, "{}", compared.body);
    assert!(
        compared
            .body
            .contains("<h2>tier: 1 up, 0 down, 0 new, 0 gone</h2>"),
        "{}",
        compared.body
    );
    assert!(compared.body.contains(
        r#"<td><a href="/customers/C2">C2</a></td><td>basic</td><td>gold</td><td>up</td>"#
    ));
    let csv = f
        .send(
            "GET",
            "/runs/compare?from=1&to=2&format=csv",
            &[&analyst],
            None,
        )
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(
        csv.body.starts_with(
            "ladder,customer_id,from_level,to_level,direction,value,explanation\ntier,C2,basic,gold,up,"
        ),
        "{}",
        csv.body
    );
    let parquet = f
        .send(
            "GET",
            "/runs/compare?from=1&to=2&format=parquet",
            &[&analyst],
            None,
        )
        .await;
    assert!(parquet.body.starts_with("PAR1"));
    let bad = f
        .send(
            "GET",
            "/runs/compare?from=1&to=2&format=xlsx",
            &[&analyst],
            None,
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let missing = f
        .send("GET", "/runs/compare?from=1&to=9", &[&analyst], None)
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let audited = f.state.store.audit_log(50).await.unwrap();
    assert!(
        audited
            .iter()
            .any(|a| a.action == "run.start" && a.subject == "2" && a.actor == "mei")
    );
    let agent = f.session("wang").await;
    for page in ["/runs/job", "/runs/compare?from=1&to=2"] {
        assert_eq!(
            f.send("GET", page, &[&agent], None).await.status,
            StatusCode::FORBIDDEN,
            "{page}"
        );
    }
}

/// A rep's call list: today's calls with a form each; logging one takes it off the list.
async fn reps_work_their_call_list(url: String) {
    let f = fixture(url).await;
    let root = Actor {
        name: "root".into(),
        origin: "test".into(),
    };
    // Wang's C1 was contacted on Monday the 23rd, class 1 (daily): due today, Tuesday.
    let monday = chrono::NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
    f.state
        .store
        .log_interaction(
            &stratum_store::NewInteraction {
                customer_id: "C1".into(),
                rep: "wang".into(),
                on: monday,
                at: chrono::Utc::now(),
                channel: stratum_core::pipeline::Channel::Call,
                outcome: stratum_core::pipeline::Outcome::Reached,
                intent: Some(stratum_core::pipeline::Intent::Good),
                class: Some("1".into()),
                next_contact: None,
                notes: String::new(),
            },
            &root,
        )
        .await
        .unwrap();
    let agent = f.session("wang").await;
    let list = f.send("GET", "/calls", &[&agent], None).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert!(
        list.body.contains("<h1>Call list: wang, 2026-11-24</h1>"),
        "{}",
        list.body
    );
    assert!(list.body.contains("1 call(s) (target 25)"), "{}", list.body);
    assert!(
        list.body.contains(
            r#"<td><a href="/customers/C1">C1</a></td><td>1: contract back</td><td class="date">2026-11-24</td><td>good</td><td>morning</td>"#
        ),
        "{}",
        list.body
    );
    let zh = f
        .send_with(
            "GET",
            "/calls",
            &[&agent],
            None,
            &[("accept-language", "zh")],
        )
        .await;
    assert!(zh.body.contains("<td>1 类：合同已回</td>"), "{}", zh.body);
    let csrf = list.csrf_field();
    let form = |customer: &str| {
        format!(
            "csrf={csrf}&date=2026-11-24&rep=wang&channel=call&outcome=reached&intent=very_likely&class=&next_contact=2026-11-26&notes=sent+the+contract"
        )
        .replace("C1", customer)
    };
    let logged = f
        .send("POST", "/calls/C1/log", &[&agent], Some(&form("C1")))
        .await;
    assert_eq!(logged.status, StatusCode::SEE_OTHER, "{}", logged.body);
    assert_eq!(
        logged.location.as_deref(),
        Some("/calls?rep=wang&date=2026-11-24")
    );
    let list = f.send("GET", "/calls", &[&agent], None).await;
    assert!(list.body.contains("0 call(s)"), "{}", list.body);
    let thursday = f
        .send("GET", "/calls?date=2026-11-26", &[&agent], None)
        .await;
    assert!(thursday.body.contains("/customers/C1"), "set for Thursday");
    // The card lists the contacts.
    let card = f.send("GET", "/customers/C1", &[&agent], None).await;
    assert!(
        card.body.contains(
            "<td>call</td><td>reached</td><td>very_likely</td><td></td><td>sent the contract</td>"
        ),
        "{}",
        card.body
    );
    // Another agent's customer, a bad outcome, an analyst: refused.
    let other = f
        .send("POST", "/calls/C2/log", &[&agent], Some(&form("C2")))
        .await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
    let bad = f
        .send(
            "POST",
            "/calls/C1/log",
            &[&agent],
            Some(&form("C1").replace("outcome=reached", "outcome=maybe")),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("unknown outcome `maybe`"), "{}", bad.body);
    let analyst = f.session("mei").await;
    let seen = f
        .send("GET", "/calls?rep=wang&date=2026-11-26", &[&analyst], None)
        .await;
    assert!(seen.body.contains("/customers/C1") && !seen.body.contains("/calls/C1/log"));
    let refused = f
        .send(
            "POST",
            "/calls/C1/log",
            &[&analyst],
            Some(&form("C1").replace(&csrf, &seen.csrf_field())),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    // An agent reads its own list; another rep's (it leads no team) is refused.
    let own = f.send("GET", "/calls", &[&agent], None).await;
    assert!(own.body.contains("<h1>Call list: wang,"));
    let other = f.send("GET", "/calls?rep=li", &[&agent], None).await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
    assert_eq!(
        other.body,
        "li's pipeline is not yours: an agent reads its own, or its team's when it leads one"
    );
    // The reports: C1 entered class 1 this month and is there; wang's two contacts.
    let reports = f
        .send(
            "GET",
            "/pipeline?from=2026-11-01&to=2026-11-30",
            &[&analyst],
            None,
        )
        .await;
    assert_eq!(reports.status, StatusCode::OK, "{}", reports.body);
    assert!(
        reports.body.contains(
            r#"<tr data-row="1"><th scope="row">1</th><td class="num">1</td><td class="num">1</td><td class="num">0</td><td></td><td class="num"></td></tr>"#
        ),
        "{}",
        reports.body
    );
    assert!(reports.body.contains(
        r#"<tr data-row="wang"><th scope="row">wang</th><td>2026-11-23</td><td class="num">1</td>"#
    ));
    assert!(reports.body.contains(
        r#"<tr data-row="wang"><th scope="row">wang</th><td>2026-11-24</td><td class="num">1</td><td class="num">25</td>"#
    ));
    let mine = f
        .send(
            "GET",
            "/pipeline?from=2026-11-01&to=2026-11-30",
            &[&agent],
            None,
        )
        .await;
    // An agent's reports are its own: its funnel and days, nobody else's.
    assert!(mine.body.contains("table class=\"funnel\"") && mine.body.contains("2026-11-24"));
    assert!(!mine.body.contains(r#"<th scope="row">li</th>"#));
    let csv = f
        .send(
            "GET",
            "/pipeline/export?report=activity&from=2026-11-01&to=2026-11-30",
            &[&agent],
            None,
        )
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(
        csv.body.starts_with(
            "rep,day,contacts,target,reached,no_answer,busy,refused,wrong_number,call,visit,walk_in,phone_in,message\nwang,2026-11-23,1,"
        ),
        "{}",
        csv.body
    );
    let unknown = f
        .send("GET", "/pipeline/export?report=sales", &[&agent], None)
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
}

/// Every form of the console refuses a token that is not the session's, and changes nothing.
async fn every_form_needs_the_sessions_token(url: String) {
    let f = fixture(url).await;
    let admin = f.session("boss").await;
    let before = f.state.store.audit_log(1000).await.unwrap().len();
    let forms = [
        ("/logout", "csrf=guess"),
        (
            "/customers/C1/redemptions",
            "csrf=guess&benefit=lounge&key=k",
        ),
        ("/redemptions/1/cancel", "csrf=guess"),
        (
            "/customers/C1/overrides",
            "csrf=guess&ladder=tier&level=gold&mode=pin&reason=r&until=",
        ),
        (
            "/customers/C1/inputs",
            "csrf=guess&field=relationship&value=1&reason=r",
        ),
        ("/overrides/1/remove", "csrf=guess&customer=C1&reason=r"),
        ("/policy/what-if", "csrf=guess&draft=x"),
        ("/runs", "csrf=guess&as_of="),
        ("/admin/users", "csrf=guess&name=x&role=agent&password="),
        ("/admin/keys", "csrf=guess&user=mei"),
        ("/admin/users/mei/disable", "csrf=guess"),
        ("/admin/keys/abc/revoke", "csrf=guess"),
        (
            "/calls/C1/log",
            "csrf=guess&date=2026-11-24&rep=boss&channel=call&outcome=reached",
        ),
    ];
    for (path, form) in forms {
        let answer = f.send("POST", path, &[&admin], Some(form)).await;
        assert_eq!(
            answer.status,
            StatusCode::FORBIDDEN,
            "{path}: {}",
            answer.body
        );
        assert_eq!(answer.body, "the form expired; reload the page", "{path}");
    }
    assert_eq!(f.state.store.audit_log(1000).await.unwrap().len(), before);
    assert_eq!(f.state.store.runs(None).await.unwrap().len(), 1);
}

/// Admins add users (with a password checked first) and make keys shown once.
async fn admins_add_users_and_make_keys(url: String) {
    let f = fixture(url).await;
    let admin = f.session("boss").await;
    let page = f.send("GET", "/admin", &[&admin], None).await;
    let csrf = page.csrf_field();
    let short = f
        .send(
            "POST",
            "/admin/users",
            &[&admin],
            Some(&format!("csrf={csrf}&name=lin&role=agent&password=short")),
        )
        .await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(short.body.contains("a password has at least 10 characters"));
    assert!(!short.body.contains("<td>lin</td>"), "nothing added");
    let twice = f
        .send(
            "POST",
            "/admin/users",
            &[&admin],
            Some(&format!("csrf={csrf}&name=mei&role=agent&password=")),
        )
        .await;
    assert!(
        twice.body.contains("user `mei` exists already"),
        "{}",
        twice.body
    );
    let role = f
        .send(
            "POST",
            "/admin/users",
            &[&admin],
            Some(&format!("csrf={csrf}&name=lin&role=boss&password=")),
        )
        .await;
    assert!(role.body.contains("unknown role `boss`"));
    let added = f
        .send(
            "POST",
            "/admin/users",
            &[&admin],
            Some(&format!(
                "csrf={csrf}&name=lin&role=agent&password=a+long+password"
            )),
        )
        .await;
    assert_eq!(added.location.as_deref(), Some("/admin"), "{}", added.body);
    let lin = f.session_with("lin", "a+long+password").await;
    assert_eq!(
        f.send("GET", "/mine", &[&lin], None).await.status,
        StatusCode::OK
    );
    let made = f
        .send(
            "POST",
            "/admin/keys",
            &[&admin],
            Some(&format!("csrf={csrf}&user=lin")),
        )
        .await;
    assert_eq!(made.status, StatusCode::OK);
    let at = made.body.find("<code>stk_").expect("the new key shown") + 6;
    let token = made.body[at..].split('<').next().unwrap().to_string();
    let req = Request::builder()
        .uri("/api/customers/C1/levels")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let resp = app(f.state.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN, "lin owns no customer");
    let again = f.send("GET", "/admin", &[&admin], None).await;
    assert!(!again.body.contains(&token), "shown only once");
    let actions: Vec<String> = f
        .state
        .store
        .audit_log(100)
        .await
        .unwrap()
        .into_iter()
        .map(|a| format!("{} {}", a.action, a.subject))
        .collect();
    assert!(actions.iter().any(|a| a == "user.add lin"));
    assert!(
        actions.iter().any(|a| a.starts_with("key.create")),
        "{actions:?}"
    );
    let forged = f
        .send(
            "POST",
            "/admin/keys",
            &[&admin],
            Some("csrf=guess&user=lin"),
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
}

stratum_store::on_both!(
    reps_work_their_call_list,
    every_form_needs_the_sessions_token,
    the_card_says_what_the_next_level_needs,
    pages_speak_chinese_and_english,
    overrides_and_inputs_are_edited_from_the_card,
    the_policy_page_and_its_what_if,
    runs_are_started_followed_and_compared,
    admins_add_users_and_make_keys,
    every_page_answers_the_roles_it_names,
    benefits_are_redeemed_and_cancelled_from_the_card,
    customer_pages_follow_the_ownership_rule,
    signing_in_and_out,
    forms_need_their_csrf_token,
    failed_sign_ins_lock_the_name_for_a_while,
    idle_sessions_and_disabled_users_end,
);
