//! The public [`Lifecycle`]: its fields, what it reports (state, count,
//! generation, version), its guards and tokens, and its `Drop`. Each of its
//! other jobs has a room of its own below: `startup.rs` (counted startups
//! and the initialization), `cleanup.rs` (counted cleanups, up to the start
//! of the final one), `teardown.rs` (the final cleanup's steps),
//! `sockets.rs`, `resources.rs`, `owned.rs` (the owned token), `exit.rs`
//! (process exit) and `outcome.rs` (what the calls return).

use std::fmt;

use crate::background::Background;
use crate::close;
use crate::config::Config;
use crate::generation::StateCells;
use crate::guard::{OperationGuard, OperationToken};
use crate::hook::drop_quietly;
use crate::raw::RawLifecycle;
use crate::registry::Registry;
use crate::state::State;
use crate::sync::{self, AtomicU64, Mutex, Ordering};
use crate::{Error, Provider, Version};

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
/// // One per provider, usually a `static`; every exported entry goes through it.
/// static PROVIDER: Lifecycle<P> = Lifecycle::new(P);
///
/// PROVIDER.startup(Version::new(2, 2))?; // WSPStartup
/// {
///     let _guard = PROVIDER.enter()?; // around every provider call
/// }
/// let done = PROVIDER.cleanup()?; // WSPCleanup: the last one drains
/// assert!(done.is_final());
/// # Ok::<(), Error>(())
/// ```
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
        /// use std::time::Duration;
        /// static PROVIDER: Lifecycle<P> = Lifecycle::with_config(
        ///     P,
        ///     Config::new().with_drain_deadline(Duration::from_secs(5)),
        /// );
        /// assert_eq!(PROVIDER.config().drain_deadline(), Duration::from_secs(5));
        /// ```
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
    ///
    /// ```
    /// # use provider_lifecycle::*;
    /// struct Named(&'static str);
    /// impl Provider for Named {
    ///     // ...
    /// #     type Socket = NoSocket;
    /// #     type State = ();
    /// #     fn versions(&self) -> VersionRange { VersionRange::new(Version::new(2, 2), Version::new(2, 2)) }
    /// #     fn initialize(&self, _: &mut Registrar) -> Result<(), Error> { Ok(()) }
    /// }
    /// let l = Lifecycle::new(Named("in-memory"));
    /// assert_eq!(l.provider().0, "in-memory");
    /// ```
    pub fn provider(&self) -> &P {
        &self.provider
    }

    /// The configuration.
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
    /// let l = Lifecycle::with_config(P, Config::new().with_startup_policy(StartupPolicy::FailFast));
    /// assert_eq!(l.config().startup_policy(), StartupPolicy::FailFast);
    /// ```
    pub fn config(&self) -> &Config {
        &self.raw.config
    }

    /// The current state.
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
    /// let l = Lifecycle::new(P);
    /// assert_eq!(l.state(), State::Uninitialized);
    /// l.startup(Version::new(2, 2))?;
    /// assert_eq!(l.state(), State::Active);
    /// l.cleanup()?;
    /// assert_eq!(l.state(), State::Released);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn state(&self) -> State {
        self.raw.word.load().state()
    }

    /// The current reference count (0 unless Active).
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
    /// let l = Lifecycle::new(P);
    /// l.startup(Version::new(2, 2))?;
    /// l.startup(Version::new(2, 2))?;
    /// assert_eq!(l.count(), 2); // two cleanups owed
    /// l.cleanup()?;
    /// assert_eq!(l.count(), 1);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn count(&self) -> u32 {
        self.raw.word.load().count()
    }

    /// The current generation: how many final cleanups have completed
    /// (modulo 2^31).
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
    /// let l = Lifecycle::new(P);
    /// assert_eq!(l.generation(), 0);
    /// l.startup(Version::new(2, 2))?;
    /// l.cleanup()?; // the final cleanup ends generation 0
    /// assert_eq!(l.generation(), 1);
    /// # Ok::<(), Error>(())
    /// ```
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
    /// let l = Lifecycle::new(P);
    /// l.startup(Version::new(2, 2))?;
    /// let s = l.snapshot(); // one load: the three agree with each other
    /// assert_eq!((s.state, s.count, s.generation), (State::Active, 1, 0));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn snapshot(&self) -> Snapshot {
        let w = self.raw.word.load();
        Snapshot {
            state: w.state(),
            count: w.count(),
            generation: w.generation(),
        }
    }

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
    ///     token.wait_draining(); // returns once the final cleanup began
    ///     assert!(token.is_draining());
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
        let (handover, open) = self.take_sockets(w.generation(), false);
        close::abort_all(open, handover.flusher);
        // No guard can exist: they borrow the lifecycle. States abandoned
        // to leaked guards go too: nothing can reach them any more.
        let _ = teardown::drop_then_release(self.state.take_all(), self.raw.take_resources());
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

#[cfg(not(loom))]
mod alarm;
mod cleanup;
#[cfg(not(loom))]
mod cleanup_future;
mod exit;
mod outcome;
mod owned;
mod resources;
mod sockets;
mod startup;
mod teardown;
#[cfg(all(test, not(loom)))]
mod tests;
mod trace;

pub use outcome::{Cleanup, Snapshot, Started};
pub use owned::OwnedToken;
