//! What people enter: level overrides and manual scorecard inputs.

use stratum_store::NewOverride;

use super::prelude::*;
use serde::Serialize;

/// Who changes overrides and manual inputs (the API's routes and the console's card).
pub(crate) const EDITORS: &[Role] = &[Role::Admin];

pub(super) const ROUTES: &[Route] = &[
    Route {
        method: Method::Get,
        path: "/api/overrides",
        summary: "Level overrides",
        roles: Some(&[Role::Admin, Role::Analyst]),
        own_customers: false,
        does: "list overrides",
        handler: |m| on(m, overrides),
    },
    Route {
        method: Method::Post,
        path: "/api/overrides",
        summary: "Add an override: body {customer_id, ladder, level, mode?, reason, until?}",
        roles: Some(EDITORS),
        own_customers: false,
        does: "change overrides",
        handler: |m| on(m, add_override),
    },
    Route {
        method: Method::Post,
        path: "/api/overrides/{id}/remove",
        summary: "Remove an override: body {reason}",
        roles: Some(EDITORS),
        own_customers: false,
        does: "change overrides",
        handler: |m| on(m, remove_override),
    },
    Route {
        method: Method::Get,
        path: "/api/inputs",
        summary: "Manual inputs",
        roles: Some(&[Role::Admin, Role::Analyst]),
        own_customers: false,
        does: "list manual inputs",
        handler: |m| on(m, inputs),
    },
    Route {
        method: Method::Put,
        path: "/api/customers/{id}/inputs/{field}",
        summary: "Set a manual scorecard input: body {value, reason}",
        roles: Some(EDITORS),
        own_customers: false,
        does: "change manual inputs",
        handler: |m| on(m, set_input),
    },
];

async fn overrides(State(state): State<AppState>) -> ApiResult {
    ok(Overrides {
        overrides: state.store.overrides().await?,
    })
}

#[derive(Serialize)]
struct Overrides {
    overrides: Vec<stratum_store::OverrideRow>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OverrideBody {
    customer_id: String,
    ladder: String,
    level: String,
    mode: Option<stratum_core::OverrideMode>,
    reason: String,
    until: Option<chrono::NaiveDate>,
    /// The customer is not in the served run yet.
    #[serde(default)]
    new_customer: bool,
}

async fn add_override(
    State(state): State<AppState>,
    who: Principal,
    AppJson(b): AppJson<OverrideBody>,
) -> ApiResult {
    let new_customer = b.new_customer;
    let change = NewOverride {
        customer_id: b.customer_id,
        ladder: b.ladder,
        level: b.level,
        mode: b.mode.unwrap_or_default(),
        reason: b.reason,
        until: b.until,
    };
    let id = add_checked_override(&state, &who, change, new_customer).await?;
    Ok((StatusCode::CREATED, Json(Added { id })).into_response())
}

/// Adds an override once the policy has its ladder and level and the store the customer
/// (unless `new_customer`), with a reason: the API's and the console's one way in.
pub(crate) async fn add_checked_override(
    state: &AppState,
    who: &Principal,
    change: NewOverride,
    new_customer: bool,
) -> Result<i64, ApiError> {
    let policy = &state.policy.policy;
    if change.reason.trim().is_empty() {
        return Err(ApiError::invalid("an override needs a reason"));
    }
    stratum_runner::manual::check_override(policy, &change.ladder, &change.level)?;
    stratum_runner::manual::check_customer(&state.store, policy, &change.customer_id, new_customer)
        .await?;
    Ok(state.store.add_override(&change, &who.actor()).await?)
}

#[derive(Serialize)]
struct Added {
    id: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReasonBody {
    reason: String,
}

async fn remove_override(
    State(state): State<AppState>,
    who: Principal,
    AppPath(id): AppPath<i64>,
    AppJson(b): AppJson<ReasonBody>,
) -> ApiResult {
    state
        .store
        .remove_override(id, &b.reason, &who.actor())
        .await?;
    ok(Removed { removed: id })
}

#[derive(Serialize)]
struct Removed {
    removed: i64,
}

async fn inputs(State(state): State<AppState>) -> ApiResult {
    ok(Inputs {
        inputs: state.store.inputs().await?,
    })
}

#[derive(Serialize)]
struct Inputs {
    inputs: Vec<stratum_store::InputRow>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputBody {
    value: String,
    reason: String,
}

async fn set_input(
    State(state): State<AppState>,
    target: Customer,
    AppPath((customer, field)): AppPath<(String, String)>,
    AppJson(b): AppJson<InputBody>,
) -> ApiResult {
    let changed =
        set_checked_input(&state, &target.who, &customer, &field, &b.value, &b.reason).await?;
    ok(InputSet {
        customer_id: customer,
        field,
        value: b.value,
        changed,
    })
}

/// Sets a manual input once the policy declares the field (and the value fits its type)
/// and the store has the customer, with a reason; whether the value changed.
pub(crate) async fn set_checked_input(
    state: &AppState,
    who: &Principal,
    customer: &str,
    field: &str,
    value: &str,
    reason: &str,
) -> Result<bool, ApiError> {
    let policy = &state.policy.policy;
    if reason.trim().is_empty() {
        return Err(ApiError::invalid("a manual input needs a reason"));
    }
    stratum_runner::manual::check_input(policy, field, value)?;
    stratum_runner::manual::check_customer(&state.store, policy, customer, false).await?;
    Ok(state
        .store
        .set_input(customer, field, value, reason, &who.actor())
        .await?)
}

#[derive(Serialize)]
struct InputSet {
    customer_id: String,
    field: String,
    value: String,
    changed: bool,
}
