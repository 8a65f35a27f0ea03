//! The sales pipeline's state: each prospect's rep, class and contact dates, every logged
//! interaction, every class change. Logging an interaction moves the prospect in one
//! transaction: last contact, the next date the rep set, the intent, and the class (a
//! change recorded with who, when, from, to and why), audited.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;
use stratum_core::pipeline::{Channel, Intent, Outcome};

use crate::{Actor, Backend, Store, StoreError};

/// A prospect as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ProspectRow {
    pub customer_id: String,
    pub rep: String,
    pub class: String,
    pub class_since: NaiveDate,
    pub last_contact: Option<NaiveDate>,
    pub next_contact: Option<NaiveDate>,
    #[serde(serialize_with = "as_words")]
    pub intent: Option<Intent>,
    pub updated_at: String,
}

/// A contact to log.
#[derive(Debug, Clone, PartialEq)]
pub struct NewInteraction {
    pub customer_id: String,
    pub rep: String,
    /// The working day it counts for (in the team's time zone).
    pub on: NaiveDate,
    pub at: DateTime<Utc>,
    pub channel: Channel,
    pub outcome: Outcome,
    pub intent: Option<Intent>,
    /// The class the rep put the customer in (`None`: unchanged; required for a customer
    /// new to the pipeline).
    pub class: Option<String>,
    pub next_contact: Option<NaiveDate>,
    pub notes: String,
}

/// A logged contact.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct InteractionRow {
    pub id: i64,
    pub customer_id: String,
    pub rep: String,
    pub on_date: NaiveDate,
    pub at: String,
    pub channel: String,
    pub outcome: String,
    pub intent: Option<String>,
    pub class: Option<String>,
    pub next_contact: Option<NaiveDate>,
    pub notes: String,
    pub recorded_by: String,
}

/// A class change.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClassChangeRow {
    pub customer_id: String,
    pub from_class: Option<String>,
    pub to_class: String,
    pub on_date: NaiveDate,
    pub changed_by: String,
    pub reason: String,
}

fn as_words<S: serde::Serializer>(intent: &Option<Intent>, s: S) -> Result<S::Ok, S::Error> {
    match intent {
        Some(i) => s.serialize_str(i.as_str()),
        None => s.serialize_none(),
    }
}

fn date(text: Option<String>, column: &str) -> Result<Option<NaiveDate>, StoreError> {
    text.map(|t| {
        NaiveDate::parse_from_str(&t, "%Y-%m-%d")
            .map_err(|_| StoreError::Corrupt(format!("{column} `{t}` is not a date")))
    })
    .transpose()
}

/// `rows` groups of `width` placeholders: `($1, $2), ($3, $4)` on PostgreSQL, `(?, ?), (?, ?)`
/// on SQLite. SQLite looks a numbered parameter up by a linear scan of the statement's names,
/// once per bind, so thousands of `$N` in one statement cost quadratic time; anonymous `?`
/// are bound by position.
fn push_placeholders(sql: &mut String, backend: Backend, rows: usize, width: usize) {
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..width {
            if c > 0 {
                sql.push_str(", ");
            }
            match backend {
                Backend::Sqlite => sql.push('?'),
                Backend::Postgres => sql.push_str(&format!("${}", r * width + c + 1)),
            }
        }
        sql.push(')');
    }
}

/// One contact's eleven values, in the column order of every insert into `interactions`.
fn bind_interaction<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    new: &'q NewInteraction,
    actor: &'q Actor,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    q.bind(&new.customer_id)
        .bind(&new.rep)
        .bind(day(new.on))
        .bind(new.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .bind(new.channel.as_str())
        .bind(new.outcome.as_str())
        .bind(new.intent.map(Intent::as_str))
        .bind(new.class.as_deref())
        .bind(new.next_contact.map(day))
        .bind(&new.notes)
        .bind(&actor.name)
}

fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn prospect(r: &AnyRow) -> Result<ProspectRow, StoreError> {
    let intent: Option<String> = r.try_get("intent")?;
    Ok(ProspectRow {
        customer_id: r.try_get("customer_id")?,
        rep: r.try_get("rep")?,
        class: r.try_get("class")?,
        class_since: date(Some(r.try_get("class_since")?), "class_since")?
            .expect("a date was given"),
        last_contact: date(r.try_get("last_contact")?, "last_contact")?,
        next_contact: date(r.try_get("next_contact")?, "next_contact")?,
        intent: intent
            .map(|i| i.parse().map_err(StoreError::Corrupt))
            .transpose()?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn interaction(r: &AnyRow) -> Result<InteractionRow, StoreError> {
    Ok(InteractionRow {
        id: r.try_get("id")?,
        customer_id: r.try_get("customer_id")?,
        rep: r.try_get("rep")?,
        on_date: date(Some(r.try_get("on_date")?), "on_date")?.expect("a date was given"),
        at: r.try_get("at")?,
        channel: r.try_get("channel")?,
        outcome: r.try_get("outcome")?,
        intent: r.try_get("intent")?,
        class: r.try_get("class")?,
        next_contact: date(r.try_get("next_contact")?, "next_contact")?,
        notes: r.try_get("notes")?,
        recorded_by: r.try_get("recorded_by")?,
    })
}

fn class_change(r: &AnyRow) -> Result<ClassChangeRow, StoreError> {
    Ok(ClassChangeRow {
        customer_id: r.try_get("customer_id")?,
        from_class: r.try_get("from_class")?,
        to_class: r.try_get("to_class")?,
        on_date: date(Some(r.try_get("on_date")?), "on_date")?.expect("a date was given"),
        changed_by: r.try_get("changed_by")?,
        reason: r.try_get("reason")?,
    })
}

impl Store {
    /// Every prospect, by customer id. Read as one JSON document: decoding a hundred
    /// thousand rows one by one through sqlx costs ten times the query (a call list for a
    /// whole sales floor reads them all).
    pub async fn prospects(&self) -> Result<Vec<ProspectRow>, StoreError> {
        let query = match self.backend() {
            crate::Backend::Sqlite => {
                "SELECT json_group_array(json_array(customer_id, rep, class, class_since, \
                 last_contact, next_contact, intent, updated_at)) \
                 FROM (SELECT * FROM prospects ORDER BY customer_id)"
            }
            crate::Backend::Postgres => {
                "SELECT CAST(coalesce(json_agg(json_build_array(customer_id, rep, class, \
                 class_since, last_contact, next_contact, intent, updated_at) \
                 ORDER BY customer_id), '[]') AS TEXT) FROM prospects"
            }
        };
        let doc: Option<String> = sqlx::query_scalar(query).fetch_one(self.pool()).await?;
        type Row = (
            String,
            String,
            String,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            String,
        );
        let rows: Vec<Row> = serde_json::from_str(doc.as_deref().unwrap_or("[]"))
            .map_err(|e| StoreError::Corrupt(format!("stored prospects: {e}")))?;
        rows.into_iter()
            .map(
                |(customer_id, rep, class, since, last, next, intent, updated_at)| {
                    Ok(ProspectRow {
                        customer_id,
                        rep,
                        class,
                        class_since: date(Some(since), "class_since")?.expect("a date was given"),
                        last_contact: date(last, "last_contact")?,
                        next_contact: date(next, "next_contact")?,
                        intent: intent
                            .map(|i| i.parse().map_err(StoreError::Corrupt))
                            .transpose()?,
                        updated_at,
                    })
                },
            )
            .collect()
    }

    pub async fn prospect(&self, customer_id: &str) -> Result<Option<ProspectRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM prospects WHERE customer_id = $1")
            .bind(customer_id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(prospect).transpose()
    }

    /// Logs a contact and moves the prospect: its last contact, the next date the rep set
    /// (none: the class's cycle decides), the intent when given, the class when given (a
    /// change recorded). A customer new to the pipeline needs a class, and is the contact's
    /// rep's from then on; a later contact by someone else leaves it with its rep. Audited
    /// as `interaction.add`.
    pub async fn log_interaction(
        &self,
        new: &NewInteraction,
        actor: &Actor,
    ) -> Result<InteractionRow, StoreError> {
        let mut tx = self.pool().begin().await?;
        let row = self.log_in(&mut tx, new, actor).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Logs many contacts (an imported register) in one transaction: all or none, in the
    /// order given, each moving its prospect as [`Store::log_interaction`] does. Written in
    /// batches of rows (a statement per row would make a day's register of a hundred
    /// thousand contacts take minutes); audited once, as `interaction.import`, with the
    /// count. The number logged.
    pub async fn log_interactions(
        &self,
        all: &[NewInteraction],
        actor: &Actor,
    ) -> Result<usize, StoreError> {
        if all.is_empty() {
            return Ok(0);
        }
        let touched: std::collections::HashSet<&str> =
            all.iter().map(|n| n.customer_id.as_str()).collect();
        let mut state: std::collections::HashMap<String, ProspectRow> = self
            .prospects()
            .await?
            .into_iter()
            .filter(|p| touched.contains(p.customer_id.as_str()))
            .map(|p| (p.customer_id.clone(), p))
            .collect();
        let now = crate::now();
        let mut changes: Vec<ClassChangeRow> = Vec::new();
        for new in all {
            if let Some(next) = new.next_contact
                && next < new.on
            {
                return Err(StoreError::Invalid(format!(
                    "customer {}: the next contact ({next}) is before this one ({})",
                    new.customer_id, new.on
                )));
            }
            let before = state.get(&new.customer_id);
            let class = match (before, &new.class) {
                (_, Some(c)) => c.clone(),
                (Some(b), None) => b.class.clone(),
                (None, None) => {
                    return Err(StoreError::Invalid(format!(
                        "customer {} is new to the pipeline: give the class the contact put it in",
                        new.customer_id
                    )));
                }
            };
            let changed = before.is_none_or(|b| b.class != class);
            if changed {
                changes.push(ClassChangeRow {
                    customer_id: new.customer_id.clone(),
                    from_class: before.map(|b| b.class.clone()),
                    to_class: class.clone(),
                    on_date: new.on,
                    changed_by: actor.name.clone(),
                    reason: if new.notes.trim().is_empty() {
                        format!("{} {}", new.channel, new.outcome)
                    } else {
                        new.notes.clone()
                    },
                });
            }
            let next = ProspectRow {
                customer_id: new.customer_id.clone(),
                rep: before.map_or_else(|| new.rep.clone(), |b| b.rep.clone()),
                class_since: match before {
                    Some(b) if !changed => b.class_since,
                    _ => new.on,
                },
                class,
                last_contact: Some(
                    before
                        .and_then(|b| b.last_contact)
                        .map_or(new.on, |l| l.max(new.on)),
                ),
                next_contact: new.next_contact,
                intent: new.intent.or(before.and_then(|b| b.intent)),
                updated_at: now.clone(),
            };
            state.insert(new.customer_id.clone(), next);
        }
        let mut tx = self.pool().begin().await?;
        // 11 parameters a contact, well under SQLite's 32,766 and PostgreSQL's 65,535.
        for batch in all.chunks(500) {
            let mut sql = String::from(
                "INSERT INTO interactions (customer_id, rep, on_date, at, channel, outcome, \
                 intent, class, next_contact, notes, recorded_by) VALUES ",
            );
            push_placeholders(&mut sql, self.backend(), batch.len(), 11);
            let mut q = sqlx::query(&sql);
            for new in batch {
                q = bind_interaction(q, new, actor);
            }
            q.execute(&mut *tx).await?;
        }
        for batch in changes.chunks(1000) {
            let mut sql = String::from(
                "INSERT INTO class_changes (customer_id, from_class, to_class, on_date, \
                 changed_by, reason) VALUES ",
            );
            push_placeholders(&mut sql, self.backend(), batch.len(), 6);
            let mut q = sqlx::query(&sql);
            for c in batch {
                q = q
                    .bind(&c.customer_id)
                    .bind(c.from_class.as_deref())
                    .bind(&c.to_class)
                    .bind(day(c.on_date))
                    .bind(&c.changed_by)
                    .bind(&c.reason);
            }
            q.execute(&mut *tx).await?;
        }
        let moved: Vec<&ProspectRow> = state
            .values()
            .filter(|p| touched.contains(p.customer_id.as_str()))
            .collect();
        for batch in moved.chunks(1000) {
            let mut sql = String::from("DELETE FROM prospects WHERE customer_id IN ");
            push_placeholders(&mut sql, self.backend(), 1, batch.len());
            let mut q = sqlx::query(&sql);
            for p in batch {
                q = q.bind(&p.customer_id);
            }
            q.execute(&mut *tx).await?;
            let mut sql = String::from(
                "INSERT INTO prospects (customer_id, rep, class, class_since, last_contact, \
                 next_contact, intent, updated_at) VALUES ",
            );
            push_placeholders(&mut sql, self.backend(), batch.len(), 8);
            let mut q = sqlx::query(&sql);
            for p in batch {
                q = q
                    .bind(&p.customer_id)
                    .bind(&p.rep)
                    .bind(&p.class)
                    .bind(day(p.class_since))
                    .bind(p.last_contact.map(day))
                    .bind(p.next_contact.map(day))
                    .bind(p.intent.map(Intent::as_str))
                    .bind(&p.updated_at);
            }
            q.execute(&mut *tx).await?;
        }
        let detail = format!(
            "{} contacts of {} customers, {} class changes",
            all.len(),
            touched.len(),
            changes.len()
        );
        self.audit(&mut tx, actor, "interaction.import", "pipeline", &detail)
            .await?;
        tx.commit().await?;
        Ok(all.len())
    }

    async fn log_in(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        new: &NewInteraction,
        actor: &Actor,
    ) -> Result<InteractionRow, StoreError> {
        if let Some(next) = new.next_contact
            && next < new.on
        {
            return Err(StoreError::Invalid(format!(
                "the next contact ({next}) is before this one ({})",
                new.on
            )));
        }
        let before = sqlx::query("SELECT * FROM prospects WHERE customer_id = $1")
            .bind(&new.customer_id)
            .fetch_optional(&mut **tx)
            .await?;
        let before = before.as_ref().map(prospect).transpose()?;
        let class = match (&before, &new.class) {
            (_, Some(c)) => c.clone(),
            (Some(b), None) => b.class.clone(),
            (None, None) => {
                return Err(StoreError::Invalid(format!(
                    "customer {} is new to the pipeline: give the class the contact put it in",
                    new.customer_id
                )));
            }
        };
        let now = crate::now();
        let insert = sqlx::query(
            "INSERT INTO interactions (customer_id, rep, on_date, at, channel, outcome, intent, \
             class, next_contact, notes, recorded_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
        );
        let id: i64 = bind_interaction(insert, new, actor)
            .fetch_one(&mut **tx)
            .await?
            .try_get(0)?;
        let changed = before.as_ref().is_none_or(|b| b.class != class);
        let class_since = match &before {
            Some(b) if !changed => b.class_since,
            _ => new.on,
        };
        if changed {
            let reason = if new.notes.trim().is_empty() {
                format!("{} {}", new.channel, new.outcome)
            } else {
                new.notes.clone()
            };
            sqlx::query(
                "INSERT INTO class_changes (customer_id, from_class, to_class, on_date, \
                 changed_by, reason) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&new.customer_id)
            .bind(before.as_ref().map(|b| b.class.clone()))
            .bind(&class)
            .bind(day(new.on))
            .bind(&actor.name)
            .bind(reason)
            .execute(&mut **tx)
            .await?;
        }
        let intent = new.intent.or(before.as_ref().and_then(|b| b.intent));
        let last = before
            .as_ref()
            .and_then(|b| b.last_contact)
            .map_or(new.on, |l| l.max(new.on));
        sqlx::query("DELETE FROM prospects WHERE customer_id = $1")
            .bind(&new.customer_id)
            .execute(&mut **tx)
            .await?;
        sqlx::query(
            "INSERT INTO prospects (customer_id, rep, class, class_since, last_contact, \
             next_contact, intent, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&new.customer_id)
        // The prospect stays with its rep whoever made the contact (a walk-in met by a
        // colleague, a lead calling for the team); handovers change reps.
        .bind(before.as_ref().map_or(&new.rep, |b| &b.rep))
        .bind(&class)
        .bind(day(class_since))
        .bind(day(last))
        .bind(new.next_contact.map(day))
        .bind(intent.map(Intent::as_str))
        .bind(&now)
        .execute(&mut **tx)
        .await?;
        let detail = format!(
            "#{id} {} {}{}",
            new.channel,
            new.outcome,
            if changed {
                format!(
                    ", class {} → {class}",
                    before.as_ref().map_or("(new)", |b| b.class.as_str())
                )
            } else {
                String::new()
            }
        );
        self.audit(tx, actor, "interaction.add", &new.customer_id, &detail)
            .await?;
        let row = sqlx::query("SELECT * FROM interactions WHERE id = $1")
            .bind(id)
            .fetch_one(&mut **tx)
            .await?;
        interaction(&row)
    }

    /// A customer's interactions, the latest first.
    pub async fn interactions_of(
        &self,
        customer_id: &str,
    ) -> Result<Vec<InteractionRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM interactions WHERE customer_id = $1 ORDER BY at DESC, id DESC",
        )
        .bind(customer_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(interaction).collect()
    }

    /// The interactions logged for days `from` to `to` (inclusive), by rep, for reports.
    pub async fn interactions_between(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<InteractionRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM interactions WHERE on_date >= $1 AND on_date <= $2 \
             ORDER BY rep, on_date, id",
        )
        .bind(day(from))
        .bind(day(to))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(interaction).collect()
    }

    /// A customer's class changes, oldest first.
    pub async fn class_changes_of(
        &self,
        customer_id: &str,
    ) -> Result<Vec<ClassChangeRow>, StoreError> {
        let rows = sqlx::query("SELECT * FROM class_changes WHERE customer_id = $1 ORDER BY id")
            .bind(customer_id)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(class_change).collect()
    }

    /// Every class change, per customer in the order made.
    pub async fn all_class_changes(&self) -> Result<Vec<ClassChangeRow>, StoreError> {
        let rows = sqlx::query("SELECT * FROM class_changes ORDER BY customer_id, id")
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(class_change).collect()
    }
}
