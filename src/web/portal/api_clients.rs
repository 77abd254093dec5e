//! `/portal/admin/api-clients` (admins): the OAuth2 machine clients, registering one
//! (its secret is shown once, on the page that made it, never in an address or a
//! redirect) and revoking one (its live tokens stop with their next request). The rule
//! is the API's (`api::oauth::register`).

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Response};
use axum_extra::extract::Form;
use serde::Deserialize;

use crate::domain::access::Action;
use crate::store::{oauth, unix_now, users};
use crate::web::api::oauth::{register, RegisterError};
use crate::web::api::Scope;
use crate::web::auth::Staff;
use crate::web::error::{WebError, WebResult};
use crate::web::view::{self, MakeForm, Nav, Notice};
use crate::web::AppState;

const PAGE: &str = "/portal/admin/api-clients";

struct ClientLine {
    id: i64,
    name: String,
    client_id: String,
    scope: String,
    acts_as: String,
    created: String,
    used: String,
    revoked: bool,
}

#[derive(Template)]
#[template(path = "web/api_clients.html")]
struct ClientsPage {
    nav: Option<Nav>,
    csrf: String,
    clients: Vec<ClientLine>,
    /// Active users a client may act as: (id, "Name <email>").
    people: Vec<(i64, String)>,
    scopes: Vec<&'static str>,
    notice: Option<String>,
    /// The client just registered: its client_id and secret, shown this once.
    created: Option<(String, String)>,
    error: Option<(String, String)>,
    form: NewClientForm,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct NewClientForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    acts_as: String,
}

fn require_admin(staff: &Staff) -> WebResult<()> {
    Ok(staff
        .actor
        .require(Action::ManageIntegrations, "manage API clients")?)
}

pub async fn list(
    State(state): State<AppState>,
    staff: Staff,
    notice: Option<Notice>,
) -> WebResult<Response> {
    require_admin(&staff)?;
    render(&state, &staff, MakeForm::listed(notice)).await
}

async fn render(
    state: &AppState,
    staff: &Staff,
    shown: MakeForm<NewClientForm, (String, String)>,
) -> WebResult<Response> {
    let MakeForm {
        notice,
        created,
        error,
        form,
        status,
    } = shown;
    let now = unix_now();
    let mut conn = state.store.acquire().await?;
    let clients = oauth::list(&mut conn).await?;
    let people = users::list(&mut conn).await?;
    drop(conn);
    let page = ClientsPage {
        nav: Some(Nav::new(state, staff, "users")),
        csrf: staff.csrf.clone(),
        clients: clients
            .into_iter()
            .map(|c| ClientLine {
                id: c.id,
                name: c.name,
                client_id: c.client_id,
                scope: c.scope,
                acts_as: c.acts_as_email,
                created: crate::domain::datetime::utc_date(c.created_at),
                used: c.last_used_at.map_or("never".into(), |u| view::ago(u, now)),
                revoked: c.revoked_at.is_some(),
            })
            .collect(),
        people: people
            .into_iter()
            .filter(|u| u.active == 1)
            .map(|u| (u.id, format!("{} <{}>", u.name, u.email)))
            .collect(),
        scopes: Scope::ALL.iter().map(|s| s.as_str()).collect(),
        notice,
        created,
        error,
        form,
    };
    Ok((status, Html(page.render()?)).into_response())
}

pub async fn create(
    State(state): State<AppState>,
    staff: Staff,
    Form(form): Form<NewClientForm>,
) -> WebResult<Response> {
    require_admin(&staff)?;
    let error = match form.acts_as.trim().parse::<i64>() {
        Err(_) => (
            "acts_as".to_string(),
            "choose the user it acts as".to_string(),
        ),
        Ok(acts_as) => {
            match register(&state, &staff.actor, &form.name, &form.scope, acts_as).await {
                Ok(made) => {
                    let shown = MakeForm::made((made.client.client_id, made.secret));
                    return render(&state, &staff, shown).await;
                }
                Err(RegisterError::Invalid(field, message)) => (field.to_string(), message),
                Err(RegisterError::Store(e)) => return Err(WebError::from(e)),
            }
        }
    };
    render(&state, &staff, MakeForm::refused(error, form)).await
}

pub async fn revoke(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
) -> WebResult<Response> {
    require_admin(&staff)?;
    let mut conn = state.store.acquire().await?;
    oauth::revoke(&mut conn, id, unix_now())
        .await
        .map_err(|_| WebError::NotFound("there is no such active client".into()))?;
    drop(conn);
    tracing::info!(by = %staff.user().email, client = id, "OAuth client revoked");
    Ok(view::done(PAGE, Notice::ClientRevoked).into_response())
}
