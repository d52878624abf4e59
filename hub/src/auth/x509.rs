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
use rustls::pki_types::{CertificateDer, SubjectPublicKeyInfoDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use sha2::{Digest, Sha256};
use x509_parser::certificate::X509Certificate;
use x509_parser::x509::X509Version;

use super::{AuthError, Grant, Principal};
use crate::state::registry::{normalize_thumbprint, Registry};

/// The certificates a client presented in its TLS handshake (leaf first), if any.
pub type PeerCertificates = Option<Arc<Vec<CertificateDer<'static>>>>;

/// The certificates of an established server-side TLS connection.
pub(crate) fn peer_certificates(conn: &rustls::ServerConnection) -> PeerCertificates {
    conn.peer_certificates()
        .filter(|c| !c.is_empty())
        .map(|c| Arc::new(c.iter().map(|d| d.clone().into_owned()).collect()))
}

/// Asks every client for a certificate, takes none or any well-formed one of any X.509
/// version (IoT Hub takes version 1 certificates, which `openssl x509 -req` makes without an
/// extensions file), and checks the handshake's signature with its public key (proof that
/// the client holds its key); trust is decided per device.
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

/// The public key of a client certificate, for checking the handshake's signature: read
/// here rather than by webpki, which takes version 3 certificates only.
fn client_public_key(
    cert: &CertificateDer<'_>,
) -> Result<SubjectPublicKeyInfoDer<'static>, rustls::Error> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert).map_err(|e| {
        tracing::warn!(error = %e, "TLS: a client certificate that cannot be read was refused");
        rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
    })?;
    Ok(SubjectPublicKeyInfoDer::from(
        parsed.public_key().raw.to_vec(),
    ))
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
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // well-formed, whatever its version; the rest is the device's business
        client_public_key(end_entity)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let spki = client_public_key(cert)?;
        let key = webpki::RawPublicKeyEntity::try_from(&spki).map_err(|_| {
            rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
        })?;
        let candidates = self
            .algorithms
            .mapping
            .iter()
            .filter(|(scheme, _)| *scheme == dss.scheme)
            .flat_map(|(_, algorithms)| algorithms.iter());
        // as rustls's verify_tls12_signature, with the key read above
        for algorithm in candidates {
            if key
                .verify_signature(*algorithm, message, dss.signature())
                .is_ok()
            {
                return Ok(HandshakeSignatureValid::assertion());
            }
        }
        Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::BadSignature,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let spki = client_public_key(cert)?;
        rustls::crypto::verify_tls13_signature_with_raw_key(message, &spki, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The CA certificates `certificateAuthority` devices may chain to.
#[derive(Clone, Default)]
pub struct DeviceCas {
    /// The CA certificates, DER (each was read once when they were given).
    roots: Arc<Vec<CertificateDer<'static>>>,
}

impl std::fmt::Debug for DeviceCas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceCas")
            .field("count", &self.roots.len())
            .finish()
    }
}

/// How many intermediate certificates a device's chain may carry.
const MAX_INTERMEDIATES: usize = 8;

impl DeviceCas {
    /// The CAs of these PEM certificates (none: no `certificateAuthority` device can connect).
    pub fn from_pems<'a>(pems: impl IntoIterator<Item = &'a [u8]>) -> Result<Self, String> {
        let mut roots = Vec::new();
        for pem in pems {
            for cert in c2d::tls::certificates_from_pem(pem).map_err(|e| e.to_string())? {
                x509_parser::parse_x509_certificate(&cert)
                    .map_err(|e| format!("a device CA certificate cannot be read: {e}"))?;
                roots.push(cert);
            }
        }
        Ok(DeviceCas {
            roots: Arc::new(roots),
        })
    }

    /// Checks that `leaf` chains to one of these CAs, through the `intermediates` the device
    /// presented, every certificate valid at `now` (Unix seconds). Certificates of every
    /// version are taken, as IoT Hub takes them: an issuer is a CA if its basic constraints
    /// say so, or, without them, if it is a version 1 certificate (which has no extensions)
    /// or its key usage allows certificate signing; a registered CA is trusted as it is. The
    /// leaf's extended key usage, if it has one, must allow client authentication.
    fn verify(
        &self,
        leaf: &X509Certificate<'_>,
        intermediates: &[CertificateDer<'static>],
        now: i64,
    ) -> Result<(), String> {
        if self.roots.is_empty() {
            return Err(
                "the hub has no CA certificate registered for certificateAuthority devices".into(),
            );
        }
        if let Ok(Some(eku)) = leaf.extended_key_usage() {
            if !(eku.value.client_auth || eku.value.any) {
                return Err(
                    "the certificate's extended key usage does not allow client authentication"
                        .into(),
                );
            }
        }
        let roots = parse_all(&self.roots);
        let presented = parse_all(intermediates);
        let mut used = vec![false; presented.len()];
        let mut current = leaf;
        // intermediates between the certificate checked now and the leaf
        let mut below = 0usize;
        loop {
            let issued = |issuer: &X509Certificate<'_>| {
                issuer.subject().as_raw() == current.issuer().as_raw()
                    && current.verify_signature(Some(issuer.public_key())).is_ok()
            };
            if let Some(root) = roots.iter().find(|r| issued(r)) {
                return within_path_length(root, below)
                    .and_then(|()| valid_at(root, now, "the registered CA"));
            }
            let next = presented
                .iter()
                .enumerate()
                .find(|(i, c)| !used[*i] && issued(c))
                .map(|(i, _)| i);
            let Some(i) = next else {
                return Err(format!(
                    "the certificate does not chain to a registered CA (no registered or presented certificate named {} signed it)",
                    current.issuer()
                ));
            };
            let issuer = &presented[i];
            may_issue(issuer)?;
            within_path_length(issuer, below)?;
            valid_at(issuer, now, "an intermediate certificate")?;
            used[i] = true;
            below += 1;
            if below > MAX_INTERMEDIATES {
                return Err(format!(
                    "the chain has more than {MAX_INTERMEDIATES} intermediate certificates"
                ));
            }
            current = issuer;
        }
    }
}

/// The certificates of `ders` that can be read.
fn parse_all<'a>(ders: &'a [CertificateDer<'_>]) -> Vec<X509Certificate<'a>> {
    ders.iter()
        .filter_map(|d| x509_parser::parse_x509_certificate(d).ok().map(|(_, c)| c))
        .collect()
}

/// Whether an intermediate certificate may sign others.
fn may_issue(cert: &X509Certificate<'_>) -> Result<(), String> {
    let constraints = cert
        .basic_constraints()
        .map_err(|e| format!("{}: {e}", cert.subject()))?;
    let key_usage = cert
        .key_usage()
        .map_err(|e| format!("{}: {e}", cert.subject()))?;
    let ca = match constraints {
        Some(bc) => bc.value.ca,
        None => {
            cert.version() == X509Version::V1
                || key_usage.as_ref().is_some_and(|k| k.value.key_cert_sign())
        }
    };
    if !ca || key_usage.is_some_and(|k| !k.value.key_cert_sign()) {
        return Err(format!(
            "{} signed the certificate but is not a CA",
            cert.subject()
        ));
    }
    Ok(())
}

/// Whether `cert`'s path length constraint allows `below` intermediates under it.
fn within_path_length(cert: &X509Certificate<'_>, below: usize) -> Result<(), String> {
    match cert.basic_constraints() {
        Ok(Some(bc))
            if bc
                .value
                .path_len_constraint
                .is_some_and(|n| (n as usize) < below) =>
        {
            Err(format!(
                "{} allows no more than {} intermediate certificates under it",
                cert.subject(),
                bc.value.path_len_constraint.unwrap_or(0)
            ))
        }
        _ => Ok(()),
    }
}

/// Whether `cert` is valid at `now` (Unix seconds).
fn valid_at(cert: &X509Certificate<'_>, now: i64, what: &str) -> Result<(), String> {
    let v = cert.validity();
    if now < v.not_before.timestamp() || now > v.not_after.timestamp() {
        return Err(format!(
            "{what} ({}) is valid from {} to {}, not now",
            cert.subject(),
            v.not_before,
            v.not_after
        ));
    }
    Ok(())
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
            cas.verify(
                &cert,
                &chain[1..],
                i64::try_from(now_secs).unwrap_or(i64::MAX),
            )
            .map_err(refused)?;
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
