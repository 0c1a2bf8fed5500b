//! Operation guards (rules O1–O3, L6.1, L11): a percpu_ref-like counter of
//! work in flight, sharded per thread so the hot path scales.
//!
//! # Design
//!
//! Each thread counts its guards on one of `SHARDS` cache-padded counters,
//! picked round-robin the first time the thread takes a guard. Taking a guard
//! is `shard += 1`, then a load of the state word; if the state is not Active
//! the increment is undone and the call fails. Dropping a guard is
//! `shard -= 1`, then a load of the state word; if it says Draining, the
//! dropping thread wakes the drainer.
//!
//! The final cleanup flips the word to Draining (a `SeqCst` CAS) and then sums
//! the shards under the control mutex, waiting on the condvar until the sum is
//! zero. The four operations involved (the flip, the enter's increment and its
//! state load, the drainer's shard loads) are all `SeqCst`: this is the
//! store-buffering pattern, and only a single total order guarantees that
//! either the enter sees Draining or the drainer sees the increment. After the
//! flip no guard can be taken, so the shards only fall (a failed enter raises
//! one for an instant and then wakes the drainer): a sum of zero is exact.
//!
//! No allocation and no syscall on enter or exit; the thread-local slot is
//! `const`-initialized and has no destructor.
//!
//! # Guards and threads
//!
//! A guard is `!Send`: it is counted on the thread that took it, and that
//! thread's record of held guards is what lets a final cleanup issued from
//! inside a guard fail with [`Error::InProgress`] instead of waiting for
//! itself (L11). A guard held by *another* thread is simply waited for (after
//! the provider's cancel hook has been asked to unblock it). Work that
//! completes on another thread takes its own guard there. A startup with the
//! `Wait` policy issued while holding a guard during Draining would wait for
//! itself too; it fails with `InProgress`.

use std::fmt;
use std::marker::PhantomData;
use std::time::Instant;

use crate::Error;
use crate::lifecycle::Core;
use crate::state::{State, Word};
use crate::sync::{self, HELD_SLOTS, NO_SHARD, Ordering};

/// Proof that an operation is in flight: while it lives, the final cleanup
/// does not close a socket, release a resource or run prepare-to-unload
/// (rule O2). Taken with [`Lifecycle::enter`](crate::Lifecycle::enter).
///
/// # Guards and threads
///
/// A guard is `!Send`: it is counted on the thread that took it, and that
/// thread's record of held guards is what lets a final cleanup issued from
/// inside a guard fail with [`Error::InProgress`] instead of waiting for
/// itself (L11). A guard held by *another* thread is simply waited for, after
/// the provider's [`cancel_pending`](crate::Provider::cancel_pending) hook has
/// been asked to unblock it. Work that completes on another thread takes its
/// own guard there. A `Wait`-policy startup issued while holding a guard
/// during Draining would wait for itself too; it fails with `InProgress`.
///
/// ```compile_fail
/// fn assert_send<T: Send>() {}
/// assert_send::<provider_lifecycle::OperationGuard<'static>>();
/// ```
///
/// A guard that is leaked (`mem::forget`) is never released: the final
/// cleanup then waits forever, since freeing anything under it would break
/// rule O2.
#[must_use = "the operation is only protected while the guard lives"]
pub struct OperationGuard<'a> {
    core: &'a Core,
    shard: usize,
    /// Index into the thread's held table, if it had room (L11 tracking).
    held: Option<usize>,
    _not_send: PhantomData<*const ()>,
}

impl Core {
    fn key(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }

    /// Takes a guard if the state is Active (O1).
    #[inline]
    pub(crate) fn enter(&self) -> Result<(OperationGuard<'_>, Word), Error> {
        let shard = sync::with_thread(|t| {
            let s = t.shard.get();
            if s != NO_SHARD {
                return s;
            }
            let s = sync::next_shard();
            t.shard.set(s);
            s
        });
        // SeqCst: pairs with the SeqCst flip to Draining and the drainer's
        // SeqCst shard loads (store-buffering; see the module docs).
        self.shards[shard].fetch_add(1, Ordering::SeqCst);
        // SeqCst: the other half of the same pattern. Seeing Active here also
        // means the initialization that published it happened-before.
        let w = Word(self.word.load(Ordering::SeqCst));
        if !w.is_active() {
            self.leave(shard);
            return Err(Error::NotInitialised);
        }
        let key = self.key();
        let held = sync::with_thread(|t| {
            let mut empty = None;
            for i in 0..HELD_SLOTS {
                let k = t.held_keys[i].get();
                if k == key {
                    t.held_depth[i].set(t.held_depth[i].get() + 1);
                    return Some(i);
                }
                if k == 0 && empty.is_none() {
                    empty = Some(i);
                }
            }
            let i = empty?;
            t.held_keys[i].set(key);
            t.held_depth[i].set(1);
            Some(i)
        });
        Ok((
            OperationGuard {
                core: self,
                shard,
                held,
                _not_send: PhantomData,
            },
            w,
        ))
    }

    /// Undoes one `enter` on `shard`, waking a drainer if one waits.
    #[inline]
    fn leave(&self, shard: usize) {
        // SeqCst: orders the decrement before the state load below in the
        // single total order with the flip, so a drainer that read this
        // shard before the decrement is seen to be Draining here.
        self.shards[shard].fetch_sub(1, Ordering::SeqCst);
        if Word(self.word.load(Ordering::SeqCst)).state() == State::Draining {
            self.wake_drainer();
        }
    }

    #[cold]
    fn wake_drainer(&self) {
        // Taking the lock orders this wake after the drainer's check-then-wait.
        let _ctl = self.control.lock();
        self.cv.notify_all();
    }

    /// Guards currently counted (exact once the state is Draining).
    pub(crate) fn guards(&self) -> usize {
        self.shards
            .iter()
            // SeqCst: see `enter`.
            .map(|s| s.load(Ordering::SeqCst))
            .fold(0usize, usize::wrapping_add)
    }

    /// Whether the calling thread holds a guard of this lifecycle (L11).
    pub(crate) fn held_by_current_thread(&self) -> bool {
        let key = self.key();
        sync::with_thread(|t| {
            (0..HELD_SLOTS).any(|i| t.held_keys[i].get() == key && t.held_depth[i].get() > 0)
        })
    }

    /// Waits until no guard is live (L6.1). Returns the number live at the
    /// start and whether the wait went past `deadline` (it never gives up: O2).
    pub(crate) fn wait_for_guards(&self, deadline: Instant) -> (usize, bool) {
        let mut ctl = self.control.lock();
        let waited_for = self.guards();
        let mut overran = false;
        while self.guards() != 0 {
            if Instant::now() >= deadline {
                overran = true;
                ctl = self.cv.wait(ctl);
            } else {
                ctl = self.cv.wait_until(ctl, deadline);
            }
        }
        drop(ctl);
        (waited_for, overran)
    }
}

impl Drop for OperationGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        if let Some(i) = self.held {
            sync::with_thread(|t| {
                let d = t.held_depth[i].get() - 1;
                t.held_depth[i].set(d);
                if d == 0 {
                    t.held_keys[i].set(0);
                }
            });
        }
        self.core.leave(self.shard);
    }
}

impl fmt::Debug for OperationGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperationGuard")
            .field("shard", &self.shard)
            .finish_non_exhaustive()
    }
}
