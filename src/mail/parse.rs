//! Raw bytes → [`InboundMail`]: everything maildesk needs from a message, decoded. Pure:
//! no I/O, so it is tested over folders of `.eml` files.

use std::borrow::Cow;

use mail_parser::{
    Addr, Address, HeaderName, HeaderValue, MessageParser, MessagePart, MimeHeaders, PartType,
};

use crate::domain::automatic::{self, AutomaticReason, AutomaticSignals};
use crate::domain::{address, text};
use crate::mail::hash;

/// A name and address, as written in From/To/Cc.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Mailbox {
    pub email: String,
    pub name: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Attachment {
    pub filename: String,
    pub content_type: String,
    pub content_id: Option<String>,
    pub inline: bool,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct InboundMail {
    pub raw_sha256: String,
    /// Hash of the canonical form (`hash::content_sha256_hex`): with the Message-ID, the
    /// duplicate key.
    pub content_sha256: String,
    pub size: usize,
    /// Without angle brackets; synthesised from the content hash when the message has
    /// none (so the copies a pipe and IMAP deliver get the same one).
    pub message_id: String,
    pub message_id_synthesized: bool,
    /// The first usable From address, else Reply-To, Sender or Return-Path; `None` when
    /// the message names nobody (it is still stored: a ticket with no one to answer,
    /// never acknowledged).
    pub from: Option<Mailbox>,
    /// The sender's address is the From header's (not a fallback): only such a sender can
    /// ever be recognised as staff.
    pub from_header: bool,
    pub reply_to: Vec<Mailbox>,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub delivered_to: Vec<String>,
    pub subject: String,
    /// The Date header as Unix seconds, when it is valid.
    pub date: Option<i64>,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    /// Plain text: the text parts, or text derived from HTML when there is none.
    pub text: String,
    pub html: Option<String>,
    pub attachments: Vec<Attachment>,
    pub automatic: Option<AutomaticReason>,
    /// For a bounce: the Message-IDs of the returned original (it threads by them).
    pub bounced_message_ids: Vec<String>,
    /// For a bounce: recipients the report says failed permanently (Action: failed, 5.x.x).
    pub hard_bounced: Vec<String>,
    /// `Authentication-Results` header values, topmost (added last, by our own MTA) first.
    pub authentication_results: Vec<String>,
}

impl InboundMail {
    /// Every Message-ID this message refers to, nearest first: In-Reply-To, then
    /// References from the end of the chain backwards.
    pub fn referenced_ids(&self) -> Vec<&str> {
        let mut seen = std::collections::HashSet::new();
        let own = self.in_reply_to.iter().chain(self.references.iter().rev());
        own.chain(self.bounced_message_ids.iter())
            .map(String::as_str)
            .filter(|id| seen.insert(*id))
            .collect()
    }
}

/// What the parser needs to know about us.
#[derive(Debug, Clone, Default)]
pub struct ParseOptions {
    /// X-Loop values we stamp on our own mail.
    pub loop_markers: Vec<String>,
}

/// Why a message cannot become a ticket message; it goes to quarantine with this reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty message")]
    Empty,
    #[error("not an e-mail message: the parser found no message structure")]
    NotAMessage,
}

/// How many References we keep (the most recent): enough for any real thread, bounded
/// for hostile input.
const MAX_REFERENCES: usize = 100;
/// In-Reply-To names one parent; a few more are tolerated, thousands are an attack.
const MAX_IN_REPLY_TO: usize = 10;
/// Returned originals in one delivery report.
const MAX_BOUNCED_IDS: usize = 10;
/// Other header values we read (Auto-Submitted, X-Loop…) are cut to one line this long.
const MAX_HEADER_CHARS: usize = 998;
/// Addresses kept per address header (To, Cc, Reply-To) and Delivered-To lines.
const MAX_ADDRESSES: usize = 1000;

pub fn parse(raw: &[u8], options: &ParseOptions) -> Result<InboundMail, ParseError> {
    if raw.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ParseError::Empty);
    }
    let headerless;
    let message = match MessageParser::default().parse(raw) {
        Some(message) if has_header_fields(&message) || looks_like_text(raw) => message,
        Some(_) => return Err(ParseError::NotAMessage),
        // Text with no header block: a person wrote it, so it is all body (an empty
        // header block in front lets the parser say so). Binary junk is not a message.
        None if looks_like_text(raw) => {
            headerless = [b"\n".as_slice(), raw].concat();
            MessageParser::default()
                .parse(&headerless)
                .ok_or(ParseError::NotAMessage)?
        }
        None => return Err(ParseError::NotAMessage),
    };
    let raw_sha256 = hash::sha256_hex(raw);
    let content_sha256 = hash::content_sha256_hex(raw);
    let (from, from_header) = sender(&message);
    let (message_id, message_id_synthesized) = match message.message_id().map(text::message_id) {
        Some(id) if !id.is_empty() => (id, false),
        _ => (hash::synthesized_message_id(&content_sha256), true),
    };
    let signals = automatic_signals(&message, from.as_ref());
    let (text, html) = bodies(&message);
    Ok(InboundMail {
        content_sha256,
        raw_sha256,
        size: raw.len(),
        message_id,
        message_id_synthesized,
        reply_to: mailboxes(message.reply_to()),
        to: mailboxes(message.to()),
        cc: mailboxes(message.cc()),
        delivered_to: header_texts(&message, "Delivered-To")
            .map(|v| address::normalize(&text::address(&v)))
            .take(MAX_ADDRESSES)
            .collect(),
        subject: text::subject(message.subject().unwrap_or_default()),
        date: message
            .date()
            .filter(|d| d.is_valid())
            .map(|d| d.to_timestamp()),
        in_reply_to: {
            let mut ids = ids(message.in_reply_to());
            ids.truncate(MAX_IN_REPLY_TO);
            ids
        },
        references: {
            let mut refs = ids(message.references());
            let excess = refs.len().saturating_sub(MAX_REFERENCES);
            refs.drain(..excess);
            refs
        },
        text,
        html,
        attachments: attachments(&message),
        automatic: automatic::classify(&signals, &options.loop_markers),
        bounced_message_ids: bounced_message_ids(&message),
        hard_bounced: hard_bounced(&message),
        authentication_results: header_texts(&message, "Authentication-Results")
            .take(MAX_ADDRESSES)
            .collect(),
        from,
        from_header,
    })
}

/// At least one well-formed header field (RFC 5322 name, non-empty value).
fn has_header_fields(message: &mail_parser::Message<'_>) -> bool {
    message.headers().iter().any(|h| {
        !h.name().is_empty()
            && h.name()
                .bytes()
                .all(|b| (33..=126).contains(&b) && b != b':')
            && !h.value().is_empty()
    })
}

fn looks_like_text(raw: &[u8]) -> bool {
    let control = raw
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\n' | b'\r' | b'\t'))
        .count();
    control * 100 <= raw.len() && std::str::from_utf8(raw).is_ok()
}

/// The first usable From address, else Reply-To (where the writer wants answers), else
/// Sender, else Return-Path: somebody we could answer. The flag says it came from From.
fn sender(message: &mail_parser::Message<'_>) -> (Option<Mailbox>, bool) {
    let from_list: Vec<&Addr<'_>> = message
        .from()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let has_address = |a: &Addr<'_>, valid: bool| {
        a.address().is_some_and(|e| {
            let e = text::address(e);
            !e.is_empty() && (!valid || address::is_valid(&e))
        })
    };
    let first_from = from_list
        .iter()
        .find(|a| has_address(a, true))
        .or_else(|| from_list.iter().find(|a| has_address(a, false)))
        .or_else(|| from_list.first());
    // A From without a usable address still names someone ("From: Moderator"), and an
    // odd one ("<moderator>", "a b@c") is kept as written: it is what staff should see.
    let name = first_from
        .and_then(|a| a.name())
        .and_then(text::display_name);
    let from_email = first_from
        .and_then(|a| a.address())
        .map(text::address)
        .filter(|a| !a.is_empty());
    let from_header = from_email.is_some();
    let email = from_email
        .or_else(|| first_valid(message.reply_to()))
        .or_else(|| first_valid(message.sender()))
        .or_else(|| {
            message
                .return_address()
                .map(text::address)
                .filter(|a| address::is_valid(a))
        });
    let sender = match (email, name) {
        (None, None) => None,
        (email, name) => Some(Mailbox {
            email: email.unwrap_or_default(),
            name,
        }),
    };
    (sender, from_header)
}

fn first_valid(value: Option<&Address<'_>>) -> Option<String> {
    mailboxes(value).into_iter().next().map(|m| m.email)
}

/// The valid addresses of an address header (To, Cc, Reply-To), with their names.
fn mailboxes(value: Option<&Address<'_>>) -> Vec<Mailbox> {
    let Some(value) = value else {
        return Vec::new();
    };
    value
        .iter()
        .filter_map(|addr| {
            let email = text::address(addr.address()?);
            address::is_valid(&email).then(|| Mailbox {
                email,
                name: addr.name().and_then(text::display_name),
            })
        })
        .take(MAX_ADDRESSES)
        .collect()
}

fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    let list: Vec<String> = match value {
        HeaderValue::Text(id) => vec![text::message_id(id)],
        HeaderValue::TextList(ids) => ids.iter().map(|id| text::message_id(id)).collect(),
        _ => Vec::new(),
    };
    list.into_iter().filter(|id| !id.is_empty()).collect()
}

fn header_texts<'a>(
    message: &'a mail_parser::Message<'_>,
    name: &'a str,
) -> impl Iterator<Item = String> + 'a {
    message
        .headers()
        .iter()
        .filter(move |h| h.name().eq_ignore_ascii_case(name))
        .filter_map(|h| match h.value() {
            HeaderValue::Text(t) => Some(t.to_string()),
            HeaderValue::TextList(l) => Some(l.join(" ")),
            HeaderValue::Address(a) => a.first().and_then(|a| a.address()).map(str::to_string),
            _ => None,
        })
        .map(|value| text::single_line(&value, MAX_HEADER_CHARS))
}

fn has_header(message: &mail_parser::Message<'_>, name: &str) -> bool {
    message
        .headers()
        .iter()
        .any(|h| h.name().eq_ignore_ascii_case(name))
}

fn first_header_text(message: &mail_parser::Message<'_>, name: &str) -> Option<String> {
    header_texts(message, name).next()
}

fn automatic_signals(
    message: &mail_parser::Message<'_>,
    from: Option<&Mailbox>,
) -> AutomaticSignals {
    let return_path = match message.header(HeaderName::ReturnPath) {
        Some(HeaderValue::Text(t)) => Some(text::message_id(t)),
        Some(HeaderValue::TextList(l)) => l.first().map(|t| text::message_id(t)),
        Some(HeaderValue::Address(a)) => Some(
            a.first()
                .and_then(|a| a.address())
                .unwrap_or_default()
                .to_string(),
        ),
        Some(_) => Some(String::new()),
        None => None,
    };
    let is_delivery_status = message.content_type().is_some_and(|ct| {
        let report = ct.ctype().eq_ignore_ascii_case("multipart")
            && ct
                .subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("report"))
            && ct
                .attribute("report-type")
                .is_some_and(|r| r.eq_ignore_ascii_case("delivery-status"));
        let bare = ct.ctype().eq_ignore_ascii_case("message")
            && ct
                .subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("delivery-status"));
        report || bare
    });
    AutomaticSignals {
        auto_submitted: first_header_text(message, "Auto-Submitted"),
        precedence: first_header_text(message, "Precedence"),
        has_x_autoreply: has_header(message, "X-Autoreply"),
        has_x_autorespond: has_header(message, "X-Autorespond"),
        has_x_auto_response_suppress: has_header(message, "X-Auto-Response-Suppress"),
        has_list_id: has_header(message, "List-Id"),
        has_list_unsubscribe: has_header(message, "List-Unsubscribe"),
        return_path,
        sender_address: from.map(|f| f.email.clone()),
        is_delivery_status,
        x_loop: header_texts(message, "X-Loop").collect(),
    }
}

/// Message-IDs of the original message a delivery report returns (a `message/rfc822` or
/// `text/rfc822-headers` part).
fn bounced_message_ids(message: &mail_parser::Message<'_>) -> Vec<String> {
    let mut ids = Vec::new();
    for part in message.attachments() {
        let original = match &part.body {
            PartType::Message(inner) => inner.message_id().map(text::message_id),
            PartType::Text(text) | PartType::Html(text)
                if part.content_type().is_some_and(|ct| {
                    ct.subtype()
                        .is_some_and(|s| s.eq_ignore_ascii_case("rfc822-headers"))
                }) =>
            {
                MessageParser::default()
                    .parse_headers(text.as_bytes())
                    .and_then(|m| m.message_id().map(text::message_id))
            }
            PartType::Binary(bytes) | PartType::InlineBinary(bytes)
                if part.content_type().is_some_and(|ct| {
                    ct.subtype().is_some_and(|s| {
                        s.eq_ignore_ascii_case("rfc822-headers") || s.eq_ignore_ascii_case("rfc822")
                    })
                }) =>
            {
                MessageParser::default()
                    .parse_headers(bytes.as_ref())
                    .and_then(|m| m.message_id().map(text::message_id))
            }
            _ => None,
        };
        ids.extend(original.filter(|id| !id.is_empty()));
        if ids.len() >= MAX_BOUNCED_IDS {
            break;
        }
    }
    ids
}

/// Recipients a delivery-status report marks as failed for good.
fn hard_bounced(message: &mail_parser::Message<'_>) -> Vec<String> {
    let mut failed = Vec::new();
    for part in message.attachments() {
        let is_status = part.content_type().is_some_and(|ct| {
            ct.ctype().eq_ignore_ascii_case("message")
                && ct
                    .subtype()
                    .is_some_and(|s| s.eq_ignore_ascii_case("delivery-status"))
        });
        if !is_status {
            continue;
        }
        let text = String::from_utf8_lossy(part.contents()).into_owned();
        // Per-recipient fields come in blocks separated by blank lines.
        for block in text.replace("\r\n", "\n").split("\n\n") {
            let field = |name: &str| {
                block.lines().find_map(|l| {
                    l.split_once(':')
                        .filter(|(k, _)| k.trim().eq_ignore_ascii_case(name))
                        .map(|(_, v)| v.trim().to_string())
                })
            };
            let (Some(recipient), Some(action)) = (field("Final-Recipient"), field("Action"))
            else {
                continue;
            };
            let permanent = field("Status").is_some_and(|s| s.starts_with('5'));
            if action.eq_ignore_ascii_case("failed") && permanent {
                let address = recipient.rsplit(';').next().unwrap_or_default().trim();
                if address::is_valid(address) {
                    failed.push(address::normalize(address));
                }
            }
        }
    }
    failed
}

/// The plain text (all text parts, in order; HTML turned into text where a part has no
/// plain alternative) and the HTML (all HTML parts).
fn bodies(message: &mail_parser::Message<'_>) -> (String, Option<String>) {
    let texts: Vec<Cow<'_, str>> = (0..message.text_body_count())
        .filter_map(|i| message.body_text(i))
        .filter(|t| !t.trim().is_empty())
        .collect();
    let htmls: Vec<&str> = message
        .html_bodies()
        .filter_map(|part| match &part.body {
            PartType::Html(html) => Some(html.as_ref()),
            _ => None,
        })
        .collect();
    let html = (!htmls.is_empty()).then(|| clean_text(&htmls.join("\n")));
    (clean_text(&texts.join("\n")), html)
}

fn attachments(message: &mail_parser::Message<'_>) -> Vec<Attachment> {
    let mut list: Vec<Attachment> = message
        .attachments()
        .enumerate()
        .map(|(index, part)| attachment(message, part, index))
        .collect();
    // A named text part the parser shows as body (the whole message, or an inline
    // disposition) is also offered as the named file; an empty one would vanish otherwise.
    let mut body_parts: Vec<u32> = message
        .text_body
        .iter()
        .chain(&message.html_body)
        .copied()
        .filter(|id| !message.attachments.contains(id))
        .collect();
    body_parts.sort_unstable();
    body_parts.dedup();
    for id in body_parts {
        let Some(part) = message.parts.get(id as usize) else {
            continue;
        };
        if part.attachment_name().is_some()
            && matches!(part.body, PartType::Text(_) | PartType::Html(_))
        {
            let index = list.len();
            list.push(attachment(message, part, index));
        }
    }
    list
}

fn attachment(
    message: &mail_parser::Message<'_>,
    part: &MessagePart<'_>,
    index: usize,
) -> Attachment {
    let content_type = part
        .content_type()
        .map(|ct| match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub),
            None => ct.ctype().to_string(),
        })
        .unwrap_or_else(|| default_content_type(part).to_string())
        .chars()
        .filter(char::is_ascii_graphic)
        .take(255)
        .collect::<String>()
        .to_ascii_lowercase();
    let data: Vec<u8> = match &part.body {
        PartType::Text(t) | PartType::Html(t) => t.as_bytes().to_vec(),
        PartType::Binary(b) | PartType::InlineBinary(b) => lenient_base64_body(message, part)
            .filter(|d| d.len() > b.len())
            .unwrap_or_else(|| b.to_vec()),
        PartType::Message(m) => m.raw_message().to_vec(),
        PartType::Multipart(_) => Vec::new(),
    };
    let filename = part
        .attachment_name()
        .map(text::file_name)
        .filter(|n| !n.is_empty())
        .or_else(|| match &part.body {
            PartType::Message(m) => m
                .subject()
                .map(|s| text::file_name(&format!("{}.eml", s.trim())))
                .filter(|n| n != ".eml"),
            _ => None,
        })
        .unwrap_or_else(|| format!("attachment-{}.{}", index + 1, extension_for(&content_type)));
    let content_id = part
        .content_id()
        .map(text::message_id)
        .filter(|c| !c.is_empty());
    let disposition_inline = part
        .content_disposition()
        .map(|d| d.ctype().eq_ignore_ascii_case("inline"));
    Attachment {
        inline: disposition_inline.unwrap_or(content_id.is_some()),
        filename,
        content_type,
        content_id,
        data,
    }
}

/// Broken mailers send base64 without padding; the parser drops the last partial
/// group. Decoding the raw body leniently keeps those bytes (used only when it yields more).
fn lenient_base64_body(
    message: &mail_parser::Message<'_>,
    part: &MessagePart<'_>,
) -> Option<Vec<u8>> {
    let is_base64 = part
        .content_transfer_encoding()
        .is_some_and(|e| e.trim().eq_ignore_ascii_case("base64"));
    if !is_base64 {
        return None;
    }
    let body = message
        .raw_message
        .get(part.offset_body as usize..part.offset_end as usize)?;
    Some(decode_base64_lenient(body))
}

/// Decodes base64, skipping anything outside the alphabet and keeping a final partial group.
fn decode_base64_lenient(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in input {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => continue,
        };
        acc = (acc << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

fn default_content_type(part: &MessagePart<'_>) -> &'static str {
    match part.body {
        PartType::Text(_) => "text/plain",
        PartType::Html(_) => "text/html",
        PartType::Message(_) => "message/rfc822",
        _ => "application/octet-stream",
    }
}

fn extension_for(content_type: &str) -> &str {
    match content_type {
        "message/rfc822" => "eml",
        "text/plain" => "txt",
        "application/octet-stream" => "bin",
        "image/jpeg" => "jpg",
        other => other
            .rsplit('/')
            .next()
            .filter(|s| {
                !s.is_empty() && s.len() <= 8 && s.bytes().all(|b| b.is_ascii_alphanumeric())
            })
            .unwrap_or("bin"),
    }
}

/// Text as stored: NUL characters removed (PostgreSQL text cannot hold them, and they are
/// never meaningful in mail text).
fn clean_text(text: &str) -> String {
    if text.contains('\0') {
        text.replace('\0', "")
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(raw: &str) -> Result<InboundMail, ParseError> {
        parse(
            raw.as_bytes(),
            &ParseOptions {
                loop_markers: vec!["support@example.com".into()],
            },
        )
    }

    #[test]
    fn plain_message() {
        let mail = parse_str(
            "From: Ann Lee <Ann@Example.com>\r\nTo: support@example.com\r\nCc: Bob <bob@example.com>\r\nSubject: =?utf-8?q?Dr=C3=BCcker?= broken\r\nMessage-ID: <abc@example.com>\r\nIn-Reply-To: <p@x>\r\nReferences: <r1@x> <r2@x>\r\nDate: Mon, 2 Jan 2023 10:00:00 +0000\r\n\r\nHello\r\n",
        )
        .unwrap();
        assert_eq!(
            mail.from,
            Some(Mailbox {
                email: "Ann@Example.com".into(),
                name: Some("Ann Lee".into())
            })
        );
        assert_eq!(mail.subject, "Drücker broken");
        assert_eq!(mail.message_id, "abc@example.com");
        assert_eq!(mail.in_reply_to, vec!["p@x"]);
        assert_eq!(mail.references, vec!["r1@x", "r2@x"]);
        assert_eq!(mail.referenced_ids(), vec!["p@x", "r2@x", "r1@x"]);
        assert_eq!(mail.cc[0].email, "bob@example.com");
        assert_eq!(mail.date, Some(1_672_653_600));
        assert_eq!(mail.text.trim(), "Hello");
        assert!(mail.automatic.is_none());
    }

    #[test]
    fn synthesises_a_message_id() {
        let mail = parse_str("From: a@b.c\n\nx\n").unwrap();
        assert!(mail.message_id_synthesized);
        assert!(mail.message_id.ends_with("@synthesized.maildesk.invalid"));
        assert_eq!(mail.subject, "");
        // The same message as another way in delivers it: the same id.
        let crlf = parse_str("From ann@b.c  Mon Jan  2 10:00:00 2023\r\nFrom: a@b.c\r\n\r\nx\r\n")
            .unwrap();
        assert_eq!(crlf.message_id, mail.message_id);
        assert_ne!(crlf.raw_sha256, mail.raw_sha256);
    }

    #[test]
    fn html_only_gets_a_text_body() {
        let mail = parse_str("From: a@b.c\nContent-Type: text/html\n\n<p>Hello <b>there</b></p>\n")
            .unwrap();
        assert!(mail.text.contains("Hello"), "{:?}", mail.text);
        assert!(mail.text.contains("there"));
        assert!(!mail.text.contains("<b>"));
        assert!(mail.html.unwrap().contains("<b>there</b>"));
    }

    #[test]
    fn attachments_and_inline_images() {
        let raw = "From: a@b.c\nContent-Type: multipart/mixed; boundary=X\n\n--X\nContent-Type: text/plain\n\nsee attached\n--X\nContent-Type: application/pdf; name=\"../etc/report.pdf\"\nContent-Disposition: attachment; filename=\"../etc/report.pdf\"\nContent-Transfer-Encoding: base64\n\nJVBERi0=\n--X\nContent-Type: image/png\nContent-ID: <logo@x>\nContent-Transfer-Encoding: base64\n\niVBORw==\n--X--\n";
        let mail = parse_str(raw).unwrap();
        assert_eq!(mail.attachments.len(), 2);
        let pdf = &mail.attachments[0];
        assert_eq!(
            (
                pdf.filename.as_str(),
                pdf.content_type.as_str(),
                pdf.data.as_slice(),
                pdf.inline
            ),
            ("report.pdf", "application/pdf", &b"%PDF-"[..], false)
        );
        let logo = &mail.attachments[1];
        assert_eq!(logo.content_id.as_deref(), Some("logo@x"));
        assert!(logo.inline);
        assert_eq!(logo.filename, "attachment-2.png");
    }

    #[test]
    fn automatic_mail_is_classified() {
        let mail = parse_str("From: a@b.c\nAuto-Submitted: auto-replied\n\nI am away\n").unwrap();
        assert_eq!(
            mail.automatic,
            Some(AutomaticReason::AutoSubmitted("auto-replied".into()))
        );
        let mail = parse_str("From: MAILER-DAEMON@mx.b.c\nContent-Type: multipart/report; report-type=delivery-status; boundary=B\n\n--B\n\nfailed\n--B--\n").unwrap();
        assert_eq!(mail.automatic, Some(AutomaticReason::DeliveryStatus));
        let mail = parse_str("From: a@b.c\nReturn-Path: <>\n\nbounce\n").unwrap();
        assert_eq!(mail.automatic, Some(AutomaticReason::NullReturnPath));
        let mail = parse_str("From: a@b.c\nX-Loop: support@example.com\n\nloop\n").unwrap();
        assert_eq!(
            mail.automatic,
            Some(AutomaticReason::OwnLoop("support@example.com".into()))
        );
    }

    #[test]
    fn rejects_what_cannot_be_a_message() {
        assert_eq!(parse_str("").unwrap_err(), ParseError::Empty);
        assert_eq!(parse_str(" \r\n").unwrap_err(), ParseError::Empty);
        assert_eq!(
            parse(b"\x00\x01\x02binary\xff", &ParseOptions::default()).unwrap_err(),
            ParseError::NotAMessage
        );
    }

    #[test]
    fn sender_falls_back_to_reply_to_sender_and_return_path() {
        let sender = |raw: &str| parse_str(raw).unwrap().from.map(|f| f.email);
        assert_eq!(
            sender("Sender: s@b.c\nReply-To: r@b.c\n\nx\n").as_deref(),
            Some("r@b.c")
        );
        assert_eq!(sender("Sender: s@b.c\n\nx\n").as_deref(), Some("s@b.c"));
        assert_eq!(
            sender("Return-Path: <r@b.c>\nSubject: x\n\nx\n").as_deref(),
            Some("r@b.c")
        );
        assert_eq!(sender("Subject: who am i\n\nbody\n"), None);
        let odd = parse_str("From: Moderator <moderator>\n\nx\n")
            .unwrap()
            .from
            .unwrap();
        assert_eq!(
            (odd.email.as_str(), odd.name.as_deref()),
            ("moderator", Some("Moderator"))
        );
    }

    #[test]
    fn cjk_charsets_decode() {
        let mail = parse_str("From: =?ISO-2022-JP?B?GyRCO3ZMMzZJGyhC?= <a@b.c>\nSubject: =?gb2312?B?vKjQp7ncwO0=?=\n\nx\n").unwrap();
        assert_eq!(mail.from.unwrap().name.as_deref(), Some("事務局"));
        assert_eq!(mail.subject, "绩效管理");
    }

    #[test]
    fn a_message_without_headers_is_all_body() {
        let mail = parse_str("Just some words.\nMore words.\n").unwrap();
        assert_eq!(mail.from, None);
        assert!(mail.text.contains("More words."), "{:?}", mail.text);
    }

    #[test]
    fn a_named_single_part_is_body_and_attachment() {
        let mail =
            parse_str("From: a@b.c\nContent-Type: text/plain; name=\"notes.txt\"\n\nhello\n")
                .unwrap();
        assert!(mail.text.contains("hello"));
        assert_eq!(mail.attachments.len(), 1);
        assert_eq!(mail.attachments[0].filename, "notes.txt");
    }

    #[test]
    fn lenient_base64_keeps_partial_groups() {
        assert_eq!(decode_base64_lenient(b"aGVsbG8="), b"hello");
        assert_eq!(decode_base64_lenient(b"aGVs\r\nbG8"), b"hello");
        let raw = "From: a@b.c\nContent-Type: multipart/mixed; boundary=X\n\n--X\nContent-Type: text/plain\n\nx\n--X\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\naGVsbG8\n--X--\n";
        assert_eq!(parse_str(raw).unwrap().attachments[0].data, b"hello");
    }

    #[test]
    fn bounces_name_the_original_and_the_failed_recipient() {
        let raw = "From: MAILER-DAEMON@mx.example.org\nTo: support@example.com\nSubject: Undelivered Mail Returned to Sender\nContent-Type: multipart/report; report-type=delivery-status; boundary=B\n\n--B\nContent-Type: text/plain\n\nYour message could not be delivered.\n--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.org\n\nFinal-Recipient: rfc822; Gone@Customer.example\nAction: failed\nStatus: 5.1.1\n\nFinal-Recipient: rfc822; later@customer.example\nAction: delayed\nStatus: 4.4.1\n--B\nContent-Type: message/rfc822\n\nFrom: support@example.com\nMessage-ID: <md.1.2.abc@example.com>\nSubject: [Support #1] Hi\n\nbody\n--B--\n";
        let mail = parse_str(raw).unwrap();
        assert_eq!(mail.automatic, Some(AutomaticReason::DeliveryStatus));
        assert_eq!(mail.bounced_message_ids, vec!["md.1.2.abc@example.com"]);
        assert_eq!(mail.referenced_ids(), vec!["md.1.2.abc@example.com"]);
        assert_eq!(mail.hard_bounced, vec!["gone@customer.example"]);
    }

    #[test]
    fn unknown_charset_keeps_the_text() {
        let mail = parse_str(
            "From: a@b.c\nContent-Type: text/plain; charset=x-unknown-42\n\nplain words\n",
        )
        .unwrap();
        assert!(mail.text.contains("plain words"));
    }

    #[test]
    fn nul_bytes_are_removed_from_text() {
        let mail = parse_str("From: a@b.c\nSubject: a\0b\n\nx\0y\n").unwrap();
        assert!(!mail.subject.contains('\0'));
        assert!(!mail.text.contains('\0'));
    }
}
#[cfg(test)]
mod hostile_tests {
    use super::*;

    fn parse_str(raw: &str) -> InboundMail {
        parse(raw.as_bytes(), &ParseOptions::default()).unwrap()
    }

    #[test]
    fn encoded_line_breaks_never_reach_names_subjects_or_ids() {
        let mail = parse_str("From: =?utf-8?q?Mal=0AX?= <m@x.example>\r\nCc: =?utf-8?q?Bad=0DCc?= <c@x.example>, =?utf-8?b?RXZpbA0KQmNjOiB4QHk=?= <d@x.example>\r\nSubject: =?utf-8?q?one=0D=0ABcc:_evil@x.example?=\r\nMessage-ID: <a\r\n b@x>\r\n\r\nhi\r\n");
        let from = mail.from.unwrap();
        assert_eq!(from.name.as_deref(), Some("Mal X"));
        assert_eq!(mail.cc[0].name.as_deref(), Some("Bad Cc"));
        assert_eq!(mail.cc[1].name.as_deref(), Some("Evil Bcc: x@y"));
        assert_eq!(mail.subject, "one Bcc: evil@x.example");
        assert!(!mail.message_id.contains(char::is_whitespace));
    }

    #[test]
    fn the_first_usable_from_address_is_the_sender() {
        let mail = parse_str(
            "From: \"X\" <>, \"Y\" <y@example.com>\r\nReply-To: r@example.com\r\n\r\nhi\r\n",
        );
        let from = mail.from.unwrap();
        assert_eq!(
            (from.email.as_str(), from.name.as_deref()),
            ("y@example.com", Some("Y"))
        );
        assert!(mail.from_header);
        let mail = parse_str("From: \"X\" <>\r\nReply-To: r@example.com\r\n\r\nhi\r\n");
        assert_eq!(mail.from.unwrap().email, "r@example.com");
        assert!(
            !mail.from_header,
            "a Reply-To fallback is not the From header"
        );
    }

    #[test]
    fn hostile_lists_are_bounded() {
        let many: String = (0..5000).map(|i| format!("<id{i}@x> ")).collect();
        let cc: String = (0..3000).map(|i| format!("c{i}@x.example, ")).collect();
        let mail = parse_str(&format!(
            "From: a@b.c\r\nIn-Reply-To: {many}\r\nReferences: {many}\r\nCc: {cc}\r\n\r\nx\r\n"
        ));
        assert_eq!(mail.in_reply_to.len(), MAX_IN_REPLY_TO);
        assert_eq!(mail.references.len(), MAX_REFERENCES);
        assert_eq!(mail.references.last().unwrap(), "id4999@x");
        assert_eq!(mail.cc.len(), MAX_ADDRESSES);
        assert!(mail.referenced_ids().len() <= MAX_IN_REPLY_TO + MAX_REFERENCES);
    }

    #[test]
    fn attachment_names_are_cleaned_and_empty_files_kept() {
        let long = "n".repeat(25_000);
        let raw = format!("From: a@b.c\r\nContent-Type: multipart/mixed; boundary=X\r\n\r\n--X\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--X\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"..\"\r\n\r\nx\r\n--X\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"invoice\u{202E}fdp.exe\"\r\n\r\ny\r\n--X\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"{long}.pdf\"\r\n\r\nz\r\n--X\r\nContent-Type: text/plain\r\nContent-Disposition: inline; filename=\"empty.txt\"\r\n\r\n\r\n--X--\r\n");
        let mail = parse_str(&raw);
        let names: Vec<&str> = mail
            .attachments
            .iter()
            .map(|a| a.filename.as_str())
            .collect();
        assert_eq!(names.len(), 4, "{names:?}");
        assert_eq!(names[0], "attachment-1.bin");
        assert_eq!(names[1], "invoicefdp.exe");
        assert!(names[2].len() <= text::MAX_FILENAME_BYTES && names[2].ends_with(".pdf"));
        assert_eq!(names[3], "empty.txt");
        assert!(mail.attachments[3].data.is_empty());
    }

    #[test]
    fn authentication_results_are_kept_in_order() {
        let mail = parse_str("Authentication-Results: mx.example.com; dmarc=pass header.from=example.com\r\nAuthentication-Results: evil; dkim=pass\r\nFrom: a@example.com\r\n\r\nx\r\n");
        assert_eq!(mail.authentication_results.len(), 2);
        assert!(mail.authentication_results[0].starts_with("mx.example.com"));
    }
}
