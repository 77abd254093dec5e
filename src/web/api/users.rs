//! `/api/v1/users`: admins list, invite, edit, disable and delete users (an admin-scoped
//! token); everyone reads and edits themselves. The rules are `users.rs`'s, as in the
//! portal (the last active admin stays, a user who owns something is disabled instead
//! of deleted). Changes need `If-Match` with the user's ETag.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::openapi::{Id, IfMatch};
use super::problem::Problem;
use super::{json, ApiError, ApiJson, ApiResult, Caller};
use crate::domain::access::Action;
use crate::helpdesk::users::{self as rules, By};
use crate::store::jobs::JobKind;
use crate::store::unix_now;
use crate::store::users::{self as user_store, User};
use crate::web::auth::{check_own_password, ClientAddr};
use crate::web::portal::users::invite_context;
use crate::web::AppState;

fn etag(user: &User) -> String {
    let state = format!(
        "{}|{}|{}|{}|{}",
        user.id, user.email, user.name, user.role, user.active
    );
    super::etag_of(&state)
}

fn user_response(user: &User, status: StatusCode) -> Response {
    super::with_etag(json(status, user), &etag(user))
}

fn user_id(text: &str) -> ApiResult<i64> {
    super::parse_id(text, "user")
}

/// Admins see anyone; everyone sees themselves.
fn may_see(caller: &Caller, id: i64) -> ApiResult<()> {
    if caller.actor.user.id == id {
        Ok(())
    } else {
        Ok(caller
            .actor
            .require(Action::ManageUsers, "see other users")?)
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = UserList)]
struct List {
    users: Vec<User>,
}

/// `GET /api/v1/users` (admin)
#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    responses((status = OK, description = "Every user", body = List)))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.actor.require(Action::ManageUsers, "list users")?;
    let mut conn = state.store.acquire().await?;
    let users = user_store::list(&mut conn).await?;
    Ok(json(StatusCode::OK, &List { users }))
}

/// `GET /api/v1/users/{id}`
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", params(Id),
    responses((status = OK, description = "The user", body = User,
        headers(("ETag" = String, description = "Send as `If-Match` to change the user")))))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = user_id(&id)?;
    may_see(&caller, id)?;
    let mut conn = state.store.acquire().await?;
    let user = user_store::get(&mut conn, id).await?;
    Ok(user_response(&user, StatusCode::OK))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInvitation {
    email: String,
    /// `staff` (default) or `admin`.
    #[serde(default)]
    role: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Invitation {
    invitation_id: i64,
    email: String,
    mailed: bool,
    /// The one-time link, only when it could not be mailed (no `[smtp]`): pass it on.
    #[serde(skip_serializing_if = "Option::is_none")]
    link: Option<String>,
}

/// `POST /api/v1/users` (admin): invites an address; the invitee registers by the link.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = NewInvitation,
    responses((status = CREATED, description = "The invitation", body = Invitation)))]
pub async fn invite(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(new): ApiJson<NewInvitation>,
) -> ApiResult<Response> {
    caller.actor.require(Action::ManageUsers, "invite users")?;
    let role = rules::parse_role(new.role.as_deref().unwrap_or("staff"))?;
    let ctx = invite_context(&state);
    let mut tx = state.store.unit_of_work(&state.wake).await?;
    let invited = rules::invite(&mut tx, &ctx, &caller.actor, &new.email, role).await?;
    tx.commit().await?;
    if invited.mailed {
        state.wake.ring(JobKind::Outbox);
    }
    Ok(json(
        StatusCode::CREATED,
        &Invitation {
            invitation_id: invited.id,
            email: invited.email,
            mailed: invited.mailed,
            link: (!invited.mailed).then_some(invited.link),
        },
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    active: Option<bool>,
    /// One's own current password: needed to change one's own e-mail address.
    #[serde(default)]
    current_password: Option<String>,
}

/// `PATCH /api/v1/users/{id}`: name and e-mail (oneself, or an admin), role and
/// active (an admin).
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", params(Id, IfMatch), request_body = UserChange,
    responses(
        (status = OK, description = "The user as it is now", body = User, headers(("ETag" = String))),
        (status = PRECONDITION_FAILED, description = "The user changed since the ETag was read", body = Problem, content_type = "application/problem+json"),
        (status = PRECONDITION_REQUIRED, description = "No `If-Match`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    ApiJson(change): ApiJson<UserChange>,
) -> ApiResult<Response> {
    let id = user_id(&id)?;
    may_see(&caller, id)?;
    let expected_tag = super::if_match(&headers, "user")?;
    let now = unix_now();
    let password_verified = match &change.current_password {
        Some(password) => {
            if !check_own_password(&state, &client, &caller.actor.user, password).await? {
                return Err(ApiError::invalid(
                    "current_password",
                    "this is not your current password",
                ));
            }
            true
        }
        None => false,
    };
    let mut tx = state.store.unit_of_work(&state.wake).await?;
    let user = user_store::get(&mut tx, id).await?;
    super::require_current(&expected_tag, &etag(&user), "user")?;
    let by = By::User(&caller.actor);
    let role = change.role.as_deref().map(rules::parse_role).transpose()?;
    if change.name.is_some() || change.email.is_some() || role.is_some() {
        let edit = rules::Edit {
            name: change.name.as_deref().unwrap_or(&user.name),
            email: change.email.as_deref().unwrap_or(&user.email),
            role: role.filter(|r| *r != user.role),
            password_verified,
        };
        rules::update(&mut tx, By::User(&caller.actor), id, &edit, now).await?;
    }
    if let Some(active) = change.active.filter(|a| *a != (user.active == 1)) {
        rules::set_active(&mut tx, by, id, active, now).await?;
    }
    let user = user_store::get(&mut tx, id).await?;
    tx.commit().await?;
    Ok(user_response(&user, StatusCode::OK))
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = DeletedUser)]
struct Deleted {
    /// The deleted user's id.
    deleted: i64,
    email: String,
}

/// `DELETE /api/v1/users/{id}` (admin): only a user who owns nothing.
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users", params(Id),
    responses((status = OK, description = "Deleted", body = Deleted)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    caller.actor.require(Action::ManageUsers, "delete users")?;
    let id = user_id(&id)?;
    let mut tx = state.store.unit_of_work(&state.wake).await?;
    let user = rules::delete(&mut tx, By::User(&caller.actor), id).await?;
    tx.commit().await?;
    Ok(json(
        StatusCode::OK,
        &Deleted {
            deleted: user.id,
            email: user.email,
        },
    ))
}
