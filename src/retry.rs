//! The retry policy: which failures are retried, how long to wait, and when to give up.

use std::hash::BuildHasher;
use std::time::{Duration, SystemTime};

use reqwest::Method;
use reqwest::header::HeaderValue;

/// How many times and for how long a request is retried.
///
/// 429 and 503 are retried for every method, because Graph did not process the request. 504,
/// timeouts and broken connections are retried only for idempotent methods (`GET`, `HEAD`,
/// `PUT`, `DELETE`, `OPTIONS`) and for the session calls, because the first attempt may have
/// taken effect. A connection that could not be opened is retried for every method, because
/// nothing was sent.
///
/// A `Retry-After` header, in seconds or as an HTTP date, sets the wait. Without one, and when
/// it is zero or a date in the past, the wait grows exponentially from
/// [`initial_backoff`](RetryPolicy::initial_backoff) with random jitter. A wait that would end
/// after [`max_elapsed`](RetryPolicy::max_elapsed) fails at once with
/// [`Error::Throttled`](crate::Error::Throttled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: u32,
    max_elapsed: Duration,
    initial_backoff: Duration,
    max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 6,
            max_elapsed: Duration::from_secs(120),
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Returns a policy that never retries.
    pub fn never() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// Sets the maximum number of attempts, the first included. Default is 6; 0 counts as 1.
    pub fn max_attempts(mut self, attempts: u32) -> RetryPolicy {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Sets the time after which no further attempt starts. Default is 120 seconds.
    pub fn max_elapsed(mut self, budget: Duration) -> RetryPolicy {
        self.max_elapsed = budget;
        self
    }

    /// Sets the first wait when the server sent no `Retry-After`. Default is 500 ms.
    pub fn initial_backoff(mut self, backoff: Duration) -> RetryPolicy {
        self.initial_backoff = backoff;
        self
    }

    /// Sets the longest wait between attempts without `Retry-After`. Default is 30 seconds.
    pub fn max_backoff(mut self, backoff: Duration) -> RetryPolicy {
        self.max_backoff = backoff;
        self
    }

    pub(crate) fn attempts(&self) -> u32 {
        self.max_attempts
    }

    pub(crate) fn budget(&self) -> Duration {
        self.max_elapsed
    }

    /// Returns the wait before attempt `attempt + 1` when the server gave no `Retry-After`:
    /// exponential growth capped at `max_backoff`, with jitter in its upper half.
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(16);
        let ceiling = self
            .initial_backoff
            .saturating_mul(1 << exponent)
            .min(self.max_backoff);
        let half = ceiling / 2;
        let jitter_nanos = half.as_nanos().min(u128::from(u64::MAX)) as u64;
        let jitter = if jitter_nanos == 0 {
            0
        } else {
            random_u64() % jitter_nanos
        };
        half + Duration::from_nanos(jitter)
    }
}

/// Returns a random number from the standard library's per-process hasher keys: enough for jitter,
/// without a dependency on a random number crate.
fn random_u64() -> u64 {
    std::collections::hash_map::RandomState::new().hash_one(SystemTime::now())
}

/// The classes of requests, by which failures they may be retried after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryClass {
    /// Sending twice has the effect of sending once.
    Idempotent,
    /// Sending twice may have a different effect.
    NonIdempotent,
    /// createSession, refreshSession, closeSession and operation polls, which Graph documents
    /// as safe to repeat.
    SessionCall,
}

impl RetryClass {
    pub(crate) fn for_method(method: &Method) -> RetryClass {
        if method.is_idempotent() {
            RetryClass::Idempotent
        } else {
            RetryClass::NonIdempotent
        }
    }

    /// Returns `true` when a failure that may have taken effect can be retried.
    pub(crate) fn repeats_safely(self) -> bool {
        !matches!(self, RetryClass::NonIdempotent)
    }
}

/// The longest `Retry-After` accepted; longer values are clamped so that arithmetic on them
/// cannot overflow. Any wait this long is far beyond a retry budget anyway.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);

/// Parses `Retry-After` as delay seconds or an HTTP date, relative to `now`.
///
/// Returns `None` for a missing, negative or malformed value, so the caller falls back to its
/// own backoff. A date in the past gives a zero delay.
pub(crate) fn parse_retry_after(value: &HeaderValue, now: SystemTime) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let seconds = text.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER));
    }
    let date = httpdate::parse_http_date(text).ok()?;
    let delay = date.duration_since(now).unwrap_or(Duration::ZERO);
    Some(delay.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(text: &str) -> HeaderValue {
        HeaderValue::from_str(text).expect("a valid header value")
    }

    #[test]
    fn retry_after_accepts_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));

        assert_eq!(
            parse_retry_after(&header("7"), now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            parse_retry_after(&header(&later), now),
            Some(Duration::from_secs(30))
        );
    }

    #[test]
    fn retry_after_rejects_garbage() {
        let now = SystemTime::now();

        for bad in ["-5", "soon", "1.5", "", "0x10"] {
            assert_eq!(parse_retry_after(&header(bad), now), None, "{bad:?}");
        }
    }

    #[test]
    fn retry_after_clamps_huge_values() {
        let huge = parse_retry_after(&header("99999999999999999999999"), SystemTime::now());

        assert_eq!(huge, Some(MAX_RETRY_AFTER));
    }

    #[test]
    fn backoff_grows_and_stays_capped() {
        let policy = RetryPolicy::default();

        for attempt in 1..40 {
            let wait = policy.backoff(attempt);
            assert!(
                wait <= Duration::from_secs(30),
                "attempt {attempt} waited {wait:?}"
            );
        }
        assert!(policy.backoff(1) >= Duration::from_millis(250));
        assert!(policy.backoff(1) < Duration::from_millis(500));
    }
}
