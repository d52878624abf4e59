//! Feedback records: the outcome of one sent message.

use std::ffi::c_char;

use c2d_core::timestamp::to_unix_millis;
use c2d_core::{FeedbackRecord, FeedbackStatus};

use crate::args::{from_handle, get, read_text, CText, Out};
use crate::error::{c2d_result, call, call_infallible};

/// The outcome a feedback record reports.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum c2d_feedback_status {
    /// The device completed the message.
    Success = 0,
    /// The message's time to live passed before it was completed.
    Expired = 1,
    /// The message was abandoned as many times as the hub allows.
    DeliveryCountExceeded = 2,
    /// The device rejected the message.
    Rejected = 3,
    /// The device's queue was purged.
    Purged = 4,
}

/// One feedback record. Owned by the caller, freed with `c2d_feedback_record_free`; its
/// strings belong to it.
pub struct c2d_feedback_record {
    record: FeedbackRecord,
    original_message_id: CText,
    device_id: CText,
    description: CText,
}

impl c2d_feedback_record {
    pub(crate) fn new(record: FeedbackRecord) -> Self {
        c2d_feedback_record {
            original_message_id: CText::of(Some(&record.original_message_id)),
            device_id: CText::of(Some(&record.device_id)),
            description: CText::of(Some(&record.description)),
            record,
        }
    }
}

/// The name IoT Hub gives a status (`"DeliveryCountExceeded"`).
///
/// @param status A `c2d_feedback_status`; other values give `"Unknown"`.
/// @return Static, NUL-terminated text; never NULL, never to be freed.
///
/// Thread safety: callable from any thread.
#[no_mangle]
pub extern "C" fn c2d_feedback_status_str(status: u32) -> *const c_char {
    let text = match status {
        0 => "Success\0",
        1 => "Expired\0",
        2 => "DeliveryCountExceeded\0",
        3 => "Rejected\0",
        4 => "Purged\0",
        _ => "Unknown\0",
    };
    text.as_ptr().cast()
}

/// Reads the outcome.
///
/// @param record The record.
/// @param out_status Receives the outcome.
/// @retval C2D_RESULT_OK The outcome was read.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
///
/// Thread safety: callable from any thread while the record is not being freed.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_feedback_record_status(
    record: *const c2d_feedback_record,
    out_status: *mut c2d_feedback_status,
) -> c2d_result {
    call(|| {
        let out = Out::new(out_status, "out_status")?;
        out.write(match get(record, "record")?.record.status {
            FeedbackStatus::Success => c2d_feedback_status::Success,
            FeedbackStatus::Expired => c2d_feedback_status::Expired,
            FeedbackStatus::DeliveryCountExceeded => c2d_feedback_status::DeliveryCountExceeded,
            FeedbackStatus::Rejected => c2d_feedback_status::Rejected,
            FeedbackStatus::Purged => c2d_feedback_status::Purged,
        });
        Ok(())
    })
}

/// Reads the id of the message the record is about.
///
/// @param record The record.
/// @param out_value Receives the message id, NUL-terminated and owned by the record.
/// @retval C2D_RESULT_OK The id was read.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
/// @retval C2D_RESULT_PROTOCOL The id holds a NUL byte.
///
/// Thread safety: callable from any thread while the record is not being freed.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_feedback_record_original_message_id(
    record: *const c2d_feedback_record,
    out_value: *mut *const c_char,
) -> c2d_result {
    read_text(record, "record", out_value, "message id", |r| {
        &r.original_message_id
    })
}

/// Reads the id of the device the message was for.
///
/// @param record The record.
/// @param out_value Receives the device id, NUL-terminated and owned by the record.
/// @retval C2D_RESULT_OK The id was read.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
/// @retval C2D_RESULT_PROTOCOL The id holds a NUL byte.
///
/// Thread safety: callable from any thread while the record is not being freed.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_feedback_record_device_id(
    record: *const c2d_feedback_record,
    out_value: *mut *const c_char,
) -> c2d_result {
    read_text(record, "record", out_value, "device id", |r| &r.device_id)
}

/// Reads the hub's description of the outcome.
///
/// @param record The record.
/// @param out_value Receives the description, NUL-terminated and owned by the record.
/// @retval C2D_RESULT_OK The description was read.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
/// @retval C2D_RESULT_PROTOCOL The description holds a NUL byte.
///
/// Thread safety: callable from any thread while the record is not being freed.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_feedback_record_description(
    record: *const c2d_feedback_record,
    out_value: *mut *const c_char,
) -> c2d_result {
    read_text(record, "record", out_value, "description", |r| {
        &r.description
    })
}

/// Reads when the outcome happened.
///
/// @param record The record.
/// @param out_value Receives milliseconds since the Unix epoch.
/// @retval C2D_RESULT_OK The time was read.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
///
/// Thread safety: callable from any thread while the record is not being freed.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_feedback_record_enqueued_time_ms(
    record: *const c2d_feedback_record,
    out_value: *mut i64,
) -> c2d_result {
    call(|| {
        let out = Out::new(out_value, "out_value")?;
        out.write(to_unix_millis(get(record, "record")?.record.enqueued_time));
        Ok(())
    })
}

/// Frees a feedback record.
///
/// @param record The record, or NULL (nothing happens).
///
/// Thread safety: callable from any thread, once per record.
#[no_mangle]
pub extern "C" fn c2d_feedback_record_free(record: *mut c2d_feedback_record) {
    // SAFETY: the record came from this library (the C contract).
    call_infallible(|| drop(unsafe { from_handle(record) }))
}
