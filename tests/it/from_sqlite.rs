//! Moving an installation from SQLite to PostgreSQL (`maildesk migrate from-sqlite`):
//! filled through the MTA pipe and the portal, moved, compared table by table and row by
//! row, then served from PostgreSQL. Needs both engines: the full move runs in the
//! PostgreSQL pass; the SQLite pass checks that a SQLite target is refused.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::StatusCode;
use maildesk::domain::Role;
use maildesk::store::transfer::{self};
use maildesk::store::{tickets, Backend};

use crate::support::db::{connect, contents};
use crate::support::portal::{add_user, customer_mail, Portal, ADMIN, STAFF};
use crate::support::{corpus_dir, is_postgres, terminate, wait_until, TestEnv};

/// A local SMTP port nobody listens on: mail is queued in the outbox, never sent.
const SMTP: &str = "[smtp]\nhost = \"127.0.0.1\"\nport = 9\nsecurity = \"plain\"\n";

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The old installation: corpus mail piped in by the MTA, then staff at work in the
/// portal (replies, notes, assignment, statuses, a merge, a task, an invitation).
async fn filled_sqlite_installation() -> (Portal, crate::support::portal::Browser, i64) {
    let env = TestEnv::with_engine(false, "", SMTP).await;
    let store = env.store().await;
    add_user(&store, ADMIN, "Ada Admin", Role::Admin).await;
    add_user(&store, STAFF, "Sam Staff", Role::Staff).await;
    let corpus = corpus_dir();
    let files: Vec<String> = std::fs::read_to_string(corpus.join("index.jsonl"))
        .unwrap()
        .lines()
        .map(|line| {
            let entry: serde_json::Value = serde_json::from_str(line).unwrap();
            corpus
                .join(entry["file"].as_str().unwrap())
                .display()
                .to_string()
        })
        .collect();
    let mut args = vec!["ingest"];
    args.extend(files.iter().map(String::as_str));
    let out = env.cli(&args, None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // One too big for the limit of the day: quarantined whole.
    let big = customer_mail("erin@example.net", "big@x", "Scan", &"scan ".repeat(400));
    let big_file = env.dir.path().join("big.eml");
    std::fs::write(&big_file, big).unwrap();
    let out = env.cli(
        &[
            "--set",
            "ingest.max_message_bytes=1024",
            "ingest",
            big_file.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let portal = Portal::over(env, store).await;
    let ada = portal.sign_in(ADMIN).await;
    let _ = portal.try_sign_in(STAFF, "wrong password").await; // a counted failure
    let older = portal
        .ingest(&customer_mail(
            "cora@example.net",
            "move-1@x",
            "Printer",
            "It jams.",
        ))
        .await;
    let newer = portal
        .ingest(&customer_mail(
            "cora@example.net",
            "move-2@x",
            "Printer again",
            "Still jams.",
        ))
        .await;
    let ticket_path = |t: i64, action: &str| format!("/portal/tickets/{t}/{action}");
    for (path, fields) in [
        (
            ticket_path(newer, "update"),
            vec![("status", "in_progress"), ("was_status", "open")],
        ),
        (
            ticket_path(newer, "reply"),
            vec![("body", "We ordered a new drum.")],
        ),
        (
            ticket_path(newer, "note"),
            vec![("body", "Drum ordered from ACME.")],
        ),
        (
            ticket_path(newer, "update"),
            vec![("assignee", "2"), ("was_assignee", "")],
        ),
        // The older ticket merged into the newer: a reference to a later row.
        (ticket_path(older, "merge"), vec![("target", "")]),
        (
            "/portal/tasks".into(),
            vec![("title", "Call ACME"), ("ticket", "")],
        ),
        (
            "/portal/users/invite".into(),
            vec![("email", "ivy@example.com"), ("role", "staff")],
        ),
    ] {
        let newer = newer.to_string();
        let fields: Vec<(&str, &str)> = fields
            .into_iter()
            .map(|(k, v)| match (k, v) {
                ("target" | "ticket", "") => (k, newer.as_str()),
                other => other,
            })
            .collect();
        let response = portal.post(&ada, &path, &fields).await;
        assert_eq!(
            response.status,
            StatusCode::SEE_OTHER,
            "{path} {fields:?}: {}",
            response.body
        );
    }
    (portal, ada, newer)
}

#[tokio::test]
async fn an_sqlite_installation_moves_to_postgresql_whole() {
    if !is_postgres() {
        let env = TestEnv::new().await;
        env.store().await;
        let out = env.cli(&["migrate", "from-sqlite", &env.database_url], None);
        assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("must be PostgreSQL"),
            "{}",
            stderr(&out)
        );
        return;
    }
    let (old, ada, ticket) = filled_sqlite_installation().await;
    let source_url = old.env.database_url.clone();
    let target = TestEnv::with_engine(true, "", SMTP).await;

    // Not while the old daemon runs (it would fetch and send on after the copy).
    let mut daemon = old.env.spawn_serve();
    assert!(
        wait_until(Duration::from_secs(30), || async {
            old.env.log().contains("maildesk started")
        })
        .await,
        "{}",
        old.env.log()
    );
    let out = target.cli(&["migrate", "from-sqlite", &source_url], None);
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    assert!(stderr(&out).contains("stop it"), "{}", stderr(&out));
    terminate(&mut daemon, Duration::from_secs(15));

    let out = target.cli(&["migrate", "from-sqlite", &source_url, "--json"], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let copied: BTreeMap<String, i64> = report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| {
            (
                pair[0].as_str().unwrap().to_string(),
                pair[1].as_i64().unwrap(),
            )
        })
        .collect();
    for table in [
        "tickets",
        "messages",
        "attachments",
        "raw_messages",
        "blobs",
        "participants",
        "users",
        "sessions",
        "tasks",
        "invitations",
        "settings",
        "outbox",
        "quarantine",
        "ticket_events",
        "throttle_counters",
    ] {
        assert!(
            copied.get(table).is_some_and(|&n| n > 0),
            "{table}: {copied:?}"
        );
    }

    // Every table of either schema is copied or named as not copied, and every copied
    // table holds the same rows on both sides.
    let target_schema =
        transfer::schema(&mut connect(&target.database_url).await, Backend::Postgres)
            .await
            .unwrap();
    let source_schema = transfer::schema(&mut connect(&source_url).await, Backend::Sqlite)
        .await
        .unwrap();
    let skipped: Vec<&str> = transfer::NOT_COPIED.iter().map(|(t, _)| *t).collect();
    for table in source_schema.keys().chain(target_schema.keys()) {
        assert!(
            copied.contains_key(table) || skipped.contains(&table.as_str()),
            "{table} is neither copied nor named as not copied"
        );
    }
    let compared: BTreeMap<String, Vec<String>> = target_schema
        .into_iter()
        .filter(|(t, _)| copied.contains_key(t))
        .collect();
    let before = contents(&source_url, Backend::Sqlite, &compared).await;
    let after = contents(&target.database_url, Backend::Postgres, &compared).await;
    for (table, rows) in &before {
        assert_eq!(rows.len() as i64, copied[table], "{table}");
        assert!(rows == &after[table], "{table} differs after the move");
    }

    // A second move into the now populated database is refused and changes nothing.
    let out = target.cli(&["migrate", "from-sqlite", &source_url], None);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("not empty"), "{}", stderr(&out));

    // The daemon runs on it; the tickets are there; ids go on after the copied ones.
    let mut daemon = target.spawn_serve();
    assert!(
        wait_until(Duration::from_secs(30), || async {
            target.log().contains("maildesk started")
        })
        .await,
        "{}",
        target.log()
    );
    terminate(&mut daemon, Duration::from_secs(15));
    let store = target.store().await;
    let listed = maildesk::helpdesk::ticket_views::list(&store)
        .await
        .unwrap();
    assert_eq!(listed.len() as i64, copied["tickets"]);
    let portal = Portal::over(target, store).await;
    let moved = portal.ticket(ticket).await;
    assert_eq!(moved.subject, "Printer again");
    let next = portal
        .ingest(&customer_mail(
            "new@example.net",
            "after-move@x",
            "New",
            "Hello",
        ))
        .await;
    assert_eq!(
        next,
        copied["tickets"] + 1,
        "sequences set past the copied ids"
    );
    let mut conn = portal.store().acquire().await.unwrap();
    assert_eq!(tickets::count(&mut conn).await.unwrap(), next);
    drop(conn);
    // Staff stay signed in (sessions moved) and the passwords still work.
    let page = portal.get(&ada, &format!("/portal/tickets/{ticket}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("We ordered a new drum."));
    portal.sign_in(STAFF).await;
}

#[tokio::test]
async fn a_table_the_move_does_not_know_stops_it() {
    let source = TestEnv::with_engine(false, "", "").await;
    let store = source.store().await;
    sqlx::query("CREATE TABLE later_feature (id INTEGER PRIMARY KEY, note TEXT)")
        .execute(store.pool())
        .await
        .unwrap();
    store.close().await;
    let target = TestEnv::with_engine(true, "", "").await;
    let out = target.cli(&["migrate", "from-sqlite", &source.database_url], None);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("later_feature exists on SQLite only"),
        "{}",
        stderr(&out)
    );
}
