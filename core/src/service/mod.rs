//! The service (back-end) side: the service client, delivery feedback and the identity
//! registry.

#[cfg(feature = "service")]
pub mod client;
#[cfg(feature = "service")]
pub mod fanout;
pub mod feedback;
#[cfg(feature = "service")]
pub mod options;
#[cfg(feature = "service")]
mod pump;
#[cfg(feature = "service")]
pub mod registry;
pub mod tier;
