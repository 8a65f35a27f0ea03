//! The data conversions of two migrations, which only `migrate` calls: histories recorded
//! one row per customer (the `assignments` table of schema 4) moved into chunks run by run,
//! before migration 6; customer facts upserted one row per customer (`customer_facts`,
//! schemas 4–11) moved into fact chunks policy by policy, before migration 12.

use sqlx::Row;
use stratum_core::PriorState;

use crate::chunks::AssignmentRow;
use crate::history::{date, opt_date};
use crate::{CustomerFacts, Store, StoreError};

impl Store {
    /// Moves the rows of the `assignments` table (schema before migration 5) into chunks,
    /// one transaction per run, so an interrupted conversion resumes where it stopped.
    pub(crate) async fn convert_row_assignments(&self) -> Result<(), StoreError> {
        let runs: Vec<i64> =
            sqlx::query_scalar("SELECT DISTINCT run_id FROM assignments ORDER BY run_id")
                .fetch_all(self.pool())
                .await?;
        for run_id in runs {
            let mut tx = self.pool().begin().await?;
            let stored = sqlx::query(
                "SELECT ladder, customer_id, level, rule_level, score, rank, value, activity, \
                 held_level, since, last_qualified, below_runs, below_since, above_runs, \
                 explanation FROM assignments WHERE run_id = $1",
            )
            .bind(run_id)
            .fetch_all(&mut *tx)
            .await?;
            struct Owned {
                ladder: String,
                customer_id: String,
                level: String,
                rule_level: String,
                score: Option<f64>,
                rank: Option<i64>,
                value: Option<f64>,
                activity: Option<f64>,
                state: Option<PriorState>,
                explanation: String,
            }
            let mut owned = Vec::with_capacity(stored.len());
            for row in &stored {
                let held: Option<String> = row.try_get("held_level")?;
                let state = match held {
                    None => None,
                    Some(level) => Some(PriorState {
                        level,
                        since: date(&row.try_get::<String, _>("since")?, "since")?,
                        last_qualified: date(
                            &row.try_get::<String, _>("last_qualified")?,
                            "last_qualified",
                        )?,
                        below_runs: row.try_get::<Option<i64>, _>("below_runs")?.unwrap_or(0)
                            as u32,
                        below_since: opt_date(row.try_get("below_since")?, "below_since")?,
                        above_runs: row.try_get::<Option<i64>, _>("above_runs")?.unwrap_or(0)
                            as u32,
                    }),
                };
                owned.push(Owned {
                    ladder: row.try_get("ladder")?,
                    customer_id: row.try_get("customer_id")?,
                    level: row.try_get("level")?,
                    rule_level: row.try_get("rule_level")?,
                    score: row.try_get("score")?,
                    rank: row.try_get("rank")?,
                    value: row.try_get("value")?,
                    activity: row.try_get("activity")?,
                    state,
                    explanation: row.try_get("explanation")?,
                });
            }
            let mut rows: Vec<AssignmentRow> = owned
                .iter()
                .map(|o| AssignmentRow {
                    ladder: &o.ladder,
                    customer_id: &o.customer_id,
                    level: &o.level,
                    rule_level: &o.rule_level,
                    score: o.score,
                    rank: o.rank,
                    value: o.value,
                    activity: o.activity,
                    state: o.state.as_ref().map(|s| s.with_level(s.level.as_str())),
                    explanation: &o.explanation,
                })
                .collect();
            rows.sort_unstable_by(|a, b| (a.ladder, a.customer_id).cmp(&(b.ladder, b.customer_id)));
            let converted = rows.len();
            // The run's ladders are in run_ladders already (migration 3).
            self.write_chunks(&mut tx, run_id, rows.into_iter(), &mut |_| {})
                .await?;
            sqlx::query("DELETE FROM assignments WHERE run_id = $1")
                .bind(run_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            tracing::info!(
                run = run_id,
                rows = converted,
                "converted a run's rows to chunks"
            );
        }
        Ok(())
    }

    /// Copies the rows of `customer_facts` (schemas before migration 12) into fact chunks of
    /// each policy's latest run, one transaction per policy; a policy whose run has chunks
    /// already was copied by an interrupted conversion and is skipped. Migration 12 then
    /// drops the table (dropping is quicker than deleting a million rows). Facts of a policy
    /// with no run left could not be served and are dropped, with a warning.
    pub(crate) async fn convert_row_facts(&self) -> Result<(), StoreError> {
        let policies: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT policy_name FROM customer_facts ORDER BY policy_name",
        )
        .fetch_all(self.pool())
        .await?;
        for policy in policies {
            let mut tx = self.pool().begin().await?;
            let run: Option<i64> =
                sqlx::query_scalar("SELECT max(id) FROM runs WHERE policy_name = $1")
                    .bind(&policy)
                    .fetch_one(&mut *tx)
                    .await?;
            if let Some(run) = run {
                let copied: i64 =
                    sqlx::query_scalar("SELECT count(*) FROM fact_chunks WHERE run_id = $1")
                        .bind(run)
                        .fetch_one(&mut *tx)
                        .await?;
                if copied > 0 {
                    continue;
                }
            }
            let stored = sqlx::query(
                "SELECT customer_id, owner, tags FROM customer_facts WHERE policy_name = $1",
            )
            .bind(&policy)
            .fetch_all(&mut *tx)
            .await?;
            let facts = stored
                .iter()
                .map(|row| {
                    Ok(CustomerFacts {
                        customer_id: row.try_get("customer_id")?,
                        owner: row.try_get("owner")?,
                        tags: row.try_get("tags")?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            match run {
                Some(run) => {
                    let chunks = crate::fact_chunks::encode(&facts)?;
                    crate::chunks::insert_blobs(&mut tx, "fact_chunks", "facts", run, chunks)
                        .await?;
                    tracing::info!(
                        policy,
                        run,
                        customers = facts.len(),
                        "moved customer facts to chunks"
                    );
                }
                None => tracing::warn!(
                    policy,
                    customers = facts.len(),
                    "dropped the customer facts of a policy with no run left"
                ),
            }
            tx.commit().await?;
        }
        Ok(())
    }
}
