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

/// A client configuration that trusts exactly the given PEM roots.
pub fn client_config_trusting(ca_pem: &[u8]) -> Result<Arc<rustls::ClientConfig>> {
    install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    for cert in certificates_from_pem(ca_pem)? {
        roots
            .add(cert)
            .map_err(|e| Error::invalid_argument(format!("trusted CA rejected: {e}")))?;
    }
    Ok(Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}
