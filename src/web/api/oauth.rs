//! Machine clients (OAuth2 client-credentials grant, RFC 6749 §4.4): admins register a
//! client that acts as a staff user with at most a scope; the client trades its id and
//! secret at `POST /api/v1/oauth/token` for an access token (a JWT, `crate::integrations::oauth`) and
//! calls the API with it as a Bearer token.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, Extensions, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::openapi::Id;
use super::{json, ApiError, ApiJson, ApiResult, Caller, Scope, Via};
use crate::domain::access::Action;
use crate::helpdesk::actions::Actor;
use crate::integrations::oauth::{Grant, TokenError, CLIENT_PREFIX, TOKEN_LIFETIME};
use crate::mail::hash::sha256_hex;
use crate::store::oauth::{self as store, Client};
use crate::store::{unix_now, users, StoreError};
use crate::web::auth::{client_addr, constant_time_eq};
use crate::web::AppState;

/// A client's last-used time is written at most this often.
const TOUCH_EVERY_SECS: i64 = 60;

/// The caller of a request with a client's access token. The signature proves the token
/// is ours; the lookup proves the client is still registered, its user still active and
/// their credentials unchanged since the token was issued, so revoking the client,
/// disabling the user or changing their password stops the token's next request, as
/// with personal tokens.
pub(super) async fn by_client(state: &AppState, token: &str) -> ApiResult<Caller> {
    let now = unix_now();
    let claims = match state.oauth_keys.verify(&state.store, token, now).await {
        Ok(claims) => claims,
        Err(TokenError::Expired) => {
            return Err(ApiError::unauthorized("the access token has expired"))
        }
        Err(TokenError::Invalid) => {
            return Err(ApiError::unauthorized("the access token is not valid"))
        }
        Err(TokenError::Store(e)) => return Err(e.into()),
        Err(e @ TokenError::Key(_)) => {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                e.to_string(),
            ))
        }
    };
    let mut conn = state.store.acquire().await?;
    let found = store::find_usable(&mut conn, &claims.sub)
        .await?
        .ok_or_else(|| {
            ApiError::unauthorized(
                "the access token's client is revoked, or the user it acts as is disabled",
            )
        })?;
    if claims.credentials_version != found.credentials_version {
        return Err(ApiError::unauthorized(
            "the access token was issued before the password of the user it acts as changed (or the user was disabled); get a new one",
        ));
    }
    if found
        .last_used_at
        .is_none_or(|t| now - t >= TOUCH_EVERY_SECS)
    {
        store::touch(&mut conn, found.client_pk, now).await?;
    }
    // The token's scope, never beyond the client's as it is now.
    let scope = Scope::parse(&claims.scope)
        .unwrap_or(Scope::Read)
        .min(Scope::parse(&found.client_scope).unwrap_or(Scope::Read));
    let rate_key = format!("client:{}", claims.sub);
    Ok(Caller::by_bearer(found.user, scope, Via::Client, rate_key))
}

// ---- The token endpoint ----

/// An error of the token endpoint. It answers in OAuth's own format (RFC 6749 §5.2:
/// `{"error": code, "error_description": …}`), not problem+json: OAuth client libraries
/// read `error`, and this is the one endpoint they talk to.
#[derive(Debug)]
pub struct OAuthError {
    code: &'static str,
    description: String,
}

fn oauth_error(code: &'static str, description: impl Into<String>) -> OAuthError {
    OAuthError {
        code,
        description: description.into(),
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct OAuthErrorBody<'a> {
    error: &'a str,
    error_description: &'a str,
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        // A failed client authentication is 401 with a challenge (§5.2); the rest 400.
        let unauthorized = self.code == "invalid_client";
        let status = if unauthorized {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        };
        let mut response = json(
            status,
            &OAuthErrorBody {
                error: self.code,
                error_description: &self.description,
            },
        );
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if unauthorized {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"maildesk\""),
            );
        }
        response
    }
}

/// The token endpoint's refusals: OAuth's, or (rate limit, database) the API's own,
/// for which OAuth defines no code.
pub enum TokenRefusal {
    OAuth(OAuthError),
    Api(ApiError),
}

impl From<OAuthError> for TokenRefusal {
    fn from(e: OAuthError) -> Self {
        TokenRefusal::OAuth(e)
    }
}

impl<E: Into<ApiError>> From<E> for TokenRefusal {
    fn from(e: E) -> Self {
        TokenRefusal::Api(e.into())
    }
}

impl IntoResponse for TokenRefusal {
    fn into_response(self) -> Response {
        match self {
            TokenRefusal::OAuth(e) => e.into_response(),
            TokenRefusal::Api(e) => e.into_response(),
        }
    }
}

/// The token request's form (documentation only: the handler reads the form itself, to
/// refuse repeated parameters).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct TokenRequest {
    /// `client_credentials`
    grant_type: String,
    /// `read`, `write` or `admin`, within the client's; absent: the client's.
    scope: Option<String>,
    /// When not sent with HTTP Basic.
    client_id: Option<String>,
    client_secret: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Issued<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: i64,
    scope: &'a str,
}

/// The form's parameters, each at most once (§3.2: "parameters MUST NOT be included
/// more than once").
fn form_params(body: &[u8]) -> Result<Vec<(String, String)>, OAuthError> {
    let mut params: Vec<(String, String)> = Vec::new();
    for (name, value) in form_urlencoded::parse(body) {
        if params.iter().any(|(n, _)| *n == name) {
            return Err(oauth_error(
                "invalid_request",
                format!("the parameter {name} is given more than once"),
            ));
        }
        params.push((name.into_owned(), value.into_owned()));
    }
    Ok(params)
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// `Authorization: Basic base64(client_id:client_secret)`, each form-urlencoded first
/// (§2.3.1). `None` without the header; an error for a malformed one.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || {
        oauth_error(
            "invalid_client",
            "the Authorization header is not `Basic base64(client_id:client_secret)`",
        )
    };
    let value = value.to_str().map_err(|_| malformed())?;
    let (kind, encoded) = value.split_once(' ').ok_or_else(malformed)?;
    if !kind.eq_ignore_ascii_case("basic") {
        return Err(malformed());
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let unescape = |s: &str| -> String {
        form_urlencoded::parse(format!("v={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Ok(Some((unescape(id), unescape(secret))))
}

/// The scope asked for (space-separated, §3.3; our scopes include the lesser ones, so
/// the widest named is what is asked), within the client's own; the client's own when
/// none is asked.
fn granted_scope(asked: Option<&str>, client: Scope) -> Result<Scope, OAuthError> {
    let Some(asked) = asked.filter(|a| !a.trim().is_empty()) else {
        return Ok(client);
    };
    let mut widest = Scope::Read;
    for name in asked.split(' ').filter(|n| !n.is_empty()) {
        let scope = Scope::parse(name).ok_or_else(|| {
            oauth_error(
                "invalid_scope",
                format!("unknown scope {name:?}: read, write or admin"),
            )
        })?;
        widest = widest.max(scope);
    }
    if widest > client {
        return Err(oauth_error(
            "invalid_scope",
            format!(
                "this client's scope is {}; it cannot have {}",
                client.as_str(),
                widest.as_str()
            ),
        ));
    }
    Ok(widest)
}

/// `POST /api/v1/oauth/token`: the client-credentials grant.
#[utoipa::path(post, path = "/api/v1/oauth/token", tag = "oauth",
    security(("client" = []), ()),
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded",
        description = "RFC 6749 §4.4; the client authenticates with HTTP Basic or with `client_id` and `client_secret` in the form"),
    responses(
        (status = OK, description = "An access token for `Authorization: Bearer`", body = Issued),
        (status = BAD_REQUEST, description = "Refused (RFC 6749 §5.2)", body = OAuthErrorBody),
        (status = UNAUTHORIZED, description = "The client could not be authenticated", body = OAuthErrorBody),
    ))]
pub async fn token(
    State(state): State<AppState>,
    extensions: Extensions,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, TokenRefusal> {
    // Before the secret is checked: guessing secrets counts against the address.
    state
        .api_limits
        .check_client(&client_addr(&state, &headers, &extensions))?;
    require_form(&headers)?;
    let params = form_params(&body)?;
    let (client_id, secret) = client_credentials(&headers, &params)?;
    require_client_credentials_grant(&params)?;
    let now = unix_now();
    let client = authenticate(&state, &client_id, &secret).await?;
    let scope = granted_scope(
        param(&params, "scope"),
        Scope::parse(&client.scope).unwrap_or(Scope::Read),
    )?;
    let token = state
        .oauth_keys
        .issue(
            &state.store,
            &Grant {
                client_id: &client.client_id,
                scope: scope.as_str(),
                credentials_version: client.credentials_version,
            },
            now,
        )
        .await
        .map_err(|e| match e {
            TokenError::Store(e) => ApiError::from(e),
            other => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
        })?;
    let mut conn = state.store.acquire().await?;
    store::touch(&mut conn, client.id, now).await?;
    Ok(issued(&token, scope))
}

/// §4.4.2: the token request is a form.
fn require_form(headers: &HeaderMap) -> Result<(), TokenRefusal> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if is_form {
        return Ok(());
    }
    Err(oauth_error(
        "invalid_request",
        "send the parameters as application/x-www-form-urlencoded",
    )
    .into())
}

/// The client's id and secret, from HTTP Basic or the form (§2.3.1: one way only).
fn client_credentials(
    headers: &HeaderMap,
    params: &[(String, String)],
) -> Result<(String, String), TokenRefusal> {
    let in_form = match (param(params, "client_id"), param(params, "client_secret")) {
        (Some(id), Some(secret)) => Some((id.to_string(), secret.to_string())),
        (None, None) => None,
        _ => {
            return Err(oauth_error(
                "invalid_request",
                "send both client_id and client_secret, or use HTTP Basic",
            )
            .into())
        }
    };
    match (basic_credentials(headers)?, in_form) {
        (Some(_), Some(_)) => Err(oauth_error(
            "invalid_request",
            "authenticate the client one way only: HTTP Basic or the form fields",
        )
        .into()),
        (Some(credentials), None) | (None, Some(credentials)) => Ok(credentials),
        (None, None) => Err(oauth_error(
            "invalid_client",
            "authenticate the client: HTTP Basic, or client_id and client_secret",
        )
        .into()),
    }
}

fn require_client_credentials_grant(params: &[(String, String)]) -> Result<(), TokenRefusal> {
    match param(params, "grant_type") {
        None => Err(oauth_error("invalid_request", "grant_type is missing").into()),
        Some("client_credentials") => Ok(()),
        Some(other) => Err(oauth_error(
            "unsupported_grant_type",
            format!("{other:?} is not supported: use client_credentials"),
        )
        .into()),
    }
}

/// The usable client with this id and secret; one answer for every way it can fail, so
/// the reply tells a guesser nothing.
async fn authenticate(
    state: &AppState,
    client_id: &str,
    secret: &str,
) -> Result<store::GrantClient, TokenRefusal> {
    let mut conn = state.store.acquire().await?;
    let client = store::find_for_grant(&mut conn, client_id).await?;
    drop(conn);
    let wrong = || {
        oauth_error(
            "invalid_client",
            "unknown or revoked client, wrong secret, or its user is disabled",
        )
    };
    let client = client.ok_or_else(wrong)?;
    // Compared as hashes (fixed length), in constant time.
    if !constant_time_eq(
        sha256_hex(secret.as_bytes()).as_bytes(),
        client.secret_hash.as_bytes(),
    ) {
        tracing::warn!(client_id = %client.client_id, "OAuth token request with a wrong secret");
        return Err(wrong().into());
    }
    Ok(client)
}

/// §5.1: the token, never cached.
fn issued(token: &str, scope: Scope) -> Response {
    let mut response = json(
        StatusCode::OK,
        &Issued {
            access_token: token,
            token_type: "Bearer",
            expires_in: TOKEN_LIFETIME,
            scope: scope.as_str(),
        },
    );
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

// ---- Registration (admins) ----

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ClientList)]
struct List {
    clients: Vec<Client>,
}

/// `GET /api/v1/oauth/clients` (admin)
#[utoipa::path(get, path = "/api/v1/oauth/clients", tag = "oauth",
    responses((status = OK, description = "Registered clients (revoked ones too)", body = List)))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller
        .actor
        .require(Action::ManageIntegrations, "manage API clients")?;
    let mut conn = state.store.acquire().await?;
    let clients = store::list(&mut conn).await?;
    Ok(json(StatusCode::OK, &List { clients }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClient {
    name: String,
    scope: String,
    /// The id of the staff user the client acts as.
    acts_as: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Registered {
    #[serde(flatten)]
    client: Client,
    /// Shown this once; only its hash is kept.
    client_secret: String,
}

/// A registered client and its secret (shown once).
pub struct Made {
    pub client: Client,
    pub secret: String,
}

/// Why a client was not registered.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// A refused value: the field and why.
    #[error("{0}: {1}")]
    Invalid(&'static str, String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<RegisterError> for ApiError {
    fn from(e: RegisterError) -> Self {
        match e {
            RegisterError::Invalid(field, message) => ApiError::invalid(field, message),
            RegisterError::Store(e) => e.into(),
        }
    }
}

/// Registers a client (the API's and the portal's rule; the caller checked that `by` is
/// an admin): a name, a scope, and an active user to act as.
pub async fn register(
    state: &AppState,
    by: &Actor,
    name: &str,
    scope: &str,
    acts_as: i64,
) -> Result<Made, RegisterError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(RegisterError::Invalid(
            "name",
            "give the client a name of up to 100 characters (what it is)".into(),
        ));
    }
    let scope = Scope::parse(scope.trim())
        .ok_or_else(|| RegisterError::Invalid("scope", "choose read, write or admin".into()))?;
    let mut conn = state.store.acquire().await?;
    match users::get(&mut conn, acts_as).await {
        Ok(user) if user.active == 1 => {}
        Ok(_) | Err(StoreError::NotFound(_)) => {
            return Err(RegisterError::Invalid(
                "acts_as",
                format!("there is no active user {acts_as} to act as"),
            ))
        }
        Err(e) => return Err(e.into()),
    }
    let client_id = format!(
        "{CLIENT_PREFIX}{}",
        &crate::domain::secret::random_token()[..24]
    );
    // 32 random bytes: a SHA-256 of it is as safe as a slow hash (nothing to guess).
    let secret = crate::domain::secret::random_token();
    let now = unix_now();
    let id = store::create(
        &mut conn,
        &store::NewClient {
            client_id: &client_id,
            name,
            secret_hash: &sha256_hex(secret.as_bytes()),
            scope: scope.as_str(),
            acts_as,
            created_by: by.user.id,
        },
        now,
    )
    .await?;
    let client = store::get(&mut conn, id).await?;
    tracing::info!(by = %by.user.email, client_id = %client_id, scope = scope.as_str(), acts_as, "OAuth client registered");
    Ok(Made { client, secret })
}

/// `POST /api/v1/oauth/clients` (admin): answers with the secret, this once.
#[utoipa::path(post, path = "/api/v1/oauth/clients", tag = "oauth", request_body = NewClient,
    responses((status = CREATED, description = "The client with its secret, shown this once", body = Registered)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(new): ApiJson<NewClient>,
) -> ApiResult<Response> {
    caller
        .actor
        .require(Action::ManageIntegrations, "manage API clients")?;
    let made = register(&state, &caller.actor, &new.name, &new.scope, new.acts_as).await?;
    let location = format!("/api/v1/oauth/clients/{}", made.client.id);
    let mut response = json(
        StatusCode::CREATED,
        &Registered {
            client: made.client,
            client_secret: made.secret,
        },
    );
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(location) = HeaderValue::from_str(&location) {
        headers.insert(header::LOCATION, location);
    }
    Ok(response)
}

/// `DELETE /api/v1/oauth/clients/{id}` (admin): revokes the client; its live tokens
/// stop with their next request.
#[utoipa::path(delete, path = "/api/v1/oauth/clients/{id}", tag = "oauth", params(Id),
    responses((status = NO_CONTENT, description = "Revoked: its access tokens stop working at once")))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    caller
        .actor
        .require(Action::ManageIntegrations, "manage API clients")?;
    let id = id
        .parse::<i64>()
        .map_err(|_| ApiError::not_found(format!("there is no client {id:?}")))?;
    let mut conn = state.store.acquire().await?;
    store::revoke(&mut conn, id, unix_now()).await?;
    tracing::info!(by = %caller.actor.user.email, client = id, "OAuth client revoked");
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scope_asked_for_must_be_within_the_clients() {
        assert_eq!(granted_scope(None, Scope::Write).unwrap(), Scope::Write);
        assert_eq!(granted_scope(Some(""), Scope::Write).unwrap(), Scope::Write);
        assert_eq!(
            granted_scope(Some("read"), Scope::Write).unwrap(),
            Scope::Read
        );
        assert_eq!(
            granted_scope(Some("read write"), Scope::Write).unwrap(),
            Scope::Write
        );
        assert_eq!(
            granted_scope(Some("admin"), Scope::Write).unwrap_err().code,
            "invalid_scope"
        );
        assert_eq!(
            granted_scope(Some("root"), Scope::Admin).unwrap_err().code,
            "invalid_scope"
        );
    }

    #[test]
    fn basic_credentials_are_decoded_and_unescaped() {
        let mut headers = HeaderMap::new();
        assert!(basic_credentials(&headers).unwrap().is_none());
        let encoded = base64::engine::general_purpose::STANDARD.encode("mdc_a%3Ab:s+cret");
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {encoded}")).unwrap(),
        );
        assert_eq!(
            basic_credentials(&headers).unwrap(),
            Some(("mdc_a:b".to_string(), "s cret".to_string()))
        );
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        assert_eq!(
            basic_credentials(&headers).unwrap_err().code,
            "invalid_client"
        );
    }

    #[test]
    fn repeated_parameters_are_refused() {
        assert_eq!(
            form_params(b"grant_type=a&grant_type=b").unwrap_err().code,
            "invalid_request"
        );
        assert_eq!(form_params(b"a=1&b=2").unwrap().len(), 2);
    }
}
