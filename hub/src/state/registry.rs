//! The identity registry: devices and shared access policies.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use c2d::service::registry::SymmetricKey;
use c2d::Device;
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// What a shared access policy grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Rights(u8);

impl Rights {
    /// Read the identity registry.
    pub const REGISTRY_READ: Rights = Rights(1);
    /// Read and write the identity registry.
    pub const REGISTRY_WRITE: Rights = Rights(2);
    /// Send C2D messages, read feedback: the service-facing endpoints.
    pub const SERVICE_CONNECT: Rights = Rights(4);
    /// The device-facing endpoints, acting for any device.
    pub const DEVICE_CONNECT: Rights = Rights(8);
    /// Every right.
    pub const ALL: Rights = Rights(15);

    /// Whether every right of `other` is granted.
    pub fn contains(self, other: Rights) -> bool {
        self.0 & other.0 == other.0
    }

    /// The union of two sets of rights.
    pub const fn with(self, other: Rights) -> Rights {
        Rights(self.0 | other.0)
    }

    /// The rights as stored: RegistryRead 1, RegistryWrite 2, ServiceConnect 4, DeviceConnect 8.
    pub fn bits(self) -> u8 {
        self.0
    }

    /// Rights from their stored bits (unknown bits are dropped).
    pub fn from_bits(bits: u8) -> Rights {
        Rights(bits & Rights::ALL.0)
    }

    /// Names of the rights, as IoT Hub spells them.
    pub fn names(self) -> Vec<&'static str> {
        [
            (Rights::REGISTRY_READ, "RegistryRead"),
            (Rights::REGISTRY_WRITE, "RegistryWrite"),
            (Rights::SERVICE_CONNECT, "ServiceConnect"),
            (Rights::DEVICE_CONNECT, "DeviceConnect"),
        ]
        .into_iter()
        .filter(|(r, _)| self.contains(*r))
        .map(|(_, n)| n)
        .collect()
    }
}

/// A hub-level shared access policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// The policy name (`SharedAccessKeyName`).
    pub name: String,
    /// Primary key, base64.
    pub primary_key: String,
    /// Secondary key, base64.
    pub secondary_key: String,
    /// What the policy grants.
    pub rights: Rights,
}

impl Policy {
    /// The connection string of this policy on the hub `host_name`.
    pub fn connection_string(&self, host_name: &str) -> String {
        format!(
            "HostName={host_name};SharedAccessKeyName={};SharedAccessKey={}",
            self.name, self.primary_key
        )
    }
}

/// The policies a new hub gets, as IoT Hub creates them.
pub fn default_policies() -> Vec<Policy> {
    [
        ("iothubowner", Rights::ALL),
        ("service", Rights::SERVICE_CONNECT),
        ("device", Rights::DEVICE_CONNECT),
        ("registryRead", Rights::REGISTRY_READ),
        (
            "registryReadWrite",
            Rights::REGISTRY_READ.with(Rights::REGISTRY_WRITE),
        ),
    ]
    .into_iter()
    .map(|(name, rights)| Policy {
        name: name.to_string(),
        primary_key: generate_key(),
        secondary_key: generate_key(),
        rights,
    })
    .collect()
}

/// A random 32-byte key, base64.
pub fn generate_key() -> String {
    let mut k = [0u8; 32];
    rand::rng().fill_bytes(&mut k);
    BASE64.encode(k)
}

/// Why a registry operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// No such device (404001).
    #[error("device '{0}' is not registered")]
    DeviceNotFound(String),
    /// The device exists already (409001).
    #[error("a device with id '{0}' is already registered")]
    DeviceAlreadyExists(String),
    /// The If-Match etag is not the device's (412001).
    #[error("the etag does not match device '{0}'")]
    PreconditionFailed(String),
    /// The request is malformed (400004).
    #[error("{0}")]
    Invalid(String),
}

/// Devices and policies.
#[derive(Debug, Default, Clone)]
pub struct Registry {
    pub(crate) devices: BTreeMap<String, Device>,
    pub(crate) policies: BTreeMap<String, Policy>,
}

const NEVER: &str = "0001-01-01T00:00:00Z";

impl Registry {
    /// A device by id.
    pub fn device(&self, id: &str) -> Option<&Device> {
        self.devices.get(id)
    }

    /// A policy by name.
    pub fn policy(&self, name: &str) -> Option<&Policy> {
        self.policies.get(name)
    }

    /// The devices whose ids come after `after` (all of them without), in id order.
    pub fn devices_after<'a>(&'a self, after: Option<&str>) -> impl Iterator<Item = &'a Device> {
        use std::ops::Bound;
        let from = match after {
            Some(id) => Bound::Excluded(id.to_string()),
            None => Bound::Unbounded,
        };
        self.devices.range((from, Bound::Unbounded)).map(|(_, d)| d)
    }

    /// All devices, by id.
    pub fn devices(&self) -> impl Iterator<Item = &Device> {
        self.devices.values()
    }

    /// Creates (no `if_match`) or updates (`if_match` = `*` or the etag) a device.
    pub fn put_device(
        &mut self,
        id: &str,
        mut body: Device,
        if_match: Option<&str>,
        now: SystemTime,
    ) -> Result<Device, RegistryError> {
        c2d::identity::validate_id(id).map_err(RegistryError::Invalid)?;
        if body.device_id.is_empty() {
            body.device_id = id.to_string();
        }
        if body.device_id != id {
            return Err(RegistryError::Invalid(format!(
                "the body's deviceId '{}' is not the path's '{id}'",
                body.device_id
            )));
        }
        let status = body.status.to_ascii_lowercase();
        if status != "enabled" && status != "disabled" {
            return Err(RegistryError::Invalid(format!(
                "status must be enabled or disabled, not '{}'",
                body.status
            )));
        }
        let auth = &mut body.authentication;
        match auth.kind.as_str() {
            "sas" => {
                let keys = &mut auth.symmetric_key;
                fill_key(&mut keys.primary_key)?;
                fill_key(&mut keys.secondary_key)?;
            }
            "selfSigned" => {
                auth.symmetric_key = SymmetricKey::default();
                let t = &mut auth.x509_thumbprint;
                // IoT Hub's SDKs send empty strings for a missing secondary
                for slot in [&mut t.primary_thumbprint, &mut t.secondary_thumbprint] {
                    if slot.as_deref().is_some_and(|s| s.trim().is_empty()) {
                        *slot = None;
                    }
                    if let Some(text) = slot.as_deref() {
                        *slot = Some(normalize_thumbprint(text).map_err(RegistryError::Invalid)?);
                    }
                }
                if t.primary_thumbprint.is_none() && t.secondary_thumbprint.is_none() {
                    return Err(RegistryError::Invalid(
                        "a selfSigned device needs a primary or secondary thumbprint".into(),
                    ));
                }
            }
            "none" | "certificateAuthority" => {
                auth.symmetric_key = SymmetricKey::default();
                auth.x509_thumbprint = Default::default();
            }
            other => {
                return Err(RegistryError::Invalid(format!(
                    "unknown authentication type '{other}'"
                )))
            }
        }
        let existing = self.devices.get(id);
        match (existing, if_match) {
            (Some(_), None) => return Err(RegistryError::DeviceAlreadyExists(id.to_string())),
            (None, Some(_)) => return Err(RegistryError::DeviceNotFound(id.to_string())),
            (Some(d), Some(tag)) => {
                let tag = tag.trim().trim_matches('"');
                if tag != "*" && tag != d.etag {
                    return Err(RegistryError::PreconditionFailed(id.to_string()));
                }
            }
            (None, None) => {}
        }
        let version = existing.map_or(1, |d| etag_version(&d.etag) + 1);
        let generation_id =
            existing.map_or_else(|| generation_id(now), |d| d.generation_id.clone());
        let status_changed = existing.is_none_or(|d| d.status != status);
        let mut device = body;
        device.status = status;
        device.generation_id = generation_id;
        device.etag = BASE64.encode(version.to_string());
        device.connection_state = "Disconnected".into();
        let stamp = c2d::timestamp::format_utc(now);
        device.status_updated_time = Some(if status_changed {
            stamp
        } else {
            existing
                .and_then(|d| d.status_updated_time.clone())
                .unwrap_or_else(|| NEVER.into())
        });
        device
            .connection_state_updated_time
            .get_or_insert_with(|| NEVER.into());
        device
            .last_activity_time
            .get_or_insert_with(|| NEVER.into());
        device.cloud_to_device_message_count = 0;
        self.devices.insert(id.to_string(), device.clone());
        Ok(device)
    }

    /// Removes a device (`if_match` = `*`, the etag, or none).
    pub fn delete_device(
        &mut self,
        id: &str,
        if_match: Option<&str>,
    ) -> Result<Device, RegistryError> {
        let d = self
            .devices
            .get(id)
            .ok_or_else(|| RegistryError::DeviceNotFound(id.to_string()))?;
        if let Some(tag) = if_match {
            let tag = tag.trim().trim_matches('"');
            if tag != "*" && tag != d.etag {
                return Err(RegistryError::PreconditionFailed(id.to_string()));
            }
        }
        Ok(self.devices.remove(id).expect("checked above"))
    }
}

fn fill_key(key: &mut Option<String>) -> Result<(), RegistryError> {
    match key.as_deref() {
        None | Some("") => *key = Some(generate_key()),
        Some(k) => {
            let len = BASE64.decode(k).map(|b| b.len()).unwrap_or(0);
            if !(16..=64).contains(&len) {
                return Err(RegistryError::Invalid(
                    "a symmetric key must be base64 of 16 to 64 bytes".into(),
                ));
            }
        }
    }
    Ok(())
}

fn etag_version(etag: &str) -> u64 {
    BASE64
        .decode(etag)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// An 18-digit generation id: .NET ticks of the creation time, as IoT Hub's look.
fn generation_id(now: SystemTime) -> String {
    const TICKS_AT_UNIX_EPOCH: u128 = 621_355_968_000_000_000;
    let nanos = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    (TICKS_AT_UNIX_EPOCH + nanos / 100).to_string()
}

/// Checks a registered thumbprint: 40 (SHA-1) or 64 (SHA-256) hex digits; returns it upper
/// case (colons and spaces, as some tools print them, are dropped).
pub fn normalize_thumbprint(text: &str) -> Result<String, String> {
    let t: String = text
        .chars()
        .filter(|c| *c != ':' && !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    if (t.len() == 40 || t.len() == 64) && t.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(t)
    } else {
        Err(format!(
            "thumbprint '{text}' is not 40 (SHA-1) or 64 (SHA-256) hex digits"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_generates_keys_and_refuses_duplicates() {
        let mut r = Registry::default();
        let now = SystemTime::now();
        let d = r
            .put_device("d1", Device::new_sas("d1"), None, now)
            .unwrap();
        assert_eq!(d.generation_id.len(), 18);
        assert_eq!(d.etag, "MQ==");
        assert!(d.authentication.symmetric_key.primary_key.is_some());
        assert_eq!(
            r.put_device("d1", Device::new_sas("d1"), None, now),
            Err(RegistryError::DeviceAlreadyExists("d1".into()))
        );
        let updated = r.put_device("d1", d.clone(), Some("\"*\""), now).unwrap();
        assert_eq!(updated.etag, "Mg==");
        assert_eq!(updated.generation_id, d.generation_id);
        assert!(matches!(
            r.delete_device("d1", Some("\"MQ==\"")),
            Err(RegistryError::PreconditionFailed(_))
        ));
        assert!(r.delete_device("d1", Some("\"*\"")).is_ok());
        assert!(matches!(
            r.delete_device("d1", None),
            Err(RegistryError::DeviceNotFound(_))
        ));
    }

    #[test]
    fn bad_bodies_are_invalid() {
        let mut r = Registry::default();
        let now = SystemTime::now();
        assert!(matches!(
            r.put_device("a/b", Device::new_sas("a/b"), None, now),
            Err(RegistryError::Invalid(_))
        ));
        assert!(matches!(
            r.put_device("a", Device::new_sas("b"), None, now),
            Err(RegistryError::Invalid(_))
        ));
        let mut bad_key = Device::new_sas("a");
        bad_key.authentication.symmetric_key.primary_key = Some("short".into());
        assert!(matches!(
            r.put_device("a", bad_key, None, now),
            Err(RegistryError::Invalid(_))
        ));
    }
}
