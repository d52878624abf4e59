//! Checking what C hands us: NULL pointers, C strings, out-parameters, handles.

use std::ffi::{c_char, CStr, CString};
use std::ptr::NonNull;

use c2d_core::Result;

use crate::error::invalid;

/// A reference to the object behind a handle; NULL is an `InvalidArgument` error naming the
/// parameter.
pub(crate) fn get<'a, T>(ptr: *const T, name: &str) -> Result<&'a T> {
    // SAFETY: a non-NULL handle was made by this library and is alive (the C contract).
    unsafe { ptr.as_ref() }.ok_or_else(|| invalid(format!("{name} is NULL")))
}

/// A mutable reference to the object behind a handle.
pub(crate) fn get_mut<'a, T>(ptr: *mut T, name: &str) -> Result<&'a mut T> {
    // SAFETY: as for `get`; the C contract forbids concurrent calls on mutable objects.
    unsafe { ptr.as_mut() }.ok_or_else(|| invalid(format!("{name} is NULL")))
}

/// A NUL-terminated UTF-8 string argument.
pub(crate) fn text<'a>(ptr: *const c_char, name: &str) -> Result<&'a str> {
    if ptr.is_null() {
        return Err(invalid(format!("{name} is NULL")));
    }
    // SAFETY: the caller passes a NUL-terminated string (the C contract).
    unsafe { CStr::from_ptr(ptr) }
        .to_str()
        .map_err(|_| invalid(format!("{name} is not valid UTF-8")))
}

/// A byte-buffer argument (`ptr` may be NULL only when `len` is 0).
pub(crate) fn bytes<'a>(ptr: *const u8, len: usize, name: &str) -> Result<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(invalid(format!("{name} is NULL but its length is {len}")));
    }
    // SAFETY: the caller passes `len` readable bytes (the C contract).
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Applies a setter to an options object (`options` is the parameter's name in every setter).
pub(crate) fn set_option<T>(
    options: *mut T,
    f: impl FnOnce(&mut T) -> Result<()>,
) -> crate::error::c2d_result {
    crate::error::call(|| f(get_mut(options, "options")?))
}

/// A port to dial (0 is not one).
pub(crate) fn dial_port(port: u16) -> Result<u16> {
    if port == 0 {
        return Err(invalid("port 0 cannot be dialled"));
    }
    Ok(port)
}

/// An operation timeout in milliseconds (at least 1).
pub(crate) fn timeout_ms(ms: u32) -> Result<std::time::Duration> {
    if ms == 0 {
        return Err(invalid("timeout_ms must be at least 1"));
    }
    Ok(std::time::Duration::from_millis(ms.into()))
}

/// Hands out one string of an object through `pick` (NULL when absent).
pub(crate) fn read_text<T>(
    object: *const T,
    name: &str,
    out_value: *mut *const c_char,
    what: &str,
    pick: impl FnOnce(&T) -> &CText,
) -> crate::error::c2d_result {
    crate::error::call(|| {
        let out = Out::new(out_value, "out_value")?;
        out.write(pick(get(object, name)?).ptr(what)?);
        Ok(())
    })
}

/// An out-parameter: checked for NULL before the work starts, written only on success.
pub(crate) struct Out<T>(NonNull<T>);

impl<T> Out<T> {
    pub(crate) fn new(ptr: *mut T, name: &str) -> Result<Self> {
        NonNull::new(ptr)
            .map(Out)
            .ok_or_else(|| invalid(format!("{name} is NULL")))
    }

    pub(crate) fn write(self, value: T) {
        // SAFETY: non-NULL, and the caller gives a writable location (the C contract). The
        // old value is not dropped: it is the caller's uninitialised memory.
        unsafe { self.0.as_ptr().write(value) }
    }
}

/// Moves an object to C as a handle that its `_free` takes back.
pub(crate) fn into_handle<T>(value: T) -> *mut T {
    Box::into_raw(Box::new(value))
}

/// Takes back a handle made by `into_handle`; NULL is `None`.
///
/// # Safety
/// `ptr` is NULL or came from `into_handle::<T>` and was not freed yet.
pub(crate) unsafe fn from_handle<T>(ptr: *mut T) -> Option<Box<T>> {
    (!ptr.is_null()).then(|| unsafe { Box::from_raw(ptr) })
}

/// Text handed to C: NUL-terminated, owned by the object that keeps it.
#[derive(Debug, Clone)]
pub(crate) enum CText {
    /// The value is not there.
    Absent,
    /// The value.
    Text(CString),
    /// The value holds a NUL byte, which a C string cannot carry.
    HasNul,
}

impl CText {
    pub(crate) fn of(value: Option<&str>) -> CText {
        match value {
            None => CText::Absent,
            Some(s) => CString::new(s).map_or(CText::HasNul, CText::Text),
        }
    }

    /// The pointer to hand out (NULL when absent), or a `Protocol` error for a NUL inside.
    pub(crate) fn ptr(&self, what: &str) -> Result<*const c_char> {
        match self {
            CText::Absent => Ok(std::ptr::null()),
            CText::Text(s) => Ok(s.as_ptr()),
            CText::HasNul => Err(c2d_core::Error::new(
                c2d_core::ErrorKind::Protocol,
                format!("the {what} holds a NUL byte, which a C string cannot carry"),
            )),
        }
    }
}

/// A string handed to C for it to own, freed with `c2d_string_free`.
#[cfg(feature = "service")]
pub(crate) fn owned_string(value: String) -> Result<*mut c_char> {
    CString::new(value)
        .map(CString::into_raw)
        .map_err(|_| invalid("the text holds a NUL byte"))
}

/// Frees a string that c2d gave to the caller (a device connection string, for example).
///
/// @param string A string returned by c2d for the caller to own, or NULL (nothing happens).
///               Passing any other pointer is undefined behaviour.
///
/// Thread safety: callable from any thread.
#[no_mangle]
pub extern "C" fn c2d_string_free(string: *mut c_char) {
    crate::error::call_infallible(|| {
        if !string.is_null() {
            // SAFETY: the string came from `owned_string` (CString::into_raw).
            drop(unsafe { CString::from_raw(string) });
        }
    })
}
