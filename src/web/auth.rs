//! Sign-in, sessions and CSRF. Sessions live in the database (found by the SHA-256 of
//! the cookie value), so sign-out, a password change or disabling a user ends them at
//! once on every instance. Every state-changing request under `/portal` carries the
//! session's CSRF token; the sign-in form carries a token of its own (double submit).

use std::net::SocketAddr;

use askama::Template;
use axum::extract::{ConnectInfo, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::Deserialize;
use tracing::{info, warn};

use crate::helpdesk::actions::{ActionError, Actor};
use crate::mail::hash::sha256_hex;
use crate::store::{sessions, throttle, unix_now, users};
use crate::web::error::{WebError, WebResult};
use crate::web::{view, AppState};

const SESSION_COOKIE: &str = "maildesk_session";
const SECURE_SESSION_COOKIE: &str = "__Host-maildesk_session";
const LOGIN_COOKIE: &str = "maildesk_login";
/// A session's last-seen time is written at most this often (not on every request).
const TOUCH_EVERY_SECS: i64 = 60;

/// The signed-in staff member of this request (put there by [`require_session`]).
#[derive(Debug, Clone)]
pub struct Staff {
    pub actor: Actor,
    pub session_hash: String,
    pub csrf: String,
}

impl Staff {
    pub fn user(&self) -> &users::User {
        &self.actor.user
    }

    pub fn is_admin(&self) -> bool {
        self.actor.role() == crate::domain::Role::Admin
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Staff {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Staff>()
            .cloned()
            .ok_or_else(|| WebError::SignIn {
                next: parts.uri.path().to_string(),
            })
    }
}

/// Whether the browser reached us over https: `web.public_url`, or a trusted proxy's
/// `X-Forwarded-Proto`. Cookies are then `Secure` with the `__Host-` prefix.
pub(super) fn is_https(state: &AppState, headers: &HeaderMap) -> bool {
    if let Some(url) = &state.config.web.public_url {
        return url.starts_with("https://");
    }
    state.config.web.trust_proxy_headers
        && headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// The client's address: the connection's, or the one the trusted proxy added: the last
/// `X-Forwarded-For` entry (earlier ones are whatever the client sent, forgeable; the
/// API's per-client limit and the sign-in throttle key on this).
pub fn client_addr(
    state: &AppState,
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
) -> String {
    if state.config.web.trust_proxy_headers {
        if let Some(forwarded) = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
        {
            return forwarded.chars().take(64).collect();
        }
    }
    extensions.get::<ConnectInfo<SocketAddr>>().map_or_else(
        || "unknown".into(),
        |ConnectInfo(addr)| addr.ip().to_string(),
    )
}

/// The client's address ([`client_addr`]) as an extractor.
pub struct ClientAddr(pub String);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(client_addr(
            state,
            &parts.headers,
            &parts.extensions,
        )))
    }
}

fn session_token(jar: &CookieJar) -> Option<String> {
    jar.get(SECURE_SESSION_COOKIE)
        .or_else(|| jar.get(SESSION_COOKIE))
        .map(|c| c.value().to_string())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Finds the request's session, refuses a state-changing request without the session's
/// CSRF token, and hands the staff member to the handlers.
pub async fn require_session(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    match authenticate(&state, request).await {
        Ok(request) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

async fn authenticate(state: &AppState, request: Request) -> WebResult<Request> {
    let (mut parts, body) = request.into_parts();
    let next = parts
        .uri
        .path_and_query()
        .map_or("/portal".into(), |p| p.as_str().to_string());
    let staff = session_staff(state, &parts.headers)
        .await?
        .ok_or(WebError::SignIn { next })?;
    let body = if parts.method == Method::GET || parts.method == Method::HEAD {
        body
    } else {
        let bytes = axum::body::to_bytes(body, crate::web::FORM_LIMIT)
            .await
            .map_err(|_| WebError::BadRequest("the form is too large".into()))?;
        let sent = parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or_else(|| form_value(&bytes, "csrf"));
        if !sent.is_some_and(|s| constant_time_eq(s.as_bytes(), staff.csrf.as_bytes())) {
            warn!(user = %staff.user().email, path = %parts.uri.path(), "request without a valid CSRF token refused");
            return Err(WebError::Forbidden(
                "This form has expired or did not come from this site. Go back, reload the page and try again.".into(),
            ));
        }
        axum::body::Body::from(bytes)
    };
    parts.extensions.insert(staff);
    Ok(Request::from_parts(parts, body))
}

/// The staff member whose live session the request's cookie names, if any (the portal
/// and the API's browser clients).
pub(super) async fn session_staff(
    state: &AppState,
    headers: &HeaderMap,
) -> WebResult<Option<Staff>> {
    let Some(token) = session_token(&CookieJar::from_headers(headers)) else {
        return Ok(None);
    };
    let id_hash = sha256_hex(token.as_bytes());
    let now = unix_now();
    let idle = i64::from(state.config.web.session_idle_minutes) * 60;
    let mut conn = state.store.acquire().await?;
    let Some(found) = sessions::find_live(&mut conn, &id_hash, now, idle).await? else {
        return Ok(None);
    };
    if now - found.last_seen_at >= TOUCH_EVERY_SECS {
        sessions::touch(&mut conn, &id_hash, now).await?;
    }
    Ok(Some(Staff {
        actor: Actor::with_role(found.user()),
        session_hash: id_hash,
        csrf: found.csrf_token,
    }))
}

fn form_value(body: &[u8], name: &str) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Template)]
#[template(path = "web/login.html")]
struct LoginPage<'a> {
    nav: Option<crate::web::view::Nav>,
    helpdesk: &'a str,
    csrf: &'a str,
    next: &'a str,
    email: &'a str,
    error: Option<&'a str>,
}

#[derive(Deserialize, Default)]
pub struct LoginQuery {
    #[serde(default)]
    next: String,
}

/// Only our own portal paths are followed after sign-in (no open redirect).
fn safe_next(next: &str) -> &str {
    if next.starts_with("/portal") && !next.starts_with("//") && !next.contains('\\') {
        next
    } else {
        "/portal"
    }
}

fn login_response(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    next: &str,
    email: &str,
    error: Option<&str>,
) -> WebResult<Response> {
    let csrf = crate::domain::secret::random_token();
    let page = LoginPage {
        nav: None,
        helpdesk: &state.config.helpdesk.name,
        csrf: &csrf,
        next: safe_next(next),
        email,
        error,
    };
    let jar = CookieJar::new().add(form_cookie(
        state,
        headers,
        LOGIN_COOKIE,
        "/portal/login",
        csrf.clone(),
    ));
    Ok((status, jar, Html(page.render()?)).into_response())
}

/// The cookie half of a public form's double-submit token (sign-in, registration): the
/// form carries the same random value, and only this site's pages can read it to put it
/// there. Scoped to the form's path, for 30 minutes.
pub(super) fn form_cookie(
    state: &AppState,
    headers: &HeaderMap,
    name: &'static str,
    path: &'static str,
    token: String,
) -> Cookie<'static> {
    Cookie::build((name, token))
        .path(path)
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(is_https(state, headers))
        .max_age(time_minutes(30))
        .build()
}

/// Whether a public form's token matches its cookie.
pub(super) fn form_token_ok(headers: &HeaderMap, name: &str, sent: &str) -> bool {
    CookieJar::from_headers(headers)
        .get(name)
        .is_some_and(|c| constant_time_eq(c.value().as_bytes(), sent.as_bytes()))
}

fn time_minutes(minutes: i64) -> cookie::time::Duration {
    cookie::time::Duration::minutes(minutes)
}

pub async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> WebResult<Response> {
    login_response(&state, &headers, StatusCode::OK, &query.next, "", None)
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
}

const WRONG: &str = "The e-mail address or the password is wrong.";

pub async fn login(State(state): State<AppState>, request: Request) -> WebResult<Response> {
    let (parts, body) = request.into_parts();
    let headers = parts.headers.clone();
    let client = client_addr(&state, &headers, &parts.extensions);
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map_err(|_| WebError::BadRequest("the form is too large".into()))?;
    let form: LoginForm = parse_form(&bytes)?;
    let email = crate::domain::address::normalize(form.email.trim());
    if !form_token_ok(&headers, LOGIN_COOKIE, &form.csrf) {
        return login_response(
            &state,
            &headers,
            StatusCode::FORBIDDEN,
            &form.next,
            &email,
            Some("The sign-in form expired. Please sign in again."),
        );
    }
    let now = unix_now();
    let user = match check_credentials(&state, &client, &email, &form.password, now).await? {
        Credentials::Throttled(seconds) => {
            let message = format!(
                "Too many failed sign-ins for this account or from your network. Try again in {} minute(s).",
                view::minutes_to_wait(seconds)
            );
            let response = login_response(
                &state,
                &headers,
                StatusCode::TOO_MANY_REQUESTS,
                &form.next,
                &email,
                Some(&message),
            )?;
            return Ok(view::retry_after(response, seconds.unsigned_abs()));
        }
        Credentials::Busy => {
            let response = login_response(
                &state,
                &headers,
                StatusCode::SERVICE_UNAVAILABLE,
                &form.next,
                &email,
                Some("The server is busy. Please try again in a moment."),
            )?;
            return Ok(view::retry_after(response, 1));
        }
        Credentials::Wrong => {
            return login_response(
                &state,
                &headers,
                StatusCode::UNAUTHORIZED,
                &form.next,
                &email,
                Some(WRONG),
            )
        }
        Credentials::Valid(user) => user,
    };
    let mut conn = state.store.acquire().await?;
    let jar = start_session(&state, &headers, &mut conn, &user, &client, now)
        .await?
        .jar
        .add(removal_cookie(
            LOGIN_COOKIE,
            "/portal/login",
            is_https(&state, &headers),
        ));
    Ok((jar, Redirect::to(safe_next(&form.next))).into_response())
}

/// What a sign-in attempt's address and password came to.
pub(super) enum Credentials {
    /// Too many failures for the account or from the client within the window: try
    /// again after this many seconds.
    Throttled(i64),
    /// Every password-hashing slot stayed taken: try again in a moment (not counted).
    Busy,
    /// Unknown, disabled or wrong (never said which): the failure is counted.
    Wrong,
    Valid(users::User),
}

/// The sign-in throttle's kind (see [`throttle`]).
const LOGIN: &str = "login";

/// Checks an address and password for the portal and the API alike. Cheap work first:
/// the attempt is counted and judged by the throttle (per account and per client, one
/// atomic statement) before any hashing; then the same argon2 work whether or not the
/// account exists (no enumeration), within the process's hashing limit. A failure stays
/// counted; a success clears the account's failures.
pub(super) async fn check_credentials(
    state: &AppState,
    client: &str,
    email: &str,
    password: &str,
    now: i64,
) -> Result<Credentials, crate::store::StoreError> {
    let web = &state.config.web;
    let limits = throttle::Limits {
        per_account: web.login_failures_per_account,
        per_client: web.login_failures_per_client,
        window_secs: i64::from(web.login_window_minutes) * 60,
    };
    let mut conn = state.store.acquire().await?;
    let attempt = throttle::attempt(&mut conn, LOGIN, email, client, &limits, now).await?;
    if let Some(seconds) = attempt.over_for {
        throttle::release(&mut conn, &attempt).await?;
        warn!(account = %email, client, "sign-in throttled");
        return Ok(Credentials::Throttled(seconds));
    }
    let user = users::find_by_email(&mut conn, email).await?;
    drop(conn);
    let (hash, usable) = match &user {
        Some(u) if u.active == 1 => (u.password_hash.as_str(), true),
        _ => (state.decoy_hash.as_str(), false),
    };
    let verified = crate::helpdesk::password::verify(password, hash).await;
    let mut conn = state.store.acquire().await?;
    let Ok(verified) = verified else {
        throttle::release(&mut conn, &attempt).await?;
        return Ok(Credentials::Busy);
    };
    let Some(user) = user.filter(|_| usable && verified) else {
        info!(account = %email, client, "failed sign-in");
        return Ok(Credentials::Wrong);
    };
    throttle::succeeded(&mut conn, &attempt).await?;
    let idle = i64::from(web.session_idle_minutes) * 60;
    sessions::purge_stale(&mut conn, now, idle).await?;
    throttle::forget(
        &mut conn,
        state.store.backend(),
        LOGIN,
        now - limits.window_secs,
    )
    .await?;
    Ok(Credentials::Valid(user))
}

/// Whether `password` is the signed-in `user`'s own (to change the password or the
/// sign-in address): judged like a sign-in, under the same throttle and hashing limit,
/// so a session someone else got hold of cannot be used to guess the password.
pub(crate) async fn check_own_password(
    state: &AppState,
    client: &str,
    user: &users::User,
    password: &str,
) -> Result<bool, ActionError> {
    match check_credentials(state, client, &user.email, password, unix_now()).await? {
        Credentials::Valid(found) => Ok(found.id == user.id),
        Credentials::Wrong => Ok(false),
        Credentials::Busy => Err(ActionError::Busy),
        Credentials::Throttled(seconds) => Err(ActionError::Invalid {
            field: "current",
            message: format!(
                "too many wrong passwords; try again in {} minute(s)",
                view::minutes_to_wait(seconds)
            ),
        }),
    }
}

/// A session just started: the cookie that carries it, its CSRF token and its end.
pub(super) struct Started {
    pub jar: CookieJar,
    pub csrf: String,
    pub expires_at: i64,
}

/// Signs `user` in: a new session row and the cookie that carries its token.
pub(super) async fn start_session(
    state: &AppState,
    headers: &HeaderMap,
    conn: &mut crate::store::Conn,
    user: &users::User,
    client: &str,
    now: i64,
) -> WebResult<Started> {
    let token = crate::domain::secret::random_token();
    let csrf = crate::domain::secret::random_token();
    let user_agent: String = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(200)
        .collect();
    let max_age = i64::from(state.config.web.session_max_hours) * 3600;
    sessions::create(
        conn,
        &sessions::NewSession {
            id_hash: &sha256_hex(token.as_bytes()),
            user_id: user.id,
            csrf_token: &csrf,
            expires_at: now + max_age,
            client_addr: client,
            user_agent: &user_agent,
        },
        now,
    )
    .await?;
    users::set_last_login(conn, user.id, now).await?;
    info!(user = %user.email, client, "signed in");
    let secure = is_https(state, headers);
    let cookie = Cookie::build((session_cookie_name(secure), token))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(cookie::time::Duration::seconds(max_age));
    Ok(Started {
        jar: CookieJar::new().add(cookie),
        csrf,
        expires_at: now + max_age,
    })
}

pub(super) fn parse_form<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> WebResult<T> {
    serde_html_form::from_bytes(bytes).map_err(|e| WebError::BadRequest(format!("bad form: {e}")))
}

pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    staff: Staff,
) -> WebResult<Response> {
    let mut conn = state.store.acquire().await?;
    sessions::delete(&mut conn, &staff.session_hash).await?;
    info!(user = %staff.user().email, "signed out");
    Ok((
        clear_session_cookie(&state, &headers),
        Redirect::to("/portal/login"),
    )
        .into_response())
}

/// The answer's Set-Cookie that expires the session cookie in the browser.
pub(super) fn clear_session_cookie(state: &AppState, headers: &HeaderMap) -> CookieJar {
    let secure = is_https(state, headers);
    CookieJar::new().add(removal_cookie(session_cookie_name(secure), "/", secure))
}

/// A cookie that makes the browser drop `name` on `path`: empty, `Max-Age=0`, expired.
/// Added to the answer's jar, not `CookieJar::remove`d: `remove` only sends a removal
/// for a cookie the jar started with, and our jars start empty, so it sent nothing.
/// `secure` must match how the cookie was set (a `__Host-` cookie needs it).
pub(super) fn removal_cookie(
    name: &'static str,
    path: &'static str,
    secure: bool,
) -> Cookie<'static> {
    let mut cookie = Cookie::build((name, ""))
        .path(path)
        .http_only(true)
        .secure(secure)
        .build();
    cookie.make_removal();
    cookie
}

/// Over https the cookie takes the `__Host-` prefix (Secure, Path=/, no Domain).
fn session_cookie_name(secure: bool) -> &'static str {
    if secure {
        SECURE_SESSION_COOKIE
    } else {
        SESSION_COOKIE
    }
}

/// The navigation bar of a signed-in staff member's page (built here, where staff are
/// known, so the views need nothing of sign-in).
impl crate::web::view::Nav {
    pub fn new(state: &crate::web::AppState, staff: &Staff, section: &'static str) -> Self {
        Self {
            helpdesk: state.config.helpdesk.name.clone(),
            user_name: staff.user().name.clone(),
            is_admin: staff.is_admin(),
            csrf: staff.csrf.clone(),
            section,
        }
    }
}
