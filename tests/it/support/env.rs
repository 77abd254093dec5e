//! One test's world: a throwaway database (a SQLite file in a temp dir, or a fresh
//! PostgreSQL database on 127.0.0.1:5432), a config file, the maildesk binary's commands.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use maildesk::config::{Config, Sources};
use maildesk::inbound::ingest::{Ingestor, Origin, Outcome};
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
