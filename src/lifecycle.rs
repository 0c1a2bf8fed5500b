//! The public [`Lifecycle`]: counted startup and cleanup, guards, sockets,
//! resources, and the order of the final cleanup's steps. The mechanics live
//! below it: the state word's transitions in `state.rs`, the guard shards and
//! slow-path frames in `raw.rs`, every close decision in `close.rs`.

use std::fmt;
use std::future::Future;
use std::task::{Poll, Waker};

use crate::background::Background;
use crate::close::{self, Closed};
use crate::config::{Config, StartupPolicy};
use crate::drain::after;
use crate::generation::StateCells;
use crate::guard::{OperationGuard, OperationToken};
use crate::hook::{call, drop_quietly, hook, hook_value};
use crate::provider::Registrar;
use crate::raw::{Initializing, RawLifecycle, Slow, Teardown};
use crate::registry::Registry;
use crate::report::{DrainReport, OperationsReport, PhaseTimings, SocketOutcome, SocketReport};
use crate::resource::{Registered, release_resources};
use crate::state::{Join, Leave, State, Word};
use crate::sync::{self, AtomicU64, Mutex, Ordering};
use crate::{BoxError, Error, Negotiated, Provider, Resource, SocketHandle, Version};

/// How a cleanup began.
enum Begin<'a, P: Provider> {
    /// Only decremented; the count left.
    Decremented(u32),
    /// The final cleanup: its drain, to drive (boxed: this enum is the
    /// return value of the cleanup fast path, kept small).
    Final(Box<teardown::Drain<'a, P>>),
}

/// One provider's per-process lifecycle ([L1](crate::contract#L1)).
///
/// See the [crate docs](crate) for the state table and an example. All
/// methods take `&self`; a `Lifecycle` is `Send + Sync` and can live in a
/// `static` (its constructors are `const fn`).
///
/// | method | fast path (no lock) | slow path |
/// |---|---|---|
/// | [`startup`](Lifecycle::startup) | Active, count below the limit: one `fetch_add` | first startup (initialization), Draining (wait) |
/// | [`cleanup`](Lifecycle::cleanup) | count ≥ 2: one `fetch_sub` | the final cleanup (drain) |
/// | [`enter`](Lifecycle::enter) | always, refusals included: a per-thread shard and a load | — |
pub struct Lifecycle<P: Provider> {
    raw: RawLifecycle,
    sockets: Registry<P::Socket>,
    background: Mutex<Background<P::Socket>>,
    state: StateCells<P::State>,
    /// The lowest version negotiated by a startup of this generation
    /// ([W2](crate::contract#W2)), as `major << 8 | minor`; `NO_VERSION`
    /// when none.
    effective: AtomicU64,
    /// Serializes [`startup_with_context`](Lifecycle::startup_with_context)'s
    /// applications, so that the last one to apply is the one in force.
    contexts: Mutex<()>,
    provider: P,
}

const NO_VERSION: u64 = u64::MAX;

impl<P: Provider> Lifecycle<P> {
    sync::loom_const_fn! {
        /// A lifecycle in the Uninitialized state with the default [`Config`].
        ///
        /// ```
        /// # use provider_lifecycle::*;
        /// # struct Mine;
        /// # impl Provider for Mine {
        /// #     type Socket = NoSocket;
        /// #     type State = ();
        /// #     fn versions(&self) -> VersionRange { VersionRange::new(Version::new(2, 2), Version::new(2, 2)) }
        /// #     fn initialize(&self, _: &mut Registrar) -> Result<(), Error> { Ok(()) }
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
                raw: RawLifecycle::new(config),
                sockets: Registry::new(),
                background: Mutex::new(Background::new()),
                state: StateCells::new(),
                effective: AtomicU64::new(NO_VERSION),
                contexts: Mutex::new(()),
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
        &self.raw.config
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.raw.word.load().state()
    }

    /// The current reference count (0 unless Active).
    pub fn count(&self) -> u32 {
        self.raw.word.load().count()
    }

    /// The current generation: how many final cleanups have completed
    /// (modulo 2^31).
    pub fn generation(&self) -> u64 {
        self.raw.word.load().generation()
    }

    /// The process-effective version ([W2](crate::contract#W2)): the
    /// lowest version negotiated by a startup of the current generation
    /// (for a request the provider supports, the requested version
    /// itself); `None` while no generation is Active. It resets at the
    /// final cleanup.
    ///
    /// ```
    /// # use provider_lifecycle::*;
    /// # struct P;
    /// # impl Provider for P {
    /// #     type Socket = NoSocket;
    /// #     type State = ();
    /// #     fn versions(&self) -> VersionRange { VersionSet::WINSOCK.range() }
    /// #     fn negotiate(&self, v: Version) -> Result<Negotiated, Error> { VersionSet::WINSOCK.negotiate(v) }
    /// #     fn initialize(&self, _: &mut Registrar) -> Result<(), Error> { Ok(()) }
    /// # }
    /// let l = Lifecycle::new(P);
    /// l.startup(Version::new(2, 2))?;
    /// l.startup(Version::new(1, 9))?; // negotiates to 1.1
    /// l.startup(Version::new(2, 0))?;
    /// assert_eq!(l.effective_version(), Some(Version::new(1, 1)));
    /// for _ in 0..3 { l.cleanup()?; }
    /// assert_eq!(l.effective_version(), None);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn effective_version(&self) -> Option<Version> {
        if !self.raw.word.load().is_active() {
            return None;
        }
        match self.effective.load(Ordering::Relaxed) {
            NO_VERSION => None,
            k => Some(Version::new((k >> 8) as u8, k as u8)),
        }
    }

    /// Lowers the effective version to `v` if it is lower: one relaxed load
    /// of a line that is only written when a lower version arrives.
    #[inline]
    fn note_version(&self, v: Version) {
        let k = u64::from(v.key());
        if k < self.effective.load(Ordering::Relaxed) {
            self.effective.fetch_min(k, Ordering::Relaxed);
        }
    }

    /// State, count and generation read together (one load of the word).
    pub fn snapshot(&self) -> Snapshot {
        let w = self.raw.word.load();
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
    /// one [`cleanup`](Lifecycle::cleanup) ([L1](crate::contract#L1),
    /// [L3](crate::contract#L3)); an `Err` is not counted.
    ///
    /// During Draining it follows the configured [`StartupPolicy`]
    /// ([L9](crate::contract#L9)).
    ///
    /// # Errors
    ///
    /// - [`Error::VersionNotSupported`]: `requested` below the provider's
    ///   range or major 0 ([V2](crate::contract#V2));
    /// - [`Error::ProcessLimit`]: the count is at its limit
    ///   ([L10](crate::contract#L10));
    /// - the initialization hook's error, [`Error::SystemNotReady`] if it
    ///   panicked ([L2](crate::contract#L2));
    /// - [`Error::InProgress`]: Draining with `FailFast`; or a startup that
    ///   would wait for itself (from inside the initialization hook or the
    ///   drain, or while holding a guard during Draining).
    ///
    /// ```
    /// # use provider_lifecycle::*;
    /// # struct P;
    /// # impl Provider for P {
    /// #     type Socket = NoSocket;
    /// #     type State = ();
    /// #     fn versions(&self) -> VersionRange { VersionRange::new(Version::new(1, 1), Version::new(2, 2)) }
    /// #     fn initialize(&self, _: &mut Registrar) -> Result<(), Error> { Ok(()) }
    /// # }
    /// let l = Lifecycle::new(P);
    /// let first = l.startup(Version::new(2, 2))?;
    /// assert!(first.initialized); // the first startup ran `initialize`
    /// let second = l.startup(Version::new(2, 0))?;
    /// assert!(!second.initialized);
    /// assert_eq!(second.negotiated.version, Version::new(2, 0));
    /// assert_eq!(l.count(), 2); // one cleanup owed per startup
    /// assert_eq!(l.startup(Version::new(1, 0)), Err(Error::VersionNotSupported));
    /// # Ok::<(), Error>(())
    /// ```
    #[inline]
    pub fn startup(&self, requested: Version) -> Result<Started, Error> {
        self.startup_with(requested, self.raw.config.startup_policy())
    }

    /// [`startup`](Lifecycle::startup) with an explicit [`StartupPolicy`]
    /// for this call.
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
        // The fast path, written out so that the common case builds its
        // result in place (no `Poll` to unwrap and copy).
        let negotiated = self.provider.negotiate(requested)?;
        if let Join::Joined(w) = self.raw.word.join(self.raw.config.count_limit()) {
            self.note_version(negotiated.version);
            return Ok(Started {
                negotiated,
                generation: w.generation(),
                initialized: false,
            });
        }
        self.startup_blocking(requested, policy)
    }

    /// Everything but the fast path's success, blocking where it must.
    #[cold]
    #[inline(never)]
    fn startup_blocking(
        &self,
        requested: Version,
        policy: StartupPolicy,
    ) -> Result<Started, Error> {
        loop {
            // Without a waker the slow path blocks instead of answering
            // Pending, so this loop runs once.
            if let Poll::Ready(r) = self.poll_startup(requested, policy, None) {
                return r;
            }
        }
    }

    /// A startup that carries a context ([W1](crate::contract#W1)), as
    /// every successful `WSPStartup` carries its upcall table: after the
    /// startup is counted, `apply` runs with the generation's
    /// [`State`](Provider::State) and the context, so the provider can keep
    /// the latest one in force. Applications are serialized (a lifecycle
    /// lock), so of two startups the later to apply wins; a startup that
    /// fails applies nothing. A panic in `apply` is caught and the startup
    /// still counts (pair it with a cleanup as usual).
    ///
    /// # Errors
    ///
    /// As [`startup`](Lifecycle::startup).
    pub fn startup_with_context<C>(
        &self,
        requested: Version,
        context: C,
        apply: impl FnOnce(&P::State, C),
    ) -> Result<Started, Error> {
        let started = self.startup(requested)?;
        // This startup's unit keeps the generation (and its state) alive;
        // the guard is how the state is reached.
        if let Ok(guard) = self.enter() {
            let _order = self.contexts.lock();
            let state = guard.state();
            let _ = call(|| apply(&state, context));
        }
        Ok(started)
    }

    /// [`startup`](Lifecycle::startup) for async hosts: where `startup`
    /// would block (a `Wait` startup during Draining, or while another
    /// thread initializes) the future waits without blocking its thread,
    /// woken when the state changes. Runtime-agnostic (plain `std::task`).
    /// The first startup of a generation runs the initialization hook inside
    /// `poll`.
    ///
    /// # Errors
    ///
    /// As [`startup`](Lifecycle::startup).
    pub fn startup_async(
        &self,
        requested: Version,
    ) -> impl Future<Output = Result<Started, Error>> + Send + '_ {
        let policy = self.raw.config.startup_policy();
        std::future::poll_fn(move |cx| self.poll_startup(requested, policy, Some(cx.waker())))
    }

    /// The startup engine: the fast path, then the slow path, which with a
    /// `waker` registers it and answers `Pending` instead of blocking.
    #[inline]
    fn poll_startup(
        &self,
        requested: Version,
        policy: StartupPolicy,
        waker: Option<&Waker>,
    ) -> Poll<Result<Started, Error>> {
        let negotiated = match self.provider.negotiate(requested) {
            Ok(n) => n,
            Err(e) => return Poll::Ready(Err(e)),
        };
        let limit = self.raw.config.count_limit();
        loop {
            match self.raw.word.join(limit) {
                Join::Joined(w) => {
                    self.note_version(negotiated.version);
                    return Poll::Ready(Ok(Started {
                        negotiated,
                        generation: w.generation(),
                        initialized: false,
                    }));
                }
                Join::Limit => return Poll::Ready(Err(Error::ProcessLimit)),
                Join::NotActive => match self.raw.startup_slow(policy, waker) {
                    Err(e) => return Poll::Ready(Err(e)),
                    Ok(Slow::Retry) => {}
                    Ok(Slow::Initialize(init)) => {
                        return Poll::Ready(self.initialize(init, negotiated));
                    }
                    Ok(Slow::Pending) => return Poll::Pending,
                },
            }
        }
    }

    /// A startup that never blocks: `startup_with(requested,
    /// StartupPolicy::NoWait)` ([L9](crate::contract#L9)). The first startup
    /// of a generation still runs the initialization hook on this thread.
    ///
    /// # Errors
    ///
    /// As [`startup`](Lifecycle::startup), plus `InProgress` instead of any
    /// wait.
    #[inline]
    pub fn try_startup(&self, requested: Version) -> Result<Started, Error> {
        self.startup_with(requested, StartupPolicy::NoWait)
    }

    /// Runs the provider's initialization with no lock held, then publishes
    /// Active with count 1, or puts the state back ([L2](crate::contract#L2)).
    #[cold]
    fn initialize(&self, init: Initializing<'_>, negotiated: Negotiated) -> Result<Started, Error> {
        let generation = init.generation();
        let mut registrar = Registrar::new(generation);
        let result = match call(|| self.provider.initialize(&mut registrar)) {
            Ok(r) => r,
            Err(panic) => Err(Error::system_not_ready(format!(
                "initialization panicked: {panic}"
            ))),
        };
        let resources = std::mem::take(&mut registrar.resources);
        match result {
            Ok(state) => {
                // Stored before Active is published: no guard can see it
                // missing.
                self.state.of(generation).set(state);
                // Before Active: the generation's first version, then the
                // lowest of every startup ([W2](crate::contract#W2)).
                self.effective
                    .store(u64::from(negotiated.version.key()), Ordering::Relaxed);
                init.publish(Ok(resources));
                Ok(Started {
                    negotiated,
                    generation,
                    initialized: true,
                })
            }
            Err(e) => {
                #[cfg(feature = "tracing")]
                tracing::warn!(generation, error = %e, cause = ?std::error::Error::source(&e).map(ToString::to_string), "initialization failed");
                // L2: release what it registered, in reverse order, before the
                // state goes back, so a retry starts from nothing.
                release_resources(resources);
                init.publish(Err(()));
                Err(e)
            }
        }
    }

    // ------------------------------------------------------------------
    // cleanup
    // ------------------------------------------------------------------

    /// Counts one cleanup (`WSPCleanup`). With the count above 1 it only
    /// decrements ([L5](crate::contract#L5)). The final one moves the state
    /// to Draining at once and tears down in the order of rule
    /// [L6](crate::contract#L6), returning only when the provider is Released
    /// and immediately re-initializable ([L7](crate::contract#L7)), with the
    /// drain report. No panic in user code escapes it or leaves the state in
    /// Draining ([L14](crate::contract#L14)).
    ///
    /// # Errors
    ///
    /// - [`Error::NotInitialised`]: the count is 0 (its [`NotActive`](crate::NotActive) says
    ///   [`NeverStarted`](crate::NotActive::NeverStarted), one cleanup too many,
    ///   [`Unpaired`](crate::NotActive::Unpaired), or
    ///   [`Draining`](crate::NotActive::Draining)); nothing changes
    ///   ([L4](crate::contract#L4));
    /// - [`Error::InProgress`]: the final cleanup was issued from a thread
    ///   holding an [`OperationGuard`] of this lifecycle; nothing changes
    ///   ([L11](crate::contract#L11)).
    ///
    /// ```
    /// # use provider_lifecycle::*;
    /// # struct P;
    /// # impl Provider for P {
    /// #     type Socket = NoSocket;
    /// #     type State = ();
    /// #     fn versions(&self) -> VersionRange { VersionRange::new(Version::new(1, 1), Version::new(2, 2)) }
    /// #     fn initialize(&self, _: &mut Registrar) -> Result<(), Error> { Ok(()) }
    /// # }
    /// let l = Lifecycle::new(P);
    /// l.startup(Version::new(2, 2))?;
    /// l.startup(Version::new(2, 2))?;
    /// assert_eq!(l.cleanup()?, Cleanup::Decremented { remaining: 1 });
    /// let Cleanup::Final(report) = l.cleanup()? else { unreachable!() };
    /// assert!(report.is_clean());
    /// assert_eq!(l.state(), State::Released); // and ready to start again
    /// assert_eq!(l.cleanup(), Err(Error::NotInitialised(NotActive::Unpaired))); // one too many
    /// # Ok::<(), Error>(())
    /// ```
    #[inline]
    pub fn cleanup(&self) -> Result<Cleanup, Error> {
        // The fast path, written out like startup's: the same three arms as
        // `begin_cleanup` (the async path's), without building its
        // `Result<Begin>` first, which measured slower; the final cleanup's
        // engine stays out of line, so a decrement pays for no stack frame
        // sized for a drain.
        match self.raw.word.leave() {
            Leave::Left(remaining) => Ok(Cleanup::Decremented { remaining }),
            Leave::NotActive(w) => Err(Error::NotInitialised(w.refused_cleanup())),
            Leave::Last(last) => self.cleanup_last(last),
        }
    }

    /// A blocking cleanup whose decrement took the count to 0.
    #[cold]
    #[inline(never)]
    fn cleanup_last(&self, last: Word) -> Result<Cleanup, Error> {
        Ok(match self.begin_last(last)? {
            Begin::Decremented(remaining) => Cleanup::Decremented { remaining },
            Begin::Final(drain) => Cleanup::Final(Box::new(drain.run_blocking())),
        })
    }

    /// [`cleanup`](Lifecycle::cleanup) for async hosts: the same engine,
    /// driven from a future that never blocks its thread. A cleanup that only
    /// decrements completes on its first poll; the final one waits for
    /// guards and sockets by registering the task's waker (with the last
    /// guard's leaver and with the sockets' wakers), and for socket deadlines
    /// through one helper thread that it joins before completing
    /// ([L13](crate::contract#L13)). Runtime-agnostic (plain `std::task`);
    /// the report is the one `cleanup` would give.
    ///
    /// Dropped before it completes, the future finishes the teardown on the
    /// dropping thread (a teardown cannot be abandoned halfway). Polled again
    /// after it completed, it answers `NotInitialised`.
    ///
    /// # Errors
    ///
    /// As [`cleanup`](Lifecycle::cleanup).
    #[cfg(not(loom))]
    pub fn cleanup_async(&self) -> impl Future<Output = Result<Cleanup, Error>> + Send + '_ {
        teardown::CleanupFuture::new(self)
    }

    /// The start of every cleanup: the fast-path decrement, or the 1 → 0
    /// transition that begins the drain.
    #[inline]
    fn begin_cleanup(&self) -> Result<Begin<'_, P>, Error> {
        match self.raw.word.leave() {
            Leave::Left(remaining) => Ok(Begin::Decremented(remaining)),
            Leave::NotActive(w) => Err(Error::NotInitialised(w.refused_cleanup())),
            Leave::Last(last) => self.begin_last(last),
        }
    }

    /// Rule 1's flip and the drain it begins, or a plain decrement if a
    /// startup joined first.
    fn begin_last(&self, last: Word) -> Result<Begin<'_, P>, Error> {
        Ok(match self.raw.begin_final(last)? {
            Ok(frame) => Begin::Final(Box::new(teardown::Drain::start(self, frame))),
            Err(remaining) => Begin::Decremented(remaining),
        })
    }

    // ------------------------------------------------------------------
    // guards and resources
    // ------------------------------------------------------------------

    /// Takes an operation guard ([O1](crate::contract#O1)): while it lives
    /// the final cleanup will not close sockets, release resources or unload
    /// ([O2](crate::contract#O2)). Take one around every provider call that
    /// touches sockets or resources. A refusal costs what a success does: no
    /// lock is taken either way.
    ///
    /// The guard is `!Send`. A thread holding a guard cannot perform the
    /// final cleanup ([`Error::InProgress`], [L11](crate::contract#L11)); a
    /// guard held by another thread is waited for, after the provider's
    /// [`cancel_pending`](Provider::cancel_pending) hook is asked to unblock
    /// it.
    ///
    /// # Errors
    ///
    /// [`Error::NotInitialised`] unless the state is Active (Draining
    /// included, from the instant the final cleanup begins).
    ///
    /// ```
    /// # use provider_lifecycle::*;
    /// # struct P;
    /// # impl Provider for P {
    /// #     type Socket = NoSocket;
    /// #     type State = ();
    /// #     fn versions(&self) -> VersionRange { VersionRange::new(Version::new(1, 1), Version::new(2, 2)) }
    /// #     fn initialize(&self, _: &mut Registrar) -> Result<(), Error> { Ok(()) }
    /// # }
    /// let l = Lifecycle::new(P);
    /// assert_eq!(l.enter().err(), Some(Error::NotInitialised(NotActive::NeverStarted)));
    /// l.startup(Version::new(2, 2))?;
    /// {
    ///     let _guard = l.enter()?; // a provider call runs here
    ///     // The final cleanup from this thread would wait for itself:
    ///     assert_eq!(l.cleanup().err(), Some(Error::InProgress));
    /// }
    /// assert!(l.cleanup()?.is_final());
    /// # Ok::<(), Error>(())
    /// ```
    #[inline]
    pub fn enter(&self) -> Result<OperationGuard<'_, P::State>, Error> {
        OperationGuard::enter(&self.raw, &self.state).map(|(g, _)| g)
    }

    /// Takes an operation token ([O4](crate::contract#O4)): an owned,
    /// `Send` form of [`enter`](Lifecycle::enter)'s guard, with the same
    /// guarantees, for work that crosses threads or `.await` points, and a
    /// signal that the final cleanup has begun (see [`OperationToken`]).
    ///
    /// ```
    /// # use provider_lifecycle::*;
    /// # struct P;
    /// # impl Provider for P {
    /// #     type Socket = NoSocket;
    /// #     type State = ();
    /// #     fn versions(&self) -> VersionRange { VersionRange::new(Version::new(2, 2), Version::new(2, 2)) }
    /// #     fn initialize(&self, _: &mut Registrar) -> Result<(), Error> { Ok(()) }
    /// # }
    /// static L: Lifecycle<P> = Lifecycle::new(P);
    /// L.startup(Version::new(2, 2))?;
    /// let token = L.token()?;
    /// let worker = std::thread::spawn(move || {
    ///     token.wait_cancelled(); // returns once the final cleanup began
    ///     assert!(token.is_cancelled());
    /// }); // the token is dropped here: the drain was waiting for it
    /// L.cleanup()?;
    /// worker.join().unwrap();
    /// # Ok::<(), Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotInitialised`] unless the state is Active.
    #[inline]
    pub fn token(&self) -> Result<OperationToken<'_, P::State>, Error> {
        OperationToken::enter(&self.raw, &self.state)
    }

    /// Registers a resource for the current generation, released in reverse
    /// order of registration at the final cleanup ([L6.4](crate::contract#L6.4)).
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
        self.raw.register(r).map_err(|(refused, why)| {
            release_resources(vec![refused]);
            Error::NotInitialised(why)
        })
    }
}

/// [L12](crate::contract#L12): a lifecycle dropped while Active (a process
/// ending without cleanup) aborts its sockets and releases its resources,
/// without calling the cancel or prepare-to-unload hooks, without blocking
/// and without panicking (panics in user code are caught).
impl<P: Provider> Drop for Lifecycle<P> {
    fn drop(&mut self) {
        let w = self.raw.word.load();
        if !w.is_active() {
            // States abandoned to leaked guards (L16): nothing can reach
            // them any more (guards borrow the lifecycle).
            for state in self.state.take_all() {
                let _ = drop_quietly(state);
            }
            return;
        }
        let handover = self.background.lock().take();
        let open = self.sockets.drain_open(w.generation(), false);
        close::abort_all(open, handover.flusher);
        // The state before the resources, as at a final cleanup. (No guard
        // can exist: they borrow the lifecycle. States abandoned to leaked
        // guards go too: nothing can reach them any more.)
        for state in self.state.take_all() {
            let _ = drop_quietly(state);
        }
        release_resources(self.raw.take_resources());
    }
}

impl<P: Provider> fmt::Debug for Lifecycle<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = self.raw.word.load();
        f.debug_struct("Lifecycle")
            .field("provider", &std::any::type_name::<P>())
            .field("state", &w.state())
            .field("count", &w.count())
            .field("generation", &w.generation())
            .field("initializing", &w.initializing())
            .field(
                "guards",
                &self.raw.guards(crate::raw::lane_of(w.generation())),
            )
            .field("abandoned_lanes", &self.raw.abandoned_lanes())
            .field("config", &self.raw.config)
            .finish()
    }
}

mod exit;
mod outcome;
mod owned;
pub use outcome::{Cleanup, Snapshot, Started};
pub use owned::OwnedToken;
mod sockets;
#[cfg(all(test, not(loom)))]
mod tests;

mod teardown;
