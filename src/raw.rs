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
//! background → drain, report, socket, config, sync
//! close      → drain, raw, report, socket, config
//! drain      → report, socket, hook, sync, error
//! guard      → raw, state, thread, error
//! raw        → state, resource, thread, config, sync, error
//! provider   → resource, socket, version, error
//! resource   → report, hook, error
//! report     → socket, hook
//! socket     → sync, error
//! config     → state
//! state      → thread, sync
//! thread     → sync
//! hook       → error
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
//! - `enter`: `shard.fetch_add(1)`, then load the state word; if it is not
//!   Active, undo and fail.
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

use crate::config::{Config, StartupPolicy};
use crate::resource::{Registered, release_resources};
use crate::state::{Last, State, StateWord, Word};
use crate::sync::{self, AtomicU64, AtomicUsize, CachePadded, Condvar, Counter, Mutex, Ordering};
use crate::{Error, thread};

/// Number of guard shards. Two under loom keep the models small while still
/// letting two threads count on different shards.
#[cfg(not(loom))]
pub(crate) const SHARDS: usize = 32;
#[cfg(loom)]
pub(crate) const SHARDS: usize = 2;

/// The `PARKED` bit of a shard word.
const PARKED: usize = 1 << (usize::BITS - 1);
/// The count bits of a shard word.
const COUNT: usize = PARKED - 1;

/// The non-generic part of a lifecycle. Guards borrow only this.
pub(crate) struct RawLifecycle {
    /// The packed state word, alone on its cache line.
    pub(crate) word: StateWord,
    /// Guard counters, one cache line each.
    shards: [CachePadded<AtomicUsize>; SHARDS],
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

/// What a startup's slow path decided.
pub(crate) enum Slow<'a> {
    /// Active now: retry the fast path.
    Retry,
    /// This thread initializes the next generation.
    Initialize(Initializing<'a>),
    /// (Async only) the waker is registered: poll again when it fires.
    Pending,
}

impl RawLifecycle {
    sync::loom_const_fn! {
        pub(crate) fn new(config: Config) -> RawLifecycle {
            RawLifecycle {
                word: StateWord::new(),
                shards: new_shards(),
                control: Mutex::new(Control {
                    resources: Vec::new(),
                    init_token: 0,
                    drain_token: 0,
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

    /// Counts a guard on this thread's shard if the state is Active ([O1](crate::contract#O1));
    /// returns the shard and the word seen.
    #[inline]
    pub(crate) fn enter(&self) -> Result<(usize, Word), Error> {
        self.enter_on(thread::shard(SHARDS))
    }

    /// [`enter`](RawLifecycle::enter) on a shard the caller already looked up.
    #[inline]
    pub(crate) fn enter_on(&self, shard: usize) -> Result<(usize, Word), Error> {
        // Acquire: a `fetch_add` that reads the drainer's `fetch_or`
        // synchronizes with it, so the load below sees Draining (module docs).
        // `% SHARDS` (a power of two: a mask) spares the bounds check.
        self.shards[shard % SHARDS].fetch_add(1, Ordering::Acquire);
        // Acquire (in `load`): pairs with the Release store of Active, so a
        // live guard sees the initialization.
        let w = self.word.load();
        if !w.is_active() {
            self.leave(shard);
            return Err(Error::NotInitialised);
        }
        Ok((shard, w))
    }

    /// Undoes one `enter` on `shard`, waking the drainer if it is waiting and
    /// this was the shard's last guard.
    #[inline]
    pub(crate) fn leave(&self, shard: usize) {
        // Release: everything the guard's holder did happens-before the
        // drainer's Acquire read of this count. Acquire: a `prev` with PARKED
        // synchronizes with the drainer's `fetch_or`.
        let prev = self.shards[shard % SHARDS].fetch_sub(1, Ordering::AcqRel);
        if prev & PARKED != 0 && prev & COUNT == 1 {
            self.wake();
        }
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
    pub(crate) fn guards_gone_or_register(&self, waker: &Waker) -> bool {
        let mut ctl = self.control.lock();
        if self.guards() == 0 {
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

    /// Guards currently counted (exact once every shard is closed).
    pub(crate) fn guards(&self) -> usize {
        self.shards
            .iter()
            // Acquire: pairs with the leavers' Release `fetch_sub`, so the
            // teardown that follows a zero sees all their work.
            .map(|s| s.load(Ordering::Acquire) & COUNT)
            .sum()
    }

    /// Marks every shard PARKED (after the flip to Draining): from here on
    /// the last leaver of a shard wakes the drainer. Returns the guards
    /// counted at that instant on each shard.
    fn park_on_shards(&self) -> usize {
        self.shards
            .iter()
            // AcqRel: Acquire the counted guards' state; Release the flip to
            // enters whose `fetch_add` reads this (see the module docs).
            .map(|s| s.fetch_or(PARKED, Ordering::AcqRel) & COUNT)
            .sum()
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
    pub(crate) fn register(&self, r: Registered) -> Result<(), Registered> {
        let mut ctl = self.control.lock();
        // The drain takes the list under this lock after flipping the word,
        // so an Active seen here means the drain will see this entry.
        if !self.word.load().is_active() {
            return Err(r);
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

    // ------------------------------------------------------------------
    // startup slow path
    // ------------------------------------------------------------------

    /// Not Active: initialize, or wait for whoever is initializing or
    /// draining, as `policy` says ([L9](crate::contract#L9)).
    #[cold]
    /// With `waker` (an async startup), a wait registers it and answers
    /// [`Slow::Pending`] instead of blocking.
    pub(crate) fn startup_slow(
        &self,
        policy: StartupPolicy,
        waker: Option<&Waker>,
    ) -> Result<Slow<'_>, Error> {
        let me = thread::token();
        let mut ctl = self.control.lock();
        loop {
            let w = self.word.load();
            match w.state() {
                State::Active => return Ok(Slow::Retry),
                State::Draining => {
                    if policy != StartupPolicy::Wait
                        || ctl.drain_token == me
                        || self.held_by_current_thread()
                    {
                        return Err(Error::InProgress);
                    }
                    if let Some(waker) = waker {
                        ctl.waiters.push(waker.clone());
                        return Ok(Slow::Pending);
                    }
                    ctl = self.cv.wait(ctl);
                }
                State::Uninitialized | State::Released if w.initializing() => {
                    if policy == StartupPolicy::NoWait || ctl.init_token == me {
                        return Err(Error::InProgress);
                    }
                    if let Some(waker) = waker {
                        ctl.waiters.push(waker.clone());
                        return Ok(Slow::Pending);
                    }
                    ctl = self.cv.wait(ctl);
                }
                State::Uninitialized | State::Released => {
                    self.word.mark_initializing();
                    ctl.init_token = me;
                    return Ok(Slow::Initialize(Initializing {
                        raw: self,
                        before: w,
                        done: false,
                    }));
                }
            }
        }
    }

    // ------------------------------------------------------------------
    // the final cleanup's frame
    // ------------------------------------------------------------------

    /// After a cleanup took the count from 1 to 0 (`last`, the word it
    /// left): the flip to Draining ([L6](crate::contract#L6)). `Ok(Ok(frame))`:
    /// the caller owns the teardown of `last`'s generation, and the frame
    /// publishes Released when it is dropped, however the teardown ends.
    /// `Ok(Err(n))`: a startup joined first; the cleanup was a plain
    /// decrement leaving `n`.
    ///
    /// # Errors
    ///
    /// [`Error::InProgress`] from a thread holding a guard of this lifecycle
    /// ([L11](crate::contract#L11)); the count is put back.
    #[cold]
    pub(crate) fn begin_final(&self, last: Word) -> Result<Result<Teardown<'_>, u32>, Error> {
        if self.held_by_current_thread() {
            return if self.word.restore(last) {
                Err(Error::InProgress)
            } else {
                // The generation ended meanwhile: a startup joined, and its
                // cleanup was final. This cleanup was a plain decrement.
                Ok(Err(0))
            };
        }
        match self.word.finish_last(last) {
            Last::Kept(n) => Ok(Err(n)),
            Last::Draining => {
                let teardown = Teardown {
                    raw: self,
                    active: last,
                };
                self.control.lock().drain_token = thread::token();
                Ok(Ok(teardown))
            }
        }
    }
}

/// A startup running the provider's initialization. Dropped without
/// [`publish`](Initializing::publish) (an unwind), it puts the state back.
pub(crate) struct Initializing<'a> {
    raw: &'a RawLifecycle,
    before: Word,
    done: bool,
}

impl Initializing<'_> {
    /// The generation being initialized.
    pub(crate) fn generation(&self) -> u64 {
        self.before.generation()
    }

    /// Ends the initialization: `Ok(resources)` publishes Active with count 1
    /// and the generation's resources; `Err(())` puts the state back ([L2](crate::contract#L2);
    /// the caller released what was registered).
    pub(crate) fn publish(mut self, resources: Result<Vec<Registered>, ()>) {
        self.done = true;
        let mut ctl = self.raw.control.lock();
        ctl.init_token = 0;
        match resources {
            Ok(resources) => {
                ctl.resources = resources;
                self.raw.word.publish_active(self.before.generation());
            }
            Err(()) => self.raw.word.clear_initializing(),
        };
        self.raw.notify(ctl);
    }
}

impl Drop for Initializing<'_> {
    fn drop(&mut self) {
        if !self.done {
            let mut ctl = self.raw.control.lock();
            ctl.init_token = 0;
            self.raw.word.clear_initializing();
            self.raw.notify(ctl);
        }
    }
}

/// The final cleanup's frame ([L14](crate::contract#L14)): whatever happens
/// between [`RawLifecycle::begin_final`] and its drop, the drop releases any
/// resource still registered, publishes Released with the next generation
/// and wakes every waiting startup.
pub(crate) struct Teardown<'a> {
    raw: &'a RawLifecycle,
    active: Word,
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
        self.raw.park_on_shards()
    }

    /// [L6.1](crate::contract#L6.1): ends the blocking waits that asked to
    /// be cancelled ([S6](crate::contract#S6)). After the flip, so a wait
    /// registering later sees Draining and does not wait at all.
    pub(crate) fn cancel_blocking(&self) {
        let wakers = std::mem::take(&mut self.raw.cancels.lock().wakers);
        for (_, w) in wakers {
            // These wakers are the crate's own (they interrupt a flusher).
            w.wake();
        }
    }

    /// [L6.1](crate::contract#L6.1): blocks until no guard is live. It
    /// never gives up ([O2](crate::contract#O2)), so it needs no timeout:
    /// the last leaver wakes it (whether the wait overran the drain deadline
    /// is judged when it ends).
    pub(crate) fn block_until_no_guards(&self) {
        let raw = self.raw;
        let mut ctl = raw.control.lock();
        while raw.guards() != 0 {
            ctl = raw.cv.wait(ctl);
        }
    }

    /// Whether no guard is live; else `task` is woken when the last leaves.
    pub(crate) fn guards_gone_or_register(&self, task: &Waker) -> bool {
        self.raw.guards_gone_or_register(task)
    }

    /// Guards currently counted.
    pub(crate) fn guards(&self) -> usize {
        self.raw.guards()
    }

    /// After the last guard left: leavers no longer need to wake anyone.
    pub(crate) fn unpark(&self) {
        for s in &self.raw.shards {
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

impl Drop for Teardown<'_> {
    fn drop(&mut self) {
        // Only non-empty if the teardown was cut short by an unwind.
        let leftover = self.take_resources();
        release_resources(leftover);
        // L6.6: Released, next generation, wake waiting startups. Under the
        // lock so a startup's check-then-wait cannot miss it.
        let mut ctl = self.raw.control.lock();
        ctl.drain_token = 0;
        self.raw
            .word
            .publish_released(self.active.next_generation());
        self.raw.notify(ctl);
    }
}

/// Shards at zero.
#[cfg(not(loom))]
const fn new_shards() -> [CachePadded<AtomicUsize>; SHARDS] {
    [const { CachePadded::new(AtomicUsize::new(0)) }; SHARDS]
}

#[cfg(loom)]
fn new_shards() -> [CachePadded<AtomicUsize>; SHARDS] {
    std::array::from_fn(|_| CachePadded::new(AtomicUsize::new(0)))
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    fn active() -> RawLifecycle {
        RawLifecycle::active_for_tests()
    }

    // O1: once the word says Draining, an enter fails even on a shard the
    // drainer has not closed yet (the window between the flip and the
    // closing of the shards).
    #[test]
    fn o1_enter_after_the_draining_flip_fails_on_an_open_shard() {
        let raw = active();
        assert!(raw.enter().is_ok_and(|(s, _)| {
            raw.leave(s);
            true
        }));
        assert!(raw.word.drain_for_tests());
        assert_eq!(raw.enter().err(), Some(Error::NotInitialised));
        assert_eq!(raw.guards(), 0, "the refused enter was undone");
    }

    // L2: an initialization abandoned by an unwind (its frame dropped
    // without `publish`) puts the state back and lets the next startup in.
    #[test]
    fn l2_abandoned_initialization_puts_the_state_back() {
        let raw = RawLifecycle::new(Config::new());
        match raw.startup_slow(StartupPolicy::Wait, None) {
            Ok(Slow::Initialize(init)) => {
                assert!(raw.word.load().initializing());
                drop(init);
            }
            _ => panic!("a new lifecycle initializes"),
        }
        let w = raw.word.load();
        assert!(!w.initializing());
        assert_eq!(w.state(), State::Uninitialized);
        assert!(matches!(
            raw.startup_slow(StartupPolicy::NoWait, None),
            Ok(Slow::Initialize(_))
        ));
    }

    // A refused enter costs what a success does: it never takes the control
    // mutex (a refusal that locked would block here, where the test holds it).
    #[test]
    fn refused_enter_takes_no_lock() {
        let raw = RawLifecycle::new(Config::new());
        let ctl = raw.control.lock();
        let (tx, rx) = mpsc::channel();
        std::thread::scope(|s| {
            s.spawn(|| {
                for _ in 0..1000 {
                    assert_eq!(raw.enter().err(), Some(Error::NotInitialised));
                }
                let _ = tx.send(());
            });
            let done = rx.recv_timeout(Duration::from_secs(10));
            drop(ctl);
            assert!(done.is_ok(), "a refused enter waited for the control mutex");
        });
    }

    // Leavers wake the drainer only while it waits (PARKED): after the wait
    // the bit is gone from every shard.
    #[test]
    fn parked_bit_lives_only_during_the_guard_wait() {
        let raw = active();
        let (shard, _) = raw.enter().unwrap();
        assert!(raw.word.drain_for_tests());
        let frame = Teardown {
            raw: &raw,
            active: Word::new(State::Active, 1, 0),
        };
        assert_eq!(frame.shut_out_guards(), 1);
        assert!(
            raw.shards
                .iter()
                .all(|s| s.load(Ordering::Relaxed) & PARKED != 0)
        );
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(20));
                raw.leave(shard);
            });
            frame.block_until_no_guards();
        });
        frame.unpark();
        assert!(
            raw.shards
                .iter()
                .all(|s| s.load(Ordering::Relaxed) & PARKED == 0)
        );
        drop(frame);
        assert_eq!(raw.word.load().state(), State::Released);
        assert_eq!(raw.word.load().generation(), 1);
    }
}
