//! Several writers on one database: a batch of mail that PostgreSQL aborts as a
//! deadlock victim is run again and stored, instead of failing its mailbox (with three
//! mailboxes ingesting at once, `bench/imap` saw this several times a run). On SQLite,
//! where one writer waits for the other, the batch waits and is stored.

use std::time::Duration;

use maildesk::inbound::ingest::{prepare, BatchItem, Origin, Outcome};
use maildesk::store::Store;

use crate::support::{ingest_text, is_postgres, wait_until, TestEnv};

fn customer_mail(id: &str, in_reply_to: Option<&str>) -> String {
    let parent = in_reply_to.map_or(String::new(), |p| format!("In-Reply-To: <{p}>\r\n"));
    format!(
        "From: Carol <carol@customer.example>\r\nTo: support@example.com\r\nSubject: printer {id}\r\n\
         Message-ID: <{id}>\r\n{parent}Date: Mon, 2 Jan 2023 10:00:00 +0000\r\n\r\nstill broken\r\n"
    )
}

fn ticket_of(outcome: &Outcome) -> i64 {
    match outcome {
        Outcome::Created { ticket_id, .. } | Outcome::Threaded { ticket_id, .. } => *ticket_id,
        other => panic!("not stored on a ticket: {other:?}"),
    }
}

async fn lock_ticket(tx: &mut maildesk::store::Tx, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE tickets SET priority = priority WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await
        .map(|_| ())
}

async fn waiting_locks(store: &Store) -> i64 {
    let mut conn = store.acquire().await.unwrap();
    sqlx::query_scalar("SELECT COUNT(*) FROM pg_locks WHERE NOT granted")
        .fetch_one(&mut *conn)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_that_loses_a_deadlock_is_stored_on_the_next_attempt() {
    let env = TestEnv::new().await;
    let ingestor = env.ingestor().await;
    let store = env.store().await;
    let first =
        ticket_of(&ingest_text(&ingestor, &customer_mail("a@customer.example", None)).await);
    let second =
        ticket_of(&ingest_text(&ingestor, &customer_mail("b@customer.example", None)).await);
    // Replies to the first ticket, then the second: the batch locks them in that order.
    let batch: Vec<BatchItem> = [
        ("a2@customer.example", "a@customer.example"),
        ("b2@customer.example", "b@customer.example"),
    ]
    .iter()
    .map(|(id, parent)| {
        let raw = customer_mail(id, Some(parent)).into_bytes();
        BatchItem {
            prepared: prepare(ingestor.options(), &raw),
            origin: Origin::new(format!("contention-{id}"), None),
            raw,
        }
    })
    .collect();

    // Another writer holds the second ticket.
    let mut other = store.begin().await.unwrap();
    if is_postgres() {
        // Let the batch be the one that detects the deadlock, and so its victim (a
        // superuser setting: without it either side may lose, and the check below says so).
        let _ = sqlx::query("SET LOCAL deadlock_timeout = '20s'")
            .execute(&mut *other)
            .await;
    }
    lock_ticket(&mut other, second).await.unwrap();
    let batch_task = {
        let ingestor = ingestor.clone();
        tokio::spawn(async move { ingestor.ingest_batch(&batch).await })
    };
    if is_postgres() {
        assert!(
            wait_until(Duration::from_secs(10), || async {
                waiting_locks(&store).await > 0
            })
            .await,
            "the batch never waited for the second ticket"
        );
        // Now the other writer wants the first ticket, which the batch holds: a deadlock.
        lock_ticket(&mut other, first)
            .await
            .expect("the batch, not this writer, should have been the deadlock victim");
    } else {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    other.commit().await.unwrap();

    let outcomes = tokio::time::timeout(Duration::from_secs(30), batch_task)
        .await
        .expect("the batch finished")
        .unwrap();
    let tickets: Vec<i64> = outcomes
        .iter()
        .map(|o| ticket_of(o.as_ref().expect("stored")))
        .collect();
    // Stored, though the database aborted the batch's first attempt (this writer got
    // the first ticket, which the batch held until it was aborted).
    assert_eq!(tickets, [first, second]);
}
