//! Outgoing mail (DESIGN.md "Outbound"): what is queued, under which loop rules; the
//! worker that hands the outbox to the SMTP server lives in `worker`.

pub mod smtp;
mod worker;

pub use worker::{OutboxError, OutboxWorker, SendReport};

use tracing::{info, warn};

use crate::config::{Config, OutboundConfig};
use crate::domain::secret::Secret;
use crate::domain::{address, signing, Direction, MessageKind, ParticipantRole};
use crate::mail::compose::{self, Audience, Identity, Personal, Thread};
use crate::mail::{hash, InboundMail};
use crate::store::{messages, outbox, StoreError, Tx};

/// What the ingest path needs to queue mail; `None` without an `[smtp]` section.
#[derive(Debug, Clone)]
pub struct OutboundOptions {
    pub identity: Identity,
    pub limits: OutboundConfig,
    pub own_addresses: Vec<String>,
    /// Per mailbox: who hears of new tickets (absent: every active user).
    pub mailbox_notify: std::collections::HashMap<String, Vec<String>>,
    /// Mail to customers carries a link to their own ticket page (`web.public_url` set).
    pub customer_links: Option<CustomerLinks>,
}

/// Where customer links point, and how long they work.
#[derive(Debug, Clone)]
pub struct CustomerLinks {
    /// `web.public_url` without a trailing slash.
    pub base_url: String,
    pub days: u32,
}

impl CustomerLinks {
    /// Where links point when `web.public_url` is set (none without it: a link in a mail
    /// needs the address the portal is reached at).
    pub fn from_config(web: &crate::config::WebConfig) -> Option<Self> {
        web.public_url.as_ref().map(|url| CustomerLinks {
            base_url: url.trim_end_matches('/').to_string(),
            days: web.customer_link_days,
        })
    }

    /// The link for `email` to their page of `ticket`, signed with `secret` (valid for
    /// the configured days, until the ticket's links are revoked).
    pub fn link(
        &self,
        secret: &str,
        ticket: &crate::store::tickets::Ticket,
        email: &str,
        now: i64,
    ) -> String {
        let link = signing::CustomerLink {
            ticket: ticket.id,
            email: address::normalize(email),
            expires: now + i64::from(self.days) * 86_400,
        };
        let token = signing::customer_link(secret, &link, ticket.customer_link_epoch);
        format!("{}/t/{token}", self.base_url)
    }
}

impl OutboundOptions {
    /// The link for `email` to their page of `ticket`, when links are configured.
    pub fn customer_link(
        &self,
        ticket: &crate::store::tickets::Ticket,
        email: &str,
        now: i64,
    ) -> Option<String> {
        let links = self.customer_links.as_ref()?;
        Some(links.link(self.identity.secret.expose(), ticket, email, now))
    }
}

/// The outbox copy for one recipient (given the shared Message-ID), when it differs
/// from the stored copy: mail to customers with their own link in it.
type Personalise<'a> = &'a (dyn Fn(&str, &str) -> Option<Vec<u8>> + Sync);

impl OutboundOptions {
    pub fn from_config(config: &Config, secret: &Secret) -> Option<Self> {
        let smtp = config.smtp.as_ref()?;
        let support_address = config.helpdesk.support_addresses.first()?.clone();
        let from = smtp
            .from
            .clone()
            .unwrap_or_else(|| format!("{} <{support_address}>", config.helpdesk.name));
        Some(OutboundOptions {
            identity: Identity {
                helpdesk: config.helpdesk.name.clone(),
                from,
                support_address,
                subject_prefix: config.helpdesk.subject_prefix.clone(),
                secret: secret.clone(),
                plus_address_reply_to: config.outbound.plus_address_reply_to,
            },
            limits: config.outbound.clone(),
            own_addresses: config.helpdesk.support_addresses.clone(),
            mailbox_notify: config
                .mailboxes
                .iter()
                .filter_map(|m| Some((m.name.clone(), m.notify.clone()?)))
                .collect(),
            customer_links: CustomerLinks::from_config(&config.web),
        })
    }
}

/// The mail a customer's message causes, in the caller's transaction: the
/// acknowledgement of a new ticket and the staff notification (one read of the ticket).
pub async fn on_customer_mail(
    tx: &mut Tx,
    options: &OutboundOptions,
    ticket_id: i64,
    mail: &InboundMail,
    new_ticket: bool,
    send_acknowledgement: bool,
    now: i64,
) -> Result<(), StoreError> {
    let ctx = context(tx, ticket_id).await?;
    if new_ticket && send_acknowledgement {
        acknowledge(tx, options, &ctx, mail, now).await?;
    }
    notify_staff(tx, options, &ctx, mail, new_ticket, now).await?;
    Ok(())
}

/// Queues the acknowledgement of a new ticket, in the caller's transaction, unless the
/// loop rules say no: never for automatic mail (the caller checks), never to ourselves,
/// machines or no-reply addresses, and at most so many per sender and recipient per hour.
async fn acknowledge(
    tx: &mut Tx,
    options: &OutboundOptions,
    ctx: &TicketContext,
    mail: &InboundMail,
    now: i64,
) -> Result<Option<i64>, StoreError> {
    let (ticket_id, ticket_subject) = (ctx.ticket.id, ctx.ticket.subject.as_str());
    let Some(from) = &mail.from else {
        return Ok(None);
    };
    let recipient = address::normalize(&from.email);
    if !options.limits.acknowledgements || !address::may_send_to(&recipient, &options.own_addresses)
    {
        return Ok(None);
    }
    let acks = outbox::count_recent(
        tx,
        &recipient,
        Some("acknowledgement"),
        now - options.limits.rate_window_secs(),
    )
    .await?;
    let all = outbox::count_recent(
        tx,
        &recipient,
        None,
        now - options.limits.rate_window_secs(),
    )
    .await?;
    if acks >= i64::from(options.limits.acknowledgements_per_sender_per_hour)
        || all >= i64::from(options.limits.max_per_recipient_per_hour)
    {
        info!(ticket_id, recipient, "acknowledgement skipped: rate limit");
        return Ok(None);
    }
    let thread = Thread {
        ticket_id,
        ticket_subject,
        in_reply_to: Some(&mail.message_id),
        references: &mail.references,
    };
    let name = from.name.as_deref();
    let composed = compose::acknowledgement(
        &options.identity,
        &thread,
        &recipient,
        name,
        Personal::default(),
    );
    let personal = |to: &str, message_id: &str| {
        let link = options.customer_link(&ctx.ticket, to, now)?;
        let personal = Personal {
            link: Some(&link),
            message_id: Some(message_id),
        };
        compose::acknowledgement(&options.identity, &thread, to, name, personal)
            .ok()
            .map(|c| c.raw)
    };
    let queued = queue(
        tx,
        options,
        ticket_id,
        "acknowledgement",
        MessageKind::Automatic,
        &[recipient],
        composed,
        None,
        now,
        Some(&personal),
    )
    .await?;
    Ok((queued > 0).then_some(ticket_id))
}

/// Stores one outgoing message on its ticket and queues it for each recipient we may
/// write to (not ourselves, not machines; customer mail within the hourly limit). A mail
/// that could not be composed is recorded as failed for each of them, with the reason.
#[allow(clippy::too_many_arguments)]
async fn queue(
    tx: &mut Tx,
    options: &OutboundOptions,
    ticket_id: i64,
    kind: &str,
    stored_as: MessageKind,
    recipients: &[String],
    composed: Result<compose::Composed, compose::ComposeError>,
    author_user_id: Option<i64>,
    now: i64,
    personalise: Option<Personalise<'_>>,
) -> Result<usize, StoreError> {
    let mut allowed = Vec::new();
    for recipient in recipients {
        let recipient = address::normalize(recipient);
        if !address::may_send_to(&recipient, &options.own_addresses) || allowed.contains(&recipient)
        {
            continue;
        }
        if outbox::is_suppressed(tx, &recipient, now).await? {
            info!(
                ticket_id,
                recipient, kind, "not sent: the address hard-bounced recently"
            );
            continue;
        }
        let customer_facing = stored_as != MessageKind::Note;
        if customer_facing
            && outbox::count_recent(
                tx,
                &recipient,
                None,
                now - options.limits.rate_window_secs(),
            )
            .await?
                >= i64::from(options.limits.max_per_recipient_per_hour)
        {
            warn!(
                ticket_id,
                recipient, kind, "not sent: hourly limit for this recipient reached"
            );
            continue;
        }
        allowed.push(recipient);
    }
    if allowed.is_empty() {
        return Ok(0);
    }
    let composed = match composed {
        Ok(composed) => composed,
        Err(e) => {
            let reason = e.to_string();
            warn!(ticket_id, kind, error = %reason, "mail not composed; recorded as failed");
            for recipient in &allowed {
                let failed = outbox::FailedMail {
                    ticket_id: Some(ticket_id),
                    kind,
                    recipient,
                    envelope_from: &options.identity.envelope_from(),
                    reason: &reason,
                };
                outbox::record_failed(tx, &failed, now).await?;
            }
            return Ok(0);
        }
    };
    let people: Vec<crate::mail::Mailbox> = allowed
        .iter()
        .map(|email| crate::mail::Mailbox {
            email: email.clone(),
            name: None,
        })
        .collect();
    let content_sha256 = hash::sha256_hex(&composed.raw);
    let message_id = messages::insert(
        tx,
        &messages::NewMessage {
            ticket_id,
            direction: Direction::Outbound,
            kind: stored_as,
            automatic_reason: (stored_as == MessageKind::Automatic).then_some(kind),
            from_email: &options.identity.support_address,
            from_name: Some(&options.identity.helpdesk),
            to_addrs: &serde_json::to_string(&people).unwrap_or_default(),
            cc_addrs: "[]",
            reply_to: "[]",
            subject: &composed.subject,
            message_id: &composed.message_id,
            in_reply_to: "",
            references_ids: "",
            text_body: &composed.text,
            html_body: (!composed.html.is_empty()).then_some(composed.html.as_str()),
            raw_sha256: None,
            content_sha256: &content_sha256,
            mailbox: None,
            source: "outbound",
            sent_at: Some(now),
            author_user_id,
            unverified: false,
        },
        now,
    )
    .await?;
    for recipient in &allowed {
        let own_copy = personalise.and_then(|make| make(recipient, &composed.message_id));
        let mail = outbox::NewMail {
            ticket_id: Some(ticket_id),
            message_id: Some(message_id),
            kind,
            recipient,
            envelope_from: &options.identity.envelope_from(),
            message_id_header: &composed.message_id,
            raw: own_copy.as_deref().unwrap_or(&composed.raw),
        };
        outbox::enqueue(tx, &mail, now).await?;
        // Counted before the commit: a transaction rolled back (rare) still counts.
        crate::runtime::metrics::get().outbox_queued.inc();
    }
    Ok(allowed.len())
}

/// What the mails about a ticket need to know about it.
struct TicketContext {
    ticket: crate::store::tickets::Ticket,
    cc: Vec<(String, Option<String>)>,
    references: Vec<String>,
}

async fn context(tx: &mut Tx, ticket_id: i64) -> Result<TicketContext, StoreError> {
    let ticket = crate::store::tickets::get(tx, ticket_id).await?;
    let cc = crate::store::tickets::participants(tx, ticket_id)
        .await?
        .into_iter()
        .filter(|p| p.role == ParticipantRole::Cc)
        .map(|p| (p.email, p.name))
        .collect();
    let references = messages::message_ids_of_ticket(tx, ticket_id).await?;
    Ok(TicketContext {
        ticket,
        cc,
        references,
    })
}

impl TicketContext {
    fn thread<'a>(&'a self, in_reply_to: Option<&'a str>) -> Thread<'a> {
        Thread {
            ticket_id: self.ticket.id,
            ticket_subject: &self.ticket.subject,
            in_reply_to: in_reply_to.or(self.references.last().map(String::as_str)),
            references: &self.references,
        }
    }
}

/// The staff list of a mailbox: its `notify` setting, else every active user; with the
/// user id of each address that is an active user (their notifications carry their proof).
async fn staff_list(
    tx: &mut Tx,
    options: &OutboundOptions,
    mailbox: Option<&str>,
) -> Result<Vec<(String, Option<i64>)>, StoreError> {
    match mailbox.and_then(|m| options.mailbox_notify.get(m)) {
        Some(list) => {
            let mut staff = Vec::with_capacity(list.len());
            for email in list {
                let user =
                    crate::store::users::find_active_by_email(tx, &address::normalize(email))
                        .await?;
                staff.push((email.clone(), user.map(|u| u.id)));
            }
            Ok(staff)
        }
        None => Ok(crate::store::users::active_staff(tx)
            .await?
            .into_iter()
            .map(|(id, email)| (email, Some(id)))
            .collect()),
    }
}

fn audience_of(user_id: Option<i64>) -> Audience {
    user_id.map_or(Audience::Customer, |user_id| Audience::Staff { user_id })
}

/// Staff hear of a new ticket, or of a customer's reply (the assignee, else the staff list).
async fn notify_staff(
    tx: &mut Tx,
    options: &OutboundOptions,
    ctx: &TicketContext,
    mail: &InboundMail,
    new_ticket: bool,
    now: i64,
) -> Result<usize, StoreError> {
    let ticket_id = ctx.ticket.id;
    let enabled = if new_ticket {
        options.limits.new_ticket_notifications
    } else {
        options.limits.reply_notifications
    };
    if !enabled {
        return Ok(0);
    }
    let recipients = match (&ctx.ticket.assignee_email, new_ticket) {
        (Some(assignee), false) => vec![(assignee.clone(), ctx.ticket.assignee_id)],
        _ => staff_list(tx, options, ctx.ticket.mailbox.as_deref()).await?,
    };
    let headline = if new_ticket {
        "New ticket"
    } else {
        "The customer replied"
    };
    let customer = mail.from.as_ref().map_or_else(
        || "(no sender)".to_string(),
        |f| match &f.name {
            Some(name) => format!("{name} <{}>", f.email),
            None => f.email.clone(),
        },
    );
    let body = crate::mail::quote::visible_text(&mail.text);
    let thread = ctx.thread(Some(&mail.message_id));
    let mut queued = 0;
    for (staff, user_id) in recipients {
        let composed = compose::notification(
            &options.identity,
            &thread,
            (&staff, None),
            audience_of(user_id),
            headline,
            &customer,
            &body,
        );
        queued += queue(
            tx,
            options,
            ticket_id,
            "notification",
            MessageKind::Note,
            &[staff],
            composed,
            None,
            now,
            None,
        )
        .await?;
    }
    Ok(queued)
}

/// Suppresses the addresses a bounce reports as failed for good, but only those we sent
/// the returned mail to, and only when it is our mail (one of our signed Message-IDs):
/// a forged report must not silence anyone.
pub async fn record_bounce(
    tx: &mut Tx,
    options: &OutboundOptions,
    ticket_id: i64,
    mail: &InboundMail,
    now: i64,
) -> Result<(), StoreError> {
    let secret = options.identity.secret.expose();
    let ours: Vec<&str> = mail
        .bounced_message_ids
        .iter()
        .map(String::as_str)
        .filter(|id| signing::verify_message_id(secret, id).is_some())
        .collect();
    if ours.is_empty() {
        info!(ticket_id, report = %mail.message_id, "delivery report about mail we did not send: nothing suppressed");
        return Ok(());
    }
    let recipients = outbox::recipients_of(tx, &ours).await?;
    let until = now + i64::from(options.limits.bounce_suppress_days) * 86_400;
    for address in &mail.hard_bounced {
        if !recipients.contains(address) {
            warn!(ticket_id, address, report = %mail.message_id, "delivery report names an address the returned mail was not sent to: ignored");
            continue;
        }
        warn!(ticket_id, address, report = %mail.message_id, "hard bounce: suppressing mail to this address");
        outbox::suppress(
            tx,
            address,
            &format!("hard bounce ({})", mail.message_id),
            until,
            now,
        )
        .await?;
    }
    Ok(())
}

/// A staff member assigned by someone else hears of it.
pub async fn notify_assignment(
    tx: &mut Tx,
    options: &OutboundOptions,
    ticket_id: i64,
    assignee: &crate::store::users::User,
    by: &str,
    now: i64,
) -> Result<usize, StoreError> {
    if !options.limits.assignment_notifications || assignee.email == by {
        return Ok(0);
    }
    let ctx = context(tx, ticket_id).await?;
    let body = format!("{by} assigned this ticket to you.");
    let composed = compose::notification(
        &options.identity,
        &ctx.thread(None),
        (&assignee.email, None),
        Audience::Staff {
            user_id: assignee.id,
        },
        "Assigned to you",
        &ctx.ticket.requester_email,
        &body,
    );
    queue(
        tx,
        options,
        ticket_id,
        "notification",
        MessageKind::Note,
        std::slice::from_ref(&assignee.email),
        composed,
        None,
        now,
        None,
    )
    .await
}

/// Queues a mail to one staff member (or an invitee) that belongs to no ticket thread:
/// an invitation, a task assigned to them. `ticket_id` only files the outbox row under a
/// ticket for display. Same rules as every outgoing mail: never to our own addresses,
/// never to a suppressed one; a mail that cannot be composed is recorded as failed.
/// Returns how many were queued (0 or 1).
#[allow(clippy::too_many_arguments)]
pub async fn mail_person(
    tx: &mut Tx,
    options: &OutboundOptions,
    kind: &str,
    to: (&str, Option<&str>),
    subject: &str,
    text: String,
    ticket_id: Option<i64>,
    now: i64,
) -> Result<usize, StoreError> {
    let recipient = address::normalize(to.0);
    if !address::may_send_to(&recipient, &options.own_addresses) {
        return Ok(0);
    }
    if outbox::is_suppressed(tx, &recipient, now).await? {
        info!(
            ticket_id,
            recipient, kind, "not sent: the address hard-bounced recently"
        );
        return Ok(0);
    }
    let envelope_from = options.identity.envelope_from();
    match compose::standalone(&options.identity, (&recipient, to.1), subject, text) {
        Ok(composed) => {
            let mail = outbox::NewMail {
                ticket_id,
                message_id: None,
                kind,
                recipient: &recipient,
                envelope_from: &envelope_from,
                message_id_header: &composed.message_id,
                raw: &composed.raw,
            };
            outbox::enqueue(tx, &mail, now).await?;
            crate::runtime::metrics::get().outbox_queued.inc();
            Ok(1)
        }
        Err(e) => {
            let reason = e.to_string();
            warn!(ticket_id, kind, error = %reason, "mail not composed; recorded as failed");
            let failed = outbox::FailedMail {
                ticket_id,
                kind,
                recipient: &recipient,
                envelope_from: &envelope_from,
                reason: &reason,
            };
            outbox::record_failed(tx, &failed, now).await?;
            Ok(0)
        }
    }
}

/// Relays a staff member's reply to the customer and the Cc participants.
pub async fn relay_staff_reply(
    tx: &mut Tx,
    options: &OutboundOptions,
    ticket_id: i64,
    agent: &crate::store::users::User,
    body: &str,
    now: i64,
) -> Result<usize, StoreError> {
    if !options.limits.staff_replies || body.trim().is_empty() {
        return Ok(0);
    }
    let ctx = context(tx, ticket_id).await?;
    let requester = (
        ctx.ticket.requester_email.as_str(),
        ctx.ticket.requester_name.as_deref(),
    );
    let cc: Vec<(&str, Option<&str>)> = ctx
        .cc
        .iter()
        .map(|(e, n)| (e.as_str(), n.as_deref()))
        .collect();
    let thread = ctx.thread(None);
    let compose_for = |personal: Personal<'_>| {
        compose::reply(
            &options.identity,
            &thread,
            &[requester],
            &cc,
            &agent.name,
            body,
            personal,
        )
    };
    let personal = |to: &str, message_id: &str| {
        let link = options.customer_link(&ctx.ticket, to, now)?;
        compose_for(Personal {
            link: Some(&link),
            message_id: Some(message_id),
        })
        .ok()
        .map(|c| c.raw)
    };
    let mut recipients = vec![ctx.ticket.requester_email.clone()];
    recipients.extend(ctx.cc.iter().map(|(e, _)| e.clone()));
    queue(
        tx,
        options,
        ticket_id,
        "reply",
        MessageKind::Public,
        &recipients,
        compose_for(Personal::default()),
        Some(agent.id),
        now,
        Some(&personal),
    )
    .await
}

/// Tells the customer the ticket is resolved.
pub async fn notice_resolved(
    tx: &mut Tx,
    options: &OutboundOptions,
    ticket_id: i64,
    now: i64,
) -> Result<usize, StoreError> {
    if !options.limits.resolved_notices {
        return Ok(0);
    }
    let ctx = context(tx, ticket_id).await?;
    let to = (
        ctx.ticket.requester_email.as_str(),
        ctx.ticket.requester_name.as_deref(),
    );
    let thread = ctx.thread(None);
    let composed = compose::resolved(&options.identity, &thread, to, Personal::default());
    let personal = |recipient: &str, message_id: &str| {
        let link = options.customer_link(&ctx.ticket, recipient, now)?;
        let personal = Personal {
            link: Some(&link),
            message_id: Some(message_id),
        };
        compose::resolved(&options.identity, &thread, to, personal)
            .ok()
            .map(|c| c.raw)
    };
    queue(
        tx,
        options,
        ticket_id,
        "resolved",
        MessageKind::Automatic,
        std::slice::from_ref(&ctx.ticket.requester_email),
        composed,
        None,
        now,
        Some(&personal),
    )
    .await
}
