//! The staff portal (`/portal/…`): one module per resource.


pub mod account;
pub mod api_clients;
pub mod dashboard;
pub mod files;
pub mod live;
pub mod quarantine;
pub mod queue;
pub mod reports;
pub mod tasks;
pub mod ticket;
pub mod tokens;
pub mod users;
pub mod webhooks;