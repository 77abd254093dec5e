//! The systemd unit as systemd reads it (`systemd-analyze verify` and `security`), and
//! `serve` speaking sd_notify: READY=1, WATCHDOG=1, STOPPING=1.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{terminate, TestEnv};

const UNIT: &str = include_str!("../../systemd/maildesk.service");

fn systemd_analyze() -> PathBuf {
    for dir in ["/usr/bin", "/bin", "/usr/local/bin"] {
        let path = Path::new(dir).join("systemd-analyze");
        if path.is_file() {
            return path;
        }
    }
    panic!("systemd-analyze is missing: install Debian's systemd package (apt-get install --no-install-recommends systemd; scripts/test does)");
}

/// The unit with its ExecStart pointing at the binary under test: `verify` refuses a
/// command that does not exist.
fn unit_in(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("maildesk.service");
    let text = text.replace("/usr/local/bin/maildesk", env!("CARGO_BIN_EXE_maildesk"));
    assert!(
        !text.contains("/usr/local/bin/"),
        "every command of the unit is the maildesk binary"
    );
    std::fs::write(&path, text).expect("write unit");
    path
}

/// `systemd-analyze verify` exits 0 even for an unknown key or a bad value (it only
/// warns, "…ignoring"): any line about our unit is a failure here. Lines about other
/// units (it also loads the machine's units ours names, e.g. postgresql.service) are
/// not ours to judge: a machine with a unit that makes it warn must not fail this test.
fn verify(unit: &Path) -> Result<(), String> {
    let output = Command::new(systemd_analyze())
        .arg("verify")
        .arg(unit)
        .env("SYSTEMD_LOG_COLOR", "0")
        .output()
        .expect("run systemd-analyze verify");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let about_ours = lines_about(&said, unit);
    if about_ours.is_empty() {
        Ok(())
    } else {
        Err(format!("{}: {}", output.status, about_ours.join("\n")))
    }
}

/// The lines of `systemd-analyze` output that name `unit` (by path or by unit name).
fn lines_about<'a>(said: &'a str, unit: &Path) -> Vec<&'a str> {
    let path = unit.display().to_string();
    let name = unit.file_name().unwrap().to_string_lossy().to_string();
    said.lines()
        .filter(|line| line.contains(&path) || line.contains(&name))
        .collect()
}

#[test]
fn only_lines_about_our_unit_count() {
    let unit = Path::new("/tmp/x/maildesk.service");
    let said = "/lib/systemd/system/other.service:7: Unknown key name 'Foo' in section 'Service', ignoring.\n\
                /tmp/x/maildesk.service:3: Unknown key name 'ProtectEverything' in section 'Service', ignoring.\n\
                maildesk.service: Command /nowhere is not executable: No such file or directory\n";
    assert_eq!(lines_about(said, unit).len(), 2);
    assert!(lines_about("other.service: fine\n", unit).is_empty());
}

#[test]
fn the_unit_verifies_cleanly_and_a_broken_one_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_in(dir.path(), UNIT);
    if let Err(e) = verify(&unit) {
        panic!("systemd-analyze verify {}: {e}", unit.display());
    }
    for key in ["Type=notify", "WatchdogSec=", "RestartPreventExitStatus="] {
        assert!(UNIT.contains(key), "the unit sets {key}");
    }
    // The check itself catches what it must: an unknown key and an unparsable value.
    let broken = dir.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    for (find, replace) in [
        ("UMask=0077", "UMask=0077\nProtectEverything=yes"),
        ("WatchdogSec=60s", "WatchdogSec=sixty"),
    ] {
        let unit = unit_in(&broken, &UNIT.replace(find, replace));
        assert!(
            verify(&unit).is_err(),
            "verify must refuse the unit with {replace:?}"
        );
    }
}

/// systemd's own rating (src/analyze/analyze-security.c): exposure under 5.0 is "OK",
/// under 1.0 "SAFE", 0 "PERFECT"; from 5.0 on "MEDIUM" and worse.
#[test]
fn the_unit_is_rated_ok_or_better_by_systemd_analyze_security() {
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_in(dir.path(), UNIT);
    let output = Command::new(systemd_analyze())
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&unit)
        .env("SYSTEMD_COLORS", "0")
        .output()
        .expect("run systemd-analyze security");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "systemd-analyze security --offline=yes failed ({}): {}{}",
        output.status,
        text,
        String::from_utf8_lossy(&output.stderr)
    );
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no overall exposure level in:\n{text}"));
    println!("{}", line.trim());
    let mut words = line
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .split_whitespace();
    let score: f64 = words
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no score in {line:?}"));
    let label = words.next().unwrap_or_default();
    assert!(
        ["OK", "SAFE", "PERFECT"].contains(&label) && score < 5.0,
        "the unit is rated {score} {label}, worse than OK:\n{text}"
    );
}

/// Receives the next notification, at most `limit` from now.
fn receive(
    socket: &UnixDatagram,
    limit: Duration,
    serve: &mut std::process::Child,
    env: &TestEnv,
) -> String {
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 4096];
    loop {
        match socket.recv(&mut buf) {
            Ok(n) => return String::from_utf8_lossy(&buf[..n]).into_owned(),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("notify socket: {e}"),
        }
        let exited = serve.try_wait().ok().flatten();
        assert!(
            exited.is_none() && Instant::now() < deadline,
            "no notification from maildesk serve within {limit:?} (exited: {exited:?}); its log:\n{}",
            env.log()
        );
    }
}

/// One GET, no retry: (status, body).
fn http_get_once(port: u16, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

async fn applied_migrations(env: &TestEnv) -> i64 {
    let store = maildesk::store::Store::connect(&env.database_url, 1)
        .await
        .expect("open the database");
    let count = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(store.pool())
        .await
        .expect("count migrations");
    store.close().await;
    count
}

fn migration_files() -> i64 {
    let engine = if crate::support::is_postgres() {
        "postgres"
    } else {
        "sqlite"
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(engine);
    std::fs::read_dir(dir)
        .expect("migrations dir")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql"))
        })
        .count() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_notifies_ready_after_migrations_and_listener_then_pings_and_says_stopping() {
    let env = TestEnv::new().await;
    let socket_path = env.dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind the notify socket");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let notify_socket = socket_path.display().to_string();
    // A watchdog of 2 s: a ping about every second.
    let mut serve = env.spawn_with_env(
        &["--set", crate::support::ANY_PORT, "serve"],
        &[
            ("NOTIFY_SOCKET", notify_socket.as_str()),
            ("WATCHDOG_USEC", "2000000"),
        ],
    );

    let mut before = Vec::new();
    let ready = loop {
        let message = receive(&socket, Duration::from_secs(60), &mut serve, &env);
        if message.lines().any(|l| l == "READY=1") {
            break message;
        }
        before.push(message);
    };
    // The moment READY=1 arrives, the portal answers at the first attempt and the
    // schema is complete: what `systemctl start` promises the units ordered after it.
    let port = crate::support::daemon::bound_address(&env.log())
        .expect("the start line, logged before READY=1, names the bound address")
        .port();
    let (status, body) = http_get_once(port, "/healthz");
    assert_eq!(
        (status, body.trim()),
        (200, "ok"),
        "/healthz right at READY=1"
    );
    assert_eq!(
        applied_migrations(&env).await,
        migration_files(),
        "every migration applied before READY=1"
    );
    assert!(
        ready.contains("STATUS=serving on 127.0.0.1:"),
        "READY=1 comes with a status line: {ready:?}"
    );
    assert!(
        before
            .iter()
            .flat_map(|m| m.lines())
            .all(|l| l.starts_with("STATUS=")),
        "before READY=1 only status lines: {before:?}"
    );
    assert!(
        before.iter().any(|m| m.contains("STATUS=migrating")),
        "the status says it migrates: {before:?}"
    );

    let mut pings = 0;
    while pings < 2 {
        let message = receive(&socket, Duration::from_secs(30), &mut serve, &env);
        assert!(!message.contains("STOPPING"), "{message:?}");
        if message.lines().any(|l| l == "WATCHDOG=1") {
            pings += 1;
        }
    }

    terminate(&mut serve, Duration::from_secs(20))
        .unwrap_or_else(|| panic!("serve did not stop on SIGTERM; its log:\n{}", env.log()));
    assert!(
        serve.try_wait().unwrap().is_some_and(|s| s.success()),
        "serve exits 0"
    );
    // Everything it sent is queued in the socket; STOPPING=1 is among the last.
    socket.set_nonblocking(true).unwrap();
    let mut rest = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = socket.recv(&mut buf) {
        rest.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(
        rest.iter().any(|m| m.lines().any(|l| l == "STOPPING=1")),
        "STOPPING=1 on SIGTERM; received after the pings: {rest:?}"
    );
}

/// `RestartPreventExitStatus=64 73 78`: `serve` must exit with those codes for the
/// errors a restart cannot fix.
#[tokio::test]
async fn serve_exits_78_on_a_configuration_error_so_systemd_does_not_restart_it() {
    let env = TestEnv::new().await;
    let output = env.cli(&["--set", "web.lisen=127.0.0.1:1", "serve"], None);
    assert_eq!(
        output.status.code(),
        Some(78),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// IMAP and SMTP passwords may be systemd credentials, readable only inside the service:
/// the MTA's `ingest` and the admin commands work without them; what needs them says so.
#[tokio::test]
async fn connection_password_files_are_read_only_by_what_connects() {
    let env = TestEnv::with_config(
        "[[mailbox]]\nname = \"support\"\nhost = \"127.0.0.1\"\nport = 1\nsecurity = \"plain\"\nusername = \"support\"\npassword_file = \"/run/credentials/maildesk.service/imap-support\"\n\n[smtp]\nhost = \"127.0.0.1\"\nport = 9\nsecurity = \"plain\"\nusername = \"support\"\npassword_file = \"/run/credentials/maildesk.service/smtp\"\n",
    )
    .await;
    let stdout = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).into_owned();
    let stderr = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();
    let ingest = env.cli(
        &["ingest", "--mailbox", "support"],
        Some(b"From: a@example.org\r\nSubject: hi\r\nMessage-ID: <c@example.org>\r\n\r\nhello\r\n"),
    );
    assert_eq!(ingest.status.code(), Some(0), "{}", stderr(&ingest));
    let list = env.cli(&["ticket", "list"], None);
    assert_eq!(list.status.code(), Some(0), "{}", stderr(&list));
    for command in [&["fetch", "--once"][..], &["send", "--once"][..]] {
        let output = env.cli(command, None);
        assert_eq!(
            output.status.code(),
            Some(78),
            "{command:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output)
                .contains("password_file: cannot read /run/credentials/maildesk.service/"),
            "{command:?}: {}",
            stderr(&output)
        );
    }
    let check = env.cli(&["check"], None);
    assert_eq!(check.status.code(), Some(1), "{}", stdout(&check));
    assert!(stdout(&check).contains("secrets: "), "{}", stdout(&check));
}
