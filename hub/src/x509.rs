//! X.509 device identities, as IoT Hub has them: a device registered as `selfSigned` is
//! known by the SHA-1 or SHA-256 thumbprint of its certificate, one registered as
//! `certificateAuthority` by a certificate that chains to a registered CA and whose common
//! name is the device id.
//!
//! Every listener asks for a client certificate and takes any (or none) at the TLS layer,
//! checking only that the client holds the certificate's key; which device a certificate
//! stands for is decided here, when the device names itself (MQTT CONNECT, an AMQP link to
//! its address, an HTTPS request to its path), so that a refusal is the protocol's own
//! (CONNACK 5, `amqp:unauthorized-access`, 401) and is logged with its reason.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use sha2::{Digest, Sha256};

use crate::auth::{AuthError, Grant, Principal};
use crate::registry::Registry;

/// The certificates a client presented in its TLS handshake (leaf first), if any.
pub type PeerCertificates = Option<Arc<Vec<CertificateDer<'static>>>>;

/// The certificates of an established server-side TLS connection.
pub(crate) fn peer_certificates(conn: &rustls::ServerConnection) -> PeerCertificates {
    conn.peer_certificates()
        .filter(|c| !c.is_empty())
        .map(|c| Arc::new(c.iter().map(|d| d.clone().into_owned()).collect()))
}

/// Asks every client for a certificate, takes none or any, and checks the handshake's
/// signature with it (proof that the client holds its key); trust is decided per device.
#[derive(Debug)]
pub(crate) struct AnyClientCertificate {
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl AnyClientCertificate {
    pub(crate) fn new() -> Self {
        AnyClientCertificate {
            algorithms: rustls::crypto::aws_lc_rs::default_provider()
                .signature_verification_algorithms,
        }
    }
}

impl ClientCertVerifier for AnyClientCertificate {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The CA certificates `certificateAuthority` devices may chain to.
#[derive(Clone, Default)]
pub struct DeviceCas {
    verifier: Option<Arc<dyn ClientCertVerifier>>,
    count: usize,
}

impl std::fmt::Debug for DeviceCas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceCas")
            .field("count", &self.count)
            .finish()
    }
}

impl DeviceCas {
    /// The CAs of these PEM certificates (none: no `certificateAuthority` device can connect).
    pub fn from_pems<'a>(pems: impl IntoIterator<Item = &'a [u8]>) -> Result<Self, String> {
        let mut roots = rustls::RootCertStore::empty();
        for pem in pems {
            for cert in c2d::tls::certificates_from_pem(pem).map_err(|e| e.to_string())? {
                roots
                    .add(cert)
                    .map_err(|e| format!("a device CA certificate was refused: {e}"))?;
            }
        }
        let count = roots.len();
        if count == 0 {
            return Ok(DeviceCas::default());
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
        )
        .build()
        .map_err(|e| format!("device CAs: {e}"))?;
        Ok(DeviceCas {
            verifier: Some(verifier),
            count,
        })
    }

    /// How many CA certificates there are.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// The SHA-1 and SHA-256 thumbprints of a certificate, upper-case hex as IoT Hub shows them.
pub fn thumbprints(der: &[u8]) -> (String, String) {
    use sha1::Sha1;
    (hex(&Sha1::digest(der)), hex(&Sha256::digest(der)))
}

/// Upper-case hex digits of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
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

fn refused(why: impl Into<String>) -> AuthError {
    AuthError::Certificate(why.into())
}

/// Authenticates `device_id` by the certificates it presented, at `now` (the hub's clock).
pub fn authenticate(
    registry: &Registry,
    cas: &DeviceCas,
    host_name: &str,
    device_id: &str,
    chain: &[CertificateDer<'static>],
    now: SystemTime,
) -> Result<Grant, AuthError> {
    let device = registry
        .device(device_id)
        .ok_or_else(|| AuthError::UnknownDevice(device_id.to_string()))?;
    let leaf = chain
        .first()
        .ok_or_else(|| refused("no client certificate was presented"))?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf)
        .map_err(|e| refused(format!("the client certificate cannot be read: {e}")))?;
    let now_secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let validity = cert.validity();
    let (from, until) = (
        validity.not_before.timestamp(),
        validity.not_after.timestamp(),
    );
    if i64::try_from(now_secs).is_ok_and(|n| n < from || n > until) {
        return Err(refused(format!(
            "the client certificate is valid from {} to {}, not now",
            validity.not_before, validity.not_after
        )));
    }
    let auth = &device.authentication;
    match auth.kind.as_str() {
        "selfSigned" => {
            let (sha1, sha256) = thumbprints(leaf);
            let registered = [
                &auth.x509_thumbprint.primary_thumbprint,
                &auth.x509_thumbprint.secondary_thumbprint,
            ];
            let matches = registered
                .into_iter()
                .flatten()
                .filter_map(|t| normalize_thumbprint(t).ok())
                .any(|t| t == sha1 || t == sha256);
            if !matches {
                return Err(refused(format!(
                    "the certificate's thumbprint (SHA-1 {sha1}) is not one registered for device '{device_id}'"
                )));
            }
        }
        "certificateAuthority" => {
            let verifier = cas.verifier.as_ref().ok_or_else(|| {
                refused("the hub has no CA certificate registered for certificateAuthority devices")
            })?;
            let at = UnixTime::since_unix_epoch(Duration::from_secs(now_secs));
            verifier
                .verify_client_cert(leaf, &chain[1..], at)
                .map_err(|e| {
                    refused(format!(
                        "the certificate does not chain to a registered CA: {e}"
                    ))
                })?;
            let cn = cert
                .subject()
                .iter_common_name()
                .next()
                .and_then(|cn| cn.as_str().ok())
                .unwrap_or("");
            if cn != device_id {
                return Err(refused(format!(
                    "the certificate's common name '{cn}' is not the device id '{device_id}'"
                )));
            }
        }
        other => {
            return Err(refused(format!(
                "device '{device_id}' authenticates with '{other}', not an X.509 certificate"
            )))
        }
    }
    if device.status != "enabled" {
        return Err(AuthError::DisabledDevice(device_id.to_string()));
    }
    Ok(Grant {
        principal: Principal::Device(device_id.to_string()),
        resource: format!("{host_name}/devices/{device_id}"),
        // the grant lasts as long as the certificate
        expiry: u64::try_from(until).unwrap_or(0),
    })
}

/// A device certificate made by [`device_certificate`]: PEM, and its thumbprints.
#[derive(Clone)]
pub struct DeviceCertificate {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its private key (PKCS#8), PEM.
    pub key_pem: String,
    /// SHA-1 thumbprint, upper-case hex (what IoT Hub's portal shows).
    pub sha1_thumbprint: String,
    /// SHA-256 thumbprint, upper-case hex.
    pub sha256_thumbprint: String,
}

impl std::fmt::Debug for DeviceCertificate {
    /// The key stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceCertificate")
            .field("sha1_thumbprint", &self.sha1_thumbprint)
            .finish_non_exhaustive()
    }
}

/// A CA to sign device certificates with: its certificate and key, PEM.
#[derive(Debug, Clone, Copy)]
pub struct SigningCa<'a> {
    /// The CA certificate, PEM.
    pub cert_pem: &'a str,
    /// The CA's private key, PEM.
    pub key_pem: &'a str,
}

/// From a day ago (for clocks a little behind) to `days` days from now: the validity of the
/// development certificates the hub and the CLI make.
pub fn valid_for_days(days: u32) -> std::ops::Range<SystemTime> {
    let now = SystemTime::now();
    let day = Duration::from_secs(86_400);
    now - day..now + days.max(1) * day
}

/// Makes a client certificate for `device_id` (its common name), valid over `valid`:
/// self-signed (for a `selfSigned` device, registered by a thumbprint), or signed by `ca`
/// (for a `certificateAuthority` device of a hub that trusts that CA). For development and
/// tests; production devices get theirs from their PKI.
pub fn device_certificate(
    device_id: &str,
    valid: std::ops::Range<SystemTime>,
    ca: Option<SigningCa<'_>>,
) -> Result<DeviceCertificate, String> {
    use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose};
    let e = |what: &str, err: rcgen::Error| format!("{what}: {err}");
    let mut params =
        CertificateParams::new(Vec::<String>::new()).map_err(|x| e("certificate parameters", x))?;
    params
        .distinguished_name
        .push(DnType::CommonName, device_id);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.not_before = valid.start.into();
    params.not_after = valid.end.into();
    let key = KeyPair::generate().map_err(|x| e("making the key", x))?;
    let cert = match ca {
        None => params.self_signed(&key).map_err(|x| e("signing", x))?,
        Some(ca) => {
            let ca_key = KeyPair::from_pem(ca.key_pem).map_err(|x| e("the CA key", x))?;
            let issuer = rcgen::Issuer::from_ca_cert_pem(ca.cert_pem, ca_key)
                .map_err(|x| e("the CA certificate", x))?;
            params
                .signed_by(&key, &issuer)
                .map_err(|x| e("signing with the CA", x))?
        }
    };
    let (sha1, sha256) = thumbprints(cert.der());
    Ok(DeviceCertificate {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        sha1_thumbprint: sha1,
        sha256_thumbprint: sha256,
    })
}
