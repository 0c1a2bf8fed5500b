//! The owned operation token ([O5](crate::contract#O5)): a token that holds
//! its lifecycle by `Arc`, so it is `'static` and can move into a spawned
//! task, and that clones.

use std::sync::Arc;

use std::fmt;
use std::task::Poll;

use super::Lifecycle;
use crate::generation::StateRef;
use crate::guard::{DrainBegun, Scope, wait_draining};
use crate::{Error, Provider};

impl<P: Provider> Lifecycle<P> {
    /// Takes an owned operation token from a shared lifecycle
    /// ([O5](crate::contract#O5)): an [`OperationToken`](crate::OperationToken) that holds the
    /// lifecycle by `Arc` instead of borrowing it, so it is `'static`, moves
    /// into `tokio::spawn` or a thread, and clones. Same guarantees as a
    /// token ([O1](crate::contract#O1), [O2](crate::contract#O2),
    /// [O4](crate::contract#O4)) and the same [L11](crate::contract#L11)
    /// scope rules ([`scope`](OwnedToken::scope),
    /// [`track`](OwnedToken::track)).
    ///
    /// ```
    /// use provider_lifecycle::*;
    /// use std::sync::Arc;
    ///
    /// struct P;
    /// impl Provider for P {
    ///     type Socket = NoSocket;
    ///     type State = &'static str;
    ///     fn versions(&self) -> VersionRange {
    ///         VersionRange::new(Version::new(2, 2), Version::new(2, 2))
    ///     }
    ///     fn initialize(&self, _: &mut Registrar) -> Result<&'static str, Error> {
    ///         Ok("pool")
    ///     }
    /// }
    ///
    /// let l = Arc::new(Lifecycle::new(P));
    /// l.startup(Version::new(2, 2)).unwrap();
    /// let token = l.owned_token().unwrap();
    /// let worker = std::thread::spawn({
    ///     let token = token.clone(); // each clone is counted
    ///     move || *token.state()
    /// });
    /// assert_eq!(worker.join().unwrap(), "pool");
    /// drop(token);
    /// assert!(l.cleanup().unwrap().is_final());
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotInitialised`] unless the state is Active.
    pub fn owned_token(self: &Arc<Self>) -> Result<OwnedToken<P>, Error> {
        let (index, w) = self.raw.enter()?;
        Ok(OwnedToken {
            lifecycle: Arc::clone(self),
            index,
            generation: w.generation(),
        })
    }
}

/// An operation token that owns a share of its lifecycle
/// ([O5](crate::contract#O5)), from [`Lifecycle::owned_token`]: `'static`,
/// `Send` and `Sync`, and `Clone` (each clone is one more operation the
/// final cleanup waits for, like tokio-util's `TaskTrackerToken`). Otherwise
/// it is an [`OperationToken`](crate::OperationToken): the same methods, the same guarantees, the
/// same [L11](crate::contract#L11) scope rules.
///
/// Cloning never fails, even once the final cleanup has begun: the clone
/// extends an operation that is already counted, and the drain waits for it
/// too. Taking a *new* token still needs the state to be Active.
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
/// use std::sync::Arc;
/// let l = Arc::new(Lifecycle::new(P));
/// l.startup(Version::new(2, 2))?;
/// let token: OwnedToken<P> = l.owned_token()?; // 'static: no borrow of `l`
/// let worker = std::thread::spawn(move || {
///     let _copy = token.clone(); // counted like a second token
/// });
/// worker.join().unwrap();
/// assert!(l.cleanup()?.is_final());
/// # Ok::<(), Error>(())
/// ```
#[must_use = "the operation is only protected while the token lives"]
pub struct OwnedToken<P: Provider> {
    lifecycle: Arc<Lifecycle<P>>,
    index: usize,
    generation: u64,
}

impl<P: Provider> OwnedToken<P> {
    /// The provider's state for this token's generation (see
    /// [`OperationGuard::state`](crate::OperationGuard::state)).
    ///
    /// ```
    /// # use provider_lifecycle::*;
    /// # use std::sync::Arc;
    /// # struct P;
    /// # impl Provider for P {
    /// #     type Socket = NoSocket;
    /// #     type State = String;
    /// #     fn versions(&self) -> VersionRange { VersionRange::new(Version::new(2, 2), Version::new(2, 2)) }
    /// #     fn initialize(&self, _: &mut Registrar) -> Result<String, Error> { Ok("pool".to_owned()) }
    /// # }
    /// let l = Arc::new(Lifecycle::new(P));
    /// l.startup(Version::new(2, 2))?;
    /// let token = l.owned_token()?;
    /// let clone = token.clone(); // counted like a second token
    /// assert_eq!(*clone.state(), "pool");
    /// # drop((token, clone));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn state(&self) -> StateRef<'_, P::State> {
        self.lifecycle.state.at(self.index).read(self.index)
    }

    /// The lifecycle this token belongs to.
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
    /// use std::sync::Arc;
    /// let l = Arc::new(Lifecycle::new(P));
    /// l.startup(Version::new(2, 2))?;
    /// let token = l.owned_token()?;
    /// assert!(Arc::ptr_eq(token.lifecycle(), &l));
    /// # drop(token);
    /// # Ok::<(), Error>(())
    /// ```
    #[must_use]
    pub fn lifecycle(&self) -> &Arc<Lifecycle<P>> {
        &self.lifecycle
    }

    /// The generation this token's operation runs in.
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
    /// use std::sync::Arc;
    /// let l = Arc::new(Lifecycle::new(P));
    /// l.startup(Version::new(2, 2))?;
    /// let token = l.owned_token()?;
    /// assert_eq!(token.generation(), l.generation());
    /// # drop(token);
    /// # Ok::<(), Error>(())
    /// ```
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether the final cleanup of this token's generation has begun (see
    /// [`OperationToken::is_draining`](crate::OperationToken::is_draining)).
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
    /// use std::sync::Arc;
    /// let l = Arc::new(Lifecycle::new(P));
    /// l.startup(Version::new(2, 2))?;
    /// let token = l.owned_token()?;
    /// let worker = std::thread::spawn(move || {
    ///     token.wait_draining();
    ///     assert!(token.is_draining()); // time to wind down
    /// });
    /// l.cleanup()?;
    /// worker.join().unwrap();
    /// # Ok::<(), Error>(())
    /// ```
    #[must_use]
    pub fn is_draining(&self) -> bool {
        !self.lifecycle.raw.is_active_in(Some(self.generation))
    }

    /// A future that completes when the final cleanup has begun (see
    /// [`OperationToken::draining`](crate::OperationToken::draining)).
    pub fn draining(&self) -> impl Future<Output = ()> + Send + '_ {
        DrainBegun::new(&self.lifecycle.raw, self.generation)
    }

    /// Blocks the calling thread until the final cleanup has begun.
    pub fn wait_draining(&self) {
        wait_draining(&self.lifecycle.raw, self.generation);
    }

    /// Runs `f` in this token's scope (see [`OperationToken::scope`](crate::OperationToken::scope)).
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
    /// use std::sync::Arc;
    /// let l = Arc::new(Lifecycle::new(P));
    /// l.startup(Version::new(2, 2))?;
    /// let token = l.owned_token()?;
    /// // Inside the scope a final cleanup would wait for this token: InProgress.
    /// assert_eq!(token.scope(|| l.cleanup()).err(), Some(Error::InProgress));
    /// drop(token);
    /// assert!(l.cleanup()?.is_final());
    /// # Ok::<(), Error>(())
    /// ```
    pub fn scope<R>(&self, f: impl FnOnce() -> R) -> R {
        let _scope = Scope::enter(&self.lifecycle.raw);
        f()
    }

    /// Wraps `future` so that it owns this token and every `poll` of it runs
    /// in the token's scope (see [`OperationToken::track`](crate::OperationToken::track)). The result is
    /// `'static` and `Send` when `future` is: spawn it.
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
    /// use std::sync::Arc;
    /// let l = Arc::new(Lifecycle::new(P));
    /// l.startup(Version::new(2, 2))?;
    /// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let task = l.owned_token()?.track(async { 1 + 1 });
    /// assert_eq!(rt.block_on(rt.spawn(task)).unwrap(), 2); // 'static: spawnable
    /// assert!(l.cleanup()?.is_final()); // the token ended with the task
    /// # Ok::<(), Error>(())
    /// ```
    pub fn track<F: Future>(self, future: F) -> impl Future<Output = F::Output> {
        TrackedOwned {
            token: self,
            future,
        }
    }
}

impl<P: Provider> Clone for OwnedToken<P> {
    fn clone(&self) -> OwnedToken<P> {
        self.lifecycle.raw.enter_again(self.index);
        OwnedToken {
            lifecycle: Arc::clone(&self.lifecycle),
            index: self.index,
            generation: self.generation,
        }
    }
}

impl<P: Provider> Drop for OwnedToken<P> {
    #[inline]
    fn drop(&mut self) {
        self.lifecycle.raw.leave(self.index);
    }
}

impl<P: Provider> fmt::Debug for OwnedToken<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedToken")
            .field("generation", &self.generation)
            .field("cancelled", &self.is_draining())
            .finish_non_exhaustive()
    }
}

pin_project_lite::pin_project! {
    /// The future of [`OwnedToken::track`].
    struct TrackedOwned<F, P: Provider> {
        token: OwnedToken<P>,
        #[pin]
        future: F,
    }
}

impl<F: Future, P: Provider> Future for TrackedOwned<F, P> {
    type Output = F::Output;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _scope = Scope::enter(&this.token.lifecycle.raw);
        this.future.poll(cx)
    }
}
