//! Sessions and tokens end when they should: sign-out expires the cookie in the browser
//! (portal and API, http and https); a password change (own, by an admin, by the
//! operator) and a disable end the user's other sessions, revoke their personal API
//! tokens for good, and stop the access tokens OAuth clients acting as them got before,
//! while the clients themselves get new ones.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use serde_json::{json, Value};

use crate::support::api::{call, make_token, parsed, Auth};
use crate::support::portal::{Browser, Portal, Response, ADMIN, PASSWORD, STAFF};

const NEW_PASSWORD: &str = "a brand new passphrase";

/// Every Set-Cookie of a response for cookie `name`.
fn set_cookies<'a>(response: &'a Response, name: &str) -> Vec<&'a str> {
    let prefix = format!("{name}=");
    response
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter(|v| v.starts_with(&prefix))
        .collect()
}

/// Asserts the response makes the browser drop cookie `name` on `path`: one Set-Cookie,
/// empty, `Max-Age=0`, on that path.
fn assert_expires(response: &Response, name: &str, path: &str) -> String {
    let cookies = set_cookies(response, name);
    assert_eq!(cookies.len(), 1, "one Set-Cookie for {name}: {cookies:?}");
    let cookie = cookies[0].to_string();
    assert!(cookie.starts_with(&format!("{name}=;")), "{cookie}");
    assert!(cookie.contains("Max-Age=0"), "{cookie}");
    assert!(cookie.contains(&format!("Path={path}")), "{cookie}");
    cookie
}

#[tokio::test]
async fn sign_out_expires_the_session_cookie_in_the_portal_and_the_api() {
    let portal = Portal::new().await;
    // Signing in drops the sign-in form's cookie.
    let signed_in = portal.try_sign_in(STAFF, PASSWORD).await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.body
    );
    assert_expires(&signed_in, "maildesk_login", "/portal/login");

    let browser = portal.sign_in(STAFF).await;
    let out = portal.post(&browser, "/portal/logout", &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER, "{}", out.body);
    let cookie = assert_expires(&out, "maildesk_session", "/");
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    assert_eq!(
        portal.get(&browser, "/portal").await.status,
        StatusCode::SEE_OTHER,
        "the session is gone on the server too"
    );

    // The API's browser sign-in and sign-out.
    let login = portal
        .send(
            Request::post("/api/v1/auth/login")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(
                    json!({"email": STAFF, "password": PASSWORD}).to_string(),
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    let api_browser = Browser {
        cookie: crate::support::portal::session_cookie(&login).expect("a session cookie"),
        csrf: parsed(&login)["csrf_token"].as_str().unwrap().to_string(),
    };
    let session = Auth::Session(api_browser, true);
    let out = call(&portal, "POST", "/api/v1/auth/logout", &session, None, None).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.body);
    assert_expires(&out, "maildesk_session", "/");
    let after = call(&portal, "GET", "/api/v1/auth/verify", &session, None, None).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn over_https_sign_out_expires_the_host_prefixed_secure_cookie() {
    let portal = Portal::with_config("[web]\npublic_url = \"https://help.example.com\"\n").await;
    let browser = portal.sign_in(STAFF).await;
    assert!(browser.cookie.starts_with("__Host-maildesk_session="));
    let out = portal.post(&browser, "/portal/logout", &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER, "{}", out.body);
    let cookie = assert_expires(&out, "__Host-maildesk_session", "/");
    assert!(
        cookie.contains("Secure"),
        "a __Host- cookie needs Secure: {cookie}"
    );
    assert!(!cookie.contains("Domain"), "{cookie}");
}

async fn user_id(portal: &Portal, email: &str) -> i64 {
    let mut conn = portal.store().acquire().await.unwrap();
    maildesk::store::users::find_by_email(&mut conn, email)
        .await
        .unwrap()
        .unwrap()
        .id
}

/// An OAuth client acting as `acts_as`, registered by the admin `browser`: its client_id
/// and secret.
async fn register_client(portal: &Portal, admin: &Browser, acts_as: i64) -> (String, String) {
    let made = call(
        portal,
        "POST",
        "/api/v1/oauth/clients",
        &Auth::Session(admin.clone(), true),
        Some(json!({"name": "robot", "scope": "read", "acts_as": acts_as})),
        None,
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let made = parsed(&made);
    (
        made["client_id"].as_str().unwrap().to_string(),
        made["client_secret"].as_str().unwrap().to_string(),
    )
}

/// A fresh access token for the client (client-credentials grant, form credentials).
async fn client_token(portal: &Portal, (id, secret): &(String, String)) -> Response {
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "client_credentials")
        .append_pair("client_id", id)
        .append_pair("client_secret", secret)
        .finish();
    portal
        .send(
            Request::post("/api/v1/oauth/token")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(form))
                .unwrap(),
        )
        .await
}

async fn access_token(portal: &Portal, client: &(String, String)) -> String {
    let response = client_token(portal, client).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    parsed(&response)["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The status `GET /api/v1/auth/verify` gets with `auth`.
async fn verify(portal: &Portal, auth: &Auth) -> StatusCode {
    call(portal, "GET", "/api/v1/auth/verify", auth, None, None)
        .await
        .status
}

/// What a user has open before a change: a personal token, a second browser session,
/// and a live access token of an OAuth client acting as them.
struct Open {
    token: Auth,
    elsewhere: Browser,
    client: (String, String),
    client_token: Auth,
}

async fn open_everything(portal: &Portal, admin: &Browser, email: &str) -> Open {
    let elsewhere = portal.sign_in(email).await;
    let token = Auth::Token(make_token(portal, &elsewhere, "read").await);
    let client = register_client(portal, admin, user_id(portal, email).await).await;
    let client_token = Auth::Token(access_token(portal, &client).await);
    let open = Open {
        token,
        elsewhere,
        client,
        client_token,
    };
    assert_eq!(verify(portal, &open.token).await, StatusCode::OK);
    assert_eq!(verify(portal, &open.client_token).await, StatusCode::OK);
    open
}

/// Asserts everything `open` had stopped: the token and the client's old access token
/// answer 401, the other session is signed out.
async fn assert_ended(portal: &Portal, open: &Open) {
    assert_eq!(verify(portal, &open.token).await, StatusCode::UNAUTHORIZED);
    let old = call(
        portal,
        "GET",
        "/api/v1/auth/verify",
        &open.client_token,
        None,
        None,
    )
    .await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED, "{}", old.body);
    assert!(old.body.contains("get a new one"), "{}", old.body);
    let page = portal.get(&open.elsewhere, "/portal").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "signed out elsewhere");
}

/// The client gets a new access token with its own credentials, and it works.
async fn assert_client_starts_again(portal: &Portal, open: &Open) {
    let fresh = Auth::Token(access_token(portal, &open.client).await);
    assert_eq!(verify(portal, &fresh).await, StatusCode::OK);
}

#[tokio::test]
async fn changing_ones_own_password_ends_the_other_sessions_tokens_and_client_tokens() {
    let portal = Portal::new().await;
    let admin = portal.sign_in(ADMIN).await;
    let here = portal.sign_in(STAFF).await;
    let account = portal.get(&here, "/portal/account").await;
    assert!(
        account.body.contains(
            "Changing your password signs you out everywhere else and revokes your API tokens"
        ),
        "the page says so before: {}",
        account.body
    );
    let open = open_everything(&portal, &admin, STAFF).await;
    let changed = portal
        .post(
            &here,
            "/portal/account/password",
            &[
                ("current", PASSWORD),
                ("new", NEW_PASSWORD),
                ("confirm", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(changed.status, StatusCode::SEE_OTHER, "{}", changed.body);
    let notice = portal.get(&here, changed.location()).await;
    assert_eq!(notice.status, StatusCode::OK, "this session stays");
    assert!(
        notice
            .body
            .contains("Password changed: 1 other session(s) ended, 1 API token(s) revoked"),
        "{}",
        notice.body
    );
    assert_ended(&portal, &open).await;
    assert_client_starts_again(&portal, &open).await;
}

#[tokio::test]
async fn an_admins_reset_ends_the_users_sessions_tokens_and_client_tokens() {
    let portal = Portal::new().await;
    let admin = portal.sign_in(ADMIN).await;
    let sam = user_id(&portal, STAFF).await;
    let page = portal.get(&admin, &format!("/portal/users/{sam}")).await;
    assert!(
        page.body
            .contains("them out everywhere and revokes their API tokens"),
        "{}",
        page.body
    );
    let open = open_everything(&portal, &admin, STAFF).await;
    let reset = portal
        .post(
            &admin,
            &format!("/portal/users/{sam}/password"),
            &[("password", NEW_PASSWORD), ("confirm", NEW_PASSWORD)],
        )
        .await;
    assert_eq!(reset.status, StatusCode::SEE_OTHER, "{}", reset.body);
    let notice = portal.get(&admin, reset.location()).await;
    assert!(
        notice
            .body
            .contains("New password set: 1 session(s) ended, 1 API token(s) revoked"),
        "{}",
        notice.body
    );
    assert_ended(&portal, &open).await;
    assert_client_starts_again(&portal, &open).await;
}

#[tokio::test]
async fn the_operators_passwd_ends_the_users_sessions_tokens_and_client_tokens() {
    let portal = Portal::new().await;
    let admin = portal.sign_in(ADMIN).await;
    let open = open_everything(&portal, &admin, STAFF).await;
    let file = portal.env.dir.path().join("new-password");
    std::fs::write(&file, NEW_PASSWORD).unwrap();
    let out = portal.env.cli(
        &[
            "user",
            "passwd",
            STAFF,
            "--password-file",
            file.to_str().unwrap(),
        ],
        None,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("1 session(s) ended, 1 API token(s) revoked"),
        "{stdout}"
    );
    assert_ended(&portal, &open).await;
    assert_client_starts_again(&portal, &open).await;
}

#[tokio::test]
async fn a_disable_revokes_tokens_for_good_and_stops_client_tokens_issued_before() {
    let portal = Portal::new().await;
    let admin = portal.sign_in(ADMIN).await;
    let sam = user_id(&portal, STAFF).await;
    let page = portal.get(&admin, &format!("/portal/users/{sam}")).await;
    assert!(
        page.body.contains("their API tokens are revoked for good"),
        "{}",
        page.body
    );
    let open = open_everything(&portal, &admin, STAFF).await;
    let disabled = portal
        .post(&admin, &format!("/portal/users/{sam}/disable"), &[])
        .await;
    assert_eq!(disabled.status, StatusCode::SEE_OTHER, "{}", disabled.body);
    let notice = portal.get(&admin, disabled.location()).await;
    assert!(
        notice
            .body
            .contains("disabled: 1 session(s) ended, 1 API token(s) revoked"),
        "{}",
        notice.body
    );
    // While disabled, the client gets no token at all.
    let refused = client_token(&portal, &open.client).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.body);

    let enabled = portal
        .post(&admin, &format!("/portal/users/{sam}/enable"), &[])
        .await;
    assert_eq!(enabled.status, StatusCode::SEE_OTHER, "{}", enabled.body);
    // Enabled again: the old token and the client's old access token stay dead.
    assert_ended(&portal, &open).await;
    assert_client_starts_again(&portal, &open).await;
}

#[tokio::test]
async fn a_disable_through_the_api_and_the_command_line_revokes_tokens_too() {
    let portal = Portal::new().await;
    let admin = portal.sign_in(ADMIN).await;
    let sam = user_id(&portal, STAFF).await;
    let admin_session = Auth::Session(admin.clone(), true);

    let open = open_everything(&portal, &admin, STAFF).await;
    let user_path = format!("/api/v1/users/{sam}");
    let disabled = call(
        &portal,
        "PATCH",
        &user_path,
        &admin_session,
        Some(json!({"active": false})),
        Some("*"),
    )
    .await;
    assert_eq!(disabled.status, StatusCode::OK, "{}", disabled.body);
    let enabled = call(
        &portal,
        "PATCH",
        &user_path,
        &admin_session,
        Some(json!({"active": true})),
        Some("*"),
    )
    .await;
    assert_eq!(enabled.status, StatusCode::OK, "{}", enabled.body);
    assert_eq!(parsed(&enabled)["active"], Value::from(1));
    assert_ended(&portal, &open).await;
    assert_client_starts_again(&portal, &open).await;

    let open = open_everything(&portal, &admin, STAFF).await;
    let out = portal.env.cli(&["user", "disable", STAFF], None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("1 session(s) ended, 1 API token(s) revoked"),
        "{stdout}"
    );
    let out = portal.env.cli(&["user", "enable", STAFF], None);
    assert!(out.status.success());
    assert_ended(&portal, &open).await;
    assert_client_starts_again(&portal, &open).await;
}
