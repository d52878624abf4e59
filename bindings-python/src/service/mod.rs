//! The service side: the client, feedback, and the registry.

pub mod client;
pub mod fanout;
pub mod feedback;
pub mod registry;
