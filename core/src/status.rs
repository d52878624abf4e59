//! Connection status, as a pull stream of changes.

use std::sync::Arc;

use tokio::sync::{broadcast, watch};

/// Where a client's connection stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionStatus {
    /// Connected and authorized.
    Connected,
    /// Not connected, and why.
    Disconnected(String),
    /// Trying to connect again.
    Reconnecting,
}

/// Publishes a client's status changes.
#[derive(Debug, Clone)]
pub(crate) struct StatusSender {
    current: Arc<watch::Sender<ConnectionStatus>>,
    events: broadcast::Sender<ConnectionStatus>,
}

impl StatusSender {
    pub(crate) fn new(initial: ConnectionStatus) -> Self {
        StatusSender {
            current: Arc::new(watch::channel(initial).0),
            events: broadcast::channel(64).0,
        }
    }

    /// Records a change (repeating the current status is not a change).
    pub(crate) fn send(&self, status: ConnectionStatus) {
        if *self.current.borrow() != status {
            self.current.send_replace(status.clone());
            let _ = self.events.send(status);
        }
    }

    pub(crate) fn subscribe(&self) -> StatusReceiver {
        StatusReceiver {
            current: self.current.subscribe(),
            events: self.events.subscribe(),
        }
    }
}

/// A subscription to one client's status changes (each subscriber gets every change from
/// the moment it subscribed; a subscriber that falls 64 changes behind skips the oldest).
#[derive(Debug)]
pub struct StatusReceiver {
    current: watch::Receiver<ConnectionStatus>,
    events: broadcast::Receiver<ConnectionStatus>,
}

impl StatusReceiver {
    /// The current status.
    pub fn current(&self) -> ConnectionStatus {
        self.current.borrow().clone()
    }

    /// The next change; `None` once the client is gone.
    pub async fn recv(&mut self) -> Option<ConnectionStatus> {
        loop {
            match self.events.recv().await {
                Ok(s) => return Some(s),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}
