//! `/portal/tasks`: internal tasks — the list with its filters, the new-task form, one
//! task with its edit form, status buttons and delete. The rules live in
//! [`crate::helpdesk::tasks`]; handlers parse, call them, and render.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum_extra::extract::{Form, Query};
use serde::Deserialize;

use crate::domain::{TaskPriority, TaskStatus};
use crate::helpdesk::tasks::{self as rules, Edit, FieldError, TaskError, TaskInput};
use crate::store::jobs::JobKind;
use crate::store::queue::AssigneeFilter;
use crate::store::tasks::{self, Field, Sort, StatusFilter, Task};
use crate::store::unix_now;
use crate::web::auth::Staff;
use crate::web::error::{WebError, WebResult};
use crate::web::portal::queue::{user_choices, UserChoice};
use crate::web::view::{self, Nav, Notice};
use crate::web::AppState;

pub const PAGE_SIZE: i64 = 50;

impl From<TaskError> for WebError {
    fn from(e: TaskError) -> Self {
        match e {
            TaskError::Invalid(_) => WebError::BadRequest(e.to_string()),
            TaskError::Conflict(_) => WebError::Conflict(e.to_string()),
            TaskError::Action(e) => e.into(),
        }
    }
}

pub(in crate::web) fn context(state: &AppState) -> rules::Context<'_> {
    rules::Context {
        outbound: state.outbound(),
        portal_url: state.config.web.public_url.as_deref(),
        now: unix_now(),
    }
}

fn task_statuses() -> Vec<(&'static str, String)> {
    TaskStatus::ALL
        .iter()
        .map(|s| (s.as_str(), rules::status_label(s.as_str())))
        .collect()
}

fn task_priorities() -> Vec<&'static str> {
    TaskPriority::ALL.iter().map(|p| p.as_str()).collect()
}

fn selected(current: &str, value: &str) -> &'static str {
    if current == value {
        "selected"
    } else {
        ""
    }
}

/// The first message for `field` among `errors`.
fn error_for<'a>(errors: &'a [FieldError], field: &str) -> Option<&'a str> {
    errors
        .iter()
        .find(|e| e.field == field)
        .map(|e| e.message.as_str())
}

fn task_id(text: &str) -> WebResult<i64> {
    text.trim()
        .trim_start_matches('#')
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| WebError::NotFound(format!("there is no task {text:?}")))
}

// ---- the list ----

/// The list's address bar: every filter as typed.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub assignee: String,
    #[serde(default)]
    pub priority: String,
    #[serde(default)]
    pub overdue: String,
    #[serde(default)]
    pub sort: String,
    #[serde(default)]
    pub page: String,
}

impl ListQuery {
    pub(in crate::web) fn filter(&self, me: i64, today: &str) -> WebResult<tasks::Filter> {
        let bad = |field: &str, value: &str| {
            WebError::BadRequest(format!("{field}: {value:?} is not a valid choice"))
        };
        let status = match self.status.as_str() {
            "" | "open" => StatusFilter::Open,
            "any" => StatusFilter::Any,
            other => StatusFilter::Only(other.parse().map_err(|_| bad("status", other))?),
        };
        let assignee = match self.assignee.as_str() {
            "" | "any" => AssigneeFilter::Anyone,
            "mine" => AssigneeFilter::User(me),
            "unassigned" => AssigneeFilter::Unassigned,
            other => AssigneeFilter::User(other.parse().map_err(|_| bad("assignee", other))?),
        };
        let priority = match self.priority.as_str() {
            "" => None,
            other => Some(other.parse().map_err(|_| bad("priority", other))?),
        };
        let overdue_on = match self.overdue.as_str() {
            "" | "0" => None,
            "1" | "on" => Some(today.to_string()),
            other => return Err(bad("overdue", other)),
        };
        let sort = match self.sort.as_str() {
            "" => Sort::default(),
            other => Sort::parse(other).ok_or_else(|| bad("sort", other))?,
        };
        Ok(tasks::Filter {
            status,
            assignee,
            priority,
            overdue_on,
            sort,
        })
    }

    fn page_number(&self) -> WebResult<i64> {
        match self.page.as_str() {
            "" => Ok(1),
            text => text
                .parse::<i64>()
                .ok()
                .filter(|p| (1..=100_000).contains(p))
                .ok_or_else(|| WebError::BadRequest(format!("page: {text:?} is not a page"))),
        }
    }

    /// This view's address on page `page`.
    fn link(&self, page: i64) -> String {
        let mut out = view::filter_query(&[
            ("status", &self.status),
            ("assignee", &self.assignee),
            ("priority", &self.priority),
            ("overdue", &self.overdue),
            ("sort", &self.sort),
        ]);
        if page > 1 {
            out.append_pair("page", &page.to_string());
        }
        format!("/portal/tasks?{}", out.finish())
    }
}

#[derive(Template)]
#[template(path = "web/tasks.html")]
struct ListPage {
    nav: Option<Nav>,
    query: ListQuery,
    rows: Vec<Task>,
    users: Vec<UserChoice>,
    statuses: Vec<(&'static str, String)>,
    priorities: Vec<&'static str>,
    sorts: Vec<(&'static str, &'static str)>,
    next_page: Option<String>,
    previous_page: Option<String>,
    today: String,
    now: i64,
    notice: Option<String>,
}

impl ListPage {
    fn selected(&self, current: &str, value: &str) -> &'static str {
        selected(current, value)
    }

    fn ago(&self, t: &i64) -> String {
        view::ago(*t, self.now)
    }

    fn status_label(&self, status: &str) -> String {
        rules::status_label(status)
    }
}

pub async fn list(
    State(state): State<AppState>,
    staff: Staff,
    Query(query): Query<ListQuery>,
    notice: Option<Notice>,
) -> WebResult<Html<String>> {
    let now = unix_now();
    let today = rules::today(now);
    let filter = query.filter(staff.user().id, &today)?;
    let page = query.page_number()?;
    let mut conn = state.store.acquire().await?;
    let (rows, more) = tasks::list(&mut conn, &filter, (page - 1) * PAGE_SIZE, PAGE_SIZE).await?;
    let users = user_choices(&mut conn).await?;
    let page = ListPage {
        nav: Some(Nav::new(&state, &staff, "tasks")),
        next_page: more.then(|| query.link(page + 1)),
        previous_page: (page > 1).then(|| query.link(page - 1)),
        query,
        rows,
        users,
        statuses: task_statuses(),
        priorities: task_priorities(),
        sorts: Sort::ALL.iter().map(|s| (s.1, s.2)).collect(),
        today,
        now,
        notice: notice.and_then(Notice::staff_text),
    };
    Ok(Html(page.render()?))
}

// ---- creating ----

#[derive(Template)]
#[template(path = "web/task_new.html")]
struct NewPage {
    nav: Option<Nav>,
    input: TaskInput,
    errors: Vec<FieldError>,
    users: Vec<UserChoice>,
    statuses: Vec<(&'static str, String)>,
    priorities: Vec<&'static str>,
    /// Back to the linked ticket once created.
    back: String,
    csrf: String,
}

impl NewPage {
    fn selected(&self, current: &str, value: &str) -> &'static str {
        selected(current, value)
    }

    fn error_for(&self, field: &str) -> Option<&str> {
        error_for(&self.errors, field)
    }
}

#[derive(Debug, Deserialize, Default)]
pub struct NewQuery {
    #[serde(default)]
    ticket: String,
}

pub async fn new_form(
    State(state): State<AppState>,
    staff: Staff,
    Query(query): Query<NewQuery>,
) -> WebResult<Response> {
    let input = TaskInput {
        priority: TaskPriority::Medium.as_str().into(),
        status: TaskStatus::Todo.as_str().into(),
        ticket: query.ticket.trim().trim_start_matches('#').to_string(),
        ..TaskInput::default()
    };
    let back = if input.ticket.is_empty() {
        ""
    } else {
        "ticket"
    };
    render_new(&state, &staff, input, Vec::new(), back, StatusCode::OK).await
}

async fn render_new(
    state: &AppState,
    staff: &Staff,
    input: TaskInput,
    errors: Vec<FieldError>,
    back: &str,
    status: StatusCode,
) -> WebResult<Response> {
    let mut conn = state.store.acquire().await?;
    let users = user_choices(&mut conn).await?;
    let page = NewPage {
        nav: Some(Nav::new(state, staff, "tasks")),
        input,
        errors,
        users,
        statuses: task_statuses(),
        priorities: task_priorities(),
        back: back.into(),
        csrf: staff.csrf.clone(),
    };
    Ok((status, Html(page.render()?)).into_response())
}

#[derive(Debug, Deserialize)]
pub struct CreateForm {
    #[serde(flatten)]
    input: TaskInput,
    /// `ticket`: back to the linked ticket's page (its "add task" form).
    #[serde(default)]
    back: String,
}

pub async fn create(
    State(state): State<AppState>,
    staff: Staff,
    Form(form): Form<CreateForm>,
) -> WebResult<Response> {
    let ctx = context(&state);
    let mut tx = state.store.unit_of_work(&state.wake).await?;
    match rules::create(&mut tx, &ctx, &staff.actor, &form.input).await {
        Ok(id) => {
            tx.queued(JobKind::Outbox);
            tx.commit().await?;
            let ticket = crate::helpdesk::ticket_views::parse_ref(&form.input.ticket);
            let created = Notice::TaskCreated { task: id };
            Ok(match (form.back.as_str(), ticket) {
                // The notice, then the ticket's task list in view.
                ("ticket", Some(ticket)) => axum::response::Redirect::to(&format!(
                    "{}#tasks",
                    crate::web::notice::link(&format!("/portal/tickets/{ticket}"), &created)
                )),
                _ => view::done(&format!("/portal/tasks/{id}"), created),
            }
            .into_response())
        }
        Err(TaskError::Invalid(errors)) => {
            drop(tx);
            let back = if form.back == "ticket" { "ticket" } else { "" };
            render_new(
                &state,
                &staff,
                form.input,
                errors,
                back,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

// ---- one task ----

#[derive(Template)]
#[template(path = "web/task.html")]
struct TaskPage {
    nav: Option<Nav>,
    task: Task,
    /// The edit form's values (as typed, after a refused save).
    input: TaskInput,
    /// What the editor loaded (`was_*`): a save refuses to overwrite other changes.
    was: TaskInput,
    errors: Vec<FieldError>,
    users: Vec<UserChoice>,
    statuses: Vec<(&'static str, String)>,
    priorities: Vec<&'static str>,
    overdue: bool,
    can_delete: bool,
    notice: Option<String>,
    error: Option<String>,
    now: i64,
    csrf: String,
}

impl TaskPage {
    fn selected(&self, current: &str, value: &str) -> &'static str {
        selected(current, value)
    }

    fn error_for(&self, field: &str) -> Option<&str> {
        error_for(&self.errors, field)
    }

    fn status_label(&self, status: &str) -> String {
        rules::status_label(status)
    }

    fn time(&self, t: &i64) -> String {
        view::time(*t)
    }

    fn ago(&self, t: &i64) -> String {
        view::ago(*t, self.now)
    }
}

/// What a re-shown task page keeps.
#[derive(Default)]
struct Retained {
    input: Option<TaskInput>,
    was: Option<TaskInput>,
    errors: Vec<FieldError>,
    error: Option<String>,
    notice: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    notice: Option<Notice>,
) -> WebResult<Response> {
    let id = task_id(&id)?;
    let retained = Retained {
        notice: notice.and_then(Notice::staff_text),
        ..Retained::default()
    };
    render_task(&state, &staff, id, retained, StatusCode::OK).await
}

async fn render_task(
    state: &AppState,
    staff: &Staff,
    id: i64,
    retained: Retained,
    status: StatusCode,
) -> WebResult<Response> {
    let mut conn = state.store.acquire().await?;
    let task = tasks::get(&mut conn, id).await?;
    let mut users = user_choices(&mut conn).await?;
    drop(conn);
    // A disabled assignee stays selectable, so saving other fields keeps them.
    if let Some(assignee) = task.assignee_id {
        if !users.iter().any(|u| u.id == assignee) {
            users.push(UserChoice {
                id: assignee,
                name: format!(
                    "{} (disabled)",
                    task.assignee_name.clone().unwrap_or_default()
                ),
            });
        }
    }
    let now = unix_now();
    let page = TaskPage {
        nav: Some(Nav::new(state, staff, "tasks")),
        input: retained
            .input
            .unwrap_or_else(|| TaskInput::from_task(&task)),
        was: retained.was.unwrap_or_else(|| TaskInput::from_task(&task)),
        errors: retained.errors,
        users,
        statuses: task_statuses(),
        priorities: task_priorities(),
        overdue: task.is_overdue(&rules::today(now)),
        can_delete: rules::may_delete(&staff.actor, &task),
        notice: retained.notice,
        error: retained.error,
        now,
        csrf: staff.csrf.clone(),
        task,
    };
    Ok((status, Html(page.render()?)).into_response())
}

#[derive(Debug, Deserialize, Default)]
pub struct EditForm {
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    priority: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    assignee: String,
    #[serde(default)]
    ticket: String,
    #[serde(default)]
    due: String,
    #[serde(default)]
    was_title: String,
    #[serde(default)]
    was_description: String,
    #[serde(default)]
    was_priority: String,
    #[serde(default)]
    was_status: String,
    #[serde(default)]
    was_assignee: String,
    #[serde(default)]
    was_ticket: String,
    #[serde(default)]
    was_due: String,
}

/// Saves the fields whose value differs from what the form was loaded with. When
/// someone else changed one of them meanwhile, nothing is saved: the page comes back
/// with what they hold now and the editor's input kept (saving again overwrites).
pub async fn edit(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    Form(form): Form<EditForm>,
) -> WebResult<Response> {
    let id = task_id(&id)?;
    let new = TaskInput {
        title: form.title,
        description: form.description,
        priority: form.priority,
        status: form.status,
        assignee: form.assignee,
        ticket: form.ticket,
        due: form.due,
    };
    let was = TaskInput {
        title: form.was_title,
        description: form.was_description,
        priority: form.was_priority,
        status: form.was_status,
        assignee: form.was_assignee,
        ticket: form.was_ticket,
        due: form.was_due,
    };
    let edits = rules::edits(&was, &new);
    save(&state, &staff, id, &edits, new, was).await
}

#[derive(Debug, Deserialize, Default)]
pub struct StatusForm {
    #[serde(default)]
    status: String,
    #[serde(default)]
    was_status: String,
}

/// The quick buttons: to do, in progress, done.
pub async fn set_status(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    Form(form): Form<StatusForm>,
) -> WebResult<Response> {
    let id = task_id(&id)?;
    let edits = [Edit {
        field: Field::Status,
        was: form.was_status,
        new: form.status,
    }];
    save(
        &state,
        &staff,
        id,
        &edits,
        TaskInput::default(),
        TaskInput::default(),
    )
    .await
}

/// Applies `edits`; on success back to the task with what changed; refused, the page
/// again with the reasons (`input` and `was` as the form had them; empty: as stored).
async fn save(
    state: &AppState,
    staff: &Staff,
    id: i64,
    edits: &[Edit],
    input: TaskInput,
    was: TaskInput,
) -> WebResult<Response> {
    let from_form = input != TaskInput::default();
    let ctx = context(state);
    let mut tx = state.store.unit_of_work(&state.wake).await?;
    match rules::update(&mut tx, &ctx, &staff.actor, id, edits).await {
        Ok(changed) => {
            tx.queued(JobKind::Outbox);
            tx.commit().await?;
            let notice = match changed.as_slice() {
                [] => Notice::NothingToChange,
                [Field::Status] => {
                    let task = {
                        let mut conn = state.store.acquire().await?;
                        tasks::get(&mut conn, id).await?
                    };
                    Notice::TaskMarked {
                        status: task.status,
                    }
                }
                fields => Notice::Saved {
                    fields: fields.iter().map(|f| f.as_str()).collect(),
                },
            };
            Ok(view::done(&format!("/portal/tasks/{id}"), notice).into_response())
        }
        Err(TaskError::Invalid(errors)) => {
            drop(tx);
            let retained = Retained {
                error: Some(format!("Not saved: {}", TaskError::Invalid(errors.clone()))),
                input: from_form.then_some(input),
                was: from_form.then_some(was),
                errors,
                ..Retained::default()
            };
            render_task(state, staff, id, retained, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(TaskError::Conflict(errors)) => {
            drop(tx);
            // The form now carries what is stored: saving again is a knowing overwrite.
            let retained = Retained {
                error: Some(
                    errors
                        .iter()
                        .map(|e| e.message.clone())
                        .collect::<Vec<_>>()
                        .join(" ")
                        + if from_form {
                            " Your input is kept below; save again to replace their change."
                        } else {
                            ""
                        },
                ),
                input: from_form.then_some(input),
                errors,
                ..Retained::default()
            };
            render_task(state, staff, id, retained, StatusCode::CONFLICT).await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn delete(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> WebResult<Response> {
    let id = task_id(&id)?;
    let ctx = context(&state);
    let mut tx = state.store.unit_of_work(&state.wake).await?;
    let task = rules::delete(&mut tx, &ctx, &staff.actor, id).await?;
    tx.commit().await?;
    Ok(view::done("/portal/tasks", Notice::TaskDeleted { task: task.id }).into_response())
}
