//! Retention (`retention.raw_days`): the original bytes of the messages of tickets closed
//! longer than N days are purged, then the raw messages and attachment contents nothing
//! refers to any more. What staff see stays: the parsed text, the attachments, the
//! history; the ticket page says "Original message purged" where the .eml link was.
//! `serve` purges hourly (one instance at a time on PostgreSQL); `maildesk purge` now.

use std::collections::HashSet;
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tracing::{info, info_span, warn, Instrument};

use crate::store::leader::{Leader, LeaderKey};
use crate::store::{self, retention, Store, StoreError};

/// Messages per transaction: each batch is one short write.
const BATCH: i64 = 200;
/// Keys per page of the orphan sweep.
const PAGE: i64 = 500;
const EVERY: Duration = Duration::from_secs(3600);

/// What a purge deleted, or (dry run) would delete.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct PurgeReport {
    /// Tickets and messages whose originals went.
    pub tickets: u64,
    pub messages: u64,
    /// Raw messages deleted (an original still referred to elsewhere stays) and their size.
    pub raw_messages: u64,
    pub raw_bytes: u64,
    /// Attachment contents no attachment referred to any more.
    pub blobs: u64,
    pub blob_bytes: u64,
}

impl std::fmt::Display for PurgeReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "originals of {} message(s) on {} ticket(s); {} raw message(s), {} bytes; {} unreferenced attachment content(s), {} bytes",
            self.messages, self.tickets, self.raw_messages, self.raw_bytes, self.blobs, self.blob_bytes
        )
    }
}

/// Tickets closed before this moment lose their originals.
pub fn cutoff(days: u32, now: i64) -> i64 {
    now - i64::from(days) * 86_400
}

/// What [`purge`] would do now, per ticket and in total; changes nothing.
pub async fn plan(
    store: &Store,
    cutoff: i64,
) -> Result<(Vec<retention::TicketOriginals>, PurgeReport), StoreError> {
    let mut conn = store.acquire().await?;
    let tickets = retention::tickets_with_originals(&mut conn, cutoff).await?;
    let ((raw, raw_bytes), (blobs, blob_bytes)) =
        retention::would_delete(&mut conn, cutoff).await?;
    let report = PurgeReport {
        tickets: tickets.len() as u64,
        messages: tickets.iter().map(|t| t.messages as u64).sum(),
        raw_messages: raw as u64,
        raw_bytes: raw_bytes as u64,
        blobs: blobs as u64,
        blob_bytes: blob_bytes as u64,
    };
    Ok((tickets, report))
}

/// Purges in batches until nothing is left or `token` is cancelled (what was committed
/// stays committed; the next run goes on from there).
pub async fn purge(
    store: &Store,
    cutoff: i64,
    token: &CancellationToken,
) -> Result<PurgeReport, StoreError> {
    let mut report = PurgeReport::default();
    let mut tickets = HashSet::new();
    while !token.is_cancelled() {
        let mut tx = store.begin().await?;
        let batch = retention::next_originals(&mut tx, cutoff, BATCH).await?;
        if batch.is_empty() {
            break;
        }
        let ids: Vec<i64> = batch.iter().map(|(id, _, _)| *id).collect();
        let detached =
            retention::detach_originals(&mut tx, &ids, cutoff, store::unix_now()).await?;
        let mut shas: Vec<String> = batch.iter().map(|(_, _, sha)| sha.clone()).collect();
        shas.sort();
        shas.dedup();
        let sizes = retention::delete_unreferenced_raw(&mut tx, &shas).await?;
        tx.commit().await?;
        tickets.extend(batch.iter().map(|(_, ticket, _)| *ticket));
        report.messages += detached;
        report.raw_messages += sizes.len() as u64;
        report.raw_bytes += sizes.iter().sum::<i64>() as u64;
    }
    report.tickets = tickets.len() as u64;
    // Whatever nothing refers to any more (an original shared with a message purged in an
    // earlier batch, attachment contents whose attachments are gone).
    for table in [retention::Table::Raw, retention::Table::Blobs] {
        let mut after = String::new();
        while !token.is_cancelled() {
            let mut conn = store.acquire().await?;
            let keys = retention::keys_after(&mut conn, table, &after, PAGE).await?;
            drop(conn);
            let Some(last) = keys.last().cloned() else {
                break;
            };
            let mut tx = store.begin().await?;
            let sizes = match table {
                retention::Table::Raw => retention::delete_unreferenced_raw(&mut tx, &keys).await?,
                retention::Table::Blobs => {
                    retention::delete_unreferenced_blobs(&mut tx, &keys).await?
                }
            };
            tx.commit().await?;
            let bytes = sizes.iter().sum::<i64>() as u64;
            match table {
                retention::Table::Raw => {
                    report.raw_messages += sizes.len() as u64;
                    report.raw_bytes += bytes;
                }
                retention::Table::Blobs => {
                    report.blobs += sizes.len() as u64;
                    report.blob_bytes += bytes;
                }
            }
            after = last;
        }
    }
    Ok(report)
}

/// The daemon's task: a purge at start and then hourly. On PostgreSQL a leader lock
/// makes it one instance at a time (the others skip that round).
pub async fn run(store: Store, days: u32, token: CancellationToken) {
    info!(
        days,
        "retention: originals of tickets closed longer than {days} days are purged hourly"
    );
    loop {
        let span = info_span!("retention", days);
        if let Err(e) = run_once(&store, days, &token).instrument(span).await {
            warn!(error = %e, "retention: the purge failed; trying again in an hour");
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = token.cancelled() => return,
        }
    }
}

async fn run_once(store: &Store, days: u32, token: &CancellationToken) -> Result<(), StoreError> {
    let Some(leader) = Leader::try_acquire(store, LeaderKey::Retention).await? else {
        info!("retention: another instance is purging");
        return Ok(());
    };
    let result = purge(store, cutoff(days, store::unix_now()), token).await;
    leader.release().await;
    let report = result?;
    if report != PurgeReport::default() {
        info!(
            tickets = report.tickets,
            messages = report.messages,
            raw_bytes = report.raw_bytes,
            blob_bytes = report.blob_bytes,
            "retention: purged {report}"
        );
    }
    Ok(())
}
