//! Internal tasks: a title, a description, a priority and a status, a creator, maybe an
//! assignee, a linked ticket and a due date (`YYYY-MM-DD`, compared as text: that order
//! is the calendar's). A task is overdue when it is not done and its due date is before
//! today.

use serde::Serialize;

use super::queue::AssigneeFilter;
use super::{Conn, Result, StoreError};
use crate::domain::{TaskPriority, TaskStatus};

#[derive(Debug, Clone, sqlx::FromRow, Serialize, utoipa::ToSchema)]
pub struct Task {
    pub id: i64,
    pub title: String,
    pub description: String,
    #[schema(value_type = String)]
    pub priority: TaskPriority,
    #[schema(value_type = String)]
    pub status: TaskStatus,
    pub creator_id: i64,
    pub creator_name: Option<String>,
    pub assignee_id: Option<i64>,
    pub assignee_name: Option<String>,
    pub ticket_id: Option<i64>,
    pub ticket_subject: Option<String>,
    pub due_date: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Task {
    /// Not done and due before `today` (`YYYY-MM-DD`).
    pub fn is_overdue(&self, today: &str) -> bool {
        self.status != TaskStatus::Done && self.due_date.as_deref().is_some_and(|d| d < today)
    }
}

const TASK_SELECT: &str = "SELECT k.id, k.title, k.description, k.priority, k.status,
        k.creator_id, c.name AS creator_name, k.assignee_id, a.name AS assignee_name,
        k.ticket_id, t.subject AS ticket_subject, k.due_date, k.created_at, k.updated_at
    FROM tasks k
    LEFT JOIN users c ON c.id = k.creator_id
    LEFT JOIN users a ON a.id = k.assignee_id
    LEFT JOIN tickets t ON t.id = k.ticket_id";

/// Most urgent first.
const PRIORITY_RANK: &str = "(CASE k.priority WHEN 'high' THEN 3 WHEN 'medium' THEN 2 ELSE 1 END)";
/// Dated tasks first, soonest first.
const DUE_ORDER: &str = "(CASE WHEN k.due_date IS NULL THEN 1 ELSE 0 END), k.due_date";
/// Open tasks before done ones.
const DONE_LAST: &str = "(CASE WHEN k.status = 'done' THEN 1 ELSE 0 END)";

pub struct NewTask<'a> {
    pub title: &'a str,
    pub description: &'a str,
    pub priority: TaskPriority,
    pub status: TaskStatus,
    pub creator_id: i64,
    pub assignee_id: Option<i64>,
    pub ticket_id: Option<i64>,
    pub due_date: Option<&'a str>,
}

pub async fn insert(conn: &mut Conn, task: &NewTask<'_>, now: i64) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO tasks (title, description, priority, status, creator_id, assignee_id,
             ticket_id, due_date, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING id",
    )
    .bind(task.title)
    .bind(task.description)
    .bind(task.priority.as_str())
    .bind(task.status.as_str())
    .bind(task.creator_id)
    .bind(task.assignee_id)
    .bind(task.ticket_id)
    .bind(task.due_date)
    .bind(now)
    .fetch_one(conn)
    .await?)
}

pub async fn get(conn: &mut Conn, id: i64) -> Result<Task> {
    let sql = format!("{TASK_SELECT} WHERE k.id = $1");
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("task {id}")))
}

/// A task field an editor changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Title,
    Description,
    Priority,
    Status,
    Assignee,
    Ticket,
    Due,
}

impl Field {
    pub const ALL: [Field; 7] = [
        Field::Title,
        Field::Description,
        Field::Priority,
        Field::Status,
        Field::Assignee,
        Field::Ticket,
        Field::Due,
    ];

    /// The field's name in forms and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Title => "title",
            Field::Description => "description",
            Field::Priority => "priority",
            Field::Status => "status",
            Field::Assignee => "assignee",
            Field::Ticket => "ticket",
            Field::Due => "due",
        }
    }

    fn column(self) -> &'static str {
        match self {
            Field::Title => "title",
            Field::Description => "description",
            Field::Priority => "priority",
            Field::Status => "status",
            Field::Assignee => "assignee_id",
            Field::Ticket => "ticket_id",
            Field::Due => "due_date",
        }
    }

    fn is_integer(self) -> bool {
        matches!(self, Field::Assignee | Field::Ticket)
    }

    /// The field's stored value as text (ids as decimal; `None` when empty).
    pub fn value_of(self, task: &Task) -> Option<String> {
        match self {
            Field::Title => Some(task.title.clone()),
            Field::Description => Some(task.description.clone()),
            Field::Priority => Some(task.priority.to_string()),
            Field::Status => Some(task.status.to_string()),
            Field::Assignee => task.assignee_id.map(|id| id.to_string()),
            Field::Ticket => task.ticket_id.map(|id| id.to_string()),
            Field::Due => task.due_date.clone(),
        }
    }
}

/// Sets `field` to `new` only if it still holds `expected` (what the editor loaded), so
/// two editors never overwrite each other unknowingly. Values are text (ids as decimal,
/// `None` for empty). Returns whether it changed.
pub async fn set_if_unchanged(
    conn: &mut Conn,
    id: i64,
    field: Field,
    expected: Option<&str>,
    new: Option<&str>,
    now: i64,
) -> Result<bool> {
    let column = field.column();
    // Integer columns are compared and set as integers.
    let (value, current) = if field.is_integer() {
        ("CAST($1 AS BIGINT)", format!("CAST({column} AS TEXT)"))
    } else {
        ("$1", column.to_string())
    };
    let sql = format!(
        "UPDATE tasks SET {column} = {value}, updated_at = $2
         WHERE id = $3 AND {current} IS NOT DISTINCT FROM $4"
    );
    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(new)
        .bind(now)
        .bind(id)
        .bind(expected)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn delete(conn: &mut Conn, id: i64) -> Result<()> {
    let done = sqlx::query("DELETE FROM tasks WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("task {id}")));
    }
    Ok(())
}

/// Which tasks a list shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StatusFilter {
    /// To do or in progress.
    #[default]
    Open,
    Any,
    Only(TaskStatus),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Sort {
    /// Soonest due first (undated last), then the most urgent.
    #[default]
    Due,
    /// Most urgent first, then soonest due.
    Priority,
    /// Most recently changed first.
    Updated,
    /// Newest first.
    Created,
}

impl Sort {
    pub const ALL: &'static [(Sort, &'static str, &'static str)] = &[
        (Sort::Due, "due", "Due date"),
        (Sort::Priority, "priority", "Priority"),
        (Sort::Updated, "updated", "Last change"),
        (Sort::Created, "created", "Newest"),
    ];

    pub fn parse(text: &str) -> Option<Sort> {
        Sort::ALL.iter().find(|s| s.1 == text).map(|s| s.0)
    }

    fn order(self) -> String {
        match self {
            Sort::Due => format!("{DUE_ORDER}, {PRIORITY_RANK} DESC, k.id"),
            Sort::Priority => format!("{PRIORITY_RANK} DESC, {DUE_ORDER}, k.id"),
            Sort::Updated => "k.updated_at DESC, k.id DESC".into(),
            Sort::Created => "k.id DESC".into(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub status: StatusFilter,
    pub assignee: AssigneeFilter,
    pub priority: Option<TaskPriority>,
    /// Only tasks overdue on this day (`YYYY-MM-DD`).
    pub overdue_on: Option<String>,
    pub sort: Sort,
}

/// One page of tasks (`offset` rows skipped, at most `limit` shown), and whether more
/// follow. Task lists are short enough for offset paging.
pub async fn list(
    conn: &mut Conn,
    filter: &Filter,
    offset: i64,
    limit: i64,
) -> Result<(Vec<Task>, bool)> {
    let mut conditions: Vec<String> = vec!["1 = 1".into()];
    let mut texts: Vec<String> = Vec::new();
    let mut ints: Vec<i64> = Vec::new();
    match filter.status {
        StatusFilter::Open => conditions.push("k.status <> 'done'".into()),
        StatusFilter::Any => {}
        StatusFilter::Only(status) => {
            texts.push(status.as_str().into());
            conditions.push(format!("k.status = ${}", texts.len()));
        }
    }
    if let Some(priority) = filter.priority {
        texts.push(priority.as_str().into());
        conditions.push(format!("k.priority = ${}", texts.len()));
    }
    if let Some(today) = &filter.overdue_on {
        texts.push(today.clone());
        conditions.push(format!(
            "k.status <> 'done' AND k.due_date IS NOT NULL AND k.due_date < ${}",
            texts.len()
        ));
    }
    match filter.assignee {
        AssigneeFilter::Anyone => {}
        AssigneeFilter::Unassigned => conditions.push("k.assignee_id IS NULL".into()),
        AssigneeFilter::User(id) => {
            ints.push(id);
            conditions.push(format!("k.assignee_id = ${}", texts.len() + ints.len()));
        }
    }
    let n = texts.len() + ints.len();
    let sql = format!(
        "{TASK_SELECT} WHERE {} ORDER BY {} LIMIT ${} OFFSET ${}",
        conditions.join(" AND "),
        filter.sort.order(),
        n + 1,
        n + 2
    );
    let mut query = sqlx::query_as::<_, Task>(sqlx::AssertSqlSafe(sql));
    for text in texts {
        query = query.bind(text);
    }
    for int in ints {
        query = query.bind(int);
    }
    let mut rows = query
        .bind(limit + 1)
        .bind(offset.max(0))
        .fetch_all(conn)
        .await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit.max(0) as usize);
    Ok((rows, more))
}

/// A ticket's tasks: open ones first, soonest due first.
pub async fn for_ticket(conn: &mut Conn, ticket_id: i64) -> Result<Vec<Task>> {
    let sql =
        format!("{TASK_SELECT} WHERE k.ticket_id = $1 ORDER BY {DONE_LAST}, {DUE_ORDER}, k.id");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(ticket_id)
        .fetch_all(conn)
        .await?)
}

/// How many tasks assigned to `user_id` are not done.
pub async fn count_open_for(conn: &mut Conn, user_id: i64) -> Result<i64> {
    Ok(
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM tasks WHERE assignee_id = $1 AND status <> 'done'",
        )
        .bind(user_id)
        .fetch_one(conn)
        .await?,
    )
}

/// Overdue tasks on `today` (`YYYY-MM-DD`): `user_id`'s first, then the longest overdue.
pub async fn overdue(conn: &mut Conn, today: &str, user_id: i64, limit: i64) -> Result<Vec<Task>> {
    let sql = format!(
        "{TASK_SELECT} WHERE k.status <> 'done' AND k.due_date IS NOT NULL AND k.due_date < $1
         ORDER BY (CASE WHEN k.assignee_id = $2 THEN 0 ELSE 1 END), k.due_date, {PRIORITY_RANK} DESC, k.id
         LIMIT $3"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(today)
        .bind(user_id)
        .bind(limit)
        .fetch_all(conn)
        .await?)
}

/// How many tasks are overdue on `today`.
pub async fn count_overdue(conn: &mut Conn, today: &str) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM tasks
         WHERE status <> 'done' AND due_date IS NOT NULL AND due_date < $1",
    )
    .bind(today)
    .fetch_one(conn)
    .await?)
}
