//! One `serve` per SQLite database (several only on PostgreSQL), while the other commands
//! keep working beside the daemon.

use std::time::Duration;

use crate::support::{is_postgres, kill, terminate, wait_until, Spawned, TestEnv};

const STARTED: &str = "maildesk started";

async fn started(env: &TestEnv, times: usize) -> bool {
    wait_until(Duration::from_secs(30), || async {
        env.log().matches(STARTED).count() >= times
    })
    .await
}

/// Waits (bounded) for a process that should stop by itself; its exit code.
fn exit_code(child: &mut Spawned, limit: Duration) -> Option<i32> {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if let Ok(Some(status)) = child.try_wait() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[tokio::test]
async fn a_second_serve_on_one_sqlite_file_is_refused_until_the_first_dies() {
    let env = TestEnv::new().await;
    let mut first = env.spawn_serve();
    assert!(started(&env, 1).await, "log:\n{}", env.log());

    let mut second = env.spawn_serve();
    if is_postgres() {
        // Instances share one PostgreSQL (mailbox leases, outbox claims): both run.
        assert!(started(&env, 2).await, "log:\n{}", env.log());
        assert!(second.try_wait().unwrap().is_none(), "log:\n{}", env.log());
        terminate(&mut second, Duration::from_secs(15));
        terminate(&mut first, Duration::from_secs(15));
        return;
    }
    let code = exit_code(&mut second, Duration::from_secs(30));
    let database = env.dir.path().join("maildesk.db");
    assert_eq!(code, Some(75), "EX_TEMPFAIL; log:\n{}", env.log());
    assert!(
        env.log().contains(&format!(
            "another `maildesk serve` is already running on the SQLite database {}",
            database.display()
        )),
        "the refusal names the database; log:\n{}",
        env.log()
    );
    assert_eq!(env.log().matches(STARTED).count(), 1, "{}", env.log());

    // The admin and the MTA keep working beside the daemon.
    let mail = b"From: ann@customer.example\r\nTo: support@example.com\r\nSubject: Printer\r\nMessage-ID: <lock-1@customer.example>\r\n\r\nIt jams.\r\n";
    let out = env.cli(&["ingest"], Some(mail));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let password = env.dir.path().join("pw");
    std::fs::write(&password, "correct horse battery\n").unwrap();
    let out = env.cli(
        &[
            "user",
            "add",
            "ann@example.com",
            "--name",
            "Ann",
            "--role",
            "admin",
            "--password-file",
            password.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let copy = env.dir.path().join("copy.db");
    let out = env.cli(&["backup", copy.to_str().unwrap()], None);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The lock dies with its process, also on SIGKILL: the next daemon starts.
    kill(&mut first);
    let mut third = env.spawn_serve();
    assert!(started(&env, 2).await, "log:\n{}", env.log());
    assert!(third.try_wait().unwrap().is_none(), "log:\n{}", env.log());
    terminate(&mut third, Duration::from_secs(15));
}
