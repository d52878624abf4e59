//! One message to many devices: `c2d_service_client_send_many`, its options and its summary.

use std::ffi::{c_char, c_int, c_void, CString};

use c2d_core::{FanOut, FanOutSummary, Rate, Tier};

use crate::args::{get, into_handle, set_option, text, Out};
use crate::error::{c2d_result, call, invalid};
use crate::message::c2d_message;
use crate::retry::{c2d_retry_policy, policy_of};
use crate::runtime::block_on;
use crate::service::client::{c2d_sent_message, c2d_service_client};

/// An IoT Hub tier, for `c2d_fan_out_options_set_tier` and `c2d_hub_options_set_tier`.
pub type c2d_tier = u32;
/// Free: the S1 throttles, one unit.
pub const C2D_TIER_F1: c2d_tier = 1;
/// Standard S1: 100 C2D sends a minute a unit.
pub const C2D_TIER_S1: c2d_tier = 2;
/// Standard S2: as S1 for C2D.
pub const C2D_TIER_S2: c2d_tier = 3;
/// Standard S3: 5 000 C2D sends a minute a unit.
pub const C2D_TIER_S3: c2d_tier = 4;

/// The tier of a `c2d_tier` code.
pub(crate) fn tier_of(tier: c2d_tier) -> c2d_core::Result<Tier> {
    match tier {
        C2D_TIER_F1 => Ok(Tier::F1),
        C2D_TIER_S1 => Ok(Tier::S1),
        C2D_TIER_S2 => Ok(Tier::S2),
        C2D_TIER_S3 => Ok(Tier::S3),
        _ => Err(invalid(format!("{tier} is not a C2D_TIER_*"))),
    }
}

/// How `c2d_service_client_send_many` sends: made by `c2d_fan_out_options_new`, changed by
/// the setters, copied by the call, freed by `c2d_fan_out_options_free`.
#[derive(Default)]
pub struct c2d_fan_out_options(FanOut);

/// Makes fan-out options with every setting at its default: 64 sends in flight, no pacing,
/// the client's retry policy.
///
/// @param out_options Receives the options, owned by the caller (free them with
///                    `c2d_fan_out_options_free`).
/// @retval C2D_RESULT_OK The options were made.
/// @retval C2D_RESULT_INVALID_ARGUMENT `out_options` is NULL.
///
/// Thread safety: callable from any thread.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_fan_out_options_new(
    out_options: *mut *mut c2d_fan_out_options,
) -> c2d_result {
    call(|| {
        Out::new(out_options, "out_options")?.write(into_handle(c2d_fan_out_options::default()));
        Ok(())
    })
}

/// Frees fan-out options.
///
/// @param options The options, or NULL (nothing happens).
///
/// Thread safety: callable from any thread, once, when no other call is using them.
#[no_mangle]
pub extern "C" fn c2d_fan_out_options_free(options: *mut c2d_fan_out_options) {
    // SAFETY: `options` came from c2d_fan_out_options_new (the C contract).
    crate::error::call_infallible(|| drop(unsafe { crate::args::from_handle(options) }))
}

/// Sets how many sends may wait for the hub's answer at once (64 by default).
///
/// @param options The options.
/// @param in_flight At least 1.
/// @retval C2D_RESULT_OK The limit was set.
/// @retval C2D_RESULT_INVALID_ARGUMENT `options` is NULL or `in_flight` is 0.
///
/// Thread safety: not concurrently with other calls on the same options.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_fan_out_options_set_in_flight(
    options: *mut c2d_fan_out_options,
    in_flight: u32,
) -> c2d_result {
    set_option(options, |o| {
        if in_flight == 0 {
            return Err(invalid("in_flight is at least 1"));
        }
        o.0.in_flight = in_flight as usize;
        Ok(())
    })
}

/// Starts at most `per_second` sends a second (no pacing by default).
///
/// @param options The options.
/// @param per_second A positive number.
/// @retval C2D_RESULT_OK The rate was set.
/// @retval C2D_RESULT_INVALID_ARGUMENT `options` is NULL or `per_second` is not positive.
///
/// Thread safety: not concurrently with other calls on the same options.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_fan_out_options_set_rate(
    options: *mut c2d_fan_out_options,
    per_second: f64,
) -> c2d_result {
    set_option(options, |o| {
        let rate = Rate::PerSecond(per_second);
        rate.per_second()
            .filter(|r| r.is_finite() && *r > 0.0)
            .ok_or_else(|| invalid(format!("a rate is positive, not {per_second}")))?;
        o.0.rate = rate;
        Ok(())
    })
}

/// Paces the sends to the C2D send throttle of an IoT hub of `tier` with `units` units
/// (S1: 100 a minute a unit; S3: 5 000), replacing a rate.
///
/// @param options The options.
/// @param tier A `C2D_TIER_*`.
/// @param units 1 to the tier's most (F1: 1; S1, S2: 200; S3: 10).
/// @retval C2D_RESULT_OK The pace was set.
/// @retval C2D_RESULT_INVALID_ARGUMENT `options` is NULL, or the tier has no such units.
///
/// Thread safety: not concurrently with other calls on the same options.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_fan_out_options_set_tier(
    options: *mut c2d_fan_out_options,
    tier: c2d_tier,
    units: u32,
) -> c2d_result {
    set_option(options, |o| {
        let tier = tier_of(tier)?;
        tier.check_units(units)?;
        o.0.rate = tier.units(units);
        Ok(())
    })
}

/// Sets how each device's send is retried (the client's policy by default).
///
/// @param options The options.
/// @param policy The policy (copied; the caller keeps and frees it).
/// @retval C2D_RESULT_OK The policy was set.
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
///
/// Thread safety: not concurrently with other calls on the same options.
#[no_mangle]
#[must_use]
pub extern "C" fn c2d_fan_out_options_set_retry(
    options: *mut c2d_fan_out_options,
    policy: *const c2d_retry_policy,
) -> c2d_result {
    set_option(options, |o| {
        o.0.retry = Some(policy_of(policy)?);
        Ok(())
    })
}

/// What a `c2d_service_client_send_many` did.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct c2d_fan_out_summary {
    /// Devices whose message the hub took.
    pub sent: u64,
    /// Devices whose message it did not take.
    pub failed: u64,
    /// Of those, how many failed with each result (indexed by its `c2d_result` value; room
    /// for the codes to come).
    pub failed_by_result: [u64; 32],
    /// Attempts made again after a throttling or transient error.
    pub retried: u64,
    /// Attempts the hub refused as throttled (retried or not).
    pub throttled: u64,
    /// Milliseconds from the call to the last result.
    pub elapsed_ms: u64,
    /// `C2D_RESULT_OK`, or what ended the run before its last device
    /// (`C2D_RESULT_UNAUTHORIZED`, `C2D_RESULT_QUOTA_EXCEEDED`, `C2D_RESULT_CLOSED`): the
    /// devices after it were not tried.
    pub stopped: c2d_result,
    /// Whether the callback ended the run early (the devices after were not tried).
    pub cancelled: bool,
}

fn summary(s: &FanOutSummary) -> c2d_fan_out_summary {
    let mut out = c2d_fan_out_summary {
        sent: s.sent,
        failed: s.failed_total(),
        retried: s.retried,
        throttled: s.throttled,
        elapsed_ms: s.elapsed.as_millis() as u64,
        stopped: s
            .stopped
            .as_ref()
            .map_or(c2d_result::Ok, |e| c2d_result::of(e.kind())),
        cancelled: s.cancelled,
        ..Default::default()
    };
    for (kind, n) in &s.failed {
        out.failed_by_result[c2d_result::of(*kind) as usize] += n;
    }
    out
}

/// Called once per device by `c2d_service_client_send_many`, on the calling thread:
/// `context` as given; the device's id; `C2D_RESULT_OK` and the sent message (owned by the
/// callback: wait on its outcome, keep it, or free it with `c2d_sent_message_free`), or the
/// failure's result, `sent` NULL, and `message` saying why. `device_id` and `message` are
/// valid during the call. Return 0 to go on, anything else to start no new send (those in
/// flight are still reported). The callback must not call `c2d_service_client_send_many`
/// on the same client.
pub type c2d_send_many_callback = Option<
    unsafe extern "C" fn(
        context: *mut c_void,
        device_id: *const c_char,
        result: c2d_result,
        sent: *mut c2d_sent_message,
        message: *const c_char,
    ) -> c_int,
>;

/// Sends a message to many devices, each with its own message id (the message's id, `:` and
/// the device id; or a new UUID each when the message has none), and reports each device's
/// result to `callback` as it completes. At most `in_flight` sends wait for the hub at once,
/// started no faster than the options' rate or tier; throttling and transient errors are
/// retried per device (each throttling slowing the whole run), an unknown device, a full
/// queue or a message too large fail that device at once, refused credentials or a closed
/// client end the run.
///
/// @param client The client.
/// @param device_ids The devices' ids (`count` NUL-terminated UTF-8 strings; the caller keeps
///                   them).
/// @param count How many.
/// @param message The message (the caller keeps and frees it).
/// @param options Fan-out options, or NULL for the defaults (copied).
/// @param callback Called for each device's result (see `c2d_send_many_callback`).
/// @param context Given to `callback`.
/// @param out_summary Receives what the run did, or NULL.
/// @retval C2D_RESULT_OK The run went through its devices (each device's own result went
///         to `callback`; the summary counts them).
/// @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL or an id is not UTF-8.
/// @retval C2D_RESULT_UNAUTHORIZED, C2D_RESULT_CLOSED The run ended early for this reason
///         (the summary says how far it got).
///
/// Thread safety: callable from any thread. Blocks until every device is done.
#[no_mangle]
#[must_use]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn c2d_service_client_send_many(
    client: *const c2d_service_client,
    device_ids: *const *const c_char,
    count: usize,
    message: *const c2d_message,
    options: *const c2d_fan_out_options,
    callback: c2d_send_many_callback,
    context: *mut c_void,
    out_summary: *mut c2d_fan_out_summary,
) -> c2d_result {
    call(|| {
        let c = get(client, "client")?;
        let message = get(message, "message")?.message().clone();
        let callback = callback.ok_or_else(|| invalid("callback is NULL"))?;
        if device_ids.is_null() && count > 0 {
            return Err(invalid("device_ids is NULL"));
        }
        // checked before anything is sent, so that a bad id fails the call, not a device
        let ids: Vec<String> = (0..count)
            .map(|i| {
                // SAFETY: `count` readable pointers (the C contract).
                let p = unsafe { *device_ids.add(i) };
                text(p, "a device id").map(str::to_string)
            })
            .collect::<c2d_core::Result<_>>()?;
        let default = c2d_fan_out_options::default();
        // SAFETY: NULL means the defaults; otherwise options from c2d_fan_out_options_new.
        let fan = unsafe { options.as_ref() }.unwrap_or(&default).0.clone();
        c.check_open()?;
        let mut run = c.client.send_many(ids, message, fan)?;
        let context = crate::retry::UserData(context);
        block_on(async {
            let context = &context;
            while let Some((device, result)) = run.next().await {
                let device = CString::new(device).unwrap_or_default();
                let go_on = match result {
                    Ok(sent) => {
                        let message_id = CString::new(sent.message_id()).unwrap_or_default();
                        let sent = into_handle(c2d_sent_message::new(sent, message_id));
                        // SAFETY: the caller's callback, with pointers valid for the call.
                        unsafe {
                            callback(
                                context.0,
                                device.as_ptr(),
                                c2d_result::Ok,
                                sent,
                                c"".as_ptr(),
                            )
                        }
                    }
                    Err(e) => {
                        let why = CString::new(e.message()).unwrap_or_default();
                        // SAFETY: as above.
                        unsafe {
                            callback(
                                context.0,
                                device.as_ptr(),
                                c2d_result::of(e.kind()),
                                std::ptr::null_mut(),
                                why.as_ptr(),
                            )
                        }
                    }
                };
                if go_on != 0 {
                    run.stop();
                }
            }
        })?;
        let s = run.summary();
        if let Some(out) = std::ptr::NonNull::new(out_summary) {
            // SAFETY: a non-NULL out-parameter given by the caller.
            unsafe { out.as_ptr().write(summary(&s)) };
        }
        match s.stopped {
            Some(e) => Err(e),
            None => Ok(()),
        }
    })
}
