//! The outbox worker: claims due mail, hands it to the SMTP server, retries with backoff,
//! fails for good on 5xx or after `max_attempts`.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::{OutboundConfig, SmtpConfig};
use crate::store::jobs::Finish;
use crate::store::{outbox, unix_now, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("SMTP configuration: {0}")]
    Config(String),
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// Counts of one worker pass.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SendReport {
    pub sent: u64,
    pub retried: u64,
    pub failed: u64,
}

const CLAIM_BATCH: i64 = 50;
const IDLE_POLL: Duration = Duration::from_secs(1);
const RETRY_CAP: Duration = Duration::from_secs(3600);

pub struct OutboxWorker {
    store: Store,
    /// Rung after a commit that queued mail (a portal reply): send now, not at the poll.
    wake: std::sync::Arc<tokio::sync::Notify>,
    smtp: crate::outbound::smtp::SmtpClient,
    max_attempts: u32,
    retry_seconds: u64,
    /// How long a claimed mail is ours before another worker may take it over (a crash).
    lease_seconds: i64,
}

impl OutboxWorker {
    pub fn new(
        store: Store,
        smtp: &SmtpConfig,
        limits: &OutboundConfig,
    ) -> Result<Self, OutboxError> {
        Ok(OutboxWorker {
            store,
            wake: Default::default(),
            smtp: crate::outbound::smtp::SmtpClient::new(smtp)
                .map_err(|e| OutboxError::Config(e.to_string()))?,
            max_attempts: limits.max_attempts,
            retry_seconds: limits.retry_seconds,
            lease_seconds: i64::from(limits.claim_lease_seconds),
        })
    }

    /// Wakes the worker whenever `wake` is notified, besides its poll.
    pub fn woken_by(mut self, wake: std::sync::Arc<tokio::sync::Notify>) -> Self {
        self.wake = wake;
        self
    }

    /// Sends what is due, once (`run` loops over it; tests call it directly).
    pub async fn run_once(&self) -> Result<SendReport, OutboxError> {
        let mut report = SendReport::default();
        // Only what was due when the pass began: a mail retried during the pass waits.
        let pass_started = unix_now();
        loop {
            let claimed = {
                let mut conn = self.store.acquire().await?;
                outbox::claim_due(
                    &mut conn,
                    self.store.backend(),
                    pass_started,
                    self.lease_seconds,
                    CLAIM_BATCH,
                )
                .await?
            };
            if claimed.is_empty() {
                return Ok(report);
            }
            for mail in claimed {
                self.send(&mail, &mut report).await?;
            }
        }
    }

    async fn send(
        &self,
        mail: &outbox::Claimed,
        report: &mut SendReport,
    ) -> Result<(), OutboxError> {
        let envelope = match envelope(&mail.envelope_from, &mail.recipient) {
            Ok(envelope) => envelope,
            Err(e) => {
                let mut conn = self.store.acquire().await?;
                return fail_for_good(&mut conn, mail, &e, report).await;
            }
        };
        {
            let mut conn = self.store.acquire().await?;
            let ours = outbox::renew_claim(
                &mut conn,
                mail.id,
                mail.attempts,
                unix_now(),
                self.lease_seconds,
            )
            .await?;
            if !ours {
                info!(
                    outbox_id = mail.id,
                    "mail taken over by another worker; skipped"
                );
                return Ok(());
            }
        }
        let result = self.smtp.send(&envelope, &mail.raw).await;
        let mut conn = self.store.acquire().await?;
        match result {
            Ok(_) => {
                outbox::finish(&mut conn, mail, Finish::Done { status: None }, unix_now()).await?;
                crate::runtime::metrics::outbox_sent(since_commit(mail.created_at));
                info!(outbox_id = mail.id, ticket_id = mail.ticket_id, recipient = %mail.recipient, "mail sent");
                report.sent += 1;
            }
            Err(e) if e.is_permanent() || mail.attempts >= i64::from(self.max_attempts) => {
                fail_for_good(&mut conn, mail, &e.to_string(), report).await?;
            }
            Err(e) => {
                let delay = retry_delay(self.retry_seconds, mail.attempts as u32);
                warn!(outbox_id = mail.id, ticket_id = mail.ticket_id, recipient = %mail.recipient, error = %e, retry_in = ?delay, "mail not sent; will retry");
                let now = unix_now();
                let retry = Finish::Retry {
                    status: None,
                    error: &e.to_string(),
                    at: now + (delay.as_secs_f64().ceil() as i64).max(1),
                };
                outbox::finish(&mut conn, mail, retry, now).await?;
                crate::runtime::metrics::get().outbox_retries.inc();
                report.retried += 1;
            }
        }
        Ok(())
    }

    /// The daemon loop: send what is due, then look again every second.
    #[tracing::instrument(name = "outbox", skip_all)]
    pub async fn run(self, token: CancellationToken) {
        while !token.is_cancelled() {
            if let Err(e) = self.run_once().await {
                warn!(error = %e, "outbox pass failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(IDLE_POLL) => {}
                _ = self.wake.notified() => {}
                _ = token.cancelled() => {}
            }
        }
        info!("outbox stopped");
    }
}

/// Gives a mail up: marked failed on its ticket, logged and counted once, whether its
/// address was unusable or the SMTP server refused it for good.
async fn fail_for_good(
    conn: &mut crate::store::Conn,
    mail: &outbox::Claimed,
    reason: &str,
    report: &mut SendReport,
) -> Result<(), OutboxError> {
    warn!(outbox_id = mail.id, ticket_id = mail.ticket_id, recipient = %mail.recipient, error = %reason, "mail failed for good");
    let dead = Finish::Dead {
        status: None,
        error: reason,
    };
    outbox::finish(conn, mail, dead, unix_now()).await?;
    crate::runtime::metrics::get().outbox_failed.inc();
    report.failed += 1;
    Ok(())
}

/// How long ago a mail was committed to the outbox (`created_at` is in whole seconds).
fn since_commit(created_at: i64) -> Duration {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    now.saturating_sub(Duration::from_secs(created_at.max(0) as u64))
}

fn envelope(from: &str, to: &str) -> Result<lettre::address::Envelope, String> {
    let from = from
        .parse()
        .map_err(|e| format!("bad envelope sender {from:?}: {e}"))?;
    let to = to
        .parse()
        .map_err(|e| format!("bad recipient {to:?}: {e}"))?;
    lettre::address::Envelope::new(Some(from), vec![to]).map_err(|e| e.to_string())
}

/// `retry_seconds`, doubling per attempt, capped at an hour, jittered.
fn retry_delay(retry_seconds: u64, attempts: u32) -> Duration {
    crate::runtime::jobs::Backoff::doubling(Duration::from_secs(retry_seconds.max(1)), RETRY_CAP)
        .delay(attempts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_and_cap() {
        let first = retry_delay(30, 1);
        assert!(first >= Duration::from_secs(24) && first <= Duration::from_secs(36));
        assert!(retry_delay(30, 3) >= Duration::from_secs(96));
        assert!(retry_delay(30, 30) <= Duration::from_secs(4320));
    }
}
