//! Who is connected, over which transport, since when; and the signals between connections.
//!
//! A device has at most one MQTT session and one AMQP receiving link: a newer one replaces the
//! older, which is told so through the [`Notifier`] it registered (a typed [`SessionSignal`],
//! whatever its protocol). MQTT subscriptions outlive their connection (CleanSession=0), and
//! HTTPS devices are known by their last poll.
//!
//! Imports no protocol and nothing above it: the protocols register here, the page and the
//! registry read here.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::SystemTime;

use rumqttc::mqttbytes::QoS;
use tokio::sync::oneshot;

/// How a connection reaches the hub: the client's address, and whether the protocol runs
/// inside a WebSocket (on the HTTPS port) or straight on TLS (its own port).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Peer {
    /// The client's address.
    pub address: SocketAddr,
    /// Inside a WebSocket.
    pub websocket: bool,
}

impl Peer {
    /// A connection straight on TLS.
    pub fn tls(address: SocketAddr) -> Peer {
        Peer {
            address,
            websocket: false,
        }
    }

    /// The transport of an MQTT device on this connection.
    pub fn mqtt_transport(&self) -> c2d::Transport {
        if self.websocket {
            c2d::Transport::MqttWs
        } else {
            c2d::Transport::Mqtt
        }
    }

    /// The transport of an AMQP device on this connection.
    pub fn amqp_transport(&self) -> c2d::Transport {
        if self.websocket {
            c2d::Transport::AmqpWs
        } else {
            c2d::Transport::Amqp
        }
    }
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.websocket {
            write!(f, "{} (WebSocket)", self.address)
        } else {
            write!(f, "{}", self.address)
        }
    }
}

/// Why a device's session must end: what one connection tells another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionSignal {
    /// A newer connection of the same device took its place.
    Replaced,
    /// The device was deleted from the registry.
    DeviceDeleted,
    /// A fault asked for the connection to end: `polite`, with the protocol's close (AMQP
    /// `close`, TLS close_notify); otherwise the way a network drop looks (the socket just
    /// goes, with no close frame).
    Dropped {
        /// End it with the protocol's close.
        polite: bool,
    },
}

/// How a session is told a [`SessionSignal`]: whatever reaches its connection (a oneshot for
/// MQTT, the connection's control channel for AMQP).
pub(crate) type Notifier = Box<dyn FnOnce(SessionSignal) + Send>;

/// A device's live connection, as the hub's page shows it.
#[derive(Debug, Clone)]
pub(crate) struct Presence {
    /// The connection (or link) that receives the device's messages.
    pub owner: u64,
    /// How it is connected.
    pub transport: c2d::Transport,
    /// Since when (the hub's clock).
    pub since: SystemTime,
}

/// A device's MQTT session or AMQP receiving link.
pub(crate) struct DeviceSession {
    /// Its owner, transport and start.
    pub presence: Presence,
    /// Tells it to end.
    pub notify: Option<Notifier>,
    /// Resolves when it has ended (its sender is sent to or dropped then); a replacing MQTT
    /// session waits for it, so that the old one's messages are back in the queue first.
    pub done: Option<oneshot::Receiver<()>>,
}

impl DeviceSession {
    /// Tells the session to end.
    pub fn signal(&mut self, signal: SessionSignal) {
        if let Some(notify) = self.notify.take() {
            notify(signal);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The hub's record of its devices' connections.
#[derive(Default)]
pub(crate) struct Sessions {
    next_owner: AtomicU64,
    mqtt: Mutex<HashMap<String, DeviceSession>>,
    subscriptions: Mutex<HashMap<String, QoS>>,
    amqp: Mutex<HashMap<String, DeviceSession>>,
    /// Changes whenever a device connects or disconnects (an MQTT session or an AMQP
    /// receiving link begins or ends) or an HTTPS device polls.
    version: AtomicU64,
    /// When each HTTPS device last polled (the hub's clock).
    https_polls: Mutex<HashMap<String, SystemTime>>,
}

impl Sessions {
    /// A new id for a receiver (connection or link) that locks messages.
    pub fn new_owner(&self) -> u64 {
        self.next_owner.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn changed(&self) {
        self.version.fetch_add(1, Ordering::Relaxed);
    }

    /// Changes whenever a device connects or disconnects, or an HTTPS device polls.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Relaxed)
    }

    /// Makes `session` the device's MQTT session; returns the one it replaces (not yet told).
    pub fn replace_mqtt(&self, device: &str, session: DeviceSession) -> Option<DeviceSession> {
        let old = lock(&self.mqtt).insert(device.to_string(), session);
        self.changed();
        old
    }

    /// Starts an MQTT session's subscriptions; returns whether a previous session's were kept
    /// (CleanSession=0).
    pub fn begin_mqtt(&self, device: &str, clean: bool) -> bool {
        let mut subs = lock(&self.subscriptions);
        if clean {
            subs.remove(device);
            false
        } else {
            subs.contains_key(device)
        }
    }

    /// Forgets the device's MQTT session if it is still `owner`'s (and, with CleanSession=1,
    /// its subscription).
    pub fn end_mqtt(&self, device: &str, owner: u64, clean: bool) {
        let mut sessions = lock(&self.mqtt);
        if sessions
            .get(device)
            .is_some_and(|s| s.presence.owner == owner)
        {
            sessions.remove(device);
            self.changed();
            if clean {
                lock(&self.subscriptions).remove(device);
            }
        }
    }

    /// The QoS of the device's C2D subscription, if it has one.
    pub fn subscription(&self, device: &str) -> Option<QoS> {
        lock(&self.subscriptions).get(device).copied()
    }

    /// Records the device's C2D subscription.
    pub fn subscribe(&self, device: &str, qos: QoS) {
        lock(&self.subscriptions).insert(device.to_string(), qos);
    }

    /// Forgets the device's C2D subscription.
    pub fn unsubscribe(&self, device: &str) {
        lock(&self.subscriptions).remove(device);
    }

    /// Makes `receiver` the device's AMQP receiving link; returns the one it replaces (not
    /// yet told).
    pub fn replace_amqp(&self, device: &str, receiver: DeviceSession) -> Option<DeviceSession> {
        let old = lock(&self.amqp).insert(device.to_string(), receiver);
        self.changed();
        old
    }

    /// Forgets the device's AMQP receiving link if it is still `owner`'s.
    pub fn end_amqp(&self, device: &str, owner: u64) {
        let mut receivers = lock(&self.amqp);
        if receivers
            .get(device)
            .is_some_and(|r| r.presence.owner == owner)
        {
            receivers.remove(device);
            self.changed();
        }
    }

    /// Records that an HTTPS device polled for its messages at `now`.
    pub fn polled(&self, device: &str, now: SystemTime) {
        lock(&self.https_polls).insert(device.to_string(), now);
        self.changed();
    }

    /// When each HTTPS device last polled.
    pub fn last_polls(&self) -> HashMap<String, SystemTime> {
        lock(&self.https_polls).clone()
    }

    /// The devices connected now: their MQTT sessions and AMQP receiving links (the newer
    /// of the two where a device has both).
    pub fn presence(&self) -> HashMap<String, Presence> {
        let mut all: HashMap<String, Presence> = lock(&self.mqtt)
            .iter()
            .map(|(d, s)| (d.clone(), s.presence.clone()))
            .collect();
        for (d, r) in lock(&self.amqp).iter() {
            let newer = all.get(d).is_none_or(|p| p.since <= r.presence.since);
            if newer {
                all.insert(d.clone(), r.presence.clone());
            }
        }
        all
    }

    /// Tells the connections of `device` (every device when `None`) over `transport` (any
    /// when `None`) to end (a fault); returns how many were told.
    pub fn drop_connections(
        &self,
        device: Option<&str>,
        transport: Option<c2d::Transport>,
        polite: bool,
    ) -> usize {
        let mut told = 0;
        for map in [&self.mqtt, &self.amqp] {
            for (id, session) in lock(map).iter_mut() {
                let chosen = device.is_none_or(|d| d == id)
                    && transport.is_none_or(|t| t == session.presence.transport);
                if chosen && session.notify.is_some() {
                    session.signal(SessionSignal::Dropped { polite });
                    told += 1;
                }
            }
        }
        told
    }

    /// Ends a deleted device's sessions and forgets everything about it.
    pub fn device_deleted(&self, device: &str) {
        let amqp = lock(&self.amqp).remove(device);
        let mqtt = lock(&self.mqtt).remove(device);
        for mut session in amqp.into_iter().chain(mqtt) {
            session.signal(SessionSignal::DeviceDeleted);
        }
        lock(&self.subscriptions).remove(device);
        lock(&self.https_polls).remove(device);
        self.changed();
    }
}
