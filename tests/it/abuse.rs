//! What an outside attacker tried (issue 21), against the real daemon or the router with
//! real parallel clients: anonymous requests that cost argon2's memory, bursts that
//! raced the throttles, slow clients that held connections, and live-update streams
//! without end. Each must stay bounded, exact and answered.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::api::{call, Auth};
use crate::support::browser::{add_user, serve_with, ADMIN, PASSWORD, STAFF};
use crate::support::daemon::wait_until_serving;
use crate::support::portal::Portal;
use crate::support::ANY_PORT;
use crate::support::{wait_until, Spawned, TestEnv};

/// One request to the daemon on 127.0.0.1 (a connection of its own).
async fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Option<(u16, String, String)> {
    let localhost = [127, 0, 0, 1].into();
    crate::support::http_request(localhost, port, method, path, headers, body).await
}

async fn post_json(port: u16, path: &str, body: serde_json::Value) -> Option<(u16, String)> {
    let (status, _, body) = request(
        port,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        &body.to_string(),
    )
    .await?;
    Some((status, body))
}

/// A kernel figure of the process in /proc (`VmRSS`, `VmHWM`), in kB.
fn proc_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

fn port_of(base: &str) -> u16 {
    base.rsplit(':').next().unwrap().parse().unwrap()
}

/// Asks `/healthz` over and over until `done`; the slowest answer it saw.
fn watch_health(port: u16, done: Arc<AtomicBool>) -> tokio::task::JoinHandle<Duration> {
    tokio::spawn(async move {
        let mut slowest = Duration::ZERO;
        while !done.load(Ordering::SeqCst) {
            let started = Instant::now();
            let answer = tokio::time::timeout(
                Duration::from_secs(5),
                request(port, "GET", "/healthz", &[], ""),
            )
            .await;
            let took = started.elapsed();
            assert!(
                matches!(answer, Ok(Some((200, _, _)))),
                "/healthz did not answer 200: {answer:?}"
            );
            slowest = slowest.max(took);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        slowest
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn anonymous_requests_cannot_make_the_daemon_hash_without_bound() {
    let env = TestEnv::new().await;
    add_user(&env, ADMIN, "Ada Admin", "admin");
    let (daemon, base) = serve_with(
        &env,
        &[
            // One of the two cores hashes, the other serves (/healthz must answer).
            "web.password_hashes_at_once=1",
            "web.password_hash_wait_ms=1500",
            // Every sign-in must reach the hashing (the throttle would stop most).
            "web.login_failures_per_client=100000",
            "web.api_per_client_per_minute=100000",
        ],
    )
    .await;
    let (port, pid) = (port_of(&base), daemon.id());
    let before = proc_kb(pid, "VmRSS");
    let done = Arc::new(AtomicBool::new(false));
    let health = watch_health(port, done.clone());
    let mut attackers = Vec::new();
    for n in 0..150 {
        attackers.push(tokio::spawn(async move {
            let registration = json!({"token": format!("made-up-{n}"), "name": "Mallory", "password": "a long password 123"});
            post_json(port, "/api/v1/auth/register", registration).await
        }));
    }
    for n in 0..100 {
        attackers.push(tokio::spawn(async move {
            let sign_in =
                json!({"email": format!("nobody{n}@example.org"), "password": "guess guess guess"});
            post_json(port, "/api/v1/auth/login", sign_in).await
        }));
    }
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for attacker in attackers {
        let (status, body) = attacker.await.unwrap().expect("every request is answered");
        assert!((400..600).contains(&status), "{status}: {body}");
        assert!(!body.trim().is_empty(), "{status} without a body");
        *statuses.entry(status).or_default() += 1;
    }
    done.store(true, Ordering::SeqCst);
    let slowest = health.await.unwrap();
    let peak = proc_kb(pid, "VmHWM");
    let grown_mb = peak.saturating_sub(before) / 1024;
    eprintln!("answers {statuses:?}; RSS {before} kB before, peak {peak} kB (+{grown_mb} MB); slowest /healthz {slowest:?}");
    assert_eq!(
        statuses.get(&410),
        Some(&150),
        "made-up invitations: {statuses:?}"
    );
    assert_eq!(
        statuses.get(&401).unwrap_or(&0) + statuses.get(&503).unwrap_or(&0),
        100,
        "unknown accounts: wrong, or busy: {statuses:?}"
    );
    assert!(grown_mb < 300, "the daemon grew by {grown_mb} MB");
    assert!(
        slowest < Duration::from_secs(2),
        "/healthz took {slowest:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_wrong_passwords_gets_exactly_the_limit_checked() {
    let portal = Arc::new(Portal::with_config("\n[web]\nlogin_failures_per_account = 5\n").await);
    let email = crate::support::portal::STAFF;
    let attempts: Vec<_> = (0..40)
        .map(|_| {
            let portal = portal.clone();
            tokio::spawn(async move {
                let wrong = json!({"email": email, "password": "not the password"});
                call(
                    &portal,
                    "POST",
                    "/api/v1/auth/login",
                    &Auth::Nobody,
                    Some(wrong),
                    None,
                )
                .await
                .status
            })
        })
        .collect();
    let mut checked = 0;
    let mut throttled = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            StatusCode::UNAUTHORIZED => checked += 1,
            StatusCode::TOO_MANY_REQUESTS => throttled += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((checked, throttled), (5, 35));
    // The right password now waits for the window like any other attempt.
    let right = json!({"email": email, "password": crate::support::portal::PASSWORD});
    let response = call(
        &portal,
        "POST",
        "/api/v1/auth/login",
        &Auth::Nobody,
        Some(right),
        None,
    )
    .await;
    assert_eq!(response.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = response.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((800..=900).contains(&retry), "Retry-After {retry}");
    // Another account is untouched, and the portal's form answers the same.
    let other = portal
        .try_sign_in(crate::support::portal::ADMIN, "wrong")
        .await;
    assert_eq!(other.status, StatusCode::UNAUTHORIZED);
    let form = portal
        .try_sign_in(email, crate::support::portal::PASSWORD)
        .await;
    assert_eq!(form.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_submissions_from_one_address_accepts_exactly_the_limit() {
    let portal = Arc::new(
        crate::support::public::public_portal("public_per_address = 5\npublic_per_client = 1000")
            .await,
    );
    let browser = crate::support::public::visitor(&portal, "/").await;
    for burst in 0..3 {
        let email = format!("burst{burst}@example.net");
        let sent: Vec<_> = (0..10)
            .map(|n| {
                let (portal, browser, email) = (portal.clone(), browser.clone(), email.clone());
                tokio::spawn(async move {
                    let subject = format!("Burst {burst} #{n}");
                    crate::support::public::post_multipart(
                        &portal,
                        &browser,
                        "/",
                        &crate::support::public::form(&email, &subject),
                        &[],
                        "192.0.2.7",
                    )
                    .await
                    .status
                })
            })
            .collect();
        let mut accepted = 0;
        for status in sent {
            match status.await.unwrap() {
                StatusCode::OK => accepted += 1,
                StatusCode::TOO_MANY_REQUESTS => {}
                other => panic!("unexpected {other}"),
            }
        }
        assert_eq!(accepted, 5, "burst {burst}");
    }
    assert_eq!(crate::support::public::ticket_count(&portal).await, 15);
}

/// `maildesk serve` started under `ulimit -n files`, up.
async fn serve_with_file_limit(env: &TestEnv, files: u32, settings: &[&str]) -> (Spawned, u16) {
    let log = std::fs::File::create(env.log_path()).unwrap();
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("ulimit -n {files} && exec \"$@\""))
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_maildesk"))
        .arg("--config")
        .arg(&env.config_path)
        .args(["--set", ANY_PORT]);
    for setting in settings {
        command.args(["--set", setting]);
    }
    command
        .arg("serve")
        .env("MAILDESK_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    let mut daemon = Spawned(command.spawn().expect("start maildesk"));
    match wait_until_serving(&mut daemon, &env.log_path(), 0).await {
        Ok(address) => (daemon, address.port()),
        Err(log) => panic!("maildesk serve did not come up; its log:\n{log}"),
    }
}

/// Whether the server closed this connection within `limit` (EOF or reset).
async fn closed_within(mut stream: TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 512];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => continue, // e.g. a 408 before the close
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_clients_are_closed_and_the_server_keeps_answering() {
    let env = TestEnv::new().await;
    let (_daemon, port) = serve_with_file_limit(
        &env,
        1024,
        &[
            "web.header_read_timeout_seconds=2",
            "web.idle_timeout_seconds=3",
        ],
    )
    .await;
    assert!(
        env.log()
            .contains("web.max_connections lowered to fit the open-file limit"),
        "{}",
        env.log()
    );
    let done = Arc::new(AtomicBool::new(false));
    let health = watch_health(port, done.clone());
    let mut slow = Vec::new();
    for _ in 0..300 {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: example\r\nX-Slow: 1")
            .await
            .unwrap();
        slow.push(stream);
    }
    // Headers sent, the body never finished: the idle timeout closes it.
    let mut stalled = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stalled
        .write_all(b"POST /api/v1/auth/login HTTP/1.1\r\nHost: example\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"email\":")
        .await
        .unwrap();
    let started = Instant::now();
    let closed = Arc::new(AtomicU64::new(0));
    let watchers: Vec<_> = slow
        .into_iter()
        .map(|stream| {
            let closed = closed.clone();
            tokio::spawn(async move {
                if closed_within(stream, Duration::from_secs(60)).await {
                    closed.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for watcher in watchers {
        watcher.await.unwrap();
    }
    let took = started.elapsed();
    assert!(
        closed_within(stalled, Duration::from_secs(10)).await,
        "a stalled upload stays open"
    );
    done.store(true, Ordering::SeqCst);
    let slowest = health.await.unwrap();
    let closed = closed.load(Ordering::SeqCst);
    eprintln!(
        "{closed} of 300 half-sent requests closed in {took:?}; slowest /healthz {slowest:?}"
    );
    assert!(closed >= 270, "only {closed} of 300 closed");
    assert!(took < Duration::from_secs(30), "{took:?}");
    assert!(
        slowest < Duration::from_secs(2),
        "/healthz took {slowest:?}"
    );
}

/// Signs in through the API; the session cookie (`name=value`).
async fn session_cookie(port: u16, email: &str) -> String {
    let (status, head, body) = request(
        port,
        "POST",
        "/api/v1/auth/login",
        &[("Content-Type", "application/json")],
        &json!({"email": email, "password": PASSWORD}).to_string(),
    )
    .await
    .expect("sign-in answered");
    assert_eq!(status, 200, "{body}");
    head.lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_string()
}

/// Opens `/portal/events`; the status and, when it is 200, the open stream.
async fn open_stream(port: u16, cookie: &str) -> (u16, Option<TcpStream>) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let text = format!(
        "GET /portal/events HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\nAccept: text/event-stream\r\n\r\n"
    );
    stream.write_all(text.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte))
            .await
            .expect("an answer")
            .unwrap();
        assert!(n > 0, "closed before the head ended");
        head.push(byte[0]);
    }
    let status = String::from_utf8_lossy(&head)
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    (status, (status == 200).then_some(stream))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_update_streams_are_capped_per_session_and_in_all() {
    let env = TestEnv::new().await;
    add_user(&env, ADMIN, "Ada Admin", "admin");
    add_user(&env, STAFF, "Sam Staff", "staff");
    let (_daemon, base) = serve_with(
        &env,
        &["web.live_streams_per_session=3", "web.live_streams_total=5"],
    )
    .await;
    let port = port_of(&base);
    let (ada, sam) = (
        session_cookie(port, ADMIN).await,
        session_cookie(port, STAFF).await,
    );
    let mut ada_streams = Vec::new();
    for _ in 0..3 {
        let (status, stream) = open_stream(port, &ada).await;
        assert_eq!(status, 200);
        ada_streams.push(stream.unwrap());
    }
    assert_eq!(
        open_stream(port, &ada).await.0,
        429,
        "a 4th for one session"
    );
    let mut sam_streams = Vec::new();
    for _ in 0..2 {
        let (status, stream) = open_stream(port, &sam).await;
        assert_eq!(status, 200);
        sam_streams.push(stream.unwrap());
    }
    assert_eq!(open_stream(port, &sam).await.0, 429, "a 6th in all");
    // A stream that ends gives its place back.
    drop(ada_streams.pop());
    let reopened = wait_until(Duration::from_secs(5), || async {
        open_stream(port, &sam).await.0 == 200
    })
    .await;
    assert!(reopened, "the freed place is not given to another session");
}

#[tokio::test]
async fn a_signed_in_session_cannot_be_used_to_guess_the_password() {
    let portal = Portal::with_config("\n[web]\nlogin_failures_per_account = 3\n").await;
    let sam = portal.sign_in(STAFF).await;
    let change = |current: &'static str| {
        let (portal, sam) = (&portal, &sam);
        async move {
            portal
                .post(
                    sam,
                    "/portal/account/password",
                    &[
                        ("current", current),
                        ("new", "a new password 2"),
                        ("confirm", "a new password 2"),
                    ],
                )
                .await
        }
    };
    for _ in 0..3 {
        let wrong = change("not it").await;
        assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            wrong.body.contains("not your current password"),
            "{}",
            wrong.body
        );
    }
    // The sign-in throttle counts these guesses: now even the right password waits.
    let refused = change(crate::support::portal::PASSWORD).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.body.contains("too many wrong passwords"),
        "{}",
        refused.body
    );
    let sign_in = portal
        .try_sign_in(STAFF, crate::support::portal::PASSWORD)
        .await;
    assert_eq!(sign_in.status, StatusCode::TOO_MANY_REQUESTS);
}
