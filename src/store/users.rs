//! Staff users.

use serde::Serialize;

use super::{Conn, Result, StoreError};
use crate::domain::Role;

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub role: String,
    #[serde(skip)]
    pub password_hash: String,
    pub active: i64,
    pub created_at: i64,
}

const COLUMNS: &str = "id, email, name, role, password_hash, active, created_at";

pub struct NewUser<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub role: Role,
    pub password_hash: &'a str,
}

pub async fn insert(conn: &mut Conn, user: &NewUser<'_>, now: i64) -> Result<i64> {
    let result = sqlx::query_scalar(
        "INSERT INTO users (email, name, role, password_hash, active, created_at, updated_at)
         VALUES ($1, $2, $3, $4, 1, $5, $5) RETURNING id",
    )
    .bind(user.email)
    .bind(user.name)
    .bind(user.role.as_str())
    .bind(user.password_hash)
    .bind(now)
    .fetch_one(conn)
    .await
    .map_err(StoreError::from);
    match result {
        Err(StoreError::Conflict(_)) => Err(StoreError::Conflict(format!(
            "a user with e-mail {} already exists",
            user.email
        ))),
        other => other,
    }
}

pub async fn find_active_by_email(conn: &mut Conn, email: &str) -> Result<Option<User>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE email = $1 AND active = 1");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(email)
        .fetch_optional(conn)
        .await?)
}

pub async fn list(conn: &mut Conn) -> Result<Vec<User>> {
    let sql = format!("SELECT {COLUMNS} FROM users ORDER BY email");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(conn)
        .await?)
}

/// Every active user as `(id, email)` (the default notification list).
pub async fn active_staff(conn: &mut Conn) -> Result<Vec<(i64, String)>> {
    Ok(
        sqlx::query_as("SELECT id, email FROM users WHERE active = 1 ORDER BY email")
            .fetch_all(conn)
            .await?,
    )
}

pub async fn get(conn: &mut Conn, id: i64) -> Result<User> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("user {id}")))
}

/// Any user with this address, active or not (sign-in, administration).
pub async fn find_by_email(conn: &mut Conn, email: &str) -> Result<Option<User>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE email = $1");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(email)
        .fetch_optional(conn)
        .await?)
}

pub async fn set_password_hash(conn: &mut Conn, id: i64, hash: &str, now: i64) -> Result<()> {
    sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
        .bind(hash)
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Enables or disables a user; disabling also ends their sessions (same transaction).
pub async fn set_active(conn: &mut Conn, id: i64, active: bool, now: i64) -> Result<()> {
    let done = sqlx::query("UPDATE users SET active = $1, updated_at = $2 WHERE id = $3")
        .bind(i64::from(active))
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("user {id}")));
    }
    if !active {
        super::sessions::delete_for_user(conn, id, None).await?;
    }
    Ok(())
}
