//! Which registry failures are worth retrying, and the backoff between attempts.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};

/// No wait between attempts is longer than this (also caps a registry's `Retry-After`).
const MAX_DELAY: Duration = Duration::from_secs(20);

/// Retries of transient failures: registry requests, and restarts of a broken layer stream.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub base_delay: Duration,
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1`: `base_delay` doubled per attempt, plus up to 25 %
    /// jitter so that concurrent layers do not retry in lockstep, or the registry's
    /// `Retry-After` when it gave one; never more than 20 s.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self.base_delay.saturating_mul(1u32 << attempt.min(6));
        let jitter = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() % 100)
            .unwrap_or(0);
        let d = exp + exp * jitter / 400; // up to +25 %
        retry_after
            .map(|r| r.min(MAX_DELAY))
            .unwrap_or(d)
            .min(MAX_DELAY)
    }

    /// True when attempt `attempt` (from 0) may be followed by another.
    pub fn allows_another(&self, attempt: u32) -> bool {
        attempt + 1 < self.attempts
    }
}

/// Whether a status is worth retrying.
pub fn is_transient_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

/// Whether a transport error is worth retrying (timeouts, refused or broken connections).
pub(crate) fn is_transient_error(e: &reqwest::Error) -> bool {
    e.is_timeout() || e.is_connect() || e.is_request() || e.is_body()
}

/// A `Retry-After` given in seconds.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_statuses() {
        for s in [429, 500, 502, 503, 504, 408] {
            assert!(is_transient_status(StatusCode::from_u16(s).unwrap()));
        }
        for s in [400, 401, 403, 404, 501] {
            assert!(!is_transient_status(StatusCode::from_u16(s).unwrap()));
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            attempts: 4,
            base_delay: Duration::from_millis(100),
        };
        assert!(p.delay(0, None) >= Duration::from_millis(100));
        assert!(p.delay(2, None) >= Duration::from_millis(400));
        assert!(p.delay(30, None) <= Duration::from_secs(20));
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert!(p.allows_another(2));
        assert!(!p.allows_another(3));
    }
}
