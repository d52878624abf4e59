//! A `c2d hub` child process, for the runs that measure the hub (`c2d bench`) or kill it
//! (`c2d soak`): its CPU time and memory are its own, and it can be killed and restarted.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::target::ENDPOINTS_FILE;

/// The hub's ports: MQTT, AMQP, HTTPS (0: any free port).
pub type Ports = [u16; 3];

/// A running `c2d hub`, killed when dropped.
pub struct HubProcess {
    process: Child,
    /// What `c2d hub info --json` prints: connection strings, CA file, ports.
    pub info: serde_json::Value,
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

impl HubProcess {
    /// Starts `c2d hub` on `dir` with `ports` and `args`, and waits until it serves.
    pub fn start(dir: &Path, ports: Ports, args: &[&str]) -> Result<HubProcess> {
        let endpoints = dir.join(ENDPOINTS_FILE);
        // left by a hub that was killed: the new one writes its own once it listens
        let _ = std::fs::remove_file(&endpoints);
        let exe = std::env::current_exe().context("finding the c2d executable")?;
        let [mqtt, amqp, https] = ports.map(|p| p.to_string());
        let process = Command::new(exe)
            .args(["hub", "--mqtt-port", &mqtt, "--amqp-port", &amqp])
            .args(["--https-port", &https])
            .args(args)
            .arg("--data-dir")
            .arg(dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting `c2d hub`")?;
        let mut hub = HubProcess {
            process,
            info: serde_json::Value::Null,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !endpoints.exists() {
            if let Some(status) = hub.process.try_wait()? {
                bail!("the hub exited at start ({status})");
            }
            if Instant::now() > deadline {
                bail!("the hub did not start within 30 s");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        hub.info = crate::hub::hub_info(dir)?;
        Ok(hub)
    }

    /// Kills the hub at once (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }

    /// The hub's iothubowner connection string.
    pub fn owner(&self) -> Result<String> {
        Ok(self.info["iothubowner_connection_string"]
            .as_str()
            .context("the hub has no iothubowner policy")?
            .to_string())
    }

    /// The hub's development CA (PEM).
    pub fn ca(&self) -> Result<Vec<u8>> {
        let file = self.info["ca_file"]
            .as_str()
            .context("the hub has no CA file")?;
        std::fs::read(file).with_context(|| format!("reading {file}"))
    }

    /// A port of the hub's, by `hub info` key (`mqtt_port`, `amqp_port`, `https_port`).
    pub fn port(&self, key: &str) -> Option<u16> {
        self.info[key].as_u64().and_then(|p| u16::try_from(p).ok())
    }

    /// A memory figure of /proc/PID/status (`VmRSS`, `VmHWM`), in bytes.
    fn memory(&self, field: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.process.id())).ok()?;
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?
            .trim()
            .trim_end_matches(" kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib * 1024)
    }

    /// Resident memory now, in bytes.
    pub fn rss(&self) -> Option<u64> {
        self.memory("VmRSS")
    }

    /// CPU seconds (user + system) and peak resident memory in bytes, from /proc.
    pub fn usage(&self) -> Option<(f64, u64)> {
        let pid = self.process.id();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // fields after the command name (which may hold spaces) start at ") "
        let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split(' ').collect();
        let ticks: f64 =
            fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        // USER_HZ is 100 on Linux
        Some((ticks / 100.0, self.memory("VmHWM")?))
    }
}
