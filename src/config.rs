//! Caller-chosen policies: startup during Draining, open sockets at the final
//! cleanup, the drain deadline and the count limit.

use std::time::Duration;

use crate::helper::{Spawner, std_spawner};
use crate::state::MAX_COUNT;

/// What a startup does when it cannot count at once ([L9](crate::contract#L9)).
///
/// | policy | Draining | another thread initializing |
/// |---|---|---|
/// | `Wait` (default) | blocks until Released, then initializes afresh | waits for it |
/// | `FailFast` | [`InProgress`](crate::Error::InProgress) | waits for it |
/// | `NoWait` | `InProgress` | `InProgress` |
///
/// A startup never waits for itself: from inside the initialization hook,
/// from the draining thread, or while holding a guard during Draining it
/// answers `InProgress` whatever the policy. A thread holding an
/// [`OperationToken`](crate::OperationToken) cannot be told apart that way
/// (tokens move between threads), so a `Wait` startup during Draining also
/// gives up with `InProgress` once the drain deadline has passed while
/// operations are still in flight — its own token may be one of them — and
/// logs a warning with the `tracing` feature: it never waits silently
/// forever.
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
/// l.startup(Version::new(2, 2))?; // policies only matter while a final cleanup runs
/// # Ok::<(), Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum StartupPolicy {
    /// Block until the provider is Released, then initialize a fresh
    /// generation (the default).
    #[default]
    Wait,
    /// During Draining, fail at once with
    /// [`Error::InProgress`](crate::Error::InProgress).
    FailFast,
    /// Never block: `InProgress` during Draining and while another thread
    /// initializes. `FailFast` refuses only while a final cleanup runs (it
    /// waits for another thread's initialization); `NoWait` refuses
    /// instead of any wait. For one call:
    /// [`Lifecycle::startup_with`](crate::Lifecycle::startup_with).
    NoWait,
}

/// How the final cleanup closes sockets the application left open ([L6.2](crate::contract#L6.2)).
///
/// ```
/// use provider_lifecycle::{Config, OpenSocketPolicy};
/// // Sockets the application never closed are flushed, not reset, at the
/// // final cleanup (bounded by the drain deadline).
/// let c = Config::new().with_open_socket_policy(OpenSocketPolicy::Graceful);
/// # let _ = c;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum OpenSocketPolicy {
    /// Abortively: unsent data is discarded and its byte count reported
    /// (the default, like `WSACleanup` on open sockets).
    #[default]
    Reset,
    /// As if the application had closed each one, with its own linger
    /// setting (bounded by the drain deadline).
    Graceful,
}

/// Who makes background closes progress while Active
/// ([S4](crate::contract#S4)).
///
/// ```
/// use provider_lifecycle::{BackgroundFlush, Config};
/// // No flusher thread: the provider calls `Lifecycle::poll_background` from its
/// // own I/O loop.
/// let c = Config::new().with_background_flush(BackgroundFlush::Manual);
/// # let _ = c;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum BackgroundFlush {
    /// A helper thread of the lifecycle, started by the first background
    /// close of a generation, asleep unless a socket woke it, and joined by
    /// the final cleanup before it touches any socket (the default).
    #[default]
    Thread,
    /// Nobody but the provider: it calls
    /// [`Lifecycle::poll_background`](crate::Lifecycle::poll_background) from its
    /// own loop; the final cleanup finishes whatever is left.
    Manual,
}

/// The default drain deadline: 10 seconds.
pub const DEFAULT_DRAIN_DEADLINE: Duration = Duration::from_secs(10);

/// A lifecycle's configuration; `const`-constructible so a lifecycle can be a
/// `static`.
///
/// ```
/// use std::time::Duration;
/// use provider_lifecycle::{Config, OpenSocketPolicy, StartupPolicy};
/// const CONFIG: Config = Config::new()
///     .with_startup_policy(StartupPolicy::FailFast)
///     .with_open_socket_policy(OpenSocketPolicy::Graceful)
///     .with_drain_deadline(Duration::from_secs(2))
///     .with_count_limit(1000);
/// assert_eq!(CONFIG.count_limit(), 1000);
/// assert_eq!(CONFIG.open_socket_policy(), OpenSocketPolicy::Graceful);
/// ```
#[derive(Clone, Copy)]
pub struct Config {
    startup_policy: StartupPolicy,
    open_sockets: OpenSocketPolicy,
    drain_deadline: Duration,
    count_limit: u32,
    background_flush: BackgroundFlush,
    guard_wait_limit: Option<Duration>,
    spawner: Spawner,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("startup_policy", &self.startup_policy)
            .field("open_sockets", &self.open_sockets)
            .field("drain_deadline", &self.drain_deadline)
            .field("count_limit", &self.count_limit)
            .field("background_flush", &self.background_flush)
            .field("guard_wait_limit", &self.guard_wait_limit)
            .finish_non_exhaustive()
    }
}

/// Two configurations are equal when every policy and number is; the
/// spawner is not compared (function addresses are not stable across
/// codegen units).
impl PartialEq for Config {
    fn eq(&self, other: &Config) -> bool {
        (
            self.startup_policy,
            self.open_sockets,
            self.drain_deadline,
            self.count_limit,
            self.background_flush,
            self.guard_wait_limit,
        ) == (
            other.startup_policy,
            other.open_sockets,
            other.drain_deadline,
            other.count_limit,
            other.background_flush,
            other.guard_wait_limit,
        )
    }
}

impl Eq for Config {}

impl Config {
    /// The defaults: `StartupPolicy::Wait`, `OpenSocketPolicy::Reset`,
    /// [`DEFAULT_DRAIN_DEADLINE`], the largest count limit
    /// ([`MAX_COUNT`](crate::MAX_COUNT), about a billion) and
    /// `BackgroundFlush::Thread`, with helper threads from
    /// [`std_spawner`](crate::std_spawner).
    ///
    /// ```
    /// use provider_lifecycle::{Config, OpenSocketPolicy, StartupPolicy};
    /// let c = Config::new();
    /// assert_eq!(c.startup_policy(), StartupPolicy::Wait);
    /// assert_eq!(c.open_socket_policy(), OpenSocketPolicy::Reset);
    /// assert_eq!(c.guard_wait_limit(), None); // never abandons (L16)
    /// ```
    #[must_use]
    pub const fn new() -> Config {
        Config {
            startup_policy: StartupPolicy::Wait,
            open_sockets: OpenSocketPolicy::Reset,
            drain_deadline: DEFAULT_DRAIN_DEADLINE,
            count_limit: MAX_COUNT,
            background_flush: BackgroundFlush::Thread,
            guard_wait_limit: None,
            spawner: std_spawner,
        }
    }

    /// Sets how helper threads are started (see [`Spawner`]): a provider
    /// library that hosts unload passes one that leaves nothing on the
    /// caller's thread ([L17](crate::contract#L17)).
    ///
    /// ```
    /// use provider_lifecycle::{Config, HelperJoin, HelperTask};
    /// // A spawner that starts helpers with a name of its own choosing.
    /// // `None` if no thread could be started.
    /// fn named(task: HelperTask) -> Option<HelperJoin> {
    ///     let handle = std::thread::Builder::new()
    ///         .name(format!("my-provider: {}", task.name()))
    ///         .spawn(move || task.run())
    ///         .ok()?;
    ///     Some(HelperJoin::new(move || {
    ///         let _ = handle.join();
    ///     }))
    /// }
    /// let c = Config::new().with_spawner(named);
    /// assert!(c.spawner() as usize == named as usize);
    /// ```
    #[must_use]
    pub const fn with_spawner(mut self, spawner: Spawner) -> Config {
        self.spawner = spawner;
        self
    }

    /// How helper threads are started.
    ///
    /// ```
    /// use provider_lifecycle::{Config, std_spawner};
    /// assert!(Config::new().spawner() as usize == std_spawner as usize); // the default
    /// ```
    #[must_use]
    pub const fn spawner(&self) -> Spawner {
        self.spawner
    }

    /// Sets the startup-during-Draining policy ([L9](crate::contract#L9)).
    ///
    /// ```
    /// use provider_lifecycle::{Config, StartupPolicy};
    /// // A startup during a final cleanup answers InProgress instead of waiting.
    /// let c = Config::new().with_startup_policy(StartupPolicy::FailFast);
    /// assert_eq!(c.startup_policy(), StartupPolicy::FailFast);
    /// ```
    #[must_use]
    pub const fn with_startup_policy(mut self, policy: StartupPolicy) -> Config {
        self.startup_policy = policy;
        self
    }

    /// Sets the open-socket policy of the final cleanup ([L6.2](crate::contract#L6.2)).
    ///
    /// ```
    /// use provider_lifecycle::{Config, OpenSocketPolicy};
    /// // Sockets still open at the final cleanup get their own linger, bounded by
    /// // the drain deadline, instead of a reset.
    /// let c = Config::new().with_open_socket_policy(OpenSocketPolicy::Graceful);
    /// assert_eq!(c.open_socket_policy(), OpenSocketPolicy::Graceful);
    /// ```
    #[must_use]
    pub const fn with_open_socket_policy(mut self, policy: OpenSocketPolicy) -> Config {
        self.open_sockets = policy;
        self
    }

    /// Sets the drain deadline: how long the final cleanup may spend waiting
    /// for guards and flushing sockets before it discards what is left
    /// (reported). It never frees anything under a live guard, so guards
    /// that outlive it delay the cleanup (see the report's
    /// `overran_deadline`).
    ///
    /// ```
    /// use provider_lifecycle::Config;
    /// use std::time::Duration;
    /// let c = Config::new().with_drain_deadline(Duration::from_secs(2));
    /// assert_eq!(c.drain_deadline(), Duration::from_secs(2));
    /// ```
    #[must_use]
    pub const fn with_drain_deadline(mut self, deadline: Duration) -> Config {
        self.drain_deadline = deadline;
        self
    }

    /// Bounds the final cleanup's wait for operations in flight
    /// ([L16](crate::contract#L16)), counted from the cleanup's start. When
    /// it passes with guards or tokens still out, the cleanup stops waiting
    /// and still reaches Released, but frees nothing they may touch: the
    /// provider's state and its registered resources are abandoned (left in
    /// place, never dropped or released), as is any socket an operation is
    /// using; other sockets are closed as usual. The report says so
    /// ([`OperationsReport::abandoned`](crate::OperationsReport::abandoned)),
    /// and with the `tracing` feature a warning is logged at that moment.
    ///
    /// The default is no bound: the cleanup waits for every guard, however
    /// long, so that nothing is ever leaked (and a warning is logged at the
    /// drain deadline and then periodically). A provider whose final cleanup
    /// runs under a host's locks (a Winsock `WSPCleanup` runs under ws2_32's)
    /// should set one: a leaked guard then costs a leak, not a hung process.
    /// The generations whose guards are still out use up one of four guard
    /// lanes each; with all four taken, a startup fails with
    /// [`Error::SystemNotReady`](crate::Error::SystemNotReady) (10091) until
    /// one empties.
    ///
    /// ```
    /// use provider_lifecycle::*;
    /// use std::time::Duration;
    ///
    /// struct P;
    /// impl Provider for P {
    ///     type Socket = NoSocket;
    ///     type State = String;
    ///     fn versions(&self) -> VersionRange {
    ///         VersionRange::new(Version::new(2, 2), Version::new(2, 2))
    ///     }
    ///     fn initialize(&self, _: &mut Registrar) -> Result<String, Error> {
    ///         Ok("state".into())
    ///     }
    /// }
    ///
    /// let config = Config::new().with_guard_wait_limit(Duration::from_millis(50));
    /// let l = Lifecycle::with_config(P, config);
    /// l.startup(Version::new(2, 2)).unwrap();
    /// std::mem::forget(l.token().unwrap()); // a leaked token
    /// let Cleanup::Final(report) = l.cleanup().unwrap() else { unreachable!() };
    /// assert_eq!(report.operations.abandoned, 1);
    /// assert_eq!(report.state, HookOutcome::Abandoned);
    /// // Released, and a new generation starts at once.
    /// l.startup(Version::new(2, 2)).unwrap();
    /// assert_eq!(*l.enter().unwrap().state(), "state");
    /// ```
    ///
    /// ```
    /// use provider_lifecycle::Config;
    /// use std::time::Duration;
    /// // A Winsock provider: WSPCleanup never hangs on a leaked operation.
    /// let c = Config::new().with_guard_wait_limit(Duration::from_secs(10));
    /// assert_eq!(c.guard_wait_limit(), Some(Duration::from_secs(10)));
    /// ```
    #[must_use]
    pub const fn with_guard_wait_limit(mut self, limit: Duration) -> Config {
        self.guard_wait_limit = Some(limit);
        self
    }

    /// The bound on the final cleanup's wait for operations in flight
    /// (`None`, the default: no bound).
    ///
    /// ```
    /// use provider_lifecycle::Config;
    /// use std::time::Duration;
    /// assert_eq!(Config::new().guard_wait_limit(), None); // wait for every guard
    /// let c = Config::new().with_guard_wait_limit(Duration::from_secs(30));
    /// assert_eq!(c.guard_wait_limit(), Some(Duration::from_secs(30)));
    /// ```
    #[must_use]
    pub const fn guard_wait_limit(&self) -> Option<Duration> {
        self.guard_wait_limit
    }

    /// Sets the count limit ([L10](crate::contract#L10)), clamped to `1..=MAX_COUNT`.
    ///
    /// ```
    /// use provider_lifecycle::Config;
    /// let c = Config::new().with_count_limit(16);
    /// assert_eq!(c.count_limit(), 16);
    /// ```
    #[must_use]
    pub const fn with_count_limit(mut self, limit: u32) -> Config {
        self.count_limit = if limit == 0 {
            1
        } else if limit > MAX_COUNT {
            MAX_COUNT
        } else {
            limit
        };
        self
    }

    /// Sets who makes background closes progress while Active.
    ///
    /// ```
    /// use provider_lifecycle::{BackgroundFlush, Config};
    /// // The provider drives background closes from its own I/O loop
    /// // (`Lifecycle::poll_background`); no flusher thread is started.
    /// let c = Config::new().with_background_flush(BackgroundFlush::Manual);
    /// assert_eq!(c.background_flush(), BackgroundFlush::Manual);
    /// ```
    #[must_use]
    pub const fn with_background_flush(mut self, mode: BackgroundFlush) -> Config {
        self.background_flush = mode;
        self
    }

    /// Who makes background closes progress while Active.
    ///
    /// ```
    /// use provider_lifecycle::{BackgroundFlush, Config};
    /// assert_eq!(Config::new().background_flush(), BackgroundFlush::Thread); // the default
    /// ```
    #[must_use]
    pub const fn background_flush(&self) -> BackgroundFlush {
        self.background_flush
    }

    /// The startup policy.
    ///
    /// ```
    /// use provider_lifecycle::{Config, StartupPolicy};
    /// assert_eq!(Config::new().startup_policy(), StartupPolicy::Wait); // the default
    /// let c = Config::new().with_startup_policy(StartupPolicy::FailFast);
    /// assert_eq!(c.startup_policy(), StartupPolicy::FailFast);
    /// ```
    #[must_use]
    #[inline]
    pub const fn startup_policy(&self) -> StartupPolicy {
        self.startup_policy
    }

    /// The open-socket policy.
    ///
    /// ```
    /// use provider_lifecycle::{Config, OpenSocketPolicy};
    /// assert_eq!(Config::new().open_socket_policy(), OpenSocketPolicy::Reset); // the default
    /// let c = Config::new().with_open_socket_policy(OpenSocketPolicy::Graceful);
    /// assert_eq!(c.open_socket_policy(), OpenSocketPolicy::Graceful);
    /// ```
    #[must_use]
    pub const fn open_socket_policy(&self) -> OpenSocketPolicy {
        self.open_sockets
    }

    /// The drain deadline.
    ///
    /// ```
    /// use provider_lifecycle::{Config, DEFAULT_DRAIN_DEADLINE};
    /// use std::time::Duration;
    /// assert_eq!(Config::new().drain_deadline(), DEFAULT_DRAIN_DEADLINE);
    /// let c = Config::new().with_drain_deadline(Duration::from_millis(500));
    /// assert_eq!(c.drain_deadline(), Duration::from_millis(500));
    /// ```
    #[must_use]
    pub const fn drain_deadline(&self) -> Duration {
        self.drain_deadline
    }

    /// The count limit.
    ///
    /// ```
    /// use provider_lifecycle::{Config, MAX_COUNT};
    /// assert_eq!(Config::new().count_limit(), MAX_COUNT); // the default
    /// assert_eq!(Config::new().with_count_limit(0).count_limit(), 1); // clamped
    /// ```
    #[must_use]
    #[inline]
    pub const fn count_limit(&self) -> u32 {
        self.count_limit
    }
}

impl Default for Config {
    fn default() -> Config {
        Config::new()
    }
}
