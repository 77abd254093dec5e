//! `/portal`: what needs attention today.

use askama::Template;
use axum::extract::State;
use axum::response::Html;

use crate::domain::access::Action;
use crate::domain::TicketStatus;
use crate::store::queue::{self, Filter, Sort};
use crate::store::{quarantine, tasks, unix_now};
use crate::web::auth::Staff;
use crate::web::error::WebResult;
use crate::web::view::{self, Nav};
use crate::web::AppState;

/// Overdue tasks listed on the dashboard (the task list shows them all).
const OVERDUE_SHOWN: i64 = 20;

#[derive(Template)]
#[template(path = "web/dashboard.html")]
struct Dashboard {
    nav: Option<Nav>,
    counts: queue::Counts,
    oldest: Vec<queue::Row>,
    quarantined: Option<i64>,
    /// My tasks not done yet; overdue tasks (mine first) and how many there are.
    my_tasks: i64,
    overdue_tasks: Vec<crate::store::tasks::Task>,
    overdue_count: i64,
    me: i64,
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
    let quarantined = if staff.actor.may(Action::ManageQuarantine) {
        Some(quarantine::count_open(&mut conn).await?)
    } else {
        None
    };
    let now = unix_now();
    let today = crate::helpdesk::tasks::today(now);
    let me = staff.user().id;
    let my_tasks = tasks::count_open_for(&mut conn, me).await?;
    let overdue_tasks = tasks::overdue(&mut conn, &today, me, OVERDUE_SHOWN).await?;
    let overdue_count = tasks::count_overdue(&mut conn, &today).await?;
    let page = Dashboard {
        nav: Some(Nav::new(&state, &staff, "dashboard")),
        counts,
        oldest,
        quarantined,
        my_tasks,
        overdue_tasks,
        overdue_count,
        me,
        now,
    };
    Ok(Html(page.render()?))
}
