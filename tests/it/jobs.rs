//! The durable job queue: workers racing for the same due jobs.

use std::collections::HashSet;

use maildesk::store::jobs::{self, Finish};
use maildesk::store::{outbox, unix_now, Store};

use crate::support::TestEnv;

/// Claims and finishes jobs in small batches until none is left; the ids it ran.
async fn drain(store: Store, now: i64) -> Vec<i64> {
    let mut ran = Vec::new();
    loop {
        let mut conn = store.acquire().await.unwrap();
        let claimed: Vec<outbox::Claimed> =
            jobs::claim(&mut conn, store.backend(), &outbox::JOBS, now, 60, 3)
                .await
                .unwrap();
        if claimed.is_empty() {
            return ran;
        }
        for job in claimed {
            tokio::task::yield_now().await;
            let done = Finish::Done { status: None };
            assert!(outbox::finish(&mut conn, &job, done, now).await.unwrap());
            ran.push(job.id);
        }
    }
}

#[tokio::test]
async fn two_workers_racing_for_due_jobs_run_each_exactly_once() {
    let env = TestEnv::new().await;
    let store = env.store().await;
    let now = unix_now();
    let mut queued = HashSet::new();
    for i in 0..60 {
        let mut conn = store.acquire().await.unwrap();
        let recipient = format!("r{i}@customer.example");
        let mail = outbox::NewMail {
            ticket_id: None,
            message_id: None,
            kind: "reply",
            recipient: &recipient,
            envelope_from: "help@example.com",
            message_id_header: &format!("race-{i}@example.com"),
            raw: b"Subject: race\r\n\r\nbody\r\n",
        };
        queued.insert(outbox::enqueue(&mut conn, &mail, now).await.unwrap());
    }
    let (one, two) = tokio::join!(
        tokio::spawn(drain(store.clone(), now)),
        tokio::spawn(drain(store.clone(), now))
    );
    let (one, two) = (one.unwrap(), two.unwrap());
    let mut ran: Vec<i64> = one.iter().chain(&two).copied().collect();
    ran.sort_unstable();
    let mut expected: Vec<i64> = queued.into_iter().collect();
    expected.sort_unstable();
    assert_eq!(ran, expected, "every job ran, none twice");
    let mut conn = store.acquire().await.unwrap();
    assert_eq!(
        outbox::count_by_status(&mut conn, "sent").await.unwrap(),
        60
    );
    let none_left: Vec<outbox::Claimed> = jobs::claim(
        &mut conn,
        store.backend(),
        &outbox::JOBS,
        now + 3600,
        60,
        100,
    )
    .await
    .unwrap();
    assert!(none_left.is_empty(), "done jobs are never claimed again");
}
