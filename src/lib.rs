//! maildesk: an e-mail helpdesk in one daemon. Mail in, tickets out; nothing lost,
//! nothing doubled, no loops.

pub mod actions;
pub mod app;
pub mod cli;
pub mod config;
pub mod customer;
pub mod domain;
pub mod failpoint;
pub mod fetch;
pub mod ingest;
pub mod jobs;
pub mod live;
pub mod mail;
pub mod metrics;
pub mod net;
pub mod oauth;
pub mod outbound;
pub mod password;
pub mod progress;
pub mod reports;
pub mod retention;
pub mod secret;
pub mod smtp;
pub mod store;
pub mod systemd;
pub mod tasks;
pub mod tickets;
pub mod timefmt;
pub mod users;
pub mod web;
pub mod webhooks;
