//! Counted startups ([L1](crate::contract#L1)–[L3](crate::contract#L3),
//! [L9](crate::contract#L9), [L10](crate::contract#L10)): the fast path,
//! the blocking, contextual and async slow paths, and the initialization a
//! generation's first startup runs.

use std::future::Future;
use std::task::{Poll, Waker};

use super::{Lifecycle, Started};
use crate::config::StartupPolicy;
use crate::hook::call;
use crate::provider::Registrar;
use crate::raw::{Initializing, Slow};
use crate::resource::release_resources;
use crate::state::Join;
use crate::sync::Ordering;
use crate::{Error, Negotiated, Provider, Version};

impl<P: Provider> Lifecycle<P> {
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
    /// // This call fails at once while a final cleanup runs, whatever the
    /// // configured policy.
    /// let started = l.startup_with(Version::new(2, 2), StartupPolicy::FailFast)?;
    /// assert!(started.initialized);
    /// # Ok::<(), Error>(())
    /// ```
    #[inline]
    pub fn startup_with(
        &self,
        requested: Version,
        policy: StartupPolicy,
    ) -> Result<Started, Error> {
        // The fast path here, the rest out of line: the common case builds
        // its result in place (no `Poll` to unwrap and copy).
        let negotiated = self.provider.negotiate(requested)?;
        match self.join(negotiated) {
            Ok(started) => Ok(started),
            Err(_) => self.startup_blocking(requested, policy),
        }
    }

    /// Every startup's count ([L1](crate::contract#L1),
    /// [L10](crate::contract#L10)): one more in an Active generation, or
    /// what the state word said instead.
    #[inline(always)]
    fn join(&self, negotiated: Negotiated) -> Result<Started, Join> {
        match self.raw.word.join(self.raw.config.count_limit()) {
            Join::Joined(w) => {
                self.note_version(negotiated.version);
                Ok(Started {
                    negotiated,
                    generation: w.generation(),
                    initialized: false,
                })
            }
            refused => Err(refused),
        }
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
    /// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// rt.block_on(async {
    ///     let started = l.startup_async(Version::new(2, 2)).await?;
    ///     assert!(started.initialized);
    ///     assert!(l.cleanup_async().await?.is_final());
    ///     Ok::<(), Error>(())
    /// })?;
    /// # Ok::<(), Error>(())
    /// ```
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
        loop {
            match self.join(negotiated) {
                Ok(started) => return Poll::Ready(Ok(started)),
                Err(Join::Limit) => return Poll::Ready(Err(Error::ProcessLimit)),
                Err(_) => match self.raw.startup_slow(policy, waker) {
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
}
