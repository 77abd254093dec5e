//! `/api/v1/webhooks` (admins): register, list, change and delete webhooks, see each
//! delivery's state and queue a failed one again. Deliveries themselves are made by the
//! database triggers and `crate::integrations::webhooks::WebhookWorker`.
//!
//! The secret is returned when the webhook is made and by `GET /webhooks/{id}` (admins
//! only; never in the list): it must be kept as is to sign, so hiding it after creation
//! would protect nothing from an admin, and a lost secret would need a rotation
//! (`"rotate_secret": true` in a PATCH makes a new one).

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::openapi::Id;
use super::problem::Problem;
use super::{json, ApiError, ApiJson, ApiQuery, ApiResult, Caller};
use crate::domain::access::Action;
use crate::integrations::webhooks::{check_target, check_url, new_secret, parse_events};
use crate::store::{unix_now, webhooks as store};
use crate::web::AppState;

/// A webhook as the API shows it: events as a list; the secret only where said.
#[derive(Serialize, utoipa::ToSchema)]
struct WebhookView {
    id: i64,
    url: String,
    events: Vec<String>,
    active: bool,
    created_by: Option<i64>,
    created_at: i64,
    updated_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

impl WebhookView {
    fn of(w: store::Webhook, secret: Option<String>) -> WebhookView {
        WebhookView {
            id: w.id,
            url: w.url,
            events: w.events.split(',').map(str::to_string).collect(),
            active: w.active != 0,
            created_by: w.created_by,
            created_at: w.created_at,
            updated_at: w.updated_at,
            secret,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct Webhooks {
    webhooks: Vec<WebhookView>,
}

/// `GET /api/v1/webhooks` (admin)
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks",
    responses((status = OK, description = "Registered webhooks (without their secrets)", body = Webhooks)))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller
        .actor
        .require(Action::ManageIntegrations, "manage webhooks")?;
    let mut conn = state.store.acquire().await?;
    let webhooks = store::list(&mut conn)
        .await?
        .into_iter()
        .map(|w| WebhookView::of(w, None))
        .collect();
    Ok(json(StatusCode::OK, &Webhooks { webhooks }))
}

/// A URL's form and where it points (`webhooks.allow_private_targets`); a refusal names
/// the field `url`.
async fn checked_url(state: &AppState, url: &str) -> ApiResult<()> {
    let uri = check_url(url).map_err(|e| ApiError::invalid("url", e))?;
    check_target(&uri, &state.config.webhooks)
        .await
        .map_err(|e| ApiError::invalid("url", e))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// Where deliveries are POSTed (`https://`, or `http://` for a local receiver).
    /// Link-local and metadata addresses are refused; loopback and private ones unless
    /// `webhooks.allow_private_targets` is set.
    url: String,
    /// Any of `ticket.created`, `message.received`, `ticket.status_changed`,
    /// `ticket.assigned`, `task.changed`.
    events: Vec<String>,
    #[serde(default)]
    active: Option<bool>,
}

/// `POST /api/v1/webhooks` (admin): 201 with the webhook and its secret.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", request_body = NewWebhook,
    responses((status = CREATED, description = "The webhook with its signing secret", body = WebhookView,
        headers(("Location" = String)))))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewWebhook>,
) -> ApiResult<Response> {
    caller
        .actor
        .require(Action::ManageIntegrations, "manage webhooks")?;
    checked_url(&state, &body.url).await?;
    let events = parse_events(&body.events).map_err(|e| ApiError::invalid("events", e))?;
    let secret = new_secret();
    let url = body.url.trim();
    let mut conn = state.store.acquire().await?;
    let id = store::create(
        &mut conn,
        &store::NewWebhook {
            url,
            secret: &secret,
            events: &events,
            active: body.active.unwrap_or(true),
            created_by: Some(caller.actor.user.id),
        },
        unix_now(),
    )
    .await?;
    let webhook = store::get(&mut conn, id).await?;
    tracing::info!(user = %caller.actor.user.email, webhook_id = id, url, events, "webhook registered");
    let mut response = json(StatusCode::CREATED, &WebhookView::of(webhook, Some(secret)));
    if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/webhooks/{id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// `GET /api/v1/webhooks/{id}` (admin), with its secret.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}", tag = "webhooks", params(Id),
    responses((status = OK, description = "The webhook with its signing secret", body = WebhookView)))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    caller
        .actor
        .require(Action::ManageIntegrations, "manage webhooks")?;
    let id = super::parse_id(&id, "webhook")?;
    let mut conn = state.store.acquire().await?;
    let webhook = store::get(&mut conn, id).await?;
    let secret = store::secret(&mut conn, id).await?;
    Ok(json(
        StatusCode::OK,
        &WebhookView::of(webhook, Some(secret)),
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookChanges {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    events: Option<Vec<String>>,
    #[serde(default)]
    active: Option<bool>,
    /// `true`: a new secret (returned in the answer); the old one stops at once.
    #[serde(default)]
    rotate_secret: Option<bool>,
}

/// `PATCH /api/v1/webhooks/{id}` (admin)
#[utoipa::path(patch, path = "/api/v1/webhooks/{id}", tag = "webhooks", params(Id), request_body = WebhookChanges,
    responses((status = OK, description = "The webhook as it is now (with the new secret after a rotation)", body = WebhookView)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<WebhookChanges>,
) -> ApiResult<Response> {
    caller
        .actor
        .require(Action::ManageIntegrations, "manage webhooks")?;
    let id = super::parse_id(&id, "webhook")?;
    if let Some(url) = &body.url {
        checked_url(&state, url).await?;
    }
    let events = match &body.events {
        Some(events) => Some(parse_events(events).map_err(|e| ApiError::invalid("events", e))?),
        None => None,
    };
    let secret = body.rotate_secret.unwrap_or(false).then(new_secret);
    let mut conn = state.store.acquire().await?;
    store::update(
        &mut conn,
        id,
        &store::Changes {
            url: body.url.as_deref().map(str::trim),
            events: events.as_deref(),
            active: body.active,
            secret: secret.as_deref(),
        },
        unix_now(),
    )
    .await?;
    let webhook = store::get(&mut conn, id).await?;
    tracing::info!(user = %caller.actor.user.email, webhook_id = id, rotated = secret.is_some(), "webhook changed");
    Ok(json(StatusCode::OK, &WebhookView::of(webhook, secret)))
}

/// `DELETE /api/v1/webhooks/{id}` (admin): the webhook and its deliveries.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks", params(Id),
    responses((status = NO_CONTENT, description = "Deleted with its deliveries")))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    caller
        .actor
        .require(Action::ManageIntegrations, "manage webhooks")?;
    let id = super::parse_id(&id, "webhook")?;
    let mut conn = state.store.acquire().await?;
    store::delete(&mut conn, id).await?;
    tracing::info!(user = %caller.actor.user.email, webhook_id = id, "webhook deleted");
    Ok(axum::response::IntoResponse::into_response(
        StatusCode::NO_CONTENT,
    ))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// Deliveries with ids below this one (the next page).
    #[serde(default)]
    before: Option<i64>,
    /// At most this many (default 50, at most 200).
    #[serde(default)]
    limit: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Deliveries {
    deliveries: Vec<store::Delivery>,
    /// The `before` of the next page, if there may be one.
    next_before: Option<i64>,
}

/// `GET /api/v1/webhooks/{id}/deliveries` (admin): newest first.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks", params(Id, DeliveriesQuery),
    responses((status = OK, description = "Deliveries, newest first", body = Deliveries)))]
pub async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<DeliveriesQuery>,
) -> ApiResult<Response> {
    caller
        .actor
        .require(Action::ManageIntegrations, "manage webhooks")?;
    let id = super::parse_id(&id, "webhook")?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid("limit", "a number from 1 to 200"));
    }
    let mut conn = state.store.acquire().await?;
    store::get(&mut conn, id).await?;
    let deliveries = store::deliveries(&mut conn, id, query.before, limit).await?;
    let next_before = (deliveries.len() as i64 == limit)
        .then(|| deliveries.last().map(|d| d.id))
        .flatten();
    Ok(json(
        StatusCode::OK,
        &Deliveries {
            deliveries,
            next_before,
        },
    ))
}

/// `POST /api/v1/webhooks/deliveries/{id}/retry` (admin): a failed delivery is queued
/// again at once, with its idempotency key; 409 unless it failed.
#[utoipa::path(post, path = "/api/v1/webhooks/deliveries/{id}/retry", tag = "webhooks", params(Id),
    responses(
        (status = OK, description = "Queued again", body = store::Delivery),
        (status = CONFLICT, description = "The delivery has not failed", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn retry(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    caller
        .actor
        .require(Action::ManageIntegrations, "manage webhooks")?;
    let id = super::parse_id(&id, "webhook delivery")?;
    let mut conn = state.store.acquire().await?;
    let delivery = store::delivery(&mut conn, id).await?;
    if !store::requeue(&mut conn, id, unix_now()).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "delivery {id} is {}; only a failed delivery is retried",
                delivery.state
            ),
        ));
    }
    tracing::info!(user = %caller.actor.user.email, delivery_id = id, "webhook delivery queued again");
    Ok(json(StatusCode::OK, &store::delivery(&mut conn, id).await?))
}
