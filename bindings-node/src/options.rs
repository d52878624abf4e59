//! The options of both clients, as JavaScript gives them (what `DeviceClient.connect` and
//! `ServiceClient.connect` take, checked for their types by index.ts), made the engine's
//! [`c2d::DeviceOptions`] or [`c2d::ServiceOptions`], whose checks are the engine's.

use napi::bindgen_prelude::{Buffer, Either};
use napi_derive::napi;

use c2d::{ClientCertificate, ConnectionOptions, DeviceOptions, Pem, ServiceOptions};

use crate::retry::RetryPolicy;
use crate::runtime::opt_millis;

/// The `{name}` (text or Buffer) or `{name}File` option.
fn pem(
    name: &str,
    text: Option<Either<String, Buffer>>,
    file: Option<String>,
) -> c2d::Result<Option<Pem>> {
    let text = text.map(|t| match t {
        Either::A(text) => text.into_bytes(),
        Either::B(bytes) => bytes.to_vec(),
    });
    Pem::either(name, text, file.map(Into::into))
}

/// The options of a client (a service client has no use for the device's own: `mqttPort`,
/// `inFlight`, `pollIntervalMs`, `cert`, `key`).
#[napi(object)]
pub struct ClientOptions {
    /// A device's `mqtt` (the default), `mqtt_ws`, `amqp`, `amqp_ws` or `https`; a
    /// service's `amqp` (the default) or `amqp_ws`.
    pub transport: Option<String>,
    /// PEM of the CA certificates to trust instead of the system's.
    pub trusted_ca: Option<Either<String, Buffer>>,
    /// A file of such PEM.
    pub trusted_ca_file: Option<String>,
    /// The port of the transport chosen.
    pub port: Option<u16>,
    /// The MQTT port.
    pub mqtt_port: Option<u16>,
    /// The AMQP port.
    pub amqp_port: Option<u16>,
    /// The HTTPS (REST, WebSocket, HTTPS polling) port.
    pub https_port: Option<u16>,
    /// How long one operation may take, in milliseconds.
    pub timeout_ms: Option<f64>,
    /// How long each SAS token the client makes is valid, in milliseconds.
    pub sas_token_ttl_ms: Option<f64>,
    /// How many messages may be delivered and not yet settled.
    pub in_flight: Option<u16>,
    /// How long an HTTPS client waits between polls once the queue is empty, in milliseconds.
    pub poll_interval_ms: Option<f64>,
    /// The device's X.509 certificate, PEM.
    pub cert: Option<Either<String, Buffer>>,
    /// A file of it.
    pub cert_file: Option<String>,
    /// The certificate's private key, PEM.
    pub key: Option<Either<String, Buffer>>,
    /// A file of it.
    pub key_file: Option<String>,
    /// An HTTP proxy, `http://[user:password@]host:port`.
    pub proxy: Option<String>,
    /// Hand each message over once (a message completed or rejected that comes again is
    /// settled the same way, not handed over).
    pub suppress_duplicates: Option<bool>,
    /// Keep the ids of settled messages in this file too (implies `suppressDuplicates`).
    pub duplicates_file: Option<String>,
}

impl ClientOptions {
    /// What every client takes.
    fn connection(&mut self, retry: Option<&RetryPolicy>) -> c2d::Result<ConnectionOptions> {
        let d = ConnectionOptions::default();
        Ok(ConnectionOptions {
            trusted_ca: pem(
                "trustedCa",
                self.trusted_ca.take(),
                self.trusted_ca_file.take(),
            )?,
            port: self.port,
            amqp_port: self.amqp_port,
            https_port: self.https_port,
            retry: retry.map_or(d.retry, RetryPolicy::engine),
            timeout: opt_millis("timeoutMs", self.timeout_ms)?.unwrap_or(d.timeout),
            sas_token_ttl: opt_millis("sasTokenTtlMs", self.sas_token_ttl_ms)?
                .unwrap_or(d.sas_token_ttl),
            proxy: self.proxy.as_deref().map(c2d::Proxy::parse).transpose()?,
        })
    }

    /// A device client of `connection_string` with these options.
    pub fn device(
        mut self,
        connection_string: &str,
        retry: Option<&RetryPolicy>,
    ) -> c2d::Result<c2d::DeviceClientBuilder> {
        let d = DeviceOptions::default();
        let options = DeviceOptions {
            transport: self.transport.as_deref().unwrap_or("mqtt").parse()?,
            connection: self.connection(retry)?,
            mqtt_port: self.mqtt_port,
            in_flight: self.in_flight.unwrap_or(d.in_flight),
            poll_interval: opt_millis("pollIntervalMs", self.poll_interval_ms)?
                .unwrap_or(d.poll_interval),
            client_certificate: ClientCertificate::pair(
                pem("cert", self.cert, self.cert_file)?,
                pem("key", self.key, self.key_file)?,
            )?,
            duplicates: c2d::DuplicateOptions::from_options(
                self.suppress_duplicates.unwrap_or(false),
                self.duplicates_file.map(Into::into),
            ),
        };
        Ok(c2d::DeviceClient::builder(connection_string)?.options(options))
    }

    /// A service client of `connection_string` with these options.
    pub fn service(
        mut self,
        connection_string: &str,
        retry: Option<&RetryPolicy>,
    ) -> c2d::Result<c2d::ServiceClientBuilder> {
        let options = ServiceOptions {
            transport: self.transport.as_deref().unwrap_or("amqp").parse()?,
            connection: self.connection(retry)?,
        };
        Ok(c2d::ServiceClient::builder(connection_string)?.options(options))
    }
}
