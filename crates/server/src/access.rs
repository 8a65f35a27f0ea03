//! Who may see which customer: the one rule every route that names a customer goes through.
//! An agent sees only the customers it owns (`[service] owner` in the served run); any other
//! id, existing or not, is refused the same way, so agents cannot learn which customers
//! exist. Other roles see every customer. Routes with a customer in the path take the
//! [`Customer`] extractor (checked before the handler runs); routes with customers in the
//! body call [`authorize`] for each.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;

use crate::AppState;
use crate::LevelTable;
use crate::auth::{Principal, Role};
use crate::error::ApiError;

/// Refuses `who` a customer it may not see.
pub(crate) async fn authorize(
    state: &AppState,
    who: &Principal,
    customer: &str,
) -> Result<(), ApiError> {
    match who.role {
        Role::Admin | Role::Analyst | Role::Service => Ok(()),
        Role::Agent => authorize_in(&*state.level_table().await?, who, customer),
    }
}

/// [`authorize`] against a snapshot of the served run the caller holds already (a request
/// naming many customers checks them all against one run).
pub(crate) fn authorize_in(
    table: &LevelTable,
    who: &Principal,
    customer: &str,
) -> Result<(), ApiError> {
    match who.role {
        Role::Admin | Role::Analyst | Role::Service => Ok(()),
        Role::Agent => match table.owner(customer) {
            Some(owner) if owner == who.user => Ok(()),
            _ => Err(ApiError::forbidden(format!(
                "customer {customer} is not one of yours"
            ))),
        },
    }
}

/// The customer in the route's `{id}`, already authorized for the caller.
pub(crate) struct Customer {
    pub id: String,
    pub who: Principal,
}

impl FromRequestParts<AppState> for Customer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let who = Principal::from_request_parts(parts, state).await?;
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(ApiError::from)?;
        let id = params
            .get("id")
            .cloned()
            .ok_or_else(|| ApiError::internal("a customer route without {id}"))?;
        authorize(state, &who, &id).await?;
        Ok(Customer { id, who })
    }
}
