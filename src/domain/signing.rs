//! Signed references in our outgoing mail (threading rules 2 and 4): a reply that carries
//! one of our Message-IDs or reply addresses can be trusted to belong to that ticket,
//! because only we can make the signature.
//!
//! - Message-ID: `md.<ticket>.<message>.<sig>@<domain>`
//! - reply address: `<local>+<ticket>-<sig>@<domain>`
//!
//! Mail to one staff member (notifications) carries references bound to that user as
//! well: `md.<ticket>.<message>.u<user>.<sig>@…` and `<local>+<ticket>-u<user>-<sig>@…`.
//! Customers never receive these, so a reply that quotes one, From that user's address,
//! is that staff member's (DESIGN.md, "Staff by email"); a customer who forges a staff
//! From can only quote the customer references.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Hex characters of the HMAC kept: 64 bits, plenty against guessing by mail.
const SIGNATURE_LEN: usize = 16;

/// What a verified reference names: the ticket, and the staff user it was sent to (for
/// references from staff notifications).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedRef {
    pub ticket: i64,
    pub staff_user: Option<i64>,
}

fn signature(secret: &str, purpose: &str, ticket: i64, message: i64) -> String {
    sign(secret, &format!("{purpose}:{ticket}:{message}"))
}

fn staff_signature(secret: &str, purpose: &str, ticket: i64, message: i64, user: i64) -> String {
    sign(
        secret,
        &format!("staff-{purpose}:{ticket}:{message}:{user}"),
    )
}

fn sign(secret: &str, data: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(data.as_bytes());
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

/// Our Message-ID for outgoing message `message` of `ticket` sent to staff user `user`.
pub fn staff_message_id(
    secret: &str,
    domain: &str,
    ticket: i64,
    message: i64,
    user: i64,
) -> String {
    format!(
        "md.{ticket}.{message}.u{user}.{}@{domain}",
        staff_signature(secret, "mid", ticket, message, user)
    )
}

/// The ticket (and staff user) of one of our Message-IDs, if its signature is right.
pub fn verify_message_id(secret: &str, id: &str) -> Option<SignedRef> {
    let (local, _domain) = id.trim_matches(|c| c == '<' || c == '>').rsplit_once('@')?;
    let parts: Vec<&str> = local.strip_prefix("md.")?.split('.').collect();
    let (ticket, message) = (parts.first()?.parse().ok()?, parts.get(1)?.parse().ok()?);
    match parts[2..] {
        [sig] => same(sig, &signature(secret, "mid", ticket, message)).then_some(SignedRef {
            ticket,
            staff_user: None,
        }),
        [user, sig] => {
            let user: i64 = user.strip_prefix('u')?.parse().ok()?;
            same(sig, &staff_signature(secret, "mid", ticket, message, user)).then_some(SignedRef {
                ticket,
                staff_user: Some(user),
            })
        }
        _ => None,
    }
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

/// `support+42-u7-<sig>@example.com`: the reply address of a notification to staff user 7.
pub fn staff_reply_address(secret: &str, support_address: &str, ticket: i64, user: i64) -> String {
    match support_address.rsplit_once('@') {
        Some((local, domain)) => format!(
            "{local}+{ticket}-u{user}-{}@{domain}",
            staff_signature(secret, "addr", ticket, 0, user)
        ),
        None => support_address.to_string(),
    }
}

/// The ticket (and staff user) in a signed reply address, if the signature is right.
pub fn verify_reply_address(secret: &str, address: &str) -> Option<SignedRef> {
    let (local, _domain) = address.trim().rsplit_once('@')?;
    let (_, detail) = local.split_once('+')?;
    let detail = detail.to_ascii_lowercase();
    let mut parts = detail.split('-');
    let ticket: i64 = parts.next()?.parse().ok()?;
    match (parts.next()?, parts.next(), parts.next()) {
        (sig, None, None) => {
            same(sig, &signature(secret, "addr", ticket, 0)).then_some(SignedRef {
                ticket,
                staff_user: None,
            })
        }
        (user, Some(sig), None) => {
            let user: i64 = user.strip_prefix('u')?.parse().ok()?;
            same(sig, &staff_signature(secret, "addr", ticket, 0, user)).then_some(SignedRef {
                ticket,
                staff_user: Some(user),
            })
        }
        _ => None,
    }
}

/// Hex characters of the HMAC on a customer link: 128 bits (a link can be tried online).
const LINK_SIGNATURE_LEN: usize = 32;

/// What a customer link names: the ticket, the participant's address and when it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerLink {
    pub ticket: i64,
    pub email: String,
    pub expires: i64,
}

fn link_signature(secret: &str, link: &CustomerLink, epoch: i64) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(
        format!(
            "customer-link:{}:{}:{}:{}",
            link.ticket, epoch, link.expires, link.email
        )
        .as_bytes(),
    );
    hex::encode(mac.finalize().into_bytes())[..LINK_SIGNATURE_LEN].to_string()
}

/// `42.1767225600.<hex address>.<sig>`: the token of a customer's link to their ticket
/// page. `epoch` is the ticket's revocation counter: bumping it voids every older link.
pub fn customer_link(secret: &str, link: &CustomerLink, epoch: i64) -> String {
    format!(
        "{}.{}.{}.{}",
        link.ticket,
        link.expires,
        hex::encode(link.email.as_bytes()),
        link_signature(secret, link, epoch)
    )
}

/// Reads a token without trusting it: the ticket's epoch is needed to check it.
pub fn read_customer_link(token: &str) -> Option<(CustomerLink, &str)> {
    let mut parts = token.split('.');
    let ticket = parts.next()?.parse().ok()?;
    let expires = parts.next()?.parse().ok()?;
    let email = String::from_utf8(hex::decode(parts.next()?).ok()?).ok()?;
    let sig = parts.next()?;
    if parts.next().is_some() || sig.len() != LINK_SIGNATURE_LEN {
        return None;
    }
    Some((
        CustomerLink {
            ticket,
            email,
            expires,
        },
        sig,
    ))
}

/// Whether `sig` is ours for this link at this epoch (expiry is the caller's check).
pub fn verify_customer_link(secret: &str, link: &CustomerLink, epoch: i64, sig: &str) -> bool {
    same(sig, &link_signature(secret, link, epoch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customer_links_round_trip_and_resist_tampering() {
        let link = CustomerLink {
            ticket: 42,
            email: "ann@example.com".into(),
            expires: 1_800_000_000,
        };
        let token = customer_link(SECRET, &link, 0);
        let (read, sig) = read_customer_link(&token).unwrap();
        assert_eq!(read, link);
        assert!(verify_customer_link(SECRET, &read, 0, sig));
        assert!(!verify_customer_link(SECRET, &read, 1, sig), "revoked");
        assert!(!verify_customer_link(
            "another-secret-000000",
            &read,
            0,
            sig
        ));
        let other = CustomerLink {
            email: "eve@example.com".into(),
            ..link.clone()
        };
        assert!(!verify_customer_link(SECRET, &other, 0, sig));
        let later = CustomerLink {
            expires: link.expires + 1,
            ..link.clone()
        };
        assert!(!verify_customer_link(SECRET, &later, 0, sig));
        assert_eq!(read_customer_link("42.1.zz.abc"), None);
        assert_eq!(read_customer_link(&format!("{token}.x")), None);
    }

    const SECRET: &str = "0123456789abcdef-secret";

    #[test]
    fn message_ids_round_trip_and_resist_forgery() {
        let id = message_id(SECRET, "example.com", 42, 7);
        assert!(id.starts_with("md.42.7.") && id.ends_with("@example.com"));
        let customer = Some(SignedRef {
            ticket: 42,
            staff_user: None,
        });
        assert_eq!(verify_message_id(SECRET, &id), customer);
        assert_eq!(verify_message_id(SECRET, &format!("<{id}>")), customer);
        let forged = id.replacen("md.42.", "md.43.", 1);
        assert_eq!(verify_message_id(SECRET, &forged), None);
        assert_eq!(verify_message_id("another-secret-000000", &id), None);
        assert_eq!(verify_message_id(SECRET, "abc@example.com"), None);
    }

    #[test]
    fn reply_addresses_round_trip_and_resist_forgery() {
        let address = reply_address(SECRET, "support@example.com", 42);
        assert!(address.starts_with("support+42-") && address.ends_with("@example.com"));
        let customer = Some(SignedRef {
            ticket: 42,
            staff_user: None,
        });
        assert_eq!(verify_reply_address(SECRET, &address), customer);
        assert_eq!(
            verify_reply_address(SECRET, &address.to_uppercase()),
            customer
        );
        assert_eq!(
            verify_reply_address(SECRET, &address.replace("+42-", "+41-")),
            None
        );
        assert_eq!(verify_reply_address(SECRET, "support+42@example.com"), None);
    }

    #[test]
    fn staff_references_name_the_user_and_cannot_be_made_from_customer_ones() {
        let staff = Some(SignedRef {
            ticket: 42,
            staff_user: Some(7),
        });
        let id = staff_message_id(SECRET, "example.com", 42, 9, 7);
        assert_eq!(verify_message_id(SECRET, &id), staff);
        assert_eq!(
            verify_message_id(SECRET, &id.replacen(".u7.", ".u8.", 1)),
            None
        );
        let customer_id = message_id(SECRET, "example.com", 42, 9);
        let (head, sig) = customer_id
            .split_once('@')
            .unwrap()
            .0
            .rsplit_once('.')
            .unwrap();
        let grafted = format!("{head}.u7.{sig}@example.com");
        assert_eq!(
            verify_message_id(SECRET, &grafted),
            None,
            "a customer signature is not a staff one"
        );

        let address = staff_reply_address(SECRET, "support@example.com", 42, 7);
        assert!(address.starts_with("support+42-u7-"), "{address}");
        assert_eq!(verify_reply_address(SECRET, &address), staff);
        assert_eq!(
            verify_reply_address(SECRET, &address.replace("-u7-", "-u8-")),
            None
        );
        let customer = reply_address(SECRET, "support@example.com", 42);
        let sig = customer
            .split_once('@')
            .unwrap()
            .0
            .rsplit_once('-')
            .unwrap()
            .1;
        assert_eq!(
            verify_reply_address(SECRET, &format!("support+42-u7-{sig}@example.com")),
            None
        );
    }
}
