//! Mail formats: parsing inbound messages (pure), reading mbox files.

pub mod compose;
pub mod hash;
pub mod imap;
pub mod mbox;
pub mod parse;
pub mod quote;

pub use parse::{parse, Attachment, InboundMail, Mailbox, ParseError, ParseOptions};
