//! Faults on demand: a running hub misbehaves the way IoT Hub (or the network in front of
//! it) can, when a test or a person asks — through [`LocalHub::faults`](crate::LocalHub::faults),
//! every binding's `LocalHub`, or the admin endpoint `c2d hub fault` calls
//! (`/admin/faults` on the HTTPS port, behind the page's token).
//!
//! Each fault acts where the hub does that work: a dropped connection through the sessions'
//! signals, a lost acknowledgement in the state, a stalled commit in the store, a delay or a
//! refused send in the context the protocols consult. Each is logged, counted in
//! `c2d_hub_faults_total{fault}` and, while it lasts, listed by [`Faults::active`] and shown
//! on the live page.
//!
//! Imports the context, the sessions and the store; only `local_hub` and the admin endpoint
//! import this.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::context::HubContext;
use crate::fault_state::{Refusing, SendRefusal};

/// A fault, as [`Faults::apply`] takes it and the admin endpoint reads it (JSON with a
/// `fault` tag: `{"fault":"lose-acks","device":"dev1","count":2}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "kebab-case")]
pub enum Fault {
    /// Ends the connections of `device` (every device when absent) over `transport` (any
    /// when absent) now: `polite`, with the protocol's close (AMQP `close` with
    /// `amqp:connection:forced`, TLS close_notify); otherwise the way a network drop looks,
    /// with no close frame. The messages they held locked go back to their queues; the
    /// clients reconnect by themselves. HTTPS devices hold no connection.
    Drop {
        /// The device whose connections end.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        device: Option<String>,
        /// Only the connections over this transport (`mqtt`, `mqtt_ws`, `amqp`, `amqp_ws`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        transport: Option<String>,
        /// Close with the protocol's close rather than vanish.
        #[serde(default)]
        polite: bool,
    },
    /// Loses the next `count` acknowledgements (complete, reject, abandon) of `device`, on
    /// any transport, as a PUBACK lost on the way is: the hub answers as if it had applied
    /// it, the message stays locked until its lock runs out, then comes again.
    LoseAcks {
        /// The device.
        device: String,
        /// How many.
        count: u32,
    },
    /// Holds every delivery to `device` for `delay_ms` before it is sent (its lock runs
    /// meanwhile), until cleared; 0 ends it.
    Delay {
        /// The device.
        device: String,
        /// The delay, in milliseconds.
        delay_ms: u64,
    },
    /// Holds the store's commits for `for_ms` from now, as a slow disk would: sends wait for
    /// their answer (each is answered once durable, or once its device has completed it, as
    /// always), nothing is lost.
    StallStore {
        /// How long, in milliseconds.
        for_ms: u64,
    },
    /// Refuses C2D sends with `error`: the next `count` of them, or all for `for_ms`.
    RefuseSends {
        /// The IoT Hub error they are refused with.
        error: SendRefusal,
        /// How many sends (exactly one of `count` and `for_ms`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<u32>,
        /// For how long, in milliseconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        for_ms: Option<u64>,
    },
    /// Ends every message lock now, as if each had run out: the messages come again.
    ExpireLocks,
}

impl Fault {
    /// The fault's name (`drop`, `lose-acks`, `delay`, `stall-store`, `refuse-sends`,
    /// `expire-locks`): its `fault` tag and its label in `c2d_hub_faults_total`.
    pub fn name(&self) -> &'static str {
        match self {
            Fault::Drop { .. } => "drop",
            Fault::LoseAcks { .. } => "lose-acks",
            Fault::Delay { .. } => "delay",
            Fault::StallStore { .. } => "stall-store",
            Fault::RefuseSends { .. } => "refuse-sends",
            Fault::ExpireLocks => "expire-locks",
        }
    }
}

/// A fault that cannot be applied: what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FaultError(pub String);

impl From<FaultError> for c2d::Error {
    fn from(e: FaultError) -> c2d::Error {
        c2d::Error::new(c2d::ErrorKind::InvalidArgument, e.0)
    }
}

/// The fault API of a running hub ([`LocalHub::faults`](crate::LocalHub::faults)). Cheap to
/// clone; every call acts at once.
#[derive(Clone)]
pub struct Faults {
    ctx: Arc<HubContext>,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faults").finish_non_exhaustive()
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The longest delay, stall or refusal a fault may ask for.
const MAX_FAULT_TIME: Duration = Duration::from_secs(24 * 3600);

/// `ms` as a duration a fault may last.
fn fault_time(what: &str, ms: u64) -> Result<Duration, FaultError> {
    let d = Duration::from_millis(ms);
    if d > MAX_FAULT_TIME {
        return Err(FaultError(format!(
            "{what} of {ms} ms: at most 24 hours ({} ms)",
            MAX_FAULT_TIME.as_millis()
        )));
    }
    Ok(d)
}

impl Faults {
    pub(crate) fn new(ctx: Arc<HubContext>) -> Faults {
        Faults { ctx }
    }

    /// Applies `fault`; returns how many connections it dropped or locks it ended (0 for
    /// the faults that last).
    pub fn apply(&self, fault: &Fault) -> Result<usize, FaultError> {
        let affected = match fault {
            Fault::Drop {
                device,
                transport,
                polite,
            } => {
                let transport = transport
                    .as_deref()
                    .map(|t| t.parse::<c2d::Transport>())
                    .transpose()
                    .map_err(|e| FaultError(e.to_string()))?;
                if transport == Some(c2d::Transport::Https) {
                    return Err(FaultError(
                        "HTTPS devices hold no connection to drop".into(),
                    ));
                }
                self.ctx
                    .sessions
                    .drop_connections(device.as_deref(), transport, *polite)
            }
            Fault::LoseAcks { device, count } => {
                self.registered(device)?;
                if *count == 0 {
                    return Err(FaultError("count must be at least 1".into()));
                }
                let (device, count) = (device.clone(), *count);
                self.ctx
                    .store
                    .apply(move |s, _| s.lose_acks(&device, count));
                0
            }
            Fault::Delay { device, delay_ms } => {
                let delay = fault_time("a delay", *delay_ms)?;
                self.registered(device)?;
                self.ctx.faults.set_delay(device, delay);
                0
            }
            Fault::StallStore { for_ms } => {
                let stall = fault_time("a stall", *for_ms)?;
                self.ctx.store.stall_commits(stall);
                0
            }
            Fault::RefuseSends {
                error,
                count,
                for_ms,
            } => {
                let until = match (count, for_ms) {
                    (Some(0), _) => return Err(FaultError("count must be at least 1".into())),
                    (Some(_), None) => None,
                    (None, Some(ms)) => {
                        Some(tokio::time::Instant::now() + fault_time("a refusal", *ms)?)
                    }
                    _ => {
                        return Err(FaultError(
                            "refuse-sends takes a count or a duration (one of them)".into(),
                        ))
                    }
                };
                self.ctx.faults.set_refusing(Some(Refusing {
                    error: *error,
                    left: *count,
                    until,
                }));
                0
            }
            Fault::ExpireLocks => self.ctx.store.apply(|s, now| s.expire_locks(now)),
        };
        tracing::info!(fault = ?fault, affected, "fault applied");
        self.ctx
            .faults_applied
            .with_label_values(&[fault.name()])
            .inc();
        Ok(affected)
    }

    /// Applies a fault given as JSON ([`Fault`]'s form, what the admin endpoint takes): for
    /// the bindings, whose `Faults` build it.
    pub fn apply_json(&self, fault: &str) -> Result<usize, FaultError> {
        let fault: Fault =
            serde_json::from_str(fault).map_err(|e| FaultError(format!("not a fault: {e}")))?;
        self.apply(&fault)
    }

    /// [`active`](Self::active) as JSON: a list of faults in [`Fault`]'s form.
    pub fn active_json(&self) -> String {
        serde_json::to_string(&self.active()).unwrap_or_else(|_| "[]".into())
    }

    fn registered(&self, device: &str) -> Result<(), FaultError> {
        match self.ctx.store.read(|s| s.registry.device(device).is_some()) {
            true => Ok(()),
            false => Err(FaultError(format!("no device '{device}' in the registry"))),
        }
    }

    /// Drops `device`'s connections now, the way a network drop looks (no close frame);
    /// returns how many.
    pub fn drop_connections(&self, device: &str) -> usize {
        self.apply(&Fault::Drop {
            device: Some(device.into()),
            transport: None,
            polite: false,
        })
        .unwrap_or(0)
    }

    /// Closes `device`'s connections now with the protocol's close; returns how many.
    pub fn close_connections(&self, device: &str) -> usize {
        self.apply(&Fault::Drop {
            device: Some(device.into()),
            transport: None,
            polite: true,
        })
        .unwrap_or(0)
    }

    /// Drops every device connection over `transport` (no close frame); returns how many.
    pub fn drop_transport(&self, transport: c2d::Transport) -> Result<usize, FaultError> {
        self.apply(&Fault::Drop {
            device: None,
            transport: Some(transport.as_str().into()),
            polite: false,
        })
    }

    /// Loses the next `count` acknowledgements of `device` ([`Fault::LoseAcks`]).
    pub fn lose_acks(&self, device: &str, count: u32) -> Result<(), FaultError> {
        self.apply(&Fault::LoseAcks {
            device: device.into(),
            count,
        })
        .map(drop)
    }

    /// Holds every delivery to `device` for `delay` until cleared ([`Fault::Delay`]).
    pub fn delay_deliveries(&self, device: &str, delay: Duration) -> Result<(), FaultError> {
        self.apply(&Fault::Delay {
            device: device.into(),
            delay_ms: millis(delay),
        })
        .map(drop)
    }

    /// Holds the store's commits for `duration` ([`Fault::StallStore`]; at most 24 hours).
    pub fn stall_store(&self, duration: Duration) -> Result<(), FaultError> {
        self.apply(&Fault::StallStore {
            for_ms: millis(duration),
        })
        .map(drop)
    }

    /// Refuses the next `count` C2D sends with `error`.
    pub fn refuse_sends(&self, error: SendRefusal, count: u32) -> Result<(), FaultError> {
        self.apply(&Fault::RefuseSends {
            error,
            count: Some(count),
            for_ms: None,
        })
        .map(drop)
    }

    /// Refuses every C2D send with `error` for `duration` (at most 24 hours).
    pub fn refuse_sends_for(
        &self,
        error: SendRefusal,
        duration: Duration,
    ) -> Result<(), FaultError> {
        self.apply(&Fault::RefuseSends {
            error,
            count: None,
            for_ms: Some(millis(duration)),
        })
        .map(drop)
    }

    /// Ends every message lock now; returns how many ([`Fault::ExpireLocks`]).
    pub fn expire_locks(&self) -> usize {
        self.apply(&Fault::ExpireLocks).unwrap_or(0)
    }

    /// Ends every fault in force: lost acknowledgements still to come, delays, a stall and
    /// refusals.
    pub fn clear(&self) {
        self.ctx.faults.clear();
        self.ctx.store.stall_commits(Duration::ZERO);
        self.ctx.store.apply(|s, _| {
            s.lost_acks.clear();
            s.stats.changed();
        });
        tracing::info!("faults cleared");
    }

    /// The faults in force now, with what is left of each (acknowledgements still to lose,
    /// time or sends still refused).
    pub fn active(&self) -> Vec<Fault> {
        active(&self.ctx)
    }

    /// How many acknowledgements faults have lost since the hub started.
    pub fn acks_lost(&self) -> u64 {
        self.ctx.store.read(|s| s.acks_lost)
    }
}

/// The faults in force on `ctx`'s hub, with what is left of each (acknowledgements still to lose,
/// time or sends still refused).
pub(crate) fn active(ctx: &HubContext) -> Vec<Fault> {
    let mut all = Vec::new();
    let mut lost: Vec<(String, u32)> = ctx
        .store
        .read(|s| s.lost_acks.iter().map(|(d, n)| (d.clone(), *n)).collect());
    lost.sort();
    all.extend(
        lost.into_iter()
            .map(|(device, count)| Fault::LoseAcks { device, count }),
    );
    all.extend(
        ctx.faults
            .delays()
            .into_iter()
            .map(|(device, d)| Fault::Delay {
                device,
                delay_ms: millis(d),
            }),
    );
    if let Some(left) = ctx.store.stalled_for() {
        all.push(Fault::StallStore {
            for_ms: millis(left),
        });
    }
    if let Some(r) = ctx.faults.refusing() {
        all.push(Fault::RefuseSends {
            error: r.error,
            count: r.left,
            for_ms: r
                .until
                .map(|u| millis(u.saturating_duration_since(tokio::time::Instant::now()))),
        });
    }
    all
}
