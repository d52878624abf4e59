//! The hub's own AMQP messages: feedback batches, C2D deliveries to devices, CBS replies.
//! The conversions shared with the clients live in `c2d::amqp`.

use std::time::SystemTime;

pub use c2d::amqp::{address_path, decode, device_of_to, encode, to_c2d, AmqpMessage};
use c2d::amqp::{from_c2d, timestamp};
use fe2o3_amqp_types::messaging::{
    message::Body, AmqpValue, ApplicationProperties, Data, Message, MessageAnnotations,
    MessageId as AmqpId, Properties,
};
use fe2o3_amqp_types::primitives::{Binary, OrderedMap, SimpleValue, Symbol, Value};
use serde_amqp::extensions::TransparentVec;

/// A feedback message: content type, `user-id` = hub name, `iothub-enqueuedtime`, and one
/// data section holding the JSON array.
pub fn feedback_message(hub_name: &str, enqueued: SystemTime, body: Vec<u8>) -> AmqpMessage {
    let mut annotations = fe2o3_amqp_types::messaging::Annotations::new();
    annotations.insert(
        fe2o3_amqp_types::messaging::annotations::OwnedKey::Symbol(Symbol::from(
            "iothub-enqueuedtime",
        )),
        Value::Timestamp(timestamp(enqueued)),
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

/// A C2D message as delivered to a device: the sender's properties (its
/// message-id type kept), `iothub-ack` and the application properties, IoT Hub's
/// annotations, and the body as one data section.
pub fn device_message(d: &crate::state::Delivery) -> AmqpMessage {
    use fe2o3_amqp_types::messaging::annotations::OwnedKey;
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
    let mut m = from_c2d(&d.message);
    m.header = Some(fe2o3_amqp_types::messaging::Header {
        delivery_count: d.delivery_count,
        ..Default::default()
    });
    m.message_annotations = Some(MessageAnnotations(annotations));
    m
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
