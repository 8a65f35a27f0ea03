//! The web console: pages rendered on the server (askama templates, checked at compile time)
//! for people signed in with a password, beside the API on the same port, users, roles and
//! audit log. A browser holds a session cookie (`HttpOnly`, `SameSite=Strict`, `Secure`
//! behind a proxy that says the request came over HTTPS); the store keeps only the cookie's
//! SHA-256 digest, so sessions survive a restart and a stolen database signs nobody in.
//! Every form carries a CSRF token: the session's, or before sign-in a cookie's twin
//! (double submit). Failed sign-ins are counted per user name and per address like failed
//! API keys; past the limit sign-ins are refused for a minute. Sign-ins, failures and
//! sign-outs are audited.

use askama::Template;
use axum::Form;
use axum::Router;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::Deserialize;
use stratum_store::{Actor, Role};

mod charts;

use crate::AppState;
use crate::auth::{
    FAILURE_WINDOW, MAX_FAILURES_PER_ADDRESS, MAX_FAILURES_PER_KEY, digest, password_matches,
    random_hex,
};

/// The session cookie.
pub const SESSION_COOKIE: &str = "stratum_session";
/// The sign-in form's CSRF cookie (before there is a session).
pub const LOGIN_CSRF_COOKIE: &str = "stratum_login";
/// A session's last use is written at most this often (a write per page view is waste).
const TOUCH_EVERY: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/customers", get(customers))
        .route("/customers/{id}", get(customer))
        .route("/customers/{id}/redemptions", post(redeem))
        .route("/runs", get(runs))
        .route("/mine", get(mine))
        .route("/admin", get(admin))
        .route("/admin/users/{name}/{change}", post(change_user))
        .route("/admin/keys/{id}/revoke", post(revoke_key))
        .route("/redemptions/{id}/cancel", post(cancel_redemption))
}

/// A page, or an answer the console gives instead (a redirect to sign in, a refusal).
type Page = Result<Response, Response>;

fn render(status: StatusCode, page: impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!("rendering a page: {e}");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!("console: {e}");
    (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
}

/// Whether the browser reached us over HTTPS: only then is a cookie marked `Secure` (a proxy
/// terminating TLS says so in `X-Forwarded-Proto`).
fn over_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

fn cookie(name: &'static str, value: String, secure: bool) -> Cookie<'static> {
    Cookie::build((name, value))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/")
        .secure(secure)
        .build()
}

/// The client's address for the audit log (set by `serve`'s accept loop).
fn client_address(connect: Option<&axum::Extension<ConnectInfo<SocketAddr>>>) -> String {
    connect
        .map(|c| c.0.0.ip().to_string())
        .unwrap_or_else(|| "console".to_string())
}

/// A signed-in browser, checked against the store on every request (so signing out, a
/// password change or disabling the user takes effect at once).
pub(crate) struct Session {
    pub user: String,
    pub role: Role,
    pub csrf: String,
    token_digest: String,
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let to_login = || Redirect::to("/login").into_response();
        let jar = CookieJar::from_headers(&parts.headers);
        let Some(token) = jar.get(SESSION_COOKIE).map(|c| c.value().to_string()) else {
            return Err(to_login());
        };
        let token_digest = digest(&token);
        let Some(row) = state.store.session(&token_digest).await.map_err(internal)? else {
            return Err(to_login());
        };
        let now = state.now();
        let last_seen = chrono::DateTime::parse_from_rfc3339(&row.last_seen)
            .map_err(internal)?
            .with_timezone(&chrono::Utc);
        let idle = chrono::TimeDelta::from_std(state.limits.session_idle)
            .unwrap_or(chrono::TimeDelta::MAX);
        if now - last_seen > idle {
            state
                .store
                .end_session(&token_digest)
                .await
                .map_err(internal)?;
            return Err(to_login());
        }
        if now - last_seen > TOUCH_EVERY {
            let at = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            state
                .store
                .touch_session(&token_digest, &at)
                .await
                .map_err(internal)?;
        }
        if let Some(log) = parts.extensions.get::<crate::RequestUser>() {
            let _ = log.0.set(row.user_name.clone());
        }
        Ok(Session {
            user: row.user_name,
            role: row.role,
            csrf: row.csrf_token,
            token_digest,
        })
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    csrf: &'a str,
    name: &'a str,
    problem: Option<&'a str>,
}

async fn login_page(jar: CookieJar, headers: HeaderMap) -> (CookieJar, Response) {
    let csrf = random_hex(16);
    let page = render(
        StatusCode::OK,
        LoginPage {
            csrf: &csrf,
            name: "",
            problem: None,
        },
    );
    (
        jar.add(cookie(LOGIN_CSRF_COOKIE, csrf, over_https(&headers))),
        page,
    )
}

#[derive(Deserialize)]
struct LoginForm {
    name: String,
    password: String,
    csrf: String,
}

/// A stored hash to check unknown users' passwords against, so that a wrong user name takes
/// as long as a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        crate::auth::hash_password("decoy password, never matches").expect("hashing works")
    })
}

async fn login(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    connect: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    Form(form): Form<LoginForm>,
) -> Page {
    let secure = over_https(&headers);
    let expected = jar.get(LOGIN_CSRF_COOKIE).map(|c| c.value().to_string());
    if expected.as_deref() != Some(form.csrf.as_str()) || form.csrf.is_empty() {
        return Err((
            StatusCode::FORBIDDEN,
            "the sign-in form expired or came from elsewhere; reload /login",
        )
            .into_response());
    }
    let address = client_address(connect.as_ref());
    let (by_user, by_address) = (
        format!("login {}", form.name),
        format!("login address {address}"),
    );
    let again = |status: StatusCode, problem: &str| {
        render(
            status,
            LoginPage {
                csrf: &form.csrf,
                name: &form.name,
                problem: Some(problem),
            },
        )
    };
    if state.keys.blocked(&by_user, MAX_FAILURES_PER_KEY)
        || state.keys.blocked(&by_address, MAX_FAILURES_PER_ADDRESS)
    {
        return Err(again(
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "too many failed sign-ins; try again in {} seconds",
                FAILURE_WINDOW.as_secs()
            ),
        ));
    }
    let user = state.store.login(&form.name).await.map_err(internal)?;
    let stored = user
        .as_ref()
        .filter(|u| !u.disabled)
        .and_then(|u| u.password_hash.clone());
    let checked_against = stored.clone().unwrap_or_else(|| decoy_hash().to_string());
    let password = form.password.clone();
    // argon2 costs 19 MiB and tens of milliseconds: one at a time, off the executor.
    let permit = state.keys.legacy.acquire().await.map_err(internal)?;
    let matches =
        stratum_runner::blocking::blocking(move || password_matches(&checked_against, &password))
            .await;
    drop(permit);
    let actor = Actor {
        name: form.name.clone(),
        origin: address.clone(),
    };
    if !(matches && stored.is_some()) {
        state.keys.failed(&by_user);
        state.keys.failed(&by_address);
        state
            .store
            .audit_event(&actor, "login.fail", &form.name, "")
            .await
            .map_err(internal)?;
        return Err(again(
            StatusCode::UNAUTHORIZED,
            "wrong user name or password",
        ));
    }
    let token = random_hex(32);
    let csrf = random_hex(16);
    state
        .store
        .create_session(
            &digest(&token),
            &form.name,
            &csrf,
            &state
                .now()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        )
        .await
        .map_err(internal)?;
    state
        .store
        .audit_event(&actor, "login", &form.name, "")
        .await
        .map_err(internal)?;
    let jar = jar
        .remove(Cookie::build(LOGIN_CSRF_COOKIE).path("/"))
        .add(cookie(SESSION_COOKIE, token, secure));
    Ok((jar, Redirect::to("/")).into_response())
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn logout(
    State(state): State<AppState>,
    session: Session,
    jar: CookieJar,
    connect: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    Form(form): Form<CsrfForm>,
) -> Page {
    if form.csrf != session.csrf {
        return Err((StatusCode::FORBIDDEN, "the form expired; reload the page").into_response());
    }
    state
        .store
        .end_session(&session.token_digest)
        .await
        .map_err(internal)?;
    let actor = Actor {
        name: session.user.clone(),
        origin: client_address(connect.as_ref()),
    };
    state
        .store
        .audit_event(&actor, "logout", &session.user, "")
        .await
        .map_err(internal)?;
    let jar = jar.remove(Cookie::build(SESSION_COOKIE).path("/"));
    Ok((jar, Redirect::to("/login")).into_response())
}

/// One ladder on the dashboard.
struct LadderView {
    name: String,
    heading: String,
    value_name: String,
    pareto: Option<String>,
    count_svg: String,
    value_svg: Option<String>,
    lorenz_svg: Option<String>,
    levels: Vec<String>,
    history: Vec<HistoryRow>,
    heatmap_svg: Option<String>,
    previous_run: i64,
    upgrades: usize,
    downgrades: usize,
    /// The counts with thousands separators.
    upgrades_text: String,
    downgrades_text: String,
    upgraded: Vec<(String, String, String)>,
    downgraded: Vec<(String, String, String)>,
}

/// A ladder's level counts at one earlier run.
struct HistoryRow {
    run: i64,
    as_of: chrono::NaiveDate,
    counts: Vec<String>,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage<'a> {
    user: &'a str,
    role: Role,
    csrf: &'a str,
    policy: &'a str,
    run: Option<&'a stratum_store::RunInfo>,
    customers: String,
    ladders: Vec<LadderView>,
}

/// Runs whose level counts the dashboard shows beside the served one.
const HISTORY_RUNS: usize = 6;

/// The dashboard: per ladder of the served run, the count pyramid beside the value pyramid,
/// the Lorenz curve with the Pareto figure, and the level counts over the last runs — all
/// read from the summaries recorded with each run, never from its rows.
async fn home(State(state): State<AppState>, session: Session) -> Page {
    let policy = state.policy.policy.history_name();
    let served = state.store.latest_run_id(policy).await.map_err(internal)?;
    let run = match served {
        Some(id) => Some(state.store.run(id).await.map_err(internal)?),
        None => None,
    };
    let mut ladders = Vec::new();
    if let Some(run) = &run {
        let recent: Vec<stratum_store::RunInfo> = state
            .store
            .runs(Some(policy))
            .await
            .map_err(internal)?
            .into_iter()
            .filter(|r| !r.is_retired() && r.id <= run.id)
            .rev()
            .take(HISTORY_RUNS)
            .collect();
        let ids: Vec<i64> = recent.iter().map(|r| r.id).collect();
        let mut recorded = std::collections::HashMap::new();
        for (run_id, ladder, json) in state.store.run_summaries(&ids).await.map_err(internal)? {
            let summary: stratum_core::RecordedSummary =
                serde_json::from_str(&json).map_err(internal)?;
            recorded.insert((run_id, ladder), summary);
        }
        let unit = state
            .policy
            .policy
            .settings
            .currency
            .as_deref()
            .unwrap_or("");
        for ladder in &state.policy.policy.ladders {
            let Some(now) = recorded.get(&(run.id, ladder.name.clone())) else {
                continue;
            };
            let s = &now.summary;
            let value_name = s.value_name.clone().unwrap_or_default();
            let levels: Vec<String> = s
                .rows
                .iter()
                .filter(|r| r.level != stratum_core::evaluate::NOT_APPLICABLE)
                .map(|r| r.level.clone())
                .collect();
            let history = recent
                .iter()
                .filter_map(|r| {
                    let then = recorded.get(&(r.id, ladder.name.clone()))?;
                    Some(HistoryRow {
                        run: r.id,
                        as_of: r.as_of,
                        counts: levels
                            .iter()
                            .map(|l| {
                                let n = then
                                    .summary
                                    .rows
                                    .iter()
                                    .find(|row| &row.level == l)
                                    .map_or(0, |row| row.count);
                                stratum_core::fmt_num(n as f64)
                            })
                            .collect(),
                    })
                })
                .collect();
            ladders.push(LadderView {
                name: ladder.name.clone(),
                heading: match &s.title {
                    Some(t) => format!("{} — {t}", s.ladder),
                    None => s.ladder.clone(),
                },
                pareto: s.pareto_top20.map(|p| format!("{:.1}%", p * 100.0)),
                count_svg: charts::pyramid(s, charts::Pyramid::Customers, unit),
                value_svg: s
                    .value_name
                    .is_some()
                    .then(|| charts::pyramid(s, charts::Pyramid::Value, unit)),
                lorenz_svg: (!now.lorenz.is_empty())
                    .then(|| charts::lorenz(&now.lorenz, &value_name, s.pareto_top20)),
                heatmap_svg: now
                    .previous_run
                    .map(|_| charts::heatmap(&now.moves, &levels)),
                previous_run: now.previous_run.unwrap_or_default(),
                upgrades: now.upgrades as usize,
                downgrades: now.downgrades as usize,
                upgrades_text: stratum_core::fmt_num(now.upgrades as f64),
                downgrades_text: stratum_core::fmt_num(now.downgrades as f64),
                upgraded: now.upgraded.clone(),
                downgraded: now.downgraded.clone(),
                value_name,
                levels,
                history,
            });
        }
    }
    Ok(render(
        StatusCode::OK,
        HomePage {
            user: &session.user,
            role: session.role,
            csrf: &session.csrf,
            policy,
            customers: run
                .as_ref()
                .map(|r| stratum_core::fmt_num(r.customers as f64))
                .unwrap_or_default(),
            run: run.as_ref(),
            ladders,
        },
    ))
}

/// An API error as a console page: its status and message, as text.
fn refused(e: crate::error::ApiError) -> Response {
    let status =
        StatusCode::from_u16(e.code.entry().0).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status.is_server_error() {
        return internal(e.message);
    }
    (status, e.message).into_response()
}

impl Session {
    /// The session as a caller of the rules the API applies (who may see which customer).
    fn principal(&self) -> crate::Principal {
        crate::Principal {
            user: self.user.clone(),
            role: self.role,
            origin: "console".into(),
        }
    }
}

#[derive(Deserialize)]
struct SearchForm {
    #[serde(default)]
    q: String,
}

#[derive(Template)]
#[template(path = "customers.html")]
struct CustomersPage<'a> {
    user: &'a str,
    role: Role,
    csrf: &'a str,
    q: &'a str,
    ladder: &'a str,
    own_only: bool,
    found: Vec<(String, String)>,
}

/// Customers shown on a search page.
const SEARCH_LIMIT: usize = 50;

/// Search by id prefix; an agent searches its own customers only.
async fn customers(
    State(state): State<AppState>,
    session: Session,
    axum::extract::Query(form): axum::extract::Query<SearchForm>,
) -> Page {
    let ladder = state.service_ladder();
    let table = state.level_table().await.map_err(refused)?;
    let own_only = session.role == Role::Agent;
    let found: Vec<(String, String)> = if own_only {
        table
            .owned_by(&session.user, &form.q, SEARCH_LIMIT)
            .into_iter()
            .map(|c| {
                (
                    c.to_string(),
                    table.level_on(c, &ladder).unwrap_or("").to_string(),
                )
            })
            .collect()
    } else {
        state
            .store
            .search_customers(table.run.id, &ladder, &form.q, SEARCH_LIMIT as i64)
            .await
            .map_err(internal)?
    };
    Ok(render(
        StatusCode::OK,
        CustomersPage {
            user: &session.user,
            role: session.role,
            csrf: &session.csrf,
            q: &form.q,
            ladder: &ladder,
            own_only,
            found,
        },
    ))
}

#[derive(Template)]
#[template(path = "customer.html")]
struct CustomerPage<'a> {
    user: &'a str,
    role: Role,
    csrf: &'a str,
    card: crate::routes::customers::Card<'a>,
    run_id: i64,
    as_of: String,
    history: Vec<stratum_store::HistoryRow>,
    redemptions: Vec<stratum_store::RedemptionRow>,
    /// The role may redeem and cancel (for this customer: viewing it was authorized).
    may_redeem: bool,
    /// Makes a form's redemption idempotent: submitting it twice redeems once.
    form_key: String,
}

/// The customer card: levels with their explanations, benefits with this period's use,
/// pending changes and the level history. An agent sees only its own customers.
async fn customer(
    State(state): State<AppState>,
    session: Session,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Page {
    crate::access::authorize(&state, &session.principal(), &id)
        .await
        .map_err(refused)?;
    let card = crate::routes::customers::card(&state, &id)
        .await
        .map_err(refused)?;
    let (run_id, as_of) = (card.levels[0].run_id, card.levels[0].as_of.clone());
    let history =
        stratum_runner::history(&state.store, Some(state.policy.policy.history_name()), &id)
            .await
            .map_err(|e| refused(e.into()))?;
    // Times in the service's time zone, as the API answers them.
    let mut redemptions = state.store.redemptions(&id).await.map_err(internal)?;
    if let Some(service) = state.policy.policy.service.as_ref() {
        for r in &mut redemptions {
            if let Ok(t) = chrono::DateTime::parse_from_rfc3339(&r.redeemed_at) {
                r.redeemed_at = t
                    .with_timezone(&service.timezone)
                    .format("%Y-%m-%d %H:%M")
                    .to_string();
            }
        }
    }
    Ok(render(
        StatusCode::OK,
        CustomerPage {
            user: &session.user,
            role: session.role,
            csrf: &session.csrf,
            card,
            run_id,
            as_of,
            history,
            redemptions,
            may_redeem: crate::routes::benefits::REDEEMERS.contains(&session.role),
            form_key: random_hex(8),
        },
    ))
}

#[derive(Deserialize)]
struct RedeemForm {
    csrf: String,
    benefit: String,
    key: String,
}

/// A form's refusal: a CSRF token that is not the session's, or a role not in `roles`
/// (`does`: what the role may not do, for the message).
fn form_refused(session: &Session, csrf: &str, roles: &[Role], does: &str) -> Option<Response> {
    if csrf != session.csrf {
        return Some((StatusCode::FORBIDDEN, "the form expired; reload the page").into_response());
    }
    session.principal().require(roles, does).err().map(refused)
}

/// Redeems one unit from the card's form, then shows the card again.
async fn redeem(
    State(state): State<AppState>,
    session: Session,
    axum::extract::Path(id): axum::extract::Path<String>,
    Form(form): Form<RedeemForm>,
) -> Page {
    if let Some(refusal) = form_refused(
        &session,
        &form.csrf,
        crate::routes::benefits::REDEEMERS,
        "redeem benefits",
    ) {
        return Err(refusal);
    }
    let who = session.principal();
    crate::access::authorize(&state, &who, &id)
        .await
        .map_err(refused)?;
    crate::routes::benefits::redeem_benefit(&state, &who, &id, &form.benefit, 1, Some(form.key))
        .await
        .map_err(refused)?;
    Ok(Redirect::to(&format!("/customers/{id}")).into_response())
}

/// Cancels a redemption from the card's form; its quota is restored.
async fn cancel_redemption(
    State(state): State<AppState>,
    session: Session,
    axum::extract::Path(id): axum::extract::Path<i64>,
    Form(form): Form<CsrfForm>,
) -> Page {
    if let Some(refusal) = form_refused(
        &session,
        &form.csrf,
        crate::routes::benefits::REDEEMERS,
        "redeem benefits",
    ) {
        return Err(refusal);
    }
    let cancelled = crate::routes::benefits::cancel(&state, &session.principal(), id)
        .await
        .map_err(refused)?;
    Ok(Redirect::to(&format!("/customers/{}", cancelled.customer_id)).into_response())
}

/// Who may see the runs page (the API's runs routes allow the same).
pub(crate) const RUNS_PAGE: &[Role] = &[Role::Admin, Role::Analyst];
/// Who may see the admin page.
pub(crate) const ADMIN_PAGE: &[Role] = &[Role::Admin];

/// The refusal of a page the session's role may not see, if it may not.
fn not_for(session: &Session, roles: &[Role], page: &str) -> Option<Response> {
    session
        .principal()
        .require(roles, &format!("see the {page} page"))
        .err()
        .map(refused)
}

/// A run as the runs page lists it.
struct RunRow {
    id: i64,
    as_of: chrono::NaiveDate,
    customers: String,
    recorded_by: String,
    finished: String,
    state: String,
}

#[derive(Template)]
#[template(path = "runs.html")]
struct RunsPage<'a> {
    user: &'a str,
    role: Role,
    csrf: &'a str,
    policy: &'a str,
    runs: Vec<RunRow>,
}

/// The served policy's recorded runs, newest first, the served one marked.
async fn runs(State(state): State<AppState>, session: Session) -> Page {
    if let Some(refusal) = not_for(&session, RUNS_PAGE, "runs") {
        return Err(refusal);
    }
    let policy = state.policy.policy.history_name();
    let served = state.store.latest_run_id(policy).await.map_err(internal)?;
    let mut rows: Vec<RunRow> = state
        .store
        .runs(Some(policy))
        .await
        .map_err(internal)?
        .into_iter()
        .map(|r| RunRow {
            state: if Some(r.id) == served {
                "served".to_string()
            } else if r.is_retired() {
                format!(
                    "retired by {}",
                    r.retired_by.as_deref().unwrap_or("unknown")
                )
            } else {
                String::new()
            },
            id: r.id,
            as_of: r.as_of,
            customers: stratum_core::fmt_num(r.customers as f64),
            recorded_by: r.recorded_by,
            finished: r.finished_at,
        })
        .collect();
    rows.reverse();
    Ok(render(
        StatusCode::OK,
        RunsPage {
            user: &session.user,
            role: session.role,
            csrf: &session.csrf,
            policy,
            runs: rows,
        },
    ))
}

#[derive(Deserialize, Default)]
struct AuditForm {
    #[serde(default)]
    user: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    customer: String,
}

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage<'a> {
    user: &'a str,
    role: Role,
    csrf: &'a str,
    users: Vec<stratum_store::UserRow>,
    keys: Vec<stratum_store::KeyRow>,
    audit: Vec<stratum_store::AuditRow>,
    filter_user: &'a str,
    filter_action: &'a str,
    filter_subject: &'a str,
}

/// Entries of the audit log the admin page shows.
const AUDIT_ROWS: i64 = 200;

/// Users, API keys and the audit log (narrowed by user, action or subject).
async fn admin(
    State(state): State<AppState>,
    session: Session,
    axum::extract::Query(form): axum::extract::Query<AuditForm>,
) -> Page {
    if let Some(refusal) = not_for(&session, ADMIN_PAGE, "admin") {
        return Err(refusal);
    }
    let given = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
    let filter = stratum_store::AuditFilter {
        actor: given(&form.user),
        subject: given(&form.customer),
        action: given(&form.action),
        since: None,
        until: None,
    };
    let users = state.store.users().await.map_err(internal)?;
    let keys = state.store.api_keys().await.map_err(internal)?;
    let audit = state
        .store
        .audit_search(&filter, AUDIT_ROWS)
        .await
        .map_err(internal)?;
    Ok(render(
        StatusCode::OK,
        AdminPage {
            user: &session.user,
            role: session.role,
            csrf: &session.csrf,
            users,
            keys,
            audit,
            filter_user: &form.user,
            filter_action: &form.action,
            filter_subject: &form.customer,
        },
    ))
}

/// Who has a "my customers" page: the agents who own customers.
pub(crate) const MINE_PAGE: &[Role] = &[Role::Agent];
/// Customers listed on it.
const MINE_LIMIT: usize = 500;

#[derive(Template)]
#[template(path = "mine.html")]
struct MinePage<'a> {
    user: &'a str,
    role: Role,
    csrf: &'a str,
    ladder: &'a str,
    customers: Vec<(String, String)>,
    limit: usize,
    callbacks: Vec<stratum_store::CallbackRow>,
}

/// An agent's own customers with their service levels, and their open call-backs.
async fn mine(State(state): State<AppState>, session: Session) -> Page {
    if let Some(refusal) = not_for(&session, MINE_PAGE, "my customers") {
        return Err(refusal);
    }
    let ladder = state.service_ladder();
    let table = state.level_table().await.map_err(refused)?;
    let customers: Vec<(String, String)> = table
        .owned_by(&session.user, "", MINE_LIMIT)
        .into_iter()
        .map(|c| {
            (
                c.to_string(),
                table.level_on(c, &ladder).unwrap_or("").to_string(),
            )
        })
        .collect();
    let callbacks = state
        .store
        .open_callbacks()
        .await
        .map_err(internal)?
        .into_iter()
        .filter(|c| table.owner(&c.customer_id) == Some(session.user.as_str()))
        .collect();
    Ok(render(
        StatusCode::OK,
        MinePage {
            user: &session.user,
            role: session.role,
            csrf: &session.csrf,
            ladder: &ladder,
            customers,
            limit: MINE_LIMIT,
            callbacks,
        },
    ))
}

/// Disables or enables a user from the admin page (audited by the store; disabling signs
/// the user's browsers out and stops its keys).
async fn change_user(
    State(state): State<AppState>,
    session: Session,
    axum::extract::Path((name, change)): axum::extract::Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Page {
    if let Some(refusal) = form_refused(&session, &form.csrf, ADMIN_PAGE, "see the admin page") {
        return Err(refusal);
    }
    let actor = session.principal().actor();
    let done = match change.as_str() {
        "disable" => state.store.disable_user(&name, &actor).await,
        "enable" => state.store.enable_user(&name, &actor).await,
        _ => return Err((StatusCode::NOT_FOUND, "no such change").into_response()),
    };
    done.map_err(|e| refused(e.into()))?;
    Ok(Redirect::to("/admin").into_response())
}

/// Revokes an API key from the admin page (audited by the store).
async fn revoke_key(
    State(state): State<AppState>,
    session: Session,
    axum::extract::Path(id): axum::extract::Path<String>,
    Form(form): Form<CsrfForm>,
) -> Page {
    if let Some(refusal) = form_refused(&session, &form.csrf, ADMIN_PAGE, "see the admin page") {
        return Err(refusal);
    }
    state
        .store
        .revoke_api_key(&id, &session.principal().actor())
        .await
        .map_err(|e| refused(e.into()))?;
    Ok(Redirect::to("/admin").into_response())
}
