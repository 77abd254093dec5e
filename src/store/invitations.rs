//! Invitations to register as staff: found by the SHA-256 of the link's token.

use super::{Conn, Result, StoreError};
use crate::domain::Role;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Invitation {
    pub id: i64,
    pub email: String,
    pub role: Role,
    pub invited_by: Option<i64>,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl Invitation {
    /// Neither used nor revoked nor expired.
    pub fn is_open(&self, now: i64) -> bool {
        self.used_at.is_none() && self.revoked_at.is_none() && self.expires_at > now
    }
}

const COLUMNS: &str = "id, email, role, invited_by, created_at, expires_at, used_at, revoked_at";

pub async fn insert(
    conn: &mut Conn,
    token_hash: &str,
    email: &str,
    role: Role,
    invited_by: Option<i64>,
    now: i64,
    expires_at: i64,
) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO invitations (token_hash, email, role, invited_by, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(token_hash)
    .bind(email)
    .bind(role.as_str())
    .bind(invited_by)
    .bind(now)
    .bind(expires_at)
    .fetch_one(conn)
    .await?)
}

pub async fn find_by_hash(conn: &mut Conn, token_hash: &str) -> Result<Option<Invitation>> {
    let sql = format!("SELECT {COLUMNS} FROM invitations WHERE token_hash = $1");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(token_hash)
        .fetch_optional(conn)
        .await?)
}

pub async fn get(conn: &mut Conn, id: i64) -> Result<Invitation> {
    let sql = format!("SELECT {COLUMNS} FROM invitations WHERE id = $1");
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("invitation {id}")))
}

/// Invitations neither used nor revoked (expired ones too, marked so on the page).
pub async fn pending(conn: &mut Conn) -> Result<Vec<Invitation>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM invitations WHERE used_at IS NULL AND revoked_at IS NULL
         ORDER BY created_at DESC, id DESC"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(conn)
        .await?)
}

/// Uses the invitation if it is still open: true for exactly one of two concurrent
/// registrations with the same link.
pub async fn mark_used(conn: &mut Conn, id: i64, now: i64) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE invitations SET used_at = $1
         WHERE id = $2 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $1",
    )
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Revokes a pending invitation; false if it was used or revoked already.
pub async fn revoke(conn: &mut Conn, id: i64, now: i64) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE invitations SET revoked_at = $1
         WHERE id = $2 AND used_at IS NULL AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Revokes every pending invitation of an address (a new one replaces them).
pub async fn revoke_for_email(conn: &mut Conn, email: &str, now: i64) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE invitations SET revoked_at = $1
         WHERE email = $2 AND used_at IS NULL AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(email)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// A new token and expiry for a pending invitation (the old link stops working).
pub async fn renew(
    conn: &mut Conn,
    id: i64,
    token_hash: &str,
    now: i64,
    expires_at: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE invitations SET token_hash = $1, created_at = $2, expires_at = $3
         WHERE id = $4 AND used_at IS NULL AND revoked_at IS NULL",
    )
    .bind(token_hash)
    .bind(now)
    .bind(expires_at)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
