//! The one place that names `std::sync` or `loom`: the locks are std's (no
//! per-thread state, L17), the atomics std's or loom's.
//!
//! Under `--cfg loom` every atomic, lock, condition variable, thread-local,
//! process-wide counter and sleep the crate uses is loom's, so that
//! `tests/loom.rs` explores the real code, not a copy of it. Each back end is
//! one block below; both export the same small surface:
//!
//! | item | what |
//! |---|---|
//! | `AtomicBool`, `AtomicU64`, `AtomicUsize`, `Ordering`, `CachePadded` | atomics |
//! | `spin_wait` | a yield while another thread's transient on the state word is undone |
//! | `spawn`, `JoinHandle` | the background flusher thread (joined before any teardown step that needs it gone) |
//! | `Mutex`, `MutexGuard` | a lock whose `lock` cannot fail (no poisoning) |
//! | `RwLock`, `RwLockReadGuard` | the per-generation provider state (written only while no guard can exist) |
//! | `Condvar` | waits that take the guard by value; a timed wait is a plain wait under loom (loom has no time) |
//! | `next_id(Counter)` | process-wide unique numbers (thread tokens, lifecycle ids, shard choice) |
//! | `loom_const_fn!` | `const fn` outside loom, plain `fn` under it |
//! | `thread_local!` | std's or loom's |

pub(crate) use crossbeam_utils::CachePadded;

/// Which process-wide counter [`next_id`] draws from.
#[derive(Clone, Copy)]
pub(crate) enum Counter {
    /// Thread tokens (start at 1; 0 means "none").
    Thread,
    /// Lifecycle ids (start at 1; 0 means "not assigned yet").
    Lifecycle,
    /// Round-robin shard choice.
    Shard,
}

pub(crate) use imp::*;

#[cfg(not(loom))]
mod imp {
    use std::time::Instant;

    pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
    pub(crate) use std::thread_local;

    /// Waits a moment for another thread's transient to be undone (the
    /// state word's slow paths; see `state.rs`).
    pub(crate) fn spin_wait() {
        std::thread::yield_now();
    }

    /// A started helper thread, to join.
    pub(crate) type JoinHandle = crate::helper::HelperJoin;

    /// Starts a named helper thread through the configured spawner; `None`
    /// if none could be started.
    pub(crate) fn spawn(
        spawner: crate::helper::Spawner,
        name: &'static str,
        f: impl FnOnce() + Send + 'static,
    ) -> Option<JoinHandle> {
        spawner(crate::helper::HelperTask::new(name, f))
    }

    use super::Counter;

    macro_rules! loom_const_fn {
        ($(#[$meta:meta])* $vis:vis fn $name:ident $(<$($g:ident),*>)? ($($args:tt)*) -> $ret:ty $body:block) => {
            $(#[$meta])* $vis const fn $name $(<$($g),*>)? ($($args)*) -> $ret $body
        };
    }
    pub(crate) use loom_const_fn;

    /// std's mutex (a futex on Linux, an SRW lock on Windows) behind the
    /// shape the crate uses: `lock` cannot fail. std's and not
    /// parking_lot's: a thread that blocks in parking_lot registers a
    /// thread-exit destructor for its parking data, which would keep a
    /// provider library mapped after `dlclose` for as long as the caller's
    /// thread lives ([L17](crate::contract#L17)); std's locks keep nothing
    /// per thread.
    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(std::sync::Mutex<T>);

    pub(crate) type MutexGuard<'a, T> = std::sync::MutexGuard<'a, T>;

    impl<T> Mutex<T> {
        pub(crate) const fn new(value: T) -> Self {
            Mutex(std::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            // Poisoning only follows a panic inside the crate's own critical
            // sections, which never call user code unguarded; recover the
            // data regardless.
            self.0.lock().unwrap_or_else(|e| e.into_inner())
        }

        /// The lock if it is free now; `None` if someone holds it.
        pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            match self.0.try_lock() {
                Ok(g) => Some(g),
                Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => None,
            }
        }
    }

    /// std's read-write lock, without poisoning (see [`Mutex`]).
    #[derive(Debug, Default)]
    pub(crate) struct RwLock<T>(std::sync::RwLock<T>);

    pub(crate) type RwLockReadGuard<'a, T> = std::sync::RwLockReadGuard<'a, T>;

    impl<T> RwLock<T> {
        pub(crate) const fn new(value: T) -> Self {
            RwLock(std::sync::RwLock::new(value))
        }

        pub(crate) fn read(&self) -> RwLockReadGuard<'_, T> {
            self.0.read().unwrap_or_else(|e| e.into_inner())
        }

        pub(crate) fn write(&self) -> std::sync::RwLockWriteGuard<'_, T> {
            self.0.write().unwrap_or_else(|e| e.into_inner())
        }
    }

    /// A condition variable with by-value waits (see the module table).
    #[derive(Debug, Default)]
    pub(crate) struct Condvar(std::sync::Condvar);

    impl Condvar {
        pub(crate) const fn new() -> Condvar {
            Condvar(std::sync::Condvar::new())
        }

        /// Blocks until notified (spurious wake-ups are possible: callers loop).
        pub(crate) fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
            self.0.wait(guard).unwrap_or_else(|e| e.into_inner())
        }

        /// Blocks until notified or `deadline`.
        pub(crate) fn wait_until<'a, T>(
            &self,
            guard: MutexGuard<'a, T>,
            deadline: Instant,
        ) -> MutexGuard<'a, T> {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.0.wait_timeout(guard, left) {
                Ok((guard, _)) => guard,
                Err(e) => e.into_inner().0,
            }
        }

        pub(crate) fn notify_all(&self) {
            self.0.notify_all();
        }

        pub(crate) fn notify_one(&self) {
            self.0.notify_one();
        }
    }

    static COUNTERS: [AtomicU64; 3] = [AtomicU64::new(1), AtomicU64::new(1), AtomicU64::new(0)];

    /// The next number of `counter` (unique for the process's life; 2^64 draws
    /// are out of reach).
    pub(crate) fn next_id(counter: Counter) -> u64 {
        // Relaxed: uniqueness only needs the RMW's atomicity.
        COUNTERS[counter as usize].fetch_add(1, Ordering::Relaxed)
    }
}

#[cfg(loom)]
mod imp {
    use std::time::Instant;

    pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
    pub(crate) use loom::thread_local;

    /// Lets the other modelled threads run (a spin must yield under loom).
    pub(crate) fn spin_wait() {
        loom::thread::yield_now();
    }

    /// A started modelled thread, to join.
    #[derive(Debug)]
    pub(crate) struct JoinHandle(loom::thread::JoinHandle<()>);

    impl JoinHandle {
        pub(crate) fn join(self) {
            let _ = self.0.join();
        }
    }

    /// Starts a modelled thread (the configured spawner is not used: loom
    /// must see its own threads).
    pub(crate) fn spawn(
        _spawner: crate::helper::Spawner,
        _name: &'static str,
        f: impl FnOnce() + Send + 'static,
    ) -> Option<JoinHandle> {
        Some(JoinHandle(loom::thread::spawn(f)))
    }

    use super::Counter;

    macro_rules! loom_const_fn {
        ($(#[$meta:meta])* $vis:vis fn $name:ident $(<$($g:ident),*>)? ($($args:tt)*) -> $ret:ty $body:block) => {
            $(#[$meta])* $vis fn $name $(<$($g),*>)? ($($args)*) -> $ret $body
        };
    }
    pub(crate) use loom_const_fn;

    /// loom's mutex behind the same shape: `lock` cannot fail.
    #[derive(Debug)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    pub(crate) type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

    impl<T: Default> Default for Mutex<T> {
        fn default() -> Self {
            Mutex::new(T::default())
        }
    }

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Mutex(loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            // Poisoning only follows a panic inside the crate's own critical
            // sections, which never call user code; recover the data regardless.
            self.0.lock().unwrap_or_else(|e| e.into_inner())
        }

        /// The lock if it is free now; `None` if someone holds it.
        pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            match self.0.try_lock() {
                Ok(g) => Some(g),
                Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => None,
            }
        }
    }

    /// loom's read-write lock behind the same shape (no poisoning).
    #[derive(Debug)]
    pub(crate) struct RwLock<T>(loom::sync::RwLock<T>);

    pub(crate) type RwLockReadGuard<'a, T> = loom::sync::RwLockReadGuard<'a, T>;

    impl<T> RwLock<T> {
        pub(crate) fn new(value: T) -> Self {
            RwLock(loom::sync::RwLock::new(value))
        }

        pub(crate) fn read(&self) -> RwLockReadGuard<'_, T> {
            self.0.read().unwrap_or_else(|e| e.into_inner())
        }

        pub(crate) fn write(&self) -> loom::sync::RwLockWriteGuard<'_, T> {
            self.0.write().unwrap_or_else(|e| e.into_inner())
        }
    }

    /// loom's condition variable; timed waits never time out (no time in loom).
    #[derive(Debug)]
    pub(crate) struct Condvar(loom::sync::Condvar);

    impl Default for Condvar {
        fn default() -> Self {
            Condvar::new()
        }
    }

    impl Condvar {
        pub(crate) fn new() -> Condvar {
            Condvar(loom::sync::Condvar::new())
        }

        pub(crate) fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
            self.0.wait(guard).unwrap_or_else(|e| e.into_inner())
        }

        pub(crate) fn wait_until<'a, T>(
            &self,
            guard: MutexGuard<'a, T>,
            _deadline: Instant,
        ) -> MutexGuard<'a, T> {
            self.wait(guard)
        }

        pub(crate) fn notify_all(&self) {
            self.0.notify_all();
        }

        pub(crate) fn notify_one(&self) {
            self.0.notify_one();
        }
    }

    loom::lazy_static! {
        static ref COUNTERS: [AtomicU64; 3] = [AtomicU64::new(1), AtomicU64::new(1), AtomicU64::new(0)];
    }

    pub(crate) fn next_id(counter: Counter) -> u64 {
        COUNTERS[counter as usize].fetch_add(1, Ordering::Relaxed)
    }
}
