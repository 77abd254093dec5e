//! Watching IMAP mailboxes (DESIGN.md, "Inbound: the invariants"):
//! - fetch by UID with `BODY.PEEK[]`, never by \Seen, in size-bounded batches;
//! - each batch is one database transaction that also records every (mailbox,
//!   UIDVALIDITY, UID) it took in; the IMAP post-action (move / \Seen) happens only after
//!   that commit, and one left undone by a crash is finished on the next run;
//! - a UIDVALIDITY change rescans the folder; Message-ID + content dedup stops doubles;
//! - IDLE where the server has it (re-issued well before 29 minutes), polling otherwise;
//!   before each IDLE a UID search catches mail that came during the sync, whose EXISTS
//!   arrived amid the sync's own commands and will not be repeated;
//! - every failure is logged with the mailbox's name, recorded as its state, and retried
//!   with capped exponential backoff, without touching the other mailboxes.

use std::collections::HashSet;
use std::time::Duration;

use async_imap::extensions::idle::Handle;
use async_imap::types::UnsolicitedResponse;
use futures_util::TryStreamExt;
use indicatif::ProgressBar;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::{AfterAction, MailboxConfig};
use crate::inbound::ingest::{prepare, BatchItem, Counts, IngestError, Ingestor, Origin};
use crate::mail::imap::{self, uid_set, ImapError, ImapIo, Session};
use crate::store::imap::ImapUid;
use crate::store::leader::{Leader, LeaderKey};
use crate::store::{self, unix_now, StoreError};

/// At most `ingest.batch_messages` messages per batch (one transaction), and at most
/// this many bytes of raw mail in memory at once (one big message may exceed it).
const BATCH_BYTES: u64 = 16 * 1024 * 1024;
/// Stored messages are moved (or flagged) in chunks this big: servers such as Dovecot
/// pay for each MOVE in proportion to the folder size, so few large moves beat many small.
/// Until moved they are skipped by UID (imap_seen), so a crash in between doubles nothing.
const POST_ACTION_CHUNK: usize = 10_000;
/// A single IMAP command (or batch fetch) that takes longer counts as a dead connection.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);
/// IDLE is re-issued after this long (RFC 2177: servers may drop it after 30 minutes).
const IDLE_REFRESH: Duration = Duration::from_secs(25 * 60);
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Imap(#[from] ImapError),
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Ingest(#[from] IngestError),
    /// Another instance (sharing the PostgreSQL database) is polling this mailbox.
    #[error("another maildesk instance is watching this mailbox")]
    Busy,
}

impl From<async_imap::error::Error> for FetchError {
    fn from(e: async_imap::error::Error) -> Self {
        FetchError::Imap(ImapError::Protocol(e))
    }
}

/// How often a standing-by instance checks whether the leader is gone.
const LEADER_RETRY: Duration = Duration::from_secs(5);

/// What the server can do, read once per connection.
#[derive(Debug, Clone, Copy, Default)]
struct Features {
    idle: bool,
    uid_move: bool,
    uidplus: bool,
}

/// What one pass over the folder did, and how far it looked.
struct Pass {
    counts: Counts,
    /// The highest UID the folder held when the pass searched it (or the stored position,
    /// if higher): mail that arrives later gets a UID above it.
    seen_up_to: u32,
}

pub struct MailboxWorker {
    mailbox: MailboxConfig,
    ingestor: Ingestor,
}

impl MailboxWorker {
    pub fn new(mailbox: MailboxConfig, ingestor: Ingestor) -> Self {
        MailboxWorker { mailbox, ingestor }
    }

    pub fn name(&self) -> &str {
        &self.mailbox.name
    }

    /// Connects, takes in what is waiting, logs out (`maildesk fetch --once`, tests).
    #[tracing::instrument(name = "fetch", skip_all, fields(mailbox = %self.mailbox.name))]
    pub async fn run_once(
        &self,
        token: &CancellationToken,
        progress: &ProgressBar,
    ) -> Result<Counts, FetchError> {
        let Some(leadership) = self.lead().await? else {
            return Err(FetchError::Busy);
        };
        let result = async {
            let (mut session, features) = self.connect().await?;
            let pass = self.sync(&mut session, features, token, progress).await?;
            let _ = tokio::time::timeout(Duration::from_secs(5), session.logout()).await;
            Ok(pass.counts)
        }
        .await;
        leadership.release().await;
        self.record(&result).await;
        result
    }

    /// The daemon loop: sync, then IDLE (or sleep) until there is new mail; reconnect with
    /// backoff after any failure; return when `token` is cancelled.
    #[tracing::instrument(name = "mailbox", skip_all, fields(mailbox = %self.mailbox.name))]
    pub async fn run(self, token: CancellationToken) {
        let mut failures = 0u32;
        let mut follower_logged = false;
        while !token.is_cancelled() {
            let error = match self.lead().await {
                Ok(Some(leadership)) => {
                    follower_logged = false;
                    let result = self.session_loop(&token, &mut failures).await;
                    leadership.release().await;
                    match result {
                        Ok(()) => break,
                        Err(e) => e,
                    }
                }
                Ok(None) => {
                    if !follower_logged {
                        info!("another instance is watching this mailbox; standing by");
                        follower_logged = true;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(LEADER_RETRY) => {}
                        _ = token.cancelled() => {}
                    }
                    continue;
                }
                Err(e) => e,
            };
            failures += 1;
            let delay = backoff(failures);
            warn!(error = %error, retry_in = ?delay, "mailbox failed; retrying");
            self.record::<()>(&Err(error)).await;
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = token.cancelled() => break,
            }
        }
        info!("mailbox stopped");
    }

    /// One instance polls each mailbox; the others stand by (also a cron `fetch --once`
    /// beside `serve` on one SQLite file).
    async fn lead(&self) -> Result<Option<Leader>, FetchError> {
        let key = LeaderKey::Mailbox(&self.mailbox.name);
        Ok(Leader::try_acquire(self.ingestor.store(), key).await?)
    }

    async fn session_loop(
        &self,
        token: &CancellationToken,
        failures: &mut u32,
    ) -> Result<(), FetchError> {
        let (mut session, features) = self.connect().await?;
        info!(?features, "connected");
        loop {
            let pass = self
                .sync(&mut session, features, token, &ProgressBar::hidden())
                .await?;
            *failures = 0;
            self.record(&Ok(())).await;
            if pass.counts != Counts::default() {
                info!(counts = %pass.counts, "mail taken in");
            }
            if token.is_cancelled() {
                break;
            }
            session = self
                .wait_for_mail(session, features, pass.seen_up_to, token)
                .await?;
            if token.is_cancelled() {
                break;
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), session.logout()).await;
        Ok(())
    }

    async fn connect(&self) -> Result<(Session, Features), FetchError> {
        let mut session = imap::connect(&self.mailbox).await?;
        let capabilities = within(session.capabilities()).await?;
        let features = Features {
            idle: capabilities.has_str("IDLE"),
            uid_move: capabilities.has_str("MOVE"),
            uidplus: capabilities.has_str("UIDPLUS"),
        };
        for folder in self.target_folders() {
            // Fails harmlessly with ALREADYEXISTS; a real problem shows up at the move.
            let _ = within(session.create(folder)).await;
        }
        Ok((session, features))
    }

    fn target_folders(&self) -> Vec<&str> {
        let mut folders = Vec::new();
        if self.mailbox.after == AfterAction::Move {
            folders.push(self.mailbox.move_to.as_str());
        }
        if !self.mailbox.quarantine_folder.is_empty() {
            folders.push(self.mailbox.quarantine_folder.as_str());
        }
        folders
    }

    /// One pass over the folder: finish old post-actions, then take in new messages.
    async fn sync(
        &self,
        session: &mut Session,
        features: Features,
        token: &CancellationToken,
        progress: &ProgressBar,
    ) -> Result<Pass, FetchError> {
        let name = self.mailbox.name.as_str();
        let selected = within(session.select(&self.mailbox.folder)).await?;
        let uidvalidity = selected.uid_validity.unwrap_or(0);
        let store = self.ingestor.store();
        let mut conn = store.acquire().await?;
        let last_uid = match store::imap::state(&mut conn, name).await? {
            Some(state) if state.uidvalidity == Some(i64::from(uidvalidity)) => {
                state.last_uid as u32
            }
            previous => {
                if let Some(old) = previous.and_then(|s| s.uidvalidity) {
                    warn!(
                        old,
                        new = uidvalidity,
                        "UIDVALIDITY changed; rescanning the folder (duplicates are skipped)"
                    );
                }
                store::imap::reset_position(&mut conn, name, uidvalidity, unix_now()).await?;
                0
            }
        };
        let pending = store::imap::pending_post_actions(&mut conn, name, uidvalidity).await?;
        drop(conn);
        if !pending.is_empty() {
            info!(
                count = pending.len(),
                "finishing post-actions left from an earlier run"
            );
            self.post_actions(session, features, uidvalidity, &pending)
                .await?;
        }

        let (uids, seen_up_to) = self.new_uids(session, uidvalidity, last_uid).await?;
        progress.set_length(uids.len() as u64);
        let mut counts = Counts::default();
        let mut done = Vec::new();
        for batch in self.batches(session, &uids).await? {
            if token.is_cancelled() {
                break;
            }
            counts = counts
                + self
                    .take_in(session, features, uidvalidity, &batch, &mut done)
                    .await?;
            progress.inc(batch.len() as u64);
            if done.len() >= POST_ACTION_CHUNK {
                self.post_actions(session, features, uidvalidity, &std::mem::take(&mut done))
                    .await?;
            }
        }
        self.post_actions(session, features, uidvalidity, &done)
            .await?;
        Ok(Pass { counts, seen_up_to })
    }

    /// UIDs to fetch: with `after = move` everything still in the folder (a message whose
    /// move failed is retried); otherwise everything above the stored position. UIDs
    /// already taken in are skipped either way. Also returns the highest UID the search
    /// saw (at least `last_uid`).
    async fn new_uids(
        &self,
        session: &mut Session,
        uidvalidity: u32,
        last_uid: u32,
    ) -> Result<(Vec<u32>, u32), FetchError> {
        let query = match self.mailbox.after {
            AfterAction::Move => "ALL".to_string(),
            AfterAction::Seen | AfterAction::None => {
                format!("UID {}:*", last_uid.saturating_add(1))
            }
        };
        let mut uids: Vec<u32> = within(session.uid_search(&query))
            .await?
            .into_iter()
            .filter(|u| self.mailbox.after == AfterAction::Move || *u > last_uid)
            .collect();
        uids.sort_unstable();
        let highest = uids.last().map_or(last_uid, |&u| u.max(last_uid));
        let mut conn = self.ingestor.store().acquire().await?;
        let seen: HashSet<u32> =
            store::imap::seen_among(&mut conn, &self.mailbox.name, uidvalidity, &uids)
                .await?
                .into_iter()
                .collect();
        uids.retain(|u| !seen.contains(u));
        Ok((uids, highest))
    }

    /// Splits UIDs into batches bounded by count and by total size (RFC822.SIZE).
    async fn batches(
        &self,
        session: &mut Session,
        uids: &[u32],
    ) -> Result<Vec<Vec<u32>>, FetchError> {
        let mut sizes = std::collections::HashMap::new();
        for chunk in uids.chunks(1000) {
            let fetches: Vec<_> = within(async {
                session
                    .uid_fetch(uid_set(chunk), "(UID RFC822.SIZE)")
                    .await?
                    .try_collect::<Vec<_>>()
                    .await
            })
            .await?;
            for fetch in fetches {
                if let Some(uid) = fetch.uid {
                    sizes.insert(uid, u64::from(fetch.size.unwrap_or(0)));
                }
            }
        }
        let mut batches: Vec<Vec<u32>> = Vec::new();
        let (mut current, mut bytes) = (Vec::new(), 0u64);
        for uid in uids {
            let size = sizes.get(uid).copied().unwrap_or(0);
            if !current.is_empty()
                && (current.len() >= self.ingestor.options().batch_messages
                    || bytes + size > BATCH_BYTES)
            {
                batches.push(std::mem::take(&mut current));
                bytes = 0;
            }
            current.push(*uid);
            bytes += size;
        }
        if !current.is_empty() {
            batches.push(current);
        }
        Ok(batches)
    }

    /// Fetch → parse → one transaction → post-actions, for one batch.
    async fn take_in(
        &self,
        session: &mut Session,
        features: Features,
        uidvalidity: u32,
        uids: &[u32],
        done: &mut Vec<(u32, bool)>,
    ) -> Result<Counts, FetchError> {
        let started = std::time::Instant::now();
        let fetched: Vec<(u32, Vec<u8>)> = within(async {
            let stream = session
                .uid_fetch(uid_set(uids), "(UID BODY.PEEK[])")
                .await?;
            let fetches: Vec<_> = stream.try_collect().await?;
            Ok::<_, async_imap::error::Error>(
                fetches
                    .into_iter()
                    .filter_map(|f| Some((f.uid?, f.body()?.to_vec())))
                    .collect(),
            )
        })
        .await?;
        crate::runtime::metrics::messages_fetched(&self.mailbox.name, fetched.len());
        let name = self.mailbox.name.clone();
        let options = self.ingestor.options().clone();
        let items: Vec<BatchItem> = tokio::task::spawn_blocking(move || {
            fetched
                .into_iter()
                .map(|(uid, raw)| BatchItem {
                    prepared: prepare(&options, &raw),
                    origin: Origin {
                        source: format!("imap:{name}/{uidvalidity}/{uid}"),
                        mailbox: Some(name.clone()),
                        imap: Some(ImapUid {
                            mailbox: name.clone(),
                            uidvalidity,
                            uid,
                        }),
                        category: None,
                        acknowledge: true,
                    },
                    raw,
                })
                .collect()
        })
        .await
        .map_err(|e| FetchError::Store(StoreError::Conflict(format!("parser task failed: {e}"))))?;

        let parsed_at = std::time::Instant::now();
        let outcomes = self.ingestor.ingest_batch(&items).await;
        let mut counts = Counts::default();
        let mut failure = None;
        for (item, outcome) in items.iter().zip(outcomes) {
            let uid = item.origin.imap.as_ref().map(|k| k.uid).unwrap_or_default();
            match outcome {
                Ok(outcome) => {
                    done.push((uid, outcome.is_quarantined()));
                    counts.record(&Ok(outcome));
                }
                Err(e) => failure = Some(e),
            }
        }
        tracing::debug!(messages = uids.len(), fetch_and_parse = ?(parsed_at - started), store = ?parsed_at.elapsed(), "batch taken in");
        if let Some(e) = failure {
            // What did commit still gets its post-action; the rest stays untouched.
            let _ = self
                .post_actions(session, features, uidvalidity, &std::mem::take(done))
                .await;
            return Err(e.into());
        }
        if let Some(&max) = uids.iter().max() {
            let mut conn = self.ingestor.store().acquire().await?;
            store::imap::advance(&mut conn, &self.mailbox.name, max, unix_now()).await?;
        }
        Ok(counts)
    }

    /// Moves or flags stored messages and moves quarantined ones, then notes it is done.
    async fn post_actions(
        &self,
        session: &mut Session,
        features: Features,
        uidvalidity: u32,
        items: &[(u32, bool)],
    ) -> Result<(), FetchError> {
        if items.is_empty() {
            return Ok(());
        }
        let stored: Vec<u32> = items.iter().filter(|(_, q)| !q).map(|(u, _)| *u).collect();
        let quarantined: Vec<u32> = items.iter().filter(|(_, q)| *q).map(|(u, _)| *u).collect();
        match self.mailbox.after {
            AfterAction::Move => {
                move_uids(session, features, &stored, &self.mailbox.move_to).await?;
            }
            AfterAction::Seen => mark_seen(session, &stored).await?,
            AfterAction::None => {}
        }
        if !self.mailbox.quarantine_folder.is_empty() {
            move_uids(
                session,
                features,
                &quarantined,
                &self.mailbox.quarantine_folder,
            )
            .await?;
        } else if self.mailbox.after == AfterAction::Seen {
            mark_seen(session, &quarantined).await?;
        }
        let uids: Vec<u32> = items.iter().map(|(u, _)| *u).collect();
        let mut conn = self.ingestor.store().acquire().await?;
        store::imap::mark_post_action_done(&mut conn, &self.mailbox.name, uidvalidity, &uids)
            .await?;
        Ok(())
    }

    /// IDLE until the server reports a change (or the refresh time passes); sleep for the
    /// poll interval where IDLE is off or unsupported. Returns at once if mail came in
    /// above `seen_up_to` while the last sync ran.
    async fn wait_for_mail(
        &self,
        mut session: Session,
        features: Features,
        seen_up_to: u32,
        token: &CancellationToken,
    ) -> Result<Session, FetchError> {
        if !(self.mailbox.idle && features.idle) {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(self.mailbox.poll_seconds)) => {}
                _ = token.cancelled() => {}
            }
            return Ok(session);
        }
        // What the server says unasked (EXISTS, EXPUNGE …) async-imap queues, 100 at most,
        // dropping the rest. During a sync nobody reads it, so now it is stale or has lost
        // entries: empty it, and ask by UID whether mail came in meanwhile.
        let queue = session.unsolicited_responses.clone();
        let exists_queued = || exists_among(std::iter::from_fn(|| queue.try_recv().ok()));
        exists_queued();
        if self.arrived_since(&mut session, seen_up_to).await? {
            debug!(seen_up_to, "mail arrived during the sync; syncing again");
            return Ok(session);
        }
        let mut idle = session.idle();
        within(idle.init()).await?;
        // An EXISTS sent with the search's reply (for mail the search just missed) or before
        // "+ idling" went to the queue, not to the IDLE stream, and will not be repeated.
        if exists_queued() {
            debug!("mail arrived before IDLE began; syncing again");
        } else {
            idle_until_news(&mut idle, token).await?;
        }
        within(idle.done()).await
    }

    /// Whether the folder holds a UID above `seen_up_to`: one `UID SEARCH`, nearly always
    /// with an empty answer.
    async fn arrived_since(
        &self,
        session: &mut Session,
        seen_up_to: u32,
    ) -> Result<bool, FetchError> {
        let query = format!("UID {}:*", seen_up_to.saturating_add(1));
        // `n:*` also matches the highest UID in the folder when it is below n.
        let found = within(session.uid_search(&query)).await?;
        Ok(found.iter().any(|&uid| uid > seen_up_to))
    }

    async fn record<T>(&self, result: &Result<T, FetchError>) {
        if result.is_err() {
            crate::runtime::metrics::imap_error(&self.mailbox.name);
        }
        let now = unix_now();
        let Ok(mut conn) = self.ingestor.store().acquire().await else {
            return;
        };
        let recorded = match result {
            Ok(_) => store::imap::record_success(&mut conn, &self.mailbox.name, now).await,
            Err(e) => {
                store::imap::record_error(&mut conn, &self.mailbox.name, &e.to_string(), now).await
            }
        };
        if let Err(e) = recorded {
            warn!(error = %e, "cannot record the mailbox state");
        }
    }
}

/// Waits in IDLE until the server sends something, the refresh time passes, or `token` is
/// cancelled.
async fn idle_until_news(
    idle: &mut Handle<Box<dyn ImapIo>>,
    token: &CancellationToken,
) -> Result<(), FetchError> {
    let (wait, stop) = idle.wait_with_timeout(IDLE_REFRESH);
    tokio::select! {
        result = tokio::time::timeout(IDLE_REFRESH, wait) => {
            if let Ok(Err(e)) = result {
                return Err(e.into());
            }
        }
        _ = token.cancelled() => {}
    }
    drop(stop);
    Ok(())
}

/// Consumes `responses`; true if one was an EXISTS (the server announcing new mail).
fn exists_among(responses: impl Iterator<Item = UnsolicitedResponse>) -> bool {
    let mut found = false;
    // To the end (not `any`): emptying the queue is half the point.
    for response in responses {
        found |= matches!(response, UnsolicitedResponse::Exists(_));
    }
    found
}

async fn move_uids(
    session: &mut Session,
    features: Features,
    uids: &[u32],
    folder: &str,
) -> Result<(), FetchError> {
    if uids.is_empty() {
        return Ok(());
    }
    let set = uid_set(uids);
    if features.uid_move {
        within(session.uid_mv(&set, folder)).await?;
        return Ok(());
    }
    within(session.uid_copy(&set, folder)).await?;
    within(async {
        session
            .uid_store(&set, "+FLAGS.SILENT (\\Deleted)")
            .await?
            .try_collect::<Vec<_>>()
            .await
    })
    .await?;
    if features.uidplus {
        within(async {
            session
                .uid_expunge(&set)
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await?;
    } else {
        within(async { session.expunge().await?.try_collect::<Vec<_>>().await }).await?;
    }
    Ok(())
}

async fn mark_seen(session: &mut Session, uids: &[u32]) -> Result<(), FetchError> {
    if uids.is_empty() {
        return Ok(());
    }
    within(async {
        session
            .uid_store(uid_set(uids), "+FLAGS.SILENT (\\Seen)")
            .await?
            .try_collect::<Vec<_>>()
            .await
    })
    .await?;
    Ok(())
}

/// Runs one IMAP exchange with [`COMMAND_TIMEOUT`].
async fn within<T>(
    exchange: impl std::future::Future<Output = Result<T, async_imap::error::Error>>,
) -> Result<T, FetchError> {
    match tokio::time::timeout(COMMAND_TIMEOUT, exchange).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(ImapError::Timeout(COMMAND_TIMEOUT).into()),
    }
}

/// 1 s, 2 s, 4 s … capped at 5 minutes, with jitter so mailboxes on one server do not
/// reconnect in lockstep.
fn backoff(failures: u32) -> Duration {
    crate::runtime::jobs::Backoff::doubling(BACKOFF_FIRST, BACKOFF_MAX).delay(failures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let first = backoff(1);
        assert!(first >= Duration::from_millis(800) && first <= Duration::from_millis(1200));
        let fourth = backoff(4);
        assert!(fourth >= Duration::from_millis(6400) && fourth <= Duration::from_millis(9600));
        assert!(backoff(40) <= Duration::from_secs(360));
    }
}
