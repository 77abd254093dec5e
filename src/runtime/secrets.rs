//! The server's signing secret: from config when set, otherwise generated once and kept
//! in the database so every instance sharing it signs alike. Never logged.

use rand::RngCore;

use crate::config::Config;
use crate::domain::secret::Secret;
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
