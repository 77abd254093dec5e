//! `/api/v1/auth`: sign-in and sign-out for browser clients (a portal session cookie
//! plus its CSRF token, which every change must then carry in `X-CSRF-Token`), who am I,
//! and registering by invitation. Scripts use tokens instead.

use axum::extract::State;
use axum::http::{Extensions, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::problem::Problem;
use super::{json, ApiError, ApiJson, ApiResult, Caller, Scope, Via};
use crate::helpdesk::users as rules;
use crate::store::{sessions, unix_now, users};
use crate::web::auth::{
    check_credentials, clear_session_cookie, client_addr, start_session, Credentials,
};
use crate::web::AppState;

#[derive(Serialize, utoipa::ToSchema)]
struct Verified {
    user: users::User,
    via: Via,
    scope: Scope,
}

/// `GET /api/v1/auth/verify`: who is calling, with which role and scope.
#[utoipa::path(get, path = "/api/v1/auth/verify", tag = "auth",
    responses((status = OK, description = "The caller, how it signed in and its scope", body = Verified)))]
pub async fn verify(caller: Caller) -> Response {
    json(
        StatusCode::OK,
        &Verified {
            user: caller.actor.user,
            via: caller.via,
            scope: caller.scope,
        },
    )
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    email: String,
    password: String,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Session {
    user: users::User,
    /// Send it as `X-CSRF-Token` with every change made with this session.
    csrf_token: String,
    expires_at: i64,
}

/// `POST /api/v1/auth/login`: the portal's sign-in (same throttle, same answer for an
/// unknown address as for a wrong password), answering with the session cookie.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", security(()), request_body = SignIn,
    responses(
        (status = OK, description = "Signed in: the session cookie is set", body = Session,
            headers(("Set-Cookie" = String, description = "The session cookie"))),
        (status = UNAUTHORIZED, description = "Wrong address or password", body = Problem, content_type = "application/problem+json"),
        (status = TOO_MANY_REQUESTS, description = "Too many failed sign-ins", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn login(
    State(state): State<AppState>,
    extensions: Extensions,
    headers: HeaderMap,
    ApiJson(sign_in): ApiJson<SignIn>,
) -> ApiResult<Response> {
    let client = client_addr(&state, &headers, &extensions);
    state.api_limits.check_client(&client)?;
    let email = crate::domain::address::normalize(sign_in.email.trim());
    let now = unix_now();
    let user = match check_credentials(&state, &client, &email, &sign_in.password, now).await? {
        Credentials::Throttled(seconds) => {
            return Err(ApiError {
                retry_after: Some(seconds.unsigned_abs()),
                ..ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many failed sign-ins for this account or from this address",
                )
            });
        }
        Credentials::Busy => return Err(ApiError::busy()),
        Credentials::Wrong => {
            return Err(ApiError::unauthorized(
                "the e-mail address or the password is wrong",
            ))
        }
        Credentials::Valid(user) => user,
    };
    let mut conn = state.store.acquire().await?;
    let started = start_session(&state, &headers, &mut conn, &user, &client, now).await?;
    let body = json(
        StatusCode::OK,
        &Session {
            user,
            csrf_token: started.csrf,
            expires_at: started.expires_at,
        },
    );
    Ok((started.jar, body).into_response())
}

/// `POST /api/v1/auth/logout`: ends the calling session (a token is revoked in the
/// portal instead).
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = NO_CONTENT, description = "The session has ended")))]
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Caller,
) -> ApiResult<Response> {
    let Some(session) = caller.session_hash.as_deref() else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "a token has no session to end: revoke it in the portal (Your account → API tokens)",
        ));
    };
    let mut conn = state.store.acquire().await?;
    sessions::delete(&mut conn, session).await?;
    tracing::info!(user = %caller.actor.user.email, "signed out through the API");
    Ok((
        clear_session_cookie(&state, &headers),
        StatusCode::NO_CONTENT,
    )
        .into_response())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// The token of the invitation link (`/portal/register?token=…`).
    token: String,
    name: String,
    password: String,
}

/// `POST /api/v1/auth/register`: redeems an invitation (once), creating the user with
/// the invited address and role.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", security(()), request_body = Registration,
    responses(
        (status = CREATED, description = "The new user", body = users::User),
        (status = GONE, description = "The invitation cannot be used", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn register(
    State(state): State<AppState>,
    extensions: Extensions,
    headers: HeaderMap,
    ApiJson(registration): ApiJson<Registration>,
) -> ApiResult<Response> {
    state
        .api_limits
        .check_client(&client_addr(&state, &headers, &extensions))?;
    let gone = || {
        ApiError::new(
            StatusCode::GONE,
            "this invitation cannot be used: unknown, used, revoked or expired; ask an admin for a new one",
        )
    };
    rules::clean_name(&registration.name)?;
    // The token before the hash: a made-up one costs a lookup, not argon2's memory.
    let mut conn = state.store.acquire().await?;
    rules::open_invitation(&mut conn, &registration.token, unix_now())
        .await?
        .ok_or_else(gone)?;
    drop(conn);
    let hash = rules::hash_password(&registration.password, None).await?;
    let mut tx = state.store.unit_of_work(&state.wake).await?;
    let user = rules::register(
        &mut tx,
        &registration.token,
        &registration.name,
        &hash,
        unix_now(),
    )
    .await?
    .ok_or_else(gone)?;
    tx.commit().await?;
    Ok(json(StatusCode::CREATED, &user))
}
