//! `/portal/events`: the live feed for open portal pages (server-sent events). Each event
//! `changes` carries a JSON array of [`Change`]s; the page's script refreshes the parts
//! of the page that show them. Pages work without it (a reload shows the same).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::broadcast::Receiver;
use tokio::time::Instant;
use tracing::warn;

use crate::runtime::live::Change;
use crate::store::{sessions, unix_now};
use crate::web::auth::Staff;
use crate::web::AppState;

/// A signed-out or disabled user's open feed ends within this time.
const SESSION_CHECK: Duration = Duration::from_secs(30);
/// Comments keep proxies from closing an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(20);
/// Browsers wait this long before reconnecting after the stream ends.
const RETRY: Duration = Duration::from_secs(3);

/// How many live-update streams are open, per session and in all: each holds a
/// connection, so one session (or everyone together) gets at most so many.
pub struct Streams {
    per_session: u32,
    total: u32,
    open: Mutex<HashMap<String, u32>>,
}

impl Streams {
    pub fn new(per_session: u32, total: u32) -> Arc<Streams> {
        Arc::new(Streams {
            per_session,
            total,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for one more stream of `session`, if both caps allow it.
    fn take(self: &Arc<Self>, session: &str) -> Option<StreamSlot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let total: u32 = open.values().sum();
        let mine = open.get(session).copied().unwrap_or(0);
        if total >= self.total || mine >= self.per_session {
            return None;
        }
        open.insert(session.to_string(), mine + 1);
        Some(StreamSlot {
            streams: self.clone(),
            session: session.to_string(),
        })
    }
}

/// An open stream's place; given back when the stream ends (dropped with it).
struct StreamSlot {
    streams: Arc<Streams>,
    session: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.streams.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.session) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.session);
            }
        }
    }
}

struct Feed {
    _slot: StreamSlot,
    changes: Receiver<Change>,
    state: AppState,
    session_hash: String,
    next_check: Instant,
    first: bool,
}

pub async fn events(State(state): State<AppState>, staff: Staff) -> Response {
    let Some(slot) = state.live_streams.take(&staff.session_hash) else {
        warn!(user = %staff.user().email, "live-update stream refused: too many open");
        let refused = (
            StatusCode::TOO_MANY_REQUESTS,
            "Too many live-update streams are open; close some tabs.",
        );
        return crate::web::view::retry_after(refused.into_response(), 30);
    };
    let feed = Feed {
        _slot: slot,
        changes: state.live.subscribe(),
        session_hash: staff.session_hash,
        next_check: Instant::now() + SESSION_CHECK,
        first: true,
        state,
    };
    Sse::new(stream::unfold(feed, next_event))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}

/// The next event for this browser: the changes waiting for it (each once), a resync
/// when it fell behind, or the end of the stream when the session ended or the server
/// shuts down.
async fn next_event(mut feed: Feed) -> Option<(Result<Event, Infallible>, Feed)> {
    if feed.first {
        // Tells the page the feed is open (tests and the bench wait for it).
        feed.first = false;
        let hello = Event::default().event("ready").retry(RETRY).data("{}");
        return Some((Ok(hello), feed));
    }
    loop {
        tokio::select! {
            _ = feed.state.shutdown.cancelled() => return None,
            _ = tokio::time::sleep_until(feed.next_check) => {
                if !session_alive(&feed).await {
                    return None;
                }
                feed.next_check = Instant::now() + SESSION_CHECK;
            }
            received = feed.changes.recv() => {
                let batch = match received {
                    Ok(change) => drain(&mut feed.changes, change),
                    Err(RecvError::Lagged(_)) => vec![Change::resync()],
                    Err(RecvError::Closed) => return None,
                };
                let data = serde_json::to_string(&batch).unwrap_or_else(|_| "[]".into());
                return Some((Ok(Event::default().event("changes").data(data)), feed));
            }
        }
    }
}

/// `first` and whatever else is already waiting, each change once.
fn drain(changes: &mut Receiver<Change>, first: Change) -> Vec<Change> {
    let mut batch = vec![first];
    loop {
        match changes.try_recv() {
            Ok(change) if !batch.contains(&change) => batch.push(change),
            Ok(_) => {}
            Err(TryRecvError::Lagged(_)) => return vec![Change::resync()],
            Err(_) => return batch,
        }
    }
}

async fn session_alive(feed: &Feed) -> bool {
    let idle = i64::from(feed.state.config.web.session_idle_minutes) * 60;
    let Ok(mut conn) = feed.state.store.acquire().await else {
        return true; // the database is away: the session may well be fine
    };
    !matches!(
        sessions::find_live(&mut conn, &feed.session_hash, unix_now(), idle).await,
        Ok(None)
    )
}
