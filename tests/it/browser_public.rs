//! The public side in a real browser against a real `maildesk serve`, Dovecot and the
//! SMTP relay: a customer submits the form, follows the link in the acknowledgement
//! from their mailbox, replies on their page, and staff see the reply; and a flood of
//! submissions is turned away by the honeypot and the limits.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::browser::{
    add_user, mail_world, notice, serve_with, type_into, unfolded, ANN, ANN_PW, PASSWORD, STAFF,
    STAFF_NAME,
};
use crate::support::chromium::Browser;
use crate::support::{wait_until, TestEnv};

/// Fills the public form (the fields a customer types).
async fn fill_form(browser: &Browser, email: &str, name: &str, subject: &str, body: &str) {
    for (css, text) in [
        ("form input[name=email]", email),
        ("form input[name=name]", name),
        ("form input[name=subject]", subject),
        ("form textarea[name=description]", body),
    ] {
        browser.wait_for(css).await.clear().await.expect("clear");
        if !text.is_empty() {
            type_into(browser, css, text).await;
        }
    }
}

/// Waits until the staff ticket page open in `browser` shows `text` in a customer
/// message, without a reload: the page updates itself (live updates).
async fn staff_page_shows(browser: &Browser, text: &str) -> bool {
    let shown = wait_until(Duration::from_secs(15), || async {
        browser
            .texts("article.msg.customer .body")
            .await
            .iter()
            .any(|t| t.contains(text))
    })
    .await;
    let not_reloaded = browser
        .execute("return window.notReloaded === true;", vec![])
        .await;
    assert_eq!(
        not_reloaded,
        serde_json::Value::Bool(true),
        "the staff page was reloaded instead of updating itself"
    );
    shown
}

/// The link to the customer's page in a mail (`{base}/t/…`).
fn customer_link(raw: &str, base: &str) -> Option<String> {
    let text = unfolded(raw);
    let start = text.find(&format!("{base}/t/"))?;
    Some(
        text[start..]
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '"' && *c != '<')
            .collect(),
    )
}

#[tokio::test]
async fn a_customer_submits_follows_the_link_and_replies() {
    let started = Instant::now();
    let (dovecot, _relay, env) = mail_world().await;
    add_user(&env, STAFF, STAFF_NAME, "staff");
    let (_server, base) = serve_with(&env, &["web.public_url={base}"]).await;

    let browser = Browser::start().await;
    browser.goto(&format!("{base}/")).await;
    assert_eq!(browser.text("main h1").await, "How can we help?");
    let scripts = browser
        .execute(
            "return document.querySelectorAll('form [onclick], form [onsubmit]').length",
            vec![],
        )
        .await;
    assert_eq!(scripts, json!(0), "the form needs no script");
    browser.screenshot("public-form.png").await;

    // Wrong input: the errors sit next to the fields, what was typed stays.
    fill_form(&browser, "ann at customer", "", "Printer on fire", "").await;
    browser
        .wait_for("form select[name=category]")
        .await
        .select_by_value("hardware")
        .await
        .expect("category");
    browser.click_and_wait("form button[type=submit]").await;
    let errors = browser.texts("p.field-error").await;
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert_eq!(
        browser
            .wait_for("input[name=subject]")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("Printer on fire")
    );
    assert_eq!(
        browser.text("select[name=category] option[selected]").await,
        "hardware"
    );
    browser.screenshot("public-form-errors.png").await;

    let description = "The printer in room 4 is on fire.\nIt smells of toner.";
    fill_form(&browser, ANN, "Ann Lee", "Printer on fire", description).await;
    browser.click_and_wait("form button[type=submit]").await;
    assert_eq!(
        browser.text("main h1").await,
        "Thank you, we have your request"
    );
    assert!(browser
        .text("main")
        .await
        .contains(&format!("We have e-mailed a confirmation to {ANN}")));
    browser.screenshot("public-thanks.png").await;

    // The acknowledgement reaches Ann's mailbox, with her link.
    let arrived = wait_until(Duration::from_secs(20), || async {
        dovecot
            .messages(ANN, ANN_PW, "INBOX")
            .await
            .iter()
            .any(|raw| customer_link(raw, &base).is_some())
    })
    .await;
    assert!(
        arrived,
        "no acknowledgement with a link reached the customer; maildesk log:\n{}",
        env.log()
    );
    let inbox = dovecot.messages(ANN, ANN_PW, "INBOX").await;
    let link = inbox
        .iter()
        .find_map(|raw| customer_link(raw, &base))
        .unwrap();
    let ack = dovecot.messages(ANN, ANN_PW, "INBOX").await.remove(0);
    assert!(ack.contains("[Support #1]"), "{ack}");

    // Staff answer first (from the portal), so her page shows both sides.
    browser.sign_in(&base, STAFF, PASSWORD).await;
    let staff_url = format!("{base}/portal/tickets/1");
    browser.goto(&staff_url).await;
    let answer = "Please leave the room; we are sending someone with an extinguisher.";
    type_into(
        &browser,
        "form[action$='/reply'] textarea[name=body]",
        answer,
    )
    .await;
    browser
        .click_and_wait("form[action$='/reply'] button[type=submit]")
        .await;
    assert!(notice(&browser).await.contains("Reply queued"));
    // The staff member keeps the ticket open while the customer answers elsewhere.
    browser.wait_for("main[data-live-ready='1']").await;
    browser.execute("window.notReloaded = true;", vec![]).await;
    let staff = browser;
    let browser = Browser::start().await;

    // Her page: the thread, a reply box, "this is solved".
    browser.goto(&link).await;
    let thread = browser.texts("article.msg .body").await;
    assert!(
        thread.iter().any(|t| t == answer),
        "the reply as written, without our marker: {thread:?}"
    );
    assert!(browser
        .text("h1.ticket-title")
        .await
        .contains("Printer on fire"));
    assert!(thread[0].contains("room 4"), "{thread:?}");
    let reply = "The fire brigade has left; the printer is black now.";
    type_into(
        &browser,
        "form[action$='/reply'] textarea[name=body]",
        reply,
    )
    .await;
    browser
        .click_and_wait("form[action$='/reply'] button[type=submit]")
        .await;
    assert_eq!(
        notice(&browser).await,
        "Your message was added to the ticket."
    );
    assert!(browser
        .texts("article.msg .body")
        .await
        .iter()
        .any(|t| t.contains(reply)));
    browser.screenshot("customer-ticket.png").await;

    // Staff see it on the ticket.
    assert!(
        staff_page_shows(&staff, reply).await,
        "staff never saw the customer's reply; maildesk log:\n{}",
        env.log()
    );
    eprintln!(
        "a_customer_submits_follows_the_link_and_replies: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test]
async fn a_flood_of_submissions_is_turned_away() {
    let env = TestEnv::new().await;
    let (_server, base) = serve_with(
        &env,
        &["web.public_per_client=5", "web.public_per_address=3"],
    )
    .await;
    let browser = Browser::start().await;
    browser.goto(&format!("{base}/")).await;
    browser.wait_for("form input[name=csrf]").await;
    // 40 posts at once from the page (its cookie and token): half fill the honeypot as
    // robots do, the rest come from 20 addresses.
    let script = r#"
        const done = arguments[arguments.length - 1];
        const csrf = document.querySelector('input[name=csrf]').value;
        const posts = [];
        for (let i = 0; i < 40; i++) {
            const data = new FormData();
            data.append('csrf', csrf);
            data.append('email', 'flood' + (i % 20) + '@customer.example');
            data.append('name', 'Flood');
            data.append('category', 'other');
            data.append('subject', 'Flood ' + i);
            data.append('description', 'Buy now');
            data.append('website', i % 2 === 0 ? 'http://spam.example' : '');
            posts.push(fetch('/', {method: 'POST', body: data, credentials: 'same-origin'})
                .then(r => [i, r.status, r.headers.get('Retry-After')]));
        }
        Promise.all(posts).then(done, e => done(String(e)));
    "#;
    let results = browser
        .client
        .execute_async(script, vec![])
        .await
        .expect("the flood ran");
    let results: Vec<(i64, u16, Option<String>)> =
        serde_json::from_value(results.clone()).unwrap_or_else(|e| panic!("{e}: {results}"));
    let robots: Vec<u16> = results
        .iter()
        .filter(|r| r.0 % 2 == 0)
        .map(|r| r.1)
        .collect();
    assert!(
        robots.iter().all(|s| *s == 200),
        "robots are told it worked: {robots:?}"
    );
    let people: Vec<&(i64, u16, Option<String>)> =
        results.iter().filter(|r| r.0 % 2 == 1).collect();
    let accepted = people.iter().filter(|r| r.1 == 200).count();
    let limited: Vec<_> = people.iter().filter(|r| r.1 == 429).collect();
    // Exactly the per-client limit, burst or not: each attempt gets its own count.
    assert_eq!(accepted, 5, "{results:?}");
    // Until the window that began with the first submission ends.
    let waits = |r: &&&(i64, u16, Option<String>)| {
        r.2.as_deref()
            .and_then(|s| s.parse::<u64>().ok())
            .is_some_and(|s| (3500..=3600).contains(&s))
    };
    assert!(
        limited.len() == 15 && limited.iter().all(waits),
        "{results:?}"
    );
    let store = env.store().await;
    let mut conn = store.acquire().await.unwrap();
    let subjects: Vec<String> = sqlx::query_scalar("SELECT subject FROM tickets")
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    assert_eq!(subjects.len(), accepted, "{subjects:?}");
    for subject in &subjects {
        let n: i64 = subject.trim_start_matches("Flood ").parse().unwrap();
        assert!(n % 2 == 1, "a robot's submission was stored: {subject}");
    }
}
