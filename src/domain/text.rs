//! Cleaning strings that come from hostile mail before anything else sees them: header
//! values become one line of printable text (a line break in a display name must never
//! reach an outgoing header), file names become safe to offer for download, and text for
//! a terminal loses its escape sequences.

use sha2::{Digest, Sha256};

/// Display names longer than this are cut (nobody's name is longer; a huge one is an attack).
pub const MAX_NAME_CHARS: usize = 200;
/// Subjects longer than this are cut: enough for any real subject, short enough to fold
/// into an outgoing header.
pub const MAX_SUBJECT_CHARS: usize = 500;
/// Message-IDs longer than this are replaced by a digest of themselves: RFC 5322 lines
/// stop at 998 bytes and a Message-ID cannot be folded, so a longer one would break every
/// header that repeats it (In-Reply-To, References of our replies).
pub const MAX_ID_BYTES: usize = 250;
/// Attachment names longer than this are shortened, keeping the extension.
pub const MAX_FILENAME_BYTES: usize = 180;
/// RFC 5321 caps a path at 256 octets; a longer "address" is junk.
pub const MAX_ADDRESS_CHARS: usize = 320;

/// Characters that change how text is shown without being visible: bidirectional
/// overrides (`U+202E` turns `gpj.exe` into `exe.jpg`), zero-width characters, BOM.
fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}'
        | '\u{061C}'
        | '\u{FEFF}')
}

/// One line of printable text: control characters (line breaks included) become spaces,
/// invisible format characters go, runs of white space become one space, and the result
/// is trimmed and cut to `max_chars`.
pub fn single_line(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars.saturating_mul(4)));
    let mut pending_space = false;
    let mut count = 0;
    for c in text.chars() {
        if is_invisible_format(c) {
            continue;
        }
        if c.is_control() || c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if count + usize::from(pending_space) >= max_chars {
            break;
        }
        if pending_space {
            out.push(' ');
            count += 1;
            pending_space = false;
        }
        out.push(c);
        count += 1;
    }
    out
}

/// A display name as stored: one line, without surrounding quotes; `None` when empty.
pub fn display_name(name: &str) -> Option<String> {
    let line = single_line(name, MAX_NAME_CHARS);
    let unquoted = line.trim_matches('"').trim();
    (!unquoted.is_empty()).then(|| unquoted.to_string())
}

/// A subject as stored: one line, at most [`MAX_SUBJECT_CHARS`].
pub fn subject(subject: &str) -> String {
    single_line(subject, MAX_SUBJECT_CHARS)
}

/// An e-mail address as written, on one line (an odd one such as `a b@c` is kept as
/// written for staff to see; the address rules decide whether it is usable).
pub fn address(address: &str) -> String {
    single_line(address, MAX_ADDRESS_CHARS)
}

/// A Message-ID (without angle brackets) as stored and compared: no white space or
/// control characters; one longer than [`MAX_ID_BYTES`] becomes a stable digest of itself,
/// so a reply that quotes the same long ID still finds it.
pub fn message_id(id: &str) -> String {
    let id: String = id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .chars()
        .filter(|c| !c.is_control() && !c.is_whitespace() && !is_invisible_format(*c))
        .collect();
    if id.len() <= MAX_ID_BYTES {
        return id;
    }
    let digest = hex::encode(Sha256::digest(id.as_bytes()));
    format!("long.{}@id.maildesk.invalid", &digest[..40])
}

/// A file name safe to show and to offer for download: no directories, no control or
/// invisible characters, not `.` or `..`, at most [`MAX_FILENAME_BYTES`] with the
/// extension kept. Empty when nothing usable is left.
pub fn file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let visible: String = base
        .chars()
        .filter(|c| !c.is_control() && !is_invisible_format(*c))
        .collect();
    let trimmed = visible.trim().trim_end_matches(['.', ' ']);
    if trimmed.chars().all(|c| c == '.') {
        return String::new();
    }
    shorten_keeping_extension(trimmed, MAX_FILENAME_BYTES)
}

fn shorten_keeping_extension(name: &str, max_bytes: usize) -> String {
    if name.len() <= max_bytes {
        return name.to_string();
    }
    let extension = name
        .rsplit_once('.')
        .map(|(_, ext)| ext)
        .filter(|ext| !ext.is_empty() && ext.len() <= 16);
    let suffix = extension.map(|ext| format!("….{ext}")).unwrap_or_default();
    let mut stem_end = max_bytes.saturating_sub(suffix.len());
    while !name.is_char_boundary(stem_end) {
        stem_end -= 1;
    }
    format!("{}{suffix}", name[..stem_end].trim_end())
}

/// Text for a terminal: line breaks and tabs stay, every other control character (escape
/// sequences, carriage returns that overwrite a line) and invisible format character goes.
pub fn terminal_safe(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char =
        |c: char| (c.is_control() && c != '\n' && c != '\t') || is_invisible_format(c);
    if text.chars().any(unsafe_char) {
        text.chars()
            .filter(|c| !unsafe_char(*c))
            .collect::<String>()
            .into()
    } else {
        text.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_text_becomes_one_clean_line() {
        assert_eq!(single_line("Mal\nX", 100), "Mal X");
        assert_eq!(single_line("Mal\rX\r\n\tY\u{7}Z", 100), "Mal X Y Z");
        assert_eq!(single_line("  a \u{1b}[31m b  ", 100), "a [31m b");
        assert_eq!(single_line("abc\u{202E}def\u{200B}", 100), "abcdef");
        assert_eq!(single_line("abcdef", 3), "abc");
        assert_eq!(single_line("ab cdef", 3), "ab");
        assert_eq!(display_name("\"\r\n\""), None);
        assert_eq!(display_name("\"Ann\nLee\""), Some("Ann Lee".into()));
        assert_eq!(subject(&"x".repeat(5000)).len(), MAX_SUBJECT_CHARS);
    }

    #[test]
    fn message_ids_are_bounded_and_stable() {
        assert_eq!(message_id(" <a@b>\r\n"), "a@b");
        assert_eq!(message_id("<a\u{0}b@c>"), "ab@c");
        let long = format!("{}@x", "a".repeat(5000));
        let short = message_id(&long);
        assert!(short.len() <= MAX_ID_BYTES, "{short}");
        assert_eq!(short, message_id(&format!("<{long}>")));
        assert_ne!(short, message_id(&format!("{}@x", "b".repeat(5000))));
    }

    #[test]
    fn file_names_are_safe() {
        assert_eq!(file_name("../../etc/passwd"), "passwd");
        assert_eq!(file_name(".."), "");
        assert_eq!(file_name("..\\..\\boot.ini"), "boot.ini");
        assert_eq!(file_name(".signature"), ".signature");
        assert_eq!(file_name(". . ."), "");
        assert_eq!(file_name("invoice\u{202E}fdp.exe"), "invoicefdp.exe");
        assert_eq!(file_name("a\r\nb  c.txt"), "ab  c.txt");
        let long = file_name(&format!("{}.pdf", "n".repeat(25_000)));
        assert!(
            long.len() <= MAX_FILENAME_BYTES && long.ends_with(".pdf"),
            "{long}"
        );
        let wide = file_name(&format!("{}.pdf", "é".repeat(1000)));
        assert!(wide.len() <= MAX_FILENAME_BYTES && wide.ends_with(".pdf"));
    }

    #[test]
    fn terminal_text_keeps_lines_and_drops_escapes() {
        assert_eq!(terminal_safe("a\nb\tc"), "a\nb\tc");
        assert_eq!(terminal_safe("\u{1b}[2Jhi\rthere\u{9b}"), "[2Jhithere");
    }
}
