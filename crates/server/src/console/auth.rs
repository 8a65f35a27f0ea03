//! Signing in and out: the password form, its CSRF cookie, failure counting and the audit.

use std::net::SocketAddr;

use askama::Template;
use axum::Form;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar};
use serde::Deserialize;
use stratum_store::Actor;

use super::i18n::{self, Text};
use super::{
    CsrfForm, LOGIN_CSRF_COOKIE, Page, SESSION_COOKIE, Session, client_address, cookie, internal,
    over_https, render,
};
use crate::AppState;
use crate::auth::{
    FAILURE_WINDOW, MAX_FAILURES_PER_ADDRESS, MAX_FAILURES_PER_KEY, digest, password_matches,
    random_hex,
};

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    t: &'static Text,
    csrf: &'a str,
    name: &'a str,
    problem: Option<&'a str>,
}

pub(super) async fn login_page(jar: CookieJar, headers: HeaderMap) -> (CookieJar, Response) {
    let csrf = random_hex(16);
    let page = render(
        StatusCode::OK,
        LoginPage {
            t: i18n::text(i18n::requested(&headers)),
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
pub(super) struct LoginForm {
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

pub(super) async fn login(
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
                t: i18n::text(i18n::requested(&headers)),
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
    // Sessions idle past the limit can never be used again: swept at each sign-in.
    let idle =
        chrono::TimeDelta::from_std(state.limits.session_idle).unwrap_or(chrono::TimeDelta::MAX);
    if let Some(cutoff) = state.now().checked_sub_signed(idle) {
        state
            .store
            .end_sessions_idle_since(&cutoff.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .await
            .map_err(internal)?;
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

pub(super) async fn logout(
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
