//! The open sockets of a lifecycle: slots whose sequences outlive
//! generations ([S7](crate::contract#S7)), duplicated handles
//! ([W3](crate::contract#W3)), and the drain's O(1) take-out.

use std::collections::BTreeMap;
use std::fmt;
use triomphe::Arc;

use crate::Error;
use crate::socket::{FIRST_SEQ, INDEX_BITS, LAST_SEQ, SocketHandle};
use crate::sync::Mutex;

/// One socket's cell: the socket itself until it is closed. A `triomphe`
/// `Arc`: no weak count, so [`take`] from a unique cell is a load and a
/// free, with no locked instruction.
pub(crate) type Cell<S> = Arc<Mutex<Option<S>>>;

/// Takes the socket out of a cell the caller owns. At teardown no guard is
/// live, so the registry's reference is the only one and no lock is needed.
pub(crate) fn take<S>(cell: Cell<S>) -> Option<S> {
    match Arc::try_unwrap(cell) {
        Ok(mutex) => mutex.into_inner(),
        Err(shared) => shared.lock().take(),
    }
}

/// [`take`] for a cell an abandoned operation may be using
/// ([L16](crate::contract#L16)): never waits. `Err` if the cell is locked;
/// the cell is then leaked, so the socket is never freed under the
/// operation.
pub(crate) fn try_take<S>(cell: Cell<S>) -> Result<Option<S>, ()> {
    let taken = cell.try_lock().map(|mut socket| socket.take());
    match taken {
        Some(socket) => Ok(socket),
        None => {
            std::mem::forget(cell);
            Err(())
        }
    }
}

struct Slot<S> {
    /// The sequence of the current occupant, or of the next one if empty.
    seq: u64,
    cell: Option<Cell<S>>,
}

impl<S> Slot<S> {
    /// Empties the slot and moves its sequence on; `false` if the slot is
    /// now retired (its sequence is used up).
    fn vacate(&mut self) -> bool {
        self.cell = None;
        self.seq += 1;
        self.seq <= LAST_SEQ
    }
}

/// The open sockets. Slots and their sequences outlive generations (see
/// [`SocketHandle`]).
pub(crate) struct Registry<S> {
    slots: Vec<Slot<S>>,
    /// Slots vacated while Active, unretired; popped last-in first-out.
    free: Vec<u32>,
    /// Slots at and above this index were vacated by the last drain and not
    /// reused since: handed out in index order after `free` is empty. (So a
    /// drain frees every slot in O(1) instead of listing them.)
    reuse: usize,
    /// Handles per socket, for sockets with more than one
    /// ([W3](crate::contract#W3)), by the address of their shared cell.
    links: BTreeMap<usize, usize>,
    open: usize,
}

impl<S> Registry<S> {
    crate::sync::loom_const_fn! {
        pub(crate) fn new() -> Registry<S> {
            Registry {
                slots: Vec::new(),
                free: Vec::new(),
                reuse: 0,
                links: BTreeMap::new(),
                open: 0,
            }
        }
    }

    /// A vacant, unretired slot: the free list, then the slots the last
    /// drain vacated, in index order.
    fn vacant(&mut self) -> Option<usize> {
        if let Some(i) = self.free.pop() {
            return Some(i as usize);
        }
        while self.reuse < self.slots.len() {
            let i = self.reuse;
            self.reuse += 1;
            let slot = &self.slots[i];
            if slot.cell.is_none() && slot.seq <= LAST_SEQ {
                return Some(i);
            }
        }
        None
    }

    /// The most slots (open sockets plus retired slots): the raw handle's 24
    /// index bits.
    pub(crate) const MAX_SLOTS: usize = 1 << INDEX_BITS;

    /// Stores `socket`, returning its handle in `generation`; hands the
    /// socket back if no slot is left.
    pub(crate) fn insert(&mut self, generation: u64, socket: S) -> Result<SocketHandle, S> {
        match self.occupy(Arc::new(Mutex::new(Some(socket)))) {
            Ok((index, seq)) => Ok(SocketHandle::new(index, seq, generation)),
            Err(cell) => Err(take(cell).expect("a fresh cell holds its socket")),
        }
    }

    /// Puts `cell` in a vacant slot (or a new one); hands it back if no slot
    /// is left.
    fn occupy(&mut self, cell: Cell<S>) -> Result<(usize, u64), Cell<S>> {
        let index = match self.vacant() {
            Some(i) => i,
            None if self.slots.len() < Self::MAX_SLOTS => {
                self.slots.push(Slot {
                    seq: FIRST_SEQ,
                    cell: None,
                });
                self.reuse = self.slots.len();
                self.slots.len() - 1
            }
            None => return Err(cell),
        };
        let slot = &mut self.slots[index];
        slot.cell = Some(cell);
        self.open += 1;
        Ok((index, slot.seq))
    }

    fn link_key(cell: &Cell<S>) -> usize {
        Arc::as_ptr(cell).cast::<()>() as usize
    }

    /// A second handle to the socket behind `handle` ([W3](crate::contract#W3)).
    pub(crate) fn duplicate(
        &mut self,
        handle: SocketHandle,
        generation: u64,
    ) -> Result<SocketHandle, Error> {
        let cell = self.get(handle)?;
        let key = Self::link_key(&cell);
        let (index, seq) = self.occupy(cell).map_err(|_| Error::ProcessLimit)?;
        *self.links.entry(key).or_insert(1) += 1;
        Ok(SocketHandle::new(index, seq, generation))
    }

    /// Closes `handle` alone if its socket has other handles: `true` if it
    /// did (the socket stays open under them, [W3](crate::contract#W3)).
    pub(crate) fn unlink_shared(&mut self, handle: SocketHandle, cell: &Cell<S>) -> bool {
        let key = Self::link_key(cell);
        let Some(n) = self.links.get_mut(&key) else {
            return false;
        };
        *n -= 1;
        if *n == 1 {
            self.links.remove(&key);
        }
        self.remove(handle, cell);
        true
    }

    /// The cell of the open socket issued exactly `handle`.
    pub(crate) fn get(&self, handle: SocketHandle) -> Result<Cell<S>, Error> {
        match self.slots.get(handle.index()) {
            Some(Slot {
                seq,
                cell: Some(cell),
            }) if *seq == handle.seq() => Ok(Arc::clone(cell)),
            _ => Err(Error::NotSocket),
        }
    }

    /// Frees the slot of `handle` if it still holds `cell`.
    pub(crate) fn remove(&mut self, handle: SocketHandle, cell: &Cell<S>) {
        let index = handle.index();
        if let Some(slot) = self.slots.get_mut(index)
            && slot.cell.as_ref().is_some_and(|c| Arc::ptr_eq(c, cell))
        {
            if slot.vacate() {
                self.free.push(index as u32);
            }
            self.open -= 1;
        }
    }

    /// Open sockets.
    pub(crate) fn open(&self) -> usize {
        self.open
    }

    /// Takes every slot out for the drain, in O(1) (no list is built):
    /// the drain then takes the open sockets out of them outside the lock
    /// ([`Drained`]), and the slots come back, vacant and with their
    /// sequences moved on, when the `Drained` is dropped. Meanwhile the
    /// registry is empty, which nobody sees: the state is no longer Active,
    /// so every registry operation is refused before it looks. The caller
    /// must release its lock of `home` before dropping the `Drained`
    /// (`let d = home.lock().drain_open(home, g);` does).
    pub(crate) fn drain_open<'a>(
        &mut self,
        home: &'a Mutex<Registry<S>>,
        generation: u64,
    ) -> Drained<'a, S> {
        let open = std::mem::take(&mut self.open);
        self.free.clear();
        self.links.clear();
        self.reuse = 0;
        Drained {
            home,
            slots: std::mem::take(&mut self.slots),
            next: 0,
            open,
            generation,
        }
    }
}

/// The slots of a registry being drained: yields each open socket with its
/// handle (vacating its slot), and gives the slots back to the registry
/// when dropped, unwinding included, so that no sequence is ever lost
/// ([S7](crate::contract#S7)).
pub(crate) struct Drained<'a, S> {
    home: &'a Mutex<Registry<S>>,
    slots: Vec<Slot<S>>,
    next: usize,
    open: usize,
    generation: u64,
}

impl<S> Drained<'_, S> {
    /// Open sockets left to take.
    pub(crate) fn len(&self) -> usize {
        self.open
    }
}

impl<S> Iterator for Drained<'_, S> {
    type Item = (SocketHandle, Cell<S>);

    fn next(&mut self) -> Option<Self::Item> {
        while let Some(slot) = self.slots.get_mut(self.next) {
            let index = self.next;
            self.next += 1;
            if let Some(cell) = slot.cell.take() {
                let handle = SocketHandle::new(index, slot.seq, self.generation);
                slot.vacate();
                self.open -= 1;
                return Some((handle, cell));
            }
        }
        None
    }
}

impl<S> Drop for Drained<'_, S> {
    fn drop(&mut self) {
        // Whatever was not taken (an unwind) is vacated too, its socket
        // dropped with any panic caught.
        for slot in &mut self.slots[self.next..] {
            if let Some(cell) = slot.cell.take() {
                let _ = crate::hook::drop_quietly(cell);
                slot.vacate();
            }
        }
        let mut home = self.home.lock();
        debug_assert!(home.slots.is_empty(), "nothing registers while draining");
        home.slots = std::mem::take(&mut self.slots);
        home.reuse = 0;
    }
}

impl<S> fmt::Debug for Registry<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("open", &self.open)
            .field("slots", &self.slots.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // S7: a slot whose sequence is used up is retired, never reused, so no
    // handle it issued can alias a later socket.
    #[test]
    fn s7_slot_retires_at_its_last_sequence() {
        let mut reg: Registry<u32> = Registry::new();
        let h = reg.insert(0, 1).unwrap();
        let cell = reg.get(h).unwrap();
        reg.slots[h.index()].seq = LAST_SEQ;
        let h = SocketHandle::new(h.index(), LAST_SEQ, 0);
        assert!(reg.get(h).is_ok());
        reg.remove(h, &cell);
        assert!(reg.free.is_empty(), "the used-up slot is not reusable");
        assert_eq!(reg.vacant(), None);
        let next = reg.insert(0, 2).unwrap();
        assert_ne!(next.index(), h.index(), "a new slot is grown instead");
        assert_eq!(reg.get(h).err(), Some(Error::NotSocket));
        assert_ne!(h.to_raw(), u64::MAX, "never INVALID_SOCKET");
    }

    // S7, L10: the registry never grows past the handle's 24 index bits: with
    // every slot retired, an insert is refused (ProcessLimit) instead of
    // issuing an index that does not fit. (Retired slots hold no socket, so
    // the 2^24 of them cost 256 MiB, not 16 million sockets.)
    #[test]
    fn s7_the_registry_never_grows_past_the_handles_index_bits() {
        let mut reg: Registry<u32> = Registry::new();
        reg.slots = (0..Registry::<u32>::MAX_SLOTS)
            .map(|_| Slot {
                seq: LAST_SEQ + 1,
                cell: None,
            })
            .collect();
        reg.reuse = reg.slots.len();
        assert_eq!(reg.insert(0, 7), Err(7), "no slot is left");
        assert_eq!(reg.slots.len(), Registry::<u32>::MAX_SLOTS);
        reg.slots.pop();
        let h = reg.insert(0, 8).expect("one slot below the limit");
        assert_eq!(h.index(), Registry::<u32>::MAX_SLOTS - 1);
    }

    // S7: the same holds when the drain vacates a slot at its last sequence.
    #[test]
    fn s7_drain_retires_used_up_slots() {
        let home: Mutex<Registry<u32>> = Mutex::new(Registry::new());
        let a = home.lock().insert(0, 1).unwrap();
        let _b = home.lock().insert(0, 2).unwrap();
        home.lock().slots[a.index()].seq = LAST_SEQ;
        let drained = home.lock().drain_open(&home, 0); // lock released here
        let drained: Vec<_> = drained.collect();
        assert_eq!(drained.len(), 2);
        assert_eq!(drained[0].0.seq(), LAST_SEQ);
        let mut reg = home.lock();
        let c = reg.insert(1, 3).unwrap();
        let d = reg.insert(1, 4).unwrap();
        assert_ne!(c.index(), a.index());
        assert_ne!(d.index(), a.index());
        for h in [c, d] {
            assert!(reg.get(SocketHandle::from_raw(h.to_raw())).is_ok());
        }
        assert_eq!(
            reg.get(SocketHandle::new(a.index(), LAST_SEQ, 0)).err(),
            Some(Error::NotSocket)
        );
    }

    // After a drain every unretired slot is reused, lowest index first,
    // before the registry grows; a slot closed during the generation comes
    // back first (the free list), and no slot is handed out twice.
    #[test]
    fn drained_slots_are_reused_in_order_without_a_list() {
        let home: Mutex<Registry<u32>> = Mutex::new(Registry::new());
        for i in 0..4 {
            home.lock().insert(0, i).unwrap();
        }
        home.lock().slots[2].seq = LAST_SEQ; // retires when vacated
        let drained = home.lock().drain_open(&home, 0);
        assert_eq!(drained.count(), 4);
        let mut reg = home.lock();
        assert_eq!(reg.open(), 0);
        let a = reg.insert(1, 10).unwrap();
        let b = reg.insert(1, 11).unwrap();
        assert_eq!((a.index(), b.index()), (0, 1));
        let cell = reg.get(a).unwrap();
        reg.remove(a, &cell);
        let c = reg.insert(1, 12).unwrap();
        assert_eq!(c.index(), 0, "the slot closed this generation first");
        let d = reg.insert(1, 13).unwrap();
        assert_eq!(d.index(), 3, "slot 2 is retired");
        let e = reg.insert(1, 14).unwrap();
        assert_eq!(e.index(), 4, "then the registry grows");
        assert_eq!(reg.open(), 4);
    }

    // S7: sequences move on across generations, so a raw handle of an
    // earlier generation never reaches the slot's new socket.
    #[test]
    fn s7_sequences_survive_generations() {
        let home: Mutex<Registry<u32>> = Mutex::new(Registry::new());
        let old = home.lock().insert(0, 1).unwrap();
        let drained = home.lock().drain_open(&home, 0);
        drop(drained);
        let mut reg = home.lock();
        let new = reg.insert(1, 2).unwrap();
        assert_eq!(new.index(), old.index());
        assert_ne!(new, old);
        assert_eq!(
            reg.get(SocketHandle::from_raw(old.to_raw())).err(),
            Some(Error::NotSocket)
        );
        assert_ne!(old.to_raw(), 0, "raw handles are never 0");
    }
}
