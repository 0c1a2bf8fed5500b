//! The lifecycle's sockets: registration, use, close (with its linger),
//! duplicated handles ([W3](crate::contract#W3)) and background progress.

use super::Lifecycle;
use crate::close::{self, Closed};
use crate::guard::OperationGuard;
use crate::report::SocketReport;
use crate::{Error, Provider, SocketHandle};

impl<P: Provider> Lifecycle<P> {
    // ------------------------------------------------------------------
    // sockets
    // ------------------------------------------------------------------

    /// Registers a socket for the current generation and returns its handle.
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
    /// assert_eq!(l.register_socket(S(0)).err(), Some(Error::NotInitialised(NotActive::NeverStarted)));
    /// l.startup(Version::new(2, 2))?;
    /// let h = l.register_socket(S(0))?;
    /// assert_eq!(l.open_sockets(), 1);
    /// assert!(l.with_socket(h, |_| ()).is_ok());
    /// # Ok::<(), Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotInitialised`] unless Active; [`Error::ProcessLimit`] when
    /// the registry's 2^24 slots are all open or retired. A refused socket
    /// is aborted and released at once (never leaked).
    pub fn register_socket(&self, socket: P::Socket) -> Result<SocketHandle, Error> {
        // Under a guard: the final cleanup takes the sockets out only once
        // every guard has left, so it sees this one.
        let (socket, error) = match OperationGuard::enter(&self.raw, &self.state) {
            Ok((_guard, w)) => match self.sockets.insert(w.generation(), socket) {
                Ok(handle) => return Ok(handle),
                Err(socket) => (socket, Error::ProcessLimit),
            },
            Err(e) => (socket, e),
        };
        close::refuse(socket);
        Err(error)
    }

    /// Runs `f` on the socket behind `handle`, inside an operation guard.
    ///
    /// `f` runs with only this socket's slot locked: it may use the lifecycle
    /// for anything except this same socket.
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
    /// l.startup(Version::new(2, 2))?;
    /// let h = l.register_socket(S(0))?;
    /// l.with_socket(h, |s| s.0 += 5)?; // queue 5 bytes
    /// assert_eq!(l.with_socket(h, |s| s.unsent())?, 5);
    /// l.close_socket(h)?;
    /// assert_eq!(l.with_socket(h, |_| ()), Err(Error::NotSocket)); // S1
    /// # Ok::<(), Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotInitialised`] unless Active (checked first,
    /// [L8](crate::contract#L8)); [`Error::NotSocket`] for a handle that was
    /// not issued for an open socket of this generation
    /// ([S1](crate::contract#S1), [S7](crate::contract#S7)).
    #[inline]
    pub fn with_socket<R>(
        &self,
        handle: SocketHandle,
        f: impl FnOnce(&mut P::Socket) -> R,
    ) -> Result<R, Error> {
        let (_guard, w) = OperationGuard::enter(&self.raw, &self.state)?;
        self.lookup(handle, w.generation(), f)
    }

    /// Runs `f` on the provider's state and the socket behind `handle`, in
    /// one operation guard and one lookup: the shape of a provider call
    /// that needs both (its per-generation pool or upcall table, and the
    /// socket).
    ///
    /// ```
    /// use provider_lifecycle::*;
    ///
    /// struct P;
    /// struct Sock(Vec<u8>);
    /// impl Socket for Sock {
    ///     fn unsent(&self) -> u64 {
    ///         0
    ///     }
    ///     fn poll_flush(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), BoxError>> {
    ///         std::task::Poll::Ready(Ok(()))
    ///     }
    ///     fn abort(&mut self) -> Result<(), BoxError> {
    ///         Ok(())
    ///     }
    /// }
    /// impl Provider for P {
    ///     type Socket = Sock;
    ///     type State = usize; // the MTU, say
    ///     fn versions(&self) -> VersionRange {
    ///         VersionRange::new(Version::new(2, 2), Version::new(2, 2))
    ///     }
    ///     fn initialize(&self, _: &mut Registrar) -> Result<usize, Error> {
    ///         Ok(4)
    ///     }
    /// }
    ///
    /// let l = Lifecycle::new(P);
    /// l.startup(Version::new(2, 2)).unwrap();
    /// let h = l.register_socket(Sock(Vec::new())).unwrap();
    /// let sent = l.operate(h, |mtu, sock| {
    ///     let n = (*mtu).min(6);
    ///     sock.0.extend_from_slice(&b"hello!"[..n]);
    ///     n
    /// });
    /// assert_eq!(sent, Ok(4));
    /// ```
    ///
    /// # Errors
    ///
    /// As [`with_socket`](Lifecycle::with_socket).
    #[inline]
    pub fn operate<R>(
        &self,
        handle: SocketHandle,
        f: impl FnOnce(&P::State, &mut P::Socket) -> R,
    ) -> Result<R, Error> {
        let (guard, w) = OperationGuard::enter(&self.raw, &self.state)?;
        let state = guard.state();
        self.lookup(handle, w.generation(), |socket| f(&state, socket))
    }

    /// [`with_socket`](Lifecycle::with_socket) under a guard the caller
    /// already holds: no second guard. For a provider whose every entry
    /// takes a guard first (to answer `NotInitialised` before it looks at
    /// anything, [L8](crate::contract#L8)) and then reaches a socket, as
    /// the Winsock shim does.
    ///
    /// ```
    /// use provider_lifecycle::*;
    ///
    /// struct P;
    /// struct Sock(Vec<u8>);
    /// impl Socket for Sock {
    ///     fn unsent(&self) -> u64 {
    ///         0
    ///     }
    ///     fn poll_flush(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), BoxError>> {
    ///         std::task::Poll::Ready(Ok(()))
    ///     }
    ///     fn abort(&mut self) -> Result<(), BoxError> {
    ///         Ok(())
    ///     }
    /// }
    /// impl Provider for P {
    ///     type Socket = Sock;
    ///     type State = ();
    ///     fn versions(&self) -> VersionRange {
    ///         VersionRange::new(Version::new(2, 2), Version::new(2, 2))
    ///     }
    ///     fn initialize(&self, _: &mut Registrar) -> Result<(), Error> {
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let l = Lifecycle::new(P);
    /// l.startup(Version::new(2, 2)).unwrap();
    /// let h = l.register_socket(Sock(Vec::new())).unwrap();
    /// let guard = l.enter().unwrap(); // the entry's own guard
    /// assert_eq!(l.with_socket_in(&guard, h, |s| s.0.len()), Ok(0));
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotSocket`] for a handle that was not issued for an open
    /// socket of the guard's generation, or a guard of another lifecycle.
    #[inline]
    pub fn with_socket_in<R>(
        &self,
        guard: &OperationGuard<'_, P::State>,
        handle: SocketHandle,
        f: impl FnOnce(&mut P::Socket) -> R,
    ) -> Result<R, Error> {
        if !guard.is_of(&self.raw) {
            return Err(Error::NotSocket);
        }
        self.lookup(handle, guard.generation(), f)
    }

    #[inline]
    fn lookup<R>(
        &self,
        handle: SocketHandle,
        generation: u64,
        f: impl FnOnce(&mut P::Socket) -> R,
    ) -> Result<R, Error> {
        if !handle.may_belong_to(generation) {
            return Err(Error::NotSocket);
        }
        self.sockets.with(handle, f)
    }

    /// Closes the socket behind `handle` (`WSPCloseSocket`) according to its
    /// linger setting (see [`Linger`](crate::Linger) for the table) and
    /// returns its report line: flushed, reset, timed out, failed, or
    /// [`SocketOutcome::Background`](crate::SocketOutcome::Background) when the lifecycle keeps flushing it.
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
    /// l.startup(Version::new(2, 2))?;
    /// let h = l.register_socket(S(0))?; // the default linger: Background
    /// assert_eq!(l.close_socket(h)?.outcome, SocketOutcome::Flushed); // nothing unsent
    /// let h = l.register_socket(S(3))?;
    /// assert_eq!(l.close_socket(h)?.outcome, SocketOutcome::Background); // flushing on
    /// assert_eq!(l.close_socket(h).err(), Some(Error::NotSocket)); // the handle is gone
    /// # Ok::<(), Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// - [`Error::NotInitialised`] unless Active (checked first);
    /// - [`Error::NotSocket`]: unknown, closed or stale handle
    ///   ([S1](crate::contract#S1));
    /// - [`Error::WouldBlock`]: a non-blocking socket with a `Timeout` linger
    ///   and unsent data; nothing was done and the handle stays valid.
    pub fn close_socket(&self, handle: SocketHandle) -> Result<SocketReport, Error> {
        let (_guard, w) = OperationGuard::enter(&self.raw, &self.state)?;
        if !handle.may_belong_to(w.generation()) {
            return Err(Error::NotSocket);
        }
        match close::close_socket(&self.raw, &self.sockets, handle)? {
            Closed::Done(report) => Ok(report),
            Closed::Background(ending) => {
                let line = close::background_line(handle, ending.linger, ending.aborted());
                let config = &self.raw.config;
                let (mode, spawner) = (config.background_flush(), config.spawner());
                self.background.lock().push(ending, mode, spawner);
                Ok(line)
            }
        }
    }

    /// Duplicates `handle` ([W3](crate::contract#W3), what
    /// `WSPDuplicateSocket` leads to): a new handle to the same socket.
    /// Every handle works alike; closing one closes only that handle
    /// ([`SocketOutcome::Retained`](crate::SocketOutcome::Retained)) until
    /// the last, whose close applies the socket's linger. The final cleanup
    /// closes the socket once and reports it once, under one of its handles.
    ///
    /// ```
    /// # use provider_lifecycle::*;
    /// # use std::task::{Context, Poll};
    /// # struct S;
    /// # impl Socket for S {
    /// #     fn unsent(&self) -> u64 { 0 }
    /// #     fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> { Poll::Ready(Ok(())) }
    /// #     fn abort(&mut self) -> Result<(), BoxError> { Ok(()) }
    /// # }
    /// # struct P;
    /// # impl Provider for P {
    /// #     type Socket = S;
    /// #     type State = ();
    /// #     fn versions(&self) -> VersionRange { VersionRange::new(Version::new(2, 2), Version::new(2, 2)) }
    /// #     fn initialize(&self, _: &mut Registrar) -> Result<(), Error> { Ok(()) }
    /// # }
    /// let l = Lifecycle::new(P);
    /// l.startup(Version::new(2, 2))?;
    /// let a = l.register_socket(S)?;
    /// let b = l.duplicate_socket(a)?;
    /// assert_eq!(l.close_socket(a)?.outcome, SocketOutcome::Retained);
    /// assert!(l.with_socket(b, |_| ()).is_ok(), "b still works");
    /// assert_eq!(l.close_socket(b)?.outcome, SocketOutcome::Flushed);
    /// # Ok::<(), Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotInitialised`] unless Active; [`Error::NotSocket`] for a
    /// handle that is not open; [`Error::ProcessLimit`] when no slot is left.
    pub fn duplicate_socket(&self, handle: SocketHandle) -> Result<SocketHandle, Error> {
        let (_guard, w) = OperationGuard::enter(&self.raw, &self.state)?;
        if !handle.may_belong_to(w.generation()) {
            return Err(Error::NotSocket);
        }
        self.sockets.duplicate(handle, w.generation())
    }

    /// Makes one pass of flush progress on the sockets closed in the
    /// background (`Linger::Background` with data left): polls those whose
    /// waker fired since the last pass, and releases those that are done.
    /// Returns how many are still flushing.
    ///
    /// With the default [`BackgroundFlush::Thread`](crate::BackgroundFlush)
    /// the lifecycle's own flusher thread does this and nobody needs to call
    /// it ([S4](crate::contract#S4)); with `BackgroundFlush::Manual` a
    /// provider calls it from its own I/O loop (when the sockets' wakers
    /// fire), and the final cleanup finishes whatever is left. Sockets whose
    /// background flush fails are aborted, and their lines appear in the
    /// final drain report.
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
    /// let config = Config::new().with_background_flush(BackgroundFlush::Manual);
    /// let l = Lifecycle::with_config(P, config);
    /// l.startup(Version::new(2, 2))?;
    /// let h = l.register_socket(S(4))?; // Linger::Background by default
    /// assert_eq!(l.close_socket(h)?.outcome, SocketOutcome::Background);
    /// assert_eq!(l.background_sockets(), 1);
    /// assert_eq!(l.poll_background()?, 0); // this socket flushes at its first poll
    /// assert_eq!(l.background_sockets(), 0);
    /// # Ok::<(), Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotInitialised`] unless Active.
    pub fn poll_background(&self) -> Result<usize, Error> {
        let (_guard, _) = OperationGuard::enter(&self.raw, &self.state)?;
        Ok(self.background.lock().poll())
    }

    /// Sockets currently open (registered and not closed).
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
    /// l.startup(Version::new(2, 2))?;
    /// let a = l.register_socket(S(0))?;
    /// let _b = l.duplicate_socket(a)?; // a second handle counts too
    /// assert_eq!(l.open_sockets(), 2);
    /// l.close_socket(a)?;
    /// assert_eq!(l.open_sockets(), 1);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn open_sockets(&self) -> usize {
        self.sockets.open()
    }

    /// Sockets closed in the background that are still flushing.
    pub fn background_sockets(&self) -> usize {
        self.background.lock().len()
    }
}
