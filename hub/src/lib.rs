//! A local, Azure-IoT-Hub-compatible hub for cloud-to-device messaging.
//!
//! Start one with [`LocalHub::start`]; it serves IoT Hub's own wire protocols so the official
//! Azure SDKs and c2d's clients work against it unchanged.

#![warn(missing_docs)]

mod amqp;
pub mod auth;
pub mod clock;
pub mod feedback;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod http;
pub mod limits;
mod local_hub;
pub mod metrics;
mod mqtt;
pub mod queue;
pub mod registry;
pub mod stats;
pub mod store;
pub mod tls;
pub mod x509;

/// The hub's live page: where its token is kept and how its address is made.
pub mod ui {
    pub use crate::http::ui::{read_token, url, TOKEN_FILE};
}

pub use clock::{Clock, ManualClock, SystemClock};
pub use limits::Limits;
pub use local_hub::{HubConfig, LocalHub, StartError};
pub use store::Durability;
