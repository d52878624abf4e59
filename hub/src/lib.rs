//! A local, Azure-IoT-Hub-compatible hub for cloud-to-device messaging.

pub mod clock;
pub mod feedback;
pub mod limits;
pub mod queue;
pub mod registry;
