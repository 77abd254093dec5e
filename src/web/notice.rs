//! What a page says after a change ("Profile saved."): one of a fixed set of messages.
//! The redirect after a change names the message by a code (`done=password_changed`);
//! the only parameters are numbers (`n=`, `m=`, `k=`: ids and counts) and, for "Saved:
//! …", a list of field names from a fixed set (`fields=status,priority`). Nothing a
//! visitor writes into an address is ever shown: an unknown code, a missing or non-numeric
//! number, or an unknown field name means no notice at all (a link cannot put a stranger's
//! words on our page).

use axum::http::request::Parts;

use crate::domain::TaskStatus;

/// The field names a "Saved: …" notice may list (tickets' and tasks' fields).
const FIELDS: &[&str] = &[
    "status",
    "priority",
    "category",
    "assignee",
    "title",
    "description",
    "ticket",
    "due",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    // One's own account.
    PasswordChanged {
        other_sessions_ended: i64,
        tokens_revoked: i64,
    },
    ProfileSaved,
    SessionEnded,
    OtherSessionsEnded {
        ended: i64,
    },
    // Tokens, API clients, webhooks.
    TokenRevoked,
    ClientRevoked,
    DeliveryRequeued,
    WebhookDeleted,
    // Users and invitations.
    UserAdded,
    UserSaved,
    UserEnabled,
    UserDisabled {
        sessions_ended: i64,
        tokens_revoked: i64,
    },
    UserDeleted,
    NewPasswordSet {
        sessions_ended: i64,
        tokens_revoked: i64,
    },
    InvitationMailed,
    InvitationRevoked,
    // Quarantine.
    EntryBecameTicket {
        entry: i64,
        ticket: i64,
    },
    EntryAddedToTicket {
        entry: i64,
        ticket: i64,
    },
    EntryAlreadyStored {
        entry: i64,
        ticket: i64,
    },
    EntryStillQuarantined {
        entry: i64,
    },
    EntryDiscarded {
        entry: i64,
    },
    // Tickets and tasks.
    Saved {
        fields: Vec<&'static str>,
    },
    NothingToChange,
    ReplyQueued {
        recipients: i64,
    },
    NoteAdded,
    MergedHere {
        from: i64,
    },
    TicketDeleted {
        ticket: i64,
        messages: i64,
        attachments: i64,
    },
    CustomerLinksRevoked,
    BulkChanged {
        changes: i64,
        tickets: i64,
    },
    TaskCreated {
        task: i64,
    },
    TaskMarked {
        status: TaskStatus,
    },
    TaskDeleted {
        task: i64,
    },
    // The customer's own ticket page.
    MessageAdded,
    FollowUpMailed {
        ticket: i64,
    },
    FollowUpNotMailed {
        ticket: i64,
    },
    /// On the follow-up ticket's own page, where the customer was sent instead of a mail.
    FollowUpOpenedHere {
        ticket: i64,
    },
    MarkedSolved,
    OpenAgain,
}

/// The parameters a notice's text is built from, as the address carries them.
#[derive(Debug, Default, PartialEq, Eq)]
struct Params {
    numbers: [Option<i64>; 3],
    fields: Option<Vec<&'static str>>,
}

const NUMBER_KEYS: [&str; 3] = ["n", "m", "k"];

#[derive(Debug, PartialEq, Eq)]
enum Side {
    Staff,
    Customer,
    Both,
}

impl Notice {
    /// The message shown on the page.
    pub fn text(&self) -> String {
        use Notice::*;
        match self {
            PasswordChanged {
                other_sessions_ended,
                tokens_revoked,
            } => format!(
                "Password changed: {other_sessions_ended} other session(s) ended, {tokens_revoked} API token(s) revoked; OAuth clients acting as you must get a new access token."
            ),
            ProfileSaved => "Profile saved.".into(),
            SessionEnded => "Session ended.".into(),
            OtherSessionsEnded { ended } => format!("{ended} other session(s) ended."),
            TokenRevoked => "Token revoked: it no longer works.".into(),
            ClientRevoked => "Client revoked: its tokens no longer work.".into(),
            DeliveryRequeued => "Delivery queued again.".into(),
            WebhookDeleted => "Webhook deleted.".into(),
            UserAdded => "User added.".into(),
            UserSaved => "User saved.".into(),
            UserEnabled => "User enabled. API tokens revoked earlier stay revoked.".into(),
            UserDisabled {
                sessions_ended,
                tokens_revoked,
            } => format!(
                "User disabled: {sessions_ended} session(s) ended, {tokens_revoked} API token(s) revoked; OAuth clients acting as them stop."
            ),
            UserDeleted => "User deleted.".into(),
            NewPasswordSet {
                sessions_ended,
                tokens_revoked,
            } => format!(
                "New password set: {sessions_ended} session(s) ended, {tokens_revoked} API token(s) revoked; OAuth clients acting as this user must get a new access token."
            ),
            InvitationMailed => "Invitation mailed.".into(),
            InvitationRevoked => "Invitation revoked.".into(),
            EntryBecameTicket { entry, ticket } => format!("Entry {entry} became ticket #{ticket}."),
            EntryAddedToTicket { entry, ticket } => {
                format!("Entry {entry} was added to ticket #{ticket}.")
            }
            EntryAlreadyStored { entry, ticket } => {
                format!("Entry {entry} was already stored, on ticket #{ticket}.")
            }
            EntryStillQuarantined { entry } => {
                format!("Entry {entry} is still quarantined; the reason is shown below.")
            }
            EntryDiscarded { entry } => format!("Entry {entry} discarded (its raw message is kept)."),
            Saved { fields } => format!("Saved: {}.", fields.join(", ")),
            NothingToChange => "Nothing to change.".into(),
            ReplyQueued { recipients } => format!("Reply queued for {recipients} recipient(s)."),
            NoteAdded => "Note added.".into(),
            MergedHere { from } => format!("Ticket #{from} was merged into this ticket."),
            TicketDeleted { ticket, messages, attachments } => format!(
                "Ticket #{ticket} deleted, with {messages} message(s) and {attachments} attachment(s)."
            ),
            CustomerLinksRevoked => "Customer links revoked: the links in earlier mail no longer open this ticket. New mail carries new links.".into(),
            BulkChanged { changes, tickets } => {
                format!("{changes} change(s) made to {tickets} ticket(s)")
            }
            TaskCreated { task } => format!("Task #{task} created."),
            TaskMarked { status } => {
                format!("Marked {}.", crate::helpdesk::tasks::status_label(status.as_str()))
            }
            TaskDeleted { task } => format!("Task #{task} deleted."),
            MessageAdded => "Your message was added to the ticket.".into(),
            FollowUpMailed { ticket } => format!(
                "This ticket was closed a while ago, so your message opened a new ticket (#{ticket}); we have e-mailed you a confirmation."
            ),
            FollowUpNotMailed { ticket } => format!(
                "This ticket was closed a while ago, so your message opened a new ticket (#{ticket}). We could not e-mail you a confirmation this time: please note the number."
            ),
            FollowUpOpenedHere { ticket } => format!(
                "Your ticket was closed a while ago, so your message opened this new ticket (#{ticket}). We could not e-mail you a confirmation this time: keep this page's address to follow it."
            ),
            MarkedSolved => "Thank you. The ticket is marked as solved.".into(),
            OpenAgain => "The ticket is open again. Tell us below what is still wrong.".into(),
        }
    }

    /// Which pages show the notice: a code copied into the other side's address shows
    /// nothing there.
    fn side(&self) -> Side {
        use Notice::*;
        match self {
            MessageAdded
            | FollowUpMailed { .. }
            | FollowUpNotMailed { .. }
            | FollowUpOpenedHere { .. }
            | MarkedSolved
            | OpenAgain => Side::Customer,
            NothingToChange => Side::Both,
            _ => Side::Staff,
        }
    }

    /// The text for a staff page, unless the notice is one of the customer page's.
    pub fn staff_text(self) -> Option<String> {
        (self.side() != Side::Customer).then(|| self.text())
    }

    /// The text for the customer's ticket page, if the notice is one of its own.
    pub fn customer_text(self) -> Option<String> {
        (self.side() != Side::Staff).then(|| self.text())
    }

    /// The code and the parameters, as the address carries them.
    fn encode(&self) -> (String, Params) {
        use Notice::*;
        let numbers = |values: &[i64]| {
            let mut numbers = [None; 3];
            for (slot, value) in numbers.iter_mut().zip(values) {
                *slot = Some(*value);
            }
            Params {
                numbers,
                fields: None,
            }
        };
        let none = Params::default();
        let (code, params) = match self {
            PasswordChanged {
                other_sessions_ended,
                tokens_revoked,
            } => (
                "password_changed",
                numbers(&[*other_sessions_ended, *tokens_revoked]),
            ),
            ProfileSaved => ("profile_saved", none),
            SessionEnded => ("session_ended", none),
            OtherSessionsEnded { ended } => ("other_sessions_ended", numbers(&[*ended])),
            TokenRevoked => ("token_revoked", none),
            ClientRevoked => ("client_revoked", none),
            DeliveryRequeued => ("delivery_requeued", none),
            WebhookDeleted => ("webhook_deleted", none),
            UserAdded => ("user_added", none),
            UserSaved => ("user_saved", none),
            UserEnabled => ("user_enabled", none),
            UserDisabled {
                sessions_ended,
                tokens_revoked,
            } => (
                "user_disabled",
                numbers(&[*sessions_ended, *tokens_revoked]),
            ),
            UserDeleted => ("user_deleted", none),
            NewPasswordSet {
                sessions_ended,
                tokens_revoked,
            } => ("password_set", numbers(&[*sessions_ended, *tokens_revoked])),
            InvitationMailed => ("invitation_mailed", none),
            InvitationRevoked => ("invitation_revoked", none),
            EntryBecameTicket { entry, ticket } => ("entry_ticket", numbers(&[*entry, *ticket])),
            EntryAddedToTicket { entry, ticket } => ("entry_added", numbers(&[*entry, *ticket])),
            EntryAlreadyStored { entry, ticket } => {
                ("entry_duplicate", numbers(&[*entry, *ticket]))
            }
            EntryStillQuarantined { entry } => ("entry_quarantined", numbers(&[*entry])),
            EntryDiscarded { entry } => ("entry_discarded", numbers(&[*entry])),
            Saved { fields } => (
                "saved",
                Params {
                    fields: Some(fields.clone()),
                    ..Params::default()
                },
            ),
            NothingToChange => ("unchanged", none),
            ReplyQueued { recipients } => ("reply_queued", numbers(&[*recipients])),
            NoteAdded => ("note_added", none),
            MergedHere { from } => ("merged", numbers(&[*from])),
            TicketDeleted {
                ticket,
                messages,
                attachments,
            } => (
                "ticket_deleted",
                numbers(&[*ticket, *messages, *attachments]),
            ),
            CustomerLinksRevoked => ("links_revoked", none),
            BulkChanged { changes, tickets } => ("bulk_changed", numbers(&[*changes, *tickets])),
            TaskCreated { task } => ("task_created", numbers(&[*task])),
            TaskMarked { status } => return (format!("marked_{}", status.as_str()), none),
            TaskDeleted { task } => ("task_deleted", numbers(&[*task])),
            MessageAdded => ("message_added", none),
            FollowUpMailed { ticket } => ("follow_up_mailed", numbers(&[*ticket])),
            FollowUpNotMailed { ticket } => ("follow_up", numbers(&[*ticket])),
            FollowUpOpenedHere { ticket } => ("follow_up_here", numbers(&[*ticket])),
            MarkedSolved => ("solved", none),
            OpenAgain => ("reopened", none),
        };
        (code.to_string(), params)
    }

    /// The notice a code and its parameters name; `None` for anything else.
    fn decode(code: &str, params: &Params) -> Option<Notice> {
        use Notice::*;
        let [n, m, k] = params.numbers;
        Some(match code {
            "password_changed" => PasswordChanged {
                other_sessions_ended: n?,
                tokens_revoked: m?,
            },
            "profile_saved" => ProfileSaved,
            "session_ended" => SessionEnded,
            "other_sessions_ended" => OtherSessionsEnded { ended: n? },
            "token_revoked" => TokenRevoked,
            "client_revoked" => ClientRevoked,
            "delivery_requeued" => DeliveryRequeued,
            "webhook_deleted" => WebhookDeleted,
            "user_added" => UserAdded,
            "user_saved" => UserSaved,
            "user_enabled" => UserEnabled,
            "user_disabled" => UserDisabled {
                sessions_ended: n?,
                tokens_revoked: m?,
            },
            "user_deleted" => UserDeleted,
            "password_set" => NewPasswordSet {
                sessions_ended: n?,
                tokens_revoked: m?,
            },
            "invitation_mailed" => InvitationMailed,
            "invitation_revoked" => InvitationRevoked,
            "entry_ticket" => EntryBecameTicket {
                entry: n?,
                ticket: m?,
            },
            "entry_added" => EntryAddedToTicket {
                entry: n?,
                ticket: m?,
            },
            "entry_duplicate" => EntryAlreadyStored {
                entry: n?,
                ticket: m?,
            },
            "entry_quarantined" => EntryStillQuarantined { entry: n? },
            "entry_discarded" => EntryDiscarded { entry: n? },
            "saved" => Saved {
                fields: params.fields.clone()?,
            },
            "unchanged" => NothingToChange,
            "reply_queued" => ReplyQueued { recipients: n? },
            "note_added" => NoteAdded,
            "merged" => MergedHere { from: n? },
            "ticket_deleted" => TicketDeleted {
                ticket: n?,
                messages: m?,
                attachments: k?,
            },
            "links_revoked" => CustomerLinksRevoked,
            "bulk_changed" => BulkChanged {
                changes: n?,
                tickets: m?,
            },
            "task_created" => TaskCreated { task: n? },
            "task_deleted" => TaskDeleted { task: n? },
            "message_added" => MessageAdded,
            "follow_up_mailed" => FollowUpMailed { ticket: n? },
            "follow_up" => FollowUpNotMailed { ticket: n? },
            "follow_up_here" => FollowUpOpenedHere { ticket: n? },
            "solved" => MarkedSolved,
            "reopened" => OpenAgain,
            other => TaskMarked {
                status: task_status(other.strip_prefix("marked_")?)?,
            },
        })
    }

    /// The query pairs that name this notice (`done=…`, then its parameters).
    pub fn query(&self) -> String {
        let (code, params) = self.encode();
        let mut out = form_urlencoded::Serializer::new(String::new());
        out.append_pair("done", &code);
        for (key, value) in NUMBER_KEYS.iter().zip(params.numbers) {
            if let Some(value) = value {
                out.append_pair(key, &value.to_string());
            }
        }
        if let Some(fields) = params.fields {
            out.append_pair("fields", &fields.join(","));
        }
        out.finish()
    }

    /// The notice a page's query string names, if it names one of ours exactly.
    pub fn from_query(query: &str) -> Option<Notice> {
        let mut code = None;
        let mut params = Params::default();
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match key.as_ref() {
                "done" => code = Some(value.into_owned()),
                "fields" => params.fields = Some(known_fields(&value)?),
                key => {
                    if let Some(slot) = NUMBER_KEYS.iter().position(|k| *k == key) {
                        params.numbers[slot] = Some(number(&value)?);
                    }
                }
            }
        }
        Notice::decode(&code?, &params)
    }
}

/// A count or an id: digits only.
fn number(text: &str) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A comma-separated list of field names, each one we know (as our own `&'static str`,
/// so the text shown is never the address's).
fn known_fields(list: &str) -> Option<Vec<&'static str>> {
    let fields = list
        .split(',')
        .map(|name| FIELDS.iter().copied().find(|known| *known == name))
        .collect::<Option<Vec<_>>>()?;
    (!fields.is_empty()).then_some(fields)
}

fn task_status(text: &str) -> Option<TaskStatus> {
    TaskStatus::ALL.iter().copied().find(|s| s.as_str() == text)
}

/// A page's notice from its address: `Option<Notice>` in a handler's arguments (never a
/// rejection: whatever is not one of ours is simply no notice).
impl<S: Send + Sync> axum::extract::OptionalFromRequestParts<S> for Notice {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Notice>, Self::Rejection> {
        Ok(parts.uri.query().and_then(Notice::from_query))
    }
}

/// `page` with the notice added to its query (`page` may carry a query of its own).
pub fn link(page: &str, notice: &Notice) -> String {
    let joiner = match page.split_once('?') {
        None => "?",
        Some((_, "")) => "",
        Some(_) => "&",
    };
    format!("{page}{joiner}{}", notice.query())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One of each notice.
    fn every_notice() -> Vec<Notice> {
        use Notice::*;
        let mut all = vec![
            PasswordChanged {
                other_sessions_ended: 2,
                tokens_revoked: 1,
            },
            ProfileSaved,
            SessionEnded,
            OtherSessionsEnded { ended: 3 },
            TokenRevoked,
            ClientRevoked,
            DeliveryRequeued,
            WebhookDeleted,
            UserAdded,
            UserSaved,
            UserEnabled,
            UserDisabled {
                sessions_ended: 1,
                tokens_revoked: 2,
            },
            UserDeleted,
            NewPasswordSet {
                sessions_ended: 1,
                tokens_revoked: 0,
            },
            InvitationMailed,
            InvitationRevoked,
            EntryBecameTicket {
                entry: 4,
                ticket: 12,
            },
            EntryAddedToTicket {
                entry: 4,
                ticket: 12,
            },
            EntryAlreadyStored {
                entry: 4,
                ticket: 12,
            },
            EntryStillQuarantined { entry: 4 },
            EntryDiscarded { entry: 4 },
            Saved {
                fields: vec!["status", "assignee"],
            },
            NothingToChange,
            ReplyQueued { recipients: 2 },
            NoteAdded,
            MergedHere { from: 7 },
            TicketDeleted {
                ticket: 9,
                messages: 3,
                attachments: 0,
            },
            CustomerLinksRevoked,
            BulkChanged {
                changes: 6,
                tickets: 3,
            },
            TaskCreated { task: 1 },
            TaskDeleted { task: 1 },
            MessageAdded,
            FollowUpMailed { ticket: 42 },
            FollowUpNotMailed { ticket: 42 },
            FollowUpOpenedHere { ticket: 42 },
            MarkedSolved,
            OpenAgain,
        ];
        all.extend(TaskStatus::ALL.iter().map(|&status| TaskMarked { status }));
        all
    }

    #[test]
    fn every_notice_round_trips_through_its_address() {
        let mut codes = std::collections::HashSet::new();
        for notice in every_notice() {
            let query = notice.query();
            assert_eq!(Notice::from_query(&query), Some(notice.clone()), "{query}");
            assert!(!notice.text().is_empty());
            assert!(codes.insert(notice.encode().0), "one code each: {query}");
            // The page's own filters may come first.
            let page = link("/portal/tickets?status=open", &notice);
            let (_, shown) = page.split_once('?').unwrap();
            assert_eq!(Notice::from_query(shown), Some(notice));
        }
    }

    #[test]
    fn texts_keep_their_wording_and_embed_only_numbers() {
        let text = |query: &str| Notice::from_query(query).map(|n| n.text());
        assert_eq!(
            text("done=saved&fields=status%2Cpriority").as_deref(),
            Some("Saved: status, priority.")
        );
        assert_eq!(
            text("done=reply_queued&n=1").as_deref(),
            Some("Reply queued for 1 recipient(s).")
        );
        assert_eq!(
            text("done=marked_in_progress").as_deref(),
            Some("Marked in progress.")
        );
        assert_eq!(
            text("done=ticket_deleted&n=9&m=3&k=0").as_deref(),
            Some("Ticket #9 deleted, with 3 message(s) and 0 attachment(s).")
        );
        assert_eq!(
            text("done=entry_quarantined&n=4").as_deref(),
            Some("Entry 4 is still quarantined; the reason is shown below.")
        );
    }

    #[test]
    fn free_text_unknown_codes_and_bad_parameters_give_no_notice() {
        for query in [
            "",
            "done=",
            "done=Your+password+expired+call+0800",
            "done=Profile+saved.",
            "done=PROFILE_SAVED",
            "done=profile_saved%20",
            "done=marked_",
            "done=marked_In+progress",
            // Numbers only: words, signs, and a missing number give nothing.
            "done=task_created",
            "done=task_created&n=call+0800",
            "done=task_created&n=-1",
            "done=task_created&n=%2B1",
            "done=task_created&n=99999999999999999999999",
            "done=ticket_deleted&n=1&m=2",
            // Field names from our list only.
            "done=saved",
            "done=saved&fields=",
            "done=saved&fields=status%2Cyour+password+expired",
            "done=saved&fields=status,,priority",
            "fields=status&n=1",
        ] {
            assert_eq!(Notice::from_query(query), None, "{query}");
        }
    }

    #[test]
    fn every_field_of_tickets_and_tasks_can_be_listed() {
        use crate::store::tickets::Field as TicketField;
        let ticket_fields = [
            TicketField::Status,
            TicketField::Priority,
            TicketField::Category,
            TicketField::Assignee,
        ]
        .map(TicketField::as_str);
        let task_fields = crate::store::tasks::Field::ALL.map(|f| f.as_str());
        for name in ticket_fields.iter().chain(task_fields.iter()) {
            assert!(FIELDS.contains(name), "{name}");
        }
    }

    #[test]
    fn staff_and_customer_pages_show_only_their_own_notices() {
        assert_eq!(Notice::UserDeleted.customer_text(), None);
        assert_eq!(Notice::MarkedSolved.staff_text(), None);
        assert!(Notice::MarkedSolved.customer_text().is_some());
        assert!(Notice::NothingToChange.staff_text().is_some());
        assert!(Notice::NothingToChange.customer_text().is_some());
    }

    #[test]
    fn the_notice_joins_the_page_query() {
        assert_eq!(
            link("/portal/account", &Notice::ProfileSaved),
            "/portal/account?done=profile_saved"
        );
        assert_eq!(
            link("/portal/tickets?q=x", &Notice::NoteAdded),
            "/portal/tickets?q=x&done=note_added"
        );
        assert_eq!(
            link("/portal/tickets?", &Notice::TaskCreated { task: 3 }),
            "/portal/tickets?done=task_created&n=3"
        );
    }
}
