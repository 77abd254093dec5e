//! `/portal`: what needs attention today.

use askama::Template;
use axum::extract::State;
use axum::response::Html;

use super::auth::Staff;
use super::error::WebResult;
use super::view::{self, Nav};
use super::AppState;
use crate::domain::access::{self, Action};
use crate::domain::TicketStatus;
use crate::store::queue::{self, Filter, Sort};
use crate::store::{quarantine, unix_now};

#[derive(Template)]
#[template(path = "web/dashboard.html")]
struct Dashboard {
    nav: Option<Nav>,
    counts: queue::Counts,
    oldest: Vec<queue::Row>,
    quarantined: Option<i64>,
    now: i64,
}

impl Dashboard {
    fn ago(&self, t: &i64) -> String {
        view::ago(*t, self.now)
    }
}

pub async fn show(State(state): State<AppState>, staff: Staff) -> WebResult<Html<String>> {
    let mut conn = state.store.acquire().await?;
    let counts = queue::counts(&mut conn, staff.user().id).await?;
    let waiting = Filter {
        statuses: vec![TicketStatus::Open, TicketStatus::Waiting],
        sort: Sort::Oldest,
        ..Filter::default()
    };
    let (oldest, _) = queue::page(&mut conn, state.store.backend(), &waiting, 10).await?;
    let quarantined = if access::may(staff.actor.role(), Action::ManageQuarantine) {
        Some(quarantine::count_open(&mut conn).await?)
    } else {
        None
    };
    let page = Dashboard {
        nav: Some(Nav::new(&state, &staff, "dashboard")),
        counts,
        oldest,
        quarantined,
        now: unix_now(),
    };
    Ok(Html(page.render()?))
}
