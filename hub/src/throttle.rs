//! IoT Hub's operation throttles, when a hub is asked to keep them ([`Throttling`]): C2D
//! sends, device receives over HTTPS, registry operations and queries, each at its tier's rate times
//! the unit count (`c2d::Tier`'s table).
//!
//! Each throttle shapes traffic as IoT Hub documents it: a request over the rate is first
//! held back (queued) and served at the rate; one that would wait longer than the backlog
//! is refused (AMQP `com.microsoft:device-container-throttled`, REST 429 `ThrottlingException`,
//! both naming 429001). How long IoT Hub's backlog is, it does not say: c2d's is one second
//! by default. Requests are spaced evenly (no burst credit), so that a client pacing at the
//! rate is never refused and one that does not is, soon.
//!
//! Imports nothing of the crate: the context holds one [`Throttle`].

use std::sync::Mutex;
use std::time::Duration;

use c2d::Tier;
use tokio::time::Instant;

/// A hub's throttling: IoT Hub's limits for `units` units of `tier`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttling {
    /// The tier whose limits apply.
    pub tier: Tier,
    /// Units of it (1 to the tier's maximum).
    pub units: u32,
    /// The longest a request over the rate is held before it is refused.
    pub backlog: Duration,
}

impl Throttling {
    /// The limits of `units` units of `tier`, with a backlog of one second; fails when the
    /// tier has no such unit count.
    pub fn new(tier: Tier, units: u32) -> Result<Self, c2d::Error> {
        Ok(Throttling {
            tier,
            units: tier.check_units(units)?,
            backlog: Duration::from_secs(1),
        })
    }

    /// The throttling a binding's options ask for: a tier's name (`S1`; none, no throttling),
    /// its units (1 when absent) and a backlog (one second when absent).
    pub fn from_options(
        tier: Option<&str>,
        units: Option<u32>,
        backlog: Option<Duration>,
    ) -> Result<Option<Self>, c2d::Error> {
        let Some(tier) = tier else { return Ok(None) };
        let t = Throttling::new(tier.parse()?, units.unwrap_or(1))?;
        Ok(Some(backlog.map_or(t, |b| t.backlog(b))))
    }

    /// Sets [`backlog`](Self::backlog).
    pub fn backlog(mut self, backlog: Duration) -> Self {
        self.backlog = backlog;
        self
    }

    fn per_minute(&self, op: Operation) -> u32 {
        match op {
            Operation::C2dSend => self.tier.c2d_sends_per_minute(),
            Operation::HttpsReceive => self.tier.https_receives_per_minute(),
            Operation::Registry => self.tier.registry_operations_per_minute(),
            Operation::Query => self.tier.queries_per_minute(),
        }
    }
}

impl std::fmt::Display for Throttling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} × {}", self.tier, self.units)
    }
}

/// An operation IoT Hub throttles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    /// A service's C2D send.
    C2dSend,
    /// A device's receive over HTTPS.
    HttpsReceive,
    /// A registry create, get, list, update or delete.
    Registry,
    /// A registry query (`POST /devices/query`).
    Query,
}

/// Whether a request may go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Now.
    Now,
    /// After this wait, its turn at the rate.
    After(Duration),
    /// Not at all: the backlog is full.
    Refused,
}

/// The throttles of a running hub; none until [`set`](Self::set).
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    active: Mutex<Option<Active>>,
}

#[derive(Debug)]
struct Active {
    config: Throttling,
    /// The earliest turn of the next request, per operation.
    next: [Instant; 4],
}

impl Throttle {
    /// Throttles as `config` says (`None`: not at all), from now.
    pub fn set(&self, config: Option<Throttling>) {
        let now = Instant::now();
        *self.active.lock().expect("throttle lock") = config.map(|config| Active {
            config,
            next: [now; 4],
        });
    }

    /// The throttling in force.
    pub fn get(&self) -> Option<Throttling> {
        self.active
            .lock()
            .expect("throttle lock")
            .as_ref()
            .map(|a| a.config)
    }

    /// Takes a turn for one `op` request.
    pub fn admit(&self, op: Operation) -> Admission {
        let mut guard = self.active.lock().expect("throttle lock");
        let Some(active) = guard.as_mut() else {
            return Admission::Now;
        };
        let per_second =
            f64::from(active.config.per_minute(op)) * f64::from(active.config.units) / 60.0;
        let interval = Duration::from_secs_f64(1.0 / per_second);
        let now = Instant::now();
        let next = &mut active.next[op as usize];
        let turn = (*next).max(now);
        let wait = turn - now;
        // at least one request may always wait its turn, however slow the rate
        if wait > active.config.backlog.max(interval) {
            return Admission::Refused;
        }
        *next = turn + interval;
        if wait.is_zero() {
            Admission::Now
        } else {
            Admission::After(wait)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shapes_then_refuses() {
        let t = Throttle::default();
        assert_eq!(t.admit(Operation::C2dSend), Admission::Now);
        t.set(Some(
            Throttling::new(Tier::S3, 1)
                .unwrap()
                .backlog(Duration::from_millis(100)),
        ));
        // 83.3 a second: 12 ms apart; the backlog holds 8 more
        assert_eq!(t.admit(Operation::C2dSend), Admission::Now);
        let mut waits = Vec::new();
        while let Admission::After(w) = t.admit(Operation::C2dSend) {
            waits.push(w);
        }
        // (one more if this thread stalled for a few ms meanwhile)
        assert!((8..=9).contains(&waits.len()), "{waits:?}");
        assert!(waits.windows(2).all(|w| w[0] < w[1]), "{waits:?}");
        assert_eq!(t.admit(Operation::C2dSend), Admission::Refused);
        // each operation has its own throttle
        assert_eq!(t.admit(Operation::Registry), Admission::Now);
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(t.admit(Operation::C2dSend), Admission::Now);
        t.set(None);
        assert_eq!(t.admit(Operation::C2dSend), Admission::Now);
        assert!(Throttling::new(Tier::F1, 2).is_err());
    }
}
