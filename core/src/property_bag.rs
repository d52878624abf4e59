//! The MQTT property bag: IoT Hub's encoding of a message's properties in the last segment of
//! the C2D topic `devices/{id}/messages/devicebound/{bag}`.
//!
//! `k1=v1&k2=v2`, keys and values percent-encoded (`%20` for a space, never `+`; `%2F` for
//! `/`, since SDKs split the topic on `/`), system properties as `%24.mid`, `%24.to`, ….

use crate::error::Result;
use crate::message::{Ack, Message, MessageId};
use crate::sas::{url_decode, url_encode};
use crate::timestamp;

/// System property keys, decoded.
pub mod keys {
    /// message-id
    pub const MESSAGE_ID: &str = "$.mid";
    /// to
    pub const TO: &str = "$.to";
    /// correlation-id
    pub const CORRELATION_ID: &str = "$.cid";
    /// user-id
    pub const USER_ID: &str = "$.uid";
    /// absolute-expiry-time
    pub const EXPIRY: &str = "$.exp";
    /// content-type
    pub const CONTENT_TYPE: &str = "$.ct";
    /// content-encoding
    pub const CONTENT_ENCODING: &str = "$.ce";
    /// iothub-ack
    pub const ACK: &str = "iothub-ack";
}

/// Encodes a message's properties as a property bag. `$.to` is always written (the C# SDK
/// crashes on a topic without a bag), falling back to `default_to` when the message has none.
pub fn encode(message: &Message, default_to: &str) -> String {
    let mut pairs: Vec<(&str, String)> = Vec::new();
    if let Some(id) = &message.message_id {
        pairs.push((keys::MESSAGE_ID, id.to_string()));
    }
    pairs.push((
        keys::TO,
        message.to.clone().unwrap_or_else(|| default_to.to_string()),
    ));
    if let Some(id) = &message.correlation_id {
        pairs.push((keys::CORRELATION_ID, id.to_string()));
    }
    if let Some(uid) = &message.user_id {
        pairs.push((keys::USER_ID, String::from_utf8_lossy(uid).into_owned()));
    }
    if let Some(exp) = message.expiry_time {
        pairs.push((keys::EXPIRY, timestamp::format_utc(exp)));
    }
    if let Some(ct) = &message.content_type {
        pairs.push((keys::CONTENT_TYPE, ct.clone()));
    }
    if let Some(ce) = &message.content_encoding {
        pairs.push((keys::CONTENT_ENCODING, ce.clone()));
    }
    if let Some(ack) = message.ack {
        pairs.push((keys::ACK, ack.as_str().to_string()));
    }
    let mut out = String::new();
    let app = message
        .properties
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()));
    for (k, v) in pairs.into_iter().chain(app) {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(&url_encode(k));
        out.push('=');
        out.push_str(&url_encode(&v));
    }
    out
}

/// Decodes a property bag into `(key, value)` pairs; a key with no `=` has no value. A
/// leading `?` (shown in some IoT Hub docs) is tolerated.
pub fn decode(bag: &str) -> Result<Vec<(String, Option<String>)>> {
    let bag = bag.strip_prefix('?').unwrap_or(bag);
    bag.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => Ok((url_decode(k)?, Some(url_decode(v)?))),
            None => Ok((url_decode(pair)?, None)),
        })
        .collect()
}

/// Builds a message from a received body and property bag. System keys fill the system
/// properties; every other key becomes an application property (a key without a value
/// becomes an empty string).
pub fn to_message(body: Vec<u8>, bag: &str) -> Result<Message> {
    let mut m = Message::new(body);
    for (k, v) in decode(bag)? {
        let v = v.unwrap_or_default();
        match k.as_str() {
            keys::MESSAGE_ID => m.message_id = Some(MessageId::String(v)),
            keys::TO => m.to = Some(v),
            keys::CORRELATION_ID => m.correlation_id = Some(MessageId::String(v)),
            keys::USER_ID => m.user_id = Some(v.into_bytes()),
            keys::EXPIRY => m.expiry_time = Some(timestamp::parse_utc(&v)?),
            keys::CONTENT_TYPE => m.content_type = Some(v),
            keys::CONTENT_ENCODING => m.content_encoding = Some(v),
            keys::ACK => m.ack = Some(v.parse::<Ack>()?),
            _ => m.properties.push((k, v)),
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn illustrative_topic_of_protocol_md() {
        let m = Message::new("b")
            .message_id("msg-1")
            .correlation_id("corr 1")
            .ack(Ack::Full)
            .property("a b", "c/d");
        assert_eq!(
            encode(&m, "/devices/device1/messages/devicebound"),
            "%24.mid=msg-1&%24.to=%2Fdevices%2Fdevice1%2Fmessages%2Fdevicebound&%24.cid=corr%201&iothub-ack=full&a%20b=c%2Fd"
        );
    }

    #[test]
    fn to_is_always_present_and_values_never_use_plus() {
        let m = Message::new("b").property("x", "1 + 1=2&3");
        let bag = encode(&m, "/devices/d/messages/devicebound");
        assert!(bag.starts_with("%24.to=%2Fdevices%2Fd%2Fmessages%2Fdevicebound"));
        assert!(bag.ends_with("x=1%20%2B%201%3D2%263"));
        let back = to_message(b"b".to_vec(), &bag).unwrap();
        assert_eq!(back.get_property("x"), Some("1 + 1=2&3"));
    }

    #[test]
    fn captured_bag_with_valueless_keys_decodes() {
        let pairs = decode(
            "iothub-ack=Full&%24.to=%2Fdevices%2Fj%2Fmessages%2FdeviceBound&%24.cid&%24.uid",
        )
        .unwrap();
        assert_eq!(pairs[0], ("iothub-ack".into(), Some("Full".into())));
        assert_eq!(pairs[2], ("$.cid".into(), None));
        let m = to_message(
            vec![],
            "?%24.mid=1&%24.exp=2030-01-01T00%3A00%3A00.0000000Z&k=v+w",
        )
        .unwrap();
        assert_eq!(m.message_id, Some(MessageId::from("1")));
        assert!(m.expiry_time.is_some());
        assert_eq!(m.get_property("k"), Some("v+w"));
    }

    #[test]
    fn expiry_round_trips() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_900_000_000_500);
        let m = Message {
            expiry_time: Some(t),
            ..Message::new("")
        };
        let bag = encode(&m, "/x");
        assert!(
            bag.contains("%24.exp=2030-03-17T17%3A46%3A40.5000000Z"),
            "{bag}"
        );
        assert_eq!(to_message(vec![], &bag).unwrap().expiry_time, Some(t));
    }
}
