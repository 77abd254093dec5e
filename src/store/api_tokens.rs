//! Personal API tokens (found by the SHA-256 of the token; the token itself is shown
//! once, when it is made, and never stored).

use super::users::User;
use super::{Conn, Result, StoreError};

/// A token as its owner sees it in the portal (never the token itself).
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct ApiToken {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub scope: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// A usable token and the active user it acts for.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TokenUser {
    pub token_id: i64,
    pub scope: String,
    pub last_used_at: Option<i64>,
    #[sqlx(flatten)]
    pub user: User,
}

pub struct NewToken<'a> {
    pub user_id: i64,
    pub name: &'a str,
    pub token_hash: &'a str,
    pub scope: &'a str,
    pub expires_at: Option<i64>,
}

pub async fn create(conn: &mut Conn, t: &NewToken<'_>, now: i64) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO api_tokens (user_id, name, token_hash, scope, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(t.user_id)
    .bind(t.name)
    .bind(t.token_hash)
    .bind(t.scope)
    .bind(now)
    .bind(t.expires_at)
    .fetch_one(conn)
    .await?)
}

/// The token if it is neither revoked nor expired and its user is active: a revoked
/// token or a disabled user stops working with the next request.
pub async fn find_usable(conn: &mut Conn, token_hash: &str, now: i64) -> Result<Option<TokenUser>> {
    Ok(sqlx::query_as(
        "SELECT k.id AS token_id, k.scope, k.last_used_at, u.id, u.email, u.name,
                u.role, u.password_hash, u.active, u.created_at
         FROM api_tokens k JOIN users u ON u.id = k.user_id
         WHERE k.token_hash = $1 AND k.revoked_at IS NULL
           AND (k.expires_at IS NULL OR k.expires_at > $2) AND u.active = 1",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_optional(conn)
    .await?)
}

pub async fn touch(conn: &mut Conn, id: i64, now: i64) -> Result<()> {
    sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// A user's tokens, newest first (revoked ones too, so the list tells what happened).
pub async fn list_for_user(conn: &mut Conn, user_id: i64) -> Result<Vec<ApiToken>> {
    Ok(sqlx::query_as(
        "SELECT id, user_id, name, scope, created_at, expires_at, last_used_at, revoked_at
         FROM api_tokens WHERE user_id = $1 ORDER BY id DESC",
    )
    .bind(user_id)
    .fetch_all(conn)
    .await?)
}

/// Revokes every live token of a user (a password change, a disable) and returns how
/// many. Expired ones are left as they are: they work no more either way.
pub async fn revoke_all_for_user(conn: &mut Conn, user_id: i64, now: i64) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE api_tokens SET revoked_at = $1
         WHERE user_id = $2 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $1)",
    )
    .bind(now)
    .bind(user_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Revokes one of a user's tokens (an admin may pass `None` to revoke anyone's).
pub async fn revoke(conn: &mut Conn, id: i64, owner: Option<i64>, now: i64) -> Result<()> {
    let done = sqlx::query(
        "UPDATE api_tokens SET revoked_at = $1
         WHERE id = $2 AND ($3 IS NULL OR user_id = $3) AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(id)
    .bind(owner)
    .execute(conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("active token {id}")));
    }
    Ok(())
}
