//! `GET /metrics` and the middleware that times every request.
//!
//! Who may read the metrics: they name mailboxes and count mail and tickets, which is not
//! for the public. With `metrics.token` set, only a request with `Authorization: Bearer
//! <token>` (from anywhere). Without a token, only a client on this machine that did not
//! come through a proxy: a reverse proxy on the same host connects from 127.0.0.1 too,
//! and says so with `X-Forwarded-For` (or `Forwarded`, `X-Real-IP`).

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::web::auth::constant_time_eq;
use crate::web::AppState;

/// The route label of a request no route matched (404s): one series, not one per path.
pub const UNMATCHED: &str = "unmatched";

/// What the access rule says about a request for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Allowed,
    /// A token is configured and the request lacks it (or has a wrong one): 401.
    WrongToken,
    /// No token is configured and the request is not from this machine: 403.
    NotLocal,
}

/// The access rule (see the module's comment).
pub fn access(
    token: Option<&str>,
    authorization: Option<&str>,
    peer: Option<IpAddr>,
    forwarded: bool,
) -> Access {
    match token {
        Some(token) => {
            let sent = authorization
                .and_then(|value| value.split_once(' '))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, credentials)| credentials.trim());
            if sent.is_some_and(|sent| constant_time_eq(sent.as_bytes(), token.as_bytes())) {
                Access::Allowed
            } else {
                Access::WrongToken
            }
        }
        None if peer.is_some_and(crate::net::is_loopback_ip) && !forwarded => Access::Allowed,
        None => Access::NotLocal,
    }
}

fn is_forwarded(headers: &HeaderMap) -> bool {
    ["forwarded", "x-forwarded-for", "x-real-ip"]
        .iter()
        .any(|name| headers.contains_key(*name))
}

pub async fn show(State(state): State<AppState>, request: Request) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let headers = request.headers();
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let token = state.config.metrics.token.as_ref().map(|t| t.expose());
    match access(token, authorization, peer, is_forwarded(headers)) {
        Access::Allowed => {}
        Access::WrongToken => {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer realm=\"maildesk metrics\"")],
                "metrics: send Authorization: Bearer <metrics.token>\n",
            )
                .into_response()
        }
        Access::NotLocal => {
            return (
                StatusCode::FORBIDDEN,
                "metrics: readable only from this machine (not through a proxy), or with metrics.token set\n",
            )
                .into_response()
        }
    }
    // The counters are still worth having when the database is away; /readyz says that.
    if let Err(e) = crate::runtime::metrics::refresh(&state.store, &state.config).await {
        tracing::debug!(error = %e, "metrics: database values not refreshed");
    }
    let mut response = crate::runtime::metrics::render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::runtime::metrics::CONTENT_TYPE),
    );
    response
}

/// Times a request to its response headers, labelled by the route pattern that matched.
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = crate::runtime::metrics::method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_string();
    let response = next.run(request).await;
    crate::runtime::metrics::http_request(
        method,
        route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_token_only_this_machine_unproxied() {
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let local6: IpAddr = "::1".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let remote: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(access(None, None, Some(local), false), Access::Allowed);
        assert_eq!(access(None, None, Some(local6), false), Access::Allowed);
        assert_eq!(access(None, None, Some(mapped), false), Access::Allowed);
        assert_eq!(access(None, None, Some(local), true), Access::NotLocal);
        assert_eq!(access(None, None, Some(remote), false), Access::NotLocal);
        assert_eq!(access(None, None, None, false), Access::NotLocal);
    }

    #[test]
    fn with_a_token_everyone_needs_it() {
        let token = Some("0123456789abcdef");
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let remote: IpAddr = "192.0.2.7".parse().unwrap();
        let good = Some("Bearer 0123456789abcdef");
        assert_eq!(access(token, good, Some(remote), true), Access::Allowed);
        assert_eq!(
            access(token, Some("bearer 0123456789abcdef"), Some(remote), false),
            Access::Allowed
        );
        assert_eq!(access(token, None, Some(local), false), Access::WrongToken);
        for bad in [
            "Bearer 0123456789abcdeX",
            "Bearer 0123456789abcdef0",
            "Basic 0123456789abcdef",
            "0123456789abcdef",
            "Bearer",
        ] {
            assert_eq!(
                access(token, Some(bad), Some(local), false),
                Access::WrongToken,
                "{bad}"
            );
        }
    }

    #[test]
    fn a_proxy_header_of_any_kind_counts_as_forwarded() {
        for name in ["forwarded", "x-forwarded-for", "x-real-ip"] {
            let mut headers = HeaderMap::new();
            headers.insert(name, HeaderValue::from_static("for=192.0.2.7"));
            assert!(is_forwarded(&headers), "{name}");
        }
        assert!(!is_forwarded(&HeaderMap::new()));
    }
}
