//! `/portal/quarantine` (admins): mail that could not become ticket mail, with the reason;
//! the raw message shown as inert text; retry or discard.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{Html, Redirect, Response};
use axum_extra::extract::Query;
use serde::Deserialize;

use crate::domain::access::Action;
use crate::inbound::ingest::Outcome;
use crate::store::jobs::JobKind;
use crate::store::{quarantine, raw, unix_now};
use crate::web::auth::Staff;
use crate::web::error::{WebError, WebResult};
use crate::web::view::{self, Nav, Notice};
use crate::web::AppState;

/// How much of a raw message the page shows (the rest is a download away).
const SHOWN_BYTES: usize = 256 * 1024;

struct EntryView {
    e: quarantine::Entry,
    size: String,
    when: String,
}

#[derive(Template)]
#[template(path = "web/quarantine.html")]
struct ListPage {
    nav: Option<Nav>,
    entries: Vec<EntryView>,
    all: bool,
    notice: Option<String>,
}

#[derive(Template)]
#[template(path = "web/quarantine_entry.html")]
struct EntryPage {
    nav: Option<Nav>,
    entry: EntryView,
    text: String,
    truncated: bool,
    csrf: String,
}

#[derive(Debug, Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    all: Option<u8>,
}

fn view_of(e: quarantine::Entry, now: i64) -> EntryView {
    EntryView {
        size: view::size(e.size),
        when: view::ago(e.created_at, now),
        e,
    }
}

pub async fn list(
    State(state): State<AppState>,
    staff: Staff,
    Query(query): Query<ListQuery>,
    notice: Option<Notice>,
) -> WebResult<Html<String>> {
    staff
        .actor
        .require(Action::ManageQuarantine, "see the quarantine")?;
    let all = query.all == Some(1);
    let mut conn = state.store.acquire().await?;
    let now = unix_now();
    let mut entries: Vec<EntryView> = quarantine::list(&mut conn, all)
        .await?
        .into_iter()
        .map(|e| view_of(e, now))
        .collect();
    entries.reverse();
    let page = ListPage {
        nav: Some(Nav::new(&state, &staff, "quarantine")),
        entries,
        all,
        notice: notice.and_then(Notice::staff_text),
    };
    Ok(Html(page.render()?))
}

/// An entry and its raw bytes (if they are still there), for an admin.
async fn entry_and_raw(
    state: &AppState,
    staff: &Staff,
    id: i64,
) -> WebResult<(quarantine::Entry, Option<Vec<u8>>)> {
    staff
        .actor
        .require(Action::ManageQuarantine, "see the quarantine")?;
    let mut conn = state.store.acquire().await?;
    let entry = quarantine::get(&mut conn, id).await?;
    let data = raw::get_raw(&mut conn, &entry.raw_sha256).await?;
    Ok((entry, data))
}

pub async fn show(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
) -> WebResult<Html<String>> {
    let (entry, data) = entry_and_raw(&state, &staff, id).await?;
    let data = data.unwrap_or_default();
    let truncated = data.len() > SHOWN_BYTES;
    // Shown as escaped text: nothing in it is markup, and control characters go.
    let text = crate::domain::text::terminal_safe(&String::from_utf8_lossy(
        &data[..data.len().min(SHOWN_BYTES)],
    ))
    .into_owned();
    let page = EntryPage {
        nav: Some(Nav::new(&state, &staff, "quarantine")),
        entry: view_of(entry, unix_now()),
        text,
        truncated,
        csrf: staff.csrf.clone(),
    };
    Ok(Html(page.render()?))
}

pub async fn raw(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
) -> WebResult<Response> {
    let (_, data) = entry_and_raw(&state, &staff, id).await?;
    let data = data.ok_or_else(|| WebError::NotFound("the raw message is gone".into()))?;
    Ok(crate::web::portal::files::file_response(
        data,
        None,
        &format!("quarantine-{id}.eml"),
    ))
}

pub async fn retry(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
) -> WebResult<Redirect> {
    staff
        .actor
        .require(Action::ManageQuarantine, "retry quarantined mail")?;
    let outcome = state
        .ingestor
        .retry_quarantined(id)
        .await
        .map_err(|e| WebError::BadRequest(format!("retry failed: {e}")))?;
    state.wake.ring(JobKind::Outbox);
    // The reason of an entry still quarantined is in the list, not in the address.
    let notice = match outcome {
        Outcome::Created { ticket_id, .. } => Notice::EntryBecameTicket {
            entry: id,
            ticket: ticket_id,
        },
        Outcome::Threaded { ticket_id, .. } => Notice::EntryAddedToTicket {
            entry: id,
            ticket: ticket_id,
        },
        Outcome::Duplicate { ticket_id, .. } => Notice::EntryAlreadyStored {
            entry: id,
            ticket: ticket_id,
        },
        Outcome::Quarantined { .. } => Notice::EntryStillQuarantined { entry: id },
    };
    Ok(view::done("/portal/quarantine", notice))
}

pub async fn discard(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
) -> WebResult<Redirect> {
    staff
        .actor
        .require(Action::ManageQuarantine, "discard quarantined mail")?;
    let mut conn = state.store.acquire().await?;
    let entry = quarantine::get(&mut conn, id).await?;
    if entry.resolved_at.is_some() {
        return Err(WebError::Conflict(format!(
            "entry {id} is already resolved"
        )));
    }
    let note = format!("discarded by {}", staff.user().email);
    quarantine::mark_resolved(&mut conn, id, &note, unix_now()).await?;
    Ok(view::done(
        "/portal/quarantine",
        Notice::EntryDiscarded { entry: id },
    ))
}
