//! The identity registry over HTTPS REST, as IoT Hub serves it: create,
//! get, list and delete devices, and purge a device's C2D queue.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::connection_string::{ConnectionString, Credential};
use crate::error::{Error, ErrorKind, Result};
use crate::sas;

/// The REST api-version c2d sends (the one the current service SDKs send).
pub const API_VERSION: &str = "2021-04-12";

/// How long the tokens this client makes are valid.
const TOKEN_TTL: Duration = Duration::from_secs(3600);

/// A device identity as the registry returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Device {
    /// The device id.
    pub device_id: String,
    /// Changes each time a device of this id is created.
    #[serde(default)]
    pub generation_id: String,
    /// The entity tag (base64 text).
    #[serde(default)]
    pub etag: String,
    /// `enabled` or `disabled`.
    #[serde(default = "enabled")]
    pub status: String,
    /// Why the device has its status.
    #[serde(default)]
    pub status_reason: Option<String>,
    /// `Connected` or `Disconnected`.
    #[serde(default = "disconnected")]
    pub connection_state: String,
    /// When the connection state last changed.
    #[serde(default)]
    pub connection_state_updated_time: Option<String>,
    /// When the status last changed.
    #[serde(default)]
    pub status_updated_time: Option<String>,
    /// When the device was last active.
    #[serde(default)]
    pub last_activity_time: Option<String>,
    /// How many C2D messages are queued for the device.
    #[serde(default)]
    pub cloud_to_device_message_count: u64,
    /// How the device authenticates.
    #[serde(default)]
    pub authentication: Authentication,
    /// Device capabilities.
    #[serde(default)]
    pub capabilities: Capabilities,
}

fn enabled() -> String {
    "enabled".into()
}
fn disconnected() -> String {
    "Disconnected".into()
}

/// A device's authentication mechanism.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Authentication {
    /// `sas`, `selfSigned`, `certificateAuthority` or `none`.
    #[serde(rename = "type", default = "sas_type")]
    pub kind: String,
    /// The symmetric keys, for `sas`.
    #[serde(default)]
    pub symmetric_key: SymmetricKey,
    /// The certificate thumbprints, for `selfSigned`.
    #[serde(default)]
    pub x509_thumbprint: X509Thumbprint,
}

fn sas_type() -> String {
    "sas".into()
}

impl Default for Authentication {
    fn default() -> Self {
        Authentication {
            kind: sas_type(),
            symmetric_key: SymmetricKey::default(),
            x509_thumbprint: X509Thumbprint::default(),
        }
    }
}

/// A device's two symmetric keys (base64).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SymmetricKey {
    /// The primary key.
    #[serde(default)]
    pub primary_key: Option<String>,
    /// The secondary key.
    #[serde(default)]
    pub secondary_key: Option<String>,
}

/// A device's X.509 thumbprints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct X509Thumbprint {
    /// The primary thumbprint.
    #[serde(default)]
    pub primary_thumbprint: Option<String>,
    /// The secondary thumbprint.
    #[serde(default)]
    pub secondary_thumbprint: Option<String>,
}

/// Device capabilities.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Capabilities {
    /// Whether the device is an IoT Edge device.
    #[serde(default)]
    pub iot_edge: bool,
}

impl Device {
    /// A request body for creating a SAS device whose keys the hub generates.
    pub fn new_sas(device_id: impl Into<String>) -> Self {
        Device {
            device_id: device_id.into(),
            generation_id: String::new(),
            etag: String::new(),
            status: enabled(),
            status_reason: None,
            connection_state: disconnected(),
            connection_state_updated_time: None,
            status_updated_time: None,
            last_activity_time: None,
            cloud_to_device_message_count: 0,
            authentication: Authentication::default(),
            capabilities: Capabilities::default(),
        }
    }

    /// A request body for creating an X.509 device known by its certificate's thumbprints
    /// (`selfSigned`; SHA-1 or SHA-256, hex).
    pub fn new_self_signed(
        device_id: impl Into<String>,
        primary_thumbprint: impl Into<String>,
        secondary_thumbprint: Option<String>,
    ) -> Self {
        let mut d = Device::new_sas(device_id);
        d.authentication.kind = "selfSigned".into();
        d.authentication.x509_thumbprint = X509Thumbprint {
            primary_thumbprint: Some(primary_thumbprint.into()),
            secondary_thumbprint,
        };
        d
    }

    /// A request body for creating an X.509 device whose certificate chains to a CA
    /// registered with the hub and names the device in its common name
    /// (`certificateAuthority`).
    pub fn new_certificate_authority(device_id: impl Into<String>) -> Self {
        let mut d = Device::new_sas(device_id);
        d.authentication.kind = "certificateAuthority".into();
        d
    }

    /// Whether the device authenticates with an X.509 certificate.
    pub fn is_x509(&self) -> bool {
        matches!(
            self.authentication.kind.as_str(),
            "selfSigned" | "certificateAuthority"
        )
    }

    /// The device connection string for this device on `host_name`: with its primary key, or
    /// `x509=true` for an X.509 device (whose client then needs its certificate).
    pub fn connection_string(&self, host_name: &str) -> Option<String> {
        if self.is_x509() {
            return Some(format!(
                "HostName={host_name};DeviceId={};x509=true",
                self.device_id
            ));
        }
        let key = self.authentication.symmetric_key.primary_key.as_deref()?;
        Some(format!(
            "HostName={host_name};DeviceId={};SharedAccessKey={key}",
            self.device_id
        ))
    }
}

/// A page of the registry's device ids ([`RegistryClient::device_ids_page`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceIdPage {
    /// The ids, in the hub's order.
    pub device_ids: Vec<String>,
    /// What asks for the next page (`None`: this was the last).
    pub continuation: Option<String>,
}

/// The answer to a purge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PurgeResult {
    /// How many messages were removed.
    pub total_messages_purged: u64,
    /// The device.
    pub device_id: String,
    /// The module, for module queues.
    #[serde(default)]
    pub module_id: Option<String>,
}

/// Options for [`RegistryClient`].
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// PEM certificates to trust instead of the system's roots (a local hub's dev CA).
    pub trusted_ca_pem: Option<Vec<u8>>,
    /// `host:port` to connect to instead of `HostName:443` (a hub on a non-standard port).
    pub endpoint: Option<String>,
    /// How long one request may take (30 s when unset).
    pub timeout: Option<Duration>,
    /// The HTTP proxy to reach the hub through (none when unset: the environment is not read).
    pub proxy: Option<crate::Proxy>,
}

/// A client of the registry REST API, authorized by a policy's key.
#[derive(Debug, Clone)]
pub struct RegistryClient {
    http: reqwest::Client,
    base_url: String,
    host_name: String,
    key_name: String,
    key: String,
}

impl RegistryClient {
    /// A client for the hub of a service connection string.
    pub fn new(connection_string: &str, options: RegistryOptions) -> Result<Self> {
        crate::tls::install_crypto_provider();
        let cs = ConnectionString::parse_service(connection_string)?;
        let (key_name, key) = match cs.credential {
            Credential::SharedAccessKey { key_name: Some(n), key } => (n, key),
            _ => {
                return Err(Error::invalid_argument(
                    "the registry needs a connection string with SharedAccessKeyName and SharedAccessKey",
                ))
            }
        };
        let tls = crate::transport::tls_config(options.trusted_ca_pem.as_deref())?;
        let http = crate::http::client(
            &tls,
            options.timeout.unwrap_or(Duration::from_secs(30)),
            options.proxy.as_ref(),
        )?;
        let endpoint = options.endpoint.unwrap_or_else(|| cs.host_name.clone());
        Ok(RegistryClient {
            http,
            base_url: format!("https://{endpoint}"),
            host_name: cs.host_name,
            key_name,
            key,
        })
    }

    fn token(&self) -> Result<String> {
        let expiry = (SystemTime::now() + TOKEN_TTL)
            .duration_since(UNIX_EPOCH)
            .map_err(|_| Error::new(ErrorKind::Internal, "the system clock is before 1970"))?
            .as_secs();
        sas::generate_token(&self.host_name, &self.key, Some(&self.key_name), expiry)
    }

    async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&impl Serialize>,
        if_match: bool,
    ) -> Result<reqwest::Response> {
        let url = format!("{}{}?api-version={API_VERSION}", self.base_url, path);
        let mut req = self
            .http
            .request(method, &url)
            .header("Authorization", self.token()?)
            .header("Accept", "application/json")
            .header("Request-Id", uuid::Uuid::new_v4().to_string());
        if if_match {
            req = req.header("If-Match", "\"*\"");
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| crate::http::request_error(&url, e))?;
        if resp.status().is_success() {
            Ok(resp)
        } else {
            Err(crate::http::status_error(resp).await)
        }
    }

    /// Registers a device with keys the hub generates, and returns it (with its keys).
    pub async fn create_device(&self, device_id: &str) -> Result<Device> {
        self.create_device_with(&Device::new_sas(device_id)).await
    }

    /// Registers a device as described (empty keys are generated by the hub).
    pub async fn create_device_with(&self, device: &Device) -> Result<Device> {
        check_id(&device.device_id)?;
        let path = format!("/devices/{}", sas::url_encode(&device.device_id));
        crate::http::json(
            self.request(reqwest::Method::PUT, &path, Some(device), false)
                .await?,
        )
        .await
    }

    /// Reads a device.
    pub async fn get_device(&self, device_id: &str) -> Result<Device> {
        check_id(device_id)?;
        let path = format!("/devices/{}", sas::url_encode(device_id));
        crate::http::json(
            self.request(reqwest::Method::GET, &path, None::<&()>, false)
                .await?,
        )
        .await
    }

    /// A page of every registered device's id, by IoT Hub's query of the device twins
    /// (`SELECT * FROM devices`, `POST /devices/query`): at most `page_size` ids, after those
    /// of the page whose `continuation` this is (`None`: the first page). `list_devices`
    /// stops at 1 000 devices; this goes through a registry of any size.
    pub async fn device_ids_page(
        &self,
        continuation: Option<&str>,
        page_size: u32,
    ) -> Result<DeviceIdPage> {
        let url = format!("{}/devices/query?api-version={API_VERSION}", self.base_url);
        let mut request = self
            .http
            .post(&url)
            .header("Authorization", self.token()?)
            .header("Content-Type", "application/json")
            .header("x-ms-max-item-count", page_size.to_string())
            .body(r#"{"query":"SELECT * FROM devices"}"#);
        if let Some(c) = continuation {
            request = request.header("x-ms-continuation", c);
        }
        let resp = request
            .send()
            .await
            .map_err(|e| crate::http::request_error(&url, e))?;
        if !resp.status().is_success() {
            return Err(crate::http::status_error(resp).await);
        }
        let continuation = resp
            .headers()
            .get("x-ms-continuation")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map(str::to_string);
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Twin {
            device_id: String,
        }
        let twins: Vec<Twin> = crate::http::json(resp).await?;
        Ok(DeviceIdPage {
            device_ids: twins.into_iter().map(|t| t.device_id).collect(),
            continuation,
        })
    }

    /// Lists devices (up to `top` of them).
    pub async fn list_devices(&self, top: u32) -> Result<Vec<Device>> {
        let url_path = "/devices";
        let url = format!(
            "{}{}?top={top}&api-version={API_VERSION}",
            self.base_url, url_path
        );
        let resp = self
            .http
            .get(&url)
            .header("Authorization", self.token()?)
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| crate::http::request_error(&url, e))?;
        if !resp.status().is_success() {
            return Err(crate::http::status_error(resp).await);
        }
        crate::http::json(resp).await
    }

    /// Deletes a device, and with it its C2D queue.
    pub async fn delete_device(&self, device_id: &str) -> Result<()> {
        check_id(device_id)?;
        let path = format!("/devices/{}", sas::url_encode(device_id));
        self.request(reqwest::Method::DELETE, &path, None::<&()>, true)
            .await?;
        Ok(())
    }

    /// Removes every message queued for a device.
    pub async fn purge_queue(&self, device_id: &str) -> Result<PurgeResult> {
        check_id(device_id)?;
        let path = format!("/devices/{}/commands", sas::url_encode(device_id));
        crate::http::json(
            self.request(reqwest::Method::DELETE, &path, None::<&()>, false)
                .await?,
        )
        .await
    }

    /// The hub's host name (from the connection string).
    pub fn host_name(&self) -> &str {
        &self.host_name
    }
}

fn check_id(id: &str) -> Result<()> {
    crate::identity::validate_id(id).map_err(Error::invalid_argument)
}
