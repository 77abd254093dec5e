//! Mail coming in: the IMAP worker, and ingest (one path for IMAP, the MTA pipe and mbox
//! imports).

pub mod imap_worker;
pub mod ingest;
