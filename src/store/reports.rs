//! The facts reports are computed from, for one period `[start, end)` (Unix seconds),
//! grouped and counted in SQL so that a few hundred rows cross to Rust rather than one
//! per ticket (at 100,000 tickets the per-row cost of the driver was most of a report).
//! Durations travel per group as one comma-separated list (`string_agg`, which SQLite
//! has since 3.44) so that the reports service can take exact percentiles. "Not merged"
//! is written `COALESCE(merged_into_id, 0) = 0` so that no planner scans the (nearly
//! all-NULL) merged index instead of the time index (SQLite without statistics did).

use super::{Conn, Result};

/// Tickets (or events) of one category, mailbox and staff member: how many, and for
/// the queries that measure time, each one's duration in seconds.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct Group {
    pub category: String,
    pub mailbox: Option<String>,
    /// The assignee, or for first responses the responder.
    pub staff_id: Option<i64>,
    pub count: i64,
    /// Comma-separated seconds; `None` when the query measures no time.
    pub durations: Option<String>,
}

impl Group {
    /// The durations, negative ones (clock skew between mail and server) as zero.
    pub fn durations(&self) -> impl Iterator<Item = i64> + '_ {
        self.durations
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .filter_map(|d| d.trim().parse::<i64>().ok())
            .map(|d| d.max(0))
    }
}

/// How many tickets fell on one day (days since 1970-01-01, UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct DayCount {
    pub day: i64,
    pub count: i64,
}

/// How many tickets were created in one hour of one weekday (0 = Monday), UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct HourCount {
    pub weekday: i64,
    pub hour: i64,
    pub count: i64,
}

/// Tickets created in the period (not merged into another: it counts once, as that
/// one), by assignee.
pub async fn created(conn: &mut Conn, start: i64, end: i64) -> Result<Vec<Group>> {
    Ok(sqlx::query_as(
        "SELECT category, mailbox, assignee_id AS staff_id, COUNT(*) AS count,
             CAST(NULL AS TEXT) AS durations
         FROM tickets WHERE created_at >= $1 AND created_at < $2 AND COALESCE(merged_into_id, 0) = 0
         GROUP BY category, mailbox, assignee_id",
    )
    .bind(start)
    .bind(end)
    .fetch_all(conn)
    .await?)
}

/// Time from creation to the first staff response, of tickets created in the period,
/// by responder.
pub async fn first_responses(conn: &mut Conn, start: i64, end: i64) -> Result<Vec<Group>> {
    Ok(sqlx::query_as(
        "SELECT category, mailbox, first_responder_id AS staff_id, COUNT(*) AS count,
             string_agg(CAST(first_response_at - created_at AS TEXT), ',') AS durations
         FROM tickets WHERE created_at >= $1 AND created_at < $2 AND COALESCE(merged_into_id, 0) = 0
             AND first_response_at IS NOT NULL
         GROUP BY category, mailbox, first_responder_id",
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
/// (A macro, so that the queries built on it stay `&'static str` for sqlx.)
macro_rules! resolved_tickets {
    () => {
        "SELECT created_at, resolved_at AS done_at, category, mailbox, assignee_id
    FROM tickets
    WHERE resolved_at >= $1 AND resolved_at < $2 AND COALESCE(merged_into_id, 0) = 0
    UNION ALL
    SELECT created_at, closed_at AS done_at, category, mailbox, assignee_id
    FROM tickets
    WHERE closed_at >= $1 AND closed_at < $2 AND +resolved_at IS NULL
      AND COALESCE(merged_into_id, 0) = 0"
    };
}

/// Tickets resolved in the period and the time each took, by assignee.
pub async fn resolved(conn: &mut Conn, start: i64, end: i64) -> Result<Vec<Group>> {
    Ok(sqlx::query_as(concat!(
        "SELECT category, mailbox, assignee_id AS staff_id, COUNT(*) AS count,
             string_agg(CAST(done_at - created_at AS TEXT), ',') AS durations
         FROM (",
        resolved_tickets!(),
        ") AS done GROUP BY category, mailbox, assignee_id"
    ))
    .bind(start)
    .bind(end)
    .fetch_all(conn)
    .await?)
}

/// Reopens in the period (a status change from resolved or closed back to work), by
/// the ticket's assignee.
pub async fn reopened(conn: &mut Conn, start: i64, end: i64) -> Result<Vec<Group>> {
    Ok(sqlx::query_as(
        "SELECT t.category, t.mailbox, t.assignee_id AS staff_id, COUNT(*) AS count,
             CAST(NULL AS TEXT) AS durations
         FROM ticket_events e JOIN tickets t ON t.id = e.ticket_id
         WHERE e.field = 'status' AND e.created_at >= $1 AND e.created_at < $2
           AND e.old_value IN ('resolved', 'closed')
           AND e.new_value IN ('open', 'in_progress', 'waiting')
         GROUP BY t.category, t.mailbox, t.assignee_id",
    )
    .bind(start)
    .bind(end)
    .fetch_all(conn)
    .await?)
}

/// Tickets created per day of the period.
pub async fn created_per_day(conn: &mut Conn, start: i64, end: i64) -> Result<Vec<DayCount>> {
    Ok(sqlx::query_as(
        "SELECT created_at / 86400 AS day, COUNT(*) AS count
         FROM tickets WHERE created_at >= $1 AND created_at < $2 AND COALESCE(merged_into_id, 0) = 0
         GROUP BY created_at / 86400",
    )
    .bind(start)
    .bind(end)
    .fetch_all(conn)
    .await?)
}

/// Tickets resolved per day of the period.
pub async fn resolved_per_day(conn: &mut Conn, start: i64, end: i64) -> Result<Vec<DayCount>> {
    Ok(sqlx::query_as(concat!(
        "SELECT done_at / 86400 AS day, COUNT(*) AS count FROM (",
        resolved_tickets!(),
        ") AS done GROUP BY done_at / 86400"
    ))
    .bind(start)
    .bind(end)
    .fetch_all(conn)
    .await?)
}

/// Tickets created in the period per weekday and hour (1970-01-01 was a Thursday).
pub async fn created_per_hour(conn: &mut Conn, start: i64, end: i64) -> Result<Vec<HourCount>> {
    Ok(sqlx::query_as(
        "SELECT (created_at / 86400 + 3) % 7 AS weekday, created_at % 86400 / 3600 AS hour,
             COUNT(*) AS count
         FROM tickets WHERE created_at >= $1 AND created_at < $2 AND COALESCE(merged_into_id, 0) = 0
         GROUP BY (created_at / 86400 + 3) % 7, created_at % 86400 / 3600",
    )
    .bind(start)
    .bind(end)
    .fetch_all(conn)
    .await?)
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

/// The backlog as it stands at `now`, by category, mailbox and assignee. Grouped by
/// status first, in the order of its index, so the groups stream out of the index
/// without a sort (grouped by the rest alone, SQLite sorted every open ticket and
/// spilled to a temporary file); the reports service (`backlog`) adds the statuses up.
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
