//! API errors as `application/problem+json` (RFC 9457), mapped once. Our own faults
//! carry a reference id that is also logged; refused input names its field.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tracing::error;

use crate::helpdesk::actions::ActionError;
use crate::store::StoreError;
use crate::web::error::WebError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: String,
    /// The request field (body member or query parameter) that was refused.
    pub field: Option<String>,
    /// Seconds, for 429 and 503.
    pub retry_after: Option<u64>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            detail: detail.into(),
            field: None,
            retry_after: None,
        }
    }

    pub fn field(status: StatusCode, field: impl Into<String>, detail: impl Into<String>) -> Self {
        ApiError {
            field: Some(field.into()),
            ..ApiError::new(status, detail)
        }
    }

    pub fn unauthorized(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, detail)
    }

    /// 503 with `Retry-After: 1`: a bounded resource (password hashing) is taken.
    pub fn busy() -> ApiError {
        ApiError {
            retry_after: Some(1),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server is busy checking passwords; try again in a moment",
            )
        }
    }

    pub fn not_found(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, detail)
    }

    pub fn invalid(field: impl Into<String>, detail: impl Into<String>) -> ApiError {
        ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, field, detail)
    }
}

/// The body of every API error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem<'a> {
    /// Always `about:blank`: the status says what kind of problem it is.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The status's reason phrase.
    pub title: &'a str,
    pub status: u16,
    /// What went wrong, for a person to read.
    pub detail: &'a str,
    /// The refused body member or query parameter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'a str>,
    /// On our own faults (5xx): the id under which the details are logged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<&'a str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let ours = self.status.is_server_error();
        // Our own faults get a reference to quote; the details stay in the log.
        let reference = ours.then(|| crate::domain::secret::random_token()[..12].to_string());
        let detail = if ours {
            error!(reference = reference.as_deref().unwrap_or(""), status = self.status.as_u16(), error = %self.detail, "API request failed");
            "The request could not be completed. If it keeps happening, give the administrator the reference."
        } else {
            self.detail.as_str()
        };
        let problem = Problem {
            kind: "about:blank",
            title: self.status.canonical_reason().unwrap_or("Error"),
            status: self.status.as_u16(),
            detail,
            field: self.field.as_deref(),
            reference: reference.as_deref(),
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::not_found(format!("{what} not found")),
            StoreError::Conflict(what) => ApiError::new(StatusCode::CONFLICT, what),
            e if e.is_temporary() => ApiError {
                retry_after: Some(5),
                ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
            },
            e => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        }
    }
}

impl From<ActionError> for ApiError {
    fn from(e: ActionError) -> Self {
        match e {
            ActionError::Forbidden(_) | ActionError::BeyondScope(_) => {
                ApiError::forbidden(e.to_string())
            }
            ActionError::NotFound(what) => ApiError::not_found(format!("{what} not found")),
            ActionError::Conflict { field, .. } => {
                ApiError::field(StatusCode::PRECONDITION_FAILED, field, e.to_string())
            }
            ActionError::Invalid { field, message } => ApiError::invalid(field, message),
            ActionError::Busy => ApiError::busy(),
            ActionError::Store(e) => e.into(),
        }
    }
}

/// The portal's errors, for code the two share (queue filters, rules).
impl From<WebError> for ApiError {
    fn from(e: WebError) -> Self {
        let status = match &e {
            WebError::NotFound(_) => StatusCode::NOT_FOUND,
            WebError::Forbidden(_) => StatusCode::FORBIDDEN,
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Conflict(_) => StatusCode::CONFLICT,
            WebError::Gone(_) => StatusCode::GONE,
            WebError::Unavailable(_) | WebError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            WebError::SignIn { .. } => StatusCode::UNAUTHORIZED,
        };
        // "field: message" (how the portal's parsers name a field) becomes the field.
        let text = e.to_string();
        match text.split_once(": ") {
            Some((field, _))
                if status == StatusCode::BAD_REQUEST
                    && !field.is_empty()
                    && field.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') =>
            {
                ApiError::field(status, field, text.clone())
            }
            _ if matches!(e, WebError::Busy) => ApiError::busy(),
            _ => ApiError::new(status, text),
        }
    }
}

impl From<askama::Error> for ApiError {
    fn from(e: askama::Error) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("template: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(e: ApiError) -> (StatusCode, String, serde_json::Value) {
        let response = e.into_response();
        let status = response.status();
        let kind = response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_string();
        let bytes = axum::body::to_bytes(response.into_body(), 10_000)
            .await
            .unwrap();
        (status, kind, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn problems_name_the_field_and_hide_our_faults() {
        let (status, kind, json) =
            body(ApiError::invalid("status", "\"done\" is not a status")).await;
        assert_eq!(
            (status, kind.as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, "application/problem+json")
        );
        assert_eq!(json["field"], "status");
        assert_eq!(json["status"], 422);
        assert!(json.get("reference").is_none());
        let (status, _, json) = body(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "password=hunter2 at db",
        ))
        .await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!json["detail"].as_str().unwrap().contains("hunter2"));
        assert_eq!(json["reference"].as_str().unwrap().len(), 12);
    }

    #[test]
    fn portal_errors_keep_their_field() {
        let e: ApiError =
            WebError::BadRequest("priority: \"x\" is not a valid choice".into()).into();
        assert_eq!(
            (e.status, e.field.as_deref()),
            (StatusCode::BAD_REQUEST, Some("priority"))
        );
    }
}
