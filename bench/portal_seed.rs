//! Seeds a database for `bench/portal` (not a test): N tickets with 5 messages each
//! (customer mail, staff replies, a note), written through the store layer in large
//! transactions. Ticket i's last activity is `BASE + i`, so the bench can name the
//! cursor of any queue page without asking the database. For the reports, tickets are
//! created over the year before `BASE` (one every 315 s), answered by a staff member
//! within hours, resolved or closed within days, and one in twenty was reopened.
//!     cargo run --release --example portal-seed -- DATABASE_URL [TICKETS]

use maildesk::domain::{Direction, MessageKind, Priority, Role, TicketStatus};
use maildesk::store::{events, messages, tickets, users, Store};

pub const BASE: i64 = 1_700_000_000;
/// Everyday words (in most tickets) ...
const WORDS: &[&str] = &[
    "printer", "network", "vpn", "laptop", "password", "mail", "server", "slow", "broken",
    "please", "help", "urgent", "invoice", "login", "screen", "update", "backup", "license",
];
/// ... and a long tail of rarer ones (product names, error codes), chosen Zipf-like.
const TAIL: usize = 20_000;
const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ne", "ru", "ta", "vo", "zi", "pe", "su", "dra", "xo",
];

fn tail_word(k: usize) -> String {
    let mut k = k + SYLLABLES.len();
    let mut word = String::new();
    while k > 0 {
        word.push_str(SYLLABLES[k % SYLLABLES.len()]);
        k /= SYLLABLES.len();
    }
    word
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .expect("usage: portal-seed DATABASE_URL [TICKETS]");
    let n: i64 = args
        .next()
        .map_or(100_000, |a| a.parse().expect("a number"));
    let store = Store::connect(&url, 4).await.expect("database");
    store.migrate().await.expect("migrations");
    let started = std::time::Instant::now();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let statuses = [
        TicketStatus::Open,
        TicketStatus::InProgress,
        TicketStatus::Waiting,
        TicketStatus::Resolved,
        TicketStatus::Closed,
    ];
    let categories = ["network", "hardware", "software", "other"];
    let mut tx = store.begin().await.expect("begin");
    let mut agents = Vec::new();
    for k in 0..5 {
        let email = format!("agent{k}@example.com");
        let user = users::NewUser {
            email: &email,
            name: &format!("Agent {k}"),
            role: Role::Staff,
            password_hash: "!",
        };
        agents.push(users::insert(&mut tx, &user, BASE).await.expect("agent"));
    }
    for i in 1..=n {
        let sentence = |next: &mut dyn FnMut() -> u64, words: usize| {
            (0..words)
                .map(|_| {
                    if next() % 10 < 4 {
                        WORDS[(next() % WORDS.len() as u64) as usize].to_string()
                    } else {
                        // Zipf-like: low ranks are frequent, high ranks rare.
                        let u = (next() % 1_000_000) as f64 / 1_000_000.0;
                        tail_word((u * u * u * TAIL as f64) as usize)
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        let subject = sentence(&mut next, 5);
        let customer = format!("customer{}@example.org", next() % 20_000);
        let now = BASE + i;
        let created = BASE - (n - i) * 315;
        let agent = agents[(next() % agents.len() as u64) as usize];
        let answered = created + 300 + (next() % (8 * 3600)) as i64;
        let done = answered + (next() % (5 * 86_400)) as i64;
        let id = tickets::insert(
            &mut tx,
            &tickets::NewTicket {
                subject: &subject,
                category: categories[(next() % 4) as usize],
                mailbox: Some("support"),
                requester_email: &customer,
                requester_name: Some("A Customer"),
                linked_ticket_id: None,
            },
            created,
        )
        .await
        .expect("ticket");
        for m in 0..5 {
            let body = (0..8)
                .map(|_| sentence(&mut next, 12))
                .collect::<Vec<_>>()
                .join("\n");
            let (direction, kind, from) = match m {
                1 | 3 => (
                    Direction::Outbound,
                    MessageKind::Public,
                    "support@example.com",
                ),
                4 => (Direction::Inbound, MessageKind::Note, "agent@example.com"),
                _ => (Direction::Inbound, MessageKind::Public, customer.as_str()),
            };
            let (at, author) = match m {
                0 => (created, None),
                1 => (answered, Some(agent)),
                3 => (done.min(now), Some(agent)),
                _ => (answered + 60, None),
            };
            let message_id = format!("seed-{i}-{m}@example.org");
            messages::insert(
                &mut tx,
                &messages::NewMessage {
                    ticket_id: id,
                    direction,
                    kind,
                    automatic_reason: None,
                    from_email: from,
                    from_name: None,
                    to_addrs: "[]",
                    cc_addrs: "[]",
                    reply_to: "[]",
                    subject: &subject,
                    message_id: &message_id,
                    in_reply_to: "",
                    references_ids: "",
                    text_body: &body,
                    html_body: None,
                    raw_sha256: None,
                    content_sha256: &message_id,
                    mailbox: Some("support"),
                    source: "seed",
                    sent_at: Some(at),
                    author_user_id: author,
                    unverified: false,
                },
                at,
            )
            .await
            .expect("message");
        }
        let status = statuses[(next() % 5) as usize];
        tickets::set_status(&mut tx, id, status, done)
            .await
            .expect("status");
        if i % 20 == 0 {
            let reopen = events::NewEvent {
                ticket_id: id,
                user_id: None,
                field: "status",
                old_value: Some("resolved"),
                new_value: Some("open"),
            };
            events::record(&mut tx, &reopen, done - 3600)
                .await
                .expect("reopen");
        }
        sqlx::query("UPDATE tickets SET assignee_id = $1 WHERE id = $2")
            .bind(agent)
            .bind(id)
            .execute(&mut *tx)
            .await
            .expect("assignee");
        let priority = Priority::ALL[(next() % 4) as usize];
        tickets::set_priority(&mut tx, id, priority, now)
            .await
            .expect("priority");
        if i % 2_000 == 0 {
            tx.commit().await.expect("commit");
            tx = store.begin().await.expect("begin");
            eprint!("\rseeded {i} tickets");
        }
    }
    tx.commit().await.expect("commit");
    // A PostgreSQL database that has been running has statistics (autovacuum); a fresh
    // bulk load has none yet. SQLite gets none: its queries must be fast without them.
    if store.backend() == maildesk::store::Backend::Postgres {
        sqlx::query("ANALYZE")
            .execute(store.pool())
            .await
            .expect("analyze");
    }
    // For the bench's searches: a mid-frequency word of the tail.
    println!("rare-word: {}", tail_word(TAIL / 4));
    eprintln!(
        "\rseeded {n} tickets, {} messages in {:.0} s",
        n * 5,
        started.elapsed().as_secs_f64()
    );
}
