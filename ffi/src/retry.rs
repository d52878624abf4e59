//! Retry policies for connecting and for operations.

use std::ffi::c_void;
use std::time::Duration;

use c2d_core::RetryPolicy;

use crate::args::{from_handle, get, into_handle, Out};
use crate::error::{c2d_result, call, call_infallible};

/// `max_retries` value that means "retry without end".
pub const C2D_RETRIES_UNLIMITED: u32 = u32::MAX;

/// A retry policy: how long to wait before trying again, and when to give up. Errors that
/// retrying cannot fix (unauthorized, device not found, queue full, too large) are never
/// retried, whatever the policy. Give it to `c2d_device_options_set_retry` or
/// `c2d_service_options_set_retry`, which copy it; free it with `c2d_retry_policy_free`.
pub struct c2d_retry_policy(pub(crate) RetryPolicy);

/// Decides a retry of a custom policy.
///
/// @param user_data The pointer given to `c2d_retry_policy_custom_new`.
/// @param retry The retry number: 1 for the first retry.
/// @param error Why the last attempt failed (always a transient error).
/// @param out_delay_ms Where to write how long to wait before the retry.
/// @return true to retry after `*out_delay_ms`, false to give up with `error`.
///
/// Runs on one of c2d's runtime threads: it must return quickly, and must not call c2d
/// functions that wait (they fail with `C2D_RESULT_INVALID_ARGUMENT` there).
pub type c2d_retry_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        retry: u32,
        error: c2d_result,
        out_delay_ms: *mut u32,
    ) -> bool,
>;

/// A `user_data` pointer the caller promised may be used from c2d's threads.
#[derive(Clone, Copy)]
pub(crate) struct UserData(pub(crate) *mut c_void);
// SAFETY: the C API documents that `user_data` is used from library threads.
unsafe impl Send for UserData {}
// SAFETY: as above.
unsafe impl Sync for UserData {}

fn limit(max_retries: u32) -> Option<u32> {
    (max_retries != C2D_RETRIES_UNLIMITED).then_some(max_retries)
}

fn make(
    out_policy: *mut *mut c2d_retry_policy,
    policy: impl FnOnce() -> RetryPolicy,
) -> c2d_result {
    call(|| {
        let out = Out::new(out_policy, "out_policy")?;
        out.write(into_handle(c2d_retry_policy(policy())));
        Ok(())
    })
}

/// Makes a policy that never retries: the first failure is returned.
///
/// @param out_policy Receives the new policy, owned by the caller (free it with
///                   `c2d_retry_policy_free`).
/// @retval C2D_RESULT_OK The policy was made.
/// @retval C2D_RESULT_INVALID_ARGUMENT `out_policy` is NULL.
///
/// Thread safety: callable from any thread.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_retry_policy_none_new(out_policy: *mut *mut c2d_retry_policy) -> c2d_result {
    make(out_policy, || RetryPolicy::None)
}

/// Makes a policy that waits the same time before every retry.
///
/// @param interval_ms The wait before each retry, in milliseconds.
/// @param max_retries Retries at most, or `C2D_RETRIES_UNLIMITED`.
/// @param out_policy Receives the new policy, owned by the caller.
/// @retval C2D_RESULT_OK The policy was made.
/// @retval C2D_RESULT_INVALID_ARGUMENT `out_policy` is NULL.
///
/// Thread safety: callable from any thread.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_retry_policy_fixed_new(
    interval_ms: u32,
    max_retries: u32,
    out_policy: *mut *mut c2d_retry_policy,
) -> c2d_result {
    make(out_policy, || RetryPolicy::Fixed {
        interval: Duration::from_millis(interval_ms.into()),
        max_attempts: limit(max_retries),
    })
}

/// Makes an exponential back-off policy with jitter (the default of every client: 100 ms
/// doubling up to 10 s, without end): waits double from `initial_ms` up to `max_ms`, each
/// shortened by a random part of up to a quarter, so that many devices do not retry in step.
///
/// @param initial_ms The first wait, in milliseconds.
/// @param max_ms The longest wait, in milliseconds.
/// @param max_retries Retries at most, or `C2D_RETRIES_UNLIMITED`.
/// @param out_policy Receives the new policy, owned by the caller.
/// @retval C2D_RESULT_OK The policy was made.
/// @retval C2D_RESULT_INVALID_ARGUMENT `out_policy` is NULL, or `initial_ms` > `max_ms`.
///
/// Thread safety: callable from any thread.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_retry_policy_exponential_new(
    initial_ms: u32,
    max_ms: u32,
    max_retries: u32,
    out_policy: *mut *mut c2d_retry_policy,
) -> c2d_result {
    call(|| {
        let out = Out::new(out_policy, "out_policy")?;
        let policy = RetryPolicy::exponential(
            Duration::from_millis(initial_ms.into()),
            Duration::from_millis(max_ms.into()),
            RetryPolicy::DEFAULT_JITTER,
            limit(max_retries),
        )?;
        out.write(into_handle(c2d_retry_policy(policy)));
        Ok(())
    })
}

/// Makes a policy of the caller's own: `callback` decides each retry.
///
/// @param callback Called before each retry (see `c2d_retry_callback`); must not be NULL.
/// @param user_data Passed to `callback` as is; must stay valid for as long as a client made
///                  with this policy exists, and be usable from c2d's threads.
/// @param out_policy Receives the new policy, owned by the caller.
/// @retval C2D_RESULT_OK The policy was made.
/// @retval C2D_RESULT_INVALID_ARGUMENT `callback` or `out_policy` is NULL.
///
/// Thread safety: callable from any thread.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_retry_policy_custom_new(
    callback: c2d_retry_callback,
    user_data: *mut c_void,
    out_policy: *mut *mut c2d_retry_policy,
) -> c2d_result {
    let Some(callback) = callback else {
        return call(|| Err(crate::error::invalid("callback is NULL")));
    };
    let user_data = UserData(user_data);
    make(out_policy, move || {
        RetryPolicy::custom(move |retry, error| {
            let user_data = user_data;
            let mut delay_ms = 0u32;
            // SAFETY: a C function pointer the caller gave us, called as documented.
            let again = unsafe {
                callback(
                    user_data.0,
                    retry,
                    c2d_result::of(error.kind()),
                    &mut delay_ms,
                )
            };
            again.then(|| Duration::from_millis(delay_ms.into()))
        })
    })
}

/// Frees a retry policy. Clients made with it keep their own copy.
///
/// @param policy The policy, or NULL (nothing happens).
///
/// Thread safety: callable from any thread, once per policy.
#[no_mangle]
pub extern "C" fn c2d_retry_policy_free(policy: *mut c2d_retry_policy) {
    // SAFETY: the policy came from one of the constructors above (the C contract).
    call_infallible(|| drop(unsafe { from_handle(policy) }))
}

/// The policy behind a handle, copied.
pub(crate) fn policy_of(policy: *const c2d_retry_policy) -> c2d_core::Result<RetryPolicy> {
    Ok(get(policy, "policy")?.0.clone())
}
