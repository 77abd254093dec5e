//! Hostile senders (issue 7): what an attacker or a broken mailer sent, and what must hold
//! afterwards. Each test runs on SQLite and PostgreSQL (the suite runs once per backend).

use std::time::Duration;

use maildesk::domain::{signing, Role};
use maildesk::inbound::ingest::{Ingestor, Outcome};
use maildesk::store::{unix_now, users, Store};

use crate::support::{ingest_text, TestEnv};

const SECRET: &str = "test-secret-0123456789abcdef";
/// Outgoing mail on (acknowledgements, notifications, relays are queued), never sent.
const SMTP_OFF: &str = "[smtp]\nhost = \"127.0.0.1\"\nport = 9\nsecurity = \"plain\"\n";
const AGENT: &str = "agent@example.com";

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn ticket_of(outcome: &Outcome) -> i64 {
    match outcome {
        Outcome::Created { ticket_id, .. }
        | Outcome::Threaded { ticket_id, .. }
        | Outcome::Duplicate { ticket_id, .. } => *ticket_id,
        Outcome::Quarantined { reason, .. } => panic!("quarantined: {reason}"),
    }
}

async fn add_user(store: &Store, email: &str) -> i64 {
    let mut conn = store.acquire().await.unwrap();
    let user = users::NewUser {
        email,
        name: "Alex Agent",
        role: Role::Staff,
        password_hash: "x",
    };
    users::insert(&mut conn, &user, unix_now()).await.unwrap()
}

/// Outbox rows: (kind, recipient, status, last_error, raw).
async fn outbox(store: &Store) -> Vec<(String, String, String, Option<String>, Vec<u8>)> {
    sqlx::query_as("SELECT kind, recipient, status, last_error, raw FROM outbox ORDER BY id")
        .fetch_all(store.pool())
        .await
        .unwrap()
}

async fn participants(ingestor: &Ingestor, ticket: i64) -> Vec<String> {
    maildesk::helpdesk::ticket_views::load(ingestor.store(), ticket)
        .await
        .unwrap()
        .participants
        .into_iter()
        .map(|p| p.email)
        .collect()
}

fn customer_mail(from: &str, id: &str, subject: &str, extra: &str, body: &str) -> String {
    format!("From: {from}\r\nTo: support@example.com\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n{extra}\r\n{body}\r\n")
}

// ---- 1. One mail crashes ingest ----------------------------------------------------

#[tokio::test]
async fn line_breaks_in_display_names_crash_nothing_and_mail_still_goes_out() {
    let env = TestEnv::with_config(SMTP_OFF).await;
    let evil = "From: =?utf-8?q?Mal=0AX?= <m@x.example>\r\nTo: support@example.com\r\nCc: =?utf-8?q?Bad=0DCc?= <c@x.example>\r\nSubject: =?utf-8?q?Hi=0D=0ABcc:_spy@evil.example?=\r\nMessage-ID: <crlf@x.example>\r\n\r\nHello\r\n";
    let out = env.cli(&["ingest"], Some(evil.as_bytes()));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("created: 1"), "{}", stdout(&out));
    let ticket = env.cli_json(&["ticket", "show", "1", "--json"]);
    assert_eq!(ticket["requester_name"], "Mal X");
    assert_eq!(ticket["subject"], "Hi Bcc: spy@evil.example");
    assert_eq!(ticket["outbox"][0]["status"], "queued", "{ticket}");

    // The same in an mbox among good mail: every message is stored, exit 0, and a rerun
    // adds nothing.
    let mut mbox = Vec::new();
    for (i, raw) in [
        customer_mail("a@c.example", "m1@c.example", "One", "", "x"),
        evil.replace("crlf@x.example", "crlf2@x.example"),
        customer_mail("b@c.example", "m3@c.example", "Three", "", "y"),
    ]
    .iter()
    .enumerate()
    {
        maildesk::mail::mbox::write_message(&mut mbox, &format!("s{i}@x"), raw.as_bytes()).unwrap();
    }
    let path = env.dir.path().join("evil.mbox");
    std::fs::write(&path, &mbox).unwrap();
    for expected in ["created: 3", "duplicates: 3"] {
        let out = env.cli(&["ingest", "--mbox", path.to_str().unwrap()], None);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(stdout(&out).contains(expected), "{}", stdout(&out));
    }

    // The raw acknowledgements carry clean one-line headers.
    let store = env.store().await;
    for (kind, _, _, _, raw) in outbox(&store).await {
        let raw = String::from_utf8(raw).unwrap();
        let head = raw.split("\r\n\r\n").next().unwrap();
        assert!(
            !head.contains("Mal\n") && !head.contains("\r\nBcc"),
            "{kind}: {head}"
        );
    }
}

#[tokio::test]
async fn a_legacy_line_break_in_a_stored_name_does_not_poison_the_ticket() {
    let env = TestEnv::with_config(SMTP_OFF).await;
    let ingestor = env.ingestor().await;
    let store = ingestor.store().clone();
    let ticket = ticket_of(
        &ingest_text(
            &ingestor,
            &customer_mail(
                "Ann <ann@c.example>",
                "p1@c.example",
                "Help",
                "Cc: carl@c.example\r\n",
                "x",
            ),
        )
        .await,
    );
    // Stored by an older version, before names were cleaned.
    sqlx::query("UPDATE participants SET name = $1 WHERE email = 'carl@c.example'")
        .bind("Carl\r\nBcc: spy@evil.example")
        .execute(store.pool())
        .await
        .unwrap();
    let user = add_user(&store, AGENT).await;
    let reference = signing::staff_message_id(SECRET, "example.com", ticket, 1, user);
    let reply = format!("From: {AGENT}\r\nTo: support@example.com\r\nSubject: Re: Help\r\nMessage-ID: <r1@example.com>\r\nIn-Reply-To: <{reference}>\r\n\r\nWe are on it.\r\n");
    ingest_text(&ingestor, &reply).await;
    let rows = outbox(&store).await;
    let relayed: Vec<_> = rows.iter().filter(|r| r.0 == "reply").collect();
    assert_eq!(relayed.len(), 2, "requester and Cc: {rows:?}");
    let raw = String::from_utf8(relayed[0].4.clone()).unwrap();
    assert!(raw.contains("<carl@c.example>"), "{raw}");
    assert!(
        !raw.contains("\r\nBcc:") && !raw.contains("\nBcc:"),
        "{raw}"
    );
}

#[tokio::test]
async fn a_panic_while_handling_one_message_quarantines_it_and_the_rest_goes_on() {
    let env = TestEnv::new().await;
    let mut mbox = Vec::new();
    for (i, marker) in ["", "BOOM-IN-STORE", "", "BOOM-IN-PARSE", ""]
        .iter()
        .enumerate()
    {
        let raw = customer_mail(
            &format!("c{i}@c.example"),
            &format!("p{i}@c.example"),
            &format!("Question {i}"),
            "",
            marker,
        );
        maildesk::mail::mbox::write_message(&mut mbox, "x@y", raw.as_bytes()).unwrap();
    }
    let path = env.dir.path().join("panics.mbox");
    std::fs::write(&path, &mbox).unwrap();
    let out = crate::support::run_binary(
        &env.config_path,
        &["ingest", "--mbox", path.to_str().unwrap()],
        None,
        &[("FAILPOINTS", "store:BOOM-IN-STORE,parse:BOOM-IN-PARSE")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("created: 3, threaded: 0, duplicates: 0, quarantined: 2"),
        "{}",
        stdout(&out)
    );
    let quarantine = env.cli_json(&["quarantine", "list", "--json"]);
    let reasons: Vec<&str> = quarantine
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons.iter().any(|r| r.contains("internal error")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("parser failed")),
        "{reasons:?}"
    );
    let tickets = env.cli_json(&["ticket", "list", "--json"]);
    assert_eq!(
        tickets.as_array().unwrap().len(),
        3,
        "the other messages are stored"
    );

    // Piped: the MTA is told the message is safe (exit 0), and it is in quarantine.
    let raw = customer_mail(
        "d@c.example",
        "piped@c.example",
        "Piped",
        "",
        "BOOM-IN-STORE",
    );
    let out = crate::support::run_binary(
        &env.config_path,
        &["ingest"],
        Some(raw.as_bytes()),
        &[("FAILPOINTS", "store:BOOM-IN-STORE")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("quarantined: 1"), "{}", stdout(&out));
    // Once the bug is gone (no hook), the entry can be retried into a ticket.
    let entries = env.cli_json(&["quarantine", "list", "--json"]);
    let id = entries.as_array().unwrap().last().unwrap()["id"].to_string();
    let retry = env.cli(&["quarantine", "retry", &id], None);
    assert_eq!(retry.status.code(), Some(0), "{}", stdout(&retry));
}

#[tokio::test]
async fn a_crashing_mailbox_task_is_restarted_and_check_shows_it() {
    use crate::support::mail::Dovecot;
    let dovecot = Dovecot::start(
        &[("support@example.com", "pw"), ("crashy@example.com", "pw")],
        false,
    );
    let config = format!(
        "{}{}",
        dovecot.mailbox_toml("support", "support@example.com", "pw", ""),
        dovecot.mailbox_toml("crashy", "crashy@example.com", "pw", "")
    );
    let env = TestEnv::with_config(&config).await;
    let daemon = env.spawn_with_env(
        &["--set", crate::support::ANY_PORT, "serve"],
        &[("FAILPOINTS", "mailbox:crashy")],
    );
    dovecot
        .append(
            "support@example.com",
            "pw",
            "INBOX",
            &[customer_mail("a@c.example", "ok@c.example", "Fine", "", "x").into_bytes()],
            None,
        )
        .await;
    let store = env.store().await;
    let stored = crate::support::wait_until(Duration::from_secs(10), || async {
        maildesk::store::messages::count(&mut store.acquire().await.unwrap())
            .await
            .unwrap()
            == 1
    })
    .await;
    let restarted = crate::support::wait_until(Duration::from_secs(10), || async {
        env.log().matches("the mailbox task crashed").count() >= 3
    })
    .await;
    let check = env.cli(&["check"], None);
    drop(daemon);
    assert!(stored, "the healthy mailbox keeps working:\n{}", env.log());
    assert!(restarted, "the crashed task is restarted:\n{}", env.log());
    let report = stdout(&check);
    assert_eq!(check.status.code(), Some(1), "{report}");
    assert!(
        report.contains("mailbox crashy: ERROR") && report.contains("crashed"),
        "{report}"
    );
    assert!(report.contains("mailbox support: ok"), "{report}");
}

// ---- 2 and 3. Acting as staff, joining strangers' tickets ----------------------------

#[tokio::test]
async fn a_customer_with_a_staff_from_cannot_act_as_staff() {
    let env = TestEnv::with_config(SMTP_OFF).await;
    let ingestor = env.ingestor().await;
    let store = ingestor.store().clone();
    add_user(&store, AGENT).await;
    let ticket = ticket_of(
        &ingest_text(
            &ingestor,
            &customer_mail(
                "Ann <ann@c.example>",
                "a1@c.example",
                "Printer",
                "",
                "broken",
            ),
        )
        .await,
    );
    // Ann holds her acknowledgement: its signed Message-ID and reply address.
    let ack_id = signing::message_id(SECRET, "example.com", ticket, 77);
    let ack_reply_to = signing::reply_address(SECRET, "support@example.com", ticket);
    let before = outbox(&store).await.len();
    let forgeries = [
        format!("From: Alex Agent <{AGENT}>\r\n"),
        format!("From: <>\r\nReply-To: {AGENT}\r\n"),
        format!("Sender: {AGENT}\r\n"),
    ];
    for (i, from) in forgeries.iter().enumerate() {
        let mail = format!("{from}To: {ack_reply_to}\r\nCc: spy{i}@evil.example\r\nSubject: Re: [Support #{ticket}] Printer\r\nMessage-ID: <forged{i}@c.example>\r\nIn-Reply-To: <{ack_id}>\r\n\r\n#assign me\r\n#status closed\r\n#priority urgent\r\nPlease confirm your password at http://evil.example\r\n");
        assert_eq!(
            ticket_of(&ingest_text(&ingestor, &mail).await),
            ticket,
            "{from}"
        );
    }
    let detail = maildesk::helpdesk::ticket_views::load(&store, ticket)
        .await
        .unwrap();
    assert_eq!(
        (
            detail.ticket.status.as_str(),
            detail.ticket.priority.as_str(),
            detail.ticket.assignee_email.as_deref()
        ),
        ("open", "medium", None),
        "no command ran"
    );
    let forged: Vec<_> = detail
        .messages
        .iter()
        .filter(|m| m.message_id.starts_with("forged"))
        .collect();
    assert_eq!(forged.len(), 3);
    for m in forged {
        assert_eq!(
            (m.kind.as_str(), m.unverified),
            ("note", true),
            "{}",
            m.message_id
        );
    }
    assert_eq!(participants(&ingestor, ticket).await, ["ann@c.example"]);
    let after = outbox(&store).await;
    assert!(
        after[before..].iter().all(|r| r.0 == "notification"),
        "nothing relayed to customers: {:?}",
        &after[before..]
            .iter()
            .map(|r| (&r.0, &r.1))
            .collect::<Vec<_>>()
    );
    assert!(after.iter().all(|r| !r.1.contains("spy")));
}

#[tokio::test]
async fn staff_proof_is_the_users_own_reference_and_optionally_dmarc() {
    let env = TestEnv::with_helpdesk("trusted_authserv_id = \"mx.example.com\"", SMTP_OFF).await;
    assert_eq!(
        env.config.helpdesk.trusted_authserv_id.as_deref(),
        Some("mx.example.com")
    );
    let ingestor = env.ingestor().await;
    let store = ingestor.store().clone();
    let agent = add_user(&store, AGENT).await;
    let other = add_user(&store, "bea@example.com").await;
    let ticket = ticket_of(
        &ingest_text(
            &ingestor,
            &customer_mail("ann@c.example", "b1@c.example", "Printer", "", "broken"),
        )
        .await,
    );
    let staff_mail = |id: &str, reference: &str, auth: &str| {
        format!("{auth}From: Alex <{AGENT}>\r\nTo: support@example.com\r\nSubject: Re: x\r\nMessage-ID: <{id}@example.com>\r\nIn-Reply-To: <{reference}>\r\n\r\n#note\r\n#priority high\r\nchecked\r\n")
    };
    let pass = "Authentication-Results: mx.example.com; dkim=pass header.d=example.com; dmarc=pass header.from=example.com\r\n";
    let cases = [
        // Bea's notification, answered by Alex: not Alex's proof.
        (
            "s1",
            signing::staff_message_id(SECRET, "example.com", ticket, 1, other),
            pass,
            true,
        ),
        // Alex's own notification, but no DMARC/DKIM pass from our server.
        (
            "s2",
            signing::staff_message_id(SECRET, "example.com", ticket, 2, agent),
            "",
            true,
        ),
        // A pass header that did not come from our server.
        (
            "s3",
            signing::staff_message_id(SECRET, "example.com", ticket, 3, agent),
            "Authentication-Results: evil.example; dmarc=pass header.from=example.com\r\n",
            true,
        ),
        // Alex's own notification with our server's pass: Alex.
        (
            "s4",
            signing::staff_message_id(SECRET, "example.com", ticket, 4, agent),
            pass,
            false,
        ),
    ];
    for (id, reference, auth, unverified) in cases {
        ingest_text(&ingestor, &staff_mail(id, &reference, auth)).await;
        let detail = maildesk::helpdesk::ticket_views::load(&store, ticket)
            .await
            .unwrap();
        let m = detail
            .messages
            .iter()
            .find(|m| m.message_id == format!("{id}@example.com"))
            .unwrap();
        assert_eq!(
            (m.kind.as_str(), m.unverified),
            ("note", unverified),
            "{id}"
        );
        assert_eq!(m.author_user_id, (!unverified).then_some(agent), "{id}");
        let priority = if unverified { "medium" } else { "high" };
        assert_eq!(detail.ticket.priority.as_str(), priority, "{id}");
    }
}

#[tokio::test]
async fn strangers_do_not_join_other_peoples_tickets() {
    let env = TestEnv::with_config(SMTP_OFF).await;
    let ingestor = env.ingestor().await;
    let store = ingestor.store().clone();
    add_user(&store, AGENT).await;
    let ticket = ticket_of(
        &ingest_text(
            &ingestor,
            &customer_mail(
                "ann@c.example",
                "ann-1@c.example",
                "Salary question",
                "",
                "private",
            ),
        )
        .await,
    );

    // A forged staff From with the (guessable) subject tag and a Cc: not on ticket 1.
    let tagged = customer_mail(
        AGENT,
        "spy-1@evil.example",
        &format!("Re: [Support #{ticket}] Salary question"),
        "Cc: spy@evil.example\r\n",
        "add me",
    );
    assert_ne!(ticket_of(&ingest_text(&ingestor, &tagged).await), ticket);

    // A stranger quoting Ann's own Message-ID is attached, but nobody joins.
    let quoting = customer_mail(
        "mallory@evil.example",
        "spy-2@evil.example",
        "Re: Salary question",
        "In-Reply-To: <ann-1@c.example>\r\nCc: spy@evil.example\r\n",
        "me too",
    );
    assert_eq!(ticket_of(&ingest_text(&ingestor, &quoting).await), ticket);
    assert_eq!(participants(&ingestor, ticket).await, ["ann@c.example"]);

    // An impostor reuses Ann's Message-ID with other content: a ticket of its own...
    let impostor = customer_mail(
        "mallory@evil.example",
        "ann-1@c.example",
        "Hijack",
        "",
        "other words",
    );
    let impostor_ticket = ticket_of(&ingest_text(&ingestor, &impostor).await);
    assert_ne!(impostor_ticket, ticket);
    // ...and Ann's next reply, quoting her own Message-ID, still reaches her ticket.
    let reply = customer_mail(
        "ann@c.example",
        "ann-2@c.example",
        "Re: Salary question",
        "In-Reply-To: <ann-1@c.example>\r\n",
        "any news?",
    );
    assert_eq!(ticket_of(&ingest_text(&ingestor, &reply).await), ticket);
    // A third party quoting the shared ID goes to the earliest, never the newer one.
    let third = customer_mail(
        "zoe@other.example",
        "zoe-1@other.example",
        "Re: Salary question",
        "In-Reply-To: <ann-1@c.example>\r\n",
        "hello",
    );
    assert_eq!(ticket_of(&ingest_text(&ingestor, &third).await), ticket);

    // Mail from a participant still adds the people she copies.
    let cc = customer_mail(
        "ann@c.example",
        "ann-3@c.example",
        "Re: Salary question",
        "In-Reply-To: <ann-2@c.example>\r\nCc: boss@c.example\r\n",
        "adding my boss",
    );
    ingest_text(&ingestor, &cc).await;
    assert_eq!(
        participants(&ingestor, ticket).await,
        ["ann@c.example", "boss@c.example"]
    );
}

#[tokio::test]
async fn add_participants_anyone_restores_the_trusting_behaviour() {
    let env = TestEnv::with_helpdesk("add_participants = \"anyone\"", "").await;
    let ingestor = env.ingestor().await;
    let ticket = ticket_of(
        &ingest_text(
            &ingestor,
            &customer_mail("ann@c.example", "ann-1@c.example", "Team", "", "x"),
        )
        .await,
    );
    let colleague = customer_mail(
        "carl@c.example",
        "carl-1@c.example",
        "Re: Team",
        "In-Reply-To: <ann-1@c.example>\r\nCc: dora@c.example\r\n",
        "me too",
    );
    assert_eq!(ticket_of(&ingest_text(&ingestor, &colleague).await), ticket);
    let mut people = participants(&ingestor, ticket).await;
    people.sort();
    assert_eq!(
        people,
        ["ann@c.example", "carl@c.example", "dora@c.example"]
    );
}

// ---- 4. Forged bounces ---------------------------------------------------------------

fn dsn(id: &str, failed: &[&str], original_headers: &str) -> String {
    let blocks: String = failed
        .iter()
        .map(|a| format!("Final-Recipient: rfc822; {a}\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"))
        .collect();
    format!("From: MAILER-DAEMON@mx.c.example\r\nTo: support@example.com\r\nSubject: Undelivered Mail\r\nMessage-ID: <{id}>\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.c.example\r\n\r\n{blocks}--B\r\nContent-Type: text/rfc822-headers\r\n\r\n{original_headers}\r\n--B--\r\n")
}

async fn suppressed(store: &Store, address: &str) -> bool {
    let mut conn = store.acquire().await.unwrap();
    maildesk::store::outbox::is_suppressed(&mut conn, address, unix_now())
        .await
        .unwrap()
}

#[tokio::test]
async fn forged_bounces_suppress_nobody() {
    let env = TestEnv::with_config(SMTP_OFF).await;
    let ingestor = env.ingestor().await;
    let store = ingestor.store().clone();
    add_user(&store, AGENT).await;
    ingest_text(
        &ingestor,
        &customer_mail("ann@c.example", "d1@c.example", "Hi", "", "x"),
    )
    .await;
    let ack_id: String =
        sqlx::query_scalar("SELECT message_id_header FROM outbox WHERE kind = 'acknowledgement'")
            .fetch_one(store.pool())
            .await
            .unwrap();

    // A report about mail we never sent, naming staff and a customer.
    let forged = dsn(
        "f1@mx.c.example",
        &[AGENT, "ann@c.example"],
        "From: support@example.com\r\nMessage-ID: <made-up@example.com>\r\n",
    );
    ingest_text(&ingestor, &forged).await;
    // A report that quotes our real acknowledgement but names someone it never went to.
    let grafted = dsn(
        "f2@mx.c.example",
        &[AGENT],
        &format!("From: support@example.com\r\nMessage-ID: <{ack_id}>\r\n"),
    );
    ingest_text(&ingestor, &grafted).await;
    assert!(!suppressed(&store, AGENT).await);
    assert!(!suppressed(&store, "ann@c.example").await);

    // The real thing: our acknowledgement to Ann came back.
    let real = dsn(
        "r1@mx.c.example",
        &["ann@c.example"],
        &format!("From: support@example.com\r\nMessage-ID: <{ack_id}>\r\n"),
    );
    ingest_text(&ingestor, &real).await;
    assert!(suppressed(&store, "ann@c.example").await);
    assert!(!suppressed(&store, AGENT).await);
}

// ---- 5. Work that grows faster than the mail -------------------------------------------

#[tokio::test]
async fn huge_quotes_reference_lists_and_cc_lists_are_stored() {
    let env = TestEnv::with_config(SMTP_OFF).await;
    let ingestor = env.ingestor().await;
    // 1 MB of quoted lines (quadratic before: minutes, inside the write transaction).
    let quoted = "> quoted line\r\n".repeat(70_000);
    let big = customer_mail(
        "q@c.example",
        "q1@c.example",
        "Quoted",
        "",
        &format!("top\r\n{quoted}"),
    );
    let ticket = ticket_of(&ingest_text(&ingestor, &big).await);
    let detail = maildesk::helpdesk::ticket_views::load(ingestor.store(), ticket)
        .await
        .unwrap();
    assert_eq!(detail.messages[0].visible_text, "top");

    // 200,000 In-Reply-To ids and 20,000 Cc addresses (SQL variable limits before).
    let ids: String = (0..200_000).map(|i| format!("<i{i}@x.example> ")).collect();
    let cc: String = (0..20_000).map(|i| format!("c{i}@x.example, ")).collect();
    let listy = customer_mail(
        "l@c.example",
        "l1@c.example",
        "Lists",
        &format!("In-Reply-To: {ids}\r\nReferences: {ids}\r\nCc: {cc}\r\n"),
        "x",
    );
    let ticket = ticket_of(&ingest_text(&ingestor, &listy).await);
    let people = participants(&ingestor, ticket).await;
    assert!(people.len() > 50 && people.len() <= 101, "{}", people.len());
}

#[tokio::test]
async fn piped_mail_over_the_limit_is_refused_without_reading_it_all() {
    let env = TestEnv::new().await;
    let big = customer_mail(
        "a@c.example",
        "big@c.example",
        "Big",
        "",
        &"x".repeat(100_000),
    );
    let out = env.cli(
        &["--set", "ingest.max_message_bytes=4096", "ingest"],
        Some(big.as_bytes()),
    );
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("over the limit of 4096 bytes"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        env.cli_json(&["ticket", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        env.cli_json(&["quarantine", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

// ---- 8. Smaller things -------------------------------------------------------------------

#[tokio::test]
async fn every_kind_of_outgoing_mail_declares_its_charset_and_keeps_lines_short() {
    let env = TestEnv::with_config(SMTP_OFF).await;
    let ingestor = env.ingestor().await;
    let store = ingestor.store().clone();
    let agent = add_user(&store, AGENT).await;
    add_user(&store, "bea@example.com").await;
    let long_id = format!("{}@c.example", "i".repeat(5000));
    let long_subject = format!("Drücker {}", "kaputt ".repeat(700));
    let long_name = "Zoë ".repeat(300);
    let first = customer_mail(
        &format!("\"{long_name}\" <ann@c.example>"),
        &long_id,
        &long_subject,
        "Cc: \"Ünïcode Carl\" <carl@c.example>\r\n",
        "Grüße",
    );
    let ticket = ticket_of(&ingest_text(&ingestor, &first).await);
    let reference = signing::staff_message_id(SECRET, "example.com", ticket, 1, agent);
    let staff = format!("From: {AGENT}\r\nTo: support@example.com\r\nSubject: Re\r\nMessage-ID: <s1@example.com>\r\nIn-Reply-To: <{reference}>\r\nReferences: <{long_id}> <{reference}>\r\n\r\n#assign bea@example.com\r\nSchöne Grüße, wir kümmern uns.\r\n");
    ingest_text(&ingestor, &staff).await;
    let resolve = format!("From: {AGENT}\r\nTo: support@example.com\r\nSubject: Re\r\nMessage-ID: <s2@example.com>\r\nIn-Reply-To: <{reference}>\r\n\r\n#status resolved\r\n");
    ingest_text(&ingestor, &resolve).await;
    let rows = outbox(&store).await;
    let kinds: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["acknowledgement", "notification", "reply", "resolved"],
        "{:?}",
        rows.iter().map(|r| (&r.0, &r.2, &r.3)).collect::<Vec<_>>()
    );
    for (kind, recipient, status, error, raw) in &rows {
        assert_eq!(status, "queued", "{kind} to {recipient}: {error:?}");
        let text = String::from_utf8(raw.clone()).unwrap();
        for line in text.split("\r\n") {
            assert!(line.len() <= 998, "{kind}: a {}-byte line", line.len());
        }
        let parsed = mail_parser::MessageParser::default().parse(raw).unwrap();
        assert!(text.contains("MIME-Version: 1.0"), "{kind}");
        let charset = parsed
            .text_bodies()
            .next()
            .and_then(|p| mail_parser::MimeHeaders::content_type(p))
            .and_then(|ct| ct.attribute("charset"))
            .map(str::to_ascii_lowercase);
        assert_eq!(charset.as_deref(), Some("utf-8"), "{kind}");
        let body = parsed.body_text(0).unwrap();
        assert!(!body.contains('\u{FFFD}'), "{kind}: {body}");
    }
    let notification = rows.iter().find(|r| r.0 == "notification").unwrap();
    let body = mail_parser::MessageParser::default()
        .parse(&notification.4)
        .unwrap()
        .body_text(0)
        .unwrap()
        .into_owned();
    assert!(body.contains("Grüße"), "{body}");
}

#[tokio::test]
async fn names_bodies_and_files_are_made_safe_for_terminals_and_downloads() {
    let env = TestEnv::new().await;
    let long = "n".repeat(25_000);
    let raw = format!("From: \"X\" <>, \"Yves\" <yves@c.example>\r\nReply-To: other@c.example\r\nTo: support@example.com\r\nSubject: \u{1b}[2J\u{1b}[31mred\u{7}\r\nMessage-ID: <esc@c.example>\r\nContent-Type: multipart/mixed; boundary=X\r\n\r\n--X\r\nContent-Type: text/plain\r\n\r\nbody \u{1b}]0;pwned\u{7} here\r\n--X\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"..\"\r\n\r\nx\r\n--X\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"invoice\u{202E}fdp.exe\"\r\n\r\ny\r\n--X\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"{long}.pdf\"\r\n\r\nz\r\n--X\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=\"empty.txt\"\r\n\r\n\r\n--X--\r\n");
    let out = env.cli(&["ingest"], Some(raw.as_bytes()));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let ticket = env.cli_json(&["ticket", "show", "1", "--json"]);
    assert_eq!(
        ticket["requester"], "yves@c.example",
        "the first usable From"
    );
    let names: Vec<(&str, u64)> = ticket["messages"][0]["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["filename"].as_str().unwrap(), a["size"].as_u64().unwrap()))
        .collect();
    assert_eq!(names.len(), 4, "{names:?}");
    assert!(
        names
            .iter()
            .all(|(n, _)| *n != ".." && !n.contains('\u{202E}') && n.len() <= 180),
        "{names:?}"
    );
    assert!(
        names.contains(&("empty.txt", 0)),
        "a zero-length file is kept: {names:?}"
    );
    for args in [&["ticket", "list"][..], &["ticket", "show", "1"][..]] {
        let out = env.cli(args, None);
        let printed = stdout(&out);
        assert!(
            !printed.contains('\u{1b}') && !printed.contains('\u{7}'),
            "{args:?}: {printed:?}"
        );
        assert!(printed.contains("red"), "{printed}");
    }
}
