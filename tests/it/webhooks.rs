//! Webhooks end to end: registered through the API by an admin, events caused through
//! the API and by mail, delivered by the worker to a receiver in this test that checks
//! each signature, answers 500 once (and gets the retry, with the same idempotency key),
//! and sees every event once. Delivery states through the API; retry of a failed one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use maildesk::integrations::webhooks::{parse_signature, signature, RetryPolicy, WebhookWorker};
use maildesk::store::webhooks;
use serde_json::{json, Value};

use crate::support::api::{parsed, Auth};
use crate::support::portal::{customer_mail, Browser, Portal, Response, ADMIN, STAFF};

/// One request as the receiver got it.
#[derive(Debug, Clone)]
struct Received {
    event: String,
    key: String,
    signature: String,
    body: Bytes,
    /// What the receiver answered.
    status: u16,
}

#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    /// Requests still to answer with 500.
    fail_next: Arc<Mutex<u32>>,
}

async fn receive(
    axum::extract::State(receiver): axum::extract::State<Receiver>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let status = {
        let mut fail = receiver.fail_next.lock().unwrap();
        if *fail > 0 {
            *fail -= 1;
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::NO_CONTENT
        }
    };
    assert_eq!(text("content-type"), "application/json");
    assert!(text("user-agent").starts_with("maildesk/"));
    receiver.got.lock().unwrap().push(Received {
        event: text("x-maildesk-event"),
        key: text("x-maildesk-delivery"),
        signature: text("x-maildesk-signature"),
        body,
        status: status.as_u16(),
    });
    status
}

/// A receiver on 127.0.0.1 and its URL.
async fn start_receiver() -> (Receiver, String) {
    let receiver = Receiver::default();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (receiver, url)
}

/// Calls the API with a portal session (and its CSRF token for changes).
async fn call(
    portal: &Portal,
    browser: &Browser,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Response {
    let session = Auth::Session(browser.clone(), true);
    crate::support::api::call(portal, method, path, &session, body, Some("*")).await
}

/// The receivers here listen on 127.0.0.1: a private target, allowed only so.
const PRIVATE_TARGETS: &str = "[webhooks]\nallow_private_targets = true\n";

/// A portal whose webhooks may reach the receivers here.
async fn portal() -> Portal {
    Portal::with_config(PRIVATE_TARGETS).await
}

fn worker(portal: &Portal) -> WebhookWorker {
    WebhookWorker::new(portal.store().clone(), &portal.env.config.webhooks).with_retry(
        RetryPolicy {
            delays: vec![Duration::ZERO],
            max_attempts: 3,
            jitter: false,
            ..RetryPolicy::default()
        },
    )
}

/// Runs worker passes until `done` holds (retries wait a second), at most 20 s.
async fn deliver_until(worker: &WebhookWorker, mut done: impl FnMut() -> bool) {
    for _ in 0..80 {
        worker.run_once().await.expect("a worker pass");
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("deliveries did not arrive in time");
}

#[tokio::test]
async fn each_event_arrives_once_signed_and_a_500_is_retried() {
    let portal = portal().await;
    let admin = portal.sign_in(ADMIN).await;
    let staff = portal.sign_in(STAFF).await;
    let (receiver, url) = start_receiver().await;

    // Admins only; bad input names its field.
    let refused = call(&portal, &staff, "GET", "/api/v1/webhooks", None).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    let refused = call(
        &portal,
        &staff,
        "POST",
        "/api/v1/webhooks",
        Some(json!({"url": url, "events": ["ticket.created"]})),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    for (body, field) in [
        (
            json!({"url": "ftp://example.com/x", "events": ["ticket.created"]}),
            "url",
        ),
        (
            json!({"url": "not a url", "events": ["ticket.created"]}),
            "url",
        ),
        (json!({"url": url, "events": ["ticket.exploded"]}), "events"),
        (json!({"url": url, "events": []}), "events"),
    ] {
        let response = call(&portal, &admin, "POST", "/api/v1/webhooks", Some(body)).await;
        assert_eq!(
            response.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            response.body
        );
        assert_eq!(parsed(&response)["field"], field, "{}", response.body);
    }

    let all = [
        "ticket.created",
        "message.received",
        "ticket.status_changed",
        "ticket.assigned",
        "task.changed",
    ];
    let made = call(
        &portal,
        &admin,
        "POST",
        "/api/v1/webhooks",
        Some(json!({"url": url, "events": all})),
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let made = parsed(&made);
    let hook = made["id"].as_i64().unwrap();
    let secret = made["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    let listed = parsed(&call(&portal, &admin, "GET", "/api/v1/webhooks", None).await);
    assert_eq!(listed["webhooks"][0]["url"], url.as_str());
    assert!(
        listed["webhooks"][0].get("secret").is_none(),
        "the list never shows secrets"
    );

    // The events: a new ticket by mail, a status change, an assignment, a task made and
    // changed, a customer reply by mail.
    let ticket = portal
        .ingest(&customer_mail(
            "cora@example.net",
            "wh1@example.net",
            "Printer on fire",
            "Help.",
        ))
        .await;
    let sam = parsed(&call(&portal, &staff, "GET", "/api/v1/auth/verify", None).await)["user"]
        ["id"]
        .as_i64()
        .unwrap();
    let t = format!("/api/v1/tickets/{ticket}");
    let changed = call(
        &portal,
        &admin,
        "PATCH",
        &t,
        Some(json!({"status": "waiting"})),
    )
    .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    let changed = call(&portal, &admin, "PATCH", &t, Some(json!({"assignee": sam}))).await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    let task = call(
        &portal,
        &admin,
        "POST",
        "/api/v1/tasks",
        Some(json!({"title": "Buy an extinguisher", "ticket": ticket})),
    )
    .await;
    assert_eq!(task.status, StatusCode::CREATED, "{}", task.body);
    let task = parsed(&task)["id"].as_i64().unwrap();
    let done = call(
        &portal,
        &admin,
        "PATCH",
        &format!("/api/v1/tasks/{task}"),
        Some(json!({"status": "done"})),
    )
    .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let reply = "From: Cora Customer <cora@example.net>\r\nTo: support@example.com\r\nSubject: Re: Printer on fire\r\nMessage-ID: <wh2@example.net>\r\nIn-Reply-To: <wh1@example.net>\r\n\r\nIt is out now.\r\n";
    assert_eq!(portal.ingest(reply).await, ticket);
    // Staff writing is not a message received.
    for what in ["notes", "replies"] {
        let written = call(
            &portal,
            &admin,
            "POST",
            &format!("{t}/{what}"),
            Some(json!({"body": "On it."})),
        )
        .await;
        assert_eq!(written.status, StatusCode::CREATED, "{}", written.body);
    }

    // The first delivery is answered 500; everything else 2xx.
    *receiver.fail_next.lock().unwrap() = 1;
    let worker = worker(&portal);
    let queued = {
        let mut conn = portal.store().acquire().await.unwrap();
        maildesk::store::webhooks::deliveries(&mut conn, hook, None, 100)
            .await
            .unwrap()
    };
    let expected = queued.len();
    deliver_until(&worker, || {
        let got = receiver.got.lock().unwrap();
        got.iter().filter(|r| r.status < 300).count() >= expected
    })
    .await;
    // One more pass: nothing is sent twice.
    let again = worker.run_once().await.unwrap();
    assert_eq!(again.delivered + again.retried + again.failed, 0);

    let got = receiver.got.lock().unwrap().clone();
    let mut per_key: HashMap<&str, Vec<&Received>> = HashMap::new();
    for r in &got {
        // The signature: HMAC-SHA256 of "<t>.<body>" with the secret, recent.
        let (t, v1) = parse_signature(&r.signature.parse().unwrap()).expect("a signature header");
        assert_eq!(
            r.signature,
            signature(&secret, t, &r.body),
            "signature of {}",
            r.key
        );
        assert!(!v1.is_empty());
        assert!((maildesk::store::unix_now() - t).abs() < 60);
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["event"], r.event.as_str());
        assert!(body["occurred_at"].as_i64().is_some());
        per_key.entry(r.key.as_str()).or_default().push(r);
    }
    assert_eq!(per_key.len(), expected, "one key per delivery");
    let retried: Vec<_> = per_key.values().filter(|rs| rs.len() > 1).collect();
    assert_eq!(retried.len(), 1, "exactly the 500 was retried: {got:#?}");
    assert_eq!(retried[0].len(), 2);
    assert_eq!(retried[0][0].status, 500);
    assert!(retried[0][1].status < 300);
    assert_eq!(
        retried[0][0].body, retried[0][1].body,
        "the retry sends the same event"
    );
    for rs in per_key.values() {
        assert_eq!(
            rs.iter().filter(|r| r.status < 300).count(),
            1,
            "delivered once"
        );
    }

    // Each event, with what it says.
    let bodies: Vec<Value> = per_key
        .values()
        .map(|rs| serde_json::from_slice(&rs[0].body).unwrap())
        .collect();
    let has = |want: Value| {
        assert!(
            bodies
                .iter()
                .any(|b| want.as_object().unwrap().iter().all(|(k, v)| &b[k] == v)),
            "no event like {want} among {bodies:#?}"
        );
    };
    has(json!({"event": "ticket.created", "ticket": ticket}));
    has(
        json!({"event": "ticket.status_changed", "ticket": ticket, "old": "open", "new": "waiting"}),
    );
    has(json!({"event": "ticket.assigned", "ticket": ticket, "old": null, "new": sam}));
    has(json!({"event": "task.changed", "op": "created", "task": task, "ticket": ticket}));
    has(json!({"event": "task.changed", "op": "updated", "task": task, "status": "done"}));
    let received = bodies
        .iter()
        .filter(|b| b["event"] == "message.received")
        .count();
    assert_eq!(received, 2, "the first mail and the reply: {bodies:#?}");

    // The states through the API: all delivered; the retried one took two attempts.
    let listed = parsed(
        &call(
            &portal,
            &admin,
            "GET",
            &format!("/api/v1/webhooks/{hook}/deliveries"),
            None,
        )
        .await,
    );
    let deliveries = listed["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), expected);
    assert!(
        deliveries.iter().all(|d| d["state"] == "delivered"),
        "{listed:#}"
    );
    let twice: Vec<_> = deliveries.iter().filter(|d| d["attempts"] == 2).collect();
    assert_eq!(twice.len(), 1, "{listed:#}");
    assert_eq!(twice[0]["idempotency_key"], retried[0][0].key.as_str());
    let refused = call(
        &portal,
        &staff,
        "GET",
        &format!("/api/v1/webhooks/{hook}/deliveries"),
        None,
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_delivery_that_keeps_failing_fails_and_an_admin_queues_it_again() {
    let portal = portal().await;
    let admin = portal.sign_in(ADMIN).await;
    let (receiver, url) = start_receiver().await;
    let made = call(
        &portal,
        &admin,
        "POST",
        "/api/v1/webhooks",
        Some(json!({"url": url, "events": ["ticket.created"]})),
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let hook = parsed(&made)["id"].as_i64().unwrap();
    portal
        .ingest(&customer_mail(
            "cora@example.net",
            "wh9@example.net",
            "Broken",
            "Help.",
        ))
        .await;
    *receiver.fail_next.lock().unwrap() = 3;
    let worker = worker(&portal);
    let path = format!("/api/v1/webhooks/{hook}/deliveries");
    deliver_until(&worker, || receiver.got.lock().unwrap().len() >= 3).await;
    let listed = parsed(&call(&portal, &admin, "GET", &path, None).await);
    let delivery = &listed["deliveries"][0];
    assert_eq!(
        listed["deliveries"].as_array().unwrap().len(),
        1,
        "{listed:#}"
    );
    assert_eq!(delivery["state"], "failed", "{listed:#}");
    assert_eq!(delivery["payload"]["event"], "ticket.created", "{listed:#}");
    assert_eq!(delivery["attempts"], 3);
    assert_eq!(delivery["last_status"], 500);
    assert!(delivery["last_error"].as_str().unwrap().contains("500"));
    let id = delivery["id"].as_i64().unwrap();
    // The backlog that /metrics and `maildesk check` show.
    let mut conn = portal.store().acquire().await.unwrap();
    assert_eq!(
        webhooks::count_in_state(&mut conn, "failed").await.unwrap(),
        1
    );
    assert_eq!(
        webhooks::count_in_state(&mut conn, "pending")
            .await
            .unwrap(),
        0
    );
    drop(conn);

    // Queued again by an admin: delivered, with the same key.
    let retry = format!("/api/v1/webhooks/deliveries/{id}/retry");
    let queued = call(&portal, &admin, "POST", &retry, None).await;
    assert_eq!(queued.status, StatusCode::OK, "{}", queued.body);
    assert_eq!(parsed(&queued)["state"], "pending");
    deliver_until(&worker, || receiver.got.lock().unwrap().len() >= 4).await;
    let got = receiver.got.lock().unwrap().clone();
    assert_eq!(got[3].status, 204);
    assert!(
        got.iter().all(|r| r.key == got[0].key),
        "one key across retries"
    );
    let listed = parsed(&call(&portal, &admin, "GET", &path, None).await);
    assert_eq!(listed["deliveries"][0]["state"], "delivered");
    // Only a failed delivery is queued again.
    let again = call(&portal, &admin, "POST", &retry, None).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);

    // Deleting the webhook takes its deliveries with it; a paused one gets none.
    let paused = call(
        &portal,
        &admin,
        "PATCH",
        &format!("/api/v1/webhooks/{hook}"),
        Some(json!({"active": false})),
    )
    .await;
    assert_eq!(paused.status, StatusCode::OK, "{}", paused.body);
    assert_eq!(parsed(&paused)["active"], false);
    portal
        .ingest(&customer_mail(
            "cora@example.net",
            "wh10@example.net",
            "Also broken",
            "Help.",
        ))
        .await;
    let listed = parsed(&call(&portal, &admin, "GET", &path, None).await);
    assert_eq!(
        listed["deliveries"].as_array().unwrap().len(),
        1,
        "{listed:#}"
    );
    let gone = call(
        &portal,
        &admin,
        "DELETE",
        &format!("/api/v1/webhooks/{hook}"),
        None,
    )
    .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{}", gone.body);
    let gone = call(&portal, &admin, "GET", &path, None).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_portal_page_lists_webhooks_and_their_deliveries_for_admins_only() {
    let portal = portal().await;
    let admin = portal.sign_in(ADMIN).await;
    let staff = portal.sign_in(STAFF).await;
    let page = "/portal/admin/webhooks";
    assert_eq!(portal.get(&staff, page).await.status, StatusCode::FORBIDDEN);
    let refused = portal
        .post(
            &admin,
            page,
            &[("url", "gopher://x.example/"), ("event", "ticket.created")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("http://"), "{}", refused.body);
    let made = portal
        .post(
            &admin,
            page,
            &[
                ("url", "http://127.0.0.1:9/hook"),
                ("event", "ticket.created"),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.body);
    assert!(
        made.body.contains("whsec_"),
        "the secret is shown once made"
    );
    portal
        .ingest(&customer_mail(
            "cora@example.net",
            "wh20@example.net",
            "Hello",
            "Hi.",
        ))
        .await;
    let shown = portal.get(&admin, page).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert!(
        shown.body.contains("http://127.0.0.1:9/hook"),
        "{}",
        shown.body
    );
    assert!(shown.body.contains("ticket.created"));
    assert!(shown.body.contains("1 pending"), "{}", shown.body);
    assert!(
        !shown.body.contains("whsec_"),
        "the list never shows secrets"
    );
}

#[tokio::test]
async fn moving_to_postgresql_copies_the_deliveries_and_makes_none_for_the_history() {
    let source_env = crate::support::TestEnv::with_engine(false, "", "").await;
    let source = source_env.store().await;
    {
        let mut conn = source.acquire().await.unwrap();
        maildesk::store::webhooks::create(
            &mut conn,
            &maildesk::store::webhooks::NewWebhook {
                url: "http://127.0.0.1:9/hook",
                secret: "whsec_x",
                events: "ticket.created,message.received",
                active: true,
                created_by: None,
            },
            maildesk::store::unix_now(),
        )
        .await
        .unwrap();
    }
    let ingestor = maildesk::inbound::ingest::Ingestor::open(&source_env.config, source.clone())
        .await
        .unwrap();
    crate::support::ingest_text(
        &ingestor,
        &customer_mail("cora@example.net", "wh30@example.net", "Moving", "Hi."),
    )
    .await;
    let count = |store: maildesk::store::Store| async move {
        let mut conn = store.acquire().await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webhook_deliveries")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        n
    };
    assert_eq!(count(source.clone()).await, 2);
    let target_env = crate::support::TestEnv::with_engine(true, "", "").await;
    let target = target_env.store().await;
    maildesk::store::transfer::sqlite_to_postgres(&source, &target)
        .await
        .expect("the move works with webhooks registered");
    assert_eq!(
        count(target).await,
        2,
        "the deliveries copied, none made anew"
    );
}

#[tokio::test]
async fn two_workers_at_once_deliver_each_event_once() {
    let portal = portal().await;
    let admin = portal.sign_in(ADMIN).await;
    let (receiver, url) = start_receiver().await;
    let made = call(
        &portal,
        &admin,
        "POST",
        "/api/v1/webhooks",
        Some(json!({"url": url, "events": ["ticket.created", "message.received"]})),
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    for i in 0..20 {
        portal
            .ingest(&customer_mail(
                "cora@example.net",
                &format!("wh-many-{i}@example.net"),
                &format!("Question {i}"),
                "Hi.",
            ))
            .await;
    }
    // Two instances (one worker each) on the same database.
    let (one, two) = (worker(&portal), worker(&portal));
    let (a, b) = tokio::join!(one.run_once(), two.run_once());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.delivered + b.delivered, 40, "{a:?} {b:?}");
    let got = receiver.got.lock().unwrap().clone();
    let keys: std::collections::HashSet<_> = got.iter().map(|r| r.key.clone()).collect();
    assert_eq!((got.len(), keys.len()), (40, 40), "each once");
}

/// A refusal of `url` at registration through the API: 422 naming the field `url`; its
/// message.
async fn api_refuses(portal: &Portal, admin: &Browser, url: &str) -> String {
    let response = call(
        portal,
        admin,
        "POST",
        "/api/v1/webhooks",
        Some(json!({"url": url, "events": ["ticket.created"]})),
    )
    .await;
    assert_eq!(
        response.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{url}: {}",
        response.body
    );
    let body = parsed(&response);
    assert_eq!(body["field"], "url", "{}", response.body);
    body["detail"].as_str().unwrap_or_default().to_string() + &response.body
}

/// The portal's registration form with `url`: its status and page.
async fn portal_registers(portal: &Portal, admin: &Browser, url: &str) -> Response {
    portal
        .post(
            admin,
            "/portal/admin/webhooks",
            &[("url", url), ("event", "ticket.created")],
        )
        .await
}

#[tokio::test]
async fn metadata_addresses_are_refused_always_and_private_ones_unless_allowed() {
    let strict = Portal::new().await;
    let lenient = portal().await;
    for portal in [&strict, &lenient] {
        let admin = portal.sign_in(ADMIN).await;
        for url in [
            "http://169.254.169.254/latest/meta-data",
            "http://[fd00:ec2::254]/latest/meta-data",
            "http://[::ffff:169.254.169.254]/",
            "http://0.0.0.0:8080/",
            "http://[fe80::1]/",
        ] {
            let refused = api_refuses(portal, &admin, url).await;
            assert!(refused.contains("never reach"), "{url}: {refused}");
            let page = portal_registers(portal, &admin, url).await;
            assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{url}");
            assert!(page.body.contains("never reach"), "{}", page.body);
            assert!(!page.body.contains("whsec_"));
        }
    }

    // Loopback only with webhooks.allow_private_targets.
    let admin = strict.sign_in(ADMIN).await;
    let refused = api_refuses(&strict, &admin, "http://127.0.0.1:9/").await;
    assert!(refused.contains("allow_private_targets"), "{refused}");
    let page = portal_registers(&strict, &admin, "http://127.0.0.1:9/").await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("allow_private_targets"), "{}", page.body);
    // Nor by a change of a registered one's URL (to a public one first).
    let made = call(
        &strict,
        &admin,
        "POST",
        "/api/v1/webhooks",
        Some(json!({"url": "http://93.184.216.34/hook", "events": ["ticket.created"]})),
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let hook = parsed(&made)["id"].as_i64().unwrap();
    let changed = call(
        &strict,
        &admin,
        "PATCH",
        &format!("/api/v1/webhooks/{hook}"),
        Some(json!({"url": "http://169.254.169.254/"})),
    )
    .await;
    assert_eq!(
        changed.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        changed.body
    );

    let admin = lenient.sign_in(ADMIN).await;
    let made = call(
        &lenient,
        &admin,
        "POST",
        "/api/v1/webhooks",
        Some(json!({"url": "http://127.0.0.1:9/", "events": ["ticket.created"]})),
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let page = portal_registers(&lenient, &admin, "http://127.0.0.1:9/").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("whsec_"));
}

#[tokio::test]
async fn a_closed_port_shows_could_not_connect_and_nothing_about_the_port() {
    let portal = portal().await;
    let admin = portal.sign_in(ADMIN).await;
    // A port that was just free: nobody listens there now.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let made = call(
        &portal,
        &admin,
        "POST",
        "/api/v1/webhooks",
        Some(json!({"url": format!("http://127.0.0.1:{port}/hook"), "events": ["ticket.created"]})),
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let hook = parsed(&made)["id"].as_i64().unwrap();
    portal
        .ingest(&customer_mail(
            "cora@example.net",
            "wh-closed@example.net",
            "Anyone there?",
            "Hi.",
        ))
        .await;
    let report = worker(&portal).run_once().await.unwrap();
    assert_eq!(report.retried, 1, "{report:?}");

    let listed = parsed(
        &call(
            &portal,
            &admin,
            "GET",
            &format!("/api/v1/webhooks/{hook}/deliveries"),
            None,
        )
        .await,
    );
    let error = listed["deliveries"][0]["last_error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(error.contains("could not connect"), "{error}");
    for leak in [
        port.to_string().as_str(),
        "refused",
        "os error",
        "127.0.0.1",
    ] {
        assert!(!error.contains(leak), "{leak:?} in {error:?}");
    }
    let page = portal.get(&admin, "/portal/admin/webhooks").await;
    assert!(page.body.contains("could not connect"), "{}", page.body);
    assert!(
        !page.body.contains("refused") && !page.body.contains("os error"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn each_delivery_checks_the_address_again() {
    // Registered while private targets were allowed; delivered by a worker that does
    // not allow them (as a name re-pointed inward after registration would be).
    let portal = portal().await;
    let admin = portal.sign_in(ADMIN).await;
    let (receiver, url) = start_receiver().await;
    let made = call(
        &portal,
        &admin,
        "POST",
        "/api/v1/webhooks",
        Some(json!({"url": url, "events": ["ticket.created"]})),
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let hook = parsed(&made)["id"].as_i64().unwrap();
    portal
        .ingest(&customer_mail(
            "cora@example.net",
            "wh-recheck@example.net",
            "Inward",
            "Hi.",
        ))
        .await;
    let strict = WebhookWorker::new(
        portal.store().clone(),
        &maildesk::config::WebhooksConfig::default(),
    );
    let report = strict.run_once().await.unwrap();
    assert_eq!(report.retried, 1, "{report:?}");
    assert!(receiver.got.lock().unwrap().is_empty(), "nothing was sent");
    let listed = parsed(
        &call(
            &portal,
            &admin,
            "GET",
            &format!("/api/v1/webhooks/{hook}/deliveries"),
            None,
        )
        .await,
    );
    let error = listed["deliveries"][0]["last_error"].as_str().unwrap();
    assert!(error.contains("allow_private_targets"), "{error}");
}
