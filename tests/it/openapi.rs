//! The API's OpenAPI document: served without sign-in, valid OpenAPI 3.1 (checked by
//! `openapi-spec-validator` from the repository's .venv), listing every route of the
//! router and nothing the router does not answer.

use std::collections::BTreeSet;
use std::path::Path;

use axum::http::StatusCode;
use serde_json::Value;

use crate::support::api::{call, make_token, parsed, Auth};
use crate::support::portal::{Portal, ADMIN};

/// Every operation the issue and the README promise, as `METHOD path`.
const ROUTES: &[&str] = &[
    "GET /api/v1/openapi.json",
    "GET /api/v1/auth/verify",
    "POST /api/v1/auth/login",
    "POST /api/v1/auth/logout",
    "POST /api/v1/auth/register",
    "GET /api/v1/tickets",
    "POST /api/v1/tickets",
    "GET /api/v1/tickets/{reference}",
    "PATCH /api/v1/tickets/{reference}",
    "DELETE /api/v1/tickets/{reference}",
    "POST /api/v1/tickets/{reference}/replies",
    "POST /api/v1/tickets/{reference}/notes",
    "POST /api/v1/tickets/{reference}/merge",
    "GET /api/v1/tasks",
    "POST /api/v1/tasks",
    "GET /api/v1/tasks/{id}",
    "PATCH /api/v1/tasks/{id}",
    "DELETE /api/v1/tasks/{id}",
    "GET /api/v1/users",
    "POST /api/v1/users",
    "GET /api/v1/users/{id}",
    "PATCH /api/v1/users/{id}",
    "DELETE /api/v1/users/{id}",
    "GET /api/v1/attachments/{id}",
    "GET /api/v1/quarantine",
    "GET /api/v1/quarantine/{id}",
    "POST /api/v1/quarantine/{id}/retry",
    "POST /api/v1/oauth/token",
    "GET /api/v1/oauth/clients",
    "POST /api/v1/oauth/clients",
    "DELETE /api/v1/oauth/clients/{id}",
    "GET /api/v1/webhooks",
    "POST /api/v1/webhooks",
    "GET /api/v1/webhooks/{id}",
    "PATCH /api/v1/webhooks/{id}",
    "DELETE /api/v1/webhooks/{id}",
    "GET /api/v1/webhooks/{id}/deliveries",
    "POST /api/v1/webhooks/deliveries/{id}/retry",
];

/// The operations the document lists, as `METHOD path`.
fn operations(document: &Value) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, _) in item.as_object().expect("a path item") {
            if ["get", "post", "patch", "put", "delete"].contains(&method.as_str()) {
                found.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    found
}

/// Runs the OpenAPI validator of the repository's .venv (installed by scripts/test).
fn validate(document: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let validator = root.join(".venv/bin/openapi-spec-validator");
    assert!(
        validator.exists(),
        "checking the OpenAPI document needs {}: run scripts/test (or .venv/bin/pip install openapi-spec-validator)",
        validator.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, document).unwrap();
    let out = std::process::Command::new(&validator)
        .arg(&file)
        .output()
        .expect("run openapi-spec-validator");
    assert!(
        out.status.success(),
        "the OpenAPI document is not valid:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn the_openapi_document_is_valid_and_lists_every_route() {
    let portal = Portal::new().await;
    let response = call(
        &portal,
        "GET",
        "/api/v1/openapi.json",
        &Auth::Nobody,
        None,
        None,
    )
    .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    let document = parsed(&response);
    assert_eq!(document["openapi"], "3.1.0");
    validate(&response.body);
    // To read it: MAILDESK_DUMP_OPENAPI=/tmp/openapi.json cargo test --test it -- openapi
    if let Ok(path) = std::env::var("MAILDESK_DUMP_OPENAPI") {
        std::fs::write(path, &response.body).unwrap();
    }

    let listed = operations(&document);
    let promised: BTreeSet<String> = ROUTES.iter().map(|r| r.to_string()).collect();
    assert_eq!(
        listed.difference(&promised).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "documented but not promised (add it to ROUTES and the README)"
    );
    assert_eq!(
        promised.difference(&listed).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "promised but not documented"
    );

    // Each operation says what it answers, and only the public ones need no sign-in.
    let public = [
        "GET /api/v1/openapi.json",
        "POST /api/v1/auth/login",
        "POST /api/v1/auth/register",
        "POST /api/v1/oauth/token",
    ];
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let name = format!("{} {path}", method.to_uppercase());
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|code| code.starts_with('2')),
                "{name} documents no success"
            );
            assert!(
                op["tags"].as_array().is_some_and(|t| !t.is_empty()),
                "{name} has no tag"
            );
            let open = op["security"].as_array().is_some_and(|s| {
                s.iter()
                    .any(|r| r.as_object().is_some_and(|r| r.is_empty()))
            });
            assert_eq!(
                open,
                public.contains(&name.as_str()),
                "{name}: who may call it"
            );
        }
    }

    // The router answers every documented operation itself (not the catch-all, not 405),
    // with an admin token and ids that do not exist.
    let admin = portal.sign_in(ADMIN).await;
    let token = Auth::Token(make_token(&portal, &admin, "admin").await);
    for operation in &listed {
        let (method, path) = operation.split_once(' ').unwrap();
        let path = path
            .replace("{reference}", "999999")
            .replace("{id}", "999999");
        let response = call(&portal, method, &path, &token, None, None).await;
        assert_ne!(
            response.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{operation}"
        );
        assert!(
            !response
                .body
                .contains("there is no API resource at this address"),
            "{operation} is documented but not routed: {}",
            response.body
        );
    }
}
