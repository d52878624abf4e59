//! The cloud-to-device message model shared by the clients and the hub.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A message id or correlation id, in any of the AMQP types IoT Hub carries.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "lowercase")]
pub enum MessageId {
    /// An AMQP string (what most SDKs send).
    String(String),
    /// An AMQP uuid (the Node service SDK sends lowercase UUID strings as this type).
    Uuid(uuid::Uuid),
    /// An AMQP ulong.
    Ulong(u64),
    /// AMQP binary.
    Binary(Vec<u8>),
}

impl fmt::Display for MessageId {
    /// The text form IoT Hub uses on MQTT and in feedback (UUIDs lowercase, hyphenated; binary
    /// as lowercase hex).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageId::String(s) => f.write_str(s),
            MessageId::Uuid(u) => write!(f, "{}", u.hyphenated()),
            MessageId::Ulong(n) => write!(f, "{n}"),
            MessageId::Binary(b) => b.iter().try_for_each(|x| write!(f, "{x:02x}")),
        }
    }
}

impl From<&str> for MessageId {
    fn from(s: &str) -> Self {
        MessageId::String(s.to_string())
    }
}

impl From<String> for MessageId {
    fn from(s: String) -> Self {
        MessageId::String(s)
    }
}

/// Which delivery outcomes the service wants feedback for (`iothub-ack`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ack {
    /// No feedback (the default).
    #[default]
    None,
    /// Feedback when the device completes the message (`Success`).
    Positive,
    /// Feedback when the message is not delivered (`Rejected`, `Expired`,
    /// `DeliveryCountExceeded`, `Purged`).
    Negative,
    /// Both.
    Full,
}

impl Ack {
    /// The wire value: `none`, `positive`, `negative` or `full`.
    pub fn as_str(self) -> &'static str {
        match self {
            Ack::None => "none",
            Ack::Positive => "positive",
            Ack::Negative => "negative",
            Ack::Full => "full",
        }
    }

    /// Whether a positive outcome (`Success`) produces a feedback record.
    pub fn wants_positive(self) -> bool {
        matches!(self, Ack::Positive | Ack::Full)
    }

    /// Whether a negative outcome produces a feedback record.
    pub fn wants_negative(self) -> bool {
        matches!(self, Ack::Negative | Ack::Full)
    }
}

impl FromStr for Ack {
    type Err = Error;
    /// Parses the wire value, ignoring case (`Full` is seen on the wire).
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Ok(Ack::None),
            "positive" => Ok(Ack::Positive),
            "negative" => Ok(Ack::Negative),
            "full" => Ok(Ack::Full),
            _ => Err(Error::invalid_argument(format!(
                "ack must be none, positive, negative or full, not '{s}'"
            ))),
        }
    }
}

impl fmt::Display for Ack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A cloud-to-device message: a body and IoT Hub's system and application properties.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Message {
    /// The payload.
    #[serde(skip)]
    pub body: Vec<u8>,
    /// `message-id` (`$.mid` on MQTT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<MessageId>,
    /// `correlation-id` (`$.cid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<MessageId>,
    /// `user-id` (`$.uid`), binary on AMQP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Vec<u8>>,
    /// `to`: `/devices/{id}/messages/devicebound` (`$.to`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// `absolute-expiry-time` (`$.exp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry_time: Option<SystemTime>,
    /// `creation-time`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_time: Option<SystemTime>,
    /// `iothub-ack`: which outcomes produce feedback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack: Option<Ack>,
    /// `content-type` (`$.ct`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// `content-encoding` (`$.ce`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    /// Application properties, in the order they were set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<(String, String)>,
}

impl Message {
    /// A message with this body and no properties.
    pub fn new(body: impl Into<Vec<u8>>) -> Self {
        Message {
            body: body.into(),
            ..Default::default()
        }
    }

    /// Sets the message id.
    pub fn message_id(mut self, id: impl Into<MessageId>) -> Self {
        self.message_id = Some(id.into());
        self
    }

    /// Sets the correlation id.
    pub fn correlation_id(mut self, id: impl Into<MessageId>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }

    /// Sets which outcomes produce feedback.
    pub fn ack(mut self, ack: Ack) -> Self {
        self.ack = Some(ack);
        self
    }

    /// Sets the absolute expiry to `ttl` from now.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.expiry_time = Some(SystemTime::now() + ttl);
        self
    }

    /// Sets the content type.
    pub fn content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }

    /// Sets the content encoding.
    pub fn content_encoding(mut self, content_encoding: impl Into<String>) -> Self {
        self.content_encoding = Some(content_encoding.into());
        self
    }

    /// Adds (or replaces) an application property.
    pub fn property(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let name = name.into();
        let value = value.into();
        match self.properties.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => self.properties.push((name, value)),
        }
        self
    }

    /// The value of an application property.
    pub fn get_property(&self, name: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The ack mode, `none` when unset.
    pub fn ack_mode(&self) -> Ack {
        self.ack.unwrap_or_default()
    }

    /// The size IoT Hub counts against its 64 KB limit: the body, the system property values,
    /// and the application property names and values.
    pub fn wire_size(&self) -> usize {
        let id_len = |id: &Option<MessageId>| id.as_ref().map_or(0, |i| i.to_string().len());
        let str_len = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        self.body.len()
            + id_len(&self.message_id)
            + id_len(&self.correlation_id)
            + self.user_id.as_ref().map_or(0, Vec::len)
            + str_len(&self.to)
            + str_len(&self.content_type)
            + str_len(&self.content_encoding)
            + self.ack.map_or(0, |a| a.as_str().len())
            + self
                .properties
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
    }
}

/// The `to` address of a C2D message for `device_id`, with the id URL-encoded as the Node and
/// C# SDKs write it.
pub fn device_bound_address(device_id: &str) -> String {
    format!(
        "/devices/{}/messages/devicebound",
        crate::sas::url_encode(device_id)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_render_as_iot_hub_text() {
        let u = uuid::Uuid::parse_str("6f1e2b7c-0e2a-4a8e-9a3b-2b1c0d9e8f7a").unwrap();
        assert_eq!(
            MessageId::Uuid(u).to_string(),
            "6f1e2b7c-0e2a-4a8e-9a3b-2b1c0d9e8f7a"
        );
        assert_eq!(MessageId::Ulong(42).to_string(), "42");
        assert_eq!(MessageId::Binary(vec![0xab, 0x01]).to_string(), "ab01");
        assert_eq!(MessageId::from("m-1").to_string(), "m-1");
    }

    #[test]
    fn ack_parses_any_case() {
        assert_eq!("Full".parse::<Ack>().unwrap(), Ack::Full);
        assert_eq!("negative".parse::<Ack>().unwrap(), Ack::Negative);
        assert!("sometimes".parse::<Ack>().is_err());
        assert!(Ack::Full.wants_positive() && Ack::Full.wants_negative());
        assert!(!Ack::Positive.wants_negative() && !Ack::Negative.wants_positive());
    }

    #[test]
    fn size_counts_body_system_values_and_properties() {
        let m = Message::new(vec![0u8; 10])
            .message_id("abc")
            .ack(Ack::Full)
            .property("k", "vv");
        assert_eq!(m.wire_size(), 10 + 3 + 4 + 3);
    }

    #[test]
    fn metadata_round_trips_through_json_without_the_body() {
        let m = Message::new("x")
            .message_id(MessageId::Ulong(7))
            .correlation_id("c")
            .ack(Ack::Negative)
            .property("a", "1");
        let json = serde_json::to_string(&m).unwrap();
        let mut back: Message = serde_json::from_str(&json).unwrap();
        assert!(back.body.is_empty());
        back.body = m.body.clone();
        assert_eq!(back, m);
        assert_eq!(
            device_bound_address("a b"),
            "/devices/a%20b/messages/devicebound"
        );
    }
}
