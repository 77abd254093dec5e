//! Outgoing mail: headers that keep threads together and loops away, bodies from
//! askama templates (plain text with an HTML alternative).

use askama::Template;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox as LettreMailbox, MultiPart, SinglePart};

use super::parse_mailbox;
use crate::domain::secret::Secret;
use crate::domain::{signing, subject, text};

/// Staff and customers type their answer above this line; everything below it is
/// quoted history and is stripped for display.
pub const REPLY_MARKER: &str = "##- Please type your reply above this line -##";

/// References kept on our mail: the first (thread root) and the last few.
const MAX_REFERENCES: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("invalid address {0:?}")]
    Address(String),
    #[error("cannot build the message: {0}")]
    Build(String),
    #[error("template: {0}")]
    Template(#[from] askama::Error),
    /// A bug or an input lettre cannot take: the mail is failed with this reason, the
    /// change that caused it still commits.
    #[error("composing the mail failed: {0}")]
    Panicked(String),
}

/// Who we are on outgoing mail.
#[derive(Debug, Clone)]
pub struct Identity {
    pub helpdesk: String,
    /// The From header.
    pub from: String,
    pub support_address: String,
    pub subject_prefix: String,
    pub secret: Secret,
    /// Reply-To with a signed plus-address (threading rule 4).
    pub plus_address_reply_to: bool,
}

impl Identity {
    pub fn domain(&self) -> &str {
        self.support_address
            .rsplit_once('@')
            .map_or("localhost", |(_, d)| d)
    }

    /// The X-Loop value: our support address, as the loop rules compare it.
    pub fn loop_marker(&self) -> String {
        crate::domain::address::normalize(&self.support_address)
    }

    pub fn envelope_from(&self) -> String {
        parse_mailbox(&self.from).map_or_else(|| self.support_address.clone(), |m| m.email.clone())
    }
}

/// A composed mail ready for the outbox.
#[derive(Debug, Clone)]
pub struct Composed {
    /// Without angle brackets.
    pub message_id: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub raw: Vec<u8>,
}

/// What a mail is about: the ticket and the message it answers.
pub struct Thread<'a> {
    pub ticket_id: i64,
    pub ticket_subject: &'a str,
    pub in_reply_to: Option<&'a str>,
    pub references: &'a [String],
}

/// One recipient's copy of a mail to customers: the link to their own ticket page, and
/// the Message-ID all copies share (the stored copy's). The default is the stored copy:
/// no link (a token never lands in the thread that staff and other participants read).
#[derive(Debug, Default, Clone, Copy)]
pub struct Personal<'a> {
    pub link: Option<&'a str>,
    pub message_id: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "mail/acknowledgement.txt")]
struct AckText<'a> {
    link: Option<&'a str>,
    marker: &'a str,
    name: Option<&'a str>,
    helpdesk: &'a str,
    reference: i64,
    subject: &'a str,
}

#[derive(Template)]
#[template(path = "mail/acknowledgement.html")]
struct AckHtml<'a> {
    link: Option<&'a str>,
    marker: &'a str,
    name: Option<&'a str>,
    helpdesk: &'a str,
    reference: i64,
    subject: &'a str,
}

/// A recipient: address and display name.
pub type Person<'a> = (&'a str, Option<&'a str>);

/// Who reads the mail: customers get the ticket's references; a staff user gets
/// references bound to them, their proof when they answer (see `domain::signing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Customer,
    Staff { user_id: i64 },
}

/// The acknowledgement of a new ticket (`Auto-Submitted: auto-replied`).
pub fn acknowledgement(
    identity: &Identity,
    thread: &Thread<'_>,
    to_email: &str,
    to_name: Option<&str>,
    personal: Personal<'_>,
) -> Result<Composed, ComposeError> {
    let fields = (
        REPLY_MARKER,
        to_name,
        identity.helpdesk.as_str(),
        thread.ticket_id,
        thread.ticket_subject,
    );
    let text = AckText {
        link: personal.link,
        marker: fields.0,
        name: fields.1,
        helpdesk: fields.2,
        reference: fields.3,
        subject: fields.4,
    }
    .render()?;
    let html = AckHtml {
        link: personal.link,
        marker: fields.0,
        name: fields.1,
        helpdesk: fields.2,
        reference: fields.3,
        subject: fields.4,
    }
    .render()?;
    compose(
        identity,
        thread,
        ThreadMail {
            audience: Audience::Customer,
            to: &[(to_email, to_name)],
            cc: &[],
            from_name: None,
            auto_submitted: Some("auto-replied"),
            text,
            html: Some(html),
            message_id: personal.message_id,
        },
    )
}

#[derive(Template)]
#[template(path = "mail/notification.txt")]
struct NotificationText<'a> {
    marker: &'a str,
    headline: &'a str,
    reference: i64,
    subject: &'a str,
    customer: &'a str,
    body: &'a str,
}

/// A note to staff (`Auto-Submitted: auto-generated`): new ticket, customer reply,
/// assignment. Replying to it answers the customer (staff by e-mail) when `audience` is
/// the staff user it was sent to.
pub fn notification(
    identity: &Identity,
    thread: &Thread<'_>,
    to: Person<'_>,
    audience: Audience,
    headline: &str,
    customer: &str,
    body: &str,
) -> Result<Composed, ComposeError> {
    let text = NotificationText {
        marker: REPLY_MARKER,
        headline,
        reference: thread.ticket_id,
        subject: thread.ticket_subject,
        customer,
        body,
    }
    .render()?;
    compose(
        identity,
        thread,
        ThreadMail {
            audience,
            to: &[to],
            cc: &[],
            from_name: None,
            auto_submitted: Some("auto-generated"),
            text,
            html: None,
            message_id: None,
        },
    )
}

#[derive(Template)]
#[template(path = "mail/reply.txt")]
struct ReplyText<'a> {
    link: Option<&'a str>,
    marker: &'a str,
    body: &'a str,
    agent: &'a str,
    helpdesk: &'a str,
    reference: i64,
}

#[derive(Template)]
#[template(path = "mail/reply.html")]
struct ReplyHtml<'a> {
    link: Option<&'a str>,
    marker: &'a str,
    paragraphs: Vec<&'a str>,
    agent: &'a str,
    helpdesk: &'a str,
    reference: i64,
}

/// A staff member's public reply to the customer (and the Cc participants).
pub fn reply(
    identity: &Identity,
    thread: &Thread<'_>,
    to: &[Person<'_>],
    cc: &[Person<'_>],
    agent: &str,
    body: &str,
    personal: Personal<'_>,
) -> Result<Composed, ComposeError> {
    let text = ReplyText {
        link: personal.link,
        marker: REPLY_MARKER,
        body,
        agent,
        helpdesk: &identity.helpdesk,
        reference: thread.ticket_id,
    }
    .render()?;
    let paragraphs = body
        .split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let html = ReplyHtml {
        link: personal.link,
        marker: REPLY_MARKER,
        paragraphs,
        agent,
        helpdesk: &identity.helpdesk,
        reference: thread.ticket_id,
    }
    .render()?;
    let from_name = format!("{agent} via {}", identity.helpdesk);
    compose(
        identity,
        thread,
        ThreadMail {
            audience: Audience::Customer,
            to,
            cc,
            from_name: Some(&from_name),
            auto_submitted: None,
            text,
            html: Some(html),
            message_id: personal.message_id,
        },
    )
}

#[derive(Template)]
#[template(path = "mail/resolved.txt")]
struct ResolvedText<'a> {
    link: Option<&'a str>,
    marker: &'a str,
    name: Option<&'a str>,
    reference: i64,
    subject: &'a str,
    helpdesk: &'a str,
}

#[derive(Template)]
#[template(path = "mail/resolved.html")]
struct ResolvedHtml<'a> {
    link: Option<&'a str>,
    marker: &'a str,
    name: Option<&'a str>,
    reference: i64,
    subject: &'a str,
    helpdesk: &'a str,
}

/// Tells the customer their ticket was resolved (`Auto-Submitted: auto-generated`).
pub fn resolved(
    identity: &Identity,
    thread: &Thread<'_>,
    to: Person<'_>,
    personal: Personal<'_>,
) -> Result<Composed, ComposeError> {
    let text = ResolvedText {
        link: personal.link,
        marker: REPLY_MARKER,
        name: to.1,
        reference: thread.ticket_id,
        subject: thread.ticket_subject,
        helpdesk: &identity.helpdesk,
    }
    .render()?;
    let html = ResolvedHtml {
        link: personal.link,
        marker: REPLY_MARKER,
        name: to.1,
        reference: thread.ticket_id,
        subject: thread.ticket_subject,
        helpdesk: &identity.helpdesk,
    }
    .render()?;
    compose(
        identity,
        thread,
        ThreadMail {
            audience: Audience::Customer,
            to: &[to],
            cc: &[],
            from_name: None,
            auto_submitted: Some("auto-generated"),
            text,
            html: Some(html),
            message_id: personal.message_id,
        },
    )
}

/// A lettre mailbox; the name is cleaned again here because stored names may predate
/// the parser's cleaning, and lettre panics on a line break in a name.
fn lettre_mailbox((email, name): Person<'_>) -> Result<LettreMailbox, ComposeError> {
    Ok(LettreMailbox::new(
        name.and_then(text::display_name),
        text::address(email)
            .parse()
            .map_err(|_| ComposeError::Address(email.to_string()))?,
    ))
}

/// A mail to one person outside any ticket thread (an invitation, a task assigned to
/// them): `Auto-Submitted: auto-generated`, our loop marker, no subject tag, and a
/// Message-ID that refers to no ticket, so a reply to it threads nowhere special.
pub fn standalone(
    identity: &Identity,
    to: Person<'_>,
    subject: &str,
    text: String,
) -> Result<Composed, ComposeError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        build_standalone(identity, to, subject, text)
    }))
    .unwrap_or_else(|payload| Err(ComposeError::Panicked(panic_message(&*payload))))
}

fn build_standalone(
    identity: &Identity,
    to: Person<'_>,
    subject: &str,
    text: String,
) -> Result<Composed, ComposeError> {
    let message_id = format!(
        "md.notice.{}@{}",
        crate::domain::secret::random_token(),
        identity.domain()
    );
    let subject = text::subject(subject);
    let from: LettreMailbox = identity
        .from
        .parse()
        .map_err(|_| ComposeError::Address(identity.from.clone()))?;
    let message = lettre::Message::builder()
        .from(from)
        .to(lettre_mailbox(to)?)
        .subject(subject.clone())
        .message_id(Some(format!("<{message_id}>")))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".to_string(),
        ))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("X-Loop"),
            identity.loop_marker(),
        ))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("X-Auto-Response-Suppress"),
            "All".to_string(),
        ))
        .singlepart(SinglePart::plain(text.clone()))
        .map_err(|e| ComposeError::Build(e.to_string()))?;
    Ok(Composed {
        message_id,
        subject,
        text,
        html: String::new(),
        raw: message.formatted(),
    })
}

/// One mail in a ticket's thread: who gets it and what it says.
struct ThreadMail<'a> {
    audience: Audience,
    to: &'a [Person<'a>],
    cc: &'a [Person<'a>],
    /// Shown before our address in From ("Ann via Support").
    from_name: Option<&'a str>,
    auto_submitted: Option<&'static str>,
    text: String,
    html: Option<String>,
    /// The Message-ID all copies of one mail share; a new one when `None`.
    message_id: Option<&'a str>,
}

/// Builds the mail; a panic inside (lettre asserts on some inputs) becomes an error, so
/// one unsendable mail can never take the ingest of the message that caused it down.
fn compose(
    identity: &Identity,
    thread: &Thread<'_>,
    mail: ThreadMail<'_>,
) -> Result<Composed, ComposeError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        build(identity, thread, mail)
    }))
    .unwrap_or_else(|payload| Err(ComposeError::Panicked(panic_message(&*payload))))
}

/// The text of a panic payload (`panic!` with a literal or a formatted message).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

fn build(
    identity: &Identity,
    thread: &Thread<'_>,
    mail: ThreadMail<'_>,
) -> Result<Composed, ComposeError> {
    let message_id = message_id_for(identity, thread, &mail);
    let subject = tagged_subject(
        &identity.subject_prefix,
        thread.ticket_id,
        thread.ticket_subject,
    );
    let mut from: LettreMailbox = identity
        .from
        .parse()
        .map_err(|_| ComposeError::Address(identity.from.clone()))?;
    if let Some(name) = mail.from_name {
        from.name = text::display_name(name);
    }
    let mut builder = lettre::Message::builder()
        .from(from)
        .reply_to(reply_to_for(identity, thread, mail.audience)?)
        .subject(subject.clone())
        .message_id(Some(format!("<{message_id}>")));
    for person in mail.to {
        builder = builder.to(lettre_mailbox(*person)?);
    }
    for person in mail.cc {
        builder = builder.cc(lettre_mailbox(*person)?);
    }
    builder = loop_headers(builder, identity, mail.auto_submitted);
    builder = thread_headers(builder, thread);
    let message = match &mail.html {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(
            mail.text.clone(),
            html.clone(),
        )),
        None => builder.singlepart(SinglePart::plain(mail.text.clone())),
    }
    .map_err(|e| ComposeError::Build(e.to_string()))?;
    Ok(Composed {
        message_id,
        subject,
        text: mail.text,
        html: mail.html.unwrap_or_default(),
        raw: message.formatted(),
    })
}

/// The shared Message-ID, or a new one signed for the audience (a staff user's copy is
/// bound to them: their proof when they answer it).
fn message_id_for(identity: &Identity, thread: &Thread<'_>, mail: &ThreadMail<'_>) -> String {
    let nonce = rand::random::<u32>() as i64;
    let (secret, domain, ticket) = (
        identity.secret.expose(),
        identity.domain(),
        thread.ticket_id,
    );
    match (mail.message_id, mail.audience) {
        (Some(id), _) => id.to_string(),
        (None, Audience::Customer) => signing::message_id(secret, domain, ticket, nonce),
        (None, Audience::Staff { user_id }) => {
            signing::staff_message_id(secret, domain, ticket, nonce, user_id)
        }
    }
}

/// Reply-To: the support address, or its signed plus-address (threading rule 4).
fn reply_to_for(
    identity: &Identity,
    thread: &Thread<'_>,
    audience: Audience,
) -> Result<LettreMailbox, ComposeError> {
    let (secret, ticket) = (identity.secret.expose(), thread.ticket_id);
    let reply_address = match (identity.plus_address_reply_to, audience) {
        (false, _) => identity.support_address.clone(),
        (true, Audience::Customer) => {
            signing::reply_address(secret, &identity.support_address, ticket)
        }
        (true, Audience::Staff { user_id }) => {
            signing::staff_reply_address(secret, &identity.support_address, ticket, user_id)
        }
    };
    Ok(LettreMailbox::new(
        text::display_name(&identity.helpdesk),
        reply_address
            .parse()
            .map_err(|_| ComposeError::Address(reply_address.clone()))?,
    ))
}

/// What keeps auto-responders quiet and loops away: Auto-Submitted (when automatic),
/// X-Loop and X-Auto-Response-Suppress.
fn loop_headers(
    mut builder: lettre::message::MessageBuilder,
    identity: &Identity,
    auto_submitted: Option<&'static str>,
) -> lettre::message::MessageBuilder {
    if let Some(value) = auto_submitted {
        builder = builder.raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            value.to_string(),
        ));
    }
    builder
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("X-Loop"),
            identity.loop_marker(),
        ))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("X-Auto-Response-Suppress"),
            "All".to_string(),
        ))
}

/// In-Reply-To and a trimmed References chain, so every client threads our mail.
fn thread_headers(
    mut builder: lettre::message::MessageBuilder,
    thread: &Thread<'_>,
) -> lettre::message::MessageBuilder {
    let parent = thread
        .in_reply_to
        .map(text::message_id)
        .filter(|p| !p.is_empty());
    if let Some(parent) = &parent {
        builder = builder.in_reply_to(format!("<{parent}>"));
    }
    let references = trimmed_references(thread.references, parent.as_deref());
    if !references.is_empty() {
        builder = builder.references(
            references
                .iter()
                .map(|r| format!("<{r}>"))
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
    builder
}

/// `[Support #42] Printer on fire`: our tag first, the customer's words kept after it.
pub fn tagged_subject(prefix: &str, ticket_id: i64, subject_text: &str) -> String {
    let bare = subject::strip_tags(subject_text, prefix);
    let bare = if bare.is_empty() {
        "(no subject)".to_string()
    } else {
        bare
    };
    format!("{} {bare}", subject::tag(prefix, ticket_id))
}

/// The thread root plus the most recent references, ending with the parent; each one
/// cleaned and bounded, so a hostile stored ID cannot break the header.
fn trimmed_references(references: &[String], parent: Option<&str>) -> Vec<String> {
    let mut all: Vec<String> = references
        .iter()
        .map(|r| text::message_id(r))
        .filter(|r| !r.is_empty())
        .collect();
    if let Some(parent) = parent {
        if !all.iter().any(|r| r == parent) {
            all.push(parent.to_string());
        }
    }
    if all.len() > MAX_REFERENCES {
        let tail = all.split_off(all.len() - (MAX_REFERENCES - 1));
        all.truncate(1);
        all.extend(tail);
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> Identity {
        Identity {
            helpdesk: "Example Support".into(),
            from: "Example Support <support@example.com>".into(),
            support_address: "support@example.com".into(),
            subject_prefix: "Support".into(),
            secret: Secret("0123456789abcdef0123".into()),
            plus_address_reply_to: true,
        }
    }

    #[test]
    fn a_standalone_mail_has_loop_headers_and_no_ticket() {
        let mail = standalone(
            &identity(),
            ("new@staff.example", Some("New")),
            "You are invited\r\nBcc: evil@x.example",
            "Hello".into(),
        )
        .unwrap();
        let raw = String::from_utf8(mail.raw.clone()).unwrap();
        assert!(raw.contains("Auto-Submitted: auto-generated\r\n"), "{raw}");
        assert!(raw.contains("X-Loop: "), "{raw}");
        assert!(!raw.contains("#"), "no subject tag: {raw}");
        assert!(!raw.contains("\r\nBcc:"), "{raw}");
        assert!(mail.message_id.starts_with("md.notice."));
    }

    #[test]
    fn acknowledgement_has_the_threading_and_loop_headers() {
        let refs = vec!["root@c.example".to_string()];
        let thread = Thread {
            ticket_id: 42,
            ticket_subject: "Printer on fire",
            in_reply_to: Some("m1@c.example"),
            references: &refs,
        };
        let mail = acknowledgement(
            &identity(),
            &thread,
            "ann@c.example",
            Some("Ann"),
            Personal::default(),
        )
        .unwrap();
        let raw = String::from_utf8(mail.raw.clone()).unwrap();
        assert_eq!(mail.subject, "[Support #42] Printer on fire");
        assert!(
            raw.contains("Subject: [Support #42] Printer on fire\r\n"),
            "{raw}"
        );
        assert!(raw.contains(&format!("Message-ID: <{}>\r\n", mail.message_id)));
        assert_eq!(
            signing::verify_message_id("0123456789abcdef0123", &mail.message_id).map(|r| r.ticket),
            Some(42)
        );
        assert!(raw.contains("In-Reply-To: <m1@c.example>\r\n"));
        assert!(raw.contains("References: <root@c.example> <m1@c.example>\r\n"));
        assert!(raw.contains("Auto-Submitted: auto-replied\r\n"));
        assert!(raw.contains("X-Loop: support@example.com\r\n"));
        assert!(raw.contains("X-Auto-Response-Suppress: All\r\n"));
        assert!(
            raw.contains("Reply-To: \"Example Support\" <support+42-"),
            "{raw}"
        );
        assert!(mail.text.starts_with(REPLY_MARKER));
        assert!(mail.text.contains("ticket #42"));
        assert!(mail.html.contains("<strong>#42</strong>"));
    }

    #[test]
    fn the_signing_secret_never_shows_in_debug_output() {
        let shown = format!("{:?}", identity());
        assert!(!shown.contains("0123456789abcdef0123"), "{shown}");
    }

    #[test]
    fn staff_notifications_carry_references_bound_to_that_user() {
        let thread = Thread {
            ticket_id: 42,
            ticket_subject: "Printer",
            in_reply_to: None,
            references: &[],
        };
        let mail = notification(
            &identity(),
            &thread,
            ("agent@example.com", None),
            Audience::Staff { user_id: 7 },
            "New ticket",
            "ann@c.example",
            "Grüße",
        )
        .unwrap();
        let signed = signing::verify_message_id("0123456789abcdef0123", &mail.message_id);
        assert_eq!(signed.and_then(|s| s.staff_user), Some(7));
        let raw = String::from_utf8(mail.raw).unwrap();
        assert!(raw.contains("support+42-u7-"), "{raw}");
        assert!(
            raw.contains("Content-Type: text/plain; charset=utf-8"),
            "{raw}"
        );
    }

    #[test]
    fn subjects_are_tagged_once() {
        assert_eq!(
            tagged_subject("Support", 7, "Re: [Support #7] Help"),
            "[Support #7] Re: Help"
        );
        assert_eq!(
            tagged_subject("Support", 7, ""),
            "[Support #7] (no subject)"
        );
    }

    #[test]
    fn references_are_trimmed_to_root_and_recent() {
        let refs: Vec<String> = (0..30).map(|i| format!("r{i}@x")).collect();
        let trimmed = trimmed_references(&refs, Some("p@x"));
        assert_eq!(trimmed.len(), MAX_REFERENCES);
        assert_eq!(trimmed[0], "r0@x");
        assert_eq!(trimmed.last().unwrap(), "p@x");
    }
}
