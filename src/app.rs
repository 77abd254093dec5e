//! `maildesk serve`: configuration → database → migrations → tasks under one cancellation
//! token → graceful, bounded shutdown on SIGTERM or Ctrl-C.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::{Config, MailboxConfig};
use crate::inbound::imap_worker::MailboxWorker;
use crate::inbound::ingest::Ingestor;
use crate::store::Store;
use crate::web;

/// How long running tasks get to finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
    #[error("{0}")]
    AlreadyRunning(#[from] crate::store::serve_lock::ServeLockError),
    #[error("outgoing mail: {0}")]
    Outbound(String),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: String,
        source: std::io::Error,
    },
}

/// `maildesk serve`: builds the application, tells systemd it is ready, and runs it until
/// SIGTERM or Ctrl-C.
pub async fn serve(config: Config) -> Result<(), ServeError> {
    let mut app = App::build(config).await?;
    app.announce_ready();
    let stop = app.shutdown_token();
    let signals = tokio::spawn(async move {
        wait_for_signal().await;
        stop.cancel();
    });
    app.run().await;
    signals.abort();
    Ok(())
}

/// The daemon, built: database migrated, listeners bound, workers running. [`App::run`]
/// serves until its shutdown token is cancelled; tests start it in-process on port 0.
pub struct App {
    config: Config,
    store: Store,
    shutdown: CancellationToken,
    tasks: tokio::task::JoinSet<()>,
    web_address: std::net::SocketAddr,
    // Held while serving: a second daemon on the same SQLite file refuses to start.
    _serve_lock: Option<crate::store::serve_lock::ServeLock>,
}

impl App {
    /// Connects and migrates the database, binds the listeners and starts every worker.
    pub async fn build(config: Config) -> Result<App, ServeError> {
        let store = Store::connect(
            config.database.url.expose(),
            config.database.max_connections,
        )
        .await?;
        // Before migrating: a second daemon on the same SQLite file changes nothing.
        let serve_lock = match store.sqlite_file() {
            Some(file) => Some(crate::store::serve_lock::acquire(file)?),
            None => None,
        };
        crate::runtime::systemd::status("migrating the database");
        store.migrate().await?;
        let listener = bind(&config.web.listen).await?;
        let metrics_listener = match config.metrics.listen.as_deref() {
            Some(address) if config.metrics.enabled => Some(bind(address).await?),
            _ => None,
        };
        let web_address = listener.local_addr().map_err(|source| ServeError::Listen {
            address: config.web.listen.clone(),
            source,
        })?;
        crate::runtime::metrics::register_mailboxes(&config);
        crate::helpdesk::password::configure(
            config.web.password_hashes_at_once,
            Duration::from_millis(config.web.password_hash_wait_ms.into()),
        );
        // `bound` is the address actually listened on (the port chosen for port 0).
        info!(listen = %config.web.listen, bound = %web_address, metrics = ?config.metrics.listen, backend = ?config.backend(), "maildesk started");
        for warning in config.warnings() {
            warn!("configuration: {warning}");
        }
        let mut app = App {
            config,
            store,
            shutdown: CancellationToken::new(),
            tasks: tokio::task::JoinSet::new(),
            web_address,
            _serve_lock: serve_lock,
        };
        app.start_workers(listener, metrics_listener).await?;
        Ok(app)
    }

    async fn start_workers(
        &mut self,
        listener: tokio::net::TcpListener,
        metrics_listener: Option<tokio::net::TcpListener>,
    ) -> Result<(), ServeError> {
        let (config, store, shutdown, tasks) =
            (&self.config, &self.store, &self.shutdown, &mut self.tasks);
        let ingestor = Ingestor::open(config, store.clone()).await?;
        let wake = crate::store::jobs::Wake::default();
        if let Some(smtp) = &config.smtp {
            let worker = crate::outbound::OutboxWorker::new(store.clone(), smtp, &config.outbound)
                .map_err(|e| ServeError::Outbound(e.to_string()))?
                .woken_by(wake.of(crate::store::jobs::JobKind::Outbox));
            tasks.spawn(worker.run(shutdown.clone()));
        }
        // Webhook deliveries: always on (one indexed query a second while there is nothing).
        tasks.spawn(
            crate::integrations::webhooks::WebhookWorker::new(store.clone(), &config.webhooks)
                .run(shutdown.clone()),
        );
        for mailbox in config.mailboxes.iter().filter(|m| m.is_imap()) {
            tasks.spawn(supervise_mailbox(
                mailbox.clone(),
                ingestor.clone(),
                shutdown.clone(),
            ));
        }

        let state = web::AppState::serving(config.clone(), ingestor, wake, shutdown.clone());
        tasks.spawn(crate::runtime::live::run_feed(
            store.clone(),
            config.database.url.expose().to_string(),
            state.live.clone(),
            shutdown.clone(),
        ));
        let limits = web::server::Limits::from_config(&config.web, config.database.max_connections);
        if let Some(listener) = metrics_listener {
            let app = web::metrics_router(state.clone());
            tasks.spawn(web::server::serve(listener, app, limits, shutdown.clone()));
        }
        tasks.spawn(web::server::serve(
            listener,
            web::router(state),
            limits,
            shutdown.clone(),
        ));

        if let Some(days) = config.retention.raw_days {
            tasks.spawn(crate::runtime::retention::run(
                store.clone(),
                days,
                shutdown.clone(),
            ));
        }
        Ok(())
    }

    /// The address the portal listens on (the chosen port when the configuration says 0).
    pub fn web_address(&self) -> std::net::SocketAddr {
        self.web_address
    }

    /// Cancelling this token makes [`App::run`] shut down.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// READY=1 to systemd, then its watchdog pings.
    pub fn announce_ready(&mut self) {
        // Migrations ran and the listener is bound: connections are accepted from here on.
        crate::runtime::systemd::ready(&format!(
            "serving on {}, {} IMAP mailbox(es)",
            self.config.web.listen,
            self.config.mailboxes.iter().filter(|m| m.is_imap()).count()
        ));
        // Pings only after READY=1 (spawned first, its first ping could overtake it: the
        // systemd test saw WATCHDOG=1 before READY=1 once on a loaded machine).
        self.tasks.spawn(crate::runtime::systemd::watchdog(
            self.store.clone(),
            self.shutdown.clone(),
        ));
    }

    /// Serves until the shutdown token is cancelled, then gives the tasks
    /// [`SHUTDOWN_GRACE`] to finish and closes the database.
    pub async fn run(mut self) {
        self.shutdown.cancelled().await;
        info!("shutting down");
        crate::runtime::systemd::stopping();
        let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            warn!("tasks did not stop within {SHUTDOWN_GRACE:?}; aborting them");
            self.tasks.abort_all();
        }
        self.store.close().await;
        info!("stopped");
    }
}

async fn bind(address: &str) -> Result<tokio::net::TcpListener, ServeError> {
    tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| ServeError::Listen {
            address: address.to_string(),
            source,
        })
}

/// Runs a mailbox's worker and restarts it (with backoff) if it dies of a panic, so one
/// mailbox is never silently dead while the daemon runs; the crash is recorded as the
/// mailbox's last error, which `maildesk check` shows.
async fn supervise_mailbox(mailbox: MailboxConfig, ingestor: Ingestor, token: CancellationToken) {
    let name = mailbox.name.clone();
    let label = format!("mailbox {name}");
    let store = ingestor.store().clone();
    supervise(
        &label,
        token.clone(),
        RESTART_FIRST,
        move || {
            let worker = MailboxWorker::new(mailbox.clone(), ingestor.clone());
            let token = token.clone();
            async move {
                crate::failpoint::check("mailbox", worker.name().as_bytes());
                worker.run(token).await;
            }
        },
        move |reason| {
            let (store, name) = (store.clone(), name.clone());
            crate::runtime::metrics::imap_error(&name);
            async move {
                let recorded = async {
                    let mut conn = store.acquire().await?;
                    crate::store::imap::record_error(
                        &mut conn,
                        &name,
                        &reason,
                        crate::store::unix_now(),
                    )
                    .await
                };
                if let Err(e) = recorded.await {
                    warn!(mailbox = %name, error = %e, "cannot record the mailbox crash");
                }
            }
        },
    )
    .await;
}

/// The first restart delay after a crash; it doubles per crash in a row, up to 5 minutes.
const RESTART_FIRST: Duration = Duration::from_secs(1);
const RESTART_MAX: Duration = Duration::from_secs(300);

/// Runs `task` until it returns or `token` is cancelled; when it panics, reports the
/// panic through `on_crash` and starts it again after a growing delay.
pub async fn supervise<T, F, C, CF>(
    name: &str,
    token: CancellationToken,
    first_delay: Duration,
    mut task: T,
    on_crash: C,
) where
    T: FnMut() -> F,
    F: std::future::Future<Output = ()> + Send + 'static,
    C: Fn(String) -> CF,
    CF: std::future::Future<Output = ()>,
{
    let mut delay = first_delay;
    loop {
        match tokio::spawn(task()).await {
            Ok(()) => return,
            Err(e) if e.is_panic() => {
                let reason = format!(
                    "the mailbox task crashed ({}); restarting it in {delay:?}",
                    crate::mail::compose::panic_message(&*e.into_panic())
                );
                error!(task = name, "{reason}");
                on_crash(reason).await;
            }
            Err(_) => return, // cancelled: the runtime is shutting down
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = token.cancelled() => return,
        }
        delay = (delay * 2).min(RESTART_MAX);
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn a_crashing_task_is_restarted_and_each_crash_reported() {
        let runs = Arc::new(AtomicUsize::new(0));
        let crashes = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (r, c) = (runs.clone(), crashes.clone());
        supervise(
            "test",
            CancellationToken::new(),
            Duration::from_millis(1),
            move || {
                let run = r.fetch_add(1, Ordering::SeqCst);
                async move {
                    if run < 2 {
                        panic!("boom {run}");
                    }
                }
            },
            move |reason| {
                c.lock().unwrap().push(reason);
                async {}
            },
        )
        .await;
        assert_eq!(
            runs.load(Ordering::SeqCst),
            3,
            "restarted until it ended normally"
        );
        let crashes = crashes.lock().unwrap();
        assert_eq!(crashes.len(), 2);
        assert!(crashes[0].contains("boom 0"), "{}", crashes[0]);
    }

    #[tokio::test]
    async fn cancelling_stops_the_restarts() {
        let token = CancellationToken::new();
        let stopper = token.clone();
        let supervised = supervise(
            "test",
            token,
            Duration::from_secs(3600),
            || async { panic!("always") },
            move |_| {
                stopper.cancel();
                async {}
            },
        );
        tokio::time::timeout(Duration::from_secs(5), supervised)
            .await
            .expect("returns once cancelled");
    }
}
