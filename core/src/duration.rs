//! Durations given as numbers, as the bindings take them (Python's seconds, JavaScript's
//! milliseconds): finite and not negative, or an `InvalidArgument` error naming the option.

use std::time::Duration;

use crate::error::{Error, Result};

/// `value` seconds, for the option `what`.
pub fn seconds(what: &str, value: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(value).map_err(|_| {
        Error::invalid_argument(format!(
            "{what} must be a number of seconds, at least 0 (got {value})"
        ))
    })
}

/// `value` milliseconds, for the option `what`.
pub fn millis(what: &str, value: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(value / 1000.0).map_err(|_| {
        Error::invalid_argument(format!(
            "{what} must be a number of milliseconds, at least 0 (got {value})"
        ))
    })
}

/// `value` seconds if given.
pub fn opt_seconds(what: &str, value: Option<f64>) -> Result<Option<Duration>> {
    value.map(|v| seconds(what, v)).transpose()
}

/// `value` milliseconds if given.
pub fn opt_millis(what: &str, value: Option<f64>) -> Result<Option<Duration>> {
    value.map(|v| millis(what, v)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_become_durations_or_clear_errors() {
        assert_eq!(seconds("t", 1.5).unwrap(), Duration::from_millis(1500));
        assert_eq!(millis("t", 250.0).unwrap(), Duration::from_millis(250));
        for bad in [-1.0, f64::NAN, f64::INFINITY] {
            let e = seconds("timeout", bad).unwrap_err();
            assert!(e.message().contains("timeout"), "{e}");
            assert!(millis("timeoutMs", bad).is_err());
        }
    }
}
