//! A test hook that makes a panic happen where none is known today, so the tests can prove
//! that a panic loses nothing. Debug builds only: release builds compile it to nothing.
//!
//! `FAILPOINTS=<stage>:<marker>[,<stage>:<marker>…]` panics at `stage` (`parse`,
//! `store`, `mailbox`) when the subject at hand (the raw message, the mailbox name)
//! contains `marker`.

#[cfg(debug_assertions)]
pub fn check(stage: &str, subject: &[u8]) {
    use std::sync::OnceLock;
    static HOOKS: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    let hooks = HOOKS.get_or_init(|| {
        let value = std::env::var("FAILPOINTS").unwrap_or_default();
        value
            .split(',')
            .filter_map(|hook| hook.split_once(':'))
            .map(|(stage, marker)| (stage.to_string(), marker.as_bytes().to_vec()))
            .collect()
    });
    for (wanted, marker) in hooks {
        if wanted == stage && memchr::memmem::find(subject, marker).is_some() {
            panic!("FAILPOINTS at {stage}");
        }
    }
}

#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn check(_stage: &str, _subject: &[u8]) {}
