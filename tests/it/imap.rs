//! IMAP ingestion against a real Dovecot: nothing lost, nothing doubled, crashes,
//! restarts, bad passwords, \Seen mail, IDLE and TLS.

use std::time::{Duration, Instant};

use maildesk::store::{self, Store};
use serde_json::Value;

use crate::support::mail::Dovecot;
use crate::support::{corpus_dir, kill, terminate, wait_until, TestEnv};

const USER: &str = "support@example.com";
const PASSWORD: &str = "secret";

fn message(tag: &str, i: usize) -> Vec<u8> {
    format!(
        "From: Customer {i} <c{i}@customer.example>\r\nTo: support@example.com\r\nSubject: {tag} request {i}\r\nMessage-ID: <{tag}-{i}@customer.example>\r\nDate: Mon, 2 Jan 2023 10:00:00 +0000\r\n\r\nPlease help with {i}.\r\n"
    )
    .into_bytes()
}

async fn message_count(store: &Store) -> i64 {
    let mut conn = store.acquire().await.unwrap();
    store::messages::count(&mut conn).await.unwrap()
}

/// Every message of a ticket list, reduced to what must not depend on the way in.
fn summary(env: &TestEnv) -> Vec<String> {
    let tickets = env.cli_json(&["ticket", "list", "--json"]);
    let mut lines = Vec::new();
    for t in tickets.as_array().unwrap() {
        let detail = env.cli_json(&["ticket", "show", t["ref"].as_str().unwrap(), "--json"]);
        for m in detail["messages"].as_array().unwrap() {
            let attachments: Vec<String> = m["attachments"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| format!("{} {}", a["filename"], a["content_type"]))
                .collect();
            let text = m["text"].as_str().unwrap().replace("\r\n", "\n");
            // Dovecot serves messages with CRLF line ends, so a raw-hash-based id differs.
            let id = m["message_id"].as_str().unwrap();
            let id = if id.ends_with("@synthesized.maildesk.invalid") {
                "(synthesized)"
            } else {
                id
            };
            lines.push(format!(
                "{} | {} | {} | {} | {} | {} | {:?} | {}",
                detail["subject"],
                detail["requester"],
                m["from"],
                m["subject"],
                id,
                m["kind"],
                attachments,
                text.trim().len()
            ));
        }
    }
    lines.sort();
    lines
}

fn quarantine_reasons(env: &TestEnv) -> Vec<String> {
    let mut reasons: Vec<String> = env
        .cli_json(&["quarantine", "list", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap().to_string())
        .collect();
    reasons.sort();
    reasons
}

#[tokio::test]
async fn the_corpus_through_imap_is_stored_as_piped_and_moved() {
    let dovecot = Dovecot::start(&[(USER, PASSWORD)], false);
    let limits = "[ingest]\nmax_message_bytes = 300000\n";
    let env = TestEnv::with_config(&format!(
        "{limits}{}",
        dovecot.mailbox_toml("support", USER, PASSWORD, "")
    ))
    .await;
    let piped = TestEnv::with_config(limits).await;

    let dir = corpus_dir();
    let index = std::fs::read_to_string(dir.join("index.jsonl")).unwrap();
    let mut files: Vec<std::path::PathBuf> = index
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            dir.join(
                serde_json::from_str::<Value>(l).unwrap()["file"]
                    .as_str()
                    .unwrap(),
            )
        })
        .collect();
    // IMAP literals cannot carry NUL bytes (RFC 3501 4.3): Dovecot rewrites such content,
    // so those few messages could not match their piped twins byte for byte.
    files.retain(|f| !std::fs::read(f).unwrap().contains(&0));
    let oversized = piped.dir.path().join("oversized.eml");
    std::fs::write(
        &oversized,
        [message("big", 1), vec![b'x'; 400_000]].concat(),
    )
    .unwrap();
    files.push(oversized);
    let raws: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    dovecot.append(USER, PASSWORD, "INBOX", &raws, None).await;

    let out = env.cli(&["fetch", "--once"], None);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut args = vec!["ingest".to_string()];
    args.extend(files.iter().map(|f| f.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(piped.cli(&args, None).status.code(), Some(0));

    let (via_imap, via_pipe) = (summary(&env), summary(&piped));
    let only_imap: Vec<_> = via_imap.iter().filter(|l| !via_pipe.contains(l)).collect();
    let only_pipe: Vec<_> = via_pipe.iter().filter(|l| !via_imap.contains(l)).collect();
    assert!(
        only_imap.is_empty() && only_pipe.is_empty(),
        "IMAP and piped ingest differ:\nonly via IMAP: {only_imap:#?}\nonly piped: {only_pipe:#?}"
    );
    assert_eq!(via_imap.len(), via_pipe.len());
    let reasons = quarantine_reasons(&env);
    assert_eq!(reasons, quarantine_reasons(&piped));
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert_eq!(
        dovecot.count(USER, PASSWORD, "INBOX").await,
        0,
        "every message left the inbox"
    );
    assert_eq!(dovecot.count(USER, PASSWORD, "Quarantine").await, 1);
    assert_eq!(
        dovecot.count(USER, PASSWORD, "Processed").await,
        raws.len() - 1
    );

    // A second run finds nothing new.
    let again = env.cli(&["fetch", "--once"], None);
    assert!(
        String::from_utf8_lossy(&again.stdout)
            .contains("created: 0, threaded: 0, duplicates: 0, quarantined: 0"),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
}

#[tokio::test]
async fn seen_messages_are_taken_in_and_other_modes_keep_them() {
    let dovecot = Dovecot::start(&[(USER, PASSWORD)], false);
    let env =
        TestEnv::with_config(&dovecot.mailbox_toml("support", USER, PASSWORD, "after = \"seen\""))
            .await;
    let read: Vec<Vec<u8>> = (0..3).map(|i| message("read", i)).collect();
    dovecot
        .append(USER, PASSWORD, "INBOX", &read, Some("(\\Seen)"))
        .await;
    dovecot
        .append(USER, PASSWORD, "INBOX", &[message("unread", 0)], None)
        .await;
    let out = env.cli(&["fetch", "--once"], None);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("created: 4"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // after = "seen": all stay in the inbox, now flagged \Seen, and are not fetched again.
    let flags = dovecot.flags(USER, PASSWORD, "INBOX").await;
    assert_eq!(flags.len(), 4);
    assert!(flags.iter().all(|f| f.contains("Seen")), "{flags:?}");
    dovecot
        .append(USER, PASSWORD, "INBOX", &[message("later", 0)], None)
        .await;
    let out = env.cli(&["fetch", "--once"], None);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("created: 1, threaded: 0, duplicates: 0"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test]
async fn a_wrong_password_fails_only_its_own_mailbox() {
    let dovecot = Dovecot::start(&[(USER, PASSWORD), ("sales@example.com", "right")], false);
    let config = format!(
        "{}{}",
        dovecot.mailbox_toml("support", USER, PASSWORD, ""),
        dovecot.mailbox_toml("sales", "sales@example.com", "wrong", "")
    );
    let env = TestEnv::with_config(&config).await;
    let good: Vec<Vec<u8>> = (0..5).map(|i| message("good", i)).collect();
    dovecot.append(USER, PASSWORD, "INBOX", &good, None).await;
    dovecot
        .append(
            "sales@example.com",
            "right",
            "INBOX",
            &[message("sales", 0)],
            None,
        )
        .await;

    let out = env.cli(&["fetch", "--once"], None);
    assert_eq!(
        out.status.code(),
        Some(75),
        "a failed mailbox means: try again later"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("mailbox sales") && stderr.contains("refused the login"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("support: created: 5"));
    let check = env.cli(&["check"], None);
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(report.contains("mailbox support: ok"), "{report}");
    assert!(
        report.contains("mailbox sales: ERROR") && report.contains("refused the login"),
        "{report}"
    );
    assert_eq!(
        dovecot.count("sales@example.com", "right", "INBOX").await,
        1,
        "nothing touched in the failing mailbox"
    );

    // The daemon keeps the good mailbox working while the bad one retries.
    let store = env.store().await;
    let mut daemon = env.spawn_serve();
    dovecot
        .append(USER, PASSWORD, "INBOX", &[message("while-bad", 0)], None)
        .await;
    let arrived = wait_until(Duration::from_secs(10), || async {
        message_count(&store).await == 6
    })
    .await;
    // The good mailbox may well be done before the bad one has logged its first failure.
    let named = wait_until(Duration::from_secs(10), || async {
        env.log().contains("sales")
    })
    .await;
    terminate(&mut daemon, Duration::from_secs(15));
    assert!(arrived, "log:\n{}", env.log());
    assert!(named, "the error names the mailbox:\n{}", env.log());
}

#[tokio::test]
async fn idle_delivers_within_two_seconds_and_sigterm_stops_quickly() {
    let dovecot = Dovecot::start(&[(USER, PASSWORD)], false);
    let env = TestEnv::with_config(&dovecot.mailbox_toml(
        "support",
        USER,
        PASSWORD,
        "poll_seconds = 3600",
    ))
    .await;
    let store = env.store().await;
    let mut daemon = env.spawn_serve();
    let connected = wait_until(Duration::from_secs(10), || async {
        let mut conn = store.acquire().await.unwrap();
        store::imap::state(&mut conn, "support")
            .await
            .unwrap()
            .and_then(|s| s.last_success_at)
            .is_some()
    })
    .await;
    assert!(connected, "log:\n{}", env.log());
    tokio::time::sleep(Duration::from_millis(300)).await; // let it enter IDLE
    dovecot
        .append(USER, PASSWORD, "INBOX", &[message("idle", 0)], None)
        .await;
    let start = Instant::now();
    let arrived = wait_until(Duration::from_secs(5), || async {
        message_count(&store).await == 1
    })
    .await;
    let elapsed = start.elapsed();
    let stopped = terminate(&mut daemon, Duration::from_secs(15));
    assert!(
        arrived && elapsed < Duration::from_secs(2),
        "took {elapsed:?}; log:\n{}",
        env.log()
    );
    let stopped = stopped.expect("the daemon exits on SIGTERM");
    assert!(
        stopped < Duration::from_secs(10),
        "took {stopped:?} to stop"
    );
}

#[tokio::test]
async fn mail_appended_during_a_sync_all_arrives_within_two_seconds() {
    let dovecot = Dovecot::start(&[(USER, PASSWORD)], false);
    // Small batches: a sync is many commands (fetch, commit, fetch … move), and mail
    // appended while it runs is announced amid them.
    let env = TestEnv::with_config(&format!(
        "[ingest]\nbatch_messages = 5\n{}",
        dovecot.mailbox_toml("support", USER, PASSWORD, "poll_seconds = 3600")
    ))
    .await;
    let store = env.store().await;
    let mut daemon = env.spawn_serve();
    let connected = wait_until(Duration::from_secs(10), || async {
        let mut conn = store.acquire().await.unwrap();
        store::imap::state(&mut conn, "support")
            .await
            .unwrap()
            .and_then(|s| s.last_success_at)
            .is_some()
    })
    .await;
    assert!(connected, "log:\n{}", env.log());
    // Each round: a burst appended one by one; as soon as the daemon has stored part of
    // it (so it is mid-sync, past its search) a few more, which arrive while it fetches,
    // stores or moves. Nothing follows them that could wake the daemon again, so each
    // round shows whether mail that arrives during a sync waits for the next mail.
    const ROUNDS: usize = 10;
    const BURST: usize = 20;
    const LATE: usize = 3;
    let mut session = dovecot.session(USER, PASSWORD).await;
    let mut appended = 0;
    let mut slowest = Duration::ZERO;
    let mut failure = None;
    for round in 1..=ROUNDS {
        let before = appended;
        for _ in 0..BURST {
            session
                .append("INBOX", None, None, &message("stream", appended))
                .await
                .unwrap();
            appended += 1;
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while message_count(&store).await as usize == before && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        for _ in 0..LATE {
            session
                .append("INBOX", None, None, &message("stream", appended))
                .await
                .unwrap();
            appended += 1;
        }
        let start = Instant::now();
        let arrived = wait_until(Duration::from_secs(5), || async {
            message_count(&store).await as usize == appended
        })
        .await;
        let elapsed = start.elapsed();
        slowest = slowest.max(elapsed);
        if !arrived || elapsed >= Duration::from_secs(2) {
            failure = Some(format!(
                "round {round}: {} of {appended} messages stored {elapsed:?} after the last append",
                message_count(&store).await
            ));
            break;
        }
    }
    let _ = session.logout().await;
    terminate(&mut daemon, Duration::from_secs(15));
    println!("{appended} appended; the slowest round was in {slowest:?} after its last append");
    if let Some(failure) = failure {
        panic!(
            "{failure}: mail that arrived during a sync waited for the next mail; log:\n{}",
            env.log()
        );
    }
    assert_eq!(dovecot.count(USER, PASSWORD, "INBOX").await, 0);
    assert_eq!(
        dovecot.count(USER, PASSWORD, "Processed").await,
        ROUNDS * (BURST + LATE)
    );
}

#[tokio::test]
async fn killed_again_and_again_the_daemon_stores_every_message_exactly_once() {
    let dovecot = Dovecot::start(&[(USER, PASSWORD)], false);
    // Small batches: many commits, so a kill can land before, inside or after one.
    let env = TestEnv::with_config(&format!(
        "[ingest]\nbatch_messages = 3\n{}",
        dovecot.mailbox_toml("support", USER, PASSWORD, "")
    ))
    .await;
    let store = env.store().await;
    const TOTAL: usize = 500;
    const ROUNDS: usize = 12;
    let mut rng_state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next_random = move |limit: u64| {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        rng_state % limit
    };
    let per_round = TOTAL.div_ceil(ROUNDS);
    let mut appended = 0;
    let mut kills = 0;
    let mut killed_mid_ingest = 0;
    for _ in 0..ROUNDS {
        let batch: Vec<Vec<u8>> = (appended..(appended + per_round).min(TOTAL))
            .map(|i| message("crash", i))
            .collect();
        appended += batch.len();
        dovecot.append(USER, PASSWORD, "INBOX", &batch, None).await;
        let before = message_count(&store).await;
        let mut daemon = env.spawn_serve();
        // Kill once a random part of this round's mail is in, plus a random few ms:
        // somewhere inside fetching, a transaction, or the moves after it.
        let target = before + 1 + next_random(batch.len() as u64 - 1) as i64;
        // Poll tightly: a whole round can be taken in within a few tens of milliseconds.
        let deadline = Instant::now() + Duration::from_secs(10);
        while message_count(&store).await < target && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(Duration::from_millis(next_random(4))).await;
        kill(&mut daemon); // SIGKILL
        kills += 1;
        let (stored, waiting) = (
            message_count(&store).await,
            dovecot.count(USER, PASSWORD, "INBOX").await,
        );
        println!("kill {kills}: {stored} stored, {waiting} still in the inbox");
        if stored > before && waiting > 0 {
            killed_mid_ingest += 1;
        }
    }
    let recovered = env
        .log()
        .matches("finishing post-actions left from an earlier run")
        .count();
    println!("{killed_mid_ingest} kills landed with mail half taken in; {recovered} restarts finished a post-action a kill interrupted");
    assert!(
        killed_mid_ingest >= 5,
        "the kills should hit the daemon while it works"
    );
    assert!(kills >= 10);
    let mut daemon = env.spawn_serve();
    let done = wait_until(Duration::from_secs(60), || async {
        message_count(&store).await as usize >= TOTAL
            && dovecot.count(USER, PASSWORD, "INBOX").await == 0
    })
    .await;
    terminate(&mut daemon, Duration::from_secs(15));
    assert!(
        done,
        "inbox {} left, {} stored; log:\n{}",
        dovecot.count(USER, PASSWORD, "INBOX").await,
        message_count(&store).await,
        env.log()
    );

    assert_eq!(
        message_count(&store).await as usize,
        TOTAL,
        "no message doubled"
    );
    let tickets = env.cli_json(&["ticket", "list", "--json"]);
    let mut subjects: Vec<String> = tickets
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["subject"].as_str().unwrap().to_string())
        .collect();
    subjects.sort();
    subjects.dedup();
    assert_eq!(subjects.len(), TOTAL, "one ticket per message, none lost");
    assert_eq!(
        dovecot.count(USER, PASSWORD, "Processed").await,
        TOTAL,
        "each moved exactly once"
    );
}

#[tokio::test]
async fn the_daemon_reconnects_after_dovecot_restarts() {
    let mut dovecot = Dovecot::start(&[(USER, PASSWORD)], false);
    let env = TestEnv::with_config(&dovecot.mailbox_toml("support", USER, PASSWORD, "")).await;
    let store = env.store().await;
    let first: Vec<Vec<u8>> = (0..100).map(|i| message("before", i)).collect();
    dovecot.append(USER, PASSWORD, "INBOX", &first, None).await;
    let mut daemon = env.spawn_serve();
    let started = wait_until(Duration::from_secs(10), || async {
        message_count(&store).await > 0
    })
    .await;
    assert!(started, "log:\n{}", env.log());
    dovecot.stop();
    // A fixed pause, not a condition: an IDLE connection may only notice the restart
    // after it (Dovecot's stop can leave the idling process to the kernel), and both
    // orders must end with every message stored.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    dovecot.start_again();
    let second: Vec<Vec<u8>> = (0..100).map(|i| message("after", i)).collect();
    dovecot.append(USER, PASSWORD, "INBOX", &second, None).await;
    let done = wait_until(Duration::from_secs(30), || async {
        message_count(&store).await == 200
    })
    .await;
    terminate(&mut daemon, Duration::from_secs(15));
    assert!(
        done,
        "{} stored; log:\n{}",
        message_count(&store).await,
        env.log()
    );
    assert_eq!(dovecot.count(USER, PASSWORD, "INBOX").await, 0);
}

#[tokio::test]
async fn implicit_tls_and_starttls_with_a_private_ca() {
    let dovecot = Dovecot::start(&[(USER, PASSWORD), ("tls2@example.com", "pw2")], true);
    let ca = dovecot.tls.as_ref().unwrap().ca_file.display().to_string();
    let config = format!(
        "[[mailbox]]\nname = \"imaps\"\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"tls\"\nusername = \"{USER}\"\npassword = \"{PASSWORD}\"\nca_file = \"{ca}\"\n\n\
         [[mailbox]]\nname = \"starttls\"\nhost = \"localhost\"\nport = {}\nsecurity = \"starttls\"\nusername = \"tls2@example.com\"\npassword = \"pw2\"\nca_file = \"{ca}\"\n\n\
         [[mailbox]]\nname = \"untrusted\"\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"tls\"\nusername = \"{USER}\"\npassword = \"{PASSWORD}\"\n",
        dovecot.imaps_port, dovecot.imap_port, dovecot.imaps_port
    );
    let env = TestEnv::with_config(&config).await;
    dovecot
        .append(USER, PASSWORD, "INBOX", &[message("imaps", 0)], None)
        .await;
    dovecot
        .append(
            "tls2@example.com",
            "pw2",
            "INBOX",
            &[message("starttls", 0)],
            None,
        )
        .await;
    let imaps = env.cli(&["fetch", "--once", "--mailbox", "imaps"], None);
    assert_eq!(
        imaps.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&imaps.stderr)
    );
    let starttls = env.cli(&["fetch", "--once", "--mailbox", "starttls"], None);
    assert_eq!(
        starttls.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&starttls.stderr)
    );
    let subjects: Vec<String> = env
        .cli_json(&["ticket", "list", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["subject"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(subjects, ["imaps request 0", "starttls request 0"]);
    let untrusted = env.cli(&["fetch", "--once", "--mailbox", "untrusted"], None);
    assert_eq!(untrusted.status.code(), Some(75));
    assert!(
        String::from_utf8_lossy(&untrusted.stderr).contains("TLS"),
        "{}",
        String::from_utf8_lossy(&untrusted.stderr)
    );
}

#[tokio::test]
async fn a_new_uidvalidity_rescans_without_doubling() {
    let dovecot = Dovecot::start(&[(USER, PASSWORD)], false);
    // Watch a folder we can delete and recreate: the server gives it a new UIDVALIDITY.
    let env = TestEnv::with_config(&dovecot.mailbox_toml(
        "support",
        USER,
        PASSWORD,
        "folder = \"Support\"\nafter = \"none\"",
    ))
    .await;
    let first: Vec<Vec<u8>> = (0..5).map(|i| message("uidv", i)).collect();
    dovecot
        .append(USER, PASSWORD, "Support", &first, None)
        .await;
    assert!(
        String::from_utf8_lossy(&env.cli(&["fetch", "--once"], None).stdout).contains("created: 5")
    );

    let mut session = dovecot.session(USER, PASSWORD).await;
    session.delete("Support").await.unwrap();
    session.create("Support").await.unwrap();
    let _ = session.logout().await;
    // The same five come back (a restored backup), plus one new message.
    let mut again = first.clone();
    again.push(message("uidv", 5));
    dovecot
        .append(USER, PASSWORD, "Support", &again, None)
        .await;

    let out = env.cli(&["fetch", "--once"], None);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains("created: 1, threaded: 0, duplicates: 5"),
        "{report}"
    );
    assert_eq!(
        env.cli_json(&["ticket", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        6
    );
}

#[tokio::test]
async fn without_move_and_uidplus_the_post_action_copies_flags_and_expunges() {
    // A server that advertises neither MOVE nor UIDPLUS (older or minimal servers).
    let dovecot = Dovecot::start_with(
        &[(USER, PASSWORD)],
        false,
        "imap_capability = IMAP4rev1 IDLE",
    );
    let env = TestEnv::with_config(&dovecot.mailbox_toml("support", USER, PASSWORD, "")).await;
    let messages: Vec<Vec<u8>> = (0..4).map(|i| message("nomove", i)).collect();
    dovecot
        .append(USER, PASSWORD, "INBOX", &messages, None)
        .await;
    let out = env.cli(&["fetch", "--once"], None);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("created: 4"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(dovecot.count(USER, PASSWORD, "INBOX").await, 0);
    assert_eq!(dovecot.count(USER, PASSWORD, "Processed").await, 4);
}

#[tokio::test]
async fn two_instances_share_a_mailbox_and_the_standby_takes_over() {
    if !crate::support::is_postgres() {
        // On SQLite a second `serve` is refused (serve_lock.rs): one instance per file.
        return;
    }
    let dovecot = Dovecot::start(&[(USER, PASSWORD)], false);
    let env = TestEnv::with_config(&dovecot.mailbox_toml("support", USER, PASSWORD, "")).await;
    let store = env.store().await;
    let mut first = env.spawn_serve();
    let first_leads = wait_until(Duration::from_secs(10), || async {
        env.log().contains("connected")
    })
    .await;
    assert!(first_leads, "log:\n{}", env.log());
    let mut second = env.spawn_serve();
    let batch: Vec<Vec<u8>> = (0..100).map(|i| message("shared", i)).collect();
    dovecot.append(USER, PASSWORD, "INBOX", &batch, None).await;
    assert!(
        wait_until(Duration::from_secs(20), || async {
            message_count(&store).await == 100
        })
        .await,
        "log:\n{}",
        env.log()
    );
    assert!(
        env.log()
            .contains("another instance is watching this mailbox"),
        "the second instance stands by:\n{}",
        env.log()
    );
    assert_eq!(
        env.log().matches(" connected").count(),
        1,
        "only the leader talks to the server"
    );

    // The leader dies; the standby takes over and keeps taking mail in.
    kill(&mut first);
    dovecot
        .append(
            USER,
            PASSWORD,
            "INBOX",
            &[message("after-failover", 0)],
            None,
        )
        .await;
    let taken_over = wait_until(Duration::from_secs(30), || async {
        message_count(&store).await == 101
    })
    .await;
    terminate(&mut second, Duration::from_secs(15));
    assert!(taken_over, "log:\n{}", env.log());
    assert_eq!(dovecot.count(USER, PASSWORD, "Processed").await, 101);
}
