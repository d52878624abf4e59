//! `c2d soak`: a sustained send/receive load while the hub is killed (`--chaos kill`) or the
//! network between the clients and the hub fails (`--chaos network`), then a count of what
//! became of every message: sent, accepted, delivered, lost, duplicated. Lost must be 0: every
//! message the hub answered `accepted` for is delivered at least once.
//!
//! The hub is a `c2d hub` child process on a data directory that outlives it. With
//! `--chaos kill` it is SIGKILLed at random moments and started again on the same ports; the
//! clients reconnect by themselves. With `--chaos network` every client connection goes
//! through a TCP proxy in this process that, at random moments, closes a connection, resets it
//! (RST) or stalls it for a while. With `--chaos faults` the hub itself misbehaves through its
//! fault API (`c2d hub fault`): dropped connections, lost acknowledgements, a stalled store,
//! refused sends, delayed deliveries, locks expired at once; the devices then use every
//! transport in turn, and `duplicated` counts the messages handed to the application more
//! than once — 0 with `--suppress-duplicates`, more than 0 without (the faults bite).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use c2d::{DeviceClient, Message, RetryPolicy, ServiceClient};
use clap::{Args, ValueEnum};
use rand::Rng;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::hub::DurabilityArg;
use crate::hub_process::{HubProcess, Ports};
use crate::messaging::TransportArg;

/// `c2d soak`.
#[derive(Args)]
pub struct SoakArgs {
    /// What goes wrong during the run.
    #[arg(long, value_enum, default_value = "kill")]
    chaos: Chaos,
    /// How long the load (and the chaos) lasts.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Devices receiving.
    #[arg(long, default_value_t = 4)]
    devices: usize,
    /// The devices' transport.
    #[arg(long, value_enum, default_value = "mqtt")]
    transport: TransportArg,
    /// Sends in flight at once.
    #[arg(long, default_value_t = 8)]
    in_flight: usize,
    /// Body size in bytes.
    #[arg(long, default_value_t = 128)]
    size: usize,
    /// The hub's durability.
    #[arg(long, value_enum, default_value = "fsync")]
    durability: DurabilityArg,
    /// The shortest and longest wait between two faults (or kills).
    #[arg(long, num_args = 2, value_names = ["MIN", "MAX"], default_values = ["500ms", "3s"], value_parser = humantime::parse_duration)]
    every: Vec<Duration>,
    /// The devices suppress duplicates (hand each message to the application once).
    #[arg(long)]
    suppress_duplicates: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Chaos {
    /// SIGKILL the hub and start it again.
    Kill,
    /// Close, reset and stall the clients' TCP connections through a proxy.
    Network,
    /// The hub's own faults, through its fault API: drop, lose-acks, stall-store,
    /// refuse-sends, delay, expire-locks (devices on every transport in turn).
    Faults,
}

/// What a message's life looked like, by message number.
#[derive(Default)]
struct Ledger {
    sent: AtomicUsize,
    /// The longest a send took (microseconds), answered or not.
    slowest_send_us: AtomicU64,
    accepted: Mutex<Vec<u64>>,
    send_errors: Mutex<HashMap<String, usize>>,
    /// Deliveries per message number.
    delivered: Mutex<HashMap<u64, u32>>,
}

impl Ledger {
    fn lost(&self) -> Vec<u64> {
        let delivered = self.delivered.lock().unwrap_or_else(|e| e.into_inner());
        let accepted = self.accepted.lock().unwrap_or_else(|e| e.into_inner());
        accepted
            .iter()
            .copied()
            .filter(|n| !delivered.contains_key(n))
            .collect()
    }
}

/// Three free loopback ports (bound, then let go, so that a restarted hub can take them again).
fn free_ports() -> Result<Ports> {
    let listeners: Vec<std::net::TcpListener> = (0..3)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<_>>()
        .context("finding free ports")?;
    let port = |i: usize| listeners[i].local_addr().map(|a| a.port());
    Ok([port(0)?, port(1)?, port(2)?])
}

fn between(range: &[Duration]) -> Duration {
    let (lo, hi) = (range[0], range[1].max(range[0]));
    rand::rng().random_range(lo..=hi)
}

pub async fn run(a: SoakArgs) -> Result<()> {
    if a.devices == 0 || a.in_flight == 0 {
        bail!("--devices and --in-flight must be at least 1");
    }
    // the clients' own logs, when asked for (RUST_LOG=c2d=debug); the hub logs at warn
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
    let dir = tempfile::tempdir().context("making the hub's data directory")?;
    let ports = free_ports()?;
    let durability = match a.durability {
        DurabilityArg::Fsync => "fsync",
        DurabilityArg::Os => "os",
    };
    // a short lock: a message delivered on a connection that died is delivered again soon
    let hub_args = [
        "--durability",
        durability,
        "--lock-timeout",
        "5s",
        "--max-queue-depth",
        "100000",
    ];
    let hub = HubProcess::start(dir.path(), ports, &hub_args)?;
    let owner = hub.owner()?;
    let ca = hub.ca()?;
    let hub = Arc::new(Mutex::new(Some(hub)));

    // the clients dial the hub, or the proxy in front of it
    let port_index = |t: c2d::Transport| match t {
        c2d::Transport::Mqtt => 0,
        c2d::Transport::Amqp => 1,
        _ => 2,
    };
    let admin = if a.chaos == Chaos::Faults {
        let token = c2d_hub::data_dir::read_token(dir.path()).context("the hub's page token")?;
        let endpoints = crate::target::Endpoints {
            hostname: "localhost".into(),
            mqtt_port: ports[0],
            amqp_port: ports[1],
            https_port: ports[2],
        };
        Some(crate::fault::Admin::new(&endpoints, &ca, token)?)
    } else {
        None
    };
    let mut proxies = Vec::new();
    let dial = if a.chaos == Chaos::Network {
        let mut dial = [0u16; 3];
        for (i, port) in ports.iter().enumerate() {
            let proxy = Proxy::start(SocketAddr::from(([127, 0, 0, 1], *port))).await?;
            dial[i] = proxy.port;
            proxies.push(proxy);
        }
        dial
    } else {
        ports
    };

    let retry = RetryPolicy::fixed(Duration::from_millis(250));
    let service = ServiceClient::builder(&owner)?
        .trusted_ca_pem(ca.clone())
        .port(dial[1])
        .https_port(dial[2])
        .retry(retry.clone())
        .connect()
        .await
        .context("connecting the service")?;
    let host = service.registry().host_name().to_string();
    let ledger = Arc::new(Ledger::default());
    let mut devices = Vec::new();
    let mut receivers = Vec::new();
    for i in 0..a.devices {
        let id = format!("soak-{i}");
        let transport = match a.chaos {
            Chaos::Faults => c2d::Transport::ALL[i % c2d::Transport::ALL.len()],
            _ => a.transport.into(),
        };
        let cs = service
            .registry()
            .create_device(&id)
            .await?
            .connection_string(&host)
            .context("the device has no key")?;
        let device = DeviceClient::builder(&cs)?
            .transport(transport)
            .trusted_ca_pem(ca.clone())
            .port(dial[port_index(transport)])
            .retry(retry.clone())
            // HTTPS devices poll as fast as a development hub allows
            .poll_interval(Duration::from_millis(50))
            .suppress_duplicates(a.suppress_duplicates)
            .connect()
            .await
            .with_context(|| format!("connecting {id}"))?;
        let ledger = ledger.clone();
        let d = device.clone();
        let who = format!("{id} ({transport})");
        receivers.push(tokio::spawn(async move {
            loop {
                let m = match d.recv().await {
                    Ok(Some(m)) => m,
                    Ok(None) => return None,
                    // the device gave up: said at the end, with what it lost
                    Err(e) => return Some(format!("{who}: {e}")),
                };
                if let Some(n) = m
                    .message()
                    .get_property("n")
                    .and_then(|n| n.parse::<u64>().ok())
                {
                    *ledger
                        .delivered
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .entry(n)
                        .or_default() += 1;
                }
                // a completion lost with its connection means one more delivery, counted above
                let _ = m.complete().await;
            }
        }));
        devices.push((id, device));
    }

    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(0));
    let body = vec![b's'; a.size];
    let mut senders = Vec::new();
    for _ in 0..a.in_flight {
        let (service, ledger, stop, next, body) = (
            service.clone(),
            ledger.clone(),
            stop.clone(),
            next.clone(),
            body.clone(),
        );
        let ids: Vec<String> = devices.iter().map(|(id, _)| id.clone()).collect();
        senders.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let device = &ids[n as usize % ids.len()];
                let mut m = Message::new(body.clone()).property("n", n.to_string());
                // the id duplicate suppression knows a message by
                m.message_id = Some(format!("soak-{n}").into());
                ledger.sent.fetch_add(1, Ordering::Relaxed);
                let begun = Instant::now();
                let sent = service.send(device, m).await;
                ledger
                    .slowest_send_us
                    .fetch_max(begun.elapsed().as_micros() as u64, Ordering::Relaxed);
                match sent {
                    Ok(_) => ledger
                        .accepted
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(n),
                    Err(e) => {
                        *ledger
                            .send_errors
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .entry(format!("{:?}", e.kind()))
                            .or_default() += 1;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        }));
    }

    // the chaos, until the duration is up
    let mut faults: HashMap<&'static str, usize> = HashMap::new();
    let mut restart_times = Vec::new();
    let device_ids: Vec<String> = devices.iter().map(|(id, _)| id.clone()).collect();
    let mut delayed: Option<String> = None;
    while start.elapsed() < a.duration {
        tokio::time::sleep(between(&a.every)).await;
        if start.elapsed() >= a.duration {
            break;
        }
        match a.chaos {
            Chaos::Kill => {
                let dead = hub.lock().unwrap_or_else(|e| e.into_inner()).take();
                drop(dead); // SIGKILL
                *faults.entry("kill").or_default() += 1;
                tokio::time::sleep(between(&[Duration::ZERO, Duration::from_millis(500)])).await;
                let (dir, hub) = (dir.path().to_path_buf(), hub.clone());
                let t = tokio::task::spawn_blocking(move || {
                    let begun = Instant::now();
                    let started = HubProcess::start(&dir, ports, &hub_args)?;
                    *hub.lock().unwrap_or_else(|e| e.into_inner()) = Some(started);
                    Ok::<_, anyhow::Error>(begun.elapsed())
                })
                .await??;
                restart_times.push(t);
            }
            Chaos::Faults => {
                let admin = admin.as_ref().expect("made for --chaos faults");
                // a delay lasts until the next fault
                if let Some(device) = delayed.take() {
                    admin
                        .apply(&c2d_hub::Fault::Delay {
                            device,
                            delay_ms: 0,
                        })
                        .await?;
                }
                let fault = random_fault(&device_ids);
                if let c2d_hub::Fault::Delay { device, .. } = &fault {
                    delayed = Some(device.clone());
                }
                admin.apply(&fault).await?;
                *faults.entry(fault.name()).or_default() += 1;
            }
            Chaos::Network => {
                // a proxy at random among those with a live connection
                let first = rand::rng().random_range(0..proxies.len());
                let broken =
                    (0..proxies.len()).find_map(|i| proxies[(first + i) % proxies.len()].fault());
                if let Some(kind) = broken {
                    *faults.entry(kind).or_default() += 1;
                }
            }
        }
        if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            eprint!(
                "\r  {:>4.0} s: sent {:>7}, accepted {:>7}, delivered {:>7}",
                start.elapsed().as_secs_f64(),
                ledger.sent.load(Ordering::Relaxed),
                ledger.accepted.lock().map(|v| v.len()).unwrap_or(0),
                ledger.delivered.lock().map(|d| d.len()).unwrap_or(0),
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.await?;
    }
    let load_time = start.elapsed();
    if let Some(admin) = &admin {
        // the faults end with the load (a delay left in force would slow the drain)
        admin.clear().await?;
    }
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        eprintln!();
    }

    // the hub stays up now: wait for every accepted message, as long as the devices still
    // receive (a device that fell behind, an HTTPS device slowed by faults, drains its
    // backlog); lost is what never came once nothing more did for 30 s
    let drain_start = Instant::now();
    let (mut seen, mut progress) = (0, Instant::now());
    while !ledger.lost().is_empty() && progress.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now_seen = ledger.delivered.lock().map(|d| d.len()).unwrap_or(seen);
        if now_seen > seen {
            (seen, progress) = (now_seen, Instant::now());
        }
    }
    let drain_time = drain_start.elapsed();
    let suppressed: u64 = devices.iter().map(|(_, d)| d.duplicates_suppressed()).sum();
    for (_, d) in &devices {
        d.close().await;
    }
    let mut receive_errors = Vec::new();
    for r in receivers {
        if let Ok(Some(e)) = r.await {
            receive_errors.push(e);
        }
    }
    service.close().await;
    drop(hub);

    let lost = ledger.lost();
    let accepted = ledger
        .accepted
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let delivered = ledger.delivered.lock().unwrap_or_else(|e| e.into_inner());
    let accepted_set: std::collections::HashSet<u64> = accepted.iter().copied().collect();
    let duplicated: u64 = delivered.values().map(|c| u64::from(c - 1)).sum();
    let unconfirmed_delivered = delivered
        .keys()
        .filter(|n| !accepted_set.contains(n))
        .count();
    let send_errors = ledger.send_errors.lock().unwrap_or_else(|e| e.into_inner());
    let restarts_ms: Vec<f64> = restart_times
        .iter()
        .map(|t| t.as_secs_f64() * 1000.0)
        .collect();
    let result = json!({
        "chaos": match a.chaos { Chaos::Kill => "kill", Chaos::Network => "network", Chaos::Faults => "faults" },
        "transport": match a.chaos {
            Chaos::Faults => "every transport in turn".to_string(),
            _ => format!("{:?}", c2d::Transport::from(a.transport)),
        },
        "devices": a.devices,
        "seconds": load_time.as_secs_f64(),
        "faults": faults,
        "sent": ledger.sent.load(Ordering::Relaxed),
        "accepted": accepted.len(),
        "send_errors": *send_errors,
        "delivered": delivered.len(),
        "delivered_unconfirmed": unconfirmed_delivered,
        "lost": lost.len(),
        "duplicated": duplicated,
        "suppress_duplicates": a.suppress_duplicates,
        "duplicates_suppressed": suppressed,
        "receive_errors": receive_errors,
        "drain_seconds": drain_time.as_secs_f64(),
        "slowest_send_seconds": ledger.slowest_send_us.load(Ordering::Relaxed) as f64 / 1e6,
        "hub_restart_ms": restarts_ms,
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        println!(
            "c2d soak --chaos {}: {:.0} s of load, {} devices over {}, {} sends in flight",
            result["chaos"].as_str().unwrap_or(""),
            load_time.as_secs_f64(),
            a.devices,
            result["transport"].as_str().unwrap_or(""),
            a.in_flight
        );
        let mut f: Vec<_> = faults.iter().map(|(k, v)| format!("{k} {v}")).collect();
        f.sort();
        println!("  faults        {}", f.join(", "));
        if !restarts_ms.is_empty() {
            let max = restarts_ms.iter().cloned().fold(0.0, f64::max);
            let mean = restarts_ms.iter().sum::<f64>() / restarts_ms.len() as f64;
            println!(
                "  hub restart   mean {mean:.0} ms, max {max:.0} ms (process start to serving)"
            );
        }
        println!("  sent          {}", ledger.sent.load(Ordering::Relaxed));
        let mut errors: Vec<_> = send_errors
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        errors.sort();
        println!(
            "  accepted      {}   (send errors: {})",
            accepted.len(),
            if errors.is_empty() {
                "none".into()
            } else {
                errors.join(", ")
            }
        );
        println!(
            "  delivered     {}   ({} of them after a send that reported an error)",
            delivered.len(),
            unconfirmed_delivered
        );
        println!("  lost          {}", lost.len());
        for e in &receive_errors {
            println!("  gave up       {e}");
        }
        println!(
            "  slowest send  {:.1} s (waiting out a fault)",
            ledger.slowest_send_us.load(Ordering::Relaxed) as f64 / 1e6
        );
        println!("  duplicated    {duplicated} deliveries handed to the application again");
        if a.suppress_duplicates {
            println!("  suppressed    {suppressed} duplicates settled without being handed over");
        }
        println!(
            "  drained in    {:.1} s after the load stopped",
            drain_time.as_secs_f64()
        );
    }
    if !lost.is_empty() {
        let sample: Vec<_> = lost.iter().take(10).collect();
        bail!(
            "{} accepted messages were never delivered (e.g. {sample:?})",
            lost.len()
        );
    }
    Ok(())
}

/// A fault of the hub's at random: what `--chaos faults` asks for next.
fn random_fault(devices: &[String]) -> c2d_hub::Fault {
    use c2d_hub::{Fault, SendRefusal};
    let mut rng = rand::rng();
    let device = devices[rng.random_range(0..devices.len())].clone();
    match rng.random_range(0..6) {
        0 => Fault::Drop {
            device: Some(device),
            transport: None,
            polite: rng.random_bool(0.3),
        },
        1 => Fault::LoseAcks {
            device,
            count: rng.random_range(1..=3),
        },
        2 => Fault::StallStore {
            for_ms: rng.random_range(100..=1000),
        },
        3 => Fault::RefuseSends {
            error: if rng.random_bool(0.5) {
                SendRefusal::Throttled
            } else {
                SendRefusal::Busy
            },
            count: Some(rng.random_range(1..=5)),
            for_ms: None,
        },
        4 => Fault::Delay {
            device,
            delay_ms: rng.random_range(100..=500),
        },
        _ => Fault::ExpireLocks,
    }
}

/// A TCP proxy in front of one hub port that breaks its connections on demand.
struct Proxy {
    port: u16,
    connections: Arc<Mutex<Vec<watch::Sender<Fault>>>>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fault {
    None,
    /// Stop relaying for this long.
    Stall(Duration),
    /// Close both sides (FIN).
    Close,
    /// Reset both sides (RST).
    Reset,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let connections: Arc<Mutex<Vec<watch::Sender<Fault>>>> = Arc::default();
        let conns = connections.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (tx, rx) = watch::channel(Fault::None);
                conns.lock().unwrap_or_else(|e| e.into_inner()).push(tx);
                tokio::spawn(relay(client, upstream, rx));
            }
        });
        Ok(Proxy { port, connections })
    }

    /// Breaks one live connection at random; the kind of fault, if there was a connection.
    fn fault(&self) -> Option<&'static str> {
        let mut conns = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        conns.retain(|c| !c.is_closed());
        if conns.is_empty() {
            return None;
        }
        let mut rng = rand::rng();
        let i = rng.random_range(0..conns.len());
        let (fault, kind) = match rng.random_range(0..3) {
            0 => (Fault::Close, "close"),
            1 => (Fault::Reset, "reset"),
            _ => (
                Fault::Stall(Duration::from_millis(rng.random_range(500..5000))),
                "stall",
            ),
        };
        let _ = conns[i].send(fault);
        Some(kind)
    }
}

/// Relays one connection until both sides have closed or a fault ends it.
async fn relay(client: TcpStream, upstream: SocketAddr, faults: watch::Receiver<Fault>) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let up = pump(client_read, server_write, faults.clone());
    let down = pump(server_read, client_write, faults.clone());
    tokio::pin!(up, down);
    let (mut up_done, mut down_done) = (false, false);
    while !(up_done && down_done) {
        let broken = tokio::select! {
            halves = &mut up, if !up_done => { up_done = true; halves }
            halves = &mut down, if !down_done => { down_done = true; halves }
        };
        if let Some((read, write)) = broken {
            if *faults.borrow() == Fault::Reset {
                // SO_LINGER 0 on both sockets: closing them sends RST instead of FIN
                let _ = read.as_ref().set_zero_linger();
                let _ = write.as_ref().set_zero_linger();
            }
            // dropping everything closes both sockets
            return;
        }
    }
}

/// Copies one direction; on a close or reset fault gives its halves back to be dropped.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut faults: watch::Receiver<Fault>,
) -> Option<(
    tokio::net::tcp::OwnedReadHalf,
    tokio::net::tcp::OwnedWriteHalf,
)> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = tokio::select! {
            r = from.read(&mut buf) => match r {
                Ok(0) | Err(_) => {
                    let _ = to.shutdown().await;
                    return None;
                }
                Ok(n) => n,
            },
            changed = faults.changed() => {
                if changed.is_err() {
                    return None;
                }
                let fault = *faults.borrow_and_update();
                match fault {
                    Fault::Close | Fault::Reset => return Some((from, to)),
                    Fault::Stall(d) => {
                        tokio::time::sleep(d).await;
                    }
                    Fault::None => {}
                }
                continue;
            }
        };
        if to.write_all(&buf[..n]).await.is_err() {
            return None;
        }
    }
}
