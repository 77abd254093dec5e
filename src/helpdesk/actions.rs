//! What staff do to tickets (change a field, reply, write a note, merge), with one set of
//! rules and one history whether it comes from the portal, the API or staff e-mail.
//! Every function works in the caller's transaction, so the change, its history entry
//! and the mail it causes commit together.

use crate::domain::access::{self, Action};
use crate::domain::{
    address, Direction, MessageKind, ParticipantRole, Priority, Role, TicketStatus,
};
use crate::outbound::OutboundOptions;
use crate::store::tickets::Field;
use crate::store::{events, messages, tickets, users, StoreError, Tx};

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("you may not {0}")]
    Forbidden(&'static str),
    /// The user's role allows it, the way they act now does not (a token whose scope
    /// is not admin).
    #[error("you may not {0} with this token: admin actions need an admin-scoped token or an admin's session")]
    BeyondScope(&'static str),
    #[error("{0} not found")]
    NotFound(String),
    /// Someone else changed the field since the editor loaded it.
    #[error("{message}")]
    Conflict {
        field: &'static str,
        current: Option<String>,
        message: String,
    },
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// A bounded resource (password hashing) stayed taken: try again in a moment.
    #[error("the server is busy; try again in a moment")]
    Busy,
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for ActionError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ActionError::NotFound(what),
            other => ActionError::Store(other),
        }
    }
}

type Result<T> = std::result::Result<T, ActionError>;

/// The signed-in (or mail-verified) staff member doing something, and the highest role
/// the way they act reaches. Every rule asks [`Actor::role`], so a caller whose way of
/// acting does not reach admin (a token that is not admin-scoped) is refused every admin
/// action wherever it is checked, with no check of its own to forget.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user: users::User,
    /// At most this role, whatever the user's (private: made by a constructor, which
    /// names it).
    ceiling: Role,
}

impl Actor {
    /// The user with all their role allows: a portal session, verified staff e-mail, an
    /// admin-scoped token.
    pub fn with_role(user: users::User) -> Actor {
        Actor::at_most(user, Role::Admin)
    }

    /// The user acting as `ceiling` at most (a read- or write-scoped token: staff). It
    /// never goes beyond the user's own role.
    pub fn at_most(user: users::User, ceiling: Role) -> Actor {
        Actor { user, ceiling }
    }

    /// The role the rules see: the user's, held down to the ceiling.
    pub fn role(&self) -> Role {
        match (self.user_role(), self.ceiling) {
            (Role::Admin, Role::Admin) => Role::Admin,
            _ => Role::Staff,
        }
    }

    fn user_role(&self) -> Role {
        self.user.role
    }

    /// Whether the rules let this actor do `action` (to offer it only to them).
    pub fn may(&self, action: Action) -> bool {
        access::may(self.role(), action)
    }

    pub fn require(&self, action: Action, what: &'static str) -> Result<()> {
        if self.may(action) {
            Ok(())
        } else if access::may(self.user_role(), action) {
            Err(ActionError::BeyondScope(what))
        } else {
            Err(ActionError::Forbidden(what))
        }
    }
}

/// What the editor believes the field holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// Change it whatever it holds (staff e-mail commands: the mail is the instruction).
    Anything,
    /// Change it only if it still holds this (portal forms, API `If-Match`).
    Value(Option<String>),
}

/// The environment of a change: mail settings and the configured categories.
pub struct Context<'a> {
    pub outbound: Option<&'a OutboundOptions>,
    pub categories: &'a [String],
    pub now: i64,
}

/// Sets a ticket field: validates the new value, refuses to overwrite a change the
/// editor did not see, records the change, and sends what it causes (the resolved
/// notice, the assignment notification). Returns whether anything changed.
pub async fn change_field(
    tx: &mut Tx,
    ctx: &Context<'_>,
    actor: &Actor,
    ticket_id: i64,
    field: Field,
    expected: Expected,
    new: Option<&str>,
) -> Result<bool> {
    actor.require(Action::WorkTickets, "change tickets")?;
    // The new assignee, validated here, also names the history entry and gets the mail.
    let (new, new_assignee) = normalise_value(tx, ctx, field, new).await?;
    let ticket = tickets::get(tx, ticket_id).await?;
    if ticket.merged_into_id.is_some() {
        return Err(ActionError::Invalid {
            field: field.as_str(),
            message: format!("ticket #{ticket_id} was merged into another ticket"),
        });
    }
    let current = current_value(&ticket, field);
    let expected = match expected {
        Expected::Anything => current.clone(),
        Expected::Value(v) => v,
    };
    if expected == new && current == new {
        return Ok(false);
    }
    let changed = tickets::set_if_unchanged(
        tx,
        ticket_id,
        field,
        expected.as_deref(),
        new.as_deref(),
        ctx.now,
    )
    .await?;
    if !changed {
        let shown = display_value(tx, field, current.as_deref()).await?;
        return Err(ActionError::Conflict {
            field: field.as_str(),
            message: format!(
                "someone else changed the {} to {} since you opened the ticket; nothing was overwritten",
                field.as_str(),
                shown.as_deref().unwrap_or("(none)")
            ),
            current,
        });
    }
    let old_shown = display_value(tx, field, expected.as_deref()).await?;
    let new_shown = match &new_assignee {
        Some(user) => Some(user.name.clone()),
        None => display_value(tx, field, new.as_deref()).await?,
    };
    events::record(
        tx,
        &events::NewEvent {
            ticket_id,
            user_id: Some(actor.user.id),
            field: field.as_str(),
            old_value: old_shown.as_deref(),
            new_value: new_shown.as_deref(),
        },
        ctx.now,
    )
    .await?;
    if let Some(outbound) = ctx.outbound {
        match field {
            Field::Status if new.as_deref() == Some(TicketStatus::Resolved.as_str()) => {
                crate::outbound::notice_resolved(tx, outbound, ticket_id, ctx.now).await?;
            }
            Field::Assignee => {
                if let Some(assignee) = &new_assignee {
                    crate::outbound::notify_assignment(
                        tx,
                        outbound,
                        ticket_id,
                        assignee,
                        &actor.user.email,
                        ctx.now,
                    )
                    .await?;
                }
            }
            _ => {}
        }
    }
    Ok(true)
}

pub fn current_value(ticket: &tickets::Ticket, field: Field) -> Option<String> {
    match field {
        Field::Status => Some(ticket.status.to_string()),
        Field::Priority => Some(ticket.priority.to_string()),
        Field::Category => Some(ticket.category.clone()),
        Field::Assignee => ticket.assignee_id.map(|id| id.to_string()),
    }
}

/// The canonical stored form of a new value (with the user, for an assignee), or why
/// it is not one.
async fn normalise_value(
    tx: &mut Tx,
    ctx: &Context<'_>,
    field: Field,
    value: Option<&str>,
) -> Result<(Option<String>, Option<users::User>)> {
    let value = value.map(str::trim).filter(|v| !v.is_empty());
    let invalid = |message: String| ActionError::Invalid {
        field: field.as_str(),
        message,
    };
    match field {
        Field::Status => {
            let text = value.ok_or_else(|| invalid("a status is required".into()))?;
            let status = text
                .parse::<TicketStatus>()
                .map_err(|e| invalid(e.to_string()))?;
            Ok((Some(status.as_str().into()), None))
        }
        Field::Priority => {
            let text = value.ok_or_else(|| invalid("a priority is required".into()))?;
            let priority = text
                .parse::<Priority>()
                .map_err(|e| invalid(e.to_string()))?;
            Ok((Some(priority.as_str().into()), None))
        }
        Field::Category => {
            let text = value.ok_or_else(|| invalid("a category is required".into()))?;
            if !ctx.categories.iter().any(|c| c == text) {
                return Err(invalid(format!(
                    "{text:?} is not a category (expected one of: {})",
                    ctx.categories.join(", ")
                )));
            }
            Ok((Some(text.into()), None))
        }
        Field::Assignee => {
            let Some(text) = value else {
                return Ok((None, None));
            };
            let id = text
                .parse::<i64>()
                .map_err(|_| invalid(format!("{text:?} is not a user")))?;
            match users::get(tx, id).await {
                Ok(user) if user.active == 1 => Ok((Some(id.to_string()), Some(user))),
                Ok(user) => Err(invalid(format!("{} is disabled", user.email))),
                Err(StoreError::NotFound(_)) => Err(invalid(format!("no user {id}"))),
                Err(e) => Err(e.into()),
            }
        }
    }
}

/// How a value reads in the history: assignees by name, the rest as stored.
async fn display_value(tx: &mut Tx, field: Field, value: Option<&str>) -> Result<Option<String>> {
    match (field, value.and_then(|v| v.parse::<i64>().ok())) {
        (Field::Assignee, Some(id)) => Ok(Some(match users::get(tx, id).await {
            Ok(user) => user.name,
            Err(_) => format!("user {id}"),
        })),
        _ => Ok(value.map(str::to_string)),
    }
}

/// A public reply to the customer (and the Cc participants, plus any `extra_cc`, who
/// become participants), sent through the outbox. Returns how many mails were queued.
pub async fn reply(
    tx: &mut Tx,
    ctx: &Context<'_>,
    actor: &Actor,
    ticket_id: i64,
    body: &str,
    extra_cc: &[String],
) -> Result<usize> {
    actor.require(Action::WorkTickets, "reply to customers")?;
    if body.trim().is_empty() {
        return Err(ActionError::Invalid {
            field: "body",
            message: "the reply is empty".into(),
        });
    }
    let outbound = ctx.outbound.ok_or(ActionError::Invalid {
        field: "body",
        message: "outgoing mail is not set up ([smtp] in config.toml): replies cannot be sent"
            .into(),
    })?;
    ensure_open_ticket(tx, ticket_id).await?;
    let mut cc = Vec::new();
    for raw in extra_cc {
        let email = address::normalize(raw);
        if !address::is_valid(&email) {
            return Err(ActionError::Invalid {
                field: "cc",
                message: format!("{raw:?} is not an e-mail address"),
            });
        }
        if !address::may_send_to(&email, &outbound.own_addresses) {
            return Err(ActionError::Invalid {
                field: "cc",
                message: format!("{email} is one of our own or a machine address"),
            });
        }
        cc.push(email);
    }
    let people: Vec<(&str, Option<&str>, ParticipantRole)> = cc
        .iter()
        .map(|e| (e.as_str(), None, ParticipantRole::Cc))
        .collect();
    tickets::add_participants(tx, ticket_id, &people, ctx.now).await?;
    let queued =
        crate::outbound::relay_staff_reply(tx, outbound, ticket_id, &actor.user, body, ctx.now)
            .await?;
    if queued == 0 {
        return Err(ActionError::Invalid {
            field: "body",
            message: "no recipient may be written to (suppressed after a bounce, over the hourly limit, or staff replies are switched off)".into(),
        });
    }
    tickets::touch(tx, ticket_id, ctx.now).await?;
    Ok(queued)
}

/// An internal note: staff see it, the customer never does.
pub async fn note(
    tx: &mut Tx,
    ctx: &Context<'_>,
    actor: &Actor,
    ticket_id: i64,
    body: &str,
) -> Result<i64> {
    actor.require(Action::WorkTickets, "write notes")?;
    let body = body.trim();
    if body.is_empty() {
        return Err(ActionError::Invalid {
            field: "body",
            message: "the note is empty".into(),
        });
    }
    let ticket = ensure_open_ticket(tx, ticket_id).await?;
    let nonce = crate::domain::secret::random_token();
    let content_sha256 = crate::mail::hash::sha256_hex(format!("{nonce}\n{body}").as_bytes());
    let message_id = format!("note.{nonce}@portal.maildesk.invalid");
    let id = messages::insert(
        tx,
        &messages::NewMessage {
            ticket_id,
            direction: Direction::Inbound,
            kind: MessageKind::Note,
            automatic_reason: None,
            from_email: &actor.user.email,
            from_name: Some(&actor.user.name),
            to_addrs: "[]",
            cc_addrs: "[]",
            reply_to: "[]",
            subject: &ticket.subject,
            message_id: &message_id,
            in_reply_to: "",
            references_ids: "",
            text_body: body,
            html_body: None,
            raw_sha256: None,
            content_sha256: &content_sha256,
            mailbox: None,
            source: "portal",
            sent_at: Some(ctx.now),
            author_user_id: Some(actor.user.id),
            unverified: false,
        },
        ctx.now,
    )
    .await?;
    tickets::touch(tx, ticket_id, ctx.now).await?;
    Ok(id)
}

/// Deletes a ticket and what only it holds (admins; see `store::tickets::delete`). A
/// ticket merged into another is deleted through its target, or on its own if asked.
pub async fn delete_ticket(tx: &mut Tx, actor: &Actor, id: i64) -> Result<tickets::Deleted> {
    actor.require(Action::DeleteTickets, "delete tickets")?;
    let deleted = match tickets::delete(tx, id).await {
        Err(StoreError::NotFound(_)) => return Err(ActionError::NotFound(format!("ticket #{id}"))),
        other => other?,
    };
    tracing::info!(
        ticket_id = id,
        by = %actor.user.email,
        tickets = ?deleted.tickets,
        messages = deleted.messages,
        "ticket deleted"
    );
    Ok(deleted)
}

/// Merges `source` into `target`: messages, participants, references and outgoing mail
/// move; `source` is closed and points at `target`; both histories say so.
pub async fn merge(
    tx: &mut Tx,
    ctx: &Context<'_>,
    actor: &Actor,
    source: i64,
    target: i64,
) -> Result<()> {
    actor.require(Action::MergeTickets, "merge tickets")?;
    let invalid = |message: String| ActionError::Invalid {
        field: "target",
        message,
    };
    if source == target {
        return Err(invalid("a ticket cannot be merged into itself".into()));
    }
    ensure_open_ticket(tx, source).await?;
    match tickets::get(tx, target).await {
        Ok(t) if t.merged_into_id.is_some() => {
            return Err(invalid(format!(
                "ticket #{target} was itself merged into #{}",
                t.merged_into_id.unwrap_or_default()
            )))
        }
        Ok(_) => {}
        Err(StoreError::NotFound(_)) => {
            return Err(invalid(format!("there is no ticket #{target}")))
        }
        Err(e) => return Err(e.into()),
    }
    tickets::merge(tx, source, target, ctx.now).await?;
    for (ticket_id, old, new) in [
        (target, format!("#{source}"), format!("#{target}")),
        (source, format!("#{source}"), format!("#{target}")),
    ] {
        events::record(
            tx,
            &events::NewEvent {
                ticket_id,
                user_id: Some(actor.user.id),
                field: "merge",
                old_value: Some(&old),
                new_value: Some(&new),
            },
            ctx.now,
        )
        .await?;
    }
    Ok(())
}

async fn ensure_open_ticket(tx: &mut Tx, ticket_id: i64) -> Result<tickets::Ticket> {
    let ticket = tickets::get(tx, ticket_id).await?;
    if let Some(target) = ticket.merged_into_id {
        return Err(ActionError::Invalid {
            field: "ticket",
            message: format!("ticket #{ticket_id} was merged into #{target}; work on #{target}"),
        });
    }
    Ok(ticket)
}

/// A customer on their own ticket page says it is solved (an open ticket becomes
/// resolved) or that it is not (a resolved or closed one opens again): the only changes
/// a customer makes besides writing. Recorded in the history under their address.
/// Returns whether anything changed.
pub async fn customer_set_solved(
    tx: &mut Tx,
    ctx: &Context<'_>,
    ticket_id: i64,
    customer_email: &str,
    solved: bool,
) -> Result<bool> {
    let ticket = ensure_open_ticket(tx, ticket_id).await?;
    let current = ticket.status;
    let finished = matches!(current, TicketStatus::Resolved | TicketStatus::Closed);
    let new = match (solved, finished) {
        (true, false) => TicketStatus::Resolved,
        (false, true) => TicketStatus::Open,
        _ => return Ok(false),
    };
    let changed = tickets::set_if_unchanged(
        tx,
        ticket_id,
        Field::Status,
        Some(current.as_str()),
        Some(new.as_str()),
        ctx.now,
    )
    .await?;
    if changed {
        let event = events::NewEvent {
            ticket_id,
            user_id: None,
            field: Field::Status.as_str(),
            old_value: Some(current.as_str()),
            new_value: Some(new.as_str()),
        };
        events::record_by_customer(tx, &event, customer_email, ctx.now).await?;
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: Role) -> users::User {
        users::User {
            id: 1,
            email: "ada@example.com".into(),
            name: "Ada".into(),
            role,
            password_hash: String::new(),
            active: 1,
            created_at: 0,
        }
    }

    #[test]
    fn a_ceiling_holds_an_admin_down_and_never_raises_staff() {
        let full = Actor::with_role(user(Role::Admin));
        assert_eq!(full.role(), Role::Admin);
        assert!(full.require(Action::DeleteAnyTask, "x").is_ok());

        let capped = Actor::at_most(user(Role::Admin), Role::Staff);
        assert_eq!(capped.role(), Role::Staff);
        assert!(capped.may(Action::WorkTasks) && !capped.may(Action::DeleteAnyTask));
        assert!(matches!(
            capped.require(Action::DeleteAnyTask, "x"),
            Err(ActionError::BeyondScope(_))
        ));

        let staff = Actor::at_most(user(Role::Staff), Role::Admin);
        assert_eq!(staff.role(), Role::Staff);
        assert!(matches!(
            staff.require(Action::ManageUsers, "x"),
            Err(ActionError::Forbidden(_))
        ));
    }
}
