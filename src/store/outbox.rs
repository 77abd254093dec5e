//! The outbox: queued mail, claimed by one worker at a time, retried, sent or failed.

use serde::Serialize;

use super::jobs::{self, JobTable};
use super::{Backend, Conn, Result};

pub struct NewMail<'a> {
    pub ticket_id: Option<i64>,
    pub message_id: Option<i64>,
    pub kind: &'a str,
    pub recipient: &'a str,
    pub envelope_from: &'a str,
    pub message_id_header: &'a str,
    pub raw: &'a [u8],
}

pub async fn enqueue(conn: &mut Conn, mail: &NewMail<'_>, now: i64) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO outbox (ticket_id, message_id, kind, recipient, envelope_from, message_id_header, raw,
             status, attempts, next_attempt_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', 0, $8, $8) RETURNING id",
    )
    .bind(mail.ticket_id)
    .bind(mail.message_id)
    .bind(mail.kind)
    .bind(mail.recipient)
    .bind(mail.envelope_from)
    .bind(mail.message_id_header)
    .bind(mail.raw)
    .bind(now)
    .fetch_one(conn)
    .await?)
}

/// A mail that could not be composed: recorded as failed with the reason, so the ticket
/// shows it like any other failed delivery.
pub struct FailedMail<'a> {
    pub ticket_id: Option<i64>,
    pub kind: &'a str,
    pub recipient: &'a str,
    pub envelope_from: &'a str,
    pub reason: &'a str,
}

pub async fn record_failed(conn: &mut Conn, mail: &FailedMail<'_>, now: i64) -> Result<i64> {
    let empty: &[u8] = &[];
    Ok(sqlx::query_scalar(
        "INSERT INTO outbox (ticket_id, message_id, kind, recipient, envelope_from, message_id_header, raw,
             status, attempts, next_attempt_at, last_error, created_at)
         VALUES ($1, NULL, $2, $3, $4, '', $5, 'failed', 0, $6, $7, $6) RETURNING id",
    )
    .bind(mail.ticket_id)
    .bind(mail.kind)
    .bind(mail.recipient)
    .bind(mail.envelope_from)
    .bind(empty)
    .bind(now)
    .bind(mail.reason)
    .fetch_one(conn)
    .await?)
}

/// The recipients of the mails we sent with these Message-IDs (bounce checks).
pub async fn recipients_of(conn: &mut Conn, message_ids: &[&str]) -> Result<Vec<String>> {
    if message_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT DISTINCT recipient FROM outbox WHERE message_id_header IN ({})",
        super::placeholders(1, message_ids.len())
    );
    let mut query = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).persistent(false);
    for id in message_ids {
        query = query.bind(*id);
    }
    Ok(query.fetch_all(conn).await?)
}

/// How many mails (of `kind`, or any) went to `recipient` since `since`.
pub async fn count_recent(
    conn: &mut Conn,
    recipient: &str,
    kind: Option<&str>,
    since: i64,
) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM outbox WHERE recipient = $1 AND created_at >= $2 AND ($3 = '' OR kind = $3)",
    )
    .bind(recipient)
    .bind(since)
    .bind(kind.unwrap_or(""))
    .fetch_one(conn)
    .await?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub id: i64,
    pub ticket_id: Option<i64>,
    pub recipient: String,
    pub envelope_from: String,
    pub raw: Vec<u8>,
    pub attempts: i64,
    /// When the mail was queued (its transaction's time): delivery latency.
    pub created_at: i64,
}

/// Mail as a kind of job: queued, then sending (claimed), then sent or failed.
pub const JOBS: JobTable = JobTable {
    table: "outbox",
    state: "status",
    pending: "queued",
    running: "sending",
    done: "sent",
    dead: "failed",
    lease: "locked_until",
    done_at: "sent_at",
    status: None,
    join: "",
    claimable: "",
    returning: "id, ticket_id, recipient, envelope_from, raw, attempts, created_at",
};

/// Claims up to `limit` due mails for `lease` seconds: queued ones whose time has come,
/// and ones stuck in `sending` whose lease ran out (the worker died mid-send).
pub async fn claim_due(
    conn: &mut Conn,
    backend: Backend,
    now: i64,
    lease: i64,
    limit: i64,
) -> Result<Vec<Claimed>> {
    let mut claimed: Vec<Claimed> = jobs::claim(conn, backend, &JOBS, now, lease, limit).await?;
    claimed.sort_by_key(|c| c.id);
    Ok(claimed)
}

/// Extends a claim just before its mail goes to SMTP, if it is still ours: `attempts`
/// counts claims, so a changed count means the lease ran out and another worker took the
/// mail over (then it is theirs to send, and we skip it). Claiming a batch with one long
/// lease made a crashed instance's whole batch wait out the lease; renewing mail by mail
/// keeps the lease short.
pub async fn renew_claim(
    conn: &mut Conn,
    id: i64,
    attempts: i64,
    now: i64,
    lease: i64,
) -> Result<bool> {
    jobs::renew(conn, &JOBS, id, attempts, now, lease).await
}

/// Records how sending a claimed mail ended; `false` if another worker took it over.
pub async fn finish(
    conn: &mut Conn,
    mail: &Claimed,
    outcome: jobs::Finish<'_>,
    now: i64,
) -> Result<bool> {
    jobs::finish(conn, &JOBS, mail.id, mail.attempts, outcome, now).await
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize, utoipa::ToSchema)]
pub struct OutboxEntry {
    pub id: i64,
    pub kind: String,
    pub recipient: String,
    pub message_id_header: String,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

pub async fn for_ticket(conn: &mut Conn, ticket_id: i64) -> Result<Vec<OutboxEntry>> {
    Ok(sqlx::query_as(
        "SELECT id, kind, recipient, message_id_header, status, attempts, last_error, created_at, sent_at
         FROM outbox WHERE ticket_id = $1 ORDER BY id",
    )
    .bind(ticket_id)
    .fetch_all(conn)
    .await?)
}

/// Mails still to send whose time was before `before` (a worker that is not moving).
pub async fn count_overdue(conn: &mut Conn, before: i64) -> Result<i64> {
    jobs::count_overdue(conn, &JOBS, before).await
}

pub async fn count_by_status(conn: &mut Conn, status: &str) -> Result<i64> {
    jobs::count_in_state(conn, &JOBS, status).await
}

/// Suppresses mail to `address` until `until` (a hard bounce); a later bounce extends it.
pub async fn suppress(
    conn: &mut Conn,
    address: &str,
    reason: &str,
    until: i64,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO suppressions (address, reason, until, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (address) DO UPDATE SET reason = $2, until = $3",
    )
    .bind(address)
    .bind(reason)
    .bind(until)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn is_suppressed(conn: &mut Conn, address: &str, now: i64) -> Result<bool> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT until FROM suppressions WHERE address = $1 AND until > $2")
            .bind(address)
            .bind(now)
            .fetch_optional(conn)
            .await?;
    Ok(found.is_some())
}
