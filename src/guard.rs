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

/// An owned, `Send` operation guard ([O4](crate::contract#O4)): the same
/// guarantees as [`OperationGuard`] ([O1](crate::contract#O1),
/// [O2](crate::contract#O2): while it lives the final cleanup frees
/// nothing, and the drain counts it exactly), but it can cross threads and
/// `.await` points, so work handed to a pool or an async task can carry
/// it. Taken with [`Lifecycle::token`](crate::Lifecycle::token); for a
/// `static` lifecycle it is `'static`.
///
/// Its holder can learn that the final cleanup has begun: cheaply with
/// [`is_cancelled`](OperationToken::is_cancelled) (one load), or by waiting
/// with [`cancelled`](OperationToken::cancelled) (a future) or
/// [`wait_cancelled`](OperationToken::wait_cancelled) (blocking). The
/// signal fires at the final cleanup's cancel step, right after the flip to
/// Draining and before the drain waits for guards and tokens
/// ([L6.1](crate::contract#L6.1)); it is silent to the application.
///
/// # Tokens and L11
///
/// A token is not tied to a thread, so unlike a guard it cannot make a
/// final cleanup issued by its own holder answer `InProgress`
/// ([L11](crate::contract#L11)): that cleanup would wait for the token.
/// Drop the token (or end the work it protects) before the final cleanup;
/// code that must clean up from inside an operation takes a guard instead.
#[must_use = "the operation is only protected while the token lives"]
pub struct OperationToken<'a> {
    raw: &'a RawLifecycle,
    shard: usize,
    generation: u64,
}

impl<'a> OperationToken<'a> {
    /// Takes a token if the state is Active (O1).
    pub(crate) fn enter(raw: &'a RawLifecycle) -> Result<OperationToken<'a>, Error> {
        let (shard, w) = raw.enter()?;
        Ok(OperationToken {
            raw,
            shard,
            generation: w.generation(),
        })
    }

    /// The generation this token's operation runs in.
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether the final cleanup of this token's generation has begun (one
    /// load of the state word). While the token lives the generation cannot
    /// end, so this only ever turns from `false` to `true`.
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        !self.raw.word.load().is_active()
    }

    /// A future that completes when the final cleanup has begun (at its
    /// cancel step). Runtime-agnostic (plain `std::task`).
    pub fn cancelled(&self) -> impl std::future::Future<Output = ()> + Send + '_ {
        Cancelled {
            raw: self.raw,
            key: None,
        }
    }

    /// Blocks the calling thread until the final cleanup has begun.
    pub fn wait_cancelled(&self) {
        let thread = std::thread::current();
        let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(thread)));
        let mut key = None;
        loop {
            if let Some(k) = key.take() {
                self.raw.forget_cancel(k);
            }
            match self.raw.on_cancel(waker.clone()) {
                None => return,
                Some(k) => key = Some(k),
            }
            std::thread::park();
        }
    }
}

impl Drop for OperationToken<'_> {
    #[inline]
    fn drop(&mut self) {
        // The shard it was counted on, whichever thread drops it.
        self.raw.leave(self.shard);
    }
}

impl fmt::Debug for OperationToken<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperationToken")
            .field("generation", &self.generation)
            .field("cancelled", &self.is_cancelled())
            .finish_non_exhaustive()
    }
}

/// Wakes a parked thread.
struct Unpark(std::thread::Thread);

impl std::task::Wake for Unpark {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.unpark();
    }
}

/// The future of [`OperationToken::cancelled`].
struct Cancelled<'a> {
    raw: &'a RawLifecycle,
    key: Option<u64>,
}

impl std::future::Future for Cancelled<'_> {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if let Some(k) = self.key.take() {
            self.raw.forget_cancel(k);
        }
        match self.raw.on_cancel(cx.waker().clone()) {
            None => std::task::Poll::Ready(()),
            Some(k) => {
                self.key = Some(k);
                std::task::Poll::Pending
            }
        }
    }
}

impl Drop for Cancelled<'_> {
    fn drop(&mut self) {
        if let Some(k) = self.key.take() {
            self.raw.forget_cancel(k);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::future::Future;
    use std::task::{Context, Poll, Waker};

    fn active() -> RawLifecycle {
        RawLifecycle::active_for_tests()
    }

    // O4: a `cancelled()` future that is polled and dropped (a select loop)
    // leaves no waker behind; re-polling one replaces its registration.
    #[test]
    fn o4_cancelled_futures_do_not_pile_up_wakers() {
        let raw = active();
        let token = OperationToken::enter(&raw).unwrap();
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..100 {
            let mut f = std::pin::pin!(token.cancelled());
            assert_eq!(f.as_mut().poll(&mut cx), Poll::Pending);
            assert_eq!(f.as_mut().poll(&mut cx), Poll::Pending);
            assert_eq!(raw.cancel_waiters(), 1, "one registration per live future");
        }
        assert_eq!(raw.cancel_waiters(), 0, "dropped futures forget theirs");
        assert!(!token.is_cancelled());
    }

    // O4, S6: registrations are forgotten one by one: dropping one waiter
    // leaves the others registered (each has its own key).
    #[test]
    fn o4_each_waiter_forgets_only_its_own_registration() {
        let raw = active();
        let token = OperationToken::enter(&raw).unwrap();
        let mut cx = Context::from_waker(Waker::noop());
        let mut a = Box::pin(token.cancelled());
        let mut b = Box::pin(token.cancelled());
        let mut c = Box::pin(token.cancelled());
        for f in [&mut a, &mut b, &mut c] {
            assert_eq!(f.as_mut().poll(&mut cx), Poll::Pending);
        }
        assert_eq!(raw.cancel_waiters(), 3);
        drop(b);
        assert_eq!(raw.cancel_waiters(), 2, "only b's registration went");
        assert_eq!(a.as_mut().poll(&mut cx), Poll::Pending);
        assert_eq!(
            raw.cancel_waiters(),
            2,
            "a re-registered in place of its own"
        );
        drop((a, c));
        assert_eq!(raw.cancel_waiters(), 0);
    }
}
