//! Live updates: every change to a ticket, a task or a delivery reaches the open portal
//! pages of every instance within a second, whoever committed it.
//!
//! The database says what changed (triggers, migration 0012), so no code path can forget
//! to announce a change, and a change committed by another process (`maildesk ingest`
//! piped from the MTA, another `serve` on the same PostgreSQL) is seen like our own:
//! - PostgreSQL: the triggers NOTIFY `maildesk_live` at commit; each instance LISTENs.
//! - SQLite: the triggers write `live_events` rows; each instance reads the rows after its
//!   cursor every [`POLL`] (one small indexed query per instance, not per browser).
//!
//! Each instance fans the changes out to its browsers through a [`LiveHub`] (a broadcast
//! channel). When changes may have been missed (a listener reconnecting, a browser too
//! slow to keep up) a `resync` tells pages to refresh whatever they show.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::Backend;
use crate::store::{self, Store};

/// How often an SQLite instance looks for new changes.
pub const POLL: Duration = Duration::from_millis(150);
/// How long SQLite keeps change rows (readers are never this far behind).
const KEEP_SECS: i64 = 600;
/// How often old change rows are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// The PostgreSQL channel the triggers notify.
pub const CHANNEL: &str = "maildesk_live";
/// Changes a slow browser may fall behind by before it is told to resync.
const BACKLOG: usize = 4096;

/// What changed. `ticket` is the ticket it concerns (a task may have none).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Change {
    pub kind: Kind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A ticket was created or changed, or mail was added to it.
    Ticket,
    /// A task was created, changed or deleted.
    Task,
    /// An outgoing mail of a ticket changed its delivery state.
    Delivery,
    /// Changes may have been missed: refresh everything shown.
    Resync,
}

impl Change {
    pub fn resync() -> Change {
        Change {
            kind: Kind::Resync,
            ticket: None,
            task: None,
        }
    }

    /// A row the SQLite triggers wrote; `None` for a kind this version does not know.
    fn from_row(row: &store::live::Row) -> Option<Change> {
        let kind = serde_json::from_value(serde_json::Value::String(row.kind.clone())).ok()?;
        Some(Change {
            kind,
            ticket: row.ticket_id,
            task: row.task_id,
        })
    }
}

/// The changes of this instance's database, for every open page. Cheap to clone.
#[derive(Clone)]
pub struct LiveHub {
    sender: broadcast::Sender<Change>,
}

impl Default for LiveHub {
    fn default() -> Self {
        LiveHub {
            sender: broadcast::channel(BACKLOG).0,
        }
    }
}

impl LiveHub {
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.sender.subscribe()
    }

    pub fn publish(&self, change: Change) {
        // Nobody listening is fine: no page is open.
        let _ = self.sender.send(change);
    }
}

/// Feeds `hub` with the database's changes until `token` is cancelled. Never gives up:
/// a database that is away is retried with backoff, and pages are told to resync when
/// it is back.
pub async fn run_feed(store: Store, database_url: String, hub: LiveHub, token: CancellationToken) {
    match store.backend() {
        Backend::Sqlite => poll_sqlite(store, hub, token).await,
        Backend::Postgres => listen_postgres(database_url, hub, token).await,
    }
}

async fn poll_sqlite(store: Store, hub: LiveHub, token: CancellationToken) {
    let mut cursor = None;
    let mut last_prune = tokio::time::Instant::now();
    let mut failing = false;
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(POLL) => {}
        }
        let prune = last_prune.elapsed() >= PRUNE_EVERY;
        match read_sqlite(&store, &hub, &mut cursor, prune).await {
            Ok(()) => {
                if failing {
                    info!("live updates: the change feed works again");
                    hub.publish(Change::resync());
                }
                failing = false;
                if prune {
                    last_prune = tokio::time::Instant::now();
                }
            }
            Err(e) => {
                if !failing {
                    warn!(error = %e, "live updates: cannot read the change feed; retrying");
                }
                failing = true;
            }
        }
    }
}

/// One look at the feed: publishes what is new after `cursor` (each change once).
async fn read_sqlite(
    store: &Store,
    hub: &LiveHub,
    cursor: &mut Option<i64>,
    prune: bool,
) -> Result<(), store::StoreError> {
    let mut conn = store.acquire().await?;
    let Some(after) = *cursor else {
        *cursor = Some(store::live::last_id(&mut conn).await?);
        return Ok(());
    };
    let rows = store::live::after(&mut conn, after, 1000).await?;
    if let Some(last) = rows.last() {
        *cursor = Some(last.id);
    }
    for change in distinct(rows.iter().filter_map(Change::from_row)) {
        hub.publish(change);
    }
    if prune {
        store::live::prune(&mut conn, store::unix_now() - KEEP_SECS).await?;
    }
    Ok(())
}

/// The changes in their order, each once (a batch of mail touches a ticket many times).
fn distinct(changes: impl Iterator<Item = Change>) -> Vec<Change> {
    let mut seen = std::collections::HashSet::new();
    changes.filter(|c| seen.insert(c.clone())).collect()
}

async fn listen_postgres(url: String, hub: LiveHub, token: CancellationToken) {
    let mut delay = Duration::from_millis(500);
    loop {
        let connected = tokio::select! {
            _ = token.cancelled() => return,
            c = connect_listener(&url) => c,
        };
        match connected {
            Ok(mut listener) => {
                delay = Duration::from_millis(500);
                // Whatever happened while we were not listening is unknown.
                hub.publish(Change::resync());
                let lost = tokio::select! {
                    _ = token.cancelled() => return,
                    lost = relay(&mut listener, &hub) => lost,
                };
                warn!(error = %lost, "live updates: the PostgreSQL listener lost its connection; reconnecting");
            }
            Err(e) => {
                warn!(error = %e, "live updates: cannot LISTEN on PostgreSQL; retrying in {delay:?}");
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
}

async fn connect_listener(url: &str) -> Result<sqlx::postgres::PgListener, sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Publishes notifications until the connection is lost; returns why.
async fn relay(listener: &mut sqlx::postgres::PgListener, hub: &LiveHub) -> String {
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => match serde_json::from_str(notification.payload()) {
                Ok(change) => hub.publish(change),
                Err(e) => {
                    warn!(payload = notification.payload(), error = %e, "live updates: unreadable notification");
                }
            },
            Ok(None) => return "connection closed".into(),
            Err(e) => return e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_read_as_the_triggers_write_them() {
        let from_pg: Change =
            serde_json::from_str(r#"{"kind":"task","ticket":null,"task":7}"#).unwrap();
        assert_eq!(
            from_pg,
            Change {
                kind: Kind::Task,
                ticket: None,
                task: Some(7)
            }
        );
        let row = store::live::Row {
            id: 1,
            kind: "delivery".into(),
            ticket_id: Some(3),
            task_id: None,
        };
        assert_eq!(Change::from_row(&row).unwrap().kind, Kind::Delivery);
        let unknown = store::live::Row {
            kind: "later".into(),
            ..row
        };
        assert_eq!(Change::from_row(&unknown), None);
        assert_eq!(
            serde_json::to_string(&Change::resync()).unwrap(),
            r#"{"kind":"resync"}"#
        );
    }

    #[test]
    fn a_batch_announces_each_change_once_in_order() {
        let ticket = |t| Change {
            kind: Kind::Ticket,
            ticket: Some(t),
            task: None,
        };
        let got = distinct([ticket(1), ticket(2), ticket(1), ticket(3), ticket(2)].into_iter());
        assert_eq!(got, vec![ticket(1), ticket(2), ticket(3)]);
    }
}
