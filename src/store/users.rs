//! Staff users.

use serde::Serialize;

use super::{Conn, Result, StoreError};
use crate::domain::Role;

#[derive(Debug, Clone, sqlx::FromRow, Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub name: String,
    #[schema(value_type = String)]
    pub role: Role,
    #[serde(skip)]
    pub password_hash: String,
    pub active: i64,
    pub created_at: i64,
}

/// The user a session belongs to (here, not in `sessions`: sessions know no users).
impl super::sessions::SessionUser {
    pub fn user(&self) -> User {
        User {
            id: self.user_id,
            email: self.email.clone(),
            name: self.name.clone(),
            role: self.role,
            password_hash: self.password_hash.clone(),
            active: self.active,
            created_at: self.created_at,
        }
    }
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

/// Raises the user's credentials version (a password change, a disable): OAuth access
/// tokens issued before carry the old one and stop working (`oauth::find_usable`).
pub async fn raise_credentials_version(conn: &mut Conn, id: i64) -> Result<()> {
    sqlx::query("UPDATE users SET credentials_version = credentials_version + 1 WHERE id = $1")
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

/// A user as the users page lists them.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Overview {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub active: i64,
    pub last_login_at: Option<i64>,
    /// Active tickets assigned to them.
    pub open_tickets: i64,
}

pub async fn overview(conn: &mut Conn) -> Result<Vec<Overview>> {
    Ok(sqlx::query_as(
        "SELECT u.id, u.email, u.name, u.role, u.active, u.last_login_at,
                (SELECT COUNT(*) FROM tickets t WHERE t.assignee_id = u.id
                   AND t.status IN ('open', 'in_progress', 'waiting')
                   AND t.merged_into_id IS NULL) AS open_tickets
         FROM users u ORDER BY u.active DESC, u.name, u.email",
    )
    .fetch_all(conn)
    .await?)
}

pub async fn set_last_login(conn: &mut Conn, id: i64, now: i64) -> Result<()> {
    sqlx::query("UPDATE users SET last_login_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Sets name, address and role.
pub async fn update(
    conn: &mut Conn,
    id: i64,
    name: &str,
    email: &str,
    role: Role,
    now: i64,
) -> Result<()> {
    let done = sqlx::query(
        "UPDATE users SET name = $1, email = $2, role = $3, updated_at = $4 WHERE id = $5",
    )
    .bind(name)
    .bind(email)
    .bind(role.as_str())
    .bind(now)
    .bind(id)
    .execute(conn)
    .await
    .map_err(StoreError::from);
    match done {
        Err(StoreError::Conflict(_)) => Err(StoreError::Conflict(format!(
            "a user with e-mail {email} already exists"
        ))),
        Err(e) => Err(e),
        Ok(d) if d.rows_affected() == 0 => Err(StoreError::NotFound(format!("user {id}"))),
        Ok(_) => Ok(()),
    }
}

/// Locks the active admins' rows until the transaction ends (PostgreSQL `FOR UPDATE`;
/// SQLite write transactions are serial already) and returns their ids, so "is this the
/// last active admin?" cannot be answered the same way by two concurrent changes.
pub async fn lock_active_admins(conn: &mut Conn) -> Result<Vec<i64>> {
    let lock = if conn.backend_name().eq_ignore_ascii_case("postgresql") {
        " FOR UPDATE"
    } else {
        ""
    };
    let sql = format!("SELECT id FROM users WHERE role = 'admin' AND active = 1 ORDER BY id{lock}");
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_all(conn)
        .await?)
}

/// What refers to a user and would lose its author or owner if they went: `(what, how
/// many)`, only the non-zero ones. Sessions and invitations they sent do not count.
pub async fn owned(conn: &mut Conn, id: i64) -> Result<Vec<(&'static str, i64)>> {
    const OWNED: [(&str, &str); 6] = [
        (
            "assigned tickets",
            "SELECT COUNT(*) FROM tickets WHERE assignee_id = $1",
        ),
        (
            "messages written",
            "SELECT COUNT(*) FROM messages WHERE author_user_id = $1",
        ),
        (
            "tasks created",
            "SELECT COUNT(*) FROM tasks WHERE creator_id = $1",
        ),
        (
            "tasks assigned",
            "SELECT COUNT(*) FROM tasks WHERE assignee_id = $1",
        ),
        (
            "first responses",
            "SELECT COUNT(*) FROM tickets WHERE first_responder_id = $1",
        ),
        (
            "ticket history entries",
            "SELECT COUNT(*) FROM ticket_events WHERE user_id = $1",
        ),
    ];
    let mut found = Vec::new();
    for (what, sql) in OWNED {
        let n: i64 = sqlx::query_scalar(sql)
            .bind(id)
            .fetch_one(&mut *conn)
            .await?;
        if n > 0 {
            found.push((what, n));
        }
    }
    Ok(found)
}

/// Deletes a user and their sessions; invitations they sent forget who sent them.
pub async fn delete(conn: &mut Conn, id: i64) -> Result<()> {
    super::sessions::delete_for_user(conn, id, None).await?;
    sqlx::query("UPDATE invitations SET invited_by = NULL WHERE invited_by = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    let done = sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("user {id}")));
    }
    Ok(())
}
