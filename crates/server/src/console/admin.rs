//! The admin page: users (add, disable, enable), API keys (make, revoke) and the audit log
//! with filters. Every change goes through the store, which audits it.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;
use stratum_store::Role;

use super::{
    ADMIN_PAGE, CsrfForm, Page, Session, form_refused, internal, not_for, refused, render,
};
use crate::AppState;

#[derive(Deserialize, Default)]
pub(super) struct AuditForm {
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
    t: &'static super::i18n::Text,
    s: &'a Session,
    users: Vec<stratum_store::UserRow>,
    keys: Vec<stratum_store::KeyRow>,
    audit: Vec<stratum_store::AuditRow>,
    roles: [Role; 4],
    filter_user: &'a str,
    filter_action: &'a str,
    filter_subject: &'a str,
    /// A key just made: shown once, never stored.
    new_key: Option<(String, String)>,
    /// What the last form could not do.
    problem: Option<String>,
}

/// Entries of the audit log the admin page shows.
const AUDIT_ROWS: i64 = 200;

/// Users, API keys and the audit log (narrowed by user, action or subject).
pub(super) async fn admin(
    State(state): State<AppState>,
    session: Session,
    axum::extract::Query(form): axum::extract::Query<AuditForm>,
) -> Page {
    if let Some(refusal) = not_for(&session, ADMIN_PAGE, "admin") {
        return Err(refusal);
    }
    admin_page(&state, &session, &form, None, None, StatusCode::OK).await
}

async fn admin_page(
    state: &AppState,
    session: &Session,
    form: &AuditForm,
    new_key: Option<(String, String)>,
    problem: Option<String>,
    status: StatusCode,
) -> Page {
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
        status,
        AdminPage {
            t: session.t,
            s: session,
            users,
            keys,
            audit,
            roles: Role::ALL,
            filter_user: &form.user,
            filter_action: &form.action,
            filter_subject: &form.customer,
            new_key,
            problem,
        },
    ))
}

/// Disables or enables a user from the admin page (audited by the store; disabling signs
/// the user's browsers out and stops its keys).
pub(super) async fn change_user(
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
pub(super) async fn revoke_key(
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

#[derive(Deserialize)]
pub(super) struct NewUserForm {
    csrf: String,
    name: String,
    role: String,
    #[serde(default)]
    password: String,
}

/// Adds a user from the admin page, with a console password when one is given (at least
/// ten characters; checked before anything is written).
pub(super) async fn add_user(
    State(state): State<AppState>,
    session: Session,
    Form(form): Form<NewUserForm>,
) -> Page {
    if let Some(refusal) = form_refused(&session, &form.csrf, ADMIN_PAGE, "see the admin page") {
        return Err(refusal);
    }
    let name = form.name.trim();
    if name.is_empty() {
        return problem(&state, &session, "a user needs a name".into()).await;
    }
    let role: Role = match form.role.parse() {
        Ok(role) => role,
        Err(e) => return problem(&state, &session, e).await,
    };
    let hash = if form.password.is_empty() {
        None
    } else {
        let password = form.password.clone();
        match stratum_runner::blocking::blocking(move || crate::auth::hash_password(&password))
            .await
        {
            Ok(hash) => Some(hash),
            Err(e) => return problem(&state, &session, e).await,
        }
    };
    let actor = session.principal().actor();
    if let Err(e) = state.store.add_user(name, role, &actor).await {
        return match e {
            stratum_store::StoreError::Invalid(m) => problem(&state, &session, m).await,
            e => Err(refused(e.into())),
        };
    }
    if let Some(hash) = hash {
        state
            .store
            .set_password(name, &hash, &actor)
            .await
            .map_err(|e| refused(e.into()))?;
    }
    Ok(Redirect::to("/admin").into_response())
}

/// The admin page again with what a form could not do (nothing was changed).
async fn problem(state: &AppState, session: &Session, problem: String) -> Page {
    admin_page(
        state,
        session,
        &AuditForm::default(),
        None,
        Some(problem),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

#[derive(Deserialize)]
pub(super) struct NewKeyForm {
    csrf: String,
    user: String,
}

/// Makes an API key for a user and shows it once on the admin page (only its digest is kept).
pub(super) async fn add_key(
    State(state): State<AppState>,
    session: Session,
    Form(form): Form<NewKeyForm>,
) -> Page {
    if let Some(refusal) = form_refused(&session, &form.csrf, ADMIN_PAGE, "see the admin page") {
        return Err(refusal);
    }
    match crate::auth::create_key(&state.store, form.user.trim(), &session.principal().actor())
        .await
    {
        Ok(token) => {
            admin_page(
                &state,
                &session,
                &AuditForm::default(),
                Some((form.user.trim().to_string(), token)),
                None,
                StatusCode::OK,
            )
            .await
        }
        Err(stratum_store::StoreError::Invalid(m) | stratum_store::StoreError::NotFound(m)) => {
            problem(&state, &session, m).await
        }
        Err(e) => Err(refused(e.into())),
    }
}
