//! Users and the audit log.

use super::prelude::*;
use serde::Serialize;

pub(super) const ROUTES: &[Route] = &[
    Route {
        method: Method::Get,
        path: "/api/users",
        summary: "Users and roles",
        roles: Some(&[Role::Admin]),
        own_customers: false,
        does: "list users",
        handler: |m| on(m, users),
    },
    Route {
        method: Method::Post,
        path: "/api/users",
        summary: "Add a user: body {name, role}",
        roles: Some(&[Role::Admin]),
        own_customers: false,
        does: "add users",
        handler: |m| on(m, add_user),
    },
    Route {
        method: Method::Post,
        path: "/api/users/{name}/disable",
        summary: "Disable a user: its keys stop working (within the one-minute key cache)",
        roles: Some(&[Role::Admin]),
        own_customers: false,
        does: "disable users",
        handler: |m| on(m, disable_user),
    },
    Route {
        method: Method::Get,
        path: "/api/audit",
        summary: "The audit log, newest first (`limit`, `user`, `customer`, `action`, `since`, `until`)",
        roles: Some(&[Role::Admin]),
        own_customers: false,
        does: "read the audit log",
        handler: |m| on(m, audit),
    },
];

async fn users(State(state): State<AppState>) -> ApiResult {
    ok(Users {
        users: state.store.users().await?,
    })
}

#[derive(Serialize)]
struct Users {
    users: Vec<stratum_store::UserRow>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserBody {
    name: String,
    role: String,
}

async fn add_user(
    State(state): State<AppState>,
    who: Principal,
    AppJson(b): AppJson<UserBody>,
) -> ApiResult {
    let role: Role = b.role.parse().map_err(ApiError::invalid)?;
    state.store.add_user(&b.name, role, &who.actor()).await?;
    Ok((StatusCode::CREATED, Json(UserAdded { name: b.name, role })).into_response())
}

async fn disable_user(
    State(state): State<AppState>,
    who: Principal,
    AppPath(name): AppPath<String>,
) -> ApiResult {
    state
        .store
        .disable_user(&name, &who.actor())
        .await
        .map_err(not_found_as(ErrorCode::UserNotFound))?;
    ok(Disabled {
        name,
        disabled: true,
    })
}

#[derive(Serialize)]
struct UserAdded {
    name: String,
    role: Role,
}

#[derive(Serialize)]
struct Disabled {
    name: String,
    disabled: bool,
}

#[derive(Deserialize)]
struct AuditQuery {
    limit: Option<i64>,
    user: Option<String>,
    customer: Option<String>,
    action: Option<String>,
    since: Option<chrono::NaiveDate>,
    until: Option<chrono::NaiveDate>,
}

async fn audit(State(state): State<AppState>, AppQuery(q): AppQuery<AuditQuery>) -> ApiResult {
    let limit = q.limit.unwrap_or(100).clamp(1, 10_000);
    let filter = stratum_store::AuditFilter {
        actor: q.user,
        subject: q.customer,
        action: q.action,
        since: q.since,
        until: q.until,
    };
    ok(Audit {
        audit: state.store.audit_search(&filter, limit).await?,
    })
}

#[derive(Serialize)]
struct Audit {
    audit: Vec<stratum_store::AuditRow>,
}
