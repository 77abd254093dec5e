//! Reading a database whole, whichever engine holds it.

use std::collections::BTreeMap;

use maildesk::store::transfer::{self, Value};
use maildesk::store::Backend;
use sqlx::Connection;

pub async fn connect(url: &str) -> sqlx::AnyConnection {
    sqlx::any::install_default_drivers();
    sqlx::AnyConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"))
}

/// Every row of every table, sorted (the engines return rows in different orders).
pub async fn contents(
    url: &str,
    backend: Backend,
    columns_of: &BTreeMap<String, Vec<String>>,
) -> BTreeMap<String, Vec<Vec<Value>>> {
    let mut conn = connect(url).await;
    let mut all = BTreeMap::new();
    for (table, columns) in columns_of {
        let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
        let mut rows = transfer::read_table(&mut conn, table, &columns)
            .await
            .unwrap_or_else(|e| panic!("{backend:?} {table}: {e}"));
        rows.sort_by(|a, b| a.partial_cmp(b).expect("comparable"));
        all.insert(table.clone(), rows);
    }
    all
}
