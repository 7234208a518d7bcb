//! The only place that knows SQL: one [`Store`] over SQLite (embedded default) or PostgreSQL,
//! with runtime queries that both accept (`$1` placeholders, Unix-second BIGINT times, 0/1
//! flags) and migrations per backend in `migrations/<backend>/`, applied at start.

pub mod access_log;
pub mod accounts;
pub mod activation;
pub mod admin;
pub mod cleanup;
pub mod clients;
pub mod closures;
pub mod console;
pub mod grants;
pub mod keys;
pub mod locks;
pub mod policy_changes;
pub mod pushed_requests;
pub mod roster;
pub mod schools;
pub mod sessions;
pub mod tokens;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor};

pub type DbResult<T> = Result<T, sqlx::Error>;

/// How long a request waits for a database connection before it is answered `503`. The pool
/// keeps retrying a refused connection until then (sqlx's default is 30 s), so this bounds
/// how long a caller hangs while the database is down or restarting (docs/DRILLS.md).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// What callers are told to wait before trying again while the database is unavailable
/// (RFC 9110 §10.2.3 `Retry-After`, in seconds).
pub const RETRY_AFTER_SECS: u32 = 2;

/// True when `e` means the database cannot be reached right now (down, restarting, pool
/// exhausted) rather than that the query or the data is wrong: the caller gets `503` with
/// `Retry-After` instead of `500`, and the same process recovers once the database is back.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_) => true,
        // SQLSTATE class 08 (connection exception), 57P01-57P03 (administrator or crash
        // shutdown, cannot connect now) and 53300 (too many connections), PostgreSQL
        // appendix A.
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Option<Backend> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }
}

/// Cheap to clone: a handle on the connection pool.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite has one writer at a time. Transactions that write on the hot path (code
    /// redemption, refresh rotation) queue here, in process, instead of in SQLite's busy
    /// handler, which sleeps 1, 2, 5, 10 … ms between attempts: under 64 concurrent refreshes
    /// those sleeps, not the work, set the pace (BENCHMARKS.md, token endpoint).
    write_gate: Arc<tokio::sync::Mutex<()>>,
}

impl Store {
    /// Connect (creating an SQLite file if needed) and apply pending migrations.
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url).ok_or_else(|| {
            anyhow::anyhow!("DATABASE_URL must start with sqlite:// or postgres://")
        })?;
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}mode=rwc")
            }
            _ => url.to_string(),
        };
        // Statement logging would put tokens' hashes and personal data in the log at debug level.
        let options = AnyConnectOptions::from_str(&url)?.disable_statement_logging();
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        // 16 MiB of page cache per connection instead of SQLite's 2 MiB: a
                        // policy-cache miss on a 1,000,000-student file reads index pages that
                        // then stay in memory instead of coming back through the kernel.
                        conn.execute("PRAGMA cache_size = -16384").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        let store = Store {
            pool,
            backend,
            write_gate: Arc::default(),
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> anyhow::Result<()> {
        match self.backend {
            Backend::Sqlite => {
                sqlx::migrate!("./migrations/sqlite")
                    .run(&self.pool)
                    .await?
            }
            Backend::Postgres => {
                sqlx::migrate!("./migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Readiness: can we run a query?
    pub async fn ping(&self) -> DbResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    /// True when the database holds no school yet (so `--demo` may load its data).
    pub async fn is_empty(&self) -> DbResult<bool> {
        let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM schools")
            .fetch_one(&self.pool)
            .await?;
        Ok(count == 0)
    }

    /// Hold this across a write transaction on the hot path (see `write_gate`); nothing to
    /// wait for on PostgreSQL, whose row locks let writers proceed side by side.
    pub async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.backend {
            Backend::Sqlite => Some(self.write_gate.lock().await),
            Backend::Postgres => None,
        }
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// `$first, $first+1, …` for an `IN (…)` list of `count` bound values (both backends number
/// their parameters this way through sqlx's `Any` driver). Callers keep `count` at most
/// [`MAX_IN_LIST`], well under SQLite's limit of 32,766 parameters.
pub fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The most values one `IN (…)` list of a bulk read binds.
pub const MAX_IN_LIST: usize = 1000;

/// Unix seconds, the storage representation of a moment.
pub fn ts(at: DateTime<Utc>) -> i64 {
    at.timestamp()
}

pub fn from_ts(secs: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(secs, 0).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// A new random identifier for rows that have no natural key.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
