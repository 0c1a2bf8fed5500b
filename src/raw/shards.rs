//! Guard shards: how operation guards ([O1](crate::contract#O1)–
//! [O3](crate::contract#O3)) are counted, and how the final cleanup waits
//! for them.
//!
//! Operation guards ([O1](crate::contract#O1)–[O3](crate::contract#O3))
//! are counted percpu_ref-style on `SHARDS` cache-padded words; a thread
//! picks one round-robin the first time it takes a guard. A shard word:
//!
//! | bits | meaning |
//! |---|---|
//! | 0–62 | guards counted on this shard (plus, for an instant, refused enters) |
//! | 63 (`PARKED`) | the drainer is waiting for this lifecycle's guards: the last leaver wakes it |
//!
//! The shards come in [`LANES`] lanes: generation `g` counts its guards in
//! lane `g % LANES` ([L16](crate::contract#L16)), so guards that a bounded
//! guard wait abandoned leave later without touching a later generation's
//! count. A lane marked abandoned is skipped by the next initialization
//! until its count is back to zero.
//!
//! - `enter`: read the entry hint (the state and lane an enter expects,
//!   published after the word) to pick the lane, `fetch_add(1)` on this
//!   thread's shard of it (the hint xor the thread's shard key, masked:
//!   [`Entry::index`]), then load the state word; if it is Active in that
//!   lane, done (one compare). Otherwise undo; if the word is not
//!   Active, fail; if it is Active in another lane's generation (a stale
//!   hint, or a restart in between), count again in the word's lane and
//!   check again.
//! - `leave` (guard drop, or an undo): `prev = shard.fetch_sub(1)`. If `prev`
//!   has `PARKED` and this was the shard's last guard, wake the drainer.
//! - The final cleanup flips the word to Draining, then `fetch_or`s `PARKED`
//!   into every shard (the counts it reads are the guards it waits for), then
//!   waits under `control` until every count is zero, then clears `PARKED`.
//!   This half, the drainer's, is code of the final cleanup's frame and lives
//!   with it in `raw/teardown.rs`; this file holds the counting and the
//!   leavers' half.
//!
//! Why this is exact without `SeqCst`: all read-modify-writes of one shard are
//! totally ordered (coherence). An enter's `fetch_add` is either before the
//! drainer's `fetch_or` on that shard, and then the drainer counts it, or
//! after: then it reads from the `fetch_or` (or later), so it synchronizes
//! with the drainer's AcqRel `fetch_or`, which came after the AcqRel flip of
//! the word, and its Acquire load of the word sees Draining and fails. A
//! `fetch_sub` the drainer's wait did not see comes after the `fetch_or`, so
//! it returns `PARKED`: the leaver wakes the drainer, taking the mutex first
//! so the wake cannot fall between the drainer's check and its wait. loom
//! models exactly this.
//!
//! `PARKED` is what keeps a refused `enter` as cheap as a successful one:
//! outside the drainer's wait no leaver ever takes the mutex, so a stream of enters on a Released
//! lifecycle neither locks nor wakes parked startups.
//!
//! The state-word load in `enter` makes the refusal immediate: once the flip
//! to Draining happened-before an `enter`, that `enter` fails even on a shard
//! the drainer has not closed yet ([O1](crate::contract#O1)).

use super::RawLifecycle;
use crate::state::{Entry, Word};
pub(crate) use crate::state::{LANES, SHARDS, lane_of};
use crate::sync::{AtomicBool, AtomicUsize, CachePadded, Ordering};
use crate::{Error, thread};

#[cfg(all(test, not(loom)))]
pub(super) mod tests {
    thread_local! {
        /// How many enters of this thread took the slow path.
        pub(in crate::raw) static SLOW_ENTERS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    }
}

/// Every shard of every lane.
pub(super) const ALL_SHARDS: usize = SHARDS * LANES;

/// The lane of a guard counted at `index` (what `enter` returns).
#[inline]
pub(crate) const fn lane_at(index: usize) -> usize {
    (index / SHARDS) % LANES
}

/// The `PARKED` bit of a shard word.
pub(super) const PARKED: usize = 1 << (usize::BITS - 1);
/// The count bits of a shard word.
pub(super) const COUNT: usize = PARKED - 1;

/// The error of an `enter` that found `w` not Active.
#[cold]
fn refused(w: Word) -> Error {
    Error::NotInitialised(w.refused_use())
}

impl RawLifecycle {
    /// Counts a guard on this thread's shard of the current generation's
    /// lane if the state is Active ([O1](crate::contract#O1)); returns where
    /// it is counted (for [`leave`](RawLifecycle::leave)) and the word seen.
    #[inline]
    pub(crate) fn enter(&self) -> Result<(usize, Word), Error> {
        self.enter_on(thread::shard_key(SHARDS))
    }

    /// [`enter`](RawLifecycle::enter) on the shard whose key
    /// ([`shard_key_of`](crate::state::shard_key_of)) the caller already looked up.
    #[inline(always)]
    pub(crate) fn enter_on(&self, key: usize) -> Result<(usize, Word), Error> {
        let entry = self.word.entry();
        match self.count_in(entry, key) {
            Ok(entered) => Ok(entered),
            Err(index) => self.enter_slow(index, key),
        }
    }

    /// One try: counts on the shard `key` names in the lane `entry` names,
    /// then loads the word. `Ok` if the word is Active in that lane (one
    /// compare, state and lane); otherwise `Err` with where it counted,
    /// still counted.
    #[inline(always)]
    fn count_in(&self, entry: Entry, key: usize) -> Result<(usize, Word), usize> {
        let index = entry.index(key);
        // [P4] Acquire: a `fetch_add` that reads the drainer's `fetch_or`
        // synchronizes with it, so the load below sees Draining (module docs).
        self.shard_at(index).fetch_add(1, Ordering::Acquire);
        // Acquire (in `load`): pairs with the Release store of Active, so a
        // live guard sees the initialization.
        let w = self.word.load();
        if w.admits(entry) {
            Ok((index, w))
        } else {
            Err(index)
        }
    }

    /// The rest of an enter whose first try (counted at `counted`) the word
    /// did not admit: not Active, or Active in another lane's generation (a
    /// stale hint, or a restart in between): undo, and try again in the
    /// word's own lane while it is Active. Out of line: the guard's fast
    /// path carries no code for it.
    #[cold]
    #[inline(never)]
    fn enter_slow(&self, mut counted: usize, key: usize) -> Result<(usize, Word), Error> {
        #[cfg(all(test, not(loom)))]
        tests::SLOW_ENTERS.with(|n| n.set(n.get() + 1));
        loop {
            self.leave(counted);
            let w = self.word.load();
            if !w.is_active() {
                return Err(refused(w));
            }
            match self.count_in(w.entry(), key) {
                Ok(entered) => return Ok(entered),
                Err(index) => counted = index,
            }
        }
    }

    /// One more count where a live guard or token is counted (`index`, from
    /// its `enter`): a clone of an owned token ([O5](crate::contract#O5)).
    /// Never fails: the count it joins is at least 1 until this returns, so
    /// a drainer waiting on it still waits, and the shard never goes from 0
    /// to 1 behind the drainer's back.
    #[inline]
    pub(crate) fn enter_again(&self, index: usize) {
        // Relaxed: the holder's own count orders everything; this RMW only
        // has to land in the shard's modification order before the
        // holder's leave, which program order or the clone's hand-off to
        // another thread guarantees.
        self.shard_at(index).fetch_add(1, Ordering::Relaxed);
    }

    /// Undoes one `enter` counted at `index`, waking the drainer if it is
    /// waiting and this was the shard's last guard.
    #[inline]
    pub(crate) fn leave(&self, index: usize) {
        // [P5] Release: everything the guard's holder did happens-before the
        // drainer's Acquire read of this count. Acquire: a `prev` with PARKED
        // synchronizes with the drainer's `fetch_or`.
        let prev = self.shard_at(index).fetch_sub(1, Ordering::AcqRel);
        if prev & PARKED != 0 && prev & COUNT == 1 {
            self.wake();
        }
    }

    /// The shard a guard was counted on (`% ALL_SHARDS`, a power of two: a
    /// mask that spares the bounds check).
    #[inline]
    pub(super) fn shard_at(&self, index: usize) -> &AtomicUsize {
        &self.shards[index % ALL_SHARDS]
    }

    #[cold]
    pub(super) fn wake(&self) {
        // Taking the lock orders this wake after the waiter's check-then-wait.
        let mut ctl = self.control.lock();
        self.cv.notify_all();
        let drainer = ctl.drainer.take();
        drop(ctl);
        if let Some(w) = drainer {
            w.wake();
        }
    }

    /// A generation at or after `next` whose lane is free: not abandoned, or
    /// abandoned and its guards all gone since ([L16](crate::contract#L16)).
    /// `None` if every lane still has abandoned guards.
    pub(super) fn free_generation(&self, next: u64) -> Option<u64> {
        (0..LANES as u64)
            .map(|k| (next + k) & crate::state::GEN_MASK)
            .find(|&g| {
                let lane = lane_of(g);
                // [P6] Acquire: pairs with `abandon`'s Release store; a zero read
                // below is then of the abandoned guards' own leaves.
                if !self.abandoned[lane].load(Ordering::Acquire) {
                    return true;
                }
                if self.guards(lane) != 0 {
                    return false;
                }
                self.abandoned[lane].store(false, Ordering::Relaxed);
                true
            })
    }

    /// How many lanes are marked abandoned (tests and the debug output; a
    /// mark is cleared when the lane is next needed and found empty).
    pub(crate) fn abandoned_lanes(&self) -> usize {
        self.abandoned
            .iter()
            .filter(|a| a.load(Ordering::Relaxed))
            .count()
    }
}

/// Shards at zero.
#[cfg(not(loom))]
pub(super) const fn new_shards() -> [CachePadded<AtomicUsize>; ALL_SHARDS] {
    [const { CachePadded::new(AtomicUsize::new(0)) }; ALL_SHARDS]
}

#[cfg(loom)]
pub(super) fn new_shards() -> [CachePadded<AtomicUsize>; ALL_SHARDS] {
    std::array::from_fn(|_| CachePadded::new(AtomicUsize::new(0)))
}

/// No lane abandoned.
#[cfg(not(loom))]
pub(super) const fn new_flags() -> [AtomicBool; LANES] {
    [const { AtomicBool::new(false) }; LANES]
}

#[cfg(loom)]
pub(super) fn new_flags() -> [AtomicBool; LANES] {
    std::array::from_fn(|_| AtomicBool::new(false))
}
