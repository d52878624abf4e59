//! The queue rules of the hub. Defaults equal IoT Hub's (docs/hub.md, "Queue rules").

use std::time::Duration;

/// The C2D and feedback queue rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Messages a device's queue may hold; one more is refused (403004).
    pub max_queue_depth: usize,
    /// Largest message, counting body, system property values and application properties.
    pub max_message_size: usize,
    /// Time to live of a message that sets no expiry.
    pub default_ttl: Duration,
    /// Longest time to live a message may have; later expiries are brought forward to it.
    pub max_ttl: Duration,
    /// How long a delivered, unsettled message stays locked before it is enqueued again.
    pub lock_timeout: Duration,
    /// Abandons after which a message is dead-lettered (DeliveryCountExceeded).
    pub max_delivery_count: u32,
    /// Time to live of a feedback message.
    pub feedback_ttl: Duration,
    /// Lock of a delivered feedback message.
    pub feedback_lock_timeout: Duration,
    /// Abandons after which a feedback message is dropped.
    pub feedback_max_delivery_count: u32,
    /// Records in one feedback message at most.
    pub feedback_batch_size: usize,
    /// Least time between two feedback messages (unless a batch is full).
    pub feedback_interval: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_queue_depth: 50,
            max_message_size: 64 * 1024,
            default_ttl: Duration::from_secs(3600),
            max_ttl: Duration::from_secs(2 * 24 * 3600),
            lock_timeout: Duration::from_secs(60),
            max_delivery_count: 10,
            feedback_ttl: Duration::from_secs(3600),
            feedback_lock_timeout: Duration::from_secs(60),
            feedback_max_delivery_count: 10,
            feedback_batch_size: 64,
            feedback_interval: Duration::from_secs(15),
        }
    }
}
