//! What people enter between runs: level overrides (pin, floor or ceiling, with an expiry and
//! a reason), manual scorecard inputs and tags such as `blacklist`. Every change is written
//! together with its audit-log line, in one transaction.

use chrono::NaiveDate;
use sqlx::Row;
use stratum_core::OverrideMode;

use crate::{Actor, Store, StoreError, now};

/// An override to add.
#[derive(Debug, Clone)]
pub struct NewOverride {
    pub customer_id: String,
    pub ladder: String,
    pub level: String,
    pub mode: OverrideMode,
    pub reason: String,
    /// Last day it applies (inclusive); `None`: until removed.
    pub until: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OverrideRow {
    pub id: i64,
    pub customer_id: String,
    pub ladder: String,
    pub level: String,
    pub mode: OverrideMode,
    pub reason: String,
    pub until: Option<NaiveDate>,
    pub created_by: String,
    pub created_at: String,
    pub removed_by: Option<String>,
    pub removed_at: Option<String>,
}

impl OverrideRow {
    /// Applies to a run dated `as_of`: not removed and not past its last day.
    pub fn active_on(&self, as_of: NaiveDate) -> bool {
        self.removed_at.is_none() && self.until.is_none_or(|u| as_of <= u)
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct InputRow {
    pub customer_id: String,
    pub field: String,
    pub value: String,
    pub reason: String,
    pub updated_by: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TagRow {
    pub customer_id: String,
    pub tag: String,
    pub reason: String,
    pub added_by: String,
    pub added_at: String,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AuditRow {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub origin: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
}

/// What to narrow the audit log to: who, which subject (a customer id, a run number, a user
/// name), which action (`override.add`, or `override` for every override action), and the
/// days (inclusive, UTC).
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub subject: Option<String>,
    pub action: Option<String>,
    pub since: Option<NaiveDate>,
    pub until: Option<NaiveDate>,
}

/// What `remove_keyed` deletes.
#[derive(Debug, Clone, Copy)]
enum Keyed {
    Input,
    Tag,
}

fn nonempty(what: &str, v: &str) -> Result<(), StoreError> {
    if v.trim().is_empty() {
        Err(StoreError::Invalid(format!("{what} must not be empty")))
    } else {
        Ok(())
    }
}

impl Store {
    pub async fn add_override(&self, o: &NewOverride, actor: &Actor) -> Result<i64, StoreError> {
        nonempty("customer id", &o.customer_id)?;
        nonempty("reason", &o.reason)?;
        let mut tx = self.pool().begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO overrides (customer_id, ladder, level, mode, reason, until, created_by, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(&o.customer_id)
        .bind(&o.ladder)
        .bind(&o.level)
        .bind(o.mode.as_str())
        .bind(&o.reason)
        .bind(o.until.map(|d| d.to_string()))
        .bind(&actor.name)
        .bind(now())
        .fetch_one(&mut *tx)
        .await?;
        let until = o
            .until
            .map_or("no expiry".to_string(), |d| format!("until {d}"));
        self.audit(
            &mut tx,
            actor,
            "override.add",
            &o.customer_id,
            &format!(
                "#{id} {} {} on {} ({until}): {}",
                o.mode, o.level, o.ladder, o.reason
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Ends an override now; it stops applying at the next run. History keeps it.
    pub async fn remove_override(
        &self,
        id: i64,
        reason: &str,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        nonempty("reason", reason)?;
        let mut tx = self.pool().begin().await?;
        let customer: Option<String> = sqlx::query_scalar(
            "SELECT customer_id FROM overrides WHERE id = $1 AND removed_at IS NULL",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(customer) = customer else {
            return Err(StoreError::NotFound(format!(
                "no active override #{id} (see `stratum override list`)"
            )));
        };
        sqlx::query("UPDATE overrides SET removed_by = $1, removed_at = $2 WHERE id = $3")
            .bind(&actor.name)
            .bind(now())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        self.audit(
            &mut tx,
            actor,
            "override.remove",
            &customer,
            &format!("#{id}: {reason}"),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every override ever added, oldest first.
    pub async fn overrides(&self) -> Result<Vec<OverrideRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, customer_id, ladder, level, mode, reason, until, created_by, created_at, \
             removed_by, removed_at FROM overrides ORDER BY id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(OverrideRow {
                    id: r.try_get("id")?,
                    customer_id: r.try_get("customer_id")?,
                    ladder: r.try_get("ladder")?,
                    level: r.try_get("level")?,
                    mode: r
                        .try_get::<String, _>("mode")?
                        .parse()
                        .map_err(StoreError::Corrupt)?,
                    reason: r.try_get("reason")?,
                    until: r
                        .try_get::<Option<String>, _>("until")?
                        .map(|s| {
                            NaiveDate::parse_from_str(&s, "%Y-%m-%d").map_err(|_| {
                                StoreError::Corrupt(format!("stored date `{s}` is not a date"))
                            })
                        })
                        .transpose()?,
                    created_by: r.try_get("created_by")?,
                    created_at: r.try_get("created_at")?,
                    removed_by: r.try_get("removed_by")?,
                    removed_at: r.try_get("removed_at")?,
                })
            })
            .collect()
    }

    /// Sets a manual input (e.g. a scorecard's "relationship with top management" points).
    /// Returns whether anything changed: the value it already has is neither written nor
    /// audited.
    pub async fn set_input(
        &self,
        customer_id: &str,
        field: &str,
        value: &str,
        reason: &str,
        actor: &Actor,
    ) -> Result<bool, StoreError> {
        nonempty("customer id", customer_id)?;
        nonempty("field", field)?;
        nonempty("reason", reason)?;
        let mut tx = self.pool().begin().await?;
        let old: Option<String> = sqlx::query_scalar(
            "SELECT value FROM manual_inputs WHERE customer_id = $1 AND field = $2",
        )
        .bind(customer_id)
        .bind(field)
        .fetch_optional(&mut *tx)
        .await?;
        if old.as_deref() == Some(value) {
            // Nothing changes, so nothing is written or audited.
            return Ok(false);
        }
        sqlx::query("DELETE FROM manual_inputs WHERE customer_id = $1 AND field = $2")
            .bind(customer_id)
            .bind(field)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO manual_inputs (customer_id, field, value, reason, updated_by, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(customer_id)
        .bind(field)
        .bind(value)
        .bind(reason)
        .bind(&actor.name)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        let change = match old {
            Some(o) => format!("{field}: {o} -> {value}: {reason}"),
            None => format!("{field}: {value}: {reason}"),
        };
        self.audit(&mut tx, actor, "input.set", customer_id, &change)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn remove_input(
        &self,
        customer_id: &str,
        field: &str,
        reason: &str,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        self.remove_keyed(Keyed::Input, customer_id, field, reason, actor)
            .await
    }

    pub async fn inputs(&self) -> Result<Vec<InputRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT customer_id, field, value, reason, updated_by, updated_at FROM manual_inputs \
             ORDER BY customer_id, field",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(InputRow {
                    customer_id: r.try_get("customer_id")?,
                    field: r.try_get("field")?,
                    value: r.try_get("value")?,
                    reason: r.try_get("reason")?,
                    updated_by: r.try_get("updated_by")?,
                    updated_at: r.try_get("updated_at")?,
                })
            })
            .collect()
    }

    pub async fn add_tag(
        &self,
        customer_id: &str,
        tag: &str,
        reason: &str,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        nonempty("customer id", customer_id)?;
        nonempty("tag", tag)?;
        nonempty("reason", reason)?;
        let mut tx = self.pool().begin().await?;
        let exists: i64 =
            sqlx::query_scalar("SELECT count(*) FROM tags WHERE customer_id = $1 AND tag = $2")
                .bind(customer_id)
                .bind(tag)
                .fetch_one(&mut *tx)
                .await?;
        if exists > 0 {
            return Err(StoreError::Invalid(format!(
                "customer `{customer_id}` already has tag `{tag}`"
            )));
        }
        sqlx::query(
            "INSERT INTO tags (customer_id, tag, reason, added_by, added_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(customer_id)
        .bind(tag)
        .bind(reason)
        .bind(&actor.name)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        self.audit(
            &mut tx,
            actor,
            "tag.add",
            customer_id,
            &format!("{tag}: {reason}"),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn remove_tag(
        &self,
        customer_id: &str,
        tag: &str,
        reason: &str,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        self.remove_keyed(Keyed::Tag, customer_id, tag, reason, actor)
            .await
    }

    /// Deletes a customer's input field or tag, with its audit line, in one transaction.
    async fn remove_keyed(
        &self,
        what: Keyed,
        customer_id: &str,
        name: &str,
        reason: &str,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        nonempty("reason", reason)?;
        let (sql, noun, action) = match what {
            Keyed::Input => (
                "DELETE FROM manual_inputs WHERE customer_id = $1 AND field = $2",
                "input",
                "input.remove",
            ),
            Keyed::Tag => (
                "DELETE FROM tags WHERE customer_id = $1 AND tag = $2",
                "tag",
                "tag.remove",
            ),
        };
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(sql)
            .bind(customer_id)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "customer `{customer_id}` has no {noun} `{name}`"
            )));
        }
        self.audit(
            &mut tx,
            actor,
            action,
            customer_id,
            &format!("{name}: {reason}"),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn tags(&self) -> Result<Vec<TagRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT customer_id, tag, reason, added_by, added_at FROM tags ORDER BY customer_id, tag",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TagRow {
                    customer_id: r.try_get("customer_id")?,
                    tag: r.try_get("tag")?,
                    reason: r.try_get("reason")?,
                    added_by: r.try_get("added_by")?,
                    added_at: r.try_get("added_at")?,
                })
            })
            .collect()
    }

    /// The audit log, newest first.
    pub async fn audit_log(&self, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
        self.audit_search(&AuditFilter::default(), limit).await
    }

    /// The audit log, newest first, narrowed by `filter` (each field that is set must match).
    pub async fn audit_search(
        &self,
        filter: &AuditFilter,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        let mut conditions = Vec::new();
        let mut values: Vec<String> = Vec::new();
        // Each `?` of `sql` takes the next of `given`, numbered after those before.
        let mut add_all = |sql: &str, given: Vec<String>| {
            let mut numbered = String::new();
            for (i, part) in sql.split('?').enumerate() {
                if i > 0 {
                    numbered.push_str(&format!("${}", values.len() + i));
                }
                numbered.push_str(part);
            }
            values.extend(given);
            conditions.push(numbered);
        };
        if let Some(v) = &filter.actor {
            add_all("actor = ?", vec![v.clone()]);
        }
        if let Some(v) = &filter.subject {
            add_all("subject = ?", vec![v.clone()]);
        }
        if let Some(v) = &filter.action {
            // `override` matches override.add and override.remove; `login` also login itself.
            if v.contains('.') {
                add_all("action = ?", vec![v.clone()]);
            } else {
                add_all(
                    "(action = ? OR action LIKE ?)",
                    vec![v.clone(), format!("{v}.%")],
                );
            }
        }
        if let Some(d) = filter.since {
            add_all("at >= ?", vec![d.to_string()]);
        }
        if let Some(d) = filter.until {
            add_all("at < ?", vec![(d + chrono::Days::new(1)).to_string()]);
        }
        let mut sql =
            String::from("SELECT id, at, actor, origin, action, subject, detail FROM audit_log");
        if !conditions.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conditions.join(" AND "));
        }
        sql.push_str(&format!(" ORDER BY id DESC LIMIT ${}", values.len() + 1));
        let mut query = sqlx::query(&sql);
        for v in &values {
            query = query.bind(v);
        }
        let rows = query.bind(limit).fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                Ok(AuditRow {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    actor: r.try_get("actor")?,
                    origin: r.try_get("origin")?,
                    action: r.try_get("action")?,
                    subject: r.try_get("subject")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }
}
