//! How a client reaches its hub, whatever the client: [`ConnectionOptions`] (trust, ports,
//! retries, timeouts, token life, a proxy), which [`DeviceOptions`](crate::DeviceOptions) and
//! [`ServiceOptions`](crate::ServiceOptions) both hold, and the TLS configuration.

use std::sync::Arc;
use std::time::Duration;

use crate::error::Result;
use crate::retry::RetryPolicy;
use crate::tls::Pem;

/// What every client needs to reach its hub; IoT Hub's own defaults (`Default`).
#[derive(Debug, Clone)]
pub struct ConnectionOptions {
    /// Trust only these PEM roots (a local hub's dev CA) instead of the platform's.
    pub trusted_ca: Option<Pem>,
    /// The port of the chosen transport, for a hub not on IoT Hub's ports; it wins over the
    /// per-transport ports.
    pub port: Option<u16>,
    /// The port of AMQP over TLS, for a hub not on 5671.
    pub amqp_port: Option<u16>,
    /// The HTTPS port (REST, WebSockets, HTTPS polling), for a hub not on 443.
    pub https_port: Option<u16>,
    /// How connecting (and a service's sends) are retried: exponential back-off with jitter
    /// by default.
    pub retry: RetryPolicy,
    /// How long one connection attempt or operation may take (30 s).
    pub timeout: Duration,
    /// How long the SAS tokens the client makes are valid (1 h; at least 1 s); each is
    /// renewed well before it expires (a device's MQTT: a new CONNECT; AMQP: an in-band
    /// `put-token`).
    pub sas_token_ttl: Duration,
    /// Reach the hub through this HTTP proxy (`CONNECT`), which carries the WebSocket
    /// transports and HTTPS (`connect` refuses it with plain MQTT or AMQP). None by default;
    /// the environment's only with [`Proxy::from_env`](crate::Proxy::from_env).
    pub proxy: Option<crate::Proxy>,
}

/// The setters of [`ConnectionOptions`] that both client builders have, each setting
/// `self.options.connection`'s field of the same name.
macro_rules! connection_setters {
    () => {
        /// Sets [`ConnectionOptions::trusted_ca`](crate::ConnectionOptions::trusted_ca) to
        /// this PEM.
        pub fn trusted_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
            self.options.connection.trusted_ca = Some($crate::tls::Pem::Text(pem.into()));
            self
        }

        /// Sets [`ConnectionOptions::port`](crate::ConnectionOptions::port).
        pub fn port(mut self, port: u16) -> Self {
            self.options.connection.port = Some(port);
            self
        }

        /// Sets [`ConnectionOptions::amqp_port`](crate::ConnectionOptions::amqp_port).
        pub fn amqp_port(mut self, port: u16) -> Self {
            self.options.connection.amqp_port = Some(port);
            self
        }

        /// Sets [`ConnectionOptions::https_port`](crate::ConnectionOptions::https_port).
        pub fn https_port(mut self, port: u16) -> Self {
            self.options.connection.https_port = Some(port);
            self
        }

        /// Sets [`ConnectionOptions::retry`](crate::ConnectionOptions::retry).
        pub fn retry(mut self, retry: $crate::retry::RetryPolicy) -> Self {
            self.options.connection.retry = retry;
            self
        }

        /// Sets [`ConnectionOptions::timeout`](crate::ConnectionOptions::timeout).
        pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
            self.options.connection.timeout = timeout;
            self
        }

        /// Sets [`ConnectionOptions::sas_token_ttl`](crate::ConnectionOptions::sas_token_ttl).
        pub fn sas_token_ttl(mut self, ttl: std::time::Duration) -> Self {
            self.options.connection.sas_token_ttl = ttl;
            self
        }

        /// Sets [`ConnectionOptions::proxy`](crate::ConnectionOptions::proxy).
        pub fn proxy(mut self, proxy: $crate::Proxy) -> Self {
            self.options.connection.proxy = Some(proxy);
            self
        }
    };
}
pub(crate) use connection_setters;

/// How long the tokens a client makes are valid by default.
pub(crate) const TOKEN_TTL: Duration = Duration::from_secs(3600);

impl Default for ConnectionOptions {
    fn default() -> Self {
        ConnectionOptions {
            trusted_ca: None,
            port: None,
            amqp_port: None,
            https_port: None,
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(30),
            sas_token_ttl: TOKEN_TTL,
            proxy: None,
        }
    }
}

impl ConnectionOptions {
    /// The lower bounds applied.
    pub(crate) fn checked(mut self) -> Self {
        self.sas_token_ttl = self.sas_token_ttl.max(Duration::from_secs(1));
        self
    }

    /// The trusted CA's PEM, read.
    pub(crate) fn trusted_ca_pem(&self) -> Result<Option<Vec<u8>>> {
        self.trusted_ca
            .as_ref()
            .map(|pem| pem.read("the trusted CA"))
            .transpose()
    }
}

/// The TLS configuration for a client: only `ca_pem`'s roots when given, else the platform's.
pub fn tls_config(ca_pem: Option<&[u8]>) -> Result<Arc<rustls::ClientConfig>> {
    crate::tls::client_config(ca_pem, None)
}
