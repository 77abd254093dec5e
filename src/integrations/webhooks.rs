//! Webhooks: admins register URLs for events; each event is POSTed to them as JSON,
//! signed, retried with backoff, at least once.
//!
//! The database writes the deliveries (triggers of migration 0017, in the transaction of
//! the change), so every change is announced whoever made it, and a delivery is never
//! lost between the change and the send. The worker here claims due deliveries with a
//! lease (two `serve` instances on one PostgreSQL never send one delivery at the same
//! time), POSTs them and records the outcome, visible to admins through the API.
//!
//! Each request carries:
//! - `X-Maildesk-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`
//!   (the receiver recomputes it and refuses old timestamps, against replays);
//! - `X-Maildesk-Event`: the event name;
//! - `X-Maildesk-Delivery`: the idempotency key, the same on every retry of a delivery
//!   (at-least-once: a receiver that saw the key already answers 2xx and does nothing).
//!
//! Where a webhook may point ([`crate::net::classify`]): never at link-local or cloud metadata
//! addresses, at loopback and private ones only with `webhooks.allow_private_targets`.
//! Checked when a webhook is registered or changed ([`check_target`]) and again at every
//! delivery on the addresses the name resolves to then, and the connection goes to one
//! of those checked addresses (a name re-pointed after registration, DNS rebinding,
//! gains nothing). An admin sees "could not connect" for every failure before an HTTP
//! answer, never the OS error or the port: the deliveries list must not work as a port
//! scanner of the daemon's network. The reason goes to the daemon's log.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{header, HeaderValue, Request, Uri};
use futures_util::StreamExt;
use hmac::{Hmac, Mac};
use http_body_util::Full;
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::rustls::{self, pki_types::ServerName};
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::WebhooksConfig;
use crate::net::{classify, Reach};
use crate::store::jobs::Finish;
use crate::store::{unix_now, webhooks as store, Store, StoreError};

/// The events a webhook may subscribe to.
pub const EVENTS: [&str; 5] = [
    "ticket.created",
    "message.received",
    "ticket.status_changed",
    "ticket.assigned",
    "task.changed",
];

pub const SIGNATURE_HEADER: &str = "x-maildesk-signature";
pub const EVENT_HEADER: &str = "x-maildesk-event";
pub const DELIVERY_HEADER: &str = "x-maildesk-delivery";

/// How long one delivery attempt may take, connection included.
const TIMEOUT: Duration = Duration::from_secs(10);
/// How long resolving a receiver's name may take when a webhook is registered.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);
/// What an admin sees for every failure before the receiver answered with a status:
/// the same words whatever happened (refused, unreachable, not HTTP, TLS, too slow), so
/// the deliveries list cannot tell open ports from closed ones (the 10 s is [`TIMEOUT`]).
pub const COULD_NOT_CONNECT: &str =
    "could not connect to the receiver, or it did not answer within 10 s (the daemon's log says why)";
/// Deliveries claimed (and sent concurrently) at a time.
const CLAIM_BATCH: i64 = 16;
/// How long a claim holds: well over one batch (all sent at once, each within TIMEOUT).
const LEASE_SECONDS: i64 = 60;
const IDLE_POLL: Duration = Duration::from_secs(1);
/// Delivered deliveries are kept this long for admins to look at, then pruned.
const KEEP_DELIVERED_SECS: i64 = 30 * 86_400;
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Checks an event list: known names, at least one, each once; returns it normalised
/// (comma-separated, in the order given).
pub fn parse_events(events: &[String]) -> Result<String, String> {
    if events.is_empty() {
        return Err(format!("name at least one of {}", EVENTS.join(", ")));
    }
    let mut seen: Vec<&str> = Vec::new();
    for event in events {
        let event = event.trim();
        if !EVENTS.contains(&event) {
            return Err(format!(
                "{event:?} is not an event; choose from {}",
                EVENTS.join(", ")
            ));
        }
        if !seen.contains(&event) {
            seen.push(event);
        }
    }
    Ok(seen.join(","))
}

/// Checks a webhook URL: absolute http(s) with a host, no credentials in it (they would
/// be shown to every admin; the signature authenticates us instead).
pub fn check_url(url: &str) -> Result<Uri, String> {
    let url = url.trim();
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err("the URL must start with http:// or https://".into()),
    }
    let authority = uri
        .authority()
        .ok_or_else(|| "the URL has no host".to_string())?;
    if authority.as_str().contains('@') {
        return Err("the URL must not carry a user name or password".into());
    }
    if authority.host().is_empty() {
        return Err("the URL has no host".into());
    }
    if url.len() > 2000 {
        return Err("the URL is longer than 2000 characters".into());
    }
    Ok(uri)
}

/// Whether a webhook may connect to `ip`: `Err` says why not, for the admin.
pub fn allowed(ip: IpAddr, config: &WebhooksConfig) -> Result<(), &'static str> {
    match classify(ip) {
        Reach::Public => Ok(()),
        Reach::Private if config.allow_private_targets => Ok(()),
        Reach::Private => Err(
            "a loopback or private address; webhooks.allow_private_targets = true allows those",
        ),
        Reach::Forbidden => Err(
            "a link-local, cloud metadata, multicast or otherwise reserved address, which webhooks never reach",
        ),
    }
}

/// The host and port a webhook URL connects to (brackets of an IPv6 literal removed).
fn host_and_port(uri: &Uri) -> (&str, u16) {
    let https = uri.scheme_str() == Some("https");
    let host = uri
        .host()
        .unwrap_or_default()
        .trim_matches(|c| c == '[' || c == ']');
    (host, uri.port_u16().unwrap_or(if https { 443 } else { 80 }))
}

/// Why a receiver's addresses cannot be used.
#[derive(Debug)]
pub enum TargetError {
    /// The name did not resolve (or not in time): the OS's reason.
    Unresolved(String),
    /// An address it resolves to is not allowed: the address and why.
    Refused(IpAddr, &'static str),
}

/// Every address `host` resolves to, each checked: the name is refused if any of them
/// is (a name that also points inward is not a public receiver).
pub async fn resolve_checked(
    host: &str,
    port: u16,
    config: &WebhooksConfig,
) -> Result<Vec<SocketAddr>, TargetError> {
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| TargetError::Unresolved(e.to_string()))?
        .collect();
    if addresses.is_empty() {
        return Err(TargetError::Unresolved("no address".into()));
    }
    for address in &addresses {
        allowed(address.ip(), config).map_err(|why| TargetError::Refused(address.ip(), why))?;
    }
    Ok(addresses)
}

/// Checks where a webhook URL (already through [`check_url`]) points, when it is
/// registered or changed: an address at once, a name by resolving it. A name that does
/// not resolve is refused (a typo is caught now, not after days of failed deliveries;
/// a receiver whose name is not published yet is registered once it is).
pub async fn check_target(uri: &Uri, config: &WebhooksConfig) -> Result<(), String> {
    let (host, port) = host_and_port(uri);
    let literal = host.parse::<IpAddr>().is_ok();
    let resolved = tokio::time::timeout(RESOLVE_TIMEOUT, resolve_checked(host, port, config))
        .await
        .map_err(|_| format!("{host} did not resolve within {RESOLVE_TIMEOUT:?}"))?;
    match resolved {
        Ok(_) => Ok(()),
        Err(TargetError::Unresolved(reason)) => {
            info!(host, reason, "webhook host name does not resolve");
            Err(format!("{host} does not resolve to an address"))
        }
        Err(TargetError::Refused(ip, why)) if literal => Err(format!("{ip} is {why}")),
        Err(TargetError::Refused(ip, why)) => {
            info!(host, %ip, "webhook host name resolves to an address refused");
            Err(format!("{host} resolves to {why}"))
        }
    }
}

/// A new webhook secret: `whsec_` and 256 random bits in hex.
pub fn new_secret() -> String {
    format!("whsec_{}", crate::domain::secret::random_token())
}

/// The `X-Maildesk-Signature` value for `body` sent at `timestamp`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// When to try again, and when to give up.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// The wait after the 1st, 2nd, … failed attempt; the last one repeats.
    pub delays: Vec<Duration>,
    /// Attempts in all before a delivery fails for good.
    pub max_attempts: i64,
    /// A delivery still failing this long after its event fails for good.
    pub give_up_after: Duration,
    /// ±20 % on each wait, so receivers coming back are not hit all at once.
    pub jitter: bool,
}

impl Default for RetryPolicy {
    /// 10 s, 30 s, 2 min, 10 min, 1 h, then every 3 h; 15 attempts or 3 days.
    fn default() -> Self {
        RetryPolicy {
            delays: [10, 30, 120, 600, 3600, 3 * 3600]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            max_attempts: 15,
            give_up_after: Duration::from_secs(3 * 86_400),
            jitter: true,
        }
    }
}

impl RetryPolicy {
    /// The wait after `attempts` failed attempts (at least a second: a pass never takes
    /// a delivery it retried itself).
    pub fn delay(&self, attempts: i64) -> Duration {
        let backoff = crate::runtime::jobs::Backoff::listed(self.delays.clone());
        let backoff = if self.jitter {
            backoff
        } else {
            backoff.exact()
        };
        let failures = u32::try_from(attempts.max(1)).unwrap_or(u32::MAX);
        backoff.delay(failures).max(Duration::from_secs(1))
    }

    fn gives_up(&self, attempts: i64, created_at: i64, now: i64) -> bool {
        attempts >= self.max_attempts
            || now.saturating_sub(created_at) >= self.give_up_after.as_secs() as i64
    }
}

/// Counts of one worker pass.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PassReport {
    pub delivered: u64,
    pub retried: u64,
    pub failed: u64,
}

/// Why an attempt did not deliver: the receiver's status, or what went wrong before one.
struct AttemptError {
    status: Option<u16>,
    message: String,
}

pub struct WebhookWorker {
    store: Store,
    retry: RetryPolicy,
    tls: TlsConnector,
    /// Where deliveries may go (`[webhooks]`).
    targets: WebhooksConfig,
}

impl WebhookWorker {
    pub fn new(store: Store, config: &WebhooksConfig) -> WebhookWorker {
        WebhookWorker {
            store,
            retry: RetryPolicy::default(),
            tls: tls_connector(),
            targets: config.clone(),
        }
    }

    /// Another retry schedule (tests: no waiting).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Delivers what is due, once (`run` loops over it; tests call it directly). Only
    /// what was due when the pass began: a delivery retried during the pass waits.
    pub async fn run_once(&self) -> Result<PassReport, StoreError> {
        let mut report = PassReport::default();
        let pass_started = unix_now();
        loop {
            let claimed = {
                let mut conn = self.store.acquire().await?;
                store::claim_due(
                    &mut conn,
                    self.store.backend(),
                    pass_started,
                    LEASE_SECONDS,
                    CLAIM_BATCH,
                )
                .await?
            };
            if claimed.is_empty() {
                return Ok(report);
            }
            let outcomes: Vec<Result<Sent, StoreError>> = futures_util::stream::iter(claimed)
                .map(|d| self.deliver(d))
                .buffer_unordered(CLAIM_BATCH as usize)
                .collect()
                .await;
            for outcome in outcomes {
                match outcome? {
                    Sent::Delivered => report.delivered += 1,
                    Sent::Retried => report.retried += 1,
                    Sent::Failed => report.failed += 1,
                    Sent::TakenOver => {}
                }
            }
        }
    }

    async fn deliver(&self, d: store::Claimed) -> Result<Sent, StoreError> {
        let result = self.attempt(&d).await;
        let now = unix_now();
        let (outcome, sent) = match &result {
            Ok(status) => (
                Finish::Done {
                    status: Some(i64::from(*status)),
                },
                Sent::Delivered,
            ),
            Err(e) if self.retry.gives_up(d.attempts, d.created_at, now) => (
                Finish::Dead {
                    status: e.status.map(i64::from),
                    error: &e.message,
                },
                Sent::Failed,
            ),
            Err(e) => (
                Finish::Retry {
                    status: e.status.map(i64::from),
                    error: &e.message,
                    at: now + self.retry.delay(d.attempts).as_secs_f64().ceil() as i64,
                },
                Sent::Retried,
            ),
        };
        let mut conn = self.store.acquire().await?;
        if !store::finish(&mut conn, d.id, d.attempts, outcome, now).await? {
            info!(
                delivery_id = d.id,
                "webhook delivery taken over by another worker"
            );
            return Ok(Sent::TakenOver);
        }
        match (&result, sent) {
            (Ok(status), _) => {
                info!(delivery_id = d.id, webhook_id = d.webhook_id, event = %d.event, status, "webhook delivered");
            }
            (Err(e), Sent::Failed) => {
                warn!(delivery_id = d.id, webhook_id = d.webhook_id, event = %d.event, attempts = d.attempts, error = %e.message, "webhook delivery failed for good");
            }
            (Err(e), _) => {
                warn!(delivery_id = d.id, webhook_id = d.webhook_id, event = %d.event, attempts = d.attempts, error = %e.message, "webhook not delivered; will retry");
            }
        }
        Ok(sent)
    }

    /// One POST; the status if it was 2xx. A failure before an answer is logged with its
    /// reason and recorded for admins as [`COULD_NOT_CONNECT`] (or why the address is
    /// refused).
    async fn attempt(&self, d: &store::Claimed) -> Result<u16, AttemptError> {
        let failed = |message: String| AttemptError {
            status: None,
            message,
        };
        let unreachable = |reason: String| {
            warn!(
                delivery_id = d.id,
                webhook_id = d.webhook_id,
                reason,
                "cannot reach the webhook receiver"
            );
            failed(COULD_NOT_CONNECT.to_string())
        };
        let uri = check_url(&d.url).map_err(failed)?;
        let body = Bytes::from(d.payload.clone());
        let request = Request::post(uri.path_and_query().map_or("/", |p| p.as_str()))
            .header(header::HOST, uri.authority().map_or("", |a| a.as_str()))
            .header(header::CONTENT_TYPE, "application/json")
            .header(
                header::USER_AGENT,
                concat!("maildesk/", env!("CARGO_PKG_VERSION")),
            )
            .header(EVENT_HEADER, &d.event)
            .header(DELIVERY_HEADER, &d.idempotency_key)
            .header(SIGNATURE_HEADER, signature(&d.secret, unix_now(), &body))
            .body(Full::new(body))
            .map_err(|e| failed(e.to_string()))?;
        let status = tokio::time::timeout(TIMEOUT, self.post(&uri, request))
            .await
            .map_err(|_| unreachable(format!("no answer within {TIMEOUT:?}")))?
            .map_err(|e| match e {
                PostError::Refused(ip, why) => {
                    warn!(delivery_id = d.id, webhook_id = d.webhook_id, %ip, "webhook receiver address refused");
                    failed(format!("the receiver's address is {why}"))
                }
                PostError::Failed(reason) => unreachable(reason),
            })?;
        if (200..300).contains(&status) {
            Ok(status)
        } else {
            Err(AttemptError {
                status: Some(status),
                message: format!(
                    "the receiver answered {status}{}",
                    axum::http::StatusCode::from_u16(status)
                        .ok()
                        .and_then(|s| s.canonical_reason())
                        .map(|r| format!(" {r}"))
                        .unwrap_or_default()
                ),
            })
        }
    }

    /// Resolves and checks the receiver's addresses, connects to one of them (TLS for
    /// https, the certificate checked against the URL's host) and sends `request` over
    /// HTTP/1.1; the answer's status. Redirects are not followed: a 3xx is a failed
    /// attempt (the admin fixes the URL).
    async fn post(&self, uri: &Uri, request: Request<Full<Bytes>>) -> Result<u16, PostError> {
        let https = uri.scheme_str() == Some("https");
        let (host, port) = host_and_port(uri);
        let addresses = resolve_checked(host, port, &self.targets)
            .await
            .map_err(|e| match e {
                TargetError::Unresolved(reason) => {
                    PostError::Failed(format!("cannot resolve {host}: {reason}"))
                }
                TargetError::Refused(ip, why) => PostError::Refused(ip, why),
            })?;
        let tcp = crate::net::connect(&addresses[..], TIMEOUT)
            .await
            .map_err(|e| PostError::Failed(format!("cannot connect to {host}:{port}: {e}")))?;
        if https {
            let name = ServerName::try_from(host.to_string()).map_err(|e| {
                PostError::Failed(format!("{host:?} is not a valid server name: {e}"))
            })?;
            let tls = self
                .tls
                .connect(name, tcp)
                .await
                .map_err(|e| PostError::Failed(format!("TLS with {host}: {e}")))?;
            send(tls, request).await.map_err(PostError::Failed)
        } else {
            send(tcp, request).await.map_err(PostError::Failed)
        }
    }

    /// The daemon loop: deliver what is due, then look again every second; prune old
    /// delivered deliveries now and then.
    #[tracing::instrument(name = "webhooks", skip_all)]
    pub async fn run(self, token: CancellationToken) {
        let mut last_prune: Option<tokio::time::Instant> = None;
        while !token.is_cancelled() {
            if let Err(e) = self.run_once().await {
                warn!(error = %e, "webhook pass failed");
            }
            if last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
                last_prune = Some(tokio::time::Instant::now());
                if let Err(e) = self.prune().await {
                    warn!(error = %e, "cannot prune delivered webhook deliveries");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(IDLE_POLL) => {}
                _ = token.cancelled() => {}
            }
        }
        info!("webhooks stopped");
    }

    async fn prune(&self) -> Result<(), StoreError> {
        let mut conn = self.store.acquire().await?;
        let pruned = store::prune_delivered(&mut conn, unix_now() - KEEP_DELIVERED_SECS).await?;
        if pruned > 0 {
            info!(pruned, "old delivered webhook deliveries pruned");
        }
        Ok(())
    }
}

/// Why a POST got no answer.
enum PostError {
    /// An address the receiver's name resolves to is not allowed (and why).
    Refused(IpAddr, &'static str),
    /// Anything else before an answer: the reason, for the log only.
    Failed(String),
}

#[derive(Clone, Copy)]
enum Sent {
    Delivered,
    Retried,
    Failed,
    TakenOver,
}

async fn send<T>(io: T, request: Request<Full<Bytes>>) -> Result<u16, String>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
            .await
            .map_err(|e| format!("HTTP: {e}"))?;
    // The connection is driven beside the request and dropped with it.
    let driver = tokio::spawn(connection);
    let answer = sender.send_request(request).await;
    driver.abort();
    answer
        .map(|response| response.status().as_u16())
        .map_err(|e| format!("HTTP: {e}"))
}

/// Public roots (webpki), the ring provider (as the IMAP client).
fn tls_connector() -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

/// Header value helper for tests and docs: the signature header parsed back.
pub fn parse_signature(value: &HeaderValue) -> Option<(i64, String)> {
    let text = value.to_str().ok()?;
    let mut timestamp = None;
    let mut v1 = None;
    for part in text.split(',') {
        match part.trim().split_once('=')? {
            ("t", t) => timestamp = t.parse().ok(),
            ("v1", s) => v1 = Some(s.to_string()),
            _ => {}
        }
    }
    Some((timestamp?, v1?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_of_timestamp_dot_body() {
        // Computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_test
        let sig = signature("whsec_test", 1_700_000_000, br#"{"a":1}"#);
        let (t, v1) = parse_signature(&HeaderValue::from_str(&sig).unwrap()).unwrap();
        assert_eq!(t, 1_700_000_000);
        assert_eq!(
            v1,
            "38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
        );
        assert_ne!(sig, signature("whsec_other", 1_700_000_000, br#"{"a":1}"#));
        assert_ne!(sig, signature("whsec_test", 1_700_000_001, br#"{"a":1}"#));
    }

    #[test]
    fn urls_must_be_http_with_a_host_and_no_credentials() {
        assert!(check_url("https://hooks.example.com/maildesk?x=1").is_ok());
        assert!(check_url("http://127.0.0.1:8080/").is_ok());
        assert!(check_url("ftp://example.com/").is_err());
        assert!(check_url("file:///etc/passwd").is_err());
        assert!(check_url("/relative").is_err());
        assert!(check_url("https://user:pw@example.com/").is_err());
        assert!(check_url("not a url").is_err());
    }

    #[test]
    fn private_targets_need_the_key_and_forbidden_ones_are_refused_even_with_it() {
        let off = WebhooksConfig::default();
        let on = WebhooksConfig {
            allow_private_targets: true,
        };
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(allowed(ip("93.184.216.34"), &off).is_ok());
        assert!(allowed(ip("127.0.0.1"), &off).is_err());
        assert!(allowed(ip("127.0.0.1"), &on).is_ok());
        assert!(allowed(ip("169.254.169.254"), &on).is_err());
        assert!(allowed(ip("fd00:ec2::254"), &on).is_err());
    }

    #[tokio::test]
    async fn registration_checks_literals_and_what_names_resolve_to() {
        let off = WebhooksConfig::default();
        let on = WebhooksConfig {
            allow_private_targets: true,
        };
        let check = |url: &str, config: &WebhooksConfig| {
            let uri = check_url(url).unwrap();
            let config = config.clone();
            async move { check_target(&uri, &config).await }
        };
        let refused = check("http://169.254.169.254/latest/meta-data", &on)
            .await
            .unwrap_err();
        assert!(refused.contains("metadata"), "{refused}");
        assert!(check("http://[fd00:ec2::254]/", &on).await.is_err());
        let refused = check("http://127.0.0.1:9/", &off).await.unwrap_err();
        assert!(refused.contains("allow_private_targets"), "{refused}");
        assert!(check("http://127.0.0.1:9/", &on).await.is_ok());
        assert!(check("http://[::1]:9/", &on).await.is_ok());
        // A name is judged by what it resolves to (no network needed for localhost).
        assert!(check("http://localhost:9/", &off).await.is_err());
        assert!(check("http://localhost:9/", &on).await.is_ok());
        assert!(check("http://does-not-exist.invalid/", &on).await.is_err());
    }

    #[test]
    fn events_are_known_names_each_once() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse_events(&names(&[
                "ticket.created",
                "task.changed",
                "ticket.created"
            ])),
            Ok("ticket.created,task.changed".into())
        );
        assert!(parse_events(&names(&[])).is_err());
        assert!(parse_events(&names(&["ticket.deleted"])).is_err());
    }

    #[test]
    fn retries_back_off_then_give_up() {
        let policy = RetryPolicy {
            jitter: false,
            ..RetryPolicy::default()
        };
        assert_eq!(policy.delay(1), Duration::from_secs(10));
        assert_eq!(policy.delay(3), Duration::from_secs(120));
        assert_eq!(policy.delay(40), Duration::from_secs(3 * 3600));
        assert!(!policy.gives_up(3, 1000, 1000 + 3600));
        assert!(policy.gives_up(15, 1000, 1001));
        assert!(policy.gives_up(2, 0, 3 * 86_400));
        let instant = RetryPolicy {
            delays: vec![Duration::ZERO],
            ..policy
        };
        assert_eq!(instant.delay(1), Duration::from_secs(1), "never zero");
    }
}
