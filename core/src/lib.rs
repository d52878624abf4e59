//! c2d: Azure IoT Hub cloud-to-device messaging.
//!
//! This crate is the engine shared by the `c2d` command, the local hub and the C, Python and
//! Node.js bindings: [`DeviceClient`] and [`ServiceClient`], and what they stand on:
//! connection strings, SAS tokens, the message and feedback model, the MQTT property bag,
//! AMQP messages, retry policies, the process-wide runtime and the registry client.
//!
//! Cargo features choose what a build carries: `mqtt`, `amqp` and `https` (the device
//! transports; MQTT/WS goes with `mqtt`, AMQP/WS with `amqp`) and `service` (the service and
//! registry clients; needs `amqp` and `https`), all on by default. A transport a build lacks
//! is refused at connect with [`ErrorKind::Unsupported`].

#![warn(missing_docs)]

#[cfg(not(any(feature = "mqtt", feature = "amqp", feature = "https")))]
compile_error!("c2d needs at least one transport: enable the mqtt, amqp or https feature");

#[cfg(feature = "amqp")]
pub mod amqp;
pub mod connection_string;
pub mod device;
pub mod duration;
pub mod error;
#[cfg(feature = "https")]
mod http;
pub mod identity;
pub mod message;
pub mod property_bag;
pub mod proxy;
pub mod retry;
pub mod runtime;
pub mod sas;
pub mod service;
pub mod status;
pub mod timestamp;
pub mod tls;
pub mod transport;

/// The clients' decoders of what a hub sends, for the fuzz targets (`fuzz/`); not an API.
#[doc(hidden)]
pub mod decoders {
    /// A PUBLISH on a device's C2D topic → the message a device hands over.
    #[cfg(feature = "mqtt")]
    pub fn mqtt_publish(topic: &str, payload: Vec<u8>) -> crate::Message {
        crate::device::mqtt::message_of_publish(topic, payload)
    }

    /// A C2D message over AMQP → the message a device hands over.
    #[cfg(feature = "amqp")]
    pub fn amqp_received(m: &crate::amqp::AmqpMessage) -> crate::Result<crate::Message> {
        crate::device::amqp::received(m).map(|(m, ..)| m)
    }

    /// An HTTPS receive's answer (headers and body) → the message a device hands over.
    #[cfg(feature = "https")]
    pub fn https_receive(
        headers: &reqwest::header::HeaderMap,
        body: Vec<u8>,
    ) -> crate::Result<crate::Message> {
        crate::device::https::to_message(headers, body).map(|(m, _)| m)
    }

    /// A CBS reply to a put-token → accepted, or why not.
    #[cfg(feature = "amqp")]
    pub fn cbs_reply(m: &crate::amqp::AmqpMessage) -> crate::Result<()> {
        crate::amqp::session::cbs_outcome(m)
    }
}

pub use connection_string::{ConnectionString, ConnectionStringKind, Credential};
pub use device::{
    Delivered, DeviceClient, DeviceClientBuilder, DeviceOptions, DuplicateOptions, ReceivedMessage,
    SettleOnce, Settlement, Transport,
};
pub use error::{Error, ErrorKind, Result};
pub use message::{Ack, Message, MessageId};
pub use proxy::Proxy;
pub use retry::RetryPolicy;
#[cfg(feature = "service")]
pub use service::client::{FeedbackReceiver, SentMessage, ServiceClient, ServiceTransport};
#[cfg(feature = "service")]
pub use service::fanout::{FanOut, FanOutStopper, FanOutSummary, SendMany};
pub use service::feedback::{FeedbackRecord, FeedbackStatus};
#[cfg(feature = "service")]
pub use service::options::{ServiceClientBuilder, ServiceOptions};
#[cfg(feature = "service")]
pub use service::registry::{Device, DeviceIdPage, PurgeResult, RegistryClient, RegistryOptions};
pub use service::tier::{Rate, Tier};
pub use status::{ConnectionStatus, StatusReceiver};
pub use tls::{ClientCertificate, Pem};
pub use transport::ConnectionOptions;
