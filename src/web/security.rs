//! Headers every response carries: a Content-Security-Policy without inline script or
//! style, no framing, no sniffing, no referrer leaving the site, no caching of pages.

use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// The page policy with the image sources given: one text, so the two cannot drift.
macro_rules! page_csp {
    ($images:literal) => {
        concat!(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src ",
            $images,
            "; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        )
    };
}

/// Pages load only our own script, style and images (plus `data:` images).
pub const CSP: &str = page_csp!("'self' data:");

/// The same, with remote images allowed: only for a page whose viewer asked for them.
pub const CSP_REMOTE_IMAGES: &str = page_csp!("'self' data: https: http:");

/// For files we serve as they are (attachments, raw mail): nothing in them may run.
pub const CSP_SANDBOX: &str =
    "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox";

pub async fn headers(request: Request, next: Next) -> Response {
    let is_static = request.uri().path().starts_with("/static/");
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(CSP));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.entry(header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("same-origin"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !is_static {
        h.entry(header::CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-store"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_page_policies_differ_only_in_images() {
        assert_eq!(
            CSP,
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        );
        assert_eq!(
            CSP_REMOTE_IMAGES.replace(" https: http:", ""),
            CSP,
            "{CSP_REMOTE_IMAGES}"
        );
    }
}
