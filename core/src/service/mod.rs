//! The service (back-end) side: the service client, delivery feedback and the identity
//! registry.

pub mod client;
pub mod feedback;
pub mod registry;
