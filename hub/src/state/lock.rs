//! The vocabulary of locks that both queues share (device messages and feedback batches):
//! a delivered item's lock, how it is settled, and the error of a lock that is gone.
//!
//! Pure: imports nothing of the crate.

use std::time::SystemTime;

use uuid::Uuid;

/// The lock of a delivered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    /// The lock token (the AMQP delivery tag, the HTTP ETag).
    pub token: Uuid,
    /// When the lock ends and the message is enqueued again.
    pub expires: SystemTime,
    /// The connection (receiver) that holds it.
    pub owner: u64,
}

/// How a device settles a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// Done: Completed, `Success` feedback.
    Complete,
    /// Dead-lettered: `Rejected` feedback.
    Reject,
    /// Back to the queue with delivery count + 1; dead-lettered at the limit.
    Abandon,
}

/// The lock is unknown, expired or another device's (412002 DeviceMessageLockLost).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the message lock was lost or has expired")]
pub struct LockLost;
