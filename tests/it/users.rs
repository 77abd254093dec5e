//! Users and invitations through the router (`oneshot`): every route × role, validation
//! naming the field, disabling ending sessions, deleting only owners of nothing, the last
//! active admin, registration by invitation (once, not expired, not revoked, with its
//! CSRF cookie), one's own profile; and the command line using the same rules.

use axum::http::StatusCode;
use maildesk::domain::Role;
use maildesk::store::{unix_now, users, Store};

use crate::support::portal::{
    add_user, check_routes, customer_mail, field_value, session_cookie, set_cookie, token_in,
    Browser, Portal, Response, Route, ADMIN, DISABLED, PASSWORD, STAFF,
};

const NEW_PASSWORD: &str = "a fresh password 9";

async fn user_id(store: &Store, email: &str) -> Option<i64> {
    let mut conn = store.acquire().await.unwrap();
    users::find_by_email(&mut conn, email)
        .await
        .unwrap()
        .map(|u| u.id)
}

async fn user(store: &Store, email: &str) -> users::User {
    let mut conn = store.acquire().await.unwrap();
    users::find_by_email(&mut conn, email)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no user {email}"))
}

async fn disable_directly(store: &Store, email: &str) {
    let id = user_id(store, email).await.unwrap();
    let mut conn = store.acquire().await.unwrap();
    users::set_active(&mut conn, id, false, unix_now())
        .await
        .unwrap();
}

/// The latest invitation mail to `to` in the outbox, and the token of its link.
async fn invitation_token(store: &Store, to: &str) -> String {
    let (kind, raw): (String, Vec<u8>) = sqlx::query_as(
        "SELECT kind, raw FROM outbox WHERE recipient = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(to)
    .fetch_one(store.pool())
    .await
    .unwrap_or_else(|e| panic!("no mail to {to} in the outbox: {e}"));
    assert_eq!(kind, "invitation");
    let message = mail_parser::MessageParser::default()
        .parse(&raw)
        .expect("a parsable mail");
    let text = message.body_text(0).expect("a text body").into_owned();
    token_in(&text).unwrap_or_else(|| panic!("no register link in:\n{text}"))
}

/// A browser that opened the register page of `token`: its CSRF cookie and token.
async fn open_register(portal: &Portal, token: &str) -> (Response, Browser) {
    let page = portal
        .get(
            &Browser::default(),
            &format!("/portal/register?token={token}"),
        )
        .await;
    let browser = Browser {
        cookie: set_cookie(&page, "maildesk_register").unwrap_or_default(),
        csrf: field_value(&page.body, "csrf").unwrap_or_default(),
    };
    (page, browser)
}

async fn submit_register(
    portal: &Portal,
    browser: &Browser,
    token: &str,
    name: &str,
    password: &str,
) -> Response {
    portal
        .post(
            browser,
            "/portal/register",
            &[
                ("token", token),
                ("name", name),
                ("password", password),
                ("confirm", password),
            ],
        )
        .await
}

async fn invite(portal: &Portal, admin: &Browser, email: &str, role: &str) -> String {
    let response = portal
        .post(
            admin,
            "/portal/users/invite",
            &[("email", email), ("role", role)],
        )
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER, "{}", response.body);
    assert!(response.location().contains("done=invitation_mailed"));
    invitation_token(portal.store(), &email.to_lowercase()).await
}

async fn pending_invitation_id(store: &Store, email: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT id FROM invitations WHERE email = $1 AND used_at IS NULL AND revoked_at IS NULL",
    )
    .bind(email)
    .fetch_one(store.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn every_users_route_checks_the_role() {
    let portal = Portal::new().await;
    let admin = portal.sign_in(ADMIN).await;
    let staff = portal.sign_in(STAFF).await;
    let disabled = portal.sign_in(DISABLED).await;
    disable_directly(portal.store(), DISABLED).await;
    let anonymous = Browser::default();
    let tara = add_user(portal.store(), "tara@example.com", "Tara", Role::Staff).await;
    let dan = add_user(portal.store(), "dan@example.com", "Dan", Role::Staff).await;
    invite(&portal, &admin, "ivy@example.com", "staff").await;
    let ivy = pending_invitation_id(portal.store(), "ivy@example.com").await;
    invite(&portal, &admin, "ike@example.com", "staff").await;
    let ike = pending_invitation_id(portal.store(), "ike@example.com").await;

    let ok = StatusCode::OK;
    let see = StatusCode::SEE_OTHER;
    let no = StatusCode::FORBIDDEN;
    let routes: Vec<Route> = vec![
        ("GET", "/portal/users".into(), vec![], no, ok),
        (
            "POST",
            "/portal/users".into(),
            vec![
                ("name", "Nia New"),
                ("email", "nia@example.com"),
                ("role", "staff"),
                ("password", NEW_PASSWORD),
                ("confirm", NEW_PASSWORD),
            ],
            no,
            see,
        ),
        (
            "POST",
            "/portal/users/invite".into(),
            vec![("email", "ola@example.com"), ("role", "admin")],
            no,
            see,
        ),
        (
            "POST",
            format!("/portal/users/invitations/{ivy}/resend"),
            vec![],
            no,
            see,
        ),
        (
            "POST",
            format!("/portal/users/invitations/{ike}/revoke"),
            vec![],
            no,
            see,
        ),
        ("GET", format!("/portal/users/{tara}"), vec![], no, ok),
        (
            "POST",
            format!("/portal/users/{tara}"),
            vec![
                ("name", "Tara T."),
                ("email", "tara@example.com"),
                ("role", "staff"),
            ],
            no,
            see,
        ),
        (
            "POST",
            format!("/portal/users/{tara}/disable"),
            vec![],
            no,
            see,
        ),
        (
            "POST",
            format!("/portal/users/{tara}/enable"),
            vec![],
            no,
            see,
        ),
        (
            "POST",
            format!("/portal/users/{tara}/password"),
            vec![("password", NEW_PASSWORD), ("confirm", NEW_PASSWORD)],
            no,
            see,
        ),
        (
            "POST",
            format!("/portal/users/{dan}/delete"),
            vec![],
            no,
            see,
        ),
    ];
    check_routes(&portal, &routes, [&anonymous, &disabled, &staff, &admin]).await;
    // What the admin did happened, and nothing the staff member tried did.
    assert_eq!(
        user(portal.store(), "tara@example.com").await.name,
        "Tara T."
    );
    assert!(user_id(portal.store(), "nia@example.com").await.is_some());
    assert!(user_id(portal.store(), "dan@example.com").await.is_none());
    // The users page lists users and pending invitations; staff see no link to it.
    let page = portal.get(&admin, "/portal/users").await;
    assert!(page.body.contains("tara@example.com") && page.body.contains("ola@example.com"));
    assert!(
        !page.body.contains("ike@example.com"),
        "revoked: not pending"
    );
    assert!(page.body.contains("href=\"/portal/users\""));
    let page = portal.get(&staff, "/portal").await;
    assert!(!page.body.contains("href=\"/portal/users\""));

    // The profile: everyone signed in; anonymous and disabled go to sign-in.
    for (who, browser, expected) in [
        ("anonymous", &anonymous, see),
        ("disabled", &disabled, see),
        ("staff", &staff, see),
        ("admin", &admin, see),
    ] {
        let name = format!("{who} renamed");
        let response = portal
            .post(
                browser,
                "/portal/account/profile",
                &[
                    ("name", &name),
                    ("email", if who == "admin" { ADMIN } else { STAFF }),
                ],
            )
            .await;
        assert_eq!(
            response.status, expected,
            "profile as {who}: {}",
            response.body
        );
        let signed_in = who == "staff" || who == "admin";
        assert_eq!(
            response.location().starts_with("/portal/login"),
            !signed_in,
            "profile as {who}"
        );
    }
    assert_eq!(user(portal.store(), STAFF).await.name, "staff renamed");

    // Registration is public but needs a usable link.
    for browser in [&anonymous, &staff, &admin, &disabled] {
        assert_eq!(
            portal.get(browser, "/portal/register").await.status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            portal
                .get(
                    browser,
                    &format!("/portal/register?token={}", "ab".repeat(32))
                )
                .await
                .status,
            StatusCode::GONE
        );
    }
}

#[tokio::test]
async fn creating_and_editing_refuse_bad_values_naming_the_field() {
    let portal = Portal::new().await;
    let admin = portal.sign_in(ADMIN).await;
    let good = [
        ("name", "Nia New"),
        ("email", "nia@example.com"),
        ("role", "staff"),
        ("password", NEW_PASSWORD),
        ("confirm", NEW_PASSWORD),
    ];
    let with = |key: &str, value: &'static str| -> Vec<(&'static str, &'static str)> {
        good.iter()
            .map(|(k, v)| if *k == key { (*k, value) } else { (*k, *v) })
            .collect()
    };
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (with("name", "  "), "enter a name"),
        (with("email", "not-an-address"), "is not an e-mail address"),
        (
            with("email", "Ada@Example.COM"),
            "a user with e-mail ada@example.com already exists",
        ),
        (with("role", "boss"), "is not a role"),
        (
            vec![
                ("name", "Nia"),
                ("email", "nia@example.com"),
                ("role", "staff"),
                ("password", "short"),
                ("confirm", "short"),
            ],
            "at least 8 characters",
        ),
        (with("confirm", "something else"), "the two entries differ"),
    ];
    for (form, says) in &cases {
        let response = portal.post(&admin, "/portal/users", form).await;
        assert_eq!(
            response.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{form:?}: {}",
            response.body
        );
        assert!(
            response.body.contains(&says.replace('"', "&#34;")) || response.body.contains(says),
            "{form:?} should say {says:?}"
        );
        assert!(
            response.body.contains("class=\"field-error\""),
            "the refusal sits next to its field"
        );
    }
    // The input is kept (not the password).
    let response = portal
        .post(&admin, "/portal/users", &with("email", "not-an-address"))
        .await;
    assert!(response.body.contains("value=\"Nia New\""));
    assert!(response.body.contains("value=\"not-an-address\""));
    assert!(!response.body.contains(NEW_PASSWORD));
    assert!(user_id(portal.store(), "nia@example.com").await.is_none());

    // Created, with the address normalised; the new user signs in.
    let response = portal
        .post(&admin, "/portal/users", &with("email", " Nia@Example.com "))
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER, "{}", response.body);
    let nia = user(portal.store(), "nia@example.com").await;
    assert_eq!((nia.role.as_str(), nia.active), ("staff", 1));
    assert_eq!(
        portal
            .try_sign_in("nia@example.com", NEW_PASSWORD)
            .await
            .status,
        StatusCode::SEE_OTHER
    );

    // Editing: a taken address, an empty name, a bad role are refused by field.
    let path = format!("/portal/users/{}", nia.id);
    for (form, says) in [
        (
            vec![("name", "Nia"), ("email", STAFF), ("role", "staff")],
            "already exists",
        ),
        (
            vec![
                ("name", ""),
                ("email", "nia@example.com"),
                ("role", "staff"),
            ],
            "enter a name",
        ),
        (
            vec![
                ("name", "Nia"),
                ("email", "nia@example.com"),
                ("role", "root"),
            ],
            "is not a role",
        ),
    ] {
        let response = portal.post(&admin, &path, &form).await;
        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(response.body.contains(says), "{form:?}: {}", response.body);
    }
    let response = portal
        .post(
            &admin,
            &path,
            &[
                ("name", "Nia Admin"),
                ("email", "NIA2@example.com"),
                ("role", "admin"),
            ],
        )
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER, "{}", response.body);
    let nia = user(portal.store(), "nia2@example.com").await;
    assert_eq!(
        (nia.name.as_str(), nia.role.as_str()),
        ("Nia Admin", "admin")
    );
    // An unknown user is a 404, a non-number a 400.
    assert_eq!(
        portal.get(&admin, "/portal/users/999999").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        portal.get(&admin, "/portal/users/abc").await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn disabling_ends_sessions_at_once_and_enabling_allows_sign_in_again() {
    let portal = Portal::new().await;
    let admin = portal.sign_in(ADMIN).await;
    let sam = portal.sign_in(STAFF).await;
    let sam_id = user_id(portal.store(), STAFF).await.unwrap();
    assert_eq!(
        portal.get(&sam, "/portal/tickets").await.status,
        StatusCode::OK
    );
    let response = portal
        .post(&admin, &format!("/portal/users/{sam_id}/disable"), &[])
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    let sessions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE user_id = $1")
        .bind(sam_id)
        .fetch_one(portal.store().pool())
        .await
        .unwrap();
    assert_eq!(sessions, 0, "the sessions rows are gone");
    let next = portal.get(&sam, "/portal/tickets").await;
    assert_eq!(next.status, StatusCode::SEE_OTHER);
    assert!(next.location().starts_with("/portal/login"));
    assert_eq!(
        portal.try_sign_in(STAFF, PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    let page = portal.get(&admin, "/portal/users").await;
    assert!(page.body.contains("<strong>disabled</strong>"));
    // An admin cannot disable themselves (another admin can).
    let ada = user_id(portal.store(), ADMIN).await.unwrap();
    let response = portal
        .post(&admin, &format!("/portal/users/{ada}/disable"), &[])
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.body.contains("you cannot disable yourself"));

    let response = portal
        .post(&admin, &format!("/portal/users/{sam_id}/enable"), &[])
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    let sam = portal.sign_in(STAFF).await;
    assert_eq!(portal.get(&sam, "/portal").await.status, StatusCode::OK);

    // A new password from the admin ends the user's sessions too.
    let response = portal
        .post(
            &admin,
            &format!("/portal/users/{sam_id}/password"),
            &[("password", NEW_PASSWORD), ("confirm", "different")],
        )
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.body.contains("the two entries differ"));
    let response = portal
        .post(
            &admin,
            &format!("/portal/users/{sam_id}/password"),
            &[("password", NEW_PASSWORD), ("confirm", NEW_PASSWORD)],
        )
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    assert!(
        response.location().ends_with("done=password_set&n=1&m=0"),
        "{}",
        response.location()
    );
    assert_eq!(
        portal.get(&sam, "/portal").await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        portal.try_sign_in(STAFF, NEW_PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn users_who_own_something_are_not_deleted() {
    let portal = Portal::new().await;
    let admin = portal.sign_in(ADMIN).await;
    let sam = portal.sign_in(STAFF).await;
    let sam_id = user_id(portal.store(), STAFF).await.unwrap();
    // Sam writes a note on a ticket: a message and a history entry are theirs.
    let ticket = portal
        .ingest(&customer_mail(
            "cora@example.net",
            "d1@x",
            "Printer",
            "Fire.",
        ))
        .await;
    let response = portal
        .post(
            &sam,
            &format!("/portal/tickets/{ticket}/note"),
            &[("body", "looking")],
        )
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    let page = portal.get(&admin, &format!("/portal/users/{sam_id}")).await;
    assert!(page.body.contains("Cannot be deleted"), "{}", page.body);
    assert!(page.body.contains("messages written"));
    let response = portal
        .post(&admin, &format!("/portal/users/{sam_id}/delete"), &[])
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.body.contains("Disable the account instead"));
    assert!(user_id(portal.store(), STAFF).await.is_some());

    // Only assigned a ticket: refused as well.
    let tom = add_user(portal.store(), "tom@example.com", "Tom", Role::Staff).await;
    sqlx::query("UPDATE tickets SET assignee_id = $1 WHERE id = $2")
        .bind(tom)
        .bind(ticket)
        .execute(portal.store().pool())
        .await
        .unwrap();
    let response = portal
        .post(&admin, &format!("/portal/users/{tom}/delete"), &[])
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        response.body.contains("1 assigned tickets"),
        "{}",
        response.body
    );

    // Owning nothing (signed in, sent invitations): deleted, sessions with them.
    let una = add_user(portal.store(), "una@example.com", "Una", Role::Admin).await;
    let una_browser = portal.sign_in("una@example.com").await;
    invite(&portal, &una_browser, "vic@example.com", "staff").await;
    let response = portal
        .post(&admin, &format!("/portal/users/{una}/delete"), &[])
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER, "{}", response.body);
    assert!(user_id(portal.store(), "una@example.com").await.is_none());
    assert_eq!(
        portal.get(&una_browser, "/portal").await.status,
        StatusCode::SEE_OTHER
    );
    let page = portal.get(&admin, "/portal/users").await;
    assert!(
        page.body.contains("vic@example.com"),
        "the invitation stays"
    );
    // Nobody deletes themselves.
    let ada = user_id(portal.store(), ADMIN).await.unwrap();
    let response = portal
        .post(&admin, &format!("/portal/users/{ada}/delete"), &[])
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
}

// A blocking CLI call must not stall the runtime: a refused change rolls its
// transaction back on a pool task, and the CLI would wait for that lock (deadlock).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_active_admin_cannot_be_demoted_disabled_or_deleted() {
    let portal = Portal::new().await;
    let admin = portal.sign_in(ADMIN).await;
    let ada = user_id(portal.store(), ADMIN).await.unwrap();
    // Portal: demoting oneself as the only admin.
    let response = portal
        .post(
            &admin,
            &format!("/portal/users/{ada}"),
            &[("name", "Ada"), ("email", ADMIN), ("role", "staff")],
        )
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        response.body.contains("last active admin"),
        "{}",
        response.body
    );
    assert_eq!(user(portal.store(), ADMIN).await.role.as_str(), "admin");
    // Command line: disabling the only admin.
    let out = portal.env.cli(&["user", "disable", ADMIN], None);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("last active admin"), "{stderr}");
    assert_eq!(user(portal.store(), ADMIN).await.active, 1);

    // With a second admin, one may go; then the other is the last again.
    let bea = add_user(portal.store(), "bea@example.com", "Bea", Role::Admin).await;
    let out = portal.env.cli(&["user", "disable", ADMIN], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bea_browser = portal.sign_in("bea@example.com").await;
    assert_eq!(
        portal.get(&admin, "/portal").await.status,
        StatusCode::SEE_OTHER,
        "disabled from the command line: signed out"
    );
    let response = portal
        .post(
            &bea_browser,
            &format!("/portal/users/{bea}"),
            &[
                ("name", "Bea"),
                ("email", "bea@example.com"),
                ("role", "staff"),
            ],
        )
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.body.contains("last active admin"));
    let out = portal
        .env
        .cli(&["user", "disable", "bea@example.com"], None);
    assert!(!out.status.success());
    // A disabled admin does not count, and demoting them is fine.
    let response = portal
        .post(
            &bea_browser,
            &format!("/portal/users/{ada}"),
            &[("name", "Ada"), ("email", ADMIN), ("role", "staff")],
        )
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER, "{}", response.body);
    // Deleting the last admin: refused by the rules whoever asks (here the operator's
    // path through the rules, since an admin never deletes themselves in the portal).
    let store = portal.store();
    let mut tx = store.begin().await.unwrap();
    let refused =
        maildesk::helpdesk::users::delete(&mut tx, maildesk::helpdesk::users::By::Operator, bea)
            .await;
    let message = refused.expect_err("the last admin stays").to_string();
    assert!(message.contains("last active admin"), "{message}");
    drop(tx);
    assert!(user_id(store, "bea@example.com").await.is_some());
}

#[tokio::test]
async fn two_admins_cannot_disable_each_other_at_the_same_time() {
    let portal = Portal::new().await;
    let ada = user_id(portal.store(), ADMIN).await.unwrap();
    let bea = add_user(portal.store(), "bea@example.com", "Bea", Role::Admin).await;
    let store = portal.store().clone();
    let attempt = |target: i64| {
        let store = store.clone();
        async move {
            let mut tx = store.begin().await?;
            maildesk::helpdesk::users::set_active(
                &mut tx,
                maildesk::helpdesk::users::By::Operator,
                target,
                false,
                unix_now(),
            )
            .await
            .map_err(|e| maildesk::store::StoreError::Conflict(e.to_string()))?;
            // Give the other transaction time to make its decision too.
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            tx.commit().await?;
            Ok::<_, maildesk::store::StoreError>(())
        }
    };
    let (a, b) = tokio::join!(attempt(ada), attempt(bea));
    assert!(
        a.is_ok() != b.is_ok(),
        "exactly one of the two may pass: {a:?} {b:?}"
    );
    let active: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE role = 'admin' AND active = 1")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(active, 1);
}

#[tokio::test]
async fn an_invitation_registers_one_staff_member_once() {
    let portal = Portal::new().await;
    let admin = portal.sign_in(ADMIN).await;
    let token = invite(&portal, &admin, "Ivy@Example.com", "staff").await;
    // The mail: to the address, through the outbox, with the link and the expiry.
    let (recipient, status): (String, String) =
        sqlx::query_as("SELECT recipient, status FROM outbox WHERE kind = 'invitation'")
            .fetch_one(portal.store().pool())
            .await
            .unwrap();
    assert_eq!(
        (recipient.as_str(), status.as_str()),
        ("ivy@example.com", "queued")
    );
    let stored: String = sqlx::query_scalar("SELECT token_hash FROM invitations")
        .fetch_one(portal.store().pool())
        .await
        .unwrap();
    assert_ne!(stored, token, "only the hash is stored");
    assert_eq!(stored, maildesk::mail::hash::sha256_hex(token.as_bytes()));

    // An existing user's address is refused.
    let response = portal
        .post(
            &admin,
            "/portal/users/invite",
            &[("email", STAFF), ("role", "staff")],
        )
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.body.contains("already has an account"));

    let (page, browser) = open_register(&portal, &token).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("ivy@example.com"));
    // Without the form's cookie (CSRF): refused, nothing created.
    let no_cookie = Browser {
        cookie: String::new(),
        csrf: browser.csrf.clone(),
    };
    let response = submit_register(&portal, &no_cookie, &token, "Ivy", NEW_PASSWORD).await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
    let wrong_csrf = Browser {
        cookie: browser.cookie.clone(),
        csrf: "0".repeat(64),
    };
    let response = submit_register(&portal, &wrong_csrf, &token, "Ivy", NEW_PASSWORD).await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
    // Bad values name the field and keep the name.
    let response = submit_register(&portal, &browser, &token, "Ivy Ink", "short").await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.body.contains("at least 8 characters"));
    assert!(response.body.contains("value=\"Ivy Ink\""));
    let response = submit_register(&portal, &browser, &token, " ", NEW_PASSWORD).await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.body.contains("enter a name"));
    assert!(user_id(portal.store(), "ivy@example.com").await.is_none());

    // Two submits at once: one account, one sign-in; the other is told the link is gone.
    let (first, second) = tokio::join!(
        submit_register(&portal, &browser, &token, "Ivy Ink", NEW_PASSWORD),
        submit_register(&portal, &browser, &token, "Ivy Twice", NEW_PASSWORD),
    );
    let mut statuses = [first.status, second.status];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::SEE_OTHER, StatusCode::GONE],
        "{} / {}",
        first.body,
        second.body
    );
    let winner = if first.status == StatusCode::SEE_OTHER {
        &first
    } else {
        &second
    };
    assert_eq!(winner.location(), "/portal");
    let ivy = Browser {
        cookie: session_cookie(winner).expect("signed in at once"),
        csrf: String::new(),
    };
    let page = portal.get(&ivy, "/portal").await;
    assert_eq!(page.status, StatusCode::OK);
    let registered = user(portal.store(), "ivy@example.com").await;
    assert_eq!(registered.role.as_str(), "staff");
    assert!(registered.name.starts_with("Ivy"));
    let count: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE email = 'ivy@example.com'")
            .fetch_one(portal.store().pool())
            .await
            .unwrap();
    assert_eq!(count, 1);
    // A staff member: no admin pages.
    assert_eq!(
        portal.get(&ivy, "/portal/users").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        portal.get(&ivy, "/portal/quarantine").await.status,
        StatusCode::FORBIDDEN
    );
    // The link is used up: the page and the form say so (410), without saying why.
    let (again, _) = open_register(&portal, &token).await;
    assert_eq!(again.status, StatusCode::GONE);
    let response = submit_register(&portal, &browser, &token, "Ivy", NEW_PASSWORD).await;
    assert_eq!(response.status, StatusCode::GONE);
    // The new account signs in with its password.
    assert_eq!(
        portal
            .try_sign_in("ivy@example.com", NEW_PASSWORD)
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    let page = portal.get(&admin, "/portal/users").await;
    assert!(page.body.contains("No invitations are waiting"));
}

#[tokio::test]
async fn expired_revoked_replaced_and_forged_links_are_refused_alike() {
    let portal = Portal::with_config("[web]\ninvitation_hours = 2\n").await;
    let admin = portal.sign_in(ADMIN).await;
    let gone_page = |response: &Response, what: &str| {
        assert_eq!(
            response.status,
            StatusCode::GONE,
            "{what}: {}",
            response.body
        );
        assert!(
            response
                .body
                .contains("This invitation link cannot be used"),
            "{what}: the same page"
        );
    };

    // Expiry follows web.invitation_hours.
    let token = invite(&portal, &admin, "exp@example.com", "staff").await;
    let (created, expires): (i64, i64) = sqlx::query_as(
        "SELECT created_at, expires_at FROM invitations WHERE email = 'exp@example.com'",
    )
    .fetch_one(portal.store().pool())
    .await
    .unwrap();
    assert_eq!(expires - created, 2 * 3600);
    let (_, browser) = open_register(&portal, &token).await;
    sqlx::query("UPDATE invitations SET expires_at = $1 WHERE email = 'exp@example.com'")
        .bind(unix_now() - 1)
        .execute(portal.store().pool())
        .await
        .unwrap();
    gone_page(&open_register(&portal, &token).await.0, "expired page");
    gone_page(
        &submit_register(&portal, &browser, &token, "Exp", NEW_PASSWORD).await,
        "expired form",
    );
    let page = portal.get(&admin, "/portal/users").await;
    assert!(page.body.contains("<strong>expired</strong>"));

    // Revoked.
    let token = invite(&portal, &admin, "rev@example.com", "staff").await;
    let (_, browser) = open_register(&portal, &token).await;
    let id = pending_invitation_id(portal.store(), "rev@example.com").await;
    let response = portal
        .post(
            &admin,
            &format!("/portal/users/invitations/{id}/revoke"),
            &[],
        )
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    gone_page(&open_register(&portal, &token).await.0, "revoked page");
    gone_page(
        &submit_register(&portal, &browser, &token, "Rev", NEW_PASSWORD).await,
        "revoked form",
    );
    let response = portal
        .post(
            &admin,
            &format!("/portal/users/invitations/{id}/revoke"),
            &[],
        )
        .await;
    assert_eq!(response.status, StatusCode::NOT_FOUND, "revoked already");

    // Resent: a new link, the old one stops working; the new one works.
    let old = invite(&portal, &admin, "res@example.com", "admin").await;
    let id = pending_invitation_id(portal.store(), "res@example.com").await;
    let response = portal
        .post(
            &admin,
            &format!("/portal/users/invitations/{id}/resend"),
            &[],
        )
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    let new = invitation_token(portal.store(), "res@example.com").await;
    assert_ne!(old, new);
    gone_page(&open_register(&portal, &old).await.0, "replaced link");
    let (page, browser) = open_register(&portal, &new).await;
    assert_eq!(page.status, StatusCode::OK);
    let response = submit_register(&portal, &browser, &new, "Res", NEW_PASSWORD).await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    assert_eq!(
        user(portal.store(), "res@example.com").await.role.as_str(),
        "admin"
    );

    // Forged: an unknown token, a token of the wrong shape, the stored hash itself.
    let hash: String =
        sqlx::query_scalar("SELECT token_hash FROM invitations WHERE email = 'exp@example.com'")
            .fetch_one(portal.store().pool())
            .await
            .unwrap();
    for forged in ["f".repeat(64), "x".into(), "1".repeat(500), hash] {
        gone_page(&open_register(&portal, &forged).await.0, "forged page");
        gone_page(
            &submit_register(&portal, &browser, &forged, "Fay", NEW_PASSWORD).await,
            "forged form",
        );
    }
    // Inviting an address again replaces its pending invitation.
    let first = invite(&portal, &admin, "twice@example.com", "staff").await;
    let second = invite(&portal, &admin, "twice@example.com", "staff").await;
    gone_page(
        &open_register(&portal, &first).await.0,
        "replaced by a new invitation",
    );
    assert_eq!(
        open_register(&portal, &second).await.0.status,
        StatusCode::OK
    );
    // Adding the user directly revokes the invitation.
    let response = portal
        .post(
            &admin,
            "/portal/users",
            &[
                ("name", "Twice"),
                ("email", "twice@example.com"),
                ("role", "staff"),
                ("password", NEW_PASSWORD),
                ("confirm", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    gone_page(
        &open_register(&portal, &second).await.0,
        "the account exists now",
    );
}

#[tokio::test]
async fn without_smtp_the_admin_gets_the_link_to_pass_on() {
    let env = crate::support::TestEnv::with_config("").await;
    let store = env.store().await;
    add_user(&store, ADMIN, "Ada Admin", Role::Admin).await;
    let ingestor = maildesk::inbound::ingest::Ingestor::open(&env.config, store)
        .await
        .unwrap();
    let wake = std::sync::Arc::new(tokio::sync::Notify::new());
    let state = maildesk::web::AppState::new(
        env.config.clone(),
        ingestor.clone(),
        maildesk::store::jobs::Wake::with_outbox(wake.clone()),
    );
    let portal = Portal {
        app: maildesk::web::router(state.clone()),
        state,
        env,
        ingestor,
        wake,
    };
    let admin = portal.sign_in(ADMIN).await;
    let response = portal
        .post(
            &admin,
            "/portal/users/invite",
            &[("email", "nomail@example.com"), ("role", "staff")],
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "shown, not redirected");
    assert!(response.body.contains("No mail was sent"));
    let token = token_in(&response.body).expect("the link on the page");
    assert!(
        response.body.contains("http://127.0.0.1:"),
        "web.listen when public_url is unset"
    );
    assert_eq!(
        open_register(&portal, &token).await.0.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn everyone_edits_their_own_name_and_address() {
    let portal = Portal::new().await;
    let sam = portal.sign_in(STAFF).await;
    let page = portal.get(&sam, "/portal/account").await;
    assert!(page.body.contains("action=\"/portal/account/profile\""));
    let response = portal
        .post(
            &sam,
            "/portal/account/profile",
            &[("name", "Samuel Staff"), ("email", STAFF)],
        )
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    assert_eq!(user(portal.store(), STAFF).await.name, "Samuel Staff");
    // A new address needs the current password.
    for (current, says) in [
        ("", "enter your current password"),
        ("wrong one", "not your current password"),
    ] {
        let response = portal
            .post(
                &sam,
                "/portal/account/profile",
                &[
                    ("name", "Samuel"),
                    ("email", "samuel@example.com"),
                    ("current", current),
                ],
            )
            .await;
        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(response.body.contains(says), "{}", response.body);
        assert!(
            response.body.contains("value=\"samuel@example.com\""),
            "input kept"
        );
    }
    for (email, says) in [
        (ADMIN, "already exists"),
        ("nope", "is not an e-mail address"),
    ] {
        let response = portal
            .post(
                &sam,
                "/portal/account/profile",
                &[("name", "Samuel"), ("email", email), ("current", PASSWORD)],
            )
            .await;
        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(response.body.contains(says), "{}", response.body);
    }
    let response = portal
        .post(
            &sam,
            "/portal/account/profile",
            &[
                ("name", "Samuel"),
                ("email", "Samuel@Example.com"),
                ("current", PASSWORD),
            ],
        )
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    // Staff cannot give themselves a role through the profile (it has none)...
    let response = portal
        .post(
            &sam,
            "/portal/account/profile",
            &[
                ("name", "Samuel"),
                ("email", "samuel@example.com"),
                ("role", "admin"),
            ],
        )
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    let samuel = user(portal.store(), "samuel@example.com").await;
    assert_eq!(samuel.role.as_str(), "staff");
    // ...nor edit themselves on the admin pages.
    let response = portal
        .post(
            &sam,
            &format!("/portal/users/{}", samuel.id),
            &[
                ("name", "Samuel"),
                ("email", "samuel@example.com"),
                ("role", "admin"),
            ],
        )
        .await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
    assert_eq!(
        portal
            .try_sign_in("samuel@example.com", PASSWORD)
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    // The own password change still works and keeps this session.
    let response = portal
        .post(
            &sam,
            "/portal/account/password",
            &[
                ("current", PASSWORD),
                ("new", NEW_PASSWORD),
                ("confirm", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    assert_eq!(portal.get(&sam, "/portal").await.status, StatusCode::OK);
    let response = portal
        .post(
            &sam,
            "/portal/account/password",
            &[
                ("current", NEW_PASSWORD),
                ("new", "short"),
                ("confirm", "short"),
            ],
        )
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response
        .body
        .contains("new password: at least 8 characters"));
}

// A blocking CLI call must not stall the runtime: a refused change rolls its
// transaction back on a pool task, and the CLI would wait for that lock (deadlock).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_uses_the_same_rules() {
    let portal = Portal::new().await;
    let pw = portal.env.dir.path().join("pw");
    std::fs::write(&pw, format!("{NEW_PASSWORD}\n")).unwrap();
    let add = |email: &str, name: &str| {
        portal.env.cli(
            &[
                "user",
                "add",
                email,
                "--name",
                name,
                "--role",
                "staff",
                "--password-file",
                pw.to_str().unwrap(),
            ],
            None,
        )
    };
    let out = add("SAM@example.com", "Other Sam");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("a user with e-mail sam@example.com already exists"),
        "{stderr}"
    );
    let out = add("cli@example.com", " ");
    assert!(String::from_utf8_lossy(&out.stderr).contains("name: enter a name"));
    let out = add("cli@example.com", "Cli User");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&pw, "short\n").unwrap();
    let out = portal.env.cli(
        &[
            "user",
            "passwd",
            "cli@example.com",
            "--password-file",
            pw.to_str().unwrap(),
        ],
        None,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("password: at least 8 characters"));
}
