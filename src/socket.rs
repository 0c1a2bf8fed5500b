//! Sockets behind a trait, their linger settings, and the per-generation
//! registry that hands out generation-stamped handles (rules L8, S1–S3).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::sync::Mutex;
use crate::{BoxError, Error};

/// How a socket closes: Winsock's `linger` structure as an enum.
///
/// | linger | Winsock setting | close while Active |
/// |---|---|---|
/// | `Background` (default) | `l_onoff = 0` | returns at once; the lifecycle keeps the socket, flushing, until its data is out |
/// | `Abort` | `l_onoff ≠ 0`, `l_linger = 0` | returns at once; unsent data discarded (reported), connection reset |
/// | `Timeout(d)`, blocking | `l_onoff ≠ 0`, `l_linger = d` | blocks until flushed or `d` elapsed; the outcome says which |
/// | `Timeout(d)`, non-blocking | same | if it cannot finish now: [`Error::WouldBlock`], handle still valid |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
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
    #[must_use]
    pub const fn from_winsock(l_onoff: u16, l_linger: u16) -> Linger {
        match (l_onoff, l_linger) {
            (0, _) => Linger::Background,
            (_, 0) => Linger::Abort,
            (_, secs) => Linger::Timeout(Duration::from_secs(secs as u64)),
        }
    }
}

/// What one [`Socket::poll_flush`] step achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlushStatus {
    /// Every accepted byte is delivered; the socket can be released.
    Done,
    /// Some data is still unsent; call again later.
    Pending,
}

/// A provider's socket, as the lifecycle sees it.
///
/// The lifecycle calls these methods with no lock held except the socket's
/// own slot (so a method must not reach the *same* socket through the
/// lifecycle again). Panics are caught and reported.
///
/// Byte accounting: every byte the socket accepted ends up either delivered
/// (`unsent()` going down through `poll_flush`) or discarded (counted from
/// `unsent()` just before `abort`), and the drain report says which (S3, D1).
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

    /// Makes what flush progress it can **without blocking** and says whether
    /// everything is out. The drain calls this round-robin over many sockets
    /// from one thread, backing off briefly when no socket progressed, so a
    /// step must return quickly (a non-blocking `send`, not a wait).
    ///
    /// # Errors
    ///
    /// A failure ends the flush: the rest is discarded with [`abort`](Socket::abort)
    /// and reported.
    fn poll_flush(&mut self) -> Result<FlushStatus, BoxError>;

    /// Closes abortively: discards unsent data and resets the connection.
    ///
    /// # Errors
    ///
    /// Recorded in the report; the socket is released regardless.
    fn abort(&mut self) -> Result<(), BoxError>;

    /// Frees the socket's OS resources. Called exactly once, last: the
    /// lifecycle drops the socket right after, and neither `poll_flush` nor
    /// `abort` is ever called after it (rule S2). (It takes `&mut self`
    /// rather than `self: Box<Self>` so that sockets need not be boxed.)
    ///
    /// # Errors
    ///
    /// Recorded in the report.
    fn release(&mut self) -> Result<(), BoxError> {
        Ok(())
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
    fn poll_flush(&mut self) -> Result<FlushStatus, BoxError> {
        (**self).poll_flush()
    }
    fn abort(&mut self) -> Result<(), BoxError> {
        (**self).abort()
    }
    fn release(&mut self) -> Result<(), BoxError> {
        (**self).release()
    }
}

/// The socket type of a provider that has no sockets. It has no values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoSocket {}

impl Socket for NoSocket {
    fn unsent(&self) -> u64 {
        match *self {}
    }
    fn poll_flush(&mut self) -> Result<FlushStatus, BoxError> {
        match *self {}
    }
    fn abort(&mut self) -> Result<(), BoxError> {
        match *self {}
    }
}

/// A handle to a registered socket: the generation it belongs to plus a slot
/// and that slot's reuse sequence, so neither a handle of an earlier
/// generation nor one of a closed socket whose slot was reused can reach
/// another socket (rules L8, S1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketHandle {
    generation: u64,
    index: u32,
    seq: u32,
}

impl SocketHandle {
    /// The generation the socket was registered in.
    #[must_use]
    pub const fn generation(&self) -> u64 {
        self.generation
    }

    /// Packs the handle into 64 bits (for an FFI `SOCKET`): generation in the
    /// high 20 bits, slot sequence in the middle 20, slot index in the low 24.
    /// Handles of generations 2^20 apart, or of slots reused 2^20 times, share
    /// bits; [`SocketHandle::from_raw`] is only as exact as that. Because a
    /// raw handle must keep working, the lifecycle compares generations
    /// modulo 2^20 for handles of the first 2^20 generations: a handle kept
    /// across exactly a multiple of 2^20 restarts, whose slot and sequence
    /// also match a live socket, reaches it.
    #[must_use]
    pub const fn to_raw(&self) -> u64 {
        ((self.generation & 0xf_ffff) << 44)
            | (((self.seq & 0xf_ffff) as u64) << 24)
            | (self.index & 0xff_ffff) as u64
    }

    /// Unpacks [`to_raw`](SocketHandle::to_raw)'s form. The lifecycle checks
    /// the result like any other handle.
    #[must_use]
    pub const fn from_raw(raw: u64) -> SocketHandle {
        SocketHandle {
            generation: raw >> 44,
            seq: ((raw >> 24) & 0xf_ffff) as u32,
            index: (raw & 0xff_ffff) as u32,
        }
    }

    pub(crate) fn matches_generation(&self, generation: u64) -> bool {
        // Raw handles carry 20 bits of generation; compare what they carry.
        // A handle cannot say whether it came through `from_raw`, so any
        // handle of a generation below 2^20 also matches the generations
        // 2^20, 2·2^20, … later (documented on `to_raw`).
        self.generation == generation || self.generation == generation & 0xf_ffff
    }
}

impl fmt::Display for SocketHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "g{}#{}.{}", self.generation, self.index, self.seq)
    }
}

/// One socket's cell: the socket itself until it is closed.
pub(crate) type Cell<S> = Arc<Mutex<Option<S>>>;

/// Takes the socket out of a cell the caller owns. At teardown no guard is
/// live, so the registry's reference is the only one and no lock is needed.
pub(crate) fn take<S>(cell: Cell<S>) -> Option<S> {
    match Arc::try_unwrap(cell) {
        Ok(mutex) => mutex.into_inner(),
        Err(shared) => shared.lock().take(),
    }
}

/// A socket closed in the background that still holds unsent data.
pub(crate) struct Closing<S> {
    pub(crate) handle: SocketHandle,
    pub(crate) socket: S,
    pub(crate) linger: Linger,
}

struct Slot<S> {
    seq: u32,
    cell: Option<Cell<S>>,
}

/// The open sockets of one generation, plus the background-closing ones.
pub(crate) struct Registry<S> {
    slots: Vec<Slot<S>>,
    free: Vec<u32>,
    open: usize,
    pub(crate) closing: Vec<Closing<S>>,
    /// Background closes that ended badly while Active (failed or
    /// discarded), kept for the final drain report so nothing is lost silently.
    pub(crate) finished: Vec<crate::SocketReport>,
}

impl<S> Registry<S> {
    crate::sync::loom_const_fn! {
        pub(crate) fn new() -> Registry<S> {
            Registry {
                slots: Vec::new(),
                free: Vec::new(),
                open: 0,
                closing: Vec::new(),
                finished: Vec::new(),
            }
        }
    }

    /// The most sockets open at once (the raw handle's 24 index bits).
    pub(crate) const MAX_OPEN: usize = 1 << 24;

    /// Stores `socket`, returning its handle in `generation`; hands the
    /// socket back if the registry is full.
    pub(crate) fn insert(&mut self, generation: u64, socket: S) -> Result<SocketHandle, S> {
        let index = match self.free.pop() {
            Some(i) => i,
            None if self.slots.len() < Self::MAX_OPEN => {
                self.slots.push(Slot { seq: 0, cell: None });
                (self.slots.len() - 1) as u32
            }
            None => return Err(socket),
        };
        let slot = &mut self.slots[index as usize];
        slot.cell = Some(Arc::new(Mutex::new(Some(socket))));
        self.open += 1;
        Ok(SocketHandle {
            generation,
            index,
            seq: slot.seq,
        })
    }

    /// The cell of an open socket (generation already checked by the caller).
    pub(crate) fn get(&self, handle: SocketHandle) -> Result<Cell<S>, Error> {
        match self.slots.get(handle.index as usize) {
            Some(Slot {
                seq,
                cell: Some(cell),
            }) if *seq & 0xf_ffff == handle.seq & 0xf_ffff => Ok(Arc::clone(cell)),
            _ => Err(Error::NotSocket),
        }
    }

    /// Frees the slot of `handle` if it still holds `cell`; bumps the slot's
    /// sequence so the old handle can never alias the slot's next socket.
    pub(crate) fn remove(&mut self, handle: SocketHandle, cell: &Cell<S>) {
        if let Some(slot) = self.slots.get_mut(handle.index as usize)
            && slot.cell.as_ref().is_some_and(|c| Arc::ptr_eq(c, cell))
        {
            slot.cell = None;
            slot.seq = slot.seq.wrapping_add(1);
            self.free.push(handle.index);
            self.open -= 1;
        }
    }

    /// Open sockets.
    pub(crate) fn open(&self) -> usize {
        self.open
    }

    /// Takes every open socket out, with its handle, leaving the registry
    /// empty. The iterator owns the slots (no copy is made).
    pub(crate) fn drain_open(
        &mut self,
        generation: u64,
    ) -> impl ExactSizeIterator<Item = (SocketHandle, Cell<S>)> + use<S> {
        let open = std::mem::take(&mut self.open);
        self.free.clear();
        OpenSockets {
            slots: std::mem::take(&mut self.slots).into_iter().enumerate(),
            generation,
            left: open,
        }
    }
}

/// The open sockets taken out of a registry (see `Registry::drain_open`).
struct OpenSockets<S> {
    slots: std::iter::Enumerate<std::vec::IntoIter<Slot<S>>>,
    generation: u64,
    left: usize,
}

impl<S> Iterator for OpenSockets<S> {
    type Item = (SocketHandle, Cell<S>);

    fn next(&mut self) -> Option<Self::Item> {
        for (index, slot) in self.slots.by_ref() {
            if let Some(cell) = slot.cell {
                self.left -= 1;
                let handle = SocketHandle {
                    generation: self.generation,
                    index: index as u32,
                    seq: slot.seq,
                };
                return Some((handle, cell));
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<S> ExactSizeIterator for OpenSockets<S> {}

impl<S> fmt::Debug for Registry<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("open", &self.open)
            .field("closing", &self.closing.len())
            .finish()
    }
}
