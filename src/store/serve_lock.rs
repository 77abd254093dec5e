//! One `maildesk serve` per SQLite database. Two daemons on one file would both fetch the
//! same mailboxes and send the same outbox (the leader locks and `SKIP LOCKED` that keep
//! several instances apart exist on PostgreSQL only). An OS lock (flock) on a file beside
//! the database is held for the life of the process: unlike a pid file it dies with the
//! process, also on SIGKILL, so a crashed daemon never blocks the next start. Other
//! commands (ingest, user, backup) do not take it and keep working while `serve` runs.
//!
//! Not a [`super::leader`] lock: it keeps a second *process* off the file for that
//! process's life (not one piece of work among instances), is taken before the store is
//! opened, and has no PostgreSQL side. It shares the leader module's file locking.

use std::fs::File;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ServeLockError {
    #[error("another `maildesk serve` is already running on the SQLite database {database} (it holds the lock {lock}); stop it first, or use PostgreSQL to run several instances")]
    Held { database: PathBuf, lock: PathBuf },
    #[error("cannot lock {lock}: {source}")]
    Io {
        lock: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Held while the process runs; released when dropped or when the process dies.
#[derive(Debug)]
pub struct ServeLock {
    _file: File,
    path: PathBuf,
}

impl ServeLock {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// `maildesk.db` → `maildesk.db.serve.lock`, beside it.
pub fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".serve.lock");
    PathBuf::from(name)
}

/// Takes the lock without waiting: a second daemon is refused at once, not queued.
pub fn acquire(database: &Path) -> Result<ServeLock, ServeLockError> {
    let path = lock_path(database);
    let io = |source| ServeLockError::Io {
        lock: path.clone(),
        source,
    };
    match super::leader::try_lock_file(&path).map_err(io)? {
        Some(file) => Ok(ServeLock { _file: file, path }),
        None => Err(ServeLockError::Held {
            database: database.to_path_buf(),
            lock: path,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("maildesk.db");
        let first = acquire(&db).unwrap();
        assert_eq!(first.path(), dir.path().join("maildesk.db.serve.lock"));
        let second = acquire(&db).unwrap_err();
        assert!(matches!(second, ServeLockError::Held { .. }), "{second}");
        assert!(second.to_string().contains(&db.display().to_string()));
        drop(first);
        acquire(&db).unwrap();
    }
}
