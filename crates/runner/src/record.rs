//! Recording a run in the store: input fingerprints, and one row per customer per ladder with
//! its level, where the rules alone put it, its standing for the next run's holds, and the
//! explanation already built for the output files.

use std::future::Future;
use std::io::Read;

use chrono::NaiveDate;
use datafusion::arrow::array::{Array, StringArray};
use datafusion::arrow::record_batch::RecordBatch;
use sha2::{Digest, Sha256};
use stratum_core::{Evaluation, LadderSummary};
use stratum_engine::blocking::Started;
use stratum_store::{AssignmentRow, MetricChunks, NewRun, Store, StoreError};

use crate::{LoadedPolicy, RunError};

/// Hashes every input file on the blocking pool while the run computes: path, size,
/// modification time and SHA-256, as JSON.
pub(crate) fn start_fingerprints(loaded: &LoadedPolicy) -> Started<Result<String, RunError>> {
    let mut files: Vec<(String, std::path::PathBuf)> = loaded
        .policy
        .sources
        .iter()
        .filter(|(_, def)| def.format != stratum_core::SourceFormat::Inputs && def.from.is_none())
        .map(|(name, def)| (name.clone(), loaded.base_dir.join(&def.path)))
        .collect();
    if let Some(f) = &loaded.policy.settings.overrides_file {
        files.push(("overrides_file".into(), loaded.base_dir.join(f)));
    }
    stratum_engine::blocking::start(move || {
        let mut out = Vec::new();
        for (source, path) in files {
            let err = |e: std::io::Error| RunError::Output {
                path: path.display().to_string(),
                message: format!("cannot fingerprint input: {e}"),
            };
            let meta = match std::fs::metadata(&path) {
                Ok(m) => m,
                // A missing optional file (no overrides file yet) is recorded as missing.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    out.push(serde_json::json!({"source": source, "file": path.display().to_string(), "missing": true}));
                    continue;
                }
                Err(e) => return Err(err(e)),
            };
            let modified = meta
                .modified()
                .ok()
                .map(chrono::DateTime::<chrono::Utc>::from)
                .map(|t| t.to_rfc3339());
            let mut file = std::fs::File::open(&path).map_err(err)?;
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = file.read(&mut buf).map_err(err)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
            let sha: String = hasher
                .finalize()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            out.push(serde_json::json!({
                "source": source,
                "file": path.display().to_string(),
                "bytes": meta.len(),
                "modified": modified,
                "sha256": sha,
            }));
        }
        Ok(serde_json::Value::Array(out).to_string())
    })
}

use crate::previous::{Previous, PreviousLadder};

/// What the run records of each ladder for pages that must not read its rows: the summary
/// (pyramids, Pareto figure) with the Lorenz curve, as JSON. Sorts every customer's value:
/// call it off the executor.
pub(crate) fn recorded_summaries(
    ev: &Evaluation,
    summaries: &[LadderSummary],
    previous: Option<(i64, &Previous)>,
) -> Result<Vec<(String, String)>, RunError> {
    summaries
        .iter()
        .enumerate()
        .map(|(li, summary)| {
            let mut recorded = stratum_core::RecordedSummary {
                summary: summary.clone(),
                lorenz: ev.lorenz(li),
                previous_run: previous.map(|(id, _)| id),
                moves: Vec::new(),
                upgrades: 0,
                downgrades: 0,
                upgraded: Vec::new(),
                downgraded: Vec::new(),
                cutoffs: ev.results[li].cutoff.clone(),
                activity: Vec::new(),
            };
            let name = &ev.ladders[li].name;
            let before = previous.and_then(|(_, p)| p.ladder(name));
            if previous.is_some() {
                migration(ev, li, before.as_ref(), &mut recorded);
            }
            recorded.activity = activity(ev, li, previous.is_some(), before.as_ref());
            serde_json::to_string(&recorded)
                .map(|json| (summary.ladder.clone(), json))
                .map_err(|e| RunError::Internal(format!("a ladder summary as JSON: {e}")))
        })
        .collect()
}

/// Ladder `li`'s activity per level (as `stratum report` counts it): active and repeat
/// customers now, and of those active on each level at the previous run, how many are not
/// now. Empty without the policy's `activity` metric.
fn activity(
    ev: &Evaluation,
    li: usize,
    has_previous: bool,
    before: Option<&PreviousLadder<'_>>,
) -> Vec<stratum_core::LevelActivity> {
    let Some(column) = ev
        .policy
        .settings
        .activity
        .as_deref()
        .and_then(|a| ev.frame.column(a))
    else {
        return Vec::new();
    };
    let ladder = &ev.ladders[li];
    let order = crate::history::level_order(Some(&ev.policy), &ladder.name);
    let mut out: Vec<stratum_core::LevelActivity> = order
        .iter()
        .map(|level| stratum_core::LevelActivity {
            level: level.clone(),
            active: 0,
            repeat: 0,
            active_before: has_previous.then_some(0),
            churned: 0,
        })
        .collect();
    let at = |level: &str| order.iter().position(|l| l == level);
    for (level, active) in before.iter().flat_map(|b| b.all()) {
        if active && let Some(i) = at(level) {
            *out[i].active_before.get_or_insert(0) += 1;
            // Counted as churned until found active below.
            out[i].churned += 1;
        }
    }
    for row in 0..ev.frame.len() {
        let activity = column.num(row).unwrap_or(0.0);
        if activity <= 0.0 {
            continue;
        }
        if let Some(i) = at(ev.level_name(li, ev.results[li].level[row])) {
            out[i].active += 1;
            out[i].repeat += u64::from(activity >= 2.0);
        }
        if let Some((then, true)) = before.and_then(|b| b.at(row))
            && let Some(i) = at(then)
        {
            out[i].churned -= 1;
        }
    }
    out
}

/// The moves of ladder `li` since the previous run: the matrix with counts and value, the up
/// and down counts and the first movers.
fn migration(
    ev: &Evaluation,
    li: usize,
    before: Option<&PreviousLadder<'_>>,
    out: &mut stratum_core::RecordedSummary,
) {
    let ladder = &ev.ladders[li];
    let order = crate::history::level_order(Some(&ev.policy), &ladder.name);
    let value = ladder.value_measure().and_then(|v| ev.frame.column(v));
    let mut cells: std::collections::BTreeMap<(usize, usize), (u64, f64)> = Default::default();
    let pos = |l: &str| order.iter().position(|x| x == l).unwrap_or(order.len());
    for row in 0..ev.frame.len() {
        let id = &ev.frame.ids()[row];
        let to = ev.level_name(li, ev.results[li].level[row]);
        let from = before.and_then(|b| b.at(row)).map(|(level, _)| level);
        // Rows are ordered by level then; `new` (not in the previous run) last.
        let key = (from.map_or(usize::MAX, pos), pos(to));
        let cell = cells.entry(key).or_insert((0, 0.0));
        cell.0 += 1;
        cell.1 += value
            .and_then(|c| c.num(row))
            .filter(|v| v.is_finite())
            .unwrap_or(0.0);
        let Some(from) = from else { continue };
        match crate::history::direction(&order, ladder.better, from, to) {
            1 => {
                out.upgrades += 1;
                if out.upgraded.len() < stratum_core::evaluate::MOVERS_KEPT {
                    out.upgraded.push((id.to_string(), from.into(), to.into()));
                }
            }
            -1 => {
                out.downgrades += 1;
                if out.downgraded.len() < stratum_core::evaluate::MOVERS_KEPT {
                    out.downgraded
                        .push((id.to_string(), from.into(), to.into()));
                }
            }
            _ => {}
        }
    }
    let name = |i: usize| order.get(i).cloned();
    out.moves = cells
        .into_iter()
        .map(|((from, to), (n, v))| (name(from), name(to).unwrap_or_default(), n, v))
        .collect();
}

/// Every customer's metrics and scores, encoded as the store keeps them for explanations;
/// run on the blocking pool while the results are recorded.
/// `byte_order`: the frame's rows in byte order of the id ([`stratum_core::Ids::byte_order`]).
pub(crate) fn metric_chunks(
    ev: &Evaluation,
    byte_order: Option<&[u32]>,
) -> Result<MetricChunks, StoreError> {
    let started = std::time::Instant::now();
    let batch =
        recorded_metrics(ev, byte_order).map_err(|e| StoreError::Internal(e.to_string()))?;
    let chunks = MetricChunks::encode(&batch);
    tracing::debug!(
        seconds = started.elapsed().as_secs_f64(),
        "metric chunks encoded"
    );
    chunks
}

/// The batch with a column per part of each weighted score, `SCORE/INPUT`, holding the
/// customer's points from that part (see [`stratum_core::score::ScoreModel::part_points`]).
fn with_part_points(ev: &Evaluation, batch: RecordBatch) -> Result<RecordBatch, RunError> {
    use datafusion::arrow::array::{ArrayRef, Float64Array};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    let mut fields: Vec<Field> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    for model in &ev.scores {
        for (input, points) in model.part_points(&ev.frame) {
            fields.push(Field::new(
                format!("{}{PART_SEPARATOR}{input}", model.score.name),
                DataType::Float64,
                true,
            ));
            columns.push(std::sync::Arc::new(Float64Array::from(points)));
        }
    }
    RecordBatch::try_new(std::sync::Arc::new(Schema::new(fields)), columns)
        .map_err(|e| RunError::Internal(format!("score parts for the store: {e}")))
}

/// Between a score's name and its part's input in the recorded column of the part's points
/// (no metric name holds it).
pub const PART_SEPARATOR: char = '/';

/// Every customer's metrics and scores (no tags), in byte order of the customer id.
fn recorded_metrics(ev: &Evaluation, byte_order: Option<&[u32]>) -> Result<RecordBatch, RunError> {
    let n = ev.frame.len();
    let all = crate::output::metrics_rows(ev, 0, n);
    let keep: Vec<usize> = (0..all.num_columns()).filter(|&i| i != 1).collect();
    let batch = all
        .project(&keep)
        .map_err(|e| RunError::Internal(format!("metrics for the store: {e}")))?;
    let batch = with_part_points(ev, batch)?;
    let Some(order) = byte_order else {
        return Ok(batch);
    };
    datafusion::arrow::compute::take_record_batch(
        &batch,
        &datafusion::arrow::array::UInt32Array::from(order.to_vec()),
    )
    .map_err(|e| RunError::Internal(format!("metrics for the store: {e}")))
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn record(
    store: &Store,
    loaded: &LoadedPolicy,
    ev: &Evaluation,
    batches: &[RecordBatch],
    byte_order: Option<&[u32]>,
    as_of: NaiveDate,
    started_at: String,
    inputs: String,
    recorded_by: &str,
    summaries: Vec<(String, String)>,
    metrics: impl Future<Output = Result<Option<MetricChunks>, StoreError>> + Send,
    ready: impl Future<Output = Result<(), String>> + Send,
) -> Result<i64, RunError> {
    let started = std::time::Instant::now();
    let policy = &loaded.policy;
    let n = ev.frame.len();
    let activity = policy
        .settings
        .activity
        .as_deref()
        .and_then(|a| ev.frame.column(a));
    // The batches hold the explanations, ladder by ladder in customer order.
    let explanations: Vec<&StringArray> = batches
        .iter()
        .map(|b| {
            b.column(5)
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("explanation column is utf8")
        })
        .collect();
    let why: Vec<&str> = explanations
        .iter()
        .flat_map(|a| (0..a.len()).map(move |i| a.value(i)))
        .collect();
    if why.len() != n * ev.ladders.len() {
        return Err(RunError::Internal(format!(
            "{} explanations for {} assignments",
            why.len(),
            n * ev.ladders.len()
        )));
    }
    // In the order the store keeps them (by ladder, then byte order of the id), so that it
    // has nothing to sort.
    let rows_in_order = crate::previous::in_store_order(byte_order, n);
    let mut ladders_by_name: Vec<usize> = (0..ev.ladders.len()).collect();
    ladders_by_name.sort_by_key(|&li| ev.ladders[li].name.as_str());
    let (why, rows_in_order) = (&why, &rows_in_order);
    // Built as the store writes them, a chunk at a time. Boxed: the closures' own types
    // inside the run's future defeat the compiler's proof that the future is `Send`.
    let rows: Box<dyn Iterator<Item = AssignmentRow<'_>> + Send + '_> =
        Box::new(ladders_by_name.into_iter().flat_map(move |li| {
            let ladder = &ev.ladders[li];
            let result = &ev.results[li];
            let score = ladder.rank_by.as_deref().and_then(|r| ev.frame.column(r));
            let value = ladder.value_measure().and_then(|v| ev.frame.column(v));
            rows_in_order.iter().copied().map(move |row| {
                let row = row as usize;
                let level = result.level[row];
                let in_scope = level <= ladder.levels.len();
                let state = result
                    .state
                    .get(row)
                    .and_then(Option::as_ref)
                    .map(|s| s.with_level(ev.level_name(li, s.level)));
                AssignmentRow {
                    ladder: &ladder.name,
                    customer_id: &ev.frame.ids()[row],
                    level: ev.level_name(li, level),
                    rule_level: ev.level_name(li, result.reason[row].rule_level(level)),
                    score: score.and_then(|c| c.num(row)),
                    rank: result
                        .rank
                        .as_ref()
                        .filter(|_| in_scope)
                        .map(|r| i64::from(r[row])),
                    value: value.and_then(|c| c.num(row)),
                    activity: activity.and_then(|c| c.num(row)),
                    state,
                    explanation: why[li * n + row],
                }
            })
        }));
    // What service needs of each customer: owner and tags (only with a [service] section).
    let facts = match policy.service.as_ref() {
        None => Vec::new(),
        Some(service) => {
            let owners = match service.owner.as_deref() {
                None => None,
                Some(metric) => match ev.frame.column(metric) {
                    Some(stratum_core::Column::Text(values)) => Some(values),
                    // Checked before scoring (`RunError::OwnerNotText`).
                    _ => {
                        return Err(RunError::Internal(format!(
                            "the owner metric `{metric}` is not text"
                        )));
                    }
                },
            };
            rows_in_order
                .iter()
                .map(|&row| {
                    let row = row as usize;
                    stratum_store::CustomerFacts {
                        customer_id: ev.frame.ids()[row].to_string(),
                        owner: owners.and_then(|o| o[row].clone()),
                        tags: ev.frame.tags(row).join(","),
                    }
                })
                .collect()
        }
    };
    tracing::debug!(
        seconds = started.elapsed().as_secs_f64(),
        "rows and facts to record gathered"
    );
    let run = NewRun {
        policy_name: policy.history_name().to_string(),
        policy_file: loaded.path.display().to_string(),
        policy_text: loaded.text.clone(),
        as_of,
        started_at,
        customers: n as u64,
        inputs,
        recorded_by: recorded_by.to_string(),
        facts,
        summaries,
    };
    Ok(store
        .record_run_if(&run, rows, &mut |_| {}, metrics, ready)
        .await?)
}
