//! Leader locks: one instance at a time does a piece of work (polls a mailbox, purges,
//! migrates a SQLite file). On PostgreSQL an advisory lock held on a dedicated
//! connection, so a crashed leader frees it with its session; on SQLite an OS lock
//! (flock) on a file beside the database, which dies with the process. Whether a piece
//! of work needs a lock at all on an engine is the key's to say ([`LeaderKey`]).
//!
//! The serve lock (`store::serve_lock`) is a different thing and stays apart: it keeps
//! a second *process* off a SQLite database for the life of that process, is taken
//! before the store is opened, exists on SQLite only, and answers with its own message.
//! It shares the file locking below.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use sqlx::Connection;

use super::{Conn, Result, Store, StoreError};
use crate::config::Backend;

/// What an instance wants to lead.
#[derive(Debug, Clone, Copy)]
pub enum LeaderKey<'a> {
    /// Polling one configured mailbox (also a cron `fetch --once` beside `serve` on SQLite).
    Mailbox(&'a str),
    /// The hourly retention purge (PostgreSQL only: one SQLite daemon purges alone).
    Retention,
    /// Applying migrations to a SQLite file (sqlx locks them itself on PostgreSQL).
    Migration,
}

impl LeaderKey<'_> {
    /// The advisory-lock number on PostgreSQL, stable across instances and versions.
    fn advisory_key(self) -> Option<i64> {
        match self {
            LeaderKey::Mailbox(name) => {
                let digest =
                    crate::mail::hash::sha256_hex(format!("maildesk:imap:{name}").as_bytes());
                Some(i64::from_str_radix(&digest[..15], 16).unwrap_or_default())
            }
            LeaderKey::Retention => Some(0x006d_6472_6574_656e), // "mdreten"
            LeaderKey::Migration => None,
        }
    }

    /// The lock file beside the SQLite database `db`, if this work needs one there.
    fn lock_file(self, db: &Path) -> Option<PathBuf> {
        match self {
            LeaderKey::Mailbox(name) => {
                let name: String = name
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                    .collect();
                Some(db.with_extension(format!("imap-{name}.lock")))
            }
            LeaderKey::Retention => None,
            LeaderKey::Migration => Some(db.with_extension("migrate.lock")),
        }
    }
}

/// Leading; the lock is freed by [`Leader::release`], on drop, or when the process dies.
#[derive(Debug)]
#[must_use = "the lock is released when the leader is dropped"]
pub struct Leader {
    hold: Hold,
}

#[derive(Debug)]
enum Hold {
    Advisory {
        conn: Conn,
        key: i64,
    },
    File(File),
    /// Nothing to hold: the engine or the database needs no lock for this work.
    Alone,
}

impl Leader {
    /// Becomes the leader without waiting; `None` while another instance leads.
    pub async fn try_acquire(store: &Store, key: LeaderKey<'_>) -> Result<Option<Leader>> {
        let hold = match held_where(store, key) {
            Where::Advisory(number) => {
                let mut conn = store.acquire().await?.detach();
                let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                    .bind(number)
                    .fetch_one(&mut conn)
                    .await?;
                if !taken {
                    let _ = conn.close().await;
                    return Ok(None);
                }
                Hold::Advisory { conn, key: number }
            }
            Where::File(path) => match try_lock_file(&path).map_err(unavailable)? {
                Some(file) => Hold::File(file),
                None => return Ok(None),
            },
            Where::Nowhere => Hold::Alone,
        };
        Ok(Some(Leader { hold }))
    }

    /// Waits until this instance leads (SQLite migrations: the second process waits for
    /// the first to finish rather than skip them).
    pub async fn acquire(store: &Store, key: LeaderKey<'_>) -> Result<Leader> {
        let hold = match held_where(store, key) {
            Where::Advisory(number) => {
                let mut conn = store.acquire().await?.detach();
                sqlx::query("SELECT pg_advisory_lock($1)")
                    .bind(number)
                    .execute(&mut conn)
                    .await?;
                Hold::Advisory { conn, key: number }
            }
            Where::File(path) => Hold::File(
                tokio::task::spawn_blocking(move || lock_file_waiting(&path))
                    .await
                    .map_err(|e| unavailable(std::io::Error::other(e)))?
                    .map_err(unavailable)?,
            ),
            Where::Nowhere => Hold::Alone,
        };
        Ok(Leader { hold })
    }

    /// Frees the lock now (dropping also frees it; on PostgreSQL only once the server
    /// sees the connection go).
    pub async fn release(self) {
        match self.hold {
            Hold::Advisory { mut conn, key } => {
                let _: std::result::Result<bool, _> =
                    sqlx::query_scalar("SELECT pg_advisory_unlock($1)")
                        .bind(key)
                        .fetch_one(&mut conn)
                        .await;
                let _ = conn.close().await;
            }
            Hold::File(file) => {
                let _ = file.unlock();
            }
            Hold::Alone => {}
        }
    }
}

enum Where {
    Advisory(i64),
    File(PathBuf),
    Nowhere,
}

fn held_where(store: &Store, key: LeaderKey<'_>) -> Where {
    let found = match store.backend() {
        Backend::Postgres => key.advisory_key().map(Where::Advisory),
        // An in-memory database belongs to one process: nobody to keep out.
        Backend::Sqlite => store
            .sqlite_file()
            .and_then(|db| key.lock_file(db))
            .map(Where::File),
    };
    found.unwrap_or(Where::Nowhere)
}

fn unavailable(e: std::io::Error) -> StoreError {
    StoreError::Unavailable(sqlx::Error::Io(e))
}

fn open_lock_file(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
}

/// Takes an OS lock on `path` (created if missing) without waiting; `None` if held.
pub(crate) fn try_lock_file(path: &Path) -> std::io::Result<Option<File>> {
    let file = open_lock_file(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(e),
    }
}

fn lock_file_waiting(path: &Path) -> std::io::Result<File> {
    let file = open_lock_file(path)?;
    file.lock()?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advisory_keys_stay_what_running_instances_use() {
        // Instances of the previous version hold these numbers during an upgrade.
        assert_eq!(
            LeaderKey::Retention.advisory_key(),
            Some(0x006d_6472_6574_656e)
        );
        let digest = crate::mail::hash::sha256_hex(b"maildesk:imap:support");
        assert_eq!(
            LeaderKey::Mailbox("support").advisory_key(),
            Some(i64::from_str_radix(&digest[..15], 16).unwrap())
        );
        assert_eq!(LeaderKey::Migration.advisory_key(), None);
    }

    #[test]
    fn lock_files_sit_beside_the_database() {
        let db = Path::new("/var/lib/maildesk/maildesk.db");
        assert_eq!(
            LeaderKey::Mailbox("sales eu").lock_file(db),
            Some(PathBuf::from(
                "/var/lib/maildesk/maildesk.imap-sales_eu.lock"
            ))
        );
        assert_eq!(
            LeaderKey::Migration.lock_file(db),
            Some(PathBuf::from("/var/lib/maildesk/maildesk.migrate.lock"))
        );
        assert_eq!(LeaderKey::Retention.lock_file(db), None);
    }

    #[test]
    fn a_held_file_lock_is_refused_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let first = try_lock_file(&path).unwrap().unwrap();
        assert!(try_lock_file(&path).unwrap().is_none());
        drop(first);
        assert!(try_lock_file(&path).unwrap().is_some());
    }
}
