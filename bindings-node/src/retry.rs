//! Retry policies: the engine's, or a JavaScript function `(attempt, error) => ms | null`.

use std::sync::mpsc;
use std::time::Duration;

use napi::bindgen_prelude::{FnArgs, Function};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, Result, Status};
use napi_derive::napi;

use c2d::Error;

use crate::error::throw;
use crate::runtime::millis;

/// What a custom policy's function is called with: the attempt, the error's code and message.
type Args = FnArgs<(u32, String, String)>;
/// A custom policy's function, callable from the engine's threads; weak, so that it never
/// keeps the process alive.
type Decide = ThreadsafeFunction<Args, Option<f64>, Args, Status, false, true>;

/// How connecting and operations are retried after a transient error (errors retrying
/// cannot fix are never retried).
#[napi]
#[derive(Clone)]
pub struct RetryPolicy {
    pub(crate) policy: c2d::RetryPolicy,
    description: String,
}

#[napi]
impl RetryPolicy {
    /// Never retry.
    #[napi(factory)]
    pub fn none() -> Self {
        RetryPolicy {
            policy: c2d::RetryPolicy::None,
            description: "RetryPolicy.none()".into(),
        }
    }

    /// The same wait (milliseconds) every time; at most `maxRetries` retries (absent: no
    /// limit).
    #[napi(factory)]
    pub fn fixed(env: &Env, interval_ms: f64, max_retries: Option<u32>) -> Result<Self> {
        let interval = millis("intervalMs", interval_ms).or_else(|e| throw(env, e))?;
        Ok(RetryPolicy {
            policy: c2d::RetryPolicy::Fixed {
                interval,
                max_attempts: max_retries,
            },
            description: format!("RetryPolicy.fixed({interval_ms}, {max_retries:?})"),
        })
    }

    /// Waits that double from `initialMs` up to `maxMs`, each shortened by a random part of up
    /// to `jitter` (0 to 1) of itself; at most `maxRetries` retries (absent: no limit).
    #[napi(factory)]
    pub fn exponential_backoff(
        env: &Env,
        initial_ms: f64,
        max_ms: f64,
        jitter: f64,
        max_retries: Option<u32>,
    ) -> Result<Self> {
        let initial = millis("initialMs", initial_ms).or_else(|e| throw(env, e))?;
        let max = millis("maxMs", max_ms).or_else(|e| throw(env, e))?;
        let policy = c2d::RetryPolicy::exponential(initial, max, jitter, max_retries)
            .or_else(|e| throw(env, e))?;
        Ok(RetryPolicy {
            policy,
            description: format!(
                "RetryPolicy.exponentialBackoff({{ initialMs: {initial_ms}, maxMs: {max_ms}, jitter: {jitter}, maxRetries: {max_retries:?} }})"
            ),
        })
    }

    /// A policy of your own: `decide(attempt, code, message)` is called before retry number
    /// `attempt` (1 for the first) after a transient error, on the JavaScript thread, and
    /// returns the milliseconds to wait, or `null` to give up. The engine waits for the
    /// answer: keep it quick.
    #[napi(
        factory,
        ts_args_type = "decide: (attempt: number, code: string, message: string) => number | null"
    )]
    pub fn custom(decide: Function<Args, Option<f64>>) -> Result<Self> {
        let decide: Decide = decide
            .build_threadsafe_function()
            .callee_handled::<false>()
            .weak::<true>()
            .build()?;
        Ok(RetryPolicy {
            policy: c2d::RetryPolicy::custom(move |attempt, error| ask(&decide, attempt, error)),
            description: "RetryPolicy.custom(…)".into(),
        })
    }

    /// How it was made.
    #[napi(js_name = "toString")]
    pub fn describe(&self) -> String {
        self.description.clone()
    }
}

/// Asks the JavaScript function, on its thread, how long to wait; gives up (`None`) when it
/// says so, answers something that is not a number of milliseconds, or cannot be called (the
/// process is exiting).
fn ask(decide: &Decide, attempt: u32, error: &Error) -> Option<Duration> {
    let (tx, rx) = mpsc::sync_channel(1);
    let args = FnArgs::from((
        attempt,
        error.kind().code().to_string(),
        error.message().to_string(),
    ));
    let status = decide.call_with_return_value(
        args,
        ThreadsafeFunctionCallMode::NonBlocking,
        move |answer, _env| {
            let _ = tx.send(answer.ok().flatten());
            Ok(())
        },
    );
    if status != Status::Ok {
        return None;
    }
    let wait = || rx.recv().ok().flatten();
    // the engine calls this on one of its runtime's workers: let the runtime move the
    // worker's other tasks elsewhere while the JavaScript thread answers
    let answer = match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(wait)
        }
        _ => wait(),
    }?;
    millis("the retry function's answer", answer).ok()
}

impl RetryPolicy {
    /// The engine's policy.
    pub fn engine(&self) -> c2d::RetryPolicy {
        self.policy.clone()
    }
}
