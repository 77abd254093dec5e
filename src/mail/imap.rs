//! IMAP connections: TCP, implicit TLS or STARTTLS (rustls, ring), then LOGIN or XOAUTH2.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::rustls::{self, pki_types::ServerName};
use tokio_rustls::TlsConnector;

use crate::config::{MailboxConfig, Security};

/// Anything async-imap can talk over: a TCP stream, or TLS around one.
pub trait ImapIo: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug> ImapIo for T {}

pub type Session = async_imap::Session<Box<dyn ImapIo>>;

/// How long connecting and logging in may take before the attempt counts as failed.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error("cannot connect to {address}: {source}")]
    Connect {
        address: String,
        source: std::io::Error,
    },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("the server refused the login: {0}")]
    Auth(String),
    #[error("OAuth2 token command failed: {0}")]
    Token(String),
    #[error("IMAP: {0}")]
    Protocol(#[from] async_imap::error::Error),
    #[error("the server did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the server closed the connection")]
    Closed,
}

/// Connects and logs in, within [`CONNECT_TIMEOUT`].
pub async fn connect(mailbox: &MailboxConfig) -> Result<Session, ImapError> {
    tokio::time::timeout(CONNECT_TIMEOUT, connect_inner(mailbox))
        .await
        .map_err(|_| ImapError::Timeout(CONNECT_TIMEOUT))?
}

async fn connect_inner(mailbox: &MailboxConfig) -> Result<Session, ImapError> {
    let host = mailbox.host.as_deref().unwrap_or_default();
    let address = format!("{host}:{}", mailbox.port());
    let tcp = crate::net::connect((host, mailbox.port()), CONNECT_TIMEOUT)
        .await
        .map_err(|source| ImapError::Connect {
            address: address.clone(),
            source,
        })?;
    let stream: Box<dyn ImapIo> = match mailbox.security {
        Security::Tls => Box::new(tls_wrap(tcp, host, mailbox.ca_file.as_deref()).await?),
        Security::Plain | Security::Starttls => Box::new(tcp),
    };
    let mut client = async_imap::Client::new(stream);
    read_greeting(&mut client).await?;
    if mailbox.security == Security::Starttls {
        client.run_command_and_check_ok("STARTTLS", None).await?;
        let tcp = client.into_inner();
        let tls: Box<dyn ImapIo> = Box::new(tls_wrap(tcp, host, mailbox.ca_file.as_deref()).await?);
        client = async_imap::Client::new(tls);
    }
    let username = mailbox.username.as_deref().unwrap_or_default();
    let session = match &mailbox.oauth2_token_command {
        Some(command) => {
            let token = oauth2_token(command).await?;
            let auth = XOAuth2 {
                user: username.to_string(),
                token,
            };
            client
                .authenticate("XOAUTH2", auth)
                .await
                .map_err(|(e, _)| ImapError::Auth(e.to_string()))?
        }
        None => {
            let password = mailbox
                .password
                .as_ref()
                .map(|p| p.expose())
                .unwrap_or_default();
            client
                .login(username, password)
                .await
                .map_err(|(e, _)| ImapError::Auth(e.to_string()))?
        }
    };
    Ok(session)
}

async fn read_greeting(client: &mut async_imap::Client<Box<dyn ImapIo>>) -> Result<(), ImapError> {
    match client.read_response().await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(ImapError::Closed),
        Err(e) => Err(ImapError::Protocol(e.into())),
    }
}

async fn tls_wrap<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    host: &str,
    ca_file: Option<&Path>,
) -> Result<tokio_rustls::client::TlsStream<S>, ImapError> {
    let connector = tls_connector(ca_file)?;
    let name = ServerName::try_from(host.trim_matches(|c| c == '[' || c == ']').to_string())
        .map_err(|e| ImapError::Tls(format!("{host:?} is not a valid server name: {e}")))?;
    connector
        .connect(name, stream)
        .await
        .map_err(|e| ImapError::Tls(e.to_string()))
}

/// Public roots (webpki) plus the configured CA file, with the ring provider.
fn tls_connector(ca_file: Option<&Path>) -> Result<TlsConnector, ImapError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let pem =
            std::fs::read(path).map_err(|e| ImapError::Tls(format!("{}: {e}", path.display())))?;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert = cert.map_err(|e| ImapError::Tls(format!("{}: {e}", path.display())))?;
            roots
                .add(cert)
                .map_err(|e| ImapError::Tls(format!("{}: {e}", path.display())))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ImapError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Runs the configured command and takes its first output line as the access token.
async fn oauth2_token(command: &str) -> Result<String, ImapError> {
    let output = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .output()
        .await
        .map_err(|e| ImapError::Token(e.to_string()))?;
    if !output.status.success() {
        return Err(ImapError::Token(format!(
            "exit status {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let token = String::from_utf8_lossy(&output.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    if token.is_empty() {
        return Err(ImapError::Token("it printed no token".into()));
    }
    Ok(token)
}

/// SASL XOAUTH2 (Google, Microsoft): `user=…^Aauth=Bearer …^A^A`.
struct XOAuth2 {
    user: String,
    token: String,
}

impl async_imap::Authenticator for XOAuth2 {
    type Response = String;

    fn process(&mut self, _challenge: &[u8]) -> String {
        format!("user={}\x01auth=Bearer {}\x01\x01", self.user, self.token)
    }
}

/// `1:3,5,7:9` from sorted UIDs: short commands for long runs.
pub fn uid_set(uids: &[u32]) -> String {
    let mut parts = Vec::new();
    let mut iter = uids.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end = iter.next().unwrap_or(end);
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}:{end}")
        });
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_compress_runs() {
        assert_eq!(uid_set(&[1, 2, 3, 5, 7, 8, 9]), "1:3,5,7:9");
        assert_eq!(uid_set(&[4]), "4");
        assert_eq!(uid_set(&[]), "");
    }

    #[test]
    fn xoauth2_response_format() {
        let mut auth = XOAuth2 {
            user: "a@b.c".into(),
            token: "t0k".into(),
        };
        assert_eq!(
            async_imap::Authenticator::process(&mut auth, b""),
            "user=a@b.c\x01auth=Bearer t0k\x01\x01"
        );
    }
}
