//! What a device client needs beyond its connection string: [`DeviceOptions`], one plain
//! struct that the C, Python and Node.js bindings fill whole, and the [`DeviceClientBuilder`]
//! that sets it field by field for Rust. `connect` (in the module above) makes every check.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::duplicates::DuplicateOptions;
use crate::error::{Error, Result};
use crate::tls::{ClientCertificate, Pem};
use crate::transport::ConnectionOptions;

/// How often an HTTPS device polls by default: IoT Hub asks devices to poll no more often
/// than every 25 minutes (the Azure C SDK's minimum).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(25 * 60);

/// How a device reaches the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// MQTT 3.1.1 over TLS, port 8883. Complete only: MQTT cannot reject or abandon.
    #[default]
    Mqtt,
    /// MQTT over a WebSocket, port 443.
    MqttWs,
    /// AMQP 1.0 over TLS, port 5671.
    Amqp,
    /// AMQP over a WebSocket, port 443.
    AmqpWs,
    /// HTTPS polling, port 443: for networks that let only HTTPS out, and for devices that
    /// wake, poll and sleep. Every settlement is available. Messages arrive only when the
    /// client polls: at connect, then every [poll interval](DeviceClientBuilder::poll_interval)
    /// (25 minutes by default, IoT Hub's guidance), each poll draining the queue.
    Https,
}

impl Transport {
    /// Every transport, in declaration order.
    pub const ALL: [Transport; 5] = [
        Transport::Mqtt,
        Transport::MqttWs,
        Transport::Amqp,
        Transport::AmqpWs,
        Transport::Https,
    ];

    /// The name c2d uses for the transport everywhere (`mqtt`, `mqtt_ws`, `amqp`,
    /// `amqp_ws`, `https`).
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Mqtt => "mqtt",
            Transport::MqttWs => "mqtt_ws",
            Transport::Amqp => "amqp",
            Transport::AmqpWs => "amqp_ws",
            Transport::Https => "https",
        }
    }

    /// Whether this build of c2d carries the transport (the `mqtt`, `amqp` and `https`
    /// features; all by default). Connecting with one it lacks is
    /// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported).
    pub fn is_available(self) -> bool {
        match self {
            Transport::Mqtt | Transport::MqttWs => cfg!(feature = "mqtt"),
            Transport::Amqp | Transport::AmqpWs => cfg!(feature = "amqp"),
            Transport::Https => cfg!(feature = "https"),
        }
    }
}

impl std::str::FromStr for Transport {
    type Err = Error;
    /// Parses [`as_str`](Transport::as_str)'s names (`-` may stand for `_`).
    fn from_str(s: &str) -> Result<Self> {
        let name = s.replace('-', "_");
        Transport::ALL
            .into_iter()
            .find(|t| t.as_str() == name)
            .ok_or_else(|| {
                Error::invalid_argument(format!(
                    "transport must be mqtt, mqtt_ws, amqp, amqp_ws or https, not '{s}'"
                ))
            })
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The options of a device client; IoT Hub's own defaults (`Default`).
#[derive(Debug, Clone)]
pub struct DeviceOptions {
    /// How the device reaches the hub (MQTT by default).
    pub transport: Transport,
    /// What every client needs to reach its hub: trust, ports, retries, timeouts, token
    /// life, a proxy.
    pub connection: ConnectionOptions,
    /// The port of [`Transport::Mqtt`], for a hub not on 8883. With the other per-transport
    /// ports, one set of options describes a hub whatever the transport.
    pub mqtt_port: Option<u16>,
    /// How many messages may be received and not yet settled (16; at least 1; AMQP credit).
    pub in_flight: u16,
    /// How long an HTTPS device waits between polls once the queue is empty
    /// ([`DEFAULT_POLL_INTERVAL`], 25 minutes: IoT Hub throttles HTTPS receives, so poll more
    /// often only in development). Each poll drains the queue. Ignored by the other
    /// transports.
    pub poll_interval: Duration,
    /// Authenticate with this X.509 certificate and key instead of a SAS token: the device is
    /// registered as `selfSigned` (by the certificate's thumbprint) or `certificateAuthority`
    /// (its certificate chains to a CA registered with the hub and names the device in its
    /// common name). Needed with a connection string that says `x509=true`; with a key or a
    /// token in the connection string, the token is used and the certificate only offered.
    pub client_certificate: Option<ClientCertificate>,
    /// Suppress duplicates (`None`: off, every delivery is handed over): the ids of the
    /// messages the application completed or rejected are remembered, and one that comes
    /// again is settled the same way without being handed over
    /// ([`DeviceClient::duplicates_suppressed`](crate::DeviceClient::duplicates_suppressed)
    /// counts them). Messages without a message id are always handed over.
    pub duplicates: Option<DuplicateOptions>,
}

impl Default for DeviceOptions {
    fn default() -> Self {
        DeviceOptions {
            transport: Transport::Mqtt,
            connection: ConnectionOptions::default(),
            mqtt_port: None,
            in_flight: 16,
            poll_interval: DEFAULT_POLL_INTERVAL,
            client_certificate: None,
            duplicates: None,
        }
    }
}

impl DeviceOptions {
    /// The port the chosen transport dials.
    pub(crate) fn port_or_default(&self) -> u16 {
        let c = &self.connection;
        c.port.unwrap_or(match self.transport {
            Transport::Mqtt => self.mqtt_port.unwrap_or(8883),
            Transport::Amqp => c.amqp_port.unwrap_or(5671),
            Transport::MqttWs | Transport::AmqpWs | Transport::Https => c.https_port.unwrap_or(443),
        })
    }
}

/// A device client to connect: the device of a connection string, with its
/// [`DeviceOptions`]. Made by [`DeviceClient::builder`](crate::DeviceClient::builder).
#[derive(Debug, Clone)]
pub struct DeviceClientBuilder {
    pub(crate) host_name: String,
    pub(crate) connect_host: String,
    pub(crate) device_id: String,
    pub(crate) key: Option<String>,
    pub(crate) fixed_token: Option<String>,
    pub(crate) options: DeviceOptions,
}

impl DeviceClientBuilder {
    /// Every option at once (what the C, Python and Node.js bindings give).
    pub fn options(mut self, options: DeviceOptions) -> Self {
        self.options = options;
        self
    }

    /// Sets [`DeviceOptions::transport`].
    pub fn transport(mut self, transport: Transport) -> Self {
        self.options.transport = transport;
        self
    }

    crate::transport::connection_setters!();

    /// Sets [`DeviceOptions::mqtt_port`].
    pub fn mqtt_port(mut self, port: u16) -> Self {
        self.options.mqtt_port = Some(port);
        self
    }

    /// Sets [`DeviceOptions::in_flight`].
    pub fn in_flight(mut self, n: u16) -> Self {
        self.options.in_flight = n;
        self
    }

    /// Sets [`DeviceOptions::poll_interval`].
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.options.poll_interval = interval;
        self
    }

    /// Sets [`DeviceOptions::client_certificate`] to this certificate (PEM, leaf first,
    /// intermediates after it) and private key (PEM: PKCS#8, PKCS#1 or SEC1). One that does
    /// not parse makes `connect` fail with `InvalidArgument`.
    pub fn client_certificate(
        mut self,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.options.client_certificate = Some(ClientCertificate {
            cert: Pem::Text(cert_pem.into()),
            key: Pem::Text(key_pem.into()),
        });
        self
    }

    /// Suppresses duplicates with the default window ([`DeviceOptions::duplicates`]), or
    /// stops suppressing them.
    pub fn suppress_duplicates(mut self, on: bool) -> Self {
        self.options.duplicates = on.then(|| self.options.duplicates.take().unwrap_or_default());
        self
    }

    /// Suppresses duplicates with the window kept in `path` too, across restarts and crashes
    /// of the process ([`DuplicateOptions::file`]).
    pub fn duplicates_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        let mut d = self.options.duplicates.take().unwrap_or_default();
        d.file = Some(path.into());
        self.options.duplicates = Some(d);
        self
    }

    /// The options in force: the lower bounds applied.
    pub(crate) fn checked(mut self) -> Self {
        self.options.in_flight = self.options.in_flight.max(1);
        self.options.connection = self.options.connection.checked();
        self
    }

    /// The port the chosen transport dials.
    pub(crate) fn port_or_default(&self) -> u16 {
        self.options.port_or_default()
    }

    /// When to renew a token that expires at `expiry`: at 80 % of its life.
    pub(crate) fn renew_at(&self, expiry: SystemTime) -> SystemTime {
        expiry - self.options.connection.sas_token_ttl / 5
    }

    /// A SAS token for this device, and when it expires; `None` for an X.509 device.
    pub(crate) fn token(&self) -> Result<Option<(String, SystemTime)>> {
        if let Some(t) = &self.fixed_token {
            let parsed = crate::sas::SasToken::parse(t)?;
            return Ok(Some((
                t.clone(),
                UNIX_EPOCH + Duration::from_secs(parsed.expiry()),
            )));
        }
        let Some(key) = self.key.as_deref() else {
            return Ok(None);
        };
        let expiry = SystemTime::now() + self.options.connection.sas_token_ttl;
        let secs = expiry.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let resource = format!("{}/devices/{}", self.host_name, self.device_id);
        Ok(Some((
            crate::sas::generate_token(&resource, key, None, secs)?,
            expiry,
        )))
    }
}
