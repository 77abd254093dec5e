//! `/healthz` (the process is up) and `/readyz` (it can do its work), for load balancers
//! and monitoring. `/readyz` answers JSON that says which part is wrong, but never an
//! error text or a connection string: callers are anonymous.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;

use crate::store::{imap, outbox, unix_now};
use crate::web::AppState;

pub async fn healthz() -> &'static str {
    "ok\n"
}

#[derive(Debug, Serialize)]
pub struct Readiness {
    /// `ready` or `unavailable`.
    pub status: &'static str,
    pub database: &'static str,
    /// Per IMAP mailbox: `ok`, `failing`, `stale` (no sync within its window) or `waiting
    /// for its first sync`.
    pub mailboxes: std::collections::BTreeMap<String, &'static str>,
    /// `ok`, `stuck` (mail overdue by more than 10 minutes) or `not configured`.
    pub outbox: &'static str,
}

/// Queued mail this far past its time means the outbox is not moving.
const OUTBOX_STUCK_SECS: i64 = 600;

pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let mut ready = Readiness {
        status: "ready",
        database: "ok",
        mailboxes: Default::default(),
        outbox: if state.config.smtp.is_some() {
            "ok"
        } else {
            "not configured"
        },
    };
    let now = unix_now();
    let checked = async {
        let mut conn = state.store.acquire().await?;
        let states = imap::states(&mut conn).await?;
        for mailbox in state.config.mailboxes.iter().filter(|m| m.is_imap()) {
            let window = sync_window(mailbox.idle, mailbox.poll_seconds);
            let found = states.iter().find(|s| s.mailbox == mailbox.name);
            let verdict = match found {
                Some(s) if s.last_error.is_some() => "failing",
                Some(s) if s.last_success_at.is_some_and(|t| now - t <= window) => "ok",
                _ if now - state.started_at <= window => "waiting for its first sync",
                _ => "stale",
            };
            ready.mailboxes.insert(mailbox.name.clone(), verdict);
        }
        if state.config.smtp.is_some()
            && outbox::count_overdue(&mut conn, now - OUTBOX_STUCK_SECS).await? > 0
        {
            ready.outbox = "stuck";
        }
        Ok::<(), crate::store::StoreError>(())
    };
    if checked.await.is_err() {
        ready.database = "unavailable";
    }
    let failing = ready.database != "ok"
        || ready.outbox == "stuck"
        || ready
            .mailboxes
            .values()
            .any(|v| matches!(*v, "failing" | "stale"));
    if failing {
        ready.status = "unavailable";
    }
    let code = if failing {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, Json(ready))
}

/// How long a mailbox may go without a successful sync: an IDLE connection is renewed
/// (and the folder synced) every 25 minutes; a polled one syncs every `poll_seconds`.
fn sync_window(idle: bool, poll_seconds: u64) -> i64 {
    let poll = i64::try_from(poll_seconds).unwrap_or(i64::MAX / 4);
    let every = if idle { 25 * 60 } else { poll };
    every.saturating_mul(2).max(120)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_leave_room_for_a_missed_round() {
        assert_eq!(sync_window(true, 60), 3000);
        assert_eq!(sync_window(false, 300), 600);
        assert_eq!(sync_window(false, 10), 120);
    }
}
