//! The facts reports are computed from, for one period `[start, end)` (Unix seconds).
//! Each query reads one narrow row per ticket (or event) through an index on the time
//! it scans; counting, percentiles and buckets happen in [`crate::reports`]. "Not merged"
//! is written `COALESCE(merged_into_id, 0) = 0` so that no planner scans the (nearly
//! all-NULL) merged index instead of the time index (SQLite without statistics did).

use super::{Conn, Result};

/// A ticket created in the period (not merged into another: it counts once, as that
/// one): who it belongs to and when it was first answered.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Created {
    pub created_at: i64,
    pub category: String,
    pub mailbox: Option<String>,
    pub assignee_id: Option<i64>,
    pub first_response_at: Option<i64>,
    pub first_responder_id: Option<i64>,
}

/// A ticket resolved (or closed without being resolved) in the period, not merged away.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Resolved {
    pub created_at: i64,
    pub done_at: i64,
    pub category: String,
    pub mailbox: Option<String>,
    pub assignee_id: Option<i64>,
}

/// A reopen in the period: a status change from resolved or closed back to work.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Reopened {
    pub created_at: i64,
    pub category: String,
    pub mailbox: Option<String>,
    pub assignee_id: Option<i64>,
}

/// Open work (not resolved, closed or merged) of one group, counted by age.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct Backlog {
    pub category: String,
    pub mailbox: Option<String>,
    pub assignee_id: Option<i64>,
    pub under_1d: i64,
    pub d1_3: i64,
    pub d3_7: i64,
    pub w1_4: i64,
    pub over_4w: i64,
}

pub async fn created(conn: &mut Conn, start: i64, end: i64) -> Result<Vec<Created>> {
    Ok(sqlx::query_as(
        "SELECT created_at, category, mailbox, assignee_id, first_response_at, first_responder_id
         FROM tickets WHERE created_at >= $1 AND created_at < $2 AND COALESCE(merged_into_id, 0) = 0",
    )
    .bind(start)
    .bind(end)
    .fetch_all(conn)
    .await?)
}

/// Resolved means the latest resolution: a reopened ticket's earlier one no longer
/// counts (`resolved_at` is cleared on reopening). A ticket closed without being
/// resolved counts from its closing. Two scans, each through its own time index (one
/// `OR` let SQLite read every unresolved ticket); `+resolved_at` keeps SQLite from
/// choosing the resolved index for the `IS NULL` test, which matches most open work.
pub async fn resolved(conn: &mut Conn, start: i64, end: i64) -> Result<Vec<Resolved>> {
    Ok(sqlx::query_as(
        "SELECT created_at, resolved_at AS done_at, category, mailbox, assignee_id
         FROM tickets
         WHERE resolved_at >= $1 AND resolved_at < $2 AND COALESCE(merged_into_id, 0) = 0
         UNION ALL
         SELECT created_at, closed_at AS done_at, category, mailbox, assignee_id
         FROM tickets
         WHERE closed_at >= $1 AND closed_at < $2 AND +resolved_at IS NULL
           AND COALESCE(merged_into_id, 0) = 0",
    )
    .bind(start)
    .bind(end)
    .fetch_all(conn)
    .await?)
}

pub async fn reopened(conn: &mut Conn, start: i64, end: i64) -> Result<Vec<Reopened>> {
    Ok(sqlx::query_as(
        "SELECT e.created_at, t.category, t.mailbox, t.assignee_id
         FROM ticket_events e JOIN tickets t ON t.id = e.ticket_id
         WHERE e.field = 'status' AND e.created_at >= $1 AND e.created_at < $2
           AND e.old_value IN ('resolved', 'closed')
           AND e.new_value IN ('open', 'in_progress', 'waiting')",
    )
    .bind(start)
    .bind(end)
    .fetch_all(conn)
    .await?)
}

/// The backlog as it stands at `now`, by category, mailbox and assignee. Grouped by
/// status first, in the order of its index, so the groups stream out of the index
/// without a sort (grouped by the rest alone, SQLite sorted every open ticket and
/// spilled to a temporary file); [`crate::reports::backlog`] adds the statuses up.
pub async fn backlog(conn: &mut Conn, now: i64) -> Result<Vec<Backlog>> {
    const DAY: i64 = 86_400;
    Ok(sqlx::query_as(
        "SELECT category, mailbox, assignee_id,
             COUNT(CASE WHEN created_at > $1 THEN 1 END) AS under_1d,
             COUNT(CASE WHEN created_at <= $1 AND created_at > $2 THEN 1 END) AS d1_3,
             COUNT(CASE WHEN created_at <= $2 AND created_at > $3 THEN 1 END) AS d3_7,
             COUNT(CASE WHEN created_at <= $3 AND created_at > $4 THEN 1 END) AS w1_4,
             COUNT(CASE WHEN created_at <= $4 THEN 1 END) AS over_4w
         FROM tickets
         WHERE COALESCE(merged_into_id, 0) = 0 AND status IN ('open', 'in_progress', 'waiting')
         GROUP BY status, category, mailbox, assignee_id",
    )
    .bind(now - DAY)
    .bind(now - 3 * DAY)
    .bind(now - 7 * DAY)
    .bind(now - 28 * DAY)
    .fetch_all(conn)
    .await?)
}
