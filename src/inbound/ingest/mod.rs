//! One inbound message → one database transaction: a message on a (new or existing)
//! ticket, a duplicate no-op, or a quarantine entry. Every path (pipe, mbox, IMAP,
//! quarantine retry) goes through [`Ingestor::ingest`].

use crate::runtime::metrics::MessageFate;
use std::collections::HashMap;

use serde::Serialize;
use tracing::{info, warn};

use crate::config::{AddParticipants, Config};
use crate::domain::threading::{self, Inbound, ThreadDecision, ThreadRule, TicketFacts};
use crate::domain::{address, signing, subject, Direction, MessageKind, ParticipantRole};
use crate::mail::{self, InboundMail, Mailbox, ParseOptions};
use crate::store::tickets::ReferenceOwner;

pub mod mbox;
mod staff;
use crate::store::{
    self, events, messages, quarantine, tickets, unix_now, users, Store, StoreError, Tx,
};

/// What became of a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = IngestOutcome)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Created {
        ticket_id: i64,
        message_id: i64,
    },
    Threaded {
        ticket_id: i64,
        message_id: i64,
    },
    Duplicate {
        ticket_id: i64,
        message_id: i64,
    },
    /// `new` is false when the same raw message was already waiting in quarantine.
    Quarantined {
        entry_id: i64,
        reason: String,
        new: bool,
    },
}

/// What the counters make of an outcome (`None`: nothing stored, the message is retried).
/// A message already waiting in quarantine counts as a duplicate, as `ingest` reports it.
fn fate(outcome: &Result<Outcome, IngestError>) -> Option<MessageFate> {
    match outcome {
        Ok(Outcome::Created { .. } | Outcome::Threaded { .. }) => Some(MessageFate::Stored),
        Ok(Outcome::Duplicate { .. } | Outcome::Quarantined { new: false, .. }) => {
            Some(MessageFate::Duplicate)
        }
        Ok(Outcome::Quarantined { new: true, .. }) => Some(MessageFate::Quarantined),
        Err(_) => None,
    }
}

/// The only failure: the database could not take the message now. Nothing was stored;
/// the caller keeps the message and tries again later (exit 75 for an MTA, no IMAP flag).
#[derive(Debug, thiserror::Error)]
#[error("message not stored, try again later: {0}")]
pub struct IngestError(#[from] pub StoreError);

/// Where a message came from, for the record and for quarantine entries.
#[derive(Debug, Clone)]
pub struct Origin {
    pub source: String,
    pub mailbox: Option<String>,
    /// The IMAP message it was fetched as: recorded in the same transaction.
    pub imap: Option<store::imap::ImapUid>,
    /// The category a new ticket gets when the writer chose one (the public form, which
    /// validated it); otherwise the mailbox's or the default.
    pub category: Option<String>,
    /// Whether a new ticket is acknowledged to its requester (an API client may open one
    /// without: the ticket is its own record of a call or an alert).
    pub acknowledge: bool,
}

impl Origin {
    pub fn new(source: impl Into<String>, mailbox: Option<String>) -> Self {
        Origin {
            source: source.into(),
            mailbox,
            imap: None,
            category: None,
            acknowledge: true,
        }
    }
}

#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub parse: ParseOptions,
    pub own_addresses: Vec<String>,
    pub subject_prefix: String,
    pub max_message_bytes: u64,
    pub batch_messages: usize,
    pub reopen_window_secs: i64,
    /// Verifies our signed Message-IDs and reply addresses (threading rules 2 and 4).
    pub signing_secret: Option<crate::domain::secret::Secret>,
    pub default_category: String,
    pub mailbox_categories: HashMap<String, String>,
    /// Set when outgoing mail is configured (`[smtp]`): acknowledgements are queued.
    pub outbound: Option<crate::outbound::OutboundOptions>,
    pub add_participants: AddParticipants,
    /// Staff mail must also pass DMARC/DKIM at this authserv-id (see `domain::authres`).
    pub trusted_authserv_id: Option<String>,
}

impl IngestOptions {
    pub fn from_config(config: &Config) -> Self {
        IngestOptions {
            parse: ParseOptions {
                loop_markers: config.loop_markers(),
            },
            own_addresses: config.helpdesk.support_addresses.clone(),
            subject_prefix: config.helpdesk.subject_prefix.clone(),
            max_message_bytes: config.ingest.max_message_bytes,
            batch_messages: config.ingest.batch_messages,
            reopen_window_secs: i64::from(config.helpdesk.reopen_closed_days) * 86_400,
            signing_secret: config.helpdesk.signing_secret.clone(),
            outbound: None,
            add_participants: config.helpdesk.add_participants,
            trusted_authserv_id: config.helpdesk.trusted_authserv_id.clone(),
            default_category: config.helpdesk.default_category.clone(),
            mailbox_categories: config
                .mailboxes
                .iter()
                .filter_map(|m| Some((m.name.clone(), m.category.clone()?)))
                .collect(),
        }
    }

    fn category_for(&self, mailbox: Option<&str>) -> &str {
        mailbox
            .and_then(|m| self.mailbox_categories.get(m))
            .unwrap_or(&self.default_category)
    }
}

/// A message checked and parsed, ready to be stored; pure, so it can run on any thread.
#[derive(Debug, Clone)]
pub enum Prepared {
    Mail(Box<InboundMail>),
    /// Not storable as a ticket message: the reason goes to quarantine.
    Rejected(String),
}

pub fn prepare(options: &IngestOptions, raw: &[u8]) -> Prepared {
    if raw.len() as u64 > options.max_message_bytes {
        return Prepared::Rejected(format!(
            "message is {} bytes, over the limit of {} bytes (ingest.max_message_bytes)",
            raw.len(),
            options.max_message_bytes
        ));
    }
    // A parser bug on one hostile message must not take the others (or the task) down.
    let parsed = std::panic::catch_unwind(|| {
        crate::failpoint::check("parse", raw);
        mail::parse(raw, &options.parse)
    });
    match parsed {
        Ok(Ok(mail)) => Prepared::Mail(Box::new(mail)),
        Ok(Err(e)) => Prepared::Rejected(e.to_string()),
        Err(payload) => Prepared::Rejected(format!(
            "the parser failed on this message: {}",
            crate::mail::compose::panic_message(&*payload)
        )),
    }
}

/// How often a transaction the database aborted as a deadlock victim (or could not
/// serialize) is run again before the failure goes to the caller as temporary.
const ABORT_RETRIES: u32 = 4;

/// Runs a storing attempt, turning a panic inside it into an error that names it (the
/// transaction is dropped, rolled back, and the message is quarantined instead). An
/// attempt PostgreSQL aborted as a deadlock victim kept nothing and is run again after
/// a short random pause: batches from several mailboxes (one instance or several)
/// lock the same tickets in different orders, and tearing the IMAP session down for
/// that cost seconds of backoff.
async fn unwind_safe<T, F, Fut>(mut attempt: F) -> Result<Result<T, StoreError>, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    use futures_util::FutureExt;
    let mut aborts = 0;
    loop {
        let result = std::panic::AssertUnwindSafe(attempt())
            .catch_unwind()
            .await
            .map_err(|payload| crate::mail::compose::panic_message(&*payload));
        match result {
            Ok(Err(e)) if e.is_aborted_transaction() && aborts < ABORT_RETRIES => {
                aborts += 1;
                let pause = 5 + rand::random::<u64>() % (25 * u64::from(aborts));
                info!(error = %e, aborts, pause_ms = pause, "transaction aborted by the database; running it again");
                tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
            }
            other => return other,
        }
    }
}

#[derive(Clone)]
pub struct Ingestor {
    store: Store,
    options: IngestOptions,
}

impl Ingestor {
    pub fn new(store: Store, options: IngestOptions) -> Self {
        Ingestor { store, options }
    }

    /// The ingestor for a configuration, with the signing secret resolved (from the
    /// config, or the one generated and kept in the database).
    pub async fn open(config: &Config, store: Store) -> Result<Self, StoreError> {
        let mut options = IngestOptions::from_config(config);
        let secret = crate::runtime::secrets::signing_secret(config, &store).await?;
        options.outbound = crate::outbound::OutboundOptions::from_config(config, &secret);
        options.signing_secret = Some(secret);
        Ok(Ingestor::new(store, options))
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Stores one raw message. `Ok` means it is safely in the database (as a ticket
    /// message, a duplicate of one, or in quarantine); `Err` means nothing was stored.
    pub async fn ingest(&self, raw: &[u8], origin: &Origin) -> Result<Outcome, IngestError> {
        self.ingest_inner(raw, origin, None).await
    }

    /// Runs a quarantined message through ingest again (after a fix or a config change).
    pub async fn retry_quarantined(&self, entry_id: i64) -> Result<Outcome, IngestError> {
        let mut conn = self.store.acquire().await?;
        let entry = quarantine::get(&mut conn, entry_id).await?;
        if entry.resolved_at.is_some() {
            return Err(StoreError::Conflict(format!(
                "quarantine entry {entry_id} is already resolved ({})",
                entry.resolution.as_deref().unwrap_or("no note")
            ))
            .into());
        }
        let raw = store::raw::get_raw(&mut conn, &entry.raw_sha256)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("raw message {}", entry.raw_sha256)))?;
        drop(conn);
        let origin = Origin::new(entry.source.clone(), entry.mailbox.clone());
        self.ingest_inner(&raw, &origin, Some(entry_id)).await
    }

    async fn ingest_inner(
        &self,
        raw: &[u8],
        origin: &Origin,
        retry_of: Option<i64>,
    ) -> Result<Outcome, IngestError> {
        let prepared = prepare(&self.options, raw);
        let outcome = self.ingest_prepared(raw, prepared, origin, retry_of).await;
        crate::runtime::metrics::message_outcome(origin.mailbox.as_deref(), fate(&outcome));
        outcome
    }

    /// The database half of [`Ingestor::ingest`] (not counted in the metrics: its
    /// callers count).
    #[tracing::instrument(name = "message", skip_all, fields(source = %origin.source))]
    async fn ingest_prepared(
        &self,
        raw: &[u8],
        prepared: Prepared,
        origin: &Origin,
        retry_of: Option<i64>,
    ) -> Result<Outcome, IngestError> {
        let prepared = &prepared;
        let attempt = || async move {
            let mut tx = self.store.begin().await?;
            let outcome = self
                .store_in(&mut tx, raw, prepared, origin, retry_of)
                .await?;
            tx.commit().await?;
            Ok::<_, StoreError>(outcome)
        };
        match unwind_safe(attempt).await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(e)) => self.recover(raw, prepared, origin, retry_of, e).await,
            // Logged once, as the quarantine (its reason says what happened).
            Err(panic) => {
                let reason =
                    format!("storing it failed with an internal error (please report it): {panic}");
                self.quarantine_now(raw, origin, retry_of, &reason).await
            }
        }
    }

    /// Stores many messages in one transaction (one commit, one fsync), in order, so a
    /// reply later in the batch threads onto a ticket opened earlier in it. If anything
    /// fails, the whole batch is rolled back and its messages are stored one by one, so
    /// one bad message costs time but never blocks or loses the others.
    pub async fn ingest_batch(&self, batch: &[BatchItem]) -> Vec<Result<Outcome, IngestError>> {
        let outcomes = self.ingest_batch_uncounted(batch).await;
        for (item, outcome) in batch.iter().zip(&outcomes) {
            crate::runtime::metrics::message_outcome(item.origin.mailbox.as_deref(), fate(outcome));
        }
        outcomes
    }

    async fn ingest_batch_uncounted(
        &self,
        batch: &[BatchItem],
    ) -> Vec<Result<Outcome, IngestError>> {
        use tracing::Instrument;
        let attempt = || async move {
            let mut tx = self.store.begin().await?;
            let mut outcomes = Vec::with_capacity(batch.len());
            for item in batch {
                let span = tracing::info_span!("message", source = %item.origin.source);
                outcomes.push(
                    self.store_in(&mut tx, &item.raw, &item.prepared, &item.origin, None)
                        .instrument(span)
                        .await?,
                );
            }
            tx.commit().await?;
            Ok::<_, StoreError>(outcomes)
        };
        let failure = match unwind_safe(attempt).await {
            Ok(Ok(outcomes)) => return outcomes.into_iter().map(Ok).collect(),
            Ok(Err(e)) if e.is_temporary() => {
                return batch
                    .iter()
                    .map(|_| Err(IngestError(clone_temporary(&e))))
                    .collect()
            }
            Ok(Err(e)) => e.to_string(),
            Err(panic) => format!("panic: {panic}"),
        };
        warn!(error = %failure, size = batch.len(), "batch failed; storing its messages one by one");
        let mut outcomes = Vec::with_capacity(batch.len());
        for item in batch {
            outcomes.push(
                self.ingest_prepared(&item.raw, item.prepared.clone(), &item.origin, None)
                    .await,
            );
        }
        outcomes
    }

    pub fn options(&self) -> &IngestOptions {
        &self.options
    }

    /// A message (or its quarantine entry) inside the caller's transaction.
    async fn store_in(
        &self,
        tx: &mut Tx,
        raw: &[u8],
        prepared: &Prepared,
        origin: &Origin,
        retry_of: Option<i64>,
    ) -> Result<Outcome, StoreError> {
        let now = unix_now();
        crate::failpoint::check("store", raw);
        let outcome = match prepared {
            Prepared::Mail(mail) => {
                self.store_mail_in(tx, mail, raw, origin, retry_of, now)
                    .await?
            }
            Prepared::Rejected(reason) => {
                quarantine_in(tx, raw, reason, origin, retry_of, now).await?
            }
        };
        record_origin(tx, origin, &outcome, now).await?;
        Ok(outcome)
    }

    /// After a failed single-message transaction: a concurrent duplicate is a duplicate,
    /// a temporary failure goes back to the caller, anything else means this message
    /// cannot be stored as parsed, so it is quarantined (never dropped).
    async fn recover(
        &self,
        raw: &[u8],
        prepared: &Prepared,
        origin: &Origin,
        retry_of: Option<i64>,
        error: StoreError,
    ) -> Result<Outcome, IngestError> {
        if error.is_temporary() {
            return Err(error.into());
        }
        if let (true, Prepared::Mail(mail)) = (error.is_unique_violation(), prepared) {
            let mut conn = self.store.acquire().await?;
            if let Some((message_id, ticket_id)) =
                messages::find_duplicate(&mut conn, &mail.message_id, &mail.content_sha256).await?
            {
                let outcome = Outcome::Duplicate {
                    ticket_id,
                    message_id,
                };
                record_origin(&mut conn, origin, &outcome, unix_now()).await?;
                return Ok(outcome);
            }
        }
        // Logged once, as the quarantine (the reason carries the error).
        self.quarantine_now(
            raw,
            origin,
            retry_of,
            &format!("could not be stored: {error}"),
        )
        .await
    }

    /// Quarantines a message in a transaction of its own (its storing failed).
    async fn quarantine_now(
        &self,
        raw: &[u8],
        origin: &Origin,
        retry_of: Option<i64>,
        reason: &str,
    ) -> Result<Outcome, IngestError> {
        let mut tx = self.store.begin().await?;
        let now = unix_now();
        let outcome = quarantine_in(&mut tx, raw, reason, origin, retry_of, now).await?;
        record_origin(&mut tx, origin, &outcome, now).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(outcome)
    }

    /// One message in the caller's transaction: dedup → decide → apply → side effects.
    async fn store_mail_in(
        &self,
        tx: &mut Tx,
        mail: &InboundMail,
        raw: &[u8],
        origin: &Origin,
        retry_of: Option<i64>,
        now: i64,
    ) -> Result<Outcome, StoreError> {
        if let Some(duplicate) = already_stored(tx, mail, retry_of, now).await? {
            return Ok(duplicate);
        }
        let sender = Sender::of(mail);
        let candidate = self.find_candidate(tx, mail, &sender).await?;
        let old_status = candidate.map(|(facts, _)| facts.status);
        let decision = threading::decide(
            candidate,
            Inbound {
                automatic: mail.automatic.is_some(),
                now,
                reopen_window: self.options.reopen_window_secs,
            },
        );
        store::raw::insert_raw(tx, &mail.raw_sha256, raw, now).await?;
        if let ThreadDecision::Attach { ticket_id, .. } = decision {
            if let Some(staff) = self.staff_proof(tx, mail, &sender, ticket_id).await? {
                let message_id = self
                    .take_staff_mail(tx, ticket_id, mail, origin, &staff, now)
                    .await?;
                return finish(tx, retry_of, ticket_id, message_id, false, now).await;
            }
        }
        if mail.automatic.is_none() && sender.is_staff(tx).await? {
            let (ticket_id, message_id, created) = self
                .take_unverified_staff_mail(tx, mail, &sender, origin, decision, now)
                .await?;
            return finish(tx, retry_of, ticket_id, message_id, created, now).await;
        }
        let (ticket_id, created) = self
            .apply_decision(tx, mail, &sender, origin, decision, old_status, now)
            .await?;
        if mail.automatic.is_none() && self.may_add_people(tx, ticket_id, &sender, created).await? {
            self.add_participants(tx, ticket_id, mail, &sender, created, now)
                .await?;
        }
        let kind = if mail.automatic.is_some() {
            MessageKind::Automatic
        } else {
            MessageKind::Public
        };
        let message_id =
            insert_message(tx, ticket_id, mail, origin, kind, Writer::Customer, now).await?;
        self.customer_mail_side_effects(tx, ticket_id, mail, origin, created, now)
            .await?;
        finish(tx, retry_of, ticket_id, message_id, created, now).await
    }

    /// The ticket the customer's message goes to: the one it threads onto (its status
    /// moved as the decision says, with history) or a new one with its requester.
    #[allow(clippy::too_many_arguments)]
    async fn apply_decision(
        &self,
        tx: &mut Tx,
        mail: &InboundMail,
        sender: &Sender<'_>,
        origin: &Origin,
        decision: ThreadDecision,
        old_status: Option<crate::domain::TicketStatus>,
        now: i64,
    ) -> Result<(i64, bool), StoreError> {
        match decision {
            ThreadDecision::Attach {
                ticket_id,
                new_status,
                ..
            } => {
                match new_status {
                    Some(status) => {
                        tickets::set_status(tx, ticket_id, status, now).await?;
                        // The history says the customer's reply moved it (a reopen, in
                        // the reports, when it was resolved or closed).
                        let event = events::NewEvent {
                            ticket_id,
                            user_id: None,
                            field: "status",
                            old_value: old_status.map(|s| s.as_str()),
                            new_value: Some(status.as_str()),
                        };
                        events::record(tx, &event, now).await?;
                    }
                    None => tickets::touch(tx, ticket_id, now).await?,
                }
                Ok((ticket_id, false))
            }
            ThreadDecision::NewTicket { linked_to } => {
                let ticket_id = self
                    .open_ticket(tx, mail, sender, origin, linked_to, now)
                    .await?;
                self.add_requester(tx, ticket_id, sender, now).await?;
                Ok((ticket_id, true))
            }
        }
    }

    /// What a customer's message causes in the same transaction: a bounce suppresses
    /// the address; a person's mail queues the acknowledgement and staff notifications.
    async fn customer_mail_side_effects(
        &self,
        tx: &mut Tx,
        ticket_id: i64,
        mail: &InboundMail,
        origin: &Origin,
        created: bool,
        now: i64,
    ) -> Result<(), StoreError> {
        let Some(outbound) = &self.options.outbound else {
            return Ok(());
        };
        if mail.automatic.is_some() {
            if !mail.hard_bounced.is_empty() {
                crate::outbound::record_bounce(tx, outbound, ticket_id, mail, now).await?;
            }
            return Ok(());
        }
        let acknowledge = created && origin.acknowledge;
        crate::outbound::on_customer_mail(tx, outbound, ticket_id, mail, created, acknowledge, now)
            .await
    }

    /// Whether this mail may make people participants (DESIGN.md, threading rule 5): the
    /// writer of a new ticket, a participant, or anyone when the admin allows it. A
    /// stranger who threads in by quoting a Message-ID joins nobody, themselves included.
    async fn may_add_people(
        &self,
        tx: &mut Tx,
        ticket_id: i64,
        sender: &Sender<'_>,
        created: bool,
    ) -> Result<bool, StoreError> {
        if created || self.options.add_participants == AddParticipants::Anyone {
            return Ok(true);
        }
        let participant =
            sender.is_valid() && tickets::is_participant(tx, ticket_id, &sender.email).await?;
        if !participant {
            info!(ticket_id, sender = %sender.email, "mail from someone not on the ticket: attached, but nobody added to it");
        }
        Ok(participant)
    }

    /// Threading rules 2 to 5, first match wins (rule 1, duplicates, is checked before).
    async fn find_candidate(
        &self,
        tx: &mut Tx,
        mail: &InboundMail,
        sender: &Sender<'_>,
    ) -> Result<Option<(TicketFacts, ThreadRule)>, StoreError> {
        let referenced = mail.referenced_ids();
        let secret = self.options.signing_secret.as_ref().map(|s| s.expose());
        // Rule 2: one of our own signed Message-IDs.
        if let Some(secret) = secret {
            for id in &referenced {
                if let Some(signed) = signing::verify_message_id(secret, id) {
                    if let Some(facts) = tickets::facts(tx, signed.ticket).await? {
                        return Ok(Some((facts, ThreadRule::SignedReference)));
                    }
                }
            }
        }
        // Rule 3: any stored Message-ID, nearest reference first.
        if !referenced.is_empty() {
            let owners = tickets::by_message_ids(tx, &referenced).await?;
            for id in &referenced {
                let sharing: Vec<&ReferenceOwner> =
                    owners.iter().filter(|o| o.message_id == *id).collect();
                if let Some(owner) = pick_owner(tx, &sharing, sender).await? {
                    return Ok(Some((owner.ticket, ThreadRule::StoredReference)));
                }
            }
        }
        // Rule 4: a signed reply address among the recipients.
        if let Some(secret) = secret {
            for address in recipient_addresses(mail) {
                if let Some(signed) = signing::verify_reply_address(secret, address) {
                    if let Some(facts) = tickets::facts(tx, signed.ticket).await? {
                        return Ok(Some((facts, ThreadRule::PlusAddress)));
                    }
                }
            }
        }
        // Rule 5: the subject tag, from someone on the ticket or verified staff.
        let Some(ticket_ref) = subject::find_tag(&mail.subject, &self.options.subject_prefix)
        else {
            return Ok(None);
        };
        let Some(facts) = tickets::facts(tx, ticket_ref).await? else {
            return Ok(None);
        };
        let is_participant =
            sender.is_valid() && tickets::is_participant(tx, facts.id, &sender.email).await?;
        let verified_staff = !is_participant
            && self
                .staff_proof(tx, mail, sender, facts.id)
                .await?
                .is_some();
        if threading::tag_accepted(is_participant, verified_staff) {
            Ok(Some((facts, ThreadRule::SubjectTag)))
        } else {
            info!(ticket_ref, sender = %sender.email, "subject tag from someone not on the ticket ignored; opening a new ticket");
            Ok(None)
        }
    }

    /// Opens a ticket for this mail (participants are the caller's choice).
    async fn open_ticket(
        &self,
        tx: &mut Tx,
        mail: &InboundMail,
        sender: &Sender<'_>,
        origin: &Origin,
        linked_to: Option<i64>,
        now: i64,
    ) -> Result<i64, StoreError> {
        let stripped = subject::strip_tags(&mail.subject, &self.options.subject_prefix);
        let subject = if stripped.is_empty() {
            "(no subject)"
        } else {
            stripped.as_str()
        };
        let mailbox = origin.mailbox.as_deref();
        let new_ticket = tickets::NewTicket {
            subject,
            category: origin
                .category
                .as_deref()
                .unwrap_or_else(|| self.options.category_for(mailbox)),
            mailbox,
            requester_email: &sender.email,
            requester_name: sender.name,
            linked_ticket_id: linked_to,
        };
        tickets::insert(tx, &new_ticket, now).await
    }

    /// The writer of a new ticket is its requester (when they have an address).
    async fn add_requester(
        &self,
        tx: &mut Tx,
        ticket_id: i64,
        sender: &Sender<'_>,
        now: i64,
    ) -> Result<(), StoreError> {
        if !sender.is_valid() {
            return Ok(());
        }
        let requester = [(
            sender.email.as_str(),
            sender.name,
            ParticipantRole::Requester,
        )];
        tickets::add_participants(tx, ticket_id, &requester, now).await
    }

    /// A human writer and the people they copied (To and Cc, not us, not staff) join the
    /// conversation, so later mail from them threads and reaches them.
    async fn add_participants(
        &self,
        tx: &mut Tx,
        ticket_id: i64,
        mail: &InboundMail,
        sender: &Sender<'_>,
        created: bool,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut people: Vec<(String, Option<&str>)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        if !created && sender.is_valid() && !sender.is_staff(tx).await? {
            seen.insert(sender.email.clone());
            people.push((sender.email.clone(), sender.name));
        }
        for mailbox in mail.to.iter().chain(&mail.cc) {
            let email = address::normalize(&mailbox.email);
            if email != sender.email
                && address::is_valid(&email)
                && !address::is_own(&email, &self.options.own_addresses)
                && seen.insert(email.clone())
            {
                people.push((email, mailbox.name.as_deref()));
            }
            if people.len() >= MAX_NEW_PARTICIPANTS {
                warn!(
                    ticket_id,
                    "more than {MAX_NEW_PARTICIPANTS} people copied; the rest are not added"
                );
                break;
            }
        }
        let rows: Vec<(&str, Option<&str>, ParticipantRole)> = people
            .iter()
            .map(|(e, n)| (e.as_str(), *n, ParticipantRole::Cc))
            .collect();
        tickets::add_participants(tx, ticket_id, &rows, now).await
    }
}

/// People one mail can add to a ticket: more than any real Cc list.
const MAX_NEW_PARTICIPANTS: usize = 100;

/// The addresses a mail was sent to (signed reply addresses are looked for here).
fn recipient_addresses(mail: &InboundMail) -> impl Iterator<Item = &str> {
    mail.to
        .iter()
        .chain(&mail.cc)
        .map(|m| m.email.as_str())
        .chain(mail.delivered_to.iter().map(String::as_str))
}

/// Several stored messages can share a Message-ID (anyone can reuse a customer's), so a
/// reply goes to the one whose writer or ticket the replier belongs to, else the
/// earliest: never to a newer impostor.
async fn pick_owner<'a>(
    tx: &mut Tx,
    sharing: &[&'a ReferenceOwner],
    sender: &Sender<'_>,
) -> Result<Option<&'a ReferenceOwner>, StoreError> {
    if sharing.len() <= 1 {
        return Ok(sharing.first().copied());
    }
    let mut related = Vec::new();
    for owner in sharing {
        let writer = address::normalize(&owner.from_email) == sender.email;
        if writer
            || (sender.is_valid()
                && tickets::is_participant(tx, owner.ticket.id, &sender.email).await?)
        {
            related.push(*owner);
        }
    }
    let earliest = |list: &[&'a ReferenceOwner]| list.iter().copied().min_by_key(|o| o.row_id);
    Ok(earliest(&related).or_else(|| earliest(sharing)))
}

/// A parsed, stored-later batch entry for [`Ingestor::ingest_batch`].
#[derive(Debug)]
pub struct BatchItem {
    pub raw: Vec<u8>,
    pub prepared: Prepared,
    pub origin: Origin,
}

/// The writer of a message, with the staff lookup done at most once and only if needed.
struct Sender<'a> {
    email: String,
    name: Option<&'a str>,
    staff: tokio::sync::OnceCell<Option<users::User>>,
}

impl<'a> Sender<'a> {
    fn of(mail: &'a InboundMail) -> Self {
        Sender {
            email: mail
                .from
                .as_ref()
                .map(|f| address::normalize(&f.email))
                .unwrap_or_default(),
            name: sender_name(mail),
            staff: tokio::sync::OnceCell::new(),
        }
    }

    fn is_valid(&self) -> bool {
        address::is_valid(&self.email)
    }

    /// The active staff user with this address (whether they really sent it is another
    /// question: see `Ingestor::staff_proof`).
    async fn staff_user(&self, tx: &mut Tx) -> Result<Option<&users::User>, StoreError> {
        if let Some(known) = self.staff.get() {
            return Ok(known.as_ref());
        }
        let user = if self.is_valid() {
            users::find_active_by_email(tx, &self.email).await?
        } else {
            None
        };
        Ok(self.staff.get_or_init(|| async { user }).await.as_ref())
    }

    async fn is_staff(&self, tx: &mut Tx) -> Result<bool, StoreError> {
        Ok(self.staff_user(tx).await?.is_some())
    }
}

/// Notes the IMAP message a stored message came from (no-op for other sources).
async fn record_origin(
    conn: &mut sqlx::AnyConnection,
    origin: &Origin,
    outcome: &Outcome,
    now: i64,
) -> Result<(), StoreError> {
    let Some(key) = &origin.imap else {
        return Ok(());
    };
    store::imap::record_seen(conn, key, outcome.name(), outcome.is_quarantined(), now).await
}

impl Outcome {
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Created { .. } => "created",
            Outcome::Threaded { .. } => "threaded",
            Outcome::Duplicate { .. } => "duplicate",
            Outcome::Quarantined { .. } => "quarantined",
        }
    }

    pub fn is_quarantined(&self) -> bool {
        matches!(self, Outcome::Quarantined { .. })
    }
}

/// Rebuilds a temporary error for each message of a failed batch (sqlx errors are not Clone).
fn clone_temporary(error: &StoreError) -> StoreError {
    StoreError::Unavailable(sqlx::Error::Protocol(error.to_string()))
}

/// Stores the raw message and a quarantine entry (or, for a retry, records the new
/// reason on the existing entry). The same raw message (or the same content with other
/// line endings) is never quarantined twice.
async fn quarantine_in(
    tx: &mut Tx,
    raw: &[u8],
    reason: &str,
    origin: &Origin,
    retry_of: Option<i64>,
    now: i64,
) -> Result<Outcome, StoreError> {
    if let Some(entry_id) = retry_of {
        quarantine::record_failed_retry(tx, entry_id, reason, now).await?;
        return Ok(Outcome::Quarantined {
            entry_id,
            reason: reason.to_string(),
            new: false,
        });
    }
    let raw_sha256 = mail::hash::sha256_hex(raw);
    let content_sha256 = mail::hash::content_sha256_hex(raw);
    if let Some(entry_id) = quarantine::find_open(tx, &raw_sha256, &content_sha256).await? {
        return Ok(Outcome::Quarantined {
            entry_id,
            reason: reason.to_string(),
            new: false,
        });
    }
    let entry = quarantine::NewEntry {
        raw_sha256: &raw_sha256,
        content_sha256: &content_sha256,
        raw,
        reason,
        source: &origin.source,
        mailbox: origin.mailbox.as_deref(),
    };
    let entry_id = quarantine::insert(tx, &entry, now).await?;
    // The source is the span's (`message`), which every path runs in.
    warn!(
        quarantine_id = entry_id,
        reason,
        mailbox = origin.mailbox.as_deref(),
        "message quarantined"
    );
    Ok(Outcome::Quarantined {
        entry_id,
        reason: reason.to_string(),
        new: true,
    })
}

/// The message when it was stored before (same Message-ID and content): a retried
/// quarantine entry is resolved as that duplicate.
async fn already_stored(
    tx: &mut Tx,
    mail: &InboundMail,
    retry_of: Option<i64>,
    now: i64,
) -> Result<Option<Outcome>, StoreError> {
    let Some((message_id, ticket_id)) =
        messages::find_duplicate(tx, &mail.message_id, &mail.content_sha256).await?
    else {
        return Ok(None);
    };
    if let Some(entry_id) = retry_of {
        let note = format!("duplicate of message {message_id} on ticket #{ticket_id}");
        quarantine::mark_resolved(tx, entry_id, &note, now).await?;
    }
    Ok(Some(Outcome::Duplicate {
        ticket_id,
        message_id,
    }))
}

/// Resolves a retried quarantine entry and reports the outcome.
async fn finish(
    tx: &mut Tx,
    retry_of: Option<i64>,
    ticket_id: i64,
    message_id: i64,
    created: bool,
    now: i64,
) -> Result<Outcome, StoreError> {
    if let Some(entry_id) = retry_of {
        let note = format!("stored as message {message_id} on ticket #{ticket_id}");
        quarantine::mark_resolved(tx, entry_id, &note, now).await?;
    }
    info!(ticket_id, message_id, created, "message stored");
    Ok(if created {
        Outcome::Created {
            ticket_id,
            message_id,
        }
    } else {
        Outcome::Threaded {
            ticket_id,
            message_id,
        }
    })
}

/// Who wrote a stored message, as far as we can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writer {
    Customer,
    /// A staff user, proven by a reference only they were sent.
    Staff(i64),
    /// A staff address without that proof: anyone could have written it.
    UnverifiedStaff,
}

async fn insert_message(
    tx: &mut Tx,
    ticket_id: i64,
    mail: &InboundMail,
    origin: &Origin,
    kind: MessageKind,
    writer: Writer,
    now: i64,
) -> Result<i64, StoreError> {
    let automatic_reason = mail.automatic.as_ref().map(|r| r.to_string());
    let message_id = messages::insert(
        tx,
        &messages::NewMessage {
            ticket_id,
            direction: Direction::Inbound,
            kind,
            automatic_reason: automatic_reason.as_deref(),
            from_email: mail
                .from
                .as_ref()
                .map(|f| f.email.as_str())
                .unwrap_or_default(),
            from_name: sender_name(mail),
            to_addrs: &address_list_json(&mail.to),
            cc_addrs: &address_list_json(&mail.cc),
            reply_to: &address_list_json(&mail.reply_to),
            subject: &mail.subject,
            message_id: &mail.message_id,
            in_reply_to: &mail.in_reply_to.join(" "),
            references_ids: &mail.references.join(" "),
            text_body: &mail.text,
            html_body: mail.html.as_deref(),
            raw_sha256: Some(&mail.raw_sha256),
            content_sha256: &mail.content_sha256,
            mailbox: origin.mailbox.as_deref(),
            source: &origin.source,
            sent_at: mail.date,
            author_user_id: match writer {
                Writer::Staff(id) => Some(id),
                _ => None,
            },
            unverified: writer == Writer::UnverifiedStaff,
        },
        now,
    )
    .await?;
    for attachment in &mail.attachments {
        let sha256 = mail::hash::sha256_hex(&attachment.data);
        messages::insert_attachment(
            tx,
            message_id,
            &messages::NewAttachment {
                filename: &attachment.filename,
                content_type: &attachment.content_type,
                content_id: attachment.content_id.as_deref(),
                inline: attachment.inline,
                data: &attachment.data,
                sha256: &sha256,
            },
        )
        .await?;
    }
    Ok(message_id)
}

fn sender_name(mail: &InboundMail) -> Option<&str> {
    mail.from.as_ref().and_then(|f| f.name.as_deref())
}

/// Addresses as stored on a message: a JSON array of `{email, name}`.
pub fn address_list_json(list: &[Mailbox]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".into())
}

/// Tally for a batch (the CLI prints it).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub created: u64,
    pub threaded: u64,
    pub duplicates: u64,
    pub quarantined: u64,
    pub failed: u64,
    /// Not taken in at all (over the size limit on standard input): the MTA bounces it.
    pub refused: u64,
}

impl Counts {
    pub fn record(&mut self, outcome: &Result<Outcome, IngestError>) {
        match outcome {
            Ok(Outcome::Created { .. }) => self.created += 1,
            Ok(Outcome::Threaded { .. }) => self.threaded += 1,
            Ok(Outcome::Duplicate { .. } | Outcome::Quarantined { new: false, .. }) => {
                self.duplicates += 1;
            }
            Ok(Outcome::Quarantined { new: true, .. }) => self.quarantined += 1,
            Err(_) => self.failed += 1,
        }
    }
}

impl std::ops::Add for Counts {
    type Output = Counts;

    fn add(self, other: Counts) -> Counts {
        Counts {
            created: self.created + other.created,
            threaded: self.threaded + other.threaded,
            duplicates: self.duplicates + other.duplicates,
            quarantined: self.quarantined + other.quarantined,
            failed: self.failed + other.failed,
            refused: self.refused + other.refused,
        }
    }
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "created: {}, threaded: {}, duplicates: {}, quarantined: {}",
            self.created, self.threaded, self.duplicates, self.quarantined
        )?;
        if self.failed > 0 {
            write!(f, ", failed (not stored, retry later): {}", self.failed)?;
        }
        if self.refused > 0 {
            write!(f, ", refused (over the size limit): {}", self.refused)?;
        }
        Ok(())
    }
}
