//! Runs and their per-customer results: recording a run in one transaction, and the reads
//! that history, diffs, reports and the next run's holds need.

use std::collections::{BTreeMap, HashMap};

use arrow_array::{RecordBatch, StringArray};
use futures_util::TryStreamExt;

use chrono::NaiveDate;
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;

use stratum_core::{PriorState, Standing};

use crate::chunks::{self, AssignmentRow, CHUNK_ROWS, StandingsChunk};

/// `name`'s index in `names`, added when new. A ladder has a handful of levels: a linear
/// search beats hashing.
fn intern_name(names: &mut Vec<String>, name: &str) -> u32 {
    match names.iter().position(|n| n == name) {
        Some(i) => i as u32,
        None => {
            names.push(name.to_string());
            (names.len() - 1) as u32
        }
    }
}

/// One ladder of a recorded run as columns, customers in byte order of the id (the store's
/// order), level names interned: what the next run's holds, migration and churn start
/// from. A million customers cost two allocations per column, not three strings each.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedLadder {
    pub ladder: String,
    /// The level names the run used, each once; `levels` and `states` index them.
    pub level_names: Vec<String>,
    pub customers: stratum_core::Ids,
    pub levels: Vec<u32>,
    /// Whether the customer was active then (the policy's `activity` metric above 0).
    pub active: Vec<bool>,
    /// The standing for the next run's holds, its level an index of `level_names`.
    pub states: Vec<Option<Standing<u32>>>,
}
use crate::{Actor, Backend, Store, StoreError};

/// A run about to be recorded.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub policy_name: String,
    pub policy_file: String,
    pub policy_text: String,
    pub as_of: NaiveDate,
    pub started_at: String,
    pub customers: u64,
    /// JSON: each input file with its size, modification time and SHA-256.
    pub inputs: String,
    pub recorded_by: String,
    /// Per customer, when the policy has a `[service]` section: its owning agent (from the
    /// `[service] owner` metric) and its tags from the data, comma-separated: the policy's
    /// current facts for the API until a later run records its own (`fact_chunks`).
    pub facts: Vec<CustomerFacts>,
    /// (ladder, summary as JSON): what pages show of the run without reading its rows.
    pub summaries: Vec<(String, String)>,
}

/// A run's metrics, encoded for the store ([`MetricChunks::encode`]), which can happen on
/// another thread while the run's results are written.
#[derive(Debug)]
pub struct MetricChunks(Vec<(String, Vec<u8>)>);

impl MetricChunks {
    /// `batch`: first column `customer_id` (text, in byte order, each customer once), then
    /// one column per metric (Float64 or Utf8).
    pub fn encode(batch: &RecordBatch) -> Result<MetricChunks, StoreError> {
        crate::metric_chunks::encode(batch).map(MetricChunks)
    }
}

/// What service needs to know of a customer from the latest run.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerFacts {
    pub customer_id: String,
    pub owner: Option<String>,
    pub tags: String,
}

/// A recorded run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RunInfo {
    pub id: i64,
    pub policy_name: String,
    pub policy_file: String,
    pub policy_hash: String,
    pub as_of: NaiveDate,
    pub started_at: String,
    pub finished_at: String,
    pub customers: i64,
    /// JSON: each input file with its size, modification time, SHA-256 and rows (served
    /// as JSON, not as a string of it).
    #[serde(serialize_with = "as_json")]
    pub inputs: String,
    pub recorded_by: String,
    /// When and by whom the run was retired (`stratum runs retire`): kept in the history,
    /// no longer served, diffed against by default, or held from.
    pub retired_at: Option<String>,
    pub retired_by: Option<String>,
}

fn as_json<S: serde::Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
    use serde::Serialize;
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v) => v.serialize(s),
        Err(_) => text.serialize(s),
    }
}

impl RunInfo {
    pub fn is_retired(&self) -> bool {
        self.retired_at.is_some()
    }
}

/// One line of a customer's timeline.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HistoryRow {
    pub run_id: i64,
    pub as_of: NaiveDate,
    pub policy_name: String,
    pub ladder: String,
    pub level: String,
    pub rule_level: String,
    pub score: Option<f64>,
    pub rank: Option<i64>,
    pub explanation: String,
}

/// Customers (and their value at the later run) that went from one level to another.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MatrixCell {
    pub ladder: String,
    /// `None`: the customer was not in the earlier run.
    pub from_level: Option<String>,
    /// `None`: the customer is not in the later run.
    pub to_level: Option<String>,
    pub customers: i64,
    pub value: f64,
}

/// A customer whose level changed between two runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Move {
    pub ladder: String,
    pub customer_id: String,
    pub from_level: String,
    pub to_level: String,
    pub value: Option<f64>,
    pub explanation: String,
}

/// Per level of one run: the figures the effect report is built from.
#[derive(Debug, Clone, PartialEq)]
pub struct LevelStat {
    pub ladder: String,
    pub level: String,
    pub customers: i64,
    pub value: f64,
    /// Customers with activity > 0, and with activity >= 2 (repeat buyers).
    pub active: i64,
    pub repeat: i64,
}

pub(crate) fn date(s: &str, what: &str) -> Result<NaiveDate, StoreError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| StoreError::Corrupt(format!("stored {what} `{s}` is not a date")))
}

pub(crate) fn opt_date(s: Option<String>, what: &str) -> Result<Option<NaiveDate>, StoreError> {
    s.map(|s| date(&s, what)).transpose()
}

fn run_info(row: &AnyRow) -> Result<RunInfo, StoreError> {
    Ok(RunInfo {
        id: row.try_get("id")?,
        policy_name: row.try_get("policy_name")?,
        policy_file: row.try_get("policy_file")?,
        policy_hash: row.try_get("policy_hash")?,
        as_of: date(&row.try_get::<String, _>("as_of")?, "as_of")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        customers: row.try_get("customers")?,
        inputs: row.try_get("inputs")?,
        recorded_by: row.try_get("recorded_by")?,
        retired_at: row.try_get("retired_at")?,
        retired_by: row.try_get("retired_by")?,
    })
}

const RUN_COLUMNS: &str = "id, policy_name, policy_file, policy_hash, as_of, started_at, \
                           finished_at, customers, inputs, recorded_by, retired_at, retired_by";

/// SHA-256 of a policy's text, hex.
pub fn policy_hash(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Store {
    /// Records a run and all its rows in one transaction; `progress` is told after each
    /// batch of rows. Nothing is visible to readers until the commit.
    pub async fn record_run(
        &self,
        run: &NewRun,
        rows: &[AssignmentRow<'_>],
        progress: &mut (dyn FnMut(usize) + Send),
    ) -> Result<i64, StoreError> {
        let mut order: Vec<&AssignmentRow> = rows.iter().collect();
        order.sort_unstable_by(|a, b| (a.ladder, a.customer_id).cmp(&(b.ladder, b.customer_id)));
        self.record_run_if(
            run,
            order.into_iter().cloned(),
            progress,
            async { Ok(None) },
            async { Ok(()) },
        )
        .await
    }

    /// Like [`Store::record_run`], with the rows streamed and two futures awaited on the way.
    /// `rows` must come by ladder name, then in byte order of the customer id, each
    /// customer once per ladder (a row out of order fails the transaction): the runner builds
    /// them as they are written instead of holding a million at once. `metrics` gives the
    /// run's encoded metrics once the results are written (the runner encodes them on
    /// another thread meanwhile); `ready` is awaited just before the commit, and an `Err`
    /// rolls everything back (`StoreError::Aborted`): the runner commits a run only once its
    /// output files are written. A future not reached (an earlier failure) is dropped
    /// unpolled.
    pub async fn record_run_if(
        &self,
        run: &NewRun,
        rows: impl Iterator<Item = AssignmentRow<'_>> + Send,
        progress: &mut (dyn FnMut(usize) + Send),
        metrics: impl Future<Output = Result<Option<MetricChunks>, StoreError>> + Send,
        ready: impl Future<Output = Result<(), String>> + Send,
    ) -> Result<i64, StoreError> {
        let mut tx = self.pool().begin().await?;
        // Two hosts recording runs of one policy into one PostgreSQL database at once would
        // each continue holds from the same previous run: one at a time, per policy, for the
        // length of the transaction. (SQLite's single writer already serializes them.)
        if self.backend() == Backend::Postgres {
            let free: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtext($1))")
                .bind(format!("stratum run {}", run.policy_name))
                .fetch_one(&mut *tx)
                .await?;
            if !free {
                return Err(StoreError::Invalid(format!(
                    "another run of policy `{}` is being recorded in this database; try again when it has finished",
                    run.policy_name
                )));
            }
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO runs (policy_name, policy_file, policy_text, policy_hash, as_of, \
             started_at, finished_at, customers, inputs, recorded_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        )
        .bind(&run.policy_name)
        .bind(&run.policy_file)
        .bind(&run.policy_text)
        .bind(policy_hash(&run.policy_text))
        .bind(run.as_of.to_string())
        .bind(&run.started_at)
        .bind(crate::now())
        .bind(run.customers as i64)
        .bind(&run.inputs)
        .bind(&run.recorded_by)
        .fetch_one(&mut *tx)
        .await?;
        let step = std::time::Instant::now();
        for ladder in self.write_chunks(&mut tx, id, rows, progress).await? {
            sqlx::query("INSERT INTO run_ladders (run_id, ladder) VALUES ($1, $2)")
                .bind(id)
                .bind(ladder)
                .execute(&mut *tx)
                .await?;
        }
        tracing::debug!(
            run = id,
            seconds = step.elapsed().as_secs_f64(),
            "assignment chunks written"
        );
        let step = std::time::Instant::now();
        if let Some(MetricChunks(chunks)) = metrics.await? {
            chunks::insert_blobs(&mut tx, "metric_chunks", "metrics", id, chunks).await?;
        }
        for (ladder, summary) in &run.summaries {
            sqlx::query("INSERT INTO run_summaries (run_id, ladder, summary) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(ladder)
                .bind(summary)
                .execute(&mut *tx)
                .await?;
        }
        tracing::debug!(
            run = id,
            seconds = step.elapsed().as_secs_f64(),
            "metric chunks written"
        );
        let step = std::time::Instant::now();
        let facts = crate::fact_chunks::encode(&run.facts)?;
        chunks::insert_blobs(&mut tx, "fact_chunks", "facts", id, facts).await?;
        let actor = Actor {
            name: run.recorded_by.clone(),
            origin: "run".into(),
        };
        self.audit(
            &mut tx,
            &actor,
            "run.record",
            &id.to_string(),
            &format!(
                "{} as of {}, {} customers",
                run.policy_name, run.as_of, run.customers
            ),
        )
        .await?;
        tracing::debug!(
            run = id,
            seconds = step.elapsed().as_secs_f64(),
            "customer facts written"
        );
        let step = std::time::Instant::now();
        ready.await.map_err(StoreError::Aborted)?;
        tracing::debug!(
            run = id,
            seconds = step.elapsed().as_secs_f64(),
            "output files awaited"
        );
        let step = std::time::Instant::now();
        tx.commit().await?;
        tracing::debug!(
            run = id,
            seconds = step.elapsed().as_secs_f64(),
            "committed"
        );
        Ok(id)
    }

    /// Every run, oldest first; only those of one policy when named.
    pub async fn runs(&self, policy_name: Option<&str>) -> Result<Vec<RunInfo>, StoreError> {
        let rows = match policy_name {
            Some(p) => {
                sqlx::query(&format!(
                    "SELECT {RUN_COLUMNS} FROM runs WHERE policy_name = $1 ORDER BY id"
                ))
                .bind(p)
                .fetch_all(self.pool())
                .await?
            }
            None => {
                sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM runs ORDER BY id"))
                    .fetch_all(self.pool())
                    .await?
            }
        };
        rows.iter().map(run_info).collect()
    }

    pub async fn run(&self, id: i64) -> Result<RunInfo, StoreError> {
        let row = sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("no run {id} in the history")))?;
        run_info(&row)
    }

    /// The policy text a run used.
    pub async fn run_policy_text(&self, id: i64) -> Result<String, StoreError> {
        sqlx::query_scalar("SELECT policy_text FROM runs WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("no run {id} in the history")))
    }

    /// Retires a run: it stays in the history (and `history`, `export-run` still show it)
    /// but is no longer served, compared with by default, or held from. Audited.
    pub async fn retire_run(
        &self,
        id: i64,
        reason: &str,
        actor: &Actor,
    ) -> Result<RunInfo, StoreError> {
        let mut tx = self.pool().begin().await?;
        let n = sqlx::query(
            "UPDATE runs SET retired_at = $1, retired_by = $2 WHERE id = $3 AND retired_at IS NULL",
        )
        .bind(crate::now())
        .bind(&actor.name)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            let exists: i64 = sqlx::query_scalar("SELECT count(*) FROM runs WHERE id = $1")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            return Err(if exists == 0 {
                StoreError::NotFound(format!("no run {id} in the history"))
            } else {
                StoreError::Invalid(format!("run {id} is retired already"))
            });
        }
        sqlx::query("DELETE FROM served_runs WHERE run_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        self.audit(&mut tx, actor, "run.retire", &id.to_string(), reason)
            .await?;
        tx.commit().await?;
        self.run(id).await
    }

    /// Pins the run served for its policy (`None`: serve the latest recorded run again).
    /// Audited.
    pub async fn pin_served_run(
        &self,
        policy_name: &str,
        run: Option<i64>,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM served_runs WHERE policy_name = $1")
            .bind(policy_name)
            .execute(&mut *tx)
            .await?;
        match run {
            Some(id) => {
                let row = sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("no run {id} in the history")))?;
                let info = run_info(&row)?;
                if info.policy_name != policy_name {
                    return Err(StoreError::Invalid(format!(
                        "run {id} is a run of policy `{}`, not `{policy_name}`",
                        info.policy_name
                    )));
                }
                if info.is_retired() {
                    return Err(StoreError::Invalid(format!("run {id} is retired")));
                }
                sqlx::query(
                    "INSERT INTO served_runs (policy_name, run_id, pinned_by, pinned_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(policy_name)
                .bind(id)
                .bind(&actor.name)
                .bind(crate::now())
                .execute(&mut *tx)
                .await?;
                self.audit(&mut tx, actor, "run.pin", &id.to_string(), policy_name)
                    .await?;
            }
            None => {
                self.audit(&mut tx, actor, "run.unpin", policy_name, "")
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// A customer's metrics as a run computed them (policy order), or `None` when the run
    /// did not keep metrics (recorded before they were) or does not have the customer.
    pub async fn metrics_of(
        &self,
        run_id: i64,
        customer_id: &str,
    ) -> Result<Option<Vec<(String, serde_json::Value)>>, StoreError> {
        let blob =
            chunks::holding_blob(self, "metric_chunks", "metrics", run_id, customer_id).await?;
        match blob {
            Some(blob) => crate::metric_chunks::find(&blob, customer_id),
            None => Ok(None),
        }
    }

    /// Every customer's text metrics as the run recorded them (what the console searches and
    /// groups households by), chunk by chunk in customer-id order.
    pub async fn text_metrics(
        &self,
        run_id: i64,
    ) -> Result<crate::metric_chunks::TextMetrics, StoreError> {
        let mut out = crate::metric_chunks::TextMetrics::default();
        let mut rows = sqlx::query_scalar::<_, Vec<u8>>(
            "SELECT metrics FROM metric_chunks WHERE run_id = $1 ORDER BY first_customer",
        )
        .bind(run_id)
        .fetch(self.pool());
        while let Some(blob) = rows.try_next().await? {
            crate::metric_chunks::append_texts(&blob, &mut out)?;
        }
        Ok(out)
    }

    /// The run of a policy pinned for serving, if one is.
    pub async fn pinned_run(&self, policy_name: &str) -> Result<Option<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT run_id FROM served_runs WHERE policy_name = $1")
                .bind(policy_name)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    /// The run of a policy recorded last, whatever its date: the inputs a new run's are
    /// compared with (a source that shrank since then stops the run).
    pub async fn last_recorded_run(
        &self,
        policy_name: &str,
    ) -> Result<Option<RunInfo>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE policy_name = $1 AND retired_at IS NULL \
             ORDER BY id DESC LIMIT 1"
        ))
        .bind(policy_name)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(run_info).transpose()
    }

    /// The latest run of a policy dated strictly before `as_of`: the one a new run's holds
    /// continue from. Re-running a date therefore gives the same result.
    pub async fn previous_run(
        &self,
        policy_name: &str,
        as_of: NaiveDate,
    ) -> Result<Option<RunInfo>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE policy_name = $1 AND as_of < $2 \
             AND retired_at IS NULL ORDER BY as_of DESC, id DESC LIMIT 1"
        ))
        .bind(policy_name)
        .bind(as_of.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(run_info).transpose()
    }

    /// Writes a run's rows as chunks of [`CHUNK_ROWS`] customers per ladder; `rows` come in
    /// chunk order (by ladder, then byte order of the customer id), checked as they go in.
    /// Returns the ladders written; `progress` is told after each chunk.
    pub(crate) async fn write_chunks<'a>(
        &self,
        conn: &mut sqlx::AnyConnection,
        run_id: i64,
        rows: impl Iterator<Item = AssignmentRow<'a>> + Send,
        progress: &mut (dyn FnMut(usize) + Send),
    ) -> Result<Vec<String>, StoreError> {
        let mut rows = rows.peekable();
        // The next chunk's rows: up to CHUNK_ROWS of one ladder.
        let mut next_piece = move || -> Vec<AssignmentRow<'a>> {
            let mut piece: Vec<AssignmentRow<'a>> = Vec::with_capacity(CHUNK_ROWS);
            while piece.len() < CHUNK_ROWS {
                let same_ladder = match (rows.peek(), piece.first()) {
                    (None, _) => false,
                    (Some(_), None) => true,
                    (Some(next), Some(first)) => next.ladder == first.ladder,
                };
                if !same_ladder {
                    break;
                }
                piece.extend(rows.next());
            }
            piece
        };
        let encode = |piece: Vec<AssignmentRow<'a>>| -> Result<_, StoreError> {
            if piece.is_empty() {
                return Ok(None);
            }
            chunks::encode(&piece).map(|chunk| Some((piece, chunk)))
        };
        // The database executes one chunk's INSERT while the next chunk is encoded here: on
        // SQLite the statement runs on sqlx's worker thread, so the two overlap.
        let mut next = encode(next_piece())?;
        let mut written = 0;
        let mut ladders: Vec<String> = Vec::new();
        let mut previous: Option<(&'a str, &'a str)> = None;
        while let Some((piece, chunk)) = next.take() {
            // Lookups binary-search a chunk, and find a customer's chunk by its first id:
            // rows strictly in order, each customer once per ladder.
            for key in piece.iter().map(|r| (r.ladder, r.customer_id)) {
                match previous.map(|p| p.cmp(&key)) {
                    Some(std::cmp::Ordering::Equal) => {
                        return Err(StoreError::Internal(format!(
                            "customer {} appears twice on ladder {}",
                            key.1, key.0
                        )));
                    }
                    Some(std::cmp::Ordering::Greater) => {
                        return Err(StoreError::Internal(format!(
                            "rows out of order: ladder {} customer {} after ladder {} customer {}",
                            key.0,
                            key.1,
                            previous.map_or("", |p| p.0),
                            previous.map_or("", |p| p.1)
                        )));
                    }
                    _ => {}
                }
                if ladders.last().is_none_or(|l| l != key.0) {
                    ladders.push(key.0.to_string());
                }
                previous = Some(key);
            }
            let upcoming = next_piece();
            written += chunk.customers;
            let insert = sqlx::query(
                "INSERT INTO assignment_chunks (run_id, ladder, first_customer, customers, \
                 standings, explanations) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(run_id)
            .bind(chunk.ladder)
            .bind(chunk.first_customer)
            .bind(chunk.customers as i64)
            .bind(chunk.standings)
            .bind(chunk.explanations);
            let (done, encoded) =
                futures_util::future::join(insert.execute(&mut *conn), async { encode(upcoming) })
                    .await;
            done?;
            next = encoded?;
            tracing::debug!(run = run_id, rows = written, "recorded rows");
            progress(written);
        }
        Ok(ladders)
    }

    /// Streams a run's chunks, by ladder then first customer, to `each` as (ladder, standings
    /// blob, explanations blob when asked for), one at a time.
    async fn for_each_chunk(
        &self,
        run_id: i64,
        with_explanations: bool,
        mut each: impl FnMut(String, &[u8], Option<&[u8]>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let sql = if with_explanations {
            "SELECT ladder, standings, explanations FROM assignment_chunks WHERE run_id = $1 \
             ORDER BY ladder, first_customer"
        } else {
            "SELECT ladder, standings FROM assignment_chunks WHERE run_id = $1 \
             ORDER BY ladder, first_customer"
        };
        let mut stream = sqlx::query(sql).bind(run_id).fetch(self.pool());
        while let Some(row) = stream.try_next().await? {
            let explanations = if with_explanations {
                Some(row.try_get::<&[u8], _>("explanations")?)
            } else {
                None
            };
            each(
                row.try_get("ladder")?,
                row.try_get::<&[u8], _>("standings")?,
                explanations,
            )?;
        }
        Ok(())
    }

    /// The ids of a run's customers (one ladder's chunks: every customer is on each), for
    /// checking many ids at once.
    pub async fn run_customer_ids(
        &self,
        run_id: i64,
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let first: Option<String> =
            sqlx::query_scalar("SELECT min(ladder) FROM assignment_chunks WHERE run_id = $1")
                .bind(run_id)
                .fetch_one(self.pool())
                .await?;
        let Some(ladder) = first else {
            return Ok(Default::default());
        };
        let mut ids = std::collections::HashSet::new();
        let mut stream = sqlx::query(
            "SELECT standings FROM assignment_chunks WHERE run_id = $1 AND ladder = $2",
        )
        .bind(run_id)
        .bind(&ladder)
        .fetch(self.pool());
        while let Some(row) = stream.try_next().await? {
            let chunk = StandingsChunk::decode(row.try_get::<&[u8], _>("standings")?)?;
            for i in 0..chunk.len() {
                ids.insert(chunk.customer(i).to_string());
            }
        }
        Ok(ids)
    }

    /// Every chunk of a run, decoded, grouped by ladder (in name order); explanations only
    /// when asked for.
    pub(crate) async fn run_rows(
        &self,
        run_id: i64,
        with_explanations: bool,
    ) -> Result<Vec<LadderRows>, StoreError> {
        let mut out: Vec<LadderRows> = Vec::new();
        self.for_each_chunk(
            run_id,
            with_explanations,
            |ladder, standings, explanations| {
                let standings = StandingsChunk::decode(standings)?;
                let explanations = explanations.map(chunks::decode_explanations).transpose()?;
                if out.last().is_none_or(|l| l.ladder != ladder) {
                    out.push(LadderRows {
                        ladder,
                        chunks: Vec::new(),
                    });
                }
                let last = out.last_mut().expect("pushed above");
                last.chunks.push((standings, explanations));
                Ok(())
            },
        )
        .await?;
        out.sort_by(|a, b| a.ladder.cmp(&b.ladder));
        Ok(out)
    }

    /// A run's results for export, one record batch per chunk, ladders in name order and
    /// customers in id order: `ladder`, `customer_id`, `level`, `rule_level`, `score`,
    /// `rank`, `value`, `activity`, the hold state (`held_level`, `since`,
    /// `last_qualified`, `below_runs`, `below_since`, `above_runs`) and `explanation`.
    pub async fn run_batches(&self, run_id: i64) -> Result<Vec<RecordBatch>, StoreError> {
        self.run(run_id).await?;
        let mut out = Vec::new();
        self.for_each_chunk(run_id, true, |ladder, standings, explanations| {
            let batch = chunks::export_batch(&ladder, standings, explanations.unwrap_or(&[]))?;
            out.push((ladder, batch));
            Ok(())
        })
        .await?;
        // Stable: each ladder's chunks stay in id order.
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out.into_iter().map(|(_, batch)| batch).collect())
    }

    /// Standings after a run: ladder → customer → state.
    pub async fn states(
        &self,
        run_id: i64,
    ) -> Result<HashMap<String, HashMap<String, PriorState>>, StoreError> {
        let mut out: HashMap<String, HashMap<String, PriorState>> = HashMap::new();
        for ladder in self.run_rows(run_id, false).await? {
            let states = out.entry(ladder.ladder.clone()).or_default();
            for (chunk, i) in ladder.rows() {
                if let Some(state) = chunk.state(i) {
                    states.insert(
                        chunk.customer(i).to_string(),
                        state.with_level(state.level.to_string()),
                    );
                }
            }
        }
        Ok(out)
    }

    /// Every ladder of a run as columns (see [`RecordedLadder`]), in ladder-name order: one
    /// read of its rows gives a new run the standings for its holds and the levels for the
    /// migration and churn it records.
    pub async fn recorded_ladders(&self, run_id: i64) -> Result<Vec<RecordedLadder>, StoreError> {
        let mut out = Vec::new();
        for ladder in self.run_rows(run_id, false).await? {
            let n: usize = ladder.chunks.iter().map(|(c, _)| c.len()).sum();
            let mut recorded = RecordedLadder {
                ladder: ladder.ladder.clone(),
                level_names: Vec::new(),
                customers: stratum_core::Ids::with_capacity(n, n * 8),
                levels: Vec::with_capacity(n),
                active: Vec::with_capacity(n),
                states: Vec::with_capacity(n),
            };
            for (chunk, i) in ladder.rows() {
                recorded.customers.push(chunk.customer(i));
                let level = intern_name(&mut recorded.level_names, chunk.level(i));
                recorded.levels.push(level);
                recorded
                    .active
                    .push(chunk.activity(i).is_some_and(|x| x > 0.0));
                let state = chunk
                    .state(i)
                    .map(|s| s.with_level(intern_name(&mut recorded.level_names, s.level)));
                recorded.states.push(state);
            }
            out.push(recorded);
        }
        Ok(out)
    }

    /// Every customer's level on every ladder of a run: (ladder, customer, level).
    pub async fn levels(&self, run_id: i64) -> Result<Vec<(String, String, String)>, StoreError> {
        let mut out = Vec::new();
        for ladder in self.run_rows(run_id, false).await? {
            for (chunk, i) in ladder.rows() {
                out.push((
                    ladder.ladder.clone(),
                    chunk.customer(i).to_string(),
                    chunk.level(i).to_string(),
                ));
            }
        }
        Ok(out)
    }

    /// A customer's level on every ladder at every run, oldest first.
    pub async fn history(&self, customer_id: &str) -> Result<Vec<HistoryRow>, StoreError> {
        // For each run and ladder, the one chunk that can hold the customer
        // (`holding_chunk`).
        let rows = sqlx::query(&format!(
            "SELECT r.id, r.as_of, r.policy_name, l.ladder, c.standings, c.explanations \
             FROM runs r CROSS JOIN run_ladders l {} WHERE l.run_id = r.id \
             ORDER BY l.ladder, r.as_of, r.id",
            holding_chunk(self.backend(), "$1")
        ))
        .bind(customer_id)
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::new();
        for row in &rows {
            let Some((chunk, i, explanation)) = customer_row(row, customer_id)? else {
                continue;
            };
            out.push(HistoryRow {
                run_id: row.try_get("id")?,
                as_of: date(&row.try_get::<String, _>("as_of")?, "as_of")?,
                policy_name: row.try_get("policy_name")?,
                ladder: row.try_get("ladder")?,
                level: chunk.level(i).to_string(),
                rule_level: chunk.rule_level(i).to_string(),
                score: chunk.score(i),
                rank: chunk.rank(i),
                explanation,
            });
        }
        Ok(out)
    }

    /// One customer's rows on every ladder of a run, with their explanations: (ladder,
    /// chunk, row, explanation).
    pub(crate) async fn customer_in_run(
        &self,
        run_id: i64,
        customer_id: &str,
    ) -> Result<Vec<(String, StandingsChunk, usize, String)>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT l.ladder, c.standings, c.explanations FROM run_ladders l {} \
             WHERE l.run_id = $2",
            holding_chunk(self.backend(), "$1")
        ))
        .bind(customer_id)
        .bind(run_id)
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::new();
        for row in &rows {
            if let Some((chunk, i, explanation)) = customer_row(row, customer_id)? {
                out.push((row.try_get::<String, _>("ladder")?, chunk, i, explanation));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// From-level × to-level counts between two runs, per ladder, with the later run's value.
    /// Customers only in one run appear with `None` on the other side.
    /// The ladder summaries recorded with these runs: (run, ladder, JSON), by run then in
    /// the order recorded. Runs recorded before summaries were kept have none.
    pub async fn run_summaries(
        &self,
        runs: &[i64],
    ) -> Result<Vec<(i64, String, String)>, StoreError> {
        if runs.is_empty() {
            return Ok(Vec::new());
        }
        let list: Vec<String> = (1..=runs.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT run_id, ladder, summary FROM run_summaries WHERE run_id IN ({}) \
             ORDER BY run_id, ladder",
            list.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for r in runs {
            q = q.bind(*r);
        }
        q.fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| {
                Ok((
                    r.try_get("run_id")?,
                    r.try_get("ladder")?,
                    r.try_get("summary")?,
                ))
            })
            .collect()
    }

    pub async fn migration_matrix(
        &self,
        from_run: i64,
        to_run: i64,
    ) -> Result<Vec<MatrixCell>, StoreError> {
        let before = self.run_rows(from_run, false).await?;
        let after = self.run_rows(to_run, false).await?;
        type Key = (String, Option<String>, Option<String>);
        let mut cells: BTreeMap<Key, (i64, f64)> = BTreeMap::new();
        for (ladder, a, b) in pair_ladders(&before, &after) {
            merge_join(a, b, |a, b| {
                let key = (
                    ladder.to_string(),
                    a.map(|(c, i)| c.level(i).to_string()),
                    b.map(|(c, i)| c.level(i).to_string()),
                );
                let cell = cells.entry(key).or_insert((0, 0.0));
                cell.0 += 1;
                cell.1 += b.and_then(|(c, i)| c.value(i)).unwrap_or(0.0);
            });
        }
        Ok(cells
            .into_iter()
            .map(
                |((ladder, from_level, to_level), (customers, value))| MatrixCell {
                    ladder,
                    from_level,
                    to_level,
                    customers,
                    value,
                },
            )
            .collect())
    }

    /// Customers whose level differs between two runs, per ladder, by customer id.
    pub async fn moves(&self, from_run: i64, to_run: i64) -> Result<Vec<Move>, StoreError> {
        let before = self.run_rows(from_run, false).await?;
        let after = self.run_rows(to_run, true).await?;
        let mut out = Vec::new();
        for (ladder, a, b) in pair_ladders(&before, &after) {
            let (Some(a), Some(b)) = (a, b) else {
                continue;
            };
            let mut rows = b.rows_with_explanations();
            merge_join(Some(a), Some(b), |a, b| {
                let why = b.map(|_| rows.next().expect("one explanation per row"));
                if let (Some((ca, ia)), Some((cb, ib)), Some(why)) = (a, b, why)
                    && ca.level(ia) != cb.level(ib)
                {
                    out.push(Move {
                        ladder: ladder.to_string(),
                        customer_id: cb.customer(ib).to_string(),
                        from_level: ca.level(ia).to_string(),
                        to_level: cb.level(ib).to_string(),
                        value: cb.value(ib),
                        explanation: why.to_string(),
                    });
                }
            });
        }
        Ok(out)
    }

    /// Counts, value, active and repeat customers per level of one run.
    pub async fn level_stats(&self, run_id: i64) -> Result<Vec<LevelStat>, StoreError> {
        let mut stats: BTreeMap<(String, String), LevelStat> = BTreeMap::new();
        for ladder in self.run_rows(run_id, false).await? {
            for (chunk, i) in ladder.rows() {
                let key = (ladder.ladder.clone(), chunk.level(i).to_string());
                let stat = stats.entry(key).or_insert_with(|| LevelStat {
                    ladder: ladder.ladder.clone(),
                    level: chunk.level(i).to_string(),
                    customers: 0,
                    value: 0.0,
                    active: 0,
                    repeat: 0,
                });
                stat.customers += 1;
                stat.value += chunk.value(i).unwrap_or(0.0);
                let activity = chunk.activity(i).unwrap_or(0.0);
                stat.active += i64::from(activity > 0.0);
                stat.repeat += i64::from(activity >= 2.0);
            }
        }
        Ok(stats.into_values().collect())
    }

    /// Per ladder and level at the earlier run: customers active then (activity > 0), and
    /// how many of them have no activity at the later run (churned).
    pub async fn churn(
        &self,
        from_run: i64,
        to_run: i64,
    ) -> Result<Vec<(String, String, i64, i64)>, StoreError> {
        let before = self.run_rows(from_run, false).await?;
        let after = self.run_rows(to_run, false).await?;
        let mut counts: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
        for (ladder, a, b) in pair_ladders(&before, &after) {
            merge_join(a, b, |a, b| {
                let Some((ca, ia)) = a else { return };
                if ca.activity(ia).is_none_or(|x| x <= 0.0) {
                    return;
                }
                let count = counts
                    .entry((ladder.to_string(), ca.level(ia).to_string()))
                    .or_insert((0, 0));
                count.0 += 1;
                count.1 += i64::from(b.and_then(|(c, i)| c.activity(i)).is_none_or(|x| x <= 0.0));
            });
        }
        Ok(counts
            .into_iter()
            .map(|((ladder, level), (active, churned))| (ladder, level, active, churned))
            .collect())
    }
}

/// Joins `c`, the chunk of run `l.run_id` and ladder `l.ladder` that can hold the customer
/// id in parameter `customer`: the one with the greatest first customer not after the id,
/// one probe of the primary key. PostgreSQL gets a LATERAL subquery (given the correlated
/// `max()` below it hash-joined every chunk of the run); SQLite has no LATERAL and probes
/// the index for the `max()` on its own.
fn holding_chunk(backend: Backend, customer: &str) -> String {
    match backend {
        Backend::Postgres => format!(
            "CROSS JOIN LATERAL (SELECT x.standings, x.explanations FROM assignment_chunks x \
             WHERE x.run_id = l.run_id AND x.ladder = l.ladder AND x.first_customer <= {customer} \
             ORDER BY x.first_customer DESC LIMIT 1) c"
        ),
        Backend::Sqlite => format!(
            "CROSS JOIN assignment_chunks c ON c.run_id = l.run_id AND c.ladder = l.ladder \
             AND c.first_customer = (SELECT max(x.first_customer) FROM assignment_chunks x \
             WHERE x.run_id = l.run_id AND x.ladder = l.ladder AND x.first_customer <= {customer})"
        ),
    }
}

/// The customer's row in a fetched chunk (`standings`, `explanations` columns), with its
/// explanation; `None` when the chunk does not hold it (not in that run).
fn customer_row(
    row: &AnyRow,
    customer_id: &str,
) -> Result<Option<(StandingsChunk, usize, String)>, StoreError> {
    let chunk = StandingsChunk::decode(row.try_get::<&[u8], _>("standings")?)?;
    let Some(i) = chunk.find(customer_id) else {
        return Ok(None);
    };
    let why = chunks::decode_explanations(row.try_get::<&[u8], _>("explanations")?)?;
    let explanation = why.value(i).to_string();
    Ok(Some((chunk, i, explanation)))
}

/// One ladder of a decoded run: its chunks in customer-id order, each with its
/// explanations when they were asked for.
pub(crate) struct LadderRows {
    pub ladder: String,
    pub chunks: Vec<(StandingsChunk, Option<StringArray>)>,
}

impl LadderRows {
    /// Every row: (chunk, index in the chunk), in customer-id order.
    pub(crate) fn rows(&self) -> impl Iterator<Item = (&StandingsChunk, usize)> {
        self.chunks
            .iter()
            .flat_map(|(c, _)| (0..c.len()).map(move |i| (c, i)))
    }

    fn rows_with_explanations(&self) -> impl Iterator<Item = &str> {
        self.chunks
            .iter()
            .flat_map(|(c, why)| (0..c.len()).map(move |i| why.as_ref().map_or("", |w| w.value(i))))
    }
}

/// The ladders of two runs side by side, in name order; a ladder in only one run is paired
/// with `None`.
fn pair_ladders<'x>(
    before: &'x [LadderRows],
    after: &'x [LadderRows],
) -> Vec<(&'x str, Option<&'x LadderRows>, Option<&'x LadderRows>)> {
    let mut names: Vec<&str> = before
        .iter()
        .chain(after)
        .map(|l| l.ladder.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            (
                name,
                before.iter().find(|l| l.ladder == name),
                after.iter().find(|l| l.ladder == name),
            )
        })
        .collect()
}

type RowRef<'x> = (&'x StandingsChunk, usize);

/// Walks two ladders' rows in customer-id order together, calling `f` once per customer with
/// its row in each (`None` where the customer is missing from that run).
fn merge_join<'x>(
    a: Option<&'x LadderRows>,
    b: Option<&'x LadderRows>,
    mut f: impl FnMut(Option<RowRef<'x>>, Option<RowRef<'x>>),
) {
    let mut a = a.into_iter().flat_map(|l| l.rows()).peekable();
    let mut b = b.into_iter().flat_map(|l| l.rows()).peekable();
    loop {
        let order = match (a.peek(), b.peek()) {
            (None, None) => return,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some((ca, ia)), Some((cb, ib))) => ca.customer(*ia).cmp(cb.customer(*ib)),
        };
        match order {
            std::cmp::Ordering::Less => f(a.next(), None),
            std::cmp::Ordering::Greater => f(None, b.next()),
            std::cmp::Ordering::Equal => f(a.next(), b.next()),
        }
    }
}
