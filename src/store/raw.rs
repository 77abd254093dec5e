//! Raw messages and attachment contents, content-addressed by SHA-256.

use super::{placeholders, Conn, Result};

pub async fn insert_raw(conn: &mut Conn, sha256: &str, data: &[u8], now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO raw_messages (sha256, size, data, received_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (sha256) DO NOTHING",
    )
    .bind(sha256)
    .bind(data.len() as i64)
    .bind(data)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get_raw(conn: &mut Conn, sha256: &str) -> Result<Option<Vec<u8>>> {
    Ok(
        sqlx::query_scalar("SELECT data FROM raw_messages WHERE sha256 = $1")
            .bind(sha256)
            .fetch_optional(conn)
            .await?,
    )
}

/// Several raw messages at once: `(sha256, data)` of those that exist, in no order.
pub async fn get_raws(conn: &mut Conn, sha256s: &[&str]) -> Result<Vec<(String, Vec<u8>)>> {
    if sha256s.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT sha256, data FROM raw_messages WHERE sha256 IN ({})",
        placeholders(1, sha256s.len())
    );
    let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql)).persistent(false);
    for sha256 in sha256s {
        query = query.bind(*sha256);
    }
    Ok(query.fetch_all(conn).await?)
}

pub async fn insert_blob(conn: &mut Conn, sha256: &str, data: &[u8]) -> Result<()> {
    sqlx::query("INSERT INTO blobs (sha256, size, data) VALUES ($1, $2, $3) ON CONFLICT (sha256) DO NOTHING")
        .bind(sha256)
        .bind(data.len() as i64)
        .bind(data)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn get_blob(conn: &mut Conn, sha256: &str) -> Result<Option<Vec<u8>>> {
    Ok(
        sqlx::query_scalar("SELECT data FROM blobs WHERE sha256 = $1")
            .bind(sha256)
            .fetch_optional(conn)
            .await?,
    )
}
