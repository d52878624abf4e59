//! PEM given from memory or from a file: trusted CA certificates, client certificates and keys.

use c2d_core::{ClientCertificate, Pem, Result};

use crate::args::bytes;
use crate::error::invalid;

/// A PEM buffer argument, copied.
pub(crate) fn pem_arg(pem: *const u8, pem_len: usize) -> Result<Vec<u8>> {
    if pem_len == 0 {
        return Err(invalid("pem is empty"));
    }
    Ok(bytes(pem, pem_len, "pem")?.to_vec())
}

/// The contents of a PEM file (a CA, a certificate or a key).
pub(crate) fn read_ca_file(path: &str) -> Result<Vec<u8>> {
    let pem = std::fs::read(path).map_err(|e| invalid(format!("cannot read {path}: {e}")))?;
    if pem.is_empty() {
        return Err(invalid(format!("{path} is empty")));
    }
    Ok(pem)
}

/// A client certificate and key, checked now (a C caller learns at the setter that they do
/// not parse or do not match).
pub(crate) fn checked_certificate(cert: Vec<u8>, key: Vec<u8>) -> Result<ClientCertificate> {
    let certificate = ClientCertificate {
        cert: Pem::Text(cert),
        key: Pem::Text(key),
    };
    certificate.identity()?;
    Ok(certificate)
}
