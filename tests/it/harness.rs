//! Starts what the tests need: a throwaway database (a SQLite file in a temp dir, or a
//! fresh PostgreSQL database on 127.0.0.1:5432), a config file, the maildesk binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use maildesk::config::{Config, Sources};
use maildesk::ingest::{Ingestor, Origin, Outcome};
use maildesk::store::Store;

/// PostgreSQL admin URL for creating and dropping test databases.
fn postgres_admin_url() -> String {
    std::env::var("MAILDESK_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn backend() -> &'static str {
    match std::env::var("MAILDESK_TEST_DB").as_deref() {
        Ok("postgres") => "postgres",
        Ok("sqlite") | Err(_) => "sqlite",
        Ok(other) => panic!("MAILDESK_TEST_DB={other:?}: expected sqlite or postgres"),
    }
}

pub fn is_postgres() -> bool {
    backend() == "postgres"
}

/// One test's world: a temp dir, a database, a config file pointing at it.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub database_url: String,
    pub config_path: PathBuf,
    pub config: Config,
    pg_database: Option<String>,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl TestEnv {
    pub async fn new() -> TestEnv {
        Self::with_config("").await
    }

    /// `extra` is appended to the generated config.toml (e.g. `[[mailbox]]` tables).
    pub async fn with_config(extra: &str) -> TestEnv {
        Self::with_helpdesk("", extra).await
    }

    /// Like [`TestEnv::with_config`], with `helpdesk` lines added to the `[helpdesk]` table.
    pub async fn with_helpdesk(helpdesk: &str, extra: &str) -> TestEnv {
        Self::with_engine(is_postgres(), helpdesk, extra).await
    }

    /// [`TestEnv::with_helpdesk`] on the given engine, whatever MAILDESK_TEST_DB says
    /// (moving a database from one engine to the other needs both).
    pub async fn with_engine(postgres: bool, helpdesk: &str, extra: &str) -> TestEnv {
        let dir = tempfile::tempdir().expect("temp dir");
        let (database_url, pg_database) = if postgres {
            let name = format!(
                "maildesk_test_{}_{}_{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::SeqCst),
                rand_suffix()
            );
            create_pg_database(&name).await;
            let base = postgres_admin_url();
            let url = format!(
                "{}/{name}",
                base.rsplit_once('/').map(|(b, _)| b).unwrap_or(&base)
            );
            (url, Some(name))
        } else {
            (
                format!("sqlite://{}/maildesk.db", dir.path().display()),
                None,
            )
        };
        let config_path = dir.path().join("config.toml");
        let text = format!(
            "[database]\nurl = {database_url:?}\n\n[helpdesk]\nsupport_addresses = [\"support@example.com\"]\nsubject_prefix = \"Support\"\nsigning_secret = \"test-secret-0123456789abcdef\"\nreopen_closed_days = 14\n{helpdesk}\n\n{extra}\n"
        );
        std::fs::write(&config_path, text).expect("write config");
        let config = Config::load(&Sources {
            file: Some(config_path.clone()),
            file_required: true,
            env: vec![],
            overrides: vec![],
        })
        .expect("test config is valid");
        TestEnv {
            dir,
            database_url,
            config_path,
            config,
            pg_database,
        }
    }

    pub async fn store(&self) -> Store {
        let store = Store::connect(&self.database_url, 4)
            .await
            .unwrap_or_else(|e| panic!("cannot open the test database {}: {e}", self.database_url));
        store.migrate().await.expect("migrations apply");
        store
    }

    pub async fn ingestor(&self) -> Ingestor {
        Ingestor::open(&self.config, self.store().await)
            .await
            .expect("ingestor")
    }

    /// Runs the maildesk binary with this env's config.
    pub fn cli(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        run_binary(&self.config_path, args, stdin, &[])
    }

    pub fn cli_json(&self, args: &[&str]) -> serde_json::Value {
        let output = self.cli(args, None);
        assert!(
            output.status.success(),
            "maildesk {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "maildesk {args:?} printed no JSON ({e}): {}",
                String::from_utf8_lossy(&output.stdout)
            )
        })
    }
}

pub fn run_binary(
    config: &Path,
    args: &[&str],
    stdin: Option<&[u8]>,
    env: &[(&str, &str)],
) -> Output {
    use std::io::Write;
    let mut command = Command::new(env!("CARGO_BIN_EXE_maildesk"));
    command
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // The harness's own MAILDESK_TEST_* variables are not configuration keys.
    for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("MAILDESK_")) {
        command.env_remove(name);
    }
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("run maildesk");
    let mut pipe = child.stdin.take().expect("stdin");
    // The command may stop reading early (a refused oversized message): not an error here.
    if let Err(e) = pipe.write_all(stdin.unwrap_or_default()) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {e}");
    }
    drop(pipe);
    child.wait_with_output().expect("maildesk output")
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if let Some(name) = self.pg_database.take() {
            // Drop runs inside the test's runtime: use a thread with its own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(drop_pg_database(&name));
            })
            .join();
        }
    }
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default()
}

async fn admin_connection() -> sqlx::PgConnection {
    use sqlx::Connection;
    let url = postgres_admin_url();
    sqlx::PgConnection::connect(&url).await.unwrap_or_else(|e| {
        panic!("PostgreSQL is needed for MAILDESK_TEST_DB=postgres but {url} is not reachable: {e}. Start it (pg_ctlcluster 15 main start) or set MAILDESK_TEST_PG_URL.")
    })
}

async fn create_pg_database(name: &str) {
    use sqlx::Executor;
    let mut conn = admin_connection().await;
    conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
}

async fn drop_pg_database(name: &str) {
    use sqlx::Executor;
    let mut conn = admin_connection().await;
    let _ = conn
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .await;
}

/// Ingests one message given as text.
pub async fn ingest_text(ingestor: &Ingestor, raw: &str) -> Outcome {
    let origin = Origin::new("test", None);
    ingestor
        .ingest(raw.as_bytes(), &origin)
        .await
        .expect("message stored")
}

/// The corpus folder: ../shared/mail-corpus beside the repository (or MAILDESK_CORPUS).
pub fn corpus_dir() -> PathBuf {
    let dir = std::env::var_os("MAILDESK_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/mail-corpus"));
    assert!(dir.join("index.jsonl").is_file(), "the mail corpus is missing: expected {}/index.jsonl (../shared beside the clone, or set MAILDESK_CORPUS)", dir.display());
    dir
}

impl TestEnv {
    /// Starts a long-running maildesk command (e.g. `serve`) with its output in a log file.
    pub fn spawn(&self, args: &[&str]) -> Spawned {
        self.spawn_with_env(args, &[])
    }

    /// [`TestEnv::spawn`] with extra environment variables.
    pub fn spawn_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Spawned {
        self.spawn_logging_to(&self.log_path(), args, env)
    }

    /// [`TestEnv::spawn_with_env`] with the output in a log file of its own (several
    /// instances, each telling what it does).
    pub fn spawn_logging_to(&self, log: &Path, args: &[&str], env: &[(&str, &str)]) -> Spawned {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_maildesk"));
        command
            .arg("--config")
            .arg(&self.config_path)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("MAILDESK_")) {
            command.env_remove(name);
        }
        command.env("MAILDESK_LOG", "info");
        for (k, v) in env {
            command.env(k, v);
        }
        Spawned(command.spawn().expect("start maildesk"))
    }

    /// `maildesk serve` on a free port.
    pub fn spawn_serve(&self) -> Spawned {
        let listen = format!("web.listen=127.0.0.1:{}", crate::dovecot::free_port());
        self.spawn(&["--set", &listen, "serve"])
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("maildesk.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }
}

/// A maildesk process started by a test: killed when the test ends, also when an
/// assertion fails first (no daemons left running after a failed test).
pub struct Spawned(pub std::process::Child);

impl std::ops::Deref for Spawned {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for Spawned {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        kill(&mut self.0);
    }
}

/// Polls `check` until it is true or `limit` passes; returns whether it became true.
pub async fn eventually<F, Fut>(limit: std::time::Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

pub fn kill(child: &mut std::process::Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// SIGTERM, then wait (at most `limit`) for the process to exit; returns how long it took.
pub fn terminate(
    child: &mut std::process::Child,
    limit: std::time::Duration,
) -> Option<std::time::Duration> {
    let start = std::time::Instant::now();
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    while start.elapsed() < limit {
        if let Ok(Some(_)) = child.try_wait() {
            return Some(start.elapsed());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    kill(child);
    None
}

/// One HTTP/1.1 request on a connection of its own (`Connection: close`) to `ip:port`:
/// the status, the head (lowercase) and the body; `None` when nothing answers.
pub async fn http_request(
    ip: std::net::IpAddr,
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Option<(u16, String, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect((ip, port)).await.ok()?;
    let mut text =
        format!("{method} {path} HTTP/1.1\r\nHost: {ip}:{port}\r\nConnection: close\r\n");
    if !body.is_empty() || method != "GET" {
        text.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(body);
    stream.write_all(text.as_bytes()).await.ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.ok()?;
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, head.to_ascii_lowercase(), body.to_string()))
}
