//! Customers: the search with its filters and pages, the customer card with its forms
//! (redeem and cancel, overrides and manual inputs), and an agent's own customers. Every
//! figure is read from what the served run recorded: the card rebuilds the customer's row
//! of metrics to say what the next level needs, it never evaluates the policy.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;
use stratum_core::model::{Ladder, ScoreSpec};
use stratum_core::{Column, Frame, OverrideMode, fmt_num};
use stratum_store::Role;

use super::{CsrfForm, Page, Session, form_refused, internal, not_for, refused, render};
use crate::AppState;
use crate::auth::random_hex;
use crate::lookup::Filter;
use crate::routes::manual::EDITORS;

#[derive(Deserialize, Default)]
pub(super) struct SearchForm {
    #[serde(default)]
    q: String,
    #[serde(default)]
    level: String,
    #[serde(default)]
    tag: String,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    page: usize,
}

/// One customer in a list.
struct Listed {
    id: String,
    level: String,
    owner: String,
}

#[derive(Template)]
#[template(path = "customers.html")]
struct CustomersPage<'a> {
    t: &'static super::i18n::Text,
    s: &'a Session,
    form: &'a SearchForm,
    ladder: String,
    /// (level name, as shown) of the service ladder, best first.
    levels: Vec<(String, String)>,
    tags: Vec<String>,
    owners: Vec<String>,
    own_only: bool,
    found: Vec<Listed>,
    total: String,
    first: usize,
    last: usize,
    previous: Option<String>,
    next: Option<String>,
}

/// Customers on a page of a list.
const PAGE_SIZE: usize = 50;

fn query_of(form: &SearchForm, page: usize) -> String {
    let e = super::percent_encode;
    format!(
        "/customers?q={}&level={}&tag={}&owner={}&page={page}",
        e(&form.q),
        e(&form.level),
        e(&form.tag),
        e(&form.owner)
    )
}

/// The search: text in the id or any text metric (name, region, …), narrowed by the level on
/// the service ladder, a tag and an owner, a page at a time. An agent's list holds only its
/// own customers.
pub(super) async fn customers(
    State(state): State<AppState>,
    session: Session,
    Query(form): Query<SearchForm>,
) -> Page {
    let ladder_name = state.service_ladder();
    let table = state.level_table().await.map_err(refused)?;
    let visible = crate::access::visible_owners(state.teams(), &session.principal());
    fn given(s: &str) -> Option<&str> {
        Some(s.trim()).filter(|s| !s.is_empty())
    }
    let filter = Filter {
        text: &form.q,
        level: given(&form.level).map(|l| (ladder_name.as_str(), l)),
        tag: given(&form.tag),
        owner: given(&form.owner),
        among: visible.as_deref(),
    };
    let offset = form.page * PAGE_SIZE;
    let (total, ids) = table.search(&filter, offset, PAGE_SIZE);
    let (ladder, shown) = super::level_names(&state, &ladder_name, session.lang);
    let found = ids
        .iter()
        .map(|id| Listed {
            id: id.to_string(),
            level: table
                .level_on(id, &ladder_name)
                .map(&shown)
                .unwrap_or_default(),
            owner: table.owner(id).unwrap_or("").to_string(),
        })
        .collect::<Vec<_>>();
    let shown_to = offset + found.len();
    Ok(render(
        StatusCode::OK,
        CustomersPage {
            t: session.t,
            s: &session,
            form: &form,
            ladder: ladder.map_or(ladder_name.clone(), |l| l.shown(session.lang).to_string()),
            levels: ladder
                .map(|l| {
                    l.levels
                        .iter()
                        .map(|v| (v.name.clone(), v.shown(session.lang).to_string()))
                        .collect()
                })
                .unwrap_or_default(),
            tags: table.tags().into_iter().map(str::to_string).collect(),
            // An agent filters by owner only among the team it leads.
            owners: match &visible {
                Some(team) if team.len() > 1 => team.clone(),
                Some(_) => Vec::new(),
                None => table
                    .owner_names()
                    .into_iter()
                    .map(str::to_string)
                    .collect(),
            },
            own_only: visible.is_some(),
            total: fmt_num(total as f64),
            first: if found.is_empty() { 0 } else { offset + 1 },
            last: shown_to,
            previous: (form.page > 0).then(|| query_of(&form, form.page - 1)),
            next: (shown_to < total).then(|| query_of(&form, form.page + 1)),
            found,
        },
    ))
}

/// A customer's level on one ladder, as the card shows it.
struct LevelView {
    ladder: String,
    level: String,
    rank: Option<i64>,
    score: Option<String>,
    explanation: String,
    /// What the next better level needs, from the recorded metrics.
    gap: String,
}

/// One part of a score's breakdown.
struct PartView {
    part: String,
    input: String,
    detail: String,
    points: String,
}

struct ScoreView {
    name: String,
    total: String,
    parts: Vec<PartView>,
}

#[derive(Template)]
#[template(path = "customer.html")]
struct CustomerPage<'a> {
    t: &'static super::i18n::Text,
    s: &'a Session,
    card: crate::routes::customers::Card<'a>,
    run_id: i64,
    as_of: String,
    levels: Vec<LevelView>,
    /// Text metrics (identity and attributes), then the others.
    attributes: Vec<(String, String)>,
    metrics: Vec<(String, String)>,
    lifetime: Vec<(String, String)>,
    scores: Vec<ScoreView>,
    household: Vec<String>,
    history: Vec<(i64, String, String, String, String)>,
    redemptions: Vec<stratum_store::RedemptionRow>,
    /// Benefit names as shown.
    benefit_names: Vec<String>,
    callbacks: Vec<stratum_store::CallbackRow>,
    /// The customer in the sales pipeline, and its contacts (latest first).
    prospect: Option<stratum_store::ProspectRow>,
    contacts: Vec<stratum_store::InteractionRow>,
    overrides: Vec<stratum_store::OverrideRow>,
    inputs: Vec<(String, String, String)>,
    /// (ladder, [(level, shown)]) for the override form.
    ladders: Vec<(String, Vec<(String, String)>)>,
    /// The role may redeem and cancel (for this customer: viewing it was authorized).
    may_redeem: bool,
    may_edit: bool,
    /// Makes a form's redemption idempotent: submitting it twice redeems once.
    form_key: String,
    problem: Option<String>,
}

/// A recorded metric value as the card shows it.
fn shown_value(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "–".to_string(),
        serde_json::Value::Number(n) => n.as_f64().map_or(n.to_string(), fmt_num),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One row rebuilt from the run's recorded metrics and scores, with the customer's tags:
/// what the rules read, so the gap to the next level is computed as the run would have.
fn recorded_row(id: &str, metrics: &[(String, serde_json::Value)], tags: &[String]) -> Frame {
    let mut frame = Frame::new(vec![id.to_string()], vec![tags.to_vec()]);
    for (name, value) in metrics {
        let column = match value {
            serde_json::Value::String(s) => Column::Text(vec![Some(s.clone())]),
            serde_json::Value::Null => Column::Num(vec![None]),
            v => Column::Num(vec![v.as_f64()]),
        };
        // A duplicate name cannot come from one recorded chunk; skip rather than fail.
        let _ = frame.push(name.clone(), column);
    }
    frame
}

/// The level's index on the ladder as the gap reads it: past the end for "not graded".
fn level_index(ladder: &Ladder, level: &str) -> usize {
    match ladder.level_index(level) {
        Some(i) => i,
        None if level == stratum_core::UNPLACED => ladder.levels.len(),
        None => ladder.levels.len() + 1,
    }
}

async fn customer_page(
    state: &AppState,
    session: &Session,
    id: &str,
    problem: Option<String>,
    status: StatusCode,
) -> Page {
    crate::access::authorize(state, &session.principal(), id)
        .await
        .map_err(refused)?;
    let card = crate::routes::customers::card(state, id)
        .await
        .map_err(refused)?;
    let run_id = card.levels[0].run_id;
    let as_of = chrono::NaiveDate::parse_from_str(&card.levels[0].as_of, "%Y-%m-%d")
        .map_or(card.levels[0].as_of.clone(), |d| session.date(&d));
    let lang = session.lang;
    let policy = &state.policy.policy;
    let recorded = state
        .store
        .metrics_of(run_id, id)
        .await
        .map_err(internal)?
        .unwrap_or_default();
    let (parts, recorded): (Vec<_>, Vec<_>) = recorded
        .into_iter()
        .partition(|(name, _)| name.contains(stratum_runner::PART_SEPARATOR));
    let frame = recorded_row(id, &recorded, &card.tags);
    let cutoffs = recorded_cutoffs(state, run_id).await?;
    let mut ordered: Vec<&stratum_store::CurrentLevel> = card.levels.iter().collect();
    ordered.sort_by_key(|l| policy.ladders.iter().position(|p| p.name == l.ladder));
    let levels = ordered
        .into_iter()
        .map(|l| {
            let ladder = policy.ladders.iter().find(|p| p.name == l.ladder);
            // Bound to the rebuilt row; a condition reading something the run did not record
            // (a policy changed since) leaves the gap unsaid rather than guessed.
            let gap = ladder
                .and_then(|ladder| stratum_core::bind_ladder(ladder, &frame).ok())
                .map_or(String::new(), |bound| {
                    // An override's explanation says so; a hold keeps the level the rules left.
                    let overridden = l.rule_level != l.level && l.explanation.contains("override");
                    let empty = Vec::new();
                    stratum_core::gap_to_next(
                        &bound,
                        level_index(&bound, &l.level),
                        overridden,
                        cutoffs.get(&l.ladder).unwrap_or(&empty),
                        &frame,
                        0,
                    )
                });
            LevelView {
                ladder: ladder.map_or(l.ladder.clone(), |p| p.shown(lang).to_string()),
                level: ladder.map_or(l.level.clone(), |p| {
                    p.level_shown(&l.level, lang).to_string()
                }),
                rank: l.rank,
                score: l.score.map(|s| format!("{s:.2}")),
                explanation: l.explanation.clone(),
                gap,
            }
        })
        .collect();
    let is_lifetime = |name: &str| {
        policy.metrics.iter().any(|m| {
            m.name == name && matches!(m.kind, stratum_core::model::MetricKind::Lifetime { .. })
        })
    };
    let (mut attributes, mut metrics, mut lifetime) = (Vec::new(), Vec::new(), Vec::new());
    // The owner has its own line, the household its members.
    let owner_metric = policy.service.as_ref().and_then(|s| s.owner.as_deref());
    for (name, value) in &recorded {
        if Some(name.as_str()) == owner_metric {
            continue;
        }
        let row = (name.clone(), shown_value(value));
        if value.is_string() || Some(name.as_str()) == policy.settings.household.as_deref() {
            attributes.push(row);
        } else if is_lifetime(name) {
            lifetime.push(row);
        } else {
            metrics.push(row);
        }
    }
    let scores = score_views(policy, &frame, &parts);
    let table = state.level_table().await.map_err(refused)?;
    let household = policy
        .settings
        .household
        .as_deref()
        .and_then(|h| recorded.iter().find(|(name, _)| name == h))
        .and_then(|(_, v)| v.as_str())
        .map(|h| {
            table
                .household(h, id)
                .into_iter()
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let history = stratum_runner::history(&state.store, Some(policy.history_name()), id)
        .await
        .map_err(|e| refused(e.into()))?
        .into_iter()
        .map(|h| {
            let ladder = policy.ladders.iter().find(|p| p.name == h.ladder);
            (
                h.run_id,
                session.date(&h.as_of),
                ladder.map_or(h.ladder.clone(), |p| p.shown(lang).to_string()),
                ladder.map_or(h.level.clone(), |p| {
                    p.level_shown(&h.level, lang).to_string()
                }),
                h.explanation,
            )
        })
        .collect();
    // Times in the service's time zone, as the API answers them.
    let mut redemptions = state.store.redemptions(id).await.map_err(internal)?;
    if let Some(service) = policy.service.as_ref() {
        for r in &mut redemptions {
            if let Ok(t) = chrono::DateTime::parse_from_rfc3339(&r.redeemed_at) {
                r.redeemed_at = t
                    .with_timezone(&service.timezone)
                    .format("%Y-%m-%d %H:%M")
                    .to_string();
            }
        }
    }
    let benefit_names = card
        .benefits
        .iter()
        .map(|b| {
            policy
                .service
                .as_ref()
                .and_then(|s| s.benefits.iter().find(|x| x.name == b.benefit))
                .map_or(b.benefit.to_string(), |x| x.shown(lang).to_string())
        })
        .collect();
    let callbacks = state
        .store
        .open_callbacks()
        .await
        .map_err(internal)?
        .into_iter()
        .filter(|c| c.customer_id == id)
        .collect();
    let prospect = state.store.prospect(id).await.map_err(internal)?;
    let contacts = state.store.interactions_of(id).await.map_err(internal)?;
    let overrides = state
        .store
        .overrides()
        .await
        .map_err(internal)?
        .into_iter()
        .filter(|o| o.customer_id == id && o.removed_at.is_none())
        .collect();
    let current_inputs = state.store.inputs().await.map_err(internal)?;
    let inputs = input_fields(policy)
        .into_iter()
        .map(|field| {
            let now = current_inputs
                .iter()
                .find(|i| i.customer_id == id && i.field == field);
            (
                field,
                now.map(|i| i.value.clone()).unwrap_or_default(),
                now.map(|i| format!("{} ({}, {})", i.reason, i.updated_by, i.updated_at))
                    .unwrap_or_default(),
            )
        })
        .collect();
    let ladders = policy
        .ladders
        .iter()
        .map(|l| {
            (
                l.name.clone(),
                l.levels
                    .iter()
                    .map(|v| (v.name.clone(), v.shown(lang).to_string()))
                    .collect(),
            )
        })
        .collect();
    Ok(render(
        status,
        CustomerPage {
            t: session.t,
            s: session,
            card,
            run_id,
            as_of,
            levels,
            attributes,
            metrics,
            lifetime,
            scores,
            household,
            history,
            redemptions,
            benefit_names,
            callbacks,
            prospect,
            contacts,
            overrides,
            inputs,
            ladders,
            may_redeem: crate::routes::benefits::REDEEMERS.contains(&session.role),
            may_edit: EDITORS.contains(&session.role),
            form_key: random_hex(8),
            problem,
        },
    ))
}

/// Per ladder, the rank cutoffs the served run recorded with its summaries.
async fn recorded_cutoffs(
    state: &AppState,
    run_id: i64,
) -> Result<std::collections::HashMap<String, Vec<Option<f64>>>, axum::response::Response> {
    let mut out = std::collections::HashMap::new();
    for (_, ladder, json) in state
        .store
        .run_summaries(&[run_id])
        .await
        .map_err(internal)?
    {
        let summary: stratum_core::RecordedSummary =
            serde_json::from_str(&json).map_err(internal)?;
        out.insert(ladder, summary.cutoffs);
    }
    Ok(out)
}

/// The manual input fields the policy declares (its `inputs` sources' columns).
fn input_fields(policy: &stratum_core::Policy) -> Vec<String> {
    policy
        .sources
        .values()
        .filter(|s| s.format == stratum_core::SourceFormat::Inputs)
        .flat_map(|s| s.columns.keys().cloned())
        .collect()
}

/// Each score's points, part by part: a weighted score's from the points the run recorded
/// per part; a scorecard's and RFM's from the customer's own recorded metrics.
fn score_views(
    policy: &stratum_core::Policy,
    frame: &Frame,
    parts: &[(String, serde_json::Value)],
) -> Vec<ScoreView> {
    policy
        .scores
        .iter()
        .map(|score| {
            let total = frame
                .column(&score.name)
                .and_then(|c| c.num(0))
                .map_or("–".to_string(), |v| format!("{v:.2}"));
            let value_of = |input: &str| {
                frame
                    .column(input)
                    .map_or("–".to_string(), |c| c.value(0).to_string())
            };
            let parts = match &score.spec {
                ScoreSpec::Weighted { parts: spec, .. } => spec
                    .iter()
                    .map(|p| {
                        let column = format!(
                            "{}{}{}",
                            score.name,
                            stratum_runner::PART_SEPARATOR,
                            p.input
                        );
                        let points = parts
                            .iter()
                            .find(|(name, _)| *name == column)
                            .and_then(|(_, v)| v.as_f64());
                        PartView {
                            part: p.input.clone(),
                            input: value_of(&p.input),
                            detail: format!("× {} ({:?})", p.weight, p.normalize).to_lowercase(),
                            points: points.map_or("0".to_string(), |v| format!("{v:.2}")),
                        }
                    })
                    .collect(),
                ScoreSpec::Scorecard { dimensions } => dimensions
                    .iter()
                    .map(|d| {
                        let v = frame
                            .column(&d.metric)
                            .map_or(stratum_core::Value::Null, |c| c.value(0));
                        let (points, detail) = stratum_core::score::dimension_points(d, v);
                        PartView {
                            part: d.name.clone(),
                            input: value_of(&d.metric),
                            detail,
                            points: fmt_num(points),
                        }
                    })
                    .collect(),
                ScoreSpec::Rfm { .. } => score
                    .inputs()
                    .into_iter()
                    .zip(score.sub_names())
                    .zip(["R", "F", "M"])
                    .map(|((input, sub), label)| PartView {
                        part: format!("{label} ({input})"),
                        input: value_of(input),
                        detail: String::new(),
                        points: value_of(&sub),
                    })
                    .collect(),
            };
            ScoreView {
                name: score.name.clone(),
                total,
                parts,
            }
        })
        .collect()
}

/// The customer card: identity and attributes, household, levels with their explanations
/// and what the next level needs, the score breakdown, lifetime figures, benefits with this
/// period's use, redemptions, call-backs, overrides and inputs, and the level history. An
/// agent sees only its own customers.
pub(super) async fn customer(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> Page {
    customer_page(&state, &session, &id, None, StatusCode::OK).await
}

#[derive(Deserialize)]
pub(super) struct RedeemForm {
    csrf: String,
    benefit: String,
    key: String,
}

/// Redeems one unit from the card's form, then shows the card again.
pub(super) async fn redeem(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
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
pub(super) async fn cancel_redemption(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<i64>,
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

#[derive(Deserialize)]
pub(super) struct OverrideForm {
    csrf: String,
    ladder: String,
    level: String,
    mode: String,
    reason: String,
    #[serde(default)]
    until: String,
}

/// Adds an override from the card (a reason is required); it applies from the next run.
/// A refused change shows the card again with what was wrong.
pub(super) async fn add_override(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Form(form): Form<OverrideForm>,
) -> Page {
    if let Some(refusal) = form_refused(&session, &form.csrf, EDITORS, "change overrides") {
        return Err(refusal);
    }
    let mode = match form.mode.as_str() {
        "floor" => OverrideMode::Floor,
        "ceiling" => OverrideMode::Ceiling,
        _ => OverrideMode::Pin,
    };
    let until = match form.until.trim() {
        "" => None,
        text => match chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            Ok(d) => Some(d),
            Err(_) => {
                let problem = format!("`{text}` is not a date (YYYY-MM-DD)");
                return customer_page(
                    &state,
                    &session,
                    &id,
                    Some(problem),
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
                .await;
            }
        },
    };
    let change = stratum_store::NewOverride {
        customer_id: id.clone(),
        ladder: form.ladder,
        level: form.level,
        mode,
        reason: form.reason.trim().to_string(),
        until,
    };
    match crate::routes::manual::add_checked_override(&state, &session.principal(), change, false)
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!("/customers/{id}")).into_response()),
        Err(e) => problem_or_refusal(&state, &session, &id, e).await,
    }
}

/// After a card form the API's checks refused: the card again saying what was wrong, or
/// the refusal (a role, a failure) as it is.
async fn problem_or_refusal(
    state: &AppState,
    session: &Session,
    id: &str,
    e: crate::error::ApiError,
) -> Page {
    if super::shown_on_form(&e) {
        customer_page(
            state,
            session,
            id,
            Some(e.message),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await
    } else {
        Err(refused(e))
    }
}

#[derive(Deserialize)]
pub(super) struct RemoveForm {
    csrf: String,
    customer: String,
    reason: String,
}

/// Removes an override from the card (with a reason, audited by the store).
pub(super) async fn remove_override(
    State(state): State<AppState>,
    session: Session,
    Path(override_id): Path<i64>,
    Form(form): Form<RemoveForm>,
) -> Page {
    if let Some(refusal) = form_refused(&session, &form.csrf, EDITORS, "change overrides") {
        return Err(refusal);
    }
    if form.reason.trim().is_empty() {
        let problem = "removing an override needs a reason".to_string();
        return customer_page(
            &state,
            &session,
            &form.customer,
            Some(problem),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    state
        .store
        .remove_override(
            override_id,
            form.reason.trim(),
            &session.principal().actor(),
        )
        .await
        .map_err(|e| refused(e.into()))?;
    Ok(Redirect::to(&format!("/customers/{}", form.customer)).into_response())
}

#[derive(Deserialize)]
pub(super) struct InputForm {
    csrf: String,
    field: String,
    value: String,
    reason: String,
}

/// Sets a manual input from the card (a reason is required); it applies from the next run.
pub(super) async fn set_input(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Form(form): Form<InputForm>,
) -> Page {
    if let Some(refusal) = form_refused(&session, &form.csrf, EDITORS, "change manual inputs") {
        return Err(refusal);
    }
    let who = session.principal();
    match crate::routes::manual::set_checked_input(
        &state,
        &who,
        &id,
        &form.field,
        form.value.trim(),
        form.reason.trim(),
    )
    .await
    {
        Ok(_) => Ok(Redirect::to(&format!("/customers/{id}")).into_response()),
        Err(e) => problem_or_refusal(&state, &session, &id, e).await,
    }
}

/// Who has a "my customers" page: the agents who own customers.
pub(crate) const MINE_PAGE: &[Role] = &[Role::Agent];
/// Customers listed on it.
const MINE_LIMIT: usize = 500;

#[derive(Template)]
#[template(path = "mine.html")]
struct MinePage<'a> {
    t: &'static super::i18n::Text,
    s: &'a Session,
    ladder: String,
    customers: Vec<(String, String)>,
    total: usize,
    limit: usize,
    callbacks: Vec<stratum_store::CallbackRow>,
}

/// An agent's own customers with their service levels, and their open call-backs.
pub(super) async fn mine(State(state): State<AppState>, session: Session) -> Page {
    if let Some(refusal) = not_for(&session, MINE_PAGE, "my customers") {
        return Err(refusal);
    }
    let ladder_name = state.service_ladder();
    let (ladder, shown) = super::level_names(&state, &ladder_name, session.lang);
    let table = state.level_table().await.map_err(refused)?;
    let filter = Filter {
        owner: Some(session.user.as_str()),
        ..Filter::default()
    };
    let (total, ids) = table.search(&filter, 0, MINE_LIMIT);
    let customers: Vec<(String, String)> = ids
        .into_iter()
        .map(|c| {
            let level = table.level_on(c, &ladder_name).unwrap_or("");
            (c.to_string(), shown(level))
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
            t: session.t,
            s: &session,
            ladder: ladder.map_or(ladder_name.clone(), |l| l.shown(session.lang).to_string()),
            customers,
            total,
            limit: MINE_LIMIT,
            callbacks,
        },
    ))
}
