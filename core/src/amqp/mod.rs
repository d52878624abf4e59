//! AMQP messages as IoT Hub uses them, to and from c2d's message model: shared by the
//! clients and the local hub.

pub mod session;

use std::time::SystemTime;

use fe2o3_amqp_types::messaging::{
    message::Body, AmqpValue, ApplicationProperties, Data, Message as AmqpMessageOf,
    MessageId as AmqpId, Properties,
};
use fe2o3_amqp_types::primitives::{Binary, OrderedMap, SimpleValue, Symbol, Timestamp, Value};
use serde_amqp::extensions::TransparentVec;

use crate::timestamp::{from_unix_millis, to_unix_millis};
use crate::{Ack, Message, MessageId};

/// An AMQP message with any body.
pub type AmqpMessage = AmqpMessageOf<Body<Value>>;

/// How deep AMQP values may nest (described types, lists, maps, arrays) in what a peer sends.
const MAX_NESTING: usize = 32;

/// Checks the AMQP encoding of one value at the start of `bytes` before it is decoded, and
/// returns its length.
///
/// serde_amqp allocates a binary, string, symbol or compound value's declared size before it
/// reads the bytes, so a 20-byte frame declaring a 4 GiB string makes it allocate 4 GiB; and it
/// decodes nested values by recursion. Everything decoded from a peer goes through this check
/// first: every declared size must fit in the bytes present, every count in its size, the
/// elements of a list, map or array must fill its size exactly, an empty array has no
/// element constructor (as serde_amqp reads it), and values nest at most 32 deep.
pub fn check_encoding(bytes: &[u8]) -> Result<usize, String> {
    value_len(bytes, 0)
}

fn bad(why: &str) -> String {
    format!("malformed AMQP encoding: {why}")
}

/// The length of the value at the start of `b` (constructor included).
fn value_len(b: &[u8], depth: usize) -> Result<usize, String> {
    if depth > MAX_NESTING {
        return Err(bad("values nest more than 32 deep"));
    }
    let (&code, rest) = b.split_first().ok_or_else(|| bad("a value is cut short"))?;
    if code == 0x00 {
        // described: descriptor, then the value
        let d = value_len(rest, depth + 1)?;
        let v = value_len(&rest[d..], depth + 1)?;
        return Ok(1 + d + v);
    }
    Ok(1 + body_len(code, rest, depth)?)
}

/// A 1- or 4-byte big-endian number (the whole of `b`).
fn be(b: &[u8]) -> usize {
    b.iter().fold(0, |n, x| (n << 8) | *x as usize)
}

/// A list's, map's or array's total length after its constructor, its element count and the
/// bytes after the count; `w` is the width of its size and count (1 or 4).
fn compound(b: &[u8], w: usize) -> Result<(usize, usize, &[u8]), String> {
    let past_end = || bad("a declared size runs past the end of the frame");
    let total = w + be(b.get(..w).ok_or_else(past_end)?);
    let inner = b.get(w..total).ok_or_else(past_end)?;
    let count = be(inner
        .get(..w)
        .ok_or_else(|| bad("a compound value is shorter than its count"))?);
    let elements = &inner[w..];
    if count > elements.len() {
        return Err(bad(
            "a compound value counts more elements than it has bytes",
        ));
    }
    Ok((total, count, elements))
}

/// Whether a compound value's elements (`at` bytes of them) fill its declared size exactly:
/// serde_amqp reads on from the last element, not from the declared end, so bytes left over
/// inside a size would be decoded next without having been checked.
fn filled(at: usize, elements: &[u8]) -> Result<(), String> {
    if at == elements.len() {
        Ok(())
    } else {
        Err(bad(
            "a compound value's elements do not fill its declared size",
        ))
    }
}

/// The length of the bytes after constructor `code`, at the start of `b`.
fn body_len(code: u8, b: &[u8], depth: usize) -> Result<usize, String> {
    let need = |n: usize| {
        if n <= b.len() {
            Ok(n)
        } else {
            Err(bad("a declared size runs past the end of the frame"))
        }
    };
    let size = |width: usize| -> Result<usize, String> { Ok(be(&b[..need(width)?])) };
    match code {
        0x40..=0x45 => Ok(0),
        0x50..=0x56 => need(1),
        0x60 | 0x61 => need(2),
        0x70..=0x74 => need(4),
        0x80..=0x85 => need(8),
        0x94 | 0x98 => need(16),
        // binary, string, symbol
        0xa0 | 0xa1 | 0xa3 => need(1 + size(1)?),
        0xb0 | 0xb1 | 0xb3 => need(4 + size(4)?),
        // list, map: size, count, then the elements
        0xc0 | 0xc1 | 0xd0 | 0xd1 => {
            let (total, count, elements) = compound(b, if code < 0xd0 { 1 } else { 4 })?;
            let mut at = 0;
            for _ in 0..count {
                at += value_len(&elements[at..], depth + 1)?;
            }
            filled(at, elements)?;
            Ok(total)
        }
        // array: size, count, one constructor, then the elements' bodies
        0xe0 | 0xf0 => {
            let (total, count, elements) = compound(b, if code == 0xe0 { 1 } else { 4 })?;
            if count == 0 {
                // serde_amqp writes an empty array as its size and count alone, and reading
                // one it does not take the element constructor the spec puts after the count:
                // it would read that constructor as the next value, unchecked
                return if elements.is_empty() {
                    Ok(total)
                } else {
                    Err(bad("an empty array with an element constructor"))
                };
            }
            let constructor = |at: usize| {
                elements
                    .get(at)
                    .copied()
                    .ok_or_else(|| bad("an array has no constructor"))
            };
            let mut element = constructor(0)?;
            let mut at = 1;
            while element == 0x00 {
                // described elements: the descriptor once, then the underlying constructor
                at += value_len(&elements[at..], depth + 1)?;
                element = constructor(at)?;
                at += 1;
            }
            for _ in 0..count {
                at += body_len(element, &elements[at..], depth + 1)?;
            }
            filled(at, elements)?;
            Ok(total)
        }
        other => Err(bad(&format!("unknown constructor 0x{other:02x}"))),
    }
}

/// Decodes a message from a transfer's payload.
pub fn decode(payload: &[u8]) -> Result<AmqpMessage, String> {
    // a message is a run of sections, each one described value
    let mut at = 0;
    while at < payload.len() {
        at += check_encoding(&payload[at..])?;
    }
    let m: fe2o3_amqp_types::messaging::message::__private::Deserializable<AmqpMessage> =
        serde_amqp::from_slice(payload).map_err(|e| format!("undecodable message: {e}"))?;
    Ok(m.0)
}

/// Encodes a message as a transfer payload.
pub fn encode(m: &AmqpMessage) -> Vec<u8> {
    serde_amqp::to_vec(&fe2o3_amqp_types::messaging::message::__private::Serializable(m))
        .expect("messages always encode")
}

/// A message id of any AMQP type as c2d's.
pub fn id_from_amqp(id: &AmqpId) -> MessageId {
    match id {
        AmqpId::String(s) => MessageId::String(s.clone()),
        AmqpId::Uuid(u) => MessageId::Uuid(uuid::Uuid::from_bytes(*u.as_inner())),
        AmqpId::Ulong(n) => MessageId::Ulong(*n),
        AmqpId::Binary(b) => MessageId::Binary(b.to_vec()),
    }
}

/// c2d's message id as the AMQP type it stands for.
pub fn id_to_amqp(id: &MessageId) -> AmqpId {
    match id {
        MessageId::String(s) => AmqpId::String(s.clone()),
        MessageId::Uuid(u) => AmqpId::Uuid((*u.as_bytes()).into()),
        MessageId::Ulong(n) => AmqpId::Ulong(*n),
        MessageId::Binary(b) => AmqpId::Binary(Binary::from(b.clone())),
    }
}

/// An AMQP timestamp.
pub fn timestamp(t: SystemTime) -> Timestamp {
    Timestamp::from_milliseconds(to_unix_millis(t))
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
        SimpleValue::Timestamp(t) => {
            crate::timestamp::format_utc(from_unix_millis(t.milliseconds()))
        }
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
pub fn to_c2d(m: &AmqpMessage) -> Result<Message, String> {
    let mut out = Message::new(body_bytes(&m.body)?);
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
    let decoded = crate::sas::url_decode(path).unwrap_or_else(|_| path.to_string());
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
/// data section holding the JSON array.
/// c2d's message as AMQP: its properties (message-id type kept), `iothub-ack` and the
/// application properties as strings, and the body as one data section.
pub fn from_c2d(m: &Message) -> AmqpMessage {
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
    AmqpMessageOf {
        header: None,
        delivery_annotations: None,
        message_annotations: None,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_declaring_more_than_they_hold_are_refused_before_decoding() {
        // a message of every section kind c2d sends passes, and its length is all of it
        let mut m = Message::new(&b"body"[..])
            .message_id("m-1")
            .property("k", "v");
        m.to = Some("/devices/d/messages/devicebound".into());
        let bytes = encode(&from_c2d(&m));
        let mut at = 0;
        while at < bytes.len() {
            at += check_encoding(&bytes[at..]).unwrap();
        }
        assert_eq!(at, bytes.len());
        assert!(decode(&bytes).is_ok());
        // str32 declaring 4 GiB in 9 bytes; binary, list and array counts past their bytes
        for bad in [
            &[0xb1, 0xff, 0xff, 0xff, 0xff, b'a', b'b', b'c', b'd'][..],
            &[0xa0, 0x05, 1, 2],
            &[
                0xd0, 0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 0x40, 0x40, 0x40, 0x40,
            ],
            &[0xe0, 0x02, 0xff, 0x40],
            &[0xc0, 0x03, 0x02, 0x40],
            &[0x00, 0x53],
            &[0x99],
        ] {
            assert!(check_encoding(bad).is_err(), "{bad:x?} passed");
            assert!(decode(bad).is_err());
        }
        // nesting: 32 lists deep is fine, 40 is refused (no deep recursion in the decoder)
        let nested = |depth: usize| {
            let mut v = vec![0x45u8]; // list0
            for _ in 0..depth {
                let mut outer = vec![0xd0];
                outer.extend_from_slice(&((v.len() + 4) as u32).to_be_bytes());
                outer.extend_from_slice(&1u32.to_be_bytes());
                outer.extend_from_slice(&v);
                v = outer;
            }
            v
        };
        assert_eq!(check_encoding(&nested(32)).unwrap(), nested(32).len());
        assert!(check_encoding(&nested(40)).is_err());
        // serde_amqp reads on from a compound's last element, not from its declared end, and
        // takes no constructor for an empty array: bytes left inside a size, or an empty
        // array's constructor, would be read next unchecked (a 4 GiB symbol, found by
        // fuzzing a CBS reply); both are refused
        for unfilled in [
            &[0xc1, 0x04, 0x02, 0x40, 0x40, 0x40][..],
            &[0xc0, 0x05, 0x01, 0x40, 0xb3, 0xff, 0xff][..],
            &[0xe0, 0x02, 0x00, 0xb3][..],
        ] {
            assert!(check_encoding(unfilled).is_err(), "{unfilled:x?} passed");
        }
        assert_eq!(check_encoding(&[0xe0, 0x01, 0x00]), Ok(3));
        assert_eq!(check_encoding(&[0xc1, 0x03, 0x02, 0x40, 0x40]), Ok(5));
    }

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
    fn messages_round_trip_with_their_id_types() {
        let u = uuid::Uuid::new_v4();
        let mut m = Message::new("hi")
            .message_id(MessageId::Uuid(u))
            .ack(Ack::Full)
            .property("n", "5");
        m.to = Some("/devices/d/messages/devicebound".into());
        m.correlation_id = Some(MessageId::Ulong(7));
        let back = to_c2d(&decode(&encode(&from_c2d(&m))).unwrap()).unwrap();
        assert_eq!(back.body, b"hi");
        assert_eq!(back.ack, Some(Ack::Full));
        assert_eq!(back.message_id, Some(MessageId::Uuid(u)));
        assert_eq!(back.correlation_id, Some(MessageId::Ulong(7)));
        assert_eq!(back.get_property("n"), Some("5"));
    }

    #[test]
    fn non_string_properties_become_text_and_the_ack_any_case() {
        let mut m = from_c2d(&Message::new("x"));
        let props = &mut m.application_properties.as_mut().unwrap().0;
        props.insert("iothub-ack".into(), SimpleValue::String("Full".into()));
        props.insert("count".into(), SimpleValue::Int(3));
        let back = to_c2d(&m).unwrap();
        assert_eq!(back.ack, Some(Ack::Full));
        assert_eq!(back.get_property("count"), Some("3"));
    }
}
