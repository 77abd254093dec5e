//! `/api/v1/tasks`: internal tasks through the same rules as the portal's task pages
//! (validation, who may delete, history on the linked ticket, the assignee's mail).
//! Changes need `If-Match` with the task's ETag.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::openapi::{Id, IfMatch};
use super::problem::Problem;
use super::{json, ApiError, ApiJson, ApiQuery, ApiResult, Caller};
use crate::helpdesk::tasks::{self as rules, TaskError, TaskInput};
use crate::store::jobs::JobKind;
use crate::store::tasks::{self, Task};
use crate::store::unix_now;
use crate::web::portal::tasks::{context, ListQuery as PortalListQuery};
use crate::web::AppState;

impl From<TaskError> for ApiError {
    fn from(e: TaskError) -> Self {
        match e {
            TaskError::Invalid(errors) => {
                let field = errors.first().map_or("task", |f| f.field);
                ApiError::invalid(field, TaskError::Invalid(errors).to_string())
            }
            TaskError::Conflict(errors) => {
                let field = errors.first().map_or("task", |f| f.field);
                ApiError::field(
                    StatusCode::PRECONDITION_FAILED,
                    field,
                    TaskError::Conflict(errors).to_string(),
                )
            }
            TaskError::Action(e) => e.into(),
        }
    }
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// A status, `open` (not done; the default) or `any`.
    #[serde(default)]
    status: String,
    /// A user id, `mine`, `unassigned` or `any`.
    #[serde(default)]
    assignee: String,
    #[serde(default)]
    priority: String,
    /// `1`: only tasks overdue today.
    #[serde(default)]
    overdue: String,
    #[serde(default)]
    sort: String,
    /// The `next_offset` of the previous page.
    #[serde(default)]
    offset: Option<i64>,
    /// At most this many tasks (default 50, at most 200).
    #[serde(default)]
    limit: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = TaskPage)]
struct Page {
    tasks: Vec<Task>,
    /// Pass as `offset` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_offset: Option<i64>,
}

/// `GET /api/v1/tasks`
#[utoipa::path(get, path = "/api/v1/tasks", tag = "tasks", params(ListQuery),
    responses((status = OK, description = "One page of tasks", body = Page)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Response> {
    let limit = super::page_limit(query.limit, 50)?;
    let offset = query.offset.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError::invalid("offset", "offset must not be negative"));
    }
    let filter = PortalListQuery {
        status: query.status,
        assignee: query.assignee,
        priority: query.priority,
        overdue: query.overdue,
        sort: query.sort,
        page: String::new(),
    }
    .filter(caller.actor.user.id, &rules::today(unix_now()))?;
    let mut conn = state.store.acquire().await?;
    let (tasks, more) = tasks::list(&mut conn, &filter, offset, limit).await?;
    let next_offset = more.then_some(offset + limit);
    Ok(json(StatusCode::OK, &Page { tasks, next_offset }))
}

/// The task's version, for `If-Match`.
fn etag(task: &Task) -> String {
    let state = format!(
        "{}|{}|{}|{}|{}|{:?}|{:?}|{:?}|{}",
        task.id,
        task.title,
        task.description,
        task.priority,
        task.status,
        task.assignee_id,
        task.ticket_id,
        task.due_date,
        task.updated_at
    );
    super::etag_of(&state)
}

async fn one(state: &AppState, id: i64, status: StatusCode) -> ApiResult<Response> {
    let mut conn = state.store.acquire().await?;
    let task = tasks::get(&mut conn, id).await?;
    drop(conn);
    let mut response = super::with_etag(json(status, &task), &etag(&task));
    let headers = response.headers_mut();
    if status == StatusCode::CREATED {
        if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/tasks/{id}")) {
            headers.insert(header::LOCATION, location);
        }
    }
    Ok(response)
}

/// A task's fields as a client sends them (all optional in a change; `null` clears
/// assignee, ticket and due date).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskFields {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    priority: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default, deserialize_with = "super::present")]
    assignee: Option<Option<i64>>,
    #[serde(default, deserialize_with = "super::present")]
    ticket: Option<Option<i64>>,
    /// `YYYY-MM-DD`.
    #[serde(default, deserialize_with = "super::present")]
    due: Option<Option<String>>,
}

impl TaskFields {
    /// `base` with the fields this change names replaced.
    fn over(self, mut base: TaskInput) -> TaskInput {
        let id = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
        if let Some(v) = self.title {
            base.title = v;
        }
        if let Some(v) = self.description {
            base.description = v;
        }
        if let Some(v) = self.priority {
            base.priority = v;
        }
        if let Some(v) = self.status {
            base.status = v;
        }
        if let Some(v) = self.assignee {
            base.assignee = id(v);
        }
        if let Some(v) = self.ticket {
            base.ticket = id(v);
        }
        if let Some(v) = self.due {
            base.due = v.unwrap_or_default();
        }
        base
    }
}

/// `POST /api/v1/tasks`
#[utoipa::path(post, path = "/api/v1/tasks", tag = "tasks", request_body = TaskFields,
    responses((status = CREATED, description = "The new task", body = Task,
        headers(("Location" = String), ("ETag" = String)))))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(fields): ApiJson<TaskFields>,
) -> ApiResult<Response> {
    let input = fields.over(TaskInput::default());
    let ctx = context(&state);
    let mut tx = state.store.unit_of_work(&state.wake).await?;
    let id = rules::create(&mut tx, &ctx, &caller.actor, &input).await?;
    tx.queued(JobKind::Outbox);
    tx.commit().await?;
    one(&state, id, StatusCode::CREATED).await
}

fn task_id(text: &str) -> ApiResult<i64> {
    super::parse_id(text.trim_start_matches('#'), "task")
}

/// `GET /api/v1/tasks/{id}`
#[utoipa::path(get, path = "/api/v1/tasks/{id}", tag = "tasks", params(Id),
    responses((status = OK, description = "The task", body = Task,
        headers(("ETag" = String, description = "Send as `If-Match` to change the task")))))]
pub async fn show(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    one(&state, task_id(&id)?, StatusCode::OK).await
}

/// `PATCH /api/v1/tasks/{id}`
#[utoipa::path(patch, path = "/api/v1/tasks/{id}", tag = "tasks", params(Id, IfMatch), request_body = TaskFields,
    responses(
        (status = OK, description = "The task as it is now", body = Task, headers(("ETag" = String))),
        (status = PRECONDITION_FAILED, description = "The task changed since the ETag was read", body = Problem, content_type = "application/problem+json"),
        (status = PRECONDITION_REQUIRED, description = "No `If-Match`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(fields): ApiJson<TaskFields>,
) -> ApiResult<Response> {
    let id = task_id(&id)?;
    let expected_tag = super::if_match(&headers, "task")?;
    let ctx = context(&state);
    let mut tx = state.store.unit_of_work(&state.wake).await?;
    let task = tasks::get(&mut tx, id).await?;
    super::require_current(&expected_tag, &etag(&task), "task")?;
    let was = TaskInput::from_task(&task);
    let new = fields.over(was.clone());
    rules::update(&mut tx, &ctx, &caller.actor, id, &rules::edits(&was, &new)).await?;
    tx.queued(JobKind::Outbox);
    tx.commit().await?;
    one(&state, id, StatusCode::OK).await
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = DeletedTask)]
struct Deleted {
    /// The deleted task's id.
    deleted: i64,
}

/// `DELETE /api/v1/tasks/{id}`: its creator or an admin.
#[utoipa::path(delete, path = "/api/v1/tasks/{id}", tag = "tasks", params(Id),
    responses((status = OK, description = "Deleted", body = Deleted)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = task_id(&id)?;
    let ctx = context(&state);
    let mut tx = state.store.unit_of_work(&state.wake).await?;
    rules::delete(&mut tx, &ctx, &caller.actor, id).await?;
    tx.commit().await?;
    Ok(json(StatusCode::OK, &Deleted { deleted: id }))
}
