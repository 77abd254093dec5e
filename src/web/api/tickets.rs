//! `/api/v1/tickets`: the queue (same filters, search and keyset pages as the portal),
//! one ticket with its messages, participants, tasks and history, and changes through
//! the same rules as the portal. A change needs `If-Match` with the ticket's ETag, so
//! two clients cannot overwrite each other unknowingly.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::openapi::{IfMatch, TicketRef};
use super::problem::Problem;
use super::{
    if_match, json, require_current, with_etag, ApiError, ApiJson, ApiQuery, ApiResult, Caller,
};
use crate::helpdesk::actions::{self, Expected};
use crate::store::jobs::JobKind;
use crate::store::tickets::{self as ticket_store, Field, Ticket};
use crate::store::{events, queue, tasks};
use crate::web::portal::queue::QueueQuery;
use crate::web::AppState;

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// A status, `active` (open, in progress, waiting; the default without `q`) or `any`.
    #[serde(default)]
    status: String,
    /// A user id, `mine`, `unassigned` or `any`.
    #[serde(default)]
    assignee: String,
    #[serde(default)]
    category: String,
    /// The mailbox's name (from the configuration).
    #[serde(default)]
    mailbox: String,
    #[serde(default)]
    priority: String,
    /// Words to search for in subjects, messages and addresses.
    #[serde(default)]
    q: String,
    /// The order (as in the portal's queue).
    #[serde(default)]
    sort: String,
    /// The `next` of the previous page.
    #[serde(default)]
    after: String,
    /// At most this many tickets (default 50, at most 200).
    #[serde(default)]
    limit: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = TicketPage)]
struct Page {
    tickets: Vec<queue::Row>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

/// `GET /api/v1/tickets`
#[utoipa::path(get, path = "/api/v1/tickets", tag = "tickets", params(ListQuery),
    responses((status = OK, description = "One page of the queue (keyset pagination: pass `next` as `after`)", body = Page)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Response> {
    caller
        .actor
        .require(crate::domain::access::Action::ViewTickets, "see tickets")?;
    let limit = super::page_limit(query.limit, crate::web::portal::queue::PAGE_SIZE)?;
    let filter = QueueQuery {
        status: query.status,
        assignee: query.assignee,
        category: query.category,
        mailbox: query.mailbox,
        priority: query.priority,
        q: query.q,
        sort: query.sort,
        after: query.after,
    }
    .filter(caller.actor.user.id)?;
    let mut conn = state.store.acquire().await?;
    let (tickets, more) = queue::page(&mut conn, state.store.backend(), &filter, limit).await?;
    let next = more
        .then(|| tickets.last().map(|t| t.cursor(filter.sort).encode()))
        .flatten();
    Ok(json(StatusCode::OK, &Page { tickets, next }))
}

fn reference(text: &str) -> ApiResult<i64> {
    crate::helpdesk::ticket_views::parse_ref(text)
        .ok_or_else(|| ApiError::not_found(format!("there is no ticket {text:?}")))
}

/// The ticket's version: it changes with every field a client can change and with
/// every new message, so `If-Match` catches any change made since the client read it.
pub fn etag(t: &Ticket) -> String {
    let state = format!(
        "{}|{}|{}|{}|{:?}|{:?}|{}|{}",
        t.id,
        t.status,
        t.priority,
        t.category,
        t.assignee_id,
        t.merged_into_id,
        t.message_count,
        t.updated_at
    );
    super::etag_of(&state)
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = TicketFull)]
struct Full {
    #[serde(flatten)]
    detail: crate::helpdesk::ticket_views::TicketDetail,
    tasks: Vec<tasks::Task>,
    history: Vec<events::Event>,
}

async fn full(state: &AppState, id: i64, status: StatusCode) -> ApiResult<Response> {
    // One pool checkout for all of it (each checkout costs a ping at acquire and release).
    let mut conn = state.store.acquire().await?;
    let detail = crate::helpdesk::ticket_views::load_on(&mut conn, id).await?;
    let tasks = tasks::for_ticket(&mut conn, id).await?;
    let history = events::for_ticket(&mut conn, id).await?;
    drop(conn);
    let tag = etag(&detail.ticket);
    let response = json(
        status,
        &Full {
            detail,
            tasks,
            history,
        },
    );
    Ok(with_etag(response, &tag))
}

/// `GET /api/v1/tickets/{ref}`
#[utoipa::path(get, path = "/api/v1/tickets/{reference}", tag = "tickets", params(TicketRef),
    responses((status = OK, description = "The ticket with its messages, participants, outgoing mail, tasks and history", body = Full,
        headers(("ETag" = String, description = "Send as `If-Match` to change the ticket")))))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(reference_text): Path<String>,
) -> ApiResult<Response> {
    caller
        .actor
        .require(crate::domain::access::Action::ViewTickets, "see tickets")?;
    full(&state, reference(&reference_text)?, StatusCode::OK).await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketChange {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    priority: Option<String>,
    #[serde(default)]
    category: Option<String>,
    /// A user id, or `null` for nobody.
    #[serde(default, deserialize_with = "super::present")]
    assignee: Option<Option<i64>>,
}

/// `PATCH /api/v1/tickets/{ref}`: status, priority, category, assignee.
#[utoipa::path(patch, path = "/api/v1/tickets/{reference}", tag = "tickets", params(TicketRef, IfMatch), request_body = TicketChange,
    responses(
        (status = OK, description = "The ticket as it is now", body = Full, headers(("ETag" = String))),
        (status = PRECONDITION_FAILED, description = "The ticket changed since the ETag was read", body = Problem, content_type = "application/problem+json"),
        (status = PRECONDITION_REQUIRED, description = "No `If-Match`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(reference_text): Path<String>,
    headers: HeaderMap,
    ApiJson(change): ApiJson<TicketChange>,
) -> ApiResult<Response> {
    let id = reference(&reference_text)?;
    let expected_tag = if_match(&headers, "ticket")?;
    let assignee = change.assignee.map(|a| a.map(|id| id.to_string()));
    let fields = [
        (Field::Status, change.status.map(Some)),
        (Field::Priority, change.priority.map(Some)),
        (Field::Category, change.category.map(Some)),
        (Field::Assignee, assignee),
    ];
    let ctx = state.action_context();
    let mut tx = state.store.unit_of_work(&state.wake).await?;
    let ticket = ticket_store::get(&mut tx, id).await?;
    require_current(&expected_tag, &etag(&ticket), "ticket")?;
    for (field, new) in fields {
        let Some(new) = new else { continue };
        let expected = Expected::Value(actions::current_value(&ticket, field));
        actions::change_field(
            &mut tx,
            &ctx,
            &caller.actor,
            id,
            field,
            expected,
            new.as_deref(),
        )
        .await?;
    }
    tx.queued(JobKind::Outbox);
    tx.commit().await?;
    full(&state, id, StatusCode::OK).await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewReply {
    body: String,
    /// More addresses to copy (they become participants).
    #[serde(default)]
    cc: Vec<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Queued {
    queued: usize,
}

/// `POST /api/v1/tickets/{ref}/replies`: a public reply, mailed through the outbox.
#[utoipa::path(post, path = "/api/v1/tickets/{reference}/replies", tag = "tickets", params(TicketRef), request_body = NewReply,
    responses((status = CREATED, description = "The reply is queued for mailing to this many recipients", body = Queued)))]
pub async fn reply(
    State(state): State<AppState>,
    caller: Caller,
    Path(reference_text): Path<String>,
    ApiJson(new): ApiJson<NewReply>,
) -> ApiResult<Response> {
    let id = reference(&reference_text)?;
    let ctx = state.action_context();
    let mut tx = state.store.unit_of_work(&state.wake).await?;
    let queued = actions::reply(&mut tx, &ctx, &caller.actor, id, &new.body, &new.cc).await?;
    tx.queued(JobKind::Outbox);
    tx.commit().await?;
    Ok(json(StatusCode::CREATED, &Queued { queued }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewNote {
    body: String,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = NoteCreated)]
struct Created {
    id: i64,
}

/// `POST /api/v1/tickets/{ref}/notes`: an internal note.
#[utoipa::path(post, path = "/api/v1/tickets/{reference}/notes", tag = "tickets", params(TicketRef), request_body = NewNote,
    responses((status = CREATED, description = "The note's message id", body = Created)))]
pub async fn note(
    State(state): State<AppState>,
    caller: Caller,
    Path(reference_text): Path<String>,
    ApiJson(new): ApiJson<NewNote>,
) -> ApiResult<Response> {
    let id = reference(&reference_text)?;
    let ctx = state.action_context();
    let mut tx = state.store.unit_of_work(&state.wake).await?;
    let message = actions::note(&mut tx, &ctx, &caller.actor, id, &new.body).await?;
    tx.commit().await?;
    Ok(json(StatusCode::CREATED, &Created { id: message }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeInto {
    /// The ticket this one is merged into (a number, or a reference like `#42`).
    target: serde_json::Value,
}

/// `POST /api/v1/tickets/{ref}/merge`: this ticket's messages and people move to the
/// target, which is returned.
#[utoipa::path(post, path = "/api/v1/tickets/{reference}/merge", tag = "tickets", params(TicketRef), request_body = MergeInto,
    responses((status = OK, description = "The target ticket, now holding this one's messages and people", body = Full)))]
pub async fn merge(
    State(state): State<AppState>,
    caller: Caller,
    Path(reference_text): Path<String>,
    ApiJson(into): ApiJson<MergeInto>,
) -> ApiResult<Response> {
    let id = reference(&reference_text)?;
    let target = match &into.target {
        serde_json::Value::Number(n) => n.as_i64().filter(|n| *n > 0),
        serde_json::Value::String(s) => crate::helpdesk::ticket_views::parse_ref(s),
        _ => None,
    }
    .ok_or_else(|| {
        ApiError::invalid("target", format!("{} is not a ticket number", into.target))
    })?;
    let ctx = state.action_context();
    let mut tx = state.store.unit_of_work(&state.wake).await?;
    actions::merge(&mut tx, &ctx, &caller.actor, id, target).await?;
    tx.queued(JobKind::Outbox);
    tx.commit().await?;
    full(&state, target, StatusCode::OK).await
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTicket {
    /// The requester's e-mail address: the ticket is theirs, as if they had mailed it.
    requester: String,
    #[serde(default)]
    requester_name: Option<String>,
    subject: String,
    body: String,
    /// One of the configured categories; absent: the default.
    #[serde(default)]
    category: Option<String>,
    /// Mail the requester the usual acknowledgement (with the link to their page).
    #[serde(default = "yes")]
    acknowledge: bool,
}

const MAX_SUBJECT_CHARS: usize = 300;
const MAX_BODY_CHARS: usize = 200_000;

impl From<crate::helpdesk::customer::WebMailError> for ApiError {
    fn from(e: crate::helpdesk::customer::WebMailError) -> Self {
        use crate::helpdesk::customer::WebMailError as E;
        match e {
            E::Invalid { field, message } => {
                ApiError::invalid(if field == "email" { "requester" } else { field }, message)
            }
            E::NotTaken(message) => ApiError::new(StatusCode::CONFLICT, message),
            E::Store(e) => e.into(),
        }
    }
}

fn check_new(state: &AppState, new: &NewTicket) -> ApiResult<String> {
    use crate::domain::address;
    let email = address::normalize(&new.requester);
    if !address::is_valid(&email) || email.chars().any(char::is_whitespace) {
        return Err(ApiError::invalid(
            "requester",
            format!("{:?} is not an e-mail address", new.requester),
        ));
    }
    if state
        .config
        .helpdesk
        .support_addresses
        .iter()
        .any(|own| address::normalize(own) == email)
    {
        return Err(ApiError::invalid(
            "requester",
            "this is one of our own addresses",
        ));
    }
    let text_field = |field: &str, value: &str, max: usize| {
        let count = value.trim().chars().count();
        if count == 0 {
            Err(ApiError::invalid(field, format!("the {field} is empty")))
        } else if count > max {
            Err(ApiError::invalid(
                field,
                format!("at most {max} characters (this has {count})"),
            ))
        } else {
            Ok(())
        }
    };
    text_field("subject", &new.subject, MAX_SUBJECT_CHARS)?;
    text_field("body", &new.body, MAX_BODY_CHARS)?;
    if let Some(category) = &new.category {
        if !state.config.helpdesk.categories.contains(category) {
            return Err(ApiError::invalid(
                "category",
                format!(
                    "{category:?} is not one of {}",
                    state.config.helpdesk.categories.join(", ")
                ),
            ));
        }
    }
    Ok(email)
}

/// `POST /api/v1/tickets`: a new ticket for a requester, taken in like their mail
/// (threading, notifications), acknowledged unless `acknowledge` is false.
#[utoipa::path(post, path = "/api/v1/tickets", tag = "tickets", request_body = NewTicket,
    responses(
        (status = CREATED, description = "The new ticket", body = Full,
            headers(("Location" = String, description = "The ticket's address"), ("ETag" = String))),
        (status = CONFLICT, description = "Mail from this requester is not taken (e.g. blocked)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(new): ApiJson<NewTicket>,
) -> ApiResult<Response> {
    caller
        .actor
        .require(crate::domain::access::Action::WorkTickets, "open tickets")?;
    let email = check_new(&state, &new)?;
    let message = crate::helpdesk::customer::WebMessage {
        email: &email,
        name: new
            .requester_name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty()),
        subject: new.subject.trim(),
        body: &new.body,
        uploads: &[],
    };
    let source = format!("api:{}", caller.actor.user.email);
    let id = crate::helpdesk::customer::open(
        &state.ingestor,
        &message,
        new.category.as_deref(),
        &source,
        new.acknowledge,
    )
    .await?;
    state.wake.ring(JobKind::Outbox);
    tracing::info!(ticket_id = id, by = %caller.actor.user.email, "ticket opened through the API");
    let mut response = full(&state, id, StatusCode::CREATED).await?;
    if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/tickets/{id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// `DELETE /api/v1/tickets/{ref}` (admin): the ticket and what only it holds; answers
/// with what went.
#[utoipa::path(delete, path = "/api/v1/tickets/{reference}", tag = "tickets", params(TicketRef),
    responses((status = OK, description = "Deleted, with what went", body = crate::store::tickets::Deleted)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(reference_text): Path<String>,
) -> ApiResult<Response> {
    let id = reference(&reference_text)?;
    let mut tx = state.store.unit_of_work(&state.wake).await?;
    let deleted = actions::delete_ticket(&mut tx, &caller.actor, id).await?;
    tx.commit().await?;
    Ok(json(StatusCode::OK, &deleted))
}
