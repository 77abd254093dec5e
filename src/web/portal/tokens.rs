//! `/portal/account/tokens`: one's own personal API tokens. A new token is shown once,
//! on the page that made it (never in an address or a redirect); only its SHA-256 is
//! kept. Revoking one takes effect with its next request.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Response};
use axum_extra::extract::Form;
use serde::Deserialize;

use crate::domain::datetime;
use crate::mail::hash::sha256_hex;
use crate::store::{api_tokens, unix_now};
use crate::web::api::{Scope, TOKEN_PREFIX};
use crate::web::auth::Staff;
use crate::web::error::{WebError, WebResult};
use crate::web::view::{self, MakeForm, Nav, Notice};
use crate::web::AppState;

/// The longest a token may be made to last, in days (no expiry is also offered).
const MAX_DAYS: i64 = 3650;

struct TokenLine {
    id: i64,
    name: String,
    scope: String,
    created: String,
    expires: String,
    used: String,
    state: &'static str,
}

#[derive(Template)]
#[template(path = "web/tokens.html")]
struct TokensPage {
    nav: Option<Nav>,
    tokens: Vec<TokenLine>,
    notice: Option<String>,
    /// The token just made, shown this once.
    created: Option<String>,
    error: Option<(String, String)>,
    form: NewTokenForm,
    scopes: Vec<&'static str>,
    admin: bool,
    csrf: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct NewTokenForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    scope: String,
    /// Days until it expires; empty for never.
    #[serde(default)]
    days: String,
}

pub async fn list(
    State(state): State<AppState>,
    staff: Staff,
    notice: Option<Notice>,
) -> WebResult<Response> {
    render(&state, &staff, MakeForm::listed(notice)).await
}

async fn render(
    state: &AppState,
    staff: &Staff,
    shown: MakeForm<NewTokenForm, String>,
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
    let tokens = api_tokens::list_for_user(&mut conn, staff.user().id).await?;
    drop(conn);
    let page = TokensPage {
        nav: Some(Nav::new(state, staff, "account")),
        tokens: tokens
            .into_iter()
            .map(|t| TokenLine {
                id: t.id,
                state: match (t.revoked_at, t.expires_at) {
                    (Some(_), _) => "revoked",
                    (None, Some(e)) if e <= now => "expired",
                    _ => "active",
                },
                name: t.name,
                scope: t.scope,
                created: datetime::utc_date(t.created_at),
                expires: t.expires_at.map_or("never".into(), datetime::utc_date),
                used: t.last_used_at.map_or("never".into(), |u| view::ago(u, now)),
            })
            .collect(),
        notice,
        created,
        error,
        form,
        scopes: Scope::ALL.iter().map(|s| s.as_str()).collect(),
        admin: staff.is_admin(),
        csrf: staff.csrf.clone(),
    };
    Ok((status, Html(page.render()?)).into_response())
}

/// The form's token, or the field it got wrong and why.
fn validate(
    form: &NewTokenForm,
    staff: &Staff,
    now: i64,
) -> Result<(String, Scope, Option<i64>), (String, String)> {
    let bad = |field: &str, message: &str| (field.to_string(), message.to_string());
    let name = form.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(bad(
            "name",
            "give the token a name of up to 100 characters (what uses it)",
        ));
    }
    let scope = Scope::parse(form.scope.trim())
        .ok_or_else(|| bad("scope", "choose read, write or admin"))?;
    if scope == Scope::Admin && !staff.is_admin() {
        return Err(bad("scope", "only admins may make admin tokens"));
    }
    let expires_at = match form.days.trim() {
        "" => None,
        days => match days.parse::<i64>() {
            Ok(d) if (1..=MAX_DAYS).contains(&d) => Some(now + d * 86_400),
            _ => {
                return Err(bad(
                    "days",
                    &format!("a number of days from 1 to {MAX_DAYS}, or empty for never"),
                ))
            }
        },
    };
    Ok((name.to_string(), scope, expires_at))
}

pub async fn create(
    State(state): State<AppState>,
    staff: Staff,
    Form(form): Form<NewTokenForm>,
) -> WebResult<Response> {
    let now = unix_now();
    let (name, scope, expires_at) = match validate(&form, &staff, now) {
        Ok(valid) => valid,
        Err(error) => return render(&state, &staff, MakeForm::refused(error, form)).await,
    };
    let token = format!("{TOKEN_PREFIX}{}", crate::domain::secret::random_token());
    let mut conn = state.store.acquire().await?;
    api_tokens::create(
        &mut conn,
        &api_tokens::NewToken {
            user_id: staff.user().id,
            name: &name,
            token_hash: &sha256_hex(token.as_bytes()),
            scope: scope.as_str(),
            expires_at,
        },
        now,
    )
    .await?;
    drop(conn);
    tracing::info!(user = %staff.user().email, token = %name, scope = scope.as_str(), "API token created");
    render(&state, &staff, MakeForm::made(token)).await
}

pub async fn revoke(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
) -> WebResult<Response> {
    let mut conn = state.store.acquire().await?;
    api_tokens::revoke(&mut conn, id, Some(staff.user().id), unix_now())
        .await
        .map_err(|_| WebError::NotFound("there is no such active token of yours".into()))?;
    drop(conn);
    tracing::info!(user = %staff.user().email, token_id = id, "API token revoked");
    Ok(view::done("/portal/account/tokens", Notice::TokenRevoked).into_response())
}
