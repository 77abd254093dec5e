//! A ticket's history: who changed what, and when.

use serde::Serialize;

use super::{Conn, Result};

#[derive(Debug, Clone, sqlx::FromRow, Serialize, utoipa::ToSchema)]
pub struct Event {
    pub id: i64,
    pub ticket_id: i64,
    pub user_id: Option<i64>,
    pub user_name: Option<String>,
    pub field: String,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    pub created_at: i64,
    /// The customer who made the change on their own ticket page.
    pub customer_email: Option<String>,
}

pub struct NewEvent<'a> {
    pub ticket_id: i64,
    pub user_id: Option<i64>,
    pub field: &'a str,
    pub old_value: Option<&'a str>,
    pub new_value: Option<&'a str>,
}

pub async fn record(conn: &mut Conn, e: &NewEvent<'_>, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO ticket_events (ticket_id, user_id, field, old_value, new_value, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(e.ticket_id)
    .bind(e.user_id)
    .bind(e.field)
    .bind(e.old_value)
    .bind(e.new_value)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// A change made by a customer (on their ticket page), named by their address.
pub async fn record_by_customer(
    conn: &mut Conn,
    e: &NewEvent<'_>,
    customer_email: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO ticket_events (ticket_id, user_id, field, old_value, new_value, created_at, customer_email)
         VALUES ($1, NULL, $2, $3, $4, $5, $6)",
    )
    .bind(e.ticket_id)
    .bind(e.field)
    .bind(e.old_value)
    .bind(e.new_value)
    .bind(now)
    .bind(customer_email)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn for_ticket(conn: &mut Conn, ticket_id: i64) -> Result<Vec<Event>> {
    Ok(sqlx::query_as(
        "SELECT e.id, e.ticket_id, e.user_id, u.name AS user_name, e.field, e.old_value, e.new_value, e.created_at, e.customer_email
         FROM ticket_events e LEFT JOIN users u ON u.id = e.user_id
         WHERE e.ticket_id = $1 ORDER BY e.id",
    )
    .bind(ticket_id)
    .fetch_all(conn)
    .await?)
}
