//! What `/metrics` shows (Prometheus/OpenMetrics text). The counters are one process-wide
//! set, like the log: the code that learns an outcome counts it on the spot, with no
//! handle passed down to it. A CLI command counts too, into atomics nobody reads.
//! Values that live in the database (tickets by status, each mailbox's last success,
//! mail waiting) are read when the page is scraped, so they are right after a restart
//! and include what other instances and piped `maildesk ingest` did.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::config::Config;
use crate::domain::TicketStatus;
use crate::store::{self, Store, StoreError};

/// The media type of [`render`]'s text (Prometheus asks for it and parses it as such).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The label of counts that belong to no mailbox (the public form, piped mail without
/// `--mailbox`).
pub const NO_MAILBOX: &str = "(none)";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MailboxLabel {
    pub mailbox: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: String,
}

/// The route is the pattern axum matched (`/portal/tickets/{reference}`), never the
/// path asked for: one series per route, whatever clients send.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: &'static str,
    pub route: String,
    pub status: u16,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Registry,
    pub messages_fetched: Family<MailboxLabel, Counter>,
    pub messages_stored: Family<MailboxLabel, Counter>,
    pub messages_duplicates: Family<MailboxLabel, Counter>,
    pub messages_quarantined: Family<MailboxLabel, Counter>,
    pub imap_errors: Family<MailboxLabel, Counter>,
    pub imap_last_success: Family<MailboxLabel, Gauge>,
    pub outbox_queued: Counter,
    pub outbox_sent: Counter,
    pub outbox_failed: Counter,
    pub outbox_retries: Counter,
    pub outbox_waiting: Gauge,
    pub outbox_delivery: Histogram,
    pub webhooks_waiting: Gauge,
    pub webhooks_failed: Gauge,
    pub http_requests: HistogramFamily<HttpLabels>,
    pub tickets: Family<StatusLabel, Gauge>,
    pub db_pool_open: Gauge,
    pub db_pool_idle: Gauge,
    pub db_pool_max: Gauge,
}

/// Page times: 1 ms to 10 s.
fn http_histogram() -> Histogram {
    Histogram::new([
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ])
}

/// From commit to the SMTP server's acceptance: seconds to hours (retries).
fn delivery_histogram() -> Histogram {
    Histogram::new([
        0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0,
    ])
}

impl Metrics {
    fn new() -> Metrics {
        let mut m = Metrics {
            registry: Registry::default(),
            messages_fetched: Family::default(),
            messages_stored: Family::default(),
            messages_duplicates: Family::default(),
            messages_quarantined: Family::default(),
            imap_errors: Family::default(),
            imap_last_success: Family::default(),
            outbox_queued: Counter::default(),
            outbox_sent: Counter::default(),
            outbox_failed: Counter::default(),
            outbox_retries: Counter::default(),
            outbox_waiting: Gauge::default(),
            outbox_delivery: delivery_histogram(),
            webhooks_waiting: Gauge::default(),
            webhooks_failed: Gauge::default(),
            http_requests: Family::new_with_constructor(http_histogram),
            tickets: Family::default(),
            db_pool_open: Gauge::default(),
            db_pool_idle: Gauge::default(),
            db_pool_max: Gauge::default(),
        };
        let r = &mut m.registry;
        r.register(
            "maildesk_messages_fetched",
            "Messages fetched from an IMAP mailbox",
            m.messages_fetched.clone(),
        );
        r.register(
            "maildesk_messages_stored",
            "Messages stored on a ticket (new or threaded)",
            m.messages_stored.clone(),
        );
        r.register(
            "maildesk_messages_duplicates",
            "Messages already stored (or already in quarantine): nothing new stored",
            m.messages_duplicates.clone(),
        );
        r.register(
            "maildesk_messages_quarantined",
            "Messages put in quarantine",
            m.messages_quarantined.clone(),
        );
        r.register(
            "maildesk_imap_errors",
            "Failed IMAP sessions (each is retried with backoff)",
            m.imap_errors.clone(),
        );
        r.register(
            "maildesk_imap_last_success_timestamp_seconds",
            "When the mailbox was last synced without error (Unix time)",
            m.imap_last_success.clone(),
        );
        r.register(
            "maildesk_outbox_queued",
            "Mails queued for sending by this process",
            m.outbox_queued.clone(),
        );
        r.register(
            "maildesk_outbox_sent",
            "Mails accepted by the SMTP server",
            m.outbox_sent.clone(),
        );
        r.register(
            "maildesk_outbox_failed",
            "Mails failed for good (permanent refusal or too many attempts)",
            m.outbox_failed.clone(),
        );
        r.register(
            "maildesk_outbox_retries",
            "Temporary SMTP failures (the mail is tried again later)",
            m.outbox_retries.clone(),
        );
        r.register(
            "maildesk_outbox_waiting",
            "Mails in the outbox not yet sent or failed",
            m.outbox_waiting.clone(),
        );
        r.register(
            "maildesk_webhooks_waiting",
            "Webhook deliveries not yet made (due or waiting to be retried)",
            m.webhooks_waiting.clone(),
        );
        r.register(
            "maildesk_webhooks_failed",
            "Webhook deliveries given up on (an admin may retry them)",
            m.webhooks_failed.clone(),
        );
        r.register(
            "maildesk_outbox_delivery_seconds",
            "From the commit that queued a mail to the SMTP server's acceptance",
            m.outbox_delivery.clone(),
        );
        r.register(
            "maildesk_http_request_duration_seconds",
            "Time to the response headers, by matched route, method and status",
            m.http_requests.clone(),
        );
        r.register("maildesk_tickets", "Tickets by status", m.tickets.clone());
        r.register(
            "maildesk_db_pool_connections",
            "Open database connections",
            m.db_pool_open.clone(),
        );
        r.register(
            "maildesk_db_pool_idle_connections",
            "Open database connections not in use",
            m.db_pool_idle.clone(),
        );
        r.register(
            "maildesk_db_pool_max_connections",
            "The connection pool's limit (database.max_connections)",
            m.db_pool_max.clone(),
        );
        m
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

pub fn get() -> &'static Metrics {
    &METRICS
}

fn mailbox(name: Option<&str>) -> MailboxLabel {
    MailboxLabel {
        mailbox: name.unwrap_or(NO_MAILBOX).to_string(),
    }
}

/// Creates every configured mailbox's series at zero, so a rate is defined from the
/// first scrape and a quiet mailbox shows 0 rather than nothing.
pub fn register_mailboxes(config: &Config) {
    let m = get();
    for name in config.mailboxes.iter().map(|b| b.name.as_str()) {
        let label = mailbox(Some(name));
        let _ = m.messages_stored.get_or_create(&label);
        let _ = m.messages_duplicates.get_or_create(&label);
        let _ = m.messages_quarantined.get_or_create(&label);
        if config.mailbox(name).is_some_and(|b| b.is_imap()) {
            let _ = m.messages_fetched.get_or_create(&label);
            let _ = m.imap_errors.get_or_create(&label);
        }
    }
}

/// What became of a message that was taken in, as the counters tell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageFate {
    /// A new ticket or a reply threaded onto one.
    Stored,
    /// Seen before (including a message already waiting in quarantine).
    Duplicate,
    /// Newly quarantined.
    Quarantined,
}

/// Counts what became of a message (`None`: nothing was stored and it is retried).
pub fn message_outcome(mailbox_name: Option<&str>, fate: Option<MessageFate>) {
    let m = get();
    let family = match fate {
        Some(MessageFate::Stored) => &m.messages_stored,
        Some(MessageFate::Duplicate) => &m.messages_duplicates,
        Some(MessageFate::Quarantined) => &m.messages_quarantined,
        None => return,
    };
    family.get_or_create(&mailbox(mailbox_name)).inc();
}

pub fn messages_fetched(mailbox_name: &str, count: usize) {
    get()
        .messages_fetched
        .get_or_create(&mailbox(Some(mailbox_name)))
        .inc_by(count as u64);
}

pub fn imap_error(mailbox_name: &str) {
    get()
        .imap_errors
        .get_or_create(&mailbox(Some(mailbox_name)))
        .inc();
}

/// A mail accepted by the SMTP server, `latency` after the commit that queued it.
pub fn outbox_sent(latency: Duration) {
    let m = get();
    m.outbox_sent.inc();
    m.outbox_delivery.observe(latency.as_secs_f64());
}

/// The method as a label: the usual ones by name, anything else as `other` (a client
/// cannot make new series by inventing methods).
pub fn method_label(method: &axum::http::Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

pub fn http_request(method: &'static str, route: String, status: u16, elapsed: Duration) {
    get()
        .http_requests
        .get_or_create(&HttpLabels {
            method,
            route,
            status,
        })
        .observe(elapsed.as_secs_f64());
}

/// Reads what the database knows into the gauges (a few indexed counts).
pub async fn refresh(store: &Store, config: &Config) -> Result<(), StoreError> {
    let m = get();
    let pool = store.pool_use();
    m.db_pool_open.set(i64::from(pool.open));
    m.db_pool_idle.set(pool.idle as i64);
    m.db_pool_max.set(i64::from(pool.max));
    let mut conn = store.acquire().await?;
    let counts = store::tickets::count_by_status(&mut conn).await?;
    for status in TicketStatus::ALL {
        let count = counts
            .iter()
            .find(|(s, _)| s == status.as_str())
            .map_or(0, |(_, n)| *n);
        m.tickets
            .get_or_create(&StatusLabel {
                status: status.as_str().to_string(),
            })
            .set(count);
    }
    let waiting = store::outbox::count_by_status(&mut conn, "queued").await?
        + store::outbox::count_by_status(&mut conn, "sending").await?;
    m.outbox_waiting.set(waiting);
    m.webhooks_waiting
        .set(store::webhooks::count_in_state(&mut conn, "pending").await?);
    m.webhooks_failed
        .set(store::webhooks::count_in_state(&mut conn, "failed").await?);
    let states = store::imap::states(&mut conn).await?;
    for mailbox_config in config.mailboxes.iter().filter(|b| b.is_imap()) {
        let success = states
            .iter()
            .find(|s| s.mailbox == mailbox_config.name)
            .and_then(|s| s.last_success_at);
        let label = mailbox(Some(&mailbox_config.name));
        match success {
            Some(at) => {
                m.imap_last_success.get_or_create(&label).set(at);
            }
            // Never synced: no sample, rather than a 1970 that looks like a stale mailbox.
            None => {
                m.imap_last_success.remove(&label);
            }
        }
    }
    Ok(())
}

/// The exposition text of every metric.
pub fn render() -> String {
    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, &get().registry);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_counted_per_mailbox_like_the_cli_counts_them() {
        let label = mailbox(Some("unit-test-box"));
        let before = |f: &Family<MailboxLabel, Counter>| f.get_or_create(&label).get();
        let m = get();
        let (stored, dups, quarantined) = (
            before(&m.messages_stored),
            before(&m.messages_duplicates),
            before(&m.messages_quarantined),
        );
        let name = Some("unit-test-box");
        message_outcome(name, Some(MessageFate::Stored));
        message_outcome(name, Some(MessageFate::Duplicate));
        message_outcome(name, Some(MessageFate::Quarantined));
        message_outcome(name, None);
        assert_eq!(before(&m.messages_stored), stored + 1);
        assert_eq!(before(&m.messages_duplicates), dups + 1);
        assert_eq!(before(&m.messages_quarantined), quarantined + 1);
        let text = render();
        assert!(
            text.contains("maildesk_messages_stored_total{mailbox=\"unit-test-box\"}"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    /// The sample names the registry exports: counters as `_total`, histograms as
    /// `_bucket`, `_sum` and `_count`, gauges as they are.
    fn exported_names() -> std::collections::HashSet<String> {
        // A family without a series is not rendered at all: give each one.
        let name = Some("names-test-box");
        for fate in [
            MessageFate::Stored,
            MessageFate::Duplicate,
            MessageFate::Quarantined,
        ] {
            message_outcome(name, Some(fate));
        }
        messages_fetched("names-test-box", 1);
        imap_error("names-test-box");
        let m = get();
        m.imap_last_success.get_or_create(&mailbox(name)).set(1);
        m.tickets
            .get_or_create(&StatusLabel {
                status: "open".into(),
            })
            .set(0);
        http_request("GET", "/names-test".into(), 200, Duration::ZERO);
        let mut names = std::collections::HashSet::new();
        for line in render().lines() {
            let Some(rest) = line.strip_prefix("# TYPE ") else {
                continue;
            };
            let (name, kind) = rest.split_once(' ').unwrap();
            match kind {
                "counter" => {
                    names.insert(format!("{name}_total"));
                }
                "histogram" => {
                    for suffix in ["_bucket", "_sum", "_count"] {
                        names.insert(format!("{name}{suffix}"));
                    }
                }
                _ => {
                    names.insert(name.to_string());
                }
            }
        }
        names
    }

    #[test]
    fn the_grafana_dashboard_uses_only_exported_metrics() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/contrib/grafana-dashboard.json"
        );
        let dashboard: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let exported = exported_names();
        let mut queries: Vec<String> = Vec::new();
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                queries.push(target["expr"].as_str().unwrap().to_string());
            }
        }
        for variable in dashboard["templating"]["list"].as_array().unwrap() {
            if let Some(query) = variable["definition"].as_str() {
                queries.push(query.to_string());
            }
        }
        assert!(queries.len() >= 10, "{queries:?}");
        let mut used = std::collections::HashSet::new();
        for query in &queries {
            let mut rest = query.as_str();
            let mut found = false;
            while let Some(at) = rest.find("maildesk_") {
                let name: String = rest[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                assert!(
                    exported.contains(&name),
                    "{name} (in {query}) is not exported"
                );
                rest = &rest[at + name.len()..];
                used.insert(name);
                found = true;
            }
            assert!(found, "{query} names no maildesk metric");
        }
        // Every metric family is on the dashboard.
        for line in render().lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let family = rest.split(' ').next().unwrap();
                assert!(
                    used.iter().any(|u| u.starts_with(family)),
                    "{family} is on no panel"
                );
            }
        }
    }

    #[test]
    fn unknown_methods_make_no_new_series() {
        use axum::http::Method;
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::POST), "POST");
        let odd = Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&odd), "other");
    }

    #[test]
    fn http_series_are_histograms_with_route_labels() {
        http_request("GET", "/unit/{id}".into(), 200, Duration::from_millis(3));
        let text = render();
        let line = |le: &str| {
            text.lines()
                .find(|l| {
                    l.starts_with("maildesk_http_request_duration_seconds_bucket{")
                        && l.contains("method=\"GET\",route=\"/unit/{id}\",status=\"200\"")
                        && l.contains(&format!("le=\"{le}\""))
                })
                .unwrap_or_else(|| panic!("no bucket {le}: {text}"))
                .to_string()
        };
        assert!(line("0.0025").ends_with(" 0"), "{text}");
        assert!(line("0.005").ends_with(" 1"), "{text}");
        assert!(text.contains("# TYPE maildesk_http_request_duration_seconds histogram"));
    }
}
