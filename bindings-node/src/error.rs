//! The engine's errors as JavaScript errors: an instance of the package's class of the
//! error's kind (made by the factory `index.ts` registers at load), with `err.code`
//! `C2D_<KIND>`.

use std::cell::RefCell;

use napi::bindgen_prelude::{FnArgs, FunctionRef, Unknown};
use napi::{Env, Status};
use napi_derive::napi;

use c2d::{Error, ErrorKind};

type Factory = FunctionRef<FnArgs<(String, String)>, Unknown<'static>>;

thread_local! {
    // A reference is valid on the thread of the environment that made it; each worker
    // thread loading the addon registers its own.
    static FACTORY: RefCell<Option<Factory>> = const { RefCell::new(None) };
}

/// Registers `factory(code, message)`, which makes the error object of a code.
#[napi(ts_args_type = "factory: (code: string, message: string) => Error")]
pub fn set_error_factory(factory: Factory) {
    FACTORY.with(|f| *f.borrow_mut() = Some(factory));
}

/// The engine's error as the JavaScript error of its kind (thrown, or rejecting a promise).
pub fn js_error(env: &Env, error: &Error) -> napi::Error {
    let made = FACTORY.with(|f| {
        let factory = f.borrow();
        let factory = factory.as_ref()?;
        let function = factory.borrow_back(env).ok()?;
        function
            .call(FnArgs::from((
                error.kind().code().to_string(),
                error.message().to_string(),
            )))
            .ok()
    });
    match made {
        Some(value) => napi::Error::from(value),
        // only before index.js registered its factory (the addon loaded by hand)
        None => napi::Error::new(
            Status::GenericFailure,
            format!("{}: {error}", error.kind().code()),
        ),
    }
}

/// `Err` of the JavaScript error of `error` (for the synchronous calls).
pub fn throw<T>(env: &Env, error: Error) -> napi::Result<T> {
    Err(js_error(env, &error))
}

/// Every error kind's code, in the engine's order (for the tests that walk them all).
#[napi]
pub fn error_codes() -> Vec<String> {
    ErrorKind::ALL
        .iter()
        .map(|k| k.code().to_string())
        .collect()
}

/// Whether an error of `code` may go away if the operation is tried again later.
#[napi]
pub fn is_transient_code(code: String) -> bool {
    ErrorKind::ALL
        .into_iter()
        .any(|k| k.code() == code && k.is_transient())
}

/// Throws the error the engine's error of `code` (one of [`error_codes`]) becomes.
#[napi]
pub fn raise_error(env: &Env, code: String, message: String) -> napi::Result<()> {
    let kind = ErrorKind::ALL.into_iter().find(|k| k.code() == code);
    match kind {
        Some(kind) => throw(env, Error::new(kind, message)),
        None => throw(
            env,
            Error::invalid_argument(format!("no error code {code:?}")),
        ),
    }
}
