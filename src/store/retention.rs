//! Retention: the original bytes of messages on tickets closed long ago, and stored
//! content nothing refers to any more. Writes go in small batches (one short transaction
//! each), so a purge never holds the database for long.

use serde::Serialize;

use super::{placeholders, Conn, Result};

/// Tickets closed before `$1`: the ones whose originals go.
const CLOSED_BEFORE: &str = "SELECT id FROM tickets WHERE status = 'closed' AND closed_at < $1";

/// A ticket whose messages' originals would be purged.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, Serialize)]
pub struct TicketOriginals {
    pub ticket_id: i64,
    pub closed_at: Option<i64>,
    pub messages: i64,
    /// The size of those originals (some may be shared with other messages and stay).
    pub bytes: i64,
}

pub async fn tickets_with_originals(conn: &mut Conn, cutoff: i64) -> Result<Vec<TicketOriginals>> {
    Ok(sqlx::query_as(
        "SELECT t.id AS ticket_id, t.closed_at, COUNT(m.id) AS messages,
                CAST(COALESCE(SUM(r.size), 0) AS BIGINT) AS bytes
         FROM tickets t
         JOIN messages m ON m.ticket_id = t.id
         LEFT JOIN raw_messages r ON r.sha256 = m.raw_sha256
         WHERE t.status = 'closed' AND t.closed_at < $1 AND m.raw_sha256 IS NOT NULL
         GROUP BY t.id, t.closed_at
         ORDER BY t.id",
    )
    .bind(cutoff)
    .fetch_all(conn)
    .await?)
}

/// Rows and bytes: what a purge would delete of the raw messages (those only messages of
/// tickets closed before `cutoff` refer to, and those nothing refers to) and of the
/// attachment contents (those no attachment refers to).
pub async fn would_delete(conn: &mut Conn, cutoff: i64) -> Result<((i64, i64), (i64, i64))> {
    let raw = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*), CAST(COALESCE(SUM(r.size), 0) AS BIGINT) FROM raw_messages r
         WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.raw_sha256 = r.sha256
                           AND m.ticket_id NOT IN ({CLOSED_BEFORE}))
           AND NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.raw_sha256 = r.sha256)"
    )))
    .bind(cutoff)
    .fetch_one(&mut *conn)
    .await?;
    let blobs = sqlx::query_as(
        "SELECT COUNT(*), CAST(COALESCE(SUM(b.size), 0) AS BIGINT) FROM blobs b
         WHERE NOT EXISTS (SELECT 1 FROM attachments a WHERE a.sha256 = b.sha256)",
    )
    .fetch_one(conn)
    .await?;
    Ok((raw, blobs))
}

/// Up to `limit` messages whose originals go: `(message id, ticket id, raw sha256)`.
pub async fn next_originals(
    conn: &mut Conn,
    cutoff: i64,
    limit: i64,
) -> Result<Vec<(i64, i64, String)>> {
    // No ORDER BY: detached messages drop out of the condition, so each batch is simply
    // the next few, and the database can stop at the limit instead of sorting them all.
    Ok(sqlx::query_as(
        "SELECT m.id, m.ticket_id, m.raw_sha256 FROM tickets t
         JOIN messages m ON m.ticket_id = t.id
         WHERE t.status = 'closed' AND t.closed_at < $1 AND m.raw_sha256 IS NOT NULL
         LIMIT $2",
    )
    .bind(cutoff)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Detaches the originals of `ids` whose ticket is still closed before `cutoff` (a
/// ticket reopened meanwhile keeps them); returns how many were detached.
pub async fn detach_originals(conn: &mut Conn, ids: &[i64], cutoff: i64, now: i64) -> Result<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    let sql = format!(
        "UPDATE messages SET raw_sha256 = NULL, raw_purged_at = $2
         WHERE raw_sha256 IS NOT NULL AND ticket_id IN ({CLOSED_BEFORE}) AND id IN ({})",
        placeholders(3, ids.len())
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
        .persistent(false)
        .bind(cutoff)
        .bind(now);
    for id in ids {
        query = query.bind(*id);
    }
    Ok(query.execute(conn).await?.rows_affected())
}

/// Deletes those of the raw messages `sha256s` that no message and no quarantine entry
/// refers to; returns the deleted sizes.
pub async fn delete_unreferenced_raw(conn: &mut Conn, sha256s: &[String]) -> Result<Vec<i64>> {
    delete_unreferenced(
        conn,
        "raw_messages",
        "NOT EXISTS (SELECT 1 FROM messages m WHERE m.raw_sha256 = raw_messages.sha256)
         AND NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.raw_sha256 = raw_messages.sha256)",
        sha256s,
    )
    .await
}

/// Deletes those of the attachment contents `sha256s` that no attachment refers to.
pub async fn delete_unreferenced_blobs(conn: &mut Conn, sha256s: &[String]) -> Result<Vec<i64>> {
    delete_unreferenced(
        conn,
        "blobs",
        "NOT EXISTS (SELECT 1 FROM attachments a WHERE a.sha256 = blobs.sha256)",
        sha256s,
    )
    .await
}

async fn delete_unreferenced(
    conn: &mut Conn,
    table: &str,
    unreferenced: &str,
    sha256s: &[String],
) -> Result<Vec<i64>> {
    if sha256s.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "DELETE FROM {table} WHERE sha256 IN ({}) AND {unreferenced} RETURNING size",
        placeholders(1, sha256s.len())
    );
    let mut query = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).persistent(false);
    for sha in sha256s {
        query = query.bind(sha.as_str());
    }
    Ok(query.fetch_all(conn).await?)
}

/// The next `limit` keys of `raw_messages` or `blobs` after `after`: the orphan sweep
/// walks the table in pages.
pub async fn keys_after(
    conn: &mut Conn,
    table: Table,
    after: &str,
    limit: i64,
) -> Result<Vec<String>> {
    let sql = format!(
        "SELECT sha256 FROM {} WHERE sha256 > $1 ORDER BY sha256 LIMIT $2",
        table.name()
    );
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(after)
        .bind(limit)
        .fetch_all(conn)
        .await?)
}

#[derive(Debug, Clone, Copy)]
pub enum Table {
    Raw,
    Blobs,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Raw => "raw_messages",
            Table::Blobs => "blobs",
        }
    }
}
