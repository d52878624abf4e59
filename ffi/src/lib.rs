//! The C ABI of c2d: `libc2d.so` / `libc2d.a`, described by `include/c2d.h` (generated from
//! this crate by `make header`). The conventions (result codes, ownership, threading) are in
//! the header's overview and in docs/architecture.md. Each module is the C translation of
//! the core module of the same name.

#![allow(non_camel_case_types)]
// Every exported function takes pointers from C, whose contract is the header's (a handle
// made by this library, a NUL-terminated string); NULL is checked everywhere. Marking the
// functions `unsafe` would change nothing for C callers.
#![allow(clippy::not_unsafe_ptr_arg_deref)]
#![warn(missing_docs)]

pub mod args;
pub mod device;
pub mod error;
#[cfg(feature = "hub")]
pub mod hub;
pub mod message;
pub mod retry;
pub mod runtime;
#[cfg(feature = "service")]
pub mod service;
pub mod tls;
pub mod version;
