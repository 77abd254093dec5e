//! Configuration: defaults → `config.toml` → `MAILDESK_*` environment → command-line
//! overrides, then secrets from `*_file` keys, then [`Config::validate`]. Every error
//! names the key (or variable) at fault.

use crate::domain::secret::Secret;
use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::domain::address;

/// Top-level sections, also the prefixes `MAILDESK_<SECTION>_<KEY>` maps onto.
const SECTIONS: &[&str] = &[
    "database",
    "web",
    "helpdesk",
    "ingest",
    "smtp",
    "outbound",
    "retention",
    "metrics",
    "log",
    "webhooks",
];

/// Environment variables with the `MAILDESK_` prefix that are not configuration keys.
const NON_KEY_VARIABLES: &[&str] = &["MAILDESK_CONFIG", "MAILDESK_LOG"];

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The file this configuration was read from (not a key).
    #[serde(skip)]
    pub source_file: Option<PathBuf>,
    pub database: DatabaseConfig,
    pub web: WebConfig,
    pub helpdesk: HelpdeskConfig,
    pub ingest: IngestConfig,
    #[serde(rename = "mailbox")]
    pub mailboxes: Vec<MailboxConfig>,
    pub smtp: Option<SmtpConfig>,
    pub outbound: OutboundConfig,
    pub retention: RetentionConfig,
    pub metrics: MetricsConfig,
    pub log: LogConfig,
    pub webhooks: WebhooksConfig,
}

/// How long data is kept. Unset: forever.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// The original bytes of the messages of a ticket closed longer than this many days
    /// are purged (the parsed message stays); `serve` does it hourly, `maildesk purge` now.
    pub raw_days: Option<u32>,
}

/// `/metrics` (Prometheus text format). It names mailboxes and counts mail, so it is not
/// for everyone: without a token only a client on this machine (not through a proxy)
/// may read it; with one, every scraper must send `Authorization: Bearer <token>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    pub enabled: bool,
    /// An address of its own (e.g. `127.0.0.1:9187`); `/metrics` is then not on the
    /// portal's listener.
    pub listen: Option<String>,
    pub token: Option<Secret>,
    pub token_file: Option<PathBuf>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            listen: None,
            token: None,
            token_file: None,
        }
    }
}

/// Where webhooks may deliver. Link-local and cloud metadata addresses are never
/// allowed (`crate::net::classify`); loopback and private ranges only when this says
/// so, so an admin cannot make the daemon reach into its own network by default.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// Allow targets on loopback (127.0.0.0/8, ::1) and private ranges (10/8,
    /// 172.16/12, 192.168/16, 100.64/10, fc00::/7): a receiver on this machine or the
    /// local network.
    pub allow_private_targets: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
}

/// How log lines are written to standard error.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// For people: coloured only on a terminal.
    #[default]
    Text,
    /// One JSON object per line, for a log collector.
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://path` (relative paths are relative to the config file) or `postgres://…`.
    pub url: Secret,
    pub url_file: Option<PathBuf>,
    pub max_connections: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    pub listen: String,
    /// The address users reach the portal at (e.g. `https://help.example.com`); an
    /// `https` URL makes session cookies `Secure` with the `__Host-` prefix.
    pub public_url: Option<String>,
    /// Believe `X-Forwarded-For` / `X-Forwarded-Proto` (only behind a reverse proxy that
    /// sets them; otherwise any client could claim another address).
    pub trust_proxy_headers: bool,
    /// A session ends after this long without a request...
    pub session_idle_minutes: u32,
    /// ...and after this long in any case.
    pub session_max_hours: u32,
    /// Failed sign-ins allowed per account and per client address within the window.
    pub login_failures_per_account: u32,
    pub login_failures_per_client: u32,
    pub login_window_minutes: u32,
    /// The public page `/` where customers submit tickets (404 when off).
    pub public_form: bool,
    /// Largest single attachment on the public form and the customer's reply box...
    pub public_max_attachment_bytes: u64,
    /// ...and all attachments of one submission together.
    pub public_max_upload_bytes: u64,
    /// Submissions (and web replies) allowed per e-mail address and per client address
    /// within the window.
    pub public_per_address: u32,
    pub public_per_client: u32,
    pub public_window_minutes: u32,
    /// How long the link to a customer's own ticket page (in our mail) works.
    pub customer_link_days: u32,
    /// How long an invitation link to register as staff stays valid.
    pub invitation_hours: u32,
    /// Origins (`https://crm.example.com`) whose pages may call the API from a browser
    /// with a token (CORS); none by default. Cookies are never sent cross-origin.
    pub cors_origins: Vec<String>,
    /// API requests allowed per token (or signed-in user) and per client address, per
    /// minute, in each instance (0: no limit). Over it: 429 with Retry-After.
    pub api_per_token_per_minute: u32,
    pub api_per_client_per_minute: u32,
    /// Password hashes (argon2, ~19 MiB each) computed at once in this process; 0: one
    /// per core. Sign-ins and registrations beyond it wait...
    pub password_hashes_at_once: u32,
    /// ...at most this long, then get 503 with `Retry-After`.
    pub password_hash_wait_ms: u32,
    /// A request's headers must arrive within this; also how long a kept-alive
    /// connection waits for its next request.
    pub header_read_timeout_seconds: u32,
    /// A connection on which nothing is read or written for this long is closed (a
    /// stalled upload, a client that stopped reading).
    pub idle_timeout_seconds: u32,
    /// Open connections at most; beyond it new ones wait in the kernel's queue. Lowered
    /// at start to fit the process's open-file limit.
    pub max_connections: u32,
    /// Live-update streams (`/portal/events`) per session, and in all.
    pub live_streams_per_session: u32,
    pub live_streams_total: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HelpdeskConfig {
    pub name: String,
    pub support_addresses: Vec<String>,
    pub subject_prefix: String,
    pub signing_secret: Option<Secret>,
    pub signing_secret_file: Option<PathBuf>,
    pub categories: Vec<String>,
    pub default_category: String,
    pub reopen_closed_days: u32,
    /// Who may add people to a ticket by writing to or copying them.
    pub add_participants: AddParticipants,
    /// When set, staff mail must also carry an `Authentication-Results` header from this
    /// server (authserv-id) with an aligned `dmarc=pass` or `dkim=pass`.
    pub trusted_authserv_id: Option<String>,
}

/// Whose mail makes the people in its To/Cc (and the writer) participants of a ticket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AddParticipants {
    /// Mail from the ticket's participants and verified staff (a stranger who threads in
    /// by quoting a Message-ID is kept on the ticket but joins nobody to it).
    #[default]
    Participants,
    /// Anyone whose mail threads onto the ticket (the trusting behaviour of older versions).
    Anyone,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    pub max_message_bytes: u64,
    /// Messages stored per transaction (IMAP fetch batches, mbox import).
    pub batch_messages: usize,
}

/// A mailbox. Without `host` it only names piped mail (`maildesk ingest --mailbox`);
/// with `host` maildesk watches it over IMAP.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailboxConfig {
    pub name: String,
    pub category: Option<String>,
    pub host: Option<String>,
    /// Default: 993 for `tls`, 143 otherwise.
    pub port: Option<u16>,
    #[serde(default)]
    pub security: Security,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub password_file: Option<PathBuf>,
    /// XOAUTH2 (Gmail, Microsoft 365): a shell command printing a fresh access token.
    pub oauth2_token_command: Option<String>,
    /// Extra CA certificate(s) (PEM) to trust, for private servers.
    pub ca_file: Option<PathBuf>,
    #[serde(default = "default_folder")]
    pub folder: String,
    #[serde(default)]
    pub after: AfterAction,
    #[serde(default = "default_move_to")]
    pub move_to: String,
    /// Where quarantined messages are moved; empty leaves them in place.
    #[serde(default = "default_quarantine_folder")]
    pub quarantine_folder: String,
    #[serde(default = "default_poll_seconds")]
    pub poll_seconds: u64,
    /// Use IMAP IDLE when the server has it (instant delivery); polling otherwise.
    #[serde(default = "default_true")]
    pub idle: bool,
    /// Staff addresses told about new tickets here (default: every active user).
    pub notify: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// Implicit TLS (imaps, port 993).
    #[default]
    Tls,
    Starttls,
    /// No encryption: refused unless the host is on this machine.
    Plain,
}

/// What happens on the IMAP server once a message is safely in the database.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AfterAction {
    #[default]
    Move,
    Seen,
    None,
}

fn default_folder() -> String {
    "INBOX".into()
}
fn default_move_to() -> String {
    "Processed".into()
}
fn default_quarantine_folder() -> String {
    "Quarantine".into()
}
fn default_poll_seconds() -> u64 {
    60
}
fn default_true() -> bool {
    true
}

impl MailboxConfig {
    pub fn is_imap(&self) -> bool {
        self.host.is_some()
    }

    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.security {
            Security::Tls => 993,
            Security::Starttls | Security::Plain => 143,
        })
    }

    fn validate_imap(&self, i: usize) -> Result<(), ConfigError> {
        let key = |k: &str| format!("mailbox[{i}].{k}");
        let Some(host) = self.host.as_deref() else {
            return Ok(());
        };
        if host.trim().is_empty() {
            return Err(key_error(key("host"), "must not be empty"));
        }
        if self.security == Security::Plain && !crate::net::is_loopback_host(host) {
            return Err(key_error(key("security"), format!("\"plain\" sends the password unencrypted; it is allowed only for this machine, not {host:?} (use tls or starttls)")));
        }
        if self.username.as_deref().is_none_or(|u| u.trim().is_empty()) {
            return Err(key_error(
                key("username"),
                "is required for an IMAP mailbox",
            ));
        }
        let credentials = [
            self.password.is_some(),
            self.password_file.is_some(),
            self.oauth2_token_command.is_some(),
        ];
        if credentials.iter().filter(|c| **c).count() != 1 {
            return Err(key_error(
                key("password"),
                "set exactly one of password, password_file or oauth2_token_command",
            ));
        }
        if self.folder.trim().is_empty() {
            return Err(key_error(key("folder"), "must not be empty"));
        }
        if self.after == AfterAction::Move && self.move_to.trim().is_empty() {
            return Err(key_error(
                key("move_to"),
                "must name a folder when after = \"move\"",
            ));
        }
        if self.after == AfterAction::Move && self.move_to == self.folder {
            return Err(key_error(
                key("move_to"),
                "must differ from the watched folder",
            ));
        }
        if self.poll_seconds == 0 {
            return Err(key_error(key("poll_seconds"), "must be at least 1"));
        }
        if let Some(ca) = &self.ca_file {
            if !ca.is_file() {
                return Err(key_error(
                    key("ca_file"),
                    format!("{} is not a readable file", ca.display()),
                ));
            }
        }
        Ok(())
    }
}

/// The SMTP server outgoing mail is handed to. Without `[smtp]`, nothing is sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    /// Default: 465 for `tls`, 587 for `starttls`, 25 for `plain`.
    pub port: Option<u16>,
    #[serde(default = "default_smtp_security")]
    pub security: Security,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub password_file: Option<PathBuf>,
    /// The From of our mail, e.g. `"Support <support@example.com>"`; default: the first
    /// support address with the helpdesk name.
    pub from: Option<String>,
    pub ca_file: Option<PathBuf>,
    /// How long connecting, and then each message, may take (default 30 s).
    pub timeout_seconds: Option<u64>,
}

fn default_smtp_security() -> Security {
    Security::Starttls
}

impl SmtpConfig {
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.security {
            Security::Tls => 465,
            Security::Starttls => 587,
            Security::Plain => 25,
        })
    }
}

/// What maildesk sends, and the limits that keep it from flooding anyone.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboundConfig {
    /// Acknowledge new tickets to the customer (never automatic mail).
    pub acknowledgements: bool,
    /// At most this many acknowledgements to one sender per rate window.
    pub acknowledgements_per_sender_per_hour: u32,
    /// At most this many customer-facing mails to one recipient per rate window; more
    /// are not sent (logged), which is what ends a loop with a misbehaving auto-responder.
    pub max_per_recipient_per_hour: u32,
    /// The window the two limits above count in (default 60 minutes).
    pub rate_window_minutes: u32,
    /// Reply-To carries a signed plus-address (`support+42-…@`) so replies thread even
    /// when a mail client drops the references.
    pub plus_address_reply_to: bool,
    /// Delivery attempts before a mail is marked failed on its ticket.
    pub max_attempts: u32,
    /// First retry after a temporary SMTP failure; doubles per attempt (capped at an hour).
    pub retry_seconds: u64,
    /// A sending instance holds each mail this long past the moment it hands it to SMTP;
    /// when it dies, another instance sends the mail after at most this long.
    pub claim_lease_seconds: u32,
    /// Staff hear of new tickets (the mailbox's `notify` list, else every active user).
    pub new_ticket_notifications: bool,
    /// The assignee (or, unassigned, the staff list) hears of customer replies.
    pub reply_notifications: bool,
    /// A staff member assigned by someone else hears of it.
    pub assignment_notifications: bool,
    /// A staff member someone else gave a task to hears of it.
    pub task_notifications: bool,
    /// Staff replies by e-mail are relayed to the customer (else they stay internal).
    pub staff_replies: bool,
    /// The customer hears when their ticket is resolved.
    pub resolved_notices: bool,
    /// A hard-bounced address gets no mail for this many days.
    pub bounce_suppress_days: u32,
}

impl OutboundConfig {
    pub fn rate_window_secs(&self) -> i64 {
        i64::from(self.rate_window_minutes) * 60
    }
}

impl Default for OutboundConfig {
    fn default() -> Self {
        OutboundConfig {
            acknowledgements: true,
            acknowledgements_per_sender_per_hour: 3,
            max_per_recipient_per_hour: 30,
            rate_window_minutes: 60,
            plus_address_reply_to: true,
            max_attempts: 8,
            retry_seconds: 30,
            claim_lease_seconds: 120,
            new_ticket_notifications: true,
            reply_notifications: true,
            assignment_notifications: true,
            task_notifications: true,
            staff_replies: true,
            resolved_notices: true,
            bounce_suppress_days: 7,
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: Secret("sqlite://data/maildesk.db".into()),
            url_file: None,
            max_connections: 8,
        }
    }
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            public_url: None,
            trust_proxy_headers: false,
            session_idle_minutes: 8 * 60,
            session_max_hours: 7 * 24,
            login_failures_per_account: 5,
            login_failures_per_client: 20,
            login_window_minutes: 15,
            public_form: true,
            public_max_attachment_bytes: 10 * 1024 * 1024,
            public_max_upload_bytes: 20 * 1024 * 1024,
            public_per_address: 5,
            public_per_client: 20,
            public_window_minutes: 60,
            customer_link_days: 30,
            invitation_hours: 72,
            cors_origins: Vec::new(),
            api_per_token_per_minute: 600,
            api_per_client_per_minute: 1200,
            password_hashes_at_once: 0,
            password_hash_wait_ms: 3000,
            header_read_timeout_seconds: 10,
            idle_timeout_seconds: 60,
            max_connections: 1024,
            live_streams_per_session: 8,
            live_streams_total: 256,
        }
    }
}

impl Default for HelpdeskConfig {
    fn default() -> Self {
        Self {
            name: "Support".into(),
            support_addresses: vec!["support@example.com".into()],
            subject_prefix: "Support".into(),
            signing_secret: None,
            signing_secret_file: None,
            categories: ["network", "hardware", "software", "other"]
                .map(String::from)
                .to_vec(),
            default_category: "other".into(),
            reopen_closed_days: 14,
            add_participants: AddParticipants::default(),
            trusted_authserv_id: None,
        }
    }
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            max_message_bytes: 25 * 1024 * 1024,
            batch_messages: 200,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{key}: {message}")]
    Key { key: String, message: String },
    #[error("no configuration file: looked for {}; pass --config PATH (or set MAILDESK_CONFIG)", .looked.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" and "))]
    NoFile { looked: Vec<PathBuf> },
}

/// Where a command looks for its configuration when none is named: the working
/// directory's, then the system's (what the service uses).
pub const DEFAULT_FILES: &[&str] = &["config.toml", "/etc/maildesk/config.toml"];

/// The first of `candidates` that exists.
pub fn find_file(candidates: &[&str]) -> Result<PathBuf, ConfigError> {
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| ConfigError::NoFile {
            looked: candidates.iter().map(PathBuf::from).collect(),
        })
}

fn key_error(key: impl Into<String>, message: impl fmt::Display) -> ConfigError {
    ConfigError::Key {
        key: key.into(),
        message: message.to_string(),
    }
}

/// Where the configuration comes from.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    /// The file; `required` is false for the implicit `./config.toml`.
    pub file: Option<PathBuf>,
    pub file_required: bool,
    /// `MAILDESK_*` variables (pass `std::env::vars()`).
    pub env: Vec<(String, String)>,
    /// `section.key=value` overrides from the command line, applied last.
    pub overrides: Vec<(String, String)>,
}

impl Config {
    pub fn load(sources: &Sources) -> Result<Config, ConfigError> {
        let (mut table, base_dir) = read_file(sources)?;
        // Which keys came from which variable, so an error names the variable.
        let mut from_env: Vec<(String, String)> = Vec::new();
        for (name, value) in &sources.env {
            if let Some(key) = apply_env(&mut table, name, value)? {
                from_env.push((key, name.clone()));
            }
        }
        for (key, value) in &sources.overrides {
            set_dotted(&mut table, key, value)?;
            from_env.retain(|(k, _)| k != key);
        }
        let source_file = base_dir.as_ref().and(sources.file.clone());
        let mut loaded = Self::from_table(table, base_dir).map_err(|e| match e {
            ConfigError::Key { key, message } => match from_env.iter().find(|(k, _)| *k == key) {
                Some((_, variable)) => key_error(format!("{variable} ({key})"), message),
                None => ConfigError::Key { key, message },
            },
            other => other,
        })?;
        loaded.source_file = source_file;
        Ok(loaded)
    }

    fn from_table(table: toml::Table, base_dir: Option<PathBuf>) -> Result<Config, ConfigError> {
        let mut config: Config = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| {
                let path = e.path().to_string();
                let message = e.into_inner().to_string();
                let first_line = message.lines().next().unwrap_or_default().to_string();
                key_error(if path == "." { "config".into() } else { path }, first_line)
            })?;
        config.resolve_secret_files()?;
        if let Some(dir) = base_dir {
            config.database.url = Secret(resolve_sqlite_path(config.database.url.expose(), &dir));
        }
        config.validate()?;
        Ok(config)
    }

    /// The database URL without its password, for messages.
    pub fn database_display(&self) -> String {
        let url = self.database.url.expose();
        match url::Url::parse(url) {
            Ok(mut parsed) if parsed.password().is_some() => {
                let _ = parsed.set_password(None);
                parsed.to_string()
            }
            // Unreadable, yet it may hold credentials: show the scheme only.
            Err(_) if url.contains('@') => {
                let scheme = url.split(':').next().unwrap_or_default();
                format!("{scheme}://…")
            }
            _ => url.to_string(),
        }
    }

    fn resolve_secret_files(&mut self) -> Result<(), ConfigError> {
        if let Some(path) = &self.database.url_file {
            self.database.url = Secret(read_secret_file("database.url_file", path)?);
        }
        self.resolve_signing_secret_file()
    }

    /// Reads the IMAP and SMTP passwords and the metrics token from their `*_file` keys.
    /// Only what talks to those servers or serves `/metrics` (`serve`, `fetch`, `send`,
    /// `check`) calls this: the files may be
    /// systemd credentials (`LoadCredential=`) that only the service can read, and the
    /// MTA's `maildesk ingest` or an admin's `maildesk user add` must still work.
    pub fn load_connection_secrets(&mut self) -> Result<(), ConfigError> {
        if let Some(smtp) = &mut self.smtp {
            if let Some(path) = &smtp.password_file {
                smtp.password = Some(Secret(read_secret_file("smtp.password_file", path)?));
            }
        }
        for (i, mailbox) in self.mailboxes.iter_mut().enumerate() {
            if let Some(path) = &mailbox.password_file {
                mailbox.password = Some(Secret(read_secret_file(
                    &format!("mailbox[{i}].password_file"),
                    path,
                )?));
            }
        }
        if let Some(path) = &self.metrics.token_file {
            if self.metrics.token.is_some() {
                return Err(key_error(
                    "metrics.token_file",
                    "set either token or token_file, not both",
                ));
            }
            self.metrics.token = Some(Secret(read_secret_file("metrics.token_file", path)?));
            self.validate_metrics()?;
        }
        Ok(())
    }

    fn resolve_signing_secret_file(&mut self) -> Result<(), ConfigError> {
        if let Some(path) = &self.helpdesk.signing_secret_file {
            if self.helpdesk.signing_secret.is_some() {
                return Err(key_error(
                    "helpdesk.signing_secret_file",
                    "set either signing_secret or signing_secret_file, not both",
                ));
            }
            self.helpdesk.signing_secret = Some(Secret(read_secret_file(
                "helpdesk.signing_secret_file",
                path,
            )?));
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let url = self.database.url.expose();
        if Backend::from_url(url).is_none() {
            return Err(key_error(
                "database.url",
                "must start with sqlite:// or postgres:// (or postgresql://)",
            ));
        }
        if self.database.max_connections == 0 {
            return Err(key_error("database.max_connections", "must be at least 1"));
        }
        self.validate_web()?;
        self.validate_public_uploads()?;
        self.validate_helpdesk()?;
        if self.ingest.batch_messages == 0 {
            return Err(key_error("ingest.batch_messages", "must be at least 1"));
        }
        if self.ingest.max_message_bytes < 1024 {
            return Err(key_error(
                "ingest.max_message_bytes",
                "must be at least 1024",
            ));
        }
        self.validate_smtp()?;
        if self.retention.raw_days == Some(0) {
            return Err(key_error(
                "retention.raw_days",
                "must be at least 1 (leave it out to keep originals forever)",
            ));
        }
        self.validate_metrics()?;
        self.validate_mailboxes()
    }

    fn validate_metrics(&self) -> Result<(), ConfigError> {
        if let Some(listen) = &self.metrics.listen {
            if !is_listen_address(listen) {
                return Err(key_error(
                    "metrics.listen",
                    format!("{listen:?} is not an address:port or host:port (e.g. 127.0.0.1:9187)"),
                ));
            }
            if *listen == self.web.listen {
                return Err(key_error(
                    "metrics.listen",
                    "must differ from web.listen (leave it unset to serve /metrics there)",
                ));
            }
        }
        if let Some(token) = &self.metrics.token {
            if token.expose().len() < 16 {
                return Err(key_error("metrics.token", "must be at least 16 characters"));
            }
        }
        Ok(())
    }

    fn validate_web(&self) -> Result<(), ConfigError> {
        if !is_listen_address(&self.web.listen) {
            return Err(key_error(
                "web.listen",
                format!(
                    "{:?} is not an address:port or host:port (e.g. 127.0.0.1:8080, localhost:8080)",
                    self.web.listen
                ),
            ));
        }
        if let Some(url) = &self.web.public_url {
            let web = url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "https" | "http"));
            if !web {
                return Err(key_error(
                    "web.public_url",
                    format!("{url:?} must start with https:// (or http://)"),
                ));
            }
        }
        for (key, value) in [
            ("web.session_idle_minutes", self.web.session_idle_minutes),
            ("web.session_max_hours", self.web.session_max_hours),
            (
                "web.login_failures_per_account",
                self.web.login_failures_per_account,
            ),
            (
                "web.login_failures_per_client",
                self.web.login_failures_per_client,
            ),
            ("web.login_window_minutes", self.web.login_window_minutes),
            ("web.public_per_address", self.web.public_per_address),
            ("web.public_per_client", self.web.public_per_client),
            ("web.public_window_minutes", self.web.public_window_minutes),
            ("web.customer_link_days", self.web.customer_link_days),
            ("web.invitation_hours", self.web.invitation_hours),
            (
                "web.header_read_timeout_seconds",
                self.web.header_read_timeout_seconds,
            ),
            ("web.idle_timeout_seconds", self.web.idle_timeout_seconds),
            ("web.max_connections", self.web.max_connections),
            (
                "web.live_streams_per_session",
                self.web.live_streams_per_session,
            ),
            ("web.live_streams_total", self.web.live_streams_total),
        ] {
            if value == 0 {
                return Err(key_error(key, "must be at least 1"));
            }
        }
        for origin in &self.web.cors_origins {
            if !is_origin(origin) {
                return Err(key_error(
                    "web.cors_origins",
                    format!("{origin:?} is not an origin: scheme://host[:port], no path (e.g. https://crm.example.com)"),
                ));
            }
        }
        Ok(())
    }

    fn validate_public_uploads(&self) -> Result<(), ConfigError> {
        if self.web.public_max_attachment_bytes == 0 {
            return Err(key_error(
                "web.public_max_attachment_bytes",
                "must be at least 1",
            ));
        }
        if self.web.public_max_upload_bytes < self.web.public_max_attachment_bytes {
            return Err(key_error(
                "web.public_max_upload_bytes",
                "must be at least web.public_max_attachment_bytes",
            ));
        }
        Ok(())
    }

    fn validate_smtp(&self) -> Result<(), ConfigError> {
        let Some(smtp) = &self.smtp else {
            return Ok(());
        };
        if smtp.host.trim().is_empty() {
            return Err(key_error("smtp.host", "must not be empty"));
        }
        if smtp.security == Security::Plain && !crate::net::is_loopback_host(&smtp.host) {
            return Err(key_error(
                "smtp.security",
                format!(
                    "\"plain\" is allowed only for this machine, not {:?}",
                    smtp.host
                ),
            ));
        }
        if (smtp.password.is_some() || smtp.password_file.is_some()) && smtp.username.is_none() {
            return Err(key_error("smtp.username", "is required with a password"));
        }
        if let Some(from) = &smtp.from {
            if crate::mail::parse_mailbox(from).is_none() {
                return Err(key_error(
                    "smtp.from",
                    format!("{from:?} is not an address like \"Support <support@example.com>\""),
                ));
            }
        }
        if let Some(ca) = &smtp.ca_file {
            if !ca.is_file() {
                return Err(key_error(
                    "smtp.ca_file",
                    format!("{} is not a readable file", ca.display()),
                ));
            }
        }
        if self.outbound.rate_window_minutes == 0 {
            return Err(key_error(
                "outbound.rate_window_minutes",
                "must be at least 1",
            ));
        }
        if self.outbound.claim_lease_seconds < 5 {
            return Err(key_error(
                "outbound.claim_lease_seconds",
                "must be at least 5 (an SMTP conversation must fit in it)",
            ));
        }
        if self.outbound.max_attempts == 0 {
            return Err(key_error("outbound.max_attempts", "must be at least 1"));
        }
        Ok(())
    }

    fn validate_helpdesk(&self) -> Result<(), ConfigError> {
        let h = &self.helpdesk;
        if h.support_addresses.is_empty() {
            return Err(key_error(
                "helpdesk.support_addresses",
                "name at least one address",
            ));
        }
        for (i, a) in h.support_addresses.iter().enumerate() {
            if !address::is_valid(a) {
                return Err(key_error(
                    format!("helpdesk.support_addresses[{i}]"),
                    format!("{a:?} is not an e-mail address"),
                ));
            }
        }
        let prefix = h.subject_prefix.trim();
        if prefix.is_empty() || prefix.contains(['[', ']', '#']) {
            return Err(key_error(
                "helpdesk.subject_prefix",
                "must be non-empty and contain no [ ] or #",
            ));
        }
        if let Some(secret) = &h.signing_secret {
            if secret.expose().len() < 16 {
                return Err(key_error(
                    "helpdesk.signing_secret",
                    "must be at least 16 characters",
                ));
            }
        }
        if h.categories.is_empty() {
            return Err(key_error(
                "helpdesk.categories",
                "name at least one category",
            ));
        }
        let mut seen = HashSet::new();
        for (i, c) in h.categories.iter().enumerate() {
            if c.trim().is_empty() || c.trim() != c {
                return Err(key_error(
                    format!("helpdesk.categories[{i}]"),
                    format!("{c:?} must be non-empty without surrounding spaces"),
                ));
            }
            if !seen.insert(c.as_str()) {
                return Err(key_error(
                    format!("helpdesk.categories[{i}]"),
                    format!("{c:?} is listed twice"),
                ));
            }
        }
        self.check_category("helpdesk.default_category", &h.default_category)
    }

    fn validate_mailboxes(&self) -> Result<(), ConfigError> {
        let mut names = HashSet::new();
        for (i, mailbox) in self.mailboxes.iter().enumerate() {
            if mailbox.name.trim().is_empty() {
                return Err(key_error(format!("mailbox[{i}].name"), "must not be empty"));
            }
            if !names.insert(mailbox.name.as_str()) {
                return Err(key_error(
                    format!("mailbox[{i}].name"),
                    format!("{:?} is used twice", mailbox.name),
                ));
            }
            if let Some(category) = &mailbox.category {
                self.check_category(&format!("mailbox[{i}].category"), category)?;
            }
            mailbox.validate_imap(i)?;
        }
        Ok(())
    }

    fn check_category(&self, key: &str, category: &str) -> Result<(), ConfigError> {
        if self.helpdesk.categories.iter().any(|c| c == category) {
            Ok(())
        } else {
            Err(key_error(
                key,
                format!(
                    "{category:?} is not one of helpdesk.categories ({})",
                    self.helpdesk.categories.join(", ")
                ),
            ))
        }
    }

    pub fn backend(&self) -> Backend {
        Backend::from_url(self.database.url.expose()).unwrap_or(Backend::Sqlite)
    }

    pub fn mailbox(&self, name: &str) -> Option<&MailboxConfig> {
        self.mailboxes.iter().find(|m| m.name == name)
    }

    /// The category for new tickets from a mailbox (or from no mailbox).
    pub fn category_for(&self, mailbox: Option<&str>) -> &str {
        mailbox
            .and_then(|name| self.mailbox(name))
            .and_then(|m| m.category.as_deref())
            .unwrap_or(&self.helpdesk.default_category)
    }

    /// X-Loop values: our support addresses, lowercased.
    pub fn loop_markers(&self) -> Vec<String> {
        self.helpdesk
            .support_addresses
            .iter()
            .map(|a| address::normalize(a))
            .collect()
    }

    /// Settings that work but have an effect someone should know of: logged by `serve`
    /// at start and printed by `check`.
    pub fn warnings(&self) -> Vec<String> {
        self.unacknowledged_submissions().into_iter().collect()
    }

    /// The public form accepting more submissions per address than acknowledgements may
    /// go to that address in the outbound window: the later ones get no confirmation mail
    /// (their page shows the ticket number instead).
    fn unacknowledged_submissions(&self) -> Option<String> {
        let (web, outbound) = (&self.web, &self.outbound);
        if !web.public_form || self.smtp.is_none() || !outbound.acknowledgements {
            return None;
        }
        // Form windows that fit in one outbound window, each with its full allowance.
        let form_windows = outbound
            .rate_window_minutes
            .div_ceil(web.public_window_minutes.max(1));
        let submissions = web.public_per_address.saturating_mul(form_windows);
        let acknowledgements = outbound
            .acknowledgements_per_sender_per_hour
            .min(outbound.max_per_recipient_per_hour);
        (submissions > acknowledgements).then(|| {
            format!(
                "the public form accepts up to {submissions} submissions per address in {} minutes \
                 (web.public_per_address = {}, web.public_window_minutes = {}), but at most \
                 {acknowledgements} acknowledgements go to one address in that time \
                 (outbound.acknowledgements_per_sender_per_hour, max_per_recipient_per_hour): \
                 later submissions get no confirmation mail; their page shows the ticket number \
                 instead",
                outbound.rate_window_minutes, web.public_per_address, web.public_window_minutes
            )
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Option<Backend> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }
}

fn read_file(sources: &Sources) -> Result<(toml::Table, Option<PathBuf>), ConfigError> {
    let Some(path) = &sources.file else {
        return Ok((toml::Table::new(), None));
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !sources.file_required => {
            return Ok((toml::Table::new(), None));
        }
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.clone(),
                source,
            })
        }
    };
    let table = text
        .parse::<toml::Table>()
        .map_err(|e| ConfigError::Syntax {
            path: path.clone(),
            message: e.to_string(),
        })?;
    let dir = path
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
        .map(Path::to_path_buf);
    Ok((table, dir))
}

/// `https://host[:port]` (or `http://`), nothing after: what a browser sends as `Origin`.
fn is_origin(text: &str) -> bool {
    let Some(rest) = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
    else {
        return false;
    };
    let (host, port) = rest.rsplit_once(':').unwrap_or((rest, "1"));
    !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        && port.parse::<u16>().is_ok_and(|p| p > 0)
}

/// `127.0.0.1:8080`, `[::1]:8080` or `localhost:8080` (a host name is resolved when the
/// daemon binds).
fn is_listen_address(text: &str) -> bool {
    if text.parse::<SocketAddr>().is_ok() {
        return true;
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        return false;
    };
    port.parse::<u16>().is_ok()
        && !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
        })
}

/// `MAILDESK_DATABASE_URL=…` → `database.url`.
/// Returns the key the variable set, if it names a section: other `MAILDESK_*` variables
/// (a test suite's `MAILDESK_TEST_PG_URL`, `MAILDESK_CORPUS`) are not configuration.
fn apply_env(
    table: &mut toml::Table,
    name: &str,
    value: &str,
) -> Result<Option<String>, ConfigError> {
    let Some(rest) = name.strip_prefix("MAILDESK_") else {
        return Ok(None);
    };
    if NON_KEY_VARIABLES.contains(&name) {
        return Ok(None);
    }
    let rest = rest.to_ascii_lowercase();
    let Some(section) = SECTIONS.iter().find(|s| rest.starts_with(&format!("{s}_"))) else {
        return Ok(None);
    };
    let key = format!("{section}.{}", &rest[section.len() + 1..]);
    set_dotted(table, &key, value).map_err(|e| match e {
        ConfigError::Key { message, .. } => key_error(name, message),
        other => other,
    })?;
    Ok(Some(key))
}

fn set_dotted(table: &mut toml::Table, dotted: &str, value: &str) -> Result<(), ConfigError> {
    let Some((section, key)) = dotted.split_once('.') else {
        return Err(key_error(dotted, "expected section.key"));
    };
    let entry = table
        .entry(section.to_string())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let Some(section_table) = entry.as_table_mut() else {
        return Err(key_error(section, "is not a section"));
    };
    section_table.insert(key.to_string(), parse_value(value));
    Ok(())
}

/// A TOML literal when the value is one (`14`, `true`, `["a", "b"]`), else a string.
fn parse_value(value: &str) -> toml::Value {
    format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()))
}

fn read_secret_file(key: &str, path: &Path) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| key_error(key, format!("cannot read {}: {e}", path.display())))?;
    Ok(text.trim_end_matches(['\r', '\n']).to_string())
}

/// `sqlite://data/x.db` next to the config file, not the current directory: an MTA runs
/// `maildesk ingest` from its own working directory.
fn resolve_sqlite_path(url: &str, base: &Path) -> String {
    let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return url.to_string();
    };
    let (path, query) = rest
        .split_once('?')
        .map_or((rest, None), |(p, q)| (p, Some(q)));
    if path.is_empty() || path.starts_with('/') || path.starts_with(':') {
        return url.to_string();
    }
    let joined = base.join(path);
    match query {
        Some(q) => format!("sqlite://{}?{q}", joined.display()),
        None => format!("sqlite://{}", joined.display()),
    }
}

/// The file path of a SQLite URL (for creating its directory), if it has one.
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && !path.starts_with(':')).then(|| PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(&Sources {
            file: Some(path),
            file_required: true,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            overrides: vec![],
        })
    }

    #[test]
    fn cors_origins_are_origins() {
        for good in [
            "https://crm.example.com",
            "http://localhost:3000",
            "https://a-b.example",
        ] {
            assert!(is_origin(good), "{good}");
        }
        for bad in [
            "crm.example.com",
            "https://crm.example.com/",
            "https://x.example/path",
            "*",
            "https://:80",
            "https://x.example:0",
        ] {
            assert!(!is_origin(bad), "{bad}");
        }
        let e = load_text(
            "[web]\ncors_origins = [\"https://ok.example\", \"nope\"]\n",
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().contains("web.cors_origins"), "{e}");
    }

    #[test]
    fn private_webhook_targets_are_off_unless_a_boolean_says_so() {
        let config = load_text("", &[]).unwrap();
        assert!(!config.webhooks.allow_private_targets);
        let config = load_text("[webhooks]\nallow_private_targets = true\n", &[]).unwrap();
        assert!(config.webhooks.allow_private_targets);
        let config = load_text("", &[("MAILDESK_WEBHOOKS_ALLOW_PRIVATE_TARGETS", "true")]).unwrap();
        assert!(config.webhooks.allow_private_targets);
        let e = load_text("[webhooks]\nallow_private_targets = \"yes\"\n", &[]).unwrap_err();
        assert!(
            e.to_string().contains("webhooks.allow_private_targets"),
            "{e}"
        );
        let e = load_text("[webhooks]\nallow_private = true\n", &[]).unwrap_err();
        assert!(e.to_string().contains("allow_private"), "{e}");
    }

    #[test]
    fn the_shipped_example_loads() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.toml")).unwrap();
        let config = load_text(&text, &[]).unwrap();
        assert_eq!(config.web.listen, "127.0.0.1:8080");
        assert_eq!(
            config.helpdesk.categories,
            ["network", "hardware", "software", "other"]
        );
        assert!(config.database.url.expose().ends_with("data/maildesk.db"));
    }

    #[test]
    fn without_a_named_file_the_first_that_exists_is_used_or_none_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let there = dir.path().join("b.toml");
        std::fs::write(&there, "").unwrap();
        let missing = dir.path().join("a.toml");
        let candidates = [missing.to_str().unwrap(), there.to_str().unwrap()];
        assert_eq!(find_file(&candidates).unwrap(), there);
        let err = find_file(&candidates[..1]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("no configuration file: looked for"),
            "{err}"
        );
    }

    #[test]
    fn database_urls_are_shown_without_their_password() {
        let mut config = Config::default();
        config.database.url = Secret("postgres://md:s3cret@db.example/maildesk".into());
        assert_eq!(
            config.database_display(),
            "postgres://md@db.example/maildesk"
        );
        config.database.url = Secret("postgres://md:p@ss@db.example:5433/maildesk".into());
        assert_eq!(
            config.database_display(),
            "postgres://md@db.example:5433/maildesk"
        );
        config.database.url = Secret("sqlite:///var/lib/maildesk/maildesk.db".into());
        assert_eq!(
            config.database_display(),
            "sqlite:///var/lib/maildesk/maildesk.db"
        );
    }

    #[test]
    fn an_acknowledgement_cap_below_the_form_limit_is_a_warning() {
        let smtp = "[smtp]\nhost = \"127.0.0.1\"\n";
        let defaults = load_text(smtp, &[]).unwrap();
        let warnings = defaults.warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("up to 5 submissions") && warnings[0].contains("at most 3"),
            "{warnings:?}"
        );
        let matched = format!("{smtp}[outbound]\nacknowledgements_per_sender_per_hour = 5\n");
        assert!(load_text(&matched, &[]).unwrap().warnings().is_empty());
        // A shorter form window lets more through in one outbound window.
        let short = format!("{matched}[web]\npublic_window_minutes = 30\n");
        let warnings = load_text(&short, &[]).unwrap().warnings();
        assert!(warnings[0].contains("up to 10 submissions"), "{warnings:?}");
        // No mail, or no form: nothing to warn of here.
        assert!(load_text("", &[]).unwrap().warnings().is_empty());
        let off = format!("{smtp}[web]\npublic_form = false\n");
        assert!(load_text(&off, &[]).unwrap().warnings().is_empty());
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = load_text("[web]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n", &[]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("web.lisen: unknown field `lisen`, expected one of `listen`"),
            "{err}"
        );
        let err = load_text("[nonsense]\n", &[]).unwrap_err();
        assert!(
            err.to_string().contains("unknown field `nonsense`"),
            "{err}"
        );
    }

    #[test]
    fn invalid_values_are_named() {
        let err = load_text("[web]\nlisten = \"localhost\"\n", &[]).unwrap_err();
        assert!(err.to_string().starts_with("web.listen:"), "{err}");
        for good in [
            "localhost:8080",
            "help.example.com:80",
            "[::1]:8080",
            "0.0.0.0:1",
        ] {
            let text = format!("[web]\nlisten = \"{good}\"\n");
            assert!(load_text(&text, &[]).is_ok(), "{good}");
        }
        for bad in ["localhost:http", "bad host:80", ":80", "localhost:99999"] {
            let text = format!("[web]\nlisten = \"{bad}\"\n");
            assert!(load_text(&text, &[]).is_err(), "{bad}");
        }
        let err = load_text("[helpdesk]\nreopen_closed_days = \"x\"\n", &[]).unwrap_err();
        assert!(
            err.to_string().starts_with("helpdesk.reopen_closed_days:"),
            "{err}"
        );
        let err = load_text("[helpdesk]\ndefault_category = \"sales\"\n", &[]).unwrap_err();
        assert!(
            err.to_string().starts_with("helpdesk.default_category:"),
            "{err}"
        );
        let err = load_text("[[mailbox]]\nname = \"a\"\ncategory = \"nope\"\n", &[]).unwrap_err();
        assert!(err.to_string().starts_with("mailbox[0].category:"), "{err}");
    }

    #[test]
    fn environment_overrides_the_file_and_is_checked() {
        let config = load_text(
            "[database]\nurl = \"sqlite:///tmp/a.db\"\n",
            &[
                ("MAILDESK_DATABASE_URL", "postgres://u@h/db"),
                ("MAILDESK_HELPDESK_REOPEN_CLOSED_DAYS", "3"),
                ("MAILDESK_CONFIG", "x"),
            ],
        )
        .unwrap();
        assert_eq!(config.database.url.expose(), "postgres://u@h/db");
        assert_eq!(config.helpdesk.reopen_closed_days, 3);
        // Variables of no section are someone else's (a test suite's): ignored.
        load_text(
            "",
            &[
                ("MAILDESK_TEST_PG_URL", "postgres://x"),
                ("MAILDESK_CORPUS", "/tmp"),
            ],
        )
        .unwrap();
        // A wrong key or value from a variable names the variable.
        let err = load_text("", &[("MAILDESK_WEB_LISEN", "x")]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("MAILDESK_WEB_LISEN (web.lisen): unknown field"),
            "{err}"
        );
        let err = load_text("", &[("MAILDESK_WEB_LISTEN", "nowhere")]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("MAILDESK_WEB_LISTEN (web.listen):"),
            "{err}"
        );
    }

    #[test]
    fn secrets_come_from_files_and_never_print() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "0123456789abcdef0123\n").unwrap();
        let config = load_text(
            &format!("[helpdesk]\nsigning_secret_file = {secret:?}\n"),
            &[],
        )
        .unwrap();
        assert_eq!(
            config.helpdesk.signing_secret.as_ref().unwrap().expose(),
            "0123456789abcdef0123"
        );
        assert!(!format!("{config:?}").contains("0123456789"));
    }

    #[test]
    fn metrics_and_log_keys() {
        let config = load_text("", &[]).unwrap();
        assert!(config.metrics.enabled && config.metrics.listen.is_none());
        assert_eq!(config.log.format, LogFormat::Text);
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "scrape-token-0123456789\n").unwrap();
        let config = load_text(
            &format!("[metrics]\nlisten = \"127.0.0.1:9187\"\ntoken_file = {token:?}\n"),
            &[("MAILDESK_LOG_FORMAT", "json")],
        )
        .unwrap();
        assert_eq!(config.log.format, LogFormat::Json);
        // Like the IMAP and SMTP password files: read only by what serves it.
        assert!(config.metrics.token.is_none());
        let mut config = config;
        config.load_connection_secrets().unwrap();
        assert_eq!(
            config.metrics.token.as_ref().unwrap().expose(),
            "scrape-token-0123456789"
        );
        assert!(!format!("{config:?}").contains("scrape-token"));
        for (text, key) in [
            ("[metrics]\nlisten = \"nowhere\"\n", "metrics.listen:"),
            (
                "[metrics]\nlisten = \"127.0.0.1:8080\"\n",
                "metrics.listen:",
            ),
            ("[metrics]\ntoken = \"short\"\n", "metrics.token:"),
            ("[log]\nformat = \"xml\"\n", "log.format:"),
        ] {
            let err = load_text(text, &[]).unwrap_err();
            assert!(err.to_string().starts_with(key), "{text}: {err}");
        }
    }

    #[test]
    fn imap_mailboxes_are_checked() {
        let base =
            "[[mailbox]]\nname = \"support\"\nhost = \"imap.example.com\"\nusername = \"u\"\n";
        let config = load_text(&format!("{base}password = \"p\"\n"), &[]).unwrap();
        let mailbox = &config.mailboxes[0];
        assert_eq!(
            (
                mailbox.port(),
                mailbox.folder.as_str(),
                mailbox.after,
                mailbox.move_to.as_str()
            ),
            (993, "INBOX", AfterAction::Move, "Processed")
        );
        let err = load_text(base, &[]).unwrap_err();
        assert!(err.to_string().starts_with("mailbox[0].password:"), "{err}");
        let err = load_text(
            &format!("{base}password = \"p\"\nsecurity = \"plain\"\n"),
            &[],
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("mailbox[0].security:"), "{err}");
        let local = "[[mailbox]]\nname = \"l\"\nhost = \"127.0.0.1\"\nusername = \"u\"\npassword = \"p\"\nsecurity = \"plain\"\n";
        assert_eq!(load_text(local, &[]).unwrap().mailboxes[0].port(), 143);
        let err = load_text(
            &format!("{base}password = \"p\"\nafter = \"delete\"\n"),
            &[],
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("mailbox[0].after:"), "{err}");
    }

    #[test]
    fn relative_sqlite_paths_follow_the_config_file() {
        assert_eq!(
            resolve_sqlite_path("sqlite://data/m.db", Path::new("/etc/maildesk")),
            "sqlite:///etc/maildesk/data/m.db"
        );
        assert_eq!(
            resolve_sqlite_path("sqlite:///abs.db", Path::new("/etc")),
            "sqlite:///abs.db"
        );
        assert_eq!(
            resolve_sqlite_path("sqlite::memory:", Path::new("/etc")),
            "sqlite::memory:"
        );
        assert_eq!(
            sqlite_file("sqlite:///var/lib/m.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/m.db"))
        );
    }
}
