//! All SQL lives here. One set of queries serves SQLite and PostgreSQL through sqlx's
//! `Any` driver (`$1` placeholders work on both); backend-specific SQL only where the
//! engines truly differ. Times are Unix seconds, flags 0/1 integers (what `Any` decodes).

pub mod api_tokens;
pub mod backup;
mod columns;
pub mod events;
pub mod imap;
pub mod invitations;
pub mod jobs;
pub mod leader;
pub mod live;
pub mod messages;
pub mod oauth;
pub mod outbox;
pub mod quarantine;
pub mod queue;
pub mod raw;
pub mod reports;
pub mod retention;
pub mod serve_lock;
pub mod sessions;
pub mod settings;
pub mod tasks;
pub mod throttle;
pub mod tickets;
pub mod transfer;
pub mod unit_of_work;
pub mod upgrade;
pub mod users;
pub mod webhooks;

use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyConnection, AnyPool, ConnectOptions, Executor};

pub use crate::config::Backend;
pub use unit_of_work::UnitOfWork;

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
    /// The database could not be opened, said plainly (which host, which file, what to do).
    #[error("{message}")]
    Connect {
        message: String,
        failure: ConnectFailure,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectFailure {
    /// The server refused or did not answer: it may be back soon.
    Unreachable,
    /// The server answers but has no such database.
    NoDatabase,
    /// The SQLite file or its directory cannot be created or written.
    CannotCreate,
    Other,
}

impl StoreError {
    /// A failure that may pass by itself (connection lost, database locked, server
    /// restarting): the caller should retry later rather than give up on the data.
    pub fn is_temporary(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable(_)
                | StoreError::Connect {
                    failure: ConnectFailure::Unreachable | ConnectFailure::Other,
                    ..
                }
        )
    }

    /// PostgreSQL aborted the transaction as a deadlock victim or a serialization
    /// failure: nothing of it was kept, and running it again at once normally succeeds.
    pub fn is_aborted_transaction(&self) -> bool {
        match self {
            StoreError::Unavailable(sqlx::Error::Database(db)) => {
                matches!(db.code().as_deref(), Some("40001" | "40P01"))
            }
            _ => false,
        }
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

/// A snapshot of the connection pool (for `/metrics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUse {
    pub open: u32,
    pub idle: usize,
    pub max: u32,
}

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
                    std::fs::create_dir_all(&parent).map_err(|e| StoreError::Connect {
                        message: format!(
                            "cannot create the database directory {}: {e}",
                            parent.display()
                        ),
                        failure: ConnectFailure::CannotCreate,
                    })?;
                }
            }
        }
        let options: AnyConnectOptions = with_create_mode(url, backend)
            .parse::<AnyConnectOptions>()
            .map_err(StoreError::Database)?
            .log_statements(tracing::log::LevelFilter::Trace)
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(2));
        // One direct attempt first: a pool would retry a refused connection until its
        // acquire timeout and then only say "pool timed out".
        probe(url, backend, &options).await?;
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { max_connections.max(2) } else { max_connections })
            .acquire_timeout(Duration::from_secs(10))
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for > PING_IF_IDLE_FOR {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
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

    /// The pool's open connections, how many of them are idle, and its limit.
    pub fn pool_use(&self) -> PoolUse {
        PoolUse {
            open: self.pool.size(),
            idle: self.pool.num_idle(),
            max: self.pool.options().get_max_connections(),
        }
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
        // sqlx locks migrations on PostgreSQL only: two processes starting at once on
        // one SQLite file (`serve` and a `maildesk` command) would both apply a migration
        // ("duplicate column", seen in a test). A lock file beside the database orders them.
        let leader = leader::Leader::acquire(self, leader::LeaderKey::Migration).await?;
        let result = self.migrate_leading(migrator).await;
        leader.release().await;
        result
    }

    async fn migrate_leading(&self, migrator: &Migrator) -> Result<()> {
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

async fn probe(url: &str, backend: Backend, options: &AnyConnectOptions) -> Result<()> {
    use sqlx::Connection;
    let attempt = tokio::time::timeout(
        Duration::from_secs(10),
        AnyConnection::connect_with(options),
    );
    match attempt.await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(connect_error(url, backend, &e)),
        Err(_) => Err(StoreError::Connect {
            message: format!(
                "no answer from the database at {} within 10 s",
                where_of(url, backend)
            ),
            failure: ConnectFailure::Unreachable,
        }),
    }
}

/// `host:port` of a server URL, or the file of a SQLite one (never the password).
fn where_of(url: &str, backend: Backend) -> String {
    match backend {
        Backend::Sqlite => crate::config::sqlite_file(url)
            .map_or_else(|| url.to_string(), |f| f.display().to_string()),
        Backend::Postgres => match url::Url::parse(url) {
            Ok(parsed) => match parsed.host_str() {
                Some(host) if !host.is_empty() => {
                    format!("{host}:{}", parsed.port().unwrap_or(5432))
                }
                _ => String::new(),
            },
            // Never the URL itself: it may hold a password.
            Err(_) => "the database server".to_string(),
        },
    }
}

fn database_name(url: &str) -> String {
    url::Url::parse(url)
        .map(|parsed| parsed.path().trim_start_matches('/').to_string())
        .unwrap_or_default()
}

fn connect_error(url: &str, backend: Backend, e: &sqlx::Error) -> StoreError {
    let place = where_of(url, backend);
    let (message, failure) = match e {
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => (
            format!("connection refused at {place}: is the database server running there?"),
            ConnectFailure::Unreachable,
        ),
        sqlx::Error::Io(io) => (
            format!("cannot reach the database at {place}: {io}"),
            ConnectFailure::Unreachable,
        ),
        sqlx::Error::Database(db) if db.code().as_deref() == Some("3D000") => {
            let name = database_name(url);
            (
                format!("the database {name:?} does not exist at {place}: create it (e.g. `createdb -h {} {name}`, or CREATE DATABASE {name}) and start again", place.rsplit_once(':').map_or(place.as_str(), |(h, _)| h)),
                ConnectFailure::NoDatabase,
            )
        }
        sqlx::Error::Database(db) if backend == Backend::Sqlite => (
            format!("cannot open the SQLite database {place}: {} (is its directory writable by this user?)", db.message()),
            ConnectFailure::CannotCreate,
        ),
        other => (
            format!("cannot open the database at {place}: {other}"),
            ConnectFailure::Other,
        ),
    };
    StoreError::Connect { message, failure }
}

/// SQLite opens read-write and creates the file when missing.
fn with_create_mode(url: &str, backend: Backend) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    match backend {
        Backend::Sqlite if !url.contains("mode=") && !url.contains(":memory:") => {
            format!("{url}{separator}mode=rwc")
        }
        // TLS to a server on this machine protects nothing (whoever can read loopback
        // traffic is root here) and costs a fifth of a ticket create's CPU; libpq's
        // `prefer` would use it. An explicit `sslmode` is kept as given.
        Backend::Postgres if !url.contains("sslmode=") && database_is_local(url) => {
            format!("{url}{separator}sslmode=disable")
        }
        _ => url.to_string(),
    }
}

/// Whether a `postgres://` URL reaches a server on this machine (see [`crate::net`]).
fn database_is_local(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|url| crate::net::database_is_local(&url))
}

/// Connections that waited longer than this in the pool are pinged before use: one left
/// idle through a server restart is found dead and replaced. A busy pool skips the round
/// trip (nor is a connection pinged on its release: see vendor/README.md), so a
/// connection killed under it fails the one request that uses it next.
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(1);

/// Whether a statement built for `n` values is worth keeping prepared on the connection:
/// the few short shapes (one to a handful of values) recur on every ticket; longer ones
/// would only crowd the statement cache.
pub(crate) fn keep_prepared(n: usize) -> bool {
    n <= 8
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
    fn a_database_on_this_machine_is_reached_without_tls_unless_asked() {
        let pg = |url| with_create_mode(url, Backend::Postgres);
        assert_eq!(
            pg("postgres://u:p@127.0.0.1:5432/md"),
            "postgres://u:p@127.0.0.1:5432/md?sslmode=disable"
        );
        assert_eq!(
            pg("postgres://localhost/md?application_name=x"),
            "postgres://localhost/md?application_name=x&sslmode=disable"
        );
        assert_eq!(
            pg("postgres://[::1]:5432/md"),
            "postgres://[::1]:5432/md?sslmode=disable"
        );
        for kept in [
            "postgres://127.0.0.1/md?sslmode=require",
            "postgres://db.example/md",
            "postgres://u:p@10.0.0.5/md",
            "postgres://localhost.example.org/md",
        ] {
            assert_eq!(pg(kept), kept);
        }
    }

    #[test]
    fn connection_places_never_show_passwords() {
        assert_eq!(
            where_of("postgres://u:pw@db.example:5433/md", Backend::Postgres),
            "db.example:5433"
        );
        assert_eq!(
            where_of(
                "postgres://u:pw@db.example/md?sslmode=require",
                Backend::Postgres
            ),
            "db.example:5432"
        );
        assert_eq!(
            database_name("postgres://u:pw@db.example/md?sslmode=require"),
            "md"
        );
        assert_eq!(
            where_of("sqlite:///var/lib/md/m.db", Backend::Sqlite),
            "/var/lib/md/m.db"
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
