//! The public [`Lifecycle`]: counted startup and cleanup, sessions, guards,
//! sockets, resources, and the final cleanup's drain.

use std::fmt;
use std::time::{Duration, Instant};

use crate::config::{Config, OpenSocketPolicy, StartupPolicy};
use crate::drain::{self, Flusher, Task, abort_socket, call, finish_socket, hook};
use crate::guard::OperationGuard;
use crate::provider::{Registered, Registrar};
use crate::report::{
    CloseOutcome, CloseStatus, DrainReport, HookOutcome, OperationsReport, PhaseTimings,
    SocketOutcome, SocketPhase, SocketReport,
};
use crate::socket::{Closing, Registry};
use crate::state::{State, Word};
use crate::sync::{self, AtomicU64, CachePadded, Condvar, Mutex, Ordering, Shards};
use crate::{
    BoxError, Error, Linger, Negotiated, Provider, Resource, Socket, SocketHandle, Version,
};

/// The non-generic part of a lifecycle: the state word, the guard shards and
/// the slow-path lock. Guards borrow only this.
pub(crate) struct Core {
    /// The packed state word (see `state.rs`), alone on its cache line.
    pub(crate) word: CachePadded<AtomicU64>,
    /// Guard counters, one cache line each (see `guard.rs`).
    pub(crate) shards: Shards,
    /// Slow-path state; also the lock every wait and wake goes through.
    pub(crate) control: Mutex<Control>,
    /// Woken on every slow-path transition and when a guard leaves during
    /// Draining. All waits loop on their own condition.
    pub(crate) cv: Condvar,
    pub(crate) config: Config,
}

/// What the slow paths share under `Core::control`.
pub(crate) struct Control {
    /// Resources of the current generation, in registration order.
    resources: Vec<Registered>,
    /// The thread running the initialization hook (0: none).
    init_token: u64,
    /// The thread running the final cleanup (0: none).
    drain_token: u64,
}

impl Core {
    sync::loom_const_fn! {
        fn new(config: Config) -> Core {
            Core {
                word: sync::new_word(Word::UNINITIALIZED.0),
                shards: sync::new_shards(crate::guard::CLOSED),
                control: Mutex::new(Control {
                    resources: Vec::new(),
                    init_token: 0,
                    drain_token: 0,
                }),
                cv: Condvar::new(),
                config,
            }
        }
    }

    #[inline]
    fn load(&self) -> Word {
        // Acquire: pairs with the Release/AcqRel writes of every transition,
        // so a caller that sees Active also sees the initialization.
        Word(self.word.load(Ordering::Acquire))
    }

    /// The expected value for a fast-path CAS: the word this thread last
    /// wrote here if `usable` accepts it, else a fresh load.
    ///
    /// Under contention a load followed by a CAS costs two coherence
    /// transactions (the load fetches the line shared, the CAS upgrades it);
    /// a CAS from a guess costs one when the guess is right, and when it is
    /// wrong it fails and returns the current value with the line already
    /// owned, so the retry usually succeeds. Correctness does not depend on
    /// the guess: the CAS compares all 64 bits, so it succeeds only if the
    /// guess *was* the current word, exactly as if it had just been loaded.
    #[inline]
    fn guess(&self, usable: impl Fn(Word) -> bool) -> Word {
        let key = std::ptr::from_ref(self) as usize;
        sync::with_thread(|t| {
            if t.hint_key.get() == key {
                Some(Word(t.hint_word.get()))
            } else {
                None
            }
        })
        .flatten()
        .filter(|w| usable(*w))
        .unwrap_or_else(|| self.load())
    }

    /// Remembers the word this thread just wrote (see `guess`).
    #[inline]
    fn remember(&self, w: Word) {
        let key = std::ptr::from_ref(self) as usize;
        let _ = sync::with_thread(|t| {
            t.hint_key.set(key);
            t.hint_word.set(w.0);
        });
    }
}

/// The result of a successful startup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Started {
    /// The negotiated version and the provider's highest (V2). A caller that
    /// rejects it must still call cleanup once (L3).
    pub negotiated: Negotiated,
    /// The generation this startup joined.
    pub generation: u64,
    /// Whether this startup ran the provider's initialization (the first one
    /// of its generation).
    pub initialized: bool,
}

/// The result of a successful cleanup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cleanup {
    /// The count went down and stays at least 1; nothing was closed (L5).
    Decremented {
        /// The count after this cleanup.
        remaining: u32,
    },
    /// This was the final cleanup: the provider is torn down and Released,
    /// and this is what the drain did (L6, D1).
    Released(Box<DrainReport>),
}

impl Cleanup {
    /// The drain report, if this was the final cleanup.
    #[must_use]
    pub fn report(&self) -> Option<&DrainReport> {
        match self {
            Cleanup::Released(r) => Some(r),
            Cleanup::Decremented { .. } => None,
        }
    }

    /// Whether this was the final cleanup.
    #[must_use]
    pub fn is_final(&self) -> bool {
        matches!(self, Cleanup::Released(_))
    }
}

/// A consistent reading of the state, count and generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Snapshot {
    /// The state.
    pub state: State,
    /// The reference count (0 unless Active).
    pub count: u32,
    /// The generation: how many final cleanups have completed.
    pub generation: u64,
}

/// One provider's per-process lifecycle (rule L1).
///
/// See the [crate docs](crate) for the state table and an example. All
/// methods take `&self`; a `Lifecycle` is `Send + Sync` and can live in a
/// `static` (its constructors are `const fn`).
///
/// | method | fast path (no lock) | slow path |
/// |---|---|---|
/// | [`startup`](Lifecycle::startup) | Active, count below the limit: one CAS | first startup (initialization), Draining (wait) |
/// | [`cleanup`](Lifecycle::cleanup) | count ≥ 2: one CAS | the final cleanup (drain) |
/// | [`enter`](Lifecycle::enter) | always: a per-thread shard and a load | — |
pub struct Lifecycle<P: Provider> {
    core: Core,
    sockets: Mutex<Registry<P::Socket>>,
    provider: P,
}

impl<P: Provider> Lifecycle<P> {
    sync::loom_const_fn! {
        /// A lifecycle in the Uninitialized state with the default [`Config`].
        ///
        /// ```
        /// # use provider_lifecycle::*;
        /// # struct Mine;
        /// # impl Provider for Mine {
        /// #     type Socket = NoSocket;
        /// #     fn versions(&self) -> VersionRange { VersionRange::new(Version::new(2, 2), Version::new(2, 2)) }
        /// # }
        /// static PROVIDER: Lifecycle<Mine> = Lifecycle::new(Mine);
        /// assert_eq!(PROVIDER.state(), State::Uninitialized);
        /// ```
        pub fn new(provider: P) -> Lifecycle<P> {
            Lifecycle::with_config(provider, Config::new())
        }
    }

    sync::loom_const_fn! {
        /// A lifecycle in the Uninitialized state with `config`.
        pub fn with_config(provider: P, config: Config) -> Lifecycle<P> {
            Lifecycle {
                core: Core::new(config),
                sockets: Mutex::new(Registry::new()),
                provider,
            }
        }
    }

    /// The provider.
    pub fn provider(&self) -> &P {
        &self.provider
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.core.config
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.core.load().state()
    }

    /// The current reference count (0 unless Active).
    pub fn count(&self) -> u32 {
        self.core.load().count()
    }

    /// The current generation: how many final cleanups have completed.
    pub fn generation(&self) -> u64 {
        self.core.load().generation()
    }

    /// State, count and generation read together (one load of the word).
    pub fn snapshot(&self) -> Snapshot {
        let w = self.core.load();
        Snapshot {
            state: w.state(),
            count: w.count(),
            generation: w.generation(),
        }
    }

    // ------------------------------------------------------------------
    // startup
    // ------------------------------------------------------------------

    /// Counts one startup (`WSPStartup`), initializing the provider if this
    /// is the first one of a generation. Every `Ok` must be matched by exactly
    /// one [`cleanup`](Lifecycle::cleanup) (L1, L3); an `Err` is not counted.
    ///
    /// During Draining it follows the configured [`StartupPolicy`] (L9).
    ///
    /// # Errors
    ///
    /// - [`Error::VersionNotSupported`]: `requested` below the provider's
    ///   range or major 0 (V2);
    /// - [`Error::ProcessLimit`]: the count is at its limit (L10);
    /// - the initialization hook's error, [`Error::SystemNotReady`] if it
    ///   panicked (L2);
    /// - [`Error::InProgress`]: Draining with `FailFast`; or a startup that
    ///   would wait for itself (from inside the initialization hook or the
    ///   drain, or while holding a guard during Draining).
    #[inline]
    pub fn startup(&self, requested: Version) -> Result<Started, Error> {
        self.startup_inner(requested, self.core.config.get_startup_policy(), false)
    }

    /// [`startup`](Lifecycle::startup) with an explicit Draining policy for
    /// this call.
    ///
    /// # Errors
    ///
    /// As [`startup`](Lifecycle::startup).
    #[inline]
    pub fn startup_with(
        &self,
        requested: Version,
        policy: StartupPolicy,
    ) -> Result<Started, Error> {
        self.startup_inner(requested, policy, false)
    }

    /// A startup that never blocks: while another thread is initializing or
    /// draining it fails with [`Error::InProgress`] (L9). The first startup of
    /// a generation still runs the initialization hook on this thread.
    ///
    /// # Errors
    ///
    /// As [`startup`](Lifecycle::startup), plus `InProgress` instead of any
    /// wait.
    #[inline]
    pub fn try_startup(&self, requested: Version) -> Result<Started, Error> {
        self.startup_inner(requested, StartupPolicy::FailFast, true)
    }

    /// Starts a session: a startup whose cleanup runs when the returned
    /// [`Session`] is dropped or [ended](Session::end). Sessions and
    /// hand-paired startups share one count.
    ///
    /// # Errors
    ///
    /// As [`startup`](Lifecycle::startup).
    pub fn session(&self, requested: Version) -> Result<Session<'_, P>, Error> {
        let started = self.startup(requested)?;
        Ok(Session {
            lifecycle: self,
            started,
            ended: false,
        })
    }

    #[inline]
    fn startup_inner(
        &self,
        requested: Version,
        policy: StartupPolicy,
        nonblocking: bool,
    ) -> Result<Started, Error> {
        let negotiated = self.provider.versions().negotiate(requested)?;
        let limit = self.core.config.get_count_limit();
        // Every decision below is taken on a word that is either fresh (a
        // load or a failed CAS's return) or proven current by a successful
        // CAS; a guess is only ever the CAS's expected value.
        let mut w = self.core.guess(|w| w.is_active() && w.count() < limit);
        loop {
            if w.is_active() {
                if w.count() >= limit {
                    return Err(Error::ProcessLimit);
                }
                // AcqRel on success: Acquire to see the initialization that
                // published Active; Release so a later final cleanup (which
                // reads this count) sees what this caller did before.
                // Acquire on failure: we re-examine the fresh word.
                match self.core.word.compare_exchange_weak(
                    w.0,
                    w.incremented().0,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => {
                        self.core.remember(w.incremented());
                        return Ok(Started {
                            negotiated,
                            generation: w.generation(),
                            initialized: false,
                        });
                    }
                    Err(now) => {
                        w = Word(now);
                        continue;
                    }
                }
            }
            if let Some(started) = self.startup_slow(negotiated, policy, nonblocking)? {
                return Ok(started);
            }
            w = self.core.load();
        }
    }

    /// Not Active: initialize, or wait for whoever is initializing or
    /// draining. `Ok(None)` means "Active now: retry the fast path".
    #[cold]
    fn startup_slow(
        &self,
        negotiated: Negotiated,
        policy: StartupPolicy,
        nonblocking: bool,
    ) -> Result<Option<Started>, Error> {
        let me = sync::thread_token();
        let mut ctl = self.core.control.lock();
        loop {
            let w = self.core.load();
            match w.state() {
                State::Active => return Ok(None),
                State::Draining => {
                    if nonblocking
                        || policy == StartupPolicy::FailFast
                        || ctl.drain_token == me
                        || self.core.held_by_current_thread()
                    {
                        return Err(Error::InProgress);
                    }
                    ctl = self.core.cv.wait(ctl);
                }
                State::Uninitialized | State::Released if w.initializing() => {
                    if nonblocking || ctl.init_token == me {
                        return Err(Error::InProgress);
                    }
                    ctl = self.core.cv.wait(ctl);
                }
                State::Uninitialized | State::Released => {
                    // Only slow paths (all under `control`) write the word in
                    // these states, so a plain store is race-free. Relaxed:
                    // the flag is only read under `control` or compared by
                    // fast-path CASes that require Active and so fail anyway.
                    self.core
                        .word
                        .store(w.with_initializing(true).0, Ordering::Relaxed);
                    ctl.init_token = me;
                    drop(ctl);
                    return self.initialize(w, negotiated).map(Some);
                }
            }
        }
    }

    /// Runs the provider's initialization with no lock held, then publishes
    /// Active with count 1, or puts the state back (L2).
    #[cold]
    fn initialize(&self, before: Word, negotiated: Negotiated) -> Result<Started, Error> {
        let generation = before.generation();
        let mut registrar = Registrar::new(generation);
        let result = match call(|| self.provider.initialize(&mut registrar)) {
            Ok(r) => r,
            Err(panic) => Err(Error::SystemNotReady(format!(
                "initialization panicked: {panic}"
            ))),
        };
        if result.is_err() {
            // L2: release what it registered, in reverse order, before the
            // state goes back, so a retry starts from nothing.
            drain::release_resources(std::mem::take(&mut registrar.resources));
        }
        let mut ctl = self.core.control.lock();
        ctl.init_token = 0;
        let published = match &result {
            Ok(()) => {
                ctl.resources = std::mem::take(&mut registrar.resources);
                self.core.open_shards();
                Word::new(State::Active, 1, generation)
            }
            Err(_) => before.with_initializing(false),
        };
        // Release: publishes the initialization (and the resources) to every
        // Acquire load that sees Active.
        self.core.word.store(published.0, Ordering::Release);
        published.check();
        self.core.cv.notify_all();
        drop(ctl);
        result.map(|()| Started {
            negotiated,
            generation,
            initialized: true,
        })
    }

    // ------------------------------------------------------------------
    // cleanup
    // ------------------------------------------------------------------

    /// Counts one cleanup (`WSPCleanup`). With the count above 1 it only
    /// decrements (L5). The final one moves the state to Draining at once and
    /// tears down in the order of rule L6, returning only when the provider is
    /// Released and immediately re-initializable (L7), with the drain report.
    ///
    /// # Errors
    ///
    /// - [`Error::NotInitialised`]: the count is 0 (never started, one cleanup
    ///   too many, or Draining); nothing changes (L4);
    /// - [`Error::InProgress`]: the final cleanup was issued from a thread
    ///   holding an [`OperationGuard`] of this lifecycle; nothing changes (L11).
    #[inline]
    pub fn cleanup(&self) -> Result<Cleanup, Error> {
        // As in startup: a guess is only ever the CAS's expected value.
        let mut w = self.core.guess(|w| w.is_active() && w.count() > 1);
        loop {
            if !w.is_active() {
                return Err(Error::NotInitialised);
            }
            if w.count() == 1 {
                match self.begin_final(w)? {
                    Some(report) => return Ok(Cleanup::Released(report)),
                    None => {
                        w = self.core.load();
                        continue;
                    }
                }
            }
            // AcqRel on success: Release publishes this caller's work to the
            // eventual final cleanup; Acquire keeps the chain of decrements
            // a release sequence. Acquire on failure: re-examined below.
            match self.core.word.compare_exchange_weak(
                w.0,
                w.decremented().0,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    self.core.remember(w.decremented());
                    return Ok(Cleanup::Decremented {
                        remaining: w.count() - 1,
                    });
                }
                Err(now) => w = Word(now),
            }
        }
    }

    /// The 1 → 0 transition. `Ok(None)`: the word changed, retry.
    #[cold]
    fn begin_final(&self, w: Word) -> Result<Option<Box<DrainReport>>, Error> {
        if self.core.held_by_current_thread() {
            return Err(Error::InProgress);
        }
        let draining = Word::new(State::Draining, 0, w.generation());
        // AcqRel: Acquire every earlier cleanup's Release decrement; Release
        // the flip to enters whose Acquire load sees Draining.
        if self
            .core
            .word
            .compare_exchange(w.0, draining.0, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Ok(None);
        }
        Ok(Some(Box::new(self.teardown(w))))
    }

    /// Rule L6, steps 1–6, on the calling thread. Runs exactly once per
    /// generation: only the thread whose CAS flipped Active → Draining gets
    /// here.
    #[cold]
    fn teardown(&self, active: Word) -> DrainReport {
        let generation = active.generation();
        let start = Instant::now();
        let deadline = after(start, self.core.config.get_drain_deadline());
        self.core.control.lock().drain_token = sync::thread_token();
        let mut report = DrainReport {
            generation,
            ..DrainReport::default()
        };

        // L6.1: refuse new guards on every shard, cancel silently, then wait
        // for every guard (O2).
        let waited_for = self.core.close_shards();
        let (cancelled, cancel) = match call(|| self.provider.cancel_pending()) {
            Ok(Ok(n)) => (n, HookOutcome::Ok),
            Ok(Err(e)) => (0, HookOutcome::Failed(e.to_string())),
            Err(p) => (0, HookOutcome::Panicked(p)),
        };
        let overran_deadline = self.core.wait_for_guards(deadline);
        report.operations = OperationsReport {
            cancelled,
            waited_for,
            cancel,
            overran_deadline,
        };
        let t_ops = Instant::now();

        // L6.2 and L6.3: open sockets by policy, then every graceful one
        // flushed concurrently until done or its deadline.
        let (open, closing, finished) = {
            let mut reg = self.sockets.lock();
            (
                reg.drain_open(generation),
                std::mem::take(&mut reg.closing),
                std::mem::take(&mut reg.finished),
            )
        };
        report.sockets = self.close_all(open, closing, deadline);
        report.sockets.extend(finished);
        report.deadline_hit = report
            .sockets
            .iter()
            .any(|s| s.outcome == SocketOutcome::Deadline);
        let t_sockets = Instant::now();

        // L6.4: resources in reverse order of registration.
        let resources = std::mem::take(&mut self.core.control.lock().resources);
        report.resources = drain::release_resources(resources);
        let t_resources = Instant::now();

        // L6.5
        report.prepare_unload = hook(|| self.provider.prepare_unload());
        let end = Instant::now();
        report.timings = PhaseTimings {
            operations: t_ops - start,
            sockets: t_sockets - t_ops,
            resources: t_resources - t_sockets,
            prepare_unload: end - t_resources,
            total: end - start,
        };

        // L6.6: Released, next generation, wake waiting startups. Under the
        // lock so a startup's check-then-wait cannot miss it.
        let mut ctl = self.core.control.lock();
        ctl.drain_token = 0;
        let released = Word::new(State::Released, 0, active.next_generation());
        // Release: a startup that sees Released also sees the whole teardown.
        self.core.word.store(released.0, Ordering::Release);
        self.core.cv.notify_all();
        drop(ctl);
        report
    }

    /// L6.2 + L6.3: closes the open sockets by the open-socket policy and
    /// flushes every graceful one (open or already closing) concurrently.
    fn close_all(
        &self,
        open: impl Iterator<Item = (SocketHandle, crate::socket::Cell<P::Socket>)>,
        closing: Vec<Closing<P::Socket>>,
        deadline: Instant,
    ) -> Vec<SocketReport> {
        let policy = self.core.config.get_open_sockets();
        let mut reports = Vec::with_capacity(open.size_hint().0 + closing.len());
        let mut flusher = Flusher::new();
        let now = Instant::now();
        for (handle, cell) in open {
            let Some(socket) = crate::socket::take(cell) else {
                continue;
            };
            let (linger, unsent) = match probe(&socket) {
                Ok((linger, _, unsent)) => (linger, unsent),
                Err(p) => {
                    reports.push(abort_socket(
                        handle,
                        socket,
                        Linger::Abort,
                        SocketPhase::Open,
                        0,
                        SocketOutcome::Panicked,
                        Some(p),
                    ));
                    continue;
                }
            };
            match (policy, linger) {
                (OpenSocketPolicy::Reset, _) | (OpenSocketPolicy::Graceful, Linger::Abort) => {
                    reports.push(abort_socket(
                        handle,
                        socket,
                        linger,
                        SocketPhase::Open,
                        unsent,
                        SocketOutcome::Reset,
                        None,
                    ));
                }
                (OpenSocketPolicy::Graceful, Linger::Background) => flusher.push(Task::new(
                    handle,
                    socket,
                    linger,
                    SocketPhase::Open,
                    unsent,
                    None,
                    deadline,
                )),
                (OpenSocketPolicy::Graceful, Linger::Timeout(d)) => flusher.push(Task::new(
                    handle,
                    socket,
                    linger,
                    SocketPhase::Open,
                    unsent,
                    Some(after(now, d)),
                    deadline,
                )),
            }
        }
        for c in closing {
            flusher.push(c.into_task(deadline));
        }
        flusher.run();
        reports.append(&mut flusher.reports);
        reports
    }

    // ------------------------------------------------------------------
    // guards and resources
    // ------------------------------------------------------------------

    /// Takes an operation guard (O1): while it lives the final cleanup will
    /// not close sockets, release resources or unload (O2). Take one around
    /// every provider call that touches sockets or resources.
    ///
    /// The guard is `!Send`. A thread holding a guard cannot perform the
    /// final cleanup ([`Error::InProgress`], L11); a guard held by another
    /// thread is waited for, after the provider's
    /// [`cancel_pending`](Provider::cancel_pending) hook is asked to unblock
    /// it.
    ///
    /// # Errors
    ///
    /// [`Error::NotInitialised`] unless the state is Active (Draining
    /// included, from the instant the final cleanup begins).
    #[inline]
    pub fn enter(&self) -> Result<OperationGuard<'_>, Error> {
        self.core.enter().map(|(g, _)| g)
    }

    /// Registers a resource for the current generation, released in reverse
    /// order of registration at the final cleanup (L6.4).
    ///
    /// # Errors
    ///
    /// [`Error::NotInitialised`] unless Active; the resource is then released
    /// at once (it would otherwise be lost).
    pub fn register_resource(&self, resource: impl Resource + 'static) -> Result<(), Error> {
        self.register(Registered::new(Box::new(resource)))
    }

    /// Registers a closure as a resource, named `name` in the report.
    ///
    /// # Errors
    ///
    /// As [`register_resource`](Lifecycle::register_resource).
    pub fn register_resource_fn<F>(&self, name: impl Into<String>, release: F) -> Result<(), Error>
    where
        F: FnOnce() -> Result<(), BoxError> + Send + 'static,
    {
        self.register(Registered::from_fn(name, release))
    }

    fn register(&self, r: Registered) -> Result<(), Error> {
        let mut ctl = self.core.control.lock();
        // The drain takes the list under this lock after flipping the word,
        // so an Active seen here means the drain will see this entry.
        if !self.core.load().is_active() {
            drop(ctl);
            drain::release_resources(vec![r]);
            return Err(Error::NotInitialised);
        }
        ctl.resources.push(r);
        Ok(())
    }

    // ------------------------------------------------------------------
    // sockets
    // ------------------------------------------------------------------

    /// Registers a socket for the current generation and returns its handle.
    ///
    /// # Errors
    ///
    /// [`Error::NotInitialised`] unless Active; [`Error::ProcessLimit`] past
    /// 2^24 sockets open at once. A refused socket is aborted and released at
    /// once (never leaked).
    pub fn register_socket(&self, socket: P::Socket) -> Result<SocketHandle, Error> {
        let mut reg = self.sockets.lock();
        // The drain empties the registry under this lock after flipping the
        // word: an Active seen here means the drain will see this socket.
        let w = self.core.load();
        let (mut socket, error) = if w.is_active() {
            match reg.insert(w.generation(), socket) {
                Ok(handle) => return Ok(handle),
                Err(socket) => (socket, Error::ProcessLimit),
            }
        } else {
            (socket, Error::NotInitialised)
        };
        drop(reg);
        // Refused: closed at once, never leaked.
        let _ = call(|| socket.abort());
        let _ = call(|| socket.release());
        drop(socket);
        Err(error)
    }

    /// Runs `f` on the socket behind `handle`, inside an operation guard.
    ///
    /// `f` runs with only this socket's slot locked: it may use the lifecycle
    /// for anything except this same socket.
    ///
    /// # Errors
    ///
    /// [`Error::NotInitialised`] unless Active (checked first, L8);
    /// [`Error::NotSocket`] for a handle of another generation, or of a
    /// closed socket (S1).
    pub fn with_socket<R>(
        &self,
        handle: SocketHandle,
        f: impl FnOnce(&mut P::Socket) -> R,
    ) -> Result<R, Error> {
        let (_guard, w) = self.core.enter()?;
        let cell = self.lookup(handle, w)?;
        let mut slot = cell.lock();
        let socket = slot.as_mut().ok_or(Error::NotSocket)?;
        Ok(f(socket))
    }

    fn lookup(
        &self,
        handle: SocketHandle,
        w: Word,
    ) -> Result<crate::socket::Cell<P::Socket>, Error> {
        if !handle.matches_generation(w.generation()) {
            return Err(Error::NotSocket);
        }
        self.sockets.lock().get(handle)
    }

    /// Closes the socket behind `handle` (`WSPCloseSocket`) according to its
    /// linger setting; see [`Linger`] for the table.
    ///
    /// # Errors
    ///
    /// - [`Error::NotInitialised`] unless Active (checked first);
    /// - [`Error::NotSocket`]: unknown, closed or stale handle (S1);
    /// - [`Error::WouldBlock`]: a non-blocking socket with a `Timeout` linger
    ///   and unsent data; nothing was done and the handle stays valid.
    pub fn close_socket(&self, handle: SocketHandle) -> Result<CloseOutcome, Error> {
        let (_guard, w) = self.core.enter()?;
        let cell = self.lookup(handle, w)?;
        let mut slot = cell.lock();
        let socket = slot.as_mut().ok_or(Error::NotSocket)?;
        let probed = probe(socket);
        if let Ok((Linger::Timeout(_), false, unsent)) = probed
            && unsent > 0
        {
            return Err(Error::WouldBlock);
        }
        let Some(socket) = slot.take() else {
            return Err(Error::NotSocket);
        };
        drop(slot);
        self.sockets.lock().remove(handle, &cell);
        drop(cell);

        let (linger, unsent) = match probed {
            Ok((linger, _, unsent)) => (linger, unsent),
            Err(p) => {
                let r = abort_socket(
                    handle,
                    socket,
                    Linger::Abort,
                    SocketPhase::Open,
                    0,
                    SocketOutcome::Panicked,
                    Some(p),
                );
                return Ok(close_outcome(&r));
            }
        };
        let report = match linger {
            Linger::Abort => abort_socket(
                handle,
                socket,
                linger,
                SocketPhase::Open,
                unsent,
                SocketOutcome::Reset,
                None,
            ),
            Linger::Background if unsent == 0 => {
                finish_socket(handle, socket, linger, SocketPhase::Open, 0)
            }
            Linger::Background => {
                self.sockets.lock().closing.push(Closing {
                    handle,
                    socket,
                    linger,
                });
                return Ok(CloseOutcome {
                    linger,
                    bytes_flushed: 0,
                    bytes_discarded: 0,
                    status: CloseStatus::Background,
                });
            }
            Linger::Timeout(d) => {
                let now = Instant::now();
                let mut flusher = Flusher::new();
                flusher.push(Task::new(
                    handle,
                    socket,
                    linger,
                    SocketPhase::Open,
                    unsent,
                    Some(after(now, d)),
                    after(now, d.saturating_add(Duration::from_secs(1))),
                ));
                flusher.run();
                flusher
                    .reports
                    .pop()
                    .unwrap_or_else(|| unreachable_report(handle))
            }
        };
        Ok(close_outcome(&report))
    }

    /// Makes one round of flush progress on the sockets closed in the
    /// background (`Linger::Background` with data left), releasing those that
    /// are done. A provider with an I/O loop calls this from it; otherwise the
    /// final cleanup finishes them. Returns how many are still flushing.
    /// Sockets whose background flush fails are aborted, and their lines
    /// appear in the final drain report.
    ///
    /// # Errors
    ///
    /// [`Error::NotInitialised`] unless Active.
    pub fn poll_closing(&self) -> Result<usize, Error> {
        let (_guard, _) = self.core.enter()?;
        let closing = std::mem::take(&mut self.sockets.lock().closing);
        if closing.is_empty() {
            return Ok(0);
        }
        let far = after(Instant::now(), Duration::from_secs(365 * 24 * 3600));
        let mut flusher = Flusher::new();
        for c in closing {
            flusher.push(c.into_task(far));
        }
        flusher.round();
        let left = flusher.pending();
        let (pending, reports) = flusher.into_pending();
        let mut reg = self.sockets.lock();
        reg.closing
            .extend(pending.into_iter().map(Task::into_closing));
        reg.finished
            .extend(reports.into_iter().filter(|r| !r.is_clean()));
        Ok(left)
    }

    /// Sockets currently open (registered and not closed).
    pub fn open_sockets(&self) -> usize {
        self.sockets.lock().open()
    }

    /// Sockets closed in the background that are still flushing.
    pub fn closing_sockets(&self) -> usize {
        self.sockets.lock().closing.len()
    }
}

/// Reads a socket's linger, blocking mode and unsent count, catching panics.
fn probe<S: Socket>(socket: &S) -> Result<(Linger, bool, u64), String> {
    call(|| (socket.linger(), socket.is_blocking(), socket.unsent()))
}

fn close_outcome(r: &SocketReport) -> CloseOutcome {
    let status = match &r.outcome {
        SocketOutcome::Flushed => CloseStatus::Complete,
        SocketOutcome::Reset => CloseStatus::Reset,
        SocketOutcome::Deadline | SocketOutcome::LingerTimeout => CloseStatus::TimedOut,
        SocketOutcome::Failed => {
            CloseStatus::Failed(r.error().unwrap_or("flush failed").to_owned())
        }
        SocketOutcome::Panicked => {
            CloseStatus::Failed(format!("panicked: {}", r.error().unwrap_or("")))
        }
    };
    CloseOutcome {
        linger: r.linger,
        bytes_flushed: r.bytes_flushed,
        bytes_discarded: r.bytes_discarded,
        status,
    }
}

/// A flusher given one task always reports it; this only keeps the close
/// path total.
fn unreachable_report(handle: SocketHandle) -> SocketReport {
    SocketReport {
        handle,
        linger: Linger::Abort,
        phase: SocketPhase::Open,
        bytes_flushed: 0,
        bytes_discarded: 0,
        outcome: SocketOutcome::Failed,
        faults: crate::report::SocketFaults::of(
            Some("no report".to_owned()),
            HookOutcome::Ok,
            HookOutcome::Ok,
        ),
    }
}

/// `start + d`, saturating far in the future instead of overflowing.
fn after(start: Instant, d: Duration) -> Instant {
    start
        .checked_add(d)
        .or_else(|| start.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
        .unwrap_or(start)
}

/// L12: a lifecycle dropped while Active (a process ending without cleanup)
/// aborts its sockets and releases its resources, without calling the cancel
/// or prepare-to-unload hooks, without blocking and without panicking.
impl<P: Provider> Drop for Lifecycle<P> {
    fn drop(&mut self) {
        if !self.core.load().is_active() {
            return;
        }
        let (open, closing) = {
            let mut reg = self.sockets.lock();
            let generation = self.core.load().generation();
            (reg.drain_open(generation), std::mem::take(&mut reg.closing))
        };
        for (handle, cell) in open {
            if let Some(socket) = crate::socket::take(cell) {
                let unsent = drain::unsent_or(&socket, 0);
                abort_socket(
                    handle,
                    socket,
                    Linger::Abort,
                    SocketPhase::Open,
                    unsent,
                    SocketOutcome::Reset,
                    None,
                );
            }
        }
        for c in closing {
            let unsent = drain::unsent_or(&c.socket, 0);
            abort_socket(
                c.handle,
                c.socket,
                c.linger,
                SocketPhase::Closing,
                unsent,
                SocketOutcome::Reset,
                None,
            );
        }
        let resources = std::mem::take(&mut self.core.control.lock().resources);
        drain::release_resources(resources);
    }
}

impl<P: Provider> fmt::Debug for Lifecycle<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = self.core.load();
        f.debug_struct("Lifecycle")
            .field("provider", &std::any::type_name::<P>())
            .field("state", &w.state())
            .field("count", &w.count())
            .field("generation", &w.generation())
            .field("initializing", &w.initializing())
            .field("guards", &self.core.guards())
            .field("config", &self.core.config)
            .finish()
    }
}

/// An RAII startup: the matching cleanup runs when it is dropped or
/// [ended](Session::end). Created by [`Lifecycle::session`].
///
/// If the session's cleanup is the final one, dropping it runs the whole
/// drain on the dropping thread; use [`end`](Session::end) to get the report.
/// Dropped on a thread that holds an [`OperationGuard`] of the same
/// lifecycle, a final cleanup cannot run (L11) and a drop cannot report it:
/// the count then stays. End such sessions with `end`, which says
/// `InProgress` and can be retried after the guard is gone.
pub struct Session<'a, P: Provider> {
    lifecycle: &'a Lifecycle<P>,
    started: Started,
    ended: bool,
}

impl<P: Provider> Session<'_, P> {
    /// What the session's startup negotiated.
    pub fn started(&self) -> &Started {
        &self.started
    }

    /// The lifecycle this session counts in.
    pub fn lifecycle(&self) -> &Lifecycle<P> {
        self.lifecycle
    }

    /// Runs the session's cleanup now and returns its result. After an `Ok`
    /// the session holds no count and its drop does nothing; after an `Err`
    /// (`InProgress` from inside a guard, L11) nothing changed and it can be
    /// retried.
    ///
    /// # Errors
    ///
    /// As [`Lifecycle::cleanup`]; [`Error::NotInitialised`] if this session
    /// already ended.
    pub fn end(&mut self) -> Result<Cleanup, Error> {
        if self.ended {
            return Err(Error::NotInitialised);
        }
        let r = self.lifecycle.cleanup();
        if r.is_ok() {
            self.ended = true;
        }
        r
    }
}

impl<P: Provider> Drop for Session<'_, P> {
    fn drop(&mut self) {
        if !self.ended {
            let _ = self.end();
        }
    }
}

impl<P: Provider> fmt::Debug for Session<'_, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("started", &self.started)
            .field("ended", &self.ended)
            .finish()
    }
}
