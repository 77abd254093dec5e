//! OAuth2 machine clients (client-credentials grant) and the keys that sign their access
//! tokens. A client's secret is found by its SHA-256 (shown once, never stored); see
//! `crate::integrations::oauth` for the tokens themselves.

use super::users::User;
use super::{Conn, Result, StoreError, Tx};

/// A client as an admin sees it (never the secret or its hash).
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize, utoipa::ToSchema)]
#[schema(as = OAuthClient)]
pub struct Client {
    pub id: i64,
    pub client_id: String,
    pub name: String,
    pub scope: String,
    /// The staff user it acts as.
    pub acts_as: i64,
    pub acts_as_email: String,
    pub created_by: Option<i64>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// What the token endpoint checks a client's credentials against.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct GrantClient {
    pub id: i64,
    pub client_id: String,
    pub secret_hash: String,
    pub scope: String,
    /// Its user's credentials version, written into the token issued now.
    pub credentials_version: i64,
}

/// A usable client and the active user it acts as (for a request with its token).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClientUser {
    pub client_pk: i64,
    /// The client's own scope (a token's is within it).
    pub client_scope: String,
    pub last_used_at: Option<i64>,
    /// Its user's credentials version now: a token carrying another one was issued
    /// before a password change or a disable.
    pub credentials_version: i64,
    #[sqlx(flatten)]
    pub user: User,
}

pub struct NewClient<'a> {
    pub client_id: &'a str,
    pub name: &'a str,
    pub secret_hash: &'a str,
    pub scope: &'a str,
    pub acts_as: i64,
    pub created_by: i64,
}

pub async fn create(conn: &mut Conn, c: &NewClient<'_>, now: i64) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO oauth_clients (client_id, name, secret_hash, scope, acts_as, created_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(c.client_id)
    .bind(c.name)
    .bind(c.secret_hash)
    .bind(c.scope)
    .bind(c.acts_as)
    .bind(c.created_by)
    .bind(now)
    .fetch_one(conn)
    .await?)
}

const CLIENT_COLUMNS: &str =
    "c.id, c.client_id, c.name, c.scope, c.acts_as, u.email AS acts_as_email,
    c.created_by, c.created_at, c.last_used_at, c.revoked_at";

/// Every client, newest first (revoked ones too, so the list tells what happened).
pub async fn list(conn: &mut Conn) -> Result<Vec<Client>> {
    let sql = format!(
        "SELECT {CLIENT_COLUMNS} FROM oauth_clients c JOIN users u ON u.id = c.acts_as
         ORDER BY c.id DESC"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(conn)
        .await?)
}

pub async fn get(conn: &mut Conn, id: i64) -> Result<Client> {
    let sql = format!(
        "SELECT {CLIENT_COLUMNS} FROM oauth_clients c JOIN users u ON u.id = c.acts_as
         WHERE c.id = $1"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("client {id}")))
}

/// The client for a token request, if it is not revoked and its user is active.
pub async fn find_for_grant(conn: &mut Conn, client_id: &str) -> Result<Option<GrantClient>> {
    Ok(sqlx::query_as(
        "SELECT c.id, c.client_id, c.secret_hash, c.scope, u.credentials_version
         FROM oauth_clients c JOIN users u ON u.id = c.acts_as
         WHERE c.client_id = $1 AND c.revoked_at IS NULL AND u.active = 1",
    )
    .bind(client_id)
    .fetch_optional(conn)
    .await?)
}

/// The client of an access token, if it is not revoked and its user is active: checked
/// with every request, so revoking a client or disabling its user stops its live tokens
/// at once (one lookup by the unique client_id). The caller compares the user's
/// credentials version with the token's.
pub async fn find_usable(conn: &mut Conn, client_id: &str) -> Result<Option<ClientUser>> {
    Ok(sqlx::query_as(
        "SELECT c.id AS client_pk, c.scope AS client_scope, c.last_used_at, u.credentials_version,
                u.id, u.email, u.name, u.role, u.password_hash, u.active, u.created_at
         FROM oauth_clients c JOIN users u ON u.id = c.acts_as
         WHERE c.client_id = $1 AND c.revoked_at IS NULL AND u.active = 1",
    )
    .bind(client_id)
    .fetch_optional(conn)
    .await?)
}

pub async fn touch(conn: &mut Conn, id: i64, now: i64) -> Result<()> {
    sqlx::query("UPDATE oauth_clients SET last_used_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn revoke(conn: &mut Conn, id: i64, now: i64) -> Result<()> {
    let done = sqlx::query(
        "UPDATE oauth_clients SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("active client {id}")));
    }
    Ok(())
}

/// A signing key of the access tokens.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Key {
    pub kid: String,
    /// Hex.
    pub secret: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

/// The keys that still verify at `now` (not retired, or retired less than `grace`
/// seconds ago), newest first.
pub async fn keys(conn: &mut Conn, now: i64, grace: i64) -> Result<Vec<Key>> {
    Ok(sqlx::query_as(
        "SELECT kid, secret, created_at, retired_at FROM oauth_keys
         WHERE retired_at IS NULL OR retired_at > $1
         ORDER BY created_at DESC, kid DESC",
    )
    .bind(now - grace)
    .fetch_all(conn)
    .await?)
}

pub async fn insert_key(conn: &mut Conn, key: &Key) -> Result<()> {
    sqlx::query(
        "INSERT INTO oauth_keys (kid, secret, created_at, retired_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(&key.kid)
    .bind(&key.secret)
    .bind(key.created_at)
    .bind(key.retired_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Retires every key in use and adds `key`, in one transaction; keys retired longer
/// than `grace` ago (they verify nothing any more) are deleted.
pub async fn rotate(tx: &mut Tx, key: &Key, grace: i64) -> Result<()> {
    sqlx::query("DELETE FROM oauth_keys WHERE retired_at IS NOT NULL AND retired_at <= $1")
        .bind(key.created_at - grace)
        .execute(&mut **tx)
        .await?;
    sqlx::query("UPDATE oauth_keys SET retired_at = $1 WHERE retired_at IS NULL")
        .bind(key.created_at)
        .execute(&mut **tx)
        .await?;
    insert_key(tx, key).await
}
