//! Runs: the served policy's history, a diff between two runs, starting a run, and what-if simulations.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;

use serde::Serialize;

use super::LadderPyramid;
use super::prelude::*;
use super::{evaluation, ladder_summary, money, optional_json};

pub(super) const ROUTES: &[Route] = &[
    Route {
        method: Method::Get,
        path: "/api/runs",
        summary: "The served policy's recorded runs",
        roles: Some(&[Role::Admin, Role::Analyst]),
        own_customers: false,
        does: "list runs",
        handler: |m| on(m, runs),
    },
    Route {
        method: Method::Post,
        path: "/api/runs",
        summary: "Run the served policy over its data and record the run (body {as_of?, allow_future_as_of?}); one at a time",
        roles: Some(&[Role::Admin, Role::Analyst]),
        own_customers: false,
        does: "start runs",
        handler: |m| on(m, start_run),
    },
    Route {
        method: Method::Get,
        path: "/api/runs/{id}",
        summary: "One run",
        roles: Some(&[Role::Admin, Role::Analyst]),
        own_customers: false,
        does: "read runs",
        handler: |m| on(m, run),
    },
    Route {
        method: Method::Get,
        path: "/api/diff",
        summary: "Migration matrix between two runs (`from`, `to`; default the last two)",
        roles: Some(&[Role::Admin, Role::Analyst]),
        own_customers: false,
        does: "compare runs",
        handler: |m| on(m, diff),
    },
    Route {
        method: Method::Post,
        path: "/api/simulate",
        summary: "What-if: a draft policy (body {policy: TOML text, as_of?}) over the same data against the latest run; records nothing",
        roles: Some(&[Role::Admin, Role::Analyst]),
        own_customers: false,
        does: "simulate drafts",
        handler: |m| on(m, simulate),
    },
];

async fn runs(State(state): State<AppState>) -> ApiResult {
    let policy = state.policy.policy.history_name();
    ok(Runs {
        runs: state.store.runs(Some(policy)).await?,
    })
}

#[derive(Serialize)]
struct Runs {
    runs: Vec<stratum_store::RunInfo>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RunBody {
    as_of: Option<String>,
    /// Accept an `as_of` more than a day after today.
    #[serde(default)]
    allow_future_as_of: bool,
}

/// Runs the served policy over its data and records the run, like `stratum run`; one at a
/// time. The lookup table switches to the new run before the answer.
async fn start_run(
    State(state): State<AppState>,
    who: Principal,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let body: RunBody = optional_json(&body?)?;
    let options = stratum_runner::RunOptions {
        as_of: body.as_of,
        allow_future_as_of: body.allow_future_as_of,
        recorded_by: who.user.clone(),
        ..Default::default()
    };
    let outcome = spawn_run(&state, &who, options, Box::new(stratum_runner::Quiet))?
        .await
        .map_err(ApiError::internal)??;
    Ok((
        StatusCode::CREATED,
        Json(Started {
            run_id: outcome.run_id.unwrap_or_default(),
            as_of: outcome.as_of,
            customers: outcome.customers,
            previous_run: outcome.previous_run,
            ladders: outcome.ladders.iter().map(ladder_summary).collect(),
        }),
    )
        .into_response())
}

/// Starts a run of the served policy as a task of its own (a client that hangs up does not
/// stop a run half recorded), reporting its stages to `progress`: audited as `run.start`,
/// and served once recorded. Refused while another run started on this server goes on.
/// The API's `POST /api/runs` and the console's runs page both start runs here.
pub(crate) fn spawn_run(
    state: &AppState,
    who: &Principal,
    options: stratum_runner::RunOptions,
    mut progress: Box<dyn stratum_runner::Progress>,
) -> Result<tokio::task::JoinHandle<Result<stratum_runner::RunOutcome, ApiError>>, ApiError> {
    let running = state.running.clone().try_lock_owned().map_err(|_| {
        ApiError::new(
            ErrorCode::RunInProgress,
            "a run started on this server is still going; try again when it has finished",
        )
    })?;
    let (state, actor) = (state.clone(), who.actor());
    Ok(tokio::spawn(async move {
        let _running = running;
        let outcome =
            stratum_runner::run(&state.policy, &options, Some(&state.store), &mut *progress)
                .await?;
        let run_id = outcome
            .run_id
            .ok_or_else(|| ApiError::internal("a recorded run has no id"))?;
        state
            .store
            .audit_event(
                &actor,
                "run.start",
                &run_id.to_string(),
                &format!("as of {}, {} customers", outcome.as_of, outcome.customers),
            )
            .await?;
        state.refresh().await?;
        Ok(outcome)
    }))
}

/// The files a policy reads: its sources and its overrides file.
fn files_read(policy: &stratum_runner::LoadedPolicy) -> Vec<&str> {
    let checked = &policy.policy;
    checked
        .sources
        .values()
        .map(|s| s.path.as_str())
        .chain(checked.settings.overrides_file.as_deref())
        .collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SimulateBody {
    /// The draft policy's TOML text.
    policy: String,
    as_of: Option<String>,
}

/// What-if: evaluates a draft policy over the served policy's data and compares it with the
/// latest run, recording nothing.
async fn simulate(
    State(state): State<AppState>,
    who: Principal,
    AppJson(body): AppJson<SimulateBody>,
) -> ApiResult {
    let sim = simulate_draft(&state, &who, body.policy, body.as_of).await?;
    let ladders = sim
        .ladders
        .iter()
        .map(|l| SimulatedLadder {
            ladder: &l.ladder,
            levels: &l.levels,
            moves: l
                .cells
                .iter()
                .map(|(from, to, n)| Move {
                    from: from.as_deref(),
                    to,
                    customers: *n,
                })
                .collect(),
            upgrades: l.upgrades,
            downgrades: l.downgrades,
            benefit_cost_before: l.cost_before,
            benefit_cost_after: l.cost_after,
        })
        .collect();
    ok(Simulated {
        base_run: sim.base.as_ref().map(|r| r.id),
        as_of: sim.as_of,
        ladders,
        summaries: sim.summaries.iter().map(ladder_summary).collect(),
    })
}

/// Evaluates a draft policy's text over the served policy's data against the latest run,
/// recording nothing: one at a time, within the evaluation limits. A draft may read only
/// the files the served policy reads. The API's `POST /api/simulate` and the console's
/// what-if form both come here.
pub(crate) async fn simulate_draft(
    state: &AppState,
    who: &Principal,
    text: String,
    as_of: Option<String>,
) -> Result<stratum_runner::Simulation, ApiError> {
    let served = &state.policy;
    let draft = stratum_runner::LoadedPolicy::from_text(
        std::path::Path::new("draft policy"),
        text,
        served.base_dir.clone(),
    )?;
    // A draft may only read what the served policy reads: it is evaluated on the server.
    let allowed = files_read(served);
    let read = files_read(&draft);
    for path in read {
        if !allowed.contains(&path) {
            return Err(ApiError::invalid(format!(
                "the draft reads `{path}`, which the served policy does not; on the server a \
                 draft may only read the served policy's files"
            )));
        }
    }
    let options = stratum_runner::RunOptions {
        as_of,
        recorded_by: who.user.clone(),
        memory_limit: Some(state.limits.evaluation_memory),
        ..Default::default()
    };
    let turn = state.evaluation_turn()?;
    let limit = state.limits.evaluation_timeout;
    let store = state.store.clone();
    Ok(evaluation(turn, limit, async move {
        stratum_runner::simulate(&draft, &options, &store, &mut stratum_runner::Quiet).await
    })
    .await??)
}

#[derive(Serialize)]
struct Started<'a> {
    run_id: i64,
    as_of: chrono::NaiveDate,
    customers: usize,
    previous_run: Option<i64>,
    ladders: Vec<LadderPyramid<'a>>,
}

#[derive(Serialize)]
struct Simulated<'a> {
    base_run: Option<i64>,
    as_of: chrono::NaiveDate,
    ladders: Vec<SimulatedLadder<'a>>,
    summaries: Vec<LadderPyramid<'a>>,
}

#[derive(Serialize)]
struct SimulatedLadder<'a> {
    ladder: &'a str,
    levels: &'a [String],
    moves: Vec<Move<'a>>,
    upgrades: i64,
    downgrades: i64,
    benefit_cost_before: Option<f64>,
    benefit_cost_after: Option<f64>,
}

#[derive(Serialize)]
struct Move<'a> {
    from: Option<&'a str>,
    to: &'a str,
    customers: i64,
}

async fn run(State(state): State<AppState>, AppPath(id): AppPath<i64>) -> ApiResult {
    let run = state
        .store
        .run(id)
        .await
        .map_err(not_found_as(ErrorCode::RunNotFound))?;
    ok(run)
}

#[derive(Deserialize)]
struct DiffQuery {
    from: Option<i64>,
    to: Option<i64>,
}

async fn diff(State(state): State<AppState>, AppQuery(q): AppQuery<DiffQuery>) -> ApiResult {
    let runs = state
        .store
        .runs(Some(state.policy.policy.history_name()))
        .await?;
    let (from, to) = match (q.from, q.to) {
        (Some(a), Some(b)) => (a, b),
        (None, None) if runs.len() >= 2 => (runs[runs.len() - 2].id, runs[runs.len() - 1].id),
        (None, None) => {
            return Err(ApiError::new(
                ErrorCode::RunNotFound,
                "a diff needs two recorded runs",
            ));
        }
        _ => return Err(ApiError::invalid("give both `from` and `to`, or neither")),
    };
    for id in [from, to] {
        state
            .store
            .run(id)
            .await
            .map_err(not_found_as(ErrorCode::RunNotFound))?;
    }
    let matrix = state
        .store
        .migration_matrix(from, to)
        .await?
        .into_iter()
        .map(|c| stratum_store::MatrixCell {
            value: money(c.value),
            ..c
        })
        .collect();
    ok(Diff { from, to, matrix })
}

#[derive(Serialize)]
struct Diff {
    from: i64,
    to: i64,
    matrix: Vec<stratum_store::MatrixCell>,
}
