//! Webhooks and their deliveries. Deliveries are written by the triggers of migration
//! 0017, in the transaction of the change they announce; here they are claimed, marked
//! and listed. A claim is a lease (`claimed_until`), as in the outbox: a worker that dies
//! mid-delivery leaves the delivery to be taken over when the lease runs out.

use serde::Serialize;

use super::jobs::{self, JobTable};
use super::{Backend, Conn, Result, StoreError};

/// A webhook as admins see it. The secret is only in [`WebhookSecret`].
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Webhook {
    pub id: i64,
    pub url: String,
    /// Comma-separated event names (see `crate::integrations::webhooks::EVENTS`).
    pub events: String,
    #[serde(serialize_with = "as_bool")]
    pub active: i64,
    pub created_by: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

fn as_bool<S: serde::Serializer>(v: &i64, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_bool(*v != 0)
}

/// The stored body as the JSON it is (not as a string of JSON); as text if it is not.
fn as_json<S: serde::Serializer>(v: &str, s: S) -> std::result::Result<S::Ok, S::Error> {
    match serde_json::from_str::<serde_json::Value>(v) {
        Ok(value) => value.serialize(s),
        Err(_) => s.serialize_str(v),
    }
}

pub struct NewWebhook<'a> {
    pub url: &'a str,
    pub secret: &'a str,
    pub events: &'a str,
    pub active: bool,
    pub created_by: Option<i64>,
}

const COLUMNS: &str = "id, url, events, active, created_by, created_at, updated_at";

pub async fn create(conn: &mut Conn, w: &NewWebhook<'_>, now: i64) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO webhooks (url, secret, events, active, created_by, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
    )
    .bind(w.url)
    .bind(w.secret)
    .bind(w.events)
    .bind(i64::from(w.active))
    .bind(w.created_by)
    .bind(now)
    .fetch_one(conn)
    .await?)
}

pub async fn list(conn: &mut Conn) -> Result<Vec<Webhook>> {
    let sql = format!("SELECT {COLUMNS} FROM webhooks ORDER BY id");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(conn)
        .await?)
}

pub async fn get(conn: &mut Conn, id: i64) -> Result<Webhook> {
    let sql = format!("SELECT {COLUMNS} FROM webhooks WHERE id = $1");
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("webhook {id}")))
}

/// The secret a webhook's deliveries are signed with (admins may read it again).
pub async fn secret(conn: &mut Conn, id: i64) -> Result<String> {
    sqlx::query_scalar("SELECT secret FROM webhooks WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("webhook {id}")))
}

/// Changes what is given; `None` keeps the value.
pub struct Changes<'a> {
    pub url: Option<&'a str>,
    pub events: Option<&'a str>,
    pub active: Option<bool>,
    pub secret: Option<&'a str>,
}

pub async fn update(conn: &mut Conn, id: i64, c: &Changes<'_>, now: i64) -> Result<()> {
    let done = sqlx::query(
        "UPDATE webhooks SET url = COALESCE($1, url), events = COALESCE($2, events),
             active = COALESCE($3, active), secret = COALESCE($4, secret), updated_at = $5
         WHERE id = $6",
    )
    .bind(c.url)
    .bind(c.events)
    .bind(c.active.map(i64::from))
    .bind(c.secret)
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("webhook {id}")));
    }
    Ok(())
}

/// Deletes a webhook and (by cascade) its deliveries, sent or not.
pub async fn delete(conn: &mut Conn, id: i64) -> Result<()> {
    let done = sqlx::query("DELETE FROM webhooks WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("webhook {id}")));
    }
    Ok(())
}

/// A delivery as admins see it.
#[derive(Debug, Clone, sqlx::FromRow, Serialize, utoipa::ToSchema)]
#[schema(as = WebhookDelivery)]
pub struct Delivery {
    pub id: i64,
    pub webhook_id: i64,
    pub event: String,
    pub idempotency_key: String,
    /// The body POSTed (what was signed), as JSON.
    #[serde(serialize_with = "as_json")]
    #[schema(value_type = Object)]
    pub payload: String,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

const DELIVERY_COLUMNS: &str = "id, webhook_id, event, idempotency_key, payload, state, attempts,
     next_attempt_at, last_status, last_error, created_at, delivered_at";

/// A webhook's deliveries, newest first: up to `limit` with ids below `before`.
pub async fn deliveries(
    conn: &mut Conn,
    webhook_id: i64,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Delivery>> {
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries
         WHERE webhook_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(webhook_id)
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(conn)
        .await?)
}

pub async fn delivery(conn: &mut Conn, id: i64) -> Result<Delivery> {
    let sql = format!("SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE id = $1");
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("webhook delivery {id}")))
}

/// A claimed delivery, with what the worker needs to send and sign it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub id: i64,
    pub webhook_id: i64,
    pub event: String,
    pub idempotency_key: String,
    pub payload: String,
    /// Counts claims: the delivery is still ours while it is unchanged.
    pub attempts: i64,
    pub created_at: i64,
    pub url: String,
    pub secret: String,
}

/// Deliveries as a kind of job: pending (a claim is only a lease), then delivered or
/// failed. Deliveries of an inactive webhook wait.
pub const JOBS: JobTable = JobTable {
    table: "webhook_deliveries",
    state: "state",
    pending: "pending",
    running: "pending",
    done: "delivered",
    dead: "failed",
    lease: "claimed_until",
    done_at: "delivered_at",
    status: Some("last_status"),
    join: "JOIN webhooks w ON w.id = j.webhook_id",
    claimable: "AND w.active = 1",
    returning: "id",
};

/// Claims up to `limit` due deliveries for `lease` seconds (see [`JOBS`]), with what the
/// worker needs to send and sign them.
pub async fn claim_due(
    conn: &mut Conn,
    backend: Backend,
    now: i64,
    lease: i64,
    limit: i64,
) -> Result<Vec<Claimed>> {
    let ids: Vec<(i64,)> = jobs::claim(&mut *conn, backend, &JOBS, now, lease, limit).await?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT d.id, d.webhook_id, d.event, d.idempotency_key, d.payload, d.attempts, d.created_at,
                w.url, w.secret
         FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
         WHERE d.id IN ({}) ORDER BY d.id",
        super::placeholders(1, ids.len())
    );
    let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql)).persistent(false);
    for (id,) in &ids {
        query = query.bind(*id);
    }
    Ok(query.fetch_all(conn).await?)
}

/// Records an attempt's outcome if the delivery is still ours (`attempts` unchanged);
/// `false` when another worker took it over meanwhile.
pub async fn finish(
    conn: &mut Conn,
    id: i64,
    attempts: i64,
    outcome: jobs::Finish<'_>,
    now: i64,
) -> Result<bool> {
    jobs::finish(conn, &JOBS, id, attempts, outcome, now).await
}

/// Queues a delivery again at once (an admin's retry): a failed one starts over with a
/// fresh count of attempts, keeping its idempotency key. `false` if it is not failed.
pub async fn requeue(conn: &mut Conn, id: i64, now: i64) -> Result<bool> {
    jobs::requeue(conn, &JOBS, id, now).await
}

/// Deletes delivered deliveries older than `before`; returns how many.
pub async fn prune_delivered(conn: &mut Conn, before: i64) -> Result<u64> {
    let done =
        sqlx::query("DELETE FROM webhook_deliveries WHERE state = 'delivered' AND created_at < $1")
            .bind(before)
            .execute(conn)
            .await?;
    Ok(done.rows_affected())
}

/// Deliveries in one state, of every webhook (the backlog in metrics and `check`).
pub async fn count_in_state(conn: &mut Conn, state: &str) -> Result<i64> {
    jobs::count_in_state(conn, &JOBS, state).await
}

/// Deliveries per state (for the portal page).
pub async fn count_by_state(conn: &mut Conn, webhook_id: i64) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT state, COUNT(*) FROM webhook_deliveries WHERE webhook_id = $1 GROUP BY state ORDER BY state",
    )
    .bind(webhook_id)
    .fetch_all(conn)
    .await?)
}
