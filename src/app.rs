//! `maildesk serve`: configuration → database → migrations → tasks under one cancellation
//! token → graceful, bounded shutdown on SIGTERM or Ctrl-C.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::fetch::MailboxWorker;
use crate::ingest::Ingestor;
use crate::store::Store;
use crate::web;

/// How long running tasks get to finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
    #[error("outgoing mail: {0}")]
    Outbound(String),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: String,
        source: std::io::Error,
    },
}

pub async fn serve(config: Config) -> Result<(), ServeError> {
    let store = Store::connect(
        config.database.url.expose(),
        config.database.max_connections,
    )
    .await?;
    store.migrate().await?;
    let listener = tokio::net::TcpListener::bind(&config.web.listen)
        .await
        .map_err(|source| ServeError::Listen {
            address: config.web.listen.clone(),
            source,
        })?;
    info!(listen = %config.web.listen, backend = ?config.backend(), "maildesk started");

    let shutdown = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    let state = web::AppState {
        store: store.clone(),
    };
    let web_token = shutdown.clone();
    tasks.spawn(async move {
        let server = axum::serve(listener, web::router(state))
            .with_graceful_shutdown(web_token.cancelled_owned());
        if let Err(e) = server.await {
            error!(error = %e, "web server stopped");
        }
    });

    let ingestor = Ingestor::open(&config, store.clone()).await?;
    for mailbox in config.mailboxes.iter().filter(|m| m.is_imap()) {
        let worker = MailboxWorker::new(mailbox.clone(), ingestor.clone());
        tasks.spawn(worker.run(shutdown.clone()));
    }

    if let Some(smtp) = &config.smtp {
        let worker = crate::outbound::OutboxWorker::new(store.clone(), smtp, &config.outbound)
            .map_err(|e| ServeError::Outbound(e.to_string()))?;
        tasks.spawn(worker.run(shutdown.clone()));
    }

    wait_for_signal().await;
    info!("shutting down");
    shutdown.cancel();
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!("tasks did not stop within {SHUTDOWN_GRACE:?}; aborting them");
        tasks.abort_all();
    }
    store.close().await;
    info!("stopped");
    Ok(())
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
