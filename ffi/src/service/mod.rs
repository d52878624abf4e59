//! The service side: client, feedback records, registry.

pub mod client;
pub mod fanout;
pub mod feedback;
pub mod registry;
