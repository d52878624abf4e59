//! `c2d hub fault …`: faults on demand in the running local hub (`./.c2d-hub` or
//! `$C2D_HUB_DIR`), through its admin endpoint (`/admin/faults` on the HTTPS port, opened by
//! the page's token only). `c2d soak --chaos faults` drives the same endpoint.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use c2d_hub::{Fault, SendRefusal};
use clap::{Args, Subcommand};
use serde_json::Value;

use crate::messaging::TransportArg;
use crate::target::Endpoints;

/// `c2d hub fault`.
#[derive(Args)]
pub struct FaultArgs {
    #[command(subcommand)]
    action: FaultAction,
    /// Print the hub's answer as JSON.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum FaultAction {
    /// Drop a device's connections (or every connection over a transport) now, the way a
    /// network drop looks: no DISCONNECT or close frame. The devices reconnect by themselves.
    Drop {
        /// The device.
        #[arg(long, required_unless_present = "transport")]
        device: Option<String>,
        /// Every device connection over this transport.
        #[arg(long, value_enum)]
        transport: Option<TransportArg>,
        /// Close with the protocol's close (AMQP close, TLS close_notify) instead.
        #[arg(long)]
        polite: bool,
    },
    /// Lose the device's next acknowledgements: each message stays locked until its lock runs
    /// out, then comes again (what a lost PUBACK does).
    LoseAcks {
        /// The device.
        #[arg(long)]
        device: String,
        /// How many.
        #[arg(long, default_value_t = 1)]
        count: u32,
    },
    /// Delay every delivery to the device (until `c2d hub fault clear`; 0s ends it).
    Delay {
        /// The device.
        #[arg(long)]
        device: String,
        /// By how long (e.g. 2s, 500ms).
        #[arg(long = "for", value_name = "DELAY", value_parser = humantime::parse_duration)]
        delay: Duration,
    },
    /// Stall the store's commits, as a slow disk would: sends wait (unless their device
    /// completes them first), nothing is lost.
    StallStore {
        /// How long (e.g. 2s).
        #[arg(long = "for", value_name = "DURATION", value_parser = humantime::parse_duration)]
        duration: Duration,
    },
    /// Refuse C2D sends with one of IoT Hub's errors: the next --count, or all for --for.
    RefuseSends {
        /// throttled (429001), busy (503001) or quota (403002).
        #[arg(long, value_parser = |s: &str| s.parse::<SendRefusal>())]
        error: SendRefusal,
        /// How many sends.
        #[arg(
            long,
            required_unless_present = "duration",
            conflicts_with = "duration"
        )]
        count: Option<u32>,
        /// For how long (e.g. 10s).
        #[arg(long = "for", value_name = "DURATION", value_parser = humantime::parse_duration)]
        duration: Option<Duration>,
    },
    /// End every message lock now: the messages come again.
    ExpireLocks,
    /// End every fault in force.
    Clear,
    /// List the faults in force.
    List,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A hub's admin endpoint.
pub struct Admin {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Admin {
    /// The admin endpoint of the hub at `endpoints`, trusting `ca_pem`, with the page's token.
    pub fn new(endpoints: &Endpoints, ca_pem: &[u8], token: String) -> Result<Admin> {
        let mut tls = (*c2d::tls::client_config_trusting(ca_pem)?).clone();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(Duration::from_secs(10))
            .no_proxy()
            .build()
            .context("building the HTTP client")?;
        Ok(Admin {
            http,
            url: format!("https://{}/admin/faults", endpoints.https_endpoint()),
            token,
        })
    }

    async fn answer(resp: reqwest::Response) -> Result<Value> {
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            let why = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_string))
                .unwrap_or(text);
            bail!("the hub refused the fault ({status}): {why}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Sends `req` with the page's token: the hub's answer.
    async fn call(&self, req: reqwest::RequestBuilder) -> Result<Value> {
        let resp = req
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("reaching {}", self.url))?;
        Self::answer(resp).await
    }

    /// Applies `fault`: the hub's answer (`{"fault", "affected"}`).
    pub async fn apply(&self, fault: &Fault) -> Result<Value> {
        self.call(self.http.post(&self.url).json(fault)).await
    }

    /// The faults in force (`{"faults": [...], "acks_lost": n}`).
    pub async fn list(&self) -> Result<Value> {
        self.call(self.http.get(&self.url)).await
    }

    /// Ends every fault.
    pub async fn clear(&self) -> Result<()> {
        self.call(self.http.delete(&self.url)).await.map(drop)
    }
}

pub async fn run(a: FaultArgs) -> Result<()> {
    let (endpoints, ca, token) = crate::target::local_hub_admin().await?;
    let admin = Admin::new(&endpoints, &ca, token)?;
    let fault = match a.action {
        FaultAction::Clear => {
            admin.clear().await?;
            println!("every fault cleared");
            return Ok(());
        }
        FaultAction::List => {
            let listed = admin.list().await?;
            if a.json {
                println!("{listed}");
                return Ok(());
            }
            let faults = listed["faults"].as_array().cloned().unwrap_or_default();
            if faults.is_empty() {
                println!("no fault in force");
            }
            for f in faults {
                println!("{}", describe(&f));
            }
            println!(
                "acknowledgements lost so far: {}",
                listed["acks_lost"].as_u64().unwrap_or(0)
            );
            return Ok(());
        }
        FaultAction::Drop {
            device,
            transport,
            polite,
        } => Fault::Drop {
            device,
            transport: transport.map(|t| c2d::Transport::from(t).as_str().to_string()),
            polite,
        },
        FaultAction::LoseAcks { device, count } => Fault::LoseAcks { device, count },
        FaultAction::Delay { device, delay } => Fault::Delay {
            device,
            delay_ms: millis(delay),
        },
        FaultAction::StallStore { duration } => Fault::StallStore {
            for_ms: millis(duration),
        },
        FaultAction::RefuseSends {
            error,
            count,
            duration,
        } => Fault::RefuseSends {
            error,
            count,
            for_ms: duration.map(millis),
        },
        FaultAction::ExpireLocks => Fault::ExpireLocks,
    };
    let answer = admin.apply(&fault).await?;
    if a.json {
        println!("{answer}");
        return Ok(());
    }
    let affected = answer["affected"].as_u64().unwrap_or(0);
    match &fault {
        Fault::Drop { polite, .. } => println!(
            "{} {affected} connection(s)",
            if *polite { "closed" } else { "dropped" }
        ),
        Fault::ExpireLocks => println!("ended {affected} lock(s)"),
        other => println!(
            "{}",
            describe(&serde_json::to_value(other).unwrap_or_default())
        ),
    }
    Ok(())
}

/// A fault in force, in words.
fn describe(f: &Value) -> String {
    let device = f["device"].as_str().unwrap_or("");
    match f["fault"].as_str().unwrap_or("") {
        "lose-acks" => format!(
            "losing the next {} acknowledgement(s) of {device}",
            f["count"]
        ),
        "delay" => format!(
            "delaying every delivery to {device} by {} ms",
            f["delay_ms"]
        ),
        "stall-store" => format!("store commits stalled for {} ms more", f["for_ms"]),
        "refuse-sends" => match f["count"].as_u64() {
            Some(n) => format!(
                "refusing the next {n} send(s) as {}",
                f["error"].as_str().unwrap_or("")
            ),
            None => format!(
                "refusing sends as {} for {} ms more",
                f["error"].as_str().unwrap_or(""),
                f["for_ms"]
            ),
        },
        other => other.to_string(),
    }
}
