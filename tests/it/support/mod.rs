//! What the integration tests share: the test environment and its database, the daemon
//! as a process, the portal through its router, the API, real mail servers (Dovecot and
//! an SMTP relay), a headless browser, and waiting on conditions.
//!
//! Tiers: `scripts/test` runs every test on both engines; `scripts/test --fast` runs the
//! unit tests and these integration tests on SQLite only, without the slow ones: those
//! named in `SLOW_TESTS` at the top of scripts/test, by module (`browser`) or by test
//! (`imap::the_corpus_through_imap`). A test that drives Chromium belongs in a `browser*`
//! module; another that takes more than about ten seconds is added to that list.

pub mod api;
pub mod browser;
pub mod chromium;
pub mod daemon;
pub mod db;
pub mod env;
pub mod mail;
pub mod net;
pub mod portal;
pub mod public;
pub mod wait;

pub use daemon::{kill, terminate, Spawned, ANY_PORT};
pub use env::{corpus_dir, ingest_text, is_postgres, run_binary, TestEnv};
pub use net::{free_port, http_request};
pub use wait::wait_until;
