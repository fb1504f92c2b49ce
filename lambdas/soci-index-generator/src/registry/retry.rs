//! Which registry failures are worth retrying, and the backoff between attempts.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};

/// No wait between attempts is longer than this (also caps a registry's `Retry-After`).
const MAX_DELAY: Duration = Duration::from_secs(20);
/// The first wait after a `429` without `Retry-After`, doubled per attempt: throttling lasts
/// seconds, not the milliseconds a dropped connection needs (4 attempts: 2 + 4 + 8 s).
const THROTTLED_BASE_DELAY: Duration = Duration::from_secs(2);

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

    /// The wait after an answer with `status`: [`RetryPolicy::delay`], at least the throttling
    /// backoff after a `429` that did not say how long to wait.
    pub fn delay_after(
        &self,
        attempt: u32,
        status: u16,
        retry_after: Option<Duration>,
    ) -> Duration {
        let delay = self.delay(attempt, retry_after);
        if status == 429 && retry_after.is_none() {
            let throttled = THROTTLED_BASE_DELAY.saturating_mul(1u32 << attempt.min(6));
            delay.max(throttled.min(MAX_DELAY))
        } else {
            delay
        }
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

/// A `Retry-After` in either form RFC 9110 allows: seconds, or an HTTP date (a date in the
/// past means no wait).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
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

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let mut h = HeaderMap::new();
        h.insert(header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        let at = SystemTime::now() + Duration::from_secs(30);
        h.insert(
            header::RETRY_AFTER,
            httpdate::fmt_http_date(at).parse().unwrap(),
        );
        let wait = retry_after(&h).expect("an HTTP date is understood");
        assert!(
            wait > Duration::from_secs(28) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        h.insert(
            header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(
            retry_after(&h),
            Some(Duration::ZERO),
            "a past date: no wait"
        );
        h.insert(header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn throttling_backs_off_for_seconds() {
        let p = RetryPolicy {
            attempts: 4,
            base_delay: Duration::from_millis(200),
        };
        let total: Duration = (0..3).map(|a| p.delay_after(a, 429, None)).sum();
        assert!(total >= Duration::from_secs(14), "{total:?}");
        assert!(p.delay_after(0, 503, None) < Duration::from_secs(1));
        assert_eq!(
            p.delay_after(0, 429, Some(Duration::from_secs(1))),
            Duration::from_secs(1),
            "the registry's own Retry-After wins"
        );
    }
}
