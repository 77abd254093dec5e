//! Live updates against the real database: the triggers announce every change, each
//! instance's feed (LISTEN/NOTIFY on PostgreSQL, the change table on SQLite) hands it to
//! `/portal/events`, and a change committed elsewhere (another process, another
//! instance) arrives like one's own.

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use maildesk::runtime::live::{self, Change, Kind, LiveHub};
use maildesk::store::unix_now;
use maildesk::web::{self, AppState};
use tokio::sync::broadcast::Receiver;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::support::portal::{customer_mail, Browser, Portal};

/// Long enough for a loaded CI machine; the latency itself is measured by bench/live.
const PATIENCE: Duration = Duration::from_secs(10);

/// Starts the instance's change feed, as `serve` does; stops with the returned token.
fn start_feed(portal: &Portal, hub: &LiveHub) -> CancellationToken {
    let token = CancellationToken::new();
    tokio::spawn(live::run_feed(
        portal.store().clone(),
        portal.env.database_url.clone(),
        hub.clone(),
        token.clone(),
    ));
    token
}

/// Waits until the feed is really reading (the first look only sets its cursor; on
/// PostgreSQL the listener says it is there with a resync).
async fn settle(changes: &mut Receiver<Change>) {
    tokio::time::sleep(live::POLL * 3).await;
    while changes.try_recv().is_ok() {}
}

/// Receives changes until one matches.
async fn expect(changes: &mut Receiver<Change>, what: &str, wanted: impl Fn(&Change) -> bool) {
    let found = tokio::time::timeout(PATIENCE, async {
        loop {
            match changes.recv().await {
                Ok(change) if wanted(&change) => return,
                Ok(_) => {}
                Err(e) => panic!("the feed broke: {e}"),
            }
        }
    })
    .await;
    assert!(found.is_ok(), "no change for {what} within {PATIENCE:?}");
}

fn ticket_change(id: i64) -> impl Fn(&Change) -> bool {
    move |c| c.kind == Kind::Ticket && c.ticket == Some(id)
}

/// An open `/portal/events` stream, read frame by frame.
struct Stream {
    body: Body,
    buffer: String,
}

impl Stream {
    async fn open(portal: &Portal, app: &axum::Router, browser: &Browser) -> Stream {
        let _ = portal;
        let request = Request::get("/portal/events")
            .header(header::COOKIE, &browser.cookie)
            .body(Body::empty())
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/event-stream"
        );
        let mut stream = Stream {
            body: response.into_body(),
            buffer: String::new(),
        };
        let ready = stream.next_event().await.expect("a first event");
        assert!(ready.starts_with("event: ready"), "{ready}");
        stream
    }

    /// The next event's text; `None` when the stream ended.
    async fn next_event(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let event = self.buffer[..end].to_string();
                self.buffer.drain(..end + 2);
                if event.starts_with(':') {
                    continue; // keep-alive comment
                }
                return Some(event);
            }
            let frame = tokio::time::timeout(PATIENCE, self.body.frame())
                .await
                .expect("the stream said something in time")?
                .expect("a body frame");
            if let Ok(data) = frame.into_data() {
                self.buffer.push_str(&String::from_utf8_lossy(&data));
            }
        }
    }

    /// Reads events until one carries a change about `ticket`.
    async fn expect_ticket(&mut self, ticket: i64) -> String {
        loop {
            let event = self.next_event().await.expect("the stream is open");
            if event.starts_with("event: changes")
                && event.contains(&format!("\"ticket\":{ticket}"))
            {
                return event;
            }
        }
    }
}

#[tokio::test]
async fn the_feed_is_for_signed_in_staff_only() {
    let portal = Portal::new().await;
    let anonymous = portal.get(&Browser::default(), "/portal/events").await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    assert!(
        anonymous.location().starts_with("/portal/login"),
        "{}",
        anonymous.location()
    );
    assert!(!anonymous.body.contains("event:"));
}

#[tokio::test]
async fn new_mail_and_changes_reach_an_open_page_feed() {
    let portal = Portal::new().await;
    let stop = start_feed(&portal, &portal.state.live);
    let mut changes = portal.state.live.subscribe();
    settle(&mut changes).await;
    let browser = portal.sign_in(crate::support::portal::STAFF).await;
    let mut stream = Stream::open(&portal, &portal.app, &browser).await;

    let id = portal
        .ingest(&customer_mail(
            "kim@customer.example",
            "live-1@c.example",
            "Printer",
            "It jams.",
        ))
        .await;
    let event = stream.expect_ticket(id).await;
    assert!(event.contains(r#""kind":"ticket""#), "{event}");

    // A change made through the portal is announced the same way.
    let page = portal.get(&browser, &format!("/portal/tickets/{id}")).await;
    assert!(
        page.body.contains(&format!(r#"data-live-ticket="{id}""#)),
        "the page says what it shows"
    );
    let saved = portal
        .post(
            &browser,
            &format!("/portal/tickets/{id}/update"),
            &[("was_status", "open"), ("status", "waiting")],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert_eq!(portal.ticket(id).await.status.as_str(), "waiting");
    stream.expect_ticket(id).await;
    stop.cancel();
}

#[tokio::test]
async fn tasks_and_deliveries_are_announced_with_their_ticket() {
    let portal = Portal::new().await;
    let stop = start_feed(&portal, &portal.state.live);
    let mut changes = portal.state.live.subscribe();
    settle(&mut changes).await;
    let id = portal
        .ingest(&customer_mail(
            "kim@customer.example",
            "live-2@c.example",
            "Toner",
            "Empty.",
        ))
        .await;
    expect(&mut changes, "the new ticket", ticket_change(id)).await;

    let store = portal.store();
    let mut conn = store.acquire().await.unwrap();
    let creator = maildesk::store::users::find_by_email(&mut conn, crate::support::portal::STAFF)
        .await
        .unwrap()
        .expect("staff user");
    let task: i64 = sqlx::query_scalar(
        "INSERT INTO tasks (title, creator_id, ticket_id, created_at, updated_at)
         VALUES ('Order toner', $1, $2, $3, $3) RETURNING id",
    )
    .bind(creator.id)
    .bind(id)
    .bind(unix_now())
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    expect(&mut changes, "the new task", |c| {
        c.kind == Kind::Task && c.task == Some(task) && c.ticket == Some(id)
    })
    .await;

    // The acknowledgement was queued with the ticket; its delivery state changing shows.
    let updated = sqlx::query("UPDATE outbox SET status = 'failed' WHERE ticket_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await
        .unwrap()
        .rows_affected();
    assert!(updated > 0, "the ticket had outgoing mail");
    expect(&mut changes, "a delivery state", |c| {
        c.kind == Kind::Delivery && c.ticket == Some(id)
    })
    .await;
    stop.cancel();
}

/// Two instances on one database: a change committed by another process reaches the
/// feeds of both (PostgreSQL: NOTIFY crosses connections; SQLite: the change table).
#[tokio::test]
async fn a_change_from_another_process_reaches_every_instance() {
    let portal = Portal::new().await;
    let second = AppState::new(
        portal.env.config.clone(),
        portal.ingestor.clone(),
        portal.state.wake.clone(),
    );
    let stops = [
        start_feed(&portal, &portal.state.live),
        start_feed(&portal, &second.live),
    ];
    let mut first_changes = portal.state.live.subscribe();
    let mut second_changes = second.live.subscribe();
    settle(&mut first_changes).await;
    settle(&mut second_changes).await;

    let raw = customer_mail(
        "lee@customer.example",
        "live-3@c.example",
        "Scanner",
        "Broken.",
    );
    let out = portal.env.cli(&["ingest"], Some(raw.as_bytes()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id: i64 = {
        let mut conn = portal.store().acquire().await.unwrap();
        sqlx::query_scalar("SELECT MAX(id) FROM tickets")
            .fetch_one(&mut *conn)
            .await
            .unwrap()
    };
    expect(&mut first_changes, "instance one", ticket_change(id)).await;
    expect(&mut second_changes, "instance two", ticket_change(id)).await;
    for stop in stops {
        stop.cancel();
    }
}

#[tokio::test]
async fn open_feeds_end_when_the_server_shuts_down() {
    let portal = Portal::new().await;
    let shutdown = CancellationToken::new();
    let state = AppState::serving(
        portal.env.config.clone(),
        portal.ingestor.clone(),
        portal.state.wake.clone(),
        shutdown.clone(),
    );
    let app = web::router(state);
    let browser = portal.sign_in(crate::support::portal::STAFF).await;
    let mut stream = Stream::open(&portal, &app, &browser).await;
    shutdown.cancel();
    assert_eq!(stream.next_event().await, None, "the stream ended");
}

/// SQLite: old change rows go, but the newest stays, so the next id is never one a
/// reader's cursor has already passed.
#[tokio::test]
async fn pruning_the_change_table_never_lets_an_id_come_back() {
    if crate::support::is_postgres() {
        return; // PostgreSQL has no change table: NOTIFY keeps nothing.
    }
    let portal = Portal::new().await;
    for n in 0..3 {
        portal
            .ingest(&customer_mail(
                "kim@customer.example",
                &format!("prune-{n}@c.example"),
                "Old",
                "x",
            ))
            .await;
    }
    let mut conn = portal.store().acquire().await.unwrap();
    let newest = maildesk::store::live::last_id(&mut conn).await.unwrap();
    assert!(newest >= 3, "the triggers wrote rows");
    let pruned = maildesk::store::live::prune(&mut conn, unix_now() + 3600)
        .await
        .unwrap();
    assert_eq!(pruned as i64, newest - 1, "all but the newest went");
    assert_eq!(
        maildesk::store::live::last_id(&mut conn).await.unwrap(),
        newest
    );
    drop(conn);
    let id = portal
        .ingest(&customer_mail(
            "kim@customer.example",
            "prune-new@c.example",
            "New",
            "x",
        ))
        .await;
    let mut conn = portal.store().acquire().await.unwrap();
    let rows = maildesk::store::live::after(&mut conn, newest, 10)
        .await
        .unwrap();
    assert!(
        rows.iter().any(|r| r.ticket_id == Some(id)),
        "the new change is after the cursor: {rows:?}"
    );
}
