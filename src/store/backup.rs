//! Online backups of an SQLite database: a consistent copy taken while the daemon runs
//! (`VACUUM INTO` reads one snapshot; writers go on). PostgreSQL has `pg_dump`.

use std::path::Path;

use super::{Backend, Result, Store, StoreError};

/// What the copy holds, checked after it was written.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackupReport {
    pub tickets: i64,
    pub messages: i64,
    pub bytes: u64,
}

pub async fn sqlite_copy(store: &Store, target: &Path) -> Result<BackupReport> {
    if store.backend() != Backend::Sqlite {
        return Err(StoreError::Conflict(
            "backup copies SQLite databases; for PostgreSQL use pg_dump (see the README)".into(),
        ));
    }
    if target.exists() {
        return Err(StoreError::Conflict(format!(
            "{} exists already: choose a new file",
            target.display()
        )));
    }
    let literal = target.to_string_lossy().replace('\'', "''");
    let mut conn = store.acquire().await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("VACUUM INTO '{literal}'")))
        .execute(&mut *conn)
        .await?;
    drop(conn);
    verify(target).await
}

/// Opens a copy read-only: it must pass SQLite's integrity check.
pub async fn verify(copy: &Path) -> Result<BackupReport> {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let url = format!("sqlite://{}?mode=ro", copy.display());
    let mut conn = sqlx::AnyConnection::connect(&url).await?;
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await?;
    if check != "ok" {
        return Err(StoreError::Conflict(format!(
            "the copy {} fails the integrity check: {check}",
            copy.display()
        )));
    }
    let tickets = super::tickets::count(&mut conn).await?;
    let messages = super::messages::count(&mut conn).await?;
    let _ = conn.close().await;
    let bytes = std::fs::metadata(copy).map(|m| m.len()).unwrap_or(0);
    Ok(BackupReport {
        tickets,
        messages,
        bytes,
    })
}
