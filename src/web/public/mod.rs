//! The customer's side of the web: the public page `/` (submit a ticket) and their own
//! ticket page `/t/{token}` (read the public thread, reply, "this is solved", reopen).
//! Nothing here needs a session: forms carry a double-submit CSRF token, the ticket page
//! a signed link that [`crate::helpdesk::customer::check_link`] verifies on every request.
//! Submissions and replies enter as mail, through the ingestor (see `crate::helpdesk::customer`).

use askama::Template;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use axum_extra::extract::Form;
use serde::Deserialize;
use tracing::{info, warn};

use crate::domain::{address, Direction, MessageKind, TicketStatus};
use crate::helpdesk::customer::{self, CustomerAccess, LinkRefused, Replied, Upload, WebMailError};
use crate::store::jobs::JobKind;
use crate::store::{events, messages, throttle, unix_now};
use crate::web::auth::{client_addr, constant_time_eq, is_https, Staff};
use crate::web::error::{WebError, WebResult};
use crate::web::view::{self, Notice};
use crate::web::AppState;

const CSRF_COOKIE: &str = "maildesk_public";
const SUBMIT: &str = "public_submit";
const REPLY: &str = "customer_reply";
/// Files one submission may carry.
const MAX_FILES: usize = 10;
const MAX_SUBJECT: usize = 200;
const MAX_NAME: usize = 200;
const MAX_DESCRIPTION: usize = 64 * 1024;

/// The routes; uploads get their own body limit (the portal's is smaller).
pub fn routes(state: &AppState) -> axum::Router<AppState> {
    use axum::routing::{get, post};
    let web = &state.config.web;
    let limit = usize::try_from(web.public_max_upload_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(1024 * 1024);
    axum::Router::new()
        .route("/", get(form).post(submit))
        .route("/t/{token}", get(ticket_page))
        .route("/t/{token}/reply", post(reply))
        .route("/t/{token}/solved", post(solved))
        .route("/t/{token}/reopen", post(reopen))
        .route("/t/{token}/attachments/{id}", get(attachment))
        .layer(axum::extract::DefaultBodyLimit::max(limit))
}

/// The double-submit token: the cookie's, or a fresh one (set on the response).
fn csrf_token(jar: &CookieJar) -> (String, bool) {
    match jar.get(CSRF_COOKIE).map(|c| c.value().to_string()) {
        Some(v) if v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()) => (v, false),
        _ => (crate::domain::secret::random_token(), true),
    }
}

fn with_csrf_cookie(
    state: &AppState,
    headers: &HeaderMap,
    token: &str,
    fresh: bool,
    response: Response,
) -> Response {
    if !fresh {
        return response;
    }
    let cookie = Cookie::build((CSRF_COOKIE, token.to_string()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(is_https(state, headers));
    (CookieJar::new().add(cookie), response).into_response()
}

fn csrf_ok(headers: &HeaderMap, sent: &str) -> bool {
    CookieJar::from_headers(headers)
        .get(CSRF_COOKIE)
        .is_some_and(|c| {
            !sent.is_empty() && constant_time_eq(c.value().as_bytes(), sent.as_bytes())
        })
}

const EXPIRED_FORM: &str =
    "This form has expired or did not come from this site. Go back, reload the page and try again.";

/// A page of the public side: the helpdesk's name on top, no staff navigation.
#[derive(Template)]
#[template(path = "web/public_notice.html")]
struct NoticePage<'a> {
    nav: Option<view::Nav>,
    helpdesk: &'a str,
    title: &'a str,
    message: &'a str,
    /// The customer's link to their own ticket page, shown under the message.
    link: Option<&'a str>,
    back: Option<&'a str>,
}

fn notice(state: &AppState, status: StatusCode, title: &str, message: &str) -> WebResult<Response> {
    notice_with_link(state, status, title, message, None)
}

/// [`notice`] with the customer's link to their own ticket page under the message.
fn notice_with_link(
    state: &AppState,
    status: StatusCode,
    title: &str,
    message: &str,
    link: Option<&str>,
) -> WebResult<Response> {
    let page = NoticePage {
        nav: None,
        helpdesk: &state.config.helpdesk.name,
        title,
        message,
        link,
        back: state.config.web.public_form.then_some("/"),
    };
    Ok((status, Html(page.render()?)).into_response())
}

/// What the customer typed, kept when the page comes back with errors.
#[derive(Debug, Default, Clone)]
struct Fields {
    email: String,
    name: String,
    category: String,
    subject: String,
    description: String,
    website: String,
    csrf: String,
}

/// One message per field that is wrong.
#[derive(Debug, Default)]
struct Errors {
    email: Option<String>,
    name: Option<String>,
    category: Option<String>,
    subject: Option<String>,
    description: Option<String>,
    attachments: Option<String>,
}

impl Errors {
    fn any(&self) -> bool {
        self.email.is_some()
            || self.name.is_some()
            || self.category.is_some()
            || self.subject.is_some()
            || self.description.is_some()
            || self.attachments.is_some()
    }
}

#[derive(Template)]
#[template(path = "web/public_form.html")]
struct FormPage<'a> {
    nav: Option<view::Nav>,
    helpdesk: &'a str,
    csrf: &'a str,
    categories: &'a [String],
    f: &'a Fields,
    e: &'a Errors,
    max_attachment: String,
    max_upload: String,
}

impl FormPage<'_> {
    fn selected(&self, value: &str) -> &'static str {
        if self.f.category == value {
            "selected"
        } else {
            ""
        }
    }
}

fn render_form(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    fields: &Fields,
    errors: &Errors,
) -> WebResult<Response> {
    let (csrf, fresh) = csrf_token(&CookieJar::from_headers(headers));
    let web = &state.config.web;
    let page = FormPage {
        nav: None,
        helpdesk: &state.config.helpdesk.name,
        csrf: &csrf,
        categories: &state.config.helpdesk.categories,
        f: fields,
        e: errors,
        max_attachment: view::size(web.public_max_attachment_bytes as i64),
        max_upload: view::size(web.public_max_upload_bytes as i64),
    };
    let response = (status, Html(page.render()?)).into_response();
    Ok(with_csrf_cookie(state, headers, &csrf, fresh, response))
}

fn enabled(state: &AppState) -> WebResult<()> {
    if state.config.web.public_form {
        Ok(())
    } else {
        Err(WebError::NotFound(
            "There is no page at this address.".into(),
        ))
    }
}

pub async fn form(State(state): State<AppState>, headers: HeaderMap) -> WebResult<Response> {
    enabled(&state)?;
    let fields = Fields {
        category: state.config.helpdesk.default_category.clone(),
        ..Fields::default()
    };
    render_form(
        &state,
        &headers,
        StatusCode::OK,
        &fields,
        &Errors::default(),
    )
}

/// A multipart form read with the upload limits applied as it streams in: text fields
/// by name, files under `attachments`.
struct Received {
    text: Vec<(String, String)>,
    uploads: Vec<Upload>,
    too_large: Option<String>,
}

impl Received {
    fn get(&self, name: &str) -> String {
        self.text
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }
}

async fn receive(state: &AppState, request: Request) -> WebResult<Received> {
    let web = &state.config.web;
    let bad = |e: axum::extract::multipart::MultipartError| {
        WebError::BadRequest(format!(
            "The form could not be read ({}). Attachments may be larger than {} together.",
            e.body_text(),
            view::size(web.public_max_upload_bytes as i64)
        ))
    };
    let mut multipart = Multipart::from_request(request, state).await.map_err(|e| {
        WebError::BadRequest(format!("The form could not be read: {}", e.body_text()))
    })?;
    let mut received = Received {
        text: Vec::new(),
        uploads: Vec::new(),
        too_large: None,
    };
    let mut total: u64 = 0;
    while let Some(mut field) = multipart.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or("").to_string();
        if name != "attachments" {
            let value = field.text().await.map_err(bad)?;
            received
                .text
                .push((name, value.chars().take(MAX_DESCRIPTION + 1).collect()));
            continue;
        }
        let filename = field.file_name().unwrap_or("").to_string();
        let content_type = field
            .content_type()
            .unwrap_or("application/octet-stream")
            .to_string();
        let mut data = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(bad)? {
            total += chunk.len() as u64;
            if received.too_large.is_none() {
                data.extend_from_slice(&chunk);
                if data.len() as u64 > web.public_max_attachment_bytes {
                    received.too_large = Some(format!(
                        "{filename} is larger than {} (the limit per file)",
                        view::size(web.public_max_attachment_bytes as i64)
                    ));
                } else if total > web.public_max_upload_bytes {
                    received.too_large = Some(format!(
                        "the files are larger than {} together",
                        view::size(web.public_max_upload_bytes as i64)
                    ));
                }
            }
        }
        if filename.is_empty() && data.is_empty() {
            continue; // an empty file input
        }
        if received.uploads.len() >= MAX_FILES {
            received.too_large = Some(format!("at most {MAX_FILES} files"));
            continue;
        }
        received.uploads.push(Upload {
            filename: if filename.is_empty() {
                "attachment".into()
            } else {
                filename
            },
            content_type,
            data,
        });
    }
    Ok(received)
}

/// Counts this attempt and judges it by the per-address and per-client limits (one
/// atomic statement: of a burst, exactly the limit gets through): `Ok(attempt)` to go
/// on (given back with [`give_back`] if nothing comes of it), `Err(response)` (429,
/// not counted) when over.
async fn count_attempt(
    state: &AppState,
    kind: &'static str,
    account: &str,
    client: &str,
) -> WebResult<Result<throttle::Attempt, Response>> {
    let web = &state.config.web;
    let limits = throttle::Limits {
        per_account: web.public_per_address,
        per_client: web.public_per_client,
        window_secs: i64::from(web.public_window_minutes) * 60,
    };
    let now = unix_now();
    let mut conn = state.store.acquire().await?;
    throttle::forget(
        &mut conn,
        state.store.backend(),
        kind,
        now - limits.window_secs,
    )
    .await?;
    let attempt = throttle::attempt(&mut conn, kind, account, client, &limits, now).await?;
    let Some(seconds) = attempt.over_for else {
        return Ok(Ok(attempt));
    };
    throttle::release(&mut conn, &attempt).await?;
    warn!(kind, account, client, "public form throttled");
    let message = format!(
        "We have received several requests from you in a short time. Please wait {} minute(s) and try again; what you already sent has reached us.",
        view::minutes_to_wait(seconds)
    );
    let response = notice(
        state,
        StatusCode::TOO_MANY_REQUESTS,
        "Please wait a little",
        &message,
    )?;
    Ok(Err(view::retry_after(response, seconds.unsigned_abs())))
}

/// An attempt that came to nothing (refused input, a failure) stops counting.
async fn give_back(state: &AppState, attempt: &throttle::Attempt) {
    let released = async {
        let mut conn = state.store.acquire().await?;
        throttle::release(&mut conn, attempt).await
    };
    if let Err(e) = released.await {
        warn!(error = %e, "could not take back a throttle count");
    }
}

fn validate(state: &AppState, f: &Fields, received: &Received) -> Errors {
    let own = &state.config.helpdesk.support_addresses;
    let email = address::normalize(&f.email);
    let mut e = Errors::default();
    if f.email.trim().is_empty() {
        e.email = Some("Please enter your e-mail address.".into());
    } else if !address::is_valid(&email) || email.chars().any(char::is_whitespace) {
        e.email = Some("This is not an e-mail address.".into());
    } else if !address::may_send_to(&email, own) {
        e.email = Some("We cannot send a confirmation to this address.".into());
    }
    if f.name.trim().is_empty() {
        e.name = Some("Please enter your name.".into());
    } else if f.name.chars().count() > MAX_NAME {
        e.name = Some(format!("At most {MAX_NAME} characters."));
    }
    if !state.config.helpdesk.categories.contains(&f.category) {
        e.category = Some("Please choose one of the categories.".into());
    }
    if f.subject.trim().is_empty() {
        e.subject = Some("Please enter a subject.".into());
    } else if f.subject.chars().count() > MAX_SUBJECT {
        e.subject = Some(format!("At most {MAX_SUBJECT} characters."));
    }
    if f.description.trim().is_empty() {
        e.description = Some("Please describe what happened.".into());
    } else if f.description.chars().count() > MAX_DESCRIPTION {
        e.description = Some(format!("At most {} KB of text.", MAX_DESCRIPTION / 1024));
    }
    if let Some(reason) = &received.too_large {
        e.attachments = Some(format!("Not sent: {reason}. Please attach smaller files."));
    }
    e
}

pub async fn submit(State(state): State<AppState>, request: Request) -> WebResult<Response> {
    enabled(&state)?;
    let headers = request.headers().clone();
    let client = client_addr(&state, &headers, request.extensions());
    let received = receive(&state, request).await?;
    let fields = Fields {
        email: received.get("email").trim().to_string(),
        name: received.get("name").trim().to_string(),
        category: received.get("category"),
        subject: received.get("subject").trim().to_string(),
        description: received.get("description"),
        website: received.get("website"),
        csrf: received.get("csrf"),
    };
    if !csrf_ok(&headers, &fields.csrf) {
        let errors = Errors {
            description: Some(EXPIRED_FORM.into()),
            ..Errors::default()
        };
        return render_form(&state, &headers, StatusCode::FORBIDDEN, &fields, &errors);
    }
    let email = address::normalize(&fields.email);
    if !fields.website.is_empty() {
        // Only robots fill the hidden field: they are told it worked, and nothing is kept.
        info!(client, "public form: honeypot filled; nothing stored");
        return thanks(&state, &email, &Confirmation::Mailed);
    }
    let mut errors = validate(&state, &fields, &received);
    if errors.any() {
        if errors.attachments.is_none() && !received.uploads.is_empty() {
            errors.attachments = Some("Please attach your files again.".into());
        }
        return render_form(
            &state,
            &headers,
            StatusCode::UNPROCESSABLE_ENTITY,
            &fields,
            &errors,
        );
    }
    let attempt = match count_attempt(&state, SUBMIT, &email, &client).await? {
        Ok(attempt) => attempt,
        Err(limited) => return Ok(limited),
    };
    let message = customer::WebMessage {
        email: &email,
        name: Some(fields.name.as_str()),
        subject: &fields.subject,
        body: &fields.description,
        uploads: &received.uploads,
    };
    let limit = state.ingestor.options().max_message_bytes;
    let submitted = customer::submit(&state.ingestor, &message, &fields.category).await;
    if submitted.is_err() {
        give_back(&state, &attempt).await;
    }
    match submitted {
        Ok(ticket_id) => {
            state.wake.ring(JobKind::Outbox);
            info!(ticket_id, client, "ticket submitted on the public page");
            let confirmation = confirmation(&state, ticket_id, &email).await?;
            thanks(&state, &email, &confirmation)
        }
        Err(WebMailError::Invalid { field, message }) => {
            let mut errors = Errors::default();
            match field {
                "email" => errors.email = Some(message),
                _ => errors.description = Some(message),
            }
            render_form(
                &state,
                &headers,
                StatusCode::UNPROCESSABLE_ENTITY,
                &fields,
                &errors,
            )
        }
        Err(WebMailError::NotTaken(reason)) => {
            warn!(client, reason, "public submission not opened as a ticket");
            let errors = Errors {
                attachments: Some(format!(
                    "Your request could not be taken as it is (all together it must stay under {}). Please send fewer or smaller files.",
                    view::size(limit as i64)
                )),
                ..Errors::default()
            };
            render_form(
                &state,
                &headers,
                StatusCode::UNPROCESSABLE_ENTITY,
                &fields,
                &errors,
            )
        }
        Err(WebMailError::Store(e)) => Err(e.into()),
    }
}

/// How the customer learns of a ticket they opened on the web.
enum Confirmation {
    /// The acknowledgement is on its way: it has the number and the link.
    Mailed,
    /// No acknowledgement went out (the loop limits held it back, acknowledgements are
    /// off, or there is no `[smtp]`): the page must tell the number, and the link to
    /// their own ticket page when links are configured.
    OnPage { ticket: i64, link: Option<String> },
}

async fn confirmation(state: &AppState, ticket_id: i64, email: &str) -> WebResult<Confirmation> {
    let mut conn = state.store.acquire().await?;
    if customer::acknowledged(&mut conn, ticket_id, email).await? {
        return Ok(Confirmation::Mailed);
    }
    let ticket = crate::store::tickets::get(&mut conn, ticket_id).await?;
    Ok(Confirmation::OnPage {
        ticket: ticket_id,
        link: own_page_link(state, &ticket, email),
    })
}

/// The signed link to `email`'s page of `ticket`, the one the acknowledgement would have
/// carried (only when `web.public_url` is set, like in mail).
fn own_page_link(
    state: &AppState,
    ticket: &crate::store::tickets::Ticket,
    email: &str,
) -> Option<String> {
    let secret = state.ingestor.options().signing_secret.as_ref()?;
    let links = crate::outbound::CustomerLinks::from_config(&state.config.web)?;
    Some(links.link(secret.expose(), ticket, email, unix_now()))
}

/// The answer to a submission: the truth about the confirmation mail. When one went out
/// the page does not show the ticket number (the page is anonymous; the mail to the
/// address given carries it); when none did, the number (and the link) are only here.
fn thanks(state: &AppState, email: &str, confirmation: &Confirmation) -> WebResult<Response> {
    let title = "Thank you, we have your request";
    let (message, link) = match confirmation {
        Confirmation::Mailed => (
            format!(
                "We have e-mailed a confirmation to {email}. It has your ticket number and a link to follow the ticket; you can also simply reply to it."
            ),
            None,
        ),
        Confirmation::OnPage { ticket, link } => (
            format!(
                "Your ticket number is #{ticket}. We could not e-mail you a confirmation this time, so please note the number and mention it when you write to us about this request."
            ),
            link.as_deref(),
        ),
    };
    let page = notice_with_link(state, StatusCode::OK, title, &message, link)?;
    // The link opens the ticket without signing in: it stays out of Referer headers.
    Ok(no_referrer(page))
}

/// Where a reply that opened a follow-up ticket leads: back to the page with the new
/// number when its acknowledgement went out, else to the new ticket's own page (the
/// customer has no mail with its link), or, without links, back with the number.
async fn followed_up(state: &AppState, token: &str, email: &str, id: i64) -> WebResult<Response> {
    let response = match confirmation(state, id, email).await? {
        Confirmation::Mailed => back_to_page(token, Notice::FollowUpMailed { ticket: id }),
        Confirmation::OnPage {
            link: Some(link), ..
        } => no_referrer(
            view::done(&link, Notice::FollowUpOpenedHere { ticket: id }).into_response(),
        ),
        Confirmation::OnPage { link: None, .. } => {
            back_to_page(token, Notice::FollowUpNotMailed { ticket: id })
        }
    };
    Ok(response)
}

// ---- The customer's own ticket page ----

/// A customer-page handler's failure: an error page, or the page saying the link does
/// not work.
pub enum PageError {
    Web(WebError),
    Refused(Response),
}

impl<E: Into<WebError>> From<E> for PageError {
    fn from(e: E) -> Self {
        PageError::Web(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::Web(e) => e.into_response(),
            PageError::Refused(page) => page,
        }
    }
}

type PageResult = Result<Response, PageError>;

/// Opens the link or answers with a page saying it does not work (one message for every
/// reason, so a wrong guess learns nothing).
async fn access(state: &AppState, token: &str) -> Result<CustomerAccess, PageError> {
    let secret = state
        .ingestor
        .options()
        .signing_secret
        .as_ref()
        .ok_or_else(|| WebError::Internal("no signing secret".into()))?;
    let mut conn = state.store.acquire().await?;
    match customer::check_link(&mut conn, secret.expose(), token, unix_now()).await? {
        Ok(found) => Ok(found),
        Err(reason) => {
            info!(?reason, "customer link refused");
            let status = if reason == LinkRefused::Malformed {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::FORBIDDEN
            };
            let message = "This link does not open a ticket (any more). Links expire after a while and can be withdrawn; the newest mail about your ticket has a working one, or simply reply to that mail.";
            let page = notice(state, status, "This link does not work", message)?;
            Err(PageError::Refused(no_referrer(page)))
        }
    }
}

fn no_referrer(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

struct PublicItem {
    id: i64,
    who: String,
    ours: bool,
    when: String,
    text: String,
    attachments: Vec<(i64, String, String)>,
}

#[derive(Template)]
#[template(path = "web/customer_ticket.html")]
struct CustomerPage<'a> {
    nav: Option<view::Nav>,
    helpdesk: &'a str,
    token: &'a str,
    csrf: &'a str,
    t: &'a crate::store::tickets::Ticket,
    status: String,
    opened: String,
    finished: bool,
    items: Vec<PublicItem>,
    notice: Option<String>,
    error: Option<String>,
    draft: String,
    max_attachment: String,
}

/// Which messages a customer sees: their side's mail and the replies sent to them;
/// never notes, unverified or verified staff mail as received (its relayed copy is
/// what they got), staff notifications or automatic mail.
fn is_public(m: &crate::helpdesk::ticket_views::MessageView) -> bool {
    m.kind == MessageKind::Public
        && !m.unverified
        && match m.direction.as_str() {
            "out" => true,
            _ => m.author_user_id.is_none(),
        }
}

pub async fn ticket_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
    notice: Option<Notice>,
) -> PageResult {
    let found = access(&state, &token).await?;
    let notice = notice.and_then(Notice::customer_text);
    render_ticket(
        &state,
        &headers,
        &token,
        &found,
        notice,
        None,
        String::new(),
        StatusCode::OK,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn render_ticket(
    state: &AppState,
    headers: &HeaderMap,
    token: &str,
    found: &CustomerAccess,
    notice: Option<String>,
    error: Option<String>,
    draft: String,
    status: StatusCode,
) -> PageResult {
    let detail = crate::helpdesk::ticket_views::load(&state.store, found.ticket.id).await?;
    let items = detail
        .messages
        .into_iter()
        .filter(is_public)
        .map(|m| PublicItem {
            id: m.id,
            ours: m.direction == Direction::Outbound,
            who: m.from_name.clone().unwrap_or_else(|| m.from.clone()),
            when: view::time(m.date.unwrap_or(m.created_at)),
            // Our replies start with the "reply above this line" marker: not for reading.
            text: m
                .visible_text
                .trim_start()
                .strip_prefix(crate::mail::compose::REPLY_MARKER)
                .map_or(m.visible_text.as_str(), str::trim_start)
                .to_string(),
            attachments: m
                .attachments
                .into_iter()
                .map(|a| (a.id, a.filename, view::size(a.size)))
                .collect(),
        })
        .collect();
    let (csrf, fresh) = csrf_token(&CookieJar::from_headers(headers));
    let t = &detail.ticket;
    let page = CustomerPage {
        nav: None,
        helpdesk: &state.config.helpdesk.name,
        token,
        csrf: &csrf,
        t,
        status: view::status_label(t.status.as_str()),
        opened: view::time(t.created_at),
        finished: matches!(t.status, TicketStatus::Resolved | TicketStatus::Closed),
        items,
        notice,
        error,
        draft,
        max_attachment: view::size(state.config.web.public_max_attachment_bytes as i64),
    };
    let response = (status, Html(page.render()?)).into_response();
    Ok(no_referrer(with_csrf_cookie(
        state, headers, &csrf, fresh, response,
    )))
}

fn back_to_page(token: &str, notice: Notice) -> Response {
    no_referrer(view::done(&format!("/t/{token}"), notice).into_response())
}

pub async fn reply(
    State(state): State<AppState>,
    Path(token): Path<String>,
    request: Request,
) -> PageResult {
    let headers = request.headers().clone();
    let client = client_addr(&state, &headers, request.extensions());
    let found = access(&state, &token).await?;
    let received = receive(&state, request).await?;
    let body = received.get("body");
    let again = |error: String, status| {
        render_ticket(
            &state,
            &headers,
            &token,
            &found,
            None,
            Some(error),
            body.clone(),
            status,
        )
    };
    if !csrf_ok(&headers, &received.get("csrf")) {
        return again(EXPIRED_FORM.into(), StatusCode::FORBIDDEN).await;
    }
    if body.trim().is_empty() {
        return again(
            "Please write your message.".into(),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    if body.chars().count() > MAX_DESCRIPTION {
        let message = format!("At most {} KB of text.", MAX_DESCRIPTION / 1024);
        return again(message, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    if let Some(reason) = &received.too_large {
        let message = format!("Not sent: {reason}. Please attach smaller files.");
        return again(message, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    let attempt = match count_attempt(&state, REPLY, &found.email, &client).await? {
        Ok(attempt) => attempt,
        Err(limited) => return Ok(no_referrer(limited)),
    };
    let name = participant_name(&state, &found).await?;
    let message = customer::WebMessage {
        email: &found.email,
        name: name.as_deref(),
        subject: &crate::mail::compose::tagged_subject(
            &state.config.helpdesk.subject_prefix,
            found.ticket.id,
            &found.ticket.subject,
        ),
        body: &body,
        uploads: &received.uploads,
    };
    let replied = customer::reply(&state.ingestor, found.ticket.id, &message).await;
    if replied.is_err() {
        give_back(&state, &attempt).await;
    }
    match replied {
        Ok(outcome) => {
            state.wake.ring(JobKind::Outbox);
            match outcome {
                Replied::OnTicket => Ok(back_to_page(&token, Notice::MessageAdded)),
                Replied::FollowUp(id) => Ok(followed_up(&state, &token, &found.email, id).await?),
            }
        }
        Err(WebMailError::Invalid { message, .. }) => {
            again(message, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(WebMailError::NotTaken(_)) => {
            let message = format!(
                "Your message could not be added as it is (all together it must stay under {}). Please send fewer or smaller files.",
                view::size(state.ingestor.options().max_message_bytes as i64)
            );
            again(message, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(WebMailError::Store(e)) => Err(e.into()),
    }
}

/// The name the participant is known by on the ticket.
async fn participant_name(state: &AppState, found: &CustomerAccess) -> WebResult<Option<String>> {
    let mut conn = state.store.acquire().await?;
    let people = crate::store::tickets::participants(&mut conn, found.ticket.id).await?;
    Ok(people
        .into_iter()
        .find(|p| p.email == found.email)
        .and_then(|p| p.name))
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub async fn solved(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    set_solved(state, headers, token, form, true).await
}

pub async fn reopen(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    set_solved(state, headers, token, form, false).await
}

async fn set_solved(
    state: AppState,
    headers: HeaderMap,
    token: String,
    form: CsrfForm,
    solved: bool,
) -> PageResult {
    let found = access(&state, &token).await?;
    if !csrf_ok(&headers, &form.csrf) {
        let error = Some(EXPIRED_FORM.to_string());
        return render_ticket(
            &state,
            &headers,
            &token,
            &found,
            None,
            error,
            String::new(),
            StatusCode::FORBIDDEN,
        )
        .await;
    }
    let ctx = state.action_context();
    let mut tx = state.store.unit_of_work(&state.wake).await?;
    let changed = crate::helpdesk::actions::customer_set_solved(
        &mut tx,
        &ctx,
        found.ticket.id,
        &found.email,
        solved,
    )
    .await?;
    tx.commit().await?;
    let notice = match (changed, solved) {
        (true, true) => Notice::MarkedSolved,
        (true, false) => Notice::OpenAgain,
        (false, _) => Notice::NothingToChange,
    };
    Ok(back_to_page(&token, notice))
}

/// An attachment of a message the customer can see on their page.
pub async fn attachment(
    State(state): State<AppState>,
    Path((token, id)): Path<(String, i64)>,
) -> PageResult {
    let found = access(&state, &token).await?;
    let not_found = || WebError::NotFound(format!("attachment {id} not found"));
    let mut conn = state.store.acquire().await?;
    let (a, data) = messages::attachment_with_data(&mut conn, id)
        .await?
        .ok_or_else(not_found)?;
    drop(conn);
    let detail = crate::helpdesk::ticket_views::load(&state.store, found.ticket.id).await?;
    let visible = detail
        .messages
        .iter()
        .any(|m| m.id == a.message_id && is_public(m));
    if !visible {
        return Err(not_found().into());
    }
    Ok(no_referrer(crate::web::portal::files::file_response(
        data,
        None,
        &a.filename,
    )))
}

// ---- Staff: revoke the customer links of a ticket ----

pub async fn revoke_links(
    State(state): State<AppState>,
    staff: Staff,
    Path(reference): Path<String>,
) -> WebResult<Response> {
    let id = crate::helpdesk::ticket_views::parse_ref(&reference)
        .ok_or_else(|| WebError::NotFound(format!("there is no ticket {reference:?}")))?;
    staff.actor.require(
        crate::domain::access::Action::WorkTickets,
        "revoke customer links",
    )?;
    let mut tx = state.store.unit_of_work(&state.wake).await?;
    crate::store::tickets::get(&mut tx, id).await?;
    crate::store::tickets::revoke_customer_links(&mut tx, id).await?;
    let event = events::NewEvent {
        ticket_id: id,
        user_id: Some(staff.user().id),
        field: "customer_links",
        old_value: None,
        new_value: Some("revoked"),
    };
    events::record(&mut tx, &event, unix_now()).await?;
    tx.commit().await?;
    info!(ticket_id = id, user = %staff.user().email, "customer links revoked");
    Ok(view::done(
        &format!("/portal/tickets/{id}"),
        Notice::CustomerLinksRevoked,
    )
    .into_response())
}
