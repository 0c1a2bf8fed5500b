//! Operation guards (rules O1–O3, L6.1, L11): a percpu_ref-like counter of
//! work in flight, sharded per thread so the hot path scales.
//!
//! # Design
//!
//! Each thread counts its guards on one of `SHARDS` cache-padded words,
//! picked round-robin the first time the thread takes a guard. A shard word is
//! a count plus a `CLOSED` bit (the top bit):
//!
//! | shard bits | meaning |
//! |---|---|
//! | 0–62 | guards counted on this shard (plus, for an instant, failed enters) |
//! | 63 (`CLOSED`) | the lifecycle is not Active: new guards on this shard fail |
//!
//! - `enter`: `prev = shard.fetch_add(1)`. If `prev` has `CLOSED`, undo and
//!   fail. Then load the state word; if it is not Active (the final cleanup
//!   has begun), undo and fail. Otherwise the guard is live.
//! - `exit` (guard drop, or an undo): `prev = shard.fetch_sub(1)`. If `prev`
//!   has `CLOSED` and this was the shard's last guard, wake the drainer.
//! - The final cleanup flips the state word to Draining, then `fetch_or`s
//!   `CLOSED` into every shard, then waits under the control mutex until every
//!   shard's count is zero.
//! - Initialization clears `CLOSED` on every shard just before it publishes
//!   Active (shards start closed).
//!
//! Why this is exact without `SeqCst`: all read-modify-writes of one shard are
//! totally ordered (coherence). An enter's `fetch_add` is either before the
//! drainer's `fetch_or` on that shard, and then the drainer's count includes
//! it, or after, and then the enter sees `CLOSED` and fails. Likewise a
//! guard's `fetch_sub` that the drainer's wait did not see comes after the
//! `fetch_or` and so returns `CLOSED`: the leaver wakes the drainer, taking
//! the mutex first so the wake cannot fall between the drainer's check and its
//! wait. loom models exactly this (it does not model `SeqCst` loads and
//! stores, which an approach based on a state-word load would need).
//!
//! (The `CLOSED` check in `enter` is also redundant with the state-word load
//! for safety: an enter whose `fetch_add` reads after the drainer's `AcqRel`
//! `fetch_or` synchronizes with it, so its load sees Draining. Keeping both
//! makes each argument local; the bit's essential job is the wake-up.)
//!
//! The state-word load in `enter` makes the refusal immediate: once the flip
//! to Draining happened-before an `enter`, that `enter` fails even on a shard
//! the drainer has not closed yet.
//!
//! Hot path: `enter` is one `fetch_add` and one load, `exit` one `fetch_sub`,
//! plus a `const`-initialized thread-local without destructor. No allocation,
//! no syscall, no lock.

use std::fmt;
use std::marker::PhantomData;
use std::time::Instant;

use crate::Error;
use crate::lifecycle::Core;
use crate::state::Word;
use crate::sync::{self, HELD_SLOTS, NO_SHARD, Ordering};

/// The `CLOSED` bit of a shard word.
pub(crate) const CLOSED: usize = 1 << (usize::BITS - 1);

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
        })
        .unwrap_or(0);
        // Acquire: pairs with the AcqRel `fetch_and` that reopened the shard
        // after initialization, so a live guard sees what it published.
        let prev = self.shards[shard].fetch_add(1, Ordering::Acquire);
        // Acquire: pairs with the Release store of Active.
        let w = Word(self.word.load(Ordering::Acquire));
        if prev & CLOSED != 0 || !w.is_active() {
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
        })
        .flatten();
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

    /// Undoes one `enter` on `shard`, waking the drainer if this was the
    /// last guard of a closed shard.
    #[inline]
    fn leave(&self, shard: usize) {
        // Release: everything the guard's holder did happens-before the
        // drainer's Acquire read of this count. Acquire: a closed `prev`
        // synchronizes with the drainer's `fetch_or`.
        let prev = self.shards[shard].fetch_sub(1, Ordering::AcqRel);
        if prev & CLOSED != 0 && prev & !CLOSED == 1 {
            self.wake_drainer();
        }
    }

    #[cold]
    fn wake_drainer(&self) {
        // Taking the lock orders this wake after the drainer's check-then-wait.
        let _ctl = self.control.lock();
        self.cv.notify_all();
    }

    /// Guards currently counted (exact once every shard is closed).
    pub(crate) fn guards(&self) -> usize {
        self.shards
            .iter()
            // Acquire: pairs with the leavers' Release `fetch_sub`, so the
            // teardown that follows a zero sees all their work.
            .map(|s| s.load(Ordering::Acquire) & !CLOSED)
            .sum()
    }

    /// Closes every shard: from here on no guard can be taken. Returns the
    /// guards counted at the closing instant of each shard.
    pub(crate) fn close_shards(&self) -> usize {
        self.shards
            .iter()
            // AcqRel: Acquire the counted guards' state, Release the CLOSED
            // bit to later enters and leavers (see the module docs).
            .map(|s| s.fetch_or(CLOSED, Ordering::AcqRel) & !CLOSED)
            .sum()
    }

    /// Opens every shard for a new generation (before Active is published).
    pub(crate) fn open_shards(&self) {
        for s in &self.shards {
            // AcqRel: Release the initialization to guards whose Acquire
            // `fetch_add` reads the opened value.
            s.fetch_and(!CLOSED, Ordering::AcqRel);
        }
    }

    /// Whether the calling thread holds a guard of this lifecycle (L11).
    pub(crate) fn held_by_current_thread(&self) -> bool {
        let key = self.key();
        sync::with_thread(|t| {
            (0..HELD_SLOTS).any(|i| t.held_keys[i].get() == key && t.held_depth[i].get() > 0)
        })
        .unwrap_or(false)
    }

    /// Waits until no guard is live (L6.1); the shards must be closed.
    /// Returns whether the wait went past `deadline` (it never gives up: O2).
    pub(crate) fn wait_for_guards(&self, deadline: Instant) -> bool {
        let mut ctl = self.control.lock();
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
        overran
    }
}

impl Drop for OperationGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        if let Some(i) = self.held {
            let _ = sync::with_thread(|t| {
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
