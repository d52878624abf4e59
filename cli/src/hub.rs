//! `c2d hub` and `c2d hub info`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use c2d_hub::{Durability, HubConfig, LocalHub};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;

use crate::target::{Endpoints, DEFAULT_HUB_DIR, HUB_DIR_ENV};

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct HubArgs {
    #[command(subcommand)]
    action: Option<HubAction>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum HubAction {
    /// Print the hub's connection strings, CA file, host name, ports and the address of its
    /// live page without starting it.
    Info(InfoArgs),
    /// Make the running local hub misbehave on demand (drop connections, lose
    /// acknowledgements, delay deliveries, stall the store, refuse sends, expire locks), for
    /// testing what devices and services do then.
    Fault(crate::fault::FaultArgs),
}

#[derive(Args)]
struct InfoArgs {
    /// The hub's data directory.
    #[arg(long, env = HUB_DIR_ENV, default_value = DEFAULT_HUB_DIR)]
    data_dir: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum DurabilityArg {
    /// Every accepted message is synced to disk (survives power loss).
    Fsync,
    /// Leave syncing to the OS (survives a hub crash, not a power loss).
    Os,
}

#[derive(Args)]
struct RunArgs {
    /// Where the database and the development CA live.
    #[arg(long, env = HUB_DIR_ENV, default_value = DEFAULT_HUB_DIR)]
    data_dir: PathBuf,
    /// Host name devices and services use (`HostName=` in connection strings).
    #[arg(long, default_value = "localhost")]
    hostname: String,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// MQTT over TLS port (0: any free port).
    #[arg(long, default_value_t = 8883)]
    mqtt_port: u16,
    /// AMQP over TLS port (0: any free port).
    #[arg(long, default_value_t = 5671)]
    amqp_port: u16,
    /// HTTPS port (0: any free port).
    #[arg(long, default_value_t = 443)]
    https_port: u16,
    /// Messages a device's queue may hold.
    #[arg(long, default_value_t = 50)]
    max_queue_depth: usize,
    /// Largest message in bytes (body and properties).
    #[arg(long, default_value_t = 65536)]
    max_message_size: usize,
    /// Time to live of messages that set no expiry (e.g. 1h, 90s).
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    default_ttl: Duration,
    /// How long a delivered message stays locked before it is delivered again.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    lock_timeout: Duration,
    /// Abandons after which a message is dead-lettered.
    #[arg(long, default_value_t = 10)]
    max_delivery_count: u32,
    /// Least time between two feedback messages.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    feedback_interval: Duration,
    /// fsync: every accepted message is on disk; os: faster, survives crashes but not power loss.
    #[arg(long, value_enum, default_value = "fsync")]
    durability: DurabilityArg,
    /// PEM file of a CA that the certificates of `certificateAuthority` devices may chain to
    /// (IoT Hub's registered, verified CA); repeat for more. The hub's own development CA is
    /// always one.
    #[arg(long = "x509-ca", value_name = "FILE")]
    x509_ca: Vec<PathBuf>,
    /// Throttle as an IoT hub of this tier (F1, S1, S2, S3): C2D sends, HTTPS receives and
    /// registry operations at the tier's rates times --units, refused with IoT Hub's
    /// throttling errors past a short backlog. Off by default.
    #[arg(long, value_parser = |s: &str| s.parse::<c2d::Tier>())]
    tier: Option<c2d::Tier>,
    /// The hub's unit count, with --tier.
    #[arg(long, default_value_t = 1, requires = "tier")]
    units: u32,
    /// With --tier: how long a request over the rate waits its turn before it is refused.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration, requires = "tier")]
    throttle_backlog: Duration,
}

pub async fn run(args: HubArgs) -> Result<()> {
    match args.action {
        Some(HubAction::Info(info)) => print_info(&info),
        Some(HubAction::Fault(fault)) => crate::fault::run(fault).await,
        None => serve(args.run).await,
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}

async fn serve(a: RunArgs) -> Result<()> {
    init_logging();
    let mut config = HubConfig::new(&a.data_dir);
    config.host_name = a.hostname;
    config.bind_address = a.bind;
    config.mqtt_port = a.mqtt_port;
    config.amqp_port = a.amqp_port;
    config.https_port = a.https_port;
    config.limits.max_queue_depth = a.max_queue_depth;
    config.limits.max_message_size = a.max_message_size;
    config.limits.default_ttl = a.default_ttl;
    config.limits.lock_timeout = a.lock_timeout;
    config.limits.max_delivery_count = a.max_delivery_count;
    config.limits.feedback_interval = a.feedback_interval;
    config.durability = match a.durability {
        DurabilityArg::Fsync => Durability::Fsync,
        DurabilityArg::Os => Durability::Os,
    };
    for path in &a.x509_ca {
        config.x509_ca_pems.push(
            std::fs::read(path).with_context(|| format!("reading --x509-ca {}", path.display()))?,
        );
    }
    if let Some(tier) = a.tier {
        config.throttling =
            Some(c2d_hub::Throttling::new(tier, a.units)?.backlog(a.throttle_backlog));
    }
    let hub = LocalHub::start(config).await.context("starting the hub")?;
    Endpoints {
        hostname: hub.host_name().to_string(),
        mqtt_port: hub.mqtt_port(),
        amqp_port: hub.amqp_port(),
        https_port: hub.https_port(),
    }
    .write(&a.data_dir)?;
    let owner = hub.owner_connection_string();
    println!(
        "c2d hub is running on {} (MQTT {}, AMQP {}, HTTPS {})",
        hub.host_name(),
        hub.mqtt_port(),
        hub.amqp_port(),
        hub.https_port()
    );
    println!(
        "  service connection string:     {}",
        hub.service_connection_string()
    );
    println!("  iothubowner connection string: {owner}");
    if let Some(t) = hub.throttling() {
        println!(
            "  throttling as IoT Hub {t}:    {} C2D sends, {} HTTPS receives, {} registry operations a minute",
            t.tier.c2d_sends_per_minute() * t.units,
            t.tier.https_receives_per_minute() * t.units,
            t.tier.registry_operations_per_minute() * t.units
        );
    }
    println!(
        "  CA certificate to trust:       {}",
        hub.ca_path().display()
    );
    println!("  live page (devices, queues, feedback; its token is new at every start):");
    println!("    {}", hub.ui_url());
    if !a.x509_ca.is_empty() {
        println!(
            "  device CAs (certificateAuthority): {} and the development CA",
            a.x509_ca
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    // the client commands find this hub by themselves when it is the one they look for
    let same_dir = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    let env = if same_dir(&a.data_dir, &crate::target::local_hub_dir()) {
        String::new()
    } else {
        format!("{HUB_DIR_ENV}={} ", a.data_dir.display())
    };
    println!("Create a device, send to it and receive as it with:");
    println!("  {env}c2d device create dev1");
    println!("  {env}c2d send --device dev1 --ack full --wait hello");
    println!("  {env}c2d receive --device dev1");
    println!("Stop with Ctrl-C.");
    wait_for_signal().await;
    eprintln!("stopping…");
    hub.stop().await;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn print_info(a: &InfoArgs) -> Result<()> {
    let info = hub_info(&a.data_dir)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
    } else if let Some(map) = info.as_object() {
        for (k, v) in map {
            println!(
                "{k}: {}",
                v.as_str().map_or_else(|| v.to_string(), str::to_string)
            );
        }
    }
    Ok(())
}

/// Reads (making it first if needed) the data directory's policies and CA.
pub fn hub_info(data_dir: &Path) -> Result<serde_json::Value> {
    let endpoints = Endpoints::read(data_dir)?.unwrap_or_default();
    let host = endpoints.hostname.as_str();
    let summary =
        c2d_hub::store::summary(data_dir, host).context("reading the hub's data directory")?;
    // the page's address, with the token of the hub that runs (or last ran) here
    let ui_url = c2d_hub::data_dir::read_token(data_dir)
        .map(|token| c2d_hub::data_dir::ui_url(host, endpoints.https_port, &token));
    Ok(json!({
        "ui_url": ui_url,
        "service_connection_string": summary.connection_string("service"),
        "iothubowner_connection_string": summary.connection_string("iothubowner"),
        "ca_file": summary.ca_file,
        "hostname": host,
        "mqtt_port": endpoints.mqtt_port,
        "amqp_port": endpoints.amqp_port,
        "https_port": endpoints.https_port,
        "data_dir": data_dir,
    }))
}
