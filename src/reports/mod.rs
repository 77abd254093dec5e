//! Reports over a period: counts, response and resolution times, backlog by age and
//! busiest hours, per category, mailbox and staff member. Pure: the store counts the
//! facts per group ([`crate::store::reports`]), this module adds the groups up into the
//! report's cuts and takes percentiles. Times are UTC.

pub mod svg;

use std::collections::{BTreeMap, HashMap};

use crate::domain::datetime;
use crate::store::reports::{Backlog, DayCount, Group, HourCount};

pub const DAY: i64 = 86_400;
/// The quick choices offered on the page.
pub const PRESETS: [i64; 3] = [7, 30, 90];
pub const DEFAULT_DAYS: i64 = 30;
/// The longest period one report covers (its scans stay bounded).
pub const MAX_DAYS: i64 = 366 * 3;

/// The days a report covers, both ends included (day numbers since 1970-01-01, UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub first_day: i64,
    pub last_day: i64,
}

/// A period parameter that is not one, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct PeriodError {
    pub field: &'static str,
    pub message: String,
}

impl Period {
    /// From the page's parameters: `days` (a preset ending today) or `from`/`to` dates
    /// (`YYYY-MM-DD`; either may be left out). Nothing given: the last 30 days.
    pub fn parse(from: &str, to: &str, days: &str, today: i64) -> Result<Period, PeriodError> {
        let bad = |field, message: String| PeriodError { field, message };
        let date = |field, text: &str| match text.trim() {
            "" => Ok(None),
            t => datetime::parse_day(t)
                .map(Some)
                .ok_or_else(|| bad(field, format!("{t:?} is not a date (YYYY-MM-DD)"))),
        };
        let (from, to) = (date("from", from)?, date("to", to)?);
        let days = match days.trim() {
            "" => None,
            d => match d.parse::<i64>() {
                Ok(n) if (1..=MAX_DAYS).contains(&n) => Some(n),
                _ => {
                    return Err(bad(
                        "days",
                        format!("{d:?} is not a number of days from 1 to {MAX_DAYS}"),
                    ))
                }
            },
        };
        let (first_day, last_day) = match (from, to, days) {
            (None, None, days) => {
                let n = days.unwrap_or(DEFAULT_DAYS);
                (today - n + 1, today)
            }
            (Some(f), None, _) => (f, today.max(f)),
            (None, Some(t), days) => (t - days.unwrap_or(DEFAULT_DAYS) + 1, t),
            (Some(f), Some(t), _) => (f, t),
        };
        if last_day < first_day {
            return Err(bad("to", "the period ends before it starts".into()));
        }
        if last_day - first_day + 1 > MAX_DAYS {
            return Err(bad(
                "from",
                format!("a report covers at most {MAX_DAYS} days"),
            ));
        }
        Ok(Period {
            first_day,
            last_day,
        })
    }

    /// The first second of the period.
    pub fn start(&self) -> i64 {
        self.first_day * DAY
    }

    /// The first second after the period.
    pub fn end(&self) -> i64 {
        (self.last_day + 1) * DAY
    }

    pub fn days(&self) -> i64 {
        self.last_day - self.first_day + 1
    }

    pub fn from_date(&self) -> String {
        datetime::day_date(self.first_day)
    }

    pub fn to_date(&self) -> String {
        datetime::day_date(self.last_day)
    }
}

/// The `q`-th quantile (0 to 1) of sorted values, interpolating between neighbours (the
/// common "linear" definition: the median of 1, 2, 3, 4 is 2.5), rounded to a second.
pub fn quantile(sorted: &[i64], q: f64) -> Option<i64> {
    let last = sorted.len().checked_sub(1)?;
    let rank = q.clamp(0.0, 1.0) * last as f64;
    let (low, high) = (rank.floor() as usize, rank.ceil() as usize);
    let fraction = rank - low as f64;
    let value = sorted[low] as f64 + (sorted[high] - sorted[low]) as f64 * fraction;
    Some(value.round() as i64)
}

/// How many durations, and their median and 90th percentile (seconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Times {
    pub count: usize,
    pub median: Option<i64>,
    pub p90: Option<i64>,
}

impl Times {
    pub fn of(mut durations: Vec<i64>) -> Times {
        durations.sort_unstable();
        Times {
            count: durations.len(),
            median: quantile(&durations, 0.5),
            p90: quantile(&durations, 0.9),
        }
    }
}

/// `45 s`, `12 min`, `3 h 20 min`, `2 d 4 h` ("—" when there is nothing to measure).
pub fn duration(seconds: Option<i64>) -> String {
    let Some(s) = seconds else {
        return "—".into();
    };
    let s = s.max(0);
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min", s / 60),
        3600..=86_399 => match s % 3600 / 60 {
            0 => format!("{} h", s / 3600),
            m => format!("{} h {m} min", s / 3600),
        },
        _ => match s % DAY / 3600 {
            0 => format!("{} d", s / DAY),
            h => format!("{} d {h} h", s / DAY),
        },
    }
}

/// Which way a table is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dimension {
    All,
    Category,
    Mailbox,
    Staff,
}

impl Dimension {
    pub const ALL: [Dimension; 4] = [
        Dimension::All,
        Dimension::Category,
        Dimension::Mailbox,
        Dimension::Staff,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Dimension::All => "All tickets",
            Dimension::Category => "Category",
            Dimension::Mailbox => "Mailbox",
            Dimension::Staff => "Staff",
        }
    }
}

/// Names of people and of missing values in a report.
pub struct Names<'a> {
    pub users: &'a HashMap<i64, String>,
}

impl Names<'_> {
    fn staff(&self, id: Option<i64>) -> String {
        match id {
            None => "(unassigned)".into(),
            Some(id) => self
                .users
                .get(&id)
                .cloned()
                .unwrap_or_else(|| format!("user {id}")),
        }
    }
}

fn mailbox_name(mailbox: &Option<String>) -> String {
    mailbox.clone().unwrap_or_else(|| "(no mailbox)".into())
}

/// One line of the summary table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryRow {
    pub dimension: Dimension,
    pub name: String,
    pub created: i64,
    pub resolved: i64,
    pub reopened: i64,
    /// From creation to the first staff response, of tickets created in the period (for
    /// staff: the responder's).
    pub first_response: Times,
    /// From creation to resolution, of tickets resolved in the period.
    pub resolution: Times,
}

#[derive(Default)]
struct Tally {
    created: i64,
    resolved: i64,
    reopened: i64,
    first_response: Vec<i64>,
    resolution: Vec<i64>,
}

/// The groups a report needs for its summary, as the store counted them.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Tickets created in the period, by assignee.
    pub created: Vec<Group>,
    /// Their first responses, by responder.
    pub first_responses: Vec<Group>,
    /// Tickets resolved in the period, by assignee.
    pub resolved: Vec<Group>,
    /// Reopens in the period, by assignee.
    pub reopened: Vec<Group>,
}

/// The summary: everything, then per category, mailbox and staff member. Created
/// counts go to the assignee, response times to whoever responded.
pub fn summary(facts: &Facts, names: &Names<'_>) -> Vec<SummaryRow> {
    let mut groups: BTreeMap<(Dimension, String), Tally> = BTreeMap::new();
    groups.entry((Dimension::All, String::new())).or_default();
    let mut add = |groups_of: &[Group], f: &dyn Fn(&mut Tally, &Group)| {
        for g in groups_of {
            for key in [
                (Dimension::All, String::new()),
                (Dimension::Category, g.category.clone()),
                (Dimension::Mailbox, mailbox_name(&g.mailbox)),
                (Dimension::Staff, names.staff(g.staff_id)),
            ] {
                f(groups.entry(key).or_default(), g);
            }
        }
    };
    add(&facts.created, &|t, g| t.created += g.count);
    add(&facts.first_responses, &|t, g| {
        t.first_response.extend(g.durations());
    });
    add(&facts.resolved, &|t, g| {
        t.resolved += g.count;
        t.resolution.extend(g.durations());
    });
    add(&facts.reopened, &|t, g| t.reopened += g.count);
    groups
        .into_iter()
        .map(|((dimension, name), t)| SummaryRow {
            dimension,
            name: if dimension == Dimension::All {
                "All tickets".into()
            } else {
                name
            },
            created: t.created,
            resolved: t.resolved,
            reopened: t.reopened,
            first_response: Times::of(t.first_response),
            resolution: Times::of(t.resolution),
        })
        .collect()
}

/// The age buckets of the backlog.
pub const AGES: [&str; 5] = ["< 1 day", "1–3 days", "3–7 days", "1–4 weeks", "> 4 weeks"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BacklogRow {
    pub dimension: Dimension,
    pub name: String,
    pub ages: [i64; 5],
}

impl BacklogRow {
    pub fn total(&self) -> i64 {
        self.ages.iter().sum()
    }
}

/// Open work by age: everything, then per category, mailbox and assignee.
pub fn backlog(groups: &[Backlog], names: &Names<'_>) -> Vec<BacklogRow> {
    let mut rows: BTreeMap<(Dimension, String), [i64; 5]> = BTreeMap::new();
    rows.entry((Dimension::All, String::new())).or_default();
    for g in groups {
        let ages = [g.under_1d, g.d1_3, g.d3_7, g.w1_4, g.over_4w];
        for key in [
            (Dimension::All, String::new()),
            (Dimension::Category, g.category.clone()),
            (Dimension::Mailbox, mailbox_name(&g.mailbox)),
            (Dimension::Staff, names.staff(g.assignee_id)),
        ] {
            let row = rows.entry(key).or_default();
            for (total, n) in row.iter_mut().zip(ages) {
                *total += n;
            }
        }
    }
    rows.into_iter()
        .map(|((dimension, name), ages)| BacklogRow {
            dimension,
            name: if dimension == Dimension::All {
                "All tickets".into()
            } else {
                name
            },
            ages,
        })
        .collect()
}

pub const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// Tickets created per weekday (Monday first) and hour of the day, UTC.
pub fn busiest_hours(counts: &[HourCount]) -> [[i64; 24]; 7] {
    let mut grid = [[0i64; 24]; 7];
    for c in counts {
        if let (Ok(day @ 0..=6), Ok(hour @ 0..=23)) =
            (usize::try_from(c.weekday), usize::try_from(c.hour))
        {
            grid[day][hour] += c.count;
        }
    }
    grid
}

/// Tickets created per hour of the day over the whole week.
pub fn per_hour(grid: &[[i64; 24]; 7]) -> [i64; 24] {
    let mut hours = [0; 24];
    for day in grid {
        for (total, n) in hours.iter_mut().zip(day) {
            *total += n;
        }
    }
    hours
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayRow {
    pub date: String,
    pub created: i64,
    pub resolved: i64,
}

/// Created and resolved per day of the period (days outside it are left out).
pub fn daily(period: &Period, created: &[DayCount], resolved: &[DayCount]) -> Vec<DayRow> {
    let days = period.days() as usize;
    let mut counts = vec![(0i64, 0i64); days];
    let index = |day: i64| {
        let i = day - period.first_day;
        (0..days as i64).contains(&i).then_some(i as usize)
    };
    for c in created {
        if let Some(i) = index(c.day) {
            counts[i].0 += c.count;
        }
    }
    for c in resolved {
        if let Some(i) = index(c.day) {
            counts[i].1 += c.count;
        }
    }
    counts
        .into_iter()
        .enumerate()
        .map(|(i, (created, resolved))| DayRow {
            date: datetime::day_date(period.first_day + i as i64),
            created,
            resolved,
        })
        .collect()
}

/// A CSV document (RFC 4180: CRLF, fields quoted when they need it) whose cells cannot
/// run as spreadsheet formulas: a text cell starting with `=`, `+`, `-`, `@`, a tab or a
/// carriage return gets a leading apostrophe (category, mailbox and staff names come
/// from configuration and users).
pub fn csv(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let cells: Vec<String> = cells.map(csv_cell).collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

fn csv_cell(value: &str) -> String {
    let formula =
        value.starts_with(['=', '+', '-', '@', '\t', '\r']) && value.parse::<f64>().is_err();
    let value = if formula {
        format!("'{value}")
    } else {
        value.to_string()
    };
    if value.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TODAY: i64 = 19_358; // 2023-01-01

    #[test]
    fn periods_default_preset_and_dates() {
        let p = Period::parse("", "", "", TODAY).unwrap();
        assert_eq!((p.first_day, p.last_day, p.days()), (TODAY - 29, TODAY, 30));
        let p = Period::parse("", "", "7", TODAY).unwrap();
        assert_eq!(p.days(), 7);
        assert_eq!(p.to_date(), "2023-01-01");
        let p = Period::parse("2022-12-01", "2022-12-31", "", TODAY).unwrap();
        assert_eq!(
            (p.from_date(), p.to_date(), p.days()),
            ("2022-12-01".into(), "2022-12-31".into(), 31)
        );
        assert_eq!(p.end() - p.start(), 31 * DAY);
        let one = Period::parse("2022-12-05", "2022-12-05", "", TODAY).unwrap();
        assert_eq!(one.days(), 1);
    }

    #[test]
    fn bad_periods_name_the_field() {
        let field = |f, t, d| Period::parse(f, t, d, TODAY).unwrap_err().field;
        assert_eq!(field("2022-13-01", "", ""), "from");
        assert_eq!(field("", "yesterday", ""), "to");
        assert_eq!(field("", "", "many"), "days");
        assert_eq!(field("", "", "0"), "days");
        assert_eq!(field("2022-12-02", "2022-12-01", ""), "to");
        assert_eq!(field("2000-01-01", "2022-12-01", ""), "from");
    }

    #[test]
    fn quantiles_interpolate() {
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[7], 0.9), Some(7));
        assert_eq!(quantile(&[1, 2, 3, 4], 0.5), Some(3)); // 2.5 rounds up
        assert_eq!(quantile(&[10, 20, 30, 40], 0.5), Some(25));
        let ten: Vec<i64> = (1..=10).map(|i| i * 100).collect();
        assert_eq!(quantile(&ten, 0.9), Some(910));
        assert_eq!(Times::of(vec![300, 100, 200]).median, Some(200));
    }

    #[test]
    fn durations_read_like_people_say_them() {
        assert_eq!(duration(None), "—");
        assert_eq!(duration(Some(45)), "45 s");
        assert_eq!(duration(Some(12 * 60 + 5)), "12 min");
        assert_eq!(duration(Some(3 * 3600)), "3 h");
        assert_eq!(duration(Some(3 * 3600 + 20 * 60)), "3 h 20 min");
        assert_eq!(duration(Some(2 * DAY + 4 * 3600 + 59)), "2 d 4 h");
        assert_eq!(duration(Some(9 * DAY)), "9 d");
    }

    fn group(category: &str, mailbox: Option<&str>, staff: Option<i64>, count: i64) -> Group {
        Group {
            category: category.into(),
            mailbox: mailbox.map(String::from),
            staff_id: staff,
            count,
            durations: None,
        }
    }

    fn timed(mut g: Group, durations: &str) -> Group {
        g.durations = Some(durations.into());
        g
    }

    #[test]
    fn summary_counts_per_group_and_responder() {
        let users: HashMap<i64, String> = [(1, "Ann".to_string()), (2, "Bob".to_string())].into();
        let names = Names { users: &users };
        let support = Some("support");
        let facts = Facts {
            created: vec![
                group("network", support, Some(1), 1),
                group("network", support, None, 1),
                group("billing", support, Some(1), 1),
            ],
            // Two network tickets answered by Bob after 10 and 30 minutes.
            first_responses: vec![timed(group("network", support, Some(2), 2), "600,1800")],
            resolved: vec![timed(group("billing", None, Some(1), 1), "7200")],
            reopened: vec![group("network", support, Some(1), 1)],
        };
        let rows = summary(&facts, &names);
        let row = |d, n: &str| {
            rows.iter()
                .find(|r| r.dimension == d && r.name == n)
                .unwrap()
                .clone()
        };
        let all = row(Dimension::All, "All tickets");
        assert_eq!((all.created, all.resolved, all.reopened), (3, 1, 1));
        assert_eq!(all.first_response.median, Some(1200));
        assert_eq!(all.resolution.p90, Some(7200));
        let network = row(Dimension::Category, "network");
        assert_eq!(
            (
                network.created,
                network.reopened,
                network.first_response.count
            ),
            (2, 1, 2)
        );
        assert_eq!(row(Dimension::Mailbox, "(no mailbox)").resolved, 1);
        let ann = row(Dimension::Staff, "Ann");
        assert_eq!(
            (
                ann.created,
                ann.resolved,
                ann.reopened,
                ann.first_response.count
            ),
            (2, 1, 1, 0)
        );
        let bob = row(Dimension::Staff, "Bob");
        assert_eq!(
            (
                bob.created,
                bob.first_response.count,
                bob.first_response.p90
            ),
            (0, 2, Some(1680))
        );
        assert_eq!(row(Dimension::Staff, "(unassigned)").created, 1);
    }

    #[test]
    fn an_empty_period_still_has_its_all_row() {
        let users = HashMap::new();
        let rows = summary(&Facts::default(), &Names { users: &users });
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].created, rows[0].first_response.median), (0, None));
    }

    #[test]
    fn durations_parse_and_clamp_clock_skew() {
        let g = timed(group("a", None, None, 3), "5,-20, 7");
        assert_eq!(g.durations().collect::<Vec<_>>(), [5, 0, 7]);
        assert_eq!(group("a", None, None, 1).durations().count(), 0);
    }

    #[test]
    fn hours_weekdays_and_days() {
        let hours = [
            HourCount {
                weekday: 0,
                hour: 9,
                count: 2,
            },
            HourCount {
                weekday: 1,
                hour: 23,
                count: 1,
            },
            HourCount {
                weekday: 7,
                hour: 0,
                count: 5,
            }, // not a weekday: ignored
        ];
        let grid = busiest_hours(&hours);
        assert_eq!(grid[0][9], 2);
        assert_eq!(grid[1][23], 1);
        assert_eq!(per_hour(&grid)[9], 2);
        assert_eq!(per_hour(&grid).iter().sum::<i64>(), 3);
        let period = Period {
            first_day: 19_359,
            last_day: 19_361,
        };
        let created = [
            DayCount {
                day: 19_359,
                count: 2,
            },
            DayCount {
                day: 19_360,
                count: 1,
            },
            DayCount {
                day: 19_400,
                count: 9,
            }, // after the period
        ];
        let resolved = [DayCount {
            day: 19_361,
            count: 4,
        }];
        let days = daily(&period, &created, &resolved);
        assert_eq!(
            days.iter()
                .map(|d| (d.created, d.resolved))
                .collect::<Vec<_>>(),
            [(2, 0), (1, 0), (0, 4)]
        );
        assert_eq!(days[0].date, "2023-01-02");
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let text = csv(
            &["name", "n"],
            &[
                vec!["=HYPERLINK(\"x\")".into(), "-3".into()],
                vec!["a, b".into(), "@SUM(A1)".into()],
                vec!["+1 phone".into(), "line\nbreak".into()],
            ],
        );
        assert_eq!(
            text,
            "name,n\r\n\"'=HYPERLINK(\"\"x\"\")\",-3\r\n\"a, b\",'@SUM(A1)\r\n'+1 phone,\"line\nbreak\"\r\n"
        );
    }
}
