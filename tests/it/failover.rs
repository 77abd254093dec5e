//! Instances dying mid-run: 2,000 customer mails through two Dovecot mailboxes, the
//! acknowledgements they cause through the real SMTP relay into the customers' own
//! Dovecot mailboxes, and the instance holding the mailboxes killed with SIGKILL twice.
//! On PostgreSQL three `serve` processes share the database (a standby takes over); on
//! SQLite, where one `serve` owns the file, the killed instance is started again.
//! At the end every message is stored once and every acknowledgement arrived once.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::support::mail::{header, Dovecot, SmtpRelay};
use crate::support::{is_postgres, kill, terminate, wait_until, Spawned, TestEnv};
use maildesk::store::Store;

const PASSWORD: &str = "pw";
const MAILBOXES: [(&str, &str); 2] = [("one", "support@example.com"), ("two", "help@example.com")];
const CUSTOMERS: usize = 100;
const PER_MAILBOX: usize = 1000;
/// Customer mail stored (our acknowledgements are messages of their tickets too).
const INBOUND: &str = "SELECT COUNT(*) FROM messages WHERE direction = 'in'";
const TOTAL: i64 = (PER_MAILBOX * MAILBOXES.len()) as i64;

fn customer(i: usize) -> String {
    format!("c{}@customer.example", i % CUSTOMERS)
}

fn inbound(mailbox: &str, i: usize) -> Vec<u8> {
    format!(
        "From: Customer <{}>\r\nTo: support@example.com\r\nSubject: {mailbox} request {i}\r\nMessage-ID: <{mailbox}-{i}@customer.example>\r\nDate: Mon, 2 Jan 2023 10:00:00 +0000\r\n\r\nPlease help with {i}.\r\n",
        customer(i)
    )
    .into_bytes()
}

struct Instance {
    log: PathBuf,
    process: Spawned,
}

impl Instance {
    fn start(env: &TestEnv, n: usize) -> Instance {
        let log = env.log_path().with_file_name(format!("instance-{n}.log"));
        let process =
            env.spawn_logging_to(&log, &["--set", crate::support::ANY_PORT, "serve"], &[]);
        Instance { log, process }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether this instance is the one talking to an IMAP server.
    fn holds_a_mailbox(&self) -> bool {
        self.log().contains(" connected")
    }
}

async fn count(store: &Store, sql: &str) -> i64 {
    let mut conn = store.acquire().await.unwrap();
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_one(&mut *conn)
        .await
        .unwrap()
}

fn logs(instances: &[Instance]) -> String {
    instances
        .iter()
        .enumerate()
        .map(|(n, i)| format!("--- instance {n} ---\n{}", i.log()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn losing_the_mailbox_holder_twice_loses_and_doubles_nothing() {
    let postgres = is_postgres();
    let mut accounts: Vec<(String, String)> = MAILBOXES
        .iter()
        .map(|(_, user)| (user.to_string(), PASSWORD.to_string()))
        .collect();
    accounts.extend((0..CUSTOMERS).map(|i| (customer(i), PASSWORD.to_string())));
    let account_refs: Vec<(&str, &str)> = accounts
        .iter()
        .map(|(u, p)| (u.as_str(), p.as_str()))
        .collect();
    let dovecot = Dovecot::start(&account_refs, false);
    let relay = SmtpRelay::start(dovecot.lmtp_port);
    let mut config: String = MAILBOXES
        .iter()
        .map(|(name, user)| dovecot.mailbox_toml(name, user, PASSWORD, ""))
        .collect();
    config.push_str(&relay.smtp_toml());
    // Every new ticket is acknowledged (no per-sender cap), and a killed instance's
    // claimed mail is taken over after 5 s rather than the default two minutes.
    config.push_str(
        "\n[outbound]\nacknowledgements_per_sender_per_hour = 1000\nmax_per_recipient_per_hour = 1000\nclaim_lease_seconds = 5\n",
    );
    let env = TestEnv::with_config(&config).await;
    let store = env.store().await;

    let mut instances: Vec<Instance> = (0..if postgres { 3 } else { 1 })
        .map(|n| Instance::start(&env, n))
        .collect();
    let append = |mailbox: usize, range: std::ops::Range<usize>| {
        let (name, user) = MAILBOXES[mailbox];
        let batch: Vec<Vec<u8>> = range.map(|i| inbound(name, i)).collect();
        let dovecot = &dovecot;
        async move { dovecot.append(user, PASSWORD, "INBOX", &batch, None).await }
    };

    // Two kills, each once a third more of the mail is in.
    let thirds = [0, PER_MAILBOX / 3, 2 * PER_MAILBOX / 3, PER_MAILBOX];
    let mut killed = 0;
    for step in 0..3 {
        for mailbox in 0..MAILBOXES.len() {
            append(mailbox, thirds[step]..thirds[step + 1]).await;
        }
        if step == 2 {
            break;
        }
        // Mid-run: some of this third is stored, some still waits in Dovecot.
        let target = (thirds[step] * 2 + (thirds[step + 1] - thirds[step])) as i64;
        let started = wait_until(Duration::from_secs(60), || async {
            count(&store, INBOUND).await >= target
        })
        .await;
        assert!(started, "ingest stalled:\n{}", logs(&instances));
        let holder = instances
            .iter()
            .position(Instance::holds_a_mailbox)
            .unwrap_or_else(|| panic!("no live instance holds a mailbox:\n{}", logs(&instances)));
        kill(&mut instances[holder].process);
        killed += 1;
        if !postgres {
            let n = instances.len();
            instances.push(Instance::start(&env, n));
        }
        // The dead instance's log no longer counts as holding anything.
        let dead = &instances[holder].log;
        std::fs::rename(dead, dead.with_extension(format!("killed-{killed}"))).unwrap();
    }

    let all_in = wait_until(Duration::from_secs(180), || async {
        count(&store, INBOUND).await == TOTAL
            && count(&store, "SELECT COUNT(*) FROM outbox WHERE status <> 'sent'").await == 0
            && count(&store, "SELECT COUNT(*) FROM outbox").await == TOTAL
    })
    .await;
    for instance in &mut instances {
        terminate(&mut instance.process, Duration::from_secs(15));
    }
    assert!(
        all_in,
        "not everything arrived and went out: {} stored, outbox {} of which {} not sent\n{}",
        count(&store, INBOUND).await,
        count(&store, "SELECT COUNT(*) FROM outbox").await,
        count(&store, "SELECT COUNT(*) FROM outbox WHERE status <> 'sent'").await,
        logs(&instances)
    );

    // Stored once: one message and one ticket per mail, none quarantined.
    assert_eq!(count(&store, INBOUND).await, TOTAL);
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(DISTINCT message_id) FROM messages WHERE direction = 'in'"
        )
        .await,
        TOTAL
    );
    assert_eq!(count(&store, "SELECT COUNT(*) FROM tickets").await, TOTAL);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM quarantine").await, 0);
    for (name, user) in MAILBOXES {
        assert_eq!(
            dovecot.count(user, PASSWORD, "Processed").await,
            PER_MAILBOX,
            "mailbox {name}: every mail moved once"
        );
    }

    // Delivered once, counted in the customers' mailboxes. SMTP gives at-least-once: a
    // mail the killed instance handed over but had not yet marked sent goes again. Such
    // a mail was claimed twice, so any duplicate must show a second attempt.
    let mut delivered: HashMap<String, usize> = HashMap::new();
    for i in 0..CUSTOMERS {
        for raw in dovecot.messages(&customer(i), PASSWORD, "INBOX").await {
            let id = header(&raw, "Message-ID")
                .unwrap_or_else(|| panic!("a delivered mail without Message-ID:\n{raw}"))
                .trim()
                .to_string();
            *delivered.entry(id).or_default() += 1;
        }
    }
    let mut conn = store.acquire().await.unwrap();
    let sent: Vec<(String, i64)> = sqlx::query_as("SELECT message_id_header, attempts FROM outbox")
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    drop(conn);
    let mut doubled = 0;
    for (header, attempts) in &sent {
        let key = if header.starts_with('<') {
            header.clone()
        } else {
            format!("<{header}>")
        };
        let n = delivered.remove(&key).unwrap_or(0);
        assert!(n >= 1, "{key} was never delivered");
        if n > 1 {
            assert!(*attempts > 1, "{key} delivered {n} times on one attempt");
            doubled += 1;
        }
    }
    assert!(
        delivered.is_empty(),
        "mail nobody queued arrived: {delivered:?}"
    );
    // Each instance sends one mail at a time: a kill can catch at most one in flight.
    assert!(
        doubled <= killed,
        "{doubled} mails delivered twice after {killed} kills"
    );
    println!(
        "{} instance(s), {killed} killed: {TOTAL} messages stored once, {} acknowledgements delivered, {doubled} in flight at a kill delivered twice",
        if postgres { 3 } else { 1 },
        sent.len()
    );
}
