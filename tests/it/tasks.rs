//! Internal tasks through the portal's router: every route × role, validation, two
//! editors, who may delete, filters and sorts, tasks on the ticket page and the
//! dashboard, and the assignee's mail through the outbox.

use axum::http::StatusCode;
use maildesk::store::{tasks, unix_now, users};

use crate::support::portal::{
    check_routes, customer_mail, field_value, Browser, Fields, Portal, Route, ADMIN, DISABLED,
    STAFF,
};

async fn user_id(portal: &Portal, email: &str) -> i64 {
    let mut conn = portal.store().acquire().await.unwrap();
    users::find_by_email(&mut conn, email)
        .await
        .unwrap()
        .unwrap()
        .id
}

/// Creates a task through the form; returns its id.
async fn create(portal: &Portal, browser: &Browser, fields: &[(&str, &str)]) -> i64 {
    let response = portal.post(browser, "/portal/tasks", fields).await;
    assert_eq!(
        response.status,
        StatusCode::SEE_OTHER,
        "create {fields:?}: {}",
        response.body
    );
    let location = response.location();
    if let Some(rest) = location.strip_prefix("/portal/tasks/") {
        return rest.split('?').next().unwrap().parse().unwrap();
    }
    // Back to a ticket: the newest task is the one.
    let mut conn = portal.store().acquire().await.unwrap();
    sqlx::query_scalar::<_, i64>("SELECT MAX(id) FROM tasks")
        .fetch_one(&mut *conn)
        .await
        .unwrap()
}

async fn task(portal: &Portal, id: i64) -> tasks::Task {
    let mut conn = portal.store().acquire().await.unwrap();
    tasks::get(&mut conn, id).await.unwrap()
}

/// The titles of the task rows on a list page, in order.
fn titles(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<td class=\"subject\"><a href=\"/portal/tasks/") {
        rest = &rest[start + "<td class=\"subject\"><a href=\"".len()..];
        let open = rest.find("\">").unwrap() + 2;
        let close = rest[open..].find("</a>").unwrap() + open;
        out.push(rest[open..close].to_string());
        rest = &rest[close..];
    }
    out
}

/// The edit form's fields as loaded (`was_*` and the values), with `changes` applied.
fn edit_form(page: &str, changes: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    for name in ["title", "priority", "status", "assignee", "ticket", "due"] {
        let was = field_value(page, &format!("was_{name}")).unwrap_or_default();
        fields.push((format!("was_{name}"), was.clone()));
        let value = changes
            .iter()
            .find(|(k, _)| *k == name)
            .map_or(was, |(_, v)| v.to_string());
        fields.push((name.to_string(), value));
    }
    let description = field_value(page, "was_description").unwrap_or_default();
    fields.push(("was_description".into(), description.clone()));
    let new_description = changes
        .iter()
        .find(|(k, _)| *k == "description")
        .map_or(description, |(_, v)| v.to_string());
    fields.push(("description".into(), new_description));
    fields
}

async fn post_owned(
    portal: &Portal,
    browser: &Browser,
    path: &str,
    fields: &[(String, String)],
) -> crate::support::portal::Response {
    let borrowed: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    portal.post(browser, path, &borrowed).await
}

async fn disable(portal: &Portal, email: &str) {
    let id = user_id(portal, email).await;
    let mut conn = portal.store().acquire().await.unwrap();
    users::set_active(&mut conn, id, false, unix_now())
        .await
        .unwrap();
}

#[tokio::test]
async fn every_task_route_checks_the_role() {
    let portal = Portal::new().await;
    let admin = portal.sign_in(ADMIN).await;
    let staff = portal.sign_in(STAFF).await;
    let disabled = portal.sign_in(DISABLED).await;
    disable(&portal, DISABLED).await;
    let anonymous = Browser::default();
    let by_admin = create(&portal, &admin, &[("title", "Admin's task")]).await;
    let a = by_admin.to_string();
    let ok = StatusCode::OK;
    let see = StatusCode::SEE_OTHER;
    let edit = vec![
        ("title", "Renamed"),
        ("was_title", "Admin's task"),
        ("description", ""),
        ("was_description", ""),
        ("priority", "high"),
        ("was_priority", "medium"),
        ("status", "todo"),
        ("was_status", "todo"),
        ("assignee", ""),
        ("was_assignee", ""),
        ("ticket", ""),
        ("was_ticket", ""),
        ("due", ""),
        ("was_due", ""),
    ];
    let routes: Vec<Route> = vec![
        ("GET", "/portal/tasks".into(), vec![], ok, ok),
        ("GET", "/portal/tasks/new".into(), vec![], ok, ok),
        ("GET", "/portal/tasks/new?ticket=3".into(), vec![], ok, ok),
        ("GET", format!("/portal/tasks/{a}"), vec![], ok, ok),
        (
            "GET",
            "/portal/tasks/999999".into(),
            vec![],
            StatusCode::NOT_FOUND,
            StatusCode::NOT_FOUND,
        ),
        (
            "POST",
            "/portal/tasks".into(),
            vec![("title", "Another")],
            see,
            see,
        ),
        ("POST", format!("/portal/tasks/{a}"), edit, see, see),
        (
            "POST",
            format!("/portal/tasks/{a}/status"),
            vec![("status", "in_progress"), ("was_status", "todo")],
            see,
            see,
        ),
        // Staff may not delete what an admin created; the admin may.
        (
            "POST",
            format!("/portal/tasks/{a}/delete"),
            vec![],
            StatusCode::FORBIDDEN,
            see,
        ),
    ];
    check_routes(&portal, &routes, [&anonymous, &disabled, &staff, &admin]).await;
    // The admin's delete went through; the staff member's changes did too.
    let mut conn = portal.store().acquire().await.unwrap();
    assert!(tasks::get(&mut conn, by_admin).await.is_err());
    drop(conn);
    // Anonymous requests changed nothing: only the two signed-in creations exist.
    let mut conn = portal.store().acquire().await.unwrap();
    let titles: Vec<String> = sqlx::query_scalar("SELECT title FROM tasks ORDER BY id")
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    assert_eq!(titles, vec!["Another", "Another"]);
    drop(conn);
    // The navigation leads to the tasks.
    let page = portal.get(&staff, "/portal").await;
    assert!(page.body.contains("<a href=\"/portal/tasks\""), "nav link");
    let page = portal.get(&staff, "/portal/tasks").await;
    assert!(page
        .body
        .contains("href=\"/portal/tasks\" aria-current=\"page\""));
    // A POST without the CSRF token is refused.
    let refused = portal
        .post(
            &staff,
            "/portal/tasks",
            &[("csrf", "forged"), ("title", "x")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn bad_input_is_refused_with_the_field_named_and_the_input_kept() {
    let portal = Portal::new().await;
    let sam = portal.sign_in(STAFF).await;
    let source = portal
        .ingest(&customer_mail(
            "cora@example.net",
            "v1@x",
            "Old",
            "Old one.",
        ))
        .await;
    let target = portal
        .ingest(&customer_mail(
            "cora@example.net",
            "v2@x",
            "New",
            "New one.",
        ))
        .await;
    let merged = portal
        .post(
            &sam,
            &format!("/portal/tickets/{source}/merge"),
            &[("target", &target.to_string())],
        )
        .await;
    assert_eq!(merged.status, StatusCode::SEE_OTHER, "{}", merged.body);
    disable(&portal, DISABLED).await;
    let disabled_id = user_id(&portal, DISABLED).await.to_string();
    let long_title = "x".repeat(201);
    let long_description = "y".repeat(20_001);
    let source_ref = source.to_string();
    let cases: Vec<(Fields, &str, &str)> = vec![
        (vec![("title", "  ")], "title", "a title is required"),
        (
            vec![("title", long_title.as_str())],
            "title",
            "at most 200 characters (this one has 201)",
        ),
        (
            vec![("title", "two\nlines")],
            "title",
            "the title must be one line",
        ),
        (
            vec![("title", "ok"), ("description", long_description.as_str())],
            "description",
            "at most 20000 characters",
        ),
        (
            vec![("title", "ok"), ("due", "2026-02-30")],
            "due",
            "February 2026 has no day 30",
        ),
        (
            vec![("title", "ok"), ("due", "next week")],
            "due",
            "is not a date (expected YYYY-MM-DD)",
        ),
        (
            vec![("title", "ok"), ("ticket", "#999")],
            "ticket",
            "there is no ticket #999",
        ),
        (
            vec![("title", "ok"), ("ticket", source_ref.as_str())],
            "ticket",
            "was merged into",
        ),
        (
            vec![("title", "ok"), ("assignee", "999")],
            "assignee",
            "there is no user 999",
        ),
        (
            vec![("title", "ok"), ("assignee", disabled_id.as_str())],
            "assignee",
            "Dee Disabled is disabled",
        ),
        (
            vec![("title", "ok"), ("priority", "urgent")],
            "priority",
            "is not a valid task priority",
        ),
        (
            vec![("title", "ok"), ("status", "blocked")],
            "status",
            "is not a valid task status",
        ),
    ];
    for (fields, field, message) in &cases {
        let response = portal.post(&sam, "/portal/tasks", fields).await;
        assert_eq!(
            response.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}: {}",
            response.body
        );
        assert!(
            response.body.contains(message),
            "{field}: {message:?} missing"
        );
        assert!(
            response.body.contains("class=\"field-error\""),
            "{field}: shown next to the field"
        );
    }
    // Several mistakes at once: each named, everything typed kept.
    let response = portal
        .post(
            &sam,
            "/portal/tasks",
            &[
                ("title", ""),
                ("description", "Keep this text"),
                ("due", "2026-13-01"),
                ("priority", "high"),
            ],
        )
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.body.contains("a title is required"));
    assert!(response.body.contains("there is no month 13"));
    assert!(response.body.contains(">Keep this text</textarea>"));
    assert!(response.body.contains("value=\"2026-13-01\""));
    assert!(response.body.contains("<option value=\"high\" selected>"));
    let mut conn = portal.store().acquire().await.unwrap();
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tasks")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(count, 0, "nothing invalid was stored");
    drop(conn);
    // Valid: a leap day, a ticket written as #ref, a title with surrounding space.
    let id = create(
        &portal,
        &sam,
        &[
            ("title", "  Order toner  "),
            ("due", "2028-02-29"),
            ("ticket", &format!("#{target}")),
            ("priority", "low"),
        ],
    )
    .await;
    let t = task(&portal, id).await;
    assert_eq!(t.title, "Order toner");
    assert_eq!(t.due_date.as_deref(), Some("2028-02-29"));
    assert_eq!(t.ticket_id, Some(target));
    assert_eq!(t.priority.as_str(), "low");
    assert_eq!(t.status.as_str(), "todo");
    // A bad value in an edit: 422, the field named, the input kept, nothing saved.
    let page = portal.get(&sam, &format!("/portal/tasks/{id}")).await;
    let form = edit_form(
        &page.body,
        &[("title", "Order more toner"), ("due", "2027-02-29")],
    );
    let response = post_owned(&portal, &sam, &format!("/portal/tasks/{id}"), &form).await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.body.contains("February 2027 has no day 29"));
    assert!(response.body.contains("value=\"Order more toner\""));
    assert_eq!(task(&portal, id).await.title, "Order toner");
    // Bad ids and filters are refused, not a panic.
    assert_eq!(
        portal.get(&sam, "/portal/tasks/abc").await.status,
        StatusCode::NOT_FOUND
    );
    for (query, field) in [
        ("status=blocked", "status"),
        ("assignee=someone", "assignee"),
        ("priority=urgent", "priority"),
        ("sort=random", "sort"),
        ("overdue=maybe", "overdue"),
        ("page=0", "page"),
    ] {
        let response = portal.get(&sam, &format!("/portal/tasks?{query}")).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(response.body.contains(&format!("{field}:")), "{query}");
    }
}

#[tokio::test]
async fn two_editors_never_silently_overwrite_each_other() {
    let portal = Portal::new().await;
    let ada = portal.sign_in(ADMIN).await;
    let sam = portal.sign_in(STAFF).await;
    let id = create(&portal, &ada, &[("title", "Replace the fuser")]).await;
    let path = format!("/portal/tasks/{id}");
    let ada_page = portal.get(&ada, &path).await.body;
    let sam_page = portal.get(&sam, &path).await.body;
    // Sam renames it first.
    let sam_form = edit_form(&sam_page, &[("title", "Replace the fuser unit")]);
    let saved = post_owned(&portal, &sam, &path, &sam_form).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    // Ada, from her stale page, renames it too: refused, her input kept, the page
    // says what it is now.
    let ada_form = edit_form(&ada_page, &[("title", "Call the technician")]);
    let refused = post_owned(&portal, &ada, &path, &ada_form).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("someone else changed the title to &#34;Replace the fuser unit&#34;")
            || refused
                .body
                .contains("someone else changed the title to &quot;Replace the fuser unit&quot;"),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("value=\"Call the technician\""));
    assert_eq!(task(&portal, id).await.title, "Replace the fuser unit");
    // A change to another field from the same stale page goes through: only the
    // fields she changed are checked.
    let ada_form = edit_form(&ada_page, &[("priority", "high")]);
    let saved = post_owned(&portal, &ada, &path, &ada_form).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let t = task(&portal, id).await;
    assert_eq!(
        (t.title.as_str(), t.priority.as_str()),
        ("Replace the fuser unit", "high")
    );
    // Saving again from the conflict page (which now carries the current values) is a
    // knowing overwrite.
    // (what she typed is still in the box)
    let ada_form = edit_form(&refused.body, &[("title", "Call the technician")]);
    let saved = post_owned(&portal, &ada, &path, &ada_form).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert_eq!(task(&portal, id).await.title, "Call the technician");
    // The status buttons check too.
    let moved = portal
        .post(
            &sam,
            &format!("{path}/status"),
            &[("status", "in_progress"), ("was_status", "todo")],
        )
        .await;
    assert_eq!(moved.status, StatusCode::SEE_OTHER);
    assert!(moved.location().contains("done=marked_in_progress"));
    let page = portal.get(&sam, moved.location()).await;
    assert!(page.body.contains("Marked in progress."), "{}", page.body);
    let stale = portal
        .post(
            &ada,
            &format!("{path}/status"),
            &[("status", "done"), ("was_status", "todo")],
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{}", stale.body);
    assert!(stale
        .body
        .contains("someone else changed the status to in progress"));
    assert_eq!(task(&portal, id).await.status.as_str(), "in_progress");
}

#[tokio::test]
async fn only_the_creator_or_an_admin_deletes_a_task() {
    let portal = Portal::new().await;
    let ada = portal.sign_in(ADMIN).await;
    let sam = portal.sign_in(STAFF).await;
    let ticket = portal
        .ingest(&customer_mail(
            "cora@example.net",
            "d1@x",
            "Fax",
            "Fax is dead.",
        ))
        .await;
    let t = ticket.to_string();
    let sams = create(&portal, &sam, &[("title", "Sam's own"), ("ticket", &t)]).await;
    let adas = create(&portal, &ada, &[("title", "Ada's own")]).await;
    let also_sams = create(&portal, &sam, &[("title", "Sam's second")]).await;
    // The delete button is offered only to those who may use it.
    let page = portal.get(&sam, &format!("/portal/tasks/{adas}")).await;
    assert!(!page.body.contains("Delete this task"));
    let page = portal.get(&sam, &format!("/portal/tasks/{sams}")).await;
    assert!(page.body.contains("Delete this task"));
    let page = portal
        .get(&ada, &format!("/portal/tasks/{also_sams}"))
        .await;
    assert!(page.body.contains("Delete this task"));
    // Another staff member: refused, the task stays.
    let refused = portal
        .post(&sam, &format!("/portal/tasks/{adas}/delete"), &[])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.body.contains("delete a task someone else created"));
    assert_eq!(task(&portal, adas).await.title, "Ada's own");
    // The creator: deleted, and the linked ticket's history says so.
    let deleted = portal
        .post(&sam, &format!("/portal/tasks/{sams}/delete"), &[])
        .await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    assert!(deleted.location().starts_with("/portal/tasks?done="));
    let page = portal.get(&sam, &format!("/portal/tickets/{ticket}")).await;
    assert!(
        page.body
            .contains(&format!("deleted task #{sams} “Sam&#39;s own”"))
            || page
                .body
                .contains(&format!("deleted task #{sams} “Sam&#x27;s own”")),
        "history: {}",
        page.body
    );
    // An admin may delete anyone's.
    let deleted = portal
        .post(&ada, &format!("/portal/tasks/{also_sams}/delete"), &[])
        .await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    // Gone is gone.
    let again = portal
        .post(&ada, &format!("/portal/tasks/{also_sams}/delete"), &[])
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_list_filters_and_sorts() {
    let portal = Portal::new().await;
    let ada = portal.sign_in(ADMIN).await;
    let sam = portal.sign_in(STAFF).await;
    let ada_id = user_id(&portal, ADMIN).await.to_string();
    let sam_id = user_id(&portal, STAFF).await.to_string();
    // (title, assignee, priority, due, status)
    let rows = [
        (
            "Late high for Sam",
            sam_id.as_str(),
            "high",
            "2020-01-10",
            "todo",
        ),
        (
            "Late low for Ada",
            ada_id.as_str(),
            "low",
            "2020-01-05",
            "in_progress",
        ),
        (
            "Future medium for Sam",
            sam_id.as_str(),
            "medium",
            "2999-06-01",
            "todo",
        ),
        ("Undated for nobody", "", "high", "", "todo"),
        (
            "Done late for Sam",
            sam_id.as_str(),
            "medium",
            "2020-01-01",
            "done",
        ),
    ];
    for (title, assignee, priority, due, status) in rows {
        create(
            &portal,
            &ada,
            &[
                ("title", title),
                ("assignee", assignee),
                ("priority", priority),
                ("due", due),
                ("status", status),
            ],
        )
        .await;
    }
    let list = |query: &'static str| {
        let portal = &portal;
        let sam = &sam;
        async move {
            let page = portal.get(sam, &format!("/portal/tasks?{query}")).await;
            assert_eq!(page.status, StatusCode::OK, "{query}: {}", page.body);
            (titles(&page.body), page.body)
        }
    };
    // Default: open tasks, soonest due first, undated last.
    let (default, body) = list("").await;
    assert_eq!(
        default,
        vec![
            "Late low for Ada",
            "Late high for Sam",
            "Future medium for Sam",
            "Undated for nobody"
        ]
    );
    // Overdue rows stand out: a class, and the word.
    assert_eq!(body.matches("<tr class=\"overdue\">").count(), 2);
    assert_eq!(body.matches(">overdue</strong>").count(), 2);
    assert_eq!(
        list("assignee=mine").await.0,
        vec!["Late high for Sam", "Future medium for Sam"]
    );
    assert_eq!(
        list("assignee=unassigned").await.0,
        vec!["Undated for nobody"]
    );
    assert_eq!(
        list("overdue=1").await.0,
        vec!["Late low for Ada", "Late high for Sam"]
    );
    assert_eq!(
        list("overdue=1&assignee=mine").await.0,
        vec!["Late high for Sam"]
    );
    assert_eq!(list("status=done").await.0, vec!["Done late for Sam"]);
    assert_eq!(list("status=in_progress").await.0, vec!["Late low for Ada"]);
    assert_eq!(list("status=any").await.0.len(), 5);
    assert_eq!(
        list("priority=high").await.0,
        vec!["Late high for Sam", "Undated for nobody"]
    );
    assert_eq!(
        list("sort=priority").await.0,
        vec![
            "Late high for Sam",
            "Undated for nobody",
            "Future medium for Sam",
            "Late low for Ada"
        ]
    );
    assert_eq!(
        list("sort=created&status=any").await.0,
        vec![
            "Done late for Sam",
            "Undated for nobody",
            "Future medium for Sam",
            "Late low for Ada",
            "Late high for Sam"
        ]
    );
    // The form shows the chosen filters.
    let (_, body) = list("overdue=1&assignee=mine&sort=priority").await;
    assert!(body.contains("name=\"overdue\" value=\"1\" checked"));
    assert!(body.contains("<option value=\"mine\" selected>"));
    assert!(body.contains("<option value=\"priority\" selected>"));
    // Updated: the task changed last comes first.
    let mut conn = portal.store().acquire().await.unwrap();
    sqlx::query("UPDATE tasks SET updated_at = updated_at + 100 WHERE title = 'Late low for Ada'")
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);
    assert_eq!(list("sort=updated").await.0[0], "Late low for Ada");
}

#[tokio::test]
async fn pages_of_tasks_follow_each_other() {
    let portal = Portal::new().await;
    let sam = portal.sign_in(STAFF).await;
    let sam_id = user_id(&portal, STAFF).await;
    {
        let mut conn = portal.store().acquire().await.unwrap();
        for i in 0..55 {
            let title = format!("Task {i:02}");
            tasks::insert(
                &mut conn,
                &tasks::NewTask {
                    title: &title,
                    description: "",
                    priority: maildesk::domain::TaskPriority::Medium,
                    status: maildesk::domain::TaskStatus::Todo,
                    creator_id: sam_id,
                    assignee_id: None,
                    ticket_id: None,
                    due_date: None,
                },
                1_000 + i,
            )
            .await
            .unwrap();
        }
    }
    let first = portal.get(&sam, "/portal/tasks?sort=created").await;
    assert_eq!(titles(&first.body).len(), 50);
    assert_eq!(titles(&first.body)[0], "Task 54");
    let next = first.body.split("rel=\"next\"").next().unwrap();
    let next = &next[next.rfind("href=\"").unwrap()..];
    assert!(
        next.starts_with("href=\"/portal/tasks?sort=created&") && next.contains("page=2\""),
        "{next}"
    );
    let second = portal.get(&sam, "/portal/tasks?sort=created&page=2").await;
    assert_eq!(
        titles(&second.body),
        vec!["Task 04", "Task 03", "Task 02", "Task 01", "Task 00"]
    );
    assert!(second.body.contains("Previous page"));
    assert!(!second.body.contains("Next page"));
}

#[tokio::test]
async fn a_ticket_lists_its_tasks_and_creates_linked_ones() {
    let portal = Portal::new().await;
    let sam = portal.sign_in(STAFF).await;
    let ada_id = user_id(&portal, ADMIN).await.to_string();
    let ticket = portal
        .ingest(&customer_mail(
            "cora@example.net",
            "k1@x",
            "Scanner",
            "Scanner jams.",
        ))
        .await;
    let page = portal.get(&sam, &format!("/portal/tickets/{ticket}")).await;
    assert!(page.body.contains("<h2>Tasks</h2>"));
    assert!(page.body.contains("No tasks yet."));
    assert!(page.body.contains("name=\"back\" value=\"ticket\""));
    // The ticket page's small form: back to the ticket, the task listed there.
    let response = portal
        .post(
            &sam,
            "/portal/tasks",
            &[
                ("title", "Order a new roller"),
                ("assignee", &ada_id),
                ("due", "2020-03-01"),
                ("priority", "high"),
                ("ticket", &ticket.to_string()),
                ("back", "ticket"),
            ],
        )
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER, "{}", response.body);
    assert_eq!(
        response.location(),
        format!("/portal/tickets/{ticket}?done=task_created&n=1#tasks")
    );
    let page = portal.get(&sam, &format!("/portal/tickets/{ticket}")).await;
    assert!(page
        .body
        .contains("<a href=\"/portal/tasks/1\">Order a new roller</a>"));
    assert!(page.body.contains("Ada Admin · due 2020-03-01"));
    assert!(page.body.contains("<li class=\"overdue\">"));
    assert!(page.body.contains(">overdue</strong>"));
    assert!(page.body.contains("created task #1 “Order a new roller”"));
    // Status changes show on the ticket, in its task list and its history.
    let done = portal
        .post(
            &sam,
            "/portal/tasks/1/status",
            &[("status", "done"), ("was_status", "todo")],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let page = portal.get(&sam, &format!("/portal/tickets/{ticket}")).await;
    assert!(page
        .body
        .contains("<span class=\"status s-done\">done</span>"));
    assert!(
        !page.body.contains("<li class=\"overdue\">"),
        "done is never overdue"
    );
    assert!(page
        .body
        .contains("marked task #1 “Order a new roller” done"));
    // A mistake in the ticket's form: the full form, with the ticket kept.
    let refused = portal
        .post(
            &sam,
            "/portal/tasks",
            &[
                ("title", ""),
                ("ticket", &ticket.to_string()),
                ("back", "ticket"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused
        .body
        .contains(&format!("name=\"ticket\" value=\"{ticket}\"")));
    assert!(refused.body.contains("name=\"back\" value=\"ticket\""));
    // "more fields" opens the full form for this ticket.
    let new = portal
        .get(&sam, &format!("/portal/tasks/new?ticket={ticket}"))
        .await;
    assert!(new
        .body
        .contains(&format!("name=\"ticket\" value=\"{ticket}\"")));
    // Merging the ticket takes its tasks along.
    let other = portal
        .ingest(&customer_mail(
            "cora@example.net",
            "k2@x",
            "Scanner again",
            "Still.",
        ))
        .await;
    let merged = portal
        .post(
            &sam,
            &format!("/portal/tickets/{ticket}/merge"),
            &[("target", &other.to_string())],
        )
        .await;
    assert_eq!(merged.status, StatusCode::SEE_OTHER);
    assert_eq!(task(&portal, 1).await.ticket_id, Some(other));
    let page = portal.get(&sam, &format!("/portal/tickets/{other}")).await;
    assert!(page.body.contains("Order a new roller"));
    // Moving a task to another ticket is recorded on both.
    let third = portal
        .ingest(&customer_mail(
            "cora@example.net",
            "k3@x",
            "Toner",
            "Empty.",
        ))
        .await;
    let task_page = portal.get(&sam, "/portal/tasks/1").await;
    let form = edit_form(&task_page.body, &[("ticket", &format!("#{third}"))]);
    let moved = post_owned(&portal, &sam, "/portal/tasks/1", &form).await;
    assert_eq!(moved.status, StatusCode::SEE_OTHER, "{}", moved.body);
    let page = portal.get(&sam, &format!("/portal/tickets/{other}")).await;
    assert!(page
        .body
        .contains(&format!("moved task #1 “Order a new roller” to #{third}")));
    let page = portal.get(&sam, &format!("/portal/tickets/{third}")).await;
    assert!(page.body.contains("linked task #1 “Order a new roller”"));
}

/// The task mails in the outbox: (recipient, raw text).
async fn task_mail(portal: &Portal) -> Vec<(String, String)> {
    let mut conn = portal.store().acquire().await.unwrap();
    let rows: Vec<(String, Vec<u8>)> =
        sqlx::query_as("SELECT recipient, raw FROM outbox WHERE kind = 'task' ORDER BY id")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    rows.into_iter()
        .map(|(r, raw)| (r, String::from_utf8_lossy(&raw).into_owned()))
        .collect()
}

#[tokio::test]
async fn the_assignee_hears_of_a_task_unless_they_took_it_themselves() {
    let portal = Portal::with_config("[web]\npublic_url = \"https://help.example.com\"\n").await;
    let ada = portal.sign_in(ADMIN).await;
    let sam = portal.sign_in(STAFF).await;
    let ada_id = user_id(&portal, ADMIN).await.to_string();
    let sam_id = user_id(&portal, STAFF).await.to_string();
    let ticket = portal
        .ingest(&customer_mail(
            "cora@example.net",
            "n1@x",
            "Monitor flickers",
            "Help.",
        ))
        .await;
    let woken = portal.wake.notified();
    let id = create(
        &portal,
        &ada,
        &[
            ("title", "Swap the monitor"),
            ("assignee", &sam_id),
            ("due", "2030-05-06"),
            ("priority", "high"),
            ("ticket", &ticket.to_string()),
        ],
    )
    .await;
    tokio::time::timeout(std::time::Duration::from_secs(1), woken)
        .await
        .expect("the outbox worker is woken");
    let mails = task_mail(&portal).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    let (recipient, raw) = &mails[0];
    assert_eq!(recipient, STAFF);
    for part in [
        "Subject: Task for you: Swap the monitor",
        "Ada Admin assigned a task to you.",
        "Due:      2030-05-06",
        "Priority: high",
        &format!("Ticket:   #{ticket} Monitor flickers"),
        &format!("https://help.example.com/portal/tasks/{id}"),
        "Auto-Submitted: auto-generated",
    ] {
        assert!(raw.contains(part), "{part:?} missing from {raw}");
    }
    // Taking a task oneself: no mail.
    create(&portal, &sam, &[("title", "Mine"), ("assignee", &sam_id)]).await;
    assert_eq!(task_mail(&portal).await.len(), 1);
    // Reassigning in an edit mails the new assignee; an edit that keeps them does not.
    let page = portal.get(&sam, &format!("/portal/tasks/{id}")).await;
    let form = edit_form(&page.body, &[("assignee", &ada_id)]);
    let saved = post_owned(&portal, &sam, &format!("/portal/tasks/{id}"), &form).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let page = portal.get(&sam, &format!("/portal/tasks/{id}")).await;
    let form = edit_form(&page.body, &[("title", "Swap the monitor today")]);
    let saved = post_owned(&portal, &sam, &format!("/portal/tasks/{id}"), &form).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let mails = task_mail(&portal).await;
    assert_eq!(
        mails.iter().map(|m| m.0.as_str()).collect::<Vec<_>>(),
        vec![STAFF, ADMIN]
    );
    assert!(mails[1].1.contains("Sam Staff assigned a task to you."));
}

#[tokio::test]
async fn task_mail_can_be_switched_off() {
    let portal = Portal::with_config("[outbound]\ntask_notifications = false\n").await;
    let ada = portal.sign_in(ADMIN).await;
    let sam_id = user_id(&portal, STAFF).await.to_string();
    create(&portal, &ada, &[("title", "Quiet"), ("assignee", &sam_id)]).await;
    assert!(task_mail(&portal).await.is_empty());
    // Without a public URL the mail has no link (checked by the unit test); without
    // [smtp] nothing is queued at all.
}

#[tokio::test]
async fn the_dashboard_shows_my_tasks_and_the_overdue_ones() {
    let portal = Portal::new().await;
    let ada = portal.sign_in(ADMIN).await;
    let sam = portal.sign_in(STAFF).await;
    let sam_id = user_id(&portal, STAFF).await.to_string();
    let ada_id = user_id(&portal, ADMIN).await.to_string();
    let page = portal.get(&sam, "/portal").await;
    assert!(page.body.contains("<strong>0</strong> my open tasks"));
    assert!(page.body.contains("<strong>0</strong> overdue tasks"));
    assert!(!page.body.contains("<h2>Overdue tasks</h2>"));
    create(
        &portal,
        &ada,
        &[
            ("title", "Ada is late"),
            ("assignee", &ada_id),
            ("due", "2020-01-01"),
        ],
    )
    .await;
    create(
        &portal,
        &ada,
        &[
            ("title", "Sam is late"),
            ("assignee", &sam_id),
            ("due", "2021-01-01"),
        ],
    )
    .await;
    create(
        &portal,
        &ada,
        &[
            ("title", "Sam has time"),
            ("assignee", &sam_id),
            ("due", "2999-01-01"),
        ],
    )
    .await;
    let page = portal.get(&sam, "/portal").await;
    assert!(page.body.contains("<strong>2</strong> my open tasks"));
    assert!(page.body.contains(
        "<li class=\"alert\"><a href=\"/portal/tasks?overdue=1\"><strong>2</strong> overdue tasks"
    ));
    assert!(page.body.contains("<h2>Overdue tasks</h2>"));
    // Mine first, then the others; each row marked.
    let sam_at = page.body.find("Sam is late").unwrap();
    let ada_at = page.body.find("Ada is late").unwrap();
    assert!(sam_at < ada_at, "the viewer's own overdue task comes first");
    assert!(!page.body.contains("Sam has time"));
    assert_eq!(page.body.matches("<tr class=\"overdue\">").count(), 2);
    assert!(page.body.contains("<strong>you</strong>"));
}
