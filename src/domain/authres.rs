//! `Authentication-Results` (RFC 8601): did our own mail server see an aligned DMARC or
//! DKIM pass for the From domain? Used as an optional second proof of staff mail.

/// True when the topmost `Authentication-Results` header written by `authserv_id` reports
/// `dmarc=pass` for `from_domain`, or `dkim=pass` with a signing domain aligned with it
/// (the same domain, or a parent of it). Only the topmost header of that server counts:
/// it is the one our MTA added; anything below it came with the message and may be forged.
pub fn aligned_pass(headers: &[String], authserv_id: &str, from_domain: &str) -> bool {
    let from_domain = from_domain.trim().to_ascii_lowercase();
    let Some(results) = headers
        .iter()
        .map(|h| without_comments(h))
        .find(|h| authserv(h).eq_ignore_ascii_case(authserv_id.trim()))
    else {
        return false;
    };
    results.split(';').skip(1).any(|result| {
        let mut words = result.split_whitespace();
        let Some((method, outcome)) = words.next().and_then(|w| w.split_once('=')) else {
            return false;
        };
        if !outcome.eq_ignore_ascii_case("pass") {
            return false;
        }
        let property = |name: &str| {
            result.split_whitespace().find_map(|w| {
                w.split_once('=')
                    .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.trim_matches('"').to_ascii_lowercase())
            })
        };
        match method.to_ascii_lowercase().as_str() {
            "dmarc" => property("header.from").is_some_and(|d| d == from_domain),
            "dkim" => property("header.d").is_some_and(|d| aligned(&d, &from_domain)),
            _ => false,
        }
    })
}

/// The authserv-id: the first word before the first `;` (an optional version follows it).
fn authserv(header: &str) -> &str {
    header
        .split(';')
        .next()
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_default()
}

/// Relaxed alignment: the signing domain is the From domain or a parent of it (never a
/// bare top-level domain).
fn aligned(signing_domain: &str, from_domain: &str) -> bool {
    signing_domain.contains('.')
        && (from_domain == signing_domain || from_domain.ends_with(&format!(".{signing_domain}")))
}

/// RFC 8601 allows comments in parentheses anywhere; they never carry a verdict.
fn without_comments(header: &str) -> String {
    let mut depth = 0usize;
    header
        .chars()
        .filter(|c| match c {
            '(' => {
                depth += 1;
                false
            }
            ')' => {
                depth = depth.saturating_sub(1);
                false
            }
            _ => depth == 0,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn dmarc_or_aligned_dkim_from_our_server_passes() {
        let dmarc = headers(&["mx.example.com; spf=pass smtp.mailfrom=example.com; dmarc=pass (p=reject dis=none) header.from=example.com"]);
        assert!(aligned_pass(&dmarc, "mx.example.com", "example.com"));
        let dkim = headers(&[
            "mx.example.com 1; dkim=pass (2048-bit key) header.d=example.com header.i=@example.com",
        ]);
        assert!(aligned_pass(&dkim, "mx.example.com", "Mail.Example.com"));
    }

    #[test]
    fn anything_else_fails() {
        let check = |h: &str| aligned_pass(&headers(&[h]), "mx.example.com", "example.com");
        assert!(!check("mx.example.com; dmarc=fail header.from=example.com"));
        assert!(!check("mx.example.com; dkim=pass header.d=evil.example"));
        assert!(!check("mx.example.com; dkim=pass header.d=com"));
        assert!(!check("mx.example.com; spf=pass smtp.mailfrom=example.com"));
        assert!(!check("other.example; dmarc=pass header.from=example.com"));
        assert!(!check(
            "mx.example.com; dmarc=pass header.from=other.example"
        ));
        assert!(!check(
            "mx.example.com; dkim=fail (dkim=pass) header.d=example.com"
        ));
    }

    #[test]
    fn only_the_topmost_header_of_our_server_counts() {
        let forged_below = headers(&[
            "mx.example.com; dmarc=fail header.from=example.com",
            "mx.example.com; dmarc=pass header.from=example.com",
        ]);
        assert!(!aligned_pass(
            &forged_below,
            "mx.example.com",
            "example.com"
        ));
    }
}
