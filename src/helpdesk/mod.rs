//! The helpdesk's rules: what staff and customers may do to tickets, tasks and users, and
//! the read models the portal, the API and the command line show. Every change works in the
//! caller's transaction.

pub mod actions;
pub mod customer;
pub mod password;
pub mod tasks;
pub mod ticket_views;
pub mod users;
