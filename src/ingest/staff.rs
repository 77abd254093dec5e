//! Staff by e-mail (DESIGN.md "Staff by email"): a verified staff reply changes the
//! ticket through its command block and is relayed to the customer unless it is a note.

use tracing::{info, warn};

use super::{insert_message, Ingestor, Origin, Sender};
use crate::domain::commands::{self, AssignTo, Command};
use crate::domain::threading::ThreadRule;
use crate::domain::{MessageKind, TicketStatus};
use crate::mail::InboundMail;
use crate::store::{tickets, users, StoreError, Tx};

impl Ingestor {
    /// A staff member's mail counts as staff work only when it answers one of our signed
    /// references (a notification or our reply): a forged From alone is a customer mail.
    pub(super) async fn verified_staff(
        &self,
        tx: &mut Tx,
        mail: &InboundMail,
        sender: &Sender<'_>,
        rule: ThreadRule,
    ) -> Result<Option<users::User>, StoreError> {
        if mail.automatic.is_some() || !sender.is_staff(tx).await? {
            return Ok(None);
        }
        if !matches!(rule, ThreadRule::SignedReference | ThreadRule::PlusAddress) {
            warn!(sender = %sender.email, "mail from a staff address without a signed reference: treated as a customer message");
            return Ok(None);
        }
        users::find_active_by_email(tx, &sender.email).await
    }

    /// Staff by e-mail: the command block changes the ticket; `#note` stays internal;
    /// anything else is relayed to the customer as a public reply.
    pub(super) async fn take_staff_mail(
        &self,
        tx: &mut Tx,
        ticket_id: i64,
        mail: &InboundMail,
        origin: &Origin,
        staff: &users::User,
        now: i64,
    ) -> Result<i64, StoreError> {
        let parsed = commands::parse_staff_mail(&crate::mail::quote::visible_text(&mail.text));
        for line in &parsed.rejected {
            warn!(ticket_id, staff = %staff.email, line, "staff command not understood");
        }
        tickets::touch(tx, ticket_id, now).await?;
        let kind = if parsed.note {
            MessageKind::Note
        } else {
            MessageKind::Public
        };
        let message_id = insert_message(tx, ticket_id, mail, origin, kind, now).await?;
        let mut resolved = false;
        for command in &parsed.commands {
            match command {
                Command::Status(status) => {
                    tickets::set_status(tx, ticket_id, *status, now).await?;
                    resolved = *status == TicketStatus::Resolved;
                }
                Command::Priority(priority) => {
                    tickets::set_priority(tx, ticket_id, *priority, now).await?
                }
                Command::Assign(target) => {
                    let email = match target {
                        AssignTo::Me => staff.email.clone(),
                        AssignTo::Email(email) => email.clone(),
                    };
                    match users::find_active_by_email(tx, &email).await? {
                        Some(user) => {
                            tickets::assign(tx, ticket_id, Some(user.id), now).await?;
                            if let Some(outbound) = &self.options.outbound {
                                crate::outbound::notify_assignment(
                                    tx,
                                    outbound,
                                    ticket_id,
                                    &user.email,
                                    &staff.email,
                                    now,
                                )
                                .await?;
                            }
                        }
                        None => warn!(
                            ticket_id,
                            email, "#assign: no active staff user with that address"
                        ),
                    }
                }
            }
        }
        info!(ticket_id, staff = %staff.email, note = parsed.note, commands = parsed.commands.len(), "staff mail taken in");
        if let Some(outbound) = &self.options.outbound {
            let relayed = if parsed.note {
                0
            } else {
                crate::outbound::relay_staff_reply(
                    tx,
                    outbound,
                    ticket_id,
                    &staff.name,
                    &parsed.body,
                    now,
                )
                .await?
            };
            if resolved && relayed == 0 {
                crate::outbound::notice_resolved(tx, outbound, ticket_id, now).await?;
            }
        }
        Ok(message_id)
    }
}
