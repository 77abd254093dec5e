//! The staff portal in a real browser (headless Chromium through chromedriver): signing
//! in, working a ticket end to end against real mail servers, merging, who may open
//! which page, and hostile HTML mail that must neither run nor load anything.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::browser::{
    add_user, customer_mail, ingest, mail_world, notice, serve, ticket_on_screen, type_into,
    unfolded, ADMIN, ADMIN_NAME, ANN, ANN_PW, PASSWORD, STAFF, STAFF_NAME, SUPPORT, SUPPORT_PW,
};
use crate::support::chromium::Browser;
use crate::support::{wait_until, TestEnv};

#[tokio::test]
async fn staff_work_a_ticket_end_to_end() {
    let started = Instant::now();
    let (dovecot, _relay, env) = mail_world().await;
    add_user(&env, STAFF, STAFF_NAME, "staff");
    add_user(&env, ADMIN, ADMIN_NAME, "admin");
    // One broken message for the quarantine page.
    let junk = b"\x00\x01\x02\x03 not mail \xff\xfe".to_vec();
    assert!(ingest(&env, &junk).contains("quarantined: 1"));
    let (_server, base) = serve(&env).await;

    let subject = "Printer on fire";
    let body = "The printer in room 4 is on fire again.\r\nThe smoke smells of toner.";
    dovecot
        .append(
            SUPPORT,
            SUPPORT_PW,
            "INBOX",
            &[customer_mail("fire@customer.example", subject, body).into_bytes()],
            None,
        )
        .await;

    let browser = Browser::start().await;
    browser.sign_in(&base, STAFF, PASSWORD).await;
    assert_eq!(
        browser.text("header.top .me a").await,
        STAFF_NAME,
        "the header names who is signed in"
    );

    // The watcher picks the mail up over IMAP: reload the queue until it is there.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        browser.goto(&format!("{base}/portal/tickets")).await;
        browser.wait_for("main h1").await;
        if browser
            .texts("td.subject a")
            .await
            .iter()
            .any(|t| t == subject)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the customer's mail never showed in the queue; maildesk log:\n{}",
            env.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    browser.goto(&format!("{base}/portal")).await;
    browser.wait_for("ul.tiles").await;
    let tiles = browser.texts("ul.tiles li").await;
    let tiles: Vec<String> = tiles
        .iter()
        .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert!(
        tiles.contains(&"1 open".to_string()) && tiles.contains(&"1 unassigned".to_string()),
        "dashboard tiles: {tiles:?}"
    );
    browser.screenshot("dashboard.png").await;

    // Open the ticket from the queue.
    browser.goto(&format!("{base}/portal/tickets")).await;
    browser.click_and_wait("td.subject a").await;
    let id = ticket_on_screen(&browser).await;
    assert!(browser.text("h1.ticket-title").await.contains(subject));
    let first = browser.text("article.msg.customer .body").await;
    assert!(
        first.contains("The printer in room 4 is on fire again."),
        "{first}"
    );

    // Reply: the customer's mailbox receives it.
    let reply = "Please unplug the printer and leave the room.";
    type_into(
        &browser,
        "form[action$='/reply'] textarea[name=body]",
        reply,
    )
    .await;
    browser
        .click_and_wait("form[action$='/reply'] button[type=submit]")
        .await;
    assert!(
        notice(&browser)
            .await
            .contains("Reply queued for 1 recipient"),
        "{}",
        browser.text("main").await
    );
    let staff_msgs = browser.texts("article.msg.staff").await;
    assert!(
        staff_msgs.iter().any(|m| m.contains(reply)),
        "the reply shows on the ticket: {staff_msgs:?}"
    );
    let received = wait_until(Duration::from_secs(15), || async {
        dovecot
            .messages(ANN, ANN_PW, "INBOX")
            .await
            .iter()
            .any(|raw| unfolded(raw).contains(reply))
    })
    .await;
    let inbox = dovecot.messages(ANN, ANN_PW, "INBOX").await;
    assert!(
        received,
        "the customer never received the reply; her inbox: {inbox:#?}"
    );
    let delivered = inbox
        .iter()
        .find(|raw| unfolded(raw).contains(reply))
        .unwrap();
    assert!(
        delivered.contains(&format!("[Support #{id}]")),
        "the reply carries the ticket reference: {delivered}"
    );

    // An internal note, shown as internal.
    let note = "Facilities say the printer is under warranty.";
    type_into(&browser, "form[action$='/note'] textarea[name=body]", note).await;
    browser
        .click_and_wait("form[action$='/note'] button[type=submit]")
        .await;
    assert_eq!(notice(&browser).await, "Note added.");
    let notes = browser.texts("article.msg.note").await;
    assert!(
        notes
            .iter()
            .any(|n| n.contains(note) && n.contains("Internal note")),
        "the note is shown and labelled internal: {notes:?}"
    );

    // Take the ticket and resolve it.
    let props = "form[action$='/update']";
    browser
        .wait_for(&format!("{props} select[name=assignee]"))
        .await
        .select_by_label(STAFF_NAME)
        .await
        .expect("choose the assignee");
    browser
        .wait_for(&format!("{props} select[name=status]"))
        .await
        .select_by_value("resolved")
        .await
        .expect("choose the status");
    browser
        .click_and_wait(&format!("{props} button[type=submit]"))
        .await;
    let saved = notice(&browser).await;
    assert!(
        saved.starts_with("Saved:") && saved.contains("status") && saved.contains("assignee"),
        "{saved}"
    );
    assert_eq!(browser.text("p.meta .status").await, "resolved");
    let history = browser.texts("ol.history li").await;
    assert!(
        history
            .iter()
            .any(|h| h.contains("changed the status") && h.contains("to resolved")),
        "history lists the status change: {history:?}"
    );
    assert!(
        history
            .iter()
            .any(|h| h.contains(&format!("assigned it to {STAFF_NAME}"))
                || h.contains(&format!("assigned it to {STAFF}"))),
        "history names the new assignee: {history:?}"
    );
    let assignee = browser
        .wait_for(&format!("{props} select[name=assignee] option[selected]"))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(assignee, STAFF_NAME);
    browser.screenshot("ticket.png").await;

    // Search from the queue for a word of the body (in any status: it is resolved).
    browser.goto(&format!("{base}/portal/tickets")).await;
    type_into(&browser, "form.filters input[name=q]", "toner").await;
    browser
        .wait_for("form.filters select[name=status]")
        .await
        .select_by_value("any")
        .await
        .expect("status any");
    browser
        .click_and_wait("form.filters button[type=submit]")
        .await;
    let url = browser.url().await;
    assert!(url.query().unwrap_or_default().contains("q=toner"), "{url}");
    let found: Vec<String> = browser.texts("table.queue td.subject a").await;
    assert_eq!(found, [subject], "the search finds the ticket");
    browser.screenshot("queue.png").await;
    // The same queue on a phone: readable, no sideways scrolling of the page.
    browser
        .client
        .set_window_size(390, 844)
        .await
        .expect("phone size");
    browser.screenshot("queue-phone.png").await;
    let overflow: serde_json::Value = browser
        .client
        .execute(
            "return document.documentElement.scrollWidth > window.innerWidth + 1",
            vec![],
        )
        .await
        .expect("measure the page");
    browser
        .client
        .set_window_size(1280, 900)
        .await
        .expect("desktop size");
    assert_eq!(
        overflow,
        serde_json::Value::Bool(false),
        "the phone page does not scroll sideways"
    );
    let link = browser
        .wait_for("table.queue td.subject a")
        .await
        .attr("href")
        .await
        .unwrap();
    assert_eq!(
        link.as_deref(),
        Some(format!("/portal/tickets/{id}").as_str())
    );
    // A word that is in no mail finds nothing.
    browser
        .goto(&format!("{base}/portal/tickets?status=any&q=zeppelin"))
        .await;
    assert!(browser.all("table.queue td.subject a").await.is_empty());
    assert!(browser.text("p.empty").await.contains("No tickets"));

    // Sign out, then the quarantine page as an admin.
    browser
        .click_and_wait("header.top form[action='/portal/logout'] button")
        .await;
    assert_eq!(browser.url().await.path(), "/portal/login");
    browser.sign_in(&base, ADMIN, PASSWORD).await;
    browser.goto(&format!("{base}/portal/quarantine")).await;
    assert_eq!(browser.text("main h1").await, "Quarantine");
    let rows = browser.texts("table.queue tbody tr").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0].contains("not an e-mail message"), "{rows:?}");
    browser.screenshot("quarantine.png").await;
    eprintln!(
        "staff_work_a_ticket_end_to_end: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test]
async fn merge_two_tickets_in_the_browser() {
    let started = Instant::now();
    let env = TestEnv::new().await;
    add_user(&env, STAFF, STAFF_NAME, "staff");
    ingest(
        &env,
        customer_mail(
            "one@customer.example",
            "VPN is down",
            "The VPN drops every hour.",
        )
        .as_bytes(),
    );
    ingest(
        &env,
        customer_mail(
            "two@customer.example",
            "VPN again",
            "Still no VPN since this morning.",
        )
        .as_bytes(),
    );
    let (_server, base) = serve(&env).await;
    let browser = Browser::start().await;
    browser.sign_in(&base, STAFF, PASSWORD).await;

    browser.goto(&format!("{base}/portal/tickets/2")).await;
    assert!(browser.text("h1.ticket-title").await.contains("VPN again"));
    type_into(&browser, "form[action$='/merge'] input[name=target]", "1").await;
    browser
        .click_and_wait("form[action$='/merge'] button[type=submit]")
        .await;
    assert_eq!(
        ticket_on_screen(&browser).await,
        1,
        "the browser lands on the target"
    );
    assert_eq!(
        notice(&browser).await,
        "Ticket #2 was merged into this ticket."
    );
    let messages = browser.texts("article.msg .body").await;
    assert!(
        messages
            .iter()
            .any(|m| m.contains("The VPN drops every hour.")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("Still no VPN since this morning.")),
        "the merged ticket's message is on the target: {messages:?}"
    );
    let meta = browser.text("p.meta").await;
    assert!(meta.contains("#2 merged here"), "{meta}");
    let history = browser.texts("ol.history li").await;
    assert!(
        history.iter().any(|h| h.contains("merged")),
        "history records the merge: {history:?}"
    );

    // The source's address leads to the target.
    browser.goto(&format!("{base}/portal/tickets/2")).await;
    assert_eq!(ticket_on_screen(&browser).await, 1);
    assert!(browser
        .text("h1.ticket-title")
        .await
        .contains("VPN is down"));
    eprintln!(
        "merge_two_tickets_in_the_browser: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test]
async fn staff_cannot_open_admin_pages() {
    let started = Instant::now();
    let env = TestEnv::new().await;
    add_user(&env, STAFF, STAFF_NAME, "staff");
    add_user(&env, ADMIN, ADMIN_NAME, "admin");
    let (_server, base) = serve(&env).await;
    let browser = Browser::start().await;

    browser.sign_in(&base, STAFF, PASSWORD).await;
    let nav = browser.texts("header.top nav a").await;
    assert!(nav.contains(&"Tickets".to_string()), "{nav:?}");
    assert!(
        !nav.iter().any(|a| a.contains("Quarantine")),
        "staff see no Quarantine link: {nav:?}"
    );
    assert!(browser
        .all("a[href^='/portal/quarantine']")
        .await
        .is_empty());
    browser.goto(&format!("{base}/portal/quarantine")).await;
    assert_eq!(browser.text("main h1").await, "Not allowed");
    assert!(browser.all("table.queue").await.is_empty());
    assert_eq!(browser.fetch_status("/portal/quarantine").await, 403);
    assert_eq!(browser.fetch_status("/portal/quarantine/1").await, 403);

    // Sign out and in again as an admin.
    browser.goto(&format!("{base}/portal")).await;
    browser
        .click_and_wait("header.top form[action='/portal/logout'] button")
        .await;
    browser.sign_in(&base, ADMIN, PASSWORD).await;
    let nav = browser.texts("header.top nav a").await;
    assert!(nav.contains(&"Quarantine".to_string()), "{nav:?}");
    browser
        .click_and_wait("header.top nav a[href='/portal/quarantine']")
        .await;
    assert_eq!(browser.url().await.path(), "/portal/quarantine");
    assert_eq!(browser.text("main h1").await, "Quarantine");
    assert_eq!(browser.fetch_status("/portal/quarantine").await, 200);
    eprintln!(
        "staff_cannot_open_admin_pages: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// A web server that answers anything and remembers every request line it got.
struct Canary {
    port: u16,
    connections: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Canary {
    async fn start() -> Canary {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (count, seen) = (connections.clone(), requests.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let n = stream.read(&mut buf).await.unwrap_or(0);
                    let head = String::from_utf8_lossy(&buf[..n]);
                    seen.lock()
                        .unwrap()
                        .push(head.lines().next().unwrap_or("").to_string());
                    let _ = stream
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                        .await;
                });
            }
        });
        Canary {
            port,
            connections,
            requests,
            task,
        }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Canary {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn hostile_mail(canary: u16) -> String {
    let c = format!("http://127.0.0.1:{canary}");
    let html = format!(
        r#"<html><head><meta http-equiv="refresh" content="0;url={c}/meta">
<style>@import url({c}/import); body{{background:url({c}/bg)}}</style>
<link rel=stylesheet href="{c}/link.css"></head><body>
<p>Dear support, the invoice is attached below.</p>
<script>alert(1)</script>
<img src=x onerror="alert(2)">
<a href="javascript:alert(3)">click</a>
<svg onload="alert(4)"><script>alert(5)</script></svg>
<iframe src="{c}/frame"></iframe>
<img src="{c}/pixel.gif">
<div style="background:url({c}/css)">Kind regards, Mallory</div>
<form action="{c}/form"><input name=q></form>
<object data="{c}/obj"></object>
<script>window.pwned=1</script>
<img src=x onerror="window.pwned=2">
</body></html>"#
    );
    format!("From: Mallory <mallory@evil.example>\r\nTo: {SUPPORT}\r\nSubject: Invoice overdue\r\nMessage-ID: <hostile@evil.example>\r\nDate: Mon, 2 Jan 2023 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{}\r\n", html.replace('\n', "\r\n"))
}

/// Asserts that no alert is open and no script of the mail ran.
async fn nothing_ran(browser: &Browser, when: &str) {
    match browser.client.get_alert_text().await {
        Err(e) if e.is_no_such_alert() => {}
        Ok(text) => panic!("{when}: an alert is open: {text:?}"),
        Err(e) => panic!("{when}: asking for an alert failed: {e}"),
    }
    assert_eq!(
        browser.execute("return typeof window.pwned", vec![]).await,
        "undefined",
        "{when}: a script of the mail ran"
    );
}

#[tokio::test]
async fn hostile_html_runs_nothing_and_loads_nothing_remote() {
    let started = Instant::now();
    let canary = Canary::start().await;
    let env = TestEnv::new().await;
    add_user(&env, STAFF, STAFF_NAME, "staff");
    assert!(ingest(&env, hostile_mail(canary.port).as_bytes()).contains("created: 1"));
    let (_server, base) = serve(&env).await;
    let browser = Browser::start().await;
    browser.sign_in(&base, STAFF, PASSWORD).await;
    // Start the browser's record from here.
    browser.log("browser").await;
    browser.requested_urls().await;

    browser.goto(&format!("{base}/portal/tickets/1")).await;
    let message = browser.text("article.msg.customer .body").await;
    assert!(
        message.contains("Dear support, the invoice is attached below."),
        "the text of the mail is visible: {message:?}"
    );
    assert!(message.contains("Kind regards, Mallory"), "{message:?}");
    nothing_ran(&browser, "the ticket page").await;
    // Nothing in the page may even try: no script, frame, object or form of the mail.
    let inside = browser
        .execute(
            "return Array.from(document.querySelectorAll('article.msg .body *')).map(e => e.tagName.toLowerCase())",
            vec![],
        )
        .await;
    for tag in [
        "script", "iframe", "object", "form", "input", "svg", "style", "link", "meta",
    ] {
        assert!(
            !inside.as_array().unwrap().iter().any(|t| t == tag),
            "a <{tag}> of the mail is in the page: {inside}"
        );
    }

    let sources = browser
        .execute(
            "return Array.from(document.querySelectorAll('article.msg .body img[src]')).map(e => e.getAttribute('src'))",
            vec![],
        )
        .await;
    assert_eq!(
        sources,
        serde_json::json!([]),
        "blocked images keep no source"
    );

    let own = format!("{base}/");
    let urls = browser.requested_urls().await;
    assert!(
        urls.iter()
            .any(|u| u.starts_with(&format!("{base}/portal/tickets/1"))),
        "the performance log records the page itself: {urls:?}"
    );
    let foreign: Vec<&String> = urls
        .iter()
        .filter(|u| !u.starts_with(&own) && !u.starts_with("data:"))
        .collect();
    assert!(foreign.is_empty(), "the browser requested {foreign:?}");
    let resources = browser
        .execute(
            "return performance.getEntriesByType('resource').map(e => e.name)",
            vec![],
        )
        .await;
    for url in resources.as_array().unwrap() {
        let url = url.as_str().unwrap_or_default();
        assert!(url.starts_with(&own), "the page loaded {url}");
    }
    let console = browser.log("browser").await;
    let canary_origin = format!("127.0.0.1:{}", canary.port);
    for entry in &console {
        let text = entry["message"].as_str().unwrap_or_default();
        assert!(
            !text.contains(&canary_origin) && entry["source"] != "console-api",
            "the console shows the mail at work: {console:#?}"
        );
    }
    assert_eq!(
        canary.connections(),
        0,
        "the canary was contacted: {:?}",
        canary.requests()
    );

    // The viewer asks for the remote images of this message: still no script runs.
    let show = browser
        .wait_for("p.blocked a")
        .await
        .attr("href")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(show.contains("?images="), "{show}");
    browser.click_and_wait("p.blocked a").await;
    assert!(
        browser
            .url()
            .await
            .query()
            .unwrap_or_default()
            .starts_with("images="),
        "{}",
        browser.url().await
    );
    let message = browser.text("article.msg.customer .body").await;
    assert!(message.contains("Kind regards, Mallory"), "{message:?}");
    nothing_ran(&browser, "the page with remote images shown").await;
    // Only the image may come from the canary now: no frame, style, form or object.
    let loaded = wait_until(Duration::from_secs(5), || async {
        !canary.requests().is_empty()
    })
    .await;
    let requests = canary.requests();
    assert!(loaded, "the remote image was not loaded after Show them");
    assert!(
        requests.iter().all(|r| r.starts_with("GET /pixel.gif ")),
        "the canary got more than the image: {requests:?}"
    );
    let urls = browser.requested_urls().await;
    let foreign: Vec<&String> = urls
        .iter()
        .filter(|u| !u.starts_with(&own) && !u.starts_with("data:"))
        .collect();
    assert!(
        foreign
            .iter()
            .all(|u| **u == format!("http://127.0.0.1:{}/pixel.gif", canary.port)),
        "the browser requested {foreign:?}"
    );
    eprintln!(
        "hostile_html_runs_nothing_and_loads_nothing_remote: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Live updates in a real browser: with a ticket page and the queue open, mail piped in
/// by another process appears within seconds without a reload, and a reply being typed
/// stays as it was.
#[tokio::test]
async fn an_open_ticket_and_queue_show_new_mail_without_a_reload() {
    let env = TestEnv::new().await;
    add_user(&env, STAFF, STAFF_NAME, "staff");
    ingest(
        &env,
        customer_mail("live-1@customer.example", "Scanner jams", "Page 2 jams.").as_bytes(),
    );
    let (_server, base) = serve(&env).await;
    let browser = Browser::start().await;
    browser.sign_in(&base, STAFF, PASSWORD).await;

    browser.goto(&format!("{base}/portal/tickets")).await;
    browser.click_and_wait("td.subject a").await;
    let id = ticket_on_screen(&browser).await;
    browser.wait_for("main[data-live-ready='1']").await;
    browser.execute("window.notReloaded = true;", vec![]).await;
    type_into(&browser, "textarea[name=body]", "Half-typed answer").await;

    let reply = format!(
        "From: Ann Lee <{ANN}>\r\nTo: {SUPPORT}\r\nSubject: Re: Scanner jams\r\nMessage-ID: <live-2@customer.example>\r\nIn-Reply-To: <live-1@customer.example>\r\n\r\nNow page 3 jams as well.\r\n"
    );
    ingest(&env, reply.as_bytes());
    let shown = wait_until(Duration::from_secs(10), || async {
        // Read in one script: the region may be swapped between finding and reading it.
        browser
            .execute(
                "return document.querySelector('[data-live-region=thread]').innerText;",
                vec![],
            )
            .await
            .as_str()
            .is_some_and(|text| text.contains("page 3 jams"))
    })
    .await;
    assert!(
        shown,
        "the reply did not appear on the open page; log:\n{}",
        env.log()
    );
    let still = browser
        .execute("return window.notReloaded === true;", vec![])
        .await;
    assert_eq!(
        still,
        serde_json::Value::Bool(true),
        "the page was not reloaded"
    );
    let draft = browser
        .execute(
            "return document.querySelector('textarea[name=body]').value;",
            vec![],
        )
        .await;
    assert_eq!(
        draft,
        serde_json::json!("Half-typed answer"),
        "the draft survived"
    );
    browser.screenshot("ticket-live.png").await;
    assert_eq!(ticket_on_screen(&browser).await, id);

    // The queue: a new ticket appears at the top while the page stays open.
    browser.goto(&format!("{base}/portal/tickets")).await;
    browser.wait_for("main[data-live-ready='1']").await;
    browser.execute("window.notReloaded = true;", vec![]).await;
    ingest(
        &env,
        customer_mail("live-3@customer.example", "Projector dead", "No picture.").as_bytes(),
    );
    let listed = wait_until(Duration::from_secs(10), || async {
        browser
            .texts("td.subject a")
            .await
            .iter()
            .any(|t| t == "Projector dead")
    })
    .await;
    assert!(listed, "the new ticket did not appear in the open queue");
    let still = browser
        .execute("return window.notReloaded === true;", vec![])
        .await;
    assert_eq!(
        still,
        serde_json::Value::Bool(true),
        "the queue was not reloaded"
    );
}
