//! Threading rules (DESIGN.md "Threading") against the real database engine.

use maildesk::domain::{Role, TicketStatus};
use maildesk::inbound::ingest::{Ingestor, Outcome};
use maildesk::store::{self, tickets, unix_now, users};

use crate::support::{ingest_text, TestEnv};

fn mail(from: &str, message_id: &str, subject: &str, extra_headers: &str, body: &str) -> String {
    format!("From: {from}\r\nTo: support@example.com\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\n{extra_headers}\r\n{body}\r\n")
}

fn created(outcome: Outcome) -> i64 {
    match outcome {
        Outcome::Created { ticket_id, .. } => ticket_id,
        other => panic!("expected a new ticket, got {other:?}"),
    }
}

fn threaded(outcome: Outcome) -> i64 {
    match outcome {
        Outcome::Threaded { ticket_id, .. } => ticket_id,
        other => panic!("expected a threaded message, got {other:?}"),
    }
}

async fn status_of(ingestor: &Ingestor, ticket_id: i64) -> (String, Option<i64>) {
    let mut conn = ingestor.store().acquire().await.unwrap();
    let t = tickets::get(&mut conn, ticket_id).await.unwrap();
    (t.status.to_string(), t.linked_ticket_id)
}

async fn set_status(ingestor: &Ingestor, ticket_id: i64, status: TicketStatus, at: i64) {
    let mut conn = ingestor.store().acquire().await.unwrap();
    tickets::set_status(&mut conn, ticket_id, status, at)
        .await
        .unwrap();
}

async fn open_ticket(ingestor: &Ingestor) -> i64 {
    created(
        ingest_text(
            ingestor,
            &mail(
                "Ann <ann@customer.example>",
                "first@customer.example",
                "Printer on fire",
                "Cc: Carl <carl@customer.example>\r\n",
                "Help.",
            ),
        )
        .await,
    )
}

#[tokio::test]
async fn in_reply_to_alone_threads() {
    let env = TestEnv::new().await;
    let ingestor = env.ingestor().await;
    let ticket = open_ticket(&ingestor).await;
    let reply = mail(
        "ann@customer.example",
        "r1@customer.example",
        "completely different subject",
        "In-Reply-To: <first@customer.example>\r\n",
        "More.",
    );
    assert_eq!(threaded(ingest_text(&ingestor, &reply).await), ticket);
}

#[tokio::test]
async fn references_match_in_the_middle_of_the_chain() {
    let env = TestEnv::new().await;
    let ingestor = env.ingestor().await;
    let ticket = open_ticket(&ingestor).await;
    let reply = mail(
        "someone@elsewhere.example",
        "r2@elsewhere.example",
        "Fwd: thing",
        "References: <unknown-1@x.example> <first@customer.example> <unknown-2@y.example>\r\n",
        "Seen.",
    );
    assert_eq!(threaded(ingest_text(&ingestor, &reply).await), ticket);
}

#[tokio::test]
async fn subject_tag_is_trusted_only_from_people_on_the_ticket() {
    let env = TestEnv::new().await;
    let ingestor = env.ingestor().await;
    let ticket = open_ticket(&ingestor).await;
    let subject = format!("Re: [Support #{ticket}] Printer on fire");

    let from_requester = mail(
        "ANN@customer.example",
        "t1@customer.example",
        &subject,
        "",
        "Requester via tag.",
    );
    assert_eq!(
        threaded(ingest_text(&ingestor, &from_requester).await),
        ticket
    );

    let from_cc = mail(
        "carl@customer.example",
        "t2@customer.example",
        &subject,
        "",
        "Cc via tag.",
    );
    assert_eq!(threaded(ingest_text(&ingestor, &from_cc).await), ticket);

    {
        let mut conn = ingestor.store().acquire().await.unwrap();
        let user = users::NewUser {
            email: "agent@example.com",
            name: "Agent",
            role: Role::Staff,
            password_hash: "x",
        };
        users::insert(&mut conn, &user, unix_now()).await.unwrap();
    }
    // A staff address alone proves nothing (anyone can write it in From): without a
    // reference only that user was sent, the tag is not trusted and the mail stays an
    // unverified internal message on a ticket of its own.
    let from_staff = mail(
        "Agent <agent@example.com>",
        "t3@example.com",
        &subject,
        "",
        "Staff via tag.",
    );
    let elsewhere = created(ingest_text(&ingestor, &from_staff).await);
    assert_ne!(elsewhere, ticket);
    let detail = maildesk::helpdesk::ticket_views::load(ingestor.store(), elsewhere)
        .await
        .unwrap();
    assert_eq!(
        (
            detail.messages[0].kind.as_str(),
            detail.messages[0].unverified
        ),
        ("note", true)
    );
    assert!(detail.participants.is_empty(), "{:?}", detail.participants);

    let from_stranger = mail(
        "mallory@evil.example",
        "t4@evil.example",
        &subject,
        "",
        "Let me in.",
    );
    let other = created(ingest_text(&ingestor, &from_stranger).await);
    assert_ne!(other, ticket);
    let detail = maildesk::helpdesk::ticket_views::load(ingestor.store(), other)
        .await
        .unwrap();
    assert_eq!(
        detail.ticket.subject, "Re: Printer on fire",
        "a foreign tag is not kept on the new ticket"
    );
    assert_eq!(detail.ticket.requester_email, "mallory@evil.example");
    let original = maildesk::helpdesk::ticket_views::load(ingestor.store(), ticket)
        .await
        .unwrap();
    assert!(original
        .messages
        .iter()
        .all(|m| m.from != "mallory@evil.example"));
}

#[tokio::test]
async fn a_reply_reopens_a_resolved_or_waiting_ticket() {
    let env = TestEnv::new().await;
    let ingestor = env.ingestor().await;
    let ticket = open_ticket(&ingestor).await;
    for (i, status) in [TicketStatus::Resolved, TicketStatus::Waiting]
        .into_iter()
        .enumerate()
    {
        set_status(&ingestor, ticket, status, unix_now()).await;
        let reply = mail(
            "ann@customer.example",
            &format!("again{i}@customer.example"),
            "Re: Printer on fire",
            "In-Reply-To: <first@customer.example>\r\n",
            "It is back.",
        );
        assert_eq!(threaded(ingest_text(&ingestor, &reply).await), ticket);
        assert_eq!(status_of(&ingestor, ticket).await.0, "open");
    }
}

#[tokio::test]
async fn an_auto_reply_does_not_reopen() {
    let env = TestEnv::new().await;
    let ingestor = env.ingestor().await;
    let ticket = open_ticket(&ingestor).await;
    set_status(&ingestor, ticket, TicketStatus::Resolved, unix_now()).await;
    let ooo = mail(
        "ann@customer.example",
        "ooo@customer.example",
        "Out of office",
        "In-Reply-To: <first@customer.example>\r\nAuto-Submitted: auto-replied\r\n",
        "I am away.",
    );
    assert_eq!(threaded(ingest_text(&ingestor, &ooo).await), ticket);
    assert_eq!(status_of(&ingestor, ticket).await.0, "resolved");
    let detail = maildesk::helpdesk::ticket_views::load(ingestor.store(), ticket)
        .await
        .unwrap();
    let last = detail.messages.last().unwrap();
    assert_eq!(
        (last.kind.as_str(), last.automatic_reason.as_deref()),
        ("automatic", Some("Auto-Submitted: auto-replied"))
    );
}

#[tokio::test]
async fn a_reply_to_a_long_closed_ticket_opens_a_linked_one() {
    let env = TestEnv::new().await;
    let ingestor = env.ingestor().await;
    let ticket = open_ticket(&ingestor).await;
    let thirty_days_ago = unix_now() - 30 * 86_400;
    set_status(&ingestor, ticket, TicketStatus::Closed, thirty_days_ago).await;
    let reply = mail(
        "ann@customer.example",
        "late@customer.example",
        "Re: Printer on fire",
        "In-Reply-To: <first@customer.example>\r\n",
        "Again, months later.",
    );
    let new_ticket = created(ingest_text(&ingestor, &reply).await);
    assert_ne!(new_ticket, ticket);
    assert_eq!(
        status_of(&ingestor, new_ticket).await,
        ("open".to_string(), Some(ticket))
    );
    assert_eq!(status_of(&ingestor, ticket).await.0, "closed");
}

#[tokio::test]
async fn a_reply_to_a_recently_closed_ticket_reopens_it() {
    let env = TestEnv::new().await;
    let ingestor = env.ingestor().await;
    let ticket = open_ticket(&ingestor).await;
    set_status(&ingestor, ticket, TicketStatus::Closed, unix_now() - 86_400).await;
    let reply = mail(
        "ann@customer.example",
        "soon@customer.example",
        "Re: Printer on fire",
        "In-Reply-To: <first@customer.example>\r\n",
        "Not fixed.",
    );
    assert_eq!(threaded(ingest_text(&ingestor, &reply).await), ticket);
    assert_eq!(status_of(&ingestor, ticket).await.0, "open");
}

#[tokio::test]
async fn duplicates_are_no_ops_but_a_reused_message_id_is_not_a_duplicate() {
    let env = TestEnv::new().await;
    let ingestor = env.ingestor().await;
    let first = mail(
        "ann@customer.example",
        "same@customer.example",
        "Hello",
        "",
        "Version one.",
    );
    let ticket = created(ingest_text(&ingestor, &first).await);
    match ingest_text(&ingestor, &first).await {
        Outcome::Duplicate { ticket_id, .. } => assert_eq!(ticket_id, ticket),
        other => panic!("expected a duplicate, got {other:?}"),
    }
    // The same message relayed again (new trace headers) is still the same message.
    let relayed = format!("Received: from relay.example by mx.example\r\nDelivered-To: support@example.com\r\n{first}");
    assert!(matches!(
        ingest_text(&ingestor, &relayed).await,
        Outcome::Duplicate { .. }
    ));
    // A broken client reusing the Message-ID for a new text: a new message, not lost.
    let reused = mail(
        "ann@customer.example",
        "same@customer.example",
        "Hello",
        "",
        "Version two, different words.",
    );
    assert!(matches!(
        ingest_text(&ingestor, &reused).await,
        Outcome::Created { .. } | Outcome::Threaded { .. }
    ));
    let mut conn = ingestor.store().acquire().await.unwrap();
    assert_eq!(store::messages::count(&mut conn).await.unwrap(), 2);
}

#[tokio::test]
async fn copied_people_join_the_ticket_but_our_own_addresses_do_not() {
    let env = TestEnv::new().await;
    let ingestor = env.ingestor().await;
    let raw = "From: Ann <ann@customer.example>\r\nTo: support@example.com, Dave <dave@customer.example>\r\nCc: support+old@example.com, not-an-address\r\nSubject: Access\r\nMessage-ID: <p1@customer.example>\r\n\r\nPlease.\r\n";
    let ticket = created(ingest_text(&ingestor, raw).await);
    let detail = maildesk::helpdesk::ticket_views::load(ingestor.store(), ticket)
        .await
        .unwrap();
    let people: Vec<(String, String)> = detail
        .participants
        .iter()
        .map(|p| (p.email.clone(), p.role.to_string()))
        .collect();
    assert_eq!(
        people,
        vec![
            ("ann@customer.example".to_string(), "requester".to_string()),
            ("dave@customer.example".to_string(), "cc".to_string())
        ]
    );
}

const SECRET: &str = "test-secret-0123456789abcdef";

#[tokio::test]
async fn our_signed_message_ids_and_reply_addresses_thread_and_forgeries_do_not() {
    use maildesk::domain::signing;
    let env = TestEnv::new().await;
    let ingestor = env.ingestor().await;
    let ticket = open_ticket(&ingestor).await;

    // Rule 2: a reply to one of our (signed) Message-IDs, even one we never stored.
    let ours = signing::message_id(SECRET, "example.com", ticket, 99);
    let reply = mail(
        "new-person@elsewhere.example",
        "s1@elsewhere.example",
        "Re: something",
        &format!("In-Reply-To: <{ours}>\r\n"),
        "Hi.",
    );
    assert_eq!(threaded(ingest_text(&ingestor, &reply).await), ticket);
    let forged = signing::message_id("some-other-secret-123456", "example.com", ticket, 99);
    let fake = mail(
        "mallory@evil.example",
        "s2@evil.example",
        "Re: something",
        &format!("In-Reply-To: <{forged}>\r\n"),
        "Let me in.",
    );
    assert_ne!(created(ingest_text(&ingestor, &fake).await), ticket);

    // Rule 4: our signed reply address among the recipients.
    let address = signing::reply_address(SECRET, "support@example.com", ticket);
    let to_plus = format!("From: other@customer.example\r\nTo: {address}\r\nSubject: no reference\r\nMessage-ID: <s3@customer.example>\r\n\r\nBy address.\r\n");
    assert_eq!(threaded(ingest_text(&ingestor, &to_plus).await), ticket);
    let guessed = format!("support+{ticket}-0000000000000000@example.com");
    let fake_plus = format!("From: mallory@evil.example\r\nTo: {guessed}\r\nSubject: guessed\r\nMessage-ID: <s4@evil.example>\r\n\r\nGuess.\r\n");
    assert_ne!(created(ingest_text(&ingestor, &fake_plus).await), ticket);
}
