//! The reports page in a real browser against `maildesk serve`: it renders its charts
//! (inline SVG, laid out with a real size) and its tables from a month of tickets.

use std::time::Instant;

use maildesk::domain::{Direction, MessageKind, TicketStatus};
use maildesk::store::{messages, tickets, unix_now, users};

use crate::support::browser::{add_user, serve, ADMIN, ADMIN_NAME, PASSWORD, STAFF, STAFF_NAME};
use crate::support::chromium::Browser;
use crate::support::TestEnv;

/// A month of tickets: created at varied hours, answered and resolved after varied
/// delays, some still open, in three categories, assigned to two people.
async fn a_month_of_tickets(env: &TestEnv) {
    let store = env.store().await;
    let mut conn = store.acquire().await.unwrap();
    let mut staff = Vec::new();
    for email in [STAFF, ADMIN] {
        staff.push(
            users::find_by_email(&mut conn, email)
                .await
                .unwrap()
                .unwrap()
                .id,
        );
    }
    drop(conn);
    let now = unix_now();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % n) as i64
    };
    let mut tx = store.begin().await.unwrap();
    for i in 0..160 {
        // Office hours are busier.
        let hour = if next(3) > 0 { 8 + next(10) } else { next(24) };
        let created = (now / 86_400 - next(30)) * 86_400 + hour * 3600 + next(3600);
        let created = created.min(now - 60);
        let category = ["network", "billing", "hardware"][next(3) as usize];
        let customer = format!("c{i}@customer.example");
        let id = tickets::insert(
            &mut tx,
            &tickets::NewTicket {
                subject: &format!("Question {i}"),
                category,
                mailbox: Some(if i % 4 == 0 { "sales" } else { "support" }),
                requester_email: &customer,
                requester_name: None,
                linked_ticket_id: None,
            },
            created,
        )
        .await
        .unwrap();
        let agent = staff[next(2) as usize];
        sqlx::query("UPDATE tickets SET assignee_id = $1 WHERE id = $2")
            .bind(agent)
            .bind(id)
            .execute(&mut *tx)
            .await
            .unwrap();
        let answered = created + 300 + next(8 * 3600);
        if answered < now && next(10) > 0 {
            let message_id = format!("answer-{i}@example.com");
            messages::insert(
                &mut tx,
                &messages::NewMessage {
                    ticket_id: id,
                    direction: Direction::Outbound,
                    kind: MessageKind::Public,
                    automatic_reason: None,
                    from_email: "support@example.com",
                    from_name: None,
                    to_addrs: "[]",
                    cc_addrs: "[]",
                    reply_to: "[]",
                    subject: "Re: question",
                    message_id: &message_id,
                    in_reply_to: "",
                    references_ids: "",
                    text_body: "On it.",
                    html_body: None,
                    raw_sha256: None,
                    content_sha256: &message_id,
                    mailbox: None,
                    source: "test",
                    sent_at: Some(answered),
                    author_user_id: Some(agent),
                    unverified: false,
                },
                answered,
            )
            .await
            .unwrap();
            let resolved = answered + next(3 * 86_400);
            if resolved < now && next(4) > 0 {
                tickets::set_status(&mut tx, id, TicketStatus::Resolved, resolved)
                    .await
                    .unwrap();
            }
        }
    }
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn the_reports_page_draws_its_charts() {
    let started = Instant::now();
    let env = TestEnv::new().await;
    add_user(&env, STAFF, STAFF_NAME, "staff");
    add_user(&env, ADMIN, ADMIN_NAME, "admin");
    a_month_of_tickets(&env).await;
    let (_server, base) = serve(&env).await;
    let browser = Browser::start().await;
    browser.sign_in(&base, STAFF, PASSWORD).await;

    // Through the navigation, as a user would.
    browser
        .click_and_wait("header.top nav a[href='/portal/reports']")
        .await;
    assert_eq!(browser.url().await.path(), "/portal/reports");
    assert_eq!(browser.text("main h1").await, "Reports");
    let charts = browser.all("svg.chart").await;
    assert_eq!(charts.len(), 5, "five charts");
    let sizes = browser
        .execute(
            "return Array.from(document.querySelectorAll('svg.chart')).map(s => { const r = s.getBoundingClientRect(); return [s.id, r.width, r.height, s.querySelectorAll('rect.bar, rect.cell, circle.point').length]; });",
            vec![],
        )
        .await;
    for chart in sizes.as_array().expect("chart sizes") {
        let (id, width, height, shapes) = (
            chart[0].as_str().unwrap_or(""),
            chart[1].as_f64().unwrap_or(0.0),
            chart[2].as_f64().unwrap_or(0.0),
            chart[3].as_u64().unwrap_or(0),
        );
        assert!(width > 100.0 && height > 50.0, "{id} is {width}×{height}");
        assert!(shapes > 0, "{id} draws something");
    }
    let all = browser.texts("table#summary tbody tr td:first-child").await;
    assert!(all.contains(&"All tickets".to_string()), "{all:?}");
    assert!(all.contains(&"network".to_string()), "{all:?}");
    assert!(all.contains(&STAFF_NAME.to_string()), "{all:?}");
    // No inline style anywhere, and nothing the CSP blocked.
    let blocked: Vec<_> = browser
        .log("browser")
        .await
        .into_iter()
        .filter(|e| e.to_string().contains("Content Security Policy"))
        .collect();
    assert!(blocked.is_empty(), "{blocked:?}");
    let shot = browser.screenshot("reports.png").await;
    eprintln!("screenshot: {}", shot.display());
    for (id, name) in [
        ("summary", "reports-summary.png"),
        ("chart-backlog", "reports-backlog.png"),
        ("chart-hours", "reports-hours.png"),
    ] {
        browser
            .execute(
                "document.getElementById(arguments[0]).scrollIntoView();",
                vec![serde_json::json!(id)],
            )
            .await;
        browser.screenshot(name).await;
    }

    // A preset, and a download answers with CSV.
    browser
        .click_and_wait(".presets a[href='/portal/reports?days=7']")
        .await;
    assert!(browser.text("main").await.contains("(7 days)"));
    assert_eq!(
        browser
            .fetch_status("/portal/reports/summary.csv?days=7")
            .await,
        200
    );
    assert_eq!(
        browser
            .fetch_status("/portal/reports?from=2023-02-30")
            .await,
        400
    );
    eprintln!(
        "the_reports_page_draws_its_charts: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
