//! One message, many ways in (issue 7 part 6): piped by the MTA with LF line ends,
//! fetched over IMAP with CRLF, imported from an LF mbox: stored once. And a database
//! from before the canonical content hash gets its stored hashes recomputed.

use std::path::PathBuf;

use maildesk::inbound::ingest::{Ingestor, Origin, Outcome};
use maildesk::store::{self, Store};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::support::mail::Dovecot;
use crate::support::{corpus_dir, TestEnv};

const USER: &str = "support@example.com";
const PASSWORD: &str = "secret";
const LIMITS: &str = "[ingest]\nmax_message_bytes = 300000\n";

fn corpus_files() -> Vec<PathBuf> {
    let dir = corpus_dir();
    std::fs::read_to_string(dir.join("index.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            dir.join(
                serde_json::from_str::<Value>(l).unwrap()["file"]
                    .as_str()
                    .unwrap(),
            )
        })
        .collect()
}

/// The corpus as it is (LF, CRLF or mixed), plus one message over the size limit, so
/// the quarantine is tried too.
fn corpus_and_an_oversized_message() -> Vec<(String, Vec<u8>)> {
    let mut raws: Vec<(String, Vec<u8>)> = corpus_files()
        .iter()
        .map(|f| (f.display().to_string(), std::fs::read(f).unwrap()))
        .collect();
    let mut big = b"From: Big <big@customer.example>\r\nTo: support@example.com\r\nSubject: a big one\r\nMessage-ID: <big-1@customer.example>\r\n\r\n".to_vec();
    for _ in 0..5000 {
        big.extend_from_slice(&[b'x'; 78]);
        big.extend_from_slice(b"\r\n");
    }
    raws.push(("oversized".into(), big));
    raws
}

/// CRLF becomes LF (what a pipe from Postfix delivers); lone CRs stay.
fn to_lf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i..].starts_with(b"\r\n") {
            out.push(b'\n');
            i += 2;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    out
}

/// LF becomes CRLF (what IMAP and SMTP carry).
fn to_crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 40);
    for &b in &to_lf(raw) {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

/// Messages, tickets, quarantine entries (all, and open).
async fn totals(store: &Store) -> (i64, i64, usize, i64) {
    let mut conn = store.acquire().await.unwrap();
    (
        store::messages::count(&mut conn).await.unwrap(),
        store::tickets::count(&mut conn).await.unwrap(),
        store::quarantine::list(&mut conn, true)
            .await
            .unwrap()
            .len(),
        store::quarantine::count_open(&mut conn).await.unwrap(),
    )
}

async fn ingest_all(ingestor: &Ingestor, raws: &[(String, Vec<u8>)], source: &str) {
    for (name, raw) in raws {
        ingestor
            .ingest(raw, &Origin::new(format!("{source}:{name}"), None))
            .await
            .unwrap_or_else(|e| panic!("{name} was not stored: {e}"));
    }
}

fn counts(stdout: &[u8]) -> String {
    String::from_utf8_lossy(stdout).into_owned()
}

#[tokio::test]
async fn the_corpus_piped_with_lf_then_fetched_over_imap_adds_nothing() {
    let dovecot = Dovecot::start(&[(USER, PASSWORD)], false);
    let env = TestEnv::with_config(&format!(
        "{LIMITS}{}",
        dovecot.mailbox_toml("support", USER, PASSWORD, "")
    ))
    .await;
    let ingestor = env.ingestor().await;
    let raws = corpus_and_an_oversized_message();

    // First the MTA pipes every message, with LF line ends.
    let piped: Vec<(String, Vec<u8>)> = raws.iter().map(|(n, r)| (n.clone(), to_lf(r))).collect();
    ingest_all(&ingestor, &piped, "pipe").await;
    let before = totals(ingestor.store()).await;
    assert!(before.0 > 100 && before.3 == 1, "{before:?}");

    // Then the same messages arrive in the IMAP mailbox (Dovecot serves them with CRLF).
    let appended: Vec<Vec<u8>> = raws.iter().map(|(_, r)| r.clone()).collect();
    dovecot
        .append(USER, PASSWORD, "INBOX", &appended, None)
        .await;
    let out = env.cli(&["fetch", "--once"], None);
    assert_eq!(out.status.code(), Some(0), "{}", counts(&out.stderr));
    assert!(
        counts(&out.stdout).contains(&format!(
            "created: 0, threaded: 0, duplicates: {}, quarantined: 0",
            raws.len()
        )),
        "every fetched message is a duplicate of its piped copy: {}",
        counts(&out.stdout)
    );
    assert_eq!(
        totals(ingestor.store()).await,
        before,
        "no new messages, tickets or quarantine entries"
    );
    assert_eq!(dovecot.count(USER, PASSWORD, "INBOX").await, 0);
}

#[tokio::test]
async fn an_lf_mbox_of_the_crlf_corpus_adds_nothing() {
    let env = TestEnv::with_config(LIMITS).await;
    let ingestor = env.ingestor().await;
    let raws = corpus_and_an_oversized_message();
    // The messages as CRLF files (as a client saves them) first...
    let crlf: Vec<(String, Vec<u8>)> = raws.iter().map(|(n, r)| (n.clone(), to_crlf(r))).collect();
    ingest_all(&ingestor, &crlf, "file").await;
    let before = totals(ingestor.store()).await;

    // ...then an mbox of them written with LF line ends.
    let mut mbox = Vec::new();
    for (_, raw) in &raws {
        maildesk::mail::mbox::write_message(&mut mbox, "MAILER-DAEMON", &to_lf(raw)).unwrap();
    }
    let path = env.dir.path().join("export.mbox");
    std::fs::write(&path, &mbox).unwrap();
    let counts = env.cli_json(&["ingest", "--json", "--mbox", path.to_str().unwrap()]);
    assert_eq!(
        (
            counts["created"].as_u64(),
            counts["threaded"].as_u64(),
            counts["quarantined"].as_u64(),
            counts["duplicates"].as_u64(),
        ),
        (Some(0), Some(0), Some(0), Some(raws.len() as u64)),
        "{counts}"
    );
    assert_eq!(totals(ingestor.store()).await, before);
}

/// `content_sha256_hex` as it was before the canonical form (version 1): the raw bytes
/// without trace header fields.
fn v1_content_sha256_hex(raw: &[u8]) -> String {
    const TRACE_FIELDS: &[&str] = &[
        "received",
        "return-path",
        "delivered-to",
        "x-original-to",
        "envelope-to",
        "x-envelope-to",
        "x-envelope-from",
        "x-delivered-to",
        "x-rcpt-to",
        "authentication-results",
        "arc-seal",
        "arc-message-signature",
        "arc-authentication-results",
        "received-spf",
        "x-spam-status",
        "x-spam-score",
        "x-spam-level",
        "x-spam-flag",
        "x-spam-checker-version",
        "x-virus-scanned",
    ];
    let is_trace_field = |line: &[u8]| {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return false;
        };
        let name = line[..colon].trim_ascii();
        TRACE_FIELDS
            .iter()
            .any(|field| name.eq_ignore_ascii_case(field.as_bytes()))
    };
    let mut hasher = Sha256::new();
    let mut rest = raw;
    let mut skipping = false;
    while !rest.is_empty() {
        let line_end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        let line = &rest[..line_end];
        if line == b"\n" || line == b"\r\n" {
            break;
        }
        if line[0] != b' ' && line[0] != b'\t' {
            skipping = is_trace_field(line);
        }
        if !skipping {
            hasher.update(line);
        }
        rest = &rest[line_end..];
    }
    hasher.update(rest);
    hex::encode(hasher.finalize())
}

fn v1_synthesized_id(raw: &[u8]) -> String {
    format!(
        "{}@synthesized.maildesk.invalid",
        &maildesk::mail::hash::sha256_hex(raw)[..32]
    )
}

fn stored_message(outcome: &Outcome) -> i64 {
    match outcome {
        Outcome::Created { message_id, .. } | Outcome::Threaded { message_id, .. } => *message_id,
        other => panic!("expected a stored message, got {other:?}"),
    }
}

/// Stores `raw`, then gives its row the key version 1 would have given it.
async fn ingest_as_v1(ingestor: &Ingestor, raw: &[u8], synthesized_id: bool) -> i64 {
    let outcome = ingestor
        .ingest(raw, &Origin::new("test", None))
        .await
        .unwrap();
    let id = stored_message(&outcome);
    let mut conn = ingestor.store().acquire().await.unwrap();
    let message = store::messages::get(&mut conn, id).await.unwrap().unwrap();
    let message_id = if synthesized_id {
        v1_synthesized_id(raw)
    } else {
        message.message_id
    };
    store::messages::set_key(&mut conn, id, &message_id, &v1_content_sha256_hex(raw))
        .await
        .unwrap();
    id
}

#[tokio::test]
async fn content_hashes_from_before_the_canonical_form_are_recomputed_once() {
    use maildesk::store::upgrade::{self, ContentHashUpgrade, CONTENT_HASH_VERSION_KEY};

    let env = TestEnv::with_config("[ingest]\nmax_message_bytes = 2048\n").await;
    let ingestor = env.ingestor().await;
    let store = ingestor.store().clone();
    let with_id = b"From: Ann <ann@customer.example>\nTo: support@example.com\nSubject: Printer\nMessage-ID: <printer-1@customer.example>\n\nThe printer is on fire.\n".to_vec();
    let without_id = b"From: Bob <bob@customer.example>\nTo: support@example.com\nSubject: No id\n\nMy mail client sets no Message-ID.\n".to_vec();
    let doubled = b"From: Cy <cy@customer.example>\nTo: support@example.com\nSubject: Twice\nMessage-ID: <twice-1@customer.example>\n\nPiped, then fetched.\n".to_vec();
    let doubled_without_id = b"From: Di <di@customer.example>\nTo: support@example.com\nSubject: Twice, no id\n\nPiped, then fetched, no id.\n".to_vec();
    let oversized = [
        b"From: Ed <ed@customer.example>\nSubject: big\n\n".as_slice(),
        &b"0123456789abcdef\n".repeat(200),
    ]
    .concat();

    // A database as version 1 left it: every key made by the old hash, and the doubles
    // the old hash let in (an LF copy and, later, a CRLF copy of the same message).
    let first = ingest_as_v1(&ingestor, &with_id, false).await;
    let second = ingest_as_v1(&ingestor, &without_id, true).await;
    let older = ingest_as_v1(&ingestor, &doubled, false).await;
    let _later = ingest_as_v1(&ingestor, &to_crlf(&doubled), false).await;
    let older_no_id = ingest_as_v1(&ingestor, &doubled_without_id, true).await;
    let later_no_id = ingest_as_v1(&ingestor, &to_crlf(&doubled_without_id), true).await;
    let Outcome::Quarantined { entry_id, .. } = ingestor
        .ingest(&oversized, &Origin::new("test", None))
        .await
        .unwrap()
    else {
        panic!("an oversized message is quarantined");
    };
    {
        let mut conn = store.acquire().await.unwrap();
        sqlx::query("UPDATE quarantine SET content_sha256 = NULL")
            .execute(&mut *conn)
            .await
            .unwrap();
        sqlx::query("DELETE FROM settings WHERE key = $1")
            .bind(CONTENT_HASH_VERSION_KEY)
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    let before = totals(&store).await;
    assert_eq!(before.0, 6);

    let report = upgrade::content_hashes(&store).await.unwrap();
    assert_eq!(
        report,
        Some(ContentHashUpgrade {
            from_version: 1,
            checked: 6,
            updated: 4,
            doubles: 2,
            missing_raw: 0,
            quarantine_entries: 1,
        })
    );
    {
        let mut conn = store.acquire().await.unwrap();
        assert_eq!(
            store::settings::get(&mut conn, CONTENT_HASH_VERSION_KEY)
                .await
                .unwrap()
                .as_deref(),
            Some(
                maildesk::mail::hash::CONTENT_HASH_VERSION
                    .to_string()
                    .as_str()
            )
        );
        // The later copy of a double keeps its old key (the older one has the new).
        let later_row = store::messages::get(&mut conn, later_no_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            later_row.message_id,
            v1_synthesized_id(&to_crlf(&doubled_without_id))
        );
    }

    // Every copy of every message, whichever way it comes in now, is a duplicate of the
    // older stored one; the other copy of the quarantined message joins its entry.
    let expect = [
        (with_id.clone(), first),
        (without_id.clone(), second),
        (doubled.clone(), older),
        (doubled_without_id.clone(), older_no_id),
    ];
    for (raw, stored) in expect {
        for copy in [raw.clone(), to_crlf(&raw)] {
            match ingestor.ingest(&copy, &Origin::new("again", None)).await {
                Ok(Outcome::Duplicate { message_id, .. }) => {
                    assert_eq!(message_id, stored, "{}", String::from_utf8_lossy(&copy));
                }
                other => panic!(
                    "{} should be a duplicate of message {stored}: {other:?}",
                    String::from_utf8_lossy(&copy)
                ),
            }
        }
    }
    match ingestor
        .ingest(&to_crlf(&oversized), &Origin::new("again", None))
        .await
    {
        Ok(Outcome::Quarantined {
            entry_id: e, new, ..
        }) => {
            assert_eq!((e, new), (entry_id, false));
        }
        other => panic!("expected the open quarantine entry: {other:?}"),
    }
    assert_eq!(totals(&store).await, before);

    // Once is enough: the settings key says the hashes are current.
    assert_eq!(upgrade::content_hashes(&store).await.unwrap(), None);
    // And a restart (migrations, then the upgrade) leaves everything as it is.
    let restarted = env.store().await;
    assert_eq!(totals(&restarted).await, before);
}
