//! Password hashing for staff users: argon2id in PHC string form, as a bounded resource.
//!
//! One argon2 computation takes ~19 MiB and tens of milliseconds of a core, and anyone
//! can ask for one (sign-in, registration). So every hash and check in the process runs
//! under one [`Limiter`]: at most `web.password_hashes_at_once` at a time, and a request
//! that cannot start within `web.password_hash_wait_ms` is answered "busy" (503 with
//! `Retry-After`) instead of queueing without end. Memory stays bounded by the limit.

use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::Duration;

use std::cell::{Cell, RefCell};

use argon2::password_hash::phc::{Output, ParamsString, Salt};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
use tokio::sync::Semaphore;

pub const MIN_LENGTH: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password must be at least {MIN_LENGTH} characters")]
    TooShort,
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// Every hashing slot stayed taken for the whole wait.
    #[error("the server is busy checking passwords; try again in a moment")]
    Busy,
}

/// The process-wide allowance of concurrent argon2 computations: as many threads of
/// its own, each fed one hash at a time. Not tokio's blocking pool: there each hash may
/// land on another thread, and the allocator keeps the freed 19 MiB in that thread's
/// arena, so memory grew with the number of threads that ever hashed (measured: +387 MB
/// for 28 hashes two at a time); on a fixed set of threads it stays at one block each.
pub struct Limiter {
    slots: Semaphore,
    wait: Duration,
    threads: usize,
    jobs: OnceLock<mpsc::Sender<Job>>,
}

type Job = Box<dyn FnOnce() + Send>;

impl Limiter {
    /// `at_once` 0 means one per core.
    pub fn new(at_once: u32, wait: Duration) -> Limiter {
        let threads = match at_once {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n as usize,
        };
        Limiter {
            slots: Semaphore::new(threads),
            wait,
            threads,
            jobs: OnceLock::new(),
        }
    }

    /// Runs `work` on a hashing thread once a slot is free, or gives up after the wait.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let _slot = tokio::time::timeout(self.wait, self.slots.acquire())
            .await
            .map_err(|_| PasswordError::Busy)?
            .map_err(|_| PasswordError::Busy)?;
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(work());
        });
        let sent = self.jobs.get_or_init(|| self.start_threads()).send(job);
        sent.map_err(|_| PasswordError::Hash("the hashing threads are gone".into()))?;
        result
            .await
            .map_err(|_| PasswordError::Hash("the hash did not finish".into()))
    }

    fn start_threads(&self) -> mpsc::Sender<Job> {
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for n in 0..self.threads {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || loop {
                    KEEPS_MEMORY.set(true);
                    let job = receiver.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    match job {
                        // A panicking hash drops its answer (the caller sees an error);
                        // the thread stays for the next one.
                        Ok(job) => {
                            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                        }
                        Err(_) => return,
                    }
                })
                .expect("starting a hashing thread");
        }
        sender
    }
}

static LIMITER: OnceLock<Limiter> = OnceLock::new();

/// Sets the process's limits (from `[web]`); the first call wins. Without it the
/// defaults hold: one hash per core, a wait of 3 s.
pub fn configure(at_once: u32, wait: Duration) {
    let _ = LIMITER.set(Limiter::new(at_once, wait));
}

fn limiter() -> &'static Limiter {
    LIMITER.get_or_init(|| Limiter::new(0, Duration::from_secs(3)))
}

/// Hashes a new password within the process's limit.
pub async fn hash(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_LENGTH {
        return Err(PasswordError::TooShort);
    }
    let password = password.to_string();
    limiter().run(move || hash_now(&password)).await?
}

/// Whether `password` matches `stored_hash`, within the process's limit.
pub async fn verify(password: &str, stored_hash: &str) -> Result<bool, PasswordError> {
    let (password, stored_hash) = (password.to_string(), stored_hash.to_string());
    limiter()
        .run(move || verify_now(&password, &stored_hash))
        .await
}

/// Hashes on the calling thread, outside the limit: only for work that is not an
/// outsider's request (the decoy hash made once at start, tests).
pub fn hash_now(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_LENGTH {
        return Err(PasswordError::TooShort);
    }
    let failed = |e: &dyn std::fmt::Display| PasswordError::Hash(e.to_string());
    let params = Params::default();
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut salt = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut salt);
    let mut output = [0u8; Params::DEFAULT_OUTPUT_LEN];
    compute(&argon2, &params, password, &salt, &mut output).map_err(|e| failed(&e))?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| failed(&e))?,
        salt: Some(Salt::new(&salt).map_err(|e| failed(&e))?),
        hash: Some(Output::new(&output).map_err(|e| failed(&e))?),
    };
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `stored_hash` (with the parameters it was
/// made with), compared in constant time.
fn verify_now(password: &str, stored_hash: &str) -> bool {
    let Ok(stored) = PasswordHash::new(stored_hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&stored.salt, &stored.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(stored.algorithm.as_str()),
        Params::try_from(&stored),
    ) else {
        return false;
    };
    let version = match stored.version.map(Version::try_from).transpose() {
        Ok(version) => version.unwrap_or_default(),
        Err(_) => return false,
    };
    let argon2 = Argon2::new(algorithm, version, params.clone());
    let mut output = vec![0u8; expected.len()];
    if compute(&argon2, &params, password, salt, &mut output).is_err() {
        return false;
    }
    // `Output`'s equality is constant-time.
    Output::new(&output).is_ok_and(|computed| computed == *expected)
}

thread_local! {
    /// argon2's working memory, kept by each hashing thread between hashes: allocating
    /// and freeing 19 MiB per hash made the allocator keep ~20 MB more per hash
    /// (measured: 27 MB → 125 MB peak after 5 checks on one thread).
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
    /// Set on the hashing threads only: elsewhere (the decoy hash at start) the memory
    /// is given back at once.
    static KEEPS_MEMORY: Cell<bool> = const { Cell::new(false) };
}

fn compute(
    argon2: &Argon2<'_>,
    params: &Params,
    password: &str,
    salt: &[u8],
    output: &mut [u8],
) -> Result<(), argon2::Error> {
    let blocks = params.block_count();
    let mut fill = |memory: &mut [Block]| {
        argon2.hash_password_into_with_memory(password.as_bytes(), salt, output, memory)
    };
    if !KEEPS_MEMORY.get() {
        return fill(&mut vec![Block::default(); blocks]);
    }
    MEMORY.with_borrow_mut(|memory| {
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        fill(&mut memory[..blocks])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn hashes_argon2id_and_verifies() {
        let hash = hash_now("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_now("correct horse", &hash));
        assert!(!verify_now("wrong horse", &hash));
        assert!(!verify_now("correct horse", "not a hash"));
    }

    #[test]
    fn hashes_of_the_argon2_crate_verify_and_ours_verify_there() {
        use argon2::{PasswordHasher, PasswordVerifier};
        let theirs = Argon2::default()
            .hash_password(b"correct horse")
            .unwrap()
            .to_string();
        assert!(verify_now("correct horse", &theirs));
        assert!(!verify_now("correct horsf", &theirs));
        let ours = hash_now("correct horse").unwrap();
        assert!(Argon2::default()
            .verify_password(b"correct horse", ours.as_str())
            .is_ok());
        // Other parameters (an older or tuned hash) verify with their own.
        let light = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(4096, 3, 1, None).unwrap(),
        )
        .hash_password(b"correct horse")
        .unwrap()
        .to_string();
        assert!(verify_now("correct horse", &light));
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(matches!(hash_now("short"), Err(PasswordError::TooShort)));
    }

    #[tokio::test]
    async fn no_more_run_at_once_than_the_limit_and_the_rest_give_up_after_the_wait() {
        let limiter = Arc::new(Limiter::new(2, Duration::from_millis(150)));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let (limiter, running, most) = (limiter.clone(), running.clone(), most.clone());
                tokio::spawn(async move {
                    limiter
                        .run(move || {
                            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(now, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(100));
                            running.fetch_sub(1, Ordering::SeqCst);
                        })
                        .await
                })
            })
            .collect();
        let mut busy = 0;
        for task in tasks {
            if matches!(task.await.unwrap(), Err(PasswordError::Busy)) {
                busy += 1;
            }
        }
        assert_eq!(most.load(Ordering::SeqCst), 2, "never more than the limit");
        // 2 at once, 100 ms each, 150 ms of patience: 4 get through, the others are told busy.
        assert!((4..=6).contains(&(10 - busy)), "{busy} busy");
    }
}
