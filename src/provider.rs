//! What a provider implements: its version range, its initialization, its
//! cancel and prepare-to-unload hooks, and the resources it registers.

use std::fmt;

use crate::resource::{Registered, Resource};
use crate::{BoxError, Error, Socket, VersionRange};

/// The provider a [`Lifecycle`](crate::Lifecycle) manages.
///
/// Every hook is called with no lock of the lifecycle held, so a hook may call
/// back into the lifecycle without deadlocking — but mind the state it runs
/// in: [`initialize`](Provider::initialize) runs before the state is Active,
/// so there `enter`, `token`, `register_resource` and `register_socket`
/// answer `NotInitialised` (register through the [`Registrar`] instead);
/// [`cancel_pending`](Provider::cancel_pending) and
/// [`prepare_unload`](Provider::prepare_unload) run during Draining, where the
/// same calls are refused too, and a startup from them answers `InProgress`
/// rather than wait for the drain that runs them. Reading the state always
/// works. A panic in any hook is caught: in [`initialize`](Provider::initialize) it
/// fails the startup with [`Error::SystemNotReady`]; in the teardown hooks it is
/// recorded in the [`DrainReport`](crate::DrainReport) and the teardown goes on.
///
/// ```
/// use provider_lifecycle::*;
/// use std::collections::HashMap;
/// use std::sync::Mutex;
///
/// /// An in-memory provider: its state is a table it builds per generation.
/// struct Memory;
/// impl Provider for Memory {
///     type Socket = NoSocket;
///     type State = Mutex<HashMap<u32, String>>;
///     fn versions(&self) -> VersionRange {
///         VersionRange::new(Version::new(1, 1), Version::new(2, 2))
///     }
///     fn initialize(&self, init: &mut Registrar) -> Result<Self::State, Error> {
///         init.register_fn("log flush", || Ok(())); // freed at the final cleanup
///         Ok(Mutex::new(HashMap::new()))
///     }
/// }
/// let l = Lifecycle::new(Memory);
/// l.startup(Version::new(2, 2))?;
/// l.enter()?.state().lock().unwrap().insert(1, "one".into());
/// assert!(l.cleanup()?.is_final()); // the table is dropped, the resource released
/// # Ok::<(), Error>(())
/// ```
pub trait Provider: Send + Sync {
    /// The socket type this provider registers with the lifecycle. Providers
    /// without sockets use [`NoSocket`](crate::NoSocket); providers with several
    /// kinds use an enum or `Box<dyn Socket>`.
    type Socket: Socket;

    /// The provider's per-generation state: what
    /// [`initialize`](Provider::initialize) builds (a connection pool, a
    /// listener, the upcall table of the startup that initialized it), held
    /// by the lifecycle for the generation's life and reachable only through
    /// a live [`OperationGuard::state`](crate::OperationGuard::state) or
    /// [`OperationToken::state`](crate::OperationToken::state). Code that
    /// uses it without a guard does not compile: rule
    /// [O1](crate::contract#O1) enforced by types. The final cleanup drops
    /// it after the sockets and before the registered resources (the
    /// reverse of their building: `initialize` registers resources first and
    /// returns the state last). Providers without one use `()`.
    type State: Send + Sync + 'static;

    /// The versions this provider supports (rule [V2](crate::contract#V2)).
    fn versions(&self) -> VersionRange;

    /// Negotiates one startup's requested version. The default applies
    /// [`versions`](Provider::versions)' rule (the minimum of the request
    /// and the highest); a provider with a discrete set of versions
    /// ([W2](crate::contract#W2)) overrides it, usually with
    /// [`VersionSet::negotiate`](crate::VersionSet::negotiate). It runs on
    /// every startup's fast path: keep it cheap and pure.
    ///
    /// # Errors
    ///
    /// [`Error::VersionNotSupported`] for a version it cannot serve.
    #[inline]
    fn negotiate(&self, requested: crate::Version) -> Result<crate::Negotiated, Error> {
        self.versions().negotiate(requested)
    }

    /// Initializes the provider for a new generation and builds its
    /// [`State`](Provider::State); runs once per generation, on the first
    /// startup (rule [L1](crate::contract#L1)). Resources it registers through `init`
    /// are released in reverse order at the final cleanup, or at once if this
    /// returns an error (rule [L2](crate::contract#L2)).
    ///
    /// A provider without state writes
    /// `fn initialize(&self, _: &mut Registrar) -> Result<(), Error> { Ok(()) }`.
    ///
    /// # Errors
    ///
    /// Whatever the provider chooses; [`Error::SystemNotReady`] is the usual
    /// one, and carries its cause as [`source`](std::error::Error::source):
    /// `?` on an [`std::io::Error`] produces it, and
    /// [`Error::system_not_ready`] wraps any other error or message. The
    /// startup fails with this error and is not counted.
    fn initialize(&self, init: &mut Registrar) -> Result<Self::State, Error>;

    /// Cancels every pending blocking and asynchronous operation, silently: no
    /// completion notification is delivered for them (rule [L6.1](crate::contract#L6.1)). Called once
    /// by the final cleanup, after new operations are refused and before it
    /// waits for the remaining [`OperationGuard`](crate::OperationGuard)s.
    /// Returns how many operations it cancelled, for the report.
    ///
    /// # Errors
    ///
    /// A failure is recorded in the report; the teardown goes on.
    fn cancel_pending(&self) -> Result<usize, BoxError> {
        Ok(0)
    }

    /// Receives the report of every final cleanup, however it was issued
    /// (`cleanup`, `cleanup_async`, or the drop of the last
    /// [`Session`](crate::Session)), after prepare-to-unload and before the
    /// state becomes Released: the one place a provider whose `WSPCleanup`
    /// can only return an `int`, or whose callers drop sessions, sees what
    /// the drain did. It runs during Draining: a startup from it answers
    /// `InProgress`. A panic in it is caught (the report is already final,
    /// so it is not recorded there).
    fn on_drained(&self, report: &crate::DrainReport) {
        let _ = report;
    }

    /// Runs after every socket and resource is released, just before the
    /// lifecycle becomes Released (rule [L6.5](crate::contract#L6.5)).
    ///
    /// # Errors
    ///
    /// A failure is recorded in the report; the teardown goes on.
    fn prepare_unload(&self) -> Result<(), BoxError> {
        Ok(())
    }
}

/// Collects the resources a provider's [`initialize`](Provider::initialize)
/// registers for the generation being started.
///
/// ```
/// use provider_lifecycle::*;
/// struct P;
/// impl Provider for P {
///     type Socket = NoSocket;
///     type State = ();
/// #     fn versions(&self) -> VersionRange { VersionRange::new(Version::new(2, 2), Version::new(2, 2)) }
///     fn initialize(&self, init: &mut Registrar) -> Result<(), Error> {
///         assert!(init.is_empty());
///         init.register_fn("first", || Ok(()));
///         init.register_fn("second", || Ok(()));
///         assert_eq!(init.len(), 2);
///         Ok(())
///     }
/// }
/// let l = Lifecycle::new(P);
/// l.startup(Version::new(2, 2))?;
/// let report = l.cleanup()?.into_report().unwrap();
/// let order: Vec<_> = report.resources.iter().map(|r| r.name.as_str()).collect();
/// assert_eq!(order, ["second", "first"]); // reverse order of registration
/// # Ok::<(), Error>(())
/// ```
pub struct Registrar {
    generation: u64,
    pub(crate) resources: Vec<Registered>,
}

impl Registrar {
    pub(crate) fn new(generation: u64) -> Registrar {
        Registrar {
            generation,
            resources: Vec::new(),
        }
    }

    /// The generation being initialized.
    ///
    /// ```
    /// # use provider_lifecycle::*;
    /// struct P;
    /// impl Provider for P {
    ///     type Socket = NoSocket;
    ///     type State = u64;
    /// #     fn versions(&self) -> VersionRange { VersionRange::new(Version::new(2, 2), Version::new(2, 2)) }
    ///     fn initialize(&self, init: &mut Registrar) -> Result<u64, Error> {
    ///         Ok(init.generation()) // e.g. to tag what this generation creates
    ///     }
    /// }
    /// let l = Lifecycle::new(P);
    /// l.startup(Version::new(2, 2))?;
    /// assert_eq!(*l.enter()?.state(), 0);
    /// # Ok::<(), Error>(())
    /// ```
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Registers a resource; resources are released in reverse order of
    /// registration.
    ///
    /// ```
    /// # use provider_lifecycle::*;
    /// struct Pool;
    /// impl Resource for Pool {
    ///     fn name(&self) -> &str { "pool" }
    ///     fn release(self: Box<Self>) -> Result<(), BoxError> { Ok(()) }
    /// }
    /// struct P;
    /// impl Provider for P {
    ///     type Socket = NoSocket;
    ///     type State = ();
    /// #     fn versions(&self) -> VersionRange { VersionRange::new(Version::new(2, 2), Version::new(2, 2)) }
    ///     fn initialize(&self, init: &mut Registrar) -> Result<(), Error> {
    ///         init.register(Pool); // released by the final cleanup
    ///         Ok(())
    ///     }
    /// }
    /// let l = Lifecycle::new(P);
    /// l.startup(Version::new(2, 2))?;
    /// let report = l.cleanup()?.into_report().unwrap();
    /// assert_eq!(report.resources[0].name, "pool");
    /// # Ok::<(), Error>(())
    /// ```
    pub fn register(&mut self, resource: impl Resource + 'static) {
        self.resources.push(Registered::new(Box::new(resource)));
    }

    /// Registers a closure to run at release, under `name` in the report.
    ///
    /// ```
    /// use provider_lifecycle::*;
    /// struct P;
    /// impl Provider for P {
    ///     type Socket = NoSocket;
    ///     type State = ();
    ///     fn versions(&self) -> VersionRange {
    ///         VersionRange::new(Version::new(2, 2), Version::new(2, 2))
    ///     }
    ///     fn initialize(&self, init: &mut Registrar) -> Result<(), Error> {
    ///         // Released by the final cleanup, in reverse order of registration.
    ///         init.register_fn("socket table", || Ok(()));
    ///         assert_eq!(init.len(), 1);
    ///         Ok(())
    ///     }
    /// }
    /// let l = Lifecycle::new(P);
    /// l.startup(Version::new(2, 2))?;
    /// let report = l.cleanup()?.into_report().expect("final");
    /// assert_eq!(report.resources[0].name, "socket table");
    /// # Ok::<(), Error>(())
    /// ```
    pub fn register_fn<F>(&mut self, name: impl Into<String>, release: F)
    where
        F: FnOnce() -> Result<(), BoxError> + Send + 'static,
    {
        self.resources.push(Registered::from_fn(name, release));
    }

    /// How many resources are registered so far.
    #[must_use]
    pub fn len(&self) -> usize {
        self.resources.len()
    }

    /// Whether nothing is registered yet.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.resources.is_empty()
    }
}

impl fmt::Debug for Registrar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registrar")
            .field("generation", &self.generation)
            .field(
                "resources",
                &self.resources.iter().map(|r| &r.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}
