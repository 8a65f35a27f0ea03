//! The web console: pages rendered on the server (askama templates, checked at compile time)
//! for people signed in with a password, beside the API on the same port, users, roles and
//! audit log. A browser holds a session cookie (`HttpOnly`, `SameSite=Strict`, `Secure`
//! behind a proxy that says the request came over HTTPS); the store keeps only the cookie's
//! SHA-256 digest, so sessions survive a restart and a stolen database signs nobody in.
//! Every form carries a CSRF token: the session's, or before sign-in a cookie's twin
//! (double submit). Failed sign-ins are counted per user name and per address like failed
//! API keys; past the limit sign-ins are refused for a minute. Sign-ins, failures and
//! sign-outs are audited.

use std::net::SocketAddr;

use askama::Template;
use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::Deserialize;
use stratum_core::Lang;
use stratum_store::Role;

mod admin;
mod assignments;
mod auth;
mod calls;
mod charts;
mod customers;
mod dashboard;
mod i18n;
mod policy;
mod reports;
mod runs;

use crate::AppState;
use crate::auth::digest;
use i18n::Text;
pub(crate) use runs::RunJob;

/// The session cookie.
pub const SESSION_COOKIE: &str = "stratum_session";
/// The sign-in form's CSRF cookie (before there is a session).
pub const LOGIN_CSRF_COOKIE: &str = "stratum_login";
/// A session's last use is written at most this often (a write per page view is waste).
const TOUCH_EVERY: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(dashboard::home))
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/lang/{lang}", get(switch_language))
        .route("/customers", get(customers::customers))
        .route("/customers/{id}", get(customers::customer))
        .route("/customers/{id}/redemptions", post(customers::redeem))
        .route("/customers/{id}/overrides", post(customers::add_override))
        .route("/customers/{id}/inputs", post(customers::set_input))
        .route("/overrides/{id}/remove", post(customers::remove_override))
        .route(
            "/redemptions/{id}/cancel",
            post(customers::cancel_redemption),
        )
        .route("/policy", get(policy::policy))
        .route("/policy/what-if", post(policy::what_if))
        .route("/runs", get(runs::runs).post(runs::start))
        .route("/runs/job", get(runs::job))
        .route("/runs/compare", get(runs::compare))
        .route("/mine", get(customers::mine))
        .route("/calls", get(calls::calls))
        .route("/calls/{id}/log", post(calls::log))
        .route("/pipeline", get(reports::reports))
        .route("/pipeline/export", get(reports::export))
        .route("/assignments", get(assignments::assignments))
        .route("/assignments/apply", post(assignments::apply))
        .route("/admin", get(admin::admin))
        .route("/admin/users", post(admin::add_user))
        .route("/admin/keys", post(admin::add_key))
        .route("/admin/users/{name}/{change}", post(admin::change_user))
        .route("/admin/keys/{id}/revoke", post(admin::revoke_key))
}

#[derive(Deserialize)]
struct Back {
    #[serde(default)]
    back: String,
}

/// Remembers the language chosen in the page header (a cookie) and goes back to the page.
/// Only a path on this site is a way back (no open redirect).
async fn switch_language(
    axum::extract::Path(lang): axum::extract::Path<String>,
    axum::extract::Query(back): axum::extract::Query<Back>,
    headers: HeaderMap,
    jar: CookieJar,
) -> Response {
    let Some(lang) = Lang::parse(&lang) else {
        return (StatusCode::NOT_FOUND, "the console speaks en and zh").into_response();
    };
    let local =
        back.back.starts_with('/') && !back.back.starts_with("//") && !back.back.contains('\\');
    let to = if local { back.back.as_str() } else { "/" };
    let mut chosen = cookie(
        i18n::LANG_COOKIE,
        lang.as_str().to_string(),
        over_https(&headers),
    );
    chosen.set_http_only(false);
    chosen.set_max_age(time::Duration::days(365));
    (jar.add(chosen), Redirect::to(to)).into_response()
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
    /// The language pages are shown in, and its texts.
    pub lang: Lang,
    pub t: &'static Text,
    /// The page asked for (path and query): where the language switch comes back to.
    pub here: String,
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
        let lang = i18n::requested(&parts.headers);
        Ok(Session {
            user: row.user_name,
            role: row.role,
            csrf: row.csrf_token,
            token_digest,
            lang,
            t: i18n::text(lang),
            here: parts
                .uri
                .path_and_query()
                .map_or("/".to_string(), |p| p.as_str().to_string()),
        })
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
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
    pub fn is_agent(&self) -> bool {
        self.role == Role::Agent
    }
    pub fn is_admin(&self) -> bool {
        ADMIN_PAGE.contains(&self.role)
    }
    pub fn sees_calls(&self) -> bool {
        calls::CALLS_PAGE.contains(&self.role)
    }
    pub fn sees_runs(&self) -> bool {
        RUNS_PAGE.contains(&self.role)
    }
    /// A date in the session's language.
    pub fn date(&self, d: &chrono::NaiveDate) -> String {
        i18n::date(self.lang, *d)
    }
    /// The language switch's link: the other language, back to this page.
    pub fn switch_href(&self) -> String {
        format!(
            "/lang/{}?back={}",
            self.t.other_lang,
            percent_encode(&self.here)
        )
    }
    /// The session as a caller of the rules the API applies (who may see which customer).
    fn principal(&self) -> crate::Principal {
        crate::Principal {
            user: self.user.clone(),
            role: self.role,
            origin: "console".into(),
        }
    }
}

/// A ladder's levels as a language shows them (by the policy's labels; names the policy
/// does not know, such as `n/a`, as they are), and the ladder itself when the policy has it.
fn level_names<'a>(
    state: &'a AppState,
    ladder: &str,
    lang: Lang,
) -> (
    Option<&'a stratum_core::model::Ladder>,
    impl Fn(&str) -> String + 'a,
) {
    let found = state
        .policy
        .policy
        .ladders
        .iter()
        .find(|l| l.name == ladder);
    (found, move |level: &str| {
        found.map_or(level.to_string(), |l| {
            l.level_shown(level, lang).to_string()
        })
    })
}

/// Whether an API error is the form's own problem (bad input, an unknown name), shown
/// on the page again, rather than a refusal or a failure.
fn shown_on_form(e: &crate::error::ApiError) -> bool {
    matches!(e.code.entry().0, 400 | 404 | 409 | 422)
}

/// A form's refusal: a CSRF token that is not the session's, or a role not in `roles`
/// (`does`: what the role may not do, for the message).
fn form_refused(session: &Session, csrf: &str, roles: &[Role], does: &str) -> Option<Response> {
    if csrf != session.csrf {
        return Some((StatusCode::FORBIDDEN, "the form expired; reload the page").into_response());
    }
    session.principal().require(roles, does).err().map(refused)
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

/// Percent-encodes a query value (everything but unreserved characters and `/`).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
