//! Internal tasks: the rules for creating, editing and deleting them, the same for the
//! portal and (later) the JSON API. Every function works in the caller's transaction, so
//! the change, the linked ticket's history entry and the assignee's mail commit together;
//! a refused change leaves the transaction for the caller to drop.

use crate::domain::access::Action;
use crate::domain::{text, TaskPriority, TaskStatus};
use crate::helpdesk::actions::{ActionError, Actor};
use crate::outbound::OutboundOptions;
use crate::store::tasks::{self, Field, Task};
use crate::store::{events, tickets, users, StoreError, Tx};

pub const MAX_TITLE_CHARS: usize = 200;
pub const MAX_DESCRIPTION_CHARS: usize = 20_000;

/// The environment of a change: mail settings, the portal's public address (for links
/// in mail) and the time.
pub struct Context<'a> {
    pub outbound: Option<&'a OutboundOptions>,
    pub portal_url: Option<&'a str>,
    pub now: i64,
}

/// A task as typed into a form (or sent by an API client): every field as text.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct TaskInput {
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub priority: String,
    #[serde(default)]
    pub status: String,
    /// A user id, or empty for nobody.
    #[serde(default)]
    pub assignee: String,
    /// A ticket number (`12` or `#12`), or empty.
    #[serde(default)]
    pub ticket: String,
    /// `YYYY-MM-DD`, or empty.
    #[serde(default)]
    pub due: String,
}

impl TaskInput {
    /// What an edit form starts with: the task as stored.
    pub fn from_task(task: &Task) -> TaskInput {
        let text = |field: Field| field.value_of(task).unwrap_or_default();
        TaskInput {
            title: text(Field::Title),
            description: text(Field::Description),
            priority: text(Field::Priority),
            status: text(Field::Status),
            assignee: text(Field::Assignee),
            ticket: text(Field::Ticket),
            due: text(Field::Due),
        }
    }

    pub fn get(&self, field: Field) -> &str {
        match field {
            Field::Title => &self.title,
            Field::Description => &self.description,
            Field::Priority => &self.priority,
            Field::Status => &self.status,
            Field::Assignee => &self.assignee,
            Field::Ticket => &self.ticket,
            Field::Due => &self.due,
        }
    }

    pub fn set(&mut self, field: Field, value: String) {
        match field {
            Field::Title => self.title = value,
            Field::Description => self.description = value,
            Field::Priority => self.priority = value,
            Field::Status => self.status = value,
            Field::Assignee => self.assignee = value,
            Field::Ticket => self.ticket = value,
            Field::Due => self.due = value,
        }
    }
}

/// What is wrong with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// Values that are not valid, each with its field: nothing was changed.
    #[error("{}", joined(.0))]
    Invalid(Vec<FieldError>),
    /// Fields someone else changed since the editor loaded the task (the message says
    /// what they hold now): nothing was changed.
    #[error("{}", joined(.0))]
    Conflict(Vec<FieldError>),
    #[error(transparent)]
    Action(#[from] ActionError),
}

impl From<StoreError> for TaskError {
    fn from(e: StoreError) -> Self {
        TaskError::Action(e.into())
    }
}

fn joined(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect::<Vec<_>>()
        .join("; ")
}

type Result<T> = std::result::Result<T, TaskError>;

/// Today's date in UTC (`YYYY-MM-DD`): a task due before it and not done is overdue.
pub fn today(now: i64) -> String {
    crate::domain::datetime::utc_date(now)
}

/// A due date as typed: exactly `YYYY-MM-DD`, a real calendar day (no 31 April, 29
/// February only in leap years), years 2000 to 9999.
pub fn parse_due(text: &str) -> std::result::Result<String, String> {
    let text = text.trim();
    let outside = |year: i16| !(2000..=9999).contains(&year);
    let year = match crate::domain::datetime::parse_date(text) {
        Ok(date) => date.year(),
        Err(e) if e.year().is_some_and(outside) => e.year().unwrap_or_default(),
        Err(e) => return Err(e.to_string()),
    };
    if outside(year) {
        return Err(format!("{text}: the year must be between 2000 and 9999"));
    }
    Ok(text.to_string())
}

/// The canonical stored form of one field's value (`None`: empty), checked without the
/// database; or what is wrong with it.
fn canonical(field: Field, value: &str) -> std::result::Result<Option<String>, String> {
    match field {
        Field::Title => {
            let title = value.trim();
            if title.is_empty() {
                return Err("a title is required".into());
            }
            if title.chars().any(char::is_control) {
                return Err("the title must be one line".into());
            }
            let count = title.chars().count();
            if count > MAX_TITLE_CHARS {
                return Err(format!(
                    "at most {MAX_TITLE_CHARS} characters (this one has {count})"
                ));
            }
            Ok(Some(text::single_line(title, MAX_TITLE_CHARS)))
        }
        Field::Description => {
            let description = value.replace("\r\n", "\n");
            let description = description.trim();
            let count = description.chars().count();
            if count > MAX_DESCRIPTION_CHARS {
                return Err(format!(
                    "at most {MAX_DESCRIPTION_CHARS} characters (this one has {count})"
                ));
            }
            Ok(Some(description.to_string()))
        }
        Field::Priority => match value.trim() {
            "" => Ok(Some(TaskPriority::Medium.as_str().into())),
            text => text
                .parse::<TaskPriority>()
                .map(|p| Some(p.as_str().into()))
                .map_err(|e| e.to_string()),
        },
        Field::Status => match value.trim() {
            "" => Ok(Some(TaskStatus::Todo.as_str().into())),
            text => text
                .parse::<TaskStatus>()
                .map(|s| Some(s.as_str().into()))
                .map_err(|e| e.to_string()),
        },
        Field::Assignee => match value.trim() {
            "" => Ok(None),
            text => text
                .parse::<i64>()
                .map(|id| Some(id.to_string()))
                .map_err(|_| format!("{text:?} is not a user")),
        },
        Field::Ticket => match value.trim() {
            "" => Ok(None),
            text => crate::helpdesk::ticket_views::parse_ref(text)
                .map(|id| Some(id.to_string()))
                .ok_or_else(|| format!("{text:?} is not a ticket number")),
        },
        Field::Due => match value.trim() {
            "" => Ok(None),
            text => parse_due(text).map(Some),
        },
    }
}

/// What the database must confirm about a new value: an assignee is an active user, a
/// linked ticket exists and was not merged into another.
async fn check_in_database(
    tx: &mut Tx,
    field: Field,
    value: Option<&str>,
) -> Result<std::result::Result<(), String>> {
    let Some(id) = value.and_then(|v| v.parse::<i64>().ok()) else {
        return Ok(Ok(()));
    };
    match field {
        Field::Assignee => match users::get(tx, id).await {
            Ok(user) if user.active == 1 => Ok(Ok(())),
            Ok(user) => Ok(Err(format!("{} is disabled", user.name))),
            Err(StoreError::NotFound(_)) => Ok(Err(format!("there is no user {id}"))),
            Err(e) => Err(e.into()),
        },
        Field::Ticket => match tickets::get(tx, id).await {
            Ok(t) => match t.merged_into_id {
                Some(target) => Ok(Err(format!(
                    "ticket #{id} was merged into #{target}; link #{target}"
                ))),
                None => Ok(Ok(())),
            },
            Err(StoreError::NotFound(_)) => Ok(Err(format!("there is no ticket #{id}"))),
            Err(e) => Err(e.into()),
        },
        _ => Ok(Ok(())),
    }
}

/// Creates a task by `actor`; records it on the linked ticket and mails the assignee
/// (unless they assigned it to themselves). Returns the new task's id.
pub async fn create(
    tx: &mut Tx,
    ctx: &Context<'_>,
    actor: &Actor,
    input: &TaskInput,
) -> Result<i64> {
    actor.require(Action::WorkTasks, "create tasks")?;
    let mut values: Vec<Option<String>> = Vec::new();
    let mut errors = Vec::new();
    for field in Field::ALL {
        match canonical(field, input.get(field)) {
            Ok(value) => {
                if let Err(message) = check_in_database(tx, field, value.as_deref()).await? {
                    errors.push(FieldError {
                        field: field.as_str(),
                        message,
                    });
                }
                values.push(value);
            }
            Err(message) => {
                errors.push(FieldError {
                    field: field.as_str(),
                    message,
                });
                values.push(None);
            }
        }
    }
    if !errors.is_empty() {
        return Err(TaskError::Invalid(errors));
    }
    let value = |field: Field| {
        let i = Field::ALL.iter().position(|f| *f == field).unwrap_or(0);
        values[i].clone()
    };
    let id_of = |field: Field| value(field).and_then(|v| v.parse::<i64>().ok());
    let title = value(Field::Title).unwrap_or_default();
    let description = value(Field::Description).unwrap_or_default();
    let due = value(Field::Due);
    let id = tasks::insert(
        tx,
        &tasks::NewTask {
            title: &title,
            description: &description,
            priority: value(Field::Priority)
                .and_then(|p| p.parse().ok())
                .unwrap_or(TaskPriority::Medium),
            status: value(Field::Status)
                .and_then(|s| s.parse().ok())
                .unwrap_or(TaskStatus::Todo),
            creator_id: actor.user.id,
            assignee_id: id_of(Field::Assignee),
            ticket_id: id_of(Field::Ticket),
            due_date: due.as_deref(),
        },
        ctx.now,
    )
    .await?;
    let task = tasks::get(tx, id).await?;
    if let Some(ticket_id) = task.ticket_id {
        record(
            tx,
            ctx,
            actor,
            ticket_id,
            &format!("created {}", named(&task)),
        )
        .await?;
    }
    if let Some(assignee) = task.assignee_id {
        notify(tx, ctx, actor, &task, assignee).await?;
    }
    Ok(id)
}

/// One field an editor changes: what they loaded (`was`, as stored) and what they want.
#[derive(Debug, Clone)]
pub struct Edit {
    pub field: Field,
    pub was: String,
    pub new: String,
}

/// The edits a form makes: every field whose new text differs from what was loaded.
pub fn edits(was: &TaskInput, new: &TaskInput) -> Vec<Edit> {
    Field::ALL
        .iter()
        .map(|&field| Edit {
            field,
            was: was.get(field).to_string(),
            new: new.get(field).to_string(),
        })
        .collect()
}

/// Applies `edits` to task `id`: each new value is validated, and a field someone else
/// changed since the editor loaded it is not overwritten (nothing is, then: the caller
/// drops the transaction). Records status and ticket changes on the linked tickets and
/// mails a new assignee. Returns the fields that changed.
pub async fn update(
    tx: &mut Tx,
    ctx: &Context<'_>,
    actor: &Actor,
    id: i64,
    edits: &[Edit],
) -> Result<Vec<Field>> {
    actor.require(Action::WorkTasks, "edit tasks")?;
    let before = tasks::get(tx, id).await?;
    let mut errors = Vec::new();
    let mut wanted: Vec<(Field, Option<String>, Option<String>)> = Vec::new();
    for edit in edits {
        let was = Some(edit.was.trim().to_string()).filter(|w| !w.is_empty());
        let new = match canonical(edit.field, &edit.new) {
            Ok(new) => new,
            Err(message) => {
                errors.push(FieldError {
                    field: edit.field.as_str(),
                    message,
                });
                continue;
            }
        };
        // The form sends the description as typed; compare it as stored.
        let was = match edit.field {
            Field::Description => Some(edit.was.replace("\r\n", "\n").trim().to_string()),
            _ => was,
        };
        if new == was {
            continue;
        }
        if let Err(message) = check_in_database(tx, edit.field, new.as_deref()).await? {
            errors.push(FieldError {
                field: edit.field.as_str(),
                message,
            });
            continue;
        }
        wanted.push((edit.field, was, new));
    }
    if !errors.is_empty() {
        return Err(TaskError::Invalid(errors));
    }
    let mut conflicts = Vec::new();
    let mut changed = Vec::new();
    for (field, was, new) in &wanted {
        let done = tasks::set_if_unchanged(tx, id, *field, was.as_deref(), new.as_deref(), ctx.now)
            .await?;
        if done {
            changed.push(*field);
        } else {
            let now_holds = field.value_of(&before);
            // The value the editor wants is already there: nothing to do.
            if now_holds == *new {
                continue;
            }
            let shown = shown_value(&before, *field);
            conflicts.push(FieldError {
                field: field.as_str(),
                message: format!(
                    "someone else changed the {} to {shown} since you opened the task; nothing was saved",
                    field.as_str()
                ),
            });
        }
    }
    if !conflicts.is_empty() {
        return Err(TaskError::Conflict(conflicts));
    }
    if changed.is_empty() {
        return Ok(changed);
    }
    let after = tasks::get(tx, id).await?;
    if changed.contains(&Field::Ticket) {
        if let Some(old) = before.ticket_id {
            let text = match after.ticket_id {
                Some(new) => format!("moved {} to #{new}", named(&after)),
                None => format!("unlinked {}", named(&after)),
            };
            record(tx, ctx, actor, old, &text).await?;
        }
        if let Some(new) = after.ticket_id {
            record(tx, ctx, actor, new, &format!("linked {}", named(&after))).await?;
        }
    }
    if changed.contains(&Field::Status) {
        if let Some(ticket) = after.ticket_id {
            let text = format!(
                "marked {} {}",
                named(&after),
                status_label(after.status.as_str())
            );
            record(tx, ctx, actor, ticket, &text).await?;
        }
    }
    if changed.contains(&Field::Assignee) {
        if let Some(assignee) = after.assignee_id {
            notify(tx, ctx, actor, &after, assignee).await?;
        }
    }
    Ok(changed)
}

/// Deletes a task: its creator or an admin may. Recorded on the linked ticket.
pub async fn delete(tx: &mut Tx, ctx: &Context<'_>, actor: &Actor, id: i64) -> Result<Task> {
    actor.require(Action::WorkTasks, "delete tasks")?;
    let task = tasks::get(tx, id).await?;
    if task.creator_id != actor.user.id {
        actor.require(Action::DeleteAnyTask, "delete a task someone else created")?;
    }
    tasks::delete(tx, id).await?;
    if let Some(ticket_id) = task.ticket_id {
        record(
            tx,
            ctx,
            actor,
            ticket_id,
            &format!("deleted {}", named(&task)),
        )
        .await?;
    }
    Ok(task)
}

/// Whether `actor` may delete `task` (to offer the button only to them).
pub fn may_delete(actor: &Actor, task: &Task) -> bool {
    task.creator_id == actor.user.id || actor.may(Action::DeleteAnyTask)
}

/// `task #12 “Call the vendor”`.
fn named(task: &Task) -> String {
    format!("task #{} “{}”", task.id, task.title)
}

pub fn status_label(status: &str) -> String {
    match status {
        "todo" => "to do".into(),
        other => other.replace('_', " "),
    }
}

/// How a field's current value reads in a conflict message.
fn shown_value(task: &Task, field: Field) -> String {
    match field {
        Field::Assignee => task
            .assignee_name
            .clone()
            .unwrap_or_else(|| "nobody".into()),
        Field::Ticket => task
            .ticket_id
            .map_or("no ticket".into(), |id| format!("#{id}")),
        Field::Due => task.due_date.clone().unwrap_or_else(|| "no date".into()),
        Field::Status => status_label(task.status.as_str()),
        Field::Description => "a different text".into(),
        other => format!("{:?}", other.value_of(task).unwrap_or_default()),
    }
}

async fn record(
    tx: &mut Tx,
    ctx: &Context<'_>,
    actor: &Actor,
    ticket_id: i64,
    text: &str,
) -> Result<()> {
    events::record(
        tx,
        &events::NewEvent {
            ticket_id,
            user_id: Some(actor.user.id),
            field: "task",
            old_value: None,
            new_value: Some(text),
        },
        ctx.now,
    )
    .await?;
    Ok(())
}

/// Mails the assignee of `task` (through the outbox), unless they are the one who
/// assigned it, outgoing mail is not set up, or task mail is switched off.
async fn notify(
    tx: &mut Tx,
    ctx: &Context<'_>,
    actor: &Actor,
    task: &Task,
    assignee_id: i64,
) -> Result<()> {
    let Some(outbound) = ctx.outbound else {
        return Ok(());
    };
    if !outbound.limits.task_notifications || assignee_id == actor.user.id {
        return Ok(());
    }
    let assignee = users::get(tx, assignee_id).await?;
    let (subject, body) = assignment_mail(task, &actor.user.name, ctx.portal_url);
    crate::outbound::mail_person(
        tx,
        outbound,
        "task",
        (&assignee.email, Some(&assignee.name)),
        &subject,
        body,
        task.ticket_id,
        ctx.now,
    )
    .await?;
    Ok(())
}

/// The mail telling someone a task is theirs: the task, its due date and priority, the
/// linked ticket, and the portal link when the portal's address is configured.
pub fn assignment_mail(task: &Task, by: &str, portal_url: Option<&str>) -> (String, String) {
    let subject = format!("Task for you: {}", task.title);
    let mut body = format!("{by} assigned a task to you.\n\n");
    body.push_str(&format!("Task:     {}\n", task.title));
    body.push_str(&format!(
        "Due:      {}\n",
        task.due_date.as_deref().unwrap_or("no due date")
    ));
    body.push_str(&format!("Priority: {}\n", task.priority));
    body.push_str(&format!(
        "Status:   {}\n",
        status_label(task.status.as_str())
    ));
    if let Some(ticket) = task.ticket_id {
        let subject = task.ticket_subject.as_deref().unwrap_or("");
        body.push_str(&format!("Ticket:   #{ticket} {subject}\n"));
    }
    if !task.description.is_empty() {
        body.push_str(&format!("\n{}\n", task.description));
    }
    if let Some(url) = portal_url {
        body.push_str(&format!(
            "\nOpen it: {}/portal/tasks/{}\n",
            url.trim_end_matches('/'),
            task.id
        ));
    }
    (subject, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_dates_are_real_calendar_days() {
        assert_eq!(parse_due("2026-12-31").unwrap(), "2026-12-31");
        assert_eq!(parse_due(" 2024-02-29 ").unwrap(), "2024-02-29");
        for bad in [
            "2026-02-29",
            "2026-04-31",
            "2026-13-01",
            "2026-00-10",
            "2026-01-00",
            "26-01-01",
            "2026/01/01",
            "2026-1-1",
            "tomorrow",
            "１２３４-01-01",
            "1999-12-31",
        ] {
            assert!(parse_due(bad).is_err(), "{bad} accepted");
        }
        assert!(parse_due("2026-02-30")
            .unwrap_err()
            .contains("has no day 30"));
    }

    #[test]
    fn today_is_the_utc_date() {
        assert_eq!(today(0), "1970-01-01");
        assert_eq!(today(951_782_400), "2000-02-29");
        assert_eq!(today(951_868_799), "2000-02-29");
    }

    #[test]
    fn titles_are_one_line_and_bounded() {
        assert_eq!(
            canonical(Field::Title, "  Call the vendor ").unwrap(),
            Some("Call the vendor".into())
        );
        assert!(canonical(Field::Title, "   ").is_err());
        assert!(canonical(Field::Title, "two\nlines").is_err());
        assert!(canonical(Field::Title, &"x".repeat(201)).is_err());
        assert!(canonical(Field::Title, &"é".repeat(200)).is_ok());
        assert!(canonical(Field::Description, &"x".repeat(20_001)).is_err());
        assert_eq!(canonical(Field::Ticket, "#12").unwrap(), Some("12".into()));
        assert_eq!(
            canonical(Field::Priority, "").unwrap(),
            Some("medium".into())
        );
        assert!(canonical(Field::Priority, "urgent").is_err());
    }

    #[test]
    fn the_mail_names_the_task_the_ticket_and_the_link() {
        let task = Task {
            id: 7,
            title: "Call the vendor".into(),
            description: "Ask about the toner.".into(),
            priority: TaskPriority::High,
            status: TaskStatus::Todo,
            creator_id: 1,
            creator_name: Some("Ada".into()),
            assignee_id: Some(2),
            assignee_name: Some("Sam".into()),
            ticket_id: Some(12),
            ticket_subject: Some("Printer on fire".into()),
            due_date: Some("2026-12-24".into()),
            created_at: 0,
            updated_at: 0,
        };
        let (subject, body) =
            assignment_mail(&task, "Ada Admin", Some("https://help.example.com/"));
        assert_eq!(subject, "Task for you: Call the vendor");
        for part in [
            "Ada Admin assigned a task to you.",
            "Due:      2026-12-24",
            "Priority: high",
            "Ticket:   #12 Printer on fire",
            "Ask about the toner.",
            "Open it: https://help.example.com/portal/tasks/7",
        ] {
            assert!(body.contains(part), "{part} missing from {body}");
        }
        let (_, body) = assignment_mail(&task, "Ada", None);
        assert!(!body.contains("Open it"));
    }
}
