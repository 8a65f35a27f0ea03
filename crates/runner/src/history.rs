//! Reading the history: a customer's timeline, the migration between two runs, the effect
//! report over all runs, and what-if simulation of a draft policy against the latest run.
//! Level order (what counts as an upgrade) comes from the policy text kept with each run.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{ArrayRef, Float64Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use stratum_core::evaluate::NOT_APPLICABLE;
use stratum_core::policy::Better;
use stratum_core::{LadderSummary, Policy, UNPLACED};
use stratum_store::{HistoryRow, MatrixCell, Move, RunInfo, Store};

use crate::output::io_err;
use crate::{LoadedPolicy, Progress, RunError, RunOptions, evaluate_policy};

/// Levels of a ladder, best first, then "(unplaced)" and "(not applicable)".
pub(crate) fn level_order(policy: Option<&Policy>, ladder: &str) -> Vec<String> {
    let mut out: Vec<String> = policy
        .and_then(|p| p.ladder(ladder))
        .map(|l| l.levels.iter().map(|x| x.name.clone()).collect())
        .unwrap_or_default();
    out.push(UNPLACED.to_string());
    out.push(NOT_APPLICABLE.to_string());
    out
}

/// +1 upgrade, -1 downgrade, 0 neither (same level, or moving in or out of the ladder's
/// scope, or a level the policy no longer has). `order` is the policy's level order; on a
/// `better = "down"` ladder (a risk ladder) moving towards its first level is the downgrade.
pub(crate) fn direction(order: &[String], better: Better, from: &str, to: &str) -> i8 {
    let graded = order.len() - 1; // everything but "(not applicable)"
    let pos = |l: &str| order.iter().position(|x| x == l).filter(|&i| i < graded);
    let up = match (pos(from), pos(to)) {
        (Some(f), Some(t)) if t < f => 1,
        (Some(f), Some(t)) if t > f => -1,
        _ => 0,
    };
    match better {
        Better::Up => up,
        Better::Down => -up,
    }
}

/// Which way is better on a ladder of the policy (up when the policy does not know it).
fn better_of(policy: Option<&Policy>, ladder: &str) -> Better {
    policy
        .and_then(|p| p.ladder(ladder))
        .map_or(Better::Up, |l| l.better)
}

async fn run_policy(store: &Store, run: &RunInfo) -> Option<Policy> {
    let text = store.run_policy_text(run.id).await.ok()?;
    Policy::from_str(&run.policy_file, &text).ok()
}

/// A manual change to a customer's placement made since a run was recorded: it applies from
/// the next run, so views of the recorded run say it is pending.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PendingChange {
    pub override_id: i64,
    pub ladder: String,
    pub level: String,
    pub mode: stratum_core::OverrideMode,
    /// `"added"` or `"removed"` since the run.
    pub change: &'static str,
    pub by: String,
    pub at: String,
}

/// The overrides of `customer` on `policy`'s ladders added or removed after `run` was
/// recorded.
pub async fn pending_changes(
    store: &Store,
    policy: &Policy,
    run: &RunInfo,
    customer: &str,
) -> Result<Vec<PendingChange>, RunError> {
    let since = run.finished_at.as_str();
    Ok(store
        .overrides()
        .await?
        .into_iter()
        .filter(|o| o.customer_id == customer && policy.ladder(&o.ladder).is_some())
        .filter_map(|o| {
            let (change, by, at) = match (&o.removed_at, &o.removed_by) {
                (Some(at), by) if at.as_str() > since && o.created_at.as_str() <= since => {
                    ("removed", by.clone().unwrap_or_default(), at.clone())
                }
                (None, _) if o.created_at.as_str() > since => {
                    ("added", o.created_by.clone(), o.created_at.clone())
                }
                _ => return None,
            };
            Some(PendingChange {
                override_id: o.id,
                ladder: o.ladder,
                level: o.level,
                mode: o.mode,
                change,
                by,
                at,
            })
        })
        .collect())
}

/// A customer's timeline on every ladder, over the runs of `policy` (`None`: every policy).
pub async fn history(
    store: &Store,
    policy: Option<&str>,
    customer_id: &str,
) -> Result<Vec<HistoryRow>, RunError> {
    let mut rows = store.history(customer_id).await?;
    if let Some(name) = policy {
        rows.retain(|r| r.policy_name == name);
    }
    // Ladders in the order of the latest policy that placed the customer.
    if let Some(last) = rows.iter().max_by_key(|r| (r.as_of, r.run_id)) {
        let run = store.run(last.run_id).await?;
        if let Some(policy) = run_policy(store, &run).await {
            rows.sort_by_key(|r| {
                let pos = policy.ladders.iter().position(|l| l.name == r.ladder);
                (
                    pos.unwrap_or(usize::MAX),
                    r.ladder.clone(),
                    r.as_of,
                    r.run_id,
                )
            });
        }
    }
    if rows.is_empty() {
        return Err(RunError::NeverPlaced(customer_id.to_string()));
    }
    Ok(rows)
}

/// One ladder's migration between two runs.
#[derive(Debug, Clone)]
pub struct LadderDiff {
    pub ladder: String,
    /// Row and column order of the matrix.
    pub levels: Vec<String>,
    pub cells: Vec<MatrixCell>,
    pub upgrades: i64,
    pub downgrades: i64,
    /// Customers new in the later run / gone from it.
    pub arrived: i64,
    pub left: i64,
    /// Customers whose level changed, with +1 (up), -1 (down) or 0 (in/out of scope).
    pub moves: Vec<(Move, i8)>,
}

impl LadderDiff {
    pub fn cell(&self, from: &str, to: &str) -> i64 {
        self.cells
            .iter()
            .find(|c| c.from_level.as_deref() == Some(from) && c.to_level.as_deref() == Some(to))
            .map_or(0, |c| c.customers)
    }
}

#[derive(Debug, Clone)]
pub struct DiffReport {
    pub from: RunInfo,
    pub to: RunInfo,
    pub ladders: Vec<LadderDiff>,
}

/// The recorded runs of `policy` (`None`: every policy) that are not retired, in recording
/// order: what default choices ("the latest run", "the last two runs") pick from.
async fn serving_runs(store: &Store, policy: Option<&str>) -> Result<Vec<RunInfo>, RunError> {
    Ok(store
        .runs(policy)
        .await?
        .into_iter()
        .filter(|r| !r.is_retired())
        .collect())
}

/// Refuses a run of another policy unless `across` says the comparison is meant.
fn same_policy(run: &RunInfo, policy: Option<&str>, across: bool) -> Result<(), RunError> {
    match policy {
        Some(name) if !across && run.policy_name != name => Err(RunError::OtherPolicy {
            run: run.id,
            run_policy: run.policy_name.clone(),
            policy: name.to_string(),
        }),
        _ => Ok(()),
    }
}

fn empty_history(policy: Option<&str>) -> RunError {
    RunError::EmptyHistory(policy.map(str::to_string))
}

/// Runs to compare: both given; one given (against the latest run of the policy); none (the
/// last two runs of the policy). `policy`: the runs the command is about (`None`: the
/// policy of the latest run); `across`: runs of two policies may be compared.
async fn pick_runs(
    store: &Store,
    policy: Option<&str>,
    a: Option<i64>,
    b: Option<i64>,
    across: bool,
) -> Result<(RunInfo, RunInfo), RunError> {
    let (from, to) = match (a, b) {
        (Some(a), Some(b)) => (store.run(a).await?, store.run(b).await?),
        (a, _) => {
            let all = serving_runs(store, policy).await?;
            let Some(latest) = all.last().cloned() else {
                return Err(empty_history(policy));
            };
            if let Some(a) = a {
                (store.run(a).await?, latest)
            } else {
                let same: Vec<&RunInfo> = all
                    .iter()
                    .filter(|r| r.policy_name == latest.policy_name)
                    .collect();
                if same.len() < 2 {
                    return Err(RunError::OneRun(latest.policy_name.clone()));
                }
                (same[same.len() - 2].clone(), latest)
            }
        }
    };
    same_policy(&from, policy, across)?;
    same_policy(&to, policy, across)?;
    if !across && from.policy_name != to.policy_name {
        return Err(RunError::PoliciesDiffer {
            from: from.id,
            from_policy: from.policy_name.clone(),
            to: to.id,
            to_policy: to.policy_name.clone(),
        });
    }
    Ok((from, to))
}

/// The migration matrix per ladder between two runs, with upgrade and downgrade lists.
pub async fn diff(
    store: &Store,
    policy: Option<&str>,
    a: Option<i64>,
    b: Option<i64>,
    across: bool,
) -> Result<DiffReport, RunError> {
    let (from, to) = pick_runs(store, policy, a, b, across).await?;
    let policy = run_policy(store, &to).await;
    let cells = store.migration_matrix(from.id, to.id).await?;
    let moves = store.moves(from.id, to.id).await?;
    let mut names: Vec<String> = cells.iter().map(|c| c.ladder.clone()).collect();
    names.sort_by_key(|n| {
        policy
            .as_ref()
            .and_then(|p| p.ladders.iter().position(|l| &l.name == n))
            .unwrap_or(usize::MAX)
    });
    names.dedup();
    let mut ladders = Vec::new();
    for name in names {
        let mut levels = level_order(policy.as_ref(), &name);
        let better = better_of(policy.as_ref(), &name);
        let mine: Vec<MatrixCell> = cells.iter().filter(|c| c.ladder == name).cloned().collect();
        for c in &mine {
            for l in [&c.from_level, &c.to_level].into_iter().flatten() {
                if !levels.contains(l) {
                    levels.push(l.clone());
                }
            }
        }
        let (mut up, mut down, mut arrived, mut left) = (0, 0, 0, 0);
        for c in &mine {
            match (&c.from_level, &c.to_level) {
                (Some(f), Some(t)) => match direction(&levels, better, f, t) {
                    1 => up += c.customers,
                    -1 => down += c.customers,
                    _ => {}
                },
                (None, _) => arrived += c.customers,
                (_, None) => left += c.customers,
            }
        }
        let ladder_moves = moves
            .iter()
            .filter(|m| m.ladder == name)
            .map(|m| {
                let d = direction(&levels, better, &m.from_level, &m.to_level);
                (m.clone(), d)
            })
            .collect();
        ladders.push(LadderDiff {
            ladder: name,
            levels,
            cells: mine,
            upgrades: up,
            downgrades: down,
            arrived,
            left,
            moves: ladder_moves,
        });
    }
    Ok(DiffReport { from, to, ladders })
}

/// Writes every customer's recorded result on every ladder of a run (default: the latest)
/// to `path`, Parquet or CSV by its extension, for SQL tools (the history keeps results as
/// compressed chunks, see docs/ARCHITECTURE.md). Written as `FILE.partial`, then renamed.
/// Returns the run and the number of rows.
pub async fn export_run(
    store: &Store,
    policy: Option<&str>,
    run: Option<i64>,
    path: &Path,
) -> Result<(RunInfo, usize), RunError> {
    let run = match run {
        Some(id) => store.run(id).await?,
        None => serving_runs(store, policy)
            .await?
            .pop()
            .ok_or_else(|| empty_history(policy))?,
    };
    let batches = store.run_batches(run.id).await?;
    let rows = batches.iter().map(RecordBatch::num_rows).sum();
    crate::output::write_export(path, &batches)?;
    Ok((run, rows))
}

/// Writes the changed customers as CSV or Parquet (by the file's extension).
pub fn write_moves(path: &Path, report: &DiffReport) -> Result<usize, RunError> {
    let rows: Vec<&(Move, i8)> = report.ladders.iter().flat_map(|l| &l.moves).collect();
    let dir = |d: i8| match d {
        1 => "up",
        -1 => "down",
        _ => "scope",
    };
    let is_parquet = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"));
    if is_parquet {
        let s = |f: &dyn Fn(&(Move, i8)) -> String| -> ArrayRef {
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| f(r))))
        };
        let columns: Vec<ArrayRef> = vec![
            s(&|r| r.0.ladder.clone()),
            s(&|r| r.0.customer_id.clone()),
            s(&|r| r.0.from_level.clone()),
            s(&|r| r.0.to_level.clone()),
            s(&|r| dir(r.1).to_string()),
            Arc::new(rows.iter().map(|r| r.0.value).collect::<Float64Array>()),
            s(&|r| r.0.explanation.clone()),
        ];
        let schema = Arc::new(Schema::new(vec![
            Field::new("ladder", DataType::Utf8, false),
            Field::new("customer_id", DataType::Utf8, false),
            Field::new("from_level", DataType::Utf8, false),
            Field::new("to_level", DataType::Utf8, false),
            Field::new("direction", DataType::Utf8, false),
            Field::new("value", DataType::Float64, true),
            Field::new("explanation", DataType::Utf8, false),
        ]));
        let batch = RecordBatch::try_new(schema, columns).map_err(|e| io_err(path, e))?;
        crate::output::write_export(path, &[batch])?;
    } else {
        let mut w = csv::Writer::from_path(path).map_err(|e| io_err(path, e))?;
        w.write_record([
            "ladder",
            "customer_id",
            "from_level",
            "to_level",
            "direction",
            "value",
            "explanation",
        ])
        .map_err(|e| io_err(path, e))?;
        for (m, d) in &rows {
            w.write_record([
                m.ladder.as_str(),
                &m.customer_id,
                &m.from_level,
                &m.to_level,
                dir(*d),
                &m.value.map(|v| v.to_string()).unwrap_or_default(),
                &m.explanation,
            ])
            .map_err(|e| io_err(path, e))?;
        }
        w.flush().map_err(|e| io_err(path, e))?;
    }
    Ok(rows.len())
}

/// One line of the effect report: a level of a ladder at a run.
#[derive(Debug, Clone, PartialEq)]
pub struct KpiRow {
    pub run_id: i64,
    pub as_of: NaiveDate,
    pub ladder: String,
    pub level: String,
    pub customers: i64,
    pub share: f64,
    pub value: f64,
    pub value_share: Option<f64>,
    /// Of the level's customers with a purchase in the window, the share with two or more.
    pub repeat_rate: Option<f64>,
    /// Of the customers on this level at the previous run who had purchases then, the share
    /// with none now.
    pub churn_rate: Option<f64>,
    /// Customers who arrived on this level from a lower / higher one since the previous run.
    pub upgrades: Option<i64>,
    pub downgrades: Option<i64>,
}

/// The effect report over every run of a policy (`None`: the policy of the latest run).
pub async fn report(store: &Store, policy_name: Option<&str>) -> Result<Vec<KpiRow>, RunError> {
    let all = serving_runs(store, None).await?;
    let Some(name) = policy_name
        .map(str::to_string)
        .or_else(|| all.last().map(|r| r.policy_name.clone()))
    else {
        return Err(RunError::EmptyHistory(None));
    };
    let mut runs: Vec<RunInfo> = all.into_iter().filter(|r| r.policy_name == name).collect();
    if runs.is_empty() {
        return Err(RunError::EmptyHistory(Some(name)));
    }
    runs.sort_by_key(|r| (r.as_of, r.id));
    let mut out = Vec::new();
    let mut previous: Option<&RunInfo> = None;
    for run in &runs {
        let policy = run_policy(store, run).await;
        let has_activity = policy
            .as_ref()
            .is_some_and(|p| p.settings.activity.is_some());
        let stats = store.level_stats(run.id).await?;
        let (cells, churn) = match previous {
            Some(p) => (
                store.migration_matrix(p.id, run.id).await?,
                store.churn(p.id, run.id).await?,
            ),
            None => (Vec::new(), Vec::new()),
        };
        let mut ladders: Vec<String> = stats.iter().map(|s| s.ladder.clone()).collect();
        ladders.dedup();
        ladders.sort_by_key(|n| {
            policy
                .as_ref()
                .and_then(|p| p.ladders.iter().position(|l| &l.name == n))
                .unwrap_or(usize::MAX)
        });
        ladders.dedup();
        for ladder in ladders {
            let order = level_order(policy.as_ref(), &ladder);
            let better = better_of(policy.as_ref(), &ladder);
            let mine: Vec<_> = stats.iter().filter(|s| s.ladder == ladder).collect();
            let total: i64 = mine
                .iter()
                .filter(|s| s.level != NOT_APPLICABLE)
                .map(|s| s.customers)
                .sum();
            let total_value: f64 = mine
                .iter()
                .filter(|s| s.level != NOT_APPLICABLE)
                .map(|s| s.value.max(0.0))
                .sum();
            let mut levels: Vec<&String> = order.iter().collect();
            for s in &mine {
                if !levels.contains(&&s.level) {
                    levels.push(&s.level);
                }
            }
            for level in levels {
                let Some(s) = mine.iter().find(|s| &s.level == level) else {
                    continue;
                };
                let moved = |want: i8| -> i64 {
                    cells
                        .iter()
                        .filter(|c| c.ladder == ladder && c.to_level.as_deref() == Some(level))
                        .filter(|c| {
                            c.from_level
                                .as_deref()
                                .is_some_and(|f| direction(&order, better, f, level) == want)
                        })
                        .map(|c| c.customers)
                        .sum()
                };
                let churn_rate = churn
                    .iter()
                    .find(|(l, lv, _, _)| *l == ladder && lv == level)
                    .filter(|(_, _, active, _)| *active > 0)
                    .map(|(_, _, active, churned)| *churned as f64 / *active as f64)
                    .or(if previous.is_some() && has_activity {
                        Some(0.0)
                    } else {
                        None
                    });
                out.push(KpiRow {
                    run_id: run.id,
                    as_of: run.as_of,
                    ladder: ladder.clone(),
                    level: level.clone(),
                    customers: s.customers,
                    share: if total > 0 && level != NOT_APPLICABLE {
                        s.customers as f64 / total as f64
                    } else {
                        0.0
                    },
                    value: s.value,
                    value_share: (total_value > 0.0 && level != NOT_APPLICABLE)
                        .then(|| s.value.max(0.0) / total_value),
                    repeat_rate: (has_activity && s.active > 0)
                        .then(|| s.repeat as f64 / s.active as f64),
                    churn_rate: if has_activity { churn_rate } else { None },
                    upgrades: previous.map(|_| moved(1)),
                    downgrades: previous.map(|_| moved(-1)),
                });
            }
        }
        previous = Some(run);
    }
    Ok(out)
}

/// Writes the effect report as CSV.
pub fn write_kpis(path: &Path, rows: &[KpiRow]) -> Result<(), RunError> {
    let mut w = csv::Writer::from_path(path).map_err(|e| io_err(path, e))?;
    w.write_record([
        "run_id",
        "as_of",
        "ladder",
        "level",
        "customers",
        "share",
        "value",
        "value_share",
        "repeat_rate",
        "churn_rate",
        "upgrades",
        "downgrades",
    ])
    .map_err(|e| io_err(path, e))?;
    let f = |v: Option<f64>| v.map(|x| format!("{:.6}", x)).unwrap_or_default();
    let i = |v: Option<i64>| v.map(|x| x.to_string()).unwrap_or_default();
    for r in rows {
        w.write_record([
            r.run_id.to_string(),
            r.as_of.to_string(),
            r.ladder.clone(),
            r.level.clone(),
            r.customers.to_string(),
            format!("{:.6}", r.share),
            format!("{:.2}", r.value),
            f(r.value_share),
            f(r.repeat_rate),
            f(r.churn_rate),
            i(r.upgrades),
            i(r.downgrades),
        ])
        .map_err(|e| io_err(path, e))?;
    }
    w.flush().map_err(|e| io_err(path, e))
}

/// One ladder of a simulation: how the draft would move customers from the latest run.
#[derive(Debug, Clone)]
pub struct SimLadder {
    pub ladder: String,
    pub levels: Vec<String>,
    /// (level at the base run, level under the draft, customers); `None` on the left: not in
    /// the base run.
    pub cells: Vec<(Option<String>, String, i64)>,
    pub upgrades: i64,
    pub downgrades: i64,
    /// Total `benefit_cost` of the levels (a level attribute) at the base run and under the
    /// draft, when any level carries one.
    pub cost_before: Option<f64>,
    pub cost_after: Option<f64>,
}

impl SimLadder {
    pub fn cell(&self, from: &str, to: &str) -> i64 {
        self.cells
            .iter()
            .find(|(f, t, _)| f.as_deref() == Some(from) && t == to)
            .map_or(0, |c| c.2)
    }
}

#[derive(Debug, Clone)]
pub struct Simulation {
    pub base: Option<RunInfo>,
    pub as_of: NaiveDate,
    pub ladders: Vec<SimLadder>,
    pub summaries: Vec<LadderSummary>,
}

fn benefit_costs(policy: Option<&Policy>, ladder: &str) -> HashMap<String, f64> {
    policy
        .and_then(|p| p.ladder(ladder))
        .map(|l| {
            l.levels
                .iter()
                .filter_map(|lv| {
                    let v = lv.attributes.get("benefit_cost")?;
                    let n = v.as_float().or_else(|| v.as_integer().map(|i| i as f64))?;
                    Some((lv.name.clone(), n))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Evaluates a draft policy over today's data and compares it with the latest recorded run
/// (of the draft's policy name, else the latest run of any policy). Records nothing.
pub async fn simulate(
    draft: &LoadedPolicy,
    options: &RunOptions,
    store: &Store,
    progress: &mut dyn Progress,
) -> Result<Simulation, RunError> {
    let ev = evaluate_policy(draft, options, Some(store), progress).await?;
    let all = serving_runs(store, None).await?;
    let base = all
        .iter()
        .rev()
        .find(|r| r.policy_name == draft.policy.history_name())
        .or(all.last())
        .cloned();
    let (base_levels, base_policy) = match &base {
        Some(run) => (store.levels(run.id).await?, run_policy(store, run).await),
        None => (Vec::new(), None),
    };
    let evaluation = ev.evaluation;
    let draft_policy = std::sync::Arc::clone(&draft.policy);
    // A pass over every customer of every ladder: off the executor.
    let (evaluation, ladders) = crate::blocking::blocking(move || {
        let ladders = compare(
            &evaluation,
            &draft_policy,
            &base_levels,
            base_policy.as_ref(),
        );
        (evaluation, ladders)
    })
    .await;
    let summaries = (0..evaluation.ladders.len())
        .map(|i| evaluation.summary(i))
        .collect();
    Ok(Simulation {
        base,
        as_of: ev.as_of,
        ladders,
        summaries,
    })
}

/// The draft's placements against the base run's levels, ladder by ladder.
fn compare(
    evaluation: &stratum_core::Evaluation,
    draft: &Policy,
    base_levels: &[(String, String, String)],
    base_policy: Option<&Policy>,
) -> Vec<SimLadder> {
    let mut before: HashMap<(&str, &str), &str> = HashMap::new();
    for (ladder, customer, level) in base_levels {
        before.insert((ladder.as_str(), customer.as_str()), level.as_str());
    }
    let mut ladders = Vec::new();
    for (li, ladder) in evaluation.ladders.iter().enumerate() {
        let levels = level_order(Some(draft), &ladder.name);
        let mut counts: HashMap<(Option<String>, String), i64> = HashMap::new();
        let (mut up, mut down) = (0, 0);
        let draft_costs = benefit_costs(Some(draft), &ladder.name);
        let base_costs = benefit_costs(base_policy, &ladder.name);
        let mut cost_after = 0.0;
        for row in 0..evaluation.frame.len() {
            let to = evaluation.level_name(li, evaluation.results[li].level[row]);
            let from = before
                .get(&(ladder.name.as_str(), &evaluation.frame.ids()[row]))
                .copied();
            if let Some(f) = from {
                match direction(&levels, ladder.better, f, to) {
                    1 => up += 1,
                    -1 => down += 1,
                    _ => {}
                }
            }
            cost_after += draft_costs.get(to).copied().unwrap_or(0.0);
            *counts
                .entry((from.map(str::to_string), to.to_string()))
                .or_default() += 1;
        }
        let cost_before: f64 = base_levels
            .iter()
            .filter(|(l, _, _)| *l == ladder.name)
            .map(|(_, _, lv)| base_costs.get(lv).copied().unwrap_or(0.0))
            .sum();
        let has_costs = !draft_costs.is_empty() || !base_costs.is_empty();
        let mut cells: Vec<(Option<String>, String, i64)> =
            counts.into_iter().map(|((f, t), n)| (f, t, n)).collect();
        let pos = |l: &str| levels.iter().position(|x| x == l).unwrap_or(usize::MAX);
        cells.sort_by_key(|(f, t, _)| (f.as_deref().map_or(usize::MAX, pos), pos(t)));
        ladders.push(SimLadder {
            ladder: ladder.name.clone(),
            levels,
            cells,
            upgrades: up,
            downgrades: down,
            cost_before: has_costs.then_some(cost_before),
            cost_after: has_costs.then_some(cost_after),
        });
    }
    ladders
}
