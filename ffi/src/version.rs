//! The library's version, as macros for the compiler and a function for the running library.

use std::ffi::c_char;

/// The major version of the header (`C2D_VERSION_MAJOR`).
pub const C2D_VERSION_MAJOR: u32 = 0;
/// The minor version of the header.
pub const C2D_VERSION_MINOR: u32 = 1;
/// The patch version of the header.
pub const C2D_VERSION_PATCH: u32 = 0;

/// The version of the loaded library, `"MAJOR.MINOR.PATCH"`; compare it with the
/// `C2D_VERSION_*` macros to detect a header/library mismatch.
///
/// @return Static, NUL-terminated text; never NULL, never to be freed.
///
/// Thread safety: callable from any thread.
#[no_mangle]
pub extern "C" fn c2d_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_macros_are_the_crate_version() {
        assert_eq!(
            format!("{C2D_VERSION_MAJOR}.{C2D_VERSION_MINOR}.{C2D_VERSION_PATCH}"),
            env!("CARGO_PKG_VERSION")
        );
    }
}
