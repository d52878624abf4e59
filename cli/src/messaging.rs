//! `c2d send`, `c2d receive`, `c2d feedback` and `c2d purge`: the service and device clients
//! from the command line (after `az iot device c2d-message` and `az iot hub monitor-feedback`).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use c2d::{Ack, DeviceClient, FeedbackRecord, Message, ServiceClient, Transport};
use clap::{Args, ValueEnum};
use serde_json::json;

use crate::target::{DeviceTarget, ServiceTarget};

/// Where and how to connect, for the service commands.
#[derive(Args, Clone)]
pub struct ServiceArgs {
    /// Service connection string (a policy with ServiceConnect; iothubowner for everything).
    /// Without it: the local hub in $C2D_HUB_DIR, else ./.c2d-hub.
    #[arg(long, env = "IOTHUB_SERVICE_CONNECTION_STRING", hide_env_values = true)]
    connection_string: Option<String>,
    /// PEM file of the CA to trust (a local hub's ca.pem) instead of the system's roots.
    #[arg(long, env = "IOTHUB_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// AMQP port, for a hub not on 5671.
    #[arg(long)]
    amqp_port: Option<u16>,
    /// HTTPS port, for a hub not on 443.
    #[arg(long)]
    https_port: Option<u16>,
    #[command(flatten)]
    proxy: ProxyArgs,
    /// Print JSON lines.
    #[arg(long)]
    json: bool,
}

/// The HTTP proxy of a command.
#[derive(Args, Clone)]
pub struct ProxyArgs {
    /// Reach the hub through this HTTP proxy (`http://[user:password@]host:port`, CONNECT);
    /// it carries WebSockets and HTTPS, so a service then uses AMQP over WebSockets.
    #[arg(long, value_name = "URL", conflicts_with = "use_env_proxy")]
    proxy: Option<String>,
    /// Use the proxy HTTPS_PROXY names (the environment is read only with this flag).
    #[arg(long)]
    use_env_proxy: bool,
}

impl ProxyArgs {
    fn proxy(&self) -> Result<Option<c2d::Proxy>> {
        if self.use_env_proxy {
            return match c2d::Proxy::from_env()? {
                Some(p) => Ok(Some(p)),
                None => bail!("--use-env-proxy: HTTPS_PROXY is not set"),
            };
        }
        Ok(self.proxy.as_deref().map(c2d::Proxy::parse).transpose()?)
    }
}

impl ServiceArgs {
    async fn connect(&self) -> Result<ServiceClient> {
        let target =
            ServiceTarget::resolve(self.connection_string.as_deref(), self.ca_file.as_deref())
                .await?;
        let mut b = ServiceClient::builder(&target.connection_string)?;
        if let Some(ca) = target.trusted_ca_pem {
            b = b.trusted_ca_pem(ca);
        }
        let local = target.endpoints.as_ref();
        if let Some(p) = self.amqp_port.or(local.map(|e| e.amqp_port)) {
            b = b.amqp_port(p);
        }
        if let Some(p) = self.https_port.or(local.map(|e| e.https_port)) {
            b = b.https_port(p);
        }
        if let Some(proxy) = self.proxy.proxy()? {
            b = b.transport(c2d::ServiceTransport::AmqpWs).proxy(proxy);
        }
        Ok(b.connect().await?)
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum AckArg {
    None,
    Positive,
    Negative,
    Full,
}

impl From<AckArg> for Ack {
    fn from(a: AckArg) -> Ack {
        match a {
            AckArg::None => Ack::None,
            AckArg::Positive => Ack::Positive,
            AckArg::Negative => Ack::Negative,
            AckArg::Full => Ack::Full,
        }
    }
}

/// `c2d send`.
#[derive(Args)]
pub struct SendArgs {
    #[command(flatten)]
    service: ServiceArgs,
    /// The device to send to.
    #[arg(long, required_unless_present = "fleet")]
    device: Option<String>,
    /// Send the message to every device listed in FILE, one id a line (`-`: standard
    /// input; empty lines and lines starting with # are skipped), each with its own message
    /// id, and print each device's result, a summary, and exit non-zero when any device did
    /// not get it.
    #[arg(long, value_name = "FILE", group = "fleet", conflicts_with_all = ["device", "count"])]
    devices_file: Option<PathBuf>,
    /// Send the message to every device of the registry (read page by page with IoT Hub's
    /// device query as the sends go), as --devices-file does.
    #[arg(long, group = "fleet", conflicts_with_all = ["device", "count", "devices_file"])]
    all_devices: bool,
    /// With --devices-file or --all-devices: start at most N sends a second.
    #[arg(
        long,
        value_name = "N",
        requires = "devices_file",
        conflicts_with = "tier"
    )]
    rate: Option<f64>,
    /// With --devices-file or --all-devices: pace to the C2D send throttle of an IoT hub of this tier (F1,
    /// S1, S2, S3: 100 sends a minute a unit; S3: 5 000).
    #[arg(long, value_parser = |s: &str| s.parse::<c2d::Tier>())]
    tier: Option<c2d::Tier>,
    /// With --tier: the hub's unit count.
    #[arg(long, default_value_t = 1, requires = "tier")]
    units: u32,
    /// With --devices-file or --all-devices: sends waiting for the hub's answer at most.
    #[arg(long, default_value_t = 64)]
    in_flight: usize,
    /// Message id (a UUID is generated when absent).
    #[arg(long)]
    message_id: Option<String>,
    /// Correlation id.
    #[arg(long)]
    correlation_id: Option<String>,
    /// An application property, as NAME=VALUE (repeatable).
    #[arg(long = "property", value_parser = parse_property)]
    properties: Vec<(String, String)>,
    /// Which outcomes produce feedback.
    #[arg(long, value_enum, default_value = "none")]
    ack: AckArg,
    /// Time to live (e.g. 10m); the hub's default (1 h) when absent.
    #[arg(long, value_parser = humantime::parse_duration)]
    ttl: Option<Duration>,
    /// Content type.
    #[arg(long)]
    content_type: Option<String>,
    /// Content encoding.
    #[arg(long)]
    content_encoding: Option<String>,
    /// Wait for this message's feedback and print it (needs --ack other than none).
    #[arg(long)]
    wait: bool,
    /// Send the message this many times, one after another (with --message-id, the ids get
    /// a -1, -2, … suffix).
    #[arg(long, default_value_t = 1)]
    count: usize,
    /// The body.
    body: String,
}

fn parse_property(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("'{s}' is not NAME=VALUE"))
}

pub(crate) fn record_json(r: &FeedbackRecord) -> serde_json::Value {
    json!({
        "originalMessageId": r.original_message_id,
        "deviceId": r.device_id,
        "statusCode": r.status.as_str(),
        "description": r.description,
        "enqueuedTimeUtc": c2d::timestamp::format_utc(r.enqueued_time),
    })
}

pub(crate) fn print_record(r: &FeedbackRecord, as_json: bool) {
    if as_json {
        println!("{}", record_json(r));
    } else {
        println!(
            "{}\t{}\t{}\t{}",
            c2d::timestamp::format_utc(r.enqueued_time),
            r.device_id,
            r.original_message_id,
            r.status
        );
    }
}

fn progress(text: &str) {
    if std::io::stderr().is_terminal() {
        eprintln!("{text}");
    }
}

pub async fn send(a: SendArgs) -> Result<()> {
    let ack = Ack::from(a.ack);
    if a.wait && ack == Ack::None {
        bail!("--wait needs --ack positive, negative or full: with ack=none no feedback comes");
    }
    let mut m = Message::new(a.body.into_bytes()).ack(ack);
    if let Some(id) = a.message_id {
        m = m.message_id(id);
    }
    if let Some(id) = a.correlation_id {
        m = m.correlation_id(id);
    }
    if let Some(ttl) = a.ttl {
        m = m.ttl(ttl);
    }
    if let Some(ct) = a.content_type {
        m = m.content_type(ct);
    }
    if let Some(ce) = a.content_encoding {
        m = m.content_encoding(ce);
    }
    for (k, v) in a.properties {
        m = m.property(k, v);
    }
    if (a.rate.is_some() || a.tier.is_some()) && a.devices_file.is_none() && !a.all_devices {
        bail!(
            "--rate and --tier pace a send to many devices: give --devices-file or --all-devices"
        );
    }
    let service = a.service.connect().await?;
    let fleet = match (&a.devices_file, a.all_devices) {
        (Some(file), _) => Some(crate::fanout::Fleet::File(file.clone())),
        (None, true) => Some(crate::fanout::Fleet::Registry),
        (None, false) => None,
    };
    if let Some(fleet) = fleet {
        let rate = match (a.rate, a.tier) {
            (Some(r), _) => c2d::Rate::PerSecond(r),
            (None, Some(t)) => t.units(a.units),
            (None, None) => c2d::Rate::Unlimited,
        };
        let fan = c2d::FanOut::default().in_flight(a.in_flight).rate(rate);
        let result =
            crate::fanout::send_many(&service, fleet, m, fan, a.wait, a.service.json).await;
        service.close().await;
        return result;
    }
    let device = a
        .device
        .as_deref()
        .expect("clap requires --device without --devices-file");
    for i in 1..=a.count {
        let mut m = m.clone();
        if a.count > 1 {
            if let Some(id) = m.message_id.clone() {
                m = m.message_id(format!("{id}-{i}"));
            }
        }
        let sent = service.send(device, m).await?;
        if a.service.json {
            println!(
                "{}",
                json!({"event": "sent", "deviceId": device, "messageId": sent.message_id()})
            );
        } else {
            println!("sent {} to {device}", sent.message_id());
        }
        if a.wait {
            progress("waiting for the message's feedback… (Ctrl-C to stop)");
            let record = sent.outcome().await?;
            print_record(&record, a.service.json);
        }
    }
    service.close().await;
    Ok(())
}

/// `c2d feedback`.
#[derive(Args)]
pub struct FeedbackArgs {
    #[command(flatten)]
    service: ServiceArgs,
    /// Only records of this device.
    #[arg(long)]
    device: Option<String>,
    /// Stop after this many records.
    #[arg(long)]
    count: Option<usize>,
}

pub async fn feedback(a: FeedbackArgs) -> Result<()> {
    let service = a.service.connect().await?;
    let records = service.feedback()?;
    progress("waiting for feedback… (Ctrl-C to stop)");
    let mut seen = 0;
    while a.count.is_none_or(|c| seen < c) {
        let Some(r) = records.recv().await else { break };
        if a.device.as_deref().is_some_and(|d| d != r.device_id) {
            continue;
        }
        print_record(&r, a.service.json);
        seen += 1;
    }
    service.close().await;
    Ok(())
}

/// `c2d purge`.
#[derive(Args)]
pub struct PurgeArgs {
    #[command(flatten)]
    service: ServiceArgs,
    /// The device whose queue to empty.
    #[arg(long)]
    device: String,
}

pub async fn purge(a: PurgeArgs) -> Result<()> {
    let service = a.service.connect().await?;
    let r = service.purge(&a.device).await?;
    if a.service.json {
        println!(
            "{}",
            json!({"deviceId": r.device_id, "totalMessagesPurged": r.total_messages_purged})
        );
    } else {
        println!(
            "purged {} message(s) of {}",
            r.total_messages_purged, r.device_id
        );
    }
    service.close().await;
    Ok(())
}

#[derive(Clone, Copy, ValueEnum)]
pub enum TransportArg {
    Mqtt,
    MqttWs,
    Amqp,
    AmqpWs,
    /// HTTPS polling (see --poll-interval).
    Https,
}

impl From<TransportArg> for Transport {
    fn from(t: TransportArg) -> Transport {
        match t {
            TransportArg::Mqtt => Transport::Mqtt,
            TransportArg::MqttWs => Transport::MqttWs,
            TransportArg::Amqp => Transport::Amqp,
            TransportArg::AmqpWs => Transport::AmqpWs,
            TransportArg::Https => Transport::Https,
        }
    }
}

/// `c2d receive`.
#[derive(Args)]
#[command(group = clap::ArgGroup::new("settle").args(["complete", "reject", "abandon"]))]
pub struct ReceiveArgs {
    /// Device connection string [env: IOTHUB_DEVICE_CONNECTION_STRING, unless --device is
    /// given].
    #[arg(long)]
    connection_string: Option<String>,
    /// Receive as this device, its connection string taken from the registry of the local hub
    /// (or of the hub IOTHUB_SERVICE_CONNECTION_STRING names).
    #[arg(long, conflicts_with = "connection_string")]
    device: Option<String>,
    /// PEM file of the CA to trust (a local hub's ca.pem) instead of the system's roots.
    #[arg(long, env = "IOTHUB_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// The transport.
    #[arg(long, value_enum, default_value = "mqtt")]
    transport: TransportArg,
    /// The transport's port, for a hub not on IoT Hub's ports.
    #[arg(long)]
    port: Option<u16>,
    /// Stop after this many messages.
    #[arg(long)]
    count: Option<usize>,
    /// Complete each message (the default).
    #[arg(long)]
    complete: bool,
    /// Reject each message (AMQP, HTTPS).
    #[arg(long)]
    reject: bool,
    /// Abandon each message (AMQP, HTTPS).
    #[arg(long)]
    abandon: bool,
    #[command(flatten)]
    proxy: ProxyArgs,
    /// The device's X.509 certificate (PEM), for a connection string with `x509=true`.
    #[arg(long, requires = "key_file")]
    cert_file: Option<PathBuf>,
    /// The private key (PEM) of --cert-file.
    #[arg(long, requires = "cert_file")]
    key_file: Option<PathBuf>,
    /// How often to poll over HTTPS once the queue is empty: 25m (IoT Hub's guidance) by
    /// default, 1s for the local hub found by its folder.
    #[arg(long, value_parser = humantime::parse_duration)]
    poll_interval: Option<Duration>,
    /// Stop when no message arrives for this long (e.g. 30s).
    #[arg(long, value_parser = humantime::parse_duration)]
    timeout: Option<Duration>,
    /// Hand each message over once: a message completed (or rejected) that comes again (a
    /// lost acknowledgement, a dropped connection) is settled the same way and not printed;
    /// how many were is printed at exit.
    #[arg(long)]
    suppress_duplicates: bool,
    /// Keep the ids of handled messages in this file too, so that a message handled before a
    /// crash or restart is not handed over again (implies --suppress-duplicates).
    #[arg(long, value_name = "PATH")]
    duplicates_file: Option<PathBuf>,
    /// Print JSON lines.
    #[arg(long)]
    json: bool,
}

fn message_json(m: &c2d::ReceivedMessage) -> serde_json::Value {
    let msg = m.message();
    let props: serde_json::Map<String, serde_json::Value> = msg
        .properties
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    json!({
        "body": String::from_utf8_lossy(m.body()),
        "messageId": msg.message_id.as_ref().map(ToString::to_string),
        "correlationId": msg.correlation_id.as_ref().map(ToString::to_string),
        "contentType": msg.content_type,
        "contentEncoding": msg.content_encoding,
        "ack": msg.ack.map(|a| a.as_str()),
        "expiryTimeUtc": msg.expiry_time.map(c2d::timestamp::format_utc),
        "deliveryCount": m.delivery_count(),
        "properties": props,
    })
}

fn m_props(line: &serde_json::Value) -> Vec<String> {
    line["properties"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default()
}

/// How often `receive --transport https` polls the local hub found by its folder.
const LOCAL_POLL_INTERVAL: Duration = Duration::from_secs(1);

pub async fn receive(a: ReceiveArgs) -> Result<()> {
    let transport = Transport::from(a.transport);
    // read here rather than by clap, so that --device wins over a connection string in the
    // environment but not over one given on the command line
    let connection_string = a.connection_string.or_else(|| match a.device {
        Some(_) => None,
        None => std::env::var("IOTHUB_DEVICE_CONNECTION_STRING")
            .ok()
            .filter(|s| !s.is_empty()),
    });
    let target = DeviceTarget::resolve(
        connection_string.as_deref(),
        a.device.as_deref(),
        a.ca_file.as_deref(),
    )
    .await?;
    let mut b = DeviceClient::builder(&target.connection_string)?.transport(transport);
    if let Some(ca) = target.trusted_ca_pem {
        b = b.trusted_ca_pem(ca);
    }
    if let Some(e) = &target.endpoints {
        b = b
            .mqtt_port(e.mqtt_port)
            .amqp_port(e.amqp_port)
            .https_port(e.https_port);
    }
    if let Some(p) = a.port {
        b = b.port(p);
    }
    // a local hub found by its folder is polled every second: IoT Hub's 25 minutes are for
    // the HTTPS receives it throttles, and nobody waits that long for a development hub
    let poll_interval = a
        .poll_interval
        .or(target.endpoints.as_ref().map(|_| LOCAL_POLL_INTERVAL));
    if let Some(i) = poll_interval {
        b = b.poll_interval(i);
    }
    let poll_interval = poll_interval.unwrap_or(c2d::device::DEFAULT_POLL_INTERVAL);
    if transport == Transport::Https && poll_interval >= Duration::from_secs(60) {
        // said even when stderr is not a terminal: a long wait should never be a mystery
        eprintln!(
            "polling over HTTPS every {} once the queue is empty (--poll-interval to change)",
            humantime::format_duration(poll_interval)
        );
    }
    if let Some(proxy) = a.proxy.proxy()? {
        b = b.proxy(proxy);
    }
    if let (Some(cert), Some(key)) = (&a.cert_file, &a.key_file) {
        let read =
            |p: &PathBuf| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
        b = b.client_certificate(read(cert)?, read(key)?);
    }
    let suppress = a.suppress_duplicates || a.duplicates_file.is_some();
    if let Some(path) = &a.duplicates_file {
        b = b.duplicates_file(path);
    } else if suppress {
        b = b.suppress_duplicates(true);
    }
    let device = b.connect().await?;
    progress("waiting for messages… (Ctrl-C to stop)");
    let mut seen = 0;
    let mut interrupted = std::pin::pin!(tokio::signal::ctrl_c());
    while a.count.is_none_or(|c| seen < c) {
        let recv = async {
            match a.timeout {
                Some(t) => tokio::time::timeout(t, device.recv()).await.ok(),
                None => Some(device.recv().await),
            }
        };
        let next = tokio::select! {
            r = recv => match r {
                Some(r) => r?,
                None => break,
            },
            _ = &mut interrupted => break,
        };
        let Some(m) = next else { break };
        let line = message_json(&m);
        let action = if a.reject {
            m.reject().await.map(|_| "rejected")
        } else if a.abandon {
            m.abandon().await.map(|_| "abandoned")
        } else {
            m.complete().await.map(|_| "completed")
        };
        let action = action?;
        if a.json {
            let mut line = line;
            line["action"] = json!(action);
            println!("{line}");
        } else {
            let props: Vec<String> = m_props(&line);
            println!(
                "{action}\t{}\t{}\t{}",
                line["messageId"].as_str().unwrap_or("-"),
                line["body"].as_str().unwrap_or(""),
                props.join(" ")
            );
        }
        seen += 1;
    }
    device.close().await;
    if suppress {
        eprintln!(
            "{} duplicate(s) suppressed (settled again without being handed over)",
            device.duplicates_suppressed()
        );
    }
    Ok(())
}
