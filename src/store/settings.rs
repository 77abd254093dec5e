//! Small key/value settings kept in the database (shared by every instance).

use super::{Conn, Result};

pub async fn get(conn: &mut Conn, key: &str) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(conn)
            .await?,
    )
}

/// Stores `value` unless the key exists, and returns what is stored: when several
/// instances start at once, they all end up with the first one's value.
pub async fn get_or_insert(conn: &mut Conn, key: &str, value: &str) -> Result<String> {
    sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
        .bind(key)
        .bind(value)
        .execute(&mut *conn)
        .await?;
    Ok(get(conn, key).await?.unwrap_or_else(|| value.to_string()))
}

/// Stores `value` under `key`, replacing what was there.
pub async fn set(conn: &mut Conn, key: &str, value: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO settings (key, value) VALUES ($1, $2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(key)
    .bind(value)
    .execute(conn)
    .await?;
    Ok(())
}
