//! Content addressing for raw messages.

use sha2::{Digest, Sha256};

/// Lowercase hex SHA-256 of the raw bytes: the key raw messages are stored under.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Header fields that relays add on the way in. Two copies of one message fetched from two
/// mailboxes (or delivered twice) differ only in these, so they are left out of the
/// duplicate key; everything the sender wrote is kept.
const TRACE_FIELDS: &[&str] = &[
    "received",
    "return-path",
    "delivered-to",
    "x-original-to",
    "envelope-to",
    "x-envelope-to",
    "x-envelope-from",
    "x-delivered-to",
    "x-rcpt-to",
    "authentication-results",
    "arc-seal",
    "arc-message-signature",
    "arc-authentication-results",
    "received-spf",
    "x-spam-status",
    "x-spam-score",
    "x-spam-level",
    "x-spam-flag",
    "x-spam-checker-version",
    "x-virus-scanned",
];

/// SHA-256 of the message without its trace header fields (see [`TRACE_FIELDS`]):
/// together with the Message-ID it decides whether a message is a duplicate.
pub fn content_sha256_hex(raw: &[u8]) -> String {
    let mut hasher = Sha256::new();
    let mut rest = raw;
    let mut skipping = false;
    while !rest.is_empty() {
        let line_end = memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1);
        let line = &rest[..line_end];
        if line == b"\n" || line == b"\r\n" {
            break; // end of the header block: hash the rest as it is
        }
        let continuation = line[0] == b' ' || line[0] == b'\t';
        if !continuation {
            skipping = is_trace_field(line);
        }
        if !skipping {
            hasher.update(line);
        }
        rest = &rest[line_end..];
    }
    hasher.update(rest);
    hex::encode(hasher.finalize())
}

fn is_trace_field(line: &[u8]) -> bool {
    let Some(colon) = memchr::memchr(b':', line) else {
        return false;
    };
    let name = line[..colon].trim_ascii();
    TRACE_FIELDS
        .iter()
        .any(|field| name.eq_ignore_ascii_case(field.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_headers_do_not_change_the_content_hash() {
        let a = b"Received: from a\r\n by b\r\nFrom: x@y\r\nSubject: hi\r\n\r\nbody\r\n";
        let b = b"Delivered-To: support@z\r\nReceived: from c\r\nFrom: x@y\r\nSubject: hi\r\n\r\nbody\r\n";
        assert_eq!(content_sha256_hex(a), content_sha256_hex(b));
        assert_ne!(sha256_hex(a), sha256_hex(b));
    }

    #[test]
    fn body_and_sender_headers_do() {
        let a = b"From: x@y\r\n\r\nbody one\r\n";
        let b = b"From: x@y\r\n\r\nbody two\r\n";
        let c = b"From: z@y\r\n\r\nbody one\r\n";
        assert_ne!(content_sha256_hex(a), content_sha256_hex(b));
        assert_ne!(content_sha256_hex(a), content_sha256_hex(c));
    }

    #[test]
    fn a_received_line_in_the_body_counts() {
        let a = b"From: x@y\n\nReceived: yes\n";
        let b = b"From: x@y\n\nReceived: no\n";
        assert_ne!(content_sha256_hex(a), content_sha256_hex(b));
    }
}
