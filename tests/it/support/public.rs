//! The public side through the router: a visitor, the form, multipart posts.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use maildesk::store::tickets;

use crate::support::portal::{field_value, set_cookie, Browser, Portal, Response};

pub const SECRET: &str = "test-secret-0123456789abcdef";
pub const BASE: &str = "http://help.example.test";
pub const CORA: &str = "cora@example.net";

pub fn web_config(extra: &str) -> String {
    format!("\n[web]\npublic_url = \"{BASE}\"\ntrust_proxy_headers = true\n{extra}\n")
}

pub async fn public_portal(extra: &str) -> Portal {
    Portal::with_config(&web_config(extra)).await
}

/// A visitor of the public side: the CSRF cookie and token from a page they loaded.
pub async fn visitor(portal: &Portal, path: &str) -> Browser {
    let page = portal.get(&Browser::default(), path).await;
    assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
    let cookie = set_cookie(&page, "maildesk_public").expect("the public CSRF cookie");
    let csrf = field_value(&page.body, "csrf").expect("csrf field");
    Browser { cookie, csrf }
}

/// A multipart POST like a browser's: text fields and files (`attachments`).
pub async fn post_multipart(
    portal: &Portal,
    browser: &Browser,
    path: &str,
    fields: &[(&str, &str)],
    files: &[(&str, &[u8])],
    client: &str,
) -> Response {
    let boundary = "----maildesk-test-boundary-7d1";
    let mut body = Vec::new();
    let mut all: Vec<(&str, &str)> = Vec::new();
    if !fields.iter().any(|(k, _)| *k == "csrf") && !browser.csrf.is_empty() {
        all.push(("csrf", &browser.csrf));
    }
    all.extend_from_slice(fields);
    for (name, value) in all {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    for (filename, data) in files {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"attachments\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let mut request = Request::post(path)
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .header("x-forwarded-for", client);
    if !browser.cookie.is_empty() {
        request = request.header(header::COOKIE, &browser.cookie);
    }
    portal.send(request.body(Body::from(body)).unwrap()).await
}

pub fn form<'a>(email: &'a str, subject: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("email", email),
        ("name", "Cora Customer"),
        ("category", "hardware"),
        ("subject", subject),
        ("description", "The printer shows error 42."),
        ("website", ""),
    ]
}

pub async fn ticket_count(portal: &Portal) -> i64 {
    let mut conn = portal.store().acquire().await.unwrap();
    tickets::count(&mut conn).await.unwrap()
}
