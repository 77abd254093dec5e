//! Access tokens of OAuth2 machine clients (client-credentials grant): HS256 JWTs,
//! named by the `kid` of the key that signed them, valid for [`TOKEN_LIFETIME`].
//!
//! The keys live in the database (`oauth_keys`), so every instance signs and verifies
//! alike. The newest key not retired signs; a rotation ([`rotate`]) retires the others,
//! which still verify for one token lifetime, so no live token is cut off. A key is
//! made on first use when there is none. Verifying reads the keys from a short cache,
//! and from the database again on a `kid` it does not know (a key another instance
//! made).
//!
//! A valid signature is not enough: the API also checks, with every request, that the
//! client is not revoked, its user is active (`store::oauth::find_usable`), and the
//! user's credentials have not changed since the token was issued (the token carries
//! their version: a counter, so a token issued in the same second as a password change
//! is still told apart, which the seconds of `iat` could not do).

use std::sync::RwLock;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::store::{oauth as store, Store, StoreError};

/// How long an access token lasts, in seconds (also how long a retired key verifies).
pub const TOKEN_LIFETIME: i64 = 15 * 60;
/// The `iss` of our tokens; a token naming another issuer is refused.
pub const ISSUER: &str = "maildesk";
/// The prefix of every client_id (recognisable in a scan, like `mdk_` tokens).
pub const CLIENT_PREFIX: &str = "mdc_";
/// How long verifying trusts its cached keys before reading them again (so it learns
/// of a retirement made by another instance).
const CACHE_FOR: Duration = Duration::from_secs(60);

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The client_id.
    pub sub: String,
    /// The granted scope: read, write or admin.
    pub scope: String,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    /// Unique per token (for logs and any later deny-list).
    pub jti: String,
    /// The credentials version of the user the client acts as, when the token was
    /// issued: a password change or a disable raises it, and the token stops. Absent
    /// in tokens issued before versions existed (0, as every user started).
    #[serde(default)]
    pub credentials_version: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the access token has expired")]
    Expired,
    #[error("the access token is not valid")]
    Invalid,
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A key that cannot be used (not hex) or a token that cannot be signed: our fault.
    #[error("access token key: {0}")]
    Key(String),
}

/// Does `token` look like a JWT (three base64url parts), not a personal `mdk_` token?
pub fn looks_like_jwt(token: &str) -> bool {
    let mut parts = 0;
    for part in token.split('.') {
        if part.is_empty()
            || !part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return false;
        }
        parts += 1;
    }
    parts == 3
}

/// A fresh key (32 random bytes; the kid is random too, so two instances that each make
/// a first key at once never collide).
fn new_key(now: i64) -> store::Key {
    store::Key {
        kid: crate::domain::secret::random_token()[..16].to_string(),
        secret: crate::domain::secret::random_token(),
        created_at: now,
        retired_at: None,
    }
}

fn secret_bytes(key: &store::Key) -> Result<Vec<u8>, TokenError> {
    hex::decode(&key.secret)
        .map_err(|_| TokenError::Key(format!("the secret of {} is not hex", key.kid)))
}

/// Who a token is for: the client, its granted scope, and the credentials version of
/// the user it acts as.
#[derive(Debug, Clone, Copy)]
pub struct Grant<'a> {
    pub client_id: &'a str,
    pub scope: &'a str,
    pub credentials_version: i64,
}

/// Signs a token for `grant` with `key`, issued at `now`, lasting `lifetime`.
pub fn sign(
    key: &store::Key,
    grant: &Grant<'_>,
    now: i64,
    lifetime: i64,
) -> Result<String, TokenError> {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(key.kid.clone());
    let claims = Claims {
        sub: grant.client_id.to_string(),
        scope: grant.scope.to_string(),
        iat: now,
        exp: now + lifetime,
        iss: ISSUER.to_string(),
        jti: crate::domain::secret::random_token()[..24].to_string(),
        credentials_version: grant.credentials_version,
    };
    let encoding = EncodingKey::from_secret(&secret_bytes(key)?)
        .map_err(|e| TokenError::Key(format!("{}: {e}", key.kid)))?;
    jsonwebtoken::encode(&header, &claims, &encoding)
        .map_err(|e| TokenError::Key(format!("signing with {}: {e}", key.kid)))
}

/// Checks the signature with `key` and the claims at `now` (the caller found `key` by
/// the token's kid and checked it still verifies).
pub fn check(token: &str, key: &store::Key, now: i64) -> Result<Claims, TokenError> {
    let mut validation = Validation::new(Algorithm::HS256);
    // Expiry is checked below against `now` (the library would read the clock itself).
    validation.validate_exp = false;
    validation.set_required_spec_claims(&["exp", "iss", "sub"]);
    validation.set_issuer(&[ISSUER]);
    let decoding = DecodingKey::from_secret(&secret_bytes(key)?)
        .map_err(|e| TokenError::Key(format!("{}: {e}", key.kid)))?;
    let claims = jsonwebtoken::decode::<Claims>(token, &decoding, &validation)
        .map_err(|_| TokenError::Invalid)?
        .claims;
    if claims.exp <= now {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

/// Whether `key` still verifies at `now`.
fn verifies(key: &store::Key, now: i64) -> bool {
    key.retired_at.is_none_or(|r| r + TOKEN_LIFETIME > now)
}

#[derive(Default)]
struct Cached {
    keys: Vec<store::Key>,
    loaded: Option<Instant>,
}

/// The keys as this process last read them (one per server: in `AppState`).
#[derive(Default)]
pub struct KeyRing {
    cache: RwLock<Cached>,
}

impl KeyRing {
    fn remember(&self, keys: Vec<store::Key>) {
        if let Ok(mut cache) = self.cache.write() {
            *cache = Cached {
                keys,
                loaded: Some(Instant::now()),
            };
        }
    }

    fn cached(&self, kid: &str) -> Option<store::Key> {
        let cache = self.cache.read().ok()?;
        if cache.loaded.is_none_or(|t| t.elapsed() > CACHE_FOR) {
            return None;
        }
        cache.keys.iter().find(|k| k.kid == kid).cloned()
    }

    async fn load(&self, db: &Store, now: i64) -> Result<Vec<store::Key>, StoreError> {
        let mut conn = db.acquire().await?;
        let keys = store::keys(&mut conn, now, TOKEN_LIFETIME).await?;
        self.remember(keys.clone());
        Ok(keys)
    }

    /// Signs a token with the newest key (read from the database, so a key rotated by
    /// another instance signs at once), making the first key if there is none.
    pub async fn issue(
        &self,
        db: &Store,
        grant: &Grant<'_>,
        now: i64,
    ) -> Result<String, TokenError> {
        let keys = self.load(db, now).await?;
        let key = match keys.into_iter().find(|k| k.retired_at.is_none()) {
            Some(key) => key,
            None => {
                let key = new_key(now);
                let mut conn = db.acquire().await?;
                store::insert_key(&mut conn, &key).await?;
                tracing::info!(kid = %key.kid, "made the first key for OAuth access tokens");
                key
            }
        };
        sign(&key, grant, now, TOKEN_LIFETIME)
    }

    /// The claims of a valid token: known kid, a key that still verifies, a good
    /// signature, our issuer, not expired.
    pub async fn verify(&self, db: &Store, token: &str, now: i64) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        let kid = header.kid.ok_or(TokenError::Invalid)?;
        let key = match self.cached(&kid) {
            Some(key) => key,
            None => self
                .load(db, now)
                .await?
                .into_iter()
                .find(|k| k.kid == kid)
                .ok_or(TokenError::Invalid)?,
        };
        if !verifies(&key, now) {
            return Err(TokenError::Invalid);
        }
        check(token, &key, now)
    }
}

/// Makes a new signing key and retires the others (they verify for one more token
/// lifetime): `maildesk oauth rotate-key`. Returns the new kid.
pub async fn rotate(db: &Store, now: i64) -> Result<String, StoreError> {
    let key = new_key(now);
    let mut tx = db.begin().await?;
    store::rotate(&mut tx, &key, TOKEN_LIFETIME).await?;
    tx.commit().await?;
    tracing::info!(kid = %key.kid, "rotated the OAuth signing key");
    Ok(key.kid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kid: &str) -> store::Key {
        store::Key {
            kid: kid.into(),
            ..new_key(1_000)
        }
    }

    fn grant(scope: &str) -> Grant<'_> {
        Grant {
            client_id: "mdc_x",
            scope,
            credentials_version: 3,
        }
    }

    #[test]
    fn a_signed_token_checks_until_it_expires() {
        let k = key("k1");
        let token = sign(&k, &grant("write"), 1_000, TOKEN_LIFETIME).unwrap();
        assert!(looks_like_jwt(&token), "{token}");
        let claims = check(&token, &k, 1_000 + TOKEN_LIFETIME - 1).unwrap();
        assert_eq!(
            (
                claims.sub.as_str(),
                claims.scope.as_str(),
                claims.iss.as_str()
            ),
            ("mdc_x", "write", ISSUER)
        );
        assert_eq!(claims.exp - claims.iat, TOKEN_LIFETIME);
        assert_eq!(claims.credentials_version, 3);
        assert!(matches!(
            check(&token, &k, 1_000 + TOKEN_LIFETIME),
            Err(TokenError::Expired)
        ));
    }

    #[test]
    fn another_key_or_a_changed_token_is_refused() {
        let k = key("k1");
        let token = sign(&k, &grant("read"), 1_000, TOKEN_LIFETIME).unwrap();
        assert!(matches!(
            check(&token, &key("k1"), 1_001),
            Err(TokenError::Invalid)
        ));
        // Claims changed to admin, signature kept.
        let mut parts: Vec<String> = token.split('.').map(String::from).collect();
        let forged = Claims {
            scope: "admin".into(),
            ..check(&token, &k, 1_001).unwrap()
        };
        use base64::Engine;
        parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&forged).unwrap());
        assert!(matches!(
            check(&parts.join("."), &k, 1_001),
            Err(TokenError::Invalid)
        ));
    }

    #[test]
    fn a_token_without_a_credentials_version_counts_as_version_0() {
        let k = key("k1");
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(k.kid.clone());
        // The claims as tokens issued before versions existed carry them.
        let claims = serde_json::json!({
            "sub": "mdc_x", "scope": "read", "iat": 1_000, "exp": 1_000 + TOKEN_LIFETIME,
            "iss": ISSUER, "jti": "j",
        });
        let encoding = EncodingKey::from_secret(&secret_bytes(&k).unwrap()).unwrap();
        let token = jsonwebtoken::encode(&header, &claims, &encoding).unwrap();
        assert_eq!(check(&token, &k, 1_001).unwrap().credentials_version, 0);
    }

    #[test]
    fn retired_keys_verify_for_one_token_lifetime() {
        let mut k = key("k1");
        assert!(verifies(&k, i64::MAX));
        k.retired_at = Some(5_000);
        assert!(verifies(&k, 5_000 + TOKEN_LIFETIME - 1));
        assert!(!verifies(&k, 5_000 + TOKEN_LIFETIME));
    }

    #[test]
    fn only_three_part_tokens_look_like_jwts() {
        assert!(looks_like_jwt("a.b.c"));
        assert!(!looks_like_jwt("mdk_0123"));
        assert!(!looks_like_jwt("a.b"));
        assert!(!looks_like_jwt("a..c"));
        assert!(!looks_like_jwt("a.b.c.d"));
        assert!(!looks_like_jwt("a.b+.c"));
    }
}
