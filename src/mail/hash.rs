//! Content addressing for raw messages.

use sha2::{Digest, Sha256};

/// Lowercase hex SHA-256 of the raw bytes: the key raw messages are stored under.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Which canonical form [`content_sha256_hex`] hashes. Raise it whenever that form
/// changes: at startup, stored content hashes of an older version are recomputed from
/// the raw messages (`store::upgrade`), or a message fetched again would not be found
/// as a duplicate of its stored copy. Version 1 hashed the raw bytes minus trace fields.
pub const CONTENT_HASH_VERSION: u32 = 2;

/// Starts every version-2 hash, so that no new hash can equal an old one.
const DOMAIN: &[u8] = b"maildesk content v2\n";

/// The Message-ID given to a message that has none, from its content hash (so every
/// copy of it gets the same one, whichever way it came in).
pub fn synthesized_message_id(content_sha256_hex: &str) -> String {
    format!(
        "{}@{SYNTHESIZED_ID_DOMAIN}",
        &content_sha256_hex[..32.min(content_sha256_hex.len())]
    )
}

pub const SYNTHESIZED_ID_DOMAIN: &str = "synthesized.maildesk.invalid";

/// Header fields that are not the sender's: relays add them on the way in, mail stores
/// and clients add them on delivery or when a message is read, moved or exported. Two
/// copies of one message (piped by the MTA, fetched over IMAP, exported to mbox, read in
/// Thunderbird) differ in these, so they are left out of the duplicate key; everything
/// the sender wrote is kept.
const IGNORED_FIELDS: &[&str] = &[
    // Trace fields and their relatives, added by relays and delivery agents.
    "received",
    "x-received",
    "return-path",
    "delivered-to",
    "x-original-to",
    "envelope-to",
    "x-envelope-to",
    "x-envelope-from",
    "x-delivered-to",
    "x-rcpt-to",
    "x-apparently-to",
    "x-originalarrivaltime",
    "authentication-results",
    "arc-seal",
    "arc-message-signature",
    "arc-authentication-results",
    "received-spf",
    "x-sieve",
    "x-sieve-redirected-from",
    "x-getmail-retrieved-from-mailbox",
    "x-fetchmail-warning",
    "x-forefront-antispam-report",
    // mbox writers and mail stores (Dovecot's and UW's mbox, mutt, elm, Pine): flags,
    // UIDs and the length, which changes with the line endings.
    "status",
    "x-status",
    "x-keywords",
    "x-uid",
    "x-imap",
    "x-imapbase",
    "content-length",
    "lines",
    "x-label",
    // Clients: Thunderbird (X-Mozilla-* below), POP3 fetchers, Evolution, Gmail exports.
    "x-account-key",
    "x-uidl",
    "x-evolution",
    "x-evolution-source",
    "x-gmail-labels",
    "x-gm-thrid",
];

/// Field-name prefixes left out for the same reason: spam and virus filters on the way
/// in, Exchange's organisation-internal fields, Thunderbird's status fields.
const IGNORED_PREFIXES: &[&str] = &[
    "x-spam-",
    "x-rspamd-",
    "x-amavis-",
    "x-virus-",
    "x-microsoft-antispam",
    "x-ms-exchange-organization-",
    "x-mozilla-",
];

/// SHA-256 of the message in a canonical form that the ways in cannot change; together
/// with the Message-ID it decides whether a message is a duplicate. The canonical form:
///
/// - line ends are LF, whether the raw message has CRLF (IMAP, SMTP), LF (a pipe from
///   Postfix, an mbox file) or a lone CR;
/// - a leading mbox `From ` separator line (with a time of day in it) is left out;
/// - header fields are unfolded, runs of spaces and tabs in them become one space, the
///   space around the value and the colon goes, names are lowercased (DKIM's "relaxed"
///   header canonicalisation, RFC 6376 3.4.2: what relays are known to re-fold or
///   re-case), and fields that are not the sender's ([`IGNORED_FIELDS`],
///   [`IGNORED_PREFIXES`]) are left out;
/// - body lines lose trailing spaces and tabs (some relays strip them) and the `>`s an
///   mbox writer puts before `From ` at the start of a line;
/// - blank lines at the very end (and an empty body's separator line) are left out, and
///   the last line always ends with LF;
/// - a NUL byte counts as 0x80: IMAP cannot carry NUL (RFC 3501 4.3), so Dovecot serves
///   it as 0x80.
///
/// Linear (a scan for NUL, then one pass); no allocation but the returned string.
pub fn content_sha256_hex(raw: &[u8]) -> String {
    let mut sink = Sink::new();
    sink.put(DOMAIN);
    sink.nul_as_0x80 = memchr::memchr(0, raw).is_some();
    let mut lines = Lines {
        rest: skip_mbox_separator(raw),
    };
    if canonical_header(&mut lines, &mut sink) {
        canonical_body(lines.rest, &mut sink);
    }
    sink.finish()
}

/// Canonical header fields, up to the blank line (or a line of only spaces and tabs,
/// which relays that strip trailing space turn into one). Returns whether a body follows.
fn canonical_header(lines: &mut Lines<'_>, sink: &mut Sink) -> bool {
    // Inside a kept field (so a continuation line belongs to it) / an ignored one.
    let mut open = false;
    let mut ignoring = false;
    for line in lines.by_ref() {
        if is_blank(line) {
            if open {
                sink.put(b"\n");
            }
            // The separator counts as one blank line: it is hashed only before body text.
            sink.blank_lines = 1;
            return true;
        }
        if is_wsp(line[0]) {
            if ignoring {
                continue;
            }
            // A continuation (or, before any field, a stray indented line): unfolding
            // keeps its leading space, which `put_relaxed` reduces to one.
            sink.put_relaxed(line, open);
            open = true;
            continue;
        }
        if open {
            sink.put(b"\n");
        }
        match memchr::memchr(b':', line) {
            Some(colon) => {
                let name = line[..colon].trim_ascii();
                ignoring = is_ignored_field(name);
                open = !ignoring;
                if open {
                    sink.put_lowercase(name);
                    sink.put(b":");
                    sink.put_relaxed(&line[colon + 1..], false);
                }
            }
            // Not a header field (a headerless message, a broken line): kept, relaxed.
            None => {
                ignoring = false;
                open = true;
                sink.put_relaxed(line, false);
            }
        }
    }
    if open {
        sink.put(b"\n");
    }
    false
}

/// The body, line by line, through the sink's buffer (hashing the input in place where
/// it is canonical already saved nothing measurable: SHA-256 is the cost).
fn canonical_body(body: &[u8], sink: &mut Sink) {
    for line in (Lines { rest: body }) {
        let text = unquote_from(trim_end_wsp(line));
        if text.is_empty() {
            sink.blank_lines += 1;
            continue;
        }
        sink.put_blank_lines();
        sink.put(text);
        sink.put(b"\n");
    }
}

/// mbox writers quote a body line starting with `From ` as `>From ` (mboxrd quotes
/// `>From ` once more, mboxo does not, readers differ): all of them hash as `From `.
fn unquote_from(line: &[u8]) -> &[u8] {
    if line.first() != Some(&b'>') {
        return line;
    }
    let quotes = line.iter().take_while(|&&b| b == b'>').count();
    if line[quotes..].starts_with(b"From ") {
        &line[quotes..]
    } else {
        line
    }
}

/// Leaves out a first line like `From ann@example.com  Mon Jan  2 10:00:00 2023`: the
/// mbox separator (and what Postfix's pipe puts first with flag F). Only with the time
/// of day in it, so a headerless note starting "From the desk of …" keeps its line.
fn skip_mbox_separator(raw: &[u8]) -> &[u8] {
    if !raw.starts_with(b"From ") {
        return raw;
    }
    let mut lines = Lines { rest: raw };
    let first = lines.next().unwrap_or_default();
    let has_time = first.windows(7).any(|w| {
        w[1] == b':'
            && w[4] == b':'
            && [w[0], w[2], w[3], w[5], w[6]]
                .iter()
                .all(u8::is_ascii_digit)
    });
    if has_time {
        lines.rest
    } else {
        raw
    }
}

fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(|&b| is_wsp(b))
}

fn trim_end_wsp(line: &[u8]) -> &[u8] {
    let end = line.iter().rposition(|&b| !is_wsp(b)).map_or(0, |i| i + 1);
    &line[..end]
}

fn is_ignored_field(name: &[u8]) -> bool {
    IGNORED_FIELDS
        .iter()
        .any(|field| name.eq_ignore_ascii_case(field.as_bytes()))
        || IGNORED_PREFIXES.iter().any(|prefix| {
            name.len() >= prefix.len()
                && name[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
        })
}

/// Where the line starting at `at` ends, and where the next one starts: lines end in
/// CRLF, LF, a lone CR, or the end of the input.
fn line_end(s: &[u8], at: usize) -> (usize, usize) {
    match memchr::memchr2(b'\n', b'\r', &s[at..]) {
        Some(i) => {
            let end = at + i;
            let crlf = s[end] == b'\r' && s.get(end + 1) == Some(&b'\n');
            (end, end + if crlf { 2 } else { 1 })
        }
        None => (s.len(), s.len()),
    }
}

/// The lines of the input, without their ends; `rest` is what is not read yet.
struct Lines<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        let (end, next) = line_end(self.rest, 0);
        let line = &self.rest[..end];
        self.rest = &self.rest[next..];
        Some(line)
    }
}

/// The hasher behind a small buffer: the canonical form comes in many short pieces.
struct Sink {
    hasher: Sha256,
    buf: [u8; 4096],
    len: usize,
    /// Blank body lines not hashed yet: they count only if text follows.
    blank_lines: usize,
    /// The message has NUL bytes: each is hashed as 0x80 (a byte at a time; rare).
    nul_as_0x80: bool,
}

impl Sink {
    fn new() -> Sink {
        Sink {
            hasher: Sha256::new(),
            buf: [0; 4096],
            len: 0,
            blank_lines: 0,
            nul_as_0x80: false,
        }
    }

    fn put(&mut self, bytes: &[u8]) {
        if self.nul_as_0x80 {
            for &b in bytes {
                self.put_byte(b);
            }
            return;
        }
        if bytes.len() > self.buf.len() - self.len {
            self.flush();
            if bytes.len() >= self.buf.len() {
                self.hasher.update(bytes);
                return;
            }
        }
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    fn put_byte(&mut self, b: u8) {
        if self.len == self.buf.len() {
            self.flush();
        }
        self.buf[self.len] = if b == 0 { 0x80 } else { b };
        self.len += 1;
    }

    fn put_lowercase(&mut self, name: &[u8]) {
        for &b in name {
            self.put_byte(b.to_ascii_lowercase());
        }
    }

    /// Header text with each run of spaces and tabs as one space and none at the ends;
    /// `after_text` says the field already has text (a continuation line's leading
    /// space then separates it from that text).
    fn put_relaxed(&mut self, text: &[u8], after_text: bool) {
        let mut space = false;
        let mut started = after_text;
        for word in text.split(|&b| is_wsp(b)) {
            if word.is_empty() {
                space = true;
                continue;
            }
            if space && started {
                self.put_byte(b' ');
            }
            self.put(word);
            started = true;
            space = true;
        }
    }

    fn put_blank_lines(&mut self) {
        for _ in 0..std::mem::take(&mut self.blank_lines) {
            self.put_byte(b'\n');
        }
    }

    fn flush(&mut self) {
        self.hasher.update(&self.buf[..self.len]);
        self.len = 0;
    }

    fn finish(mut self) -> String {
        self.flush();
        hex::encode(self.hasher.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(a: &[u8], b: &[u8]) {
        assert_eq!(
            content_sha256_hex(a),
            content_sha256_hex(b),
            "\n{:?}\n{:?}\nshould hash alike",
            String::from_utf8_lossy(a),
            String::from_utf8_lossy(b)
        );
    }

    fn differ(a: &[u8], b: &[u8]) {
        assert_ne!(
            content_sha256_hex(a),
            content_sha256_hex(b),
            "\n{:?}\n{:?}\nshould hash differently",
            String::from_utf8_lossy(a),
            String::from_utf8_lossy(b)
        );
    }

    const MESSAGE: &[u8] = b"From: Ann <ann@example.com>\r\nTo: support@example.com\r\nSubject: Printer\r\nMessage-ID: <1@example.com>\r\n\r\nHello,\r\n\r\nthe printer is on fire.\r\n\r\nAnn\r\n";

    fn lf(raw: &[u8]) -> Vec<u8> {
        String::from_utf8_lossy(raw)
            .replace("\r\n", "\n")
            .into_bytes()
    }

    #[test]
    fn trace_headers_do_not_change_the_content_hash() {
        let a = b"Received: from a\r\n by b\r\nFrom: x@y\r\nSubject: hi\r\n\r\nbody\r\n";
        let b = b"Delivered-To: support@z\r\nReceived: from c\r\nFrom: x@y\r\nSubject: hi\r\n\r\nbody\r\n";
        same(a, b);
        assert_ne!(sha256_hex(a), sha256_hex(b));
    }

    #[test]
    fn line_endings_do_not_change_it() {
        same(MESSAGE, &lf(MESSAGE));
        same(
            MESSAGE,
            MESSAGE.to_vec().replace_crlf_with(b"\r").as_slice(),
        );
        // Mixed: some lines CRLF, some LF.
        let mixed = String::from_utf8_lossy(MESSAGE).replacen("\r\n", "\n", 3);
        same(MESSAGE, mixed.as_bytes());
    }

    #[test]
    fn a_leading_mbox_separator_does_not() {
        let mut with_from = b"From ann@example.com Mon Jan  2 10:00:00 2023\n".to_vec();
        with_from.extend_from_slice(&lf(MESSAGE));
        same(MESSAGE, &with_from);
        let mut crlf_from = b"From MAILER-DAEMON Mon Jan  2 10:00:00 2023\r\n".to_vec();
        crlf_from.extend_from_slice(MESSAGE);
        same(MESSAGE, &crlf_from);
        // Not a separator: a headerless note's first line.
        differ(
            b"From the desk of Ann\n\nhello\n",
            b"From the desk of Bob\n\nhello\n",
        );
    }

    #[test]
    fn trailing_blank_lines_and_space_at_the_end_do_not() {
        let mut longer = MESSAGE.to_vec();
        longer.extend_from_slice(b"\r\n\r\n  \r\n\t\r\n");
        same(MESSAGE, &longer);
        same(MESSAGE, &MESSAGE[..MESSAGE.len() - 2]); // no final line end
        same(b"From: a@b\n", b"From: a@b\n\n");
        same(b"From: a@b\n", b"From: a@b");
        same(b"From: a@b\n\n", b"From: a@b\r\n\r\n\r\n");
    }

    #[test]
    fn trailing_space_on_a_line_does_not() {
        same(
            b"From: a@b\n\nline one  \nline two\t\n",
            b"From: a@b\n\nline one\nline two\n",
        );
        // A line of only spaces is a blank line.
        same(
            b"From: a@b\n\none\n   \ntwo\n",
            b"From: a@b\n\none\n\ntwo\n",
        );
        same(
            b"From: a@b \nSubject: x\t\n\nbody\n",
            b"From: a@b\nSubject: x\n\nbody\n",
        );
    }

    #[test]
    fn header_folding_and_spacing_do_not() {
        same(
            b"Subject: a long\r\n subject line\r\nFrom: a@b\r\n\r\nx\r\n",
            b"Subject: a long subject line\r\nFrom: a@b\r\n\r\nx\r\n",
        );
        same(
            b"Subject: a long\n\tsubject   line\nFrom: a@b\n\nx\n",
            b"subject:a long subject line\nFROM:  a@b\n\nx\n",
        );
        same(
            b"To: a@b,\r\n    c@d\r\n\r\nx\r\n",
            b"To: a@b, c@d\r\n\r\nx\r\n",
        );
    }

    #[test]
    fn store_and_client_fields_do_not() {
        let stored = b"From: a@b\nSubject: x\nStatus: RO\nX-Status: A\nX-Keywords: $Label1\nX-UID: 17\nContent-Length: 6\nLines: 1\n\nbody\n";
        let thunderbird = b"X-Mozilla-Status: 0001\r\nX-Mozilla-Status2: 00000000\r\nX-Mozilla-Keys:                     \r\nFrom: a@b\r\nSubject: x\r\n\r\nbody\r\n";
        let dovecot_mbox = b"X-IMAPbase: 1234567890 42\nX-IMAP: 1234567890 42\nFrom: a@b\nSubject: x\nX-Spam-Report: long\n  report\n\nbody\n";
        let plain = b"From: a@b\r\nSubject: x\r\n\r\nbody\r\n";
        same(plain, stored);
        same(plain, thunderbird);
        same(plain, dovecot_mbox);
    }

    #[test]
    fn mbox_from_quoting_does_not() {
        same(
            b"From: a@b\n\nhello\nFrom the team\n",
            b"From: a@b\n\nhello\n>From the team\n",
        );
        same(
            b"From: a@b\n\nhello\n>From the team\n",
            b"From: a@b\n\nhello\n>>From the team\n",
        );
    }

    #[test]
    fn nul_bytes_hash_as_dovecot_serves_them() {
        same(
            b"From: a@b\nSubject: x\0y\n\nT\0e\0s\0t\0\n\0\n",
            b"From: a@b\r\nSubject: x\x80y\r\n\r\nT\x80e\x80s\x80t\x80\r\n\x80\r\n",
        );
        differ(b"From: a@b\n\nx\0\n", b"From: a@b\n\nx\n");
    }

    #[test]
    fn body_and_sender_headers_do() {
        let a = b"From: x@y\r\n\r\nbody one\r\n";
        let b = b"From: x@y\r\n\r\nbody two\r\n";
        let c = b"From: z@y\r\n\r\nbody one\r\n";
        differ(a, b);
        differ(a, c);
        differ(MESSAGE, &MESSAGE[..MESSAGE.len() - 6]); // the signature cut off
        differ(
            b"From: a@b\nSubject: x\n\nbody\n",
            b"From: a@b\nSubject: y\n\nbody\n",
        );
        differ(
            b"From: a@b\nTo: c@d\n\nbody\n",
            b"From: a@b\nTo: e@d\n\nbody\n",
        );
        differ(
            b"From: a@b\nDate: Mon, 2 Jan 2023 10:00:00 +0000\n\nbody\n",
            b"From: a@b\nDate: Mon, 2 Jan 2023 10:00:01 +0000\n\nbody\n",
        );
    }

    #[test]
    fn what_the_sender_wrote_still_counts() {
        // Blank lines inside the body, indentation and spacing within a line.
        differ(b"From: a@b\n\none\n\ntwo\n", b"From: a@b\n\none\ntwo\n");
        differ(b"From: a@b\n\none\n\n\ntwo\n", b"From: a@b\n\none\n\ntwo\n");
        differ(b"From: a@b\n\n  indented\n", b"From: a@b\n\nindented\n");
        differ(b"From: a@b\n\na  b\n", b"From: a@b\n\na b\n");
        // A field moved from the header into the body, or the other way round.
        differ(
            b"From: a@b\nX-Note: 1\n\nbody\n",
            b"From: a@b\n\nX-Note: 1\nbody\n",
        );
        // The text of a header field, and a field the sender added.
        differ(
            b"From: a@b\nSubject: ab\n\nx\n",
            b"From: a@b\nSubject: a b\n\nx\n",
        );
        differ(b"From: a@b\n\nx\n", b"From: a@b\nX-Priority: 1\n\nx\n");
        // Line breaks inside a line are not spaces.
        differ(b"From: a@b\n\none two\n", b"From: a@b\n\none\ntwo\n");
        // A trace-looking line in the body is text.
        differ(
            b"From: x@y\n\nReceived: yes\n",
            b"From: x@y\n\nReceived: no\n",
        );
        // Something that only looks like a known field is not one.
        differ(b"From: a@b\nStatusx: 1\n\nx\n", b"From: a@b\n\nx\n");
        // A ">" before anything but "From " is quoting.
        differ(b"From: a@b\n\n> quoted\n", b"From: a@b\n\nquoted\n");
    }

    #[test]
    fn an_old_hash_is_never_a_new_one() {
        // The version prefix: a message that is already canonical still hashes anew.
        let canonical = b"from:a@b\n\nx\n";
        let mut v1 = Sha256::new();
        v1.update(canonical);
        assert_ne!(content_sha256_hex(canonical), hex::encode(v1.finalize()));
    }

    #[test]
    fn odd_input_is_fine() {
        for raw in [
            &b""[..],
            b"\n",
            b"\r",
            b"\r\n\r\n",
            b"From ",
            b"From x\n",
            b" leading space\n",
            b"no header at all\n",
            b":\n\n>\n",
            b"a:\r\r\r\n\n\r",
        ] {
            assert_eq!(content_sha256_hex(raw).len(), 64);
        }
        same(b"", b"\n\n");
        differ(b"", b"x");
        // Long lines and long fields go through the buffer in pieces.
        let long: Vec<u8> = [&b"Subject: "[..], &[b'x'; 10_000], b"\n\n", &[b'y'; 10_000]].concat();
        let mut long_crlf = long.clone();
        long_crlf.extend_from_slice(b"\r\n");
        same(&long, &long_crlf);
    }

    /// The body's canonical form, the slow and obvious way.
    fn reference_body(body: &str) -> String {
        let normalized = body.replace("\r\n", "\n").replace('\r', "\n");
        let mut lines: Vec<&str> = normalized.split('\n').collect();
        if normalized.ends_with('\n') {
            lines.pop();
        }
        let mut lines: Vec<&str> = lines
            .into_iter()
            .map(|l| l.trim_end_matches([' ', '\t']))
            .map(|l| match l.trim_start_matches('>') {
                rest if rest.starts_with("From ") => rest,
                _ => l,
            })
            .collect();
        while lines.last() == Some(&"") {
            lines.pop();
        }
        lines.iter().map(|l| format!("\n{l}")).collect::<String>()
            + if lines.is_empty() { "" } else { "\n" }
    }

    #[test]
    fn bodies_hash_as_their_reference_canonical_form() {
        let pieces = [
            "text",
            "",
            "  ",
            "\t",
            ">From x",
            "From y",
            ">> quoted",
            "t \t",
            "a  b",
        ];
        let ends = ["\n", "\r\n", "\r", "\n", "\n"];
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut random = |limit: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % limit as u64) as usize
        };
        for _ in 0..3000 {
            let mut body = String::new();
            for _ in 0..random(9) {
                body.push_str(pieces[random(pieces.len())]);
                body.push_str(ends[random(ends.len())]);
            }
            if random(3) == 0 {
                body.push_str(pieces[random(pieces.len())]);
            }
            let raw = format!("From: a@b\n\n{body}");
            // The header's line end ("from:a@b\n"), then the separator and body lines.
            let canonical = format!("from:a@b\n{}", reference_body(&body));
            let mut expected = Sha256::new();
            expected.update(DOMAIN);
            expected.update(canonical.as_bytes());
            assert_eq!(
                content_sha256_hex(raw.as_bytes()),
                hex::encode(expected.finalize()),
                "{raw:?} should hash as {canonical:?}"
            );
        }
    }

    trait ReplaceCrlf {
        fn replace_crlf_with(self, with: &[u8]) -> Vec<u8>;
    }

    impl ReplaceCrlf for Vec<u8> {
        fn replace_crlf_with(self, with: &[u8]) -> Vec<u8> {
            let mut out = Vec::with_capacity(self.len());
            let mut i = 0;
            while i < self.len() {
                if self[i..].starts_with(b"\r\n") {
                    out.extend_from_slice(with);
                    i += 2;
                } else {
                    out.push(self[i]);
                    i += 1;
                }
            }
            out
        }
    }
}
