//! The hub's TLS identity: a development CA, made once and kept in the data directory, and a
//! server certificate for `localhost`, `127.0.0.1`, `::1` and the configured host name, made
//! afresh at each start and signed by that CA.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::{Duration, OffsetDateTime};

/// File name of the CA certificate clients must trust.
pub const CA_FILE: &str = "ca.pem";
const CA_KEY_FILE: &str = "ca.key";

/// The TLS material of a running hub.
#[derive(Clone)]
pub struct HubTls {
    /// The server configuration (TLS 1.2 and 1.3).
    pub config: Arc<rustls::ServerConfig>,
    /// Path of the CA certificate (PEM).
    pub ca_path: PathBuf,
    /// The CA certificate (PEM).
    pub ca_pem: String,
}

impl std::fmt::Debug for HubTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubTls")
            .field("ca_path", &self.ca_path)
            .finish_non_exhaustive()
    }
}

fn ca_params() -> Result<CertificateParams, rcgen::Error> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name
        .push(DnType::CommonName, "c2d local hub development CA");
    p.distinguished_name.push(DnType::OrganizationName, "c2d");
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(p)
}

/// Loads (or makes) the CA in `data_dir` and issues a server certificate for `host_name`.
pub fn load_or_create(data_dir: &Path, host_name: &str) -> Result<HubTls, String> {
    c2d::tls::install_crypto_provider();
    let ca_path = data_dir.join(CA_FILE);
    let ca_key_path = data_dir.join(CA_KEY_FILE);
    let e = |what: &str, err: &dyn std::fmt::Display| format!("{what}: {err}");
    let (ca_key, ca_pem) = if ca_path.exists() && ca_key_path.exists() {
        let key_pem = fs::read_to_string(&ca_key_path).map_err(|x| e("reading the CA key", &x))?;
        let key = KeyPair::from_pem(&key_pem).map_err(|x| e("parsing the CA key", &x))?;
        let pem = fs::read_to_string(&ca_path).map_err(|x| e("reading the CA certificate", &x))?;
        (key, pem)
    } else {
        let key = KeyPair::generate().map_err(|x| e("making the CA key", &x))?;
        let mut params = ca_params().map_err(|x| e("CA parameters", &x))?;
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::days(1);
        params.not_after = now + Duration::days(3650);
        let cert = params
            .self_signed(&key)
            .map_err(|x| e("signing the CA", &x))?;
        crate::data_dir::write_private(&ca_key_path, &key.serialize_pem())
            .map_err(|x| e("writing the CA key", &x))?;
        fs::write(&ca_path, cert.pem()).map_err(|x| e("writing the CA certificate", &x))?;
        (key, cert.pem())
    };
    // The issuer is the CA's name and key; its parameters are rebuilt, not parsed.
    let issuer = Issuer::new(ca_params().map_err(|x| e("CA parameters", &x))?, ca_key);

    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    if !names.iter().any(|n| n.eq_ignore_ascii_case(host_name)) {
        names.push(host_name.to_string());
    }
    let mut params =
        CertificateParams::new(names).map_err(|x| e("server certificate names", &x))?;
    if let Ok(ip) = host_name.parse::<std::net::IpAddr>() {
        params.subject_alt_names.push(SanType::IpAddress(ip));
    }
    params
        .distinguished_name
        .push(DnType::CommonName, host_name);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(365);
    let server_key = KeyPair::generate().map_err(|x| e("making the server key", &x))?;
    let server_cert = params
        .signed_by(&server_key, &issuer)
        .map_err(|x| e("signing the server certificate", &x))?;

    let chain = vec![server_cert.der().clone(), pem_to_der(&ca_pem)?];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_protocol_versions(&[
        &rustls::version::TLS13,
        &rustls::version::TLS12,
    ])
    .with_client_cert_verifier(Arc::new(crate::auth::x509::AnyClientCertificate::new()))
    .with_single_cert(chain, key)
    .map_err(|x| e("TLS configuration", &x))?;
    Ok(HubTls {
        config: Arc::new(config),
        ca_path,
        ca_pem,
    })
}

fn pem_to_der(pem: &str) -> Result<CertificateDer<'static>, String> {
    c2d::tls::certificates_from_pem(pem.as_bytes())
        .map_err(|e| format!("the CA certificate: {e}"))?
        .into_iter()
        .next()
        .ok_or_else(|| "the CA certificate file is empty".to_string())
}
