//! `/portal/tickets`: the queue. Filters live in the URL (a view can be bookmarked);
//! pages follow a keyset cursor; selected tickets can be changed in bulk.

use askama::Template;
use axum::extract::State;
use axum::response::{Html, Redirect};
use axum_extra::extract::{Form, Query};
use serde::Deserialize;

use crate::domain::{Priority, TicketStatus};
use crate::helpdesk::actions::{self, Expected};
use crate::store::jobs::JobKind;
use crate::store::queue::{self, AssigneeFilter, Cursor, Filter, Sort};
use crate::store::tickets::Field;
use crate::store::{unix_now, users};
use crate::web::auth::Staff;
use crate::web::error::{WebError, WebResult};
use crate::web::view::{self, Nav, Notice};
use crate::web::AppState;

pub const PAGE_SIZE: i64 = 50;

/// The queue's address bar: every filter as typed (kept for the links and the form).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct QueueQuery {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub assignee: String,
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub mailbox: String,
    #[serde(default)]
    pub priority: String,
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub sort: String,
    #[serde(default)]
    pub after: String,
}

/// The statuses of work still to do: the default view.
const ACTIVE: &[TicketStatus] = &[
    TicketStatus::Open,
    TicketStatus::InProgress,
    TicketStatus::Waiting,
];

impl QueueQuery {
    pub fn filter(&self, me: i64) -> WebResult<Filter> {
        let bad = |field: &str, value: &str| {
            WebError::BadRequest(format!("{field}: {value:?} is not a valid choice"))
        };
        let statuses = match self.status.as_str() {
            // A search looks at every ticket unless a status is chosen.
            "" if !self.q.trim().is_empty() => Vec::new(),
            "" | "active" => ACTIVE.to_vec(),
            "any" => Vec::new(),
            other => vec![other.parse().map_err(|_| bad("status", other))?],
        };
        let assignee = match self.assignee.as_str() {
            "" | "any" => AssigneeFilter::Anyone,
            "mine" => AssigneeFilter::User(me),
            "unassigned" => AssigneeFilter::Unassigned,
            other => AssigneeFilter::User(other.parse().map_err(|_| bad("assignee", other))?),
        };
        let priority = match self.priority.as_str() {
            "" => None,
            other => Some(
                other
                    .parse::<Priority>()
                    .map_err(|_| bad("priority", other))?,
            ),
        };
        let sort = match self.sort.as_str() {
            "" => Sort::default(),
            other => Sort::parse(other).ok_or_else(|| bad("sort", other))?,
        };
        let after = match self.after.as_str() {
            "" => None,
            other => Some(Cursor::decode(other).ok_or_else(|| bad("after", other))?),
        };
        let text = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        Ok(Filter {
            statuses,
            assignee,
            category: text(&self.category),
            mailbox: text(&self.mailbox),
            priority,
            search: text(&self.q),
            sort,
            after,
        })
    }

    /// This view's query string without the page cursor.
    pub fn without_cursor(&self) -> String {
        view::filter_query(&[
            ("status", &self.status),
            ("assignee", &self.assignee),
            ("category", &self.category),
            ("mailbox", &self.mailbox),
            ("priority", &self.priority),
            ("q", &self.q),
            ("sort", &self.sort),
        ])
        .finish()
    }
}

pub struct UserChoice {
    pub id: i64,
    pub name: String,
}

pub async fn user_choices(conn: &mut crate::store::Conn) -> WebResult<Vec<UserChoice>> {
    Ok(users::list(conn)
        .await?
        .into_iter()
        .filter(|u| u.active == 1)
        .map(|u| UserChoice {
            id: u.id,
            name: u.name,
        })
        .collect())
}

#[derive(Template)]
#[template(path = "web/queue.html")]
struct QueuePage {
    nav: Option<Nav>,
    query: QueueQuery,
    rows: Vec<queue::Row>,
    next_page: Option<String>,
    first_page: Option<String>,
    users: Vec<UserChoice>,
    categories: Vec<String>,
    mailboxes: Vec<String>,
    statuses: Vec<(&'static str, String)>,
    priorities: Vec<&'static str>,
    sorts: Vec<(&'static str, &'static str)>,
    back: String,
    now: i64,
    notice: Option<String>,
}

impl QueuePage {
    fn ago(&self, t: &i64) -> String {
        view::ago(*t, self.now)
    }

    fn time(&self, t: &i64) -> String {
        view::time(*t)
    }

    fn selected(&self, current: &str, value: &str) -> &'static str {
        if current == value {
            "selected"
        } else {
            ""
        }
    }
}

pub async fn show(
    State(state): State<AppState>,
    staff: Staff,
    Query(query): Query<QueueQuery>,
    notice: Option<Notice>,
) -> WebResult<Html<String>> {
    let filter = query.filter(staff.user().id)?;
    let mut conn = state.store.acquire().await?;
    let (rows, more) = queue::page(&mut conn, state.store.backend(), &filter, PAGE_SIZE).await?;
    let base = query.without_cursor();
    let joiner = if base.is_empty() { "" } else { "&" };
    let next_page = more
        .then(|| rows.last().map(|r| r.cursor(filter.sort).encode()))
        .flatten()
        .map(|c| format!("/portal/tickets?{base}{joiner}after={c}"));
    let first_page = filter.after.map(|_| format!("/portal/tickets?{base}"));
    let users = user_choices(&mut conn).await?;
    let back = match query.after.as_str() {
        "" => base.clone(),
        after => format!("{base}{joiner}after={after}"),
    };
    let page = QueuePage {
        nav: Some(Nav::new(&state, &staff, "tickets")),
        next_page,
        first_page,
        rows,
        users,
        categories: state.config.helpdesk.categories.clone(),
        mailboxes: state
            .config
            .mailboxes
            .iter()
            .map(|m| m.name.clone())
            .collect(),
        statuses: view::statuses(),
        priorities: view::priorities(),
        sorts: Sort::ALL.iter().map(|s| (s.1, s.2)).collect(),
        back,
        query,
        now: unix_now(),
        notice: notice.and_then(Notice::staff_text),
    };
    Ok(Html(page.render()?))
}

#[derive(Debug, Deserialize)]
pub struct BulkForm {
    #[serde(default)]
    ticket: Vec<i64>,
    #[serde(default)]
    set_status: String,
    #[serde(default)]
    set_priority: String,
    /// `""` unchanged, `none` unassign, else a user id.
    #[serde(default)]
    set_assignee: String,
    #[serde(default)]
    back: String,
}

/// Applies the chosen changes to every selected ticket, through the same actions as the
/// ticket page (history, notifications); bulk changes set values whatever they were.
pub async fn bulk(
    State(state): State<AppState>,
    staff: Staff,
    Form(form): Form<BulkForm>,
) -> WebResult<Redirect> {
    if form.ticket.is_empty() {
        return Err(WebError::BadRequest(
            "ticket: select at least one ticket".into(),
        ));
    }
    if form.ticket.len() > 500 {
        return Err(WebError::BadRequest(
            "ticket: at most 500 tickets at once".into(),
        ));
    }
    let mut changes: Vec<(Field, Option<String>)> = Vec::new();
    if !form.set_status.is_empty() {
        changes.push((Field::Status, Some(form.set_status.clone())));
    }
    if !form.set_priority.is_empty() {
        changes.push((Field::Priority, Some(form.set_priority.clone())));
    }
    match form.set_assignee.as_str() {
        "" => {}
        "none" => changes.push((Field::Assignee, None)),
        id => changes.push((Field::Assignee, Some(id.to_string()))),
    }
    if changes.is_empty() {
        return Err(WebError::BadRequest(
            "choose a status, priority or assignee to set".into(),
        ));
    }
    let ctx = state.action_context();
    let mut tx = state.store.unit_of_work(&state.wake).await?;
    let mut changed = 0;
    for id in &form.ticket {
        for (field, value) in &changes {
            if actions::change_field(
                &mut tx,
                &ctx,
                &staff.actor,
                *id,
                *field,
                Expected::Anything,
                value.as_deref(),
            )
            .await?
            {
                changed += 1;
            }
        }
    }
    tx.queued(JobKind::Outbox);
    tx.commit().await?;
    let back = form.back.replace(['\r', '\n'], "");
    Ok(view::done(
        &format!("/portal/tickets?{back}"),
        Notice::BulkChanged {
            changes: changed,
            tickets: form.ticket.len() as i64,
        },
    ))
}
