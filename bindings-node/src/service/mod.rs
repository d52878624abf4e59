//! The service side: the client, its feedback stream and the registry.

pub mod client;
pub mod fanout;
pub mod feedback;
pub mod registry;
