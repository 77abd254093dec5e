//! The durable job queue: a job is a row, claimed by one worker at a time for a lease,
//! then finished as done, retried at a time, or dead (given up). Each kind of job keeps
//! its own table (the outbox, webhook deliveries); a [`JobTable`] names its columns and
//! states, and every statement here is built from those static names only.
//!
//! A claim counts in `attempts`: a job is still ours while its count is what our claim
//! returned. A worker that dies leaves its jobs to be taken over when the lease runs out.
//! On PostgreSQL `SKIP LOCKED` lets several instances claim disjoint rows; on SQLite the
//! claim is one write under the database's write lock.
//!
//! A timer (run at a time, once across instances) is a job whose `next_attempt_at` is
//! the time: a table with the same columns and a `JobTable` describing it is claimed,
//! renewed and finished by the functions here, with no new claim statement.

use std::sync::Arc;

use tokio::sync::Notify;

use super::{Backend, Conn, Result};

/// One kind of job: its table, columns and state names.
#[derive(Debug)]
pub struct JobTable {
    pub table: &'static str,
    /// The column holding the state.
    pub state: &'static str,
    /// Waiting for its time (`next_attempt_at`).
    pub pending: &'static str,
    /// Claimed by a worker. The same as `pending` for a kind whose claim is only a lease.
    pub running: &'static str,
    pub done: &'static str,
    /// Given up: kept for people to look at, and to requeue.
    pub dead: &'static str,
    /// Until when a claim holds (NULL when not claimed).
    pub lease: &'static str,
    /// When the job was done.
    pub done_at: &'static str,
    /// Where an outcome's status code is kept, if the kind has one.
    pub status: Option<&'static str>,
    /// Joined into the claim's choice of rows (aliased `j` for the job table).
    pub join: &'static str,
    /// A further condition on the rows a claim may take (`AND …`).
    pub claimable: &'static str,
    /// The columns a claim returns (the job's payload, `id` and `attempts` among them).
    pub returning: &'static str,
}

/// What became of one run of a job.
#[derive(Debug, Clone, Copy)]
pub enum Finish<'a> {
    Done {
        status: Option<i64>,
    },
    /// Try again at `at`.
    Retry {
        status: Option<i64>,
        error: &'a str,
        at: i64,
    },
    /// Given up.
    Dead {
        status: Option<i64>,
        error: &'a str,
    },
}

/// Claims up to `limit` jobs due at `now` for `lease` seconds: pending ones whose time
/// has come and whose earlier claim (if any) ran out, and running ones whose lease ran
/// out (their worker died). Returns the kind's `returning` columns, in id order.
pub async fn claim<T>(
    conn: &mut Conn,
    backend: Backend,
    kind: &JobTable,
    now: i64,
    lease: i64,
    limit: i64,
) -> Result<Vec<T>>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
{
    let JobTable {
        table,
        state,
        pending,
        running,
        lease: until,
        join,
        claimable,
        returning,
        ..
    } = kind;
    let lock = match backend {
        Backend::Postgres => "FOR UPDATE OF j SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let due = if pending == running {
        format!(
            "j.{state} = '{pending}' AND j.next_attempt_at <= $2 AND (j.{until} IS NULL OR j.{until} < $2)"
        )
    } else {
        format!(
            "((j.{state} = '{pending}' AND j.next_attempt_at <= $2) OR (j.{state} = '{running}' AND j.{until} < $2))"
        )
    };
    let sql = format!(
        "UPDATE {table} SET {state} = '{running}', {until} = $1, attempts = attempts + 1
         WHERE id IN (SELECT j.id FROM {table} j {join}
                      WHERE {due} {claimable}
                      ORDER BY j.id LIMIT $3 {lock})
         RETURNING {returning}"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(now + lease)
        .bind(now)
        .bind(limit)
        .fetch_all(conn)
        .await?)
}

/// Extends a claim to `now + lease` if it is still ours (`attempts` unchanged); `false`
/// when the lease ran out and another worker took the job over.
pub async fn renew(
    conn: &mut Conn,
    kind: &JobTable,
    id: i64,
    attempts: i64,
    now: i64,
    lease: i64,
) -> Result<bool> {
    let JobTable {
        table,
        state,
        running,
        lease: until,
        ..
    } = kind;
    let sql = format!(
        "UPDATE {table} SET {until} = $1 WHERE id = $2 AND {state} = '{running}' AND attempts = $3"
    );
    let renewed = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(now + lease)
        .bind(id)
        .bind(attempts)
        .execute(conn)
        .await?;
    Ok(renewed.rows_affected() == 1)
}

/// Records how a run ended if the job is still ours (`attempts` unchanged); `false` when
/// another worker took it over meanwhile (then the outcome is theirs to record).
pub async fn finish(
    conn: &mut Conn,
    kind: &JobTable,
    id: i64,
    attempts: i64,
    outcome: Finish<'_>,
    now: i64,
) -> Result<bool> {
    let (next_state, status, error, at, done_at) = match outcome {
        Finish::Done { status } => (kind.done, status, None, None, Some(now)),
        Finish::Retry { status, error, at } => (kind.pending, status, Some(error), Some(at), None),
        Finish::Dead { status, error } => (kind.dead, status, Some(error), None, None),
    };
    let JobTable {
        table,
        state,
        running,
        lease: until,
        done_at: done_column,
        ..
    } = kind;
    let status_column = kind
        .status
        .map(|column| format!(", {column} = $6"))
        .unwrap_or_default();
    let sql = format!(
        "UPDATE {table} SET {state} = $1, last_error = $2, next_attempt_at = COALESCE($3, next_attempt_at),
             {done_column} = $4, {until} = NULL{status_column}
         WHERE id = $5 AND attempts = $7 AND {state} = '{running}'"
    );
    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(next_state)
        .bind(error)
        .bind(at)
        .bind(done_at)
        .bind(id)
        .bind(status)
        .bind(attempts)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Queues a dead job again at once (a person's retry), with a fresh count of attempts.
/// `false` if it is not dead.
pub async fn requeue(conn: &mut Conn, kind: &JobTable, id: i64, now: i64) -> Result<bool> {
    let JobTable {
        table,
        state,
        pending,
        dead,
        lease: until,
        ..
    } = kind;
    let sql = format!(
        "UPDATE {table} SET {state} = '{pending}', attempts = 0, next_attempt_at = $1, {until} = NULL
         WHERE id = $2 AND {state} = '{dead}'"
    );
    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Jobs in one state.
pub async fn count_in_state(conn: &mut Conn, kind: &JobTable, in_state: &str) -> Result<i64> {
    let JobTable { table, state, .. } = kind;
    let sql = format!("SELECT COUNT(*) FROM {table} WHERE {state} = $1");
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(in_state)
        .fetch_one(conn)
        .await?)
}

/// Jobs not yet done or dead whose time was before `before` (a worker not moving).
pub async fn count_overdue(conn: &mut Conn, kind: &JobTable, before: i64) -> Result<i64> {
    let JobTable {
        table,
        state,
        pending,
        running,
        ..
    } = kind;
    let sql = format!(
        "SELECT COUNT(*) FROM {table} WHERE {state} IN ('{pending}', '{running}') AND next_attempt_at < $1"
    );
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(before)
        .fetch_one(conn)
        .await?)
}

/// The kinds of job on the durable queue, each with its own worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// Mail in the outbox.
    Outbox,
    /// Webhook deliveries.
    Webhook,
}

/// One waker per kind: rung after a commit that queued jobs of that kind, so its
/// worker starts on them now rather than at its next poll. Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct Wake {
    outbox: Arc<Notify>,
    webhook: Arc<Notify>,
}

impl Wake {
    /// Wakers whose outbox one is `outbox` (a test waits on it).
    pub fn with_outbox(outbox: Arc<Notify>) -> Wake {
        Wake {
            outbox,
            ..Wake::default()
        }
    }

    /// What the worker of `kind` waits on.
    pub fn of(&self, kind: JobKind) -> Arc<Notify> {
        match kind {
            JobKind::Outbox => self.outbox.clone(),
            JobKind::Webhook => self.webhook.clone(),
        }
    }

    /// Wakes the worker of `kind` (one permit is kept if it is busy: it looks again).
    pub fn ring(&self, kind: JobKind) {
        match kind {
            JobKind::Outbox => self.outbox.notify_one(),
            JobKind::Webhook => self.webhook.notify_one(),
        }
    }
}
