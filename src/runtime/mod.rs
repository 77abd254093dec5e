//! What keeps the daemon running: the durable job queue, metrics, retention, systemd
//! integration, live updates and the signing secret.

pub mod jobs;
pub mod live;
pub mod metrics;
pub mod retention;
pub mod secrets;
pub mod systemd;
