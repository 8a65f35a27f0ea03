//! # stratum-store
//!
//! Everything Stratum keeps between runs: every run with its policy and per-customer results,
//! the overrides, manual inputs and tags people enter, and an audit log of who changed what.
//! One code path serves an embedded SQLite file (the default, nothing to install) and
//! PostgreSQL (production) through sqlx's `Any` driver; the two differ only in their numbered
//! migrations (`migrations/sqlite`, `migrations/postgres`).
//!
//! A run is written in one transaction: a process killed at any moment leaves the earlier
//! runs intact and no half run visible.

mod chunks;
mod convert_rows;
mod fact_chunks;
mod history;
mod managers;
mod manual;
mod metric_chunks;
mod pipeline;
mod service;
mod sessions;

use std::borrow::Cow;
use std::str::FromStr;
use std::sync::OnceLock;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, Executor};

pub use chunks::AssignmentRow;
pub use history::{
    CustomerFacts, HistoryRow, LevelStat, MatrixCell, MetricChunks, Move, NewRun, RecordedLadder,
    RunInfo, policy_hash,
};
pub use managers::{AppliedAssignments, Handover, ManagerAssignment, RepChange};
pub use manual::{AuditFilter, AuditRow, InputRow, NewOverride, OverrideRow, TagRow};
pub use metric_chunks::TextMetrics;
pub use pipeline::{ClassChangeRow, InteractionRow, NewInteraction, ProspectRow};
pub use service::{
    ApiKeyRow, CallbackRow, CurrentLevel, KeyRow, NewRedemption, Redeemed, RedemptionRow, Role,
    RunStandings, StandingRow, UserRow,
};
pub use sessions::{LoginRow, SessionRow};

/// The numbered migrations, embedded in the binary. The two dialects differ only where they
/// must (identity columns, `WITHOUT ROWID`); a new migration is added to both lists.
const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "runs",
        include_str!("../migrations/sqlite/0001_runs.sql"),
    ),
    (
        2,
        "manual",
        include_str!("../migrations/sqlite/0002_manual.sql"),
    ),
    (
        3,
        "run ladders",
        include_str!("../migrations/sqlite/0003_run_ladders.sql"),
    ),
    (
        4,
        "service",
        include_str!("../migrations/sqlite/0004_service.sql"),
    ),
    (
        5,
        "assignment chunks",
        include_str!("../migrations/sqlite/0005_assignment_chunks.sql"),
    ),
    (
        CONVERTED_ROWS_DROPPED,
        "drop row assignments",
        include_str!("../migrations/sqlite/0006_drop_row_assignments.sql"),
    ),
    (
        7,
        "policy facts and serving",
        include_str!("../migrations/sqlite/0007_policy_facts_and_serving.sql"),
    ),
    (
        8,
        "console logins and run summaries",
        include_str!("../migrations/sqlite/0008_console_logins.sql"),
    ),
    (
        9,
        "the sales pipeline",
        include_str!("../migrations/sqlite/0009_pipeline.sql"),
    ),
    (
        10,
        "manager assignments and rep changes",
        include_str!("../migrations/sqlite/0010_assignments.sql"),
    ),
    (
        11,
        "fact chunks",
        include_str!("../migrations/sqlite/0011_fact_chunks.sql"),
    ),
    (
        FACTS_TABLE_DROPPED,
        "drop the customer facts table",
        include_str!("../migrations/sqlite/0012_drop_customer_facts.sql"),
    ),
];
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "runs",
        include_str!("../migrations/postgres/0001_runs.sql"),
    ),
    (
        2,
        "manual",
        include_str!("../migrations/postgres/0002_manual.sql"),
    ),
    (
        3,
        "run ladders",
        include_str!("../migrations/postgres/0003_run_ladders.sql"),
    ),
    (
        4,
        "service",
        include_str!("../migrations/postgres/0004_service.sql"),
    ),
    (
        5,
        "assignment chunks",
        include_str!("../migrations/postgres/0005_assignment_chunks.sql"),
    ),
    (
        CONVERTED_ROWS_DROPPED,
        "drop row assignments",
        include_str!("../migrations/postgres/0006_drop_row_assignments.sql"),
    ),
    (
        7,
        "policy facts and serving",
        include_str!("../migrations/postgres/0007_policy_facts_and_serving.sql"),
    ),
    (
        8,
        "console logins and run summaries",
        include_str!("../migrations/postgres/0008_console_logins.sql"),
    ),
    (
        9,
        "the sales pipeline",
        include_str!("../migrations/postgres/0009_pipeline.sql"),
    ),
    (
        10,
        "manager assignments and rep changes",
        include_str!("../migrations/postgres/0010_assignments.sql"),
    ),
    (
        11,
        "fact chunks",
        include_str!("../migrations/postgres/0011_fact_chunks.sql"),
    ),
    (
        FACTS_TABLE_DROPPED,
        "drop the customer facts table",
        include_str!("../migrations/postgres/0012_drop_customer_facts.sql"),
    ),
];

/// The migration that drops the row-per-customer `assignments` table; `migrate` converts
/// those rows into chunks just before it.
const CONVERTED_ROWS_DROPPED: i64 = 6;

/// The migration that drops the row-per-customer `customer_facts` table; `migrate` moves
/// those rows into fact chunks just before it.
const FACTS_TABLE_DROPPED: i64 = 12;

fn build_migrator(list: &'static [(i64, &'static str, &'static str)]) -> Migrator {
    let migrations = list
        .iter()
        .map(|&(version, description, sql)| {
            Migration::new(
                version,
                Cow::Borrowed(description),
                MigrationType::Simple,
                Cow::Borrowed(sql),
                false,
            )
        })
        .collect::<Vec<_>>();
    Migrator {
        migrations: Cow::Owned(migrations),
        ..Migrator::DEFAULT
    }
}

/// Why a store operation failed. `is_user_error` tells a wrong request (unknown run, a
/// database that needs `stratum migrate`) from a broken database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open database {url}: {message}")]
    Connect { url: String, message: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("database {url} {message}")]
    Schema { url: String, message: String },
    #[error(
        "quota exhausted: customer {customer_id} has used {used} of {quota} `{benefit}` this period; {requested} more would exceed it"
    )]
    QuotaExceeded {
        customer_id: String,
        benefit: String,
        used: u32,
        quota: u32,
        requested: u32,
    },
    #[error("{0}")]
    IdempotencyConflict(String),
    /// The caller's check before the commit failed (a run whose output files could not be
    /// written); nothing was recorded.
    #[error("not recorded: {0}")]
    Aborted(String),
    /// A caller broke the store's contract (e.g. the same customer twice on a ladder).
    #[error("internal error: {0}")]
    Internal(String),
    /// Stored data the store itself wrote cannot be read back.
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    pub fn is_user_error(&self) -> bool {
        match self {
            StoreError::Connect { .. }
            | StoreError::NotFound(_)
            | StoreError::Invalid(_)
            | StoreError::Schema { .. }
            | StoreError::QuotaExceeded { .. }
            | StoreError::IdempotencyConflict(_)
            | StoreError::Aborted(_) => true,
            StoreError::Internal(_)
            | StoreError::Corrupt(_)
            | StoreError::Database(_)
            | StoreError::Migrate(_) => false,
        }
    }
}

/// Which database a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where the schema stands against the migrations this binary carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaStatus {
    pub applied: Vec<i64>,
    pub pending: Vec<(i64, String)>,
    /// Applied versions this binary does not know (a newer stratum migrated the database).
    pub unknown: Vec<i64>,
}

/// A connection pool to the history database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    url: String,
}

/// Who made a change and from where, for the audit log.
#[derive(Debug, Clone)]
pub struct Actor {
    pub name: String,
    /// e.g. "cli", or the client address for the API.
    pub origin: String,
}

/// A URL with any password replaced, fit for messages.
/// The URL as messages show it: no password, and not the `mode=rwc` every SQLite URL gets.
fn redact(url: &str) -> String {
    let url = &url
        .replace("?mode=rwc&", "?")
        .replace("?mode=rwc", "")
        .replace("&mode=rwc", "");
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Store {
    /// Connects without touching the schema (what `stratum migrate` needs).
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let shown = redact(url);
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::Connect {
                url: shown,
                message: "the URL must start with sqlite: or postgres://".into(),
            });
        };
        let connect_err = |e: sqlx::Error| StoreError::Connect {
            url: shown.clone(),
            message: e.to_string(),
        };
        // A new SQLite file is created on first use, like the workspace default, unless the
        // URL says otherwise (`?mode=ro`, `?mode=rw`).
        let url =
            if backend == Backend::Sqlite && !url.contains("mode=") && !url.contains(":memory:") {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}mode=rwc")
            } else {
                url.to_string()
            };
        let options = AnyConnectOptions::from_str(&url).map_err(connect_err)?;
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 8 })
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL: readers never block the writer; a killed writer leaves only
                        // an uncommitted tail that the next open discards.
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(connect_err)?;
        Ok(Store {
            pool,
            backend,
            url: shown,
        })
    }

    /// Folds SQLite's write-ahead log back into the database file and closes every
    /// connection, so the `.db` file alone is the whole history (a copy of it is complete).
    /// Commands call it before they exit; PostgreSQL connections are just closed.
    pub async fn close(&self) -> Result<(), StoreError> {
        if self.backend == Backend::Sqlite {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.pool)
                .await?;
        }
        self.pool.close().await;
        Ok(())
    }

    /// A consistent copy of the history in `path` (SQLite's `VACUUM INTO`, safe while other
    /// processes read or write). PostgreSQL databases are backed up with `pg_dump`.
    pub async fn backup(&self, path: &std::path::Path) -> Result<(), StoreError> {
        if self.backend != Backend::Sqlite {
            return Err(StoreError::Invalid(format!(
                "{} is a PostgreSQL database: back it up with `pg_dump --format=custom --file=FILE DATABASE_URL` \
                 (restore with pg_restore), which copies it consistently while it is in use",
                self.url
            )));
        }
        if path.exists() {
            return Err(StoreError::Invalid(format!(
                "{} exists already; choose a new file",
                path.display()
            )));
        }
        let target = path.to_str().ok_or_else(|| {
            StoreError::Invalid(format!("{} is not a UTF-8 path", path.display()))
        })?;
        sqlx::query("VACUUM INTO $1")
            .bind(target)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Connects and makes sure the schema is current. A database without any Stratum table
    /// is set up on the spot; one with pending migrations must be migrated explicitly
    /// (`stratum migrate`), so a production schema never changes behind an operator's back.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let store = Store::connect(url).await?;
        let status = store.schema_status().await?;
        if !status.unknown.is_empty() {
            return Err(StoreError::Schema {
                url: store.url.clone(),
                message: format!(
                    "was migrated by a newer stratum (schema versions {:?} are unknown to this \
                     binary); upgrade stratum",
                    status.unknown
                ),
            });
        }
        if status.applied.is_empty() {
            store.migrate().await?;
        } else if !status.pending.is_empty() {
            return Err(StoreError::Schema {
                url: store.url.clone(),
                message: format!(
                    "needs {} migration(s) ({}); run `stratum migrate`",
                    status.pending.len(),
                    status
                        .pending
                        .iter()
                        .map(|(v, d)| format!("{v} {d}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL, password hidden.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    fn migrator(&self) -> &'static Migrator {
        static SQLITE: OnceLock<Migrator> = OnceLock::new();
        static POSTGRES: OnceLock<Migrator> = OnceLock::new();
        match self.backend {
            Backend::Sqlite => SQLITE.get_or_init(|| build_migrator(SQLITE_MIGRATIONS)),
            Backend::Postgres => POSTGRES.get_or_init(|| build_migrator(POSTGRES_MIGRATIONS)),
        }
    }

    /// The migrations before `version`.
    fn migrator_before(&self, version: i64) -> Migrator {
        let list = match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS,
            Backend::Postgres => POSTGRES_MIGRATIONS,
        };
        let end = list
            .iter()
            .position(|m| m.0 == version)
            .unwrap_or(list.len());
        build_migrator(&list[..end])
    }

    /// Applies pending migrations; returns the versions applied now.
    pub async fn migrate(&self) -> Result<Vec<(i64, String)>, StoreError> {
        let before = self.schema_status().await?;
        if !before.unknown.is_empty() {
            return Err(StoreError::Schema {
                url: self.url.clone(),
                message: format!(
                    "has schema versions {:?} this stratum does not know; upgrade stratum",
                    before.unknown
                ),
            });
        }
        // Two migrations drop a table whose rows Rust code moves first: the migrations
        // before each run, then the move, then the rest.
        let pending = |version: i64| before.pending.iter().any(|(v, _)| *v == version);
        if pending(CONVERTED_ROWS_DROPPED) {
            self.migrator_before(CONVERTED_ROWS_DROPPED)
                .run(&self.pool)
                .await?;
            self.convert_row_assignments().await?;
        }
        if pending(FACTS_TABLE_DROPPED) {
            self.migrator_before(FACTS_TABLE_DROPPED)
                .run(&self.pool)
                .await?;
            self.convert_row_facts().await?;
        }
        self.migrator().run(&self.pool).await?;
        Ok(before.pending)
    }

    pub async fn schema_status(&self) -> Result<SchemaStatus, StoreError> {
        let exists: i64 = match self.backend {
            Backend::Sqlite => {
                sqlx::query_scalar(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
                )
                .fetch_one(&self.pool)
                .await?
            }
            Backend::Postgres => {
                sqlx::query_scalar(
                    "SELECT count(*) FROM information_schema.tables \
                     WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'",
                )
                .fetch_one(&self.pool)
                .await?
            }
        };
        let applied: Vec<i64> = if exists > 0 {
            sqlx::query_scalar(
                "SELECT version FROM _sqlx_migrations WHERE success = TRUE ORDER BY version",
            )
            .fetch_all(&self.pool)
            .await?
        } else {
            Vec::new()
        };
        let known = self.migrator().iter().map(|m| m.version);
        let pending = self
            .migrator()
            .iter()
            .filter(|m| !applied.contains(&m.version))
            .map(|m| (m.version, m.description.to_string()))
            .collect();
        let known: Vec<i64> = known.collect();
        let unknown = applied
            .iter()
            .copied()
            .filter(|v| !known.contains(v))
            .collect();
        Ok(SchemaStatus {
            applied,
            pending,
            unknown,
        })
    }

    /// Records an action that is not itself a store write (a run started through the API).
    pub async fn audit_event(
        &self,
        actor: &Actor,
        action: &str,
        subject: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        self.audit(&mut conn, actor, action, subject, detail).await
    }

    pub(crate) async fn audit(
        &self,
        conn: &mut sqlx::AnyConnection,
        actor: &Actor,
        action: &str,
        subject: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_log (at, actor, origin, action, subject, detail) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(now())
        .bind(&actor.name)
        .bind(&actor.origin)
        .bind(action)
        .bind(subject)
        .bind(detail)
        .execute(conn)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A history recorded one row per customer (schema 4) keeps every run through the
    /// conversion to chunks: levels, scores, hold states and explanations.
    async fn rows_recorded_before_chunks_are_converted_by_migrate(url: String) {
        let old = Store::connect(&url).await.unwrap();
        let list = match old.backend() {
            Backend::Sqlite => SQLITE_MIGRATIONS,
            Backend::Postgres => POSTGRES_MIGRATIONS,
        };
        build_migrator(&list[..4]).run(old.pool()).await.unwrap();
        for as_of in ["2026-01-31", "2026-02-28"] {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO runs (policy_name, policy_file, policy_text, policy_hash, as_of, \
                 started_at, finished_at, customers, inputs, recorded_by) \
                 VALUES ('p', 'p.toml', '', 'h', $1, 't0', 't1', 2, '[]', 'mei') RETURNING id",
            )
            .bind(as_of)
            .fetch_one(old.pool())
            .await
            .unwrap();
            for ladder in ["tier", "life"] {
                sqlx::query("INSERT INTO run_ladders (run_id, ladder) VALUES ($1, $2)")
                    .bind(id)
                    .bind(ladder)
                    .execute(old.pool())
                    .await
                    .unwrap();
            }
        }
        // Facts written by run 2, before they belonged to a policy.
        sqlx::query(
            "INSERT INTO customer_facts (customer_id, owner, tags, run_id) VALUES ('A', 'mei', 'vip', 2)",
        )
        .execute(old.pool())
        .await
        .unwrap();
        type Old<'a> = (
            i64,
            &'a str,
            &'a str,
            &'a str,
            &'a str,
            Option<f64>,
            Option<i64>,
            Option<&'a str>,
            Option<&'a str>,
            Option<i64>,
            Option<&'a str>,
            &'a str,
        );
        let rows: [Old; 5] = [
            (
                1,
                "tier",
                "A",
                "gold",
                "gold",
                Some(91.5),
                Some(1),
                Some("gold"),
                Some("2026-01-31"),
                Some(0),
                None,
                "rank 1",
            ),
            (
                1,
                "tier",
                "B",
                "silver",
                "silver",
                None,
                None,
                None,
                None,
                None,
                None,
                "B was silver",
            ),
            (
                1,
                "life",
                "A",
                "new",
                "new",
                None,
                None,
                Some("new"),
                Some("2026-01-31"),
                Some(0),
                None,
                "first order",
            ),
            (
                2,
                "tier",
                "A",
                "gold",
                "silver",
                Some(70.25),
                Some(2),
                Some("gold"),
                Some("2026-01-31"),
                Some(1),
                Some("2026-02-28"),
                "held in gold",
            ),
            (
                2,
                "tier",
                "B",
                "gold",
                "gold",
                Some(95.0),
                Some(1),
                Some("gold"),
                Some("2026-02-28"),
                Some(0),
                None,
                "B rose",
            ),
        ];
        for (
            run,
            ladder,
            customer,
            level,
            rule_level,
            score,
            rank,
            held,
            since,
            below,
            below_since,
            why,
        ) in rows
        {
            // Literals, not parameters: the fixture's NULLs need no types on either backend.
            let text = |v: Option<&str>| v.map_or("NULL".to_string(), |v| format!("'{v}'"));
            let num = |v: Option<String>| v.unwrap_or_else(|| "NULL".into());
            let sql = format!(
                "INSERT INTO assignments (run_id, ladder, customer_id, level, rule_level, score, \
                 rank, value, activity, held_level, since, last_qualified, below_runs, \
                 below_since, above_runs, explanation) VALUES ({run}, '{ladder}', '{customer}', \
                 '{level}', '{rule_level}', {}, {}, 10.0, 2.0, {}, {}, {}, {}, {}, {}, '{why}')",
                num(score.map(|x| x.to_string())),
                num(rank.map(|x| x.to_string())),
                text(held),
                text(since),
                text(since),
                num(below.map(|x| x.to_string())),
                text(below_since),
                num(below.map(|_| "0".into())),
            );
            sqlx::query(&sql).execute(old.pool()).await.unwrap();
        }
        let refused = Store::open(&url).await.unwrap_err().to_string();
        assert!(
            refused.contains(
                "needs 8 migration(s) (5 assignment chunks, 6 drop row assignments, 7 policy facts and serving, 8 console logins and run summaries, 9 the sales pipeline, 10 manager assignments and rep changes, 11 fact chunks, 12 drop the customer facts table)"
            ),
            "{refused}"
        );
        let applied: Vec<i64> = old
            .migrate()
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.0)
            .collect();
        assert_eq!(applied, vec![5, 6, 7, 8, 9, 10, 11, 12]);
        let store = Store::open(&url).await.unwrap();
        let d = |s| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let row = |run_id, as_of, ladder: &str, level: &str, rule: &str, score, rank, why: &str| {
            HistoryRow {
                run_id,
                as_of: d(as_of),
                policy_name: "p".into(),
                ladder: ladder.into(),
                level: level.into(),
                rule_level: rule.into(),
                score,
                rank,
                explanation: why.into(),
            }
        };
        assert_eq!(
            store.history("A").await.unwrap(),
            vec![
                row(
                    1,
                    "2026-01-31",
                    "life",
                    "new",
                    "new",
                    None,
                    None,
                    "first order"
                ),
                row(
                    1,
                    "2026-01-31",
                    "tier",
                    "gold",
                    "gold",
                    Some(91.5),
                    Some(1),
                    "rank 1"
                ),
                row(
                    2,
                    "2026-02-28",
                    "tier",
                    "gold",
                    "silver",
                    Some(70.25),
                    Some(2),
                    "held in gold"
                ),
            ]
        );
        let states = store.states(2).await.unwrap();
        assert_eq!(
            states["tier"]["A"],
            stratum_core::PriorState {
                level: "gold".into(),
                since: d("2026-01-31"),
                last_qualified: d("2026-01-31"),
                below_runs: 1,
                below_since: Some(d("2026-02-28")),
                above_runs: 0,
            }
        );
        assert!(
            !store.states(1).await.unwrap()["tier"].contains_key("B"),
            "B had no hold state"
        );
        let moves = store.moves(1, 2).await.unwrap();
        assert_eq!(moves.len(), 1);
        assert_eq!(
            (
                moves[0].customer_id.as_str(),
                moves[0].from_level.as_str(),
                moves[0].to_level.as_str()
            ),
            ("B", "silver", "gold")
        );
        assert_eq!(moves[0].explanation, "B rose");
        let gone = sqlx::query("SELECT count(*) FROM assignments")
            .fetch_one(store.pool())
            .await;
        assert!(gone.is_err(), "the row table is dropped");
        // Migration 7 gave the facts to the policy of the run that wrote them; before 12
        // they moved into chunks of the policy's latest run.
        assert_eq!(
            store.owner_of("p", "A").await.unwrap().as_deref(),
            Some("mei")
        );
        assert_eq!(store.tags_of("p", "A").await.unwrap(), ["vip"]);
        assert_eq!(store.owner_of("other", "A").await.unwrap(), None);
        assert_eq!(store.owner_of("p", "B").await.unwrap(), None);
        let chunks: Vec<i64> = sqlx::query_scalar("SELECT run_id FROM fact_chunks")
            .fetch_all(store.pool())
            .await
            .unwrap();
        assert_eq!(chunks, [2]);
        let gone = sqlx::query("SELECT count(*) FROM customer_facts")
            .fetch_one(store.pool())
            .await;
        assert!(gone.is_err(), "the facts table is dropped");
    }

    #[tokio::test]
    async fn sqlite_rows_are_converted_by_migrate() {
        let dir = tempfile::tempdir().unwrap();
        rows_recorded_before_chunks_are_converted_by_migrate(testing::sqlite_in(dir.path())).await;
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL: scripts/test.sh runs it (STRATUM_TEST_POSTGRES_URL, --include-ignored)"]
    async fn postgres_rows_are_converted_by_migrate() {
        let admin = testing::postgres_admin_url();
        rows_recorded_before_chunks_are_converted_by_migrate(testing::fresh_postgres(&admin).await)
            .await;
    }

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact("postgres://stratum:s3cret@db:5432/x"),
            "postgres://stratum:***@db:5432/x"
        );
        assert_eq!(redact("sqlite:///tmp/a.db"), "sqlite:///tmp/a.db");
        assert_eq!(redact("sqlite:///tmp/a.db?mode=rwc"), "sqlite:///tmp/a.db");
        assert_eq!(redact("postgres://stratum@db/x"), "postgres://stratum@db/x");
    }
}

/// Helpers for tests that run the same suite on SQLite and PostgreSQL. Not part of the API.
#[doc(hidden)]
pub mod testing {
    /// Runs each named `async fn(url: String)` of the calling test file twice: on a fresh
    /// SQLite file (module `sqlite`) and on a fresh PostgreSQL database (module `postgres`).
    /// Needs `tempfile` and `tokio` among the caller's dev-dependencies.
    #[macro_export]
    macro_rules! on_both {
        ($($case:ident),* $(,)?) => {
            mod sqlite {
                $(
                    #[tokio::test]
                    async fn $case() {
                        let dir = tempfile::tempdir().unwrap();
                        super::$case(stratum_store::testing::sqlite_in(dir.path())).await;
                    }
                )*
            }
            mod postgres {
                $(
                    #[tokio::test]
                    #[ignore = "needs PostgreSQL: scripts/test.sh runs it (STRATUM_TEST_POSTGRES_URL, --include-ignored)"]
                    async fn $case() {
                        let admin = stratum_store::testing::postgres_admin_url();
                        super::$case(stratum_store::testing::fresh_postgres(&admin).await).await;
                    }
                )*
            }
        };
    }

    use std::sync::atomic::{AtomicU32, Ordering};

    use sqlx::{Connection, Executor};

    /// The PostgreSQL server tests use (`STRATUM_TEST_POSTGRES_URL`, set by scripts/test.sh).
    /// The PostgreSQL halves are `#[ignore]`d, so a plain `cargo test` lists them as not run;
    /// `scripts/test.sh` (CI) runs them with `--include-ignored`, and one that runs without
    /// the URL fails: it was asked for.
    pub fn postgres_admin_url() -> String {
        match std::env::var("STRATUM_TEST_POSTGRES_URL") {
            Ok(u) if !u.is_empty() => u,
            _ => panic!(
                "STRATUM_TEST_POSTGRES_URL is not set: the PostgreSQL tests need a server \
                 (scripts/test.sh starts one and sets it)"
            ),
        }
    }

    /// Creates an empty database on the test server and returns its URL.
    pub async fn fresh_postgres(admin_url: &str) -> String {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        sqlx::any::install_default_drivers();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .subsec_nanos();
        let name = format!(
            "stratum_t{}_{}_{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut conn = sqlx::AnyConnection::connect(admin_url)
            .await
            .expect("connect to the test PostgreSQL");
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create a test database");
        let base = admin_url
            .rsplit_once('/')
            .map_or(admin_url, |(b, _)| b)
            .to_string();
        format!("{base}/{name}")
    }

    /// A fresh SQLite file URL inside `dir`.
    pub fn sqlite_in(dir: &std::path::Path) -> String {
        format!("sqlite://{}?mode=rwc", dir.join("history.db").display())
    }
}
