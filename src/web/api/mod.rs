//! The JSON API, `/api/v1`: the same rules and store code as the portal (the API adds
//! no second set of rules). Callers are staff, by personal API token (`Authorization:
//! Bearer mdk_…`), by an OAuth2 machine client's access token ([`oauth`]; it acts as the
//! staff user an admin chose), or by their portal session (browser clients, which must
//! then send the session's CSRF token in `X-CSRF-Token` with every change). A token acts
//! with at most its scope: `read` for GET, `write` to change (both checked here, by the
//! method), `admin` for admin actions, and never beyond its user's role. Admin actions
//! are the rules' to refuse: a token that is not admin-scoped acts as staff at most
//! ([`Actor::at_most`]), so every rule that needs an admin refuses it, with no check in
//! the handler to forget. Errors are `application/problem+json` ([`problem`]); the
//! OpenAPI document is generated from the handlers ([`openapi`]).

mod auth;
mod files;
pub mod limits;
pub mod oauth;
pub mod openapi;
pub mod problem;
mod tasks;
mod tickets;
mod users;
mod webhooks;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use serde::de::DeserializeOwned;
use serde::Serialize;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{constant_time_eq, session_staff};
use super::AppState;
use crate::domain::Role;
use crate::helpdesk::actions::Actor;
use crate::mail::hash::sha256_hex;
use crate::store::users::User;
use crate::store::{api_tokens, unix_now};
pub use problem::{ApiError, ApiResult};

/// What a token may do, each including the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Write,
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::Write, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The highest role a token of this scope acts as: admin actions need `admin`.
    fn ceiling(self) -> Role {
        match self {
            Scope::Admin => Role::Admin,
            Scope::Read | Scope::Write => Role::Staff,
        }
    }
}

/// The prefix of every personal token (so a leaked one is recognisable in a scan).
pub const TOKEN_PREFIX: &str = "mdk_";
/// A token's last-used time is written at most this often.
const TOUCH_EVERY_SECS: i64 = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    Token,
    Session,
    /// An OAuth2 machine client's access token ([`oauth`]).
    Client,
}

/// The staff member calling, and how far this request may go.
#[derive(Debug, Clone)]
pub struct Caller {
    pub actor: Actor,
    pub scope: Scope,
    pub via: Via,
    /// Whose allowance of requests this one counts against.
    rate_key: String,
    /// The portal session's id hash, for a session caller (to sign out).
    session_hash: Option<String>,
}

impl Caller {
    /// A caller by a token (personal or a client's) of `scope`, acting as `user`: as staff
    /// at most unless the scope is `admin`.
    fn by_bearer(user: User, scope: Scope, via: Via, rate_key: String) -> Caller {
        Caller {
            actor: Actor::at_most(user, scope.ceiling()),
            scope,
            via,
            rate_key,
            session_hash: None,
        }
    }

    /// Refuses a request beyond the token's scope (admin actions are the rules' to
    /// refuse, through the actor).
    pub fn require(&self, scope: Scope) -> ApiResult<()> {
        if self.scope >= scope {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this token's scope is {}; this needs {}",
                self.scope.as_str(),
                scope.as_str()
            )))
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Caller> {
        let address = super::auth::client_addr(state, &parts.headers, &parts.extensions);
        state.api_limits.check_client(&address)?;
        let caller = match bearer(parts)? {
            Some(token) if crate::integrations::oauth::looks_like_jwt(&token) => {
                oauth::by_client(state, &token).await?
            }
            Some(token) => by_token(state, &token).await?,
            None => by_session(state, parts).await?,
        };
        state.api_limits.check_caller(&caller.rate_key)?;
        // Reading needs `read`; everything else changes something.
        let needed = if matches!(parts.method, Method::GET | Method::HEAD) {
            Scope::Read
        } else {
            Scope::Write
        };
        caller.require(needed)?;
        Ok(caller)
    }
}

fn bearer(parts: &Parts) -> ApiResult<Option<String>> {
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().unwrap_or_default();
    match value.split_once(' ') {
        Some((kind, token)) if kind.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
            Ok(Some(token.trim().to_string()))
        }
        _ => Err(unauthorized(
            "the Authorization header is not `Bearer <token>`",
        )),
    }
}

fn unauthorized(detail: &str) -> ApiError {
    ApiError::unauthorized(detail)
}

async fn by_token(state: &AppState, token: &str) -> ApiResult<Caller> {
    let invalid = || {
        unauthorized(
            "the token is not valid (unknown, expired or revoked, or its user is disabled)",
        )
    };
    if !token.starts_with(TOKEN_PREFIX) {
        return Err(invalid());
    }
    let now = unix_now();
    let mut conn = state.store.acquire().await?;
    let found = api_tokens::find_usable(&mut conn, &sha256_hex(token.as_bytes()), now)
        .await?
        .ok_or_else(invalid)?;
    if found
        .last_used_at
        .is_none_or(|t| now - t >= TOUCH_EVERY_SECS)
    {
        api_tokens::touch(&mut conn, found.token_id, now).await?;
    }
    let scope = Scope::parse(&found.scope).unwrap_or(Scope::Read);
    let rate_key = format!("token:{}", found.token_id);
    Ok(Caller::by_bearer(found.user, scope, Via::Token, rate_key))
}

async fn by_session(state: &AppState, parts: &Parts) -> ApiResult<Caller> {
    let staff = session_staff(state, &parts.headers).await?.ok_or_else(|| {
        unauthorized(
            "sign in first: send `Authorization: Bearer <token>` or a portal session cookie",
        )
    })?;
    if !matches!(parts.method, Method::GET | Method::HEAD) {
        let sent = parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !constant_time_eq(sent.as_bytes(), staff.csrf.as_bytes()) {
            return Err(ApiError::forbidden(
                "a change made with a session cookie needs the session's CSRF token in X-CSRF-Token",
            ));
        }
    }
    Ok(Caller {
        rate_key: format!("user:{}", staff.actor.user.id),
        session_hash: Some(staff.session_hash),
        actor: staff.actor,
        scope: Scope::Admin,
        via: Via::Session,
    })
}

/// A JSON request body: `application/json`, every member known (unknown ones are
/// refused), and a refusal that names the member.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> ApiResult<Self> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send the body as application/json",
            ));
        }
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|e| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.body_text()))?;
        let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
        serde_path_to_error::deserialize(&mut deserializer)
            .map(ApiJson)
            .map_err(|e| refused_field(&e.path().to_string(), &e.inner().to_string()))
    }
}

/// Query parameters, every one known.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> ApiResult<Self> {
        let query = parts.uri.query().unwrap_or_default();
        serde_html_form::from_str(query)
            .map(ApiQuery)
            .map_err(|e| refused_field(".", &e.to_string()))
    }
}

/// A refusal naming the member: the path serde reached, or the unknown member's name.
fn refused_field(path: &str, message: &str) -> ApiError {
    let unknown = message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split('`').next());
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    // serde's path names an unknown member already; a missing one, only its parent.
    let field = match (unknown.or(missing), path) {
        (Some(name), "." | "") => name.to_string(),
        (Some(name), parent) if missing.is_some() => format!("{parent}.{name}"),
        (_, path) => path.to_string(),
    };
    if field == "." || field.is_empty() {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    } else {
        ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, field, message)
    }
}

/// A JSON response with the given status.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let mut response = (status, body).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(e) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// A resource's numeric id from the path: a positive integer, else 404 naming the thing.
pub fn parse_id(text: &str, what: &str) -> ApiResult<i64> {
    text.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::not_found(format!("there is no {what} {text:?}")))
}

/// An ETag over a resource's changeable state (each resource lists its own fields).
pub fn etag_of(state: &str) -> String {
    format!("\"{}\"", &sha256_hex(state.as_bytes())[..20])
}

/// Sets the `ETag` header.
pub fn with_etag(mut response: Response, tag: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(tag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

/// The `If-Match` a change must carry (428 without it).
pub fn if_match(headers: &HeaderMap, what: &str) -> ApiResult<String> {
    headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().trim_start_matches("W/").to_string())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::PRECONDITION_REQUIRED,
                format!("send If-Match with the {what}'s ETag (from GET), so that a change made meanwhile is not overwritten"),
            )
        })
}

/// Refuses a change whose `If-Match` is not the resource's current ETag (412).
pub fn require_current(expected: &str, current: &str, what: &str) -> ApiResult<()> {
    if expected == "*" || expected == current {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            format!("the {what} changed since you read it: GET it again and decide anew"),
        ))
    }
}

/// The most rows one page returns.
pub const MAX_PAGE: i64 = 200;

/// A list's page size: `limit` if given (1 to [`MAX_PAGE`]), else `default`.
pub fn page_limit(limit: Option<i64>, default: i64) -> ApiResult<i64> {
    let limit = limit.unwrap_or(default);
    if (1..=MAX_PAGE).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::invalid(
            "limit",
            format!("limit must be from 1 to {MAX_PAGE}"),
        ))
    }
}

/// Present and `null` (clear) told apart from absent (leave as it is).
pub(super) fn present<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

async fn not_found() -> ApiError {
    ApiError::not_found("there is no API resource at this address")
}

/// Which browser pages (other than ours) may call the API with a token: none unless
/// `web.cors_origins` names them. No credentials: cookies stay same-site.
fn cors(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::IF_MATCH,
            ])
            .expose_headers([header::ETAG, header::RETRY_AFTER, header::LOCATION])
            .max_age(std::time::Duration::from_secs(600)),
    )
}

/// The API's routes. Each is registered through `routes!`, which takes the path and
/// methods from the handler's `#[utoipa::path]`: the router and the OpenAPI document
/// ([`openapi`]) come from this one table, so no route goes undocumented. Schema names
/// are global in the document: a body type whose name repeats another module's needs
/// `#[schema(as = …)]` (as `tickets::Page` is `TicketPage`).
pub fn routes(state: &AppState) -> Router<AppState> {
    let (router, document) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(openapi::document))
        .routes(routes!(auth::verify))
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::register))
        .routes(routes!(tickets::list, tickets::create))
        .routes(routes!(tickets::show, tickets::update, tickets::delete))
        .routes(routes!(tickets::reply))
        .routes(routes!(tickets::note))
        .routes(routes!(tickets::merge))
        .routes(routes!(users::list, users::invite))
        .routes(routes!(users::show, users::update, users::delete))
        .routes(routes!(files::attachment))
        .routes(routes!(files::list))
        .routes(routes!(files::show))
        .routes(routes!(files::retry))
        .routes(routes!(tasks::list, tasks::create))
        .routes(routes!(tasks::show, tasks::update, tasks::delete))
        .routes(routes!(oauth::token))
        .routes(routes!(oauth::list, oauth::create))
        .routes(routes!(oauth::revoke))
        .routes(routes!(webhooks::list, webhooks::create))
        .routes(routes!(webhooks::show, webhooks::update, webhooks::delete))
        .routes(routes!(webhooks::deliveries))
        .routes(routes!(webhooks::retry))
        .split_for_parts();
    let router = router
        .layer(Extension(openapi::Document::new(document)))
        // Not a route: what every other path under /api/v1 answers.
        .route("/api/v1/{*rest}", axum::routing::any(not_found));
    match cors(&state.config.web.cors_origins) {
        Some(layer) => router.layer(layer),
        None => router,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_include_the_lesser_ones() {
        assert!(Scope::Admin > Scope::Write && Scope::Write > Scope::Read);
        assert_eq!(Scope::parse("write"), Some(Scope::Write));
        assert_eq!(Scope::parse("root"), None);
    }

    #[test]
    fn refusals_name_the_member() {
        let e = refused_field("colour", "unknown field `colour`, expected one of `status`");
        assert_eq!(e.field.as_deref(), Some("colour"));
        let e = refused_field(".", "missing field `body`");
        assert_eq!(e.field.as_deref(), Some("body"));
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        let e = refused_field("assignee", "invalid type: string \"x\", expected i64");
        assert_eq!(e.field.as_deref(), Some("assignee"));
        assert_eq!(
            refused_field(".", "EOF while parsing").status,
            StatusCode::BAD_REQUEST
        );
    }
}
