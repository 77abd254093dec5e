//! Moving an installation from SQLite to PostgreSQL (`maildesk migrate from-sqlite`).
//!
//! Both databases are first brought to the newest schema, so they have the same tables
//! and columns. The list of tables is read from both catalogs, not written down here: a
//! table added by a later migration is copied without anyone remembering this file, and
//! a table that exists on one engine only must be named in [`NOT_COPIED`] with a reason,
//! or the move refuses to start. Rows keep their ids; the target's sequences are set past
//! them afterwards. Everything is written in one transaction on the target, and the row
//! count of every table is compared with the source's before it commits.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use futures_util::TryStreamExt;
use sqlx::{AnyConnection, Row, ValueRef};

use super::{Backend, Store, StoreError};

/// Tables that are not copied, and why. A table on one engine only that is not here
/// stops the move (see the module comment).
pub const NOT_COPIED: &[(&str, &str)] = &[
    (
        "_sqlx_migrations",
        "each database records the migrations applied to it",
    ),
    (
        "live_events",
        "SQLite's change feed for open portal pages (PostgreSQL uses NOTIFY)",
    ),
    (
        "messages_fts",
        "SQLite's search index (PostgreSQL indexes messages.search itself)",
    ),
    ("messages_fts_data", "part of SQLite's search index"),
    ("messages_fts_idx", "part of SQLite's search index"),
    ("messages_fts_docsize", "part of SQLite's search index"),
    ("messages_fts_config", "part of SQLite's search index"),
    (
        "sqlite_sequence",
        "SQLite's id counters (the target's sequences are set from them)",
    ),
];

/// Tables whose rows on the target are replaced by the source's. `settings` is written
/// by migrating the empty target (the content hash version) and by a first start (a
/// generated signing secret); the source's values win: the signing secret signed every
/// Message-ID and reply address already sent, and replies to them must still verify.
const REPLACED: &[&str] = &["settings"];

#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("the target database must be PostgreSQL (database.url or --database-url), not SQLite")]
    TargetNotPostgres,
    #[error("the target database is not empty: {table} holds {rows} rows. Move into a new database (e.g. `createdb maildesk`), or drop this one first if it holds nothing you need")]
    TargetNotEmpty { table: String, rows: i64 },
    #[error("the table {table} exists on {engine} only and the move does not know what to do with it (store::transfer::NOT_COPIED)")]
    UnknownTable { table: String, engine: &'static str },
    #[error(
        "the table {table} differs between the two databases: column {column} is on {engine} only"
    )]
    ColumnMismatch {
        table: String,
        column: String,
        engine: &'static str,
    },
    #[error("{table}.{column} has the PostgreSQL type {data_type}, which the move does not copy")]
    UnknownType {
        table: String,
        column: String,
        data_type: String,
    },
    #[error("{table}.{column}: {message}")]
    Value {
        table: String,
        column: String,
        message: String,
    },
    #[error("the tables {0} refer to each other; no order to copy them in")]
    Cycle(String),
    #[error(
        "{table}: {source_rows} rows in SQLite but {target_rows} written; nothing was committed"
    )]
    CountMismatch {
        table: String,
        source_rows: i64,
        target_rows: i64,
    },
}

pub type Result<T> = std::result::Result<T, TransferError>;

/// One stored value, as both engines hold it (what the copy and its checks compare).
#[derive(Debug, Clone, PartialEq, PartialOrd)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Bytes(Vec<u8>),
}

/// The target column's type, to which a source value is converted (SQLite is loosely
/// typed: an INTEGER column may hold text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Real,
    Text,
    Bytes,
    Bool,
}

#[derive(Debug, Clone)]
struct Column {
    name: String,
    kind: Kind,
}

/// How one table is copied.
#[derive(Debug, Clone)]
pub struct TablePlan {
    pub name: String,
    columns: Vec<Column>,
    /// Primary key columns (to set deferred columns afterwards).
    key: Vec<String>,
    /// Columns referring to this same table (a ticket merged into a newer one): written
    /// after all of the table's rows, as a foreign key is checked at every insert.
    self_refs: Vec<String>,
    /// Columns filled by a sequence, set past the copied ids at the end.
    sequenced: Vec<String>,
}

impl TablePlan {
    pub fn columns(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().map(|c| c.name.as_str())
    }
}

/// What is copied, in which order, and what is left out.
#[derive(Debug, Clone)]
pub struct Plan {
    pub tables: Vec<TablePlan>,
    /// Tables present in the source but not copied, with the reason.
    pub skipped: Vec<(String, &'static str)>,
}

/// What the move did: rows per table, in copy order.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TransferReport {
    pub tables: Vec<(String, i64)>,
    pub skipped: Vec<(String, String)>,
}

fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

async fn sqlite_tables(conn: &mut AnyConnection) -> Result<BTreeSet<String>> {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
            .fetch_all(conn)
            .await
            .map_err(StoreError::from)?;
    Ok(names.into_iter().collect())
}

async fn sqlite_columns(conn: &mut AnyConnection, table: &str) -> Result<Vec<String>> {
    Ok(
        sqlx::query_scalar("SELECT name FROM pragma_table_info($1) ORDER BY cid")
            .bind(table)
            .fetch_all(conn)
            .await
            .map_err(StoreError::from)?,
    )
}

async fn postgres_tables(conn: &mut AnyConnection) -> Result<BTreeSet<String>> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
    )
    .fetch_all(conn)
    .await
    .map_err(StoreError::from)?;
    Ok(names.into_iter().collect())
}

/// (name, data type, generated, filled by a sequence) of the target's columns.
async fn postgres_columns(
    conn: &mut AnyConnection,
    table: &str,
) -> Result<Vec<(String, String, bool, bool)>> {
    let rows: Vec<(String, String, String, String, Option<String>)> = sqlx::query_as(
        "SELECT column_name::text, data_type::text, is_generated::text, is_identity::text,
                column_default::text
         FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name = $1
         ORDER BY ordinal_position",
    )
    .bind(table)
    .fetch_all(conn)
    .await
    .map_err(StoreError::from)?;
    Ok(rows
        .into_iter()
        .map(|(name, data_type, generated, identity, default)| {
            let sequenced = identity == "YES" || default.is_some_and(|d| d.starts_with("nextval("));
            (name, data_type, generated == "ALWAYS", sequenced)
        })
        .collect())
}

async fn postgres_primary_key(conn: &mut AnyConnection, table: &str) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT a.attname::text
         FROM pg_index i
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
         WHERE i.indrelid = (quote_ident(current_schema()) || '.' || quote_ident($1))::regclass
           AND i.indisprimary
         ORDER BY a.attnum",
    )
    .bind(table)
    .fetch_all(conn)
    .await
    .map_err(StoreError::from)?)
}

/// (table, column, referenced table) of every foreign key in the target's schema.
async fn postgres_foreign_keys(conn: &mut AnyConnection) -> Result<Vec<(String, String, String)>> {
    Ok(sqlx::query_as(
        "SELECT child.relname::text, a.attname::text, parent.relname::text
         FROM pg_constraint c
         JOIN pg_class child ON child.oid = c.conrelid
         JOIN pg_class parent ON parent.oid = c.confrelid
         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
         WHERE c.contype = 'f' AND c.connamespace = current_schema()::regnamespace",
    )
    .fetch_all(conn)
    .await
    .map_err(StoreError::from)?)
}

fn kind_of(table: &str, column: &str, data_type: &str) -> Result<Kind> {
    Ok(match data_type {
        "bigint" | "integer" | "smallint" => Kind::Int,
        "double precision" | "real" => Kind::Real,
        "text" | "character varying" => Kind::Text,
        "bytea" => Kind::Bytes,
        "boolean" => Kind::Bool,
        other => {
            return Err(TransferError::UnknownType {
                table: table.into(),
                column: column.into(),
                data_type: other.into(),
            })
        }
    })
}

/// Compares the two schemas and decides what is copied in which order. Refuses a table
/// or column that exists on one side only, unless it is one of [`NOT_COPIED`].
pub async fn plan(source: &mut AnyConnection, target: &mut AnyConnection) -> Result<Plan> {
    let skip: HashMap<&str, &'static str> = NOT_COPIED.iter().copied().collect();
    let in_sqlite = sqlite_tables(source).await?;
    let in_postgres = postgres_tables(target).await?;
    for (tables, other, engine) in [
        (&in_sqlite, &in_postgres, "SQLite"),
        (&in_postgres, &in_sqlite, "PostgreSQL"),
    ] {
        if let Some(table) = tables
            .iter()
            .find(|t| !other.contains(*t) && !skip.contains_key(t.as_str()))
        {
            return Err(TransferError::UnknownTable {
                table: table.clone(),
                engine,
            });
        }
    }
    let copied: Vec<&String> = in_sqlite
        .iter()
        .filter(|t| in_postgres.contains(*t) && !skip.contains_key(t.as_str()))
        .collect();

    let foreign_keys = postgres_foreign_keys(target).await?;
    let mut tables = BTreeMap::new();
    for &table in &copied {
        let source_columns = sqlite_columns(source, table).await?;
        let target_columns = postgres_columns(target, table).await?;
        let mut columns = Vec::new();
        let mut sequenced = Vec::new();
        for (name, data_type, generated, is_sequenced) in &target_columns {
            if *generated {
                continue;
            }
            if !source_columns.contains(name) {
                return Err(TransferError::ColumnMismatch {
                    table: table.clone(),
                    column: name.clone(),
                    engine: "PostgreSQL",
                });
            }
            columns.push(Column {
                name: name.clone(),
                kind: kind_of(table, name, data_type)?,
            });
            if *is_sequenced {
                sequenced.push(name.clone());
            }
        }
        if let Some(column) = source_columns
            .iter()
            .find(|c| !columns.iter().any(|k| &k.name == *c))
        {
            return Err(TransferError::ColumnMismatch {
                table: table.clone(),
                column: column.clone(),
                engine: "SQLite",
            });
        }
        let self_refs: Vec<String> = foreign_keys
            .iter()
            .filter(|(child, _, parent)| child == table && parent == table)
            .map(|(_, column, _)| column.clone())
            .collect();
        let key = postgres_primary_key(target, table).await?;
        if !self_refs.is_empty() && key.is_empty() {
            // Its own references are set after its rows, found by the primary key.
            return Err(TransferError::Cycle(table.clone()));
        }
        tables.insert(
            table.clone(),
            TablePlan {
                name: table.clone(),
                columns,
                key,
                self_refs,
                sequenced,
            },
        );
    }

    // Parents before children, so every foreign key holds when its row is inserted.
    let mut ordered = Vec::new();
    let mut done = BTreeSet::new();
    while done.len() < tables.len() {
        let ready: Vec<String> = tables
            .keys()
            .filter(|t| !done.contains(*t))
            .filter(|t| {
                foreign_keys.iter().all(|(child, _, parent)| {
                    child != *t
                        || parent == *t
                        || done.contains(parent)
                        || !tables.contains_key(parent)
                })
            })
            .cloned()
            .collect();
        if ready.is_empty() {
            let left: Vec<&str> = tables
                .keys()
                .filter(|t| !done.contains(*t))
                .map(String::as_str)
                .collect();
            return Err(TransferError::Cycle(left.join(", ")));
        }
        for table in ready {
            ordered.push(tables[&table].clone());
            done.insert(table);
        }
    }
    let skipped = in_sqlite
        .iter()
        .filter_map(|t| skip.get(t.as_str()).map(|why| (t.clone(), *why)))
        .collect();
    Ok(Plan {
        tables: ordered,
        skipped,
    })
}

/// Every table (but SQLite's internal ones) with its stored columns (not generated
/// ones): for checks that compare two databases.
pub async fn schema(
    conn: &mut AnyConnection,
    backend: Backend,
) -> Result<BTreeMap<String, Vec<String>>> {
    let mut schema = BTreeMap::new();
    match backend {
        Backend::Sqlite => {
            for table in sqlite_tables(conn).await? {
                if !table.starts_with("sqlite_") {
                    let columns = sqlite_columns(conn, &table).await?;
                    schema.insert(table, columns);
                }
            }
        }
        Backend::Postgres => {
            for table in postgres_tables(conn).await? {
                let columns = postgres_columns(conn, &table)
                    .await?
                    .into_iter()
                    .filter(|(_, _, generated, _)| !generated)
                    .map(|(name, ..)| name)
                    .collect();
                schema.insert(table, columns);
            }
        }
    }
    Ok(schema)
}

/// Reads column `i` of a row as whatever the engine stored.
pub fn read_value(row: &sqlx::any::AnyRow, i: usize) -> std::result::Result<Value, sqlx::Error> {
    use sqlx::any::AnyTypeInfoKind as K;
    let raw = row.try_get_raw(i)?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let kind = raw.type_info().kind();
    Ok(match kind {
        K::Null => Value::Null,
        K::Bool => Value::Int(i64::from(row.try_get::<bool, _>(i)?)),
        k if k.is_integer() => Value::Int(row.try_get(i)?),
        K::Real | K::Double => Value::Real(row.try_get(i)?),
        K::Blob => Value::Bytes(row.try_get(i)?),
        _ => Value::Text(row.try_get(i)?),
    })
}

/// Every row of `table` (the given columns), in no particular order: for comparisons.
pub async fn read_table(
    conn: &mut AnyConnection,
    table: &str,
    columns: &[&str],
) -> std::result::Result<Vec<Vec<Value>>, StoreError> {
    let list: Vec<String> = columns.iter().map(|c| quote(c)).collect();
    let sql = format!("SELECT {} FROM {}", list.join(", "), quote(table));
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|row| {
            (0..columns.len())
                .map(|i| read_value(row, i).map_err(StoreError::from))
                .collect()
        })
        .collect()
}

fn convert(table: &str, column: &Column, value: Value) -> Result<Value> {
    let bad = |message: String| TransferError::Value {
        table: table.into(),
        column: column.name.clone(),
        message,
    };
    Ok(match (column.kind, value) {
        (_, Value::Null) => Value::Null,
        (Kind::Int | Kind::Bool, Value::Int(i)) => Value::Int(i),
        (Kind::Int | Kind::Bool, Value::Text(t)) => Value::Int(
            t.trim()
                .parse()
                .map_err(|_| bad(format!("{t:?} is not a whole number")))?,
        ),
        (Kind::Real, Value::Real(r)) => Value::Real(r),
        (Kind::Real, Value::Int(i)) => Value::Real(i as f64),
        (Kind::Text, Value::Text(t)) => Value::Text(t),
        (Kind::Text, Value::Int(i)) => Value::Text(i.to_string()),
        (Kind::Text, Value::Real(r)) => Value::Text(r.to_string()),
        (Kind::Text, Value::Bytes(b)) => Value::Text(
            String::from_utf8(b).map_err(|_| bad("bytes that are not UTF-8 text".into()))?,
        ),
        (Kind::Bytes, Value::Bytes(b)) => Value::Bytes(b),
        (Kind::Bytes, Value::Text(t)) => Value::Bytes(t.into_bytes()),
        (kind, value) => return Err(bad(format!("{value:?} cannot be stored as {kind:?}"))),
    })
}

fn bind<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    kind: Kind,
    value: Value,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    // A NULL is bound with the column's type: PostgreSQL refuses a bigint NULL for text.
    match (kind, value) {
        (Kind::Int, Value::Int(i)) => query.bind(i),
        (Kind::Int, _) => query.bind(None::<i64>),
        (Kind::Bool, Value::Int(i)) => query.bind(i != 0),
        (Kind::Bool, _) => query.bind(None::<bool>),
        (Kind::Real, Value::Real(r)) => query.bind(r),
        (Kind::Real, _) => query.bind(None::<f64>),
        (Kind::Text, Value::Text(t)) => query.bind(t),
        (Kind::Text, _) => query.bind(None::<String>),
        (Kind::Bytes, Value::Bytes(b)) => query.bind(b),
        (Kind::Bytes, _) => query.bind(None::<Vec<u8>>),
    }
}

async fn count(conn: &mut AnyConnection, table: &str) -> std::result::Result<i64, StoreError> {
    let sql = format!("SELECT COUNT(*) FROM {}", quote(table));
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_one(conn)
        .await?)
}

/// Copies every table of `source` (SQLite) into `target` (PostgreSQL), both migrated to
/// the newest schema already, in one transaction on the target. Refuses a target that
/// holds anything but settings. The source is read in one snapshot.
pub async fn sqlite_to_postgres(source: &Store, target: &Store) -> Result<TransferReport> {
    if target.backend() != Backend::Postgres {
        return Err(TransferError::TargetNotPostgres);
    }
    let mut src = source.pool().begin().await.map_err(StoreError::from)?;
    let mut dst = target.begin().await?;
    // The copied rows are history: the webhook triggers (migration 0017) make no
    // deliveries for them while this is set (for this transaction only).
    sqlx::query("SELECT set_config('maildesk.copying', 'on', true)")
        .execute(&mut *dst)
        .await
        .map_err(StoreError::from)?;
    let plan = plan(&mut src, &mut dst).await?;
    for table in &plan.tables {
        if REPLACED.contains(&table.name.as_str()) {
            continue;
        }
        let rows = count(&mut dst, &table.name).await?;
        if rows > 0 {
            return Err(TransferError::TargetNotEmpty {
                table: table.name.clone(),
                rows,
            });
        }
    }
    let sqlite_sequence: HashMap<String, i64> =
        if sqlite_tables(&mut src).await?.contains("sqlite_sequence") {
            sqlx::query_as("SELECT name, seq FROM sqlite_sequence")
                .fetch_all(&mut *src)
                .await
                .map_err(StoreError::from)?
                .into_iter()
                .collect()
        } else {
            HashMap::new()
        };

    let mut report = TransferReport::default();
    for table in &plan.tables {
        let span = tracing::info_span!("copy", table = %table.name);
        let _entered = span.enter();
        if REPLACED.contains(&table.name.as_str()) {
            let sql = format!("DELETE FROM {}", quote(&table.name));
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut *dst)
                .await
                .map_err(StoreError::from)?;
        }
        let copied = copy_table(&mut src, &mut dst, table).await?;
        let source_rows = count(&mut src, &table.name).await?;
        let target_rows = count(&mut dst, &table.name).await?;
        if copied != source_rows || target_rows != source_rows {
            return Err(TransferError::CountMismatch {
                table: table.name.clone(),
                source_rows,
                target_rows,
            });
        }
        for column in &table.sequenced {
            // Past the highest id copied, and past any id SQLite handed out before
            // (AUTOINCREMENT never reuses the id of a deleted row; neither does this).
            let floor = sqlite_sequence.get(&table.name).copied().unwrap_or(0);
            let sql = format!(
                "SELECT setval(pg_get_serial_sequence($1, $2), GREATEST(COALESCE(MAX({col}), 0), $3) + 1, false) FROM {table}",
                col = quote(column),
                table = quote(&table.name)
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&table.name)
                .bind(column)
                .bind(floor)
                .execute(&mut *dst)
                .await
                .map_err(StoreError::from)?;
        }
        tracing::info!(rows = copied, "copied");
        report.tables.push((table.name.clone(), copied));
    }
    dst.commit().await.map_err(StoreError::from)?;
    src.rollback().await.map_err(StoreError::from)?;
    report.skipped = plan
        .skipped
        .iter()
        .map(|(t, why)| (t.clone(), why.to_string()))
        .collect();
    Ok(report)
}

/// A row's primary key, and the values of its columns that refer to its own table.
type Deferred = (Vec<Value>, Vec<(usize, Value)>);

/// Copies one table's rows; columns referring to the same table are set afterwards.
async fn copy_table(
    src: &mut AnyConnection,
    dst: &mut AnyConnection,
    table: &TablePlan,
) -> Result<i64> {
    let names: Vec<String> = table.columns.iter().map(|c| quote(&c.name)).collect();
    let select = format!("SELECT {} FROM {}", names.join(", "), quote(&table.name));
    let insert = format!(
        "INSERT INTO {} ({}) VALUES ({})",
        quote(&table.name),
        names.join(", "),
        super::placeholders(1, names.len())
    );
    let deferred: Vec<usize> = table
        .columns
        .iter()
        .enumerate()
        .filter(|(_, c)| table.self_refs.contains(&c.name))
        .map(|(i, _)| i)
        .collect();
    let key: Vec<usize> = table
        .key
        .iter()
        .filter_map(|k| table.columns.iter().position(|c| &c.name == k))
        .collect();
    // (primary key values, (column index, value) set after the table's rows)
    let mut later: Vec<Deferred> = Vec::new();
    let mut copied = 0;
    let mut rows = sqlx::query(sqlx::AssertSqlSafe(select)).fetch(&mut *src);
    while let Some(row) = rows.try_next().await.map_err(StoreError::from)? {
        let mut values = Vec::with_capacity(table.columns.len());
        for (i, column) in table.columns.iter().enumerate() {
            let value = read_value(&row, i).map_err(StoreError::from)?;
            values.push(convert(&table.name, column, value)?);
        }
        let mut set_later = Vec::new();
        for &i in &deferred {
            if values[i] != Value::Null {
                set_later.push((i, std::mem::replace(&mut values[i], Value::Null)));
            }
        }
        if !set_later.is_empty() {
            later.push((key.iter().map(|&k| values[k].clone()).collect(), set_later));
        }
        let mut query = sqlx::query(sqlx::AssertSqlSafe(insert.clone()));
        for (column, value) in table.columns.iter().zip(values) {
            query = bind(query, column.kind, value);
        }
        query.execute(&mut *dst).await.map_err(StoreError::from)?;
        copied += 1;
    }
    drop(rows);
    for (key_values, set) in later {
        let assignments: Vec<String> = set
            .iter()
            .enumerate()
            .map(|(n, (i, _))| format!("{} = ${}", quote(&table.columns[*i].name), n + 1))
            .collect();
        let conditions: Vec<String> = key
            .iter()
            .enumerate()
            .map(|(n, &k)| format!("{} = ${}", quote(&table.columns[k].name), set.len() + n + 1))
            .collect();
        let sql = format!(
            "UPDATE {} SET {} WHERE {}",
            quote(&table.name),
            assignments.join(", "),
            conditions.join(" AND ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (i, value) in set {
            query = bind(query, table.columns[i].kind, value);
        }
        for (&k, value) in key.iter().zip(key_values) {
            query = bind(query, table.columns[k].kind, value);
        }
        query.execute(&mut *dst).await.map_err(StoreError::from)?;
    }
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(kind: Kind) -> Column {
        Column {
            name: "c".into(),
            kind,
        }
    }

    #[test]
    fn loosely_typed_sqlite_values_take_the_target_type() {
        let int = column(Kind::Int);
        assert_eq!(
            convert("t", &int, Value::Text(" 42".into())).unwrap(),
            Value::Int(42)
        );
        assert!(convert("t", &int, Value::Text("x".into())).is_err());
        assert!(convert("t", &int, Value::Bytes(vec![1])).is_err());
        let text = column(Kind::Text);
        assert_eq!(
            convert("t", &text, Value::Int(7)).unwrap(),
            Value::Text("7".into())
        );
        assert!(convert("t", &text, Value::Bytes(vec![0xff])).is_err());
        assert_eq!(
            convert("t", &column(Kind::Bytes), Value::Text("ab".into())).unwrap(),
            Value::Bytes(b"ab".to_vec())
        );
        assert_eq!(convert("t", &text, Value::Null).unwrap(), Value::Null);
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote("tickets"), "\"tickets\"");
        assert_eq!(quote("a\"b"), "\"a\"\"b\"");
    }
}
