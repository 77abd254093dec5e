//! `/portal/account`: one's own name, address, password and sessions.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum_extra::extract::Form;
use serde::Deserialize;

use crate::helpdesk::actions::ActionError;
use crate::helpdesk::users::{self as users_rules, By};
use crate::store::{sessions, unix_now};
use crate::web::auth::{check_own_password, ClientAddr, Staff};
use crate::web::error::{WebError, WebResult};
use crate::web::view::{self, Nav, Notice};
use crate::web::AppState;

struct SessionLine {
    id: String,
    current: bool,
    client: String,
    agent: String,
    started: String,
    seen: String,
}

#[derive(Template)]
#[template(path = "web/account.html")]
struct AccountPage {
    nav: Option<Nav>,
    name: String,
    email: String,
    role: String,
    sessions: Vec<SessionLine>,
    notice: Option<String>,
    error: Option<String>,
    /// The profile form as typed, with the field refused (if any).
    profile: crate::web::portal::users::FormState,
    csrf: String,
}

pub async fn show(
    State(state): State<AppState>,
    staff: Staff,
    notice: Option<Notice>,
) -> WebResult<Response> {
    let notice = notice.and_then(Notice::staff_text);
    render(&state, &staff, notice, None, StatusCode::OK).await
}

fn own_profile(staff: &Staff) -> crate::web::portal::users::FormState {
    crate::web::portal::users::FormState {
        name: staff.user().name.clone(),
        email: staff.user().email.clone(),
        ..Default::default()
    }
}

async fn render(
    state: &AppState,
    staff: &Staff,
    notice: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> WebResult<Response> {
    render_with(state, staff, notice, error, own_profile(staff), status).await
}

async fn render_with(
    state: &AppState,
    staff: &Staff,
    notice: Option<String>,
    error: Option<String>,
    profile: crate::web::portal::users::FormState,
    status: StatusCode,
) -> WebResult<Response> {
    let now = unix_now();
    let mut conn = state.store.acquire().await?;
    let list = sessions::list_for_user(&mut conn, staff.user().id, now).await?;
    let page = AccountPage {
        nav: Some(Nav::new(state, staff, "account")),
        name: staff.user().name.clone(),
        email: staff.user().email.clone(),
        role: staff.user().role.to_string(),
        sessions: list
            .into_iter()
            .map(|s| SessionLine {
                current: s.id_hash == staff.session_hash,
                id: s.id_hash,
                client: s.client_addr,
                agent: s.user_agent,
                started: view::time(s.created_at),
                seen: view::ago(s.last_seen_at, now),
            })
            .collect(),
        notice,
        error,
        profile,
        csrf: staff.csrf.clone(),
    };
    Ok((status, Html(page.render()?)).into_response())
}

#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    confirm: String,
}

/// A new password ends every other session of the user at once, revokes their API
/// tokens and stops the access tokens of OAuth clients acting as them.
pub async fn change_password(
    State(state): State<AppState>,
    staff: Staff,
    ClientAddr(client): ClientAddr,
    Form(form): Form<PasswordForm>,
) -> WebResult<Response> {
    let refuse = |message: &str| {
        render(
            &state,
            &staff,
            None,
            Some(message.to_string()),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
    };
    match check_own_password(&state, &client, staff.user(), &form.current).await {
        Ok(true) => {}
        Ok(false) => return refuse("current password: that is not your current password").await,
        Err(ActionError::Invalid { message, .. }) => {
            return refuse(&format!("current password: {message}")).await
        }
        Err(e) => return Err(e.into()),
    }
    let result = async {
        let hash = users_rules::hash_password(&form.new, Some(&form.confirm)).await?;
        let mut tx = state.store.unit_of_work(&state.wake).await?;
        let id = staff.user().id;
        let ended = users_rules::set_password(
            &mut tx,
            By::User(&staff.actor),
            id,
            &hash,
            Some(&staff.session_hash),
            unix_now(),
        )
        .await?;
        tx.commit().await?;
        Ok::<_, ActionError>(ended)
    }
    .await;
    match result {
        Ok(ended) => Ok(view::done(
            "/portal/account",
            Notice::PasswordChanged {
                other_sessions_ended: ended.sessions as i64,
                tokens_revoked: ended.tokens as i64,
            },
        )
        .into_response()),
        Err(ActionError::Invalid { message, .. }) => {
            refuse(&format!("new password: {message}")).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
pub struct ProfileForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    /// Needed to change the address (it is the sign-in name).
    #[serde(default)]
    current: String,
}

/// One's own name and address (the role stays; admins change roles on /portal/users).
pub async fn change_profile(
    State(state): State<AppState>,
    staff: Staff,
    ClientAddr(client): ClientAddr,
    Form(form): Form<ProfileForm>,
) -> WebResult<Response> {
    let typed = crate::web::portal::users::FormState {
        name: form.name.clone(),
        email: form.email.clone(),
        ..Default::default()
    };
    let result = async {
        let password_verified = !form.current.is_empty()
            && check_own_password(&state, &client, staff.user(), &form.current).await?;
        if !form.current.is_empty() && !password_verified {
            return Err(ActionError::Invalid {
                field: "current",
                message: "that is not your current password".into(),
            });
        }
        let mut tx = state.store.unit_of_work(&state.wake).await?;
        let edit = users_rules::Edit {
            name: &form.name,
            email: &form.email,
            role: None,
            password_verified,
        };
        let id = staff.user().id;
        users_rules::update(&mut tx, By::User(&staff.actor), id, &edit, unix_now()).await?;
        tx.commit().await?;
        Ok(())
    }
    .await;
    match result {
        Ok(()) => Ok(view::done("/portal/account", Notice::ProfileSaved).into_response()),
        Err(e) => {
            let (field, message) = crate::web::portal::users::refusal(e)?;
            let profile = crate::web::portal::users::FormState {
                field,
                message,
                ..typed
            };
            render_with(
                &state,
                &staff,
                None,
                None,
                profile,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct EndForm {
    #[serde(default)]
    session: String,
}

pub async fn end_session(
    State(state): State<AppState>,
    staff: Staff,
    Form(form): Form<EndForm>,
) -> WebResult<Redirect> {
    let mut conn = state.store.acquire().await?;
    if !sessions::delete_own(&mut conn, staff.user().id, &form.session).await? {
        return Err(WebError::NotFound("that session has already ended".into()));
    }
    Ok(view::done("/portal/account", Notice::SessionEnded))
}

pub async fn end_other_sessions(
    State(state): State<AppState>,
    staff: Staff,
) -> WebResult<Redirect> {
    let mut conn = state.store.acquire().await?;
    let ended =
        sessions::delete_for_user(&mut conn, staff.user().id, Some(&staff.session_hash)).await?;
    Ok(view::done(
        "/portal/account",
        Notice::OtherSessionsEnded {
            ended: ended as i64,
        },
    ))
}
