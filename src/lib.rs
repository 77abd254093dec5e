//! maildesk: an e-mail helpdesk in one daemon. Mail in, tickets out; nothing lost,
//! nothing doubled, no loops.
pub mod app;
pub mod cli;
pub mod config;
pub mod domain;
pub mod failpoint;
pub mod helpdesk;
pub mod inbound;
pub mod integrations;
pub mod mail;
pub mod net;
pub mod outbound;
pub mod reports;
pub mod runtime;
pub mod store;
pub mod web;
