//! Counted attempts (public form submissions, customer web replies) per account and per
//! client address, so a limit holds across every instance sharing the database.

use super::{Conn, Result};

/// How many attempts of `kind` were made since `since`: for this account, and from this
/// client address.
pub async fn count_since(
    conn: &mut Conn,
    kind: &str,
    account: &str,
    client_addr: &str,
    since: i64,
) -> Result<(i64, i64)> {
    Ok(sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM throttle_events WHERE kind = $1 AND account = $2 AND at > $4),
                (SELECT COUNT(*) FROM throttle_events WHERE kind = $1 AND client_addr = $3 AND at > $4)",
    )
    .bind(kind)
    .bind(account)
    .bind(client_addr)
    .bind(since)
    .fetch_one(conn)
    .await?)
}

/// Counts one attempt, and forgets this kind's attempts older than `forget_before`.
pub async fn record(
    conn: &mut Conn,
    kind: &str,
    account: &str,
    client_addr: &str,
    now: i64,
    forget_before: i64,
) -> Result<()> {
    sqlx::query("DELETE FROM throttle_events WHERE kind = $1 AND at < $2")
        .bind(kind)
        .bind(forget_before)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO throttle_events (kind, account, client_addr, at) VALUES ($1, $2, $3, $4)",
    )
    .bind(kind)
    .bind(account)
    .bind(client_addr)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}
