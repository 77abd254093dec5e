//! The browser tests' world: a served daemon (the binary on a port of its own), real
//! mail servers, staff added through the command line, and a few page helpers.

use crate::support::chromium::Browser;
use crate::support::mail::{Dovecot, SmtpRelay};
use crate::support::{Spawned, TestEnv};

pub const SUPPORT: &str = "support@example.com";
pub const SUPPORT_PW: &str = "secret";
pub const ANN: &str = "ann@customer.example";
pub const ANN_PW: &str = "ann-pw";
pub const STAFF: &str = "sam@example.com";
pub const STAFF_NAME: &str = "Sam Staff";
pub const ADMIN: &str = "ada@example.com";
pub const ADMIN_NAME: &str = "Ada Admin";
pub const PASSWORD: &str = "correct horse battery staple";

pub fn customer_mail(id: &str, subject: &str, body: &str) -> String {
    format!("From: Ann Lee <{ANN}>\r\nTo: {SUPPORT}\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\nDate: Mon, 2 Jan 2023 10:00:00 +0000\r\n\r\n{body}\r\n")
}

pub fn add_user(env: &TestEnv, email: &str, name: &str, role: &str) {
    let file = env.dir.path().join(format!("{role}-password"));
    std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    let out = env.cli(
        &[
            "user",
            "add",
            email,
            "--name",
            name,
            "--role",
            role,
            "--password-file",
            file.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        out.status.success(),
        "user add {email}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn ingest(env: &TestEnv, raw: &[u8]) -> String {
    let out = env.cli(&["ingest"], Some(raw));
    assert!(
        out.status.success(),
        "ingest: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Dovecot with the support mailbox and Ann's, the SMTP relay delivering into it, and a
/// test environment that fetches from the one and sends through the other.
pub async fn mail_world() -> (Dovecot, SmtpRelay, TestEnv) {
    let dovecot = Dovecot::start(&[(SUPPORT, SUPPORT_PW), (ANN, ANN_PW)], false);
    let relay = SmtpRelay::start(dovecot.lmtp_port);
    let env = TestEnv::with_config(&format!(
        "{}{}",
        dovecot.mailbox_toml("support", SUPPORT, SUPPORT_PW, ""),
        relay.smtp_toml()
    ))
    .await;
    (dovecot, relay, env)
}

/// `maildesk serve` on a port of its own, up (its `/healthz` answers); and the portal's
/// base URL.
pub async fn serve(env: &TestEnv) -> (Spawned, String) {
    serve_with(env, &[]).await
}

/// [`serve`] with more `--set` settings (see [`TestEnv::serve`] for `{base}`).
pub async fn serve_with(env: &TestEnv, settings: &[&str]) -> (Spawned, String) {
    let (daemon, address) = env.serve(settings).await;
    (daemon, format!("http://{address}"))
}

/// The ticket number of the ticket page the browser shows.
pub async fn ticket_on_screen(browser: &Browser) -> i64 {
    let url = browser.url().await;
    url.path()
        .strip_prefix("/portal/tickets/")
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("not on a ticket page: {url}"))
}

/// Types `text` into the field matching `css`.
pub async fn type_into(browser: &Browser, css: &str, text: &str) {
    browser
        .wait_for(css)
        .await
        .send_keys(text)
        .await
        .unwrap_or_else(|e| panic!("type into {css}: {e}"));
}

pub async fn notice(browser: &Browser) -> String {
    browser.text("p.notice").await
}

/// Reads a mail body as text: quoted-printable soft line breaks joined.
pub fn unfolded(raw: &str) -> String {
    raw.replace("=\r\n", "").replace("=\n", "")
}
