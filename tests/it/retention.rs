//! Retention (`retention.raw_days`): exactly the originals of tickets closed longer than
//! N days go; everything else stays; a dry run changes nothing; the page still renders.

use std::time::Duration;

use axum::http::StatusCode;
use maildesk::runtime::retention::{self, PurgeReport};
use maildesk::store::{unix_now, Store};
use tokio_util::sync::CancellationToken;

use crate::support::portal::{Portal, ADMIN};
use crate::support::{wait_until, TestEnv};

const DAY: i64 = 86_400;

fn mail(from: &str, id: &str, subject: &str, body: &str) -> String {
    format!(
        "From: {from}\r\nTo: support@example.com\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\nDate: Mon, 1 Jun 2026 10:00:00 +0000\r\n\r\n{body}\r\n"
    )
}

fn reply(from: &str, id: &str, to: &str, subject: &str, body: &str) -> String {
    format!(
        "From: {from}\r\nTo: support@example.com\r\nSubject: Re: {subject}\r\nMessage-ID: <{id}>\r\nIn-Reply-To: <{to}>\r\nDate: Mon, 1 Jun 2026 11:00:00 +0000\r\n\r\n{body}\r\n"
    )
}

/// With a PDF attached (its content goes to `blobs`).
fn with_attachment(from: &str, id: &str, subject: &str, body: &str) -> String {
    format!(
        "From: {from}\r\nTo: support@example.com\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\nDate: Mon, 1 Jun 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\n{body}\r\n--b1\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"invoice.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQKJcfsj6IKMSAwIG9iago8PD4+CmVuZG9iagp0cmFpbGVyCjw8Pj4KJSVFT0YK\r\n--b1--\r\n"
    )
}

async fn close(store: &Store, ticket: i64, days_ago: i64) {
    sqlx::query("UPDATE tickets SET status = 'closed', closed_at = $1 WHERE id = $2")
        .bind(unix_now() - days_ago * DAY)
        .bind(ticket)
        .execute(store.pool())
        .await
        .unwrap();
}

/// Everything a purge could touch: (message id, raw sha256, purged?), raw keys, blob keys.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    messages: Vec<(i64, Option<String>, bool)>,
    raw: Vec<String>,
    blobs: Vec<String>,
}

async fn snapshot(store: &Store) -> Snapshot {
    let messages: Vec<(i64, Option<String>, Option<i64>)> =
        sqlx::query_as("SELECT id, raw_sha256, raw_purged_at FROM messages ORDER BY id")
            .fetch_all(store.pool())
            .await
            .unwrap();
    Snapshot {
        messages: messages
            .into_iter()
            .map(|(id, sha, purged)| (id, sha, purged.is_some()))
            .collect(),
        raw: sqlx::query_scalar("SELECT sha256 FROM raw_messages ORDER BY sha256")
            .fetch_all(store.pool())
            .await
            .unwrap(),
        blobs: sqlx::query_scalar("SELECT sha256 FROM blobs ORDER BY sha256")
            .fetch_all(store.pool())
            .await
            .unwrap(),
    }
}

/// The ticket's received messages and their originals (what we sent has none).
async fn raws_of(store: &Store, ticket: i64) -> Vec<(i64, Option<String>)> {
    sqlx::query_as(
        "SELECT id, raw_sha256 FROM messages WHERE ticket_id = $1 AND direction = 'in' ORDER BY id",
    )
    .bind(ticket)
    .fetch_all(store.pool())
    .await
    .unwrap()
}

async fn raw_size(store: &Store, sha: &str) -> i64 {
    sqlx::query_scalar("SELECT size FROM raw_messages WHERE sha256 = $1")
        .bind(sha)
        .fetch_one(store.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_purge_takes_exactly_the_originals_of_long_closed_tickets_and_the_page_still_renders() {
    let portal = Portal::with_config("[retention]\nraw_days = 30\n").await;
    let store = portal.store().clone();

    // Closed 40 days ago: two messages, one with an attachment.
    let old = portal
        .ingest(&with_attachment(
            "ann@example.org",
            "old-1@example.org",
            "Printer on fire",
            "The printer is on fire.",
        ))
        .await;
    portal
        .ingest(&reply(
            "ann@example.org",
            "old-2@example.org",
            "old-1@example.org",
            "Printer on fire",
            "It went out by itself.",
        ))
        .await;
    // Closed 40 days ago too, but its original is also a (resolved) quarantine entry's:
    // it was retried from quarantine. The message lets go of it; the raw message stays.
    let shared = portal
        .ingest(&mail(
            "bob@example.org",
            "shared@example.org",
            "Shared",
            "Retried once.",
        ))
        .await;
    let shared_sha = raws_of(&store, shared).await[0].1.clone().unwrap();
    sqlx::query(
        "INSERT INTO quarantine (raw_sha256, size, reason, source, created_at, resolved_at, resolution, content_sha256)
         VALUES ($1, 10, 'was broken', 'test', $2, $2, 'retried', 'x')",
    )
    .bind(&shared_sha)
    .bind(unix_now() - 50 * DAY)
    .execute(store.pool())
    .await
    .unwrap();
    // Closed 5 days ago, and open: they keep everything.
    let recent = portal
        .ingest(&mail(
            "cy@example.org",
            "recent@example.org",
            "Recent",
            "Closed last week.",
        ))
        .await;
    let open = portal
        .ingest(&with_attachment(
            "dee@example.org",
            "open@example.org",
            "Still open",
            "Same invoice, still open.",
        ))
        .await;
    close(&store, old, 40).await;
    close(&store, shared, 40).await;
    close(&store, recent, 5).await;
    // Attachment content nothing refers to (left behind by whatever): it goes.
    sqlx::query("INSERT INTO blobs (sha256, size, data) VALUES ('orphan', 3, $1)")
        .bind(&b"abc"[..])
        .execute(store.pool())
        .await
        .unwrap();

    let old_raws: Vec<String> = raws_of(&store, old)
        .await
        .into_iter()
        .map(|(_, s)| s.unwrap())
        .collect();
    assert_eq!(old_raws.len(), 2);
    let freed = raw_size(&store, &old_raws[0]).await + raw_size(&store, &old_raws[1]).await;

    let cutoff = retention::cutoff(30, unix_now());
    let before = snapshot(&store).await;
    let (tickets, planned) = retention::plan(&store, cutoff).await.unwrap();
    assert_eq!(snapshot(&store).await, before, "a dry run changes nothing");
    let expected = PurgeReport {
        tickets: 2,
        messages: 3,
        raw_messages: 2,
        raw_bytes: freed as u64,
        blobs: 1,
        blob_bytes: 3,
    };
    assert_eq!(planned, expected, "the plan");
    assert_eq!(
        tickets
            .iter()
            .map(|t| (t.ticket_id, t.messages))
            .collect::<Vec<_>>(),
        vec![(old, 2), (shared, 1)]
    );

    let done = retention::purge(&store, cutoff, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(done, expected, "the purge did what the dry run said");

    let after = snapshot(&store).await;
    for (ticket, purged) in [(old, true), (shared, true), (recent, false), (open, false)] {
        for (id, sha) in raws_of(&store, ticket).await {
            let (_, _, marked) = after.messages.iter().find(|m| m.0 == id).unwrap();
            assert_eq!(
                (sha.is_none(), *marked),
                (purged, purged),
                "message {id} of ticket {ticket}"
            );
            if let Some(sha) = sha {
                assert!(
                    after.raw.contains(&sha),
                    "the original of message {id} stays"
                );
            }
        }
    }
    for sha in &old_raws {
        assert!(
            !after.raw.contains(sha),
            "the old ticket's original is deleted"
        );
    }
    assert!(
        after.raw.contains(&shared_sha),
        "an original the quarantine still refers to stays"
    );
    assert!(!after.blobs.contains(&"orphan".to_string()));
    assert_eq!(
        after.blobs.len(),
        before.blobs.len() - 1,
        "the invoice (on the old and the open ticket) stays"
    );

    // Once is enough: a second run finds nothing.
    let again = retention::purge(&store, cutoff, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(again, PurgeReport::default());

    // The page of the purged ticket: the text, the attachment, and what happened.
    let browser = portal.sign_in(ADMIN).await;
    let page = portal
        .get(&browser, &format!("/portal/tickets/{old}"))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("The printer is on fire."),
        "{}",
        page.body
    );
    assert!(page.body.contains("It went out by itself."));
    assert!(page.body.contains("invoice.pdf"));
    assert_eq!(page.body.matches("Original message purged").count(), 2);
    assert!(!page.body.contains("Original message (.eml)"));
    let (first, _) = raws_of(&store, old).await[0];
    let raw = portal
        .get(&browser, &format!("/portal/messages/{first}/raw"))
        .await;
    assert_eq!(raw.status, StatusCode::NOT_FOUND);
    assert!(raw.body.contains("purged"), "{}", raw.body);
    let attachment: i64 =
        sqlx::query_scalar("SELECT a.id FROM attachments a JOIN messages m ON m.id = a.message_id WHERE m.ticket_id = $1")
            .bind(old)
            .fetch_one(store.pool())
            .await
            .unwrap();
    let download = portal
        .get(&browser, &format!("/portal/attachments/{attachment}"))
        .await;
    assert_eq!(
        download.status,
        StatusCode::OK,
        "the attachment still downloads"
    );
    let page = portal
        .get(&browser, &format!("/portal/tickets/{recent}"))
        .await;
    assert!(page.body.contains("Original message (.eml)"));
    assert!(!page.body.contains("Original message purged"));
}

#[tokio::test]
async fn maildesk_purge_dry_run_shows_and_purge_does_and_serve_purges_by_itself() {
    let env = TestEnv::with_config("[retention]\nraw_days = 30\n").await;
    let ingestor = env.ingestor().await;
    let store = ingestor.store().clone();
    let mut tickets = Vec::new();
    for i in 0..3 {
        let raw = mail(
            "ann@example.org",
            &format!("cli-{i}@example.org"),
            &format!("Question {i}"),
            "Hello",
        );
        match crate::support::ingest_text(&ingestor, &raw).await {
            maildesk::inbound::ingest::Outcome::Created { ticket_id, .. } => {
                tickets.push(ticket_id);
            }
            other => panic!("{other:?}"),
        }
    }
    close(&store, tickets[0], 31).await;
    let before = snapshot(&store).await;

    let output = env.cli(&["purge", "--dry-run", "--verbose"], None);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains(&format!("#{}", tickets[0])), "{text}");
    assert!(
        text.contains("would purge (tickets closed more than 30 days ago): originals of 1 message(s) on 1 ticket(s); 1 raw message(s)"),
        "{text}"
    );
    assert_eq!(snapshot(&store).await, before, "--dry-run changes nothing");

    let json = env.cli_json(&["purge", "--json"]);
    assert_eq!(json["dry_run"], false);
    assert_eq!(json["report"]["messages"], 1);
    assert_eq!(json["report"]["raw_messages"], 1);
    let shown = env.cli(&["ticket", "show", &tickets[0].to_string()], None);
    assert!(String::from_utf8_lossy(&shown.stdout).contains("original: purged "));

    // raw_days = 0 would purge at once: refused as a configuration error.
    let output = env.cli(&["--set", "retention.raw_days=0", "purge"], None);
    assert_eq!(output.status.code(), Some(78), "raw_days = 0 is refused");

    // The daemon purges at start (and hourly).
    close(&store, tickets[1], 45).await;
    let mut serve = env.spawn_serve();
    let purged = wait_until(Duration::from_secs(60), || async {
        raws_of(&store, tickets[1]).await[0].1.is_none()
    })
    .await;
    assert!(purged, "serve did not purge; its log:\n{}", env.log());
    assert!(
        raws_of(&store, tickets[2]).await[0].1.is_some(),
        "the open ticket keeps its original"
    );
    crate::support::terminate(&mut serve, Duration::from_secs(20));
}

#[tokio::test]
async fn purge_without_retention_configured_is_a_usage_error() {
    let env = TestEnv::new().await;
    let output = env.cli(&["purge", "--dry-run"], None);
    assert_eq!(output.status.code(), Some(64));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("retention.raw_days is not set"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
