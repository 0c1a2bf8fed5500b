//! The raw lifecycle: the state word, the guard shards and the slow-path
//! lock, with no provider type in sight (lock_api's raw/safe split:
//! [`Lifecycle`](crate::Lifecycle) is the safe, generic layer on top).
//!
//! # Module graph
//!
//! Every import points down; no module imports one that imports it back
//! (each line lists what a module imports from the crate):
//!
//! ```text
//! session    → lifecycle, provider, error, version
//! lifecycle  → background, close, drain, guard, raw, provider, resource, hook,
//!              report, socket, state, config, sync, version, error
//!              (with its child module lifecycle/teardown.rs)
//! background → drain, report, socket, config, helper, sync
//! close      → drain, raw, report, socket, config
//! drain      → report, socket, hook, sync, error
//! guard      → raw, state, thread, error
//! raw        → state, resource, thread, config, sync, error
//!              (with its child modules raw/startup.rs and raw/teardown.rs)
//! provider   → resource, socket, version, error
//! resource   → report, hook, error
//! report     → socket, hook
//! socket     → sync, error
//! config     → helper, state
//! state      → thread, sync
//! thread     → sync
//! hook       → error
//! helper     → nothing
//! version    → error
//! sync, error: nothing
//! ```
//!
//! # Guard shards
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
//! - `enter`: read the word's generation to pick the lane, `fetch_add(1)` on
//!   this thread's shard of it, then load the state word; if it is not
//!   Active, undo and fail; if it is Active in another lane's generation
//!   (a restart in between), undo and retry there.
//! - `leave` (guard drop, or an undo): `prev = shard.fetch_sub(1)`. If `prev`
//!   has `PARKED` and this was the shard's last guard, wake the drainer.
//! - The final cleanup flips the word to Draining, then `fetch_or`s `PARKED`
//!   into every shard (the counts it reads are the guards it waits for), then
//!   waits under `control` until every count is zero, then clears `PARKED`.
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
//! (An earlier version also kept a `CLOSED` bit that made enters fail on
//! closed shards; by the argument above the word load already refuses every
//! enter that bit would, so mutation testing showed it dead and it went.)
//!
//! `PARKED` is what keeps a refused `enter` as cheap as a successful one:
//! outside the drainer's wait no leaver ever takes the mutex, so a stream of enters on a Released
//! lifecycle neither locks nor wakes parked startups.
//!
//! The state-word load in `enter` makes the refusal immediate: once the flip
//! to Draining happened-before an `enter`, that `enter` fails even on a shard
//! the drainer has not closed yet ([O1](crate::contract#O1)).

use std::task::Waker;

use crate::config::Config;
#[cfg(test)]
use crate::config::StartupPolicy;
use crate::error::NotActive;
use crate::resource::Registered;
use crate::state::{State, StateWord, Word};
use crate::sync::{
    self, AtomicBool, AtomicU64, AtomicUsize, CachePadded, Condvar, Counter, Mutex, Ordering,
};
use crate::{Error, thread};

mod startup;
mod teardown;

pub(crate) use startup::{Initializing, Slow};
pub(crate) use teardown::{Begun, Teardown};

/// Number of guard shards. Two under loom keep the models small while still
/// letting two threads count on different shards.
#[cfg(not(loom))]
pub(crate) const SHARDS: usize = 32;
#[cfg(loom)]
pub(crate) const SHARDS: usize = 2;

/// Lanes of guard shards (and of provider states): a generation counts its
/// guards in lane `generation % LANES`, so guards a bounded wait abandoned
/// ([L16](crate::contract#L16)) never count in a later generation. Two
/// under loom.
#[cfg(not(loom))]
pub(crate) const LANES: usize = 4;
#[cfg(loom)]
pub(crate) const LANES: usize = 2;

/// Every shard of every lane.
const ALL_SHARDS: usize = SHARDS * LANES;

/// The lane of `generation`'s guards and state.
#[inline]
pub(crate) const fn lane_of(generation: u64) -> usize {
    // LANES is a power of two dividing the generation field's 2^31: the
    // lane stays the same across the field's wrap.
    (generation % LANES as u64) as usize
}

/// The lane of a guard counted at `index` (what `enter` returns).
#[inline]
pub(crate) const fn lane_at(index: usize) -> usize {
    (index / SHARDS) % LANES
}

/// The `PARKED` bit of a shard word.
const PARKED: usize = 1 << (usize::BITS - 1);
/// The count bits of a shard word.
const COUNT: usize = PARKED - 1;

/// The error of an `enter` that found `w` not Active, out of line: the
/// guard's fast path carries no code for it.
#[cold]
#[inline(never)]
fn refused(w: Word) -> Error {
    Error::NotInitialised(w.refused_use())
}

/// The non-generic part of a lifecycle. Guards borrow only this.
pub(crate) struct RawLifecycle {
    /// The packed state word, alone on its cache line.
    pub(crate) word: StateWord,
    /// Guard counters, one cache line each: `LANES` lanes of `SHARDS`.
    shards: [CachePadded<AtomicUsize>; ALL_SHARDS],
    /// Set by [`end_at_exit`](RawLifecycle::end_at_exit): the process is
    /// exiting, a startup that finds Draining does not wait.
    exited: AtomicBool,
    /// Lanes whose generation a bounded guard wait abandoned with guards
    /// still counted ([L16](crate::contract#L16)): not reused until they
    /// are gone. Atomic, so that ending a generation at process exit
    /// ([L18](crate::contract#L18)) takes no lock.
    abandoned: [AtomicBool; LANES],
    /// Slow-path state; also the lock every wait and wake goes through.
    control: Mutex<Control>,
    /// Woken on every slow-path transition and when the last guard leaves
    /// during the drainer's wait. All waits loop on their own condition.
    cv: Condvar,
    pub(crate) config: Config,
    /// A process-unique id, assigned on first use (0: not yet). Keys the
    /// per-thread records ([L11](crate::contract#L11))
    /// instead of the address.
    id: AtomicU64,
    /// Wakers of blocking closes waiting on a linger timeout, woken by the
    /// final cleanup's cancel step ([S6](crate::contract#S6)), by key.
    cancels: Mutex<Cancels>,
}

/// The blocking waits the cancel step ends.
struct Cancels {
    next: u64,
    wakers: Vec<(u64, Waker)>,
}

/// What the slow paths share under `RawLifecycle::control`.
struct Control {
    /// Resources of the current generation, in registration order.
    resources: Vec<Registered>,
    /// The thread running the initialization hook (0: none).
    init_token: u64,
    /// The thread running the final cleanup (0: none).
    drain_token: u64,
    /// When the running final cleanup's drain deadline passes (None: no
    /// final cleanup running).
    drain_until: Option<std::time::Instant>,
    /// Async startups waiting for the state to change (woken with `cv`).
    waiters: Vec<Waker>,
    /// An async final cleanup waiting for the last guard (woken with `cv`).
    drainer: Option<Waker>,
}

impl Control {
    /// Takes the async waiters to wake after the lock is released.
    fn take_wakers(&mut self) -> Vec<Waker> {
        let mut w = std::mem::take(&mut self.waiters);
        w.extend(self.drainer.take());
        w
    }
}

impl RawLifecycle {
    sync::loom_const_fn! {
        pub(crate) fn new(config: Config) -> RawLifecycle {
            RawLifecycle {
                word: StateWord::new(),
                shards: new_shards(),
                abandoned: new_flags(),
                exited: AtomicBool::new(false),
                control: Mutex::new(Control {
                    resources: Vec::new(),
                    init_token: 0,
                    drain_token: 0,
                    drain_until: None,
                    waiters: Vec::new(),
                    drainer: None,
                }),
                cv: Condvar::new(),
                config,
                id: AtomicU64::new(0),
                cancels: Mutex::new(Cancels {
                    next: 0,
                    wakers: Vec::new(),
                }),
            }
        }
    }

    /// This lifecycle's process-unique id.
    #[inline]
    pub(crate) fn id(&self) -> u64 {
        // Relaxed: the id is only compared for identity; the CAS below makes
        // every thread agree on one value.
        let id = self.id.load(Ordering::Relaxed);
        if id != 0 { id } else { self.assign_id() }
    }

    #[cold]
    fn assign_id(&self) -> u64 {
        let fresh = sync::next_id(Counter::Lifecycle);
        match self
            .id
            .compare_exchange(0, fresh, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => fresh,
            Err(winner) => winner,
        }
    }

    // ------------------------------------------------------------------
    // guards
    // ------------------------------------------------------------------

    /// Counts a guard on this thread's shard of the current generation's
    /// lane if the state is Active ([O1](crate::contract#O1)); returns where
    /// it is counted (for [`leave`](RawLifecycle::leave)) and the word seen.
    #[inline]
    pub(crate) fn enter(&self) -> Result<(usize, Word), Error> {
        self.enter_on(thread::shard(SHARDS))
    }

    /// [`enter`](RawLifecycle::enter) on a shard the caller already looked up.
    #[inline]
    pub(crate) fn enter_on(&self, shard: usize) -> Result<(usize, Word), Error> {
        // The lane comes from a first look at the word; the load after the
        // count confirms it (a generation change in between retries).
        let mut lane = lane_of(self.word.load().generation());
        loop {
            // `% SHARDS` (a power of two: a mask) spares the bounds check.
            let index = lane * SHARDS + shard % SHARDS;
            // Acquire: a `fetch_add` that reads the drainer's `fetch_or`
            // synchronizes with it, so the load below sees Draining (module docs).
            self.shards[index].fetch_add(1, Ordering::Acquire);
            // Acquire (in `load`): pairs with the Release store of Active, so a
            // live guard sees the initialization.
            let w = self.word.load();
            let now = lane_of(w.generation());
            if w.is_active() && now == lane {
                return Ok((index, w));
            }
            self.leave(index);
            if !w.is_active() {
                return Err(refused(w));
            }
            lane = now;
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
        // Release: everything the guard's holder did happens-before the
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
    fn shard_at(&self, index: usize) -> &AtomicUsize {
        &self.shards[index % ALL_SHARDS]
    }

    #[cold]
    fn wake(&self) {
        // Taking the lock orders this wake after the waiter's check-then-wait.
        let mut ctl = self.control.lock();
        self.cv.notify_all();
        let drainer = ctl.drainer.take();
        drop(ctl);
        if let Some(w) = drainer {
            w.wake();
        }
    }

    /// For an async final cleanup: `true` if no guard is live; otherwise
    /// `waker` is woken when the last one leaves (checked under the lock the
    /// leaver's wake takes, so the wake cannot be missed).
    // Only the async cleanup, which loom builds leave out, calls it.
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn guards_gone_or_register(&self, lane: usize, waker: &Waker) -> bool {
        let mut ctl = self.control.lock();
        if self.guards(lane) == 0 {
            return true;
        }
        ctl.drainer = Some(waker.clone());
        false
    }

    /// Wakes every waiter after a slow-path transition (under `ctl`).
    fn notify(&self, mut ctl: crate::sync::MutexGuard<'_, Control>) {
        self.cv.notify_all();
        let wakers = ctl.take_wakers();
        drop(ctl);
        for w in wakers {
            w.wake();
        }
    }

    /// Guards currently counted in `lane` (exact once every shard is closed).
    pub(crate) fn guards(&self, lane: usize) -> usize {
        self.lane(lane)
            .iter()
            // Acquire: pairs with the leavers' Release `fetch_sub`, so the
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
            // AcqRel: Acquire the counted guards' state; Release the flip to
            // enters whose `fetch_add` reads this (see the module docs).
            .map(|s| s.fetch_or(PARKED, Ordering::AcqRel) & COUNT)
            .sum()
    }

    /// The shards of `lane`.
    fn lane(&self, lane: usize) -> &[CachePadded<AtomicUsize>] {
        let start = (lane % LANES) * SHARDS;
        &self.shards[start..start + SHARDS]
    }

    /// A generation at or after `next` whose lane is free: not abandoned, or
    /// abandoned and its guards all gone since ([L16](crate::contract#L16)).
    /// `None` if every lane still has abandoned guards.
    fn free_generation(&self, next: u64) -> Option<u64> {
        (0..LANES as u64)
            .map(|k| (next + k) & crate::state::GEN_MASK)
            .find(|&g| {
                let lane = lane_of(g);
                // Acquire: pairs with `abandon`'s Release store; a zero read
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

    /// [L18](crate::contract#L18): ends the Active generation at process
    /// exit. Takes no lock (a thread the OS stopped may hold one), waits for
    /// no guard, joins nothing: the word goes to Draining for good and
    /// everything of the generation stays in place. Returns the generation
    /// ended.
    pub(crate) fn end_at_exit(&self) -> Result<u64, Error> {
        // Release: a startup that finds Draining and this flag does not
        // wait (`startup_slow`).
        self.exited.store(true, Ordering::Release);
        match self.word.end_for_good() {
            Ok(w) => {
                // Wake startups already waiting, if nobody holds the lock
                // (never wait for it).
                if let Some(ctl) = self.control.try_lock() {
                    self.notify(ctl);
                }
                Ok(w.generation())
            }
            Err(w) if w.state() == State::Draining || w.initializing() => Err(Error::InProgress),
            Err(w) => Err(Error::NotInitialised(w.refused_use())),
        }
    }

    /// Whether [`end_at_exit`](RawLifecycle::end_at_exit) was called.
    pub(crate) fn exited(&self) -> bool {
        self.exited.load(Ordering::Acquire)
    }

    /// Whether the calling thread holds a guard of this lifecycle ([L11](crate::contract#L11)).
    pub(crate) fn held_by_current_thread(&self) -> bool {
        thread::holds(self.id())
    }

    // ------------------------------------------------------------------
    // resources
    // ------------------------------------------------------------------

    /// Adds a resource to the current generation; hands it back unless
    /// Active.
    pub(crate) fn register(&self, r: Registered) -> Result<(), (Registered, NotActive)> {
        let mut ctl = self.control.lock();
        // The drain takes the list under this lock after flipping the word,
        // so an Active seen here means the drain will see this entry.
        let w = self.word.load();
        if !w.is_active() {
            return Err((r, w.refused_use()));
        }
        ctl.resources.push(r);
        Ok(())
    }

    /// Registers `waker` to be woken by the final cleanup's cancel step;
    /// `None` if that step has begun already (the state is not Active).
    pub(crate) fn on_cancel(&self, waker: Waker) -> Option<u64> {
        let mut c = self.cancels.lock();
        // The cancel step takes this lock after the flip to Draining: if it
        // ran first, this load (Acquire, after the lock) sees Draining.
        if !self.word.load().is_active() {
            return None;
        }
        c.next += 1;
        let key = c.next;
        c.wakers.push((key, waker));
        Some(key)
    }

    /// How many wakers wait for the cancel step (tests check they do not
    /// pile up).
    #[cfg(test)]
    pub(crate) fn cancel_waiters(&self) -> usize {
        self.cancels.lock().wakers.len()
    }

    /// A lifecycle already Active with count 1 and no resources (unit tests).
    #[cfg(test)]
    pub(crate) fn active_for_tests() -> RawLifecycle {
        let raw = RawLifecycle::new(Config::new());
        match raw.startup_slow(StartupPolicy::Wait, None) {
            Ok(Slow::Initialize(init)) => init.publish(Ok(Vec::new())),
            _ => unreachable!("a new lifecycle initializes"),
        }
        assert!(raw.word.load().is_active());
        raw
    }

    /// Forgets a registration of [`on_cancel`](RawLifecycle::on_cancel).
    pub(crate) fn forget_cancel(&self, key: u64) {
        self.cancels.lock().wakers.retain(|(k, _)| *k != key);
    }

    /// Takes the current generation's resources, in registration order.
    pub(crate) fn take_resources(&self) -> Vec<Registered> {
        std::mem::take(&mut self.control.lock().resources)
    }
}

/// Shards at zero.
#[cfg(not(loom))]
const fn new_shards() -> [CachePadded<AtomicUsize>; ALL_SHARDS] {
    [const { CachePadded::new(AtomicUsize::new(0)) }; ALL_SHARDS]
}

#[cfg(loom)]
fn new_shards() -> [CachePadded<AtomicUsize>; ALL_SHARDS] {
    std::array::from_fn(|_| CachePadded::new(AtomicUsize::new(0)))
}

/// No lane abandoned.
#[cfg(not(loom))]
const fn new_flags() -> [AtomicBool; LANES] {
    [const { AtomicBool::new(false) }; LANES]
}

#[cfg(loom)]
fn new_flags() -> [AtomicBool; LANES] {
    std::array::from_fn(|_| AtomicBool::new(false))
}

#[cfg(all(test, not(loom)))]
mod tests;
