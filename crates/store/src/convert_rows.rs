//! Migration 5's data conversion: histories recorded one row per customer (the
//! `assignments` table of schema 4) moved into chunks, run by run. Only `migrate` calls it.

use sqlx::Row;
use stratum_core::PriorState;

use crate::chunks::AssignmentRow;
use crate::history::{date, opt_date};
use crate::{Store, StoreError};

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
            let rows: Vec<AssignmentRow> = owned
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
            self.write_chunks(&mut tx, run_id, &rows, &mut |_| {})
                .await?;
            sqlx::query("DELETE FROM assignments WHERE run_id = $1")
                .bind(run_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            tracing::info!(
                run = run_id,
                rows = rows.len(),
                "converted a run's rows to chunks"
            );
        }
        Ok(())
    }
}
