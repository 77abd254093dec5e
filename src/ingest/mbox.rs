//! `maildesk ingest --mbox`: messages are cut and parsed on a blocking thread while the
//! previous ones are being stored, in file order (a reply must follow its original).

use std::fs::File;
use std::io::{self, BufReader};
use std::path::Path;

use super::{prepare, Counts, IngestError, Ingestor, Origin, Prepared};
use crate::mail::mbox::{MboxMessage, MboxReader};
use crate::progress::progress_bar;

/// How many parsed messages may wait for the database.
const PIPELINE_DEPTH: usize = 64;

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
        tokio::sync::mpsc::channel::<io::Result<(MboxMessage, Prepared, u64)>>(PIPELINE_DEPTH);
    let options = ingestor.options().clone();
    let reader = tokio::task::spawn_blocking(move || {
        let mut mbox = MboxReader::new(BufReader::with_capacity(1 << 20, file));
        while let Some(item) = mbox.next() {
            let item = item.map(|m| {
                let prepared = prepare(&options, &m.raw);
                (m, prepared, mbox.position())
            });
            if sender.blocking_send(item).is_err() {
                break; // the store loop stopped
            }
        }
    });
    let mut counts = Counts::default();
    let mut result = Ok(());
    while let Some(item) = receiver.recv().await {
        let (message, prepared, position) = match item {
            Ok(item) => item,
            Err(e) => {
                result = Err(read_error(e));
                break;
            }
        };
        let origin = Origin {
            source: format!("mbox:{}@{}", path.display(), message.offset),
            mailbox: mailbox.map(str::to_string),
        };
        match ingestor
            .ingest_prepared(&message.raw, prepared, &origin, None)
            .await
        {
            Ok(outcome) => counts.add(&Ok(outcome)),
            // The database is gone: stop here; a second run skips what is stored.
            Err(source) => {
                result = Err(MboxError::Store { counts, source });
                break;
            }
        }
        progress.set_position(position);
    }
    drop(receiver);
    let _ = reader.await;
    progress.finish_and_clear();
    result.map(|()| counts)
}
