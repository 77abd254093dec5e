//! One persistent SMTP connection for the outbox worker (lettre's low-level client):
//! TCP_NODELAY on (without it every mail waits ~40 ms on Nagle and delayed ACKs),
//! STARTTLS or implicit TLS (rustls, ring), AUTH, reconnect after any failure.

use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use tokio::sync::Mutex;

use crate::config::{Security, SmtpConfig};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// An idle connection is checked with NOOP before reuse (servers drop idle clients).
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("cannot reach the SMTP server {address}: {reason}")]
    Connect { address: String, reason: String },
    #[error("SMTP: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    /// Setting up the session failed (greeting, STARTTLS, AUTH): our side or the
    /// server's problem, never the recipient's, so always worth retrying.
    #[error("SMTP session: {0}")]
    Session(lettre::transport::smtp::Error),
    #[error("SMTP configuration: {0}")]
    Config(String),
    #[error("the SMTP server did not answer within {0:?}")]
    Timeout(Duration),
}

impl SendError {
    /// The server refused for good (5xx): retrying cannot help.
    pub fn is_permanent(&self) -> bool {
        matches!(self, SendError::Smtp(e) if e.is_permanent())
    }
}

pub struct SmtpClient {
    config: SmtpConfig,
    tls: Option<TlsParameters>,
    hello: ClientId,
    connection: Mutex<Option<(AsyncSmtpConnection, Instant)>>,
}

impl SmtpClient {
    pub fn new(config: &SmtpConfig) -> Result<Self, SendError> {
        let tls = match config.security {
            Security::Plain => None,
            Security::Tls | Security::Starttls => Some(tls_parameters(config)?),
        };
        Ok(SmtpClient {
            config: config.clone(),
            tls,
            hello: ClientId::default(),
            connection: Mutex::new(None),
        })
    }

    fn timeout(&self) -> Duration {
        self.config
            .timeout_seconds
            .map_or(DEFAULT_TIMEOUT, Duration::from_secs)
    }

    /// Sends one message; the connection is kept for the next one unless anything failed.
    pub async fn send(&self, envelope: &Envelope, raw: &[u8]) -> Result<(), SendError> {
        let mut slot = self.connection.lock().await;
        if let Some((connection, last_used)) = slot.as_mut() {
            if last_used.elapsed() > CHECK_AFTER_IDLE && !connection.test_connected().await {
                *slot = None;
            }
        }
        let (connection, last_used) = match slot.as_mut() {
            Some(open) => open,
            None => slot.insert((self.connect().await?, Instant::now())),
        };
        let result =
            match tokio::time::timeout(self.timeout(), connection.send(envelope, raw)).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(SendError::Smtp(e)),
                Err(_) => Err(SendError::Timeout(self.timeout())),
            };
        *last_used = Instant::now();
        if result.is_err() {
            // Start the next mail on a fresh connection, in a known state.
            if let Some((mut connection, _)) = slot.take() {
                connection.abort().await;
            }
        }
        result
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        match tokio::time::timeout(self.timeout(), self.connect_inner()).await {
            Ok(Ok(connection)) => Ok(connection),
            Ok(Err(SendError::Smtp(e))) => Err(SendError::Session(e)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(SendError::Timeout(self.timeout())),
        }
    }

    async fn connect_inner(&self) -> Result<AsyncSmtpConnection, SendError> {
        let (host, port) = (self.config.host.as_str(), self.config.port());
        let mut connection = match self.config.security {
            Security::Tls => {
                AsyncSmtpConnection::connect_tokio1(
                    (host, port),
                    Some(self.timeout()),
                    &self.hello,
                    self.tls.clone(),
                    None,
                )
                .await?
            }
            Security::Plain | Security::Starttls => {
                let tcp = crate::net::connect((host, port), self.timeout())
                    .await
                    .map_err(|e| SendError::Connect {
                        address: format!("{host}:{port}"),
                        reason: e.to_string(),
                    })?;
                AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello).await?
            }
        };
        if let (Security::Starttls, Some(tls)) = (self.config.security, &self.tls) {
            connection.starttls(tls.clone(), &self.hello).await?;
        }
        if let (Some(user), Some(password)) = (&self.config.username, &self.config.password) {
            let credentials = Credentials::new(user.clone(), password.expose().to_string());
            connection
                .auth(&[Mechanism::Plain, Mechanism::Login], &credentials)
                .await?;
        }
        Ok(connection)
    }
}

fn tls_parameters(smtp: &SmtpConfig) -> Result<TlsParameters, SendError> {
    let mut params = TlsParameters::builder(smtp.host.clone());
    if let Some(path) = &smtp.ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| SendError::Config(format!("{}: {e}", path.display())))?;
        let cert = Certificate::from_pem(&pem)
            .map_err(|e| SendError::Config(format!("{}: {e}", path.display())))?;
        params = params.add_root_certificate(cert);
    }
    params
        .build_rustls()
        .map_err(|e| SendError::Config(e.to_string()))
}
