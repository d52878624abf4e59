//! `c2d.node`: the Node.js addon of c2d's engine. Each file is the JavaScript translation of
//! the core module of the same name; the `c2d` package around it (`index.ts`) adds the error
//! classes, enums, iterators and the event-emitter adapter.

// napi-derive registers the exports only outside cfg(test), where the module functions look
// unused (the crate has no tests: `clippy --all-targets` still builds it so)
#![cfg_attr(test, allow(dead_code))]

mod device;
mod error;
mod hub;
mod message;
mod options;
mod retry;
mod runtime;
mod service;
mod status;

/// Installs the TLS crypto provider when the addon is loaded.
#[napi_derive::module_init]
fn init() {
    c2d::tls::install_crypto_provider();
}

/// The version of the engine in this addon.
#[napi_derive::napi]
pub fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}
