//! Read models: a ticket with its conversation, as the CLI (and later the portal and API)
//! show it.

use serde::Serialize;

use crate::domain::{Direction, MessageKind};
use crate::mail::Mailbox;
use crate::store::{messages, tickets, Conn, Store, StoreError};

#[derive(Debug, Serialize)]
pub struct TicketSummary {
    #[serde(rename = "ref")]
    pub reference: String,
    #[serde(flatten)]
    pub ticket: tickets::Ticket,
}

impl From<tickets::Ticket> for TicketSummary {
    fn from(ticket: tickets::Ticket) -> Self {
        TicketSummary {
            reference: ticket.id.to_string(),
            ticket,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TicketDetail {
    #[serde(rename = "ref")]
    pub reference: String,
    #[serde(flatten)]
    pub ticket: tickets::Ticket,
    pub participants: Vec<tickets::Participant>,
    pub messages: Vec<MessageView>,
    /// Outgoing mail for this ticket and how its delivery went (queued, sent, failed).
    pub outbox: Vec<crate::store::outbox::OutboxEntry>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MessageView {
    pub id: i64,
    #[schema(value_type = String)]
    pub direction: Direction,
    #[schema(value_type = String)]
    pub kind: MessageKind,
    pub automatic_reason: Option<String>,
    pub from: String,
    pub from_name: Option<String>,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub subject: String,
    pub message_id: String,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    pub date: Option<i64>,
    pub created_at: i64,
    pub text: String,
    /// What the writer wrote, without the quoted history (for display).
    pub visible_text: String,
    pub html: Option<String>,
    pub raw_sha256: Option<String>,
    /// When retention purged the original (`retention.raw_days`); the parsed message stays.
    pub raw_purged_at: Option<i64>,
    pub source: String,
    /// The staff user who wrote it, when that is proven (verified staff mail).
    pub author_user_id: Option<i64>,
    /// From a staff address without proof that the staff member sent it: internal only.
    pub unverified: bool,
    pub attachments: Vec<AttachmentView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AttachmentView {
    pub id: i64,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub content_id: Option<String>,
    pub inline: bool,
}

/// Accepts `42`, `#42` or `[Support #42]`-style input.
pub fn parse_ref(input: &str) -> Option<i64> {
    let digits: String = input
        .trim()
        .trim_matches(|c| c == '[' || c == ']')
        .rsplit('#')
        .next()?
        .trim()
        .to_string();
    digits.parse().ok().filter(|n: &i64| *n > 0)
}

pub async fn list(store: &Store) -> Result<Vec<TicketSummary>, StoreError> {
    let mut conn = store.acquire().await?;
    Ok(tickets::list(&mut conn)
        .await?
        .into_iter()
        .map(TicketSummary::from)
        .collect())
}

pub async fn load(store: &Store, id: i64) -> Result<TicketDetail, StoreError> {
    let mut conn = store.acquire().await?;
    load_on(&mut conn, id).await
}

/// [`load`] on a connection the caller already holds (one pool checkout for a caller
/// that reads more).
pub async fn load_on(conn: &mut Conn, id: i64) -> Result<TicketDetail, StoreError> {
    let ticket = tickets::get(&mut *conn, id).await?;
    let participants = tickets::participants(&mut *conn, id).await?;
    let stored = messages::for_ticket(&mut *conn, id).await?;
    let ids: Vec<i64> = stored.iter().map(|m| m.id).collect();
    let mut attachments = messages::attachments_of(&mut *conn, &ids).await?;
    let outbox = crate::store::outbox::for_ticket(&mut *conn, id).await?;
    let messages = stored
        .into_iter()
        .map(|m| {
            let mine: Vec<AttachmentView> = extract_if(&mut attachments, |a| a.message_id == m.id)
                .into_iter()
                .map(|a| AttachmentView {
                    id: a.id,
                    filename: a.filename,
                    content_type: a.content_type,
                    size: a.size,
                    sha256: a.sha256,
                    content_id: a.content_id,
                    inline: a.inline != 0,
                })
                .collect();
            message_view(m, mine)
        })
        .collect();
    Ok(TicketDetail {
        reference: ticket.id.to_string(),
        ticket,
        participants,
        messages,
        outbox,
    })
}

fn extract_if<T>(items: &mut Vec<T>, keep: impl Fn(&T) -> bool) -> Vec<T> {
    let (taken, rest): (Vec<T>, Vec<T>) = items.drain(..).partition(|item| keep(item));
    *items = rest;
    taken
}

fn message_view(m: messages::Message, attachments: Vec<AttachmentView>) -> MessageView {
    let split = |s: &str| s.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    let addresses = |s: &str| serde_json::from_str::<Vec<Mailbox>>(s).unwrap_or_default();
    MessageView {
        id: m.id,
        direction: m.direction,
        kind: m.kind,
        automatic_reason: m.automatic_reason,
        from: m.from_email,
        from_name: m.from_name,
        to: addresses(&m.to_addrs),
        cc: addresses(&m.cc_addrs),
        subject: m.subject,
        message_id: m.message_id,
        in_reply_to: split(&m.in_reply_to),
        references: split(&m.references_ids),
        date: m.sent_at,
        created_at: m.created_at,
        visible_text: crate::mail::quote::visible_text(&m.text_body),
        text: m.text_body,
        html: m.html_body,
        raw_sha256: m.raw_sha256,
        raw_purged_at: m.raw_purged_at,
        source: m.source,
        author_user_id: m.author_user_id,
        unverified: m.unverified != 0,
        attachments,
    }
}

/// The id of a ticket's newest message (0 if none): did something arrive meanwhile?
pub async fn newest_message(store: &Store, ticket_id: i64) -> Result<i64, StoreError> {
    let mut conn = store.acquire().await?;
    messages::newest_id(&mut conn, ticket_id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_in_several_spellings() {
        assert_eq!(parse_ref("42"), Some(42));
        assert_eq!(parse_ref("#42"), Some(42));
        assert_eq!(parse_ref("[Support #42]"), Some(42));
        assert_eq!(parse_ref("x"), None);
        assert_eq!(parse_ref("0"), None);
    }
}
