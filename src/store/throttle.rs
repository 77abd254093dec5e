//! Counted attempts per account and per client address in a window: failed sign-ins
//! (`login`), public form submissions, customer web replies. In the database, so a limit
//! holds across every instance sharing it.

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

/// Counts one attempt.
pub async fn record(
    conn: &mut Conn,
    kind: &str,
    account: &str,
    client_addr: &str,
    now: i64,
) -> Result<()> {
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

/// Forgets this kind's attempts made at or before `until` (outside every window).
pub async fn forget(conn: &mut Conn, kind: &str, until: i64) -> Result<()> {
    sqlx::query("DELETE FROM throttle_events WHERE kind = $1 AND at <= $2")
        .bind(kind)
        .bind(until)
        .execute(conn)
        .await?;
    Ok(())
}

/// Forgets one account's attempts of this kind (a successful sign-in).
pub async fn clear_account(conn: &mut Conn, kind: &str, account: &str) -> Result<()> {
    sqlx::query("DELETE FROM throttle_events WHERE kind = $1 AND account = $2")
        .bind(kind)
        .bind(account)
        .execute(conn)
        .await?;
    Ok(())
}
