//! `/portal/account`: one's own password and sessions.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum_extra::extract::{Form, Query};
use serde::Deserialize;
use tracing::info;

use super::auth::Staff;
use super::error::{WebError, WebResult};
use super::view::{self, Nav};
use super::AppState;
use crate::store::{sessions, unix_now, users};

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
    csrf: String,
}

#[derive(Debug, Deserialize, Default)]
pub struct Done {
    #[serde(default)]
    done: String,
}

pub async fn show(
    State(state): State<AppState>,
    staff: Staff,
    Query(done): Query<Done>,
) -> WebResult<Response> {
    render(
        &state,
        &staff,
        Some(done.done).filter(|d| !d.is_empty()),
        None,
        StatusCode::OK,
    )
    .await
}

async fn render(
    state: &AppState,
    staff: &Staff,
    notice: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> WebResult<Response> {
    let now = unix_now();
    let mut conn = state.store.acquire().await?;
    let list = sessions::list_for_user(&mut conn, staff.user().id, now).await?;
    let page = AccountPage {
        nav: Some(Nav::new(state, staff, "account")),
        name: staff.user().name.clone(),
        email: staff.user().email.clone(),
        role: staff.user().role.clone(),
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

/// A new password ends every other session of the user at once.
pub async fn change_password(
    State(state): State<AppState>,
    staff: Staff,
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
    if form.new != form.confirm {
        return refuse("new password: the two entries differ").await;
    }
    let stored = staff.user().password_hash.clone();
    let current = form.current.clone();
    let verified = tokio::task::spawn_blocking(move || crate::password::verify(&current, &stored))
        .await
        .unwrap_or(false);
    if !verified {
        return refuse("current password: that is not your current password").await;
    }
    let new = form.new.clone();
    let hash = match tokio::task::spawn_blocking(move || crate::password::hash(&new)).await {
        Ok(Ok(hash)) => hash,
        Ok(Err(e)) => return refuse(&format!("new password: {e}")).await,
        Err(e) => return Err(WebError::Internal(e.to_string())),
    };
    let mut tx = state.store.begin().await?;
    let now = unix_now();
    users::set_password_hash(&mut tx, staff.user().id, &hash, now).await?;
    let ended =
        sessions::delete_for_user(&mut tx, staff.user().id, Some(&staff.session_hash)).await?;
    tx.commit().await.map_err(crate::store::StoreError::from)?;
    info!(user = %staff.user().email, ended, "password changed; other sessions ended");
    Ok(view::done(
        "/portal/account",
        &format!("Password changed. {ended} other session(s) ended."),
    )
    .into_response())
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
    Ok(view::done("/portal/account", "Session ended."))
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
        &format!("{ended} other session(s) ended."),
    ))
}
