//! `/portal/reports`: counts, response and resolution times, backlog and busiest hours
//! for a period, with charts drawn on the server and every table as CSV.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{Html, IntoResponse, Response};
use axum_extra::extract::Query;
use serde::Deserialize;

use crate::domain::access::Action;
use crate::reports::{self, svg, BacklogRow, DayRow, Dimension, Names, Period, SummaryRow};
use crate::store::{reports as facts, unix_now, users};
use crate::web::auth::Staff;
use crate::web::error::{WebError, WebResult};
use crate::web::view::Nav;
use crate::web::AppState;

/// The page's address bar: the period as typed.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ReportQuery {
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub days: String,
}

/// Everything a report shows, computed once for the page or a download.
struct Report {
    period: Period,
    summary: Vec<SummaryRow>,
    backlog: Vec<BacklogRow>,
    /// Created tickets per weekday (Monday first) and hour, UTC.
    hours: [[i64; 24]; 7],
    daily: Vec<DayRow>,
}

async fn report(state: &AppState, staff: &Staff, query: &ReportQuery) -> WebResult<Report> {
    staff.actor.require(Action::ViewReports, "view reports")?;
    let now = unix_now();
    let period = Period::parse(
        &query.from,
        &query.to,
        &query.days,
        now.div_euclid(reports::DAY),
    )
    .map_err(|e| WebError::BadRequest(e.to_string()))?;
    let (start, end) = (period.start(), period.end());
    let mut conn = state.store.acquire().await?;
    let groups = reports::Facts {
        created: facts::created(&mut conn, start, end).await?,
        first_responses: facts::first_responses(&mut conn, start, end).await?,
        resolved: facts::resolved(&mut conn, start, end).await?,
        reopened: facts::reopened(&mut conn, start, end).await?,
    };
    let created_per_day = facts::created_per_day(&mut conn, start, end).await?;
    let resolved_per_day = facts::resolved_per_day(&mut conn, start, end).await?;
    let per_hour = facts::created_per_hour(&mut conn, start, end).await?;
    let backlog = facts::backlog(&mut conn, now).await?;
    let users: HashMap<i64, String> = users::list(&mut conn)
        .await?
        .into_iter()
        .map(|u| (u.id, u.name))
        .collect();
    drop(conn);
    let names = Names { users: &users };
    Ok(Report {
        summary: reports::summary(&groups, &names),
        backlog: reports::backlog(&backlog, &names),
        hours: reports::busiest_hours(&per_hour),
        daily: reports::daily(&period, &created_per_day, &resolved_per_day),
        period,
    })
}

/// A table section of the page: one cut (all, per category, …) of a table.
struct Section<T> {
    title: &'static str,
    rows: Vec<T>,
}

fn sections<T: Clone>(rows: &[T], dimension: impl Fn(&T) -> Dimension) -> Vec<Section<T>> {
    Dimension::ALL
        .iter()
        .map(|&d| Section {
            title: d.label(),
            rows: rows.iter().filter(|r| dimension(r) == d).cloned().collect(),
        })
        .filter(|s| !s.rows.is_empty())
        .collect()
}

#[derive(Template)]
#[template(path = "web/reports.html")]
struct ReportsPage {
    nav: Option<Nav>,
    query: ReportQuery,
    from: String,
    to: String,
    days: i64,
    presets: [i64; 3],
    /// The period's query string, for the download links.
    link: String,
    summary: Vec<Section<SummaryRow>>,
    backlog: Vec<Section<BacklogRow>>,
    ages: [&'static str; 5],
    daily_chart: String,
    hours_chart: String,
    heatmap: String,
    backlog_chart: String,
    categories_chart: String,
}

impl ReportsPage {
    fn duration(&self, seconds: &Option<i64>) -> String {
        reports::duration(*seconds)
    }

    fn preset_current(&self, days: &i64) -> bool {
        self.query.days.trim() == days.to_string()
            || (self.query.from.is_empty()
                && self.query.to.is_empty()
                && self.query.days.trim().is_empty()
                && *days == reports::DEFAULT_DAYS)
    }
}

pub async fn show(
    State(state): State<AppState>,
    staff: Staff,
    Query(query): Query<ReportQuery>,
) -> WebResult<Html<String>> {
    let r = report(&state, &staff, &query).await?;
    let hour_labels: Vec<String> = (0..24).map(|h| format!("{h:02}")).collect();
    let per_hour = reports::per_hour(&r.hours);
    let all_backlog = r
        .backlog
        .iter()
        .find(|b| b.dimension == Dimension::All)
        .map_or([0; 5], |b| b.ages);
    let days: Vec<String> = r.daily.iter().map(|d| d.date.clone()).collect();
    let page = ReportsPage {
        nav: Some(Nav::new(&state, &staff, "reports")),
        from: r.period.from_date(),
        to: r.period.to_date(),
        days: r.period.days(),
        presets: reports::PRESETS,
        link: period_query(&r.period),
        daily_chart: svg::lines(
            "chart-daily",
            "Tickets created and resolved per day (UTC)",
            &days,
            &[
                (
                    "created",
                    "created",
                    r.daily.iter().map(|d| d.created).collect(),
                ),
                (
                    "resolved",
                    "resolved",
                    r.daily.iter().map(|d| d.resolved).collect(),
                ),
            ],
        ),
        hours_chart: svg::bars(
            "chart-hours",
            "Tickets created by hour of the day (UTC)",
            &hour_labels,
            &per_hour,
        ),
        heatmap: svg::heatmap(
            "chart-heatmap",
            "Tickets created by weekday and hour (UTC)",
            &reports::WEEKDAYS,
            &hour_labels,
            &r.hours.iter().map(|d| d.to_vec()).collect::<Vec<_>>(),
        ),
        backlog_chart: svg::bars(
            "chart-backlog",
            "Open tickets by age",
            &reports::AGES.map(String::from),
            &all_backlog,
        ),
        categories_chart: {
            let by_category: Vec<&BacklogRow> = r
                .backlog
                .iter()
                .filter(|b| b.dimension == Dimension::Category)
                .collect();
            svg::bars(
                "chart-backlog-categories",
                "Open tickets by category",
                &by_category
                    .iter()
                    .map(|b| b.name.clone())
                    .collect::<Vec<_>>(),
                &by_category.iter().map(|b| b.total()).collect::<Vec<_>>(),
            )
        },
        summary: sections(&r.summary, |s| s.dimension),
        backlog: sections(&r.backlog, |b| b.dimension),
        ages: reports::AGES,
        query,
    };
    Ok(Html(page.render()?))
}

/// `from=…&to=…` of a period.
fn period_query(period: &Period) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("from", &period.from_date())
        .append_pair("to", &period.to_date())
        .finish()
}

/// The tables offered as CSV.
pub const TABLES: [&str; 4] = ["summary", "backlog", "hours", "daily"];

/// `/portal/reports/{table}.csv`: one table of the report, as a download.
pub async fn csv(
    State(state): State<AppState>,
    staff: Staff,
    Path(file): Path<String>,
    Query(query): Query<ReportQuery>,
) -> WebResult<Response> {
    let table = file
        .strip_suffix(".csv")
        .filter(|t| TABLES.contains(t))
        .ok_or_else(|| WebError::NotFound(format!("there is no report table {file:?}")))?;
    let r = report(&state, &staff, &query).await?;
    let n = |v: i64| v.to_string();
    let secs = |v: Option<i64>| v.map(|s| s.to_string()).unwrap_or_default();
    let text = match table {
        "summary" => reports::csv(
            &[
                "group",
                "name",
                "created",
                "resolved",
                "reopened",
                "responded",
                "first_response_median_seconds",
                "first_response_p90_seconds",
                "resolution_median_seconds",
                "resolution_p90_seconds",
            ],
            &r.summary
                .iter()
                .map(|s| {
                    vec![
                        s.dimension.label().to_string(),
                        s.name.clone(),
                        n(s.created),
                        n(s.resolved),
                        n(s.reopened),
                        s.first_response.count.to_string(),
                        secs(s.first_response.median),
                        secs(s.first_response.p90),
                        secs(s.resolution.median),
                        secs(s.resolution.p90),
                    ]
                })
                .collect::<Vec<_>>(),
        ),
        "backlog" => {
            let mut header = vec!["group", "name"];
            header.extend(reports::AGES);
            header.push("total");
            reports::csv(
                &header,
                &r.backlog
                    .iter()
                    .map(|b| {
                        let mut row = vec![b.dimension.label().to_string(), b.name.clone()];
                        row.extend(b.ages.iter().map(|&a| n(a)));
                        row.push(n(b.total()));
                        row
                    })
                    .collect::<Vec<_>>(),
            )
        }
        "hours" => {
            let hours: Vec<String> = (0..24).map(|h| format!("{h:02}")).collect();
            let mut header = vec!["weekday"];
            header.extend(hours.iter().map(String::as_str));
            reports::csv(
                &header,
                &reports::WEEKDAYS
                    .iter()
                    .zip(&r.hours)
                    .map(|(day, counts)| {
                        let mut row = vec![day.to_string()];
                        row.extend(counts.iter().map(|&c| n(c)));
                        row
                    })
                    .collect::<Vec<_>>(),
            )
        }
        _ => reports::csv(
            &["date", "created", "resolved"],
            &r.daily
                .iter()
                .map(|d| vec![d.date.clone(), n(d.created), n(d.resolved)])
                .collect::<Vec<_>>(),
        ),
    };
    let filename = format!(
        "maildesk-{table}-{}-to-{}.csv",
        r.period.from_date(),
        r.period.to_date()
    );
    let mut response = text.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&crate::web::portal::files::disposition(
            "attachment",
            &filename,
        ))
        .map_err(|e| WebError::Internal(e.to_string()))?,
    );
    Ok(response)
}
