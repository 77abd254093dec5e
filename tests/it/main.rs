//! Integration tests: one binary, one harness, real servers. The database engine comes
//! from MAILDESK_TEST_DB (`sqlite`, the default, or `postgres`); the README's test
//! command runs the whole suite once for each.

mod support;

mod abuse;
mod api;
mod browser;
mod browser_public;
mod browser_reports;
mod browser_tasks;
mod browser_users;
mod cli;
mod contention;
mod corpus;
mod credentials;
mod dedup;
mod failover;
mod from_sqlite;
mod hostile;
mod imap;
mod in_process;
mod jobs;
mod live;
mod mutation;
mod notices;
mod oauth;
mod observe;
mod openapi;
mod outbound;
mod pool;
mod portal;
mod public;
mod reports;
mod retention;
mod scopes;
mod serve_lock;
mod systemd;
mod tasks;
mod threading;
mod upgrade;
mod users;
mod webhooks;
