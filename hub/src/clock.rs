//! The hub's source of time. Every rule that depends on time (TTL, locks, feedback batching)
//! reads it from a [`Clock`], so tests can use a [`ManualClock`] instead of sleeping.

use std::fmt::Debug;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

/// Where the hub reads the time.
pub trait Clock: Send + Sync + Debug + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;

    /// A channel that changes whenever the time jumps (a manual clock's `advance`), so the
    /// sweeper re-checks its deadlines at once. The system clock has none.
    fn jumps(&self) -> Option<watch::Receiver<u64>> {
        None
    }
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<SystemTime>,
    jumps: watch::Sender<u64>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: SystemTime) -> Self {
        ManualClock {
            now: Mutex::new(start),
            jumps: watch::channel(0).0,
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        {
            let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
            *now += by;
        }
        self.jumps.send_modify(|n| *n += 1);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn jumps(&self) -> Option<watch::Receiver<u64>> {
        Some(self.jumps.subscribe())
    }
}

/// Sleeps for `d`, or less if the clock jumps meanwhile (`jumps` from [`Clock::jumps`]).
pub(crate) async fn nap(jumps: &mut Option<watch::Receiver<u64>>, d: Duration) {
    let sleep = tokio::time::sleep(d);
    match jumps {
        Some(j) => {
            tokio::select! {
                _ = sleep => {}
                _ = j.changed() => {}
            }
        }
        None => sleep.await,
    }
}
