//! Messages that could not become ticket messages, kept with their raw bytes and reason.

use serde::Serialize;

use super::{raw, Conn, Result, StoreError};

#[derive(Debug, Clone, sqlx::FromRow, Serialize, utoipa::ToSchema)]
#[schema(as = QuarantineEntry)]
pub struct Entry {
    pub id: i64,
    pub raw_sha256: String,
    pub size: i64,
    pub reason: String,
    pub source: String,
    pub mailbox: Option<String>,
    pub created_at: i64,
    pub retried_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub resolution: Option<String>,
}

const COLUMNS: &str = "id, raw_sha256, size, reason, source, mailbox, created_at, retried_at, resolved_at, resolution";

pub struct NewEntry<'a> {
    pub raw_sha256: &'a str,
    /// `mail::hash::content_sha256_hex` of the raw message.
    pub content_sha256: &'a str,
    pub raw: &'a [u8],
    pub reason: &'a str,
    pub source: &'a str,
    pub mailbox: Option<&'a str>,
}

/// The open entry for this raw message, if it is already quarantined: the same bytes,
/// or the same content as another way in delivered it (other line endings, trace fields).
pub async fn find_open(
    conn: &mut Conn,
    raw_sha256: &str,
    content_sha256: &str,
) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM quarantine
         WHERE (raw_sha256 = $1 OR content_sha256 = $2) AND resolved_at IS NULL
         ORDER BY id LIMIT 1",
    )
    .bind(raw_sha256)
    .bind(content_sha256)
    .fetch_optional(conn)
    .await?)
}

/// Stores the raw message and the entry; returns the new entry's id.
pub async fn insert(conn: &mut Conn, entry: &NewEntry<'_>, now: i64) -> Result<i64> {
    raw::insert_raw(&mut *conn, entry.raw_sha256, entry.raw, now).await?;
    Ok(sqlx::query_scalar(
        "INSERT INTO quarantine (raw_sha256, size, reason, source, mailbox, created_at, content_sha256)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(entry.raw_sha256)
    .bind(entry.raw.len() as i64)
    .bind(entry.reason)
    .bind(entry.source)
    .bind(entry.mailbox)
    .bind(now)
    .bind(entry.content_sha256)
    .fetch_one(conn)
    .await?)
}

pub async fn get(conn: &mut Conn, id: i64) -> Result<Entry> {
    let sql = format!("SELECT {COLUMNS} FROM quarantine WHERE id = $1");
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("quarantine entry {id}")))
}

pub async fn list(conn: &mut Conn, include_resolved: bool) -> Result<Vec<Entry>> {
    let filter = if include_resolved {
        ""
    } else {
        "WHERE resolved_at IS NULL"
    };
    let sql = format!("SELECT {COLUMNS} FROM quarantine {filter} ORDER BY id");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(conn)
        .await?)
}

pub async fn mark_resolved(conn: &mut Conn, id: i64, resolution: &str, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE quarantine SET resolved_at = $1, retried_at = $1, resolution = $2 WHERE id = $3",
    )
    .bind(now)
    .bind(resolution)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// A retry that failed again: the entry stays open with the latest reason.
pub async fn record_failed_retry(conn: &mut Conn, id: i64, reason: &str, now: i64) -> Result<()> {
    sqlx::query("UPDATE quarantine SET retried_at = $1, reason = $2 WHERE id = $3")
        .bind(now)
        .bind(reason)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn count_open(conn: &mut Conn) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM quarantine WHERE resolved_at IS NULL")
            .fetch_one(conn)
            .await?,
    )
}

/// Open entries from `after_id` on (at most `limit`), for recomputing their content
/// hashes: `(id, raw_sha256)`.
pub async fn open_after(conn: &mut Conn, after_id: i64, limit: i64) -> Result<Vec<(i64, String)>> {
    Ok(sqlx::query_as(
        "SELECT id, raw_sha256 FROM quarantine
         WHERE resolved_at IS NULL AND id > $1 ORDER BY id LIMIT $2",
    )
    .bind(after_id)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

pub async fn set_content_sha256(conn: &mut Conn, id: i64, content_sha256: &str) -> Result<()> {
    sqlx::query("UPDATE quarantine SET content_sha256 = $1 WHERE id = $2")
        .bind(content_sha256)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}
