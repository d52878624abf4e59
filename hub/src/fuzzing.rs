//! Entry points for the fuzz targets in `fuzz/` and their regression test (cargo feature
//! `fuzzing`; not part of the hub's API).
//!
//! Every input goes through the same code a network peer's bytes go through: [`FuzzHub`] is a
//! real [`LocalHub`] on a temporary directory, and each input is one connection to it over an
//! in-memory stream, as if it had arrived after TLS. Some targets put a valid handshake
//! (CONNECT, SASL PLAIN and Open/Begin, a CBS or C2D link, an `Authorization` header) in front
//! of the input so that the fuzzer spends its time past authentication. The parsers of the
//! clients' side (SAS tokens, connection strings, the MQTT property bag, AMQP messages,
//! feedback batches) are targets too.
//!
//! A session must end once its input has: one that is still open 10 s after its peer's last
//! byte is reported as a finding (a panic), as is a panic anywhere in the hub.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use fe2o3_amqp::frames::sasl;
use fe2o3_amqp_types::definitions::{Handle, ReceiverSettleMode, Role, SenderSettleMode};
use fe2o3_amqp_types::messaging::{Source, Target};
use fe2o3_amqp_types::performatives::{
    Attach, Begin, ChannelMax, Flow, MaxFrameSize, Open, Transfer,
};
use fe2o3_amqp_types::primitives::Binary;
use fe2o3_amqp_types::sasl::SaslInit;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use crate::amqp::frames::{amqp_frame, sasl_frame, AMQP_HEADER, SASL_HEADER};
use crate::context::HubContext;
use crate::{HubConfig, LocalHub};

/// The fuzz targets, by name (the names of the files in `fuzz/fuzz_targets/`).
pub const TARGETS: &[&str] = &[
    "mqtt_connect",
    "mqtt_session",
    "amqp_connection",
    "amqp_session",
    "amqp_cbs",
    "amqp_c2d_message",
    "https_request",
    "rest_request",
    "sas_token",
    "connection_string",
    "property_bag",
    "amqp_message",
    "feedback_batch",
    "mqtt_publish",
    "amqp_received",
    "https_receive",
    "cbs_reply",
];

/// The device every authenticated input acts as.
const DEVICE: &str = "fuzz-device";
/// How long a session may stay open after its input has ended.
const SESSION_END: Duration = Duration::from_secs(10);

/// A local hub that takes fuzz inputs as connections.
pub struct FuzzHub {
    runtime: tokio::runtime::Runtime,
    hub: Option<LocalHub>,
    host: String,
    device_token: String,
    owner_token: String,
}

impl Drop for FuzzHub {
    fn drop(&mut self) {
        if let Some(hub) = self.hub.take() {
            self.runtime.block_on(hub.stop());
        }
    }
}

fn token_of(connection_string: &str) -> String {
    let cs = c2d::connection_string::ConnectionString::parse(connection_string)
        .expect("the hub's own connection strings parse");
    let c2d::connection_string::Credential::SharedAccessKey { key_name, key } = cs.credential
    else {
        panic!("the hub's connection strings carry keys")
    };
    let resource = match &cs.device_id {
        Some(d) => format!("{}/devices/{d}", cs.host_name),
        None => cs.host_name.clone(),
    };
    let expiry = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
        + 365 * 24 * 3600;
    c2d::sas::generate_token(&resource, &key, key_name.as_deref(), expiry)
        .expect("the hub's keys are base64")
}

impl FuzzHub {
    /// Starts a hub (data in a temporary directory, removed at once; free loopback ports) with
    /// one device.
    pub fn new() -> FuzzHub {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut config = HubConfig::ephemeral(dir.path());
        config.durability = crate::Durability::Os;
        let hub = runtime
            .block_on(LocalHub::start(config))
            .expect("the hub starts");
        runtime
            .block_on(hub.create_device(DEVICE))
            .expect("the device is created");
        let device_token = token_of(
            &hub.device_connection_string(DEVICE)
                .expect("the device exists"),
        );
        let owner_token = token_of(&hub.owner_connection_string());
        // the hub keeps its files open; removing them now leaves nothing behind however the
        // fuzzer's process ends
        let _ = dir.close();
        FuzzHub {
            host: hub.host_name().to_string(),
            runtime,
            hub: Some(hub),
            device_token,
            owner_token,
        }
    }

    /// Messages queued for the fuzz device (what inputs that send have left there).
    pub fn queued(&self) -> usize {
        self.hub.as_ref().expect("running").queue_depth(DEVICE)
    }

    fn context(&self) -> Arc<HubContext> {
        self.hub.as_ref().expect("running").ctx.clone()
    }

    /// Runs one input through target `target` (one of [`TARGETS`]). Panics on a finding.
    pub fn run(&self, target: &str, data: &[u8]) {
        match target {
            "mqtt_connect" => self.mqtt(&[], data),
            "mqtt_session" => self.mqtt(&self.mqtt_connect(), data),
            "amqp_connection" => self.amqp(&[], data),
            "amqp_session" => self.amqp(&self.amqp_open(true), data),
            "amqp_cbs" => {
                let mut prefix = self.amqp_open(false);
                attach(&mut prefix, 0, "$cbs", Role::Sender);
                attach(&mut prefix, 1, "$cbs", Role::Receiver);
                transfer(&mut prefix, 0, data);
                self.amqp(&prefix, &[])
            }
            "amqp_c2d_message" => {
                let mut prefix = self.amqp_open(true);
                attach(&mut prefix, 0, "/messages/devicebound", Role::Sender);
                transfer(&mut prefix, 0, data);
                self.amqp(&prefix, &[])
            }
            "https_request" => self.https(&[], data),
            "rest_request" => self.https(&self.rest_prefix(data), &[]),
            _ => parse_only(target, data),
        }
    }

    fn session<F, Fut>(&self, serve: F, prefix: &[u8], data: &[u8])
    where
        F: FnOnce(Arc<HubContext>, DuplexStream) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let ctx = self.context();
        self.runtime.block_on(async {
            let (client, server) = tokio::io::duplex(1 << 16);
            let served = tokio::spawn(serve(ctx, server));
            let (mut rx, mut tx) = tokio::io::split(client);
            let drain = tokio::spawn(async move {
                let mut sink = [0u8; 4096];
                while matches!(rx.read(&mut sink).await, Ok(n) if n > 0) {}
            });
            // the hub may close first; what it did not read is then not its input
            let _ = tx.write_all(prefix).await;
            let _ = tx.write_all(data).await;
            let _ = tx.shutdown().await;
            match tokio::time::timeout(SESSION_END, served).await {
                Err(_) => panic!("the session was still open 10 s after its input ended"),
                Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Ok(_) => {}
            }
            drop(tx);
            drain.abort();
        });
    }

    fn mqtt(&self, prefix: &[u8], data: &[u8]) {
        self.session(
            |ctx, s| {
                crate::mqtt::serve(
                    ctx,
                    s,
                    crate::sessions::Peer::tls(([127, 0, 0, 1], 0).into()),
                    None,
                )
            },
            prefix,
            data,
        )
    }

    fn amqp(&self, prefix: &[u8], data: &[u8]) {
        self.session(
            |ctx, s| {
                crate::amqp::serve(
                    ctx,
                    s,
                    crate::sessions::Peer::tls(([127, 0, 0, 1], 0).into()),
                    None,
                )
            },
            prefix,
            data,
        )
    }

    fn https(&self, prefix: &[u8], data: &[u8]) {
        self.session(
            |ctx, s| {
                crate::http::serve(
                    ctx,
                    s,
                    crate::sessions::Peer::tls(([127, 0, 0, 1], 0).into()),
                    None,
                )
            },
            prefix,
            data,
        )
    }

    /// A CONNECT that authenticates [`DEVICE`] the way the SDKs do.
    fn mqtt_connect(&self) -> Vec<u8> {
        use rumqttc::mqttbytes::v4::{Connect, Login};
        let mut connect = Connect::new(DEVICE);
        connect.login = Some(Login::new(
            format!("{}/{DEVICE}/?api-version=2021-04-12", self.host),
            self.device_token.clone(),
        ));
        let mut out = BytesMut::new();
        connect.write(&mut out).expect("CONNECT encodes");
        out.to_vec()
    }

    /// SASL (PLAIN as the owner policy, or ANONYMOUS for CBS), the AMQP header, Open and
    /// Begin on channel 0.
    fn amqp_open(&self, plain: bool) -> Vec<u8> {
        let mut out = SASL_HEADER.to_vec();
        let init = if plain {
            let mut response = b"\0iothubowner@sas.root.".to_vec();
            response.extend_from_slice(c2d::connection_string::hub_name_of(&self.host).as_bytes());
            response.push(0);
            response.extend_from_slice(self.owner_token.as_bytes());
            SaslInit {
                mechanism: "PLAIN".into(),
                initial_response: Some(Binary::from(response)),
                hostname: None,
            }
        } else {
            SaslInit {
                mechanism: "ANONYMOUS".into(),
                initial_response: None,
                hostname: None,
            }
        };
        out.extend_from_slice(&sasl_frame(&sasl::Frame::Init(init)));
        out.extend_from_slice(&AMQP_HEADER);
        let open = Open {
            container_id: "fuzz".into(),
            hostname: Some(self.host.clone()),
            max_frame_size: MaxFrameSize(65536),
            channel_max: ChannelMax(10),
            idle_time_out: None,
            outgoing_locales: None,
            incoming_locales: None,
            offered_capabilities: None,
            desired_capabilities: None,
            properties: None,
        };
        amqp_frame(0, &open, &[], &mut out);
        let begin = Begin {
            remote_channel: None,
            next_outgoing_id: 0,
            incoming_window: 1000,
            outgoing_window: 1000,
            handle_max: Handle(100),
            offered_capabilities: None,
            desired_capabilities: None,
            properties: None,
        };
        amqp_frame(0, &begin, &[], &mut out);
        out
    }

    /// An HTTP/1.1 request built from the input: its first line is `METHOD PATH`, its first
    /// byte picks the credential (even: the owner policy, odd: the device), the rest is the
    /// body.
    fn rest_prefix(&self, data: &[u8]) -> Vec<u8> {
        let Some((&pick, data)) = data.split_first() else {
            return Vec::new();
        };
        let (line, body) = match data.iter().position(|b| *b == b'\n') {
            Some(i) => (&data[..i], &data[i + 1..]),
            None => (data, &[][..]),
        };
        let token = if pick % 2 == 0 {
            &self.owner_token
        } else {
            &self.device_token
        };
        let mut out = line.to_vec();
        out.extend_from_slice(
            format!(
                " HTTP/1.1\r\nHost: {}\r\nAuthorization: {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                self.host,
                body.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(body);
        out
    }
}

impl Default for FuzzHub {
    fn default() -> Self {
        FuzzHub::new()
    }
}

/// Appends an Attach of handle `handle` on channel 0 (with link credit for a receiver).
fn attach(out: &mut Vec<u8>, handle: u32, address: &str, role: Role) {
    let (source, target) = match role {
        Role::Sender => (
            Source::builder().address("fuzz").build(),
            Target::builder().address(address).build(),
        ),
        Role::Receiver => (
            Source::builder().address(address).build(),
            Target::builder().address("fuzz").build(),
        ),
    };
    let receiver = matches!(role, Role::Receiver);
    let a = Attach {
        name: format!("fuzz-{handle}"),
        handle: Handle(handle),
        role,
        snd_settle_mode: SenderSettleMode::Unsettled,
        rcv_settle_mode: ReceiverSettleMode::First,
        source: Some(Box::new(source)),
        target: Some(Box::new(target.into())),
        unsettled: None,
        incomplete_unsettled: false,
        initial_delivery_count: Some(0),
        max_message_size: None,
        offered_capabilities: None,
        desired_capabilities: None,
        properties: None,
    };
    amqp_frame(0, &a, &[], out);
    if receiver {
        let flow = Flow {
            next_incoming_id: Some(0),
            incoming_window: 1000,
            next_outgoing_id: 0,
            outgoing_window: 1000,
            handle: Some(Handle(handle)),
            delivery_count: Some(0),
            link_credit: Some(10),
            available: None,
            drain: false,
            echo: false,
            properties: None,
        };
        amqp_frame(0, &flow, &[], out);
    }
}

/// Appends a single-frame transfer of `payload` (an encoded AMQP message) on `handle`.
fn transfer(out: &mut Vec<u8>, handle: u32, payload: &[u8]) {
    let t = Transfer {
        handle: Handle(handle),
        delivery_id: Some(0),
        delivery_tag: Some(Binary::from(vec![0u8])),
        message_format: Some(0),
        settled: Some(false),
        more: false,
        rcv_settle_mode: None,
        state: None,
        resume: false,
        aborted: false,
        batchable: false,
    };
    // frames larger than the negotiated 64 KiB are refused before the message is read
    let room = 65536 - 8 - crate::amqp::frames::encoded_len(&t);
    amqp_frame(0, &t, &payload[..payload.len().min(room)], out);
}

/// The parser targets: each must return, never panic, on any input.
fn parse_only(target: &str, data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match target {
        "sas_token" => {
            if let Ok(t) = c2d::sas::SasToken::parse(&text) {
                let _ = t.resource();
                let _ = t.signed_with("AAAA");
                let _ = t.is_expired_at(0);
            }
            let _ = c2d::sas::url_decode(&text);
        }
        "connection_string" => {
            if let Ok(cs) = c2d::connection_string::ConnectionString::parse(&text) {
                let _ = (cs.kind(), cs.connect_host(), cs.hub_name());
            }
        }
        "property_bag" => {
            if let Ok(m) = c2d::property_bag::to_message(data.to_vec(), &text) {
                // what a device decoded must encode again, and decode to the same message
                let again = c2d::property_bag::encode(&m, "/devices/d/messages/devicebound");
                let back = c2d::property_bag::to_message(data.to_vec(), &again)
                    .expect("an encoded property bag decodes");
                assert_eq!(
                    back.properties, m.properties,
                    "properties changed in a round trip through the property bag"
                );
            }
        }
        "amqp_message" => {
            if let Ok(m) = c2d::amqp::decode(data) {
                let _ = c2d::amqp::to_c2d(&m);
            }
        }
        "feedback_batch" => {
            let _ = c2d::service::feedback::decode_batch(data);
        }
        // the clients' side: what a device or service makes of what a hub sends
        "mqtt_publish" => {
            // packets as a device's MQTT connection reads them; each PUBLISH to a message
            let mut buf = BytesMut::from(data);
            while let Ok(packet) = rumqttc::mqttbytes::v4::Packet::read(&mut buf, 256 * 1024) {
                if let rumqttc::mqttbytes::v4::Packet::Publish(p) = packet {
                    let m = c2d::decoders::mqtt_publish(&p.topic, p.payload.to_vec());
                    assert_eq!(m.body, p.payload.to_vec(), "the body changed");
                }
            }
        }
        "amqp_received" => {
            if let Ok(m) = c2d::amqp::decode(data) {
                let _ = c2d::decoders::amqp_received(&m);
            }
        }
        "https_receive" => {
            // header lines (`name: value`), an empty line, the body: what the device's HTTP
            // client hands over of a 200 answer to a receive
            let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
                Some(i) => (&data[..i], &data[i + 2..]),
                None => (data, &[][..]),
            };
            let mut headers = http::HeaderMap::new();
            for line in head.split(|b| *b == b'\n') {
                let Some(colon) = line.iter().position(|b| *b == b':') else {
                    continue;
                };
                let value = line[colon + 1..].trim_ascii();
                if let (Ok(name), Ok(value)) = (
                    http::HeaderName::from_bytes(&line[..colon]),
                    http::HeaderValue::from_bytes(value),
                ) {
                    headers.append(name, value);
                }
            }
            let _ = c2d::decoders::https_receive(&headers, body.to_vec());
        }
        "cbs_reply" => {
            if let Ok(m) = c2d::amqp::decode(data) {
                let _ = c2d::decoders::cbs_reply(&m);
            }
        }
        other => panic!("no fuzz target named '{other}'"),
    }
}

/// Inputs that reach deep into each target, to start a corpus from: `(target, name, bytes)`.
pub fn seeds() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    use c2d::{Ack, Message};
    use rumqttc::mqttbytes::v4::{Connect, PubAck, Publish, Subscribe};
    use rumqttc::mqttbytes::QoS;

    let mut mqtt = BytesMut::new();
    Subscribe::new(
        format!("devices/{DEVICE}/messages/devicebound/#"),
        QoS::AtLeastOnce,
    )
    .write(&mut mqtt)
    .expect("SUBSCRIBE encodes");
    PubAck::new(1).write(&mut mqtt).expect("PUBACK encodes");
    mqtt.extend_from_slice(&[0xc0, 0x00, 0xe0, 0x00]); // PINGREQ, DISCONNECT
    let mut connect = BytesMut::new();
    let mut c = Connect::new(DEVICE);
    c.login = Some(rumqttc::mqttbytes::v4::Login::new(
        format!("localhost/{DEVICE}/?api-version=2021-04-12"),
        "SharedAccessSignature sr=localhost%2Fdevices%2Ffuzz-device&sig=AAAA&se=1",
    ));
    c.write(&mut connect).expect("CONNECT encodes");

    let mut message = Message::new(&b"{\"on\":true}"[..])
        .message_id("m-1")
        .ack(Ack::Full)
        .property("k", "v");
    message.to = Some(format!("/devices/{DEVICE}/messages/devicebound"));
    let c2d_message = c2d::amqp::encode(&c2d::amqp::from_c2d(&message));
    let put_token = c2d::amqp::AmqpMessage {
        header: None,
        delivery_annotations: None,
        message_annotations: None,
        properties: Some(
            fe2o3_amqp_types::messaging::Properties::builder()
                .message_id(7u64)
                .build(),
        ),
        application_properties: Some(
            fe2o3_amqp_types::messaging::ApplicationProperties::builder()
                .insert("operation", "put-token")
                .insert("type", "servicebus.windows.net:sastoken")
                .insert("name", "localhost/devices/fuzz-device")
                .build(),
        ),
        body: fe2o3_amqp_types::messaging::Body::Value(fe2o3_amqp_types::messaging::AmqpValue(
            fe2o3_amqp_types::primitives::Value::String(
                "SharedAccessSignature sr=localhost%2Fdevices%2Ffuzz-device&sig=AAAA&se=1".into(),
            ),
        )),
        footer: None,
    };
    let put_token = c2d::amqp::encode(&put_token);

    let mut session = Vec::new();
    attach(&mut session, 0, "/messages/devicebound", Role::Sender);
    transfer(&mut session, 0, &c2d_message);
    attach(
        &mut session,
        1,
        "/messages/serviceBound/feedback",
        Role::Receiver,
    );

    let record = c2d::FeedbackRecord::new(
        "m-1",
        DEVICE,
        "638000000000000000",
        UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        c2d::FeedbackStatus::Success,
    );
    vec![
        ("mqtt_connect", "connect", connect.to_vec()),
        ("mqtt_session", "subscribe-puback-ping", mqtt.to_vec()),
        ("amqp_connection", "sasl-anonymous", {
            let mut v = SASL_HEADER.to_vec();
            v.extend_from_slice(&sasl_frame(&sasl::Frame::Init(SaslInit {
                mechanism: "ANONYMOUS".into(),
                initial_response: None,
                hostname: None,
            })));
            v.extend_from_slice(&AMQP_HEADER);
            v
        }),
        ("amqp_session", "send-and-feedback", session),
        ("amqp_cbs", "put-token", put_token),
        ("amqp_c2d_message", "message", c2d_message.clone()),
        (
            "https_request",
            "list-devices",
            b"GET /devices?api-version=2021-04-12 HTTP/1.1\r\nHost: localhost\r\nAuthorization: SharedAccessSignature sr=localhost&sig=AAAA&se=1&skn=iothubowner\r\n\r\n".to_vec(),
        ),
        (
            "rest_request",
            "create-device",
            b"\0PUT /devices/new-1?api-version=2021-04-12\n{\"deviceId\":\"new-1\"}".to_vec(),
        ),
        (
            "rest_request",
            "device-receive",
            format!("\x01GET /devices/{DEVICE}/messages/deviceBound?api-version=2021-04-12\n")
                .into_bytes(),
        ),
        (
            "rest_request",
            "purge",
            format!("\0DELETE /devices/{DEVICE}/commands?api-version=2021-04-12\n").into_bytes(),
        ),
        (
            "sas_token",
            "device",
            b"SharedAccessSignature sr=h.example%2Fdevices%2Fd&sig=bm90IGEgc2ln&se=1700000000&skn=p".to_vec(),
        ),
        (
            "connection_string",
            "device",
            b"HostName=h.azure-devices.net;DeviceId=d;SharedAccessKey=AAAA;GatewayHostName=gw".to_vec(),
        ),
        (
            "property_bag",
            "system-and-user",
            b"%24.mid=m-1&%24.to=%2Fdevices%2Fd%2Fmessages%2FdeviceBound&iothub-ack=full&k=v&flag".to_vec(),
        ),
        ("amqp_message", "c2d", c2d_message.clone()),
        ("mqtt_publish", "c2d-publish", {
            let mut p = Publish::new(
                format!(
                    "devices/{DEVICE}/messages/devicebound/{}",
                    c2d::property_bag::encode(&message, &c2d::message::device_bound_address(DEVICE))
                ),
                QoS::AtLeastOnce,
                message.body.clone(),
            );
            p.pkid = 1;
            let mut b = BytesMut::new();
            p.write(&mut b).expect("PUBLISH encodes");
            b.to_vec()
        }),
        ("amqp_received", "delivered", {
            let delivery = crate::state::Delivery {
                seq: 42,
                lock_token: uuid::Uuid::nil(),
                lock_expires: std::time::UNIX_EPOCH,
                message: message.clone(),
                delivery_count: 1,
                enqueued: std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
                expires: std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            };
            c2d::amqp::encode(&crate::amqp::convert::device_message(&delivery))
        }),
        (
            "https_receive",
            "delivered",
            b"etag: \"0b5cb1a0-1b2c-4d5e-8f90-a1b2c3d4e5f6\"\niothub-messageid: m-1\niothub-ack: full\niothub-deliverycount: 1\niothub-sequencenumber: 42\niothub-enqueuedtime: Tue, 14 Nov 2023 22:13:20 GMT\niothub-expiry: Wed, 15 Nov 2023 22:13:20 GMT\niothub-app-k: v\ncontent-type: application/json\n\n{\"on\":true}".to_vec(),
        ),
        ("cbs_reply", "ok", c2d::amqp::encode(&crate::amqp::convert::cbs_reply(None, 200, "OK"))),
        ("cbs_reply", "refused", c2d::amqp::encode(&crate::amqp::convert::cbs_reply(None, 401, "Unauthorized"))),
        ("feedback_batch", "one", c2d::service::feedback::encode_batch(&[record])),
    ]
}
