//! The open sockets of a lifecycle: one slot per handle, each with its own
//! lock, reached without any lock shared between two sockets.
//!
//! - **Lookup** ([`Registry::with`]): the slot's page (published once, read
//!   with one load), then the slot's own mutex, held while the caller's
//!   closure runs on the socket. Two threads on two sockets share no lock
//!   and write no common cache line (each slot is on its own 64-byte line).
//! - **Allocation** (register, duplicate) and **release** (close, the
//!   final cleanup): a lock-free stack of vacant slots (a tagged head, so a
//!   pop racing a pop and a push cannot take a slot twice), then fresh
//!   slots in index order. These, and the open-socket count, are the only
//!   words two sockets share, written once per open and once per close.
//! - **Sequences** ([S7](crate::contract#S7)): a slot's sequence moves on
//!   at every vacate and outlives generations, so a handle never reaches a
//!   socket it was not issued for; a slot whose sequences are used up is
//!   retired (never pushed back).
//! - **Duplicates** ([W3](crate::contract#W3)): a socket with one handle
//!   lives in its slot; a second handle moves it into a shared cell that
//!   every handle's slot points to, with the count of its handles. Locks
//!   are always taken slot first, then cell.
//!
//! Slots are never freed while the registry lives: a reader that lost a
//! race with a close finds its slot vacant or its sequence moved on.

use std::sync::OnceLock;
use triomphe::Arc;

use crate::Error;
use crate::handle::{FIRST_SEQ, INDEX_BITS, LAST_SEQ, SocketHandle};
use crate::sync::{AtomicU64, AtomicUsize, CachePadded, Mutex, MutexGuard, Ordering};

/// A socket with more than one handle ([W3](crate::contract#W3)).
pub(crate) struct Shared<S> {
    socket: Option<S>,
    handles: usize,
}

type Cell<S> = Arc<Mutex<Shared<S>>>;

/// What a slot holds.
enum Held<S> {
    Vacant,
    /// A socket with this one handle.
    Own(S),
    /// One handle of a socket with several.
    Shared(Cell<S>),
}

struct Slot<S> {
    held: Mutex<Held<S>>,
    /// The sequence of the occupant (or of the next one if vacant) shifted
    /// left by one, the low bit set while occupied. Written only with
    /// `held` locked; read without it only by the final cleanup (for the
    /// line of a slot an abandoned operation holds locked).
    mark: AtomicU64,
    /// While on the vacant stack: the index + 1 of the slot below (0: none).
    below: AtomicUsize,
}

impl<S> Slot<S> {
    fn new() -> Slot<S> {
        Slot {
            held: Mutex::new(Held::Vacant),
            mark: AtomicU64::new(FIRST_SEQ << 1),
            below: AtomicUsize::new(0),
        }
    }

    fn seq(&self) -> u64 {
        self.mark.load(Ordering::Relaxed) >> 1
    }

    fn occupied(&self) -> bool {
        self.mark.load(Ordering::Relaxed) & 1 == 1
    }

    /// Whether this (locked) slot holds the socket issued `handle`.
    fn issued(&self, handle: SocketHandle) -> bool {
        // [P9] Relaxed: read under the slot's lock, which orders it.
        self.mark.load(Ordering::Relaxed) == (handle.seq() << 1 | 1)
    }

    /// Marks the (locked) slot occupied; its sequence.
    fn occupy(&self) -> u64 {
        let seq = self.seq();
        self.mark.store(seq << 1 | 1, Ordering::Relaxed);
        seq
    }

    /// Marks the (locked, emptied) slot vacant and moves its sequence on;
    /// `false` if it is now retired (its sequences are used up).
    fn vacate(&self) -> bool {
        let seq = self.seq() + 1;
        self.mark.store(seq << 1, Ordering::Relaxed);
        seq <= LAST_SEQ
    }
}

/// Pages double from `FIRST_PAGE` slots up to `FLAT_PAGE`, then stay at
/// `FLAT_PAGE`: a small registry stays small, and no single page of a large
/// one is a giant allocation.
const FIRST_PAGE_BITS: u32 = 6;
const FLAT_PAGE_BITS: u32 = 18;
const DOUBLING_PAGES: usize = (FLAT_PAGE_BITS - FIRST_PAGE_BITS + 1) as usize;
/// Slots in the doubling pages: 64 + 128 + ... + 262,144.
const DOUBLING_SLOTS: usize = (1 << FIRST_PAGE_BITS) * ((1 << DOUBLING_PAGES) - 1);
const PAGES: usize =
    DOUBLING_PAGES + (Registry::<()>::MAX_SLOTS - DOUBLING_SLOTS).div_ceil(1 << FLAT_PAGE_BITS);

/// The page of slot `index` and its place in the page.
#[inline]
fn locate(index: usize) -> (usize, usize) {
    if index < DOUBLING_SLOTS {
        let i = index + (1 << FIRST_PAGE_BITS);
        let page = (usize::BITS - 1 - i.leading_zeros() - FIRST_PAGE_BITS) as usize;
        (page, i - ((1 << FIRST_PAGE_BITS) << page))
    } else {
        let i = index - DOUBLING_SLOTS;
        (
            DOUBLING_PAGES + (i >> FLAT_PAGE_BITS),
            i & ((1 << FLAT_PAGE_BITS) - 1),
        )
    }
}

fn page_len(page: usize) -> usize {
    (1 << FIRST_PAGE_BITS) << page.min(DOUBLING_PAGES - 1)
}

/// A slot on its own 64-byte cache line: two sockets' locks never share
/// a line. (Not `CachePadded`'s 128 bytes, which also keeps the adjacent
/// line of x86's pair prefetcher apart: it would double the memory the
/// final cleanup walks, and the bench of two threads on adjacent slots,
/// `benches/contention.rs`'s `socket` group, shows no pair effect.)
#[repr(align(64))]
struct Line<S>(Slot<S>);

impl<S> std::ops::Deref for Line<S> {
    type Target = Slot<S>;

    fn deref(&self) -> &Slot<S> {
        &self.0
    }
}

type Page<S> = Box<[Line<S>]>;

/// The open sockets. Slots and their sequences outlive generations (see
/// [`SocketHandle`]).
pub(crate) struct Registry<S> {
    /// Each page is allocated once, by the first allocation that needs it,
    /// and published through its `OnceLock` (a lookup reads it with one
    /// acquire load).
    pages: [OnceLock<Page<S>>; PAGES],
    /// Slots handed out in index order so far.
    fresh: AtomicUsize,
    /// The vacant stack: the top's index + 1 in the low 32 bits (0: empty),
    /// a count of pushes and pops in the high 32 (so a pop that read the
    /// top before a pop and a push of the same slot fails its CAS).
    vacant: CachePadded<AtomicU64>,
    open: CachePadded<AtomicUsize>,
}

const TOP: u64 = 0xffff_ffff;

impl<S> Registry<S> {
    crate::sync::loom_const_fn! {
        pub(crate) fn new() -> Registry<S> {
            Registry {
                pages: [const { OnceLock::new() }; PAGES],
                fresh: AtomicUsize::new(0),
                vacant: CachePadded::new(AtomicU64::new(0)),
                open: CachePadded::new(AtomicUsize::new(0)),
            }
        }
    }

    /// The most slots (open sockets plus retired slots): the raw handle's 24
    /// index bits.
    pub(crate) const MAX_SLOTS: usize = 1 << INDEX_BITS;

    #[inline]
    fn slot(&self, index: usize) -> Option<&Slot<S>> {
        let (page, at) = locate(index);
        self.pages.get(page)?.get().map(|p| &*p[at])
    }

    /// A vacant, unretired slot: the top of the vacant stack, else a fresh
    /// one (its page allocated if this is its first slot).
    fn allocate(&self) -> Option<(usize, &Slot<S>)> {
        let index = match self.pop() {
            Some(i) => i,
            None => self
                .fresh
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    (n < Self::MAX_SLOTS).then_some(n + 1)
                })
                .ok()?,
        };
        let (page, at) = locate(index);
        let page = self.pages[page]
            .get_or_init(|| (0..page_len(page)).map(|_| Line(Slot::new())).collect());
        Some((index, &page[at]))
    }

    fn pop(&self) -> Option<usize> {
        // [P8] Acquire: the popped slot's `below` (and its vacate) happened
        // before the push that put it on top.
        let mut head = self.vacant.load(Ordering::Acquire);
        loop {
            let top = (head & TOP) as usize;
            if top == 0 {
                return None;
            }
            let below = self.slot(top - 1)?.below.load(Ordering::Relaxed) as u64;
            let next = (head & !TOP).wrapping_add(1 << 32) | below;
            match self.vacant.compare_exchange_weak(
                head,
                next,
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(top - 1),
                Err(now) => head = now,
            }
        }
    }

    /// Pushes the chain `first` → ... → `last` (linked through `below`).
    fn push(&self, first: usize, last: usize) {
        let last = self.slot(last).expect("a vacated slot exists");
        let mut head = self.vacant.load(Ordering::Relaxed);
        loop {
            last.below.store((head & TOP) as usize, Ordering::Relaxed);
            let next = (head & !TOP).wrapping_add(1 << 32) | (first as u64 + 1);
            // [P8] Release: publishes the chain's links and vacates to the pop
            // that takes them.
            match self.vacant.compare_exchange_weak(
                head,
                next,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(now) => head = now,
            }
        }
    }

    /// Stores `socket`, returning its handle in `generation`; hands the
    /// socket back if no slot is left.
    pub(crate) fn insert(&self, generation: u64, socket: S) -> Result<SocketHandle, S> {
        let Some((index, slot)) = self.allocate() else {
            return Err(socket);
        };
        let mut held = slot.held.lock();
        *held = Held::Own(socket);
        let seq = slot.occupy();
        drop(held);
        self.open.fetch_add(1, Ordering::Relaxed);
        Ok(SocketHandle::new(index, seq, generation))
    }

    /// Locks the slot of `handle` if it holds the socket issued `handle`.
    // Always inlined: every provider call takes this path, in generic code
    // the provider's crate instantiates, where the inliner may leave it out
    // of line; out of line it returns the slot and its guard through memory.
    #[inline(always)]
    fn lock(&self, handle: SocketHandle) -> Result<(&Slot<S>, MutexGuard<'_, Held<S>>), Error> {
        let slot = self.slot(handle.index()).ok_or(Error::NotSocket)?;
        let held = slot.held.lock();
        if slot.issued(handle) {
            Ok((slot, held))
        } else {
            Err(Error::NotSocket)
        }
    }

    /// Runs `f` on the socket issued `handle`, with its slot (and, for a
    /// socket with several handles, its cell) locked.
    #[inline]
    pub(crate) fn with<R>(
        &self,
        handle: SocketHandle,
        f: impl FnOnce(&mut S) -> R,
    ) -> Result<R, Error> {
        let (_slot, mut held) = self.lock(handle)?;
        match &mut *held {
            Held::Own(socket) => Ok(f(socket)),
            Held::Shared(cell) => {
                let mut shared = cell.lock();
                let socket = shared.socket.as_mut().ok_or(Error::NotSocket)?;
                Ok(f(socket))
            }
            Held::Vacant => Err(Error::NotSocket),
        }
    }

    /// A second handle to the socket behind `handle` ([W3](crate::contract#W3)).
    pub(crate) fn duplicate(
        &self,
        handle: SocketHandle,
        generation: u64,
    ) -> Result<SocketHandle, Error> {
        let (_slot, mut held) = self.lock(handle)?;
        let (index, new) = self.allocate().ok_or(Error::ProcessLimit)?;
        let cell = match std::mem::replace(&mut *held, Held::Vacant) {
            Held::Own(socket) => Arc::new(Mutex::new(Shared {
                socket: Some(socket),
                handles: 2,
            })),
            Held::Shared(cell) => {
                cell.lock().handles += 1;
                cell
            }
            Held::Vacant => unreachable!("an issued slot is occupied"),
        };
        *held = Held::Shared(Arc::clone(&cell));
        // Slot first, then the new slot: the new one is vacant, so whoever
        // else holds its lock (a lookup with a stale handle) takes no other.
        let mut target = new.held.lock();
        *target = Held::Shared(cell);
        let seq = new.occupy();
        drop(target);
        self.open.fetch_add(1, Ordering::Relaxed);
        Ok(SocketHandle::new(index, seq, generation))
    }

    /// Closes `handle` in one pass: `decide` sees the socket (and whether
    /// this is its last handle) with its slot locked, and answers what
    /// becomes of the handle ([`Closing`]).
    pub(crate) fn close<R>(
        &self,
        handle: SocketHandle,
        decide: impl FnOnce(&mut S, bool) -> Closing<R>,
    ) -> Result<Detached<S, R>, Error> {
        let (slot, mut held) = self.lock(handle)?;
        let outcome = match &mut *held {
            Held::Own(socket) => match decide(socket, true) {
                Closing::Keep => return Ok(Detached::Kept),
                Closing::Close(r) => match std::mem::replace(&mut *held, Held::Vacant) {
                    Held::Own(socket) => Detached::Last(socket, r),
                    _ => unreachable!(),
                },
            },
            Held::Shared(cell) => {
                let mut shared = cell.lock();
                let last = shared.handles == 1;
                let socket = shared.socket.as_mut().ok_or(Error::NotSocket)?;
                match decide(socket, last) {
                    Closing::Keep => return Ok(Detached::Kept),
                    Closing::Close(r) if last => {
                        let socket = shared.socket.take().expect("checked above");
                        drop(shared);
                        Detached::Last(socket, r)
                    }
                    Closing::Close(r) => {
                        shared.handles -= 1;
                        Detached::Unlinked(r)
                    }
                }
            }
            Held::Vacant => return Err(Error::NotSocket),
        };
        // The cell (if any) goes with the slot's lock held: a duplicate of
        // another handle cannot see this one half gone.
        *held = Held::Vacant;
        let reusable = slot.vacate();
        drop(held);
        self.open.fetch_sub(1, Ordering::Relaxed);
        if reusable {
            self.push(handle.index(), handle.index());
        }
        Ok(outcome)
    }

    /// Open sockets (handles).
    pub(crate) fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Takes the open sockets out for the final cleanup: each slot is
    /// locked in turn (with `abandoning`, only tried: a slot an abandoned
    /// operation holds is left as it is, [L16](crate::contract#L16)), its
    /// socket taken and the slot vacated. Called when no guard can be
    /// live (or the live ones were abandoned): nothing else registers.
    pub(crate) fn take_open(&self, generation: u64, abandoning: bool) -> Drained<'_, S> {
        Drained {
            registry: self,
            next: 0,
            end: self.fresh.load(Ordering::Relaxed),
            generation,
            abandoning,
            page: &[],
            base: 0,
            chain: None,
            closed: 0,
        }
    }
}

/// What a close decided for its handle.
pub(crate) enum Closing<R> {
    /// Leave the handle open (nothing changed).
    Keep,
    /// Close the handle.
    Close(R),
}

/// What [`Registry::close`] did with the handle.
pub(crate) enum Detached<S, R> {
    /// The handle stays open, as decided.
    Kept,
    /// The handle is closed; its socket stays open under its other handles.
    Unlinked(R),
    /// The handle is closed and was its socket's last: the socket.
    Last(S, R),
}

/// What the final cleanup found in one slot.
pub(crate) enum Taken<S> {
    /// The socket.
    Socket(S),
    /// An abandoned operation holds the slot: left as it is.
    Abandoned,
}

/// The slots as the final cleanup takes them out: yields each open
/// socket with its handle, vacating its slot. Vacated slots go back on the
/// vacant stack in one push when it is dropped (unwinding included, the
/// rest vacated too), so that no sequence is ever lost
/// ([S7](crate::contract#S7)).
pub(crate) struct Drained<'a, S> {
    registry: &'a Registry<S>,
    next: usize,
    end: usize,
    generation: u64,
    abandoning: bool,
    /// The page being walked, and the index of its first slot.
    page: &'a [Line<S>],
    base: usize,
    /// The vacated slots so far, linked through `below`: (first, last).
    chain: Option<(usize, usize)>,
    /// Handles closed or abandoned so far (for the open count).
    closed: usize,
}

impl<S> Drained<'_, S> {
    fn vacated(&mut self, index: usize, slot: &Slot<S>) {
        self.closed += 1;
        if !slot.vacate() {
            return;
        }
        self.chain = Some(match self.chain {
            None => (index, index),
            Some((first, last)) => {
                slot.below.store(first + 1, Ordering::Relaxed);
                (index, last)
            }
        });
    }
}

impl<S> Iterator for Drained<'_, S> {
    type Item = (SocketHandle, Taken<S>);

    fn next(&mut self) -> Option<Self::Item> {
        while self.next < self.end {
            let index = self.next;
            self.next += 1;
            // The page at hand, or the next one (looked up once per page).
            let slot = match self.page.get(index.wrapping_sub(self.base)) {
                Some(slot) => slot,
                None => {
                    let (page, at) = locate(index);
                    let Some(page) = self.registry.pages[page].get() else {
                        continue;
                    };
                    (self.page, self.base) = (page, index - at);
                    &page[at]
                }
            };
            // With no guard live nothing else writes a mark: a vacant slot
            // is passed without its lock.
            if !(self.abandoning || slot.occupied()) {
                continue;
            }
            let handle = SocketHandle::new(index, slot.seq(), self.generation);
            let held = if self.abandoning {
                slot.held.try_lock()
            } else {
                Some(slot.held.lock())
            };
            let Some(mut held) = held else {
                if slot.occupied() {
                    self.closed += 1;
                    return Some((handle, Taken::Abandoned));
                }
                continue;
            };
            let taken = match std::mem::replace(&mut *held, Held::Vacant) {
                Held::Vacant => continue,
                Held::Own(socket) => Some(Taken::Socket(socket)),
                Held::Shared(cell) => {
                    // The socket is taken through its first handle; the
                    // others are only vacated.
                    let taken = if self.abandoning {
                        cell.try_lock().map(|mut shared| shared.socket.take())
                    } else {
                        Some(cell.lock().socket.take())
                    };
                    let Some(taken) = taken else {
                        // An abandoned operation holds the socket through
                        // another handle: left in place, freed only with
                        // the registry (when no guard can exist).
                        *held = Held::Shared(cell);
                        self.closed += 1;
                        return Some((handle, Taken::Abandoned));
                    };
                    taken.map(Taken::Socket)
                }
            };
            self.vacated(index, slot);
            drop(held);
            if let Some(taken) = taken {
                return Some((handle, taken));
            }
        }
        None
    }
}

impl<S> Drop for Drained<'_, S> {
    fn drop(&mut self) {
        // Whatever was not taken (an unwind) is vacated too, its socket
        // dropped with any panic caught.
        for (_, taken) in &mut *self {
            if let Taken::Socket(socket) = taken {
                let _ = crate::hook::drop_quietly(socket);
            }
        }
        if let Some((first, last)) = self.chain {
            self.registry.push(first, last);
        }
        self.registry.open.fetch_sub(self.closed, Ordering::Relaxed);
    }
}

impl<S> std::fmt::Debug for Registry<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("open", &self.open())
            .field("slots", &self.fresh.load(Ordering::Relaxed))
            .finish()
    }
}

#[cfg(test)]
mod tests;
