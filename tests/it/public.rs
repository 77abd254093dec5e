//! The public page `/` and the customer's own ticket page `/t/{token}`, through the
//! router: submissions and web replies enter as mail, limits, honeypot, CSRF, and who a
//! customer link opens the page for.

use axum::http::{header, StatusCode};
use maildesk::domain::signing::{self, CustomerLink};
use maildesk::store::{tickets, unix_now};

use crate::support::portal::{customer_mail, field_value, Browser, Portal, Response};
use crate::support::public::{
    form, post_multipart, public_portal, ticket_count, visitor, web_config, BASE, CORA, SECRET,
};

async fn outbox_raw(portal: &Portal, ticket: i64, kind: &str, recipient: &str) -> String {
    let mut conn = portal.store().acquire().await.unwrap();
    let raw: Vec<u8> = sqlx::query_scalar(
        "SELECT raw FROM outbox WHERE ticket_id = $1 AND kind = $2 AND recipient = $3 ORDER BY id DESC",
    )
    .bind(ticket)
    .bind(kind)
    .bind(recipient)
    .fetch_one(&mut *conn)
    .await
    .unwrap_or_else(|e| panic!("no {kind} to {recipient} on #{ticket}: {e}"));
    // Decoded as a mail client would (long lines are wrapped quoted-printable).
    let parsed = mail_parser::MessageParser::default()
        .parse(&raw)
        .expect("a mail");
    parsed.body_text(0).expect("a text part").into_owned()
}

/// The customer link in a mail (the path part, `/t/…`).
fn link_in(raw: &str) -> String {
    let start = raw
        .find(&format!("{BASE}/t/"))
        .unwrap_or_else(|| panic!("no customer link in {raw}"))
        + BASE.len();
    raw[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '/')
        .collect()
}

fn link(ticket: i64, email: &str, expires: i64, epoch: i64) -> String {
    let link = CustomerLink {
        ticket,
        email: email.into(),
        expires,
    };
    format!("/t/{}", signing::customer_link(SECRET, &link, epoch))
}

/// Submits the form as a customer; returns the new ticket.
async fn submit(portal: &Portal, email: &str, subject: &str) -> i64 {
    let before = ticket_count(portal).await;
    let browser = visitor(portal, "/").await;
    let response = post_multipart(
        portal,
        &browser,
        "/",
        &form(email, subject),
        &[],
        "192.0.2.1",
    )
    .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    assert_eq!(ticket_count(portal).await, before + 1);
    let mut conn = portal.store().acquire().await.unwrap();
    sqlx::query_scalar("SELECT MAX(id) FROM tickets")
        .fetch_one(&mut *conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_form_renders_and_can_be_switched_off() {
    let portal = public_portal("").await;
    let page = portal.get(&Browser::default(), "/").await;
    assert_eq!(page.status, StatusCode::OK);
    for field in [
        "email",
        "name",
        "category",
        "subject",
        "description",
        "attachments",
    ] {
        assert!(page.body.contains(&format!("name=\"{field}\"")), "{field}");
    }
    assert!(page.body.contains("enctype=\"multipart/form-data\""));
    assert!(
        page.body.contains("class=\"hp\""),
        "honeypot hidden by a class"
    );
    assert!(!page.body.contains("style="), "no inline style");
    assert!(!page.body.contains("/portal/logout"), "no staff navigation");
    assert!(page.body.contains("<option value=\"network\""));
    assert!(page.body.contains("href=\"/static/portal.css\""));

    let off = Portal::with_config(&web_config("public_form = false")).await;
    assert_eq!(
        off.get(&Browser::default(), "/").await.status,
        StatusCode::NOT_FOUND
    );
    let browser = Browser::default();
    let refused = post_multipart(&off, &browser, "/", &form(CORA, "Hi"), &[], "192.0.2.1").await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    assert_eq!(ticket_count(&off).await, 0);
}

#[tokio::test]
async fn validation_errors_are_shown_next_to_each_field_with_the_input_kept() {
    let portal = public_portal("").await;
    let browser = visitor(&portal, "/").await;
    let fields = [
        ("email", "not an address"),
        ("name", ""),
        ("category", "network"),
        ("subject", "Printer <b>on fire</b>"),
        ("description", ""),
    ];
    let page = post_multipart(&portal, &browser, "/", &fields, &[], "192.0.2.1").await;
    assert_eq!(
        page.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        page.body
    );
    for id in ["email-error", "name-error", "description-error"] {
        assert!(
            page.body.contains(&format!("id=\"{id}\"")),
            "{id}: {}",
            page.body
        );
    }
    assert!(!page.body.contains("id=\"subject-error\""));
    assert!(page.body.contains("value=\"not an address\""), "email kept");
    assert!(
        page.body.contains("Printer &#60;b&#62;on fire&#60;/b&#62;")
            || page.body.contains("Printer &lt;b&gt;on fire&lt;/b&gt;"),
        "subject kept, escaped"
    );
    assert!(
        page.body.contains("<option value=\"network\" selected>"),
        "category kept"
    );

    let bad_category = [
        ("email", CORA),
        ("name", "Cora"),
        ("category", "weapons"),
        ("subject", "Hi"),
        ("description", "Text"),
    ];
    let page = post_multipart(&portal, &browser, "/", &bad_category, &[], "192.0.2.1").await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("id=\"category-error\""));
    let own = [
        ("email", "support@example.com"),
        ("name", "Us"),
        ("category", "other"),
        ("subject", "Loop"),
        ("description", "Text"),
    ];
    let page = post_multipart(&portal, &browser, "/", &own, &[], "192.0.2.1").await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("id=\"email-error\""));
    assert_eq!(ticket_count(&portal).await, 0);
}

#[tokio::test]
async fn a_submission_is_a_ticket_acknowledged_with_the_customer_link() {
    let portal = public_portal("").await;
    let browser = visitor(&portal, "/").await;
    let woken = portal.wake.notified();
    let response = post_multipart(
        &portal,
        &browser,
        "/",
        &form(CORA, "[Support #1] Printer on fire"),
        &[("log.txt", b"line one\nline two\n")],
        "192.0.2.1",
    )
    .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    assert!(response
        .body
        .contains(&format!("We have e-mailed a confirmation to {CORA}")));
    tokio::time::timeout(std::time::Duration::from_secs(1), woken)
        .await
        .expect("the outbox worker is woken");
    let ticket = portal.ticket(1).await;
    assert_eq!(ticket.requester_email, CORA);
    assert_eq!(ticket.requester_name.as_deref(), Some("Cora Customer"));
    assert_eq!(ticket.category, "hardware", "the chosen category");
    assert_eq!(ticket.subject, "Printer on fire", "a typed tag is not kept");
    let mut conn = portal.store().acquire().await.unwrap();
    let (source, kind, body): (String, String, String) = sqlx::query_as(
        "SELECT source, kind, text_body FROM messages WHERE ticket_id = 1 AND direction = 'in'",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    assert_eq!((source.as_str(), kind.as_str()), ("web", "public"));
    assert!(body.contains("error 42"));
    let files: Vec<(String, i64)> =
        sqlx::query_as("SELECT filename, size FROM attachments ORDER BY id")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    assert_eq!(files, vec![("log.txt".to_string(), 18)]);
    // The acknowledgement carries the link; the copy stored on the ticket does not.
    let ack = outbox_raw(&portal, 1, "acknowledgement", CORA).await;
    let path = link_in(&ack);
    assert!(path.starts_with("/t/1."), "{path}");
    let stored: Vec<String> = sqlx::query_scalar(
        "SELECT text_body FROM messages WHERE ticket_id = 1 AND direction = 'out'",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    assert!(
        !stored.is_empty() && stored.iter().all(|t| !t.contains("/t/")),
        "{stored:?}"
    );
    let staff: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM outbox WHERE ticket_id = 1 AND kind = 'notification'",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    assert!(staff > 0, "staff hear of the new ticket");
    drop(conn);
    let page = portal.get(&Browser::default(), &path).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Printer on fire") && page.body.contains("error 42"));
    assert_eq!(page.headers[header::REFERRER_POLICY], "no-referrer");

    // A reply to the acknowledgement by mail threads onto the same ticket.
    let mut conn = portal.store().acquire().await.unwrap();
    let ack_id: String = sqlx::query_scalar(
        "SELECT message_id_header FROM outbox WHERE ticket_id = 1 AND kind = 'acknowledgement'",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    drop(conn);
    let reply = format!(
        "From: Cora <{CORA}>\r\nTo: support@example.com\r\nSubject: Re: your ticket\r\nMessage-ID: <r1@example.net>\r\nIn-Reply-To: <{ack_id}>\r\n\r\nAlso the scanner.\r\n"
    );
    assert_eq!(portal.ingest(&reply).await, 1);
}

#[tokio::test]
async fn the_honeypot_and_a_missing_csrf_token_store_nothing() {
    let portal = public_portal("").await;
    let browser = visitor(&portal, "/").await;
    let mut fields = form(CORA, "Cheap pills");
    fields.retain(|(k, _)| *k != "website");
    fields.push(("website", "http://spam.example"));
    let response = post_multipart(&portal, &browser, "/", &fields, &[], "192.0.2.9").await;
    assert_eq!(response.status, StatusCode::OK, "robots are told it worked");
    assert!(response.body.contains("We have e-mailed a confirmation"));
    assert_eq!(ticket_count(&portal).await, 0);

    let no_cookie = Browser {
        cookie: String::new(),
        csrf: browser.csrf.clone(),
    };
    let refused = post_multipart(
        &portal,
        &no_cookie,
        "/",
        &form(CORA, "Hi"),
        &[],
        "192.0.2.9",
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.body.contains("value=\"Hi\""), "input kept");
    let wrong = Browser {
        cookie: browser.cookie.clone(),
        csrf: "0".repeat(64),
    };
    let refused = post_multipart(&portal, &wrong, "/", &form(CORA, "Hi"), &[], "192.0.2.9").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(ticket_count(&portal).await, 0);
}

#[tokio::test]
async fn submissions_are_limited_per_address_and_per_client() {
    let portal = public_portal("public_per_address = 2\npublic_per_client = 3").await;
    let browser = visitor(&portal, "/").await;
    for i in 0..2 {
        let subject = format!("Try {i}");
        let ok = post_multipart(
            &portal,
            &browser,
            "/",
            &form(CORA, &subject),
            &[],
            "192.0.2.1",
        )
        .await;
        assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    }
    let limited = post_multipart(
        &portal,
        &browser,
        "/",
        &form(CORA, "Third"),
        &[],
        "192.0.2.2",
    )
    .await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    // Until the window that began with the first submission ends.
    let retry: u64 = limited.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((3500..=3600).contains(&retry), "Retry-After {retry}");
    assert!(limited.body.contains("Please wait"));
    // Another address from the first client: one more, then the client is limited.
    let ok = post_multipart(
        &portal,
        &browser,
        "/",
        &form("dan@example.net", "Mine"),
        &[],
        "192.0.2.1",
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK);
    let limited = post_multipart(
        &portal,
        &browser,
        "/",
        &form("eve@example.net", "Mine"),
        &[],
        "192.0.2.1",
    )
    .await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(ticket_count(&portal).await, 3);
}

#[tokio::test]
async fn attachments_over_the_limits_are_refused_with_the_field_named() {
    let portal =
        public_portal("public_max_attachment_bytes = 1000\npublic_max_upload_bytes = 1500").await;
    let browser = visitor(&portal, "/").await;
    let big = vec![b'x'; 1200];
    let page = post_multipart(
        &portal,
        &browser,
        "/",
        &form(CORA, "Big"),
        &[("big.bin", &big)],
        "192.0.2.1",
    )
    .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.body.contains("id=\"attachments-error\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("big.bin is larger than"));
    let part = vec![b'y'; 800];
    let page = post_multipart(
        &portal,
        &browser,
        "/",
        &form(CORA, "Two"),
        &[("a.bin", &part), ("b.bin", &part)],
        "192.0.2.1",
    )
    .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("together"), "{}", page.body);
    assert_eq!(ticket_count(&portal).await, 0);
    let ok = post_multipart(
        &portal,
        &browser,
        "/",
        &form(CORA, "Fits"),
        &[("a.bin", &part)],
        "192.0.2.1",
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
}

#[tokio::test]
async fn a_customer_link_opens_the_page_for_participants_only() {
    let portal = public_portal("").await;
    let ticket = submit(&portal, CORA, "Printer on fire").await;
    let mut conn = portal.store().acquire().await.unwrap();
    tickets::add_participants(
        &mut conn,
        ticket,
        &[(
            "carl@example.net",
            None,
            maildesk::domain::ParticipantRole::Cc,
        )],
        unix_now(),
    )
    .await
    .unwrap();
    drop(conn);
    let later = unix_now() + 3600;
    let anonymous = Browser::default();
    let open = |path: String| {
        let portal = &portal;
        let anonymous = &anonymous;
        async move { portal.get(anonymous, &path).await.status }
    };
    assert_eq!(open(link(ticket, CORA, later, 0)).await, StatusCode::OK);
    assert_eq!(
        open(link(ticket, "carl@example.net", later, 0)).await,
        StatusCode::OK
    );
    // A stranger's own signature, an altered token, an expired one.
    assert_eq!(
        open(link(ticket, "eve@example.net", later, 0)).await,
        StatusCode::FORBIDDEN
    );
    let good = link(ticket, CORA, later, 0);
    let altered = good.replacen(&format!("/t/{ticket}."), "/t/99.", 1);
    assert_eq!(open(altered).await, StatusCode::FORBIDDEN);
    let longer = good.replacen(&later.to_string(), &(later + 1).to_string(), 1);
    assert_eq!(open(longer).await, StatusCode::FORBIDDEN);
    let mut forged = good.clone();
    forged.pop();
    forged.push(if good.ends_with('0') { '1' } else { '0' });
    assert_eq!(open(forged).await, StatusCode::FORBIDDEN);
    assert_eq!(open("/t/nonsense".into()).await, StatusCode::NOT_FOUND);
    assert_eq!(
        open(link(ticket, CORA, unix_now() - 1, 0)).await,
        StatusCode::FORBIDDEN
    );
    // Removed from the ticket: no access.
    let mut conn = portal.store().acquire().await.unwrap();
    sqlx::query("DELETE FROM participants WHERE email = 'carl@example.net'")
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);
    assert_eq!(
        open(link(ticket, "carl@example.net", later, 0)).await,
        StatusCode::FORBIDDEN
    );
    // Revoked by staff: the old links stop, and the history says who did it.
    let sam = portal.sign_in("sam@example.com").await;
    let revoked = portal
        .post(&sam, &format!("/portal/tickets/{ticket}/revoke-links"), &[])
        .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER, "{}", revoked.body);
    assert_eq!(open(good).await, StatusCode::FORBIDDEN);
    assert_eq!(open(link(ticket, CORA, later, 1)).await, StatusCode::OK);
    let staff_page = portal.get(&sam, &format!("/portal/tickets/{ticket}")).await;
    assert!(staff_page.body.contains("revoked the customer links"));
    // Without the CSRF token, or anonymously, revoking is refused.
    let forged = portal
        .post(
            &sam,
            &format!("/portal/tickets/{ticket}/revoke-links"),
            &[("csrf", "x")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let anon = portal
        .post(
            &Browser::default(),
            &format!("/portal/tickets/{ticket}/revoke-links"),
            &[],
        )
        .await;
    assert_eq!(anon.status, StatusCode::SEE_OTHER);
    assert!(anon.location().starts_with("/portal/login"));
}

#[tokio::test]
async fn the_customer_sees_the_public_thread_replies_and_marks_it_solved() {
    let portal = public_portal("").await;
    let ticket = submit(&portal, CORA, "Printer on fire").await;
    let sam = portal.sign_in("sam@example.com").await;
    let page = portal.get(&sam, &format!("/portal/tickets/{ticket}")).await;
    let seen = field_value(&page.body, "seen").unwrap();
    let reply = portal
        .post(
            &sam,
            &format!("/portal/tickets/{ticket}/reply"),
            &[("body", "Unplug it, please."), ("seen", &seen)],
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    let note = portal
        .post(
            &sam,
            &format!("/portal/tickets/{ticket}/note"),
            &[("body", "SECRET internal note")],
        )
        .await;
    assert_eq!(note.status, StatusCode::SEE_OTHER);
    // The reply to the customer carries their link; the page shows the public thread only.
    let path = link_in(&outbox_raw(&portal, ticket, "reply", CORA).await);
    let customer = visitor(&portal, &path).await;
    let page = portal.get(&customer, &path).await;
    assert!(page.body.contains("Unplug it, please.") && page.body.contains("error 42"));
    assert!(
        !page.body.contains("SECRET internal note"),
        "notes never shown"
    );
    assert!(!page.body.contains("New ticket"), "no staff notifications");
    assert!(
        !page.body.contains("We have received your message"),
        "no automatic mail"
    );

    // "This is solved", then a reply from the page reopens it.
    let solved = portal.post(&customer, &format!("{path}/solved"), &[]).await;
    assert_eq!(solved.status, StatusCode::SEE_OTHER, "{}", solved.body);
    assert_eq!(portal.ticket(ticket).await.status.as_str(), "resolved");
    let no_csrf = portal
        .post(&customer, &format!("{path}/reopen"), &[("csrf", "")])
        .await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN);
    assert_eq!(portal.ticket(ticket).await.status.as_str(), "resolved");
    let woken = portal.wake.notified();
    let written = post_multipart(
        &portal,
        &customer,
        &format!("{path}/reply"),
        &[("body", "It smokes again.")],
        &[("photo.txt", b"smoke")],
        "192.0.2.1",
    )
    .await;
    assert_eq!(written.status, StatusCode::SEE_OTHER, "{}", written.body);
    tokio::time::timeout(std::time::Duration::from_secs(1), woken)
        .await
        .expect("the outbox worker is woken");
    let t = portal.ticket(ticket).await;
    assert_eq!(
        t.status.as_str(),
        "open",
        "a reply to a resolved ticket reopens it"
    );
    assert_eq!(ticket_count(&portal).await, 1, "no new ticket");
    let mut conn = portal.store().acquire().await.unwrap();
    let last: (String, String, String, String) = sqlx::query_as(
        "SELECT direction, kind, source, from_email FROM messages WHERE ticket_id = $1 AND text_body LIKE '%smokes again%'",
    )
    .bind(ticket)
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    assert_eq!(
        last,
        ("in".into(), "public".into(), "web".into(), CORA.into())
    );
    drop(conn);
    let page = portal.get(&customer, &path).await;
    assert!(page.body.contains("It smokes again."));
    let attachment = page
        .body
        .split("/attachments/")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("an attachment link")
        .to_string();
    let file = portal
        .get(&customer, &format!("{path}/attachments/{attachment}"))
        .await;
    assert_eq!(file.status, StatusCode::OK);
    assert!(file.body.contains("smoke") || file.body.contains("line one"));

    // Solved and reopened by the customer: both in the history under their address.
    portal.post(&customer, &format!("{path}/solved"), &[]).await;
    let reopened = portal.post(&customer, &format!("{path}/reopen"), &[]).await;
    assert_eq!(reopened.status, StatusCode::SEE_OTHER);
    assert_eq!(portal.ticket(ticket).await.status.as_str(), "open");
    let staff_page = portal.get(&sam, &format!("/portal/tickets/{ticket}")).await;
    assert!(
        staff_page.body.contains(&format!(
            "<strong>{CORA}</strong> changed the status from open to resolved"
        )),
        "{}",
        staff_page.body
    );
    assert!(staff_page.body.contains(&format!(
        "<strong>{CORA}</strong> changed the status from resolved to open"
    )));
}

#[tokio::test]
async fn attachments_of_other_tickets_and_of_notes_are_not_served_on_a_customer_page() {
    let portal = public_portal("").await;
    let first = submit(&portal, CORA, "First").await;
    let browser = visitor(&portal, "/").await;
    let other = post_multipart(
        &portal,
        &browser,
        "/",
        &form("dan@example.net", "Other"),
        &[("dan.txt", b"dan's file")],
        "192.0.2.3",
    )
    .await;
    assert_eq!(other.status, StatusCode::OK);
    let mut conn = portal.store().acquire().await.unwrap();
    let dan_file: i64 = sqlx::query_scalar("SELECT id FROM attachments WHERE filename = 'dan.txt'")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    drop(conn);
    let path = link(first, CORA, unix_now() + 60, 0);
    let response = portal
        .get(
            &Browser::default(),
            &format!("{path}/attachments/{dan_file}"),
        )
        .await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_merged_ticket_link_leads_to_the_target() {
    let portal = public_portal("").await;
    let first = portal
        .ingest(&customer_mail(CORA, "m1@example.net", "One", "first"))
        .await;
    let second = portal
        .ingest(&customer_mail(CORA, "m2@example.net", "Two", "second"))
        .await;
    let sam = portal.sign_in("sam@example.com").await;
    let merged = portal
        .post(
            &sam,
            &format!("/portal/tickets/{first}/merge"),
            &[("target", &second.to_string())],
        )
        .await;
    assert_eq!(merged.status, StatusCode::SEE_OTHER, "{}", merged.body);
    let page = portal
        .get(&Browser::default(), &link(first, CORA, unix_now() + 60, 0))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(&format!("#{second}")) && page.body.contains("first"));
    // Revoking on the target also voids the links to the ticket merged into it.
    portal
        .post(&sam, &format!("/portal/tickets/{second}/revoke-links"), &[])
        .await;
    let page = portal
        .get(&Browser::default(), &link(first, CORA, unix_now() + 60, 0))
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
}

/// A submission of the form by `email` from a fresh visitor: the page answered, and the
/// ticket it opened.
async fn submit_page(portal: &Portal, email: &str, subject: &str) -> (Response, i64) {
    let browser = visitor(portal, "/").await;
    let response = post_multipart(
        portal,
        &browser,
        "/",
        &form(email, subject),
        &[],
        "192.0.2.1",
    )
    .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    let mut conn = portal.store().acquire().await.unwrap();
    let ticket = sqlx::query_scalar("SELECT MAX(id) FROM tickets")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    (response, ticket)
}

async fn acknowledgements(portal: &Portal, ticket: i64) -> i64 {
    let mut conn = portal.store().acquire().await.unwrap();
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM outbox WHERE ticket_id = $1 AND kind = 'acknowledgement'",
    )
    .bind(ticket)
    .fetch_one(&mut *conn)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_submission_whose_acknowledgement_was_held_back_is_told_its_number_and_link() {
    let portal = public_portal(
        "public_per_address = 5\n[outbound]\nacknowledgements_per_sender_per_hour = 3",
    )
    .await;
    for i in 1..=5 {
        let (page, ticket) = submit_page(&portal, CORA, &format!("Try {i}")).await;
        if i <= 3 {
            assert_eq!(acknowledgements(&portal, ticket).await, 1, "#{i}");
            assert!(
                page.body
                    .contains(&format!("We have e-mailed a confirmation to {CORA}")),
                "#{i}: {}",
                page.body
            );
            assert!(
                !page.body.contains("/t/"),
                "#{i}: the link is in the mail only"
            );
            continue;
        }
        assert_eq!(
            acknowledgements(&portal, ticket).await,
            0,
            "#{i}: held back"
        );
        assert!(!page.body.contains("e-mailed"), "#{i}: {}", page.body);
        assert!(
            page.body
                .contains(&format!("Your ticket number is #{ticket}.")),
            "#{i}: {}",
            page.body
        );
        assert_eq!(page.headers[header::REFERRER_POLICY], "no-referrer");
        // The link the acknowledgement would have carried opens the customer's page.
        let path = link_in(&page.body);
        assert!(path.starts_with(&format!("/t/{ticket}.")), "{path}");
        let own = portal.get(&Browser::default(), &path).await;
        assert_eq!(own.status, StatusCode::OK, "{}", own.body);
        assert!(own.body.contains(&format!("Try {i}")) && own.body.contains(&format!("#{ticket}")));
    }
}

#[tokio::test]
async fn without_smtp_the_page_never_says_it_mailed() {
    let portal = Portal::without_smtp(&web_config("")).await;
    let (page, ticket) = submit_page(&portal, CORA, "No mail here").await;
    assert!(!page.body.contains("e-mailed"), "{}", page.body);
    assert!(page
        .body
        .contains(&format!("Your ticket number is #{ticket}.")));
    let own = portal.get(&Browser::default(), &link_in(&page.body)).await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.body);
    // Without web.public_url there is no link to give: the number only.
    let portal = Portal::without_smtp("").await;
    let (page, ticket) = submit_page(&portal, CORA, "No link here").await;
    assert!(!page.body.contains("e-mailed"), "{}", page.body);
    assert!(page
        .body
        .contains(&format!("Your ticket number is #{ticket}.")));
    assert!(!page.body.contains("/t/"), "{}", page.body);
}

/// A reply from the customer page of a ticket closed long ago: it opens a follow-up.
async fn reply_to_closed(portal: &Portal, subject: &str) -> (Response, i64) {
    let ticket = submit(portal, CORA, subject).await;
    let mut conn = portal.store().acquire().await.unwrap();
    let long_ago = unix_now() - 30 * 86_400;
    tickets::set_status(
        &mut conn,
        ticket,
        maildesk::domain::TicketStatus::Closed,
        long_ago,
    )
    .await
    .unwrap();
    drop(conn);
    let path = link(ticket, CORA, unix_now() + 3600, 0);
    let customer = visitor(portal, &path).await;
    let written = post_multipart(
        portal,
        &customer,
        &format!("{path}/reply"),
        &[("body", "It is broken again.")],
        &[],
        "192.0.2.1",
    )
    .await;
    assert_eq!(written.status, StatusCode::SEE_OTHER, "{}", written.body);
    let follow_up = portal.ticket(ticket + 1).await;
    assert_eq!(follow_up.linked_ticket_id, Some(ticket));
    (written, follow_up.id)
}

#[tokio::test]
async fn a_follow_up_from_the_customer_page_says_whether_it_was_mailed() {
    let portal = public_portal("").await;
    let (written, follow_up) = reply_to_closed(&portal, "Mailed").await;
    let page = portal.get(&Browser::default(), written.location()).await;
    assert!(
        page.body.contains(&format!(
            "opened a new ticket (#{follow_up}); we have e-mailed you a confirmation"
        )),
        "{}",
        page.body
    );

    // Acknowledgements held back: the customer lands on the new ticket's own page.
    let portal = public_portal("[outbound]\nacknowledgements_per_sender_per_hour = 1").await;
    let (written, follow_up) = reply_to_closed(&portal, "Held back").await;
    assert_eq!(acknowledgements(&portal, follow_up).await, 0);
    let location = written
        .location()
        .strip_prefix(BASE)
        .unwrap_or_else(|| panic!("to the new ticket's page: {}", written.location()));
    assert!(
        location.starts_with(&format!("/t/{follow_up}.")),
        "{location}"
    );
    let page = portal.get(&Browser::default(), location).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(!page.body.contains("e-mailed"), "{}", page.body);
    assert!(
        page.body
            .contains(&format!("opened this new ticket (#{follow_up})")),
        "{}",
        page.body
    );
    assert!(page.body.contains("It is broken again."));
}
