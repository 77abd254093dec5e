//! Messages on tickets and their attachments.

use serde::Serialize;

use super::{keep_prepared, placeholders, raw, Conn, Result};
use crate::domain::{Direction, MessageKind};

pub struct NewMessage<'a> {
    pub ticket_id: i64,
    pub direction: Direction,
    pub kind: MessageKind,
    pub automatic_reason: Option<&'a str>,
    pub from_email: &'a str,
    pub from_name: Option<&'a str>,
    pub to_addrs: &'a str,
    pub cc_addrs: &'a str,
    pub reply_to: &'a str,
    pub subject: &'a str,
    pub message_id: &'a str,
    pub in_reply_to: &'a str,
    pub references_ids: &'a str,
    pub text_body: &'a str,
    pub html_body: Option<&'a str>,
    pub raw_sha256: Option<&'a str>,
    pub content_sha256: &'a str,
    pub mailbox: Option<&'a str>,
    pub source: &'a str,
    pub sent_at: Option<i64>,
    /// The staff user who wrote it (verified staff mail, portal).
    pub author_user_id: Option<i64>,
    /// From a staff address without proof that the staff member sent it.
    pub unverified: bool,
}

pub struct NewAttachment<'a> {
    pub filename: &'a str,
    pub content_type: &'a str,
    pub content_id: Option<&'a str>,
    pub inline: bool,
    pub data: &'a [u8],
    pub sha256: &'a str,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Message {
    pub id: i64,
    pub ticket_id: i64,
    pub direction: Direction,
    pub kind: MessageKind,
    pub automatic_reason: Option<String>,
    pub from_email: String,
    pub from_name: Option<String>,
    pub to_addrs: String,
    pub cc_addrs: String,
    pub subject: String,
    pub message_id: String,
    pub in_reply_to: String,
    pub references_ids: String,
    pub text_body: String,
    pub html_body: Option<String>,
    pub raw_sha256: Option<String>,
    /// When retention purged the original bytes (`raw_sha256` is then empty).
    pub raw_purged_at: Option<i64>,
    pub mailbox: Option<String>,
    pub source: String,
    pub sent_at: Option<i64>,
    pub created_at: i64,
    pub author_user_id: Option<i64>,
    pub unverified: i64,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Attachment {
    pub id: i64,
    pub message_id: i64,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub content_id: Option<String>,
    pub inline: i64,
}

/// The stored message with this Message-ID and content, if any: `(message id, ticket id)`.
pub async fn find_duplicate(
    conn: &mut Conn,
    message_id: &str,
    content_sha256: &str,
) -> Result<Option<(i64, i64)>> {
    Ok(sqlx::query_as(
        "SELECT id, ticket_id FROM messages WHERE message_id = $1 AND content_sha256 = $2",
    )
    .bind(message_id)
    .bind(content_sha256)
    .fetch_optional(conn)
    .await?)
}

pub async fn insert(conn: &mut Conn, m: &NewMessage<'_>, now: i64) -> Result<i64> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO messages (ticket_id, direction, kind, automatic_reason, from_email, from_name,
             to_addrs, cc_addrs, reply_to, subject, message_id, in_reply_to, references_ids,
             text_body, html_body, raw_sha256, content_sha256, mailbox, source, sent_at, created_at,
             author_user_id, unverified)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)
         RETURNING id",
    )
    .bind(m.ticket_id)
    .bind(m.direction.as_str())
    .bind(m.kind.as_str())
    .bind(m.automatic_reason)
    .bind(m.from_email)
    .bind(m.from_name)
    .bind(m.to_addrs)
    .bind(m.cc_addrs)
    .bind(m.reply_to)
    .bind(m.subject)
    .bind(m.message_id)
    .bind(m.in_reply_to)
    .bind(m.references_ids)
    .bind(m.text_body)
    .bind(m.html_body)
    .bind(m.raw_sha256)
    .bind(m.content_sha256)
    .bind(m.mailbox)
    .bind(m.source)
    .bind(m.sent_at)
    .bind(now)
    .bind(m.author_user_id)
    .bind(i64::from(m.unverified))
    .fetch_one(&mut *conn)
    .await?;
    if is_staff_response(m) {
        sqlx::query(
            "UPDATE tickets SET first_response_at = $1, first_responder_id = $2
             WHERE id = $3 AND first_response_at IS NULL",
        )
        .bind(now)
        .bind(m.author_user_id)
        .bind(m.ticket_id)
        .execute(conn)
        .await?;
    }
    Ok(id)
}

/// A response to the customer by a staff member (a portal reply, relayed staff mail):
/// the first one on a ticket is its first response (reports).
fn is_staff_response(m: &NewMessage<'_>) -> bool {
    m.kind == MessageKind::Public && m.author_user_id.is_some() && !m.unverified
}

pub async fn insert_attachment(
    conn: &mut Conn,
    message_id: i64,
    a: &NewAttachment<'_>,
) -> Result<i64> {
    raw::insert_blob(&mut *conn, a.sha256, a.data).await?;
    Ok(sqlx::query_scalar(
        "INSERT INTO attachments (message_id, filename, content_type, size, sha256, content_id, inline)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(message_id)
    .bind(a.filename)
    .bind(a.content_type)
    .bind(a.data.len() as i64)
    .bind(a.sha256)
    .bind(a.content_id)
    .bind(i64::from(a.inline))
    .fetch_one(conn)
    .await?)
}

const MESSAGE_COLUMNS: &str =
    "id, ticket_id, direction, kind, automatic_reason, from_email, from_name,
    to_addrs, cc_addrs, subject, message_id, in_reply_to, references_ids, text_body, html_body,
    raw_sha256, raw_purged_at, mailbox, source, sent_at, created_at, author_user_id, unverified";

pub async fn for_ticket(conn: &mut Conn, ticket_id: i64) -> Result<Vec<Message>> {
    let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE ticket_id = $1 ORDER BY id");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(ticket_id)
        .fetch_all(conn)
        .await?)
}

pub async fn get(conn: &mut Conn, id: i64) -> Result<Option<Message>> {
    let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?)
}

/// Attachments of these messages, in message order.
pub async fn attachments_of(conn: &mut Conn, message_ids: &[i64]) -> Result<Vec<Attachment>> {
    if message_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT id, message_id, filename, content_type, size, sha256, content_id, inline
         FROM attachments WHERE message_id IN ({}) ORDER BY message_id, id",
        placeholders(1, message_ids.len())
    );
    let mut query =
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).persistent(keep_prepared(message_ids.len()));
    for id in message_ids {
        query = query.bind(*id);
    }
    Ok(query.fetch_all(conn).await?)
}

pub async fn count(conn: &mut Conn) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM messages")
        .fetch_one(conn)
        .await?)
}

/// The Message-IDs of a ticket's messages, oldest first (for References on our mail).
pub async fn message_ids_of_ticket(conn: &mut Conn, ticket_id: i64) -> Result<Vec<String>> {
    Ok(
        sqlx::query_scalar("SELECT message_id FROM messages WHERE ticket_id = $1 ORDER BY id")
            .bind(ticket_id)
            .fetch_all(conn)
            .await?,
    )
}

/// An inbound message's duplicate key and where its raw bytes are, for recomputing the
/// key (`store::upgrade`). `raw_size` is `None` when the raw message is missing.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredKey {
    pub id: i64,
    pub message_id: String,
    pub content_sha256: String,
    pub raw_sha256: String,
    pub raw_size: Option<i64>,
}

/// Inbound messages with a raw message, from `after_id` on in id order (at most `limit`).
pub async fn inbound_keys_after(
    conn: &mut Conn,
    after_id: i64,
    limit: i64,
) -> Result<Vec<StoredKey>> {
    Ok(sqlx::query_as(
        "SELECT m.id, m.message_id, m.content_sha256, m.raw_sha256, r.size AS raw_size
         FROM messages m LEFT JOIN raw_messages r ON r.sha256 = m.raw_sha256
         WHERE m.direction = 'in' AND m.raw_sha256 IS NOT NULL AND m.id > $1
         ORDER BY m.id LIMIT $2",
    )
    .bind(after_id)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// `(id, message_id, content_sha256)` of every message with one of these Message-IDs.
pub async fn keys_with_message_ids(
    conn: &mut Conn,
    message_ids: &[&str],
) -> Result<Vec<(i64, String, String)>> {
    if message_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT id, message_id, content_sha256 FROM messages WHERE message_id IN ({})",
        placeholders(1, message_ids.len())
    );
    let mut query =
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).persistent(keep_prepared(message_ids.len()));
    for id in message_ids {
        query = query.bind(*id);
    }
    Ok(query.fetch_all(conn).await?)
}

/// Gives a message a new duplicate key (Message-ID and content hash).
pub async fn set_key(
    conn: &mut Conn,
    id: i64,
    message_id: &str,
    content_sha256: &str,
) -> Result<()> {
    sqlx::query("UPDATE messages SET message_id = $1, content_sha256 = $2 WHERE id = $3")
        .bind(message_id)
        .bind(content_sha256)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn newest_id(conn: &mut Conn, ticket_id: i64) -> Result<i64> {
    Ok(
        sqlx::query_scalar::<_, Option<i64>>("SELECT MAX(id) FROM messages WHERE ticket_id = $1")
            .bind(ticket_id)
            .fetch_one(conn)
            .await?
            .unwrap_or(0),
    )
}

/// One attachment with its contents.
pub async fn attachment_with_data(
    conn: &mut Conn,
    id: i64,
) -> Result<Option<(Attachment, Vec<u8>)>> {
    let row: Option<Attachment> = sqlx::query_as(
        "SELECT id, message_id, filename, content_type, size, sha256, content_id, inline
         FROM attachments WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    attach_data(conn, row).await
}

/// The attachment of a message with this Content-ID (an inline `cid:` image).
pub async fn attachment_by_content_id(
    conn: &mut Conn,
    message_id: i64,
    content_id: &str,
) -> Result<Option<(Attachment, Vec<u8>)>> {
    let row: Option<Attachment> = sqlx::query_as(
        "SELECT id, message_id, filename, content_type, size, sha256, content_id, inline
         FROM attachments WHERE message_id = $1 AND content_id = $2 ORDER BY id LIMIT 1",
    )
    .bind(message_id)
    .bind(content_id)
    .fetch_optional(&mut *conn)
    .await?;
    attach_data(conn, row).await
}

async fn attach_data(
    conn: &mut Conn,
    row: Option<Attachment>,
) -> Result<Option<(Attachment, Vec<u8>)>> {
    let Some(attachment) = row else {
        return Ok(None);
    };
    let data = raw::get_blob(conn, &attachment.sha256)
        .await?
        .unwrap_or_default();
    Ok(Some((attachment, data)))
}
