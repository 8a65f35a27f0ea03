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

mod history;
mod manual;
mod service;

use std::borrow::Cow;
use std::str::FromStr;
use std::sync::OnceLock;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, Executor};

pub use history::{
    AssignmentRow, CustomerFacts, HistoryRow, LevelStat, MatrixCell, Move, NewRun, RunInfo,
    policy_hash,
};
pub use manual::{AuditRow, InputRow, NewOverride, OverrideRow, TagRow};
pub use service::{
    ApiKeyRow, CallbackRow, CurrentLevel, NewRedemption, ROLES, Redeemed, RedemptionRow,
    RunStandings, StandingRow, UserRow,
};

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
];

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
        matches!(
            self,
            StoreError::Connect { .. }
                | StoreError::NotFound(_)
                | StoreError::Invalid(_)
                | StoreError::Schema { .. }
                | StoreError::QuotaExceeded { .. }
                | StoreError::IdempotencyConflict(_)
        )
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
fn redact(url: &str) -> String {
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

    /// Closes the pool (waits for connections to finish).
    pub async fn close(&self) {
        self.pool.close().await;
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
    use super::redact;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact("postgres://stratum:s3cret@db:5432/x"),
            "postgres://stratum:***@db:5432/x"
        );
        assert_eq!(redact("sqlite:///tmp/a.db"), "sqlite:///tmp/a.db");
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
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $case() {
                        let dir = tempfile::tempdir().unwrap();
                        super::$case(stratum_store::testing::sqlite_in(dir.path())).await;
                    }
                )*
            }
            mod postgres {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $case() {
                        let Some(admin) = stratum_store::testing::postgres_admin_url() else {
                            return;
                        };
                        super::$case(stratum_store::testing::fresh_postgres(&admin).await).await;
                    }
                )*
            }
        };
    }

    use std::sync::atomic::{AtomicU32, Ordering};

    use sqlx::{Connection, Executor};

    /// The PostgreSQL server tests use (`STRATUM_TEST_POSTGRES_URL`, set by scripts/test.sh).
    /// Under CI its absence fails the test instead of skipping it.
    pub fn postgres_admin_url() -> Option<String> {
        match std::env::var("STRATUM_TEST_POSTGRES_URL") {
            Ok(u) if !u.is_empty() => Some(u),
            _ if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") => panic!(
                "CI is set but STRATUM_TEST_POSTGRES_URL is not: the PostgreSQL tests must run \
                 (scripts/test.sh starts a server and sets it)"
            ),
            _ => {
                eprintln!(
                    "note: STRATUM_TEST_POSTGRES_URL is not set; skipping the PostgreSQL half \
                     (scripts/test.sh sets it)"
                );
                None
            }
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
