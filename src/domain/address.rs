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
                    .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
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

/// Addresses that never read replies: answering them only feeds loops and bounces.
pub fn is_no_reply(address: &str) -> bool {
    let address = normalize(address);
    let local = address.split('@').next().unwrap_or_default();
    let squeezed: String = local
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    squeezed.starts_with("noreply")
        || squeezed.starts_with("donotreply")
        || squeezed.starts_with("bounce")
}

/// Whether we may ever send mail to `address` (DESIGN.md "Loops and automatic mail").
pub fn may_send_to(address: &str, own_addresses: &[String]) -> bool {
    is_valid(address)
        && !is_own(address, own_addresses)
        && !is_system_sender(address)
        && !is_no_reply(address)
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
    fn we_never_write_to_machines_or_ourselves() {
        let own = vec!["support@example.com".to_string()];
        assert!(may_send_to("ann@customer.example", &own));
        for address in [
            "support+7-abc@example.com",
            "no-reply@x.example",
            "noreply@x.example",
            "do_not_reply@x.example",
            "mailer-daemon@x.example",
            "bounces@x.example",
            "not an address",
        ] {
            assert!(!may_send_to(address, &own), "{address}");
        }
    }

    #[test]
    fn system_senders() {
        assert!(is_system_sender("MAILER-DAEMON@mx.example.com"));
        assert!(is_system_sender("postmaster@example.com"));
        assert!(!is_system_sender("post@example.com"));
    }
}
