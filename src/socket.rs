//! Sockets behind a trait, their linger settings, and the registry that
//! hands out handles that never alias (rules [L8](crate::contract#L8), [S1](crate::contract#S1)–[S3](crate::contract#S3), [S7](crate::contract#S7)).

use std::fmt;
use std::hash::{Hash, Hasher};
use std::task::{Context, Poll};
use std::time::Duration;

use crate::BoxError;

/// How a socket closes: Winsock's `linger` structure as an enum.
/// These are the three closes Winsock's `linger` can ask for, so the enum
/// never grows.
///
/// | linger | Winsock setting | close while Active |
/// |---|---|---|
/// | `Background` (default) | `l_onoff = 0` | returns at once; the lifecycle keeps the socket, flushing, until its data is out |
/// | `Abort` | `l_onoff ≠ 0`, `l_linger = 0` | returns at once; unsent data discarded (reported), connection reset |
/// | `Timeout(d)`, blocking | `l_onoff ≠ 0`, `l_linger = d` | blocks until flushed or `d` elapsed; the outcome says which |
/// | `Timeout(d)`, non-blocking | same | if it cannot finish now: [`Error::WouldBlock`](crate::Error::WouldBlock), handle still valid |
///
/// ```
/// use provider_lifecycle::Linger;
/// use std::time::Duration;
/// // SO_LINGER as Winsock sets it: (l_onoff, l_linger in seconds).
/// assert_eq!(Linger::from_winsock(0, 0), Linger::Background);
/// assert_eq!(Linger::from_winsock(1, 0), Linger::Abort);
/// assert_eq!(Linger::from_winsock(1, 5), Linger::Timeout(Duration::from_secs(5)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum Linger {
    /// Graceful close in the background (`l_onoff = 0`).
    #[default]
    Background,
    /// Abortive close: discard unsent data, reset (`l_linger = 0`).
    Abort,
    /// Graceful close bounded by a timeout (`l_linger = d`).
    Timeout(Duration),
}

impl Linger {
    /// The setting for a Winsock `linger` structure (`l_linger` in seconds).
    ///
    /// ```
    /// use provider_lifecycle::Linger;
    /// use std::time::Duration;
    /// assert_eq!(Linger::from_winsock(0, 0), Linger::Background); // SO_LINGER off
    /// assert_eq!(Linger::from_winsock(1, 0), Linger::Abort); // on, 0 s: reset
    /// assert_eq!(Linger::from_winsock(1, 5), Linger::Timeout(Duration::from_secs(5)));
    /// ```
    #[must_use]
    pub const fn from_winsock(l_onoff: u16, l_linger: u16) -> Linger {
        match (l_onoff, l_linger) {
            (0, _) => Linger::Background,
            (_, 0) => Linger::Abort,
            (_, secs) => Linger::Timeout(Duration::from_secs(secs as u64)),
        }
    }

    /// The Winsock `linger` structure for this setting, `(l_onoff,
    /// l_linger)`: the inverse of [`from_winsock`](Linger::from_winsock), a
    /// timeout rounded up to whole seconds and capped at 65,535.
    ///
    /// ```
    /// use provider_lifecycle::Linger;
    /// use std::time::Duration;
    /// assert_eq!(Linger::Background.to_winsock(), (0, 0));
    /// assert_eq!(Linger::Abort.to_winsock(), (1, 0));
    /// assert_eq!(Linger::Timeout(Duration::from_secs(5)).to_winsock(), (1, 5));
    /// assert_eq!(Linger::from_winsock(1, 7).to_winsock(), (1, 7));
    /// ```
    #[must_use]
    pub const fn to_winsock(self) -> (u16, u16) {
        match self {
            Linger::Background => (0, 0),
            Linger::Abort => (1, 0),
            Linger::Timeout(d) => {
                let secs = d.as_secs() + (d.subsec_nanos() > 0) as u64;
                let secs = if secs > u16::MAX as u64 {
                    u16::MAX
                } else {
                    secs as u16
                };
                // A sub-second timeout still lingers: at least 1 s.
                (1, if secs == 0 { 1 } else { secs })
            }
        }
    }
}

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

/// A handle to a registered socket ([L8](crate::contract#L8),
/// [S7](crate::contract#S7)).
///
/// A handle is a slot index and that slot's *sequence*, which only ever
/// grows, across generations too: every socket the lifecycle ever registers
/// gets a pair no other socket had or will have, so a handle — typed, or
/// rebuilt from its raw form — reaches the socket it was issued for or
/// nothing ([`Error::NotSocket`](crate::Error::NotSocket)). A slot whose sequence would wrap is
/// retired instead of reused; the registry then grows a new slot.
///
/// A typed handle also carries its generation, so a stale one is refused
/// without looking at the registry. The raw 64-bit form (an FFI `SOCKET`)
/// has no room for it and does not need it: equality, ordering and hashing
/// look only at the raw form, so `from_raw(h.to_raw()) == h`.
///
/// ```
/// use provider_lifecycle::SocketHandle;
/// let h = SocketHandle::from_raw(0x0000_0100_0000_0005);
/// assert_eq!(h.to_raw(), 0x0000_0100_0000_0005);
/// assert_eq!(h.generation(), None); // the raw form does not carry it
/// ```
#[derive(Debug, Clone, Copy)]
pub struct SocketHandle {
    raw: u64,
    /// The generation, or `UNKNOWN_GENERATION` for a handle from `from_raw`.
    generation: u64,
}

pub(crate) const INDEX_BITS: u32 = 24;
const INDEX_MASK: u64 = (1 << INDEX_BITS) - 1;
const UNKNOWN_GENERATION: u64 = u64::MAX;
/// The first sequence of a slot: raw handles are never 0.
pub(crate) const FIRST_SEQ: u64 = 1;
/// The last sequence a slot issues: raw handles are never `!0`
/// (`INVALID_SOCKET`). Past it the slot is retired.
pub(crate) const LAST_SEQ: u64 = (1 << (64 - INDEX_BITS)) - 2;

impl SocketHandle {
    pub(crate) const fn new(index: usize, seq: u64, generation: u64) -> SocketHandle {
        SocketHandle {
            raw: (seq << INDEX_BITS) | index as u64,
            generation,
        }
    }

    /// The generation the socket was registered in; `None` for a handle
    /// rebuilt with [`from_raw`](SocketHandle::from_raw).
    #[must_use]
    pub const fn generation(&self) -> Option<u64> {
        if self.generation == UNKNOWN_GENERATION {
            None
        } else {
            Some(self.generation)
        }
    }

    /// The handle as 64 bits (for an FFI `SOCKET`): the slot's sequence in
    /// the high 40 bits, the slot index in the low 24. Never 0 and never
    /// `!0` for a handle the lifecycle issued.
    ///
    /// ```
    /// # use provider_lifecycle::*;
    /// # struct S;
    /// # impl Socket for S {
    /// #     fn unsent(&self) -> u64 { 0 }
    /// #     fn poll_flush(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), BoxError>> { std::task::Poll::Ready(Ok(())) }
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
    /// let h = l.register_socket(S)?;
    /// let raw = h.to_raw(); // what a `SOCKET` carries across the FFI boundary
    /// assert!(raw != 0 && raw != !0);
    /// assert_eq!(SocketHandle::from_raw(raw), h);
    /// # Ok::<(), Error>(())
    /// ```
    #[must_use]
    pub const fn to_raw(&self) -> u64 {
        self.raw
    }

    /// Rebuilds a handle from [`to_raw`](SocketHandle::to_raw)'s form. Any
    /// `u64` is accepted; the lifecycle checks it like any other handle, and
    /// it reaches a socket only if that socket was issued this exact value.
    ///
    /// ```
    /// use provider_lifecycle::SocketHandle;
    /// let h = SocketHandle::from_raw(42);
    /// assert_eq!(h.to_raw(), 42);
    /// assert_eq!(h.generation(), None); // checked when used, like any handle
    /// ```
    #[must_use]
    pub const fn from_raw(raw: u64) -> SocketHandle {
        SocketHandle {
            raw,
            generation: UNKNOWN_GENERATION,
        }
    }

    pub(crate) fn index(&self) -> usize {
        (self.raw & INDEX_MASK) as usize
    }

    pub(crate) fn seq(&self) -> u64 {
        self.raw >> INDEX_BITS
    }

    /// Whether this handle may belong to `generation` (a raw handle may).
    pub(crate) fn may_belong_to(&self, generation: u64) -> bool {
        self.generation == UNKNOWN_GENERATION || self.generation == generation
    }
}

impl PartialEq for SocketHandle {
    fn eq(&self, other: &SocketHandle) -> bool {
        self.raw == other.raw
    }
}

impl Eq for SocketHandle {}

impl Hash for SocketHandle {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.raw.hash(state);
    }
}

impl PartialOrd for SocketHandle {
    fn partial_cmp(&self, other: &SocketHandle) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SocketHandle {
    fn cmp(&self, other: &SocketHandle) -> std::cmp::Ordering {
        self.raw.cmp(&other.raw)
    }
}

impl fmt::Display for SocketHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.generation() {
            Some(g) => write!(f, "g{g}#{}.{}", self.index(), self.seq()),
            None => write!(f, "#{}.{}", self.index(), self.seq()),
        }
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for SocketHandle {
    fn serialize<Ser: serde::Serializer>(&self, s: Ser) -> Result<Ser::Ok, Ser::Error> {
        s.serialize_u64(self.raw)
    }
}
