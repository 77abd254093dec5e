//! Data upgrades that follow a code change, run by [`Store::migrate`] after the schema
//! migrations, each once (a settings key says which version the stored data has).

use std::collections::HashMap;

use tracing::{info, warn};

use super::{messages, quarantine, raw, settings, Result, Store};
use crate::mail::hash;

/// The `hash::CONTENT_HASH_VERSION` that stored content hashes were made with; a
/// database from before the key existed has version 1.
pub const CONTENT_HASH_VERSION_KEY: &str = "content_hash_version";

/// Messages read per round.
const BATCH_ROWS: i64 = 500;
/// Raw bytes held in memory at once (a bigger message is read on its own).
const BATCH_BYTES: i64 = 32 * 1024 * 1024;

/// What [`content_hashes`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ContentHashUpgrade {
    /// The version the stored hashes had.
    pub from_version: u32,
    /// Inbound messages whose content hash was recomputed from their raw bytes.
    pub checked: u64,
    /// Those whose duplicate key changed (content hash, and a synthesised Message-ID).
    pub updated: u64,
    /// Those that keep their old key because an older message already has the new one:
    /// the doubles the old hash let in (the older copy is the one found from now on).
    pub doubles: u64,
    /// Inbound messages whose raw message is missing, left as they are.
    pub missing_raw: u64,
    /// Open quarantine entries given the current content hash.
    pub quarantine_entries: u64,
}

/// Brings stored content hashes up to [`hash::CONTENT_HASH_VERSION`]: the duplicate key
/// of every inbound message, and the content hash of every open quarantine entry, is
/// recomputed from the raw message, so a message fetched again after an upgrade is still
/// found as a duplicate. In batches (never all raw messages in memory); safe to
/// interrupt (a rerun does the rest) and to run from several instances at once.
/// `None` when the hashes were current already.
pub async fn content_hashes(store: &Store) -> Result<Option<ContentHashUpgrade>> {
    let stored = {
        let mut conn = store.acquire().await?;
        settings::get(&mut conn, CONTENT_HASH_VERSION_KEY).await?
    };
    let from_version = match stored.as_deref().map(str::parse::<u32>) {
        None => 1,
        Some(Ok(version)) => version,
        Some(Err(_)) => {
            warn!(value = ?stored, "{CONTENT_HASH_VERSION_KEY} is not a number; recomputing the content hashes");
            1
        }
    };
    if from_version >= hash::CONTENT_HASH_VERSION {
        return Ok(None);
    }
    let mut report = ContentHashUpgrade {
        from_version,
        ..Default::default()
    };
    let mut after = 0;
    loop {
        let rows = {
            let mut conn = store.acquire().await?;
            messages::inbound_keys_after(&mut conn, after, BATCH_ROWS).await?
        };
        let Some(last) = rows.last() else { break };
        after = last.id;
        for group in by_size(&rows) {
            upgrade_messages(store, group, &mut report).await?;
        }
    }
    report.quarantine_entries = upgrade_quarantine(store).await?;
    let mut conn = store.acquire().await?;
    settings::set(
        &mut conn,
        CONTENT_HASH_VERSION_KEY,
        &hash::CONTENT_HASH_VERSION.to_string(),
    )
    .await?;
    info!(
        from_version,
        to_version = hash::CONTENT_HASH_VERSION,
        checked = report.checked,
        updated = report.updated,
        doubles = report.doubles,
        missing_raw = report.missing_raw,
        quarantine_entries = report.quarantine_entries,
        "content hashes recomputed"
    );
    Ok(Some(report))
}

/// Consecutive rows whose raw messages add up to at most [`BATCH_BYTES`].
fn by_size(rows: &[messages::StoredKey]) -> Vec<&[messages::StoredKey]> {
    let mut groups = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, row) in rows.iter().enumerate() {
        let size = row.raw_size.unwrap_or(0);
        if i > start && bytes + size > BATCH_BYTES {
            groups.push(&rows[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < rows.len() {
        groups.push(&rows[start..]);
    }
    groups
}

/// A message's key as stored and as it should be now.
struct Change {
    id: i64,
    old: (String, String),
    new: (String, String),
}

/// The Message-ID that version 1 synthesised for a message without one.
fn v1_synthesized_id(raw_sha256: &str) -> String {
    format!(
        "{}@{}",
        &raw_sha256[..32.min(raw_sha256.len())],
        hash::SYNTHESIZED_ID_DOMAIN
    )
}

async fn upgrade_messages(
    store: &Store,
    rows: &[messages::StoredKey],
    report: &mut ContentHashUpgrade,
) -> Result<()> {
    let raws: HashMap<String, Vec<u8>> = {
        let wanted: Vec<&str> = rows
            .iter()
            .filter(|r| r.raw_size.is_some())
            .map(|r| r.raw_sha256.as_str())
            .collect();
        let mut conn = store.acquire().await?;
        raw::get_raws(&mut conn, &wanted)
            .await?
            .into_iter()
            .collect()
    };
    let mut changes = Vec::new();
    for row in rows {
        let Some(data) = raws.get(&row.raw_sha256) else {
            report.missing_raw += 1;
            continue;
        };
        report.checked += 1;
        let content_sha256 = hash::content_sha256_hex(data);
        let message_id = if row.message_id == v1_synthesized_id(&row.raw_sha256) {
            hash::synthesized_message_id(&content_sha256)
        } else {
            row.message_id.clone()
        };
        if message_id != row.message_id || content_sha256 != row.content_sha256 {
            changes.push(Change {
                id: row.id,
                old: (row.message_id.clone(), row.content_sha256.clone()),
                new: (message_id, content_sha256),
            });
        }
    }
    drop(raws);
    if changes.is_empty() {
        return Ok(());
    }
    // Another instance upgrading at the same time can take a key between our check and
    // our update (PostgreSQL): then the batch is checked again against what it did.
    let mut attempt = 1;
    loop {
        match apply(store, &changes).await {
            Ok((updated, doubles)) => {
                report.updated += updated;
                report.doubles += doubles;
                return Ok(());
            }
            Err(e) if e.is_unique_violation() && attempt < 3 => {
                warn!(error = %e, "content hash upgrade raced another instance; checking the batch again");
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Sets the new keys in one transaction, oldest message first; a key that another
/// message holds already (checked here, before any statement could fail and abort a
/// PostgreSQL transaction) stays with that message. Returns `(updated, doubles)`.
async fn apply(store: &Store, changes: &[Change]) -> Result<(u64, u64)> {
    let mut tx = store.begin().await?;
    let mut ids: Vec<&str> = changes
        .iter()
        .flat_map(|c| [c.old.0.as_str(), c.new.0.as_str()])
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let mut holder: HashMap<(String, String), i64> = messages::keys_with_message_ids(&mut tx, &ids)
        .await?
        .into_iter()
        .map(|(id, message_id, content_sha256)| ((message_id, content_sha256), id))
        .collect();
    let (mut updated, mut doubles) = (0, 0);
    for change in changes {
        match holder.get(&change.new) {
            Some(&id) if id == change.id => continue, // done by another instance
            Some(_) => {
                doubles += 1;
                continue;
            }
            None => {}
        }
        messages::set_key(&mut tx, change.id, &change.new.0, &change.new.1).await?;
        if holder.get(&change.old) == Some(&change.id) {
            holder.remove(&change.old);
        }
        holder.insert(change.new.clone(), change.id);
        updated += 1;
    }
    tx.commit().await?;
    Ok((updated, doubles))
}

/// Open quarantine entries get the current content hash (entries from before the
/// column have none). One raw message at a time: quarantined ones can be huge.
async fn upgrade_quarantine(store: &Store) -> Result<u64> {
    let mut conn = store.acquire().await?;
    let (mut after, mut done) = (0, 0);
    loop {
        let entries = quarantine::open_after(&mut conn, after, BATCH_ROWS).await?;
        let Some(&(last, _)) = entries.last() else {
            return Ok(done);
        };
        after = last;
        for (id, raw_sha256) in entries {
            if let Some(data) = raw::get_raw(&mut conn, &raw_sha256).await? {
                let content_sha256 = hash::content_sha256_hex(&data);
                quarantine::set_content_sha256(&mut conn, id, &content_sha256).await?;
                done += 1;
            }
        }
    }
}
