//! Files from mail: attachments (downloaded, or previewed inline only when they are
//! really the image or PDF they claim to be), `cid:` images, original messages.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::Query;
use serde::Deserialize;

use crate::store::{messages, raw};
use crate::web::auth::Staff;
use crate::web::error::{WebError, WebResult};
use crate::web::{security, AppState};

/// Types a browser may show inline, each with the bytes its files begin with.
const PREVIEWABLE: &[(&str, &[&[u8]])] = &[
    ("image/png", &[b"\x89PNG\r\n\x1a\n"]),
    ("image/jpeg", &[b"\xff\xd8\xff"]),
    ("image/gif", &[b"GIF87a", b"GIF89a"]),
    ("image/webp", &[b"RIFF"]),
    ("application/pdf", &[b"%PDF-"]),
];

fn canonical_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

pub fn previewable(content_type: &str) -> bool {
    let wanted = canonical_type(content_type);
    PREVIEWABLE.iter().any(|(t, _)| *t == wanted)
}

/// The declared type, if it is previewable and the contents really are of that type.
fn verified_preview_type(content_type: &str, data: &[u8]) -> Option<&'static str> {
    let wanted = canonical_type(content_type);
    PREVIEWABLE
        .iter()
        .find(|(t, magic)| *t == wanted && magic.iter().any(|m| data.starts_with(m)))
        .map(|(t, _)| *t)
}

/// `attachment; filename="report.pdf"; filename*=UTF-8''r%C3%A9port.pdf`: an ASCII
/// fallback without quotes or controls, and the exact name percent-encoded.
pub fn disposition(kind: &str, filename: &str) -> String {
    let ascii: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let ascii = if ascii.trim().is_empty() {
        "attachment".into()
    } else {
        ascii
    };
    let encoded: String = filename
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or(HeaderValue::from_static("attachment"))
}

#[derive(Debug, Deserialize, Default)]
pub struct AttachmentQuery {
    #[serde(default)]
    inline: Option<u8>,
}

pub async fn attachment(
    State(state): State<AppState>,
    _staff: Staff,
    Path(id): Path<i64>,
    Query(query): Query<AttachmentQuery>,
) -> WebResult<Response> {
    let mut conn = state.store.acquire().await?;
    let (a, data) = messages::attachment_with_data(&mut conn, id)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("attachment {id} not found")))?;
    let preview = query
        .inline
        .is_some_and(|i| i == 1)
        .then(|| verified_preview_type(&a.content_type, &data))
        .flatten();
    Ok(file_response(data, preview, &a.filename))
}

/// Downloads as bytes (never interpreted by the browser), or shows a verified preview.
pub fn file_response(data: Vec<u8>, preview: Option<&'static str>, filename: &str) -> Response {
    let (content_type, kind) = match preview {
        Some(t) => (t, "inline"),
        None => ("application/octet-stream", "attachment"),
    };
    let mut response = data.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_DISPOSITION,
        header_value(&disposition(kind, filename)),
    );
    // A PDF viewer cannot work in a sandbox; nothing else needs more than one.
    let csp = if preview == Some("application/pdf") {
        "default-src 'none'"
    } else {
        security::CSP_SANDBOX
    };
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=3600"),
    );
    response
}

pub async fn cid_image(
    State(state): State<AppState>,
    _staff: Staff,
    Path((message_id, content_id)): Path<(i64, String)>,
) -> WebResult<Response> {
    let mut conn = state.store.acquire().await?;
    let (a, data) = messages::attachment_by_content_id(&mut conn, message_id, &content_id)
        .await?
        .ok_or_else(|| WebError::NotFound("image not found".into()))?;
    match verified_preview_type(&a.content_type, &data).filter(|t| t.starts_with("image/")) {
        Some(t) => Ok(file_response(data, Some(t), &a.filename)),
        None => Err(WebError::NotFound("image not found".into())),
    }
}

pub async fn raw_message(
    State(state): State<AppState>,
    _staff: Staff,
    Path(id): Path<i64>,
) -> WebResult<Response> {
    let mut conn = state.store.acquire().await?;
    let message = messages::get(&mut conn, id)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("message {id} not found")))?;
    let sha = message.raw_sha256.ok_or_else(|| {
        WebError::NotFound(if message.raw_purged_at.is_some() {
            "the original of this message was purged (retention.raw_days)".into()
        } else {
            "this message has no original".into()
        })
    })?;
    let data = raw::get_raw(&mut conn, &sha)
        .await?
        .ok_or_else(|| WebError::NotFound("the original is gone".into()))?;
    Ok(file_response(data, None, &format!("message-{id}.eml")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe_in_the_header() {
        assert_eq!(
            disposition("attachment", "a\"b\r\n.pdf"),
            "attachment; filename=\"a_b__.pdf\"; filename*=UTF-8''a%22b%0D%0A.pdf"
        );
        assert!(disposition("attachment", "résumé.pdf")
            .contains("filename*=UTF-8''r%C3%A9sum%C3%A9.pdf"));
    }

    #[test]
    fn previews_only_for_what_the_bytes_are() {
        assert_eq!(
            verified_preview_type("image/png", b"\x89PNG\r\n\x1a\nrest"),
            Some("image/png")
        );
        assert_eq!(verified_preview_type("image/png", b"<html><script>"), None);
        assert_eq!(verified_preview_type("image/svg+xml", b"<svg"), None);
        assert_eq!(
            verified_preview_type("Application/PDF; name=x", b"%PDF-1.7"),
            Some("application/pdf")
        );
    }
}
