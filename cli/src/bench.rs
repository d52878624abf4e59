//! `c2d bench`: an end-to-end load run. N devices connect, one service client sends M
//! messages of S bytes spread over them, each device completes what it receives; the run
//! prints throughput, feedback rate, send→receipt latency and the hub's CPU time and memory.
//!
//! By default the hub is a `c2d hub` child process on free ports with a temporary data
//! directory, so that its CPU time and peak memory are its own; `--hub` points the run at
//! another hub instead (devices `bench-0`… are created there, and deleted afterwards).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use c2d::{Ack, DeviceClient, ErrorKind, Message, RetryPolicy, ServiceClient, Transport};
use clap::Args;
use serde_json::json;

use crate::hub::DurabilityArg;
use crate::hub_process::HubProcess;
use crate::messaging::{AckArg, TransportArg};

/// `c2d bench`.
#[derive(Args)]
pub struct BenchArgs {
    /// Devices connected at once.
    #[arg(long, default_value_t = 10)]
    devices: usize,
    /// Messages sent in all (spread evenly over the devices).
    #[arg(long, default_value_t = 10_000)]
    messages: usize,
    /// Body size in bytes.
    #[arg(long, default_value_t = 256)]
    size: usize,
    /// The devices' transport.
    #[arg(long, value_enum, default_value = "mqtt")]
    transport: TransportArg,
    /// The messages' ack mode (anything but none also measures feedback).
    #[arg(long, value_enum, default_value = "none")]
    ack: AckArg,
    /// The embedded hub's durability.
    #[arg(long, value_enum, default_value = "fsync")]
    durability: DurabilityArg,
    /// Sends waiting for the hub's answer at once (concurrent senders on one service client).
    #[arg(long, default_value_t = 16)]
    in_flight: usize,
    /// Unsettled messages each device may hold.
    #[arg(long, default_value_t = 16)]
    device_in_flight: u16,
    /// Run against this hub (an iothubowner connection string) instead of an embedded one.
    #[arg(long)]
    hub: Option<String>,
    /// With --hub: the CA to trust (PEM file).
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// With --hub: the AMQP, HTTPS and device ports, for a hub not on IoT Hub's ports.
    #[arg(long, num_args = 3, value_names = ["AMQP", "HTTPS", "DEVICE"])]
    ports: Option<Vec<u16>>,
    /// Instead of the load run: connect this many idle devices over TLS MQTT (a list runs one
    /// embedded hub per count, e.g. 1000,5000,10000) and report the hub's memory per device.
    #[arg(long, value_delimiter = ',')]
    idle: Vec<usize>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Where the run's hub is and how to reach it.
struct Target {
    owner: String,
    ca: Option<Vec<u8>>,
    amqp_port: Option<u16>,
    https_port: Option<u16>,
    device_port: Option<u16>,
    child: Option<HubChild>,
}

/// The embedded hub and its data directory.
struct HubChild {
    process: HubProcess,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for HubChild {
    type Target = HubProcess;
    fn deref(&self) -> &HubProcess {
        &self.process
    }
}

fn start_hub(a: &BenchArgs) -> Result<Target> {
    let dir = tempfile::tempdir().context("making the hub's data directory")?;
    let durability = match a.durability {
        DurabilityArg::Fsync => "fsync",
        DurabilityArg::Os => "os",
    };
    let depth = (a.messages / a.devices.max(1) + 1).max(50).to_string();
    let process = HubProcess::start(
        dir.path(),
        [0, 0, 0],
        &[
            "--feedback-interval",
            "0s",
            "--durability",
            durability,
            "--max-queue-depth",
            &depth,
        ],
    )?;
    let device_key = match Transport::from(a.transport) {
        Transport::Mqtt => "mqtt_port",
        Transport::Amqp => "amqp_port",
        _ => "https_port",
    };
    Ok(Target {
        owner: process.owner()?,
        ca: Some(process.ca()?),
        amqp_port: process.port("amqp_port"),
        https_port: process.port("https_port"),
        device_port: process.port(device_key),
        child: Some(HubChild { process, _dir: dir }),
    })
}

fn external_hub(a: &BenchArgs, owner: &str) -> Result<Target> {
    let ca = a
        .ca_file
        .as_deref()
        .map(|p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display())))
        .transpose()?;
    let ports = a.ports.clone().unwrap_or_default();
    Ok(Target {
        owner: owner.to_string(),
        ca,
        amqp_port: ports.first().copied(),
        https_port: ports.get(1).copied(),
        device_port: ports.get(2).copied(),
        child: None,
    })
}

/// Microseconds since the run's start, carried by each message so that the device can tell
/// how long it took to arrive (sender and devices share this process's clock).
fn now_us() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_micros() as u64
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

pub async fn run(a: BenchArgs) -> Result<()> {
    if !a.idle.is_empty() {
        return idle(&a).await;
    }
    if a.devices == 0 || a.messages == 0 || a.in_flight == 0 {
        bail!("--devices, --messages and --in-flight must be at least 1");
    }
    now_us();
    let target = match &a.hub {
        Some(owner) => external_hub(&a, owner)?,
        None => start_hub(&a)?,
    };
    let transport: Transport = a.transport.into();
    let ack: Ack = a.ack.into();

    let mut service = ServiceClient::builder(&target.owner)?;
    if let Some(ca) = &target.ca {
        service = service.trusted_ca_pem(ca.clone());
    }
    if let Some(p) = target.amqp_port {
        service = service.port(p);
    }
    if let Some(p) = target.https_port {
        service = service.https_port(p);
    }
    let service = service.connect().await.context("connecting the service")?;
    let host = service.registry().host_name().to_string();

    // register and connect the devices
    let ids: Vec<String> = (0..a.devices).map(|i| format!("bench-{i}")).collect();
    let connect_start = Instant::now();
    let mut devices = Vec::new();
    for id in &ids {
        let _ = service.registry().delete_device(id).await;
        let d = service.registry().create_device(id).await?;
        let cs = d
            .connection_string(&host)
            .context("the device has no key")?;
        let mut b = DeviceClient::builder(&cs)?
            .transport(transport)
            .in_flight(a.device_in_flight)
            .retry(RetryPolicy::fixed(Duration::from_millis(200)));
        if let Some(ca) = &target.ca {
            b = b.trusted_ca_pem(ca.clone());
        }
        if let Some(p) = target.device_port {
            b = b.port(p);
        }
        devices.push(
            b.connect()
                .await
                .with_context(|| format!("connecting {id}"))?,
        );
    }
    let connect_time = connect_start.elapsed();

    let per_device: Vec<usize> = (0..a.devices)
        .map(|i| a.messages / a.devices + usize::from(i < a.messages % a.devices))
        .collect();
    let completed = Arc::new(AtomicUsize::new(0));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(a.messages)));
    let start = Instant::now();

    // the devices: receive, note the latency, complete
    let mut receivers = Vec::new();
    for (device, want) in devices.iter().cloned().zip(per_device.iter().copied()) {
        let (completed, latencies) = (completed.clone(), latencies.clone());
        receivers.push(tokio::spawn(async move {
            let mut mine = Vec::with_capacity(want);
            for _ in 0..want {
                let Some(m) = device.recv().await? else {
                    bail!("the device client closed");
                };
                if let Some(sent) = m
                    .message()
                    .get_property("t")
                    .and_then(|t| t.parse::<u64>().ok())
                {
                    mine.push(now_us().saturating_sub(sent));
                }
                m.complete().await?;
                completed.fetch_add(1, Ordering::Relaxed);
            }
            latencies
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(mine);
            Ok(Instant::now())
        }));
    }

    // feedback: count every record
    // (every message is completed: only positive and full acks produce a record each)
    let feedback_done = if matches!(ack, Ack::Positive | Ack::Full) {
        let mut records = service.feedback()?;
        let want = a.messages;
        Some(tokio::spawn(async move {
            let mut n = 0;
            while n < want {
                if records.recv().await.is_none() {
                    bail!("the feedback stream ended after {n} records");
                }
                n += 1;
            }
            Ok::<_, anyhow::Error>(Instant::now())
        }))
    } else {
        None
    };

    // the sender: --in-flight tasks share the messages
    let next = Arc::new(AtomicUsize::new(0));
    let queue_full = Arc::new(AtomicUsize::new(0));
    let body = vec![b'x'; a.size];
    let mut senders = Vec::new();
    for _ in 0..a.in_flight {
        let (service, next, queue_full, ids, body) = (
            service.clone(),
            next.clone(),
            queue_full.clone(),
            ids.clone(),
            body.clone(),
        );
        let per_device = per_device.clone();
        senders.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= per_device.iter().sum::<usize>() {
                    return Ok::<_, anyhow::Error>(());
                }
                // message i goes to device i % devices, whose share is counted in per_device
                let device = &ids[i % ids.len()];
                loop {
                    let m = Message::new(body.clone())
                        .ack(ack)
                        .property("t", now_us().to_string());
                    match service.send(device, m).await {
                        Ok(_) => break,
                        Err(e) if e.kind() == ErrorKind::QueueFull => {
                            queue_full.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }));
    }

    // progress, once a second, on a terminal
    let progress = std::io::stderr().is_terminal().then(|| {
        let completed = completed.clone();
        let next = next.clone();
        let total = a.messages;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                eprint!(
                    "\r  sent {:>8} / {total}, completed {:>8}",
                    next.load(Ordering::Relaxed).min(total),
                    completed.load(Ordering::Relaxed)
                );
            }
        })
    });

    for s in senders {
        s.await??;
    }
    let sent_at = Instant::now();
    let mut last_completion = start;
    for r in receivers {
        last_completion = last_completion.max(r.await??);
    }
    let last_feedback = match feedback_done {
        Some(f) => Some(f.await??),
        None => None,
    };
    if let Some(p) = progress {
        p.abort();
        eprintln!();
    }
    let usage = target.child.as_ref().and_then(|c| c.usage());
    for d in &devices {
        d.close().await;
    }
    if target.child.is_none() {
        for id in &ids {
            let _ = service.registry().delete_device(id).await;
        }
    }
    service.close().await;

    let mut lat = std::mem::take(&mut *latencies.lock().unwrap_or_else(|e| e.into_inner()));
    lat.sort_unstable();
    let secs = |t: Instant| t.duration_since(start).as_secs_f64();
    let end_to_end = a.messages as f64 / secs(last_completion);
    let send_rate = a.messages as f64 / secs(sent_at);
    let feedback_rate = last_feedback.map(|t| a.messages as f64 / secs(t));
    let result = json!({
        "devices": a.devices,
        "messages": a.messages,
        "size": a.size,
        "transport": format!("{transport:?}"),
        "ack": ack.as_str(),
        "durability": if a.hub.is_some() { "n/a" } else { match a.durability { DurabilityArg::Fsync => "fsync", DurabilityArg::Os => "os" } },
        "in_flight": a.in_flight,
        "connect_seconds": connect_time.as_secs_f64(),
        "messages_per_second": end_to_end,
        "sends_per_second": send_rate,
        "feedback_records_per_second": feedback_rate,
        "latency_ms": {
            "p50": percentile(&lat, 0.50),
            "p90": percentile(&lat, 0.90),
            "p99": percentile(&lat, 0.99),
            "max": percentile(&lat, 1.0),
        },
        "queue_full_retries": queue_full.load(Ordering::Relaxed),
        "hub_cpu_seconds": usage.map(|u| u.0),
        "hub_peak_rss_bytes": usage.map(|u| u.1),
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
        return Ok(());
    }
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!(
        "c2d bench: {} devices over {transport:?}, {} messages of {} B, ack={}, {}, {} sends in flight",
        a.devices,
        a.messages,
        a.size,
        ack.as_str(),
        if a.hub.is_some() { "external hub".to_string() } else { format!("embedded hub ({})", result["durability"].as_str().unwrap_or("")) },
        a.in_flight
    );
    println!(
        "  connect {} devices        {:>10.2} s",
        a.devices,
        connect_time.as_secs_f64()
    );
    println!("  end to end (completed)   {end_to_end:>10.0} msg/s");
    println!("  sends accepted           {send_rate:>10.0} msg/s");
    match feedback_rate {
        Some(r) => println!("  feedback records         {r:>10.0} records/s"),
        None => println!(
            "  feedback records         {:>10} (no Success records with ack={})",
            "-",
            ack.as_str()
        ),
    }
    println!(
        "  send -> receipt latency  p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&lat, 0.50),
        percentile(&lat, 0.90),
        percentile(&lat, 0.99),
        percentile(&lat, 1.0)
    );
    match usage {
        Some((cpu, rss)) => println!(
            "  hub                      {cpu:.2} CPU s, peak RSS {:.1} MiB",
            mib(rss)
        ),
        None => println!("  hub                      CPU and memory not measured (external hub)"),
    }
    if queue_full.load(Ordering::Relaxed) > 0 {
        println!(
            "  queue full, retried      {}",
            queue_full.load(Ordering::Relaxed)
        );
    }
    Ok(())
}

/// `--idle`: the hub's memory per connected idle TLS MQTT device, and the time to connect them.
async fn idle(a: &BenchArgs) -> Result<()> {
    if a.hub.is_some() {
        bail!("--idle measures an embedded hub's memory: it cannot be used with --hub");
    }
    let mut rows = Vec::new();
    for &n in &a.idle {
        let target = start_hub(a)?;
        let child = target.child.as_ref().context("an embedded hub")?;
        let mut service = ServiceClient::builder(&target.owner)?;
        if let Some(ca) = &target.ca {
            service = service.trusted_ca_pem(ca.clone());
        }
        if let (Some(amqp), Some(https)) = (target.amqp_port, target.https_port) {
            service = service.port(amqp).https_port(https);
        }
        let service = service.connect().await.context("connecting the service")?;
        let host = service.registry().host_name().to_string();
        let limit = Arc::new(tokio::sync::Semaphore::new(32));
        let mut created = tokio::task::JoinSet::new();
        for i in 0..n {
            let (service, limit, host) = (service.clone(), limit.clone(), host.clone());
            created.spawn(async move {
                let _permit = limit.acquire_owned().await?;
                let d = service
                    .registry()
                    .create_device(&format!("idle-{i}"))
                    .await?;
                d.connection_string(&host).context("the device has no key")
            });
        }
        let mut strings = Vec::with_capacity(n);
        while let Some(cs) = created.join_next().await {
            strings.push(cs??);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = child.rss().context("reading the hub's memory")?;
        let start = Instant::now();
        let mut connected = tokio::task::JoinSet::new();
        for cs in strings {
            let (limit, ca, port) = (limit.clone(), target.ca.clone(), target.device_port);
            connected.spawn(async move {
                let _permit = limit.acquire_owned().await?;
                let mut b = DeviceClient::builder(&cs)?
                    .transport(Transport::Mqtt)
                    .retry(RetryPolicy::fixed(Duration::from_millis(200)));
                if let Some(ca) = ca {
                    b = b.trusted_ca_pem(ca);
                }
                if let Some(p) = port {
                    b = b.port(p);
                }
                Ok::<_, anyhow::Error>(b.connect().await?)
            });
        }
        let mut devices = Vec::with_capacity(n);
        while let Some(d) = connected.join_next().await {
            devices.push(d??);
            if std::io::stderr().is_terminal() && devices.len() % 500 == 0 {
                eprint!("\r  {} / {n} connected", devices.len());
            }
        }
        let connect_time = start.elapsed();
        if std::io::stderr().is_terminal() {
            eprintln!();
        }
        // let the hub finish each connection's setup (subscriptions, buffers)
        tokio::time::sleep(Duration::from_secs(2)).await;
        let after = child.rss().context("reading the hub's memory")?;
        let per_device = after.saturating_sub(before) as f64 / n as f64;
        rows.push(json!({
            "devices": n,
            "connect_seconds": connect_time.as_secs_f64(),
            "hub_rss_before_bytes": before,
            "hub_rss_after_bytes": after,
            "hub_bytes_per_device": per_device,
        }));
        for d in &devices {
            d.close().await;
        }
        service.close().await;
        drop(target);
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!("c2d bench --idle: idle TLS MQTT devices on an embedded hub");
    println!("  devices   connect all   hub RSS before   hub RSS after   per device");
    for r in &rows {
        let mib = |k: &str| r[k].as_u64().unwrap_or(0) as f64 / (1024.0 * 1024.0);
        println!(
            "  {:>7}   {:>9.2} s   {:>10.1} MiB   {:>9.1} MiB   {:>6.1} KiB",
            r["devices"],
            r["connect_seconds"].as_f64().unwrap_or(0.0),
            mib("hub_rss_before_bytes"),
            mib("hub_rss_after_bytes"),
            r["hub_bytes_per_device"].as_f64().unwrap_or(0.0) / 1024.0
        );
    }
    Ok(())
}
