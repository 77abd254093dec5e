//! The staff portal through its router (`oneshot`, no socket) against the real database:
//! every route × role, CSRF, sessions, throttling, validation, conflicts, merge, search.

use maildesk::store::jobs::Wake;
use std::sync::Arc;

use axum::http::{header, StatusCode};
use maildesk::domain::Role;
use maildesk::inbound::ingest::{Ingestor, Outcome};
use maildesk::store::{self, sessions, tickets, unix_now, users, Store};
use maildesk::web::{self, AppState};

use crate::support::portal::{
    add_user, check_routes, customer_mail, field_value, session_cookie, Browser, Fields, Portal,
    Response, Route, ADMIN, DISABLED, PASSWORD, STAFF,
};
use crate::support::{ingest_text, TestEnv};

/// (path, form, status, what the page says).
type Case<'a> = (String, Fields<'a>, StatusCode, &'a str);

#[tokio::test]
async fn every_route_checks_the_role() {
    let portal = Portal::new().await;
    let ticket = portal
        .ingest(&customer_mail(
            "cora@example.net",
            "r1@x",
            "Printer",
            "It is on fire.",
        ))
        .await;
    let junk_entry = {
        match ingest_text(&portal.ingestor, "\u{0}\u{1}binary junk").await {
            Outcome::Quarantined { entry_id, .. } => entry_id,
            other => panic!("expected quarantine: {other:?}"),
        }
    };
    let admin = portal.sign_in(ADMIN).await;
    let staff = portal.sign_in(STAFF).await;
    let disabled = portal.sign_in_then_disable(DISABLED).await;
    let anonymous = Browser::default();
    let message = {
        let mut conn = portal.store().acquire().await.unwrap();
        store::messages::for_ticket(&mut conn, ticket)
            .await
            .unwrap()[0]
            .id
    };
    let t = ticket.to_string();
    let q = junk_entry.to_string();
    // (method, path, form, what staff get, what admins get); anonymous and disabled
    // users are always sent to the sign-in page.
    let ok = StatusCode::OK;
    let see = StatusCode::SEE_OTHER;
    let no = StatusCode::FORBIDDEN;
    let gone = StatusCode::NOT_FOUND;
    let routes: Vec<Route> = vec![
        ("GET", "/portal".into(), vec![], ok, ok),
        ("GET", "/portal/tickets".into(), vec![], ok, ok),
        ("GET", format!("/portal/tickets/{t}"), vec![], ok, ok),
        (
            "GET",
            format!("/portal/messages/{message}/raw"),
            vec![],
            ok,
            ok,
        ),
        (
            "GET",
            format!("/portal/messages/{message}/cid/none"),
            vec![],
            gone,
            gone,
        ),
        (
            "GET",
            "/portal/attachments/999999".into(),
            vec![],
            gone,
            gone,
        ),
        ("GET", "/portal/account".into(), vec![], ok, ok),
        (
            "POST",
            format!("/portal/tickets/{t}/note"),
            vec![("body", "checked")],
            see,
            see,
        ),
        (
            "POST",
            format!("/portal/tickets/{t}/revoke-links"),
            vec![],
            see,
            see,
        ),
        (
            "POST",
            format!("/portal/tickets/{t}/update"),
            vec![("priority", "medium"), ("was_priority", "medium")],
            see,
            see,
        ),
        (
            "POST",
            "/portal/tickets/bulk".into(),
            vec![("ticket", &t), ("set_priority", "low")],
            see,
            see,
        ),
        (
            "POST",
            format!("/portal/tickets/{t}/reply"),
            vec![("body", "On it.")],
            see,
            see,
        ),
        (
            "POST",
            format!("/portal/tickets/{t}/merge"),
            vec![("target", &t)],
            StatusCode::UNPROCESSABLE_ENTITY,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "POST",
            format!("/portal/tickets/{t}/delete"),
            vec![],
            no,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "POST",
            "/portal/account/sessions/end-others".into(),
            vec![],
            see,
            see,
        ),
        (
            "POST",
            "/portal/account/sessions/end".into(),
            vec![("session", "gone")],
            gone,
            gone,
        ),
        (
            "POST",
            "/portal/account/password".into(),
            vec![("current", "wrong"), ("new", "x"), ("confirm", "x")],
            StatusCode::UNPROCESSABLE_ENTITY,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("GET", "/portal/".into(), vec![], ok, ok),
        ("GET", "/portal/quarantine".into(), vec![], no, ok),
        ("GET", format!("/portal/quarantine/{q}"), vec![], no, ok),
        ("GET", format!("/portal/quarantine/{q}/raw"), vec![], no, ok),
        (
            "POST",
            format!("/portal/quarantine/{q}/retry"),
            vec![],
            no,
            see,
        ),
        (
            "POST",
            format!("/portal/quarantine/{q}/discard"),
            vec![],
            no,
            see,
        ),
    ];
    check_routes(&portal, &routes, [&anonymous, &disabled, &staff, &admin]).await;
    // The public routes.
    for path in [
        "/portal/login",
        "/healthz",
        "/readyz",
        "/static/portal.css",
        "/static/portal.js",
        "/",
    ] {
        assert_eq!(portal.get(&anonymous, path).await.status, ok, "{path}");
    }
    assert_eq!(portal.get(&anonymous, "/static/nope.js").await.status, gone);
    // Sign-out is a POST that ends the session.
    let response = portal.post(&staff, "/portal/logout", &[]).await;
    assert_eq!(response.status, see);
    assert_eq!(
        portal.get(&staff, "/portal").await.status,
        see,
        "signed out"
    );
}

#[tokio::test]
async fn state_changing_requests_need_the_session_csrf_token() {
    let portal = Portal::new().await;
    let ticket = portal
        .ingest(&customer_mail("cora@example.net", "c1@x", "Hi", "Hello"))
        .await;
    let staff = portal.sign_in(STAFF).await;
    let other = portal.sign_in(ADMIN).await;
    let path = format!("/portal/tickets/{ticket}/note");
    for (why, token) in [
        ("missing", ""),
        ("wrong", "0123"),
        ("another session's", other.csrf.as_str()),
    ] {
        let response = portal
            .post(&staff, &path, &[("csrf", token), ("body", "x")])
            .await;
        assert_eq!(response.status, StatusCode::FORBIDDEN, "{why} token");
        assert!(
            response.body.contains("did not come from this site"),
            "{}",
            response.body
        );
    }
    // The sign-in form has a token of its own.
    let response = portal
        .post(
            &Browser::default(),
            "/portal/login",
            &[("email", STAFF), ("password", PASSWORD), ("csrf", "forged")],
        )
        .await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
    assert!(session_cookie(&response).is_none());
    let ok = portal
        .post(&staff, &path, &[("body", "with the token")])
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn pages_carry_the_security_headers_and_cookies_their_flags() {
    let portal = Portal::new().await;
    let response = portal.try_sign_in(STAFF, PASSWORD).await;
    let cookie = response
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("maildesk_session="))
        .expect("session cookie")
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "plain http without a public https URL: {cookie}"
    );
    let browser = portal.sign_in(STAFF).await;
    for path in ["/portal", "/portal/login", "/portal/tickets"] {
        let page = portal.get(&browser, path).await;
        let h = |name: &str| {
            page.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let csp = h("content-security-policy");
        assert!(
            csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
            "{path}: {csp}"
        );
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(h("x-content-type-options"), "nosniff");
        assert_eq!(h("referrer-policy"), "same-origin");
        assert!(
            !page.body.contains("<script>") && !page.body.contains("style="),
            "{path}: no inline script or style"
        );
    }

    let https = Portal::with_config("[web]\npublic_url = \"https://help.example.com\"\n").await;
    let response = https.try_sign_in(STAFF, PASSWORD).await;
    let cookie = response
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.contains("maildesk_session="))
        .expect("session cookie")
        .to_string();
    assert!(cookie.starts_with("__Host-maildesk_session="), "{cookie}");
    assert!(
        cookie.contains("Secure") && cookie.contains("Path=/") && !cookie.contains("Domain"),
        "{cookie}"
    );
}

#[tokio::test]
async fn sign_in_is_throttled_per_account_and_per_address_without_telling_who_exists() {
    let portal = Portal::new().await;
    let wrong = portal.try_sign_in(STAFF, "wrong password").await;
    let unknown = portal
        .try_sign_in("nobody@example.com", "wrong password")
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status, wrong.status);
    let message = |r: &Response| {
        let start = r.body.find("role=\"alert\">").map(|i| i + 13).unwrap_or(0);
        r.body[start..].split('<').next().unwrap_or("").to_string()
    };
    assert_eq!(
        message(&unknown),
        message(&wrong),
        "the same answer for unknown accounts"
    );
    // Four more failures: the account is locked for the window, even with the right password.
    for _ in 0..4 {
        portal.try_sign_in(STAFF, "still wrong").await;
    }
    let locked = portal.try_sign_in(STAFF, PASSWORD).await;
    assert_eq!(
        locked.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        locked.body
    );
    assert!(locked.body.contains("Too many failed sign-ins"));
    assert!(locked.headers.get(header::RETRY_AFTER).is_some());
    // Unknown accounts are throttled the same way.
    for _ in 0..5 {
        portal.try_sign_in("ghost@example.com", "x").await;
    }
    assert_eq!(
        portal.try_sign_in("ghost@example.com", "x").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another account still works until the client address reaches its own limit (20).
    assert_eq!(
        portal.try_sign_in(ADMIN, PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    for i in 0..10 {
        portal
            .try_sign_in(&format!("spray{i}@example.com"), "x")
            .await;
    }
    let sprayed = portal.try_sign_in(ADMIN, PASSWORD).await;
    assert_eq!(
        sprayed.status,
        StatusCode::TOO_MANY_REQUESTS,
        "per-address limit"
    );
}

#[tokio::test]
async fn sessions_end_when_idle_expired_signed_out_or_the_password_or_user_changes() {
    let portal = Portal::new().await;
    let idle = portal.sign_in(STAFF).await;
    let expired = portal.sign_in(STAFF).await;
    let keeper = portal.sign_in(STAFF).await;
    let other = portal.sign_in(STAFF).await;
    let now = unix_now();
    let hash = |b: &Browser| {
        maildesk::mail::hash::sha256_hex(b.cookie.split('=').nth(1).unwrap().as_bytes())
    };
    {
        let mut conn = portal.store().acquire().await.unwrap();
        sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2")
            .bind(now - 9 * 3600)
            .bind(hash(&idle))
            .execute(&mut *conn)
            .await
            .unwrap();
        sqlx::query("UPDATE sessions SET expires_at = $1 WHERE id_hash = $2")
            .bind(now - 1)
            .bind(hash(&expired))
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    assert_eq!(
        portal.get(&idle, "/portal").await.status,
        StatusCode::SEE_OTHER,
        "idle 9 h > 8 h"
    );
    assert_eq!(
        portal.get(&expired, "/portal").await.status,
        StatusCode::SEE_OTHER,
        "past its absolute expiry"
    );
    // The account page lists the live sessions; ending one there ends it.
    let account = portal.get(&keeper, "/portal/account").await;
    assert!(account.body.contains("this browser"));
    let response = portal
        .post(
            &keeper,
            "/portal/account/sessions/end",
            &[("session", &hash(&other))],
        )
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    assert_eq!(
        portal.get(&other, "/portal").await.status,
        StatusCode::SEE_OTHER
    );
    // A password change ends the others at once and keeps this one.
    let another = portal.sign_in(STAFF).await;
    let wrong = portal
        .post(
            &keeper,
            "/portal/account/password",
            &[
                ("current", "nope"),
                ("new", "a new password 2"),
                ("confirm", "a new password 2"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong.body.contains("current password"));
    let short = portal
        .post(
            &keeper,
            "/portal/account/password",
            &[
                ("current", PASSWORD),
                ("new", "short"),
                ("confirm", "short"),
            ],
        )
        .await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(short.body.contains("at least 8"), "{}", short.body);
    let changed = portal
        .post(
            &keeper,
            "/portal/account/password",
            &[
                ("current", PASSWORD),
                ("new", "a new password 2"),
                ("confirm", "a new password 2"),
            ],
        )
        .await;
    assert_eq!(changed.status, StatusCode::SEE_OTHER, "{}", changed.body);
    assert_eq!(
        portal.get(&another, "/portal").await.status,
        StatusCode::SEE_OTHER,
        "other session ended"
    );
    assert_eq!(
        portal.get(&keeper, "/portal").await.status,
        StatusCode::OK,
        "this one goes on"
    );
    assert_eq!(
        portal.try_sign_in(STAFF, "a new password 2").await.status,
        StatusCode::SEE_OTHER
    );
    // Disabling the user ends every session at once.
    let mut conn = portal.store().acquire().await.unwrap();
    let user = users::find_by_email(&mut conn, STAFF)
        .await
        .unwrap()
        .unwrap();
    users::set_active(&mut conn, user.id, false, unix_now())
        .await
        .unwrap();
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE user_id = $1")
        .bind(user.id)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(left, 0);
    drop(conn);
    assert_eq!(
        portal.get(&keeper, "/portal").await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        portal.try_sign_in(STAFF, "a new password 2").await.status,
        StatusCode::UNAUTHORIZED
    );
    let _ = sessions::purge_stale;
}

#[tokio::test]
async fn bad_input_is_refused_with_the_field_named() {
    let portal = Portal::new().await;
    let ticket = portal
        .ingest(&customer_mail("cora@example.net", "v1@x", "Hi", "Hello"))
        .await;
    let staff = portal.sign_in(STAFF).await;
    for (path, field) in [
        ("/portal/tickets?status=bogus", "status"),
        ("/portal/tickets?priority=whenever", "priority"),
        ("/portal/tickets?sort=sideways", "sort"),
        ("/portal/tickets?after=1.2", "after"),
        ("/portal/tickets?assignee=someone", "assignee"),
    ] {
        let page = portal.get(&staff, path).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(page.body.contains(field), "{path}: {}", page.body);
    }
    let t = format!("/portal/tickets/{ticket}");
    let cases: Vec<Case> = vec![
        (
            format!("{t}/update"),
            vec![("priority", "whenever"), ("was_priority", "medium")],
            StatusCode::BAD_REQUEST,
            "priority",
        ),
        (
            format!("{t}/update"),
            vec![("category", "astrology"), ("was_category", "other")],
            StatusCode::BAD_REQUEST,
            "category",
        ),
        (
            format!("{t}/update"),
            vec![("assignee", "999"), ("was_assignee", "")],
            StatusCode::BAD_REQUEST,
            "assignee",
        ),
        (
            format!("{t}/reply"),
            vec![("body", "   ")],
            StatusCode::UNPROCESSABLE_ENTITY,
            "the reply is empty",
        ),
        (
            format!("{t}/reply"),
            vec![("body", "Hi"), ("cc", "not an address")],
            StatusCode::UNPROCESSABLE_ENTITY,
            "not an e-mail address",
        ),
        (
            format!("{t}/reply"),
            vec![("body", "Hi"), ("cc", "support@example.com")],
            StatusCode::UNPROCESSABLE_ENTITY,
            "our own",
        ),
        (
            format!("{t}/note"),
            vec![("body", "")],
            StatusCode::UNPROCESSABLE_ENTITY,
            "the note is empty",
        ),
        (
            format!("{t}/merge"),
            vec![("target", "abc")],
            StatusCode::UNPROCESSABLE_ENTITY,
            "not a ticket number",
        ),
        (
            format!("{t}/merge"),
            vec![("target", "424242")],
            StatusCode::UNPROCESSABLE_ENTITY,
            "no ticket #424242",
        ),
        (
            "/portal/tickets/bulk".into(),
            vec![("set_status", "open")],
            StatusCode::BAD_REQUEST,
            "select at least one",
        ),
        (
            "/portal/tickets/999999/note".into(),
            vec![("body", "x")],
            StatusCode::NOT_FOUND,
            "not found",
        ),
    ];
    for (path, form, status, says) in cases {
        let response = portal.post(&staff, &path, &form).await;
        assert_eq!(
            response.status, status,
            "{path} {form:?}: {}",
            response.body
        );
        assert!(
            response.body.contains(says),
            "{path} {form:?} should say {says:?}: {}",
            response.body
        );
    }
    // A refused reply keeps the draft on the page.
    let response = portal
        .post(
            &staff,
            &format!("{t}/reply"),
            &[("body", "My long careful answer"), ("cc", "bad address")],
        )
        .await;
    assert!(response.body.contains("My long careful answer"));
    assert_eq!(
        portal.get(&staff, "/portal/tickets/abc").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        portal.ticket(ticket).await.priority.as_str(),
        "medium",
        "nothing changed"
    );
}

#[tokio::test]
async fn two_editors_never_silently_overwrite_each_other() {
    let portal = Portal::new().await;
    let ticket = portal
        .ingest(&customer_mail("cora@example.net", "e1@x", "Hi", "Hello"))
        .await;
    let ann = portal.sign_in(ADMIN).await;
    let sam = portal.sign_in(STAFF).await;
    let path = format!("/portal/tickets/{ticket}/update");
    // Both loaded the ticket while it was open and medium.
    let first = portal
        .post(
            &ann,
            &path,
            &[
                ("status", "resolved"),
                ("was_status", "open"),
                ("priority", "medium"),
                ("was_priority", "medium"),
            ],
        )
        .await;
    assert_eq!(first.status, StatusCode::SEE_OTHER);
    let second = portal
        .post(
            &sam,
            &path,
            &[
                ("status", "waiting"),
                ("was_status", "open"),
                ("priority", "high"),
                ("was_priority", "medium"),
            ],
        )
        .await;
    assert_eq!(second.status, StatusCode::CONFLICT, "{}", second.body);
    assert!(
        second
            .body
            .contains("someone else changed the status to resolved"),
        "{}",
        second.body
    );
    assert!(
        second
            .body
            .contains("Your change to the priority was saved"),
        "{}",
        second.body
    );
    let t = portal.ticket(ticket).await;
    assert_eq!(
        (t.status.as_str(), t.priority.as_str()),
        ("resolved", "high")
    );
    // The history shows who did what.
    let page = portal.get(&sam, &format!("/portal/tickets/{ticket}")).await;
    assert!(
        page.body
            .contains("Ada Admin</strong> changed the status from open to resolved"),
        "{}",
        page.body
    );
    assert!(page
        .body
        .contains("Sam Staff</strong> changed the priority from medium to high"));
    // A reply typed while the customer wrote again is held back, with the draft kept.
    let seen = field_value(&page.body, "seen").unwrap();
    portal
        .ingest(
            "From: cora@example.net\r\nTo: support@example.com\r\nSubject: Re: Hi\r\nMessage-ID: <e2@x>\r\nIn-Reply-To: <e1@x>\r\n\r\nActually, one more thing.\r\n"
        )
        .await;
    let reply = format!("/portal/tickets/{ticket}/reply");
    let held = portal
        .post(&sam, &reply, &[("body", "Done!"), ("seen", &seen)])
        .await;
    assert_eq!(held.status, StatusCode::CONFLICT);
    assert!(
        held.body.contains("A new message arrived")
            && held.body.contains("Done!")
            && held.body.contains("one more thing")
    );
    let seen = field_value(&held.body, "seen").unwrap();
    let sent = portal
        .post(&sam, &reply, &[("body", "Done!"), ("seen", &seen)])
        .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
}

#[tokio::test]
async fn replies_notes_and_assignment_go_through_the_shared_rules() {
    let portal = Portal::new().await;
    let ticket = portal
        .ingest(&customer_mail(
            "cora@example.net",
            "a1@x",
            "Broken",
            "It broke.",
        ))
        .await;
    let sam = portal.sign_in(STAFF).await;
    let page = portal.get(&sam, &format!("/portal/tickets/{ticket}")).await;
    let seen = field_value(&page.body, "seen").unwrap();
    let woken = portal.wake.notified();
    let sent = portal
        .post(
            &sam,
            &format!("/portal/tickets/{ticket}/reply"),
            &[
                ("body", "We are on it."),
                ("cc", "boss@example.net"),
                ("seen", &seen),
            ],
        )
        .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
    tokio::time::timeout(std::time::Duration::from_secs(1), woken)
        .await
        .expect("the outbox worker is woken at once");
    let note = portal
        .post(
            &sam,
            &format!("/portal/tickets/{ticket}/note"),
            &[("body", "Customer is a VIP")],
        )
        .await;
    assert_eq!(note.status, StatusCode::SEE_OTHER);
    let mut conn = portal.store().acquire().await.unwrap();
    let sam_id = users::find_by_email(&mut conn, STAFF)
        .await
        .unwrap()
        .unwrap()
        .id;
    let rows: Vec<(String, String, Option<i64>)> = sqlx::query_as(
        "SELECT direction, kind, author_user_id FROM messages WHERE ticket_id = $1 ORDER BY id",
    )
    .bind(ticket)
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    assert!(
        rows.contains(&("out".into(), "public".into(), Some(sam_id))),
        "{rows:?}"
    );
    assert!(
        rows.contains(&("in".into(), "note".into(), Some(sam_id))),
        "{rows:?}"
    );
    let recipients: Vec<(String, String)> = sqlx::query_as(
        "SELECT recipient, status FROM outbox WHERE ticket_id = $1 AND kind = 'reply' ORDER BY recipient",
    )
    .bind(ticket)
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    assert_eq!(
        recipients,
        vec![
            ("boss@example.net".into(), "queued".into()),
            ("cora@example.net".into(), "queued".into())
        ]
    );
    drop(conn);
    // The page shows the reply with its delivery state, the note as internal.
    let page = portal.get(&sam, &format!("/portal/tickets/{ticket}")).await;
    assert!(page.body.contains("We are on it.") && page.body.contains("<strong>queued</strong>"));
    assert!(page.body.contains("Internal note") && page.body.contains("Customer is a VIP"));
    // The queue marker: answered, so the customer is not waiting any more.
    let queue = portal.get(&sam, "/portal/tickets").await;
    assert!(
        !queue.body.contains("class=\"waiting\""),
        "answered ticket not marked"
    );
    portal
        .ingest("From: cora@example.net\r\nTo: support@example.com\r\nSubject: Re: Broken\r\nMessage-ID: <a2@x>\r\nIn-Reply-To: <a1@x>\r\n\r\nStill broken.\r\n")
        .await;
    let queue = portal.get(&sam, "/portal/tickets").await;
    assert!(
        queue.body.contains("class=\"waiting\""),
        "the customer wrote since the reply"
    );
    // Assigning someone else notifies them (through the outbox).
    let ada_id = {
        let mut conn = portal.store().acquire().await.unwrap();
        users::find_by_email(&mut conn, ADMIN)
            .await
            .unwrap()
            .unwrap()
            .id
    };
    let assign = portal
        .post(
            &sam,
            &format!("/portal/tickets/{ticket}/update"),
            &[("assignee", &ada_id.to_string()), ("was_assignee", "")],
        )
        .await;
    assert_eq!(assign.status, StatusCode::SEE_OTHER);
    let mut conn = portal.store().acquire().await.unwrap();
    let notified: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE recipient = $1 AND kind = 'notification' AND ticket_id = $2")
        .bind(ADMIN)
        .bind(ticket)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert!(notified >= 1);
    // Resolving sends the customer the resolved notice.
    drop(conn);
    let resolve = portal
        .post(
            &sam,
            &format!("/portal/tickets/{ticket}/update"),
            &[("status", "resolved"), ("was_status", "open")],
        )
        .await;
    assert_eq!(resolve.status, StatusCode::SEE_OTHER, "{}", resolve.body);
    let mut conn = portal.store().acquire().await.unwrap();
    let notices: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM outbox WHERE kind = 'resolved' AND ticket_id = $1",
    )
    .bind(ticket)
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    assert_eq!(notices, 1);
}

#[tokio::test]
async fn merging_moves_everything_and_both_threads_land_on_the_target() {
    let portal = Portal::new().await;
    let target = portal
        .ingest(&customer_mail(
            "cora@example.net",
            "m1@x",
            "VPN down",
            "The VPN is down.",
        ))
        .await;
    let source = portal
        .ingest(&customer_mail(
            "dave@example.org",
            "m2@x",
            "VPN again",
            "Me too, no VPN.",
        ))
        .await;
    let sam = portal.sign_in(STAFF).await;
    let merged = portal
        .post(
            &sam,
            &format!("/portal/tickets/{source}/merge"),
            &[("target", &format!("#{target}"))],
        )
        .await;
    assert_eq!(merged.status, StatusCode::SEE_OTHER, "{}", merged.body);
    assert!(merged
        .location()
        .starts_with(&format!("/portal/tickets/{target}")));
    let src = portal.ticket(source).await;
    assert_eq!(src.merged_into_id, Some(target));
    assert_eq!(src.status.as_str(), "closed");
    let page = portal.get(&sam, &format!("/portal/tickets/{source}")).await;
    assert_eq!(
        page.status,
        StatusCode::SEE_OTHER,
        "the merged ticket points to its target"
    );
    assert!(page
        .location()
        .starts_with(&format!("/portal/tickets/{target}")));
    let page = portal.get(&sam, &format!("/portal/tickets/{target}")).await;
    assert!(page.body.contains("The VPN is down.") && page.body.contains("Me too, no VPN."));
    assert!(
        page.body.contains("dave@example.org"),
        "the source's requester is a participant"
    );
    assert!(page
        .body
        .contains(&format!("merged #{source} into #{target}")));
    // A reply to the source's thread, and a subject tag of the source, land on the target.
    let by_reference = portal
        .ingest("From: dave@example.org\r\nTo: support@example.com\r\nSubject: Re: VPN again\r\nMessage-ID: <m3@x>\r\nIn-Reply-To: <m2@x>\r\n\r\nStill no VPN.\r\n")
        .await;
    assert_eq!(by_reference, target);
    let by_tag = portal
        .ingest(&format!("From: dave@example.org\r\nTo: support@example.com\r\nSubject: [Support #{source}] VPN\r\nMessage-ID: <m4@x>\r\n\r\nAnd now?\r\n"))
        .await;
    assert_eq!(by_tag, target);
    // The merged ticket is gone from the queue; merging it again is refused.
    let queue = portal.get(&sam, "/portal/tickets?status=any").await;
    assert!(!queue
        .body
        .contains(&format!("href=\"/portal/tickets/{source}\"")));
    let again = portal
        .post(
            &sam,
            &format!("/portal/tickets/{source}/merge"),
            &[("target", &target.to_string())],
        )
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert!(
        again.body.contains(&format!("was merged into #{target}")),
        "{}",
        again.body
    );
}

#[tokio::test]
async fn the_queue_filters_searches_and_pages_by_keyset() {
    let portal = Portal::new().await;
    let mut ids = Vec::new();
    for i in 0..120 {
        let body = if i == 77 {
            "The flux capacitor smells of ozone."
        } else {
            "Routine question."
        };
        let from = if i == 5 {
            "zed@rare-domain.example".to_string()
        } else {
            format!("c{i}@example.net")
        };
        ids.push(
            portal
                .ingest(&customer_mail(
                    &from,
                    &format!("q{i}@x"),
                    &format!("Question {i}"),
                    body,
                ))
                .await,
        );
    }
    let sam = portal.sign_in(STAFF).await;
    // Every ticket exactly once across the pages, newest activity first.
    let mut seen = Vec::new();
    let mut path = "/portal/tickets".to_string();
    let mut pages = 0;
    loop {
        let page = portal.get(&sam, &path).await;
        assert_eq!(page.status, StatusCode::OK);
        pages += 1;
        for chunk in page.body.split("name=\"ticket\" value=\"").skip(1) {
            seen.push(chunk.split('"').next().unwrap().parse::<i64>().unwrap());
        }
        match page
            .body
            .split("rel=\"next\"")
            .next()
            .and_then(|b| b.rsplit("href=\"").next())
        {
            Some(href) if page.body.contains("rel=\"next\"") => {
                path = href.split('"').next().unwrap().replace("&amp;", "&");
            }
            _ => break,
        }
    }
    assert_eq!(pages, 3);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 120, "each ticket once");
    // Search by a word of a body (prefix too) and by an address.
    for (q, expected) in [
        ("capacitor", ids[77]),
        ("capac", ids[77]),
        ("zed@rare-domain.example", ids[5]),
    ] {
        let page = portal
            .get(
                &sam,
                &format!(
                    "/portal/tickets?q={}",
                    form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
                ),
            )
            .await;
        let found: Vec<&str> = page
            .body
            .split("name=\"ticket\" value=\"")
            .skip(1)
            .map(|c| c.split('"').next().unwrap())
            .collect();
        assert_eq!(found, vec![expected.to_string().as_str()], "search {q:?}");
    }
    // Filters combine, and the view is in the URL.
    let mut conn = portal.store().acquire().await.unwrap();
    tickets::set_priority(
        &mut conn,
        ids[3],
        maildesk::domain::Priority::Urgent,
        unix_now(),
    )
    .await
    .unwrap();
    drop(conn);
    let page = portal
        .get(&sam, "/portal/tickets?priority=urgent&status=open")
        .await;
    let found: Vec<&str> = page
        .body
        .split("name=\"ticket\" value=\"")
        .skip(1)
        .map(|c| c.split('"').next().unwrap())
        .collect();
    assert_eq!(found, vec![ids[3].to_string().as_str()]);
    assert!(
        page.body.contains("<option value=\"urgent\" selected>"),
        "the form shows the filter"
    );
    // Bulk: assign three tickets to me, then "mine" shows exactly them.
    let mine = [ids[0], ids[1], ids[2]].map(|i| i.to_string());
    let me = {
        let mut conn = portal.store().acquire().await.unwrap();
        users::find_by_email(&mut conn, STAFF)
            .await
            .unwrap()
            .unwrap()
            .id
            .to_string()
    };
    let response = portal
        .post(
            &sam,
            "/portal/tickets/bulk",
            &[
                ("ticket", &mine[0]),
                ("ticket", &mine[1]),
                ("ticket", &mine[2]),
                ("set_assignee", &me),
                ("set_status", "in_progress"),
            ],
        )
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER, "{}", response.body);
    let page = portal.get(&sam, "/portal/tickets?assignee=mine").await;
    let mut found: Vec<String> = page
        .body
        .split("name=\"ticket\" value=\"")
        .skip(1)
        .map(|c| c.split('"').next().unwrap().to_string())
        .collect();
    found.sort();
    let mut expected = mine.to_vec();
    expected.sort();
    assert_eq!(found, expected);
    let unassigned = portal
        .get(&sam, "/portal/tickets?assignee=unassigned&status=any")
        .await;
    assert!(!unassigned
        .body
        .contains(&format!("name=\"ticket\" value=\"{}\"", mine[0])));
    let dashboard = portal.get(&sam, "/portal").await;
    assert!(
        dashboard.body.contains("<strong>3</strong> mine"),
        "{}",
        dashboard.body
    );
    assert!(dashboard.body.contains("<strong>3</strong> in progress"));
}

#[tokio::test]
async fn mail_is_shown_safely_and_files_download_as_files() {
    let portal = Portal::new().await;
    let png: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    let png_b64 = base64_of(png);
    let raw = format!(
        "From: cora@example.net\r\nTo: support@example.com\r\nSubject: Look\r\nMessage-ID: <h1@x>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p onclick=\"alert(1)\">Hello <b>there</b></p><script>alert(2)</script><img src=\"https://tracker.example/p.gif\"><img src=\"cid:logo@x\">\r\n--b\r\nContent-Type: image/png\r\nContent-ID: <logo@x>\r\nContent-Disposition: inline; filename=\"logo.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{png_b64}\r\n--b\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename=\"fake\\\".png\"\r\n\r\nPGh0bWw+\r\n--b--\r\n"
    );
    let ticket = portal.ingest(&raw).await;
    let sam = portal.sign_in(STAFF).await;
    let page = portal.get(&sam, &format!("/portal/tickets/{ticket}")).await;
    assert!(page.body.contains("Hello <b>there</b>"));
    for bad in ["onclick", "<script>alert", "tracker.example"] {
        assert!(!page.body.contains(bad), "{bad} on the page");
    }
    assert!(page
        .body
        .contains("Remote images in this message were blocked"));
    assert!(page.body.contains("/cid/logo%40x"));
    let message_id = page
        .body
        .split("id=\"m")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let shown = portal
        .get(
            &sam,
            &format!("/portal/tickets/{ticket}?images={message_id}"),
        )
        .await;
    assert!(shown.body.contains("https://tracker.example/p.gif"));
    let csp = shown
        .headers
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(csp.contains("img-src 'self' data: https:"), "{csp}");
    // The cid image is served as the image it is.
    let cid = portal
        .get(&sam, &format!("/portal/messages/{message_id}/cid/logo%40x"))
        .await;
    assert_eq!(cid.status, StatusCode::OK);
    assert_eq!(cid.headers.get("content-type").unwrap(), "image/png");
    // The fake PNG downloads as bytes and is never previewed as what it claims.
    let fake_id = page
        .body
        .split("/portal/attachments/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let download = portal
        .get(&sam, &format!("/portal/attachments/{fake_id}"))
        .await;
    assert_eq!(
        download.headers.get("content-type").unwrap(),
        "application/octet-stream"
    );
    let disposition = download
        .headers
        .get("content-disposition")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"fake_.png\""),
        "{disposition}"
    );
    assert_eq!(
        download.headers.get("x-content-type-options").unwrap(),
        "nosniff"
    );
    let preview = portal
        .get(&sam, &format!("/portal/attachments/{fake_id}?inline=1"))
        .await;
    assert_eq!(
        preview.headers.get("content-type").unwrap(),
        "application/octet-stream",
        "not really a PNG"
    );
    assert!(preview
        .headers
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap()
        .contains("sandbox"));
}

fn base64_of(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[tokio::test]
async fn quarantine_entries_are_shown_inert_and_retried_or_discarded() {
    let portal = Portal::new().await;
    let entry = match ingest_text(
        &portal.ingestor,
        "\u{0}\u{1}<script>alert(1)</script>\u{1b}[31m",
    )
    .await
    {
        Outcome::Quarantined { entry_id, .. } => entry_id,
        other => panic!("{other:?}"),
    };
    let ada = portal.sign_in(ADMIN).await;
    let list = portal.get(&ada, "/portal/quarantine").await;
    assert!(list.body.contains(&format!("/portal/quarantine/{entry}")));
    let dashboard = portal.get(&ada, "/portal").await;
    assert!(dashboard.body.contains("<strong>1</strong> in quarantine"));
    let page = portal
        .get(&ada, &format!("/portal/quarantine/{entry}"))
        .await;
    assert!(
        page.body
            .contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<script>alert(1)") && !page.body.contains('\u{1b}'));
    let retried = portal
        .post(&ada, &format!("/portal/quarantine/{entry}/retry"), &[])
        .await;
    assert_eq!(retried.status, StatusCode::SEE_OTHER);
    assert!(
        retried
            .location()
            .ends_with(&format!("done=entry_quarantined&n={entry}")),
        "{}",
        retried.location()
    );
    let list = portal.get(&ada, retried.location()).await;
    assert!(list
        .body
        .contains(&format!("Entry {entry} is still quarantined")));
    let discarded = portal
        .post(&ada, &format!("/portal/quarantine/{entry}/discard"), &[])
        .await;
    assert_eq!(discarded.status, StatusCode::SEE_OTHER);
    let again = portal
        .post(&ada, &format!("/portal/quarantine/{entry}/discard"), &[])
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let list = portal.get(&ada, "/portal/quarantine").await;
    assert!(list.body.contains("Nothing is in quarantine."));
}

#[tokio::test]
async fn disabling_a_user_from_the_command_line_ends_their_sessions_at_once() {
    let portal = Portal::new().await;
    let sam = portal.sign_in(STAFF).await;
    assert_eq!(portal.get(&sam, "/portal").await.status, StatusCode::OK);
    let out = portal.env.cli(&["user", "disable", STAFF], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        portal.get(&sam, "/portal").await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        portal.try_sign_in(STAFF, PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    let out = portal.env.cli(&["user", "enable", STAFF], None);
    assert!(out.status.success());
    let sam = portal.sign_in(STAFF).await;
    let pw = portal.env.dir.path().join("new-pw");
    std::fs::write(&pw, "another password 3\n").unwrap();
    let out = portal.env.cli(
        &[
            "user",
            "passwd",
            STAFF,
            "--password-file",
            pw.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        portal.get(&sam, "/portal").await.status,
        StatusCode::SEE_OTHER,
        "a new password ends sessions"
    );
    assert_eq!(
        portal.try_sign_in(STAFF, "another password 3").await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn the_migration_indexes_mail_stored_before_it_for_search() {
    // A database at the schema before the portal (migrations 1 to 6), with mail in it.
    let env = TestEnv::new().await;
    let store = Store::connect(&env.database_url, 2).await.unwrap();
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(if crate::support::is_postgres() {
            "migrations/postgres"
        } else {
            "migrations/sqlite"
        });
    let mut before = sqlx::migrate::Migrator::new(dir).await.unwrap();
    before.migrations = before
        .migrations
        .iter()
        .filter(|m| m.version <= 6)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    before.run(store.pool()).await.unwrap();
    {
        let mut conn = store.acquire().await.unwrap();
        let ticket = tickets::insert(
            &mut conn,
            &tickets::NewTicket {
                subject: "Old printer",
                category: "other",
                mailbox: None,
                requester_email: "old@example.net",
                requester_name: None,
                linked_ticket_id: None,
            },
            unix_now(),
        )
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO messages (ticket_id, direction, kind, from_email, subject, message_id, text_body, content_sha256, source, created_at)
             VALUES ($1, 'in', 'public', 'old@example.net', 'Old printer', 'old@x', 'The stapler jammed yesterday', 'x', 'test', 1)",
        )
        .bind(ticket)
        .execute(&mut *conn)
        .await
        .unwrap();
    }
    store.close().await;
    // The new version starts: migrations 7+ run, and the old mail is searchable.
    let store = env.store().await;
    add_user(&store, STAFF, "Sam Staff", Role::Staff).await;
    let ingestor = Ingestor::open(&env.config, store).await.unwrap();
    let state = AppState::new(env.config.clone(), ingestor.clone(), Wake::default());
    let portal = Portal {
        app: web::router(state.clone()),
        state,
        env,
        ingestor,
        wake: Arc::new(tokio::sync::Notify::new()),
    };
    let sam = portal.sign_in(STAFF).await;
    let page = portal.get(&sam, "/portal/tickets?q=stapler").await;
    assert!(page.body.contains("Old printer"), "{}", page.body);
}

#[tokio::test]
async fn readyz_says_which_part_is_wrong_without_internal_details() {
    let portal = Portal::with_config(
        "[[mailbox]]\nname = \"sales\"\nhost = \"127.0.0.1\"\nport = 9\nsecurity = \"plain\"\nusername = \"u\"\npassword = \"p\"\n",
    )
    .await;
    let anonymous = Browser::default();
    let ready = portal.get(&anonymous, "/readyz").await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    let json: serde_json::Value = serde_json::from_str(&ready.body).unwrap();
    assert_eq!(json["status"], "ready");
    assert_eq!(json["database"], "ok");
    assert_eq!(json["outbox"], "ok");
    assert_eq!(json["mailboxes"]["sales"], "waiting for its first sync");
    // A failing mailbox and mail stuck in the outbox: 503, named, no error text.
    portal
        .ingest(&customer_mail("cora@example.net", "rz1@x", "Hi", "Hello"))
        .await;
    let mut conn = portal.store().acquire().await.unwrap();
    store::imap::record_error(
        &mut conn,
        "sales",
        "LOGIN refused for u@127.0.0.1 secret-ish",
        unix_now(),
    )
    .await
    .unwrap();
    sqlx::query("UPDATE outbox SET next_attempt_at = $1")
        .bind(unix_now() - 3600)
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);
    let bad = portal.get(&anonymous, "/readyz").await;
    assert_eq!(bad.status, StatusCode::SERVICE_UNAVAILABLE);
    let json: serde_json::Value = serde_json::from_str(&bad.body).unwrap();
    assert_eq!(json["status"], "unavailable");
    assert_eq!(json["mailboxes"]["sales"], "failing");
    assert_eq!(json["outbox"], "stuck");
    assert!(
        !bad.body.contains("LOGIN") && !bad.body.contains("127.0.0.1"),
        "{}",
        bad.body
    );
}

#[tokio::test]
async fn an_admin_deletes_a_ticket_from_its_page_once_the_box_is_ticked() {
    let portal = Portal::new().await;
    let id = portal
        .ingest(&customer_mail(
            "cora@example.net",
            "del1@x",
            "Test please ignore",
            "Sent by mistake.",
        ))
        .await;
    let page = format!("/portal/tickets/{id}");
    let sam = portal.sign_in(STAFF).await;
    let ada = portal.sign_in(ADMIN).await;
    assert!(!portal.get(&sam, &page).await.body.contains("Delete ticket"));
    assert!(portal.get(&ada, &page).await.body.contains("Delete ticket"));

    let unconfirmed = portal.post(&ada, &format!("{page}/delete"), &[]).await;
    assert_eq!(unconfirmed.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        unconfirmed.body.contains("tick the box"),
        "{}",
        unconfirmed.body
    );
    assert_eq!(portal.get(&ada, &page).await.status, StatusCode::OK);

    let deleted = portal
        .post(&ada, &format!("{page}/delete"), &[("confirm", "yes")])
        .await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER, "{}", deleted.body);
    assert!(deleted.location().starts_with("/portal/tickets?done="));
    assert_eq!(portal.get(&ada, &page).await.status, StatusCode::NOT_FOUND);
}
