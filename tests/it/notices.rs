//! Notices are ours: the text a page shows after a change comes from a fixed set named
//! by a code in the address (`done=profile_saved`); words put into an address (a
//! phishing line on a trusted page) never appear, on any page that shows notices.

use axum::http::StatusCode;
use maildesk::domain::signing::{self, CustomerLink};
use maildesk::store::unix_now;

use crate::support::portal::{customer_mail, Browser, Portal, ADMIN};

const SECRET: &str = "test-secret-0123456789abcdef";
const CORA: &str = "cora@example.net";
/// Free text in `done=`, and in a number of a code that has one.
const FORGED: [&str; 2] = [
    "done=Your+password+expired+call+Mallory",
    "done=task_created&n=Your+password+expired+call+Mallory",
];

/// `page` asked with `query`: answered 200.
async fn shown(portal: &Portal, browser: &Browser, page: &str, query: &str) -> String {
    let response = portal.get(browser, &format!("{page}?{query}")).await;
    assert_eq!(
        response.status,
        StatusCode::OK,
        "{page}?{query}: {}",
        response.body
    );
    response.body
}

fn assert_no_notice(body: &str, what: &str) {
    assert!(
        !body.contains("password expired") && !body.contains("call Mallory"),
        "{what}: the address's words are shown"
    );
    assert!(
        !body.contains("class=\"notice\""),
        "{what}: a notice is shown"
    );
}

#[tokio::test]
async fn every_page_shows_our_notices_and_never_the_words_of_an_address() {
    let portal = Portal::new().await;
    let ada = portal.sign_in(ADMIN).await;
    let ticket = portal
        .ingest(&customer_mail(
            CORA,
            "n1@example.net",
            "Printer",
            "It smokes.",
        ))
        .await;
    let created = portal
        .post(&ada, "/portal/tasks", &[("title", "Order toner")])
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let task = created.location().split('?').next().unwrap().to_string();
    assert!(
        created.location().ends_with("?done=task_created&n=1"),
        "{}",
        created.location()
    );
    let mut conn = portal.store().acquire().await.unwrap();
    let ada_id: i64 = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
        .bind(ADMIN)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    drop(conn);

    let staff_pages = [
        "/portal/account".to_string(),
        "/portal/account/tokens".into(),
        "/portal/admin/api-clients".into(),
        "/portal/admin/webhooks".into(),
        "/portal/users".into(),
        format!("/portal/users/{ada_id}"),
        "/portal/quarantine".into(),
        "/portal/tickets".into(),
        format!("/portal/tickets/{ticket}"),
        "/portal/tasks".into(),
        task,
    ];
    for page in &staff_pages {
        for forged in FORGED {
            assert_no_notice(&shown(&portal, &ada, page, forged).await, page);
        }
        // The customer page's notices are not for staff pages.
        assert_no_notice(&shown(&portal, &ada, page, "done=solved").await, page);
        let body = shown(&portal, &ada, page, "done=profile_saved").await;
        assert!(body.contains("Profile saved."), "{page}: {body}");
        let body = shown(&portal, &ada, page, "done=reply_queued&n=2").await;
        assert!(body.contains("Reply queued for 2 recipient(s)."), "{page}");
    }

    let link = CustomerLink {
        ticket,
        email: CORA.into(),
        expires: unix_now() + 3600,
    };
    let customer_page = format!("/t/{}", signing::customer_link(SECRET, &link, 0));
    let anonymous = Browser::default();
    for forged in FORGED {
        let body = shown(&portal, &anonymous, &customer_page, forged).await;
        assert_no_notice(&body, "customer page");
    }
    // Staff notices are not for the customer's page.
    let body = shown(&portal, &anonymous, &customer_page, "done=user_deleted").await;
    assert_no_notice(&body, "customer page");
    let body = shown(&portal, &anonymous, &customer_page, "done=solved").await;
    assert!(body.contains("Thank you. The ticket is marked as solved."));
}
