//! What customers do on the web (the public page `/` and their own ticket page): a
//! submission or a reply becomes a real RFC 5322 message handed to the same
//! [`Ingestor`] as mail, so deduplication, quarantine, the acknowledgement, staff
//! notifications, reopen-on-reply and threading stay one code path. Their links are
//! checked here: signature, expiry, revocation, and that the address is still on the
//! ticket, at every request.

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox as LettreMailbox, MultiPart, SinglePart};

use crate::domain::{address, signing, subject, text};
use crate::inbound::ingest::{Ingestor, Origin, Outcome};
use crate::store::{outbox, tickets, Conn, StoreError};

/// Where a web message came from (recorded on the message and any quarantine entry).
pub const SOURCE: &str = "web";

/// A file the customer attached.
#[derive(Debug, Clone)]
pub struct Upload {
    pub filename: String,
    pub content_type: String,
    pub data: Vec<u8>,
}

/// What the customer typed (already validated by the caller).
pub struct WebMessage<'a> {
    pub email: &'a str,
    pub name: Option<&'a str>,
    pub subject: &'a str,
    pub body: &'a str,
    pub uploads: &'a [Upload],
}

#[derive(Debug, thiserror::Error)]
pub enum WebMailError {
    /// The message could not be built (an input lettre refuses): names the field.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// Stored, but not where it was meant to go (quarantined, or not on the ticket).
    #[error("{0}")]
    NotTaken(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The raw message: From the customer, To our support address, a fresh Message-ID, and
/// for a reply the ticket's signed reference in In-Reply-To/References (threading rule
/// 2, which nothing else can match first: the ticket is the one the link names).
fn build(
    ingestor: &Ingestor,
    message: &WebMessage<'_>,
    reply_to: Option<i64>,
) -> Result<Vec<u8>, WebMailError> {
    let options = ingestor.options();
    let invalid = |field: &'static str, message: String| WebMailError::Invalid { field, message };
    let support = options
        .own_addresses
        .first()
        .cloned()
        .unwrap_or_else(|| "support@localhost".into());
    let domain = support.rsplit_once('@').map_or("localhost", |(_, d)| d);
    let from = LettreMailbox::new(
        message.name.and_then(text::display_name),
        text::address(message.email)
            .parse()
            .map_err(|_| invalid("email", "this is not an e-mail address".into()))?,
    );
    let to: LettreMailbox = support
        .parse()
        .map_err(|_| invalid("email", format!("our address {support:?} is not valid")))?;
    let mut builder = lettre::Message::builder()
        .from(from)
        .to(to)
        .subject(text::subject(message.subject))
        .date_now()
        .message_id(Some(format!(
            "<web.{}@{domain}>",
            crate::domain::secret::random_token()
        )));
    if let Some(ticket) = reply_to {
        let secret = options
            .signing_secret
            .as_ref()
            .ok_or_else(|| WebMailError::NotTaken("no signing secret".into()))?;
        let parent = format!(
            "<{}>",
            signing::message_id(secret.expose(), domain, ticket, 0)
        );
        builder = builder.in_reply_to(parent.clone()).references(parent);
    }
    let body = SinglePart::plain(message.body.replace("\r\n", "\n"));
    let built = if message.uploads.is_empty() {
        builder.singlepart(body)
    } else {
        let mut parts = MultiPart::mixed().singlepart(body);
        for upload in message.uploads {
            let content_type = ContentType::parse(&upload.content_type)
                .unwrap_or(ContentType::parse("application/octet-stream").expect("a valid type"));
            parts = parts.singlepart(
                Attachment::new(text::file_name(&upload.filename))
                    .body(upload.data.clone(), content_type),
            );
        }
        builder.multipart(parts)
    };
    let built = built.map_err(|e| invalid("description", e.to_string()))?;
    Ok(built.formatted())
}

/// A submission of the public form: a new ticket in `category` (validated by the
/// caller), acknowledged by mail like any other.
pub async fn submit(
    ingestor: &Ingestor,
    message: &WebMessage<'_>,
    category: &str,
) -> Result<i64, WebMailError> {
    open(ingestor, message, Some(category), SOURCE, true).await
}

/// A new ticket for a requester as if they had mailed it (so it threads, deduplicates
/// and notifies like mail): the public form, or staff through the API (`source`),
/// acknowledged unless `acknowledge` is false.
pub async fn open(
    ingestor: &Ingestor,
    message: &WebMessage<'_>,
    category: Option<&str>,
    source: &str,
    acknowledge: bool,
) -> Result<i64, WebMailError> {
    let prefix = &ingestor.options().subject_prefix;
    // A subject tag typed into the form must not thread it onto an existing ticket.
    let bare = subject::strip_tags(message.subject, prefix);
    let message = WebMessage {
        subject: &bare,
        ..*message
    };
    let raw = build(ingestor, &message, None)?;
    let mut origin = Origin::new(source, None);
    origin.category = category.map(str::to_string);
    origin.acknowledge = acknowledge;
    match ingest(ingestor, &raw, &origin).await? {
        Outcome::Created { ticket_id, .. } => Ok(ticket_id),
        other => Err(WebMailError::NotTaken(format!(
            "the submission was not opened as a new ticket: {other:?}"
        ))),
    }
}

/// What became of a customer's reply from their ticket page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replied {
    /// On the ticket (reopened if it was resolved).
    OnTicket,
    /// The ticket was closed too long ago: a new ticket linked to it was opened.
    FollowUp(i64),
}

/// A reply from the customer's page to `ticket_id` (the link's ticket, merges followed).
/// The result is checked: it must be on that ticket, or a follow-up linked to it.
pub async fn reply(
    ingestor: &Ingestor,
    ticket_id: i64,
    message: &WebMessage<'_>,
) -> Result<Replied, WebMailError> {
    let raw = build(ingestor, message, Some(ticket_id))?;
    match ingest(ingestor, &raw, &Origin::new(SOURCE, None)).await? {
        Outcome::Threaded { ticket_id: t, .. } if t == ticket_id => Ok(Replied::OnTicket),
        Outcome::Created { ticket_id: t, .. } => {
            let mut conn = ingestor.store().acquire().await?;
            let created = tickets::get(&mut conn, t).await?;
            if created.linked_ticket_id == Some(ticket_id) {
                Ok(Replied::FollowUp(t))
            } else {
                tracing::error!(
                    ticket_id,
                    landed = t,
                    "a web reply opened an unrelated ticket"
                );
                Err(WebMailError::NotTaken(format!(
                    "the reply landed on ticket #{t}"
                )))
            }
        }
        other => {
            tracing::error!(ticket_id, outcome = ?other, "a web reply did not land on its ticket");
            Err(WebMailError::NotTaken(format!(
                "the reply was not added to the ticket: {other:?}"
            )))
        }
    }
}

/// Whether the acknowledgement of a new ticket went out to `email`: queued or sent, not
/// failed. It may not have: the loop limits hold acknowledgements back (so many per
/// sender and recipient per hour), they can be switched off, and without `[smtp]`
/// nothing is sent; the customer must then learn the ticket number another way.
pub async fn acknowledged(
    conn: &mut Conn,
    ticket_id: i64,
    email: &str,
) -> Result<bool, StoreError> {
    let email = address::normalize(email);
    Ok(outbox::for_ticket(conn, ticket_id)
        .await?
        .iter()
        .any(|mail| {
            mail.kind == "acknowledgement" && mail.recipient == email && mail.status != "failed"
        }))
}

async fn ingest(ingestor: &Ingestor, raw: &[u8], origin: &Origin) -> Result<Outcome, StoreError> {
    ingestor.ingest(raw, origin).await.map_err(|e| e.0)
}

/// Whoever a valid link names: the ticket (after merges) and the participant.
#[derive(Debug, Clone)]
pub struct CustomerAccess {
    pub ticket: tickets::Ticket,
    pub email: String,
}

/// Why a link does not open the page (the customer sees one message for all of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRefused {
    Malformed,
    BadSignature,
    Expired,
    NotParticipant,
}

/// Checks a customer link: our signature at the ticket's current revocation epoch, not
/// expired, and the address still a participant of the ticket (or of the ticket it was
/// merged into).
pub async fn check_link(
    conn: &mut Conn,
    secret: &str,
    token: &str,
    now: i64,
) -> Result<Result<CustomerAccess, LinkRefused>, StoreError> {
    let Some((link, sig)) = signing::read_customer_link(token) else {
        return Ok(Err(LinkRefused::Malformed));
    };
    let signed_for = match tickets::get(&mut *conn, link.ticket).await {
        Ok(ticket) => ticket,
        Err(StoreError::NotFound(_)) => return Ok(Err(LinkRefused::BadSignature)),
        Err(e) => return Err(e),
    };
    if !signing::verify_customer_link(secret, &link, signed_for.customer_link_epoch, sig) {
        return Ok(Err(LinkRefused::BadSignature));
    }
    if link.expires < now {
        return Ok(Err(LinkRefused::Expired));
    }
    let ticket = match signed_for.merged_into_id {
        Some(_) => {
            let target = tickets::resolve_merged(&mut *conn, link.ticket).await?;
            tickets::get(&mut *conn, target).await?
        }
        None => signed_for,
    };
    let email = address::normalize(&link.email);
    if !tickets::is_participant(&mut *conn, ticket.id, &email).await? {
        return Ok(Err(LinkRefused::NotParticipant));
    }
    Ok(Ok(CustomerAccess { ticket, email }))
}
