//! `/portal/users` (admins): the users, adding and inviting them, editing, disabling,
//! deleting, new passwords; and `/portal/register` (public), where an invitee chooses a
//! name and password. The rules are in [`crate::helpdesk::users`].

use askama::Template;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use axum_extra::extract::{Form, Query};
use serde::Deserialize;

use crate::domain::access::Action;
use crate::domain::Role;
use crate::helpdesk::actions::ActionError;
use crate::helpdesk::users::{self as rules, By};
use crate::store::jobs::JobKind;
use crate::store::{invitations, unix_now, users};
use crate::web::auth::{self, Staff};
use crate::web::error::{WebError, WebResult};
use crate::web::view::{self, Nav, Notice};
use crate::web::AppState;

const REGISTER_COOKIE: &str = "maildesk_register";
const REGISTER_PATH: &str = "/portal/register";

/// A form's values as typed and the one field the rules refused (empty when none).
#[derive(Debug, Default, Clone)]
pub struct FormState {
    pub name: String,
    pub email: String,
    pub role: String,
    pub field: &'static str,
    pub message: String,
}

impl FormState {
    fn failed(mut self, (field, message): (&'static str, String)) -> FormState {
        self.field = field;
        self.message = message;
        self
    }
}

/// A refusal the form can show next to a field; anything else is an error page.
pub(in crate::web) fn refusal(e: ActionError) -> WebResult<(&'static str, String)> {
    match e {
        ActionError::Invalid { field, message } | ActionError::Conflict { field, message, .. } => {
            Ok((field, message))
        }
        other => Err(other.into()),
    }
}

struct UserLine {
    u: users::Overview,
    last_login: String,
}

struct InvitationLine {
    i: invitations::Invitation,
    sent: String,
    expires: String,
    expired: bool,
}

#[derive(Template)]
#[template(path = "web/users.html")]
struct UsersPage {
    nav: Option<Nav>,
    csrf: String,
    users: Vec<UserLine>,
    invitations: Vec<InvitationLine>,
    notice: Option<String>,
    create: FormState,
    invite: FormState,
    roles: [&'static str; 2],
}

fn require_admin(staff: &Staff) -> WebResult<()> {
    Ok(staff.actor.require(Action::ManageUsers, "manage users")?)
}

async fn users_page(
    state: &AppState,
    staff: &Staff,
    notice: Option<String>,
    create: FormState,
    invite: FormState,
    status: StatusCode,
) -> WebResult<Response> {
    let now = unix_now();
    let mut conn = state.store.acquire().await?;
    let list = users::overview(&mut conn).await?;
    let pending = invitations::pending(&mut conn).await?;
    let page = UsersPage {
        nav: Some(Nav::new(state, staff, "users")),
        csrf: staff.csrf.clone(),
        users: list
            .into_iter()
            .map(|u| UserLine {
                last_login: u
                    .last_login_at
                    .map_or("never".into(), |t| view::ago(t, now)),
                u,
            })
            .collect(),
        invitations: pending
            .into_iter()
            .map(|i| InvitationLine {
                sent: view::ago(i.created_at, now),
                expires: view::time(i.expires_at),
                expired: i.expires_at <= now,
                i,
            })
            .collect(),
        notice,
        create,
        invite,
        roles: role_names(),
    };
    Ok((status, Html(page.render()?)).into_response())
}

fn blank_form() -> FormState {
    FormState {
        role: "staff".into(),
        ..FormState::default()
    }
}

pub async fn list(
    State(state): State<AppState>,
    staff: Staff,
    notice: Option<Notice>,
) -> WebResult<Response> {
    require_admin(&staff)?;
    users_page(
        &state,
        &staff,
        notice.and_then(Notice::staff_text),
        blank_form(),
        blank_form(),
        StatusCode::OK,
    )
    .await
}

#[derive(Debug, Deserialize, Default)]
pub struct CreateForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

pub async fn create(
    State(state): State<AppState>,
    staff: Staff,
    Form(form): Form<CreateForm>,
) -> WebResult<Response> {
    require_admin(&staff)?;
    let typed = FormState {
        name: form.name.clone(),
        email: form.email.clone(),
        role: form.role.clone(),
        ..FormState::default()
    };
    match add_user(&state, &staff, &form).await {
        Ok(()) => Ok(view::done("/portal/users", Notice::UserAdded).into_response()),
        Err(e) => {
            let failed = typed.failed(refusal(e)?);
            users_page(
                &state,
                &staff,
                None,
                failed,
                blank_form(),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

async fn add_user(state: &AppState, staff: &Staff, form: &CreateForm) -> Result<(), ActionError> {
    // Cheap checks first, so a typo does not cost an argon2 hash.
    let name = rules::clean_name(&form.name)?;
    let email = rules::clean_email(&form.email)?;
    let role = rules::parse_role(&form.role)?;
    let hash = rules::hash_password(&form.password, Some(&form.confirm)).await?;
    let mut tx = state.store.unit_of_work(&state.wake).await?;
    let account = rules::NewAccount {
        name: &name,
        email: &email,
        role,
        password_hash: &hash,
    };
    rules::create(&mut tx, By::User(&staff.actor), &account, unix_now()).await?;
    tx.commit().await?;
    Ok(())
}

#[derive(Debug, Deserialize, Default)]
pub struct InviteForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

pub(in crate::web) fn invite_context(state: &AppState) -> rules::InviteContext<'_> {
    rules::InviteContext {
        outbound: state.outbound(),
        helpdesk: &state.config.helpdesk.name,
        web: &state.config.web,
        now: unix_now(),
    }
}

/// After an invitation: back to the list saying it was mailed; without `[smtp]` the page
/// shows the link itself (rendered, not redirected, so the token stays out of URLs).
async fn invited(state: &AppState, staff: &Staff, invited: rules::Invited) -> WebResult<Response> {
    if invited.mailed {
        state.wake.ring(JobKind::Outbox);
        return Ok(view::done("/portal/users", Notice::InvitationMailed).into_response());
    }
    let notice = format!(
        "No mail was sent (no [smtp] configured, or the address cannot receive mail). Give {} this link yourself: {}",
        invited.email, invited.link
    );
    users_page(
        state,
        staff,
        Some(notice),
        blank_form(),
        blank_form(),
        StatusCode::OK,
    )
    .await
}

pub async fn invite(
    State(state): State<AppState>,
    staff: Staff,
    Form(form): Form<InviteForm>,
) -> WebResult<Response> {
    require_admin(&staff)?;
    let typed = FormState {
        email: form.email.clone(),
        role: form.role.clone(),
        ..FormState::default()
    };
    let result = async {
        let role = rules::parse_role(&form.role)?;
        let mut tx = state.store.unit_of_work(&state.wake).await?;
        let done = rules::invite(
            &mut tx,
            &invite_context(&state),
            &staff.actor,
            &form.email,
            role,
        )
        .await?;
        tx.commit().await?;
        Ok::<_, ActionError>(done)
    }
    .await;
    match result {
        Ok(done) => invited(&state, &staff, done).await,
        Err(e) => {
            let failed = typed.failed(refusal(e)?);
            users_page(
                &state,
                &staff,
                None,
                blank_form(),
                failed,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

pub async fn resend_invitation(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
) -> WebResult<Response> {
    require_admin(&staff)?;
    let mut tx = state.store.unit_of_work(&state.wake).await?;
    let done = rules::resend(&mut tx, &invite_context(&state), &staff.actor, id).await?;
    tx.commit().await?;
    invited(&state, &staff, done).await
}

pub async fn revoke_invitation(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
) -> WebResult<Redirect> {
    require_admin(&staff)?;
    let mut tx = state.store.unit_of_work(&state.wake).await?;
    rules::revoke_invitation(&mut tx, &staff.actor, id, unix_now()).await?;
    tx.commit().await?;
    Ok(view::done("/portal/users", Notice::InvitationRevoked))
}

#[derive(Template)]
#[template(path = "web/user.html")]
struct UserPage {
    nav: Option<Nav>,
    csrf: String,
    user: users::User,
    is_self: bool,
    /// Why the user cannot be deleted (empty when they can).
    owned: String,
    form: FormState,
    /// A refused disable, enable, delete or new password.
    error: Option<String>,
    password_error: Option<String>,
    notice: Option<String>,
    roles: [&'static str; 2],
}

struct UserView {
    notice: Option<String>,
    form: Option<FormState>,
    error: Option<String>,
    password_error: Option<String>,
}

async fn user_page(
    state: &AppState,
    staff: &Staff,
    id: i64,
    shown: UserView,
    status: StatusCode,
) -> WebResult<Response> {
    let mut conn = state.store.acquire().await?;
    let user = users::get(&mut conn, id).await?;
    let owned = users::owned(&mut conn, id)
        .await?
        .iter()
        .map(|(what, n)| format!("{n} {what}"))
        .collect::<Vec<_>>()
        .join(", ");
    let form = shown.form.unwrap_or_else(|| FormState {
        name: user.name.clone(),
        email: user.email.clone(),
        role: user.role.to_string(),
        ..FormState::default()
    });
    let page = UserPage {
        nav: Some(Nav::new(state, staff, "users")),
        csrf: staff.csrf.clone(),
        is_self: staff.user().id == id,
        user,
        owned,
        form,
        error: shown.error,
        password_error: shown.password_error,
        notice: shown.notice,
        roles: role_names(),
    };
    Ok((status, Html(page.render()?)).into_response())
}

fn user_path(id: i64) -> String {
    format!("/portal/users/{id}")
}

pub async fn show(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
    notice: Option<Notice>,
) -> WebResult<Response> {
    require_admin(&staff)?;
    let shown = UserView {
        notice: notice.and_then(Notice::staff_text),
        form: None,
        error: None,
        password_error: None,
    };
    user_page(&state, &staff, id, shown, StatusCode::OK).await
}

#[derive(Debug, Deserialize, Default)]
pub struct EditForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
    /// One's own current password (changing one's own address).
    #[serde(default)]
    current: String,
}

pub async fn update(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
    auth::ClientAddr(client): auth::ClientAddr,
    Form(form): Form<EditForm>,
) -> WebResult<Response> {
    require_admin(&staff)?;
    let typed = FormState {
        name: form.name.clone(),
        email: form.email.clone(),
        role: form.role.clone(),
        ..FormState::default()
    };
    let result = async {
        let role = rules::parse_role(&form.role)?;
        let password_verified = !form.current.is_empty()
            && auth::check_own_password(&state, &client, staff.user(), &form.current).await?;
        let mut tx = state.store.unit_of_work(&state.wake).await?;
        let edit = rules::Edit {
            name: &form.name,
            email: &form.email,
            role: Some(role),
            password_verified,
        };
        let user = rules::update(&mut tx, By::User(&staff.actor), id, &edit, unix_now()).await?;
        tx.commit().await?;
        Ok::<_, ActionError>(user)
    }
    .await;
    match result {
        Ok(_) => Ok(view::done(&user_path(id), Notice::UserSaved).into_response()),
        Err(e) => {
            let shown = UserView {
                notice: None,
                form: Some(typed.failed(refusal(e)?)),
                error: None,
                password_error: None,
            };
            user_page(&state, &staff, id, shown, StatusCode::UNPROCESSABLE_ENTITY).await
        }
    }
}

/// The user page again with a refusal at the top.
async fn refused(state: &AppState, staff: &Staff, id: i64, e: ActionError) -> WebResult<Response> {
    let (_, message) = refusal(e)?;
    let shown = UserView {
        notice: None,
        form: None,
        error: Some(message),
        password_error: None,
    };
    user_page(state, staff, id, shown, StatusCode::UNPROCESSABLE_ENTITY).await
}

async fn switch(state: &AppState, staff: &Staff, id: i64, active: bool) -> WebResult<Response> {
    require_admin(staff)?;
    let result = async {
        let mut tx = state.store.unit_of_work(&state.wake).await?;
        let switched =
            rules::set_active(&mut tx, By::User(&staff.actor), id, active, unix_now()).await?;
        tx.commit().await?;
        Ok::<_, ActionError>(switched)
    }
    .await;
    match result {
        Ok((_, ended)) => {
            let notice = if active {
                Notice::UserEnabled
            } else {
                Notice::UserDisabled {
                    sessions_ended: ended.sessions as i64,
                    tokens_revoked: ended.tokens as i64,
                }
            };
            Ok(view::done(&user_path(id), notice).into_response())
        }
        Err(e) => refused(state, staff, id, e).await,
    }
}

pub async fn disable(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
) -> WebResult<Response> {
    switch(&state, &staff, id, false).await
}

pub async fn enable(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
) -> WebResult<Response> {
    switch(&state, &staff, id, true).await
}

pub async fn delete(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
) -> WebResult<Response> {
    require_admin(&staff)?;
    let result = async {
        let mut tx = state.store.unit_of_work(&state.wake).await?;
        let user = rules::delete(&mut tx, By::User(&staff.actor), id).await?;
        tx.commit().await?;
        Ok::<_, ActionError>(user)
    }
    .await;
    match result {
        Ok(_) => Ok(view::done("/portal/users", Notice::UserDeleted).into_response()),
        Err(e) => refused(&state, &staff, id, e).await,
    }
}

#[derive(Debug, Deserialize, Default)]
pub struct PasswordForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

/// An admin sets a new password for a user (and passes it on); their sessions and API
/// tokens end.
pub async fn reset_password(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
    Form(form): Form<PasswordForm>,
) -> WebResult<Response> {
    require_admin(&staff)?;
    let result = async {
        let hash = rules::hash_password(&form.password, Some(&form.confirm)).await?;
        let mut tx = state.store.unit_of_work(&state.wake).await?;
        // One's own current session stays (the account page does the same).
        let keep = (staff.user().id == id).then_some(staff.session_hash.as_str());
        let ended =
            rules::set_password(&mut tx, By::User(&staff.actor), id, &hash, keep, unix_now())
                .await?;
        tx.commit().await?;
        Ok::<_, ActionError>(ended)
    }
    .await;
    match result {
        Ok(ended) => Ok(view::done(
            &user_path(id),
            Notice::NewPasswordSet {
                sessions_ended: ended.sessions as i64,
                tokens_revoked: ended.tokens as i64,
            },
        )
        .into_response()),
        Err(e) => {
            let (_, message) = refusal(e)?;
            let shown = UserView {
                notice: None,
                form: None,
                error: None,
                password_error: Some(message),
            };
            user_page(&state, &staff, id, shown, StatusCode::UNPROCESSABLE_ENTITY).await
        }
    }
}

#[derive(Template)]
#[template(path = "web/register.html")]
struct RegisterPage<'a> {
    nav: Option<Nav>,
    helpdesk: &'a str,
    csrf: &'a str,
    token: &'a str,
    email: &'a str,
    name: &'a str,
    field: &'static str,
    message: &'a str,
}

fn gone() -> WebError {
    WebError::Gone(
        "This invitation link cannot be used: it may have expired, been used already or been withdrawn. Ask an administrator for a new invitation.".into(),
    )
}

#[derive(Debug, Deserialize, Default)]
pub struct RegisterQuery {
    #[serde(default)]
    token: String,
}

struct RegisterView<'a> {
    token: &'a str,
    email: &'a str,
    name: &'a str,
    field: &'static str,
    message: &'a str,
}

fn register_response(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    shown: &RegisterView<'_>,
) -> WebResult<Response> {
    let csrf = crate::domain::secret::random_token();
    let page = RegisterPage {
        nav: None,
        helpdesk: &state.config.helpdesk.name,
        csrf: &csrf,
        token: shown.token,
        email: shown.email,
        name: shown.name,
        field: shown.field,
        message: shown.message,
    };
    let cookie = auth::form_cookie(state, headers, REGISTER_COOKIE, REGISTER_PATH, csrf.clone());
    Ok((status, CookieJar::new().add(cookie), Html(page.render()?)).into_response())
}

pub async fn register_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<RegisterQuery>,
) -> WebResult<Response> {
    if query.token.is_empty() {
        return Err(WebError::BadRequest(
            "token: this page needs the link from your invitation mail".into(),
        ));
    }
    let mut conn = state.store.acquire().await?;
    let invitation = rules::open_invitation(&mut conn, &query.token, unix_now())
        .await?
        .ok_or_else(gone)?;
    let shown = RegisterView {
        token: &query.token,
        email: &invitation.email,
        name: "",
        field: "",
        message: "",
    };
    register_response(&state, &headers, StatusCode::OK, &shown)
}

#[derive(Debug, Deserialize, Default)]
pub struct RegisterForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

/// Creates the invitee's account, uses the invitation up and signs them in.
pub async fn register(State(state): State<AppState>, request: Request) -> WebResult<Response> {
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    let client = auth::client_addr(&state, &headers, &parts.extensions);
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map_err(|_| WebError::BadRequest("the form is too large".into()))?;
    let form: RegisterForm = auth::parse_form(&bytes)?;
    let now = unix_now();
    let mut conn = state.store.acquire().await?;
    let invitation = rules::open_invitation(&mut conn, &form.token, now)
        .await?
        .ok_or_else(gone)?;
    drop(conn);
    let refuse = |status: StatusCode, field: &'static str, message: &str| {
        let shown = RegisterView {
            token: &form.token,
            email: &invitation.email,
            name: &form.name,
            field,
            message,
        };
        register_response(&state, &headers, status, &shown)
    };
    if !auth::form_token_ok(&headers, REGISTER_COOKIE, &form.csrf) {
        return refuse(
            StatusCode::FORBIDDEN,
            "form",
            "The form expired or did not come from this site. Please fill it in again.",
        );
    }
    let hashed = match rules::clean_name(&form.name) {
        Ok(_) => rules::hash_password(&form.password, Some(&form.confirm)).await,
        Err(e) => Err(e),
    };
    let hash = match hashed {
        Ok(hash) => hash,
        Err(e) => {
            let (field, message) = refusal(e)?;
            return refuse(StatusCode::UNPROCESSABLE_ENTITY, field, &message);
        }
    };
    let mut tx = state.store.unit_of_work(&state.wake).await?;
    let user = rules::register(&mut tx, &form.token, &form.name, &hash, now)
        .await?
        .ok_or_else(gone)?;
    let jar = auth::start_session(&state, &headers, &mut tx, &user, &client, now)
        .await?
        .jar;
    tx.commit().await?;
    let jar = jar.add(auth::removal_cookie(
        REGISTER_COOKIE,
        REGISTER_PATH,
        auth::is_https(&state, &headers),
    ));
    Ok((jar, Redirect::to("/portal")).into_response())
}

/// The role names the forms offer (checked again by the rules).
fn role_names() -> [&'static str; 2] {
    [Role::Staff.as_str(), Role::Admin.as_str()]
}
