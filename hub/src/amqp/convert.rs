//! AMQP messages to and from c2d's message model.

use std::time::SystemTime;

use c2d::timestamp::{from_unix_millis, to_unix_millis};
use c2d::{Ack, MessageId};
use fe2o3_amqp_types::messaging::{
    message::Body, AmqpValue, ApplicationProperties, Data, Message, MessageAnnotations,
    MessageId as AmqpId, Properties,
};
use fe2o3_amqp_types::primitives::{Binary, OrderedMap, SimpleValue, Symbol, Timestamp, Value};
use serde_amqp::extensions::TransparentVec;

/// An AMQP message with any body.
pub type AmqpMessage = Message<Body<Value>>;

/// Decodes a message from a transfer's payload.
pub fn decode(payload: &[u8]) -> Result<AmqpMessage, String> {
    let m: fe2o3_amqp_types::messaging::message::__private::Deserializable<AmqpMessage> =
        serde_amqp::from_slice(payload).map_err(|e| format!("undecodable message: {e}"))?;
    Ok(m.0)
}

/// Encodes a message as a transfer payload.
pub fn encode(m: &AmqpMessage) -> Vec<u8> {
    serde_amqp::to_vec(&fe2o3_amqp_types::messaging::message::__private::Serializable(m))
        .expect("messages always encode")
}

pub fn id_from_amqp(id: &AmqpId) -> MessageId {
    match id {
        AmqpId::String(s) => MessageId::String(s.clone()),
        AmqpId::Uuid(u) => MessageId::Uuid(uuid::Uuid::from_bytes(*u.as_inner())),
        AmqpId::Ulong(n) => MessageId::Ulong(*n),
        AmqpId::Binary(b) => MessageId::Binary(b.to_vec()),
    }
}

pub fn id_to_amqp(id: &MessageId) -> AmqpId {
    match id {
        MessageId::String(s) => AmqpId::String(s.clone()),
        MessageId::Uuid(u) => AmqpId::Uuid((*u.as_bytes()).into()),
        MessageId::Ulong(n) => AmqpId::Ulong(*n),
        MessageId::Binary(b) => AmqpId::Binary(Binary::from(b.clone())),
    }
}

/// The text of a simple application-property value.
fn simple_to_string(v: &SimpleValue) -> String {
    match v {
        SimpleValue::Null => String::new(),
        SimpleValue::Bool(b) => b.to_string(),
        SimpleValue::Ubyte(n) => n.to_string(),
        SimpleValue::Ushort(n) => n.to_string(),
        SimpleValue::Uint(n) => n.to_string(),
        SimpleValue::Ulong(n) => n.to_string(),
        SimpleValue::Byte(n) => n.to_string(),
        SimpleValue::Short(n) => n.to_string(),
        SimpleValue::Int(n) => n.to_string(),
        SimpleValue::Long(n) => n.to_string(),
        SimpleValue::Float(n) => n.to_string(),
        SimpleValue::Double(n) => n.to_string(),
        SimpleValue::Char(c) => c.to_string(),
        SimpleValue::Timestamp(t) => c2d::timestamp::format_utc(from_unix_millis(t.milliseconds())),
        SimpleValue::Uuid(u) => uuid::Uuid::from_bytes(*u.as_inner())
            .hyphenated()
            .to_string(),
        SimpleValue::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        SimpleValue::String(s) => s.clone(),
        SimpleValue::Symbol(s) => s.0.clone(),
        other => format!("{other:?}"),
    }
}

/// The body bytes: the data sections joined, or an amqp-value of binary or string.
fn body_bytes(body: &Body<Value>) -> Result<Vec<u8>, String> {
    match body {
        Body::Data(sections) => Ok(sections.iter().flat_map(|d| d.0.iter().copied()).collect()),
        Body::Value(AmqpValue(Value::Binary(b))) => Ok(b.to_vec()),
        Body::Value(AmqpValue(Value::String(s))) => Ok(s.clone().into_bytes()),
        Body::Value(AmqpValue(Value::Null)) | Body::Empty => Ok(Vec::new()),
        _ => Err("the body must be data sections (or a binary or string amqp-value)".into()),
    }
}

/// A service's C2D message as c2d's model.
pub fn to_c2d(m: &AmqpMessage) -> Result<c2d::Message, String> {
    let mut out = c2d::Message::new(body_bytes(&m.body)?);
    if let Some(p) = &m.properties {
        out.message_id = p.message_id.as_ref().map(id_from_amqp);
        out.correlation_id = p.correlation_id.as_ref().map(id_from_amqp);
        out.user_id = p.user_id.as_ref().map(|b| b.to_vec());
        out.to = p.to.clone();
        out.content_type = p.content_type.as_ref().map(|s| s.0.clone());
        out.content_encoding = p.content_encoding.as_ref().map(|s| s.0.clone());
        out.expiry_time = p
            .absolute_expiry_time
            .as_ref()
            .map(|t| from_unix_millis(t.milliseconds()));
        out.creation_time = p
            .creation_time
            .as_ref()
            .map(|t| from_unix_millis(t.milliseconds()));
    }
    if let Some(ApplicationProperties(props)) = &m.application_properties {
        for (k, v) in props.iter() {
            let v = simple_to_string(v);
            if k.eq_ignore_ascii_case("iothub-ack") {
                out.ack = Some(v.parse::<Ack>().map_err(|e| e.message().to_string())?);
            } else {
                out.properties.push((k.clone(), v));
            }
        }
    }
    Ok(out)
}

/// The path of a link address: scheme, host and port dropped, segments URL-decoded.
pub fn address_path(address: &str) -> String {
    let rest = match address.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("", |i| &rest[i..]),
        None => address,
    };
    let path = rest.split('?').next().unwrap_or("");
    let decoded = c2d::sas::url_decode(path).unwrap_or_else(|_| path.to_string());
    let trimmed = decoded.trim_end_matches('/');
    if trimmed.starts_with('/') {
        trimmed.to_string()
    } else {
        format!("/{trimmed}")
    }
}

/// The device of a `to` address `/devices/{id}/messages/devicebound`.
pub fn device_of_to(to: &str) -> Option<String> {
    let path = address_path(to);
    let rest = path.strip_prefix("/devices/")?;
    let (id, tail) = rest.split_once('/')?;
    (tail.eq_ignore_ascii_case("messages/devicebound") && !id.is_empty()).then(|| id.to_string())
}

/// A feedback message: content type, `user-id` = hub name, `iothub-enqueuedtime`, and one
/// data section holding the JSON array (PROTOCOL.md §4.5).
pub fn feedback_message(hub_name: &str, enqueued: SystemTime, body: Vec<u8>) -> AmqpMessage {
    let mut annotations = fe2o3_amqp_types::messaging::Annotations::new();
    annotations.insert(
        fe2o3_amqp_types::messaging::annotations::OwnedKey::Symbol(Symbol::from(
            "iothub-enqueuedtime",
        )),
        Value::Timestamp(Timestamp::from_milliseconds(to_unix_millis(enqueued))),
    );
    Message {
        header: None,
        delivery_annotations: None,
        message_annotations: Some(MessageAnnotations(annotations)),
        properties: Some(Properties {
            message_id: Some(AmqpId::String(uuid::Uuid::new_v4().to_string())),
            user_id: Some(Binary::from(hub_name.as_bytes().to_vec())),
            content_type: Some(Symbol::from(c2d::service::feedback::FEEDBACK_CONTENT_TYPE)),
            content_encoding: Some(Symbol::from("utf-8")),
            ..Default::default()
        }),
        application_properties: None,
        body: Body::Data(TransparentVec::new(vec![Data(Binary::from(body))])),
        footer: None,
    }
}

fn timestamp(t: SystemTime) -> Timestamp {
    Timestamp::from_milliseconds(to_unix_millis(t))
}

/// A C2D message as delivered to a device (PROTOCOL.md §3.5): the sender's properties (its
/// message-id type kept), `iothub-ack` and the application properties, IoT Hub's
/// annotations, and the body as one data section.
pub fn device_message(d: &crate::queue::Delivery) -> AmqpMessage {
    use fe2o3_amqp_types::messaging::annotations::OwnedKey;
    let m = &d.message;
    let mut annotations = fe2o3_amqp_types::messaging::Annotations::new();
    let mut annotate = |k: &str, v: Value| {
        annotations.insert(OwnedKey::Symbol(Symbol::from(k)), v);
    };
    annotate(
        "iothub-enqueuedtime",
        Value::Timestamp(timestamp(d.enqueued)),
    );
    annotate("iothub-deliverycount", Value::Uint(d.delivery_count));
    annotate("x-opt-sequence-number", Value::Ulong(d.seq));
    annotate("x-opt-lock-token", Value::String(d.lock_token.to_string()));
    let mut props = OrderedMap::new();
    if let Some(ack) = m.ack {
        props.insert(
            "iothub-ack".to_string(),
            SimpleValue::String(ack.as_str().to_string()),
        );
    }
    for (k, v) in &m.properties {
        props.insert(k.clone(), SimpleValue::String(v.clone()));
    }
    Message {
        header: Some(fe2o3_amqp_types::messaging::Header {
            delivery_count: d.delivery_count,
            ..Default::default()
        }),
        delivery_annotations: None,
        message_annotations: Some(MessageAnnotations(annotations)),
        properties: Some(Properties {
            message_id: m.message_id.as_ref().map(id_to_amqp),
            user_id: m.user_id.clone().map(Binary::from),
            to: m.to.clone(),
            correlation_id: m.correlation_id.as_ref().map(id_to_amqp),
            content_type: m.content_type.clone().map(Symbol::from),
            content_encoding: m.content_encoding.clone().map(Symbol::from),
            absolute_expiry_time: m.expiry_time.map(timestamp),
            creation_time: m.creation_time.map(timestamp),
            ..Default::default()
        }),
        application_properties: Some(ApplicationProperties(props)),
        body: Body::Data(TransparentVec::new(vec![Data(Binary::from(
            m.body.clone(),
        ))])),
        footer: None,
    }
}

/// A CBS reply: `correlation-id` = the request's `message-id` (same AMQP type), `status-code`
/// an int, `status-description` a string.
pub fn cbs_reply(request_id: Option<AmqpId>, status: i32, description: &str) -> AmqpMessage {
    let mut props = OrderedMap::new();
    props.insert("status-code".to_string(), SimpleValue::Int(status));
    props.insert(
        "status-description".to_string(),
        SimpleValue::String(description.to_string()),
    );
    Message {
        header: None,
        delivery_annotations: None,
        message_annotations: None,
        properties: Some(Properties {
            correlation_id: request_id,
            ..Default::default()
        }),
        application_properties: Some(ApplicationProperties(props)),
        body: Body::Value(AmqpValue(Value::Null)),
        footer: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_match_in_every_form() {
        assert_eq!(
            address_path("/messages/devicebound"),
            "/messages/devicebound"
        );
        assert_eq!(
            address_path("amqps://localhost/messages/devicebound"),
            "/messages/devicebound"
        );
        assert_eq!(
            address_path("amqps://h.x:5671/messages/serviceBound/feedback/"),
            "/messages/serviceBound/feedback"
        );
        assert_eq!(
            address_path("messages/devicebound"),
            "/messages/devicebound"
        );
        assert_eq!(
            device_of_to("/devices/a%20b/messages/deviceBound"),
            Some("a b".into())
        );
        assert_eq!(
            device_of_to("/devices/d1/messages/devicebound"),
            Some("d1".into())
        );
        assert_eq!(
            device_of_to("/devices/d1/modules/m/messages/devicebound"),
            None
        );
        assert_eq!(device_of_to("/devices//messages/devicebound"), None);
    }

    #[test]
    fn c2d_message_round_trips_through_amqp() {
        let mut props = OrderedMap::new();
        props.insert("iothub-ack".to_string(), SimpleValue::String("Full".into()));
        props.insert("n".to_string(), SimpleValue::Int(5));
        let u = uuid::Uuid::new_v4();
        let m: AmqpMessage = Message {
            header: None,
            delivery_annotations: None,
            message_annotations: None,
            properties: Some(Properties {
                message_id: Some(AmqpId::Uuid((*u.as_bytes()).into())),
                to: Some("/devices/d/messages/devicebound".into()),
                ..Default::default()
            }),
            application_properties: Some(ApplicationProperties(props)),
            body: Body::Data(TransparentVec::new(vec![Data(Binary::from(
                b"hi".to_vec(),
            ))])),
            footer: None,
        };
        let back = to_c2d(&decode(&encode(&m)).unwrap()).unwrap();
        assert_eq!(back.body, b"hi");
        assert_eq!(back.ack, Some(Ack::Full));
        assert_eq!(back.message_id, Some(MessageId::Uuid(u)));
        assert_eq!(back.get_property("n"), Some("5"));
    }
}
