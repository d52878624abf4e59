//! Retry policies: how long to wait before trying again, and when to stop. Errors that
//! retrying cannot fix (see [`crate::ErrorKind::is_transient`]) are never retried.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;

use crate::error::Error;

type CustomFn = dyn Fn(u32, &Error) -> Option<Duration> + Send + Sync;

/// When and how often to try again.
#[derive(Clone)]
pub enum RetryPolicy {
    /// Never retry.
    None,
    /// The same wait every time, at most `max_attempts` retries.
    Fixed {
        /// The wait between attempts.
        interval: Duration,
        /// Retries at most (`None`: no limit).
        max_attempts: Option<u32>,
    },
    /// Waits that double (from `initial` up to `max`), each shortened by a random part of up
    /// to `jitter` of itself, so that many clients do not retry in step. The anchors' (and
    /// the Azure SDKs') default.
    ExponentialBackoffWithJitter {
        /// The first wait.
        initial: Duration,
        /// The longest wait.
        max: Duration,
        /// The random part of each wait, 0.0 to 1.0.
        jitter: f64,
        /// Retries at most (`None`: no limit).
        max_attempts: Option<u32>,
    },
    /// The caller decides: given the retry number (1 for the first retry) and the error,
    /// the wait, or `None` to give up.
    Custom(Arc<CustomFn>),
}

impl RetryPolicy {
    /// Exponential back-off with jitter: 100 ms, 200 ms, … up to 10 s, without end.
    pub fn exponential_backoff_with_jitter() -> Self {
        RetryPolicy::ExponentialBackoffWithJitter {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
            jitter: Self::DEFAULT_JITTER,
            max_attempts: None,
        }
    }

    /// The random part of each wait of the default policy.
    pub const DEFAULT_JITTER: f64 = 0.25;

    /// Exponential back-off with jitter, checked: `initial` no longer than `max`, `jitter`
    /// from 0 to 1; at most `max_attempts` retries (`None`: no limit).
    pub fn exponential(
        initial: Duration,
        max: Duration,
        jitter: f64,
        max_attempts: Option<u32>,
    ) -> Result<Self, Error> {
        if initial > max {
            return Err(Error::invalid_argument(format!(
                "the first wait ({initial:?}) must not exceed the longest ({max:?})"
            )));
        }
        if !(0.0..=1.0).contains(&jitter) {
            return Err(Error::invalid_argument(format!(
                "jitter is between 0 and 1, not {jitter}"
            )));
        }
        Ok(RetryPolicy::ExponentialBackoffWithJitter {
            initial,
            max,
            jitter,
            max_attempts,
        })
    }

    /// A fixed interval, without end.
    pub fn fixed(interval: Duration) -> Self {
        RetryPolicy::Fixed {
            interval,
            max_attempts: None,
        }
    }

    /// A policy of the caller's own.
    pub fn custom(f: impl Fn(u32, &Error) -> Option<Duration> + Send + Sync + 'static) -> Self {
        RetryPolicy::Custom(Arc::new(f))
    }

    /// How long to wait before retry number `attempt` (1-based) after `error`, or `None` to
    /// give up. Errors that are not transient are never retried.
    pub fn next_delay(&self, attempt: u32, error: &Error) -> Option<Duration> {
        if !error.kind().is_transient() {
            return None;
        }
        match self {
            RetryPolicy::None => None,
            RetryPolicy::Fixed {
                interval,
                max_attempts,
            } => (max_attempts.is_none_or(|m| attempt <= m)).then_some(*interval),
            RetryPolicy::ExponentialBackoffWithJitter {
                initial,
                max,
                jitter,
                max_attempts,
            } => {
                if max_attempts.is_some_and(|m| attempt > m) {
                    return None;
                }
                let exp = initial.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
                let base = exp.min(*max);
                let cut = rand::rng().random_range(0.0..=jitter.clamp(0.0, 1.0));
                Some(base.mul_f64(1.0 - cut))
            }
            RetryPolicy::Custom(f) => f(attempt, error),
        }
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::exponential_backoff_with_jitter()
    }
}

impl fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RetryPolicy::None => f.write_str("None"),
            RetryPolicy::Fixed {
                interval,
                max_attempts,
            } => f
                .debug_struct("Fixed")
                .field("interval", interval)
                .field("max_attempts", max_attempts)
                .finish(),
            RetryPolicy::ExponentialBackoffWithJitter {
                initial,
                max,
                jitter,
                max_attempts,
            } => f
                .debug_struct("ExponentialBackoffWithJitter")
                .field("initial", initial)
                .field("max", max)
                .field("jitter", jitter)
                .field("max_attempts", max_attempts)
                .finish(),
            RetryPolicy::Custom(_) => f.write_str("Custom"),
        }
    }
}

/// Runs `op` until it succeeds, fails with an error retrying cannot fix, or the policy gives up.
pub async fn retry<T, F, Fut>(policy: &RetryPolicy, mut op: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    let mut attempt = 0;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) => {
                attempt += 1;
                match policy.next_delay(attempt, &e) {
                    Some(d) => {
                        // the first failure of a series is worth a word; the rest repeat it
                        if attempt == 1 {
                            tracing::warn!(error = %e, "c2d: failed; retrying in {d:?}");
                        } else {
                            tracing::debug!(error = %e, attempt, "c2d: failed again; retrying in {d:?}");
                        }
                        tokio::time::sleep(d).await
                    }
                    None => return Err(e),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn transient() -> Error {
        Error::new(ErrorKind::Unavailable, "down")
    }

    #[test]
    fn non_transient_errors_are_never_retried() {
        let e = Error::new(ErrorKind::DeviceNotFound, "no");
        assert_eq!(RetryPolicy::default().next_delay(1, &e), None);
        assert_eq!(
            RetryPolicy::fixed(Duration::from_secs(1)).next_delay(1, &e),
            None
        );
        assert_eq!(RetryPolicy::None.next_delay(1, &transient()), None);
    }

    #[test]
    fn backoff_grows_to_its_cap_with_jitter_below_the_base() {
        let p = RetryPolicy::ExponentialBackoffWithJitter {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            jitter: 0.5,
            max_attempts: Some(6),
        };
        let d1 = p.next_delay(1, &transient()).unwrap();
        assert!(
            d1 <= Duration::from_millis(100) && d1 >= Duration::from_millis(50),
            "{d1:?}"
        );
        let d4 = p.next_delay(4, &transient()).unwrap();
        assert!(
            d4 <= Duration::from_millis(800) && d4 >= Duration::from_millis(400),
            "{d4:?}"
        );
        let d6 = p.next_delay(6, &transient()).unwrap();
        assert!(d6 <= Duration::from_secs(1), "{d6:?}");
        assert_eq!(p.next_delay(7, &transient()), None);
    }

    #[test]
    fn fixed_and_custom() {
        let p = RetryPolicy::Fixed {
            interval: Duration::from_millis(5),
            max_attempts: Some(2),
        };
        assert_eq!(
            p.next_delay(2, &transient()),
            Some(Duration::from_millis(5))
        );
        assert_eq!(p.next_delay(3, &transient()), None);
        let c = RetryPolicy::custom(|n, _| (n < 2).then_some(Duration::from_millis(n as u64)));
        assert_eq!(
            c.next_delay(1, &transient()),
            Some(Duration::from_millis(1))
        );
        assert_eq!(c.next_delay(2, &transient()), None);
    }

    #[tokio::test]
    async fn retry_stops_on_success_or_a_permanent_error() {
        let mut calls = 0;
        let r: Result<u32, Error> = retry(&RetryPolicy::fixed(Duration::ZERO), || {
            calls += 1;
            let n = calls;
            async move {
                if n < 3 {
                    Err(transient())
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(r.unwrap(), 3);
        let mut calls = 0;
        let r: Result<(), Error> = retry(&RetryPolicy::fixed(Duration::ZERO), || {
            calls += 1;
            async { Err(Error::new(ErrorKind::Unauthorized, "no")) }
        })
        .await;
        assert_eq!(r.unwrap_err().kind(), ErrorKind::Unauthorized);
        assert_eq!(calls, 1);
    }
}
