//! Calls to the JSON API through the router, as a token, a session or nobody.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use serde_json::Value;

use crate::support::portal::{Browser, Portal, Response};

/// How a request authenticates.
#[derive(Clone)]
pub enum Auth {
    Nobody,
    Token(String),
    /// A portal session; `true` sends its CSRF token.
    Session(Browser, bool),
}

pub async fn call(
    portal: &Portal,
    method: &str,
    path: &str,
    auth: &Auth,
    body: Option<Value>,
    if_match: Option<&str>,
) -> Response {
    let mut request = Request::builder().method(method).uri(path);
    match auth {
        Auth::Nobody => {}
        Auth::Token(token) => {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        Auth::Session(browser, csrf) => {
            request = request.header(header::COOKIE, &browser.cookie);
            if *csrf {
                request = request.header("x-csrf-token", &browser.csrf);
            }
        }
    }
    if let Some(tag) = if_match {
        request = request.header(header::IF_MATCH, tag);
    }
    let body = match body {
        Some(value) => {
            request = request.header(header::CONTENT_TYPE, "application/json");
            Body::from(value.to_string())
        }
        None => Body::empty(),
    };
    portal.send(request.body(body).unwrap()).await
}

pub fn parsed(response: &Response) -> Value {
    serde_json::from_str(&response.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", response.body))
}

/// Checks a problem+json answer and returns it.
pub fn problem(response: &Response, status: StatusCode) -> Value {
    assert_eq!(response.status, status, "{}", response.body);
    assert_eq!(
        response.headers[header::CONTENT_TYPE],
        "application/problem+json"
    );
    let body = parsed(response);
    assert_eq!(body["status"], status.as_u16());
    body
}

/// Makes a token in the portal as `browser` and returns it (shown once, on that page).
pub async fn make_token(portal: &Portal, browser: &Browser, scope: &str) -> String {
    let page = portal
        .post(
            browser,
            "/portal/account/tokens",
            &[
                ("name", &format!("{scope} script")),
                ("scope", scope),
                ("days", "30"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let marker = "id=\"token-value\" readonly value=\"";
    let start = page.body.find(marker).expect("the new token on the page") + marker.len();
    let token = page.body[start..start + 68].to_string();
    assert!(token.starts_with("mdk_"), "{token}");
    token
}

pub async fn etag(portal: &Portal, auth: &Auth, id: i64) -> String {
    let response = call(
        portal,
        "GET",
        &format!("/api/v1/tickets/{id}"),
        auth,
        None,
        None,
    )
    .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    response.headers[header::ETAG].to_str().unwrap().to_string()
}
