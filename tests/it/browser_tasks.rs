//! Internal tasks in a real browser (headless Chromium) against a real `maildesk serve`:
//! a task created from a ticket page, worked from to do to done, listed on the ticket,
//! the task list, and the dashboard's overdue tasks.

use std::time::Instant;

use serde_json::json;

use crate::support::browser::{
    add_user, customer_mail, ingest, notice, serve, ticket_on_screen, type_into, ADMIN, ADMIN_NAME,
    PASSWORD, STAFF, STAFF_NAME,
};
use crate::support::chromium::Browser;
use crate::support::TestEnv;

/// Sets a date field the way a date picker would (typing into one depends on the
/// browser's locale).
async fn set_date(browser: &Browser, css: &str, date: &str) {
    browser.wait_for(css).await;
    browser
        .execute(
            "document.querySelector(arguments[0]).value = arguments[1];",
            vec![json!(css), json!(date)],
        )
        .await;
}

async fn choose(browser: &Browser, css: &str, label: &str) {
    browser
        .wait_for(css)
        .await
        .select_by_label(label)
        .await
        .unwrap_or_else(|e| panic!("choose {label:?} in {css}: {e}"));
}

#[tokio::test]
async fn staff_create_and_finish_a_task_from_a_ticket() {
    let started = Instant::now();
    let env = TestEnv::new().await;
    add_user(&env, STAFF, STAFF_NAME, "staff");
    add_user(&env, ADMIN, ADMIN_NAME, "admin");
    ingest(
        &env,
        customer_mail(
            "scan@customer.example",
            "Scanner jams on every page",
            "The scanner on floor 2 jams on every page since Monday.",
        )
        .as_bytes(),
    );
    let (_server, base) = serve(&env).await;
    let browser = Browser::start().await;
    browser.sign_in(&base, STAFF, PASSWORD).await;

    // No tasks yet: the list says so.
    browser.goto(&format!("{base}/portal/tasks")).await;
    assert!(browser
        .text("p.empty")
        .await
        .contains("No tasks match this view."));
    browser.screenshot("tasks-empty.png").await;

    // The ticket page: no tasks yet, the small form open.
    browser.goto(&format!("{base}/portal/tickets/1")).await;
    assert_eq!(ticket_on_screen(&browser).await, 1);
    assert_eq!(browser.text("#tasks p.muted").await, "No tasks yet.");
    let form = "#tasks form[action='/portal/tasks']";
    type_into(
        &browser,
        &format!("{form} input[name=title]"),
        "Order a new feed roller",
    )
    .await;
    choose(
        &browser,
        &format!("{form} select[name=assignee]"),
        STAFF_NAME,
    )
    .await;
    choose(&browser, &format!("{form} select[name=priority]"), "high").await;
    browser
        .click_and_wait(&format!("{form} button[type=submit]"))
        .await;
    assert_eq!(ticket_on_screen(&browser).await, 1, "back on the ticket");
    assert_eq!(notice(&browser).await, "Task #1 created.");
    let listed = browser.texts("#tasks ul.task-list li").await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(
        listed[0].contains("Order a new feed roller")
            && listed[0].contains("to do")
            && listed[0].contains(STAFF_NAME),
        "{listed:?}"
    );

    // A second task from the full form: overdue, for the admin, linked to the ticket.
    browser
        .goto(&format!("{base}/portal/tasks/new?ticket=1"))
        .await;
    // A blank title (spaces pass the browser's `required`) comes back named, the rest kept.
    type_into(&browser, "input[name=title]", "   ").await;
    set_date(&browser, "input[name=due]", "2020-01-15").await;
    browser
        .click_and_wait("form.task-form button[type=submit]")
        .await;
    assert_eq!(
        browser.text("label .field-error").await,
        "a title is required"
    );
    let kept = browser
        .execute(
            "return document.querySelector('input[name=due]').value + '|' + document.querySelector('input[name=ticket]').value;",
            vec![],
        )
        .await;
    assert_eq!(kept.as_str(), Some("2020-01-15|1"), "input kept");
    browser.screenshot("task-new-errors.png").await;
    browser
        .wait_for("input[name=title]")
        .await
        .clear()
        .await
        .expect("clear the title");
    type_into(&browser, "input[name=title]", "Call the scanner vendor").await;
    type_into(
        &browser,
        "textarea[name=description]",
        "Ask whether the rollers are covered by the warranty.",
    )
    .await;
    choose(&browser, "select[name=assignee]", ADMIN_NAME).await;
    set_date(&browser, "input[name=due]", "2020-01-15").await;
    browser
        .click_and_wait("form.task-form button[type=submit]")
        .await;
    assert_eq!(notice(&browser).await, "Task #2 created.");
    assert_eq!(
        browser.url().await.path(),
        "/portal/tickets/1",
        "the full form for a ticket also returns to it"
    );
    // And one of no ticket, to fill the list.
    browser.goto(&format!("{base}/portal/tasks/new")).await;
    type_into(&browser, "input[name=title]", "Renew the support contract").await;
    choose(&browser, "select[name=priority]", "low").await;
    set_date(&browser, "input[name=due]", "2999-03-01").await;
    browser
        .click_and_wait("form.task-form button[type=submit]")
        .await;
    assert_eq!(browser.url().await.path(), "/portal/tasks/3");

    // The list: every open task, the overdue one marked.
    browser.goto(&format!("{base}/portal/tasks")).await;
    let rows = browser.texts("table.tasks tbody tr").await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    let overdue = browser.texts("table.tasks tr.overdue td.subject").await;
    assert_eq!(overdue, vec!["Call the scanner vendor"]);
    assert!(browser
        .text("table.tasks tr.overdue")
        .await
        .contains("OVERDUE"));
    browser.screenshot("tasks.png").await;

    // The dashboard: the overdue task stands out.
    browser.goto(&format!("{base}/portal")).await;
    let section = browser.text("section.overdue-tasks").await;
    assert!(
        section.contains("Overdue tasks") && section.contains("Call the scanner vendor"),
        "{section}"
    );
    let tiles = browser.texts("ul.tiles li.alert").await;
    assert!(
        tiles.iter().any(|t| t.contains("overdue tasks")),
        "{tiles:?}"
    );
    browser.screenshot("dashboard-overdue.png").await;

    // Open the first task from the ticket page and work it.
    browser.goto(&format!("{base}/portal/tickets/1")).await;
    browser
        .click_and_wait("#tasks ul.task-list a[href='/portal/tasks/1']")
        .await;
    assert!(browser
        .text("h1")
        .await
        .starts_with("Order a new feed roller"));
    let meta = browser.text("p.meta").await;
    assert!(
        meta.contains("to do") && meta.contains("#1 Scanner jams on every page"),
        "{meta}"
    );
    browser.screenshot("task.png").await;
    browser
        .click_and_wait(".status-buttons form:nth-of-type(2) button")
        .await;
    assert_eq!(notice(&browser).await, "Marked in progress.");
    assert!(browser.text("p.meta").await.contains("in progress"));
    browser
        .click_and_wait(".status-buttons form:nth-of-type(3) button")
        .await;
    assert_eq!(notice(&browser).await, "Marked done.");

    // Back on the ticket: listed done, and the history tells the story.
    browser
        .click_and_wait("p.meta a[href='/portal/tickets/1']")
        .await;
    assert_eq!(ticket_on_screen(&browser).await, 1);
    let listed = browser.texts("#tasks ul.task-list li").await;
    assert!(
        listed
            .iter()
            .any(|t| t.contains("Order a new feed roller") && t.contains("done")),
        "{listed:?}"
    );
    let history = browser.texts("ol.history li").await;
    for line in [
        "created task #1 “Order a new feed roller”",
        "marked task #1 “Order a new feed roller” in progress",
        "marked task #1 “Order a new feed roller” done",
    ] {
        assert!(
            history.iter().any(|h| h.contains(line)),
            "{line:?} not in {history:?}"
        );
    }
    browser
        .goto(&format!("{base}/portal/tickets/1#tasks"))
        .await;
    browser.wait_for("#tasks").await;
    browser.screenshot("ticket-tasks.png").await;
    eprintln!(
        "staff_create_and_finish_a_task_from_a_ticket: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
