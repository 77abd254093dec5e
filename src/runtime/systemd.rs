//! Talking to systemd (`Type=notify`): readiness, a status line, the watchdog, stopping.
//! Outside systemd (no `NOTIFY_SOCKET`) every call does nothing.

use std::time::{Duration, Instant};

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::store::Store;

/// A free-form line `systemctl status` shows.
pub fn status(text: &str) {
    send(&[NotifyState::Status(text)]);
}

/// Start-up is done: migrations ran and the listeners are bound.
pub fn ready(text: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(text)]);
}

/// Shutdown began; systemd waits for the exit instead of reading it as a crash.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

fn send(states: &[NotifyState]) {
    // A lost notification is not worth failing the daemon over; systemd's own timeouts
    // (start, watchdog) act on it.
    if let Err(e) = sd_notify::notify(states) {
        warn!(error = %e, "cannot notify systemd");
    }
}

/// Pings systemd's watchdog while the daemon is alive, when the unit asks for it
/// (`WatchdogSec=`, i.e. `WATCHDOG_USEC`); returns at once otherwise.
///
/// Alive means more than "a timer fired": each round takes a connection from the pool
/// and runs a query, so a blocked runtime, a pool whose connections all leaked or a
/// wedged SQLite worker stops the pings and systemd restarts the service. A database
/// server that is down *answers* (with an error, within the pool's acquire timeout) and
/// still counts as alive: restarting maildesk would not bring it back, and `/readyz`
/// already says so.
pub async fn watchdog(store: Store, token: CancellationToken) {
    let Some(timeout) = sd_notify::watchdog_enabled() else {
        return;
    };
    // Ping at half the timeout (sd_watchdog_enabled(3)); a round may take a quarter, so
    // the longest gap between two pings stays at three quarters of it.
    let period = timeout / 2;
    let deadline = timeout / 4;
    info!(?timeout, "systemd watchdog on: pinging every {period:?}");
    loop {
        let started = Instant::now();
        match tokio::time::timeout(deadline, store.ping()).await {
            Ok(result) => {
                if let Err(e) = result {
                    debug!(error = %e, "watchdog: the database answered with an error");
                }
                send(&[NotifyState::Watchdog]);
            }
            Err(_) => {
                warn!(
                    "watchdog: no answer from the database pool within {deadline:?}; not pinging"
                );
            }
        }
        let next = period.saturating_sub(started.elapsed());
        tokio::select! {
            _ = tokio::time::sleep(next.max(Duration::from_millis(10))) => {}
            _ = token.cancelled() => return,
        }
    }
}
