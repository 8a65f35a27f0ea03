//! Who may see which customer: the one rule every route that names a customer goes through.
//! An agent sees only the customers it owns (its dedicated manager assignments, else
//! `[service] owner` in the served run) or holds in the sales pipeline (a prospect handed to
//! it, a lead the data does not have yet) and, when it leads a team (`[teams]`), those of its
//! team's members; any other id, existing or not, is refused the same way, so agents
//! cannot learn which customers exist. Other roles see every customer. Routes with a
//! customer in the path take the [`Customer`] extractor (checked before the handler runs);
//! routes with customers in the body call [`authorize`] for each. A rep's pipeline (call
//! list, activity) follows the same rule through [`authorize_rep`].

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use stratum_core::teams::Teams;

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
        Role::Agent => {
            let owned = authorize_in(&*state.level_table().await?, state.teams(), who, customer);
            if owned.is_err()
                && let Some(p) = state.store.prospect(customer).await?
                && state.teams().covers(&who.user, &p.rep)
            {
                return Ok(());
            }
            owned
        }
    }
}

/// [`authorize`] against a snapshot of the served run the caller holds already (a request
/// naming many customers checks them all against one run).
pub(crate) fn authorize_in(
    table: &LevelTable,
    teams: &Teams,
    who: &Principal,
    customer: &str,
) -> Result<(), ApiError> {
    match who.role {
        Role::Admin | Role::Analyst | Role::Service => Ok(()),
        Role::Agent => match table.owner(customer) {
            Some(owner) if teams.covers(&who.user, owner) => Ok(()),
            _ => Err(ApiError::forbidden(format!(
                "customer {customer} is not one of yours"
            ))),
        },
    }
}

/// The owners whose customers `who` sees: `None` for every customer (any role but agent),
/// else the agent and the members of the team it leads.
pub(crate) fn visible_owners(teams: &Teams, who: &Principal) -> Option<Vec<String>> {
    match who.role {
        Role::Admin | Role::Analyst | Role::Service => None,
        Role::Agent => Some(
            std::iter::once(who.user.clone())
                .chain(teams.members_of(&who.user).iter().cloned())
                .collect(),
        ),
    }
}

/// Refuses an agent another rep's call list or activity, unless it leads the rep's team.
pub(crate) fn authorize_rep(teams: &Teams, who: &Principal, rep: &str) -> Result<(), ApiError> {
    match who.role {
        Role::Admin | Role::Analyst | Role::Service => Ok(()),
        Role::Agent if teams.covers(&who.user, rep) => Ok(()),
        Role::Agent => Err(ApiError::forbidden(format!(
            "{rep}'s pipeline is not yours: an agent reads its own, or its team's when it leads one"
        ))),
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
