//! Calling user code: every hook, socket method and resource release goes
//! through [`call`], so that no panic in user code (nor in its error's
//! `Display`, nor in its `Drop`) escapes into the lifecycle
//! ([L14](crate::contract#L14)).

use std::any::Any;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::BoxError;

/// How a user hook (a release, a cancel, prepare-to-unload) ended.
///
/// ```
/// # use provider_lifecycle::*;
/// # struct P;
/// # impl Provider for P {
/// #     type Socket = NoSocket;
/// #     type State = ();
/// #     fn versions(&self) -> VersionRange { VersionRange::new(Version::new(2, 2), Version::new(2, 2)) }
/// #     fn initialize(&self, _: &mut Registrar) -> Result<(), Error> { Ok(()) }
/// # }
/// let l = Lifecycle::new(P);
/// l.startup(Version::new(2, 2))?;
/// l.register_resource_fn("panics", || panic!("bug"))?;
/// let report = l.cleanup()?.into_report().unwrap(); // the panic is caught
/// assert!(matches!(report.resources[0].outcome, HookOutcome::Panicked(_)));
/// assert_eq!(report.prepare_unload, HookOutcome::Ok);
/// # Ok::<(), Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum HookOutcome {
    /// It returned `Ok` (or had nothing to do).
    #[default]
    Ok,
    /// It returned an error, shown as text.
    Failed(String),
    /// It panicked; the panic message.
    Panicked(String),
    /// It was not run: the final cleanup's guard wait passed its bound with
    /// operations still in flight, so what they may touch was left in place,
    /// never freed ([L16](crate::contract#L16)).
    Abandoned,
}

impl HookOutcome {
    /// Whether the hook succeeded.
    #[must_use]
    pub fn is_ok(&self) -> bool {
        matches!(self, HookOutcome::Ok)
    }
}

impl fmt::Display for HookOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HookOutcome::Ok => f.write_str("ok"),
            HookOutcome::Failed(e) => write!(f, "failed: {e}"),
            HookOutcome::Panicked(p) => write!(f, "panicked: {p}"),
            HookOutcome::Abandoned => f.write_str("abandoned to operations in flight"),
        }
    }
}

/// Runs user code, turning a panic into its message.
pub(crate) fn call<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(panic_message)
}

/// Runs a fallible user hook that yields a value (`T::default()` when it
/// fails) and says how it went. The error is rendered and dropped inside the
/// panic catching: a panicking `Display` or `Drop` is reported as a panic.
pub(crate) fn hook_value<T: Default>(f: impl FnOnce() -> Result<T, BoxError>) -> (T, HookOutcome) {
    match call(|| f().map_err(|e| e.to_string())) {
        Ok(Ok(v)) => (v, HookOutcome::Ok),
        Ok(Err(e)) => (T::default(), HookOutcome::Failed(e)),
        Err(p) => (T::default(), HookOutcome::Panicked(p)),
    }
}

/// Runs a fallible user hook and says how it went (see [`hook_value`]).
pub(crate) fn hook(f: impl FnOnce() -> Result<(), BoxError>) -> HookOutcome {
    hook_value(f).1
}

/// Drops a user value (a socket, a resource) with its `Drop` panics caught;
/// returns the panic message, if any.
pub(crate) fn drop_quietly<T>(value: T) -> Option<String> {
    call(move || drop(value)).err()
}

/// The message of a panic payload. The payload is dropped with its own
/// `Drop` panics caught (and such a second payload leaked, not dropped).
pub(crate) fn panic_message(payload: Box<dyn Any + Send>) -> String {
    let message = if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_owned()
    };
    if let Err(second) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(second);
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    struct LoudDisplay;
    impl fmt::Debug for LoudDisplay {
        fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
            Ok(())
        }
    }
    impl fmt::Display for LoudDisplay {
        fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
            panic!("display panicked")
        }
    }
    impl std::error::Error for LoudDisplay {}

    struct LoudDrop;
    impl Drop for LoudDrop {
        fn drop(&mut self) {
            panic!("drop panicked")
        }
    }

    // L14: an error whose Display panics is a reported panic, not an unwind.
    #[test]
    fn l14_hook_error_display_panic_is_caught() {
        let out = hook(|| Err(Box::new(LoudDisplay)));
        assert_eq!(out, HookOutcome::Panicked("display panicked".into()));
        let (v, out) = hook_value(|| Ok::<_, BoxError>(7));
        assert_eq!((v, out), (7, HookOutcome::Ok));
        let (v, out) = hook_value::<u32>(|| Err("no".into()));
        assert_eq!((v, out), (0, HookOutcome::Failed("no".into())));
    }

    // L14: a value whose Drop panics is dropped quietly.
    #[test]
    fn l14_drop_panic_is_caught() {
        assert_eq!(drop_quietly(LoudDrop).as_deref(), Some("drop panicked"));
        assert_eq!(drop_quietly(5), None);
    }

    // L14: a panic payload whose own Drop panics does not escape.
    #[test]
    fn l14_payload_drop_panic_is_caught() {
        let payload: Box<dyn Any + Send> = Box::new(LoudDrop);
        assert_eq!(panic_message(payload), "<non-string panic payload>");
    }
}
