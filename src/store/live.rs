//! The change feed behind live updates on SQLite: rows written by triggers (migration
//! 0012), read after a cursor and pruned. PostgreSQL uses LISTEN/NOTIFY instead
//! (`crate::runtime::live`), so these queries run on SQLite only.

use super::{Conn, Result};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Row {
    pub id: i64,
    pub kind: String,
    pub ticket_id: Option<i64>,
    pub task_id: Option<i64>,
}

/// The newest row's id: where a new reader starts (it shows no history).
pub async fn last_id(conn: &mut Conn) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM live_events")
            .fetch_one(conn)
            .await?,
    )
}

/// Rows after `cursor`, oldest first, at most `limit`.
pub async fn after(conn: &mut Conn, cursor: i64, limit: i64) -> Result<Vec<Row>> {
    Ok(sqlx::query_as(
        "SELECT id, kind, ticket_id, task_id FROM live_events WHERE id > $1 ORDER BY id LIMIT $2",
    )
    .bind(cursor)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Drops rows older than `before` (every reader has long passed them), but never the
/// newest: SQLite hands out the next id after the largest one left, so keeping it means
/// an id is never reused under a reader's cursor.
pub async fn prune(conn: &mut Conn, before: i64) -> Result<u64> {
    Ok(sqlx::query(
        "DELETE FROM live_events WHERE at < $1 AND id < (SELECT MAX(id) FROM live_events)",
    )
    .bind(before)
    .execute(conn)
    .await?
    .rows_affected())
}
