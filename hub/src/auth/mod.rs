//! Who a credential speaks for, and what it may reach: SAS tokens here, X.509 certificates in
//! [`x509`]. The context asks; the registry it reads is the state's.
//!
//! Imports `state` only.

pub mod x509;

use std::time::{SystemTime, UNIX_EPOCH};

use c2d::sas::{resource_covers, SasToken};

use crate::state::registry::{Registry, Rights};

/// The identity a verified token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A device, signed with one of its own keys.
    Device(String),
    /// A shared access policy.
    Policy {
        /// The policy name.
        name: String,
        /// What it grants.
        rights: Rights,
    },
}

/// A verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Who signed it.
    pub principal: Principal,
    /// The decoded resource (`sr`) it is scoped to.
    pub resource: String,
    /// When it expires (Unix seconds).
    pub expiry: u64,
}

/// What an endpoint needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access<'a> {
    /// The device-facing endpoints of one device.
    Device(&'a str),
    /// The service-facing endpoints (send C2D, read feedback).
    Service,
    /// Read the registry.
    RegistryRead,
    /// Write the registry (and purge queues).
    RegistryWrite,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Not a SAS token.
    #[error("{0}")]
    Malformed(String),
    /// Past `se` plus 5 minutes of skew.
    #[error("the token expired at {0} (Unix seconds)")]
    Expired(u64),
    /// The audience is another hub.
    #[error("the token is for '{0}', not this hub")]
    WrongHub(String),
    /// No policy of that name.
    #[error("no shared access policy named '{0}'")]
    UnknownPolicy(String),
    /// No device of that id, or not a device resource.
    #[error("no device matches the token's resource '{0}'")]
    UnknownDevice(String),
    /// The device is disabled.
    #[error("device '{0}' is disabled")]
    DisabledDevice(String),
    /// The signature does not verify with any key.
    #[error("the token's signature does not match")]
    BadSignature,
    /// Verified, but it does not grant what the endpoint needs.
    #[error("the token does not grant {0}")]
    Forbidden(String),
    /// The client certificate does not authenticate the device (or none was presented).
    #[error("X.509: {0}")]
    Certificate(String),
}

impl AuthError {
    /// A short name for the refusal, for the hub's metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Malformed(_) => "malformed_token",
            AuthError::Expired(_) => "expired_token",
            AuthError::WrongHub(_) => "wrong_hub",
            AuthError::UnknownPolicy(_) => "unknown_policy",
            AuthError::UnknownDevice(_) => "unknown_device",
            AuthError::DisabledDevice(_) => "disabled_device",
            AuthError::BadSignature => "bad_signature",
            AuthError::Forbidden(_) => "forbidden",
            AuthError::Certificate(_) => "certificate",
        }
    }
}

/// Verifies a token against the registry.
pub fn authenticate(
    registry: &Registry,
    host_name: &str,
    token: &str,
    now: SystemTime,
) -> Result<Grant, AuthError> {
    let t = SasToken::parse(token).map_err(|e| AuthError::Malformed(e.message().to_string()))?;
    let resource = t
        .resource()
        .map_err(|e| AuthError::Malformed(e.message().to_string()))?;
    let (host, path) = match resource.split_once('/') {
        Some((h, p)) => (h, p.trim_end_matches('/')),
        None => (resource.as_str(), ""),
    };
    let host = host.rsplit_once("://").map_or(host, |(_, h)| h);
    if !host.eq_ignore_ascii_case(host_name) {
        return Err(AuthError::WrongHub(host.to_string()));
    }
    let principal = match t.key_name() {
        Some(name) => {
            let policy = registry
                .policy(name)
                .ok_or_else(|| AuthError::UnknownPolicy(name.to_string()))?;
            if !(t.signed_with(&policy.primary_key) || t.signed_with(&policy.secondary_key)) {
                return Err(AuthError::BadSignature);
            }
            Principal::Policy {
                name: name.to_string(),
                rights: policy.rights,
            }
        }
        None => {
            let id = path
                .strip_prefix("devices/")
                .filter(|id| !id.is_empty() && !id.contains('/'))
                .ok_or_else(|| AuthError::UnknownDevice(resource.clone()))?;
            let device = registry
                .device(id)
                .ok_or_else(|| AuthError::UnknownDevice(resource.clone()))?;
            let keys = &device.authentication.symmetric_key;
            let verified = [&keys.primary_key, &keys.secondary_key]
                .into_iter()
                .flatten()
                .any(|k| t.signed_with(k));
            if !verified {
                return Err(AuthError::BadSignature);
            }
            if device.status != "enabled" {
                return Err(AuthError::DisabledDevice(id.to_string()));
            }
            Principal::Device(id.to_string())
        }
    };
    let now_secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    if t.is_expired_at(now_secs) {
        return Err(AuthError::Expired(t.expiry()));
    }
    Ok(Grant {
        principal,
        resource,
        expiry: t.expiry(),
    })
}

impl Grant {
    /// Whether this grant reaches `access` on the hub `host_name`.
    pub fn check(&self, host_name: &str, access: Access<'_>) -> Result<(), AuthError> {
        let ok = match (&self.principal, access) {
            (Principal::Device(own), Access::Device(id)) => {
                own == id && resource_covers(&self.resource, &format!("{host_name}/devices/{id}"))
            }
            (Principal::Device(_), _) => false,
            (Principal::Policy { rights, .. }, Access::Device(id)) => {
                rights.contains(Rights::DEVICE_CONNECT)
                    && resource_covers(&self.resource, &format!("{host_name}/devices/{id}"))
            }
            (Principal::Policy { rights, .. }, Access::Service) => {
                rights.contains(Rights::SERVICE_CONNECT)
            }
            (Principal::Policy { rights, .. }, Access::RegistryRead) => {
                rights.contains(Rights::REGISTRY_READ) || rights.contains(Rights::REGISTRY_WRITE)
            }
            (Principal::Policy { rights, .. }, Access::RegistryWrite) => {
                rights.contains(Rights::REGISTRY_WRITE)
            }
        };
        if ok {
            Ok(())
        } else {
            Err(AuthError::Forbidden(match access {
                Access::Device(id) => format!("DeviceConnect for device '{id}'"),
                Access::Service => "ServiceConnect".into(),
                Access::RegistryRead => "RegistryRead".into(),
                Access::RegistryWrite => "RegistryWrite".into(),
            }))
        }
    }

    /// A short description of who this is, for logs.
    pub fn who(&self) -> String {
        match &self.principal {
            Principal::Device(id) => format!("device '{id}'"),
            Principal::Policy { name, .. } => format!("policy '{name}'"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::registry::default_policies;
    use c2d::sas::generate_token;
    use c2d::Device;

    fn registry() -> Registry {
        let mut r = Registry::default();
        for p in default_policies() {
            r.policies.insert(p.name.clone(), p);
        }
        r.put_device("d1", Device::new_sas("d1"), None, SystemTime::now())
            .unwrap();
        r
    }

    fn key(r: &Registry, id: &str) -> String {
        r.device(id)
            .unwrap()
            .authentication
            .symmetric_key
            .primary_key
            .clone()
            .unwrap()
    }

    const HOST: &str = "hub.localhost";

    fn exp() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 3600
    }

    #[test]
    fn device_token_reaches_only_its_device() {
        let r = registry();
        let tok =
            generate_token(&format!("{HOST}/devices/d1"), &key(&r, "d1"), None, exp()).unwrap();
        let g = authenticate(&r, HOST, &tok, SystemTime::now()).unwrap();
        assert_eq!(g.principal, Principal::Device("d1".into()));
        assert!(g.check(HOST, Access::Device("d1")).is_ok());
        assert!(g.check(HOST, Access::Device("d2")).is_err());
        assert!(g.check(HOST, Access::Service).is_err());
        assert!(g.check(HOST, Access::RegistryRead).is_err());
    }

    #[test]
    fn policies_reach_what_they_grant() {
        let r = registry();
        let tok = |name: &str| {
            let p = r.policy(name).unwrap();
            generate_token(HOST, &p.primary_key, Some(name), exp()).unwrap()
        };
        let now = SystemTime::now();
        let service = authenticate(&r, HOST, &tok("service"), now).unwrap();
        assert!(service.check(HOST, Access::Service).is_ok());
        assert!(service.check(HOST, Access::RegistryRead).is_err());
        let read = authenticate(&r, HOST, &tok("registryRead"), now).unwrap();
        assert!(read.check(HOST, Access::RegistryRead).is_ok());
        assert!(read.check(HOST, Access::RegistryWrite).is_err());
        let owner = authenticate(&r, HOST, &tok("iothubowner"), now).unwrap();
        assert!(owner.check(HOST, Access::RegistryWrite).is_ok());
        assert!(owner.check(HOST, Access::Device("d1")).is_ok());
        let device_policy = authenticate(&r, HOST, &tok("device"), now).unwrap();
        assert!(device_policy
            .check(HOST, Access::Device("anything"))
            .is_ok());
        assert!(device_policy.check(HOST, Access::Service).is_err());
    }

    #[test]
    fn bad_tokens_are_refused_with_reasons() {
        let r = registry();
        let now = SystemTime::now();
        let k = key(&r, "d1");
        let wrong_key = crate::state::registry::generate_key();
        let cases = [
            (
                generate_token(&format!("{HOST}/devices/d1"), &wrong_key, None, exp()).unwrap(),
                "signature",
            ),
            (
                generate_token(&format!("{HOST}/devices/d1"), &k, None, 1000).unwrap(),
                "expired",
            ),
            (
                generate_token("other.host/devices/d1", &k, None, exp()).unwrap(),
                "not this hub",
            ),
            (
                generate_token(&format!("{HOST}/devices/ghost"), &k, None, exp()).unwrap(),
                "no device",
            ),
            (
                generate_token(HOST, &k, Some("nobody"), exp()).unwrap(),
                "no shared access policy",
            ),
            ("Bearer abc".to_string(), "SharedAccessSignature"),
        ];
        for (token, needle) in cases {
            let err = authenticate(&r, HOST, &token, now).unwrap_err();
            assert!(err.to_string().contains(needle), "{token}: {err}");
        }
    }
}
