//! The server's signing secret: from config when set, otherwise generated once and kept
//! in the database so every instance sharing it signs alike. Never logged.

use rand::RngCore;

use crate::config::{Config, Secret};
use crate::store::{settings, Store, StoreError};

const SETTING: &str = "signing_secret";

pub async fn signing_secret(config: &Config, store: &Store) -> Result<Secret, StoreError> {
    if let Some(secret) = &config.helpdesk.signing_secret {
        return Ok(secret.clone());
    }
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let mut conn = store.acquire().await?;
    let stored = settings::get_or_insert(&mut conn, SETTING, &hex::encode(bytes)).await?;
    Ok(Secret(stored))
}

/// A fresh unguessable token (256 bits, hex): session cookies, CSRF tokens, note ids.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}
