//! All SQL lives here. One set of queries serves SQLite and PostgreSQL through sqlx's
//! `Any` driver (`$1` placeholders work on both); backend-specific SQL only where the
//! engines truly differ. Times are Unix seconds, flags 0/1 integers (what `Any` decodes).

pub mod events;
pub mod imap;
pub mod messages;
pub mod outbox;
pub mod quarantine;
pub mod queue;
pub mod raw;
pub mod sessions;
pub mod settings;
pub mod tickets;
pub mod upgrade;
pub mod users;

use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyConnection, AnyPool, ConnectOptions, Executor};

pub use crate::config::Backend;

pub type Tx = sqlx::Transaction<'static, sqlx::Any>;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database cannot be reached or is busy: try again later.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// A failure that may pass by itself (connection lost, database locked, server
    /// restarting): the caller should retry later rather than give up on the data.
    pub fn is_temporary(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }

    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::Conflict(_))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        use sqlx::Error as E;
        match &error {
            E::Io(_)
            | E::Tls(_)
            | E::PoolTimedOut
            | E::PoolClosed
            | E::WorkerCrashed
            | E::Protocol(_) => StoreError::Unavailable(error),
            E::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(db.message().to_string())
            }
            E::Database(db) if is_transient_code(db.code().as_deref(), db.message()) => {
                StoreError::Unavailable(error)
            }
            E::RowNotFound => StoreError::NotFound("row".into()),
            _ => StoreError::Database(error),
        }
    }
}

fn is_transient_code(code: Option<&str>, message: &str) -> bool {
    match code {
        // SQLite: SQLITE_BUSY, SQLITE_LOCKED (and their extended codes, at most 4 digits;
        // a 5-character code is a PostgreSQL SQLSTATE such as 22021, whose low byte is 5).
        Some(c)
            if c.len() <= 4
                && c.parse::<u32>()
                    .is_ok_and(|n| n & 0xff == 5 || n & 0xff == 6) =>
        {
            true
        }
        // PostgreSQL: connection exceptions, shutdown, too many connections, serialization.
        Some(c)
            if c.starts_with("08")
                || c.starts_with("57P")
                || c == "53300"
                || c == "40001"
                || c == "40P01" =>
        {
            true
        }
        _ => message.contains("database is locked"),
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// The database: a pool plus which engine it is.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// The SQLite database file (for lock files beside it), if any.
    sqlite_file: Option<std::path::PathBuf>,
}

impl Store {
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url).ok_or_else(|| {
            StoreError::Database(sqlx::Error::Configuration(
                "unsupported database URL".into(),
            ))
        })?;
        if backend == Backend::Sqlite {
            if let Some(parent) =
                crate::config::sqlite_file(url).and_then(|f| f.parent().map(|p| p.to_path_buf()))
            {
                if !parent.as_os_str().is_empty() {
                    std::fs::create_dir_all(&parent)
                        .map_err(|e| StoreError::Unavailable(sqlx::Error::Io(e)))?;
                }
            }
        }
        let options: AnyConnectOptions = with_create_mode(url, backend)
            .parse::<AnyConnectOptions>()
            .map_err(StoreError::Database)?
            .log_statements(tracing::log::LevelFilter::Trace)
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(2));
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { max_connections.max(2) } else { max_connections })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL: readers never block the writer; NORMAL is durable in WAL mode
                        // except for the last transactions on power loss, not on a crash.
                        conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        let sqlite_file = (backend == Backend::Sqlite)
            .then(|| crate::config::sqlite_file(url))
            .flatten();
        Ok(Store {
            pool,
            backend,
            sqlite_file,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn sqlite_file(&self) -> Option<&std::path::Path> {
        self.sqlite_file.as_deref()
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Brings the schema up to date, then the data that depends on the code (see
    /// [`upgrade`]: content hashes made by an older version are recomputed).
    pub async fn migrate(&self) -> Result<()> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&self.pool).await?;
        upgrade::content_hashes(self).await?;
        Ok(())
    }

    /// A write transaction. On SQLite it takes the write lock up front (`BEGIN IMMEDIATE`):
    /// a deferred transaction that reads first and then writes can fail with "database is
    /// locked" when another writer got there in between, without waiting.
    pub async fn begin(&self) -> Result<Tx> {
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(tx)
    }

    pub async fn acquire(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>> {
        Ok(self.pool.acquire().await?)
    }

    /// Cheap liveness check for `/readyz` and `maildesk check`.
    pub async fn ping(&self) -> Result<()> {
        let mut conn = self.acquire().await?;
        sqlx::query("SELECT 1").execute(&mut *conn).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// SQLite opens read-write and creates the file when missing.
fn with_create_mode(url: &str, backend: Backend) -> String {
    if backend == Backend::Sqlite && !url.contains("mode=") && !url.contains(":memory:") {
        let separator = if url.contains('?') { '&' } else { '?' };
        format!("{url}{separator}mode=rwc")
    } else {
        url.to_string()
    }
}

/// `$1, $2, …` for a list of `n` values starting at `first`.
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

pub type Conn = AnyConnection;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholder_lists() {
        assert_eq!(placeholders(3, 2), "$3, $4");
        assert_eq!(placeholders(1, 0), "");
    }

    #[test]
    fn sqlite_urls_get_create_mode() {
        assert_eq!(
            with_create_mode("sqlite://a.db", Backend::Sqlite),
            "sqlite://a.db?mode=rwc"
        );
        assert_eq!(
            with_create_mode("sqlite://a.db?x=1", Backend::Sqlite),
            "sqlite://a.db?x=1&mode=rwc"
        );
        assert_eq!(
            with_create_mode("postgres://h/d", Backend::Postgres),
            "postgres://h/d"
        );
    }

    #[test]
    fn transient_codes() {
        assert!(is_transient_code(Some("5"), ""));
        assert!(is_transient_code(Some("517"), ""));
        assert!(is_transient_code(Some("57P01"), ""));
        assert!(!is_transient_code(Some("23505"), ""));
        assert!(!is_transient_code(Some("19"), ""));
        // PostgreSQL "invalid byte sequence" (22021 & 0xff == 5) is not SQLITE_BUSY.
        assert!(!is_transient_code(Some("22021"), ""));
    }
}
