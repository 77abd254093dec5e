//! `/portal/tickets/{ref}`: one ticket, its whole thread, and what staff do with it.

use std::collections::HashSet;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum_extra::extract::{Form, Query};
use serde::Deserialize;

use crate::domain::{Direction, MessageKind};
use crate::helpdesk::actions::{self, ActionError, Expected};
use crate::helpdesk::ticket_views::{self as read, MessageView, TicketDetail};
use crate::store::jobs::JobKind;
use crate::store::tickets::Field;
use crate::store::{events, unix_now};
use crate::web::auth::Staff;
use crate::web::error::{WebError, WebResult};
use crate::web::portal::queue::{user_choices, UserChoice};
use crate::web::view::{self, Nav, Notice};
use crate::web::{mailhtml, security, AppState};

/// One entry of the thread, ready to show.
struct Item {
    id: i64,
    who: String,
    address: String,
    when: String,
    ago: String,
    /// CSS class of the entry: `customer`, `staff`, `note`, `automatic`.
    class: &'static str,
    labels: Vec<(&'static str, String)>,
    visible_text: String,
    full_text: String,
    /// The message's HTML, sanitised, with quoted history cut (and the whole of it).
    html: Option<String>,
    full_html: Option<String>,
    remote_blocked: bool,
    remote_shown: bool,
    /// Our own notification to staff: folded, it only repeats the thread.
    folded: bool,
    has_raw: bool,
    /// "" or when retention purged the original.
    raw_purged: String,
    attachments: Vec<Attachment>,
    deliveries: Vec<Delivery>,
    to: String,
}

struct Attachment {
    id: i64,
    filename: String,
    content_type: String,
    size: String,
    previewable: bool,
}

struct Delivery {
    recipient: String,
    state: &'static str,
    detail: String,
}

struct HistoryLine {
    who: String,
    text: String,
    when: String,
}

#[derive(Template)]
#[template(path = "web/ticket.html")]
struct TicketPage {
    nav: Option<Nav>,
    t: crate::store::tickets::Ticket,
    participants: Vec<crate::store::tickets::Participant>,
    items: Vec<Item>,
    history: Vec<HistoryLine>,
    users: Vec<UserChoice>,
    categories: Vec<String>,
    statuses: Vec<(&'static str, String)>,
    priorities: Vec<&'static str>,
    notice: Option<String>,
    error: Option<String>,
    reply_draft: String,
    reply_cc: String,
    note_draft: String,
    last_message: i64,
    merged_from: Vec<i64>,
    can_reply: bool,
    /// Admins may delete the ticket for good.
    can_delete: bool,
    /// The ticket's internal tasks, and today (UTC) to tell which are overdue.
    tasks: Vec<crate::store::tasks::Task>,
    today: String,
    csrf: String,
}

impl TicketPage {
    fn selected(&self, current: &str, value: &str) -> &'static str {
        if current == value {
            "selected"
        } else {
            ""
        }
    }

    fn task_status(&self, status: &str) -> String {
        crate::helpdesk::tasks::status_label(status)
    }

    fn assignee_value(&self) -> String {
        self.t
            .assignee_id
            .map(|id| id.to_string())
            .unwrap_or_default()
    }
}

#[derive(Debug, Deserialize, Default)]
pub struct ShowQuery {
    /// Remote images shown for this message (the viewer asked).
    #[serde(default)]
    images: Option<i64>,
}

/// What a page shows beyond the ticket: the notice of a change just made, or the message
/// of one refused and the drafts the user was writing.
#[derive(Default)]
struct Retained {
    notice: Option<String>,
    error: Option<String>,
    reply: String,
    cc: String,
    note: String,
}

fn reference(text: &str) -> WebResult<i64> {
    read::parse_ref(text).ok_or_else(|| WebError::NotFound(format!("there is no ticket {text:?}")))
}

pub async fn show(
    State(state): State<AppState>,
    staff: Staff,
    Path(reference_text): Path<String>,
    Query(query): Query<ShowQuery>,
    notice: Option<Notice>,
) -> WebResult<Response> {
    let id = reference(&reference_text)?;
    let retained = Retained {
        notice: notice.and_then(Notice::staff_text),
        ..Retained::default()
    };
    render(&state, &staff, id, &query, retained, StatusCode::OK).await
}

async fn render(
    state: &AppState,
    staff: &Staff,
    id: i64,
    query: &ShowQuery,
    retained: Retained,
    status: StatusCode,
) -> WebResult<Response> {
    let detail = read::load(&state.store, id).await?;
    if let Some(target) = detail.ticket.merged_into_id {
        if let Some(error) = retained.error {
            return Err(WebError::BadRequest(error));
        }
        return Ok(done_redirect(target, Notice::MergedHere { from: id }));
    }
    let mut conn = state.store.acquire().await?;
    let users = user_choices(&mut conn).await?;
    let history = events::for_ticket(&mut conn, id).await?;
    let merged_from = crate::store::tickets::merged_sources(&mut conn, id).await?;
    let tasks = crate::store::tasks::for_ticket(&mut conn, id).await?;
    drop(conn);
    let now = unix_now();
    let remote_for = query.images;
    let last_message = detail.messages.last().map_or(0, |m| m.id);
    let TicketDetail {
        ticket,
        participants,
        messages,
        outbox,
        ..
    } = detail;
    let items = messages
        .into_iter()
        .map(|m| item(m, &outbox, remote_for, now))
        .collect();
    let page = TicketPage {
        nav: Some(Nav::new(state, staff, "tickets")),
        t: ticket,
        participants,
        items,
        history: history
            .into_iter()
            .map(|e| HistoryLine {
                who: e
                    .user_name
                    .or(e.customer_email)
                    .unwrap_or_else(|| "maildesk".into()),
                text: describe(&e.field, e.old_value.as_deref(), e.new_value.as_deref()),
                when: view::ago(e.created_at, now),
            })
            .collect(),
        users,
        categories: state.config.helpdesk.categories.clone(),
        statuses: view::statuses(),
        priorities: view::priorities(),
        notice: retained.notice,
        error: retained.error,
        reply_draft: retained.reply,
        reply_cc: retained.cc,
        note_draft: retained.note,
        last_message,
        merged_from,
        can_reply: state.outbound().is_some(),
        can_delete: staff
            .actor
            .may(crate::domain::access::Action::DeleteTickets),
        tasks,
        today: crate::helpdesk::tasks::today(now),
        csrf: staff.csrf.clone(),
    };
    let mut response = (status, Html(page.render()?)).into_response();
    if remote_for.is_some() {
        response.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(security::CSP_REMOTE_IMAGES),
        );
    }
    Ok(response)
}

fn describe(field: &str, old: Option<&str>, new: Option<&str>) -> String {
    let show = |v: Option<&str>| v.map_or("nobody".to_string(), |v| v.replace('_', " "));
    match field {
        "customer_links" => "revoked the customer links".into(),
        "merge" => format!("merged {} into {}", old.unwrap_or("?"), new.unwrap_or("?")),
        "assignee" if new.is_none() => "unassigned the ticket".into(),
        "assignee" => format!("assigned it to {}", show(new)),
        "task" => new.unwrap_or("changed a task").to_string(),
        _ => format!("changed the {field} from {} to {}", show(old), show(new)),
    }
}

fn item(
    m: MessageView,
    outbox: &[crate::store::outbox::OutboxEntry],
    remote_for: Option<i64>,
    now: i64,
) -> Item {
    let (class, mut labels): (&'static str, Vec<(&'static str, String)>) =
        match (m.direction.as_str(), m.kind.as_str()) {
            (_, "note") if m.unverified => (
                "note",
                vec![(
                    "warn",
                    "Unverified: from a staff address without proof it was them".into(),
                )],
            ),
            (_, "note") if m.source == "portal" => ("note", vec![("note", "Internal note".into())]),
            ("out", "note") => (
                "note",
                vec![("note", "Internal: staff notification".into())],
            ),
            (_, "note") => ("note", vec![("note", "Internal note (by e-mail)".into())]),
            ("out", "automatic") => (
                "automatic",
                vec![(
                    "auto",
                    format!(
                        "Automatic: {}",
                        m.automatic_reason.clone().unwrap_or_default()
                    ),
                )],
            ),
            (_, "automatic") => {
                let reason = m.automatic_reason.clone().unwrap_or_default();
                let label = if reason.contains("delivery") || reason.contains("bounce") {
                    "Bounce"
                } else {
                    "Automatic mail"
                };
                ("automatic", vec![("auto", format!("{label}: {reason}"))])
            }
            ("out", _) => ("staff", vec![("staff", "Reply to the customer".into())]),
            _ if m.author_user_id.is_some() => {
                ("staff", vec![("staff", "Staff reply by e-mail".into())])
            }
            _ => ("customer", Vec::new()),
        };
    let deliveries: Vec<Delivery> = outbox
        .iter()
        .filter(|o| !m.message_id.is_empty() && o.message_id_header == m.message_id)
        .map(|o| {
            let (state, detail) = match (o.status.as_str(), o.attempts) {
                ("sent", _) => ("sent", o.sent_at.map(view::time).unwrap_or_default()),
                ("failed", _) => ("failed", o.last_error.clone().unwrap_or_default()),
                ("queued", 0) => ("queued", String::new()),
                ("queued", n) => (
                    "retrying",
                    format!("attempt {n}: {}", o.last_error.clone().unwrap_or_default()),
                ),
                (other, _) => (
                    if other == "sending" {
                        "sending"
                    } else {
                        "queued"
                    },
                    String::new(),
                ),
            };
            Delivery {
                recipient: o.recipient.clone(),
                state,
                detail,
            }
        })
        .collect();
    if deliveries.iter().any(|d| d.state == "failed") {
        labels.push(("warn", "Delivery failed".into()));
    }
    let content_ids: HashSet<String> = m
        .attachments
        .iter()
        .filter(|a| is_image(&a.content_type))
        .filter_map(|a| a.content_id.clone())
        .collect();
    let remote_shown = remote_for == Some(m.id);
    let (html, full_html, remote_blocked) = match &m.html {
        Some(html) if !html.trim().is_empty() => {
            let full = mailhtml::render(html, m.id, &content_ids, remote_shown);
            let visible = mailhtml::render(&visible_html(html), m.id, &content_ids, remote_shown);
            if visible.html == full.html {
                // Nothing was cut: show it once (the full version would repeat it).
                (Some(full.html), None, full.blocked_remote)
            } else {
                (Some(visible.html), Some(full.html), full.blocked_remote)
            }
        }
        _ => (None, None, false),
    };
    let to =
        m.to.iter()
            .chain(m.cc.iter())
            .map(|a| a.email.clone())
            .collect::<Vec<_>>()
            .join(", ");
    Item {
        id: m.id,
        who: m.from_name.clone().unwrap_or_else(|| m.from.clone()),
        address: m.from.clone(),
        when: view::time(m.date.unwrap_or(m.created_at)),
        ago: view::ago(m.created_at, now),
        class,
        labels,
        visible_text: m.visible_text,
        full_text: m.text,
        html,
        full_html,
        remote_blocked,
        remote_shown,
        folded: m.direction == Direction::Outbound && m.kind == MessageKind::Note,
        has_raw: m.raw_sha256.is_some(),
        raw_purged: m.raw_purged_at.map(view::time).unwrap_or_default(),
        attachments: m
            .attachments
            .into_iter()
            .filter(|a| {
                !(a.inline
                    && a.content_id
                        .as_ref()
                        .is_some_and(|c| content_ids.contains(c)))
            })
            .map(|a| Attachment {
                id: a.id,
                previewable: crate::web::portal::files::previewable(&a.content_type),
                filename: a.filename,
                content_type: a.content_type,
                size: view::size(a.size),
            })
            .collect(),
        deliveries,
        to,
    }
}

/// The part of an HTML reply above the quoted history (sanitised afterwards).
fn visible_html(html: &str) -> String {
    crate::mail::quote::cut_quoted_html(html)
}

fn is_image(content_type: &str) -> bool {
    crate::web::portal::files::previewable(content_type) && content_type.starts_with("image/")
}

#[derive(Debug, Deserialize)]
pub struct UpdateForm {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    was_status: Option<String>,
    #[serde(default)]
    priority: Option<String>,
    #[serde(default)]
    was_priority: Option<String>,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    was_category: Option<String>,
    #[serde(default)]
    assignee: Option<String>,
    #[serde(default)]
    was_assignee: Option<String>,
}

/// Changes the fields whose value differs from what the form was loaded with; a field
/// someone else changed meanwhile is not overwritten (the page says so, with the
/// current values).
pub async fn update(
    State(state): State<AppState>,
    staff: Staff,
    Path(reference_text): Path<String>,
    Form(form): Form<UpdateForm>,
) -> WebResult<Response> {
    let id = reference(&reference_text)?;
    let fields = [
        (Field::Status, &form.status, &form.was_status),
        (Field::Priority, &form.priority, &form.was_priority),
        (Field::Category, &form.category, &form.was_category),
        (Field::Assignee, &form.assignee, &form.was_assignee),
    ];
    let ctx = state.action_context();
    let mut tx = state.store.unit_of_work(&state.wake).await?;
    let mut conflicts = Vec::new();
    let mut changed = Vec::new();
    for (field, new, was) in fields {
        let Some(new) = new else { continue };
        let was = was.clone().unwrap_or_default();
        if *new == was {
            continue;
        }
        let expected = Expected::Value(Some(was).filter(|w| !w.is_empty()));
        let new = Some(new.as_str()).filter(|n| !n.is_empty());
        match actions::change_field(&mut tx, &ctx, &staff.actor, id, field, expected, new).await {
            Ok(true) => changed.push(field.as_str()),
            Ok(false) => {}
            Err(ActionError::Conflict { message, .. }) => conflicts.push(message),
            Err(e) => return Err(e.into()),
        }
    }
    tx.queued(JobKind::Outbox);
    tx.commit().await?;
    if !conflicts.is_empty() {
        let mut message = conflicts.join(" ");
        if !changed.is_empty() {
            message.push_str(&format!(
                " Your change to the {} was saved.",
                changed.join(", ")
            ));
        }
        let retained = Retained {
            error: Some(message),
            ..Retained::default()
        };
        return render(
            &state,
            &staff,
            id,
            &ShowQuery::default(),
            retained,
            StatusCode::CONFLICT,
        )
        .await;
    }
    let notice = if changed.is_empty() {
        Notice::NothingToChange
    } else {
        Notice::Saved { fields: changed }
    };
    Ok(done_redirect(id, notice))
}

fn done_redirect(id: i64, notice: Notice) -> Response {
    view::done(&format!("/portal/tickets/{id}"), notice).into_response()
}

#[derive(Debug, Deserialize)]
pub struct ReplyForm {
    #[serde(default)]
    body: String,
    #[serde(default)]
    cc: String,
    /// The newest message the writer had on screen.
    #[serde(default)]
    seen: i64,
}

/// Sends a reply through the outbox and wakes the worker. If the customer wrote while
/// the reply was being typed, the page comes back with the new message and the draft
/// (sending again goes through).
pub async fn reply(
    State(state): State<AppState>,
    staff: Staff,
    Path(reference_text): Path<String>,
    Form(form): Form<ReplyForm>,
) -> WebResult<Response> {
    let id = reference(&reference_text)?;
    let retained = |error: String| Retained {
        error: Some(error),
        reply: form.body.clone(),
        cc: form.cc.clone(),
        ..Retained::default()
    };
    let newest = crate::helpdesk::ticket_views::newest_message(&state.store, id).await?;
    if newest > form.seen && form.seen > 0 {
        let message = "A new message arrived on this ticket while you were writing. Read it below; your reply is kept and has not been sent.".to_string();
        return render(
            &state,
            &staff,
            id,
            &ShowQuery::default(),
            retained(message),
            StatusCode::CONFLICT,
        )
        .await;
    }
    let cc: Vec<String> = form
        .cc
        .split([',', ';', ' ', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let ctx = state.action_context();
    let mut tx = state.store.unit_of_work(&state.wake).await?;
    let outcome = actions::reply(&mut tx, &ctx, &staff.actor, id, &form.body, &cc).await;
    conclude(&state, &staff, id, tx, outcome, retained, |queued| {
        (
            id,
            Notice::ReplyQueued {
                recipients: queued as i64,
            },
        )
    })
    .await
}

/// Commits a successful action and returns to the ticket (`done` says where and what
/// happened); when the rules refused it, shows the page again with the reason and what
/// the user had typed (`retained`).
async fn conclude<T>(
    state: &AppState,
    staff: &Staff,
    id: i64,
    mut tx: crate::store::UnitOfWork,
    outcome: Result<T, ActionError>,
    retained: impl FnOnce(String) -> Retained,
    done: impl FnOnce(T) -> (i64, Notice),
) -> WebResult<Response> {
    match outcome {
        Ok(value) => {
            tx.queued(JobKind::Outbox);
            tx.commit().await?;
            let (target, notice) = done(value);
            Ok(done_redirect(target, notice))
        }
        Err(ActionError::Invalid { message, .. }) => {
            drop(tx);
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            render(
                state,
                staff,
                id,
                &ShowQuery::default(),
                retained(message),
                status,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
pub struct NoteForm {
    #[serde(default)]
    body: String,
}

pub async fn note(
    State(state): State<AppState>,
    staff: Staff,
    Path(reference_text): Path<String>,
    Form(form): Form<NoteForm>,
) -> WebResult<Response> {
    let id = reference(&reference_text)?;
    let ctx = state.action_context();
    let mut tx = state.store.unit_of_work(&state.wake).await?;
    let outcome = actions::note(&mut tx, &ctx, &staff.actor, id, &form.body).await;
    let retained = |error: String| Retained {
        error: Some(error),
        note: form.body.clone(),
        ..Retained::default()
    };
    conclude(&state, &staff, id, tx, outcome, retained, |_| {
        (id, Notice::NoteAdded)
    })
    .await
}

#[derive(Debug, Deserialize)]
pub struct MergeForm {
    #[serde(default)]
    target: String,
}

/// Merges this ticket into the one named in the form; the browser lands on the target.
pub async fn merge(
    State(state): State<AppState>,
    staff: Staff,
    Path(reference_text): Path<String>,
    Form(form): Form<MergeForm>,
) -> WebResult<Response> {
    let id = reference(&reference_text)?;
    let Some(target) = read::parse_ref(&form.target) else {
        let retained = Retained {
            error: Some(format!("target: {:?} is not a ticket number", form.target)),
            ..Retained::default()
        };
        return render(
            &state,
            &staff,
            id,
            &ShowQuery::default(),
            retained,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    let ctx = state.action_context();
    let mut tx = state.store.unit_of_work(&state.wake).await?;
    let outcome = actions::merge(&mut tx, &ctx, &staff.actor, id, target).await;
    let retained = |error: String| Retained {
        error: Some(error),
        ..Retained::default()
    };
    conclude(&state, &staff, id, tx, outcome, retained, |()| {
        (target, Notice::MergedHere { from: id })
    })
    .await
}

#[derive(Debug, Deserialize)]
pub struct DeleteForm {
    /// The box that says the admin means it.
    #[serde(default)]
    confirm: String,
}

/// Deletes the ticket for good with what only it holds (admins; the API's rule), once the
/// box is ticked; the browser lands on the queue.
pub async fn delete(
    State(state): State<AppState>,
    staff: Staff,
    Path(reference_text): Path<String>,
    Form(form): Form<DeleteForm>,
) -> WebResult<Response> {
    let id = reference(&reference_text)?;
    staff.actor.require(
        crate::domain::access::Action::DeleteTickets,
        "delete tickets",
    )?;
    if form.confirm != "yes" {
        let retained = Retained {
            error: Some("tick the box to confirm: a deleted ticket cannot be brought back".into()),
            ..Retained::default()
        };
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return render(&state, &staff, id, &ShowQuery::default(), retained, status).await;
    }
    let mut tx = state.store.unit_of_work(&state.wake).await?;
    let deleted = actions::delete_ticket(&mut tx, &staff.actor, id).await?;
    tx.commit().await?;
    let notice = Notice::TicketDeleted {
        ticket: id,
        messages: deleted.messages as i64,
        attachments: deleted.attachments as i64,
    };
    Ok(view::done("/portal/tickets", notice).into_response())
}
