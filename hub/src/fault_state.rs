//! The faults a hub has been asked to show that the protocols consult as they work: a delay
//! on a device's deliveries, and refusals of C2D sends with one of IoT Hub's errors. The
//! other faults live where they act (a lost acknowledgement in the state, a stalled commit
//! in the store, a dropped connection in the sessions); `faults.rs` drives them all.
//!
//! Imports nothing of the crate: the context holds one [`FaultState`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// The IoT Hub error a refused C2D send is answered with ([`Fault::RefuseSends`](crate::Fault)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SendRefusal {
    /// 429001 ThrottlingException: AMQP `com.microsoft:device-container-throttled`, as the
    /// hub's throttling answers (a client retries it after backing off).
    Throttled,
    /// 503001 ServiceUnavailable (server busy): AMQP `amqp:internal-error` (transient; a
    /// client retries it).
    Busy,
    /// 403002 IotHubQuotaExceeded (the daily message quota is used up): AMQP
    /// `com.microsoft:quota-exceeded` (`QuotaExceeded` to c2d's clients, not retried: retrying
    /// before the quota resets does not help).
    Quota,
}

impl SendRefusal {
    /// IoT Hub's error code.
    pub fn code(self) -> u32 {
        match self {
            SendRefusal::Throttled => 429001,
            SendRefusal::Busy => 503001,
            SendRefusal::Quota => 403002,
        }
    }

    /// IoT Hub's name for the error.
    pub fn name(self) -> &'static str {
        match self {
            SendRefusal::Throttled => "ThrottlingException",
            SendRefusal::Busy => "ServiceUnavailable",
            SendRefusal::Quota => "IotHubQuotaExceeded",
        }
    }

    /// The name the command line and the bindings use (`throttled`, `busy`, `quota`).
    pub fn as_str(self) -> &'static str {
        match self {
            SendRefusal::Throttled => "throttled",
            SendRefusal::Busy => "busy",
            SendRefusal::Quota => "quota",
        }
    }
}

impl std::str::FromStr for SendRefusal {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "throttled" | "429001" => Ok(SendRefusal::Throttled),
            "busy" | "503001" => Ok(SendRefusal::Busy),
            "quota" | "403002" => Ok(SendRefusal::Quota),
            other => Err(format!(
                "unknown send error '{other}': throttled, busy or quota"
            )),
        }
    }
}

/// C2D sends being refused: the next `left` of them, or those until `until`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Refusing {
    pub error: SendRefusal,
    /// How many more are refused (`None`: every one until `until`).
    pub left: Option<u32>,
    /// Refused until then (`None`: until `left` runs out).
    pub until: Option<Instant>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The delays and refusals in force.
#[derive(Debug, Default)]
pub(crate) struct FaultState {
    delays: Mutex<HashMap<String, Duration>>,
    refusing: Mutex<Option<Refusing>>,
}

impl FaultState {
    /// Delays every delivery to `device` by `by` (zero: no more).
    pub fn set_delay(&self, device: &str, by: Duration) {
        let mut delays = lock(&self.delays);
        if by.is_zero() {
            delays.remove(device);
        } else {
            delays.insert(device.to_string(), by);
        }
    }

    /// How long a delivery to `device` waits before it is sent, if it does.
    pub fn delay(&self, device: &str) -> Option<Duration> {
        let delays = lock(&self.delays);
        if delays.is_empty() {
            return None;
        }
        delays.get(device).copied()
    }

    /// Every delay in force, by device.
    pub fn delays(&self) -> Vec<(String, Duration)> {
        let mut all: Vec<_> = lock(&self.delays)
            .iter()
            .map(|(d, t)| (d.clone(), *t))
            .collect();
        all.sort();
        all
    }

    /// Refuses sends as `r` says, in place of any refusal in force.
    pub fn set_refusing(&self, r: Option<Refusing>) {
        *lock(&self.refusing) = r;
    }

    /// The refusal in force, if any (one that has run out is dropped).
    pub fn refusing(&self) -> Option<Refusing> {
        let mut refusing = lock(&self.refusing);
        if refusing.is_some_and(|r| r.until.is_some_and(|u| Instant::now() >= u)) {
            *refusing = None;
        }
        *refusing
    }

    /// Takes a C2D send's turn: the error it is refused with, if it is.
    pub fn refuse_send(&self) -> Option<SendRefusal> {
        let mut refusing = lock(&self.refusing);
        let r = refusing.as_mut()?;
        if r.until.is_some_and(|u| Instant::now() >= u) {
            *refusing = None;
            return None;
        }
        let error = r.error;
        if let Some(left) = r.left.as_mut() {
            *left -= 1;
            if *left == 0 {
                *refusing = None;
            }
        }
        Some(error)
    }

    /// Ends the delays and refusals.
    pub fn clear(&self) {
        lock(&self.delays).clear();
        *lock(&self.refusing) = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_of_refusals_runs_out() {
        let f = FaultState::default();
        f.set_refusing(Some(Refusing {
            error: SendRefusal::Busy,
            left: Some(2),
            until: None,
        }));
        assert_eq!(f.refuse_send(), Some(SendRefusal::Busy));
        assert_eq!(f.refuse_send(), Some(SendRefusal::Busy));
        assert_eq!(f.refuse_send(), None);
        assert!(f.refusing().is_none());
    }

    #[test]
    fn refusals_for_a_time_end_with_it() {
        let f = FaultState::default();
        f.set_refusing(Some(Refusing {
            error: SendRefusal::Quota,
            left: None,
            until: Some(Instant::now() + Duration::from_millis(50)),
        }));
        assert_eq!(f.refuse_send(), Some(SendRefusal::Quota));
        assert_eq!(f.refuse_send(), Some(SendRefusal::Quota));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(f.refuse_send(), None);
    }

    #[test]
    fn names_parse() {
        for r in [
            SendRefusal::Throttled,
            SendRefusal::Busy,
            SendRefusal::Quota,
        ] {
            assert_eq!(r.as_str().parse::<SendRefusal>(), Ok(r));
            assert_eq!(r.code().to_string().parse::<SendRefusal>(), Ok(r));
        }
        assert!("slow".parse::<SendRefusal>().is_err());
    }
}
