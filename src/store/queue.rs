//! The staff queue: tickets filtered, searched and paged by keyset (a cursor of the last
//! row's sort key and id), so page 2,000 costs what page 1 costs.

use super::{Backend, Conn, Result};
use crate::domain::{Priority, TicketStatus};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AssigneeFilter {
    #[default]
    Anyone,
    Unassigned,
    User(i64),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Sort {
    /// Most recent activity first.
    #[default]
    Activity,
    /// Least recent activity first (what has waited longest).
    Oldest,
    /// Newest ticket first.
    Newest,
    /// Most urgent first, then most recent activity.
    Priority,
}

impl Sort {
    pub const ALL: &'static [(Sort, &'static str, &'static str)] = &[
        (Sort::Activity, "activity", "Last activity"),
        (Sort::Oldest, "oldest", "Waiting longest"),
        (Sort::Newest, "newest", "Newest"),
        (Sort::Priority, "priority", "Priority"),
    ];

    pub fn as_str(self) -> &'static str {
        Sort::ALL
            .iter()
            .find(|s| s.0 == self)
            .map_or("activity", |s| s.1)
    }

    pub fn parse(text: &str) -> Option<Sort> {
        Sort::ALL.iter().find(|s| s.1 == text).map(|s| s.0)
    }
}

/// Where the previous page ended: the last row's sort key and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub rank: i64,
    pub key: i64,
    pub id: i64,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!("{}.{}.{}", self.rank, self.key, self.id)
    }

    pub fn decode(text: &str) -> Option<Cursor> {
        let mut parts = text.split('.').map(|p| p.parse::<i64>().ok());
        let cursor = Cursor {
            rank: parts.next()??,
            key: parts.next()??,
            id: parts.next()??,
        };
        parts.next().is_none().then_some(cursor)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Empty: every status.
    pub statuses: Vec<TicketStatus>,
    pub assignee: AssigneeFilter,
    pub category: Option<String>,
    pub mailbox: Option<String>,
    pub priority: Option<Priority>,
    pub search: Option<String>,
    pub sort: Sort,
    pub after: Option<Cursor>,
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize, utoipa::ToSchema)]
#[schema(as = QueueRow)]
pub struct Row {
    pub id: i64,
    pub subject: String,
    #[schema(value_type = String)]
    pub status: TicketStatus,
    #[schema(value_type = String)]
    pub priority: Priority,
    pub category: String,
    pub mailbox: Option<String>,
    pub requester_email: String,
    pub requester_name: Option<String>,
    pub assignee_id: Option<i64>,
    pub assignee_name: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// The customer wrote after the last staff reply (or nobody has answered yet).
    pub customer_waiting: i64,
}

impl Row {
    pub fn cursor(&self, sort: Sort) -> Cursor {
        let rank = if sort == Sort::Priority {
            Priority::ALL
                .iter()
                .position(|p| *p == self.priority)
                .map_or(0, |i| i as i64 + 1)
        } else {
            0
        };
        let key = match sort {
            Sort::Newest => self.id,
            _ => self.updated_at,
        };
        Cursor {
            rank,
            key,
            id: self.id,
        }
    }
}

const PRIORITY_RANK: &str =
    "(CASE t.priority WHEN 'urgent' THEN 4 WHEN 'high' THEN 3 WHEN 'medium' THEN 2 ELSE 1 END)";

/// A SQL text with numbered placeholders and the values bound to them, in order.
#[derive(Default)]
struct Sql {
    text: String,
    args: Vec<Arg>,
}

enum Arg {
    Int(i64),
    Text(String),
}

impl Sql {
    fn arg(&mut self, value: Arg) -> String {
        self.args.push(value);
        format!("${}", self.args.len())
    }
}

/// One page of the queue: up to `limit` rows, plus whether more follow. A search takes
/// its words as typed first; only when that finds nothing is the last word taken as a
/// prefix ("capac" finds "capacitor"): a prefix costs much more on a big index.
pub async fn page(
    conn: &mut Conn,
    backend: Backend,
    filter: &Filter,
    limit: i64,
) -> Result<(Vec<Row>, bool)> {
    let found = page_matching(conn, backend, filter, limit, false).await?;
    if found.0.is_empty()
        && filter
            .search
            .as_deref()
            .is_some_and(|s| !s.trim().is_empty())
    {
        return page_matching(conn, backend, filter, limit, true).await;
    }
    Ok(found)
}

async fn page_matching(
    conn: &mut Conn,
    backend: Backend,
    filter: &Filter,
    limit: i64,
    prefix: bool,
) -> Result<(Vec<Row>, bool)> {
    let mut sql = Sql::default();
    // Unary + keeps SQLite from walking an index for a term that does not narrow the
    // page (every unmerged ticket has merged_into_id NULL); PostgreSQL needs no hint.
    let hint = if backend == Backend::Sqlite { "+" } else { "" };
    let mut conditions: Vec<String> = vec![format!("{hint}t.merged_into_id IS NULL")];
    if !filter.statuses.is_empty() {
        let list: Vec<String> = filter
            .statuses
            .iter()
            .map(|s| sql.arg(Arg::Text(s.as_str().into())))
            .collect();
        // Several statuses: SQLite would take the status index and sort every match;
        // walking the activity index and skipping the others is what is fast (unary +
        // keeps SQLite from using an index for a term).
        let hint = if list.len() > 1 { hint } else { "" };
        conditions.push(format!("{hint}t.status IN ({})", list.join(", ")));
    }
    match filter.assignee {
        AssigneeFilter::Anyone => {}
        AssigneeFilter::Unassigned => conditions.push("t.assignee_id IS NULL".into()),
        AssigneeFilter::User(id) => {
            let p = sql.arg(Arg::Int(id));
            conditions.push(format!("t.assignee_id = {p}"));
        }
    }
    if let Some(category) = &filter.category {
        let p = sql.arg(Arg::Text(category.clone()));
        conditions.push(format!("t.category = {p}"));
    }
    if let Some(mailbox) = &filter.mailbox {
        let p = sql.arg(Arg::Text(mailbox.clone()));
        conditions.push(format!("t.mailbox = {p}"));
    }
    if let Some(priority) = filter.priority {
        let p = sql.arg(Arg::Text(priority.as_str().into()));
        conditions.push(format!("t.priority = {p}"));
    }
    let mut source = String::new();
    if let Some(search) = filter
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        match search_source(&mut sql, backend, search, prefix) {
            // The matches drive the page (few rows, then sorted): walking every ticket
            // in activity order to test each for a match is what is slow.
            Some(tickets) => {
                // CROSS JOIN is SQLite's way to fix the join order.
                let join = if backend == Backend::Sqlite {
                    "CROSS JOIN"
                } else {
                    ","
                };
                source = format!("({tickets}) s {join} ");
                conditions.push("t.id = s.ticket_id".into());
            }
            None => return Ok((Vec::new(), false)),
        }
    }
    let (order, keyset) = order_by(&mut sql, filter);
    if let Some(keyset) = keyset {
        conditions.push(keyset);
    }
    let limit_arg = sql.arg(Arg::Int(limit + 1));
    // The page's ids first, then what is shown of just those rows: the marker's
    // subqueries must not run for every ticket the filter matches.
    sql.text = format!(
        "SELECT t.id, t.subject, t.status, t.priority, t.category, t.mailbox, t.requester_email,
            t.requester_name, t.assignee_id, u.name AS assignee_name, t.created_at, t.updated_at,
            CASE WHEN COALESCE((SELECT MAX(m.id) FROM messages m WHERE m.ticket_id = t.id
                        AND m.direction = 'in' AND m.kind = 'public' AND m.author_user_id IS NULL), 0)
                    > COALESCE((SELECT MAX(m.id) FROM messages m WHERE m.ticket_id = t.id
                        AND ((m.direction = 'out' AND m.kind = 'public') OR m.author_user_id IS NOT NULL)), 0)
                 THEN 1 ELSE 0 END AS customer_waiting
         FROM (SELECT t.id FROM {source}tickets t WHERE {} ORDER BY {order} LIMIT {limit_arg}) page
         JOIN tickets t ON t.id = page.id
         LEFT JOIN users u ON u.id = t.assignee_id
         ORDER BY {order}",
        conditions.join(" AND ")
    );
    let mut query = sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql.text));
    for arg in sql.args {
        query = match arg {
            Arg::Int(v) => query.bind(v),
            Arg::Text(v) => query.bind(v),
        };
    }
    let mut rows = query.fetch_all(conn).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    Ok((rows, more))
}

fn order_by(sql: &mut Sql, filter: &Filter) -> (String, Option<String>) {
    let after = filter.after;
    let mut cmp = |op: &str, cols: &str, values: &[i64]| {
        let params: Vec<String> = values.iter().map(|v| sql.arg(Arg::Int(*v))).collect();
        format!("({cols}) {op} ({})", params.join(", "))
    };
    match filter.sort {
        Sort::Activity => (
            "t.updated_at DESC, t.id DESC".into(),
            after.map(|c| cmp("<", "t.updated_at, t.id", &[c.key, c.id])),
        ),
        Sort::Oldest => (
            "t.updated_at ASC, t.id ASC".into(),
            after.map(|c| cmp(">", "t.updated_at, t.id", &[c.key, c.id])),
        ),
        Sort::Newest => ("t.id DESC".into(), after.map(|c| cmp("<", "t.id", &[c.id]))),
        Sort::Priority => (
            format!("{PRIORITY_RANK} DESC, t.updated_at DESC, t.id DESC"),
            after.map(|c| {
                cmp(
                    "<",
                    &format!("{PRIORITY_RANK}, t.updated_at, t.id"),
                    &[c.rank, c.key, c.id],
                )
            }),
        ),
    }
}

/// The ids (`ticket_id`) of the tickets matching `search`, as a subquery; `None` when
/// the text holds no searchable word.
fn search_source(sql: &mut Sql, backend: Backend, search: &str, prefix: bool) -> Option<String> {
    if let Some(address) = as_address(search) {
        let p = sql.arg(Arg::Text(address));
        return Some(format!(
            "SELECT id AS ticket_id FROM tickets WHERE requester_email = {p}
             UNION SELECT ticket_id FROM participants WHERE email = {p}"
        ));
    }
    match backend {
        Backend::Sqlite => {
            let query = fts5_query(search, prefix)?;
            let p = sql.arg(Arg::Text(query));
            Some(format!(
                "SELECT DISTINCT m.ticket_id FROM messages m INDEXED BY messages_id_ticket WHERE m.id IN
                    (SELECT rowid FROM messages_fts WHERE messages_fts MATCH {p}
                     ORDER BY rowid DESC LIMIT {SEARCH_MESSAGES})"
            ))
        }
        Backend::Postgres => {
            // PostgreSQL's own parsing (addresses and hosts stay whole), or the words
            // with the last one as a prefix (what FTS5 does on SQLite).
            // PostgreSQL's own parsing first (addresses and hosts stay whole), then
            // the words with the last one as a prefix.
            let query = if prefix {
                let words = words(search).map(|w| w.join(" & ") + ":*")?;
                format!("to_tsquery('simple', {})", sql.arg(Arg::Text(words)))
            } else {
                format!(
                    "plainto_tsquery('simple', {})",
                    sql.arg(Arg::Text(search.to_string()))
                )
            };
            Some(format!(
                "SELECT DISTINCT x.ticket_id FROM (SELECT m.ticket_id FROM messages m
                    WHERE m.search @@ {query} ORDER BY m.id DESC LIMIT {SEARCH_MESSAGES}) x"
            ))
        }
    }
}

/// A search looks at the newest this many matching messages: a word found in most mail
/// ("printer") would otherwise cost a pass over the whole index for one page of results.
const SEARCH_MESSAGES: i64 = 5_000;

/// One e-mail address typed alone: searched as a requester or participant (exact and
/// indexed) rather than as words.
fn as_address(search: &str) -> Option<String> {
    let s = search.trim();
    (s.contains('@') && !s.contains(char::is_whitespace))
        .then(|| crate::domain::address::normalize(s))
        .filter(|a| crate::domain::address::is_valid(a))
}

/// The words of `search` as an FTS5 query: each word a quoted term (so no operator or
/// syntax error can come from what was typed), all required, the last one as a prefix.
pub fn fts5_query(search: &str, prefix: bool) -> Option<String> {
    let quoted: Vec<String> = words(search)?.iter().map(|w| format!("\"{w}\"")).collect();
    Some(quoted.join(" ") + if prefix { "*" } else { "" })
}

/// The searchable words of what was typed (letters and digits only: nothing in them is
/// query syntax), at most 16.
fn words(search: &str) -> Option<Vec<&str>> {
    let words: Vec<&str> = search
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(16)
        .collect();
    (!words.is_empty()).then_some(words)
}

/// Counts for the dashboard.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct Counts {
    pub open: i64,
    pub in_progress: i64,
    pub waiting: i64,
    pub unassigned: i64,
    pub mine: i64,
}

pub async fn counts(conn: &mut Conn, user_id: i64) -> Result<Counts> {
    Ok(sqlx::query_as(
        "SELECT
            COALESCE(SUM(CASE WHEN status = 'open' THEN 1 ELSE 0 END), 0) AS open,
            COALESCE(SUM(CASE WHEN status = 'in_progress' THEN 1 ELSE 0 END), 0) AS in_progress,
            COALESCE(SUM(CASE WHEN status = 'waiting' THEN 1 ELSE 0 END), 0) AS waiting,
            COALESCE(SUM(CASE WHEN assignee_id IS NULL THEN 1 ELSE 0 END), 0) AS unassigned,
            COALESCE(SUM(CASE WHEN assignee_id = $1 THEN 1 ELSE 0 END), 0) AS mine
         FROM tickets WHERE status IN ('open', 'in_progress', 'waiting') AND merged_into_id IS NULL",
    )
    .bind(user_id)
    .fetch_one(conn)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_junk() {
        let c = Cursor {
            rank: 2,
            key: 1_700_000_000,
            id: 42,
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::decode("1.2"), None);
        assert_eq!(Cursor::decode("1.2.3.4"), None);
        assert_eq!(Cursor::decode("a.b.c"), None);
    }

    #[test]
    fn an_address_alone_is_searched_as_an_address() {
        assert_eq!(
            as_address(" Ann@Example.com ").as_deref(),
            Some("ann@example.com")
        );
        assert_eq!(as_address("ann@example.com printer"), None);
        assert_eq!(as_address("printer"), None);
    }

    #[test]
    fn search_text_becomes_quoted_terms() {
        assert_eq!(
            fts5_query("ann@example.com", true).as_deref(),
            Some("\"ann\" \"example\" \"com\"*")
        );
        assert_eq!(
            fts5_query("printer ink", false).as_deref(),
            Some("\"printer\" \"ink\"")
        );
        assert_eq!(
            fts5_query("\" OR NEAR(", true).as_deref(),
            Some("\"OR\" \"NEAR\"*")
        );
        assert_eq!(fts5_query("  -- ", true), None);
        assert_eq!(
            fts5_query("Grüße printer", true).as_deref(),
            Some("\"Grüße\" \"printer\"*")
        );
    }
}
