//! How many API requests a token (or signed-in user) and a client address may make per
//! minute (`web.api_per_token_per_minute`, `web.api_per_client_per_minute`). Counted in
//! this process by governor's keyed GCRA limiter: behind a balancer each instance
//! allows its own share. Over the limit: 429 with Retry-After.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::StatusCode;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::{ApiError, ApiResult};

/// Keys not seen within their window are dropped this often (in checks).
const SWEEP_EVERY: u64 = 4096;

pub struct Limits {
    per_caller: Option<DefaultKeyedRateLimiter<String>>,
    per_client: Option<DefaultKeyedRateLimiter<String>>,
    checks: AtomicU64,
}

impl Limits {
    pub fn new(per_caller_per_minute: u32, per_client_per_minute: u32) -> Limits {
        let limiter = |n| NonZeroU32::new(n).map(|n| RateLimiter::keyed(Quota::per_minute(n)));
        Limits {
            per_caller: limiter(per_caller_per_minute),
            per_client: limiter(per_client_per_minute),
            checks: AtomicU64::new(0),
        }
    }

    /// Before anything else (so guessing tokens is limited too).
    pub fn check_client(&self, address: &str) -> ApiResult<()> {
        self.check(self.per_client.as_ref(), address, "from this address")
    }

    pub fn check_caller(&self, key: &str) -> ApiResult<()> {
        self.check(self.per_caller.as_ref(), key, "for this token")
    }

    fn check(
        &self,
        limiter: Option<&DefaultKeyedRateLimiter<String>>,
        key: &str,
        whose: &str,
    ) -> ApiResult<()> {
        let Some(limiter) = limiter else {
            return Ok(());
        };
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            limiter.retain_recent();
        }
        limiter.check_key(&key.to_string()).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            ApiError {
                retry_after: Some(seconds.max(1)),
                ..ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "too many requests {whose}; try again in {} s",
                        seconds.max(1)
                    ),
                )
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_gets_its_own_allowance_and_a_retry_time() {
        let limits = Limits::new(2, 0);
        assert!(limits.check_caller("a").is_ok());
        assert!(limits.check_caller("a").is_ok());
        let refused = limits.check_caller("a").unwrap_err();
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(
            (1..=30).contains(&refused.retry_after.unwrap()),
            "{refused:?}"
        );
        assert!(limits.check_caller("b").is_ok());
        for _ in 0..100 {
            assert!(limits.check_client("anyone").is_ok(), "0 means no limit");
        }
    }
}
