//! Staff registration by invitation in a real browser against `maildesk serve`: an admin
//! invites an address on /portal/users, the mail goes out through the SMTP relay into
//! Dovecot, is read back from the invitee's mailbox, and the invitee follows the link,
//! registers, signs in and cannot open the admin pages.

use std::time::{Duration, Instant};

use crate::support::browser::{
    add_user, notice, type_into, unfolded, ADMIN, ADMIN_NAME, PASSWORD, STAFF, STAFF_NAME,
};
use crate::support::chromium::Browser;
use crate::support::mail::{Dovecot, SmtpRelay};
use crate::support::portal::token_in;
use crate::support::{wait_until, TestEnv};

const IVY: &str = "ivy@newhire.example";
const IVY_PW: &str = "ivy-imap-pw";
const IVY_NAME: &str = "Ivy Newhire";
const IVY_PASSWORD: &str = "ivy chooses a long one";

#[tokio::test]
async fn an_invited_staff_member_registers_from_the_mail_and_stays_out_of_admin_pages() {
    let started = Instant::now();
    let dovecot = Dovecot::start(&[(IVY, IVY_PW)], false);
    let relay = SmtpRelay::start(dovecot.lmtp_port);
    let env = TestEnv::with_config(&relay.smtp_toml()).await;
    add_user(&env, ADMIN, ADMIN_NAME, "admin");
    add_user(&env, STAFF, STAFF_NAME, "staff");
    // The invitation's link is built from web.listen: a port known before the start.
    let (_server, address) = env.serve_on_known_port(&[]).await;
    let base = format!("http://{address}");
    let browser = Browser::start().await;

    // The admin finds Users in the navigation and invites the address.
    browser.sign_in(&base, ADMIN, PASSWORD).await;
    browser
        .click_and_wait("header.top nav a[href='/portal/users']")
        .await;
    assert_eq!(browser.text("main h1").await, "Users");
    assert!(browser
        .text("main")
        .await
        .contains("No invitations are waiting"));
    type_into(
        &browser,
        "form[action='/portal/users/invite'] input[name=email]",
        IVY,
    )
    .await;
    browser
        .click_and_wait("form[action='/portal/users/invite'] button[type=submit]")
        .await;
    assert_eq!(notice(&browser).await, "Invitation mailed.");
    let pending = browser.texts("main table.queue").await;
    assert!(
        pending.iter().any(|t| t.contains(IVY)),
        "the invitation is listed as pending: {pending:?}"
    );
    browser.screenshot("users.png").await;
    // An existing user's address is refused next to the field, the input kept.
    type_into(
        &browser,
        "form[action='/portal/users/invite'] input[name=email]",
        STAFF,
    )
    .await;
    browser
        .click_and_wait("form[action='/portal/users/invite'] button[type=submit]")
        .await;
    assert_eq!(
        browser
            .text("form[action='/portal/users/invite'] .field-error")
            .await,
        format!("{STAFF} already has an account")
    );
    browser.screenshot("users-refused.png").await;

    // A user's page: details, new password, disable, delete.
    browser
        .click_and_wait("main table.users a:not([href='/portal/users/1'])")
        .await;
    assert!(browser.url().await.path().starts_with("/portal/users/"));
    assert_eq!(browser.text("main h1").await.trim(), STAFF_NAME);
    browser.screenshot("user.png").await;
    browser
        .click_and_wait("header.top form[action='/portal/logout'] button")
        .await;

    // The mail arrives in the invitee's mailbox, with the link.
    let arrived = wait_until(Duration::from_secs(20), || async {
        dovecot
            .messages(IVY, IVY_PW, "INBOX")
            .await
            .iter()
            .any(|raw| unfolded(raw).contains("/portal/register?token="))
    })
    .await;
    assert!(
        arrived,
        "the invitation never arrived; maildesk log:\n{}",
        env.log()
    );
    let inbox = dovecot.messages(IVY, IVY_PW, "INBOX").await;
    let raw = inbox
        .iter()
        .find(|raw| unfolded(raw).contains("/portal/register?token="))
        .unwrap();
    let parsed = mail_parser::MessageParser::default()
        .parse(raw.as_bytes())
        .expect("a parsable mail");
    assert_eq!(parsed.subject(), Some("Your invitation to Support"));
    let mail = parsed.body_text(0).expect("a text part").into_owned();
    let token = token_in(&mail).expect("a token in the link");
    let link = format!("{base}/portal/register?token={token}");
    assert!(
        mail.contains(&link),
        "without web.public_url the link points at web.listen ({base}): {mail}"
    );

    // The invitee follows it, chooses a name and a password, and is signed in.
    browser.goto(&link).await;
    assert!(browser.text("main").await.contains("You were invited"));
    let shown = browser
        .wait_for("input[readonly]")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default();
    assert_eq!(shown, IVY);
    type_into(&browser, "input[name=name]", IVY_NAME).await;
    type_into(&browser, "input[name=password]", IVY_PASSWORD).await;
    type_into(&browser, "input[name=confirm]", IVY_PASSWORD).await;
    browser.screenshot("register.png").await;
    browser
        .click_and_wait("form[action='/portal/register'] button[type=submit]")
        .await;
    assert_eq!(browser.url().await.path(), "/portal");
    assert_eq!(browser.text("header.top .me a").await, IVY_NAME);

    // Staff: no admin links, and the admin pages answer 403.
    let nav = browser.texts("header.top nav a").await;
    assert!(
        !nav.iter().any(|a| a == "Users" || a == "Quarantine"),
        "{nav:?}"
    );
    browser.goto(&format!("{base}/portal/users")).await;
    assert_eq!(browser.text("main h1").await, "Not allowed");
    assert_eq!(browser.fetch_status("/portal/users").await, 403);
    assert_eq!(browser.fetch_status("/portal/quarantine").await, 403);

    // The link is used up.
    browser.goto(&link).await;
    assert_eq!(browser.text("main h1").await, "Link not valid");

    // Signing out and in again with the chosen password works; the account page.
    browser.goto(&format!("{base}/portal")).await;
    browser
        .click_and_wait("header.top form[action='/portal/logout'] button")
        .await;
    browser.sign_in(&base, IVY, IVY_PASSWORD).await;
    browser
        .click_and_wait("header.top .me a[href='/portal/account']")
        .await;
    assert_eq!(browser.text("main h1").await, "Your account");
    browser.screenshot("account.png").await;
    eprintln!(
        "an_invited_staff_member_registers: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
