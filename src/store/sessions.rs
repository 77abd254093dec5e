//! Portal sessions (found by the SHA-256 of the cookie value).

use super::{Conn, Result};

/// A live session and the active user it belongs to.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionUser {
    pub id_hash: String,
    pub csrf_token: String,
    pub last_seen_at: i64,
    pub user_id: i64,
    pub email: String,
    pub name: String,
    pub role: crate::domain::Role,
    pub password_hash: String,
    pub active: i64,
    pub created_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionInfo {
    pub id_hash: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub client_addr: String,
    pub user_agent: String,
}

pub struct NewSession<'a> {
    pub id_hash: &'a str,
    pub user_id: i64,
    pub csrf_token: &'a str,
    pub expires_at: i64,
    pub client_addr: &'a str,
    pub user_agent: &'a str,
}

pub async fn create(conn: &mut Conn, s: &NewSession<'_>, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, last_seen_at, expires_at, client_addr, user_agent)
         VALUES ($1, $2, $3, $4, $4, $5, $6, $7)",
    )
    .bind(s.id_hash)
    .bind(s.user_id)
    .bind(s.csrf_token)
    .bind(now)
    .bind(s.expires_at)
    .bind(s.client_addr)
    .bind(s.user_agent)
    .execute(conn)
    .await?;
    Ok(())
}

/// The session if it is neither idle for longer than `idle_secs` nor past its absolute
/// expiry, and its user is still active (a disabled user's sessions stop working at once).
pub async fn find_live(
    conn: &mut Conn,
    id_hash: &str,
    now: i64,
    idle_secs: i64,
) -> Result<Option<SessionUser>> {
    Ok(sqlx::query_as(
        "SELECT s.id_hash, s.csrf_token, s.last_seen_at, u.id AS user_id, u.email, u.name, u.role,
                u.password_hash, u.active, u.created_at
         FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.id_hash = $1 AND u.active = 1 AND s.expires_at > $2 AND s.last_seen_at > $3",
    )
    .bind(id_hash)
    .bind(now)
    .bind(now - idle_secs)
    .fetch_optional(conn)
    .await?)
}

pub async fn touch(conn: &mut Conn, id_hash: &str, now: i64) -> Result<()> {
    sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2")
        .bind(now)
        .bind(id_hash)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn delete(conn: &mut Conn, id_hash: &str) -> Result<()> {
    sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
        .bind(id_hash)
        .execute(conn)
        .await?;
    Ok(())
}

/// Ends one of a user's sessions (only theirs).
pub async fn delete_own(conn: &mut Conn, user_id: i64, id_hash: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM sessions WHERE id_hash = $1 AND user_id = $2")
        .bind(id_hash)
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Ends every session of a user, except `keep` (the one making the request), if given.
pub async fn delete_for_user(conn: &mut Conn, user_id: i64, keep: Option<&str>) -> Result<u64> {
    let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id_hash <> $2")
        .bind(user_id)
        .bind(keep.unwrap_or(""))
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}

pub async fn list_for_user(conn: &mut Conn, user_id: i64, now: i64) -> Result<Vec<SessionInfo>> {
    Ok(sqlx::query_as(
        "SELECT id_hash, created_at, last_seen_at, expires_at, client_addr, user_agent
         FROM sessions WHERE user_id = $1 AND expires_at > $2 ORDER BY last_seen_at DESC",
    )
    .bind(user_id)
    .bind(now)
    .fetch_all(conn)
    .await?)
}

/// Forgets sessions that can no longer be used.
pub async fn purge_stale(conn: &mut Conn, now: i64, idle_secs: i64) -> Result<()> {
    sqlx::query("DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at <= $2")
        .bind(now)
        .bind(now - idle_secs)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
