//! Who works which customer, as decided rather than as the data says: the dedicated
//! managers `stratum assign` applied (overriding the owner a run recorded), and every change
//! of a prospect's rep (an assignment, or an overdue follow-up handed on from the pool).

use chrono::NaiveDate;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Actor, Store, StoreError};

/// A customer's dedicated manager under a policy.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ManagerAssignment {
    pub customer_id: String,
    pub manager: String,
    pub since: NaiveDate,
    pub reason: String,
    pub assigned_by: String,
}

/// A prospect handed from one rep to another.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RepChange {
    pub customer_id: String,
    pub from_rep: String,
    pub to_rep: String,
    pub on_date: NaiveDate,
    pub changed_by: String,
    pub reason: String,
}

/// A customer to hand to a manager or rep, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Handover {
    pub customer_id: String,
    pub to: String,
    pub reason: String,
}

/// What applying assignments changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct AppliedAssignments {
    /// Customers whose manager is new or changed.
    pub assigned: usize,
    /// Customers no longer on the levels assigned: their managers are released.
    pub released: usize,
    /// Prospects in the pipeline handed to their new manager.
    pub prospects_moved: usize,
}

fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn parse_day(text: String, column: &str) -> Result<NaiveDate, StoreError> {
    NaiveDate::parse_from_str(&text, "%Y-%m-%d")
        .map_err(|_| StoreError::Corrupt(format!("{column} `{text}` is not a date")))
}

fn rep_change(r: &AnyRow) -> Result<RepChange, StoreError> {
    Ok(RepChange {
        customer_id: r.try_get("customer_id")?,
        from_rep: r.try_get("from_rep")?,
        to_rep: r.try_get("to_rep")?,
        on_date: parse_day(r.try_get("on_date")?, "on_date")?,
        changed_by: r.try_get("changed_by")?,
        reason: r.try_get("reason")?,
    })
}

impl Store {
    /// The policy's dedicated managers, by customer id.
    pub async fn manager_assignments(
        &self,
        policy_name: &str,
    ) -> Result<Vec<ManagerAssignment>, StoreError> {
        let rows = sqlx::query(
            "SELECT customer_id, manager, since, reason, assigned_by FROM manager_assignments \
             WHERE policy_name = $1 ORDER BY customer_id",
        )
        .bind(policy_name)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ManagerAssignment {
                    customer_id: r.try_get("customer_id")?,
                    manager: r.try_get("manager")?,
                    since: parse_day(r.try_get("since")?, "since")?,
                    reason: r.try_get("reason")?,
                    assigned_by: r.try_get("assigned_by")?,
                })
            })
            .collect()
    }

    /// Makes `set` the policy's assignments, in one transaction: a customer whose manager
    /// is new or changed gets it from `on` with the reason given; a customer no longer in
    /// `set` is released (its owner is again the one its run recorded); a prospect whose
    /// rep is not its new manager is handed over (a rep change). Audited as
    /// `assignment.apply`.
    pub async fn apply_assignments(
        &self,
        policy_name: &str,
        set: &[Handover],
        on: NaiveDate,
        actor: &Actor,
    ) -> Result<AppliedAssignments, StoreError> {
        let before: std::collections::HashMap<String, String> = self
            .manager_assignments(policy_name)
            .await?
            .into_iter()
            .map(|a| (a.customer_id, a.manager))
            .collect();
        let named: std::collections::HashSet<&str> =
            set.iter().map(|h| h.customer_id.as_str()).collect();
        let mut out = AppliedAssignments::default();
        let mut tx = self.pool().begin().await?;
        for (customer, _) in before.iter().filter(|(c, _)| !named.contains(c.as_str())) {
            sqlx::query(
                "DELETE FROM manager_assignments WHERE policy_name = $1 AND customer_id = $2",
            )
            .bind(policy_name)
            .bind(customer)
            .execute(&mut *tx)
            .await?;
            out.released += 1;
        }
        let changed: Vec<&Handover> = set
            .iter()
            .filter(|h| before.get(&h.customer_id) != Some(&h.to))
            .collect();
        for h in &changed {
            sqlx::query(
                "DELETE FROM manager_assignments WHERE policy_name = $1 AND customer_id = $2",
            )
            .bind(policy_name)
            .bind(&h.customer_id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO manager_assignments (policy_name, customer_id, manager, since, \
                 reason, assigned_by) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(policy_name)
            .bind(&h.customer_id)
            .bind(&h.to)
            .bind(day(on))
            .bind(&h.reason)
            .bind(&actor.name)
            .execute(&mut *tx)
            .await?;
            out.assigned += 1;
        }
        out.prospects_moved = self.hand_in(&mut tx, set, on, actor).await?;
        let detail = format!(
            "{} assigned, {} released, {} prospects handed over",
            out.assigned, out.released, out.prospects_moved
        );
        self.audit(&mut tx, actor, "assignment.apply", policy_name, &detail)
            .await?;
        tx.commit().await?;
        Ok(out)
    }

    /// Hands prospects to other reps (an overdue follow-up returned to the pool and given
    /// to the rep with room), in one transaction, each a rep change and due with its new
    /// rep that day; audited as
    /// `prospect.handover`. Customers not in the pipeline, or already with that rep, are
    /// left alone. The number handed over.
    pub async fn hand_prospects(
        &self,
        moves: &[Handover],
        on: NaiveDate,
        actor: &Actor,
    ) -> Result<usize, StoreError> {
        let mut tx = self.pool().begin().await?;
        let moved = self.hand_in(&mut tx, moves, on, actor).await?;
        let detail = format!("{moved} prospects handed over");
        self.audit(&mut tx, actor, "prospect.handover", "pipeline", &detail)
            .await?;
        tx.commit().await?;
        Ok(moved)
    }

    async fn hand_in(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        moves: &[Handover],
        on: NaiveDate,
        actor: &Actor,
    ) -> Result<usize, StoreError> {
        let reps: std::collections::HashMap<String, String> = self
            .prospects()
            .await?
            .into_iter()
            .map(|p| (p.customer_id, p.rep))
            .collect();
        let mut moved = 0;
        for h in moves {
            let Some(from) = reps.get(&h.customer_id).filter(|r| **r != h.to) else {
                continue;
            };
            // Due with the new rep on the day it is handed over, not overdue from before.
            sqlx::query(
                "UPDATE prospects SET rep = $1, next_contact = $2, updated_at = $3 \
                 WHERE customer_id = $4",
            )
            .bind(&h.to)
            .bind(day(on))
            .bind(crate::now())
            .bind(&h.customer_id)
            .execute(&mut **tx)
            .await?;
            sqlx::query(
                "INSERT INTO rep_changes (customer_id, from_rep, to_rep, on_date, changed_by, \
                 reason) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&h.customer_id)
            .bind(from)
            .bind(&h.to)
            .bind(day(on))
            .bind(&actor.name)
            .bind(&h.reason)
            .execute(&mut **tx)
            .await?;
            moved += 1;
        }
        Ok(moved)
    }

    /// Which assignments a policy has: the last `assignment.apply` (none before the first),
    /// so what serves owners from memory knows when to read them again.
    pub async fn assignments_version(&self, policy_name: &str) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT max(id) FROM audit_log WHERE action = 'assignment.apply' AND subject = $1",
        )
        .bind(policy_name)
        .fetch_one(self.pool())
        .await?)
    }

    /// A customer's rep changes, oldest first.
    pub async fn rep_changes_of(&self, customer_id: &str) -> Result<Vec<RepChange>, StoreError> {
        let rows = sqlx::query("SELECT * FROM rep_changes WHERE customer_id = $1 ORDER BY id")
            .bind(customer_id)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(rep_change).collect()
    }
}
