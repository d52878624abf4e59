//! A hub per test (temp dir, ephemeral ports), and real clients for it: an AMQP service client
//! (fe2o3-amqp) and an MQTT device client (rumqttc).
#![allow(dead_code)]

pub mod raw_amqp;
pub mod v1_certificate;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use c2d::{Message, RegistryClient, RegistryOptions};
use c2d_hub::{HubConfig, LocalHub, ManualClock};
use fe2o3_amqp::connection::ConnectionHandle;
use fe2o3_amqp::link::delivery::DeliveryInfo;
use fe2o3_amqp::sasl_profile::SaslProfile;
use fe2o3_amqp::session::SessionHandle;
use fe2o3_amqp::types::messaging::{message::Body, Outcome, Properties};
use fe2o3_amqp::types::primitives::{OrderedMap, SimpleValue, Value};
use fe2o3_amqp::{Receiver, Sender};
use rumqttc::{
    AsyncClient, Event, EventLoop, MqttOptions, Packet, Publish, QoS, TlsConfiguration, Transport,
};
use tokio::sync::mpsc;

pub const WAIT: Duration = Duration::from_secs(10);

pub struct TestHub {
    pub hub: LocalHub,
    pub dir: tempfile::TempDir,
    pub clock: Option<Arc<ManualClock>>,
}

pub fn init() {
    c2d::tls::install_crypto_provider();
    let _ = tracing_subscriber_init();
}

fn tracing_subscriber_init() -> Option<()> {
    None
}

/// A hub on ephemeral ports with feedback sent at once; `manual` gives it a manual clock.
pub async fn hub_with(manual: bool, configure: impl FnOnce(&mut HubConfig)) -> TestHub {
    init();
    let dir = tempfile::tempdir().unwrap();
    let mut config = HubConfig::ephemeral(dir.path());
    config.limits.feedback_interval = Duration::ZERO;
    let clock = manual.then(|| Arc::new(ManualClock::new(SystemTime::now())));
    if let Some(c) = &clock {
        config.clock = c.clone();
    }
    configure(&mut config);
    let hub = LocalHub::start(config).await.unwrap();
    TestHub { hub, dir, clock }
}

pub async fn hub() -> TestHub {
    hub_with(false, |_| {}).await
}

impl TestHub {
    pub async fn restart(self, configure: impl FnOnce(&mut HubConfig)) -> TestHub {
        let TestHub { hub, dir, clock } = self;
        hub.stop().await;
        let mut config = HubConfig::ephemeral(dir.path());
        config.limits.feedback_interval = Duration::ZERO;
        if let Some(c) = &clock {
            config.clock = c.clone();
        }
        configure(&mut config);
        let hub = LocalHub::start(config).await.unwrap();
        TestHub { hub, dir, clock }
    }

    pub async fn device(&self, id: &str) -> String {
        self.hub.create_device(id).await.unwrap();
        self.hub.device_connection_string(id).unwrap()
    }

    pub fn registry(&self, policy: &str) -> RegistryClient {
        RegistryClient::new(
            &self.hub.policy_connection_string(policy).unwrap(),
            RegistryOptions {
                trusted_ca_pem: Some(self.hub.ca_pem().as_bytes().to_vec()),
                endpoint: Some(self.hub.https_endpoint()),
                timeout: None,
                proxy: None,
            },
        )
        .unwrap()
    }

    pub fn advance(&self, by: Duration) {
        self.clock.as_ref().expect("a manual clock").advance(by);
    }

    /// A SAS token for a policy, valid for an hour.
    pub fn policy_token(&self, policy: &str) -> String {
        let cs = c2d::ConnectionString::parse(&self.hub.policy_connection_string(policy).unwrap())
            .unwrap();
        let c2d::Credential::SharedAccessKey { key, .. } = cs.credential else {
            unreachable!()
        };
        c2d::sas::generate_token(&cs.host_name, &key, Some(policy), expiry()).unwrap()
    }
}

pub fn expiry() -> u64 {
    SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600
}

pub fn device_token(device_cs: &str) -> String {
    let cs = c2d::ConnectionString::parse(device_cs).unwrap();
    let c2d::Credential::SharedAccessKey { key, .. } = cs.credential else {
        unreachable!()
    };
    c2d::sas::generate_token(
        &format!("{}/devices/{}", cs.host_name, cs.device_id.unwrap()),
        &key,
        None,
        expiry(),
    )
    .unwrap()
}

pub async fn tls(
    hub: &LocalHub,
    port: u16,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let config = c2d::tls::client_config_trusting(hub.ca_pem().as_bytes()).unwrap();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    tokio_rustls::TlsConnector::from(config)
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap()
}

/// How the AMQP test client authenticates.
pub enum Auth {
    /// SASL PLAIN with `{policy}@sas.root.{hub}` (the C service SDK's way).
    Plain(String),
    /// No SASL, then a CBS put-token (the Node and C# SDKs' way).
    Cbs(String),
    /// No credentials at all.
    None,
}

/// A service connection over AMQP.
pub struct Service {
    pub conn: ConnectionHandle<()>,
    pub session: SessionHandle<()>,
}

impl Service {
    pub async fn connect(th: &TestHub) -> Service {
        Service::connect_as(th, Auth::Plain(th.policy_token("service")))
            .await
            .unwrap()
    }

    pub async fn connect_as(th: &TestHub, auth: Auth) -> Result<Service, String> {
        let stream = tls(&th.hub, th.hub.amqp_port()).await;
        let mut builder = fe2o3_amqp::Connection::builder()
            .container_id("c2d-test")
            .hostname("localhost");
        if let Auth::Plain(token) = &auth {
            builder = builder.sasl_profile(SaslProfile::Plain {
                username: format!("service@sas.root.{}", th.hub.host_name()),
                password: token.clone(),
            });
        }
        let mut conn = builder
            .open_with_stream(stream)
            .await
            .map_err(|e| format!("open: {e:?}"))?;
        let mut session = fe2o3_amqp::Session::begin(&mut conn)
            .await
            .map_err(|e| format!("begin: {e:?}"))?;
        if let Auth::Cbs(token) = auth {
            put_token(&mut session, &token).await?;
        }
        Ok(Service { conn, session })
    }

    pub async fn put_token(&mut self, token: &str) -> Result<(), String> {
        put_token(&mut self.session, token).await
    }

    pub async fn sender(&mut self) -> Result<Sender, String> {
        Sender::attach(&mut self.session, "c2d-send", "/messages/devicebound")
            .await
            .map_err(|e| format!("{e:?}"))
    }

    pub async fn feedback_receiver(&mut self) -> Result<Receiver, String> {
        Receiver::attach(
            &mut self.session,
            "c2d-feedback",
            "/messages/serviceBound/feedback",
        )
        .await
        .map_err(|e| format!("{e:?}"))
    }

    pub async fn close(mut self) {
        let _ = self.session.end().await;
        let _ = self.conn.close().await;
    }
}

/// A CBS put-token as uAMQP sends it (ulong message id, no reply-to); checks that the reply
/// keeps the id's AMQP type and carries an int status code. `Err` holds the status.
pub async fn put_token(session: &mut SessionHandle<()>, token: &str) -> Result<(), String> {
    use fe2o3_amqp::types::messaging::{AmqpValue, ApplicationProperties, MessageId};
    let mut sender = Sender::attach(session, "$cbs-sender", "$cbs")
        .await
        .map_err(|e| format!("{e:?}"))?;
    let mut receiver = Receiver::builder()
        .name("$cbs-receiver")
        .source("$cbs")
        .target("$cbs")
        .attach(session)
        .await
        .map_err(|e| format!("{e:?}"))?;
    let mut props = OrderedMap::new();
    props.insert(
        "operation".to_string(),
        SimpleValue::String("put-token".into()),
    );
    props.insert(
        "type".to_string(),
        SimpleValue::String("servicebus.windows.net:sastoken".into()),
    );
    props.insert(
        "name".to_string(),
        SimpleValue::String("https://localhost".into()),
    );
    let request = fe2o3_amqp::types::messaging::Message {
        header: None,
        delivery_annotations: None,
        message_annotations: None,
        properties: Some(Properties {
            message_id: Some(MessageId::Ulong(7)),
            ..Default::default()
        }),
        application_properties: Some(ApplicationProperties(props)),
        body: Body::Value(AmqpValue(Value::String(token.to_string()))),
        footer: None,
    };
    sender.send(request).await.map_err(|e| format!("{e:?}"))?;
    let reply = tokio::time::timeout(WAIT, receiver.recv::<Body<Value>>())
        .await
        .expect("no CBS reply")
        .map_err(|e| format!("{e:?}"))?;
    receiver
        .accept(&reply)
        .await
        .map_err(|e| format!("{e:?}"))?;
    let m = reply.message();
    assert_eq!(
        m.properties.as_ref().and_then(|p| p.correlation_id.clone()),
        Some(MessageId::Ulong(7))
    );
    let status = m
        .application_properties
        .as_ref()
        .and_then(|p| p.0.get("status-code").cloned());
    let _ = sender.close().await;
    let _ = receiver.close().await;
    match status {
        Some(SimpleValue::Int(200)) => Ok(()),
        other => Err(format!("put-token status {other:?}")),
    }
}

/// A service connection (SASL PLAIN) to a hub in another process, given its data dir.
pub async fn service_on_port(
    dir: &std::path::Path,
    port: u16,
    token: &str,
) -> Result<Service, String> {
    let ca = std::fs::read(dir.join("ca.pem")).map_err(|e| e.to_string())?;
    let config = c2d::tls::client_config_trusting(&ca).unwrap();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    let stream = tokio_rustls::TlsConnector::from(config)
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    let mut conn = fe2o3_amqp::Connection::builder()
        .container_id("c2d-test")
        .hostname("localhost")
        .sasl_profile(SaslProfile::Plain {
            username: "service@sas.root.localhost".into(),
            password: token.to_string(),
        })
        .open_with_stream(stream)
        .await
        .map_err(|e| format!("{e:?}"))?;
    let session = fe2o3_amqp::Session::begin(&mut conn)
        .await
        .map_err(|e| format!("{e:?}"))?;
    Ok(Service { conn, session })
}

/// The AMQP form of a C2D message to `device`.
pub fn amqp_message(
    device: &str,
    m: &Message,
) -> fe2o3_amqp::types::messaging::Message<Body<Value>> {
    let mut m = m.clone();
    m.to = Some(c2d::message::device_bound_address(device));
    c2d::amqp::from_c2d(&m)
}

/// Sends a message and returns the hub's outcome.
pub async fn send(sender: &mut Sender, device: &str, m: &Message) -> Outcome {
    tokio::time::timeout(WAIT, sender.send(amqp_message(device, m)))
        .await
        .expect("send timed out")
        .unwrap()
}

/// The records of the next feedback message (accepted).
pub async fn next_feedback(receiver: &mut Receiver) -> Vec<c2d::FeedbackRecord> {
    let delivery = tokio::time::timeout(WAIT, receiver.recv::<Body<Value>>())
        .await
        .expect("no feedback")
        .unwrap();
    let records = feedback_records(&delivery);
    receiver.accept(&delivery).await.unwrap();
    records
}

pub fn feedback_records(
    delivery: &fe2o3_amqp::link::delivery::Delivery<Body<Value>>,
) -> Vec<c2d::FeedbackRecord> {
    let body: Vec<u8> = match delivery.body() {
        Body::Data(d) => d.iter().flat_map(|x| x.0.iter().copied()).collect(),
        other => panic!("feedback body is not data: {other:?}"),
    };
    c2d::service::feedback::decode_batch(&body).unwrap()
}

pub fn delivery_tag_len(info: &DeliveryInfo) -> usize {
    info.delivery_tag().len()
}

/// An MQTT device with manual acknowledgements.
pub struct Device {
    pub client: AsyncClient,
    pub messages: mpsc::UnboundedReceiver<Publish>,
    pub connacks: mpsc::UnboundedReceiver<rumqttc::ConnAck>,
    pub errors: mpsc::UnboundedReceiver<String>,
    task: tokio::task::JoinHandle<()>,
}

pub fn mqtt_options(th: &TestHub, device_cs: &str, clean: bool) -> MqttOptions {
    let cs = c2d::ConnectionString::parse(device_cs).unwrap();
    let id = cs.device_id.clone().unwrap();
    let mut o = MqttOptions::new(&id, "localhost", th.hub.mqtt_port());
    o.set_credentials(
        format!("{}/{id}/?api-version=2021-04-12", cs.host_name),
        device_token(device_cs),
    );
    o.set_clean_session(clean);
    o.set_manual_acks(true);
    o.set_keep_alive(Duration::from_secs(60));
    o.set_max_packet_size(256 * 1024, 256 * 1024);
    let tls = c2d::tls::client_config_trusting(th.hub.ca_pem().as_bytes()).unwrap();
    o.set_transport(Transport::Tls(TlsConfiguration::Rustls(tls)));
    o
}

impl Device {
    /// Connects (the event loop stops at the first error) and, if asked, subscribes.
    pub async fn connect(th: &TestHub, device_cs: &str, clean: bool, subscribe: bool) -> Device {
        Device::connect_with(mqtt_options(th, device_cs, clean), device_cs, subscribe).await
    }

    pub async fn connect_with(options: MqttOptions, device_cs: &str, subscribe: bool) -> Device {
        let id = c2d::ConnectionString::parse(device_cs)
            .unwrap()
            .device_id
            .unwrap();
        let (client, eventloop) = AsyncClient::new(options, 64);
        let (mtx, messages) = mpsc::unbounded_channel();
        let (ctx, connacks) = mpsc::unbounded_channel();
        let (etx, errors) = mpsc::unbounded_channel();
        let task = tokio::spawn(drive(eventloop, mtx, ctx, etx));
        if subscribe {
            client
                .subscribe(
                    format!("devices/{id}/messages/devicebound/#"),
                    QoS::AtLeastOnce,
                )
                .await
                .unwrap();
        }
        Device {
            client,
            messages,
            connacks,
            errors,
            task,
        }
    }

    pub async fn next(&mut self) -> Publish {
        tokio::time::timeout(WAIT, self.messages.recv())
            .await
            .expect("no message within 10 s")
            .expect("event loop ended")
    }

    /// Nothing arrives for a while.
    pub async fn nothing_for(&mut self, d: Duration) {
        if let Ok(Some(p)) = tokio::time::timeout(d, self.messages.recv()).await {
            panic!("unexpected message on {}", p.topic);
        }
    }

    pub async fn error(&mut self) -> String {
        tokio::time::timeout(WAIT, self.errors.recv())
            .await
            .expect("no error within 10 s")
            .expect("channel closed")
    }

    pub async fn disconnect(self) {
        let _ = self.client.disconnect().await;
        let _ = tokio::time::timeout(Duration::from_secs(2), self.task).await;
    }

    /// Drops the connection without DISCONNECT (as a crash would).
    pub fn kill(self) {
        self.task.abort();
    }
}

async fn drive(
    mut eventloop: EventLoop,
    messages: mpsc::UnboundedSender<Publish>,
    connacks: mpsc::UnboundedSender<rumqttc::ConnAck>,
    errors: mpsc::UnboundedSender<String>,
) {
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let _ = messages.send(p);
            }
            Ok(Event::Incoming(Packet::ConnAck(c))) => {
                let _ = connacks.send(c);
            }
            Ok(_) => {}
            Err(e) => {
                let _ = errors.send(e.to_string());
                return;
            }
        }
    }
}

/// Splits a C2D topic's property bag.
pub fn bag(topic: &str) -> Vec<(String, Option<String>)> {
    let bag = topic.splitn(5, '/').nth(4).expect("a property bag segment");
    c2d::property_bag::decode(bag).unwrap()
}
