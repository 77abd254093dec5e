//! Signed references in our outgoing mail (threading rules 2 and 4): a reply that carries
//! one of our Message-IDs or reply addresses can be trusted to belong to that ticket,
//! because only we can make the signature.
//!
//! - Message-ID: `md.<ticket>.<message>.<sig>@<domain>`
//! - reply address: `<local>+<ticket>-<sig>@<domain>`

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Hex characters of the HMAC kept: 64 bits, plenty against guessing by mail.
const SIGNATURE_LEN: usize = 16;

fn signature(secret: &str, purpose: &str, ticket: i64, message: i64) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("{purpose}:{ticket}:{message}").as_bytes());
    hex::encode(mac.finalize().into_bytes())[..SIGNATURE_LEN].to_string()
}

/// Compares without an early exit, so timing does not reveal how much of a guess was right.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Our Message-ID (without angle brackets) for outgoing message `message` of `ticket`.
pub fn message_id(secret: &str, domain: &str, ticket: i64, message: i64) -> String {
    format!(
        "md.{ticket}.{message}.{}@{domain}",
        signature(secret, "mid", ticket, message)
    )
}

/// The ticket and message of one of our Message-IDs, if its signature is right.
pub fn verify_message_id(secret: &str, id: &str) -> Option<(i64, i64)> {
    let (local, _domain) = id.trim_matches(|c| c == '<' || c == '>').rsplit_once('@')?;
    let rest = local.strip_prefix("md.")?;
    let mut parts = rest.split('.');
    let (ticket, message, sig) = (
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
        parts.next()?,
    );
    if parts.next().is_some() {
        return None;
    }
    same(sig, &signature(secret, "mid", ticket, message)).then_some((ticket, message))
}

/// `support+42-<sig>@example.com`: a reply address that carries the ticket.
pub fn reply_address(secret: &str, support_address: &str, ticket: i64) -> String {
    match support_address.rsplit_once('@') {
        Some((local, domain)) => format!(
            "{local}+{ticket}-{}@{domain}",
            signature(secret, "addr", ticket, 0)
        ),
        None => support_address.to_string(),
    }
}

/// The ticket in a signed reply address, if the signature is right.
pub fn verify_reply_address(secret: &str, address: &str) -> Option<i64> {
    let (local, _domain) = address.trim().rsplit_once('@')?;
    let (_, detail) = local.split_once('+')?;
    let (ticket, sig) = detail.split_once('-')?;
    let ticket: i64 = ticket.parse().ok()?;
    same(
        &sig.to_ascii_lowercase(),
        &signature(secret, "addr", ticket, 0),
    )
    .then_some(ticket)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef-secret";

    #[test]
    fn message_ids_round_trip_and_resist_forgery() {
        let id = message_id(SECRET, "example.com", 42, 7);
        assert!(id.starts_with("md.42.7.") && id.ends_with("@example.com"));
        assert_eq!(verify_message_id(SECRET, &id), Some((42, 7)));
        assert_eq!(verify_message_id(SECRET, &format!("<{id}>")), Some((42, 7)));
        let forged = id.replacen("md.42.", "md.43.", 1);
        assert_eq!(verify_message_id(SECRET, &forged), None);
        assert_eq!(verify_message_id("another-secret-000000", &id), None);
        assert_eq!(verify_message_id(SECRET, "abc@example.com"), None);
    }

    #[test]
    fn reply_addresses_round_trip_and_resist_forgery() {
        let address = reply_address(SECRET, "support@example.com", 42);
        assert!(address.starts_with("support+42-") && address.ends_with("@example.com"));
        assert_eq!(verify_reply_address(SECRET, &address), Some(42));
        assert_eq!(
            verify_reply_address(SECRET, &address.to_uppercase()),
            Some(42)
        );
        assert_eq!(
            verify_reply_address(SECRET, &address.replace("+42-", "+41-")),
            None
        );
        assert_eq!(verify_reply_address(SECRET, "support+42@example.com"), None);
    }
}
