//! The final cleanup's frame ([L6](crate::contract#L6),
//! [L14](crate::contract#L14)): the flip to Draining and the guard wait's
//! mechanics; the frame's drop publishes Released however the teardown
//! ends.

use std::task::Waker;

use super::RawLifecycle;
use super::shards::{COUNT, LANES, PARKED, SHARDS, lane_of};
use crate::resource::{Registered, release_resources};
use crate::state::{Last, Word};
use crate::sync::{AtomicUsize, CachePadded, Ordering};
use crate::{Error, thread};

impl RawLifecycle {
    /// After a cleanup took the count from 1 to 0 (`last`, the word it
    /// left): the flip to Draining ([L6](crate::contract#L6)), or what
    /// happened instead (see [`Begun`]).
    ///
    /// # Errors
    ///
    /// [`Error::InProgress`] from a thread holding a guard of this lifecycle
    /// ([L11](crate::contract#L11)); the count is put back.
    #[cold]
    pub(crate) fn begin_final(&self, last: Word) -> Result<Begun<'_>, Error> {
        if self.held_by_current_thread() {
            return if self.word.restore(last) {
                Err(Error::InProgress)
            } else {
                Ok(Begun::Overtaken)
            };
        }
        match self.word.finish_last(last) {
            Last::Kept(0) => Ok(Begun::Overtaken),
            Last::Kept(n) => Ok(Begun::Kept(n)),
            Last::Final => {
                let teardown = Teardown {
                    raw: self,
                    active: last,
                };
                let mut ctl = self.control.lock();
                ctl.drain_token = thread::token();
                ctl.drain_until =
                    std::time::Instant::now().checked_add(self.config.drain_deadline());
                drop(ctl);
                Ok(Begun::Final(teardown))
            }
        }
    }
}

/// What a cleanup that took the count from 1 to 0 began
/// ([`RawLifecycle::begin_final`]).
pub(crate) enum Begun<'a> {
    /// The final cleanup: the caller owns the teardown of the generation,
    /// and the frame publishes Released when it is dropped, however the
    /// teardown ends.
    Final(Teardown<'a>),
    /// A startup joined first: the cleanup was a plain decrement, leaving
    /// this count (at least 1).
    Kept(u32),
    /// The generation was ended by another cleanup first (a startup took up
    /// the unit this cleanup gave back, and its own cleanup was final): this
    /// cleanup was a plain decrement, and nothing is left to count in its
    /// generation.
    Overtaken,
}

/// The final cleanup's frame ([L14](crate::contract#L14)): whatever happens
/// between [`RawLifecycle::begin_final`] and its drop, the drop releases any
/// resource still registered, publishes Released with the next generation
/// and wakes every waiting startup.
pub(crate) struct Teardown<'a> {
    pub(super) raw: &'a RawLifecycle,
    pub(super) active: Word,
}

impl Teardown<'_> {
    /// The generation being torn down.
    pub(crate) fn generation(&self) -> u64 {
        self.active.generation()
    }

    /// [L6.1](crate::contract#L6.1): counts the guards to wait for (new
    /// ones are already refused by the Draining word) and asks their leavers
    /// to wake the drainer.
    pub(crate) fn shut_out_guards(&self) -> usize {
        self.raw.park_on_shards(self.lane())
    }

    /// The lane this generation's guards count in.
    fn lane(&self) -> usize {
        lane_of(self.active.generation())
    }

    /// [L16](crate::contract#L16): stops waiting for this generation's
    /// guards. Returns how many are still counted; if any, their lane is
    /// marked abandoned, so no later generation counts in it until they are
    /// gone, and the caller must leave in place whatever they may touch.
    pub(crate) fn abandon(&self) -> usize {
        let lane = self.lane();
        let outstanding = self.raw.guards(lane);
        if outstanding != 0 {
            // [P6] Release: pairs with `free_generation`'s Acquire load.
            self.raw.abandoned[lane].store(true, Ordering::Release);
        }
        // Their leaves no longer need to wake anyone.
        self.unpark();
        outstanding
    }

    /// [L6.1](crate::contract#L6.1): ends the blocking waits that asked to
    /// be cancelled ([S6](crate::contract#S6)). After the flip, so a wait
    /// registering later sees Draining and does not wait at all.
    pub(crate) fn cancel_blocking(&self) {
        let wakers = self.raw.cancels.lock().take();
        for w in wakers {
            // These wakers are the crate's own (they interrupt a flusher).
            w.wake();
        }
    }

    /// [L6.1](crate::contract#L6.1): blocks until no guard is live or
    /// `until`, whichever comes first; returns whether guards are gone. The
    /// drain never gives up on a guard ([O2](crate::contract#O2)): `until`
    /// only lets it say, as it happens, that it is still waiting (L16).
    pub(crate) fn block_until_no_guards_or(&self, until: std::time::Instant) -> bool {
        let raw = self.raw;
        let mut ctl = raw.control.lock();
        while raw.guards(self.lane()) != 0 {
            if std::time::Instant::now() >= until {
                return false;
            }
            ctl = raw.cv.wait_until(ctl, until);
        }
        true
    }

    /// Whether no guard is live; else `task` is woken when the last leaves.
    // Only the async cleanup, which loom builds leave out, calls it.
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn guards_gone_or_register(&self, task: &Waker) -> bool {
        self.raw.guards_gone_or_register(self.lane(), task)
    }

    /// Guards currently counted.
    pub(crate) fn guards(&self) -> usize {
        self.raw.guards(self.lane())
    }

    /// After the last guard left: leavers no longer need to wake anyone.
    pub(crate) fn unpark(&self) {
        for s in self.raw.lane(self.lane()) {
            // Relaxed: the bit only asks leavers to wake a waiting drainer;
            // once the wait is over nobody needs to see it go.
            s.fetch_and(!PARKED, Ordering::Relaxed);
        }
    }

    /// [L6.4](crate::contract#L6.4): takes the generation's resources, in registration order.
    pub(crate) fn take_resources(&self) -> Vec<Registered> {
        self.raw.take_resources()
    }
}

/// The drainer's half of the `PARKED` protocol (the leavers' half, and the
/// protocol itself, are in `raw/shards.rs`; its orderings are P4 and P5 in
/// [`docs::orderings`](crate::docs::orderings)).
impl RawLifecycle {
    /// For an async final cleanup: `true` if no guard is live; otherwise
    /// `waker` is woken when the last one leaves (checked under the lock the
    /// leaver's wake takes, so the wake cannot be missed).
    // Only the async cleanup, which loom builds leave out, calls it.
    #[cfg_attr(loom, allow(dead_code))]
    fn guards_gone_or_register(&self, lane: usize, waker: &Waker) -> bool {
        let mut ctl = self.control.lock();
        if self.guards(lane) == 0 {
            return true;
        }
        ctl.drainer = Some(waker.clone());
        false
    }

    /// Guards currently counted in `lane` (exact once every shard is closed).
    pub(crate) fn guards(&self, lane: usize) -> usize {
        self.lane(lane)
            .iter()
            // [P5] Acquire: pairs with the leavers' Release `fetch_sub`, so the
            // teardown that follows a zero sees all their work.
            .map(|s| s.load(Ordering::Acquire) & COUNT)
            .sum()
    }

    /// Marks every shard PARKED (after the flip to Draining): from here on
    /// the last leaver of a shard wakes the drainer. Returns the guards
    /// counted at that instant on each shard.
    fn park_on_shards(&self, lane: usize) -> usize {
        self.lane(lane)
            .iter()
            // [P4] AcqRel: Acquire the counted guards' state; Release the flip to
            // enters whose `fetch_add` reads this (see `raw/shards.rs`'s module
            // docs).
            .map(|s| s.fetch_or(PARKED, Ordering::AcqRel) & COUNT)
            .sum()
    }

    /// The shards of `lane`.
    pub(super) fn lane(&self, lane: usize) -> &[CachePadded<AtomicUsize>] {
        let start = (lane % LANES) * SHARDS;
        &self.shards[start..start + SHARDS]
    }
}

impl Drop for Teardown<'_> {
    fn drop(&mut self) {
        // Only non-empty if the teardown was cut short by an unwind.
        let leftover = self.take_resources();
        release_resources(leftover);
        // L6.6: Released, next generation, wake waiting startups. Under the
        // lock so a startup's check-then-wait cannot miss it.
        let mut ctl = self.raw.control.lock();
        ctl.drain_token = 0;
        ctl.drain_until = None;
        self.raw
            .word
            .publish_released(self.active.next_generation());
        self.raw.notify(ctl);
    }
}
