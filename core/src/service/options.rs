//! What a service client needs beyond its connection string: [`ServiceOptions`], one plain
//! struct that the C, Python and Node.js bindings fill whole, and the [`ServiceClientBuilder`]
//! that sets it field by field for Rust. `connect` (in `client.rs`) makes every check.

use crate::transport::ConnectionOptions;

/// How a service client reaches the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ServiceTransport {
    /// AMQP over TLS, port 5671.
    #[default]
    Amqp,
    /// AMQP over a WebSocket, port 443.
    AmqpWs,
}

impl ServiceTransport {
    /// The name c2d uses for it everywhere (`amqp`, `amqp_ws`).
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceTransport::Amqp => "amqp",
            ServiceTransport::AmqpWs => "amqp_ws",
        }
    }
}

impl std::str::FromStr for ServiceTransport {
    type Err = crate::Error;
    /// Parses [`as_str`](ServiceTransport::as_str)'s names (`-` may stand for `_`).
    fn from_str(s: &str) -> crate::Result<Self> {
        match s.replace('-', "_").as_str() {
            "amqp" => Ok(ServiceTransport::Amqp),
            "amqp_ws" => Ok(ServiceTransport::AmqpWs),
            _ => Err(crate::Error::invalid_argument(format!(
                "a service client's transport is amqp or amqp_ws, not '{s}'"
            ))),
        }
    }
}

/// The options of a service client; IoT Hub's own defaults (`Default`).
#[derive(Debug, Clone, Default)]
pub struct ServiceOptions {
    /// AMQP (the default) or AMQP over WebSockets, which a proxy needs.
    pub transport: ServiceTransport,
    /// What every client needs to reach its hub: trust, ports (`https_port` is also the
    /// registry's, purge's and feedback-over-REST's), retries (of connecting and of sends),
    /// timeouts, token life (renewed in-band at 75 %), a proxy (for REST and AMQP over
    /// WebSockets).
    pub connection: ConnectionOptions,
}

/// A service client to connect: the hub and policy of a connection string, with its
/// [`ServiceOptions`]. Made by [`ServiceClient::builder`](crate::ServiceClient::builder).
#[derive(Debug, Clone)]
pub struct ServiceClientBuilder {
    pub(crate) host_name: String,
    pub(crate) key_name: String,
    pub(crate) key: String,
    pub(crate) connection_string: String,
    pub(crate) options: ServiceOptions,
}

impl ServiceClientBuilder {
    /// Every option at once (what the C, Python and Node.js bindings give).
    pub fn options(mut self, options: ServiceOptions) -> Self {
        self.options = options;
        self
    }

    /// Sets [`ServiceOptions::transport`].
    pub fn transport(mut self, transport: ServiceTransport) -> Self {
        self.options.transport = transport;
        self
    }

    crate::transport::connection_setters!();
}
