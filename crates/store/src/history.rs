//! Runs and their per-customer results: recording a run in one transaction, and the reads
//! that history, diffs, reports and the next run's holds need.

use std::collections::HashMap;

use chrono::NaiveDate;
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;

use stratum_core::{PriorState, Standing};

use crate::{Backend, Store, StoreError};

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
    /// `[service] owner` metric) and its tags from the data, comma-separated; kept as the
    /// customer's current facts for the API.
    pub facts: Vec<CustomerFacts>,
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
    pub inputs: String,
    pub recorded_by: String,
}

/// One customer's result on one ladder, as recorded. Borrowed, so a million rows cost no
/// copies.
#[derive(Debug, Clone)]
pub struct AssignmentRow<'a> {
    pub ladder: &'a str,
    pub customer_id: &'a str,
    pub level: &'a str,
    pub rule_level: &'a str,
    pub score: Option<f64>,
    pub rank: Option<i64>,
    pub value: Option<f64>,
    /// The policy's activity metric (purchases in the window), for repeat and churn rates.
    pub activity: Option<f64>,
    /// The standing for the next run's holds, the level by name.
    pub state: Option<Standing<&'a str>>,
    pub explanation: &'a str,
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

const COLUMNS: usize = 16;
/// Rows per INSERT statement: 16 parameters each stays under SQLite's 32,766 and
/// PostgreSQL's 65,535 bind parameters. (Carrying a batch as one JSON array unpacked by
/// `json_each` was tried and was slower on SQLite.)
const ROWS_PER_INSERT: usize = 1000;

/// SQLite gets anonymous `?` placeholders: it looks each named `$N` up in a list while
/// parsing, which is quadratic in a 16,000-parameter statement.
fn insert_sql(rows: usize, backend: Backend) -> String {
    let mut sql = String::with_capacity(300 + rows * COLUMNS * 6);
    sql.push_str(
        "INSERT INTO assignments (run_id, ladder, customer_id, level, rule_level, score, rank, \
         value, activity, held_level, since, last_qualified, below_runs, below_since, above_runs, \
         explanation) VALUES ",
    );
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push('(');
        for c in 0..COLUMNS {
            if c > 0 {
                sql.push(',');
            }
            match backend {
                Backend::Sqlite => sql.push('?'),
                Backend::Postgres => sql.push_str(&format!("${}", r * COLUMNS + c + 1)),
            }
        }
        sql.push(')');
    }
    sql
}

fn date(s: &str, what: &str) -> Result<NaiveDate, StoreError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| StoreError::Invalid(format!("stored {what} `{s}` is not a date")))
}

fn opt_date(s: Option<String>, what: &str) -> Result<Option<NaiveDate>, StoreError> {
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
    })
}

const RUN_COLUMNS: &str = "id, policy_name, policy_file, policy_hash, as_of, started_at, \
                           finished_at, customers, inputs, recorded_by";

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
        let mut tx = self.pool().begin().await?;
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
        let mut ladders: Vec<&str> = rows.iter().map(|r| r.ladder).collect();
        ladders.sort_unstable();
        ladders.dedup();
        for ladder in ladders {
            sqlx::query("INSERT INTO run_ladders (run_id, ladder) VALUES ($1, $2)")
                .bind(id)
                .bind(ladder)
                .execute(&mut *tx)
                .await?;
        }
        // In key order, so the primary key is appended to rather than updated all over.
        let mut order: Vec<usize> = (0..rows.len()).collect();
        order.sort_unstable_by(|&a, &b| {
            (rows[a].ladder, rows[a].customer_id).cmp(&(rows[b].ladder, rows[b].customer_id))
        });
        let full_sql = insert_sql(ROWS_PER_INSERT, self.backend());
        let tail_sql = insert_sql(order.len() % ROWS_PER_INSERT, self.backend());
        let bind = |chunk: &[usize]| {
            let sql = if chunk.len() == ROWS_PER_INSERT {
                full_sql.as_str()
            } else {
                tail_sql.as_str()
            };
            let mut q = sqlx::query(sql);
            for &i in chunk {
                let r = &rows[i];
                let st = r.state.as_ref();
                q = q
                    .bind(id)
                    .bind(r.ladder)
                    .bind(r.customer_id)
                    .bind(r.level)
                    .bind(r.rule_level)
                    .bind(r.score)
                    .bind(r.rank)
                    .bind(r.value)
                    .bind(r.activity)
                    .bind(st.map(|s| s.level))
                    .bind(st.map(|s| s.since.to_string()))
                    .bind(st.map(|s| s.last_qualified.to_string()))
                    .bind(st.map(|s| i64::from(s.below_runs)))
                    .bind(st.and_then(|s| s.below_since).map(|d| d.to_string()))
                    .bind(st.map(|s| i64::from(s.above_runs)))
                    .bind(r.explanation);
            }
            q
        };
        // The database executes one batch while the next one's values are bound here: on
        // SQLite the statement runs on sqlx's worker thread, so the two overlap.
        let mut chunks = order.chunks(ROWS_PER_INSERT);
        let mut next = chunks.next().map(|chunk| (chunk.len(), bind(chunk)));
        let mut written = 0;
        while let Some((len, q)) = next.take() {
            let upcoming = chunks.next();
            let (done, built) = futures_util::future::join(q.execute(&mut *tx), async {
                upcoming.map(|chunk| (chunk.len(), bind(chunk)))
            })
            .await;
            done?;
            next = built;
            written += len;
            tracing::debug!(run = id, rows = written, "recorded rows");
            progress(written);
        }
        for chunk in run.facts.chunks(ROWS_PER_INSERT) {
            let mut sql = String::from(
                "INSERT INTO customer_facts (customer_id, owner, tags, run_id) VALUES ",
            );
            for (i, _) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push(',');
                }
                match self.backend() {
                    Backend::Sqlite => sql.push_str("(?, ?, ?, ?)"),
                    Backend::Postgres => sql.push_str(&format!(
                        "(${}, ${}, ${}, ${})",
                        4 * i + 1,
                        4 * i + 2,
                        4 * i + 3,
                        4 * i + 4
                    )),
                }
            }
            sql.push_str(
                " ON CONFLICT (customer_id) DO UPDATE SET owner = excluded.owner, \
                 tags = excluded.tags, run_id = excluded.run_id",
            );
            let mut q = sqlx::query(&sql);
            for f in chunk {
                q = q.bind(&f.customer_id).bind(&f.owner).bind(&f.tags).bind(id);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
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

    /// The latest run of a policy dated strictly before `as_of`: the one a new run's holds
    /// continue from. Re-running a date therefore gives the same result.
    pub async fn previous_run(
        &self,
        policy_name: &str,
        as_of: NaiveDate,
    ) -> Result<Option<RunInfo>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE policy_name = $1 AND as_of < $2 \
             ORDER BY as_of DESC, id DESC LIMIT 1"
        ))
        .bind(policy_name)
        .bind(as_of.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(run_info).transpose()
    }

    /// Standings after a run: ladder → customer → state.
    pub async fn states(
        &self,
        run_id: i64,
    ) -> Result<HashMap<String, HashMap<String, PriorState>>, StoreError> {
        // One JSON document instead of a million rows: decoding rows one by one through
        // sqlx cost ten times more than the query.
        let sql = match self.backend() {
            Backend::Sqlite => {
                "SELECT json_group_array(json_array(ladder, customer_id, held_level, since, \
                 last_qualified, below_runs, below_since, above_runs)) FROM assignments \
                 WHERE run_id = ?1 AND held_level IS NOT NULL"
            }
            Backend::Postgres => {
                "SELECT CAST(coalesce(json_agg(json_build_array(ladder, customer_id, held_level, \
                 since, last_qualified, below_runs, below_since, above_runs)), '[]') AS TEXT) \
                 FROM assignments WHERE run_id = $1 AND held_level IS NOT NULL"
            }
        };
        let doc: Option<String> = sqlx::query_scalar(sql)
            .bind(run_id)
            .fetch_one(self.pool())
            .await?;
        type Raw = (
            String,
            String,
            String,
            String,
            String,
            Option<u32>,
            Option<String>,
            Option<u32>,
        );
        let raw: Vec<Raw> = serde_json::from_str(doc.as_deref().unwrap_or("[]"))
            .map_err(|e| StoreError::Invalid(format!("stored standings of run {run_id}: {e}")))?;
        let mut out: HashMap<String, HashMap<String, PriorState>> = HashMap::new();
        for (ladder, customer, held_level, since, last_qualified, below, below_since, above) in raw
        {
            let state = PriorState {
                level: held_level,
                since: date(&since, "since")?,
                last_qualified: date(&last_qualified, "last_qualified")?,
                below_runs: below.unwrap_or(0),
                below_since: opt_date(below_since, "below_since")?,
                above_runs: above.unwrap_or(0),
            };
            out.entry(ladder).or_default().insert(customer, state);
        }
        Ok(out)
    }

    /// Every customer's level on every ladder of a run: (ladder, customer, level).
    pub async fn levels(&self, run_id: i64) -> Result<Vec<(String, String, String)>, StoreError> {
        let rows =
            sqlx::query("SELECT ladder, customer_id, level FROM assignments WHERE run_id = $1")
                .bind(run_id)
                .fetch_all(self.pool())
                .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("ladder")?,
                    r.try_get("customer_id")?,
                    r.try_get("level")?,
                ))
            })
            .collect()
    }

    /// A customer's level on every ladder at every run, oldest first.
    pub async fn history(&self, customer_id: &str) -> Result<Vec<HistoryRow>, StoreError> {
        // CROSS JOIN fixes SQLite's join order (runs, their ladders, then one primary-key
        // probe each); left to itself it scanned every assignment (0.1 s per million rows).
        // PostgreSQL plans it as the inner join it is.
        let rows = sqlx::query(
            "SELECT a.run_id, r.as_of, r.policy_name, a.ladder, a.level, a.rule_level, a.score, \
             a.rank, a.explanation FROM runs r CROSS JOIN run_ladders l CROSS JOIN assignments a \
             WHERE l.run_id = r.id AND a.run_id = l.run_id AND a.ladder = l.ladder \
             AND a.customer_id = $1 ORDER BY a.ladder, r.as_of, a.run_id",
        )
        .bind(customer_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(HistoryRow {
                    run_id: row.try_get("run_id")?,
                    as_of: date(&row.try_get::<String, _>("as_of")?, "as_of")?,
                    policy_name: row.try_get("policy_name")?,
                    ladder: row.try_get("ladder")?,
                    level: row.try_get("level")?,
                    rule_level: row.try_get("rule_level")?,
                    score: row.try_get("score")?,
                    rank: row.try_get("rank")?,
                    explanation: row.try_get("explanation")?,
                })
            })
            .collect()
    }

    /// From-level × to-level counts between two runs, per ladder, with the later run's value.
    /// Customers only in one run appear with `None` on the other side.
    pub async fn migration_matrix(
        &self,
        from_run: i64,
        to_run: i64,
    ) -> Result<Vec<MatrixCell>, StoreError> {
        let both = sqlx::query(
            "SELECT b.ladder, a.level AS from_level, b.level AS to_level, count(*) AS customers, \
             sum(b.value) AS value FROM assignments b JOIN assignments a \
             ON a.run_id = $1 AND a.ladder = b.ladder AND a.customer_id = b.customer_id \
             WHERE b.run_id = $2 GROUP BY b.ladder, a.level, b.level",
        )
        .bind(from_run)
        .bind(to_run)
        .fetch_all(self.pool())
        .await?;
        let only = |run: i64, other: i64| {
            sqlx::query(
                "SELECT x.ladder, x.level, count(*) AS customers, sum(x.value) AS value \
                 FROM assignments x WHERE x.run_id = $1 AND NOT EXISTS (SELECT 1 FROM \
                 assignments y WHERE y.run_id = $2 AND y.ladder = x.ladder \
                 AND y.customer_id = x.customer_id) GROUP BY x.ladder, x.level",
            )
            .bind(run)
            .bind(other)
            .fetch_all(self.pool())
        };
        let arrived = only(to_run, from_run).await?;
        let left = only(from_run, to_run).await?;
        let mut out = Vec::new();
        for row in &both {
            out.push(MatrixCell {
                ladder: row.try_get("ladder")?,
                from_level: Some(row.try_get("from_level")?),
                to_level: Some(row.try_get("to_level")?),
                customers: row.try_get("customers")?,
                value: row.try_get::<Option<f64>, _>("value")?.unwrap_or(0.0),
            });
        }
        for (rows, arrived) in [(&arrived, true), (&left, false)] {
            for row in rows {
                let level: String = row.try_get("level")?;
                out.push(MatrixCell {
                    ladder: row.try_get("ladder")?,
                    from_level: (!arrived).then(|| level.clone()),
                    to_level: arrived.then_some(level),
                    customers: row.try_get("customers")?,
                    value: if arrived {
                        row.try_get::<Option<f64>, _>("value")?.unwrap_or(0.0)
                    } else {
                        0.0
                    },
                });
            }
        }
        Ok(out)
    }

    /// Customers whose level differs between two runs, per ladder, by customer id.
    pub async fn moves(&self, from_run: i64, to_run: i64) -> Result<Vec<Move>, StoreError> {
        let rows = sqlx::query(
            "SELECT b.ladder, b.customer_id, a.level AS from_level, b.level AS to_level, \
             b.value, b.explanation FROM assignments b JOIN assignments a \
             ON a.run_id = $1 AND a.ladder = b.ladder AND a.customer_id = b.customer_id \
             WHERE b.run_id = $2 AND a.level <> b.level ORDER BY b.ladder, b.customer_id",
        )
        .bind(from_run)
        .bind(to_run)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Move {
                    ladder: row.try_get("ladder")?,
                    customer_id: row.try_get("customer_id")?,
                    from_level: row.try_get("from_level")?,
                    to_level: row.try_get("to_level")?,
                    value: row.try_get("value")?,
                    explanation: row.try_get("explanation")?,
                })
            })
            .collect()
    }

    /// Counts, value, active and repeat customers per level of one run.
    pub async fn level_stats(&self, run_id: i64) -> Result<Vec<LevelStat>, StoreError> {
        let rows = sqlx::query(
            "SELECT ladder, level, count(*) AS customers, sum(value) AS value, \
             count(*) FILTER (WHERE activity > 0) AS active, \
             count(*) FILTER (WHERE activity >= 2) AS repeaters \
             FROM assignments WHERE run_id = $1 GROUP BY ladder, level",
        )
        .bind(run_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(LevelStat {
                    ladder: row.try_get("ladder")?,
                    level: row.try_get("level")?,
                    customers: row.try_get("customers")?,
                    value: row.try_get::<Option<f64>, _>("value")?.unwrap_or(0.0),
                    active: row.try_get("active")?,
                    repeat: row.try_get("repeaters")?,
                })
            })
            .collect()
    }

    /// Per ladder and level at the earlier run: customers active then (activity > 0), and
    /// how many of them have no activity at the later run (churned).
    pub async fn churn(
        &self,
        from_run: i64,
        to_run: i64,
    ) -> Result<Vec<(String, String, i64, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT a.ladder, a.level, count(*) AS active, \
             count(*) FILTER (WHERE b.activity IS NULL OR b.activity <= 0) AS churned \
             FROM assignments a LEFT JOIN assignments b ON b.run_id = $2 \
             AND b.ladder = a.ladder AND b.customer_id = a.customer_id \
             WHERE a.run_id = $1 AND a.activity > 0 GROUP BY a.ladder, a.level",
        )
        .bind(from_run)
        .bind(to_run)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("ladder")?,
                    row.try_get("level")?,
                    row.try_get("active")?,
                    row.try_get("churned")?,
                ))
            })
            .collect()
    }
}
