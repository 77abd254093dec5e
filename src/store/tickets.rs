//! Tickets and their participants.

use serde::Serialize;

use super::{placeholders, Conn, Result, StoreError};
use crate::domain::threading::TicketFacts;
use crate::domain::{ParticipantRole, Priority, TicketStatus};

#[derive(Debug, Clone, sqlx::FromRow, Serialize, utoipa::ToSchema)]
pub struct Ticket {
    pub id: i64,
    pub subject: String,
    #[schema(value_type = String)]
    pub status: TicketStatus,
    #[schema(value_type = String)]
    pub priority: Priority,
    pub category: String,
    pub mailbox: Option<String>,
    #[serde(rename = "requester")]
    pub requester_email: String,
    pub requester_name: Option<String>,
    #[serde(rename = "assignee")]
    pub assignee_email: Option<String>,
    pub assignee_id: Option<i64>,
    /// The long-closed ticket this one follows up on.
    #[serde(rename = "linked_ticket")]
    pub linked_ticket_id: Option<i64>,
    /// The ticket this one was merged into (its messages now live there).
    pub merged_into_id: Option<i64>,
    pub message_count: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub resolved_at: Option<i64>,
    pub closed_at: Option<i64>,
    /// Revocation counter of the customer links to this ticket.
    #[serde(skip)]
    pub customer_link_epoch: i64,
}

const TICKET_SELECT: &str = "SELECT t.id, t.subject, t.status, t.priority, t.category, t.mailbox,
        t.requester_email, t.requester_name, u.email AS assignee_email, t.assignee_id, t.linked_ticket_id, t.merged_into_id,
        (SELECT COUNT(*) FROM messages m WHERE m.ticket_id = t.id) AS message_count,
        t.created_at, t.updated_at, t.resolved_at, t.closed_at, t.customer_link_epoch
    FROM tickets t LEFT JOIN users u ON u.id = t.assignee_id";

#[derive(Debug, Clone, sqlx::FromRow, Serialize, utoipa::ToSchema)]
pub struct Participant {
    pub email: String,
    pub name: Option<String>,
    #[schema(value_type = String)]
    pub role: ParticipantRole,
}

pub struct NewTicket<'a> {
    pub subject: &'a str,
    pub category: &'a str,
    pub mailbox: Option<&'a str>,
    pub requester_email: &'a str,
    pub requester_name: Option<&'a str>,
    pub linked_ticket_id: Option<i64>,
}

pub async fn insert(conn: &mut Conn, ticket: &NewTicket<'_>, now: i64) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO tickets (subject, status, priority, category, mailbox, requester_email,
             requester_name, linked_ticket_id, created_at, updated_at)
         VALUES ($1, 'open', 'medium', $2, $3, $4, $5, $6, $7, $7) RETURNING id",
    )
    .bind(ticket.subject)
    .bind(ticket.category)
    .bind(ticket.mailbox)
    .bind(ticket.requester_email)
    .bind(ticket.requester_name)
    .bind(ticket.linked_ticket_id)
    .bind(now)
    .fetch_one(conn)
    .await?)
}

/// What threading needs of a ticket; a merged ticket answers for the ticket it was
/// merged into, so its old references and subject tags still thread.
pub async fn facts(conn: &mut Conn, id: i64) -> Result<Option<TicketFacts>> {
    let row: Option<(i64, String, Option<i64>, Option<i64>)> =
        sqlx::query_as("SELECT id, status, closed_at, merged_into_id FROM tickets WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    match row {
        Some((_, _, _, Some(_))) => {
            let target = resolve_merged(&mut *conn, id).await?;
            let row: Option<(i64, String, Option<i64>)> =
                sqlx::query_as("SELECT id, status, closed_at FROM tickets WHERE id = $1")
                    .bind(target)
                    .fetch_optional(conn)
                    .await?;
            row.map(|(id, status, closed_at)| facts_from_row(id, &status, closed_at))
                .transpose()
        }
        Some((id, status, closed_at, None)) => facts_from_row(id, &status, closed_at).map(Some),
        None => Ok(None),
    }
}

/// With a status change ($1 the new status, $2 now): the resolved and closed times
/// follow, so they always mean "since when".
const STATUS_TIMES: &str = "resolved_at = CASE WHEN $1 = 'resolved' THEN $2 WHEN $1 IN ('open', 'in_progress', 'waiting') THEN NULL ELSE resolved_at END,
    closed_at = CASE WHEN $1 = 'closed' THEN $2 ELSE NULL END";

/// Moves a ticket to `status`, keeping the resolved/closed timestamps meaningful.
pub async fn set_status(conn: &mut Conn, id: i64, status: TicketStatus, now: i64) -> Result<()> {
    let sql =
        format!("UPDATE tickets SET status = $1, updated_at = $2, {STATUS_TIMES} WHERE id = $3");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(status.as_str())
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn touch(conn: &mut Conn, id: i64, now: i64) -> Result<()> {
    sqlx::query("UPDATE tickets SET updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Rows per INSERT: far below SQLite's bound-variable limit whatever the list length.
const PARTICIPANT_CHUNK: usize = 200;

/// Adds participants that are not on the ticket yet (existing roles are kept).
pub async fn add_participants(
    conn: &mut Conn,
    ticket_id: i64,
    people: &[(&str, Option<&str>, ParticipantRole)],
    now: i64,
) -> Result<()> {
    for chunk in people.chunks(PARTICIPANT_CHUNK) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|i| format!("($1, ${}, ${}, ${}, $2)", 3 + i * 3, 4 + i * 3, 5 + i * 3))
            .collect();
        let sql = format!(
            "INSERT INTO participants (ticket_id, email, name, role, created_at) VALUES {}
             ON CONFLICT (ticket_id, email) DO NOTHING",
            rows.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ticket_id)
            .bind(now)
            .persistent(super::keep_prepared(chunk.len()));
        for (email, name, role) in chunk {
            query = query.bind(*email).bind(*name).bind(role.as_str());
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

pub async fn is_participant(conn: &mut Conn, ticket_id: i64, email: &str) -> Result<bool> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM participants WHERE ticket_id = $1 AND email = $2")
            .bind(ticket_id)
            .bind(email)
            .fetch_optional(conn)
            .await?;
    Ok(found.is_some())
}

pub async fn participants(conn: &mut Conn, ticket_id: i64) -> Result<Vec<Participant>> {
    Ok(sqlx::query_as(
        "SELECT email, name, role FROM participants WHERE ticket_id = $1 ORDER BY role DESC, created_at, email",
    )
    .bind(ticket_id)
    .fetch_all(conn)
    .await?)
}

pub async fn get(conn: &mut Conn, id: i64) -> Result<Ticket> {
    let sql = format!("{TICKET_SELECT} WHERE t.id = $1");
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("ticket #{id}")))
}

pub async fn list(conn: &mut Conn) -> Result<Vec<Ticket>> {
    let sql = format!("{TICKET_SELECT} ORDER BY t.id");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(conn)
        .await?)
}

pub async fn count(conn: &mut Conn) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM tickets")
        .fetch_one(conn)
        .await?)
}

/// How many tickets have each status (statuses without tickets are missing): `/metrics`.
pub async fn count_by_status(conn: &mut Conn) -> Result<Vec<(String, i64)>> {
    Ok(
        sqlx::query_as("SELECT status, COUNT(*) FROM tickets GROUP BY status")
            .fetch_all(conn)
            .await?,
    )
}

/// A stored message that owns a referenced Message-ID.
#[derive(Debug, Clone)]
pub struct ReferenceOwner {
    pub message_id: String,
    /// The message row: lower is earlier.
    pub row_id: i64,
    pub from_email: String,
    pub ticket: TicketFacts,
}

/// The stored messages (and their tickets) that own any of these Message-IDs.
pub async fn by_message_ids(conn: &mut Conn, ids: &[&str]) -> Result<Vec<ReferenceOwner>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT m.message_id, m.id, m.from_email, t.id, t.status, t.closed_at
         FROM messages m JOIN tickets t ON t.id = m.ticket_id
         WHERE m.message_id IN ({})",
        placeholders(1, ids.len())
    );
    type Row = (String, i64, String, i64, String, Option<i64>);
    let mut query = sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql)).persistent(false);
    for id in ids {
        query = query.bind(*id);
    }
    query
        .fetch_all(conn)
        .await?
        .into_iter()
        .map(|(message_id, row_id, from_email, id, status, closed_at)| {
            Ok(ReferenceOwner {
                message_id,
                row_id,
                from_email,
                ticket: facts_from_row(id, &status, closed_at)?,
            })
        })
        .collect()
}

fn facts_from_row(id: i64, status: &str, closed_at: Option<i64>) -> Result<TicketFacts> {
    let status = status
        .parse::<TicketStatus>()
        .map_err(|e| StoreError::Conflict(format!("ticket {id}: {e}")))?;
    Ok(TicketFacts {
        id,
        status,
        closed_at,
    })
}

pub async fn set_priority(
    conn: &mut Conn,
    id: i64,
    priority: crate::domain::Priority,
    now: i64,
) -> Result<()> {
    sqlx::query("UPDATE tickets SET priority = $1, updated_at = $2 WHERE id = $3")
        .bind(priority.as_str())
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// A ticket field staff change in the portal, the API or by e-mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Status,
    Priority,
    Category,
    Assignee,
}

impl Field {
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Status => "status",
            Field::Priority => "priority",
            Field::Category => "category",
            Field::Assignee => "assignee",
        }
    }

    fn column(self) -> &'static str {
        match self {
            Field::Status => "status",
            Field::Priority => "priority",
            Field::Category => "category",
            Field::Assignee => "assignee_id",
        }
    }
}

/// Sets `field` to `new` only if it still holds `expected` (what the editor saw), so two
/// people editing one ticket never overwrite each other unknowingly. Values are text
/// (a user id for the assignee; `None` is unassigned). Returns whether it changed.
pub async fn set_if_unchanged(
    conn: &mut Conn,
    id: i64,
    field: Field,
    expected: Option<&str>,
    new: Option<&str>,
    now: i64,
) -> Result<bool> {
    let column = field.column();
    let extra = if field == Field::Status {
        format!(", {STATUS_TIMES}")
    } else {
        String::new()
    };
    // The assignee column is an integer: compare and set it as one.
    let (value, current) = if field == Field::Assignee {
        ("CAST($1 AS BIGINT)", format!("CAST({column} AS TEXT)"))
    } else {
        ("$1", column.to_string())
    };
    let sql = format!(
        "UPDATE tickets SET {column} = {value}, updated_at = $2 {extra}
         WHERE id = $3 AND merged_into_id IS NULL AND {current} IS NOT DISTINCT FROM $4"
    );
    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(new)
        .bind(now)
        .bind(id)
        .bind(expected)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// The ticket a merged ticket's mail now belongs to (following merges, bounded).
pub async fn resolve_merged(conn: &mut Conn, id: i64) -> Result<i64> {
    let mut current = id;
    for _ in 0..16 {
        let next: Option<Option<i64>> =
            sqlx::query_scalar("SELECT merged_into_id FROM tickets WHERE id = $1")
                .bind(current)
                .fetch_optional(&mut *conn)
                .await?;
        match next.flatten() {
            Some(target) if target != current => current = target,
            _ => return Ok(current),
        }
    }
    Ok(current)
}

/// Tickets merged into `id` (directly), whose old references now lead here.
pub async fn merged_sources(conn: &mut Conn, id: i64) -> Result<Vec<i64>> {
    Ok(
        sqlx::query_scalar("SELECT id FROM tickets WHERE merged_into_id = $1 ORDER BY id")
            .bind(id)
            .fetch_all(conn)
            .await?,
    )
}

/// Moves `source`'s messages, participants and outgoing mail onto `target` and leaves
/// `source` closed, pointing at `target`. Replies to either thread then land on `target`:
/// references find the moved messages, and signed references and subject tags of
/// `source` are followed through `merged_into_id`.
pub async fn merge(conn: &mut Conn, source: i64, target: i64, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO participants (ticket_id, email, name, role, created_at)
         SELECT $1, email, name, 'cc', created_at FROM participants WHERE ticket_id = $2
         ON CONFLICT (ticket_id, email) DO NOTHING",
    )
    .bind(target)
    .bind(source)
    .execute(&mut *conn)
    .await?;
    for table in ["messages", "outbox", "tasks", "ticket_events"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {table} SET ticket_id = $1 WHERE ticket_id = $2"
        )))
        .bind(target)
        .bind(source)
        .execute(&mut *conn)
        .await?;
    }
    // The target's first response is now the earlier of the two threads'.
    sqlx::query(
        "UPDATE tickets SET first_response_at = s.first_response_at, first_responder_id = s.first_responder_id
         FROM (SELECT first_response_at, first_responder_id FROM tickets WHERE id = $2) AS s
         WHERE tickets.id = $1 AND s.first_response_at IS NOT NULL
           AND (tickets.first_response_at IS NULL OR s.first_response_at < tickets.first_response_at)",
    )
    .bind(target)
    .bind(source)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE tickets SET merged_into_id = $1, updated_at = $3 WHERE merged_into_id = $2",
    )
    .bind(target)
    .bind(source)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE tickets SET merged_into_id = $1, status = 'closed', closed_at = $3, updated_at = $3
         WHERE id = $2",
    )
    .bind(target)
    .bind(source)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    touch(conn, target, now).await
}

/// A merged ticket's target, if it was merged.
pub async fn merged_into(conn: &mut Conn, id: i64) -> Result<Option<i64>> {
    Ok(
        sqlx::query_scalar::<_, Option<i64>>("SELECT merged_into_id FROM tickets WHERE id = $1")
            .bind(id)
            .fetch_optional(conn)
            .await?
            .flatten(),
    )
}

/// Voids every customer link to this ticket and to the tickets merged into it (their
/// links lead here).
pub async fn revoke_customer_links(conn: &mut Conn, id: i64) -> Result<()> {
    let mut pending = vec![id];
    let mut seen = std::collections::HashSet::new();
    while let Some(current) = pending.pop() {
        if !seen.insert(current) {
            continue;
        }
        sqlx::query(
            "UPDATE tickets SET customer_link_epoch = customer_link_epoch + 1 WHERE id = $1",
        )
        .bind(current)
        .execute(&mut *conn)
        .await?;
        pending.extend(merged_sources(&mut *conn, current).await?);
    }
    Ok(())
}

/// What deleting a ticket removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[schema(as = DeletedTicket)]
pub struct Deleted {
    /// The ticket and the tickets merged into it (empty shells that only led to it).
    pub tickets: Vec<i64>,
    pub messages: u64,
    pub attachments: u64,
    /// Outgoing mail of the ticket (sent or not: unsent mail is not sent any more).
    pub outgoing: u64,
    /// Tasks about the ticket stay, no longer linked to it.
    pub tasks_unlinked: u64,
    /// Stored originals and attachment contents nothing else refers to any more.
    pub originals: usize,
    pub contents: usize,
}

/// Deletes a ticket with what only it holds: its messages and their attachments, its
/// participants, history and outgoing mail, the tickets merged into it, and the stored
/// originals and contents no other message shares. Tasks about it are kept (they are
/// staff's work, not the ticket's), unlinked; a later ticket linked to it loses the link.
pub async fn delete(conn: &mut Conn, id: i64) -> Result<Deleted> {
    get(&mut *conn, id).await?;
    let mut tickets = vec![id];
    tickets.extend(merged_sources(&mut *conn, id).await?);
    let t = &tickets;
    let originals = keys_of(
        conn,
        "SELECT DISTINCT raw_sha256 FROM messages WHERE ticket_id IN ({1}) AND raw_sha256 IS NOT NULL",
        t,
    )
    .await?;
    let contents = keys_of(
        conn,
        "SELECT DISTINCT a.sha256 FROM attachments a JOIN messages m ON m.id = a.message_id
         WHERE m.ticket_id IN ({1})",
        t,
    )
    .await?;
    let tasks_unlinked = run_for(
        conn,
        "UPDATE tasks SET ticket_id = NULL WHERE ticket_id IN ({1})",
        t,
    )
    .await?;
    run_for(
        conn,
        "UPDATE tickets SET linked_ticket_id = NULL WHERE linked_ticket_id IN ({1})",
        t,
    )
    .await?;
    let outgoing = run_for(
        conn,
        "DELETE FROM outbox WHERE ticket_id IN ({1})
         OR message_id IN (SELECT id FROM messages WHERE ticket_id IN ({2}))",
        t,
    )
    .await?;
    let attachments = run_for(
        conn,
        "DELETE FROM attachments WHERE message_id IN (SELECT id FROM messages WHERE ticket_id IN ({1}))",
        t,
    )
    .await?;
    let messages = run_for(conn, "DELETE FROM messages WHERE ticket_id IN ({1})", t).await?;
    run_for(conn, "DELETE FROM participants WHERE ticket_id IN ({1})", t).await?;
    run_for(
        conn,
        "DELETE FROM ticket_events WHERE ticket_id IN ({1})",
        t,
    )
    .await?;
    // The merged shells point at the ticket: unhook them before the rows go.
    run_for(
        conn,
        "UPDATE tickets SET merged_into_id = NULL WHERE id IN ({1})",
        t,
    )
    .await?;
    run_for(conn, "DELETE FROM tickets WHERE id IN ({1})", t).await?;
    let originals = super::retention::delete_unreferenced_raw(&mut *conn, &originals).await?;
    let contents = super::retention::delete_unreferenced_blobs(&mut *conn, &contents).await?;
    Ok(Deleted {
        tickets,
        messages,
        attachments,
        outgoing,
        tasks_unlinked,
        originals: originals.len(),
        contents: contents.len(),
    })
}

/// `sql` with each `{n}` replaced by a placeholder list for `ids` (numbered on), so a
/// statement can name the same id list more than once.
fn with_id_lists(sql: &str, count: usize) -> String {
    let mut out = sql.to_string();
    for n in 1..=2 {
        out = out.replace(
            &format!("{{{n}}}"),
            &placeholders(1 + (n - 1) * count, count),
        );
    }
    out
}

async fn run_for(conn: &mut Conn, sql: &str, ids: &[i64]) -> Result<u64> {
    let lists = if sql.contains("{2}") { 2 } else { 1 };
    let mut query =
        sqlx::query(sqlx::AssertSqlSafe(with_id_lists(sql, ids.len()))).persistent(false);
    for _ in 0..lists {
        for id in ids {
            query = query.bind(*id);
        }
    }
    Ok(query.execute(conn).await?.rows_affected())
}

async fn keys_of(conn: &mut Conn, sql: &str, ids: &[i64]) -> Result<Vec<String>> {
    let mut query =
        sqlx::query_scalar(sqlx::AssertSqlSafe(with_id_lists(sql, ids.len()))).persistent(false);
    for id in ids {
        query = query.bind(*id);
    }
    Ok(query.fetch_all(conn).await?)
}
