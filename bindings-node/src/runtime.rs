//! Promises of the engine's work: the future runs on the engine's runtime and settles a
//! JavaScript promise on the JavaScript thread, so nothing blocks the event loop. A pending
//! promise keeps the process alive, as a pending socket read does; nothing else does.

use std::future::Future;

use napi::bindgen_prelude::{Object, ToNapiValue};
use napi::{Env, Result};

use crate::error::js_error;

/// A promise of `future`'s value, or of its error as the error class of its kind.
pub fn promise<'env, T, F>(env: &'env Env, future: F) -> Result<Object<'env>>
where
    F: Future<Output = c2d::Result<T>> + Send + 'static,
    T: ToNapiValue + Send + 'static,
{
    let (deferred, promise) = env.create_deferred()?;
    c2d::runtime::spawn(async move {
        let result = future.await;
        deferred.resolve(move |env| result.map_err(|e| js_error(&env, &e)));
    })
    .map_err(|e| js_error(env, &e))?;
    Ok(promise)
}

pub use c2d::duration::{millis, opt_millis};

/// A time as milliseconds since the Unix epoch (what a JavaScript `Date` is made from).
pub fn epoch_millis(t: std::time::SystemTime) -> f64 {
    match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64() * 1000.0,
        Err(before) => -before.duration().as_secs_f64() * 1000.0,
    }
}
