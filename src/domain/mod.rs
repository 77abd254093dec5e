//! Pure domain types and rules: no I/O, no database, no clock (time is passed in).

pub mod access;
pub mod address;
pub mod authres;
pub mod automatic;
pub mod commands;
pub mod datetime;
pub mod model;
pub mod secret;
pub mod signing;
pub mod subject;
pub mod text;
pub mod threading;

pub use model::{
    Direction, MessageKind, ParticipantRole, Priority, Role, TaskPriority, TaskStatus,
    TicketStatus, UnknownValue,
};
