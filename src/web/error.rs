//! One error type for every page, mapped once to an HTML page (with a reference id that
//! is also logged, for anything that is our fault).

use askama::Template;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use tracing::error;

use crate::helpdesk::actions::ActionError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    /// A link that worked once and no longer does (invitations).
    #[error("{0}")]
    Gone(String),
    #[error("{0}")]
    Unavailable(String),
    /// A bounded resource is taken (password hashing under load): not a fault, so no
    /// reference and no error in the log; the client retries after a second.
    #[error("The server is busy; please try again in a moment.")]
    Busy,
    #[error("internal error: {0}")]
    Internal(String),
    /// Not signed in (or the session ended): off to the sign-in page, then back.
    #[error("sign in first")]
    SignIn { next: String },
}

impl From<StoreError> for WebError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => WebError::NotFound(format!("{what} not found")),
            StoreError::Conflict(what) => WebError::Conflict(what),
            e if e.is_temporary() => WebError::Unavailable(e.to_string()),
            e => WebError::Internal(e.to_string()),
        }
    }
}

impl From<ActionError> for WebError {
    fn from(e: ActionError) -> Self {
        match e {
            ActionError::Forbidden(_) | ActionError::BeyondScope(_) => {
                WebError::Forbidden(e.to_string())
            }
            ActionError::NotFound(what) => WebError::NotFound(format!("{what} not found")),
            ActionError::Conflict { .. } => WebError::Conflict(e.to_string()),
            ActionError::Invalid { .. } => WebError::BadRequest(e.to_string()),
            ActionError::Busy => WebError::Busy,
            ActionError::Store(e) => e.into(),
        }
    }
}

impl From<askama::Error> for WebError {
    fn from(e: askama::Error) -> Self {
        WebError::Internal(format!("template: {e}"))
    }
}

#[derive(Template)]
#[template(path = "web/error.html")]
struct ErrorPage<'a> {
    nav: Option<crate::web::view::Nav>,
    title: &'a str,
    message: &'a str,
    reference: Option<&'a str>,
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, title) = match &self {
            WebError::SignIn { next } => {
                let target = format!("/portal/login?next={}", crate::web::view::url_encode(next));
                return Redirect::to(&target).into_response();
            }
            WebError::NotFound(_) => (StatusCode::NOT_FOUND, "Not found"),
            WebError::Forbidden(_) => (StatusCode::FORBIDDEN, "Not allowed"),
            WebError::BadRequest(_) => (StatusCode::BAD_REQUEST, "Cannot do that"),
            WebError::Conflict(_) => (StatusCode::CONFLICT, "Changed meanwhile"),
            WebError::Gone(_) => (StatusCode::GONE, "Link not valid"),
            WebError::Unavailable(_) | WebError::Busy => {
                (StatusCode::SERVICE_UNAVAILABLE, "Try again shortly")
            }
            WebError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong"),
        };
        // Our own faults get a reference to quote; the details stay in the log.
        let reference = matches!(self, WebError::Internal(_) | WebError::Unavailable(_))
            .then(|| crate::domain::secret::random_token()[..12].to_string());
        let message = match &self {
            WebError::Internal(_) | WebError::Unavailable(_) => {
                error!(reference = reference.as_deref().unwrap_or(""), error = %self, "request failed");
                "The request could not be completed. If it keeps happening, give the administrator the reference below.".to_string()
            }
            other => other.to_string(),
        };
        let page = ErrorPage {
            nav: None,
            title,
            message: &message,
            reference: reference.as_deref(),
        };
        let body = page
            .render()
            .unwrap_or_else(|_| format!("{title}: {message}"));
        let mut response = (status, Html(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            let seconds = if matches!(self, WebError::Busy) {
                "1"
            } else {
                "5"
            };
            response.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from_static(seconds),
            );
        }
        response
    }
}

pub async fn not_found() -> WebError {
    WebError::NotFound("There is no page at this address.".into())
}

pub type WebResult<T> = Result<T, WebError>;
