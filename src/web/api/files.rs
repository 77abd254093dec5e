//! `/api/v1/attachments/{id}` (a download, as in the portal: bytes, never interpreted)
//! and `/api/v1/quarantine` (admins: the list, one entry, a retry).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::openapi::Id;
use super::{json, parse_id, ApiError, ApiQuery, ApiResult, Caller};
use crate::domain::access::Action;
use crate::store::jobs::JobKind;
use crate::store::{messages, quarantine};
use crate::web::AppState;

/// `GET /api/v1/attachments/{id}`
#[utoipa::path(get, path = "/api/v1/attachments/{id}", tag = "attachments", operation_id = "download", params(Id),
    responses((status = OK, description = "The attachment's bytes, as a download", content_type = "application/octet-stream")))]
pub async fn attachment(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    caller
        .actor
        .require(Action::ViewTickets, "see attachments")?;
    let id = parse_id(&id, "attachment")?;
    let mut conn = state.store.acquire().await?;
    let (a, data) = messages::attachment_with_data(&mut conn, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("attachment {id} not found")))?;
    Ok(crate::web::portal::files::file_response(
        data,
        None,
        &a.filename,
    ))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct QuarantineQuery {
    /// `true`: resolved entries too.
    #[serde(default)]
    all: Option<bool>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = QuarantineEntries)]
struct Entries {
    entries: Vec<quarantine::Entry>,
}

fn require_quarantine(caller: &Caller) -> ApiResult<()> {
    Ok(caller
        .actor
        .require(Action::ManageQuarantine, "manage the quarantine")?)
}

/// `GET /api/v1/quarantine` (admin)
#[utoipa::path(get, path = "/api/v1/quarantine", tag = "quarantine", params(QuarantineQuery),
    responses((status = OK, description = "Quarantined messages, newest first", body = Entries)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<QuarantineQuery>,
) -> ApiResult<Response> {
    require_quarantine(&caller)?;
    let mut conn = state.store.acquire().await?;
    let entries = quarantine::list(&mut conn, query.all.unwrap_or(false)).await?;
    Ok(json(StatusCode::OK, &Entries { entries }))
}

/// `GET /api/v1/quarantine/{id}` (admin)
#[utoipa::path(get, path = "/api/v1/quarantine/{id}", tag = "quarantine", params(Id),
    responses((status = OK, description = "One quarantine entry", body = quarantine::Entry)))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    require_quarantine(&caller)?;
    let id = parse_id(&id, "quarantine entry")?;
    let mut conn = state.store.acquire().await?;
    Ok(json(StatusCode::OK, &quarantine::get(&mut conn, id).await?))
}

/// `POST /api/v1/quarantine/{id}/retry` (admin): the message is taken in again; the
/// answer says what became of it.
#[utoipa::path(post, path = "/api/v1/quarantine/{id}/retry", tag = "quarantine", params(Id),
    responses((status = OK, description = "What became of the message this time", body = crate::inbound::ingest::Outcome)))]
pub async fn retry(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    require_quarantine(&caller)?;
    let id = parse_id(&id, "quarantine entry")?;
    let outcome = state
        .ingestor
        .retry_quarantined(id)
        .await
        .map_err(|e| ApiError::from(e.0))?;
    state.wake.ring(JobKind::Outbox);
    Ok(json(StatusCode::OK, &outcome))
}
