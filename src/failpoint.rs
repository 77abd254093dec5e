//! A test hook that makes a panic happen where none is known today, so the tests can prove
//! that a panic loses nothing. Debug builds only: release builds compile it to nothing.
//!
//! `MAILDESK_TEST_PANIC=<stage>:<marker>` panics at `stage` (`parse`, `store`, `mailbox`)
//! when the subject at hand (the raw message, the mailbox name) contains `marker`.

#[cfg(debug_assertions)]
pub fn check(stage: &str, subject: &[u8]) {
    use std::sync::OnceLock;
    static HOOK: OnceLock<Option<(String, Vec<u8>)>> = OnceLock::new();
    let hook = HOOK.get_or_init(|| {
        let value = std::env::var("MAILDESK_TEST_PANIC").ok()?;
        let (stage, marker) = value.split_once(':')?;
        Some((stage.to_string(), marker.as_bytes().to_vec()))
    });
    if let Some((wanted, marker)) = hook {
        if wanted == stage && memchr::memmem::find(subject, marker).is_some() {
            panic!("MAILDESK_TEST_PANIC at {stage}");
        }
    }
}

#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn check(_stage: &str, _subject: &[u8]) {}
