//! TLS set-up shared by every entry point: aws-lc-rs is the only crypto provider.

use std::sync::Arc;

use crate::error::{Error, Result};

/// Installs aws-lc-rs as the process's default rustls provider (idempotent). Every entry
/// point calls this before it builds a TLS configuration.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Parses PEM certificates into DER.
pub fn certificates_from_pem(
    pem: &[u8],
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>> {
    let certs = rustls_pemfile::certs(&mut &pem[..])
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::invalid_argument(format!("not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(Error::invalid_argument("the PEM holds no certificate"));
    }
    Ok(certs)
}

/// PEM given to a client's options: the text itself, or a file read when the client connects.
#[derive(Clone, PartialEq, Eq)]
pub enum Pem {
    /// The PEM text.
    Text(Vec<u8>),
    /// A file of PEM.
    File(std::path::PathBuf),
}

impl std::fmt::Debug for Pem {
    /// The text (a private key, perhaps) stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pem::Text(_) => f.write_str("Pem::Text(..)"),
            Pem::File(path) => f.debug_tuple("Pem::File").field(path).finish(),
        }
    }
}

impl Pem {
    /// The option `name` given as `text` or as the file `file` (the bindings' `name` and
    /// `name_file`): at most one of the two.
    pub fn either(
        name: &str,
        text: Option<Vec<u8>>,
        file: Option<std::path::PathBuf>,
    ) -> Result<Option<Pem>> {
        match (text, file) {
            (Some(_), Some(_)) => Err(Error::invalid_argument(format!(
                "give {name} or its file, not both"
            ))),
            (Some(text), None) => Ok(Some(Pem::Text(text))),
            (None, Some(path)) => Ok(Some(Pem::File(path))),
            (None, None) => Ok(None),
        }
    }

    /// The PEM text (the file read now); `what` names it in the error.
    pub fn read(&self, what: &str) -> Result<Vec<u8>> {
        match self {
            Pem::Text(text) => Ok(text.clone()),
            Pem::File(path) => std::fs::read(path).map_err(|e| {
                Error::invalid_argument(format!("reading {what} from {}: {e}", path.display()))
            }),
        }
    }
}

/// A device's X.509 certificate (PEM, leaf first, intermediates after it) and its private key
/// (PEM: PKCS#8, PKCS#1 or SEC1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    /// The certificate chain.
    pub cert: Pem,
    /// Its private key.
    pub key: Pem,
}

impl ClientCertificate {
    /// The certificate and key given as two options: both, or neither.
    pub fn pair(cert: Option<Pem>, key: Option<Pem>) -> Result<Option<ClientCertificate>> {
        match (cert, key) {
            (Some(cert), Some(key)) => Ok(Some(ClientCertificate { cert, key })),
            (None, None) => Ok(None),
            _ => Err(Error::invalid_argument(
                "give the device's certificate and its key together (cert and key)",
            )),
        }
    }

    /// The certificate and key read, and checked.
    pub fn identity(&self) -> Result<ClientIdentity> {
        ClientIdentity::from_pem(
            self.cert.read("the client certificate")?,
            self.key.read("the client key")?,
        )
    }
}

/// A client configuration that trusts exactly the given PEM roots.
pub fn client_config_trusting(ca_pem: &[u8]) -> Result<Arc<rustls::ClientConfig>> {
    client_config(Some(ca_pem), None)
}

/// A client certificate (its chain, leaf first) and private key, for X.509 authentication.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
}

impl std::fmt::Debug for ClientIdentity {
    /// The key stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIdentity").finish_non_exhaustive()
    }
}

impl ClientIdentity {
    /// The certificate chain and the key (PKCS#8, PKCS#1 or SEC1), both PEM; checked here.
    pub fn from_pem(cert_pem: impl Into<Vec<u8>>, key_pem: impl Into<Vec<u8>>) -> Result<Self> {
        let identity = ClientIdentity {
            cert_pem: cert_pem.into(),
            key_pem: key_pem.into(),
        };
        identity.parts()?;
        Ok(identity)
    }

    fn parts(
        &self,
    ) -> Result<(
        Vec<rustls::pki_types::CertificateDer<'static>>,
        rustls::pki_types::PrivateKeyDer<'static>,
    )> {
        let certs = certificates_from_pem(&self.cert_pem).map_err(|e| {
            Error::invalid_argument(format!("the client certificate: {}", e.message()))
        })?;
        let key = rustls_pemfile::private_key(&mut &self.key_pem[..])
            .map_err(|e| Error::invalid_argument(format!("the client key is not valid PEM: {e}")))?
            .ok_or_else(|| Error::invalid_argument("the client key PEM holds no private key"))?;
        Ok((certs, key))
    }
}

/// A client configuration: only `ca_pem`'s roots when given, else the platform's; with
/// `identity`'s certificate for the servers that ask for one.
pub fn client_config(
    ca_pem: Option<&[u8]>,
    identity: Option<&ClientIdentity>,
) -> Result<Arc<rustls::ClientConfig>> {
    install_crypto_provider();
    let builder = rustls::ClientConfig::builder();
    let builder = match ca_pem {
        Some(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in certificates_from_pem(pem)? {
                roots
                    .add(cert)
                    .map_err(|e| Error::invalid_argument(format!("trusted CA rejected: {e}")))?;
            }
            builder.with_root_certificates(roots)
        }
        None => {
            use rustls_platform_verifier::BuilderVerifierExt;
            builder.with_platform_verifier().map_err(|e| {
                Error::new(
                    crate::error::ErrorKind::Internal,
                    format!("no platform certificate verifier: {e}"),
                )
            })?
        }
    };
    let config = match identity {
        Some(id) => {
            let (certs, key) = id.parts()?;
            let key = builder
                .crypto_provider()
                .key_provider
                .load_private_key(key)
                .map_err(|e| Error::invalid_argument(format!("the client key: {e}")))?;
            let leaf = certs
                .first()
                .ok_or_else(|| Error::invalid_argument("the client certificate PEM is empty"))?;
            // webpki reads a certificate of any version as a trust anchor, which is all it
            // takes to compare public keys
            let anchor = webpki::anchor_from_trusted_cert(leaf).map_err(|e| {
                Error::invalid_argument(format!("the client certificate cannot be read: {e}"))
            })?;
            if key
                .public_key()
                .is_some_and(|public| public != webpki::spki_for_anchor(&anchor))
            {
                return Err(Error::invalid_argument(
                    "the client certificate and key do not match",
                ));
            }
            let certified = rustls::sign::CertifiedKey::new(certs, key);
            builder.with_client_cert_resolver(Arc::new(AlwaysOffer(Arc::new(certified))))
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The device's certificate, for every server that asks. rustls's `with_client_auth_cert`
/// would do the same, but it reads the certificate with webpki's end-entity parser, which
/// takes version 3 certificates only; IoT Hub takes device certificates of every version
/// (`openssl x509 -req` without an extensions file makes version 1).
#[derive(Debug)]
struct AlwaysOffer(Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for AlwaysOffer {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _schemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}
