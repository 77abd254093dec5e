//! The subject tag `[<prefix> #<ref>]` that ties a mail to a ticket (threading rule 5).

/// Formats our tag for a ticket reference.
pub fn tag(prefix: &str, ticket_ref: i64) -> String {
    format!("[{prefix} #{ticket_ref}]")
}

/// Finds our tag in a subject and returns the ticket reference. The prefix is matched
/// case-insensitively and spacing inside the brackets is forgiven (`[support#12]`,
/// `[ Support  #12 ]`), because mail clients and people retype subjects.
pub fn find_tag(subject: &str, prefix: &str) -> Option<i64> {
    tag_spans(subject, prefix)
        .next()
        .map(|(_, reference)| reference)
}

/// The subject without our tag(s), for tickets opened from a mail that carries a tag we
/// did not accept (someone else's ticket number).
pub fn strip_tags(subject: &str, prefix: &str) -> String {
    let mut result = String::with_capacity(subject.len());
    let mut last = 0;
    for (span, _) in tag_spans(subject, prefix) {
        result.push_str(&subject[last..span.start]);
        last = span.end;
    }
    result.push_str(&subject[last..]);
    result.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn tag_spans<'a>(
    subject: &'a str,
    prefix: &'a str,
) -> impl Iterator<Item = (std::ops::Range<usize>, i64)> + 'a {
    subject.match_indices('[').filter_map(move |(start, _)| {
        let end = start + subject[start..].find(']')?;
        parse_inside(&subject[start + 1..end], prefix).map(|r| (start..end + 1, r))
    })
}

fn parse_inside(inside: &str, prefix: &str) -> Option<i64> {
    let (name, number) = inside.rsplit_once('#')?;
    if !name.trim().eq_ignore_ascii_case(prefix.trim()) {
        return None;
    }
    let number = number.trim();
    if number.is_empty() || number.len() > 18 || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    number.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_our_tag_anywhere() {
        assert_eq!(
            find_tag("Re: [Support #42] Printer on fire", "Support"),
            Some(42)
        );
        assert_eq!(find_tag("AW: Printer [support#7]", "Support"), Some(7));
        assert_eq!(find_tag("[ Support  #9 ] x", "Support"), Some(9));
    }

    #[test]
    fn ignores_other_tags_and_junk() {
        assert_eq!(find_tag("[Sales #42] hi", "Support"), None);
        assert_eq!(find_tag("[Support #4a2] hi", "Support"), None);
        assert_eq!(find_tag("[Support #] hi", "Support"), None);
        assert_eq!(find_tag("[Support #42 hi", "Support"), None);
        assert_eq!(find_tag("[[Support #5]", "Support"), Some(5));
    }

    #[test]
    fn formats_and_strips() {
        assert_eq!(tag("Support", 12), "[Support #12]");
        assert_eq!(
            strip_tags("Re: [Support #12] Printer", "Support"),
            "Re: Printer"
        );
        assert_eq!(strip_tags("Printer", "Support"), "Printer");
    }
}
