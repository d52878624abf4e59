//! The client TLS configuration every way of reaching a hub shares: a given CA, or the
//! platform's roots.

use std::sync::Arc;

use crate::error::Result;

/// The TLS configuration for a client: only `ca_pem`'s roots when given, else the platform's.
pub fn tls_config(ca_pem: Option<&[u8]>) -> Result<Arc<rustls::ClientConfig>> {
    crate::tls::client_config(ca_pem, None)
}
