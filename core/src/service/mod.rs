//! The service (back-end) side: delivery feedback and the identity registry.

pub mod feedback;
pub mod registry;
