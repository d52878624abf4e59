//! Azure IoT Hub connection strings: `Key=Value` pairs separated by `;`.
//!
//! Each pair is split at its **first** `=` (base64 keys end in `=`). Keys are case-sensitive,
//! unknown and duplicate keys are refused, and the set of keys must form a device, module or
//! service connection string.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// The keys a connection string may carry, in the order they are written back.
const KNOWN_KEYS: [&str; 8] = [
    "HostName",
    "DeviceId",
    "ModuleId",
    "SharedAccessKeyName",
    "SharedAccessKey",
    "SharedAccessSignature",
    "GatewayHostName",
    "x509",
];

/// How the connection string authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A base64 symmetric key (device key, or a policy key with `key_name`).
    SharedAccessKey {
        /// The policy name (`SharedAccessKeyName`), if the key is a hub policy's.
        key_name: Option<String>,
        /// The base64 key as written.
        key: String,
    },
    /// A ready-made `SharedAccessSignature sr=…` token; it cannot be renewed.
    SharedAccessSignature(String),
    /// X.509 client certificate authentication (`x509=true`).
    X509,
}

/// A parsed connection string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionString {
    /// `HostName`: the hub's fully qualified name, used in SAS resources and link addresses.
    pub host_name: String,
    /// `DeviceId`, for device and module connection strings.
    pub device_id: Option<String>,
    /// `ModuleId`, for module connection strings.
    pub module_id: Option<String>,
    /// `GatewayHostName`: where the TLS connection goes, when it is not `HostName`.
    pub gateway_host_name: Option<String>,
    /// How the connection authenticates.
    pub credential: Credential,
}

/// Which kind of identity a connection string names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionStringKind {
    /// `HostName;DeviceId;…`
    Device,
    /// `HostName;DeviceId;ModuleId;…`
    Module,
    /// `HostName;SharedAccessKeyName;SharedAccessKey` (or a hub-scoped signature).
    Service,
}

impl ConnectionString {
    /// Parses a connection string of any kind.
    pub fn parse(s: &str) -> Result<Self> {
        let mut values: [Option<String>; KNOWN_KEYS.len()] = Default::default();
        for part in s.trim().split(';') {
            if part.trim().is_empty() {
                continue;
            }
            let (key, value) = part.split_once('=').ok_or_else(|| {
                Error::invalid_argument(format!(
                    "connection string: '{part}' is not of the form Key=Value"
                ))
            })?;
            let key = key.trim();
            let index = KNOWN_KEYS.iter().position(|k| *k == key).ok_or_else(|| {
                Error::invalid_argument(format!(
                    "connection string: unknown key '{key}' (keys are case-sensitive: {})",
                    KNOWN_KEYS.join(", ")
                ))
            })?;
            if values[index].is_some() {
                return Err(Error::invalid_argument(format!(
                    "connection string: key '{key}' appears twice"
                )));
            }
            if value.is_empty() {
                return Err(Error::invalid_argument(format!(
                    "connection string: key '{key}' has an empty value"
                )));
            }
            values[index] = Some(value.to_string());
        }
        let [host_name, device_id, module_id, key_name, key, signature, gateway_host_name, x509] =
            values;
        let host_name = host_name
            .ok_or_else(|| Error::invalid_argument("connection string: HostName is missing"))?;
        if module_id.is_some() && device_id.is_none() {
            return Err(Error::invalid_argument(
                "connection string: ModuleId needs a DeviceId",
            ));
        }
        if device_id.is_none() && gateway_host_name.is_some() {
            return Err(Error::invalid_argument(
                "connection string: GatewayHostName belongs to device connection strings",
            ));
        }
        let x509 = match x509.as_deref() {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(v) => {
                return Err(Error::invalid_argument(format!(
                    "connection string: x509 must be true or false, not '{v}'"
                )))
            }
        };
        let schemes =
            usize::from(key.is_some()) + usize::from(signature.is_some()) + usize::from(x509);
        if schemes != 1 {
            return Err(Error::invalid_argument(
                "connection string: exactly one of SharedAccessKey, SharedAccessSignature or x509=true is needed",
            ));
        }
        let credential = if let Some(key) = key {
            Credential::SharedAccessKey { key_name, key }
        } else if key_name.is_some() {
            return Err(Error::invalid_argument(
                "connection string: SharedAccessKeyName goes with SharedAccessKey",
            ));
        } else if let Some(signature) = signature {
            Credential::SharedAccessSignature(signature)
        } else {
            Credential::X509
        };
        if device_id.is_none() && matches!(credential, Credential::X509) {
            return Err(Error::invalid_argument(
                "connection string: x509 authentication needs a DeviceId",
            ));
        }
        if device_id.is_none()
            && matches!(
                &credential,
                Credential::SharedAccessKey { key_name: None, .. }
            )
        {
            return Err(Error::invalid_argument(
                "connection string: a service connection string needs SharedAccessKeyName (or add DeviceId for a device)",
            ));
        }
        Ok(ConnectionString {
            host_name,
            device_id,
            module_id,
            gateway_host_name,
            credential,
        })
    }

    /// Parses and requires a device (or module) connection string.
    pub fn parse_device(s: &str) -> Result<Self> {
        let cs = Self::parse(s)?;
        if cs.kind() == ConnectionStringKind::Service {
            return Err(Error::invalid_argument(
                "expected a device connection string (with DeviceId), got a service one",
            ));
        }
        Ok(cs)
    }

    /// Parses and requires a service connection string.
    pub fn parse_service(s: &str) -> Result<Self> {
        let cs = Self::parse(s)?;
        if cs.kind() != ConnectionStringKind::Service {
            return Err(Error::invalid_argument(
                "expected a service connection string (HostName, SharedAccessKeyName, SharedAccessKey), got a device one",
            ));
        }
        Ok(cs)
    }

    /// Which kind of identity this names.
    pub fn kind(&self) -> ConnectionStringKind {
        match (&self.device_id, &self.module_id) {
            (Some(_), Some(_)) => ConnectionStringKind::Module,
            (Some(_), None) => ConnectionStringKind::Device,
            _ => ConnectionStringKind::Service,
        }
    }

    /// The host the network connection goes to: `GatewayHostName` if set, else `HostName`.
    pub fn connect_host(&self) -> &str {
        self.gateway_host_name.as_deref().unwrap_or(&self.host_name)
    }

    /// The hub name: the first DNS label of `HostName`.
    pub fn hub_name(&self) -> &str {
        hub_name_of(&self.host_name)
    }
}

/// The hub name of a host name: its first DNS label (`myhub` of `myhub.azure-devices.net`).
pub fn hub_name_of(host_name: &str) -> &str {
    host_name.split('.').next().unwrap_or(host_name)
}

impl FromStr for ConnectionString {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl fmt::Display for ConnectionString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostName={}", self.host_name)?;
        if let Some(d) = &self.device_id {
            write!(f, ";DeviceId={d}")?;
        }
        if let Some(m) = &self.module_id {
            write!(f, ";ModuleId={m}")?;
        }
        match &self.credential {
            Credential::SharedAccessKey { key_name, key } => {
                if let Some(n) = key_name {
                    write!(f, ";SharedAccessKeyName={n}")?;
                }
                write!(f, ";SharedAccessKey={key}")?;
            }
            Credential::SharedAccessSignature(s) => write!(f, ";SharedAccessSignature={s}")?,
            Credential::X509 => write!(f, ";x509=true")?,
        }
        if let Some(g) = &self.gateway_host_name {
            write!(f, ";GatewayHostName={g}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn device_string_round_trips_and_splits_at_first_equals() {
        let s = format!("HostName=myhub.azure-devices.net;DeviceId=dev1;SharedAccessKey={KEY}");
        let cs = ConnectionString::parse(&s).unwrap();
        assert_eq!(cs.kind(), ConnectionStringKind::Device);
        assert_eq!(cs.device_id.as_deref(), Some("dev1"));
        assert_eq!(
            cs.credential,
            Credential::SharedAccessKey {
                key_name: None,
                key: KEY.into()
            }
        );
        assert_eq!(cs.to_string(), s);
        assert_eq!(cs.hub_name(), "myhub");
        assert_eq!(cs.connect_host(), "myhub.azure-devices.net");
    }

    #[test]
    fn gateway_and_module_and_service() {
        let cs = ConnectionString::parse(&format!(
            "HostName=h.example;DeviceId=d;ModuleId=m;SharedAccessKey={KEY};GatewayHostName=localhost"
        ))
        .unwrap();
        assert_eq!(cs.kind(), ConnectionStringKind::Module);
        assert_eq!(cs.connect_host(), "localhost");
        let svc = ConnectionString::parse_service(&format!(
            "HostName=h.example;SharedAccessKeyName=service;SharedAccessKey={KEY}"
        ))
        .unwrap();
        assert_eq!(svc.kind(), ConnectionStringKind::Service);
        assert!(ConnectionString::parse_device(&svc.to_string()).is_err());
    }

    #[test]
    fn malformed_duplicate_and_unknown_keys_are_refused() {
        for (bad, needle) in [
            ("HostName=h;DeviceId=d;SharedAccessKey", "Key=Value"),
            (
                "HostName=h;DeviceId=d;DeviceId=e;SharedAccessKey=k",
                "twice",
            ),
            (
                "HostName=h;deviceid=d;SharedAccessKey=k",
                "unknown key 'deviceid'",
            ),
            ("DeviceId=d;SharedAccessKey=k", "HostName is missing"),
            ("HostName=h;DeviceId=d", "exactly one"),
            ("HostName=h;SharedAccessKey=k", "SharedAccessKeyName"),
            ("HostName=h;DeviceId=d;SharedAccessKey=", "empty value"),
        ] {
            let err = ConnectionString::parse(bad).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidArgument);
            assert!(err.message().contains(needle), "{bad}: {err}");
        }
    }
}
