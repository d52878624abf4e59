//! How to run a hub ([`HubConfig`]), and why one could not start ([`StartError`]).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use crate::clock::{Clock, ManualClock, SystemClock};
use crate::state::limits::Limits;
use crate::store::Durability;
use crate::throttle::Throttling;

/// How to run a hub.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Where the database and the CA live (made if missing).
    pub data_dir: PathBuf,
    /// The hub's host name: what devices put in `HostName` and what SAS tokens are scoped to.
    pub host_name: String,
    /// Address to listen on.
    pub bind_address: IpAddr,
    /// MQTT over TLS (IoT Hub: 8883; 0 = any free port).
    pub mqtt_port: u16,
    /// AMQP over TLS (IoT Hub: 5671; 0 = any free port).
    pub amqp_port: u16,
    /// HTTPS (IoT Hub: 443; 0 = any free port).
    pub https_port: u16,
    /// Queue rules.
    pub limits: Limits,
    /// How hard commits wait for the disk.
    pub durability: Durability,
    /// Unacknowledged MQTT PUBLISHes per device connection.
    pub mqtt_in_flight: usize,
    /// The clock (a [`crate::clock::ManualClock`] in tests). Every rule that time drives
    /// follows it: TTL, lock expiry, and feedback batching, so on a manual clock a feedback
    /// record made within the feedback interval of the previous batch (15 s by default) goes
    /// out only once the clock is advanced past that interval.
    pub clock: Arc<dyn Clock>,
    /// PEM certificates of the CAs that `certificateAuthority` devices' certificates may chain
    /// to (IoT Hub's registered, verified CAs). The hub's own development CA is always one.
    pub x509_ca_pems: Vec<Vec<u8>>,
    /// IoT Hub's operation throttles for a tier and unit count (`None`, the default: the
    /// hub takes everything as fast as it can). Changed on a running hub with
    /// [`LocalHub::set_throttling`](crate::LocalHub::set_throttling).
    pub throttling: Option<Throttling>,
}

impl HubConfig {
    /// IoT Hub's ports and rules, with data in `data_dir`, on 127.0.0.1 as `localhost`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        HubConfig {
            data_dir: data_dir.into(),
            host_name: "localhost".into(),
            bind_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            mqtt_port: 8883,
            amqp_port: 5671,
            https_port: 443,
            limits: Limits::default(),
            durability: Durability::Fsync,
            mqtt_in_flight: 16,
            clock: Arc::new(SystemClock),
            x509_ca_pems: Vec::new(),
            throttling: None,
        }
    }

    /// Puts the hub on a [`ManualClock`] that starts now, and returns it to be advanced.
    pub fn use_manual_clock(&mut self) -> Arc<ManualClock> {
        let clock = Arc::new(ManualClock::new(std::time::SystemTime::now()));
        self.clock = clock.clone();
        clock
    }

    /// Like [`new`](Self::new), on free ports chosen by the system (for tests).
    pub fn ephemeral(data_dir: impl Into<PathBuf>) -> Self {
        HubConfig {
            mqtt_port: 0,
            amqp_port: 0,
            https_port: 0,
            ..HubConfig::new(data_dir)
        }
    }
}

/// Why a hub could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory or the store could not be opened.
    #[error("store: {0}")]
    Store(String),
    /// The TLS identity could not be made or loaded.
    #[error("TLS: {0}")]
    Tls(String),
    /// A port could not be bound.
    #[error("cannot listen on {addr} ({what}): {error}")]
    Bind {
        /// Which listener.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        error: std::io::Error,
    },
}

impl From<StartError> for c2d::Error {
    /// A port that cannot be bound is `Unavailable` (another hub may hold it); the rest is
    /// `Internal`.
    fn from(e: StartError) -> Self {
        let kind = match e {
            StartError::Bind { .. } => c2d::ErrorKind::Unavailable,
            StartError::Store(_) | StartError::Tls(_) => c2d::ErrorKind::Internal,
        };
        c2d::Error::new(kind, e.to_string())
    }
}
