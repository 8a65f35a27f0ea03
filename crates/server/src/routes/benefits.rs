//! Benefits: the catalog, and the redemption ledger with its quotas.

use std::collections::BTreeMap;

use serde::Serialize;
use stratum_core::{Quota, QuotaPeriod};
use stratum_store::{NewRedemption, RedemptionRow};

use super::Units;

use super::prelude::*;

/// Who may redeem and cancel benefits (agents for their own customers): the API's routes and
/// the console's forms.
pub(crate) const REDEEMERS: &[Role] = &[Role::Admin, Role::Agent, Role::Service];

pub(super) const ROUTES: &[Route] = &[
    Route {
        method: Method::Get,
        path: "/api/benefits",
        summary: "The benefits catalog: quota per level and period",
        roles: Some(ANY),
        own_customers: false,
        does: "read the benefits catalog",
        handler: |m| on(m, benefits),
    },
    Route {
        method: Method::Get,
        path: "/api/customers/{id}/redemptions",
        summary: "The customer's redemptions, newest first",
        roles: Some(ANY),
        own_customers: true,
        does: "list redemptions",
        handler: |m| on(m, list_redemptions),
    },
    Route {
        method: Method::Post,
        path: "/api/customers/{id}/redemptions",
        summary: "Redeem a benefit: body {benefit, quantity}; header Idempotency-Key makes retries safe",
        roles: Some(REDEEMERS),
        own_customers: true,
        does: "redeem benefits",
        handler: |m| on(m, redeem),
    },
    Route {
        method: Method::Post,
        path: "/api/redemptions/{id}/cancel",
        summary: "Cancel a redemption; its quota is restored",
        roles: Some(REDEEMERS),
        own_customers: true,
        does: "cancel redemptions",
        handler: |m| on(m, cancel_redemption),
    },
];

async fn benefits(State(state): State<AppState>) -> ApiResult {
    let service = state.service()?;
    let benefits = service
        .benefits
        .iter()
        .map(|b| CatalogBenefit {
            benefit: &b.name,
            title: b.title.as_deref(),
            period: b.period,
            quota: service
                .levels
                .iter()
                .zip(&b.quota)
                .filter(|(_, q)| **q != Quota::NotEligible)
                .map(|(level, q)| (level.as_str(), Units::of(*q)))
                .collect(),
            grant_hours: b.grant_hours,
        })
        .collect();
    ok(Catalog {
        ladder: &service.ladder_name,
        timezone: service.timezone.name(),
        benefits,
    })
}

#[derive(Serialize)]
struct Catalog<'a> {
    ladder: &'a str,
    timezone: &'a str,
    benefits: Vec<CatalogBenefit<'a>>,
}

#[derive(Serialize)]
struct CatalogBenefit<'a> {
    benefit: &'a str,
    title: Option<&'a str>,
    period: QuotaPeriod,
    /// Per eligible level, by name.
    quota: BTreeMap<&'a str, Units>,
    grant_hours: Option<u32>,
}

async fn list_redemptions(State(state): State<AppState>, customer: Customer) -> ApiResult {
    let id = customer.id;
    let redemptions = state.store.redemptions(&id).await?;
    ok_local(
        &state,
        Redemptions {
            customer_id: id,
            redemptions,
        },
    )
}

#[derive(Serialize)]
struct Redemptions {
    customer_id: String,
    redemptions: Vec<RedemptionRow>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RedeemBody {
    benefit: String,
    quantity: Option<i64>,
}

async fn redeem(
    State(state): State<AppState>,
    customer: Customer,
    headers: HeaderMap,
    AppJson(body): AppJson<RedeemBody>,
) -> ApiResult {
    let Customer { id, who } = customer;
    let quantity = body.quantity.unwrap_or(1);
    if !(1..=1000).contains(&quantity) {
        return Err(ApiError::invalid(format!(
            "quantity must be between 1 and 1000, not {quantity}"
        )));
    }
    let key = match headers.get("idempotency-key") {
        Some(v) => Some(
            v.to_str()
                .ok()
                .filter(|k| !k.is_empty() && k.len() <= 200)
                .ok_or_else(|| {
                    ApiError::invalid("Idempotency-Key must be 1-200 visible characters")
                })?
                .to_string(),
        ),
        None => None,
    };
    let (redeemed, quota) =
        redeem_benefit(&state, &who, &id, &body.benefit, quantity as u32, key).await?;
    let status = if redeemed.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let body = Redeemed {
        remaining: quota.map_or(Units::Unlimited, |q| {
            Units::Count(q.saturating_sub(redeemed.used))
        }),
        redemption: redeemed.redemption,
        replayed: redeemed.replayed,
        used: redeemed.used,
    };
    Ok((status, Json(local_times(&state, body))).into_response())
}

#[derive(Serialize)]
struct Redeemed {
    redemption: RedemptionRow,
    replayed: bool,
    used: u32,
    remaining: Units,
}

async fn cancel_redemption(
    State(state): State<AppState>,
    who: Principal,
    AppPath(id): AppPath<i64>,
) -> ApiResult {
    let cancelled = cancel(&state, &who, id).await?;
    ok_local(&state, cancelled)
}

/// Redeems `quantity` of a benefit for a customer at its served level, within its quota this
/// period: the API's redemptions and the console's form. The caller has authorized `who`
/// for the customer. Returns the ledger's answer and the level's quota (`None`: unlimited).
pub(crate) async fn redeem_benefit(
    state: &AppState,
    who: &Principal,
    id: &str,
    benefit_name: &str,
    quantity: u32,
    key: Option<String>,
) -> Result<(stratum_store::Redeemed, Option<u32>), ApiError> {
    let service = state.service()?;
    let benefit = service.benefit(benefit_name).ok_or_else(|| {
        ApiError::new(
            ErrorCode::BenefitNotFound,
            format!("the catalog has no benefit `{}`", benefit_name),
        )
    })?;
    let levels = current_levels(state, id).await?;
    let level = service_level(state, &levels)?;
    let quota = match benefit.quota_for(level) {
        Quota::NotEligible => {
            return Err(ApiError::new(
                ErrorCode::NotEligible,
                format!(
                    "customer {id} ({}) is not eligible for `{}`",
                    level
                        .map(|l| service.levels[l].as_str())
                        .unwrap_or("no level"),
                    benefit.name
                ),
            ));
        }
        Quota::Limited(n) => Some(n),
        Quota::Unlimited => None,
    };
    let now = state.now();
    let redeemed = state
        .store
        .redeem(
            &NewRedemption {
                customer_id: id.to_string(),
                benefit: benefit.name.clone(),
                quantity,
                level: level.map(|l| service.levels[l].clone()).unwrap_or_default(),
                idempotency_key: key,
                at: now,
                window: benefit.period.window(now, service.timezone),
                quota,
                grant_hours: benefit.grant_hours,
            },
            &who.actor(),
        )
        .await?;
    Ok((redeemed, quota))
}

/// Cancels a redemption if `who` may see its customer; its quota is restored.
pub(crate) async fn cancel(
    state: &AppState,
    who: &Principal,
    id: i64,
) -> Result<RedemptionRow, ApiError> {
    let existing = state
        .store
        .redemption(id)
        .await
        .map_err(not_found_as(ErrorCode::RedemptionNotFound))?;
    authorize(state, who, &existing.customer_id).await?;
    Ok(state.store.cancel_redemption(id, &who.actor()).await?)
}
