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

#[path = "bench_broker.rs"]
mod broker;

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
    /// Send at most this many messages per second (paced; the default is as fast as the
    /// sends in flight allow), for latency at a given load.
    #[arg(long)]
    rate: Option<f64>,
    /// Unsettled messages each device may hold.
    #[arg(long, default_value_t = 16)]
    device_in_flight: u16,
    /// Run against this hub (an iothubowner connection string) instead of an embedded one.
    #[arg(long)]
    hub: Option<String>,
    /// With --hub or --broker: the CA to trust (PEM file).
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// With --hub: the AMQP, HTTPS and device ports, for a hub not on IoT Hub's ports.
    #[arg(long, num_args = 3, value_names = ["AMQP", "HTTPS", "DEVICE"])]
    ports: Option<Vec<u16>>,
    /// Instead of the load run: connect this many idle devices over TLS MQTT (a list runs one
    /// embedded hub per count, e.g. 1000,5000,10000) and report the hub's memory per device.
    #[arg(long, value_delimiter = ',')]
    idle: Vec<usize>,
    /// Instead of the load run: queue --messages with no device connected, SIGKILL the hub,
    /// and measure how long it takes to serve again and to deliver the first message.
    #[arg(long, conflicts_with_all = ["hub", "idle"])]
    restart: bool,
    /// Instead of a hub: the same workload against a plain MQTT broker at HOST:PORT (QoS 1
    /// publisher and subscribers with rumqttc; TLS when --ca-file is given), for comparison.
    #[arg(long, value_name = "HOST:PORT", conflicts_with_all = ["hub", "idle"])]
    broker: Option<String>,
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

/// The embedded hub's arguments besides its ports and data directory.
fn hub_args(a: &BenchArgs) -> Vec<String> {
    let durability = match a.durability {
        DurabilityArg::Fsync => "fsync",
        DurabilityArg::Os => "os",
    };
    let depth = (a.messages / a.devices.max(1) + 1).max(50).to_string();
    ["--feedback-interval", "0s", "--durability", durability]
        .into_iter()
        .map(String::from)
        .chain(["--max-queue-depth".to_string(), depth])
        .collect()
}

/// Starts `c2d hub` on `dir` for this run.
fn start_process(a: &BenchArgs, dir: &Path) -> Result<HubProcess> {
    let args = hub_args(a);
    HubProcess::start(
        dir,
        [0, 0, 0],
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    )
}

fn target_of(a: &BenchArgs, process: HubProcess, dir: tempfile::TempDir) -> Result<Target> {
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

fn start_hub(a: &BenchArgs) -> Result<Target> {
    let dir = tempfile::tempdir().context("making the hub's data directory")?;
    let process = start_process(a, dir.path())?;
    target_of(a, process, dir)
}

/// A service client for the run's hub.
async fn connect_service(target: &Target) -> Result<ServiceClient> {
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
    service.connect().await.context("connecting the service")
}

/// A device client of the run's hub, connected.
async fn connect_device(a: &BenchArgs, target: &Target, cs: &str) -> Result<DeviceClient> {
    let mut b = DeviceClient::builder(cs)?
        .transport(a.transport.into())
        .in_flight(a.device_in_flight)
        .retry(RetryPolicy::fixed(Duration::from_millis(200)));
    if let Some(ca) = &target.ca {
        b = b.trusted_ca_pem(ca.clone());
    }
    if let Some(p) = target.device_port {
        b = b.port(p);
    }
    Ok(b.connect().await?)
}

/// The CA of `--ca-file`, if given.
fn ca_file(a: &BenchArgs) -> Result<Option<Vec<u8>>> {
    a.ca_file
        .as_deref()
        .map(|p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display())))
        .transpose()
}

/// How many of `messages` each of `devices` gets: message i goes to device i % devices.
fn shares(messages: usize, devices: usize) -> Vec<usize> {
    (0..devices)
        .map(|i| messages / devices + usize::from(i < messages % devices))
        .collect()
}

fn external_hub(a: &BenchArgs, owner: &str) -> Result<Target> {
    let ca = ca_file(a)?;
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

/// Prints `sent` and `completed` once a second while on a terminal.
fn progress(
    completed: Arc<AtomicUsize>,
    sent: Arc<AtomicUsize>,
    total: usize,
) -> Option<tokio::task::JoinHandle<()>> {
    std::io::stderr().is_terminal().then(|| {
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                eprint!(
                    "\r  sent {:>8} / {total}, completed {:>8}",
                    sent.load(Ordering::Relaxed).min(total),
                    completed.load(Ordering::Relaxed)
                );
            }
        })
    })
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
    if a.restart {
        return restart(&a).await;
    }
    now_us();
    if let Some(broker) = &a.broker {
        return broker::run(&a, broker).await;
    }
    let target = match &a.hub {
        Some(owner) => external_hub(&a, owner)?,
        None => start_hub(&a)?,
    };
    let transport: Transport = a.transport.into();
    let ack: Ack = a.ack.into();

    let service = connect_service(&target).await?;
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
        devices.push(
            connect_device(&a, &target, &cs)
                .await
                .with_context(|| format!("connecting {id}"))?,
        );
    }
    let connect_time = connect_start.elapsed();

    let per_device = shares(a.messages, a.devices);
    let completed = Arc::new(AtomicUsize::new(0));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(a.messages)));
    // the hub's CPU is counted from here: the load, not its start-up and the devices' connects
    let usage_at_start = target.child.as_ref().and_then(|c| c.usage());
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
        let records = service.feedback()?;
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
        let (rate, total) = (a.rate, a.messages);
        senders.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return Ok::<_, anyhow::Error>(());
                }
                if let Some(rate) = rate {
                    // message i leaves at i / rate seconds, not before
                    let due = start + Duration::from_secs_f64(i as f64 / rate);
                    tokio::time::sleep_until(due.into()).await;
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

    let progress = progress(completed.clone(), next.clone(), a.messages);

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
    let usage = target
        .child
        .as_ref()
        .and_then(|c| c.usage())
        .zip(usage_at_start)
        .map(|((cpu, rss), (cpu_before, _))| (cpu - cpu_before, rss));
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
        "rate": a.rate,
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
        "hub_cpu_us_per_message": usage.map(|u| u.0 * 1e6 / a.messages as f64),
        "hub_peak_rss_bytes": usage.map(|u| u.1),
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
        return Ok(());
    }
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!(
        "c2d bench: {} devices over {transport:?}, {} messages of {} B, ack={}, {}, {} sends in flight{}",
        a.devices,
        a.messages,
        a.size,
        ack.as_str(),
        if a.hub.is_some() { "external hub".to_string() } else { format!("embedded hub ({})", result["durability"].as_str().unwrap_or("")) },
        a.in_flight,
        a.rate.map(|r| format!(", paced at {r} msg/s")).unwrap_or_default()
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
            "  hub                      {cpu:.2} CPU s under the load ({:.0} us per message), peak RSS {:.1} MiB",
            cpu * 1e6 / a.messages as f64,
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

/// Raises this process's open-file limit to at least `want` (the soft limit up to the hard
/// one; the hard one too where the process may, as root may).
fn raise_file_limit(want: u64) -> Result<()> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        bail!(
            "reading the open-file limit: {}",
            std::io::Error::last_os_error()
        );
    }
    if limit.rlim_cur >= want {
        return Ok(());
    }
    let raised = libc::rlimit {
        rlim_cur: want,
        rlim_max: limit.rlim_max.max(want),
    };
    // SAFETY: as above
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        let fallback = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: as above
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &fallback) };
        bail!(
            "--idle needs {want} open files and the hard limit is {} (raise it, or run as root)",
            limit.rlim_max
        );
    }
    Ok(())
}

/// `--restart`: a hub holding --messages queued messages is killed and started again.
async fn restart(a: &BenchArgs) -> Result<()> {
    let target = start_hub(a)?;
    let service = connect_service(&target).await?;
    let host = service.registry().host_name().to_string();
    let mut strings = Vec::new();
    for i in 0..a.devices {
        let d = service
            .registry()
            .create_device(&format!("bench-{i}"))
            .await?;
        strings.push(
            d.connection_string(&host)
                .context("the device has no key")?,
        );
    }
    let fill_start = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..a.in_flight {
        let (service, next, total, devices) =
            (service.clone(), next.clone(), a.messages, a.devices);
        let body = vec![b'x'; a.size];
        senders.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return Ok::<_, anyhow::Error>(());
                }
                service
                    .send(
                        &format!("bench-{}", i % devices),
                        Message::new(body.clone()),
                    )
                    .await?;
            }
        });
    }
    let progress = progress(next.clone(), next.clone(), a.messages);
    while let Some(r) = senders.join_next().await {
        r??;
    }
    if let Some(p) = progress {
        p.abort();
        eprintln!();
    }
    let fill_time = fill_start.elapsed();
    service.close().await;

    let HubChild {
        mut process,
        _dir: dir,
    } = target.child.context("an embedded hub")?;
    let rss_before = process.rss();
    process.kill();
    let begun = Instant::now();
    let process = start_process(a, dir.path())?;
    let serving = begun.elapsed();
    let target = target_of(a, process, dir)?;
    let device = connect_device(a, &target, &strings[0]).await?;
    let first = device.recv().await?.context("the device client closed")?;
    let first_delivery = begun.elapsed();
    first.complete().await?;
    device.close().await;
    let rss_after = target.child.as_ref().and_then(|c| c.rss());

    let result = json!({
        "queued_messages": a.messages,
        "size": a.size,
        "devices": a.devices,
        "fill_seconds": fill_time.as_secs_f64(),
        "restart_to_serving_seconds": serving.as_secs_f64(),
        "restart_to_first_delivery_seconds": first_delivery.as_secs_f64(),
        "hub_rss_before_kill_bytes": rss_before,
        "hub_rss_after_restart_bytes": rss_after,
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
        return Ok(());
    }
    let mib = |b: Option<u64>| b.unwrap_or(0) as f64 / (1024.0 * 1024.0);
    println!(
        "c2d bench --restart: {} messages of {} B queued for {} devices (in {:.1} s), hub SIGKILLed",
        a.messages,
        a.size,
        a.devices,
        fill_time.as_secs_f64()
    );
    println!(
        "  restart to serving        {:>8.0} ms (process start to listening, every message loaded)",
        serving.as_secs_f64() * 1000.0
    );
    println!(
        "  restart to first delivery {:>8.0} ms (and a device connected over {:?})",
        first_delivery.as_secs_f64() * 1000.0,
        Transport::from(a.transport)
    );
    println!(
        "  hub RSS                   {:.1} MiB before the kill, {:.1} MiB after the restart",
        mib(rss_before),
        mib(rss_after)
    );
    Ok(())
}

/// `--idle`: the hub's memory per connected idle TLS MQTT device, and the time to connect them.
async fn idle(a: &BenchArgs) -> Result<()> {
    if a.hub.is_some() {
        bail!("--idle measures an embedded hub's memory: it cannot be used with --hub");
    }
    // each device is a socket in this process and one in the hub (a child, which inherits
    // the limit), plus the registry calls' and the hub's own files
    let most = a.idle.iter().copied().max().unwrap_or(0);
    raise_file_limit(most as u64 + 1024)?;
    let mut rows = Vec::new();
    for &n in &a.idle {
        let target = start_hub(a)?;
        let child = target.child.as_ref().context("an embedded hub")?;
        let service = connect_service(&target).await?;
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
