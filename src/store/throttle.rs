//! Attempts counted per account and per client address in a window: sign-ins (`login`),
//! public form submissions, customer web replies. One implementation for all of them,
//! in the database, so a limit holds across every instance sharing it.
//!
//! An attempt is counted before it is judged, by one statement that also returns the
//! counts: each of the two counter rows (account, client) is bumped under its row lock,
//! so attempts running at the same time get distinct counts 1, 2, 3… and exactly `limit`
//! of a burst are let through, whatever runs alongside. A window starts with the first
//! attempt and lasts `window_secs`; after it the count starts again at 1.
//! An attempt that turns out not to count (refused by the limit, or a sign-in that
//! succeeded) is [`release`]d, so the counts are of attempts that were let through.

use super::{Backend, Conn, Result};

/// How many attempts of one kind are let through per account and per client address in
/// a window.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub per_account: u32,
    pub per_client: u32,
    pub window_secs: i64,
}

/// One dimension's counter after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    /// This attempt's number in the window (1 = the first).
    pub hits: i64,
    pub window_start: i64,
}

/// An attempt, counted: what [`release`] needs to take it back, and the verdict.
#[derive(Debug, Clone)]
pub struct Attempt {
    kind: &'static str,
    account: String,
    client: String,
    by_account: Count,
    by_client: Count,
    /// Seconds until the attempt would be let through, when it is over a limit.
    pub over_for: Option<i64>,
}

/// Whether counts are over the limits, and for how long (until the fullest window ends).
pub fn over_for(limits: &Limits, by_account: Count, by_client: Count, now: i64) -> Option<i64> {
    let ends = |c: Count| (c.window_start + limits.window_secs - now).max(1);
    let account_over = by_account.hits > i64::from(limits.per_account);
    let client_over = by_client.hits > i64::from(limits.per_client);
    match (account_over, client_over) {
        (false, false) => None,
        (true, false) => Some(ends(by_account)),
        (false, true) => Some(ends(by_client)),
        (true, true) => Some(ends(by_account).max(ends(by_client))),
    }
}

/// Counts an attempt of `kind` for `account` from `client` and judges it.
pub async fn attempt(
    conn: &mut Conn,
    kind: &'static str,
    account: &str,
    client: &str,
    limits: &Limits,
    now: i64,
) -> Result<Attempt> {
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "INSERT INTO throttle_counters (kind, dimension, key, window_start, hits)
         VALUES ($1, 'account', $2, $4, 1), ($1, 'client', $3, $4, 1)
         ON CONFLICT (kind, dimension, key) DO UPDATE SET
             hits = CASE WHEN throttle_counters.window_start > $5
                         THEN throttle_counters.hits + 1 ELSE 1 END,
             window_start = CASE WHEN throttle_counters.window_start > $5
                         THEN throttle_counters.window_start ELSE excluded.window_start END
         RETURNING dimension, hits, window_start",
    )
    .bind(kind)
    .bind(account)
    .bind(client)
    .bind(now)
    .bind(now - limits.window_secs)
    .fetch_all(conn)
    .await?;
    let count_of = |dimension: &str| {
        rows.iter().find(|(d, _, _)| d == dimension).map_or(
            Count {
                hits: 1,
                window_start: now,
            },
            |(_, hits, start)| Count {
                hits: *hits,
                window_start: *start,
            },
        )
    };
    let (by_account, by_client) = (count_of("account"), count_of("client"));
    Ok(Attempt {
        kind,
        account: account.to_string(),
        client: client.to_string(),
        by_account,
        by_client,
        over_for: over_for(limits, by_account, by_client, now),
    })
}

/// Takes an attempt back from both counts (it was refused, or it did not happen after
/// all). A window that has started anew since is left alone. One row per statement,
/// account before client: the order [`attempt`] locks them in (one statement over both
/// locked them in scan order and deadlocked with a concurrent attempt on PostgreSQL).
pub async fn release(conn: &mut Conn, attempt: &Attempt) -> Result<()> {
    for (dimension, key, count) in [
        ("account", &attempt.account, attempt.by_account),
        ("client", &attempt.client, attempt.by_client),
    ] {
        take_back(conn, attempt.kind, dimension, key, count.window_start).await?;
    }
    Ok(())
}

async fn take_back(
    conn: &mut Conn,
    kind: &str,
    dimension: &str,
    key: &str,
    window_start: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE throttle_counters SET hits = hits - 1
         WHERE kind = $1 AND dimension = $2 AND key = $3 AND window_start = $4 AND hits > 0",
    )
    .bind(kind)
    .bind(dimension)
    .bind(key)
    .bind(window_start)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A successful sign-in: the account's failures are forgotten, and the attempt does not
/// count against the client address.
pub async fn succeeded(conn: &mut Conn, attempt: &Attempt) -> Result<()> {
    sqlx::query(
        "DELETE FROM throttle_counters WHERE kind = $1 AND dimension = 'account' AND key = $2",
    )
    .bind(attempt.kind)
    .bind(&attempt.account)
    .execute(&mut *conn)
    .await?;
    take_back(
        conn,
        attempt.kind,
        "client",
        &attempt.client,
        attempt.by_client.window_start,
    )
    .await
}

/// Forgets this kind's counters whose window ended at or before `until`. On
/// PostgreSQL rows an attempt holds are skipped, not waited for: the delete would lock
/// them in scan order and could deadlock with attempts (they are gone next time).
pub async fn forget(conn: &mut Conn, backend: Backend, kind: &str, until: i64) -> Result<()> {
    let sql = match backend {
        Backend::Postgres => {
            "DELETE FROM throttle_counters WHERE (kind, dimension, key) IN
                 (SELECT kind, dimension, key FROM throttle_counters
                  WHERE kind = $1 AND window_start <= $2 FOR UPDATE SKIP LOCKED)"
        }
        Backend::Sqlite => "DELETE FROM throttle_counters WHERE kind = $1 AND window_start <= $2",
    };
    sqlx::query(sql)
        .bind(kind)
        .bind(until)
        .execute(conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        per_account: 5,
        per_client: 20,
        window_secs: 900,
    };

    fn count(hits: i64, window_start: i64) -> Count {
        Count { hits, window_start }
    }

    #[test]
    fn within_both_limits_is_allowed() {
        assert_eq!(over_for(&LIMITS, count(5, 0), count(20, 0), 10), None);
    }

    #[test]
    fn over_a_limit_waits_until_that_window_ends() {
        assert_eq!(
            over_for(&LIMITS, count(6, 100), count(1, 0), 400),
            Some(600)
        );
        assert_eq!(
            over_for(&LIMITS, count(1, 0), count(21, 300), 400),
            Some(800)
        );
        assert_eq!(
            over_for(&LIMITS, count(6, 100), count(21, 300), 400),
            Some(800)
        );
        // Never "retry in 0 seconds".
        assert_eq!(over_for(&LIMITS, count(6, 0), count(1, 0), 900), Some(1));
    }
}
