//! IMAP bookkeeping: where each mailbox stands, and which UIDs are already taken in.

use serde::Serialize;

use super::{placeholders, Conn, Result};

/// One IMAP message: (mailbox, UIDVALIDITY, UID) identifies it for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapUid {
    pub mailbox: String,
    pub uidvalidity: u32,
    pub uid: u32,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct MailboxState {
    pub mailbox: String,
    pub uidvalidity: Option<i64>,
    pub last_uid: i64,
    pub last_success_at: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
}

const STATE_COLUMNS: &str =
    "mailbox, uidvalidity, last_uid, last_success_at, last_error, last_error_at";

pub async fn state(conn: &mut Conn, mailbox: &str) -> Result<Option<MailboxState>> {
    let sql = format!("SELECT {STATE_COLUMNS} FROM imap_state WHERE mailbox = $1");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(mailbox)
        .fetch_optional(conn)
        .await?)
}

pub async fn states(conn: &mut Conn) -> Result<Vec<MailboxState>> {
    let sql = format!("SELECT {STATE_COLUMNS} FROM imap_state ORDER BY mailbox");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(conn)
        .await?)
}

/// Starts over at a new UIDVALIDITY (or the first time): every UID is new again;
/// Message-ID and content dedup keep the rescan from doubling anything.
pub async fn reset_position(
    conn: &mut Conn,
    mailbox: &str,
    uidvalidity: u32,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO imap_state (mailbox, uidvalidity, last_uid, updated_at) VALUES ($1, $2, 0, $3)
         ON CONFLICT (mailbox) DO UPDATE SET uidvalidity = $2, last_uid = 0, updated_at = $3",
    )
    .bind(mailbox)
    .bind(i64::from(uidvalidity))
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Moves the position forward (never back).
pub async fn advance(conn: &mut Conn, mailbox: &str, last_uid: u32, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE imap_state SET last_uid = $1, updated_at = $2 WHERE mailbox = $3 AND last_uid < $1",
    )
    .bind(i64::from(last_uid))
    .bind(now)
    .bind(mailbox)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn record_success(conn: &mut Conn, mailbox: &str, now: i64) -> Result<()> {
    sqlx::query("UPDATE imap_state SET last_success_at = $1, last_error = NULL, last_error_at = NULL, updated_at = $1 WHERE mailbox = $2")
        .bind(now)
        .bind(mailbox)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn record_error(conn: &mut Conn, mailbox: &str, error: &str, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO imap_state (mailbox, last_uid, last_error, last_error_at, updated_at) VALUES ($1, 0, $2, $3, $3)
         ON CONFLICT (mailbox) DO UPDATE SET last_error = $2, last_error_at = $3, updated_at = $3",
    )
    .bind(mailbox)
    .bind(error)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records that a UID was taken in, with what it became; part of the message's transaction.
pub async fn record_seen(
    conn: &mut Conn,
    key: &ImapUid,
    outcome: &str,
    quarantined: bool,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO imap_seen (mailbox, uidvalidity, uid, outcome, quarantined, post_action_done, stored_at)
         VALUES ($1, $2, $3, $4, $5, 0, $6) ON CONFLICT (mailbox, uidvalidity, uid) DO NOTHING",
    )
    .bind(&key.mailbox)
    .bind(i64::from(key.uidvalidity))
    .bind(i64::from(key.uid))
    .bind(outcome)
    .bind(i64::from(quarantined))
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// UIDs stored whose IMAP post-action has not been confirmed: `(uid, quarantined)`.
pub async fn pending_post_actions(
    conn: &mut Conn,
    mailbox: &str,
    uidvalidity: u32,
) -> Result<Vec<(u32, bool)>> {
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT uid, quarantined FROM imap_seen WHERE mailbox = $1 AND uidvalidity = $2 AND post_action_done = 0 ORDER BY uid",
    )
    .bind(mailbox)
    .bind(i64::from(uidvalidity))
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(uid, q)| (uid as u32, q != 0))
        .collect())
}

/// Which of these UIDs are already taken in.
pub async fn seen_among(
    conn: &mut Conn,
    mailbox: &str,
    uidvalidity: u32,
    uids: &[u32],
) -> Result<Vec<u32>> {
    let mut seen = Vec::new();
    for chunk in uids.chunks(500) {
        let sql = format!(
            "SELECT uid FROM imap_seen WHERE mailbox = $1 AND uidvalidity = $2 AND uid IN ({})",
            placeholders(3, chunk.len())
        );
        let mut query = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
            .persistent(false)
            .bind(mailbox)
            .bind(i64::from(uidvalidity));
        for uid in chunk {
            query = query.bind(i64::from(*uid));
        }
        seen.extend(
            query
                .fetch_all(&mut *conn)
                .await?
                .into_iter()
                .map(|u| u as u32),
        );
    }
    Ok(seen)
}

pub async fn mark_post_action_done(
    conn: &mut Conn,
    mailbox: &str,
    uidvalidity: u32,
    uids: &[u32],
) -> Result<()> {
    for chunk in uids.chunks(500) {
        let sql = format!(
            "UPDATE imap_seen SET post_action_done = 1 WHERE mailbox = $1 AND uidvalidity = $2 AND uid IN ({})",
            placeholders(3, chunk.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .persistent(false)
            .bind(mailbox)
            .bind(i64::from(uidvalidity));
        for uid in chunk {
            query = query.bind(i64::from(*uid));
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}
