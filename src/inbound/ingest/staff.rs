//! Staff by e-mail (DESIGN.md "Staff by email"): a verified staff reply changes the
//! ticket through its command block and is relayed to the customer unless it is a note;
//! mail from a staff address without proof stays internal and does nothing.

use tracing::{info, warn};

use super::{insert_message, recipient_addresses, Ingestor, Origin, Sender, Writer};
use crate::domain::commands::{self, AssignTo, Command};
use crate::domain::signing::{self, SignedRef};
use crate::domain::threading::ThreadDecision;
use crate::domain::{authres, MessageKind, TicketStatus};
use crate::helpdesk::actions::{self, ActionError, Actor, Context, Expected};
use crate::mail::InboundMail;
use crate::store::tickets::Field;
use crate::store::{tickets, users, StoreError, Tx};

impl Ingestor {
    /// The staff user who provably wrote this mail about `ticket_id`: From (never
    /// Reply-To or Sender) is their address, and the mail answers a reference that only
    /// they were sent (a notification's Message-ID or reply address, signed for them and
    /// this ticket); with `helpdesk.trusted_authserv_id`, our MTA also saw an aligned
    /// DMARC or DKIM pass. A customer who forges a staff From has none of that.
    pub(super) async fn staff_proof(
        &self,
        tx: &mut Tx,
        mail: &InboundMail,
        sender: &Sender<'_>,
        ticket_id: i64,
    ) -> Result<Option<users::User>, StoreError> {
        if mail.automatic.is_some() || !mail.from_header {
            return Ok(None);
        }
        let Some(user) = sender.staff_user(tx).await? else {
            return Ok(None);
        };
        let Some(secret) = self.options.signing_secret.as_ref().map(|s| s.expose()) else {
            return Ok(None);
        };
        // References signed for this user, about this ticket or one merged into it.
        let signed_for_user: Vec<i64> = mail
            .referenced_ids()
            .into_iter()
            .filter_map(|id| signing::verify_message_id(secret, id))
            .chain(
                recipient_addresses(mail).filter_map(|a| signing::verify_reply_address(secret, a)),
            )
            .filter(|signed: &SignedRef| signed.staff_user == Some(user.id))
            .map(|signed| signed.ticket)
            .collect();
        let mut answers_their_mail = signed_for_user.contains(&ticket_id);
        for other in signed_for_user.iter().filter(|t| **t != ticket_id).take(4) {
            answers_their_mail =
                answers_their_mail || tickets::resolve_merged(tx, *other).await? == ticket_id;
        }
        if !answers_their_mail {
            warn!(ticket_id, sender = %sender.email, "mail from a staff address that answers none of that user's notifications: not trusted as staff");
            return Ok(None);
        }
        if let Some(authserv_id) = &self.options.trusted_authserv_id {
            let domain = sender.email.rsplit_once('@').map_or("", |(_, d)| d);
            if !authres::aligned_pass(&mail.authentication_results, authserv_id, domain) {
                warn!(ticket_id, sender = %sender.email, authserv_id, "staff mail without an aligned DMARC/DKIM pass from our mail server: not trusted as staff");
                return Ok(None);
            }
        }
        Ok(Some(user.clone()))
    }

    /// Mail from a staff address without proof (forged, or written outside a notification
    /// thread): kept on its ticket as an internal message marked unverified. It is never
    /// relayed, runs no command, changes no status and adds nobody.
    pub(super) async fn take_unverified_staff_mail(
        &self,
        tx: &mut Tx,
        mail: &InboundMail,
        sender: &Sender<'_>,
        origin: &Origin,
        decision: ThreadDecision,
        now: i64,
    ) -> Result<(i64, i64, bool), StoreError> {
        let (ticket_id, created) = match decision {
            ThreadDecision::Attach { ticket_id, .. } => {
                tickets::touch(tx, ticket_id, now).await?;
                (ticket_id, false)
            }
            ThreadDecision::NewTicket { linked_to } => (
                self.open_ticket(tx, mail, sender, origin, linked_to, now)
                    .await?,
                true,
            ),
        };
        warn!(ticket_id, sender = %sender.email, "mail from a staff address without proof of its sender: stored as an unverified internal message");
        let message_id = insert_message(
            tx,
            ticket_id,
            mail,
            origin,
            MessageKind::Note,
            Writer::UnverifiedStaff,
            now,
        )
        .await?;
        Ok((ticket_id, message_id, created))
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
        let message_id = insert_message(
            tx,
            ticket_id,
            mail,
            origin,
            kind,
            Writer::Staff(staff.id),
            now,
        )
        .await?;
        let resolved = self
            .run_staff_commands(tx, ticket_id, staff, &parsed.commands, now)
            .await?;
        info!(ticket_id, staff = %staff.email, note = parsed.note, commands = parsed.commands.len(), "staff mail taken in");
        if let Some(outbound) = &self.options.outbound {
            let relayed = if parsed.note {
                0
            } else {
                crate::outbound::relay_staff_reply(
                    tx,
                    outbound,
                    ticket_id,
                    staff,
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

    /// Runs a verified staff mail's command block through the same actions as the
    /// portal (same rules, same history). Returns whether the ticket was resolved. A
    /// command that cannot be carried out is logged and skipped; the mail is kept.
    async fn run_staff_commands(
        &self,
        tx: &mut Tx,
        ticket_id: i64,
        staff: &users::User,
        commands: &[Command],
        now: i64,
    ) -> Result<bool, StoreError> {
        let actor = Actor::with_role(staff.clone());
        // The resolved notice is the caller's (a relayed reply makes it unnecessary).
        let quiet = Context {
            outbound: None,
            categories: &[],
            now,
        };
        let with_mail = Context {
            outbound: self.options.outbound.as_ref(),
            categories: &[],
            now,
        };
        let mut resolved = false;
        for command in commands {
            let (ctx, field, value) = match command {
                Command::Status(status) => {
                    resolved = *status == TicketStatus::Resolved;
                    (&quiet, Field::Status, status.as_str().to_string())
                }
                Command::Priority(priority) => {
                    (&quiet, Field::Priority, priority.as_str().to_string())
                }
                Command::Assign(target) => {
                    let email = match target {
                        AssignTo::Me => staff.email.clone(),
                        AssignTo::Email(email) => email.clone(),
                    };
                    match users::find_active_by_email(tx, &email).await? {
                        Some(user) => (&with_mail, Field::Assignee, user.id.to_string()),
                        None => {
                            warn!(
                                ticket_id,
                                email, "#assign: no active staff user with that address"
                            );
                            continue;
                        }
                    }
                }
            };
            let outcome = actions::change_field(
                tx,
                ctx,
                &actor,
                ticket_id,
                field,
                Expected::Anything,
                Some(&value),
            )
            .await;
            match outcome {
                Ok(_) => {}
                Err(ActionError::Store(e)) => return Err(e),
                Err(e) => {
                    warn!(ticket_id, staff = %staff.email, error = %e, "staff command not carried out");
                    if field == Field::Status {
                        resolved = false;
                    }
                }
            }
        }
        Ok(resolved)
    }
}
