//! A database made by the first maildesk (schema 0001_core, commit 9be7f02; how the
//! fixture was made: tests/fixtures/upgrade/README.md) migrates to the newest schema
//! without losing or changing anything, and works afterwards.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use maildesk::inbound::ingest::Outcome;
use maildesk::mail::hash;
use maildesk::store::transfer::{self, Value};
use maildesk::store::{raw, tickets, Backend};
use sqlx::Connection;

use crate::support::db::{connect, contents};
use crate::support::portal::Portal;
use crate::support::{ingest_text, is_postgres, TestEnv};

/// Messages in the fixture (on 7 tickets; 9 quarantine entries, one resolved).
const MESSAGES: usize = 10;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/upgrade");

/// The tables of the first schema.
const FIRST_TABLES: &[&str] = &[
    "attachments",
    "blobs",
    "messages",
    "participants",
    "quarantine",
    "raw_messages",
    "settings",
    "tasks",
    "tickets",
    "users",
];

fn backend() -> Backend {
    if is_postgres() {
        Backend::Postgres
    } else {
        Backend::Sqlite
    }
}

/// Puts the first version's database where the test's configuration points.
async fn load_fixture(env: &TestEnv) {
    if is_postgres() {
        let dump = std::fs::read_to_string(format!("{FIXTURES}/first.postgres.sql")).unwrap();
        // The dump empties search_path for its session: a connection of its own.
        let mut conn = sqlx::PgConnection::connect(&env.database_url)
            .await
            .unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(dump))
            .execute(&mut conn)
            .await
            .expect("the PostgreSQL fixture loads");
        conn.close().await.unwrap();
    } else {
        std::fs::copy(
            format!("{FIXTURES}/first.sqlite"),
            env.dir.path().join("maildesk.db"),
        )
        .expect("the SQLite fixture");
    }
}

/// The duplicate key of a message is recomputed by the upgrade (a newer content hash):
/// left out of the comparison, and checked on its own below.
fn without_recomputed_keys(columns: &[String], rows: &mut [Vec<Value>]) {
    let content = columns.iter().position(|c| c == "content_sha256").unwrap();
    let message_id = columns.iter().position(|c| c == "message_id").unwrap();
    for row in rows.iter_mut() {
        row[content] = Value::Null;
        if matches!(&row[message_id], Value::Text(id) if id.ends_with(hash::SYNTHESIZED_ID_DOMAIN))
        {
            row[message_id] = Value::Null;
        }
    }
    rows.sort_by(|a, b| a.partial_cmp(b).expect("comparable"));
}

#[tokio::test]
async fn a_database_of_the_first_schema_upgrades_without_loss() {
    let env = TestEnv::new().await;
    load_fixture(&env).await;
    let mut schema = transfer::schema(&mut connect(&env.database_url).await, backend())
        .await
        .unwrap();
    schema.remove("_sqlx_migrations");
    assert_eq!(
        schema.keys().map(String::as_str).collect::<Vec<_>>(),
        FIRST_TABLES,
        "the fixture holds the first schema"
    );
    let mut before = contents(&env.database_url, backend(), &schema).await;
    let counts: BTreeMap<&str, usize> = before.iter().map(|(t, r)| (t.as_str(), r.len())).collect();
    assert_eq!(
        counts,
        BTreeMap::from([
            ("attachments", 3),
            ("blobs", 3),
            ("messages", MESSAGES),
            ("participants", 10),
            ("quarantine", 9),
            ("raw_messages", 18),
            ("settings", 1),
            ("tasks", 1),
            ("tickets", 7),
            ("users", 2),
        ]),
        "the fixture loaded whole"
    );

    let store = env.store().await; // every migration since, and the data upgrades
    let mut after = contents(&env.database_url, backend(), &schema).await;
    let columns = &schema["messages"];
    without_recomputed_keys(columns, before.get_mut("messages").unwrap());
    without_recomputed_keys(columns, after.get_mut("messages").unwrap());
    for table in FIRST_TABLES {
        if *table == "settings" {
            // Kept (the signing secret above all); the upgrade adds the hash version.
            for row in &before["settings"] {
                assert!(after["settings"].contains(row), "setting {row:?} lost");
            }
            continue;
        }
        assert!(
            before[*table] == after[*table],
            "{table} changed in the upgrade"
        );
    }

    // Deep checks through the application's own reading of the data.
    let mut conn = store.acquire().await.unwrap();
    let vpn = tickets::get(&mut conn, 1).await.unwrap();
    drop(conn);
    assert_eq!(vpn.subject, "VPN down since this morning");
    assert_eq!(vpn.status.as_str(), "in_progress");
    assert_eq!(vpn.assignee_id, Some(2));
    let detail = maildesk::helpdesk::ticket_views::load(&store, 1)
        .await
        .unwrap();
    let texts: Vec<&str> = detail.messages.iter().map(|m| m.text.trim()).collect();
    assert!(texts[0].contains("Grüße, Ann"), "{texts:?}");
    assert!(
        texts.contains(&"Still down, now also the mail."),
        "{texts:?}"
    );
    assert!(texts.contains(&"Same here."), "{texts:?}");
    assert_eq!(detail.messages[0].attachments[0].filename, "vpn.log");
    let log: Vec<u8> = sqlx::query_scalar(
        "SELECT b.data FROM attachments a JOIN blobs b ON b.sha256 = a.sha256 WHERE a.filename = 'vpn.log'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert!(log.starts_with(b"error 42: tunnel refused"));
    let mut emails: Vec<(&str, &str)> = detail
        .participants
        .iter()
        .map(|p| (p.email.as_str(), p.role.as_str()))
        .collect();
    emails.sort();
    assert_eq!(
        emails,
        [
            ("ann@customer.example", "requester"),
            ("bob@customer.example", "cc")
        ]
    );
    assert_eq!(detail.messages.len(), 4);
    // Every duplicate key is the current version's, computed from the raw message.
    let keys: Vec<(String, Vec<u8>)> = sqlx::query_as(
        "SELECT m.content_sha256, r.data FROM messages m JOIN raw_messages r ON r.sha256 = m.raw_sha256",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(keys.len(), MESSAGES);
    for (key, raw) in &keys {
        assert_eq!(key, &hash::content_sha256_hex(raw));
    }

    // It works: the first message again is a duplicate, a reply threads onto the old
    // ticket, staff sign in with their old passwords and see the queue and the ticket.
    let first_raw = {
        let mut conn = store.acquire().await.unwrap();
        let sha: String = sqlx::query_scalar(
            "SELECT raw_sha256 FROM messages WHERE ticket_id = 1 ORDER BY id LIMIT 1",
        )
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        raw::get_raw(&mut conn, &sha).await.unwrap().unwrap()
    };
    let portal = Portal::over(env, store).await;
    match portal
        .ingestor
        .ingest(
            &first_raw,
            &maildesk::inbound::ingest::Origin::new("test", None),
        )
        .await
        .unwrap()
    {
        Outcome::Duplicate { ticket_id: 1, .. } => {}
        other => panic!("the old message again: {other:?}"),
    }
    let reply = "From: Ann Lee <ann@customer.example>\r\nTo: support@example.com\r\nSubject: Re: VPN down since this morning\r\nMessage-ID: <vpn-after-upgrade@customer.example>\r\nIn-Reply-To: <vpn-2@customer.example>\r\n\r\nWorks again, thanks.\r\n";
    match ingest_text(&portal.ingestor, reply).await {
        Outcome::Threaded { ticket_id: 1, .. } => {}
        other => panic!("the reply: {other:?}"),
    }
    // An entry the first version quarantined (it found no sender) is retried.
    match portal.ingestor.retry_quarantined(1).await.unwrap() {
        Outcome::Created { .. } | Outcome::Quarantined { .. } => {}
        other => panic!("retrying an old entry: {other:?}"),
    }
    let agent = portal.sign_in("agent@example.com").await;
    let queue = portal.get(&agent, "/portal/tickets").await;
    assert_eq!(queue.status, StatusCode::OK, "{}", queue.body);
    assert!(queue.body.contains("VPN down since this morning"));
    let page = portal.get(&agent, "/portal/tickets/1").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    for text in [
        "Still down, now also the mail.",
        "vpn.log",
        "Works again, thanks.",
    ] {
        assert!(
            page.body.contains(text),
            "{text} missing on the ticket page"
        );
    }
}
