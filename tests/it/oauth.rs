//! OAuth2 machine clients through the router against the real database: admins register
//! clients, clients trade id and secret for an access token (client-credentials grant)
//! and call the API within their scope and their user's role; expiry, tampering,
//! revocation, a disabled user and key rotation; the token endpoint's RFC 6749 errors.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use base64::Engine;
use maildesk::store::{unix_now, users};
use serde_json::{json, Value};

use crate::support::api::{call, etag, make_token, parsed, problem, Auth};
use crate::support::portal::{customer_mail, Browser, Portal, Response, ADMIN, STAFF};

/// A registered client: its id and its secret (shown once).
struct Registered {
    id: i64,
    client_id: String,
    secret: String,
}

async fn user_id(portal: &Portal, email: &str) -> i64 {
    let mut conn = portal.store().acquire().await.unwrap();
    users::find_by_email(&mut conn, email)
        .await
        .unwrap()
        .unwrap()
        .id
}

/// Registers a client as the admin `browser` (a session with its CSRF token).
async fn register(portal: &Portal, admin: &Browser, scope: &str, acts_as: i64) -> Registered {
    let response = call(
        portal,
        "POST",
        "/api/v1/oauth/clients",
        &Auth::Session(admin.clone(), true),
        Some(json!({"name": format!("{scope} robot"), "scope": scope, "acts_as": acts_as})),
        None,
    )
    .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.body);
    assert_eq!(response.headers[header::CACHE_CONTROL], "no-store");
    let body = parsed(&response);
    assert_eq!(body["scope"], scope);
    assert_eq!(body["acts_as"], acts_as);
    assert!(body.get("secret_hash").is_none());
    let client_id = body["client_id"].as_str().unwrap().to_string();
    assert!(client_id.starts_with("mdc_"), "{client_id}");
    Registered {
        id: body["id"].as_i64().unwrap(),
        client_id,
        secret: body["client_secret"].as_str().unwrap().to_string(),
    }
}

/// How the client authenticates at the token endpoint.
enum By<'a> {
    Basic(&'a str, &'a str),
    Form(&'a str, &'a str),
}

async fn token_request(portal: &Portal, by: By<'_>, fields: &[(&str, &str)]) -> Response {
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        form.append_pair(k, v);
    }
    let mut request = Request::post("/api/v1/oauth/token")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    match by {
        By::Basic(id, secret) => {
            let encoded =
                base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
            request = request.header(header::AUTHORIZATION, format!("Basic {encoded}"));
        }
        By::Form(id, secret) => {
            form.append_pair("client_id", id);
            form.append_pair("client_secret", secret);
        }
    }
    portal
        .send(request.body(Body::from(form.finish())).unwrap())
        .await
}

/// A successful token response's access token, after checking the response.
fn access_token(response: &Response, scope: &str) -> String {
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    assert_eq!(response.headers[header::CACHE_CONTROL], "no-store");
    let body = parsed(response);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["scope"], scope);
    body["access_token"].as_str().unwrap().to_string()
}

async fn get_token(portal: &Portal, client: &Registered) -> String {
    let response = token_request(
        portal,
        By::Basic(&client.client_id, &client.secret),
        &[("grant_type", "client_credentials")],
    )
    .await;
    let scope = parsed(&response)["scope"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    access_token(&response, &scope)
}

/// An OAuth error answer (RFC 6749 §5.2), checked, and its `error`.
fn oauth_error(response: &Response, status: StatusCode) -> String {
    assert_eq!(response.status, status, "{}", response.body);
    assert_eq!(response.headers[header::CONTENT_TYPE], "application/json");
    let body = parsed(response);
    assert!(body["error_description"].is_string(), "{}", response.body);
    if status == StatusCode::UNAUTHORIZED {
        assert!(response.headers.contains_key(header::WWW_AUTHENTICATE));
    }
    body["error"].as_str().unwrap().to_string()
}

/// The `kid` in a JWT's header.
fn kid(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap();
    let header: Value = serde_json::from_slice(&bytes).unwrap();
    header["kid"].as_str().unwrap().to_string()
}

async fn status_of(portal: &Portal, path: &str, token: &str) -> Response {
    call(portal, "GET", path, &Auth::Token(token.into()), None, None).await
}

#[tokio::test]
async fn clients_get_tokens_and_call_the_api_within_their_scope_and_role() {
    let portal = Portal::new().await;
    let id = portal
        .ingest(&customer_mail(
            "cora@example.net",
            "oauth1@x",
            "VPN down",
            "It dropped.",
        ))
        .await;
    let admin = portal.sign_in(ADMIN).await;
    let staff_id = user_id(&portal, STAFF).await;
    let writer = register(&portal, &admin, "write", staff_id).await;
    let reader = register(&portal, &admin, "read", staff_id).await;
    let mighty = register(&portal, &admin, "admin", staff_id).await;

    // HTTP Basic, and the form fields.
    let by_basic = access_token(
        &token_request(
            &portal,
            By::Basic(&writer.client_id, &writer.secret),
            &[("grant_type", "client_credentials")],
        )
        .await,
        "write",
    );
    let by_form = access_token(
        &token_request(
            &portal,
            By::Form(&writer.client_id, &writer.secret),
            &[("grant_type", "client_credentials")],
        )
        .await,
        "write",
    );
    for token in [&by_basic, &by_form] {
        let list = status_of(&portal, "/api/v1/tickets", token).await;
        assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    }
    let me = parsed(&status_of(&portal, "/api/v1/auth/verify", &by_form).await);
    assert_eq!(
        (
            me["user"]["email"].as_str(),
            me["scope"].as_str(),
            me["via"].as_str()
        ),
        (Some(STAFF), Some("write"), Some("client"))
    );

    // A write-scoped client changes a ticket (with If-Match, as anyone).
    let write = Auth::Token(by_basic.clone());
    let tag = etag(&portal, &write, id).await;
    let changed = call(
        &portal,
        "PATCH",
        &format!("/api/v1/tickets/{id}"),
        &write,
        Some(json!({"status": "in_progress"})),
        Some(&tag),
    )
    .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_eq!(parsed(&changed)["status"], "in_progress");

    // A read-scoped client reads, and is refused a change.
    let read = Auth::Token(get_token(&portal, &reader).await);
    assert_eq!(
        call(
            &portal,
            "GET",
            &format!("/api/v1/tickets/{id}"),
            &read,
            None,
            None
        )
        .await
        .status,
        StatusCode::OK
    );
    problem(
        &call(
            &portal,
            "POST",
            &format!("/api/v1/tickets/{id}/notes"),
            &read,
            Some(json!({"body": "seen"})),
            None,
        )
        .await,
        StatusCode::FORBIDDEN,
    );
    // A narrower scope may be asked for; the answer says what was granted.
    let narrowed = token_request(
        &portal,
        By::Form(&writer.client_id, &writer.secret),
        &[("grant_type", "client_credentials"), ("scope", "read")],
    )
    .await;
    let narrowed = access_token(&narrowed, "read");
    problem(
        &call(
            &portal,
            "POST",
            &format!("/api/v1/tickets/{id}/notes"),
            &Auth::Token(narrowed),
            Some(json!({"body": "seen"})),
            None,
        )
        .await,
        StatusCode::FORBIDDEN,
    );

    // The scope caps the client; its user's role still limits it: an admin-scoped
    // client acting as a staff member is no admin.
    let mighty = get_token(&portal, &mighty).await;
    problem(
        &status_of(&portal, "/api/v1/users", &mighty).await,
        StatusCode::FORBIDDEN,
    );

    // Admins list the clients (no secrets), with when each was last used.
    let list = call(
        &portal,
        "GET",
        "/api/v1/oauth/clients",
        &Auth::Session(admin.clone(), false),
        None,
        None,
    )
    .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    let clients = parsed(&list)["clients"].as_array().unwrap().clone();
    assert_eq!(clients.len(), 3);
    assert!(!list.body.contains(&writer.secret));
    let listed = clients
        .iter()
        .find(|c| c["client_id"] == writer.client_id.as_str())
        .unwrap();
    assert!(listed["last_used_at"].is_i64(), "{listed}");
    assert_eq!(listed["acts_as_email"], STAFF);
}

#[tokio::test]
async fn the_token_endpoint_answers_with_rfc_6749_errors() {
    let portal = Portal::new().await;
    let admin = portal.sign_in(ADMIN).await;
    let staff_id = user_id(&portal, STAFF).await;
    let client = register(&portal, &admin, "write", staff_id).await;
    let grant = [("grant_type", "client_credentials")];

    let wrong = token_request(&portal, By::Basic(&client.client_id, "nope"), &grant).await;
    assert_eq!(
        oauth_error(&wrong, StatusCode::UNAUTHORIZED),
        "invalid_client"
    );
    let wrong = token_request(&portal, By::Form(&client.client_id, "nope"), &grant).await;
    assert_eq!(
        oauth_error(&wrong, StatusCode::UNAUTHORIZED),
        "invalid_client"
    );
    let unknown = token_request(&portal, By::Basic("mdc_nobody", &client.secret), &grant).await;
    assert_eq!(
        oauth_error(&unknown, StatusCode::UNAUTHORIZED),
        "invalid_client"
    );
    let anonymous = portal
        .send(
            Request::post("/api/v1/oauth/token")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from("grant_type=client_credentials"))
                .unwrap(),
        )
        .await;
    assert_eq!(
        oauth_error(&anonymous, StatusCode::UNAUTHORIZED),
        "invalid_client"
    );

    let by = || By::Basic(&client.client_id, &client.secret);
    let password = token_request(&portal, by(), &[("grant_type", "password")]).await;
    assert_eq!(
        oauth_error(&password, StatusCode::BAD_REQUEST),
        "unsupported_grant_type"
    );
    let missing = token_request(&portal, by(), &[]).await;
    assert_eq!(
        oauth_error(&missing, StatusCode::BAD_REQUEST),
        "invalid_request"
    );
    let twice = token_request(
        &portal,
        by(),
        &[
            ("grant_type", "client_credentials"),
            ("grant_type", "client_credentials"),
        ],
    )
    .await;
    assert_eq!(
        oauth_error(&twice, StatusCode::BAD_REQUEST),
        "invalid_request"
    );
    let beyond = token_request(
        &portal,
        by(),
        &[("grant_type", "client_credentials"), ("scope", "admin")],
    )
    .await;
    assert_eq!(
        oauth_error(&beyond, StatusCode::BAD_REQUEST),
        "invalid_scope"
    );
    let unknown_scope = token_request(
        &portal,
        by(),
        &[("grant_type", "client_credentials"), ("scope", "root")],
    )
    .await;
    assert_eq!(
        oauth_error(&unknown_scope, StatusCode::BAD_REQUEST),
        "invalid_scope"
    );
    // Both ways of authenticating at once.
    let encoded = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", client.client_id, client.secret));
    let both = portal
        .send(
            Request::post("/api/v1/oauth/token")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::AUTHORIZATION, format!("Basic {encoded}"))
                .body(Body::from(format!(
                    "grant_type=client_credentials&client_id={}&client_secret={}",
                    client.client_id, client.secret
                )))
                .unwrap(),
        )
        .await;
    assert_eq!(
        oauth_error(&both, StatusCode::BAD_REQUEST),
        "invalid_request"
    );
    // JSON is not the grant's format.
    let as_json = portal
        .send(
            Request::post("/api/v1/oauth/token")
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::AUTHORIZATION, format!("Basic {encoded}"))
                .body(Body::from(r#"{"grant_type":"client_credentials"}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(
        oauth_error(&as_json, StatusCode::BAD_REQUEST),
        "invalid_request"
    );
}

#[tokio::test]
async fn expired_tampered_revoked_and_disabled_stop_at_once() {
    let portal = Portal::new().await;
    let admin = portal.sign_in(ADMIN).await;
    let staff_id = user_id(&portal, STAFF).await;
    let client = register(&portal, &admin, "read", staff_id).await;
    let token = get_token(&portal, &client).await;
    assert_eq!(
        status_of(&portal, "/api/v1/tickets", &token).await.status,
        StatusCode::OK
    );

    // Signed an hour ago, so expired 45 minutes ago.
    let old = portal
        .state
        .oauth_keys
        .issue(
            portal.store(),
            &maildesk::integrations::oauth::Grant {
                client_id: &client.client_id,
                scope: "read",
                credentials_version: 0,
            },
            unix_now() - 3600,
        )
        .await
        .unwrap();
    let expired = problem(
        &status_of(&portal, "/api/v1/tickets", &old).await,
        StatusCode::UNAUTHORIZED,
    );
    assert_eq!(expired["detail"], "the access token has expired");

    // A changed signature, a changed claim, a kid nobody knows.
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let flipped = if signature.starts_with('A') { 'B' } else { 'A' };
    let tampered = format!("{signed}.{flipped}{}", &signature[1..]);
    problem(
        &status_of(&portal, "/api/v1/tickets", &tampered).await,
        StatusCode::UNAUTHORIZED,
    );
    let mut parts: Vec<&str> = token.split('.').collect();
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims: Value = serde_json::from_slice(&engine.decode(parts[1]).unwrap()).unwrap();
    claims["scope"] = "admin".into();
    let forged_claims = engine.encode(claims.to_string());
    parts[1] = &forged_claims;
    problem(
        &status_of(&portal, "/api/v1/tickets", &parts.join(".")).await,
        StatusCode::UNAUTHORIZED,
    );
    let header = engine.encode(r#"{"alg":"HS256","typ":"JWT","kid":"nobody"}"#);
    let unknown_kid = format!("{header}.{}.{}", parts[1], signature);
    problem(
        &status_of(&portal, "/api/v1/tickets", &unknown_kid).await,
        StatusCode::UNAUTHORIZED,
    );

    // Revoking the client stops its live token with the next request.
    let revoked = call(
        &portal,
        "DELETE",
        &format!("/api/v1/oauth/clients/{}", client.id),
        &Auth::Session(admin.clone(), true),
        None,
        None,
    )
    .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.body);
    problem(
        &status_of(&portal, "/api/v1/tickets", &token).await,
        StatusCode::UNAUTHORIZED,
    );
    let refused = token_request(
        &portal,
        By::Basic(&client.client_id, &client.secret),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(
        oauth_error(&refused, StatusCode::UNAUTHORIZED),
        "invalid_client"
    );
    problem(
        &call(
            &portal,
            "DELETE",
            &format!("/api/v1/oauth/clients/{}", client.id),
            &Auth::Session(admin.clone(), true),
            None,
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
    );

    // Disabling the user it acts as stops it too.
    let other = register(&portal, &admin, "read", staff_id).await;
    let live = get_token(&portal, &other).await;
    assert_eq!(
        status_of(&portal, "/api/v1/tickets", &live).await.status,
        StatusCode::OK
    );
    {
        let mut conn = portal.store().acquire().await.unwrap();
        users::set_active(&mut conn, staff_id, false, unix_now())
            .await
            .unwrap();
    }
    problem(
        &status_of(&portal, "/api/v1/tickets", &live).await,
        StatusCode::UNAUTHORIZED,
    );
    let refused = token_request(
        &portal,
        By::Form(&other.client_id, &other.secret),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(
        oauth_error(&refused, StatusCode::UNAUTHORIZED),
        "invalid_client"
    );
}

#[tokio::test]
async fn rotating_the_key_keeps_live_tokens_and_signs_new_ones_with_the_new_key() {
    let portal = Portal::new().await;
    let admin = portal.sign_in(ADMIN).await;
    let staff_id = user_id(&portal, STAFF).await;
    let client = register(&portal, &admin, "read", staff_id).await;
    // The first token makes the first key.
    let before = get_token(&portal, &client).await;
    assert_eq!(
        status_of(&portal, "/api/v1/tickets", &before).await.status,
        StatusCode::OK
    );
    // `maildesk oauth rotate-key`, another process: this server's cache does not know
    // the new key until it sees it.
    let output = portal.env.cli(&["oauth", "rotate-key"], None);
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{said} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let new_kid = said
        .strip_prefix("new signing key ")
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_else(|| panic!("{said}"))
        .to_string();
    assert_ne!(new_kid, kid(&before));
    assert_eq!(
        status_of(&portal, "/api/v1/tickets", &before).await.status,
        StatusCode::OK,
        "a token signed before the rotation still works"
    );
    let after = get_token(&portal, &client).await;
    assert_eq!(kid(&after), new_kid);
    assert_eq!(
        status_of(&portal, "/api/v1/tickets", &after).await.status,
        StatusCode::OK
    );
    // Rotating again: the first key (retired just now) still verifies.
    maildesk::integrations::oauth::rotate(portal.store(), unix_now())
        .await
        .unwrap();
    assert_eq!(
        status_of(&portal, "/api/v1/tickets", &before).await.status,
        StatusCode::OK
    );
    // A key retired longer than a token lifetime ago verifies nothing (rotated "half an
    // hour ago"; checked by a fresh key ring, as another instance without a cache).
    let third = get_token(&portal, &client).await;
    let lifetime = maildesk::integrations::oauth::TOKEN_LIFETIME;
    maildesk::integrations::oauth::rotate(portal.store(), unix_now() - 2 * lifetime)
        .await
        .unwrap();
    let fresh = maildesk::integrations::oauth::KeyRing::default();
    assert!(matches!(
        fresh.verify(portal.store(), &third, unix_now()).await,
        Err(maildesk::integrations::oauth::TokenError::Invalid)
    ));
    assert!(fresh
        .verify(portal.store(), &before, unix_now())
        .await
        .is_ok());
}

#[tokio::test]
async fn only_admins_with_admin_scope_register_clients() {
    let portal = Portal::new().await;
    let staff = portal.sign_in(STAFF).await;
    let admin = portal.sign_in(ADMIN).await;
    let staff_id = user_id(&portal, STAFF).await;
    let body = || Some(json!({"name": "robot", "scope": "read", "acts_as": staff_id}));
    let path = "/api/v1/oauth/clients";
    for auth in [
        Auth::Session(staff.clone(), true),
        Auth::Token(make_token(&portal, &staff, "write").await),
        // An admin, but a token without the admin scope.
        Auth::Token(make_token(&portal, &admin, "write").await),
    ] {
        problem(
            &call(&portal, "POST", path, &auth, body(), None).await,
            StatusCode::FORBIDDEN,
        );
    }
    problem(
        &call(
            &portal,
            "GET",
            path,
            &Auth::Session(staff.clone(), false),
            None,
            None,
        )
        .await,
        StatusCode::FORBIDDEN,
    );
    problem(
        &call(&portal, "POST", path, &Auth::Nobody, body(), None).await,
        StatusCode::UNAUTHORIZED,
    );
    // A staff member's client cannot register clients either (admin scope, staff role).
    let mighty = register(&portal, &admin, "admin", staff_id).await;
    let mighty = Auth::Token(get_token(&portal, &mighty).await);
    problem(
        &call(&portal, "POST", path, &mighty, body(), None).await,
        StatusCode::FORBIDDEN,
    );

    let admin_token = Auth::Token(make_token(&portal, &admin, "admin").await);
    let refused = |field: &'static str, value: Value| {
        let portal = &portal;
        let admin_token = admin_token.clone();
        async move {
            let mut new = json!({"name": "robot", "scope": "read", "acts_as": staff_id});
            new[field] = value;
            let response = call(portal, "POST", path, &admin_token, Some(new), None).await;
            assert_eq!(
                problem(&response, StatusCode::UNPROCESSABLE_ENTITY)["field"],
                field,
                "{}",
                response.body
            );
        }
    };
    refused("name", json!(" ")).await;
    refused("scope", json!("root")).await;
    refused("acts_as", json!(999_999)).await;
    let made = call(&portal, "POST", path, &admin_token, body(), None).await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    assert!(made.headers[header::LOCATION]
        .to_str()
        .unwrap()
        .starts_with("/api/v1/oauth/clients/"));
}

#[tokio::test]
async fn admins_register_and_revoke_clients_in_the_portal() {
    let portal = Portal::new().await;
    let staff = portal.sign_in(STAFF).await;
    let admin = portal.sign_in(ADMIN).await;
    let staff_id = user_id(&portal, STAFF).await.to_string();
    let page = "/portal/admin/api-clients";
    assert_eq!(portal.get(&staff, page).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        portal
            .post(
                &staff,
                page,
                &[("name", "x"), ("scope", "read"), ("acts_as", &staff_id)]
            )
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let empty = portal.get(&admin, page).await;
    assert_eq!(empty.status, StatusCode::OK, "{}", empty.body);
    assert!(empty.body.contains("None yet"), "{}", empty.body);

    let refused = portal
        .post(
            &admin,
            page,
            &[("name", "robot"), ("scope", "root"), ("acts_as", &staff_id)],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("choose read, write or admin"));

    let made = portal
        .post(
            &admin,
            page,
            &[
                ("name", "robot"),
                ("scope", "write"),
                ("acts_as", &staff_id),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.body);
    let value = |id: &str| {
        let marker = format!("id=\"{id}\" readonly value=\"");
        let start = made.body.find(&marker).expect(id) + marker.len();
        let end = made.body[start..].find('"').unwrap() + start;
        made.body[start..end].to_string()
    };
    let (client_id, secret) = (value("client-id"), value("client-secret"));
    let token = access_token(
        &token_request(
            &portal,
            By::Basic(&client_id, &secret),
            &[("grant_type", "client_credentials")],
        )
        .await,
        "write",
    );
    assert_eq!(
        status_of(&portal, "/api/v1/tickets", &token).await.status,
        StatusCode::OK
    );
    // Listed, without its secret.
    let listed = portal.get(&admin, page).await;
    assert!(listed.body.contains(&client_id) && !listed.body.contains(&secret));

    let id = {
        let mut conn = portal.store().acquire().await.unwrap();
        maildesk::store::oauth::list(&mut conn).await.unwrap()[0].id
    };
    let revoked = portal
        .post(&admin, &format!("{page}/{id}/revoke"), &[])
        .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER, "{}", revoked.body);
    problem(
        &status_of(&portal, "/api/v1/tickets", &token).await,
        StatusCode::UNAUTHORIZED,
    );
    assert!(portal.get(&admin, page).await.body.contains("revoked"));
}

#[tokio::test]
async fn guessing_secrets_counts_against_the_client_address() {
    let portal = Portal::with_config("[web]\napi_per_client_per_minute = 3\n").await;
    let admin = portal.sign_in(ADMIN).await;
    let staff_id = user_id(&portal, STAFF).await;
    // Registering through the API counts too (one request).
    let client = register(&portal, &admin, "read", staff_id).await;
    let grant = [("grant_type", "client_credentials")];
    for _ in 0..2 {
        let wrong = token_request(&portal, By::Basic(&client.client_id, "guess"), &grant).await;
        assert_eq!(
            oauth_error(&wrong, StatusCode::UNAUTHORIZED),
            "invalid_client"
        );
    }
    // Over the limit the secret is not even checked: the right one is refused as well.
    let limited = token_request(
        &portal,
        By::Basic(&client.client_id, &client.secret),
        &grant,
    )
    .await;
    assert_eq!(
        limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        limited.body
    );
    assert!(limited.headers.contains_key(header::RETRY_AFTER));
}
