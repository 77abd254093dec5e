//! The HTTP listener, with the limits that keep a slow or hostile client from holding
//! the server (axum's own `serve` has none of them): a header-read timeout (hyper's,
//! which also ends a kept-alive connection that sends no next request), an idle timeout
//! (nothing read or written for a while: a stalled upload, a client that stopped
//! reading), and a maximum number of open connections, fitted to the open-file limit so
//! the process never runs out of descriptors for its database and mail connections.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tracing::{debug, warn};

use crate::config::WebConfig;

/// Descriptors kept free for everything but web connections (database pool, IMAP and
/// SMTP connections, SQLite files, the listeners, log files).
const RESERVED_FILES: u64 = 64;

/// How long a failed `accept` (e.g. out of descriptors) waits before the next one.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

impl Limits {
    /// The configured limits, with `max_connections` lowered to what the open-file limit
    /// leaves (after the database pool and a reserve).
    pub fn from_config(web: &WebConfig, pool_size: u32) -> Limits {
        let configured = u64::from(web.max_connections);
        let max_connections = match open_file_limit() {
            Some(files) => {
                let fits = files
                    .saturating_sub(RESERVED_FILES + u64::from(pool_size))
                    .max(16);
                if fits < configured {
                    warn!(
                        configured,
                        open_file_limit = files,
                        used = fits,
                        "web.max_connections lowered to fit the open-file limit (raise LimitNOFILE= or ulimit -n)"
                    );
                }
                configured.min(fits)
            }
            None => configured,
        };
        Limits {
            header_read_timeout: Duration::from_secs(web.header_read_timeout_seconds.into()),
            idle_timeout: Duration::from_secs(web.idle_timeout_seconds.into()),
            max_connections: max_connections as usize,
        }
    }
}

/// The soft limit on open files, as the kernel states it for this process.
fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_open_file_limit(&limits)
}

fn parse_open_file_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Serves `router` on `listener` until `shutdown`, then lets open requests finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    // Said once per run of failures, not every 100 ms (the log must not fill up).
    let mut accept_failing = false;
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            _ = shutdown.cancelled() => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.cancelled() => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors or a connection reset before we took it: the
                // listener itself is fine, so wait a moment and go on.
                debug!(error = %e, "accept failed");
                if !is_per_connection(&e) {
                    if !accept_failing {
                        warn!(error = %e, "cannot accept connections; retrying every {ACCEPT_BACKOFF:?}");
                        accept_failing = true;
                    }
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
                continue;
            }
        };
        if std::mem::take(&mut accept_failing) {
            tracing::info!("accepting connections again");
        }
        let _ = stream.set_nodelay(true);
        let activity = Activity::new();
        let io = TokioIo::new(Watched {
            inner: stream,
            activity: activity.clone(),
        });
        let service = WithPeer {
            router: router.clone(),
            peer,
        };
        let connection = graceful.watch(http.serve_connection(io, service));
        let idle_timeout = limits.idle_timeout;
        tokio::spawn(async move {
            tokio::select! {
                result = connection => {
                    if let Err(e) = result {
                        debug!(%peer, error = %e, "connection ended with an error");
                    }
                }
                _ = activity.idle_for(idle_timeout) => {
                    debug!(%peer, "idle connection closed");
                }
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Errors of one connection that `accept` reports, not of the listener.
fn is_per_connection(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionRefused
    )
}

/// The router for one connection: each request learns the peer's address (what
/// `into_make_service_with_connect_info` did for `axum::serve`).
#[derive(Clone)]
struct WithPeer {
    router: Router,
    peer: SocketAddr,
}

impl hyper::service::Service<hyper::Request<Incoming>> for WithPeer {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = tower::util::Oneshot<Router, hyper::Request<Incoming>>;

    fn call(&self, mut request: hyper::Request<Incoming>) -> Self::Future {
        request.extensions_mut().insert(ConnectInfo(self.peer));
        self.router.clone().oneshot(request)
    }
}

/// When a connection last moved a byte, in milliseconds since it opened.
#[derive(Clone)]
struct Activity {
    opened: Instant,
    last_ms: Arc<AtomicU64>,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            opened: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    fn touch(&self) {
        let ms = self.opened.elapsed().as_millis() as u64;
        self.last_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// Returns once nothing has moved for `limit`.
    async fn idle_for(&self, limit: Duration) {
        loop {
            let last = self.opened + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let deadline = last + limit;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// A TCP stream that records when bytes last went either way.
struct Watched {
    inner: TcpStream,
    activity: Activity,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_file_limit_is_read_from_proc() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max processes             95541                95541                processes \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(parse_open_file_limit(limits), Some(1024));
        assert_eq!(
            parse_open_file_limit("Max open files unlimited unlimited files"),
            None
        );
        assert!(open_file_limit().is_some(), "this machine has /proc");
    }

    #[test]
    fn max_connections_fit_the_open_file_limit() {
        let web = WebConfig {
            max_connections: u32::MAX,
            ..WebConfig::default()
        };
        let limits = Limits::from_config(&web, 8);
        let files = open_file_limit().unwrap();
        assert_eq!(
            limits.max_connections as u64,
            files.saturating_sub(RESERVED_FILES + 8).max(16)
        );
        assert_eq!(limits.header_read_timeout, Duration::from_secs(10));
    }

    #[tokio::test]
    async fn idle_ends_only_after_the_last_activity_plus_the_limit() {
        let activity = Activity::new();
        tokio::time::sleep(Duration::from_millis(60)).await;
        activity.touch();
        let touched = Instant::now();
        activity.idle_for(Duration::from_millis(100)).await;
        let waited = touched.elapsed();
        assert!(
            waited >= Duration::from_millis(95) && waited < Duration::from_millis(400),
            "{waited:?}"
        );
    }
}
