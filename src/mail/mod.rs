//! Mail formats: parsing inbound messages (pure), reading mbox files.

pub mod compose;
pub mod hash;
pub mod imap;
pub mod mbox;
pub mod parse;
pub mod quote;

pub use parse::{parse, Attachment, InboundMail, Mailbox, ParseError, ParseOptions};

/// `"Support <support@example.com>"` or a bare address.
pub fn parse_mailbox(text: &str) -> Option<Mailbox> {
    let mailbox: lettre::message::Mailbox = text.parse().ok()?;
    Some(Mailbox {
        email: mailbox.email.to_string(),
        name: mailbox.name,
    })
}
