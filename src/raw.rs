//! The raw lifecycle: the state word, the guard shards and the slow-path
//! lock, with no provider type in sight (lock_api's raw/safe split:
//! [`Lifecycle`](crate::Lifecycle) is the safe, generic layer on top).
//! This file holds the struct and its slow-path lock; each of its jobs has
//! a room below it: `shards.rs` (guards), `identity.rs` (the id of the
//! per-thread records), `resources.rs`, `cancel.rs` (the cancel step's
//! waits), `wakers.rs` (the one registry of wakers), `startup.rs` (the
//! startup slow path and its frame), `teardown.rs` (the final cleanup's
//! frame and its guard wait). How they fit in the crate: [`docs::architecture`](crate::docs::architecture).

use std::task::Waker;

use crate::Error;
use crate::config::Config;
#[cfg(test)]
use crate::config::StartupPolicy;
use crate::resource::Registered;
use crate::state::{State, StateWord};
use crate::sync::{
    self, AtomicBool, AtomicU64, AtomicUsize, CachePadded, Condvar, Mutex, Ordering,
};

mod cancel;
mod identity;
mod resources;
mod shards;
mod startup;
mod teardown;
mod wakers;

pub(crate) use shards::{LANES, SHARDS, lane_at, lane_of};
pub(crate) use startup::{Initializing, Slow};
pub(crate) use teardown::{Begun, Teardown};

use shards::{ALL_SHARDS, new_flags, new_shards};
use wakers::Wakers;

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
    cancels: Mutex<Wakers>,
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
    waiters: Wakers,
    /// An async final cleanup waiting for the last guard (woken with `cv`).
    drainer: Option<Waker>,
}

impl Control {
    /// Takes the async waiters to wake after the lock is released.
    fn take_wakers(&mut self) -> Vec<Waker> {
        let mut w = self.waiters.take();
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
                    waiters: Wakers::new(),
                    drainer: None,
                }),
                cv: Condvar::new(),
                config,
                id: AtomicU64::new(0),
                cancels: Mutex::new(Wakers::new()),
            }
        }
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

    /// [L18](crate::contract#L18): ends the Active generation at process
    /// exit. Takes no lock (a thread the OS stopped may hold one), waits for
    /// no guard, joins nothing: the word goes to Draining for good and
    /// everything of the generation stays in place. Returns the generation
    /// ended.
    pub(crate) fn end_at_exit(&self) -> Result<u64, Error> {
        // [P7] Release: a startup that finds Draining and this flag does not
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
        // [P7] Acquire: pairs with `end_at_exit`'s Release store.
        self.exited.load(Ordering::Acquire)
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
}

#[cfg(all(test, not(loom)))]
mod tests;
