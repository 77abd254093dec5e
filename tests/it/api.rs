//! The JSON API (`/api/v1`) through the router against the real database: personal
//! tokens made in the portal, every route × anonymous / token scopes / session / admin,
//! revocation at once, problem+json naming the field, `If-Match`, keyset pages.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use serde_json::{json, Value};

use crate::support::api::{call, etag, make_token, parsed, problem, Auth};
use crate::support::portal::{customer_mail, Browser, Portal, Response, ADMIN, DISABLED, STAFF};

/// (method, path, body, six callers with the status each gets).
type Case<'a> = (&'a str, String, Option<Value>, [(Auth, StatusCode); 6]);

#[tokio::test]
async fn every_route_checks_token_scope_session_and_role() {
    let portal = Portal::new().await;
    let id = portal
        .ingest(&customer_mail(
            "cora@example.net",
            "api1@x",
            "VPN down",
            "It dropped.",
        ))
        .await;
    let staff = portal.sign_in(STAFF).await;
    let admin = portal.sign_in(ADMIN).await;
    let read = Auth::Token(make_token(&portal, &staff, "read").await);
    let write = Auth::Token(make_token(&portal, &staff, "write").await);
    let admin_token = Auth::Token(make_token(&portal, &admin, "admin").await);
    // A staff member cannot mint an admin token.
    let refused = portal
        .post(
            &staff,
            "/portal/account/tokens",
            &[("name", "x"), ("scope", "admin")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("only admins"), "{}", refused.body);

    let t = format!("/api/v1/tickets/{id}");
    let note = || Some(json!({"body": "checked the logs"}));
    let unauthorized = StatusCode::UNAUTHORIZED;
    let forbidden = StatusCode::FORBIDDEN;
    let created = StatusCode::CREATED;
    let ok = StatusCode::OK;
    let cases: Vec<Case> = vec![
        (
            "GET",
            "/api/v1/auth/verify".into(),
            None,
            [
                (Auth::Nobody, unauthorized),
                (Auth::Token("mdk_not-a-token".into()), unauthorized),
                (read.clone(), ok),
                (write.clone(), ok),
                (Auth::Session(staff.clone(), false), ok),
                (admin_token.clone(), ok),
            ],
        ),
        (
            "GET",
            "/api/v1/tickets".into(),
            None,
            [
                (Auth::Nobody, unauthorized),
                (Auth::Token("mdk_not-a-token".into()), unauthorized),
                (read.clone(), ok),
                (write.clone(), ok),
                (Auth::Session(staff.clone(), false), ok),
                (admin_token.clone(), ok),
            ],
        ),
        (
            "GET",
            t.clone(),
            None,
            [
                (Auth::Nobody, unauthorized),
                (Auth::Token("mdk_not-a-token".into()), unauthorized),
                (read.clone(), ok),
                (write.clone(), ok),
                (Auth::Session(staff.clone(), false), ok),
                (admin_token.clone(), ok),
            ],
        ),
        (
            "POST",
            format!("{t}/notes"),
            note(),
            [
                (Auth::Nobody, unauthorized),
                (read.clone(), forbidden),
                // A session without its CSRF token is refused; with it, allowed.
                (Auth::Session(staff.clone(), false), forbidden),
                (Auth::Session(staff.clone(), true), created),
                (write.clone(), created),
                (admin_token.clone(), created),
            ],
        ),
    ];
    for (method, path, body, callers) in &cases {
        for (n, (auth, expected)) in callers.iter().enumerate() {
            let response = call(&portal, method, path, auth, body.clone(), None).await;
            assert_eq!(
                response.status, *expected,
                "{method} {path} as caller {n}: {}",
                response.body
            );
            if !expected.is_success() {
                problem(&response, *expected);
            }
        }
    }
    // Unknown addresses under the API answer in JSON too.
    problem(
        &call(&portal, "GET", "/api/v1/nothing", &read, None, None).await,
        StatusCode::NOT_FOUND,
    );

    let me = parsed(&call(&portal, "GET", "/api/v1/auth/verify", &write, None, None).await);
    assert_eq!(
        (
            me["user"]["email"].as_str(),
            me["scope"].as_str(),
            me["via"].as_str()
        ),
        (Some(STAFF), Some("write"), Some("token"))
    );
    assert!(me["user"].get("password_hash").is_none());

    // A disabled user's tokens stop working at once.
    let disabled_browser = portal.sign_in(DISABLED).await;
    let disabled = Auth::Token(make_token(&portal, &disabled_browser, "read").await);
    assert_eq!(
        call(&portal, "GET", "/api/v1/tickets", &disabled, None, None)
            .await
            .status,
        ok
    );
    let users_page = portal.get(&admin, "/portal/users").await;
    assert_eq!(users_page.status, ok);
    let dis_id = {
        let mut conn = portal.store().acquire().await.unwrap();
        maildesk::store::users::find_by_email(&mut conn, DISABLED)
            .await
            .unwrap()
            .unwrap()
            .id
    };
    let done = portal
        .post(&admin, &format!("/portal/users/{dis_id}/disable"), &[])
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    problem(
        &call(&portal, "GET", "/api/v1/tickets", &disabled, None, None).await,
        unauthorized,
    );
}

#[tokio::test]
async fn a_revoked_token_stops_at_once_and_the_list_says_so() {
    let portal = Portal::new().await;
    let staff = portal.sign_in(STAFF).await;
    let token = Auth::Token(make_token(&portal, &staff, "write").await);
    assert_eq!(
        call(&portal, "GET", "/api/v1/auth/verify", &token, None, None)
            .await
            .status,
        StatusCode::OK
    );
    let page = portal.get(&staff, "/portal/account/tokens").await;
    assert!(
        page.body.contains("write script") && page.body.contains("just now"),
        "{}",
        page.body
    );
    let marker = "/portal/account/tokens/";
    let start = page.body.find(marker).unwrap() + marker.len();
    let id: String = page.body[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    // Someone else cannot revoke it.
    let admin = portal.sign_in(ADMIN).await;
    let path = format!("/portal/account/tokens/{id}/revoke");
    assert_eq!(
        portal.post(&admin, &path, &[]).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        portal.post(&staff, &path, &[]).await.status,
        StatusCode::SEE_OTHER
    );
    let refused = call(&portal, "GET", "/api/v1/auth/verify", &token, None, None).await;
    problem(&refused, StatusCode::UNAUTHORIZED);
    let page = portal.get(&staff, "/portal/account/tokens").await;
    assert!(page.body.contains("revoked"), "{}", page.body);
}

#[tokio::test]
async fn changes_need_the_current_etag_and_name_the_refused_field() {
    let portal = Portal::new().await;
    let id = portal
        .ingest(&customer_mail(
            "cora@example.net",
            "api2@x",
            "Printer jam",
            "Again.",
        ))
        .await;
    let staff = portal.sign_in(STAFF).await;
    let first = Auth::Token(make_token(&portal, &staff, "write").await);
    let second = Auth::Token(make_token(&portal, &staff, "write").await);
    let path = format!("/api/v1/tickets/{id}");
    let tag = etag(&portal, &first, id).await;
    let change = || Some(json!({"status": "in_progress", "priority": "high"}));

    let missing = call(&portal, "PATCH", &path, &first, change(), None).await;
    problem(&missing, StatusCode::PRECONDITION_REQUIRED);

    let unknown = call(
        &portal,
        "PATCH",
        &path,
        &first,
        Some(json!({"colour": "red"})),
        Some(&tag),
    )
    .await;
    assert_eq!(
        problem(&unknown, StatusCode::UNPROCESSABLE_ENTITY)["field"],
        "colour"
    );
    let wrong_type = call(
        &portal,
        "PATCH",
        &path,
        &first,
        Some(json!({"assignee": "sam"})),
        Some(&tag),
    )
    .await;
    assert_eq!(
        problem(&wrong_type, StatusCode::UNPROCESSABLE_ENTITY)["field"],
        "assignee"
    );
    let bad_value = call(
        &portal,
        "PATCH",
        &path,
        &first,
        Some(json!({"status": "done"})),
        Some(&tag),
    )
    .await;
    assert_eq!(
        problem(&bad_value, StatusCode::UNPROCESSABLE_ENTITY)["field"],
        "status"
    );
    let not_json = portal
        .send(
            Request::patch(&path)
                .header(
                    header::AUTHORIZATION,
                    match &first {
                        Auth::Token(t) => format!("Bearer {t}"),
                        _ => unreachable!(),
                    },
                )
                .header(header::CONTENT_TYPE, "text/plain")
                .body(Body::from("status=open"))
                .unwrap(),
        )
        .await;
    problem(&not_json, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // The first client changes it; the second, holding the same ETag, is refused.
    let done = call(&portal, "PATCH", &path, &first, change(), Some(&tag)).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let body = parsed(&done);
    assert_eq!(
        (body["status"].as_str(), body["priority"].as_str()),
        (Some("in_progress"), Some("high"))
    );
    let new_tag = done.headers[header::ETAG].to_str().unwrap().to_string();
    assert_ne!(new_tag, tag);
    let stale = call(
        &portal,
        "PATCH",
        &path,
        &second,
        Some(json!({"status": "waiting"})),
        Some(&tag),
    )
    .await;
    problem(&stale, StatusCode::PRECONDITION_FAILED);
    assert_eq!(portal.ticket(id).await.status.as_str(), "in_progress");

    // Assign, then unassign with null; the history records both.
    let sam = parsed(&call(&portal, "GET", "/api/v1/auth/verify", &second, None, None).await)
        ["user"]["id"]
        .as_i64()
        .unwrap();
    let assigned = call(
        &portal,
        "PATCH",
        &path,
        &second,
        Some(json!({"assignee": sam})),
        Some(&new_tag),
    )
    .await;
    assert_eq!(assigned.status, StatusCode::OK, "{}", assigned.body);
    assert_eq!(portal.ticket(id).await.assignee_id, Some(sam));
    let tag = assigned.headers[header::ETAG].to_str().unwrap().to_string();
    let unassigned = call(
        &portal,
        "PATCH",
        &path,
        &second,
        Some(json!({"assignee": null})),
        Some(&tag),
    )
    .await;
    assert_eq!(unassigned.status, StatusCode::OK, "{}", unassigned.body);
    assert_eq!(portal.ticket(id).await.assignee_id, None);
    let history = parsed(&unassigned)["history"].as_array().unwrap().len();
    assert!(
        history >= 4,
        "status, priority, assigned, unassigned: {history}"
    );

    // Replies go out through the outbox; an empty one names its field.
    let reply = call(
        &portal,
        "POST",
        &format!("{path}/replies"),
        &second,
        Some(json!({"body": "On it."})),
        None,
    )
    .await;
    assert_eq!(
        (reply.status, parsed(&reply)["queued"].as_i64()),
        (StatusCode::CREATED, Some(1)),
        "{}",
        reply.body
    );
    let empty = call(
        &portal,
        "POST",
        &format!("{path}/replies"),
        &second,
        Some(json!({"body": " "})),
        None,
    )
    .await;
    assert_eq!(
        problem(&empty, StatusCode::UNPROCESSABLE_ENTITY)["field"],
        "body"
    );
    let missing_body = call(
        &portal,
        "POST",
        &format!("{path}/notes"),
        &second,
        Some(json!({})),
        None,
    )
    .await;
    assert_eq!(
        problem(&missing_body, StatusCode::UNPROCESSABLE_ENTITY)["field"],
        "body"
    );
    let shown = call(&portal, "GET", &path, &second, None, None).await;
    assert!(
        parsed(&shown)["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m.to_string().contains("On it.")),
        "the reply is on the ticket: {}",
        shown.body
    );
    problem(
        &call(
            &portal,
            "GET",
            "/api/v1/tickets/999999",
            &second,
            None,
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
    );
}

#[tokio::test]
async fn the_ticket_list_pages_by_keyset_and_filters_like_the_queue() {
    let portal = Portal::new().await;
    for n in 0..5 {
        portal
            .ingest(&customer_mail(
                &format!("c{n}@example.net"),
                &format!("list{n}@x"),
                &format!("Question {n}"),
                if n == 3 {
                    "the flux capacitor"
                } else {
                    "hello"
                },
            ))
            .await;
    }
    let staff = portal.sign_in(STAFF).await;
    let token = Auth::Token(make_token(&portal, &staff, "read").await);
    let mut seen = Vec::new();
    let mut path = "/api/v1/tickets?limit=2".to_string();
    loop {
        let page = parsed(&call(&portal, "GET", &path, &token, None, None).await);
        for t in page["tickets"].as_array().unwrap() {
            seen.push(t["subject"].as_str().unwrap().to_string());
        }
        match page["next"].as_str() {
            Some(next) => path = format!("/api/v1/tickets?limit=2&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5, "{seen:?}");
    seen.dedup();
    assert_eq!(seen.len(), 5, "no ticket twice");
    let found = parsed(
        &call(
            &portal,
            "GET",
            "/api/v1/tickets?q=capacitor",
            &token,
            None,
            None,
        )
        .await,
    );
    assert_eq!(found["tickets"].as_array().unwrap().len(), 1);
    let limit = call(
        &portal,
        "GET",
        "/api/v1/tickets?limit=0",
        &token,
        None,
        None,
    )
    .await;
    assert_eq!(
        problem(&limit, StatusCode::UNPROCESSABLE_ENTITY)["field"],
        "limit"
    );
    let unknown = call(
        &portal,
        "GET",
        "/api/v1/tickets?colour=red",
        &token,
        None,
        None,
    )
    .await;
    assert_eq!(
        problem(&unknown, StatusCode::UNPROCESSABLE_ENTITY)["field"],
        "colour"
    );
    let status = call(
        &portal,
        "GET",
        "/api/v1/tickets?status=done",
        &token,
        None,
        None,
    )
    .await;
    assert_eq!(problem(&status, StatusCode::BAD_REQUEST)["field"], "status");
}

#[tokio::test]
async fn merging_moves_the_mail_and_answers_with_the_target() {
    let portal = Portal::new().await;
    let source = portal
        .ingest(&customer_mail(
            "cora@example.net",
            "m1@x",
            "Wifi",
            "No wifi.",
        ))
        .await;
    let target = portal
        .ingest(&customer_mail(
            "cora@example.net",
            "m2@x",
            "Wifi again",
            "Still none.",
        ))
        .await;
    let staff = portal.sign_in(STAFF).await;
    let write = Auth::Token(make_token(&portal, &staff, "write").await);
    let read = Auth::Token(make_token(&portal, &staff, "read").await);
    let path = format!("/api/v1/tickets/{source}/merge");
    let body = || Some(json!({"target": format!("#{target}")}));
    problem(
        &call(&portal, "POST", &path, &read, body(), None).await,
        StatusCode::FORBIDDEN,
    );
    let itself = call(
        &portal,
        "POST",
        &path,
        &write,
        Some(json!({"target": source})),
        None,
    )
    .await;
    assert_eq!(
        problem(&itself, StatusCode::UNPROCESSABLE_ENTITY)["field"],
        "target"
    );
    let nonsense = call(
        &portal,
        "POST",
        &path,
        &write,
        Some(json!({"target": [1]})),
        None,
    )
    .await;
    assert_eq!(
        problem(&nonsense, StatusCode::UNPROCESSABLE_ENTITY)["field"],
        "target"
    );
    let merged = call(&portal, "POST", &path, &write, body(), None).await;
    assert_eq!(merged.status, StatusCode::OK, "{}", merged.body);
    let merged = parsed(&merged);
    assert_eq!(merged["id"].as_i64(), Some(target));
    assert!(
        merged.to_string().contains("No wifi."),
        "the source's mail moved: {merged}"
    );
    assert_eq!(portal.ticket(source).await.merged_into_id, Some(target));
}

#[tokio::test]
async fn limits_answer_429_with_retry_after_per_token_and_per_client() {
    let portal =
        Portal::with_config("[web]\napi_per_token_per_minute = 3\napi_per_client_per_minute = 5\n")
            .await;
    let staff = portal.sign_in(STAFF).await;
    let first = Auth::Token(make_token(&portal, &staff, "read").await);
    let second = Auth::Token(make_token(&portal, &staff, "read").await);
    let verify = |auth: Auth| {
        let portal = &portal;
        async move { call(portal, "GET", "/api/v1/auth/verify", &auth, None, None).await }
    };
    for _ in 0..3 {
        assert_eq!(verify(first.clone()).await.status, StatusCode::OK);
    }
    let limited = verify(first.clone()).await;
    problem(&limited, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = limited.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    // Another token has its own allowance, until the client's (5 a minute; these
    // router requests all come from one unknown address) runs out too.
    assert_eq!(verify(second.clone()).await.status, StatusCode::OK);
    let by_client = verify(second.clone()).await;
    assert!(
        problem(&by_client, StatusCode::TOO_MANY_REQUESTS)["detail"]
            .as_str()
            .unwrap()
            .contains("address"),
        "{}",
        by_client.body
    );
    // Guessing tokens counts against the address as well.
    problem(
        &verify(Auth::Token("mdk_guess".into())).await,
        StatusCode::TOO_MANY_REQUESTS,
    );
}

#[tokio::test]
async fn cors_answers_preflights_for_configured_origins_only() {
    let preflight = |origin: &str| {
        Request::builder()
            .method("OPTIONS")
            .uri("/api/v1/tickets/1")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "PATCH")
            .header(
                header::ACCESS_CONTROL_REQUEST_HEADERS,
                "authorization, if-match, content-type",
            )
            .body(Body::empty())
            .unwrap()
    };
    let allowed = |r: &Response| {
        r.headers
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .map(|v| v.to_str().unwrap().to_string())
    };
    let closed = Portal::new().await;
    assert_eq!(
        allowed(&closed.send(preflight("https://crm.example.com")).await),
        None
    );

    let open = Portal::with_config("[web]\ncors_origins = [\"https://crm.example.com\"]\n").await;
    let answer = open.send(preflight("https://crm.example.com")).await;
    assert!(answer.status.is_success(), "{}", answer.status);
    assert_eq!(allowed(&answer).as_deref(), Some("https://crm.example.com"));
    let methods = answer.headers[header::ACCESS_CONTROL_ALLOW_METHODS]
        .to_str()
        .unwrap()
        .to_string();
    assert!(methods.contains("PATCH"), "{methods}");
    assert!(answer
        .headers
        .get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS)
        .is_none());
    assert_eq!(
        allowed(&open.send(preflight("https://evil.example")).await),
        None
    );
    // The portal itself is not opened to other origins.
    let portal_preflight = Request::builder()
        .method("OPTIONS")
        .uri("/portal/tickets")
        .header(header::ORIGIN, "https://crm.example.com")
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .body(Body::empty())
        .unwrap();
    assert_eq!(allowed(&open.send(portal_preflight).await), None);
}

#[tokio::test]
async fn tasks_are_made_changed_and_deleted_through_the_task_rules() {
    let portal = Portal::new().await;
    let ticket = portal
        .ingest(&customer_mail(
            "cora@example.net",
            "t1@x",
            "Laptop",
            "Broken screen.",
        ))
        .await;
    let staff = portal.sign_in(STAFF).await;
    let admin = portal.sign_in(ADMIN).await;
    let write = Auth::Token(make_token(&portal, &staff, "write").await);
    let read = Auth::Token(make_token(&portal, &staff, "read").await);
    let admin_write = Auth::Token(make_token(&portal, &admin, "write").await);
    let me = parsed(&call(&portal, "GET", "/api/v1/auth/verify", &write, None, None).await)["user"]
        ["id"]
        .as_i64()
        .unwrap();
    let new_task = || {
        Some(
            json!({"title": "Order a screen", "priority": "high", "ticket": ticket,
                    "assignee": me, "due": "2030-01-31"}),
        )
    };
    problem(
        &call(&portal, "POST", "/api/v1/tasks", &read, new_task(), None).await,
        StatusCode::FORBIDDEN,
    );
    let untitled = call(
        &portal,
        "POST",
        "/api/v1/tasks",
        &write,
        Some(json!({"title": " "})),
        None,
    )
    .await;
    assert_eq!(
        problem(&untitled, StatusCode::UNPROCESSABLE_ENTITY)["field"],
        "title"
    );
    let bad_due = call(
        &portal,
        "POST",
        "/api/v1/tasks",
        &write,
        Some(json!({"title": "x", "due": "soon"})),
        None,
    )
    .await;
    assert_eq!(
        problem(&bad_due, StatusCode::UNPROCESSABLE_ENTITY)["field"],
        "due"
    );

    let made = call(&portal, "POST", "/api/v1/tasks", &write, new_task(), None).await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let task = parsed(&made);
    let id = task["id"].as_i64().unwrap();
    assert_eq!(
        made.headers[header::LOCATION],
        format!("/api/v1/tasks/{id}").as_str()
    );
    assert_eq!(
        (
            task["priority"].as_str(),
            task["ticket_id"].as_i64(),
            task["due_date"].as_str()
        ),
        (Some("high"), Some(ticket), Some("2030-01-31"))
    );
    let tag = made.headers[header::ETAG].to_str().unwrap().to_string();

    let mine = parsed(
        &call(
            &portal,
            "GET",
            "/api/v1/tasks?assignee=mine",
            &read,
            None,
            None,
        )
        .await,
    );
    assert_eq!(mine["tasks"].as_array().unwrap().len(), 1);
    let bad = call(
        &portal,
        "GET",
        "/api/v1/tasks?status=later",
        &read,
        None,
        None,
    )
    .await;
    assert_eq!(problem(&bad, StatusCode::BAD_REQUEST)["field"], "status");

    let path = format!("/api/v1/tasks/{id}");
    let done = call(
        &portal,
        "PATCH",
        &path,
        &write,
        Some(json!({"status": "done", "due": null})),
        Some(&tag),
    )
    .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(parsed(&done)["status"], "done");
    assert!(parsed(&done)["due_date"].is_null());
    let stale = call(
        &portal,
        "PATCH",
        &path,
        &admin_write,
        Some(json!({"title": "Other"})),
        Some(&tag),
    )
    .await;
    problem(&stale, StatusCode::PRECONDITION_FAILED);
    // The ticket's history tells of the task.
    let history = parsed(
        &call(
            &portal,
            "GET",
            &format!("/api/v1/tickets/{ticket}"),
            &read,
            None,
            None,
        )
        .await,
    )["history"]
        .to_string();
    assert!(history.contains("Order a screen"), "{history}");

    // Only its creator (or an admin) deletes it.
    let other = portal.sign_in(crate::support::portal::DISABLED).await;
    let other_write = Auth::Token(make_token(&portal, &other, "write").await);
    problem(
        &call(&portal, "DELETE", &path, &other_write, None, None).await,
        StatusCode::FORBIDDEN,
    );
    let deleted = call(&portal, "DELETE", &path, &write, None, None).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    problem(
        &call(&portal, "GET", &path, &read, None, None).await,
        StatusCode::NOT_FOUND,
    );
}

#[tokio::test]
async fn a_ticket_opened_for_a_requester_is_acknowledged_only_when_asked() {
    let portal = Portal::new().await;
    let staff = portal.sign_in(STAFF).await;
    let write = Auth::Token(make_token(&portal, &staff, "write").await);
    let read = Auth::Token(make_token(&portal, &staff, "read").await);
    let open = |auth: Auth, body: Value| {
        let portal = &portal;
        async move { call(portal, "POST", "/api/v1/tickets", &auth, Some(body), None).await }
    };
    let alert = || {
        json!({"requester": "ops@monitor.example", "requester_name": "Monitoring",
                          "subject": "Disk full on db1", "body": "/var is at 99 %.",
                          "category": "hardware", "acknowledge": false})
    };
    problem(&open(read.clone(), alert()).await, StatusCode::FORBIDDEN);
    for (field, value) in [
        ("requester", json!("not an address")),
        ("requester", json!("support@example.com")),
        ("subject", json!("  ")),
        ("category", json!("plumbing")),
    ] {
        let mut body = alert();
        body[field] = value;
        let refused = open(write.clone(), body).await;
        assert_eq!(
            problem(&refused, StatusCode::UNPROCESSABLE_ENTITY)["field"],
            field,
            "{}",
            refused.body
        );
    }
    let mut extra = alert();
    extra["severity"] = json!("high");
    assert_eq!(
        problem(
            &open(write.clone(), extra).await,
            StatusCode::UNPROCESSABLE_ENTITY
        )["field"],
        "severity"
    );

    let quiet = open(write.clone(), alert()).await;
    assert_eq!(quiet.status, StatusCode::CREATED, "{}", quiet.body);
    let ticket = parsed(&quiet);
    let id = ticket["id"].as_i64().unwrap();
    assert_eq!(
        quiet.headers[header::LOCATION],
        format!("/api/v1/tickets/{id}").as_str()
    );
    assert_eq!(
        (
            ticket["requester"].as_str(),
            ticket["category"].as_str(),
            ticket["subject"].as_str()
        ),
        (
            Some("ops@monitor.example"),
            Some("hardware"),
            Some("Disk full on db1")
        )
    );
    let kinds = |t: &Value| -> Vec<String> {
        t["outbox"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["kind"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(
        !kinds(&ticket).contains(&"acknowledgement".to_string()),
        "{:?}",
        kinds(&ticket)
    );

    let mut asked = alert();
    asked["acknowledge"] = json!(true);
    asked["subject"] = json!("Printer on fire");
    asked["requester"] = json!("cora@example.net");
    let acked = parsed(&open(write.clone(), asked).await);
    assert!(
        kinds(&acked).contains(&"acknowledgement".to_string()),
        "{:?}",
        kinds(&acked)
    );
    assert_ne!(acked["id"], ticket["id"]);
}

#[tokio::test]
async fn users_are_administered_by_admin_tokens_and_everyone_edits_themselves() {
    let portal = Portal::new().await;
    let staff = portal.sign_in(STAFF).await;
    let admin = portal.sign_in(ADMIN).await;
    let staff_write = Auth::Token(make_token(&portal, &staff, "write").await);
    let admin_write = Auth::Token(make_token(&portal, &admin, "write").await);
    let admin_token = Auth::Token(make_token(&portal, &admin, "admin").await);
    let id_of = |v: Value| v["user"]["id"].as_i64().unwrap();
    let sam = id_of(parsed(
        &call(
            &portal,
            "GET",
            "/api/v1/auth/verify",
            &staff_write,
            None,
            None,
        )
        .await,
    ));
    let ada = id_of(parsed(
        &call(
            &portal,
            "GET",
            "/api/v1/auth/verify",
            &admin_token,
            None,
            None,
        )
        .await,
    ));

    // The list and invitations: admins with an admin-scoped token only.
    problem(
        &call(&portal, "GET", "/api/v1/users", &staff_write, None, None).await,
        StatusCode::FORBIDDEN,
    );
    problem(
        &call(&portal, "GET", "/api/v1/users", &admin_write, None, None).await,
        StatusCode::FORBIDDEN,
    );
    let list = parsed(&call(&portal, "GET", "/api/v1/users", &admin_token, None, None).await);
    assert!(list["users"].as_array().unwrap().len() >= 3);
    assert!(!list.to_string().contains("password_hash"));
    let invited = call(
        &portal,
        "POST",
        "/api/v1/users",
        &admin_token,
        Some(json!({"email": "new@example.com", "role": "staff"})),
        None,
    )
    .await;
    assert_eq!(invited.status, StatusCode::CREATED, "{}", invited.body);
    let taken = call(
        &portal,
        "POST",
        "/api/v1/users",
        &admin_token,
        Some(json!({"email": STAFF})),
        None,
    )
    .await;
    assert_eq!(
        problem(&taken, StatusCode::UNPROCESSABLE_ENTITY)["field"],
        "email"
    );

    // Oneself: read and rename; not others, not one's own role.
    let me = call(
        &portal,
        "GET",
        &format!("/api/v1/users/{sam}"),
        &staff_write,
        None,
        None,
    )
    .await;
    let tag = me.headers[header::ETAG].to_str().unwrap().to_string();
    problem(
        &call(
            &portal,
            "GET",
            &format!("/api/v1/users/{ada}"),
            &staff_write,
            None,
            None,
        )
        .await,
        StatusCode::FORBIDDEN,
    );
    let promote = call(
        &portal,
        "PATCH",
        &format!("/api/v1/users/{sam}"),
        &staff_write,
        Some(json!({"role": "admin"})),
        Some(&tag),
    )
    .await;
    problem(&promote, StatusCode::FORBIDDEN);
    let renamed = call(
        &portal,
        "PATCH",
        &format!("/api/v1/users/{sam}"),
        &staff_write,
        Some(json!({"name": "Samuel Staff"})),
        Some(&tag),
    )
    .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    assert_eq!(parsed(&renamed)["name"], "Samuel Staff");
    let stale = call(
        &portal,
        "PATCH",
        &format!("/api/v1/users/{sam}"),
        &staff_write,
        Some(json!({"name": "Sam"})),
        Some(&tag),
    )
    .await;
    problem(&stale, StatusCode::PRECONDITION_FAILED);
    let new_mail = call(
        &portal,
        "PATCH",
        &format!("/api/v1/users/{sam}"),
        &staff_write,
        Some(json!({"email": "sam2@example.com", "current_password": "wrong"})),
        Some("*"),
    )
    .await;
    assert_eq!(
        problem(&new_mail, StatusCode::UNPROCESSABLE_ENTITY)["field"],
        "current_password"
    );

    // The last active admin cannot disable or demote themselves away.
    let ada_tag = call(
        &portal,
        "GET",
        &format!("/api/v1/users/{ada}"),
        &admin_token,
        None,
        None,
    )
    .await
    .headers[header::ETAG]
        .to_str()
        .unwrap()
        .to_string();
    let demote = call(
        &portal,
        "PATCH",
        &format!("/api/v1/users/{ada}"),
        &admin_token,
        Some(json!({"role": "staff"})),
        Some(&ada_tag),
    )
    .await;
    assert_eq!(
        problem(&demote, StatusCode::UNPROCESSABLE_ENTITY)["field"],
        "role"
    );
    // Disabling Sam ends his token at once; deleting him is refused while he owns things? He owns none: deleted.
    let disabled = call(
        &portal,
        "PATCH",
        &format!("/api/v1/users/{sam}"),
        &admin_token,
        Some(json!({"active": false})),
        Some("*"),
    )
    .await;
    assert_eq!(disabled.status, StatusCode::OK, "{}", disabled.body);
    assert_eq!(parsed(&disabled)["active"], 0);
    problem(
        &call(
            &portal,
            "GET",
            "/api/v1/auth/verify",
            &staff_write,
            None,
            None,
        )
        .await,
        StatusCode::UNAUTHORIZED,
    );
    let deleted = call(
        &portal,
        "DELETE",
        &format!("/api/v1/users/{sam}"),
        &admin_token,
        None,
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    problem(
        &call(
            &portal,
            "GET",
            &format!("/api/v1/users/{sam}"),
            &admin_token,
            None,
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
    );
}

#[tokio::test]
async fn attachments_download_and_admins_work_the_quarantine() {
    let portal = Portal::with_config("[ingest]\nmax_message_bytes = 4000\n").await;
    let with_file = "From: Cora <cora@example.net>\r\nTo: support@example.com\r\nSubject: Log\r\n\
        Message-ID: <att1@x>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
        --b\r\nContent-Type: text/plain\r\n\r\nSee the log.\r\n\
        --b\r\nContent-Type: text/plain; name=\"error.log\"\r\nContent-Disposition: attachment; filename=\"error.log\"\r\n\r\n\
        disk full\r\n--b--\r\n";
    let id = portal.ingest(with_file).await;
    let mut big = customer_mail("big@example.net", "big@x", "Huge", "");
    big.push_str(&"x".repeat(6000));
    maildesk::inbound::ingest::Ingestor::ingest(
        &portal.ingestor,
        big.as_bytes(),
        &maildesk::inbound::ingest::Origin::new("test", None),
    )
    .await
    .unwrap();
    let staff = portal.sign_in(STAFF).await;
    let admin = portal.sign_in(ADMIN).await;
    let read = Auth::Token(make_token(&portal, &staff, "read").await);
    let admin_token = Auth::Token(make_token(&portal, &admin, "admin").await);

    let ticket = parsed(
        &call(
            &portal,
            "GET",
            &format!("/api/v1/tickets/{id}"),
            &read,
            None,
            None,
        )
        .await,
    );
    let attachment = ticket["messages"][0]["attachments"][0]["id"]
        .as_i64()
        .expect("an attachment");
    let file = call(
        &portal,
        "GET",
        &format!("/api/v1/attachments/{attachment}"),
        &read,
        None,
        None,
    )
    .await;
    assert_eq!(file.status, StatusCode::OK);
    assert_eq!(file.body.trim(), "disk full");
    assert!(file.headers[header::CONTENT_DISPOSITION]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    problem(
        &call(
            &portal,
            "GET",
            "/api/v1/attachments/99999",
            &read,
            None,
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
    );

    problem(
        &call(&portal, "GET", "/api/v1/quarantine", &read, None, None).await,
        StatusCode::FORBIDDEN,
    );
    let entries = parsed(
        &call(
            &portal,
            "GET",
            "/api/v1/quarantine",
            &admin_token,
            None,
            None,
        )
        .await,
    )["entries"]
        .clone();
    assert_eq!(entries.as_array().unwrap().len(), 1, "{entries}");
    let entry = entries[0]["id"].as_i64().unwrap();
    let shown = parsed(
        &call(
            &portal,
            "GET",
            &format!("/api/v1/quarantine/{entry}"),
            &admin_token,
            None,
            None,
        )
        .await,
    );
    assert!(
        shown["reason"].as_str().unwrap().contains("bytes"),
        "{shown}"
    );
    let retried = call(
        &portal,
        "POST",
        &format!("/api/v1/quarantine/{entry}/retry"),
        &admin_token,
        None,
        None,
    )
    .await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.body);
    assert_eq!(parsed(&retried)["outcome"], "quarantined", "still too big");
    problem(
        &call(
            &portal,
            "POST",
            "/api/v1/quarantine/999/retry",
            &admin_token,
            None,
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
    );
}

#[tokio::test]
async fn browser_clients_sign_in_change_with_csrf_and_sign_out_and_invitees_register() {
    let portal = Portal::new().await;
    let id = portal
        .ingest(&customer_mail(
            "cora@example.net",
            "auth1@x",
            "Mouse",
            "Dead.",
        ))
        .await;
    let login = |email: &str, password: &str| {
        let body = json!({"email": email, "password": password});
        let portal = &portal;
        async move {
            call(
                portal,
                "POST",
                "/api/v1/auth/login",
                &Auth::Nobody,
                Some(body),
                None,
            )
            .await
        }
    };
    problem(
        &login(STAFF, "wrong password").await,
        StatusCode::UNAUTHORIZED,
    );
    problem(
        &login("nobody@example.com", "wrong password").await,
        StatusCode::UNAUTHORIZED,
    );
    let signed_in = login(STAFF, crate::support::portal::PASSWORD).await;
    assert_eq!(signed_in.status, StatusCode::OK, "{}", signed_in.body);
    let cookie = crate::support::portal::session_cookie(&signed_in).expect("a session cookie");
    let session = parsed(&signed_in);
    assert_eq!(session["user"]["email"], STAFF);
    let browser = Browser {
        cookie,
        csrf: session["csrf_token"].as_str().unwrap().to_string(),
    };
    let note = Some(json!({"body": "from the browser client"}));
    let path = format!("/api/v1/tickets/{id}/notes");
    problem(
        &call(
            &portal,
            "POST",
            &path,
            &Auth::Session(browser.clone(), false),
            note.clone(),
            None,
        )
        .await,
        StatusCode::FORBIDDEN,
    );
    let noted = call(
        &portal,
        "POST",
        &path,
        &Auth::Session(browser.clone(), true),
        note,
        None,
    )
    .await;
    assert_eq!(noted.status, StatusCode::CREATED, "{}", noted.body);

    let token = Auth::Token(make_token(&portal, &browser, "read").await);
    problem(
        &call(&portal, "POST", "/api/v1/auth/logout", &token, None, None).await,
        StatusCode::FORBIDDEN,
    );
    let out = call(
        &portal,
        "POST",
        "/api/v1/auth/logout",
        &Auth::Session(browser.clone(), true),
        None,
        None,
    )
    .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.body);
    problem(
        &call(
            &portal,
            "GET",
            "/api/v1/auth/verify",
            &Auth::Session(browser, false),
            None,
            None,
        )
        .await,
        StatusCode::UNAUTHORIZED,
    );

    // An invitation, redeemed once.
    let secret = "an-invitation-token-0123456789";
    {
        let mut conn = portal.store().acquire().await.unwrap();
        let now = maildesk::store::unix_now();
        maildesk::store::invitations::insert(
            &mut conn,
            &maildesk::mail::hash::sha256_hex(secret.as_bytes()),
            "ivy@example.com",
            maildesk::domain::Role::Staff,
            None,
            now,
            now + 3600,
        )
        .await
        .unwrap();
    }
    let register = |password: &str| {
        let body = json!({"token": secret, "name": "Ivy Invited", "password": password});
        let portal = &portal;
        async move {
            call(
                portal,
                "POST",
                "/api/v1/auth/register",
                &Auth::Nobody,
                Some(body),
                None,
            )
            .await
        }
    };
    assert_eq!(
        problem(&register("short").await, StatusCode::UNPROCESSABLE_ENTITY)["field"],
        "password"
    );
    let registered = register("a long enough password").await;
    assert_eq!(
        registered.status,
        StatusCode::CREATED,
        "{}",
        registered.body
    );
    assert_eq!(parsed(&registered)["email"], "ivy@example.com");
    problem(&register("a long enough password").await, StatusCode::GONE);
    assert_eq!(
        login("ivy@example.com", "a long enough password")
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_forged_forwarded_for_entry_does_not_escape_the_client_limit() {
    let portal = Portal::with_config(
        "[web]\ntrust_proxy_headers = true\napi_per_client_per_minute = 2\napi_per_token_per_minute = 0\n",
    )
    .await;
    let staff = portal.sign_in(STAFF).await;
    let token = make_token(&portal, &staff, "read").await;
    let from = |forged: &str, real: &str| {
        Request::get("/api/v1/auth/verify")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header("x-forwarded-for", format!("{forged}, {real}"))
            .body(Body::empty())
            .unwrap()
    };
    // The client writes a different first entry each time; the proxy appends its address.
    assert_eq!(
        portal.send(from("1.1.1.1", "203.0.113.9")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        portal.send(from("2.2.2.2", "203.0.113.9")).await.status,
        StatusCode::OK
    );
    problem(
        &portal.send(from("3.3.3.3", "203.0.113.9")).await,
        StatusCode::TOO_MANY_REQUESTS,
    );
    // Another real client has its own allowance.
    assert_eq!(
        portal.send(from("1.1.1.1", "198.51.100.7")).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn deleting_a_ticket_takes_what_only_it_holds_and_only_for_admin_tokens() {
    let portal = Portal::new().await;
    let with_file = "From: Cora <cora@example.net>\r\nTo: support@example.com\r\nSubject: Printer\r\n\
        Message-ID: <del1@x>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
        --b\r\nContent-Type: text/plain\r\n\r\nIt jams.\r\n\
        --b\r\nContent-Type: text/plain; name=\"jam.log\"\r\nContent-Disposition: attachment; filename=\"jam.log\"\r\n\r\n\
        paper jam in tray 2\r\n--b--\r\n";
    let doomed = portal.ingest(with_file).await;
    let shell = portal
        .ingest(&customer_mail(
            "cora@example.net",
            "del2@x",
            "Printer again",
            "Still jams.",
        ))
        .await;
    let kept = portal
        .ingest(&customer_mail(
            "dan@example.net",
            "del3@x",
            "Scanner",
            "Fine.",
        ))
        .await;
    let staff = portal.sign_in(STAFF).await;
    let admin = portal.sign_in(ADMIN).await;
    let write = Auth::Token(make_token(&portal, &staff, "write").await);
    let admin_write = Auth::Token(make_token(&portal, &admin, "write").await);
    let admin_token = Auth::Token(make_token(&portal, &admin, "admin").await);
    let merged = call(
        &portal,
        "POST",
        &format!("/api/v1/tickets/{shell}/merge"),
        &write,
        Some(json!({"target": doomed})),
        None,
    )
    .await;
    assert_eq!(merged.status, StatusCode::OK, "{}", merged.body);
    let task = call(
        &portal,
        "POST",
        "/api/v1/tasks",
        &write,
        Some(json!({"title": "Order a new printer", "ticket": doomed})),
        None,
    )
    .await;
    assert_eq!(task.status, StatusCode::CREATED, "{}", task.body);
    let task = parsed(&task)["id"].as_i64().unwrap();
    let ticket = parsed(
        &call(
            &portal,
            "GET",
            &format!("/api/v1/tickets/{doomed}"),
            &write,
            None,
            None,
        )
        .await,
    );
    let attachment = ticket["messages"][0]["attachments"][0]["id"]
        .as_i64()
        .expect("an attachment");
    let original = maildesk::mail::hash::sha256_hex(with_file.as_bytes());
    let stored = |sha: String| {
        let store = portal.state.store.clone();
        async move {
            let mut conn = store.acquire().await.unwrap();
            maildesk::store::raw::get_raw(&mut conn, &sha)
                .await
                .unwrap()
                .is_some()
        }
    };
    assert!(
        stored(original.clone()).await,
        "the original is kept before"
    );

    let path = format!("/api/v1/tickets/{doomed}");
    // Staff may not; an admin's token needs the admin scope.
    problem(
        &call(&portal, "DELETE", &path, &write, None, None).await,
        StatusCode::FORBIDDEN,
    );
    problem(
        &call(&portal, "DELETE", &path, &admin_write, None, None).await,
        StatusCode::FORBIDDEN,
    );
    problem(
        &call(&portal, "DELETE", &path, &Auth::Nobody, None, None).await,
        StatusCode::UNAUTHORIZED,
    );
    let gone = call(&portal, "DELETE", &path, &admin_token, None, None).await;
    assert_eq!(gone.status, StatusCode::OK, "{}", gone.body);
    let gone = parsed(&gone);
    assert_eq!(gone["tickets"], json!([doomed, shell]), "{gone}");
    // Two from the customer, plus the acknowledgements and notices sent on them.
    assert!(gone["messages"].as_u64() >= Some(2), "{gone}");
    assert_eq!(gone["attachments"], 1, "{gone}");
    assert_eq!(gone["tasks_unlinked"], 1, "{gone}");
    assert_eq!(gone["originals"], 2, "{gone}");

    for id in [doomed, shell] {
        problem(
            &call(
                &portal,
                "GET",
                &format!("/api/v1/tickets/{id}"),
                &admin_token,
                None,
                None,
            )
            .await,
            StatusCode::NOT_FOUND,
        );
    }
    problem(
        &call(&portal, "DELETE", &path, &admin_token, None, None).await,
        StatusCode::NOT_FOUND,
    );
    problem(
        &call(
            &portal,
            "GET",
            &format!("/api/v1/attachments/{attachment}"),
            &admin_token,
            None,
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
    );
    assert!(
        !stored(original).await,
        "the original went with its only message"
    );
    let task = parsed(
        &call(
            &portal,
            "GET",
            &format!("/api/v1/tasks/{task}"),
            &write,
            None,
            None,
        )
        .await,
    );
    assert_eq!(
        task["title"], "Order a new printer",
        "the task stays: {task}"
    );
    assert!(task["ticket_id"].is_null(), "unlinked: {task}");
    let other = call(
        &portal,
        "GET",
        &format!("/api/v1/tickets/{kept}"),
        &write,
        None,
        None,
    )
    .await;
    assert_eq!(other.status, StatusCode::OK, "other tickets stay");
    // The same mail arriving again is a new ticket, not an error.
    let again = portal.ingest(with_file).await;
    assert!(again != doomed);
}
