//! Small things every page shows: the navigation bar, times, sizes, labels.

use crate::domain::{Priority, TicketStatus};
pub use crate::web::notice::Notice;

/// The bar at the top of every signed-in page.
#[derive(Debug, Clone)]
pub struct Nav {
    pub helpdesk: String,
    pub user_name: String,
    pub is_admin: bool,
    pub csrf: String,
    /// Which section is open: `dashboard`, `tickets`, `tasks`, `reports`, `quarantine`, `users`, `account`.
    pub section: &'static str,
}

/// `response` telling the client to try again in `seconds` (`Retry-After`).
pub fn retry_after(
    mut response: axum::response::Response,
    seconds: u64,
) -> axum::response::Response {
    response.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from(seconds),
    );
    response
}

/// A wait in seconds as the whole minutes a message names, rounded up.
pub fn minutes_to_wait(seconds: i64) -> i64 {
    (seconds + 59) / 60
}

/// `2026-11-21 17:40 UTC`.
pub fn time(unix: i64) -> String {
    format!("{} UTC", crate::domain::datetime::utc_minutes(unix))
}

/// `5 min ago`, `3 h ago`, `2 d ago` (the exact time goes in a title attribute).
pub fn ago(unix: i64, now: i64) -> String {
    let secs = (now - unix).max(0);
    match secs {
        0..=59 => "just now".into(),
        60..=3599 => format!("{} min ago", secs / 60),
        3600..=86_399 => format!("{} h ago", secs / 3600),
        _ => format!("{} d ago", secs / 86_400),
    }
}

pub fn size(bytes: i64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1024 * 1024 => format!("{:.0} KB", b as f64 / 1024.0),
        b => format!("{:.1} MB", b as f64 / (1024.0 * 1024.0)),
    }
}

pub fn status_label(status: &str) -> String {
    status.replace('_', " ")
}

pub fn statuses() -> Vec<(&'static str, String)> {
    TicketStatus::ALL
        .iter()
        .map(|s| (s.as_str(), status_label(s.as_str())))
        .collect()
}

pub fn priorities() -> Vec<&'static str> {
    Priority::ALL.iter().map(|p| p.as_str()).collect()
}

/// Back to `page` after a change, with what happened shown there (the notice every page
/// shows; see [`Notice`]). `page` may carry a query of its own.
pub fn done(page: &str, notice: Notice) -> axum::response::Redirect {
    axum::response::Redirect::to(&crate::web::notice::link(page, &notice))
}

/// Where a page with a "make one" form stands (personal tokens, API clients, webhooks):
/// listing (with the notice of a change just made), showing the secret of the thing just
/// made (this once: never in an address or a redirect), or refusing the form (the field
/// and why, the form as sent).
pub struct MakeForm<F, S> {
    pub notice: Option<String>,
    pub created: Option<S>,
    pub error: Option<(String, String)>,
    pub form: F,
    pub status: axum::http::StatusCode,
}

impl<F: Default, S> MakeForm<F, S> {
    pub fn listed(notice: Option<Notice>) -> Self {
        MakeForm {
            notice: notice.and_then(Notice::staff_text),
            ..Self::blank()
        }
    }

    pub fn made(secret: S) -> Self {
        MakeForm {
            created: Some(secret),
            ..Self::blank()
        }
    }

    pub fn refused((field, message): (String, String), form: F) -> Self {
        MakeForm {
            error: Some((field, message)),
            form,
            status: axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            ..Self::blank()
        }
    }

    fn blank() -> Self {
        MakeForm {
            notice: None,
            created: None,
            error: None,
            form: F::default(),
            status: axum::http::StatusCode::OK,
        }
    }
}

/// A query string of a page's filters: the pairs with a value, in order (empty filters
/// stay out of the address). Callers may append more (a page number) before `finish`.
pub fn filter_query(pairs: &[(&str, &str)]) -> form_urlencoded::Serializer<'static, String> {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (key, value) in pairs {
        if !value.is_empty() {
            out.append_pair(key, value);
        }
    }
    out
}

/// Percent-encodes a query value.
pub fn url_encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn done_redirects_with_the_notice_code() {
        use axum::response::IntoResponse;
        let response = done("/portal/tickets?q=x", Notice::NoteAdded).into_response();
        assert_eq!(
            response.headers()["location"],
            "/portal/tickets?q=x&done=note_added"
        );
    }

    #[test]
    fn relative_times_and_sizes() {
        assert_eq!(ago(100, 130), "just now");
        assert_eq!(ago(0, 7200), "2 h ago");
        assert_eq!(ago(0, 3 * 86_400), "3 d ago");
        assert_eq!(size(512), "512 B");
        assert_eq!(size(2048), "2 KB");
        assert_eq!(size(3 * 1024 * 1024), "3.0 MB");
    }
}
