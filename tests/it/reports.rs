//! `/portal/reports`: exact figures over a known data set built through the real actions
//! (tickets at fixed times, staff replies at known offsets, resolutions, a reopen), the
//! denormalised first response kept by replies and merges, the reopen recorded by
//! ingest, route × role, bad periods, CSV downloads and the SVG charts.

use axum::http::{header, StatusCode};
use maildesk::domain::datetime::parse_day;
use maildesk::helpdesk::actions::{self, Actor, Context, Expected};
use maildesk::store::tickets::{self, Field};
use maildesk::store::{events, unix_now, users, Tx};

use crate::support::portal::{customer_mail, Browser, Portal, ADMIN, DISABLED, STAFF};

const H: i64 = 3600;
const D: i64 = 86_400;
const HOSTILE: &str = "=1+2\"<svg onload=alert(1)>&";
const PERIOD: &str = "from=2023-03-01&to=2023-03-07";

async fn actor(portal: &Portal, email: &str) -> Actor {
    let mut conn = portal.store().acquire().await.unwrap();
    Actor::with_role(
        users::find_by_email(&mut conn, email)
            .await
            .unwrap()
            .unwrap(),
    )
}

fn ctx(portal: &Portal, now: i64) -> Context<'_> {
    Context {
        outbound: portal.ingestor.options().outbound.as_ref(),
        categories: &[],
        now,
    }
}

async fn new_ticket(tx: &mut Tx, n: u32, category: &str, mailbox: Option<&str>, at: i64) -> i64 {
    let email = format!("customer{n}@example.net");
    let id = tickets::insert(
        tx,
        &tickets::NewTicket {
            subject: &format!("Ticket {n}"),
            category,
            mailbox,
            requester_email: &email,
            requester_name: None,
            linked_ticket_id: None,
        },
        at,
    )
    .await
    .unwrap();
    let requester = [(
        email.as_str(),
        None,
        maildesk::domain::ParticipantRole::Requester,
    )];
    tickets::add_participants(tx, id, &requester, at)
        .await
        .unwrap();
    id
}

async fn set(
    portal: &Portal,
    tx: &mut Tx,
    who: &Actor,
    id: i64,
    field: Field,
    value: &str,
    at: i64,
) {
    let changed = actions::change_field(
        tx,
        &ctx(portal, at),
        who,
        id,
        field,
        Expected::Anything,
        Some(value),
    )
    .await
    .unwrap();
    assert!(changed, "{field:?} of #{id} to {value}");
}

async fn reply(portal: &Portal, tx: &mut Tx, who: &Actor, id: i64, at: i64) {
    let queued = actions::reply(tx, &ctx(portal, at), who, id, "On it.", &[])
        .await
        .unwrap();
    assert_eq!(queued, 1);
}

/// The data set (2023-03-01 was a Wednesday; the period is 2023-03-01 to 03-07):
/// A network, Sam, created Wed 09:00, Sam replies +1 h, resolved +5 h.
/// B network, Ada, created Wed 09:30, Ada replies +3 h, resolved +1 d.
/// C hostile category, no mailbox, unassigned, created Thu 14:00, open.
/// D billing, Sam, created Fri 09:00, Sam replies +30 min, resolved +2 h, reopened +3 h.
/// E created after the period (resolved at once): not counted.
/// F created two days before, resolved Thu 00:00 (3 d): resolved, not created.
async fn seed(portal: &Portal) {
    let t = parse_day("2023-03-01").unwrap() * D;
    let sam = actor(portal, STAFF).await;
    let ada = actor(portal, ADMIN).await;
    let (sam_id, ada_id) = (sam.user.id.to_string(), ada.user.id.to_string());
    let mut tx = portal.store().begin().await.unwrap();
    let a = new_ticket(&mut tx, 1, "network", Some("support"), t + 9 * H).await;
    set(
        portal,
        &mut tx,
        &sam,
        a,
        Field::Assignee,
        &sam_id,
        t + 9 * H,
    )
    .await;
    reply(portal, &mut tx, &sam, a, t + 10 * H).await;
    set(
        portal,
        &mut tx,
        &sam,
        a,
        Field::Status,
        "resolved",
        t + 14 * H,
    )
    .await;
    let b = new_ticket(&mut tx, 2, "network", Some("support"), t + 9 * H + 1800).await;
    set(
        portal,
        &mut tx,
        &ada,
        b,
        Field::Assignee,
        &ada_id,
        t + 9 * H + 1800,
    )
    .await;
    reply(portal, &mut tx, &ada, b, t + 12 * H + 1800).await;
    // A second reply does not move the first response.
    reply(portal, &mut tx, &sam, b, t + 13 * H).await;
    set(
        portal,
        &mut tx,
        &ada,
        b,
        Field::Status,
        "resolved",
        t + D + 9 * H + 1800,
    )
    .await;
    new_ticket(&mut tx, 3, HOSTILE, None, t + D + 14 * H).await;
    let d = new_ticket(&mut tx, 4, "billing", Some("support"), t + 2 * D + 9 * H).await;
    set(
        portal,
        &mut tx,
        &sam,
        d,
        Field::Assignee,
        &sam_id,
        t + 2 * D + 9 * H,
    )
    .await;
    reply(portal, &mut tx, &sam, d, t + 2 * D + 9 * H + 1800).await;
    set(
        portal,
        &mut tx,
        &sam,
        d,
        Field::Status,
        "resolved",
        t + 2 * D + 11 * H,
    )
    .await;
    set(
        portal,
        &mut tx,
        &sam,
        d,
        Field::Status,
        "open",
        t + 2 * D + 12 * H,
    )
    .await;
    let e = new_ticket(&mut tx, 5, "network", Some("support"), t + 10 * D).await;
    set(
        portal,
        &mut tx,
        &sam,
        e,
        Field::Status,
        "resolved",
        t + 10 * D + H,
    )
    .await;
    let f = new_ticket(&mut tx, 6, "network", Some("support"), t - 2 * D).await;
    set(portal, &mut tx, &ada, f, Field::Status, "resolved", t + D).await;
    tx.commit().await.unwrap();
}

/// The CSV's rows as cells (the test data has no quoted commas except where noted).
fn csv_row<'a>(csv: &'a str, prefix: &str) -> Vec<&'a str> {
    csv.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no row {prefix:?} in\n{csv}"))
        .split(',')
        .collect()
}

#[tokio::test]
async fn figures_of_a_known_period_are_exact() {
    let portal = Portal::new().await;
    seed(&portal).await;
    let staff = portal.sign_in(STAFF).await;
    let summary = portal
        .get(&staff, &format!("/portal/reports/summary.csv?{PERIOD}"))
        .await;
    assert_eq!(summary.status, StatusCode::OK, "{}", summary.body);
    let csv = summary.body.as_str();
    assert!(csv.starts_with("group,name,created,resolved,reopened,responded,first_response_median_seconds,first_response_p90_seconds,resolution_median_seconds,resolution_p90_seconds\r\n"), "{csv}");
    // First responses 1 h, 3 h, 30 min: median 1 h, p90 3,600 + 0.8 × 7,200.
    // Resolutions 5 h, 1 d, 3 d: median 1 d, p90 86,400 + 0.8 × 172,800.
    assert_eq!(
        csv_row(csv, "All tickets,All tickets,"),
        [
            "All tickets",
            "All tickets",
            "4",
            "3",
            "1",
            "3",
            "3600",
            "9360",
            "86400",
            "224640"
        ]
    );
    assert_eq!(
        csv_row(csv, "Category,network,"),
        ["Category", "network", "2", "3", "0", "2", "7200", "10080", "86400", "224640"]
    );
    assert_eq!(
        csv_row(csv, "Category,billing,"),
        ["Category", "billing", "1", "0", "1", "1", "1800", "1800", "", ""]
    );
    // The hostile category is a text cell, not a formula, and stays one cell.
    let hostile = csv
        .lines()
        .find(|l| l.starts_with("Category,\"'=1+2"))
        .unwrap_or_else(|| panic!("hostile category row defused in\n{csv}"));
    assert_eq!(
        hostile,
        "Category,\"'=1+2\"\"<svg onload=alert(1)>&\",1,0,0,0,,,,"
    );
    assert_eq!(
        csv_row(csv, "Mailbox,(no mailbox),"),
        [
            "Mailbox",
            "(no mailbox)",
            "1",
            "0",
            "0",
            "0",
            "",
            "",
            "",
            ""
        ]
    );
    // Sam: assigned A and D (A resolved, D reopened); answered A (1 h) and D (30 min).
    assert_eq!(
        csv_row(csv, "Staff,Sam Staff,"),
        [
            "Staff",
            "Sam Staff",
            "2",
            "1",
            "1",
            "2",
            "2700",
            "3420",
            "18000",
            "18000"
        ]
    );
    assert_eq!(
        csv_row(csv, "Staff,Ada Admin,"),
        [
            "Staff",
            "Ada Admin",
            "1",
            "1",
            "0",
            "1",
            "10800",
            "10800",
            "86400",
            "86400"
        ]
    );
    assert_eq!(
        csv_row(csv, "Staff,(unassigned),"),
        [
            "Staff",
            "(unassigned)",
            "1",
            "1",
            "0",
            "0",
            "",
            "",
            "259200",
            "259200"
        ]
    );
    assert_eq!(
        summary.headers[header::CONTENT_TYPE],
        "text/csv; charset=utf-8"
    );
    let disposition = summary.headers[header::CONTENT_DISPOSITION]
        .to_str()
        .unwrap();
    assert!(
        disposition
            .starts_with("attachment; filename=\"maildesk-summary-2023-03-01-to-2023-03-07.csv\""),
        "{disposition}"
    );

    // Busiest hours: A and B on Wednesday 09h, C Thursday 14h, D Friday 09h.
    let hours = portal
        .get(&staff, &format!("/portal/reports/hours.csv?{PERIOD}"))
        .await;
    assert_eq!(hours.status, StatusCode::OK);
    let cells = |day: &str| -> Vec<String> {
        csv_row(&hours.body, day)[1..]
            .iter()
            .map(|c| c.to_string())
            .collect()
    };
    let mut wednesday = vec!["0".to_string(); 24];
    wednesday[9] = "2".into();
    assert_eq!(cells("Wed,"), wednesday);
    assert_eq!(cells("Thu,")[14], "1");
    assert_eq!(cells("Fri,")[9], "1");
    assert_eq!(cells("Mon,"), vec!["0".to_string(); 24]);

    // Per day: created 2, 1, 1 on the first three days; resolved A (Wed), B and F (Thu).
    let daily = portal
        .get(&staff, &format!("/portal/reports/daily.csv?{PERIOD}"))
        .await;
    assert_eq!(
        daily.body,
        "date,created,resolved\r\n2023-03-01,2,1\r\n2023-03-02,1,2\r\n2023-03-03,1,0\r\n\
         2023-03-04,0,0\r\n2023-03-05,0,0\r\n2023-03-06,0,0\r\n2023-03-07,0,0\r\n"
    );

    // The backlog now: C and D are open and years old.
    let backlog = portal
        .get(&staff, &format!("/portal/reports/backlog.csv?{PERIOD}"))
        .await;
    assert!(
        backlog
            .body
            .starts_with("group,name,< 1 day,1–3 days,3–7 days,1–4 weeks,> 4 weeks,total\r\n"),
        "{}",
        backlog.body
    );
    assert_eq!(
        csv_row(&backlog.body, "All tickets,"),
        ["All tickets", "All tickets", "0", "0", "0", "0", "2", "2"]
    );
    assert_eq!(
        csv_row(&backlog.body, "Category,billing,"),
        ["Category", "billing", "0", "0", "0", "0", "1", "1"]
    );
    assert_eq!(
        csv_row(&backlog.body, "Staff,(unassigned),"),
        ["Staff", "(unassigned)", "0", "0", "0", "0", "1", "1"]
    );

    // The page: the same figures, readable, escaped, with well-formed charts.
    let page = portal
        .get(&staff, &format!("/portal/reports?{PERIOD}"))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let body = &page.body;
    assert!(body.contains("2023-03-01 to 2023-03-07 (7 days)"), "{body}");
    assert!(body.contains("UTC"));
    assert!(
        body.contains("<td class=\"num\">1 h</td><td class=\"num\">2 h 36 min</td>"),
        "{body}"
    );
    assert!(!body.contains("<svg onload"), "hostile category unescaped");
    assert!(
        body.contains("=1+2&#34;&#60;svg onload=alert(1)&#62;&#38;")
            || body.contains("=1+2&quot;&lt;svg onload=alert(1)&gt;&amp;"),
        "{body}"
    );
    let charts = svgs(body);
    assert_eq!(charts.len(), 5, "five charts");
    for chart in &charts {
        well_formed(chart);
        assert!(
            chart.contains("role=\"img\"") && chart.contains("<title id="),
            "{chart}"
        );
    }
    let categories = charts
        .iter()
        .find(|c| c.contains("chart-backlog-categories"))
        .unwrap();
    assert!(
        categories.contains("=1+2&quot;&lt;svg onload=alert(1)&gt;&amp;: 1"),
        "{categories}"
    );
    for table in ["summary", "backlog", "hours", "daily"] {
        assert!(
            body.contains(&format!(
                "href=\"/portal/reports/{table}.csv?{}\"",
                PERIOD.replace('&', "&#38;")
            )),
            "download link for {table}"
        );
    }
}

/// The inline `<svg>` elements of a page.
fn svgs(html: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<svg ") {
        let end = rest[start..].find("</svg>").expect("svg closed") + start + 6;
        out.push(&rest[start..end]);
        rest = &rest[end..];
    }
    out
}

/// A small XML check: tags nest and close, attributes are quoted, `&` starts an entity,
/// no `<` or `>` in text or attribute values.
fn well_formed(xml: &str) {
    let mut stack: Vec<&str> = Vec::new();
    let mut rest = xml;
    while !rest.is_empty() {
        let lt = rest.find('<').unwrap_or(rest.len());
        check_text(&rest[..lt], xml);
        if lt == rest.len() {
            break;
        }
        let gt = rest[lt..].find('>').expect("tag closed") + lt;
        let tag = &rest[lt + 1..gt];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop(), Some(name), "closing {name} in {xml}");
        } else {
            let self_closing = tag.ends_with('/');
            let tag = tag.trim_end_matches('/');
            let name = tag.split_whitespace().next().expect("tag name");
            let mut attrs = &tag[name.len()..];
            while !attrs.trim().is_empty() {
                let eq = attrs
                    .find("=\"")
                    .unwrap_or_else(|| panic!("unquoted attribute in <{tag}>"));
                let close = attrs[eq + 2..].find('"').expect("attribute closed") + eq + 2;
                check_text(&attrs[eq + 2..close], xml);
                attrs = &attrs[close + 1..];
            }
            if !self_closing {
                stack.push(name);
            }
        }
        rest = &rest[gt + 1..];
    }
    assert!(stack.is_empty(), "unclosed {stack:?} in {xml}");
}

fn check_text(text: &str, xml: &str) {
    assert!(
        !text.contains('<') && !text.contains('>'),
        "raw < or > in {text:?}"
    );
    for (i, _) in text.match_indices('&') {
        let entity = &text[i..];
        assert!(
            ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"]
                .iter()
                .any(|e| entity.starts_with(e)),
            "bare & in {text:?} of {xml}"
        );
    }
}

#[tokio::test]
async fn who_may_see_reports() {
    let portal = Portal::new().await;
    let admin = portal.sign_in(ADMIN).await;
    let staff = portal.sign_in(STAFF).await;
    let disabled = portal.sign_in_then_disable(DISABLED).await;
    let anonymous = Browser::default();
    for path in [
        "/portal/reports".to_string(),
        "/portal/reports?days=7".into(),
        format!("/portal/reports/summary.csv?{PERIOD}"),
        "/portal/reports/backlog.csv".into(),
        "/portal/reports/hours.csv?days=90".into(),
        "/portal/reports/daily.csv".into(),
    ] {
        for (who, browser, expected) in [
            ("anonymous", &anonymous, StatusCode::SEE_OTHER),
            ("disabled", &disabled, StatusCode::SEE_OTHER),
            ("staff", &staff, StatusCode::OK),
            ("admin", &admin, StatusCode::OK),
        ] {
            let response = portal.get(browser, &path).await;
            assert_eq!(
                response.status, expected,
                "{who} GET {path}: {}",
                response.body
            );
            if expected == StatusCode::SEE_OTHER {
                assert!(
                    response.location().starts_with("/portal/login"),
                    "{who} {path}"
                );
            }
        }
    }
    // The empty state: no tickets, every table still there.
    let page = portal.get(&staff, "/portal/reports").await;
    assert!(page.body.contains("(30 days)"), "{}", page.body);
    assert!(
        page.body.contains("aria-current=\"page\">Reports</a>")
            || page
                .body
                .contains("href=\"/portal/reports\" aria-current=\"page\"")
    );
    assert_eq!(svgs(&page.body).len(), 5);
    let summary = portal.get(&staff, "/portal/reports/summary.csv").await;
    assert!(
        summary.body.contains("All tickets,All tickets,0,0,0,0,,,,"),
        "{}",
        summary.body
    );

    // Bad periods: 400, naming the field.
    for (query, field) in [
        ("from=2023-02-30", "from"),
        ("from=yesterday&to=2023-03-01", "from"),
        ("to=03/01/2023", "to"),
        ("from=2023-03-02&to=2023-03-01", "to"),
        ("days=abc", "days"),
        ("days=0", "days"),
        ("from=2000-01-01&to=2023-03-01", "from"),
    ] {
        for path in ["/portal/reports", "/portal/reports/summary.csv"] {
            let response = portal.get(&staff, &format!("{path}?{query}")).await;
            assert_eq!(response.status, StatusCode::BAD_REQUEST, "{path}?{query}");
            assert!(
                response.body.contains(&format!("{field}: ")),
                "{path}?{query}: {}",
                response.body
            );
        }
    }
    let unknown = portal.get(&staff, "/portal/reports/passwords.csv").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

async fn first_response(portal: &Portal, id: i64) -> (Option<i64>, Option<i64>) {
    let mut conn = portal.store().acquire().await.unwrap();
    sqlx::query_as("SELECT first_response_at, first_responder_id FROM tickets WHERE id = $1")
        .bind(id)
        .fetch_one(&mut *conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn replies_merges_and_customer_reopens_keep_the_figures() {
    let portal = Portal::new().await;
    let staff = portal.sign_in(STAFF).await;
    let sam = actor(&portal, STAFF).await;
    // A portal reply sets the first response; a note does not.
    let id = portal
        .ingest(&customer_mail(
            "cora@example.net",
            "r1@x",
            "VPN",
            "It drops.",
        ))
        .await;
    let note = portal
        .post(
            &staff,
            &format!("/portal/tickets/{id}/note"),
            &[("body", "checking")],
        )
        .await;
    assert_eq!(note.status, StatusCode::SEE_OTHER, "{}", note.body);
    assert_eq!(first_response(&portal, id).await, (None, None));
    let before = unix_now();
    let sent = portal
        .post(
            &staff,
            &format!("/portal/tickets/{id}/reply"),
            &[("body", "Try again now.")],
        )
        .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
    let (at, who) = first_response(&portal, id).await;
    assert!(at.is_some_and(|at| at >= before), "{at:?}");
    assert_eq!(who, Some(sam.user.id));

    // Merging a ticket answered earlier into one answered later (or not at all) keeps
    // the earlier response on the target.
    let t = unix_now();
    let mut tx = portal.store().begin().await.unwrap();
    let early = new_ticket(&mut tx, 7, "network", Some("support"), t - 10 * H).await;
    reply(&portal, &mut tx, &sam, early, t - 9 * H).await;
    let target = new_ticket(&mut tx, 8, "network", Some("support"), t - 8 * H).await;
    actions::merge(&mut tx, &ctx(&portal, t), &sam, early, target)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        first_response(&portal, target).await,
        (Some(t - 9 * H), Some(sam.user.id))
    );

    // A customer reply to a resolved ticket reopens it, and the history says so: the
    // reports count it as reopened.
    let resolved = portal
        .post(
            &staff,
            &format!("/portal/tickets/{id}/update"),
            &[("status", "resolved"), ("was_status", "open")],
        )
        .await;
    assert_eq!(resolved.status, StatusCode::SEE_OTHER, "{}", resolved.body);
    assert_eq!(portal.ticket(id).await.status.as_str(), "resolved");
    let again =
        "From: Cora Customer <cora@example.net>\r\nTo: support@example.com\r\nSubject: Re: VPN\r\nMessage-ID: <r2@x>\r\nIn-Reply-To: <r1@x>\r\nReferences: <r1@x>\r\n\r\nIt drops again.\r\n";
    assert_eq!(portal.ingest(again).await, id);
    assert_eq!(portal.ticket(id).await.status.as_str(), "open");
    let history = {
        let mut conn = portal.store().acquire().await.unwrap();
        events::for_ticket(&mut conn, id).await.unwrap()
    };
    let reopen = history.last().expect("a history entry");
    assert_eq!(
        (
            reopen.user_id,
            reopen.field.as_str(),
            reopen.old_value.as_deref(),
            reopen.new_value.as_deref()
        ),
        (None, "status", Some("resolved"), Some("open"))
    );
    let csv = portal
        .get(&staff, "/portal/reports/summary.csv?days=7")
        .await;
    let all = csv_row(&csv.body, "All tickets,");
    assert_eq!(&all[2..6], ["2", "0", "1", "2"], "{}", csv.body);
}
