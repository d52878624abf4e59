//! Connection status, as a pull stream.

use tokio::sync::watch;

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

/// Status changes of one client.
#[derive(Debug, Clone)]
pub struct StatusReceiver {
    rx: watch::Receiver<ConnectionStatus>,
}

impl StatusReceiver {
    pub(crate) fn new(rx: watch::Receiver<ConnectionStatus>) -> Self {
        StatusReceiver { rx }
    }

    /// The current status.
    pub fn current(&self) -> ConnectionStatus {
        self.rx.borrow().clone()
    }

    /// The next change; `None` once the client is gone.
    pub async fn recv(&mut self) -> Option<ConnectionStatus> {
        self.rx.changed().await.ok()?;
        Some(self.rx.borrow_and_update().clone())
    }
}
