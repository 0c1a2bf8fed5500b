//! [`Session`]: a startup whose cleanup runs on drop.

use std::fmt;

use crate::lifecycle::{Cleanup, Lifecycle, Started};
use crate::{Error, NotActive, Provider, Version};

impl<P: Provider> Lifecycle<P> {
    /// Starts a [`Session`]: a startup whose cleanup runs when the session is
    /// dropped or [ended](Session::end). Sessions and hand-paired startups
    /// share one count.
    ///
    /// ```
    /// # use provider_lifecycle::*;
    /// # use std::task::{Context, Poll};
    /// # struct S(u64);
    /// # impl Socket for S {
    /// #     fn unsent(&self) -> u64 { self.0 }
    /// #     fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> { self.0 = 0; Poll::Ready(Ok(())) }
    /// #     fn abort(&mut self) -> Result<(), BoxError> { self.0 = 0; Ok(()) }
    /// # }
    /// # struct P;
    /// # impl Provider for P {
    /// #     type Socket = S;
    /// #     type State = ();
    /// #     fn versions(&self) -> VersionRange { VersionRange::new(Version::new(2, 2), Version::new(2, 2)) }
    /// #     fn initialize(&self, _: &mut Registrar) -> Result<(), Error> { Ok(()) }
    /// # }
    /// let l = Lifecycle::new(P);
    /// {
    ///     let _s = l.session(Version::new(2, 2))?; // a startup ...
    ///     assert_eq!(l.count(), 1);
    /// } // ... and its cleanup, here
    /// assert_eq!(l.state(), State::Released);
    /// # Ok::<(), Error>(())
    /// ```
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
}

/// An RAII startup: the matching cleanup runs when it is dropped or
/// [ended](Session::end). Created by [`Lifecycle::session`].
///
/// If the session's cleanup is the final one, dropping it runs the whole
/// drain on the dropping thread; use [`end`](Session::end) to get the report.
/// Dropped on a thread that holds an [`OperationGuard`](crate::OperationGuard)
/// of the same lifecycle, a final cleanup cannot run
/// ([L11](crate::contract#L11)) and a drop cannot report it: the count then
/// stays. End such sessions with `end`, which says `InProgress` and can be
/// retried after the guard is gone.
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
///     fn initialize(&self, _: &mut Registrar) -> Result<(), Error> { Ok(()) }
/// }
/// let l = Lifecycle::new(P);
/// {
///     let outer = l.session(Version::new(2, 2))?;
///     let _inner = l.session(Version::new(2, 2))?;
///     assert_eq!(l.count(), 2);
///     assert_eq!(outer.started().generation, 0);
/// } // both cleanups ran here, the last one drained
/// assert_eq!(l.state(), State::Released);
///
/// let mut s = l.session(Version::new(2, 2))?;
/// let report = s.end()?.into_report().expect("the final cleanup");
/// assert!(report.is_clean());
/// # Ok::<(), Error>(())
/// ```
#[must_use = "dropping a session at once runs its cleanup at once"]
pub struct Session<'a, P: Provider> {
    lifecycle: &'a Lifecycle<P>,
    started: Started,
    ended: bool,
}

impl<'a, P: Provider> Session<'a, P> {
    /// What the session's startup negotiated.
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
    /// let s = l.session(Version::new(2, 2))?;
    /// assert!(s.started().initialized);
    /// assert_eq!(s.started().negotiated.version, Version::new(2, 2));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn started(&self) -> &Started {
        &self.started
    }

    /// The lifecycle this session counts in.
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
    /// let s = l.session(Version::new(2, 2))?;
    /// assert_eq!(s.lifecycle().count(), 1);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn lifecycle(&self) -> &'a Lifecycle<P> {
        self.lifecycle
    }

    /// Runs the session's cleanup now and returns its result. After an `Ok`
    /// the session holds no count and its drop does nothing; after an `Err`
    /// (`InProgress` from inside a guard, [L11](crate::contract#L11)) nothing changed and it can be
    /// retried.
    ///
    /// ```
    /// # use provider_lifecycle::*;
    /// # use std::task::{Context, Poll};
    /// # struct S(u64);
    /// # impl Socket for S {
    /// #     fn unsent(&self) -> u64 { self.0 }
    /// #     fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> { self.0 = 0; Poll::Ready(Ok(())) }
    /// #     fn abort(&mut self) -> Result<(), BoxError> { self.0 = 0; Ok(()) }
    /// # }
    /// # struct P;
    /// # impl Provider for P {
    /// #     type Socket = S;
    /// #     type State = ();
    /// #     fn versions(&self) -> VersionRange { VersionRange::new(Version::new(2, 2), Version::new(2, 2)) }
    /// #     fn initialize(&self, _: &mut Registrar) -> Result<(), Error> { Ok(()) }
    /// # }
    /// let l = Lifecycle::new(P);
    /// let mut s = l.session(Version::new(2, 2))?;
    /// let cleanup = s.end()?; // the cleanup now, with its result
    /// assert!(cleanup.is_final());
    /// drop(s); // nothing more to do
    /// assert_eq!(l.count(), 0);
    /// # Ok::<(), Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Lifecycle::cleanup`]; [`Error::NotInitialised`] if this session
    /// already ended.
    pub fn end(&mut self) -> Result<Cleanup, Error> {
        if self.ended {
            return Err(Error::NotInitialised(NotActive::Unpaired));
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
