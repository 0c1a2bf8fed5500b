//! The handle of a registered socket: a slot index and the slot's
//! sequence packed in 64 bits, so that handles never alias
//! ([L8](crate::contract#L8), [S7](crate::contract#S7)).

use std::fmt;
use std::hash::{Hash, Hasher};

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
