//! Which hub a client command talks to. A connection string (flag or environment variable)
//! names one; without it the command uses the local hub whose data directory is
//! `$C2D_HUB_DIR`, else `./.c2d-hub`: its owner policy, its CA and the ports the running hub
//! wrote to `endpoints.json`, the way a database's command line finds the server on its
//! default socket.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use c2d::{RegistryClient, RegistryOptions};
use serde::{Deserialize, Serialize};

/// The environment variable naming the local hub's data directory.
pub const HUB_DIR_ENV: &str = "C2D_HUB_DIR";
/// The local hub's data directory when [`HUB_DIR_ENV`] is unset.
pub const DEFAULT_HUB_DIR: &str = ".c2d-hub";
/// File in the data directory where a running hub records its host name and ports.
pub const ENDPOINTS_FILE: &str = "endpoints.json";
/// How long a listener of a local hub may take to accept a connection before the hub is taken
/// for not running.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Where a hub listens, as `c2d hub` writes it to its data directory when it starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoints {
    /// `HostName=` of the hub's connection strings.
    pub hostname: String,
    /// MQTT over TLS.
    pub mqtt_port: u16,
    /// AMQP over TLS.
    pub amqp_port: u16,
    /// HTTPS (REST and WebSockets).
    pub https_port: u16,
}

impl Default for Endpoints {
    /// IoT Hub's own ports.
    fn default() -> Endpoints {
        Endpoints {
            hostname: "localhost".into(),
            mqtt_port: 8883,
            amqp_port: 5671,
            https_port: 443,
        }
    }
}

impl Endpoints {
    /// The endpoints a hub recorded in `data_dir`, if it has ever run there.
    pub fn read(data_dir: &Path) -> Result<Option<Endpoints>> {
        let path = data_dir.join(ENDPOINTS_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .with_context(|| format!("reading {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Records these endpoints in `data_dir`, whole: a reader never sees half a file.
    pub fn write(&self, data_dir: &Path) -> Result<()> {
        let part = data_dir.join(format!("{ENDPOINTS_FILE}.part"));
        std::fs::write(&part, serde_json::to_string(self)?)
            .and_then(|()| std::fs::rename(&part, data_dir.join(ENDPOINTS_FILE)))
            .context("writing the endpoints file")
    }

    /// `host:port` of the REST API.
    pub fn https_endpoint(&self) -> String {
        format!("{}:{}", self.hostname, self.https_port)
    }
}

/// The data directory of the local hub client commands use.
pub fn local_hub_dir() -> PathBuf {
    std::env::var_os(HUB_DIR_ENV)
        .filter(|d| !d.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_HUB_DIR), PathBuf::from)
}

/// A running local hub, found through its data directory.
struct RunningHub {
    endpoints: Endpoints,
    owner_connection_string: String,
    ca_file: PathBuf,
}

/// Finds the running local hub, or says why there is none and how to fix it.
/// `instead` is the other way: the connection string option the command was not given.
async fn find_local_hub(instead: &str) -> Result<RunningHub> {
    let dir = local_hub_dir();
    let start = format!("`c2d hub --data-dir {}`", dir.display());
    let Some(endpoints) = Endpoints::read(&dir)? else {
        if dir.join(c2d_hub::store::DB_FILE).is_file() {
            bail!(
                "no hub to connect to: {instead}, or start the local hub in {} with {start} (it \
                 has never run)",
                dir.display()
            );
        }
        bail!(
            "no hub to connect to: {instead}, or start a local hub with `c2d hub` (there is none \
             in {}; {HUB_DIR_ENV} names another data directory)",
            dir.display()
        );
    };
    let summary = c2d_hub::store::read_summary(&dir, &endpoints.hostname)
        .with_context(|| format!("reading the local hub in {}", dir.display()))?
        .with_context(|| format!("{} holds no hub database", dir.display()))?;
    let owner_connection_string = summary.connection_string("iothubowner").with_context(|| {
        format!(
            "the local hub in {} has no iothubowner policy",
            dir.display()
        )
    })?;
    for port in [
        endpoints.mqtt_port,
        endpoints.amqp_port,
        endpoints.https_port,
    ] {
        let address = format!("{}:{port}", endpoints.hostname);
        let probe = tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(&address));
        if !matches!(probe.await, Ok(Ok(_))) {
            bail!(
                "no hub is listening at {address} (the local hub in {} is not running): start \
                 it with {start}, or {instead}",
                dir.display()
            );
        }
    }
    eprintln!(
        "c2d: using the local hub in {} ({}: MQTT {}, AMQP {}, HTTPS {})",
        dir.display(),
        endpoints.hostname,
        endpoints.mqtt_port,
        endpoints.amqp_port,
        endpoints.https_port
    );
    Ok(RunningHub {
        endpoints,
        owner_connection_string,
        ca_file: summary.ca_file,
    })
}

/// The running local hub's admin endpoint: its HTTPS address, its CA and the page's token
/// (the only credential `/admin/faults` takes).
pub async fn local_hub_admin() -> Result<(Endpoints, Vec<u8>, String)> {
    let hub = find_local_hub("this command works on the local hub only").await?;
    let dir = local_hub_dir();
    let token = c2d_hub::data_dir::read_token(&dir)
        .with_context(|| format!("{} holds no page token", dir.display()))?;
    Ok((hub.endpoints, read_ca(&hub.ca_file)?, token))
}

fn read_ca(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// What a service command connects with.
pub struct ServiceTarget {
    /// A policy's connection string.
    pub connection_string: String,
    /// The CA to trust instead of the system's roots.
    pub trusted_ca_pem: Option<Vec<u8>>,
    /// The listeners of the local hub, when the target is one.
    pub endpoints: Option<Endpoints>,
}

impl ServiceTarget {
    /// The given connection string, else the running local hub's owner policy. A CA file
    /// given explicitly is trusted either way; a local hub's own CA otherwise.
    pub async fn resolve(connection_string: Option<&str>, ca_file: Option<&Path>) -> Result<Self> {
        let explicit_ca = ca_file.map(read_ca).transpose()?;
        if let Some(cs) = connection_string {
            return Ok(ServiceTarget {
                connection_string: cs.to_string(),
                trusted_ca_pem: explicit_ca,
                endpoints: None,
            });
        }
        let hub =
            find_local_hub("give --connection-string (or set IOTHUB_SERVICE_CONNECTION_STRING)")
                .await?;
        Ok(ServiceTarget {
            connection_string: hub.owner_connection_string,
            trusted_ca_pem: Some(match explicit_ca {
                Some(ca) => ca,
                None => read_ca(&hub.ca_file)?,
            }),
            endpoints: Some(hub.endpoints),
        })
    }

    /// A registry client; `endpoint` (`host:port`) overrides the local hub's.
    pub fn registry(&self, endpoint: Option<String>) -> Result<RegistryClient> {
        Ok(RegistryClient::new(
            &self.connection_string,
            RegistryOptions {
                trusted_ca_pem: self.trusted_ca_pem.clone(),
                endpoint: endpoint
                    .or_else(|| self.endpoints.as_ref().map(Endpoints::https_endpoint)),
                timeout: None,
                proxy: None,
            },
        )?)
    }
}

/// What `c2d receive` connects with.
pub struct DeviceTarget {
    /// The device's connection string.
    pub connection_string: String,
    /// The CA to trust instead of the system's roots.
    pub trusted_ca_pem: Option<Vec<u8>>,
    /// The listeners of the local hub, when the target is one.
    pub endpoints: Option<Endpoints>,
}

impl DeviceTarget {
    /// The given device connection string; else the connection string of `device` as the
    /// registry has it, of the hub IOTHUB_SERVICE_CONNECTION_STRING names or of the local hub.
    pub async fn resolve(
        connection_string: Option<&str>,
        device: Option<&str>,
        ca_file: Option<&Path>,
    ) -> Result<Self> {
        if let Some(cs) = connection_string {
            return Ok(DeviceTarget {
                connection_string: cs.to_string(),
                trusted_ca_pem: ca_file.map(read_ca).transpose()?,
                endpoints: None,
            });
        }
        let Some(device) = device else {
            bail!(
                "no device to receive as: give --device ID (a device of the local hub in {}, or \
                 of the hub IOTHUB_SERVICE_CONNECTION_STRING names), or --connection-string, or \
                 set IOTHUB_DEVICE_CONNECTION_STRING",
                local_hub_dir().display()
            );
        };
        let service_cs = std::env::var("IOTHUB_SERVICE_CONNECTION_STRING")
            .ok()
            .filter(|s| !s.is_empty());
        let service = ServiceTarget::resolve(service_cs.as_deref(), ca_file).await?;
        let registry = service.registry(None)?;
        let found = registry.get_device(device).await?;
        let connection_string =
            found
                .connection_string(registry.host_name())
                .with_context(|| {
                    format!("device {device} has no SAS key: give its connection string")
                })?;
        Ok(DeviceTarget {
            connection_string,
            trusted_ca_pem: service.trusted_ca_pem,
            endpoints: service.endpoints,
        })
    }
}
