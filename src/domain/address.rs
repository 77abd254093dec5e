//! E-mail address rules: normalisation and the identities that matter to loop safety.

/// The canonical form used for identity (requesters, participants, staff): trimmed and
/// lowercased. Mail systems treat local parts case-insensitively in practice, and a
/// helpdesk that split "Ann@x" from "ann@x" into two customers would be wrong.
pub fn normalize(address: &str) -> String {
    address
        .trim()
        .trim_matches(|c| c == '<' || c == '>')
        .to_lowercase()
}

/// A plausible `local@domain` address: one `@`, non-empty sides, no spaces.
pub fn is_valid(address: &str) -> bool {
    let address = address.trim();
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !address
                    .chars()
                    .any(|c| c.is_whitespace() || c == '<' || c == '>')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        }
        None => false,
    }
}

/// Removes a `+detail` from the local part: `support+123-ab@x` → `support@x`.
pub fn without_plus_detail(address: &str) -> String {
    let address = normalize(address);
    match address.rsplit_once('@') {
        Some((local, domain)) => match local.split_once('+') {
            Some((base, _)) => format!("{base}@{domain}"),
            None => address,
        },
        None => address,
    }
}

/// True when `address` (with or without a plus detail) is one of our own addresses.
pub fn is_own(address: &str, own_addresses: &[String]) -> bool {
    let base = without_plus_detail(address);
    own_addresses.iter().any(|own| normalize(own) == base)
}

/// Addresses that are machines speaking, not people: answering them is how loops start.
pub fn is_system_sender(address: &str) -> bool {
    let address = normalize(address);
    let local = address.split('@').next().unwrap_or_default();
    matches!(
        local,
        "mailer-daemon" | "postmaster" | "mail-daemon" | "mailerdaemon"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_case_and_brackets() {
        assert_eq!(normalize(" <Ann.Lee@Example.COM> "), "ann.lee@example.com");
    }

    #[test]
    fn validates_shape() {
        assert!(is_valid("a@b.c"));
        assert!(!is_valid("a@"));
        assert!(!is_valid("no-at-sign"));
        assert!(!is_valid("a b@c.d"));
    }

    #[test]
    fn own_addresses_include_plus_details() {
        let own = vec!["Support@Example.com".to_string()];
        assert!(is_own("support+42-abc@example.com", &own));
        assert!(is_own("SUPPORT@example.com", &own));
        assert!(!is_own("sales@example.com", &own));
    }

    #[test]
    fn system_senders() {
        assert!(is_system_sender("MAILER-DAEMON@mx.example.com"));
        assert!(is_system_sender("postmaster@example.com"));
        assert!(!is_system_sender("post@example.com"));
    }
}
