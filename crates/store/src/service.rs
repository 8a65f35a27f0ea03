//! Service state: API users and hashed keys, the benefit redemption ledger (quota-safe under
//! concurrency, idempotent on retries), call-back tasks, customer owners, and lookups of a
//! customer's current levels in the latest run.
//!
//! A redemption's transaction first upserts the customer's `quota_locks` row: on PostgreSQL
//! that takes a row lock held to the commit, on SQLite the database write lock. Every other
//! redemption for the same customer and benefit waits there, then counts the ledger afresh,
//! so check-then-insert cannot over-redeem.

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::chunks::StandingsChunk;
use crate::{Actor, CustomerFacts, Store, StoreError, now};

pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A redemption to make.
#[derive(Debug, Clone)]
pub struct NewRedemption {
    pub customer_id: String,
    pub benefit: String,
    pub quantity: u32,
    /// The customer's level when redeeming (kept with the redemption).
    pub level: String,
    pub idempotency_key: Option<String>,
    pub at: DateTime<Utc>,
    /// The quota period containing `at`, as a half-open UTC interval.
    pub window: (DateTime<Utc>, DateTime<Utc>),
    /// `None`: unlimited.
    pub quota: Option<u32>,
    pub grant_hours: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RedemptionRow {
    pub id: i64,
    pub customer_id: String,
    pub benefit: String,
    pub quantity: i64,
    pub level: String,
    pub redeemed_at: String,
    /// End of a time-limited grant.
    pub expires_at: Option<String>,
    pub idempotency_key: Option<String>,
    /// "active" or "cancelled".
    pub status: String,
    pub created_by: String,
    pub cancelled_by: Option<String>,
    pub cancelled_at: Option<String>,
}

/// The result of a redemption.
#[derive(Debug, Clone, PartialEq)]
pub struct Redeemed {
    pub redemption: RedemptionRow,
    /// The same idempotency key was seen before: nothing new was written.
    pub replayed: bool,
    /// Units used in the period, this redemption included.
    pub used: u32,
    pub quota: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct UserRow {
    pub name: String,
    pub role: Role,
    pub created_by: String,
    pub created_at: String,
    pub disabled_at: Option<String>,
}

/// An API key as stored, with its user's role.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyRow {
    pub id: String,
    pub user_name: String,
    pub role: Role,
    pub secret_hash: String,
    /// Revoked, or its user disabled.
    pub usable: bool,
}

/// A key as `stratum key list` shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct KeyRow {
    pub id: String,
    pub user_name: String,
    pub created_by: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
    pub user_disabled: bool,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CallbackRow {
    pub id: i64,
    pub customer_id: String,
    pub level: String,
    pub missed_at: String,
    pub due_at: String,
    pub created_by: String,
    pub done_at: Option<String>,
    pub done_by: Option<String>,
}

/// A customer's level on one ladder in the latest run of a policy.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CurrentLevel {
    pub run_id: i64,
    pub as_of: String,
    pub ladder: String,
    pub level: String,
    /// Where the rules alone placed the customer, before holds and overrides.
    pub rule_level: String,
    pub score: Option<f64>,
    pub rank: Option<i64>,
    pub explanation: String,
}

/// A run's results in bulk ([`Store::run_standings`]).
#[derive(Debug, Clone)]
pub struct RunStandings {
    pub run: crate::RunInfo,
    pub rows: Vec<StandingRow>,
    /// (customer, owner) for customers with an owner.
    pub owners: Vec<(String, String)>,
    /// (customer, comma-separated tags) for customers with tags, as the run recorded them.
    pub tags: Vec<(String, String)>,
}

/// One customer on one ladder of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct StandingRow {
    pub ladder: String,
    pub customer_id: String,
    pub level: String,
    pub score: Option<f64>,
    pub rank: Option<i64>,
}

const REDEMPTION_COLUMNS: &str = "id, customer_id, benefit, quantity, level, redeemed_at, \
     expires_at, idempotency_key, status, created_by, cancelled_by, cancelled_at";

fn redemption(r: &AnyRow) -> Result<RedemptionRow, StoreError> {
    Ok(RedemptionRow {
        id: r.try_get("id")?,
        customer_id: r.try_get("customer_id")?,
        benefit: r.try_get("benefit")?,
        quantity: r.try_get("quantity")?,
        level: r.try_get("level")?,
        redeemed_at: r.try_get("redeemed_at")?,
        expires_at: r.try_get("expires_at")?,
        idempotency_key: r.try_get("idempotency_key")?,
        status: r.try_get("status")?,
        created_by: r.try_get("created_by")?,
        cancelled_by: r.try_get("cancelled_by")?,
        cancelled_at: r.try_get("cancelled_at")?,
    })
}

fn callback(r: &AnyRow) -> Result<CallbackRow, StoreError> {
    Ok(CallbackRow {
        id: r.try_get("id")?,
        customer_id: r.try_get("customer_id")?,
        level: r.try_get("level")?,
        missed_at: r.try_get("missed_at")?,
        due_at: r.try_get("due_at")?,
        created_by: r.try_get("created_by")?,
        done_at: r.try_get("done_at")?,
        done_by: r.try_get("done_by")?,
    })
}

/// Units of a benefit a customer used in a period (active redemptions only).
async fn used_in(
    conn: &mut sqlx::AnyConnection,
    customer_id: &str,
    benefit: &str,
    window: (DateTime<Utc>, DateTime<Utc>),
) -> Result<u32, StoreError> {
    let used: Option<i64> = sqlx::query_scalar(
        "SELECT CAST(sum(quantity) AS BIGINT) FROM redemptions WHERE customer_id = $1 \
         AND benefit = $2 AND status = 'active' AND redeemed_at >= $3 AND redeemed_at < $4",
    )
    .bind(customer_id)
    .bind(benefit)
    .bind(ts(window.0))
    .bind(ts(window.1))
    .fetch_one(conn)
    .await?;
    Ok(used.unwrap_or(0).max(0) as u32)
}

/// What a user may do; the one type for roles, from the store's column to the server's
/// route table and the CLI's flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Policy, overrides, users; everything else too.
    Admin,
    /// Reads everything; starts runs and simulates drafts.
    Analyst,
    /// Reads and redeems for the customers it owns.
    Agent,
    /// Lookups and redemptions for any customer (a machine client).
    Service,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::Analyst, Role::Agent, Role::Service];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Analyst => "analyst",
            Role::Agent => "agent",
            Role::Service => "service",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
                format!("unknown role `{s}`: use one of {}", names.join(", "))
            })
    }
}

/// A role read back from the database.
pub(crate) fn stored_role(r: &sqlx::any::AnyRow) -> Result<Role, StoreError> {
    let text: String = r.try_get("role")?;
    text.parse()
        .map_err(|e| StoreError::Corrupt(format!("users.role: {e}")))
}

impl Store {
    /// Redeems `quantity` units of a benefit, or refuses with `QuotaExceeded` and writes
    /// nothing. A request carrying an idempotency key seen before returns the first result
    /// (`replayed`) when it asks for the same thing, and `IdempotencyConflict` otherwise.
    pub async fn redeem(&self, r: &NewRedemption, actor: &Actor) -> Result<Redeemed, StoreError> {
        if r.quantity == 0 {
            return Err(StoreError::Invalid("quantity must be at least 1".into()));
        }
        let request = format!("{}|{}|{}", r.customer_id, r.benefit, r.quantity);
        let mut tx = self.pool().begin().await?;
        // First statement of the transaction, and a write: see the module docs.
        sqlx::query(
            "INSERT INTO quota_locks (customer_id, benefit, touches) VALUES ($1, $2, 1) \
             ON CONFLICT (customer_id, benefit) DO UPDATE SET touches = quota_locks.touches + 1",
        )
        .bind(&r.customer_id)
        .bind(&r.benefit)
        .execute(&mut *tx)
        .await?;
        if let Some(key) = &r.idempotency_key {
            let seen = sqlx::query(&format!(
                "SELECT {REDEMPTION_COLUMNS}, request FROM redemptions WHERE idempotency_key = $1"
            ))
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(row) = seen {
                let first: String = row.try_get("request")?;
                if first != request {
                    return Err(StoreError::IdempotencyConflict(format!(
                        "idempotency key `{key}` was used for a different redemption"
                    )));
                }
                let used = used_in(&mut tx, &r.customer_id, &r.benefit, r.window).await?;
                return Ok(Redeemed {
                    redemption: redemption(&row)?,
                    replayed: true,
                    used,
                    quota: r.quota,
                });
            }
        }
        let used = used_in(&mut tx, &r.customer_id, &r.benefit, r.window).await?;
        if let Some(quota) = r.quota
            && used + r.quantity > quota
        {
            return Err(StoreError::QuotaExceeded {
                customer_id: r.customer_id.clone(),
                benefit: r.benefit.clone(),
                used,
                quota,
                requested: r.quantity,
            });
        }
        let expires_at = r
            .grant_hours
            .map(|h| ts(r.at + chrono::Duration::hours(i64::from(h))));
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO redemptions (customer_id, benefit, quantity, level, redeemed_at, \
             expires_at, idempotency_key, request, status, created_by, origin) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'active', $9, $10) RETURNING id",
        )
        .bind(&r.customer_id)
        .bind(&r.benefit)
        .bind(i64::from(r.quantity))
        .bind(&r.level)
        .bind(ts(r.at))
        .bind(&expires_at)
        .bind(&r.idempotency_key)
        .bind(&request)
        .bind(&actor.name)
        .bind(&actor.origin)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| match (&e, &r.idempotency_key) {
            // The same key for another customer or benefit at the same moment: the two
            // requests did not queue on one lock row, and the second insert hits the key's
            // unique index. It is the client's conflict, not a fault.
            (sqlx::Error::Database(db), Some(key))
                if db.kind() == sqlx::error::ErrorKind::UniqueViolation =>
            {
                StoreError::IdempotencyConflict(format!(
                    "idempotency key `{key}` was used for a different redemption at the same moment"
                ))
            }
            _ => StoreError::Database(e),
        })?;
        self.audit(
            &mut tx,
            actor,
            "redemption.add",
            &r.customer_id,
            &format!("{} x{} (redemption {id})", r.benefit, r.quantity),
        )
        .await?;
        let row = sqlx::query(&format!(
            "SELECT {REDEMPTION_COLUMNS} FROM redemptions WHERE id = $1"
        ))
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Redeemed {
            redemption: redemption(&row)?,
            replayed: false,
            used: used + r.quantity,
            quota: r.quota,
        })
    }

    /// Cancels a redemption: its units count no more, so the quota is restored.
    pub async fn cancel_redemption(
        &self,
        id: i64,
        actor: &Actor,
    ) -> Result<RedemptionRow, StoreError> {
        let mut tx = self.pool().begin().await?;
        let changed = sqlx::query(
            "UPDATE redemptions SET status = 'cancelled', cancelled_by = $1, cancelled_at = $2 \
             WHERE id = $3 AND status = 'active'",
        )
        .bind(&actor.name)
        .bind(now())
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let row = sqlx::query(&format!(
            "SELECT {REDEMPTION_COLUMNS} FROM redemptions WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no redemption {id}")))?;
        if changed == 0 {
            return Err(StoreError::Invalid(format!(
                "redemption {id} is already cancelled"
            )));
        }
        let row = redemption(&row)?;
        self.audit(
            &mut tx,
            actor,
            "redemption.cancel",
            &row.customer_id,
            &format!("{} x{} (redemption {id})", row.benefit, row.quantity),
        )
        .await?;
        tx.commit().await?;
        Ok(row)
    }

    pub async fn redemption(&self, id: i64) -> Result<RedemptionRow, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {REDEMPTION_COLUMNS} FROM redemptions WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no redemption {id}")))?;
        redemption(&row)
    }

    /// A customer's redemptions, newest first.
    pub async fn redemptions(&self, customer_id: &str) -> Result<Vec<RedemptionRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {REDEMPTION_COLUMNS} FROM redemptions WHERE customer_id = $1 ORDER BY id DESC"
        ))
        .bind(customer_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(redemption).collect()
    }

    /// Units of a benefit a customer used in a period (active redemptions only).
    pub async fn usage(
        &self,
        customer_id: &str,
        benefit: &str,
        window: (DateTime<Utc>, DateTime<Utc>),
    ) -> Result<u32, StoreError> {
        let mut conn = self.pool().acquire().await?;
        used_in(&mut conn, customer_id, benefit, window).await
    }

    pub async fn add_user(&self, name: &str, role: Role, actor: &Actor) -> Result<(), StoreError> {
        if name.trim().is_empty() || name.contains(char::is_whitespace) {
            return Err(StoreError::Invalid(
                "a user name is one word, not empty".into(),
            ));
        }
        let mut tx = self.pool().begin().await?;
        let exists: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE name = $1")
            .bind(name)
            .fetch_one(&mut *tx)
            .await?;
        if exists > 0 {
            return Err(StoreError::Invalid(format!("user `{name}` exists already")));
        }
        sqlx::query(
            "INSERT INTO users (name, role, created_by, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(name)
        .bind(role.as_str())
        .bind(&actor.name)
        .bind(now())
        .execute(&mut *tx)
        .await
        .map_err(|e| match e {
            // Added by a concurrent request between the check and the insert.
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                StoreError::Invalid(format!("user `{name}` exists already"))
            }
            e => e.into(),
        })?;
        self.audit(&mut tx, actor, "user.add", name, role.as_str())
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Disables a user: none of its keys is accepted any more (within the key cache's minute
    /// on a running server). Its name stays in the audit log.
    pub async fn disable_user(&self, name: &str, actor: &Actor) -> Result<(), StoreError> {
        // A disabled user's browsers are signed out at once.
        self.change_enabled_user(name, "disabled_at", &now(), "user.disable", actor)
            .await
    }

    /// Enables a disabled user again: its keys that were not revoked work again. Audited.
    pub async fn enable_user(&self, name: &str, actor: &Actor) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        let n = sqlx::query(
            "UPDATE users SET disabled_at = NULL WHERE name = $1 AND disabled_at IS NOT NULL",
        )
        .bind(name)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("no disabled user `{name}`")));
        }
        self.audit(&mut tx, actor, "user.enable", name, "").await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every key: id, user, when and by whom it was made, when it was revoked (never the
    /// secret or its digest).
    pub async fn api_keys(&self) -> Result<Vec<KeyRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT k.id, k.user_name, k.created_by, k.created_at, k.revoked_at, u.disabled_at \
             FROM api_keys k JOIN users u ON u.name = k.user_name ORDER BY k.created_at, k.id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(KeyRow {
                    id: r.try_get("id")?,
                    user_name: r.try_get("user_name")?,
                    created_by: r.try_get("created_by")?,
                    created_at: r.try_get("created_at")?,
                    revoked_at: r.try_get("revoked_at")?,
                    user_disabled: r.try_get::<Option<String>, _>("disabled_at")?.is_some(),
                })
            })
            .collect()
    }

    pub async fn users(&self) -> Result<Vec<UserRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, role, created_by, created_at, disabled_at FROM users ORDER BY name",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(UserRow {
                    name: r.try_get("name")?,
                    role: stored_role(r)?,
                    created_by: r.try_get("created_by")?,
                    created_at: r.try_get("created_at")?,
                    disabled_at: r.try_get("disabled_at")?,
                })
            })
            .collect()
    }

    /// Keeps a new key's id and the hash of its secret (the secret itself is never stored).
    pub async fn add_api_key(
        &self,
        id: &str,
        user: &str,
        secret_hash: &str,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        let disabled: Option<Option<String>> =
            sqlx::query_scalar("SELECT disabled_at FROM users WHERE name = $1")
                .bind(user)
                .fetch_optional(&mut *tx)
                .await?;
        match disabled {
            None => {
                return Err(StoreError::NotFound(format!(
                    "no user `{user}` (add it with `stratum user add`)"
                )));
            }
            Some(Some(_)) => {
                return Err(StoreError::Invalid(format!(
                    "user `{user}` is disabled, so a key for it would never work; \
                     `stratum user enable {user}` first"
                )));
            }
            Some(None) => {}
        }
        sqlx::query(
            "INSERT INTO api_keys (id, user_name, secret_hash, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(user)
        .bind(secret_hash)
        .bind(&actor.name)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        self.audit(&mut tx, actor, "key.create", user, id).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn api_key(&self, id: &str) -> Result<Option<ApiKeyRow>, StoreError> {
        let row = sqlx::query(
            "SELECT k.id, k.user_name, u.role, k.secret_hash, k.revoked_at, u.disabled_at \
             FROM api_keys k JOIN users u ON u.name = k.user_name WHERE k.id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            let revoked: Option<String> = r.try_get("revoked_at")?;
            let disabled: Option<String> = r.try_get("disabled_at")?;
            Ok(ApiKeyRow {
                id: r.try_get("id")?,
                user_name: r.try_get("user_name")?,
                role: stored_role(&r)?,
                secret_hash: r.try_get("secret_hash")?,
                usable: revoked.is_none() && disabled.is_none(),
            })
        })
        .transpose()
    }

    /// Replaces a key's stored hash (a legacy argon2 hash by its SHA-256 digest, once the
    /// secret was verified); only while it still holds `old`, so a concurrent revoke or
    /// upgrade is never undone.
    pub async fn rehash_api_key(&self, id: &str, old: &str, new: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE api_keys SET secret_hash = $1 WHERE id = $2 AND secret_hash = $3")
            .bind(new)
            .bind(id)
            .bind(old)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn revoke_api_key(&self, id: &str, actor: &Actor) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        let n =
            sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now())
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("no active key {id}")));
        }
        self.audit(&mut tx, actor, "key.revoke", id, "").await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every customer's tags from the data (the customers source's tags column), as the
    /// policy's latest run with a `[service]` section recorded them, in id order.
    pub async fn data_tags(&self, policy_name: &str) -> Result<Vec<(String, String)>, StoreError> {
        Ok(self
            .all_facts(policy_name)
            .await?
            .into_iter()
            .filter(|f| !f.tags.is_empty())
            .map(|f| (f.customer_id, f.tags))
            .collect())
    }

    /// The agent owning a customer under a policy: its dedicated manager (`stratum assign`),
    /// else the owner its latest run with a `[service] owner` recorded.
    pub async fn owner_of(
        &self,
        policy_name: &str,
        customer_id: &str,
    ) -> Result<Option<String>, StoreError> {
        if let Some(manager) = self.manager_of(policy_name, customer_id).await? {
            return Ok(Some(manager));
        }
        Ok(self
            .facts_of(policy_name, customer_id)
            .await?
            .and_then(|f| f.owner))
    }

    /// A customer's tags under a policy as of its latest run (from the data), and from the
    /// store.
    pub async fn tags_of(
        &self,
        policy_name: &str,
        customer_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        let facts = self.facts_of(policy_name, customer_id).await?;
        self.with_kept_tags(customer_id, facts.map(|f| f.tags))
            .await
    }

    /// [`Store::owner_of`] and [`Store::tags_of`] from one read of the customer's facts (the
    /// customer card shows both).
    pub async fn owner_and_tags_of(
        &self,
        policy_name: &str,
        customer_id: &str,
    ) -> Result<(Option<String>, Vec<String>), StoreError> {
        let facts = self.facts_of(policy_name, customer_id).await?;
        let (owner, tags) = facts.map_or((None, None), |f| (f.owner, Some(f.tags)));
        let owner = match self.manager_of(policy_name, customer_id).await? {
            Some(manager) => Some(manager),
            None => owner,
        };
        Ok((owner, self.with_kept_tags(customer_id, tags).await?))
    }

    async fn manager_of(
        &self,
        policy_name: &str,
        customer_id: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT manager FROM manager_assignments WHERE policy_name = $1 AND customer_id = $2",
        )
        .bind(policy_name)
        .bind(customer_id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// The run's comma-separated tags of a customer with those kept in the store, sorted,
    /// each once.
    async fn with_kept_tags(
        &self,
        customer_id: &str,
        from_run: Option<String>,
    ) -> Result<Vec<String>, StoreError> {
        let mut tags: Vec<String> = from_run
            .unwrap_or_default()
            .split(',')
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect();
        let kept: Vec<String> =
            sqlx::query_scalar("SELECT tag FROM tags WHERE customer_id = $1 ORDER BY tag")
                .bind(customer_id)
                .fetch_all(self.pool())
                .await?;
        tags.extend(kept);
        tags.sort();
        tags.dedup();
        Ok(tags)
    }

    /// [`Store::tags_of`] for many customers at once (a queue, an SLA report): two queries
    /// per 500 customers instead of two per customer. Customers without tags are left out.
    pub async fn tags_of_many(
        &self,
        policy_name: &str,
        customers: &[&str],
    ) -> Result<std::collections::HashMap<String, Vec<String>>, StoreError> {
        let mut tags: std::collections::HashMap<String, Vec<String>> = Default::default();
        let mut ids: Vec<&str> = customers.to_vec();
        ids.sort_unstable();
        ids.dedup();
        for facts in self.facts_of_many(policy_name, &ids).await? {
            let found: Vec<String> = facts
                .tags
                .split(',')
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect();
            if !found.is_empty() {
                tags.entry(facts.customer_id).or_default().extend(found);
            }
        }
        for chunk in ids.chunks(500) {
            let list = |first: usize| -> String {
                (0..chunk.len())
                    .map(|i| format!("${}", first + i))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let kept = format!(
                "SELECT customer_id, tag FROM tags WHERE customer_id IN ({})",
                list(1)
            );
            let mut q = sqlx::query(&kept);
            for id in chunk {
                q = q.bind(*id);
            }
            for r in q.fetch_all(self.pool()).await? {
                tags.entry(r.try_get("customer_id")?)
                    .or_default()
                    .push(r.try_get("tag")?);
            }
        }
        for list in tags.values_mut() {
            list.sort();
            list.dedup();
        }
        Ok(tags)
    }

    /// The run served for a policy: the one an operator pinned (`stratum runs pin`), else
    /// the one recorded last that is not retired. Recording order, not `as_of`: a run dated
    /// far ahead must not take over serving for good.
    pub async fn latest_run_id(&self, policy_name: &str) -> Result<Option<i64>, StoreError> {
        if let Some(pinned) = self.pinned_run(policy_name).await? {
            return Ok(Some(pinned));
        }
        Ok(sqlx::query_scalar(
            "SELECT id FROM runs WHERE policy_name = $1 AND retired_at IS NULL \
             ORDER BY id DESC LIMIT 1",
        )
        .bind(policy_name)
        .fetch_optional(self.pool())
        .await?)
    }

    /// A customer's level on every ladder of a run (one chunk read per ladder).
    pub async fn levels_of(
        &self,
        run_id: i64,
        customer_id: &str,
    ) -> Result<Vec<CurrentLevel>, StoreError> {
        let rows = self.customer_in_run(run_id, customer_id).await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let as_of = self.run(run_id).await?.as_of.to_string();
        Ok(rows
            .into_iter()
            .map(|(ladder, chunk, i, explanation)| CurrentLevel {
                run_id,
                as_of: as_of.clone(),
                ladder,
                level: chunk.level(i).to_string(),
                rule_level: chunk.rule_level(i).to_string(),
                score: chunk.score(i),
                rank: chunk.rank(i),
                explanation,
            })
            .collect())
    }

    /// Every customer's level, score and rank on every ladder of a run, with the owner of
    /// each customer (its dedicated manager, else the one the run recorded): what the API's
    /// in-memory lookup table is built from.
    pub async fn run_standings(&self, run_id: i64) -> Result<RunStandings, StoreError> {
        let run = self.run(run_id).await?;
        let mut rows = Vec::new();
        for ladder in self.run_rows(run_id, false).await? {
            for (chunk, i) in ladder.rows() {
                rows.push(StandingRow {
                    ladder: ladder.ladder.clone(),
                    customer_id: chunk.customer(i).to_string(),
                    level: chunk.level(i).to_string(),
                    score: chunk.score(i),
                    rank: chunk.rank(i),
                });
            }
        }
        let facts = self.all_facts(&run.policy_name).await?;
        let (mut owners, mut tags) = (Vec::new(), Vec::new());
        for CustomerFacts {
            customer_id,
            owner,
            tags: tagged,
        } in facts
        {
            if !tagged.is_empty() {
                tags.push((customer_id.clone(), tagged));
            }
            if let Some(owner) = owner {
                owners.push((customer_id, owner));
            }
        }
        let managers = self.manager_assignments(&run.policy_name).await?;
        if !managers.is_empty() {
            let mut by_customer: std::collections::BTreeMap<String, String> =
                owners.into_iter().collect();
            by_customer.extend(managers.into_iter().map(|m| (m.customer_id, m.manager)));
            owners = by_customer.into_iter().collect();
        }
        Ok(RunStandings {
            run,
            rows,
            owners,
            tags,
        })
    }

    /// Customers of a run whose id starts with `prefix`, in id order, with their level on
    /// `ladder`.
    pub async fn search_customers(
        &self,
        run_id: i64,
        ladder: &str,
        prefix: &str,
        limit: i64,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let limit = usize::try_from(limit).unwrap_or(0);
        let mut out = Vec::new();
        // From the chunk that can hold `prefix` onwards, one chunk at a time, until the ids
        // no longer start with it.
        let mut after: Option<String> = None;
        while out.len() < limit {
            let row = match &after {
                None => sqlx::query(
                    "SELECT first_customer, standings FROM assignment_chunks \
                     WHERE run_id = $1 AND ladder = $2 AND first_customer = coalesce(\
                     (SELECT max(first_customer) FROM assignment_chunks WHERE run_id = $1 \
                     AND ladder = $2 AND first_customer <= $3), \
                     (SELECT min(first_customer) FROM assignment_chunks WHERE run_id = $1 \
                     AND ladder = $2))",
                )
                .bind(run_id)
                .bind(ladder)
                .bind(prefix),
                Some(last) => sqlx::query(
                    "SELECT first_customer, standings FROM assignment_chunks \
                     WHERE run_id = $1 AND ladder = $2 AND first_customer > $3 \
                     ORDER BY first_customer LIMIT 1",
                )
                .bind(run_id)
                .bind(ladder)
                .bind(last.as_str()),
            }
            .fetch_optional(self.pool())
            .await?;
            let Some(row) = row else { break };
            let chunk = StandingsChunk::decode(row.try_get::<&[u8], _>("standings")?)?;
            let mut past = false;
            for i in 0..chunk.len() {
                let id = chunk.customer(i);
                if id.starts_with(prefix) {
                    out.push((id.to_string(), chunk.level(i).to_string()));
                    if out.len() == limit {
                        break;
                    }
                } else if id > prefix {
                    past = true;
                    break;
                }
            }
            if past {
                break;
            }
            after = Some(row.try_get("first_customer")?);
        }
        Ok(out)
    }

    pub async fn add_callback(
        &self,
        customer_id: &str,
        level: &str,
        missed_at: DateTime<Utc>,
        due_at: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<CallbackRow, StoreError> {
        let mut tx = self.pool().begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO callbacks (customer_id, level, missed_at, due_at, created_by) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(customer_id)
        .bind(level)
        .bind(ts(missed_at))
        .bind(ts(due_at))
        .bind(&actor.name)
        .fetch_one(&mut *tx)
        .await?;
        self.audit(&mut tx, actor, "callback.add", customer_id, &ts(due_at))
            .await?;
        let row = sqlx::query("SELECT * FROM callbacks WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        callback(&row)
    }

    /// Call-backs not yet done, the earliest due first.
    pub async fn open_callbacks(&self) -> Result<Vec<CallbackRow>, StoreError> {
        let rows = sqlx::query("SELECT * FROM callbacks WHERE done_at IS NULL ORDER BY due_at, id")
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(callback).collect()
    }

    pub async fn complete_callback(
        &self,
        id: i64,
        actor: &Actor,
    ) -> Result<CallbackRow, StoreError> {
        let mut tx = self.pool().begin().await?;
        let n = sqlx::query(
            "UPDATE callbacks SET done_at = $1, done_by = $2 WHERE id = $3 AND done_at IS NULL",
        )
        .bind(now())
        .bind(&actor.name)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("no open call-back {id}")));
        }
        let row = sqlx::query("SELECT * FROM callbacks WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        let row = callback(&row)?;
        self.audit(
            &mut tx,
            actor,
            "callback.done",
            &row.customer_id,
            &id.to_string(),
        )
        .await?;
        tx.commit().await?;
        Ok(row)
    }
}
