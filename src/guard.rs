//! Operation guards ([O1](crate::contract#O1)–[O3](crate::contract#O3),
//! [L11](crate::contract#L11), [L15](crate::contract#L15)): the guard type
//! and its per-thread bookkeeping. The counting protocol lives in
//! `raw.rs`; the per-thread record in `thread.rs`.

use std::fmt;
use std::marker::PhantomData;

use crate::Error;
use crate::raw::RawLifecycle;
use crate::state::Word;
use crate::thread::{self, Held};

/// Proof that an operation is in flight: while it lives, the final cleanup
/// does not close a socket, release a resource or run prepare-to-unload
/// ([O2](crate::contract#O2)). Taken with
/// [`Lifecycle::enter`](crate::Lifecycle::enter).
///
/// # Guards and threads
///
/// A guard is `!Send`: it is counted on the thread that took it, and that
/// thread's record of held guards is what lets a final cleanup issued from
/// inside a guard fail with [`Error::InProgress`] instead of waiting for
/// itself ([L11](crate::contract#L11)), however many lifecycles the thread
/// holds guards of ([L15](crate::contract#L15)). A guard held by *another*
/// thread is simply waited for, after the provider's
/// [`cancel_pending`](crate::Provider::cancel_pending) hook has been asked
/// to unblock it. Work that completes on another thread takes its own guard
/// there. A `Wait`-policy startup issued while holding a guard during
/// Draining would wait for itself too; it fails with `InProgress`.
///
/// ```compile_fail
/// fn assert_send<T: Send>() {}
/// assert_send::<provider_lifecycle::OperationGuard<'static>>();
/// ```
///
/// A guard that is leaked (`mem::forget`) is never released: the final
/// cleanup then waits forever, since freeing anything under it would break
/// rule [O2](crate::contract#O2). The leak does not affect other lifecycles, even one later built
/// at the same address: threads key their records by a unique id.
#[must_use = "the operation is only protected while the guard lives"]
pub struct OperationGuard<'a> {
    raw: &'a RawLifecycle,
    shard: usize,
    held: Held,
    _not_send: PhantomData<*const ()>,
}

impl<'a> OperationGuard<'a> {
    /// Takes a guard if the state is Active ([O1](crate::contract#O1)); also returns the word seen.
    #[inline]
    pub(crate) fn enter(raw: &'a RawLifecycle) -> Result<(OperationGuard<'a>, Word), Error> {
        let (shard, w) = raw.enter()?;
        let held = thread::hold(raw.id());
        Ok((
            OperationGuard {
                raw,
                shard,
                held,
                _not_send: PhantomData,
            },
            w,
        ))
    }
}

impl Drop for OperationGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        thread::unhold(self.raw.id(), self.held);
        self.raw.leave(self.shard);
    }
}

impl fmt::Debug for OperationGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperationGuard")
            .field("shard", &self.shard)
            .finish_non_exhaustive()
    }
}
