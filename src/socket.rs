//! The [`Socket`] trait: a provider's socket as the lifecycle sees it
//! (rules [S1](crate::contract#S1)–[S3](crate::contract#S3)), and
//! [`NoSocket`] for providers without sockets.

use std::task::{Context, Poll};

use crate::BoxError;
use crate::linger::Linger;

/// A provider's socket, as the lifecycle sees it.
///
/// The lifecycle calls these methods with no lock held except the socket's
/// own slot (so a method must not reach the *same* socket through the
/// lifecycle again). Panics are caught and reported.
///
/// Byte accounting: every byte the socket accepted ends up either delivered
/// (`unsent()` going down through `poll_flush`) or discarded (counted from
/// `unsent()` just before `abort`), and the drain report says which
/// ([S3](crate::contract#S3), [D1](crate::contract#D1)).
///
/// # Flushing is event-driven ([S5](crate::contract#S5))
///
/// [`poll_flush`](Socket::poll_flush) has the shape of
/// `AsyncWrite::poll_flush`: it makes what progress it can without blocking
/// and returns `Poll::Ready(Ok(()))` once every accepted byte is delivered,
/// or `Poll::Pending` after arranging for `cx.waker()` to be woken when it
/// can progress again (the socket became writable, a timer fired). Only the
/// waker of the most recent call needs to be woken. The lifecycle polls a
/// socket again only after such a wake-up, or at a deadline, and sleeps
/// otherwise: a socket that returns `Pending` without arranging a wake-up is
/// not polled again until its linger or drain deadline ends it. A socket
/// that can progress at once but wants to yield calls
/// `cx.waker().wake_by_ref()` before returning `Pending`.
///
/// The crate has no reactor of its own: the waker is plain `std::task`.
/// `examples/common/tcp.rs` wakes it from a `mio` readiness loop.
///
/// ```
/// use std::task::{Context, Poll};
/// use provider_lifecycle::{BoxError, Linger, Socket};
///
/// /// A socket over an in-memory pipe that a peer drains.
/// struct Pipe {
///     queued: Vec<u8>,
///     linger: Linger,
/// }
///
/// impl Socket for Pipe {
///     fn linger(&self) -> Linger {
///         self.linger
///     }
///     fn unsent(&self) -> u64 {
///         self.queued.len() as u64
///     }
///     fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
///         // A real socket writes what the transport takes here and, on
///         // `WouldBlock`, registers `cx.waker()` with its reactor.
///         let n = self.queued.len().min(4096);
///         self.queued.drain(..n);
///         if self.queued.is_empty() {
///             Poll::Ready(Ok(()))
///         } else {
///             cx.waker().wake_by_ref(); // more can go at once: poll again soon
///             Poll::Pending
///         }
///     }
///     fn abort(&mut self) -> Result<(), BoxError> {
///         self.queued.clear(); // the lifecycle counted it as discarded
///         Ok(())
///     }
/// }
/// ```
///
/// # Migrating from the polled `poll_flush(&mut self) -> Result<FlushStatus, _>`
///
/// | before | now |
/// |---|---|
/// | `Ok(FlushStatus::Done)` | `Poll::Ready(Ok(()))` |
/// | `Ok(FlushStatus::Pending)` | register `cx.waker()` where the socket's readiness is watched, then `Poll::Pending` (or `cx.waker().wake_by_ref()` first, to be polled again at once) |
/// | `Err(e)` | `Poll::Ready(Err(e))` |
pub trait Socket: Send + 'static {
    /// The socket's linger setting (`SO_LINGER`); read when it is closed.
    fn linger(&self) -> Linger {
        Linger::Background
    }

    /// Whether the socket is in blocking mode (`FIONBIO` off).
    fn is_blocking(&self) -> bool {
        true
    }

    /// Bytes accepted from the application and not yet delivered.
    fn unsent(&self) -> u64;

    /// Makes what flush progress it can **without blocking**: `Ready(Ok(()))`
    /// once everything is delivered, or `Pending` after arranging a wake-up
    /// of `cx.waker()` (see the trait docs).
    ///
    /// # Errors
    ///
    /// `Ready(Err(e))` ends the flush: the rest is discarded with
    /// [`abort`](Socket::abort) and reported.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>>;

    /// Closes abortively: discards unsent data and resets the connection.
    ///
    /// # Errors
    ///
    /// Recorded in the report; the socket is released regardless.
    fn abort(&mut self) -> Result<(), BoxError>;

    /// Frees the socket's OS resources. Called exactly once, last: the
    /// lifecycle drops the socket right after, and neither `poll_flush` nor
    /// `abort` is ever called after it ([S2](crate::contract#S2)). (It takes
    /// `&mut self` rather than `self: Box<Self>` so that sockets need not be
    /// boxed.)
    ///
    /// # Errors
    ///
    /// Recorded in the report.
    fn release(&mut self) -> Result<(), BoxError> {
        Ok(())
    }

    /// Ends every pending overlapped operation on this socket with
    /// `WSA_OPERATION_ABORTED` (995, [`Error::OperationAborted`](crate::Error::OperationAborted)) and
    /// returns how many it ended ([W4](crate::contract#W4)). With `notify`
    /// their completion notifications are delivered (the socket is being
    /// closed by the application: `closesocket` semantics); without it they
    /// are not (the final cleanup: silent to the application,
    /// [L6.1](crate::contract#L6.1)). Called once per socket, before its
    /// linger is applied; the count appears in its
    /// [`SocketReport::aborted_operations`](crate::SocketReport::aborted_operations).
    /// A socket with no overlapped I/O keeps the default (none).
    fn abort_pending(&mut self, notify: bool) -> u32 {
        let _ = notify;
        0
    }
}

impl Socket for Box<dyn Socket> {
    fn linger(&self) -> Linger {
        (**self).linger()
    }
    fn is_blocking(&self) -> bool {
        (**self).is_blocking()
    }
    fn unsent(&self) -> u64 {
        (**self).unsent()
    }
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        (**self).poll_flush(cx)
    }
    fn abort(&mut self) -> Result<(), BoxError> {
        (**self).abort()
    }
    fn release(&mut self) -> Result<(), BoxError> {
        (**self).release()
    }
    fn abort_pending(&mut self, notify: bool) -> u32 {
        (**self).abort_pending(notify)
    }
}

/// The socket type of a provider that has no sockets. It has no values.
///
/// ```
/// use provider_lifecycle::*;
/// struct Counter; // a provider with no sockets at all
/// impl Provider for Counter {
///     type Socket = NoSocket;
///     type State = ();
///     fn versions(&self) -> VersionRange { VersionRange::new(Version::new(2, 2), Version::new(2, 2)) }
///     fn initialize(&self, _: &mut Registrar) -> Result<(), Error> { Ok(()) }
/// }
/// # let _ = Lifecycle::new(Counter);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoSocket {}

impl Socket for NoSocket {
    fn unsent(&self) -> u64 {
        match *self {}
    }
    fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        match *self {}
    }
    fn abort(&mut self) -> Result<(), BoxError> {
        match *self {}
    }
}
