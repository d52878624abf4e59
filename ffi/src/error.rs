//! Result codes, the thread-local last error message, and the panic boundary every exported
//! function runs inside.

use std::cell::RefCell;
use std::ffi::{c_char, c_uint, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

use c2d_core::{Error, ErrorKind};

/// What a c2d function did: `C2D_RESULT_OK` (0), or why it failed. One code per error kind of
/// the engine, each telling the caller what to do, plus `C2D_RESULT_PANIC`.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(non_camel_case_types)]
pub enum c2d_result {
    /// Success.
    #[default]
    Ok = 0,
    /// The call itself is wrong (a NULL or malformed argument, a bad connection string or
    /// option): fix the call.
    InvalidArgument = 1,
    /// The credentials were refused or lack the right: fix the credentials.
    Unauthorized = 2,
    /// The device is not registered in the hub: register it.
    DeviceNotFound = 3,
    /// The device's queue is full: wait for the device to drain it.
    QueueFull = 4,
    /// The message is larger than the hub accepts: send less.
    MessageTooLarge = 5,
    /// The hub throttled the request: slow down.
    Throttled = 6,
    /// The hub could not be reached or is not serving now: retry later.
    Unavailable = 7,
    /// The operation did not finish in time (or nothing arrived within the timeout): retry
    /// or give up.
    Timeout = 8,
    /// The message's lock expired or was lost with its connection: expect a redelivery.
    MessageLockLost = 9,
    /// The message was already completed, rejected or abandoned: fix the code path.
    AlreadySettled = 10,
    /// The transport cannot do this (reject or abandon over MQTT): use another transport.
    Unsupported = 11,
    /// The client or hub was closed: make a new one.
    Closed = 12,
    /// The peer broke the protocol: report the peer.
    Protocol = 13,
    /// A bug in c2d: report it.
    Internal = 14,
    /// c2d panicked inside this call (a bug: report it). The process was not aborted, but the
    /// object the call was given may be unusable; free it.
    Panic = 15,
    /// The hub's daily message quota is used up (IoT Hub 403002): not transient within the
    /// day; wait for the quota to reset (00:00 UTC) or add units.
    QuotaExceeded = 16,
}

impl c2d_result {
    /// The code of an engine error kind (exhaustive: a new kind needs a new code).
    pub(crate) fn of(kind: ErrorKind) -> c2d_result {
        match kind {
            ErrorKind::InvalidArgument => c2d_result::InvalidArgument,
            ErrorKind::Unauthorized => c2d_result::Unauthorized,
            ErrorKind::DeviceNotFound => c2d_result::DeviceNotFound,
            ErrorKind::QueueFull => c2d_result::QueueFull,
            ErrorKind::MessageTooLarge => c2d_result::MessageTooLarge,
            ErrorKind::Throttled => c2d_result::Throttled,
            ErrorKind::Unavailable => c2d_result::Unavailable,
            ErrorKind::Timeout => c2d_result::Timeout,
            ErrorKind::MessageLockLost => c2d_result::MessageLockLost,
            ErrorKind::AlreadySettled => c2d_result::AlreadySettled,
            ErrorKind::Unsupported => c2d_result::Unsupported,
            ErrorKind::Closed => c2d_result::Closed,
            ErrorKind::Protocol => c2d_result::Protocol,
            ErrorKind::Internal => c2d_result::Internal,
            ErrorKind::QuotaExceeded => c2d_result::QuotaExceeded,
            // ErrorKind is non_exhaustive for Rust callers; a kind added to core without a
            // code here is a bug of this crate, reported as such.
            _ => c2d_result::Internal,
        }
    }
}

thread_local! {
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

fn remember(message: &str) {
    let text = CString::new(message.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|last| *last.borrow_mut() = Some(text));
}

/// Runs the body of an exported function: an error becomes its code and this thread's last
/// error message; a panic becomes `Panic` instead of unwinding into C.
pub(crate) fn call(body: impl FnOnce() -> c2d_core::Result<()>) -> c2d_result {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => c2d_result::Ok,
        Ok(Err(e)) => {
            remember(&format!("{}: {}", e.kind().as_str(), e.message()));
            c2d_result::of(e.kind())
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            remember(&format!(
                "panic inside c2d (a bug, please report it): {what}"
            ));
            c2d_result::Panic
        }
    }
}

/// Runs a function that cannot fail but must not unwind into C (the `_free`s and getters of
/// static text); a panic is remembered as the last error and otherwise ignored.
pub(crate) fn call_infallible(body: impl FnOnce()) {
    let _ = call(|| {
        body();
        Ok(())
    });
}

/// An `InvalidArgument` error.
pub(crate) fn invalid(message: impl Into<String>) -> Error {
    Error::invalid_argument(message)
}

/// A short, static description of a result code (`"device not found"`).
///
/// @param result A `c2d_result` value. Values that are not a `c2d_result` give
///               `"unknown result"`.
/// @return Static, NUL-terminated text; never NULL, never to be freed.
///
/// Thread safety: callable from any thread.
#[no_mangle]
pub extern "C" fn c2d_result_str(result: c_uint) -> *const c_char {
    // the kinds' own names (ErrorKind::as_str), made C strings once
    static NAMES: OnceLock<Vec<(c2d_result, CString)>> = OnceLock::new();
    let names = NAMES.get_or_init(|| {
        let kinds = ErrorKind::ALL.map(|k| (c2d_result::of(k), k.as_str()));
        [(c2d_result::Ok, "ok"), (c2d_result::Panic, "panic")]
            .into_iter()
            .chain(kinds)
            .map(|(code, name)| (code, CString::new(name).expect("no NUL in a kind's name")))
            .collect()
    });
    let name = names.iter().find(|(code, _)| *code as c_uint == result);
    name.map_or(c"unknown result".as_ptr(), |(_, name)| name.as_ptr())
}

/// Copies the message of the last failed c2d call *on this thread* into `buf`.
///
/// The message says what failed and why (for example
/// `"unauthorized: the hub refused the credentials (CONNACK 5)"`). It is kept until the next
/// failing call on the same thread; successful calls leave it alone. Like `snprintf`, at most
/// `len - 1` bytes and a terminating NUL are written.
///
/// @param buf Where to write the message (NUL-terminated, truncated to fit). May be NULL when
///            `len` is 0, to ask for the length only.
/// @param len The size of `buf` in bytes.
/// @return The length of the whole message in bytes, without the NUL (0 when no call on this
///         thread has failed). A return value of `len` or more means the copy was truncated.
///
/// Thread safety: callable from any thread; each thread has its own last error.
#[no_mangle]
pub extern "C" fn c2d_last_error_message(buf: *mut c_char, len: usize) -> usize {
    catch_unwind(|| {
        LAST_ERROR.with(|last| {
            let last = last.borrow();
            let bytes = last.as_ref().map_or(&[][..], |m| m.as_bytes());
            if !buf.is_null() && len > 0 {
                let n = bytes.len().min(len - 1);
                // SAFETY: the caller gives a buffer of `len` bytes; we write at most `len`.
                unsafe {
                    std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf.cast::<u8>(), n);
                    *buf.add(n) = 0;
                }
            }
            bytes.len()
        })
    })
    .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::ffi::CStr;

    #[test]
    fn every_error_kind_has_its_own_code_and_text() {
        let mut codes = HashSet::new();
        let mut names = HashSet::new();
        for kind in ErrorKind::ALL {
            let code = c2d_result::of(kind);
            assert_ne!(code, c2d_result::Ok);
            assert!(codes.insert(code as u32), "{kind:?} shares a code");
            // SAFETY: c2d_result_str returns static NUL-terminated text.
            let text = unsafe { CStr::from_ptr(c2d_result_str(code as u32)) };
            assert_eq!(text.to_str().unwrap(), kind.as_str());
            assert!(names.insert(text.to_owned()));
        }
        assert_eq!(codes.len(), ErrorKind::ALL.len());
        assert!(!codes.contains(&(c2d_result::Panic as u32)));
    }

    #[test]
    fn a_panic_becomes_a_result_code_and_a_message() {
        assert_eq!(call(|| panic!("boom")), c2d_result::Panic);
        let mut buf = [0 as c_char; 128];
        let n = c2d_last_error_message(buf.as_mut_ptr(), buf.len());
        // SAFETY: the buffer was NUL-terminated by c2d_last_error_message.
        let text = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap();
        assert_eq!(n, text.len());
        assert!(text.contains("boom"), "{text}");
    }
}
