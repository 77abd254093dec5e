//! `maildesk ingest --mbox`: messages are cut and parsed on a blocking thread while the
//! previous ones are being stored, in file order (a reply must follow its original),
//! in batches of one transaction each.

use std::fs::File;
use std::io::{self, BufReader};
use std::path::Path;

use super::{prepare, BatchItem, Counts, IngestError, Ingestor, Origin};
use crate::mail::mbox::MboxReader;
use crate::progress::progress_bar;

/// How many parsed messages may wait for the database.
const PIPELINE_DEPTH: usize = 256;

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
    let (sender, mut receiver) =
        tokio::sync::mpsc::channel::<io::Result<(BatchItem, u64)>>(PIPELINE_DEPTH);
    let options = ingestor.options().clone();
    let source_prefix = format!("mbox:{}", path.display());
    let mailbox = mailbox.map(str::to_string);
    let reader = tokio::task::spawn_blocking(move || {
        let mut mbox = MboxReader::new(BufReader::with_capacity(1 << 20, file));
        while let Some(item) = mbox.next() {
            let item = item.map(|m| {
                let item = BatchItem {
                    prepared: prepare(&options, &m.raw),
                    origin: Origin::new(format!("{source_prefix}@{}", m.offset), mailbox.clone()),
                    raw: m.raw,
                };
                (item, mbox.position())
            });
            if sender.blocking_send(item).is_err() {
                break; // the store loop stopped
            }
        }
    });
    let mut counts = Counts::default();
    let mut result = Ok(());
    let batch_size = ingestor.options().batch_messages;
    let mut batch = Vec::with_capacity(batch_size);
    'reading: while let Some(first) = receiver.recv().await {
        let mut next = Some(first);
        let mut position = 0;
        // Take what is ready, up to a batch, without waiting for more.
        while let Some(item) = next.take() {
            match item {
                Ok((item, at)) => {
                    batch.push(item);
                    position = at;
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
        progress.set_position(position);
    }
    drop(receiver);
    let _ = reader.await;
    progress.finish_and_clear();
    result.map(|()| counts)
}
