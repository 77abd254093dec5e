//! Outgoing mail against real servers: maildesk → aiosmtpd → LMTP → Dovecot, read back
//! over IMAP as the customer would.

use std::time::Duration;

use crate::support::mail::{header, Dovecot, SmtpRelay};
use crate::support::{wait_until, TestEnv};

const SUPPORT: &str = "support@example.com";
const SUPPORT_PW: &str = "secret";
const ANN: &str = "ann@customer.example";
const ANN_PW: &str = "ann-pw";

fn customer_mail(from: &str, id: &str, subject: &str, extra: &str) -> String {
    format!("From: Ann Lee <{from}>\r\nTo: {SUPPORT}\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\nDate: Mon, 2 Jan 2023 10:00:00 +0000\r\n{extra}\r\nThe printer is on fire.\r\n")
}

/// Dovecot with these accounts, the SMTP relay delivering into it, and maildesk configured
/// to send through the relay (and to watch the support mailbox when `watch_support`).
struct World {
    dovecot: Dovecot,
    relay: SmtpRelay,
    env: TestEnv,
}

async fn world(users: &[(&str, &str)], watch_support: bool, extra: &str) -> World {
    let dovecot = Dovecot::start(users, false);
    let relay = SmtpRelay::start(dovecot.lmtp_port);
    let mailbox = if watch_support {
        dovecot.mailbox_toml("support", SUPPORT, SUPPORT_PW, "")
    } else {
        String::new()
    };
    let env = TestEnv::with_config(&format!("{mailbox}{}{extra}", relay.smtp_toml())).await;
    World {
        dovecot,
        relay,
        env,
    }
}

/// Delivers one message to the support mailbox, as the customer's provider would.
async fn to_support(dovecot: &Dovecot, raw: impl Into<Vec<u8>>) {
    dovecot
        .append(SUPPORT, SUPPORT_PW, "INBOX", &[raw.into()], None)
        .await;
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn the_customer_gets_an_acknowledgement_and_the_reply_threads() {
    let World {
        dovecot,
        relay: _relay,
        env,
    } = world(&[(SUPPORT, SUPPORT_PW), (ANN, ANN_PW)], true, "").await;

    to_support(
        &dovecot,
        customer_mail(ANN, "first@customer.example", "Printer on fire", "").into_bytes(),
    )
    .await;
    assert!(stdout(&env.cli(&["fetch", "--once"], None)).contains("created: 1"));
    let sent = env.cli(&["send", "--once"], None);
    assert_eq!(
        stdout(&sent).trim(),
        "sent: 1, retrying later: 0, failed: 0",
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );

    let received = dovecot.messages(ANN, ANN_PW, "INBOX").await;
    assert_eq!(received.len(), 1, "the acknowledgement arrived");
    let ack = &received[0];
    assert_eq!(header(ack, "Subject"), Some("[Support #1] Printer on fire"));
    assert_eq!(header(ack, "Auto-Submitted"), Some("auto-replied"));
    assert_eq!(header(ack, "X-Loop"), Some("support@example.com"));
    assert_eq!(header(ack, "X-Auto-Response-Suppress"), Some("All"));
    assert_eq!(header(ack, "In-Reply-To"), Some("<first@customer.example>"));
    let ack_id = header(ack, "Message-ID").expect("Message-ID").to_string();
    assert!(ack_id.starts_with("<md.1."), "{ack_id}");
    assert!(
        header(ack, "Reply-To").unwrap().contains("support+1-"),
        "{ack}"
    );
    assert!(ack.contains("Please type your reply above this line"));

    // Ann answers from her mail client, quoting the acknowledgement.
    let reply = format!(
        "From: Ann Lee <{ANN}>\r\nTo: {}\r\nSubject: Re: [Support #1] Printer on fire\r\nMessage-ID: <reply@customer.example>\r\nIn-Reply-To: {ack_id}\r\nReferences: <first@customer.example> {ack_id}\r\n\r\nIt is still burning.\r\n\r\nOn Mon, Example Support wrote:\r\n> thank you for writing\r\n",
        header(ack, "Reply-To").unwrap()
    );
    to_support(&dovecot, reply.into_bytes()).await;
    assert!(stdout(&env.cli(&["fetch", "--once"], None)).contains("threaded: 1"));
    let ticket = env.cli_json(&["ticket", "show", "1", "--json"]);
    let kinds: Vec<(String, String)> = ticket["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["direction"].as_str().unwrap().into(),
                m["kind"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("in".into(), "public".into()),
            ("out".into(), "automatic".into()),
            ("in".into(), "public".into())
        ]
    );
    assert_eq!(ticket["outbox"][0]["status"], "sent");
    assert_eq!(
        env.cli_json(&["ticket", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        1,
        "no second ticket"
    );
    assert!(
        stdout(&env.cli(&["send", "--once"], None)).starts_with("sent: 0"),
        "a reply is not acknowledged again"
    );
}

#[tokio::test]
async fn mail_waits_while_smtp_is_down_and_goes_out_exactly_once() {
    let dovecot = Dovecot::start(&[(ANN, ANN_PW)], false);
    let mut relay = SmtpRelay::stopped(dovecot.lmtp_port);
    let env = TestEnv::with_config(&format!(
        "{}[outbound]\nretry_seconds = 1\n",
        relay.smtp_toml()
    ))
    .await;
    env.cli(
        &["ingest"],
        Some(customer_mail(ANN, "down@customer.example", "Down", "").as_bytes()),
    );

    let down = env.cli(&["send", "--once"], None);
    assert_eq!(down.status.code(), Some(75));
    assert_eq!(
        stdout(&down).trim(),
        "sent: 0, retrying later: 1, failed: 0"
    );
    assert_eq!(
        env.cli_json(&["ticket", "show", "1", "--json"])["outbox"][0]["status"],
        "queued"
    );

    relay.start_again();
    // Nothing is due before the retry time (1-2.4 s): passes until one sends it.
    let sent = wait_until(Duration::from_secs(10), || async {
        stdout(&env.cli(&["send", "--once"], None)).trim()
            == "sent: 1, retrying later: 0, failed: 0"
    })
    .await;
    assert!(sent, "the queued mail was not sent once due");
    assert_eq!(
        stdout(&env.cli(&["send", "--once"], None)).trim(),
        "sent: 0, retrying later: 0, failed: 0"
    );
    assert_eq!(
        dovecot.count(ANN, ANN_PW, "INBOX").await,
        1,
        "delivered exactly once"
    );
}

#[tokio::test]
async fn a_permanent_rejection_marks_the_mail_failed_on_the_ticket() {
    let World {
        dovecot: _dovecot,
        relay: _relay,
        env,
    } = world(&[(ANN, ANN_PW)], false, "").await;
    env.cli(
        &["ingest"],
        Some(
            customer_mail(
                "ghost@customer.example",
                "ghost@customer.example",
                "Who am I",
                "",
            )
            .as_bytes(),
        ),
    );
    assert_eq!(
        stdout(&env.cli(&["send", "--once"], None)).trim(),
        "sent: 0, retrying later: 0, failed: 1"
    );
    let outbox = &env.cli_json(&["ticket", "show", "1", "--json"])["outbox"][0];
    assert_eq!(outbox["status"], "failed");
    assert!(
        outbox["last_error"].as_str().unwrap().contains("550"),
        "{outbox}"
    );
}

#[tokio::test]
async fn automatic_mail_is_never_acknowledged_and_acknowledgements_are_rate_limited() {
    let env =
        TestEnv::with_config("[smtp]\nhost = \"127.0.0.1\"\nport = 9\nsecurity = \"plain\"\n")
            .await;
    env.cli(
        &["ingest"],
        Some(
            customer_mail(
                ANN,
                "ooo@customer.example",
                "Out of office",
                "Auto-Submitted: auto-replied\r\n",
            )
            .as_bytes(),
        ),
    );
    env.cli(
        &["ingest"],
        Some(
            customer_mail(
                "noreply@shop.example",
                "shop@shop.example",
                "Your order",
                "",
            )
            .as_bytes(),
        ),
    );
    for i in 0..5 {
        env.cli(
            &["ingest"],
            Some(
                customer_mail(
                    "bob@customer.example",
                    &format!("b{i}@customer.example"),
                    &format!("Question {i}"),
                    "",
                )
                .as_bytes(),
            ),
        );
    }
    let tickets = env.cli_json(&["ticket", "list", "--json"]);
    let acks: Vec<usize> = tickets
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            env.cli_json(&["ticket", "show", t["ref"].as_str().unwrap(), "--json"])["outbox"]
                .as_array()
                .unwrap()
                .len()
        })
        .collect();
    assert_eq!(
        acks,
        [0, 0, 1, 1, 1, 0, 0],
        "no ack for auto-replies or no-reply senders; 3 per sender per hour"
    );
}

const AGENT: &str = "agent@example.com";
const AGENT_PW: &str = "agent-pw";

/// Writes the agent's password to a file and adds them as a staff user.
fn add_agent(env: &TestEnv) {
    let pw = env.dir.path().join("agent-pw");
    std::fs::write(&pw, "agent password 1\n").unwrap();
    let out = env.cli(
        &[
            "user",
            "add",
            AGENT,
            "--name",
            "Alex Agent",
            "--role",
            "staff",
            "--password-file",
            pw.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn staff_reply_to(notification: &str, body: &str, id: &str) -> Vec<u8> {
    let mid = header(notification, "Message-ID").unwrap();
    let subject = header(notification, "Subject").unwrap();
    format!("From: Alex Agent <{AGENT}>\r\nTo: {}\r\nSubject: Re: {subject}\r\nMessage-ID: <{id}>\r\nIn-Reply-To: {mid}\r\nReferences: {mid}\r\n\r\n{body}\r\n\r\nOn Monday, Example Support wrote:\r\n> New ticket\r\n", header(notification, "Reply-To").unwrap()).into_bytes()
}

#[tokio::test]
async fn staff_answer_by_mail_notes_stay_internal_and_commands_work() {
    let World {
        dovecot,
        relay: _relay,
        env,
    } = world(
        &[(SUPPORT, SUPPORT_PW), (ANN, ANN_PW), (AGENT, AGENT_PW)],
        true,
        "",
    )
    .await;
    add_agent(&env);
    let round = |expect: &'static str| {
        let fetched = env.cli(&["fetch", "--once"], None);
        assert!(stdout(&fetched).contains(expect), "{}", stdout(&fetched));
        let sent = env.cli(&["send", "--once"], None);
        assert_eq!(sent.status.code(), Some(0), "{}", stdout(&sent));
    };

    to_support(
        &dovecot,
        customer_mail(ANN, "p1@customer.example", "Printer on fire", "").into_bytes(),
    )
    .await;
    round("created: 1");
    let staff_mail = dovecot.messages(AGENT, AGENT_PW, "INBOX").await;
    assert_eq!(staff_mail.len(), 1, "the agent hears of the new ticket");
    let notification = &staff_mail[0];
    assert_eq!(
        header(notification, "Auto-Submitted"),
        Some("auto-generated")
    );
    assert!(notification.contains("The printer is on fire."));

    // A public answer reaches Ann, without the quoted history.
    to_support(
        &dovecot,
        staff_reply_to(
            notification,
            "We are on our way with an extinguisher.",
            "a1@example.com",
        ),
    )
    .await;
    round("threaded: 1");
    let ann = dovecot.messages(ANN, ANN_PW, "INBOX").await;
    assert_eq!(ann.len(), 2, "acknowledgement and the agent's reply");
    let reply = &ann[1];
    assert_eq!(
        header(reply, "Subject"),
        Some("[Support #1] Printer on fire")
    );
    assert_eq!(
        header(reply, "Auto-Submitted"),
        None,
        "a person's reply is not automatic"
    );
    assert!(reply.contains("We are on our way with an extinguisher."));
    assert!(
        !reply.contains("> New ticket"),
        "quoted history is not relayed"
    );
    assert!(
        header(reply, "From").unwrap().contains("Alex Agent"),
        "{reply}"
    );

    // #note stays internal; #priority and #assign change the ticket.
    to_support(
        &dovecot,
        staff_reply_to(
            notification,
            "#note\n#priority high\n#assign me\nCustomer sounds stressed.",
            "a2@example.com",
        ),
    )
    .await;
    round("threaded: 1");
    assert_eq!(
        dovecot.count(ANN, ANN_PW, "INBOX").await,
        2,
        "a note is never sent"
    );
    let ticket = env.cli_json(&["ticket", "show", "1", "--json"]);
    assert_eq!(
        (ticket["priority"].as_str(), ticket["assignee"].as_str()),
        (Some("high"), Some(AGENT))
    );
    let note = ticket["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["message_id"] == "a2@example.com")
        .unwrap();
    assert_eq!(note["kind"], "note");

    // #status resolved resolves it and tells Ann.
    to_support(
        &dovecot,
        staff_reply_to(notification, "#status resolved", "a3@example.com"),
    )
    .await;
    round("threaded: 1");
    assert_eq!(
        env.cli_json(&["ticket", "show", "1", "--json"])["status"],
        "resolved"
    );
    let ann = dovecot.messages(ANN, ANN_PW, "INBOX").await;
    assert_eq!(ann.len(), 3);
    assert!(ann[2].contains("as resolved"));

    // A forged staff From without the agent's own reference proves nothing: the tag is
    // not trusted, the mail is an unverified internal note elsewhere, nothing is relayed.
    let forged = format!("From: Alex Agent <{AGENT}>\r\nTo: {SUPPORT}\r\nSubject: Re: [Support #1] Printer on fire\r\nMessage-ID: <forged@evil.example>\r\n\r\n#status closed\nPlease send me your password.\r\n");
    to_support(&dovecot, forged.into_bytes()).await;
    round("created: 1");
    assert_eq!(
        dovecot.count(ANN, ANN_PW, "INBOX").await,
        3,
        "nothing relayed to the customer"
    );
    assert_eq!(
        env.cli_json(&["ticket", "show", "1", "--json"])["status"],
        "resolved",
        "the command was not run"
    );
    let forged = &env.cli_json(&["ticket", "show", "2", "--json"])["messages"][0];
    assert_eq!(
        (
            forged["kind"].as_str(),
            forged["unverified"].as_bool(),
            forged["message_id"].as_str()
        ),
        (Some("note"), Some(true), Some("forged@evil.example"))
    );

    // Ann puts the agent's address in From and answers her own acknowledgement (its
    // signed Message-ID and reply address are hers): still no staff power, no relay.
    let ack = &dovecot.messages(ANN, ANN_PW, "INBOX").await[0];
    let ack_id = header(ack, "Message-ID").unwrap();
    let phish = format!("From: Alex Agent <{AGENT}>\r\nTo: {}\r\nSubject: Re: [Support #1] Printer on fire\r\nMessage-ID: <phish@customer.example>\r\nIn-Reply-To: {ack_id}\r\n\r\n#assign me\r\n#status closed\r\nPlease log in at http://evil.example to keep your account.\r\n", header(ack, "Reply-To").unwrap());
    to_support(&dovecot, phish.into_bytes()).await;
    round("threaded: 1");
    assert_eq!(
        dovecot.count(ANN, ANN_PW, "INBOX").await,
        3,
        "nothing relayed in the helpdesk's name"
    );
    let ticket = env.cli_json(&["ticket", "show", "1", "--json"]);
    assert_eq!(ticket["status"], "resolved", "no command ran");
    let phish = ticket["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["message_id"] == "phish@customer.example")
        .unwrap();
    assert_eq!(
        (phish["kind"].as_str(), phish["unverified"].as_bool()),
        (Some("note"), Some(true))
    );
}

#[tokio::test]
async fn ping_pong_with_a_non_compliant_auto_responder_stops_at_the_limit() {
    const BOT: &str = "bot@customer.example";
    let World {
        dovecot,
        relay: _relay,
        env,
    } = world(
        &[(SUPPORT, SUPPORT_PW), (BOT, "bot-pw")],
        true,
        "[outbound]\nacknowledgements_per_sender_per_hour = 3\n",
    )
    .await;
    to_support(
        &dovecot,
        customer_mail(BOT, "bot-0@customer.example", "Hello", "").into_bytes(),
    )
    .await;
    let mut answered = 0;
    for round in 1..=8 {
        env.cli(&["fetch", "--once"], None);
        env.cli(&["send", "--once"], None);
        // The responder answers every new mail: fresh subject, no references, no
        // Auto-Submitted header (the kind that starts loops).
        let inbox = dovecot.messages(BOT, "bot-pw", "INBOX").await;
        let new_mail = inbox.len() - answered;
        for _ in 0..new_mail {
            let bounce = format!("From: {BOT}\r\nTo: {SUPPORT}\r\nSubject: I am out of the office ({round})\r\nMessage-ID: <bot-{round}-{answered}@customer.example>\r\n\r\nI will read your mail later.\r\n");
            to_support(&dovecot, bounce.into_bytes()).await;
            answered += 1;
        }
    }
    assert_eq!(
        answered, 3,
        "maildesk wrote to the responder only up to the hourly limit"
    );
    assert_eq!(dovecot.count(BOT, "bot-pw", "INBOX").await, 3);
}

#[tokio::test]
async fn a_bounce_attaches_to_its_ticket_and_suppresses_the_address() {
    let World {
        dovecot,
        relay: _relay,
        env,
    } = world(&[(SUPPORT, SUPPORT_PW), (ANN, ANN_PW)], true, "").await;
    to_support(
        &dovecot,
        customer_mail(ANN, "b1@customer.example", "Printer on fire", "").into_bytes(),
    )
    .await;
    env.cli(&["fetch", "--once"], None);
    env.cli(&["send", "--once"], None);
    let ack = dovecot.messages(ANN, ANN_PW, "INBOX").await.remove(0);
    let ack_headers = ack.split("\r\n\r\n").next().unwrap();

    // Ann's mailbox is closed later; her provider returns our mail (as Postfix does).
    let dsn = format!(
        "From: MAILER-DAEMON@mx.customer.example (Mail Delivery System)\r\nTo: {SUPPORT}\r\nSubject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn-1@mx.customer.example>\r\nAuto-Submitted: auto-replied\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"RB\"\r\n\r\n--RB\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you that your message could not be delivered.\r\n\r\n--RB\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.customer.example\r\n\r\nFinal-Recipient: rfc822; {ANN}\r\nOriginal-Recipient: rfc822;{ANN}\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n--RB\r\nContent-Type: text/rfc822-headers\r\n\r\n{ack_headers}\r\n--RB--\r\n"
    );
    to_support(&dovecot, dsn.into_bytes()).await;
    assert!(
        stdout(&env.cli(&["fetch", "--once"], None)).contains("threaded: 1"),
        "the bounce threads onto the ticket it bounced from"
    );
    let ticket = env.cli_json(&["ticket", "show", "1", "--json"]);
    let bounce = ticket["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        (bounce["kind"].as_str(), bounce["message_id"].as_str()),
        (Some("automatic"), Some("dsn-1@mx.customer.example"))
    );
    assert_eq!(ticket["status"], "open", "a bounce changes no status");

    // Nothing more goes to the bounced address for a while.
    to_support(
        &dovecot,
        customer_mail(ANN, "b2@customer.example", "Another question", "").into_bytes(),
    )
    .await;
    assert!(stdout(&env.cli(&["fetch", "--once"], None)).contains("created: 1"));
    assert_eq!(
        env.cli_json(&["ticket", "show", "2", "--json"])["outbox"]
            .as_array()
            .unwrap()
            .len(),
        0,
        "no acknowledgement to a suppressed address"
    );
}

#[tokio::test]
async fn a_mail_left_in_sending_by_a_dead_worker_goes_out_once_with_its_message_id() {
    let World {
        dovecot,
        relay: _relay,
        env,
    } = world(&[(ANN, ANN_PW)], false, "").await;
    env.cli(
        &["ingest"],
        Some(customer_mail(ANN, "lease@customer.example", "Lease", "").as_bytes()),
    );
    let store = env.store().await;
    {
        // A worker claims the mail, then dies before sending (its lease already ran out).
        let mut conn = store.acquire().await.unwrap();
        let claimed = maildesk::store::outbox::claim_due(
            &mut conn,
            store.backend(),
            maildesk::store::unix_now(),
            -5,
            10,
        )
        .await
        .unwrap();
        assert_eq!(claimed.len(), 1);
    }
    let queued_id = env.cli_json(&["ticket", "show", "1", "--json"])["outbox"][0]
        ["message_id_header"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        stdout(&env.cli(&["send", "--once"], None)).trim(),
        "sent: 1, retrying later: 0, failed: 0"
    );
    let received = dovecot.messages(ANN, ANN_PW, "INBOX").await;
    assert_eq!(received.len(), 1);
    assert_eq!(
        header(&received[0], "Message-ID"),
        Some(format!("<{queued_id}>").as_str()),
        "the customer-facing Message-ID never changes"
    );
    assert_eq!(
        env.cli_json(&["ticket", "show", "1", "--json"])["outbox"][0]["attempts"],
        2
    );
}

#[tokio::test]
async fn two_workers_at_once_send_each_mail_exactly_once() {
    let World { dovecot, relay: _relay, env } = world(&[(ANN, ANN_PW)], false, "[outbound]\nacknowledgements_per_sender_per_hour = 100\nmax_per_recipient_per_hour = 100\n").await;
    for i in 0..20 {
        env.cli(
            &["ingest"],
            Some(
                customer_mail(
                    ANN,
                    &format!("w{i}@customer.example"),
                    &format!("Question {i}"),
                    "",
                )
                .as_bytes(),
            ),
        );
    }
    let mut workers: Vec<_> = (0..2).map(|_| env.spawn(&["send", "--once"])).collect();
    for worker in &mut workers {
        assert!(worker.wait().unwrap().success(), "{}", env.log());
    }
    assert_eq!(
        dovecot.count(ANN, ANN_PW, "INBOX").await,
        20,
        "each acknowledgement delivered exactly once"
    );
}

#[tokio::test]
async fn starttls_and_implicit_tls_with_auth_and_a_wrong_password_only_waits() {
    use crate::support::mail::TestCa;
    let dovecot = Dovecot::start(&[(ANN, ANN_PW)], false);
    let certs = tempfile::tempdir().unwrap();
    let ca = TestCa::create(certs.path());
    let tls_args = |mode: &str| {
        vec![
            mode.to_string(),
            ca.cert.display().to_string(),
            ca.key.display().to_string(),
            "--auth".into(),
            "mailer:s3cret".into(),
        ]
    };
    let mut starttls = SmtpRelay::stopped(dovecot.lmtp_port);
    starttls.options = tls_args("--starttls");
    starttls.start_again();
    let mut implicit = SmtpRelay::stopped(dovecot.lmtp_port);
    implicit.options = tls_args("--tls");
    implicit.start_again();
    let smtp = |port: u16, security: &str, password: &str| {
        format!("[smtp]\nhost = \"localhost\"\nport = {port}\nsecurity = \"{security}\"\nusername = \"mailer\"\npassword = \"{password}\"\nca_file = \"{}\"\n", ca.ca_file.display())
    };
    for (port, security) in [(starttls.port, "starttls"), (implicit.port, "tls")] {
        let env = TestEnv::with_config(&smtp(port, security, "s3cret")).await;
        env.cli(
            &["ingest"],
            Some(
                customer_mail(ANN, &format!("{security}@customer.example"), security, "")
                    .as_bytes(),
            ),
        );
        let sent = env.cli(&["send", "--once"], None);
        assert_eq!(
            stdout(&sent).trim(),
            "sent: 1, retrying later: 0, failed: 0",
            "{security}: {}",
            String::from_utf8_lossy(&sent.stderr)
        );
    }
    assert_eq!(dovecot.count(ANN, ANN_PW, "INBOX").await, 2);

    // A wrong SMTP password is our problem, not the recipient's: the mail waits.
    // (aiosmtpd answers a failed AUTH with silence: the timeout counts as a failed session.)
    let env = TestEnv::with_config(&format!(
        "{}timeout_seconds = 3\n",
        smtp(starttls.port, "starttls", "wrong")
    ))
    .await;
    env.cli(
        &["ingest"],
        Some(customer_mail(ANN, "wrongpw@customer.example", "Wrong", "").as_bytes()),
    );
    let sent = env.cli(&["send", "--once"], None);
    assert_eq!(
        stdout(&sent).trim(),
        "sent: 0, retrying later: 1, failed: 0"
    );
    let error = env.cli_json(&["ticket", "show", "1", "--json"])["outbox"][0]["last_error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        error.contains("session") || error.contains("did not answer"),
        "{error}"
    );
}

#[tokio::test]
async fn the_daemon_acknowledges_within_seconds() {
    let World {
        dovecot,
        relay: _relay,
        env,
    } = world(&[(SUPPORT, SUPPORT_PW), (ANN, ANN_PW)], true, "").await;
    let mut daemon = env.spawn_serve();
    to_support(
        &dovecot,
        customer_mail(ANN, "d1@customer.example", "Daemon", "").into_bytes(),
    )
    .await;
    let acknowledged = crate::support::wait_until(Duration::from_secs(15), || async {
        dovecot.count(ANN, ANN_PW, "INBOX").await == 1
    })
    .await;
    crate::support::terminate(&mut daemon, Duration::from_secs(15));
    assert!(acknowledged, "log:\n{}", env.log());
    assert_eq!(
        env.cli_json(&["ticket", "show", "1", "--json"])["outbox"][0]["status"],
        "sent"
    );
}
