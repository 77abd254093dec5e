//! Which ticket does an inbound message belong to? (DESIGN.md, "Threading")
//!
//! The store looks up the candidates; this module decides. Rules, first match wins:
//! 1. Message-ID already stored → duplicate (decided in the store, before threading).
//! 2. In-Reply-To/References holds one of *our* signed outgoing Message-IDs (outbound issue).
//! 3. In-Reply-To/References holds any stored Message-ID of a ticket.
//! 4. A signed plus-address token in To/Cc/Delivered-To (outbound issue).
//! 5. The subject tag, only from the requester, a Cc participant or staff.
//! 6. Otherwise a new ticket; a reply reopens a resolved ticket, and a reply to a ticket
//!    closed longer than the window opens a new ticket linked to the old one.

use crate::domain::TicketStatus;

/// How a message was matched to an existing ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadRule {
    SignedReference,
    StoredReference,
    PlusAddress,
    SubjectTag,
}

/// What the decision needs to know about a candidate ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketFacts {
    pub id: i64,
    pub status: TicketStatus,
    pub closed_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThreadDecision {
    /// Add the message to this ticket; `new_status` is set when the reply moves it.
    Attach {
        ticket_id: i64,
        rule: ThreadRule,
        new_status: Option<TicketStatus>,
    },
    /// Open a ticket; `linked_to` names the long-closed ticket this reply belongs to.
    NewTicket { linked_to: Option<i64> },
}

/// The facts for one inbound message.
#[derive(Debug, Clone, Copy)]
pub struct Inbound {
    /// From a machine (auto-reply, bounce, list): it never changes a ticket's status.
    pub automatic: bool,
    pub now: i64,
    /// Seconds after closing during which a reply still reopens the ticket.
    pub reopen_window: i64,
}

/// A subject-tag candidate is only trusted from someone already on the ticket or staff,
/// so ticket numbers cannot be guessed to read or pollute someone else's conversation.
pub fn tag_accepted(sender_is_participant: bool, sender_is_staff: bool) -> bool {
    sender_is_participant || sender_is_staff
}

pub fn decide(candidate: Option<(TicketFacts, ThreadRule)>, inbound: Inbound) -> ThreadDecision {
    let Some((ticket, rule)) = candidate else {
        return ThreadDecision::NewTicket { linked_to: None };
    };
    let attach = |new_status| ThreadDecision::Attach {
        ticket_id: ticket.id,
        rule,
        new_status,
    };
    if inbound.automatic {
        return attach(None);
    }
    match ticket.status {
        TicketStatus::Open | TicketStatus::InProgress => attach(None),
        TicketStatus::Waiting | TicketStatus::Resolved => attach(Some(TicketStatus::Open)),
        TicketStatus::Closed => {
            let closed_at = ticket.closed_at.unwrap_or(inbound.now);
            if inbound.now - closed_at > inbound.reopen_window {
                ThreadDecision::NewTicket {
                    linked_to: Some(ticket.id),
                }
            } else {
                attach(Some(TicketStatus::Open))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn inbound(automatic: bool) -> Inbound {
        Inbound {
            automatic,
            now: 100 * DAY,
            reopen_window: 14 * DAY,
        }
    }

    fn ticket(status: TicketStatus, closed_at: Option<i64>) -> Option<(TicketFacts, ThreadRule)> {
        Some((
            TicketFacts {
                id: 7,
                status,
                closed_at,
            },
            ThreadRule::StoredReference,
        ))
    }

    #[test]
    fn no_candidate_opens_a_ticket() {
        assert_eq!(
            decide(None, inbound(false)),
            ThreadDecision::NewTicket { linked_to: None }
        );
    }

    #[test]
    fn open_ticket_keeps_its_status() {
        let decision = decide(ticket(TicketStatus::InProgress, None), inbound(false));
        assert_eq!(
            decision,
            ThreadDecision::Attach {
                ticket_id: 7,
                rule: ThreadRule::StoredReference,
                new_status: None
            }
        );
    }

    #[test]
    fn reply_reopens_resolved_and_waiting() {
        for status in [TicketStatus::Resolved, TicketStatus::Waiting] {
            let decision = decide(ticket(status, None), inbound(false));
            assert_eq!(
                decision,
                ThreadDecision::Attach {
                    ticket_id: 7,
                    rule: ThreadRule::StoredReference,
                    new_status: Some(TicketStatus::Open)
                }
            );
        }
    }

    #[test]
    fn recently_closed_reopens_long_closed_links() {
        let recent = decide(ticket(TicketStatus::Closed, Some(95 * DAY)), inbound(false));
        assert!(matches!(
            recent,
            ThreadDecision::Attach {
                new_status: Some(TicketStatus::Open),
                ..
            }
        ));
        let old = decide(ticket(TicketStatus::Closed, Some(50 * DAY)), inbound(false));
        assert_eq!(old, ThreadDecision::NewTicket { linked_to: Some(7) });
    }

    #[test]
    fn automatic_mail_never_moves_a_ticket() {
        for status in [TicketStatus::Resolved, TicketStatus::Closed] {
            let decision = decide(ticket(status, Some(0)), inbound(true));
            assert_eq!(
                decision,
                ThreadDecision::Attach {
                    ticket_id: 7,
                    rule: ThreadRule::StoredReference,
                    new_status: None
                }
            );
        }
    }

    #[test]
    fn tag_needs_a_known_sender() {
        assert!(tag_accepted(true, false));
        assert!(tag_accepted(false, true));
        assert!(!tag_accepted(false, false));
    }
}
