//! The one place that names `std::sync::atomic`, `parking_lot` or `loom`.
//!
//! Under `--cfg loom` every atomic, lock, condition variable, thread-local and
//! sleep the crate uses is swapped for loom's model-checked version, so that
//! `tests/loom.rs` explores the real code, not a copy of it. The API exposed
//! here is the small common subset both back ends support: a `Mutex` whose
//! `lock` cannot fail, and a `Condvar` whose waits take the guard by value.

use std::time::{Duration, Instant};

pub(crate) use crossbeam_utils::CachePadded;

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Number of guard shards (see `guard.rs`). Two under loom keep the models small
/// while still letting two threads count on different shards.
#[cfg(not(loom))]
pub(crate) const SHARDS: usize = 32;
#[cfg(loom)]
pub(crate) const SHARDS: usize = 2;

/// Declares a `const fn` outside loom and a plain `fn` under loom (loom's
/// atomics and locks cannot be built in a const context).
macro_rules! loom_const_fn {
    ($(#[$meta:meta])* $vis:vis fn $name:ident $(<$($g:ident),*>)? ($($args:tt)*) -> $ret:ty $body:block) => {
        #[cfg(not(loom))]
        $(#[$meta])* $vis const fn $name $(<$($g),*>)? ($($args)*) -> $ret $body
        #[cfg(loom)]
        $(#[$meta])* $vis fn $name $(<$($g),*>)? ($($args)*) -> $ret $body
    };
}
pub(crate) use loom_const_fn;

/// The guard shards, one counter per cache line.
pub(crate) type Shards = [CachePadded<AtomicUsize>; SHARDS];

/// Guard shards, each starting at `value`.
#[cfg(not(loom))]
pub(crate) const fn new_shards(value: usize) -> Shards {
    let mut shards = [const { CachePadded::new(AtomicUsize::new(0)) }; SHARDS];
    let mut i = 0;
    while i < SHARDS {
        shards[i] = CachePadded::new(AtomicUsize::new(value));
        i += 1;
    }
    shards
}

#[cfg(loom)]
pub(crate) fn new_shards(value: usize) -> Shards {
    std::array::from_fn(|_| CachePadded::new(AtomicUsize::new(value)))
}

loom_const_fn! {
    pub(crate) fn new_word(value: u64) -> CachePadded<AtomicU64> {
        CachePadded::new(AtomicU64::new(value))
    }
}

// ---------------------------------------------------------------------------
// Mutex + Condvar
// ---------------------------------------------------------------------------

#[cfg(not(loom))]
pub(crate) use parking_lot::{Mutex, MutexGuard};

#[cfg(loom)]
#[derive(Debug)]
pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

#[cfg(loom)]
pub(crate) type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

#[cfg(loom)]
impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Self {
        Mutex(loom::sync::Mutex::new(value))
    }

    pub(crate) fn into_inner(self) -> T {
        self.0.into_inner().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        // Poisoning only follows a panic inside the crate's own critical
        // sections, which never call user code; recover the data regardless.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A condition variable with by-value waits, so both back ends share one shape.
#[derive(Debug)]
pub(crate) struct Condvar {
    #[cfg(not(loom))]
    inner: parking_lot::Condvar,
    #[cfg(loom)]
    inner: loom::sync::Condvar,
}

impl Condvar {
    loom_const_fn! {
        pub(crate) fn new() -> Condvar {
            Condvar {
                #[cfg(not(loom))]
                inner: parking_lot::Condvar::new(),
                #[cfg(loom)]
                inner: loom::sync::Condvar::new(),
            }
        }
    }

    /// Blocks until notified (spurious wake-ups are possible: callers loop).
    #[cfg(not(loom))]
    pub(crate) fn wait<'a, T>(&self, mut guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        self.inner.wait(&mut guard);
        guard
    }

    #[cfg(loom)]
    pub(crate) fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        self.inner.wait(guard).unwrap_or_else(|e| e.into_inner())
    }

    /// Blocks until notified or `deadline`. Under loom timed waits never time
    /// out (loom does not model time), so this is a plain wait there.
    #[cfg(not(loom))]
    pub(crate) fn wait_until<'a, T>(
        &self,
        mut guard: MutexGuard<'a, T>,
        deadline: Instant,
    ) -> MutexGuard<'a, T> {
        let _ = self.inner.wait_until(&mut guard, deadline);
        guard
    }

    #[cfg(loom)]
    pub(crate) fn wait_until<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        _deadline: Instant,
    ) -> MutexGuard<'a, T> {
        self.wait(guard)
    }

    pub(crate) fn notify_all(&self) {
        self.inner.notify_all();
    }
}

// ---------------------------------------------------------------------------
// Time and the calling thread
// ---------------------------------------------------------------------------

/// Sleeps for a short back-off while a drain waits for sockets to progress.
/// Under loom it yields instead, so the model explores other threads.
pub(crate) fn backoff(d: Duration) {
    #[cfg(not(loom))]
    {
        if d.is_zero() {
            std::thread::yield_now();
        } else {
            std::thread::sleep(d);
        }
    }
    #[cfg(loom)]
    {
        let _ = d;
        loom::thread::yield_now();
    }
}

/// A small number naming the calling thread for as long as it lives (used to
/// refuse a re-entrant startup from inside the initialization hook). Works
/// under loom too, where every modelled thread shares one OS thread.
pub(crate) fn thread_token() -> u64 {
    with_thread(|slot| {
        let token = slot.token.get();
        if token != 0 {
            return token;
        }
        let token = next_token();
        slot.token.set(token);
        token
    })
    // A thread past its locals' destruction gets a fresh token each time:
    // it cannot be the one initializing or draining.
    .unwrap_or_else(next_token)
}

#[cfg(not(loom))]
fn next_token() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    // Relaxed: uniqueness only needs the RMW's atomicity.
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[cfg(loom)]
fn next_token() -> u64 {
    loom::lazy_static! {
        static ref NEXT: AtomicU64 = AtomicU64::new(1);
    }
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Per-thread bookkeeping for guards: which shard this thread counts on, and
/// which lifecycles it currently holds guards of (rule L11).
#[derive(Debug)]
pub(crate) struct ThreadSlot {
    token: std::cell::Cell<u64>,
    /// The lifecycle (by address) whose state word this thread last wrote
    /// on a fast path, and the value it wrote (see `Core::guess`).
    pub(crate) hint_key: std::cell::Cell<usize>,
    pub(crate) hint_word: std::cell::Cell<u64>,
    pub(crate) shard: std::cell::Cell<usize>,
    pub(crate) held_keys: [std::cell::Cell<usize>; HELD_SLOTS],
    pub(crate) held_depth: [std::cell::Cell<u32>; HELD_SLOTS],
}

/// How many distinct lifecycles one thread can hold guards of at once and
/// still have rule L11 detected (deeper nesting still works, unchecked).
pub(crate) const HELD_SLOTS: usize = 4;

/// Marks `ThreadSlot::shard` as not yet chosen.
pub(crate) const NO_SHARD: usize = usize::MAX;

impl ThreadSlot {
    loom_const_fn! {
        fn new() -> ThreadSlot {
            ThreadSlot {
                token: std::cell::Cell::new(0),
                hint_key: std::cell::Cell::new(0),
                hint_word: std::cell::Cell::new(0),
                shard: std::cell::Cell::new(NO_SHARD),
                held_keys: [const { std::cell::Cell::new(0) }; HELD_SLOTS],
                held_depth: [const { std::cell::Cell::new(0) }; HELD_SLOTS],
            }
        }
    }
}

#[cfg(not(loom))]
std::thread_local! {
    static THREAD: ThreadSlot = const { ThreadSlot::new() };
}

#[cfg(loom)]
loom::thread_local! {
    static THREAD: ThreadSlot = ThreadSlot::new();
}

/// Runs `f` with the calling thread's slot; `None` if the slot is no longer
/// accessible. `ThreadSlot` has no destructor, so std keeps it usable even
/// inside other thread-locals' destructors; loom's thread-locals can be
/// destroyed, and callers fall back instead of panicking either way.
#[inline]
pub(crate) fn with_thread<R>(f: impl FnOnce(&ThreadSlot) -> R) -> Option<R> {
    THREAD.try_with(f).ok()
}

/// Hands out shard indices round-robin, so that threads spread over shards.
#[cfg(not(loom))]
pub(crate) fn next_shard() -> usize {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    // Relaxed: only a distribution hint; any value is a correct shard.
    NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS
}

#[cfg(loom)]
pub(crate) fn next_shard() -> usize {
    loom::lazy_static! {
        static ref NEXT: AtomicUsize = AtomicUsize::new(0);
    }
    NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS
}
