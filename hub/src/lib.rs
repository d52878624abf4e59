//! A local, Azure-IoT-Hub-compatible hub for cloud-to-device messaging.
//!
//! Start one with [`LocalHub::start`]; it serves IoT Hub's own wire protocols so the official
//! Azure SDKs and c2d's clients work against it unchanged.
//!
//! # Layout
//!
//! The modules form layers; each imports only the ones below it (a check in the test
//! command, `scripts/hub-layers.sh`, fails when a lower layer imports `local_hub` or
//! `listener`):
//!
//! ```text
//! local_hub.rs   LocalHub: start (the only place that wires the hub together), accessors, stop
//! config.rs      HubConfig, StartError
//! listener.rs    accept loops: TCP, TLS, dispatch to the port's protocol
//! mqtt/ amqp/ http/   the protocols: each serves one connection with the context it is given
//! faults.rs      faults on demand: the API `LocalHub::faults` and `/admin/faults` drive
//! metrics.rs     Prometheus text from the context
//! context.rs     HubContext: what every connection holds (store, authorizer, sessions,
//!                shutdown, connection count, the page's secret, refusal counters, faults)
//! sessions.rs    who is connected over which transport; the typed signals between connections
//! auth/          SAS tokens and X.509 certificates: who a credential is, what it may reach
//! store/         SQLite persistence: the writer thread, group commit, the time rules' task
//! state/         the pure state machine: device queues, feedback queue, locks, registry,
//!                counters, limits (no tokio, no I/O, time passed in)
//! tls.rs, data_dir.rs, clock.rs   the TLS identity, the data directory's files, the clock
//! throttle.rs    IoT Hub's operation throttles, when asked for
//! fault_state.rs the delays and send refusals faults asked for, which the protocols consult
//! ```

#![warn(missing_docs)]

mod amqp;
mod auth;
pub mod clock;
mod config;
mod context;
pub mod data_dir;
mod fault_state;
mod faults;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod http;
mod listener;
mod local_hub;
mod metrics;
mod mqtt;
mod sessions;
mod state;
pub mod store;
mod throttle;
mod tls;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{HubConfig, StartError};
pub use fault_state::SendRefusal;
pub use faults::{Fault, FaultError, Faults};
pub use local_hub::{Endpoints, LocalHub};
pub use state::limits::Limits;
pub use store::Durability;
pub use throttle::Throttling;

/// X.509 device certificates: made for development and tests, and their thumbprints.
pub mod x509 {
    pub use crate::auth::x509::{
        device_certificate, thumbprints, valid_for_days, DeviceCertificate, SigningCa,
    };
}

/// The hub's registry: what the command line needs of it.
pub mod registry {
    pub use crate::state::registry::{generate_key, Policy};
}
