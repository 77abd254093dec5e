//! `maildesk ingest --mbox`: messages are cut and parsed on a blocking thread while the
//! previous ones are being stored, in file order (a reply must follow its original),
//! in batches of one transaction each.

use std::fs::File;
use std::io::{self, BufReader};
use std::path::Path;

use super::{prepare, BatchItem, Counts, IngestError, Ingestor, Origin};
use crate::cli::progress::progress_bar;
use crate::mail::mbox::MboxReader;

/// How many parsed messages may wait for the database.
const PIPELINE_DEPTH: usize = 256;
/// How many bytes of raw mail may be read ahead of the database: counting messages alone
/// let a few big ones fill memory (8 large messages took 732 MB).
const READ_AHEAD_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum MboxError {
    #[error("{path}: {source}")]
    Read { path: String, source: io::Error },
    #[error("stopped after {counts}: {source}")]
    Store { counts: Counts, source: IngestError },
}

pub async fn ingest_mbox(
    ingestor: &Ingestor,
    path: &Path,
    mailbox: Option<&str>,
    show_progress: bool,
) -> Result<Counts, MboxError> {
    let read_error = |source| MboxError::Read {
        path: path.display().to_string(),
        source,
    };
    let file = File::open(path).map_err(read_error)?;
    let total = file.metadata().map_err(read_error)?.len();
    let progress = progress_bar(total, "bytes", show_progress);
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<io::Result<Ahead>>(PIPELINE_DEPTH);
    let budget = std::sync::Arc::new(tokio::sync::Semaphore::new(READ_AHEAD_BYTES));
    let options = ingestor.options().clone();
    let source_prefix = format!("mbox:{}", path.display());
    let mailbox = mailbox.map(str::to_string);
    let runtime = tokio::runtime::Handle::current();
    let reader_budget = budget.clone();
    let reader = tokio::task::spawn_blocking(move || {
        let budget = reader_budget;
        let mut mbox = MboxReader::new(BufReader::with_capacity(1 << 20, file));
        while let Some(item) = mbox.next() {
            let item = match item {
                Ok(m) => {
                    // One message bigger than the whole budget still goes, alone.
                    let bytes = m.raw.len().clamp(1, READ_AHEAD_BYTES) as u32;
                    let Ok(permit) = runtime.block_on(budget.clone().acquire_many_owned(bytes))
                    else {
                        break;
                    };
                    Ok(Ahead {
                        item: BatchItem {
                            prepared: prepare(&options, &m.raw),
                            origin: Origin::new(
                                format!("{source_prefix}@{}", m.offset),
                                mailbox.clone(),
                            ),
                            raw: m.raw,
                        },
                        position: mbox.position(),
                        permit,
                    })
                }
                Err(e) => Err(e),
            };
            if sender.blocking_send(item).is_err() {
                break; // the store loop stopped
            }
        }
    });
    let mut counts = Counts::default();
    let mut result = Ok(());
    let batch_size = ingestor.options().batch_messages;
    let mut batch = Vec::with_capacity(batch_size);
    let mut permits = Vec::with_capacity(batch_size);
    'reading: while let Some(first) = receiver.recv().await {
        let mut next = Some(first);
        let mut position = 0;
        // Take what is ready, up to a batch, without waiting for more.
        while let Some(item) = next.take() {
            match item {
                Ok(ahead) => {
                    batch.push(ahead.item);
                    position = ahead.position;
                    permits.push(ahead.permit);
                }
                Err(e) => {
                    result = Err(read_error(e));
                    break 'reading;
                }
            }
            if batch.len() < batch_size {
                next = receiver.try_recv().ok();
            }
        }
        for outcome in ingestor.ingest_batch(&batch).await {
            if let Err(source) = outcome {
                // The database is gone: stop here; a second run skips what is stored.
                result = Err(MboxError::Store { counts, source });
                break 'reading;
            }
            counts.record(&outcome);
        }
        batch.clear();
        permits.clear(); // stored: the reader may read that much further
        progress.set_position(position);
    }
    // Wake a reader waiting for budget (the store loop may have stopped early).
    budget.close();
    drop(receiver);
    let _ = reader.await;
    progress.finish_and_clear();
    result.map(|()| counts)
}

/// A message read ahead, holding its share of the read-ahead budget until it is stored.
struct Ahead {
    item: BatchItem,
    position: u64,
    permit: tokio::sync::OwnedSemaphorePermit,
}
