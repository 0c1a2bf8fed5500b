use super::{
    Closing, DOUBLING_SLOTS, Detached, FIRST_PAGE_BITS, PAGES, Registry, Taken, locate, page_len,
};
use crate::Error;
use crate::handle::{LAST_SEQ, SocketHandle};
use crate::sync::Ordering;

fn take_all(reg: &Registry<u32>, generation: u64) -> Vec<(SocketHandle, u32)> {
    reg.take_open(generation, false)
        .map(|(h, t)| match t {
            Taken::Socket(s) => (h, s),
            Taken::Abandoned => panic!("nothing is abandoned here"),
        })
        .collect()
}

fn close(reg: &Registry<u32>, h: SocketHandle) -> Result<Option<u32>, Error> {
    reg.close(h, |_, _| Closing::Close(())).map(|c| match c {
        Detached::Last(s, ()) => Some(s),
        Detached::Unlinked(()) => None,
        Detached::Kept => unreachable!(),
    })
}

/// Sets the sequence of `h`'s (occupied) slot.
fn set_seq(reg: &Registry<u32>, h: SocketHandle, seq: u64) -> SocketHandle {
    let slot = reg.slot(h.index()).unwrap();
    let _held = slot.held.lock();
    slot.mark.store(seq << 1 | 1, Ordering::Relaxed);
    SocketHandle::new(h.index(), seq, 0)
}

// Every index maps to one place in one page, pages are contiguous, and the
// last index the handle can carry has a page.
#[test]
fn every_index_has_one_place() {
    let mut expect = (0, 0);
    for index in (0..DOUBLING_SLOTS + 3 * (1 << super::FLAT_PAGE_BITS))
        .chain(Registry::<()>::MAX_SLOTS - 70_000..Registry::<()>::MAX_SLOTS)
    {
        let (page, at) = locate(index);
        if index == Registry::<()>::MAX_SLOTS - 70_000 {
            expect = (page, at);
        }
        assert_eq!((page, at), expect, "index {index}");
        assert!(page < PAGES);
        expect = if at + 1 == page_len(page) {
            (page + 1, 0)
        } else {
            (page, at + 1)
        };
    }
    assert_eq!(locate(0), (0, 0));
    assert_eq!(locate((1 << FIRST_PAGE_BITS) - 1), (0, 63));
    assert_eq!(locate(1 << FIRST_PAGE_BITS), (1, 0));
    assert_eq!(locate(Registry::<()>::MAX_SLOTS - 1).0, PAGES - 1);
}

// S7: a slot whose sequence is used up is retired, never reused, so no
// handle it issued can alias a later socket.
#[test]
fn s7_slot_retires_at_its_last_sequence() {
    let reg: Registry<u32> = Registry::new();
    let h = reg.insert(0, 1).unwrap();
    let h = set_seq(&reg, h, LAST_SEQ);
    assert_eq!(reg.with(h, |s| *s), Ok(1));
    assert_eq!(close(&reg, h), Ok(Some(1)));
    assert_eq!(reg.pop(), None, "the used-up slot is not reusable");
    let next = reg.insert(0, 2).unwrap();
    assert_ne!(next.index(), h.index(), "a fresh slot is used instead");
    assert_eq!(reg.with(h, |_| ()), Err(Error::NotSocket));
    assert_ne!(h.to_raw(), u64::MAX, "never INVALID_SOCKET");
}

// S7, L10: the registry never grows past the handle's 24 index bits: with
// every slot handed out, an insert is refused (ProcessLimit upstream)
// instead of issuing an index that does not fit.
#[test]
fn s7_the_registry_never_grows_past_the_handles_index_bits() {
    let reg: Registry<u32> = Registry::new();
    reg.fresh
        .store(Registry::<u32>::MAX_SLOTS - 1, Ordering::Relaxed);
    let h = reg.insert(0, 8).expect("one slot below the limit");
    assert_eq!(h.index(), Registry::<u32>::MAX_SLOTS - 1);
    assert_eq!(reg.insert(0, 7), Err(7), "no slot is left");
    assert_eq!(reg.duplicate(h, 0), Err(Error::ProcessLimit));
    assert_eq!(
        reg.with(h, |s| *s),
        Ok(8),
        "a refused duplicate changes nothing"
    );
    assert_eq!(close(&reg, h), Ok(Some(8)));
    assert_eq!(
        reg.insert(0, 9).map(|h| h.index()),
        Ok(Registry::<u32>::MAX_SLOTS - 1)
    );
}

// S7: the final cleanup retires a slot at its last sequence too.
#[test]
fn s7_drain_retires_used_up_slots() {
    let reg: Registry<u32> = Registry::new();
    let a = reg.insert(0, 1).unwrap();
    let _b = reg.insert(0, 2).unwrap();
    let a = set_seq(&reg, a, LAST_SEQ);
    let drained = take_all(&reg, 0);
    assert_eq!(drained.len(), 2);
    assert_eq!(drained[0].0.seq(), LAST_SEQ);
    assert_eq!(reg.open(), 0);
    let c = reg.insert(1, 3).unwrap();
    let d = reg.insert(1, 4).unwrap();
    assert_ne!(c.index(), a.index());
    assert_ne!(d.index(), a.index());
    for h in [c, d] {
        assert!(reg.with(SocketHandle::from_raw(h.to_raw()), |_| ()).is_ok());
    }
    assert_eq!(reg.with(a, |_| ()), Err(Error::NotSocket));
}

// After a final cleanup every unretired slot is reused before the registry
// grows, and no slot is handed out twice.
#[test]
fn drained_slots_are_reused_before_the_registry_grows() {
    let reg: Registry<u32> = Registry::new();
    let first: Vec<_> = (0..4).map(|i| reg.insert(0, i).unwrap()).collect();
    set_seq(&reg, first[2], LAST_SEQ); // retires when vacated
    assert_eq!(take_all(&reg, 0).len(), 4);
    assert_eq!(reg.open(), 0);
    let mut again: Vec<usize> = (0..3).map(|i| reg.insert(1, i).unwrap().index()).collect();
    again.sort_unstable();
    assert_eq!(again, [0, 1, 3], "slot 2 is retired");
    assert_eq!(
        reg.insert(1, 9).unwrap().index(),
        4,
        "then the registry grows"
    );
    assert_eq!(reg.open(), 4);
}

// S7: sequences move on across generations, so a raw handle of an earlier
// generation never reaches the slot's new socket.
#[test]
fn s7_sequences_survive_generations() {
    let reg: Registry<u32> = Registry::new();
    let old = reg.insert(0, 1).unwrap();
    take_all(&reg, 0);
    let new = reg.insert(1, 2).unwrap();
    assert_eq!(new.index(), old.index());
    assert_ne!(new, old);
    assert_eq!(
        reg.with(SocketHandle::from_raw(old.to_raw()), |_| ()),
        Err(Error::NotSocket)
    );
    assert_ne!(old.to_raw(), 0, "raw handles are never 0");
}

// W3: a duplicate shares the socket; closing a handle that is not the last
// unlinks it alone, the last one hands the socket back; the final cleanup
// takes a shared socket once.
#[test]
fn w3_duplicates_share_one_socket() {
    let reg: Registry<u32> = Registry::new();
    let a = reg.insert(0, 5).unwrap();
    let b = reg.duplicate(a, 0).unwrap();
    let c = reg.duplicate(b, 0).unwrap();
    assert_eq!(reg.open(), 3);
    reg.with(c, |s| *s += 1).unwrap();
    assert_eq!(reg.with(a, |s| *s), Ok(6));
    let last = |h| {
        let mut seen = None;
        let kept = reg.close(h, |_, last| {
            seen = Some(last);
            Closing::<()>::Keep
        });
        assert!(matches!(kept, Ok(Detached::Kept)));
        Ok::<_, Error>(seen.unwrap())
    };
    assert_eq!(last(a), Ok(false), "a Keep changes nothing");
    assert_eq!(close(&reg, a), Ok(None));
    assert_eq!(reg.with(a, |_| ()), Err(Error::NotSocket));
    assert_eq!(last(b), Ok(false));
    assert_eq!(close(&reg, b), Ok(None));
    assert_eq!(last(c), Ok(true));
    let d = reg.duplicate(c, 0).unwrap();
    assert_eq!(reg.open(), 2);
    let drained = take_all(&reg, 0);
    assert_eq!(drained.len(), 1, "one socket, taken once");
    assert_eq!(drained[0].1, 6);
    assert!(drained[0].0 == c || drained[0].0 == d);
    assert_eq!(reg.open(), 0);
}

// Allocation from many threads at once never hands one slot to two
// sockets (the vacant stack's tagged head).
#[test]
fn concurrent_opens_and_closes_never_share_a_slot() {
    let reg: Registry<u32> = Registry::new();
    std::thread::scope(|s| {
        for t in 0..4u32 {
            let reg = &reg;
            s.spawn(move || {
                for i in 0..2_000u32 {
                    let v = t << 16 | i;
                    let h = reg.insert(0, v).unwrap();
                    assert_eq!(reg.with(h, |s| *s), Ok(v));
                    if i % 3 != 0 {
                        assert_eq!(close(reg, h), Ok(Some(v)));
                    }
                }
            });
        }
    });
    let left = take_all(&reg, 0);
    assert_eq!(left.len(), 4 * 667);
    let mut slots: Vec<usize> = std::iter::from_fn(|| reg.pop()).collect();
    slots.sort_unstable();
    slots.dedup();
    assert_eq!(
        slots.len(),
        reg.fresh.load(Ordering::Relaxed),
        "afterwards every slot is vacant, on the stack once"
    );
    let mut values: Vec<u32> = left.iter().map(|(_, v)| *v).collect();
    values.sort_unstable();
    values.dedup();
    assert_eq!(values.len(), 4 * 667, "every kept socket, once");
}

// The vacant stack's ABA guard: a pop that read the top before another
// thread popped it and the slot below and pushed the first back sees the
// same top index again; the head's count must differ, or its CAS would
// install the slot below (now in use) as the top. (loom explores the race
// itself: s7_opens_and_closes_on_two_threads_never_share_a_slot.)
#[test]
fn s7_the_vacant_stack_head_changes_on_every_push_and_pop() {
    let reg: Registry<u32> = Registry::new();
    let a = reg.insert(0, 1).unwrap();
    let b = reg.insert(0, 2).unwrap();
    close(&reg, a).unwrap();
    close(&reg, b).unwrap();
    let stale = reg.vacant.load(Ordering::Relaxed);
    let top = reg.pop().unwrap();
    let below = reg.pop().unwrap();
    assert_ne!(top, below);
    reg.push(top, top);
    let now = reg.vacant.load(Ordering::Relaxed);
    assert_eq!(now & super::TOP, stale & super::TOP, "the same top index");
    assert_ne!(now, stale, "but not the same head: a stale CAS fails");
    assert_eq!(reg.pop(), Some(top));
    assert_eq!(
        reg.pop(),
        None,
        "the slot below is in use, not on the stack"
    );
}
