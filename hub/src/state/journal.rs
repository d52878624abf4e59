//! What an operation on the state leaves for the store: the rows it changed and the waiters
//! to wake once they are committed.
//!
//! Pure: imports nothing of the crate.

/// A row that an operation changed; the store rewrites (or deletes) it from memory.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Dirty {
    /// A device row.
    Device(String),
    /// A new message row (body included).
    NewMessage(String, u64),
    /// A message's state columns (or the row's removal).
    Message(String, u64),
    /// All of a device's messages were removed.
    DeviceMessages(String),
    /// A feedback record row.
    FeedbackRecord(u64),
    /// A feedback batch row.
    FeedbackBatch(u64),
}

/// What a commit should wake.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Wakeup {
    /// A device's queue has deliverable messages.
    Device(String),
    /// The feedback queue has a deliverable batch.
    Feedback,
}
