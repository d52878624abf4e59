//! Promises of the engine's work: the future runs on the engine's runtime and settles a
//! JavaScript promise on the JavaScript thread, so nothing blocks the event loop. A pending
//! promise keeps the process alive, as a pending socket read does; nothing else does.
//!
//! One wake-up settles many promises: each JavaScript thread (the main one, each worker) has
//! one threadsafe function, and the engine's threads queue finished work for it; a batch
//! that finishes together costs one wake-up of the event loop, where a threadsafe function
//! per promise (napi-rs's `create_deferred`) costs one each, with its creation and cleanup
//! hook on top.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::os::raw::c_void;
use std::ptr;
use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::{FromNapiValue, Object, ToNapiValue};
use napi::{sys, Env, Result, Status};
use napi_derive::napi;
use tokio::sync::watch;

use crate::error::js_error;

/// How a finished promise is settled, on its JavaScript thread: its value, or its error.
type Settle = Box<dyn FnOnce(&Env) -> std::result::Result<sys::napi_value, napi::Error> + Send>;

/// A promise whose work finished, waiting for its thread to settle it.
struct Finished {
    deferred: Deferred,
    settle: Settle,
}

/// A promise's deferred: made and used on its JavaScript thread only, carried by the engine's
/// threads in between.
struct Deferred(sys::napi_deferred);

// SAFETY: the handle is only dereferenced by N-API on the thread that made it (`drain`).
unsafe impl Send for Deferred {}

/// One JavaScript thread's side of the engine's promises.
struct Resolver {
    /// Wakes the thread; its calls run [`drain`].
    wake: Wake,
    /// What finished since the last drain; `None` once the env ended (the threadsafe
    /// function is gone, and the promises with it).
    finished: Mutex<Option<Vec<Finished>>>,
}

/// The threadsafe function of a [`Resolver`].
struct Wake(sys::napi_threadsafe_function);

// SAFETY: N-API's threadsafe functions are made to be called from any thread.
unsafe impl Send for Wake {}
unsafe impl Sync for Wake {}

impl Resolver {
    /// Queues `done`; the first of a batch wakes the JavaScript thread.
    fn finish(&self, done: Finished) {
        let mut finished = self.finished.lock().unwrap_or_else(|e| e.into_inner());
        let Some(queue) = finished.as_mut() else {
            return; // the env ended
        };
        queue.push(done);
        if queue.len() == 1 {
            // SAFETY: a live threadsafe function: `release` empties `finished` under this
            // lock before it goes
            unsafe {
                sys::napi_call_threadsafe_function(
                    self.wake.0,
                    ptr::null_mut(),
                    sys::ThreadsafeFunctionCallMode::nonblocking,
                );
            }
        }
    }
}

thread_local! {
    /// This JavaScript thread's resolver, and how many of its promises are pending (while
    /// some are, its threadsafe function keeps the event loop alive).
    static RESOLVER: RefCell<Option<Arc<Resolver>>> = const { RefCell::new(None) };
    static PENDING: Cell<usize> = const { Cell::new(0) };
}

/// This thread's resolver, made on first use.
fn resolver(env: &Env) -> Result<Arc<Resolver>> {
    RESOLVER.with(|r| {
        if let Some(resolver) = r.borrow().as_ref() {
            return Ok(resolver.clone());
        }
        let resolver = Arc::new(Resolver {
            wake: Wake(ptr::null_mut()),
            finished: Mutex::new(Some(Vec::new())),
        });
        let mut name = ptr::null_mut();
        let mut wake = ptr::null_mut();
        // the threadsafe function owns one count of the resolver, given back when the
        // env ends (`release`)
        let context = Arc::into_raw(resolver.clone()).cast_mut().cast::<c_void>();
        // SAFETY: plain N-API calls on this env's thread with valid out-pointers
        let status = unsafe {
            let label = c"c2d";
            sys::napi_create_string_utf8(env.raw(), label.as_ptr(), 3, &mut name);
            sys::napi_create_threadsafe_function(
                env.raw(),
                ptr::null_mut(),
                ptr::null_mut(),
                name,
                0,
                1,
                context,
                Some(release),
                context,
                Some(drain),
                &mut wake,
            )
        };
        if status != sys::Status::napi_ok {
            // SAFETY: the count given to the function that was not made
            drop(unsafe { Arc::from_raw(context.cast::<Resolver>()) });
            return Err(napi::Error::new(
                Status::GenericFailure,
                "c2d: cannot make the threadsafe function that settles promises",
            ));
        }
        // SAFETY: the resolver is not shared yet; `wake` is set once, before any use
        let resolver = unsafe {
            let raw = Arc::as_ptr(&resolver).cast_mut();
            (*raw).wake = Wake(wake);
            sys::napi_unref_threadsafe_function(env.raw(), wake);
            resolver
        };
        *r.borrow_mut() = Some(resolver.clone());
        Ok(resolver)
    })
}

/// Gives back the resolver's count when its env ends.
unsafe extern "C" fn release(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    // SAFETY: the count `resolver` gave the threadsafe function
    let resolver = unsafe { Arc::from_raw(data.cast::<Resolver>()) };
    resolver
        .finished
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    let _ = RESOLVER.try_with(|r| r.borrow_mut().take());
}

/// Settles every promise that finished, on its JavaScript thread.
unsafe extern "C" fn drain(
    env: sys::napi_env,
    _callback: sys::napi_value,
    context: *mut c_void,
    _data: *mut c_void,
) {
    // SAFETY: the resolver the threadsafe function holds a count of
    let resolver = unsafe { &*context.cast::<Resolver>() };
    let batch = resolver
        .finished
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_mut()
        .map(std::mem::take)
        .unwrap_or_default();
    if env.is_null() {
        return; // the env is ending: its promises go with it
    }
    let n = batch.len();
    let js = Env::from_raw(env);
    for Finished { deferred, settle } in batch {
        // SAFETY: each deferred is settled once, here, on the thread that made it
        unsafe {
            match settle(&js) {
                Ok(value) => sys::napi_resolve_deferred(env, deferred.0, value),
                Err(e) => match ToNapiValue::to_napi_value(env, e) {
                    Ok(error) => sys::napi_reject_deferred(env, deferred.0, error),
                    Err(_) => sys::napi_reject_deferred(env, deferred.0, ptr::null_mut()),
                },
            };
        }
    }
    let left = PENDING.with(|p| {
        p.set(p.get().saturating_sub(n));
        p.get()
    });
    if left == 0 && n > 0 {
        // SAFETY: on the env's thread
        unsafe { sys::napi_unref_threadsafe_function(env, resolver.wake.0) };
    }
}

/// A promise of `future`'s value, or of its error as the error class of its kind.
pub fn promise<'env, T, F>(env: &'env Env, future: F) -> Result<Object<'env>>
where
    F: Future<Output = c2d::Result<T>> + Send + 'static,
    T: ToNapiValue + Send + 'static,
{
    let resolver = resolver(env)?;
    let mut deferred = ptr::null_mut();
    let mut promise = ptr::null_mut();
    // SAFETY: on the env's thread, valid out-pointers
    let status = unsafe { sys::napi_create_promise(env.raw(), &mut deferred, &mut promise) };
    if status != sys::Status::napi_ok {
        return Err(napi::Error::new(
            Status::GenericFailure,
            "c2d: cannot make a promise",
        ));
    }
    let deferred = Deferred(deferred);
    let work = async move {
        let result = future.await;
        let settle: Settle = Box::new(move |env: &Env| match result {
            // SAFETY: called on the env's thread by `drain`
            Ok(value) => unsafe { T::to_napi_value(env.raw(), value) },
            Err(e) => Err(js_error(env, &e)),
        });
        resolver.finish(Finished { deferred, settle });
    };
    if let Err(e) = c2d::runtime::spawn(work) {
        // the work (and its deferred) is dropped: the promise would never settle
        return Err(js_error(env, &e));
    }
    if PENDING.with(|p| {
        p.set(p.get() + 1);
        p.get() == 1
    }) {
        RESOLVER.with(|r| {
            if let Some(r) = r.borrow().as_ref() {
                // SAFETY: on the env's thread
                unsafe { sys::napi_ref_threadsafe_function(env.raw(), r.wake.0) };
            }
        });
    }
    // SAFETY: a promise just made on this env
    unsafe { Object::from_napi_value(env.raw(), promise) }
}

/// The native side of an `AbortSignal`: `index.ts` makes one for a call given a signal and
/// aborts it when the signal fires, which drops the call's work on the engine (its I/O
/// stops; a receive takes no message). `index.ts` has by then rejected the call's promise
/// with the signal's reason, so how the native promise ends is never seen.
#[napi]
pub struct Abort {
    aborted: watch::Sender<bool>,
}

#[napi]
impl Abort {
    /// Not aborted yet.
    #[napi(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Abort {
            aborted: watch::Sender::new(false),
        }
    }

    /// Drops the work of the call it was given to.
    #[napi]
    pub fn abort(&self) {
        self.aborted.send_replace(true);
    }
}

/// Returns once `abort` is aborted (never if it is collected first).
async fn aborted(mut abort: watch::Receiver<bool>) {
    if abort.wait_for(|a| *a).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// [`promise`] of `future`, whose work is dropped as soon as `abort`, if any, is aborted.
pub fn abortable<'env, T, F>(
    env: &'env Env,
    abort: Option<&Abort>,
    future: F,
) -> Result<Object<'env>>
where
    F: Future<Output = c2d::Result<T>> + Send + 'static,
    T: ToNapiValue + Send + 'static,
{
    let Some(abort) = abort.map(|a| a.aborted.subscribe()) else {
        return promise(env, future);
    };
    promise(env, async move {
        tokio::select! {
            result = future => result,
            () = aborted(abort) => Err(c2d::Error::new(c2d::ErrorKind::Closed, "aborted")),
        }
    })
}

pub use c2d::duration::{millis, opt_millis};

/// A time as milliseconds since the Unix epoch (what a JavaScript `Date` is made from).
pub fn epoch_millis(t: std::time::SystemTime) -> f64 {
    match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64() * 1000.0,
        Err(before) => -before.duration().as_secs_f64() * 1000.0,
    }
}
