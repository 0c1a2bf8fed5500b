//! The calling thread's record: its token, the shard it counts guards on,
//! and which lifecycles it holds guards of (rule [L11](crate::contract#L11), [L15](crate::contract#L15)).
//!
//! The record is a `const`-initialized thread-local **without a destructor**,
//! so std keeps it usable even inside other thread-locals' destructors, and
//! the crate registers nothing to run at a caller thread's exit
//! ([L17](crate::contract#L17): a thread-exit callback would keep a provider
//! library mapped after `dlclose` for as long as the thread lives). It holds
//! the first [`INLINE_HELD`] lifecycles a thread holds guards of; more go to
//! a process-wide table keyed by the thread's token (under loom, a
//! thread-local), which is read only by a thread whose record says it has
//! entries there. Where that table cannot be reached (only under loom,
//! whose thread-locals are destroyed), the guard is counted as *untracked*
//! and, while any such guard lives, the thread is treated as holding a guard
//! of every lifecycle: a final cleanup or `Wait` startup from it answers
//! `InProgress` rather than risk waiting for itself.
//!
//! Lifecycles are keyed by a process-unique id (never by address), so a
//! leaked guard of a dropped lifecycle cannot be mistaken for a guard of a
//! new lifecycle at the same address.

use std::cell::Cell;

use crate::sync::{self, Counter};

/// How many lifecycles a thread holds guards of before the growable table is used.
pub(crate) const INLINE_HELD: usize = 4;

#[derive(Debug)]
struct Record {
    token: Cell<u64>,
    /// The key of the shard this thread counts on
    /// ([`shard_key_of`](crate::state::shard_key_of)); 0 until chosen.
    shard_key: Cell<usize>,
    shard_chosen: Cell<bool>,
    held_ids: [Cell<u64>; INLINE_HELD],
    held_depth: [Cell<u32>; INLINE_HELD],
    /// Guards held while no table could record them (see the module docs).
    untracked: Cell<u32>,
    /// Holds of this thread in the overflow table ([`Held::MORE`]).
    more: Cell<u32>,
}

impl Record {
    sync::loom_const_fn! {
        fn new() -> Record {
            Record {
                token: Cell::new(0),
                shard_key: Cell::new(0),
                shard_chosen: Cell::new(false),
                held_ids: [const { Cell::new(0) }; INLINE_HELD],
                held_depth: [const { Cell::new(0) }; INLINE_HELD],
                untracked: Cell::new(0),
                more: Cell::new(0),
            }
        }
    }
}

#[cfg(not(loom))]
sync::thread_local! {
    static RECORD: Record = const { Record::new() };
}

/// The overflow table: (thread token, lifecycle id, depth). Process-wide,
/// so no thread-local with a destructor exists; emptied, it frees its
/// memory.
#[cfg(not(loom))]
static MORE_HELD: sync::Mutex<Vec<(u64, u64, u32)>> = sync::Mutex::new(Vec::new());

#[cfg(loom)]
sync::thread_local! {
    static RECORD: Record = Record::new();
    static MORE_HELD_HERE: std::cell::RefCell<Vec<(u64, u64, u32)>> =
        std::cell::RefCell::new(Vec::new());
}

/// Runs `f` on the overflow table; `None` if it cannot be reached.
#[cfg(not(loom))]
fn with_more<R>(f: impl FnOnce(&mut Vec<(u64, u64, u32)>) -> R) -> Option<R> {
    let mut more = MORE_HELD.lock();
    let r = f(&mut more);
    if more.is_empty() {
        *more = Vec::new();
    }
    Some(r)
}

/// Runs `f` on the overflow table; `None` if it cannot be reached.
#[cfg(loom)]
fn with_more<R>(f: impl FnOnce(&mut Vec<(u64, u64, u32)>) -> R) -> Option<R> {
    MORE_HELD_HERE.try_with(|m| f(&mut m.borrow_mut())).ok()
}

/// Runs `f` with the calling thread's record; `None` if it is no longer
/// accessible (only possible under loom, whose thread-locals are destroyed).
#[inline]
fn with<R>(f: impl FnOnce(&Record) -> R) -> Option<R> {
    RECORD.try_with(f).ok()
}

/// A number naming the calling thread for as long as it lives (refuses a
/// startup that would wait for itself). A thread past its locals'
/// destruction gets a fresh token each call: it cannot be the one
/// initializing or draining.
pub(crate) fn token() -> u64 {
    with(token_in).unwrap_or_else(|| sync::next_id(Counter::Thread))
}

fn token_in(r: &Record) -> u64 {
    let token = r.token.get();
    if token != 0 {
        return token;
    }
    let token = sync::next_id(Counter::Thread);
    r.token.set(token);
    token
}

/// The key ([`shard_key_of`](crate::state::shard_key_of)) of the shard this
/// thread counts guards on, chosen round-robin on first use.
#[inline]
pub(crate) fn shard_key(shards: usize) -> usize {
    with(|r| {
        if r.shard_chosen.get() {
            r.shard_key.get()
        } else {
            choose_shard(r, shards)
        }
    })
    .unwrap_or(0)
}

/// This thread's shard key without the first-use check: 0 until chosen.
/// For a guard, whose [`hold`] chooses it on the thread's first hold (its
/// first lookup always misses): only a thread's first guard counts on the
/// shard of key 0 unchosen, and a guard counts correctly on any shard.
#[inline]
pub(crate) fn shard_key_as_is() -> usize {
    with(|r| r.shard_key.get()).unwrap_or(0)
}

#[cold]
fn choose_shard(r: &Record, shards: usize) -> usize {
    let key = crate::state::shard_key_of(pick(sync::next_id(Counter::Shard), shards));
    r.shard_key.set(key);
    r.shard_chosen.set(true);
    key
}

/// The shard of the `n`-th thread to ask: round-robin, always in range.
fn pick(n: u64, shards: usize) -> usize {
    (n % shards as u64) as usize
}

/// Where a guard's hold is recorded, to undo it on drop: an index of the
/// inline table (below [`INLINE_HELD`]), or one of the rare places above
/// it. One byte, so that a guard's drop tests it with one compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Held(u8);

impl Held {
    /// In the growable table.
    pub(crate) const MORE: Held = Held(INLINE_HELD as u8);
    /// Nowhere: counted in `untracked`.
    pub(crate) const UNTRACKED: Held = Held(INLINE_HELD as u8 + 1);
    /// The record itself was gone; nothing to undo.
    pub(crate) const UNRECORDED: Held = Held(INLINE_HELD as u8 + 2);

    /// Whether the hold is in the inline table.
    #[cfg(test)]
    pub(crate) fn is_inline(self) -> bool {
        usize::from(self.0) < INLINE_HELD
    }
}

/// Records that this thread now holds one more guard of lifecycle `id`.
#[inline]
pub(crate) fn hold(id: u64) -> Held {
    with(|r| {
        // The common case, guards of one lifecycle taken and dropped in
        // turn: its slot is the first (a slot keeps its id when its depth
        // returns to 0).
        if r.held_ids[0].get() == id {
            r.held_depth[0].set(r.held_depth[0].get() + 1);
            Held(0)
        } else {
            hold_elsewhere(r, id)
        }
    })
    .unwrap_or(Held::UNRECORDED)
}

/// [`hold`] past the first slot; also where a thread's first hold chooses
/// its shard (see [`shard_key_as_is`]).
#[cold]
#[inline(never)]
fn hold_elsewhere(r: &Record, id: u64) -> Held {
    if !r.shard_chosen.get() {
        choose_shard(r, crate::state::SHARDS);
    }
    // An idle first slot is taken over, so that this lifecycle's next holds
    // take the fast path. Another slot may keep the same id: `holds` asks
    // every slot, and each hold is undone where it was made.
    if r.held_depth[0].get() == 0 {
        r.held_ids[0].set(id);
        r.held_depth[0].set(1);
        return Held(0);
    }
    for i in 1..INLINE_HELD {
        if r.held_ids[i].get() == id {
            r.held_depth[i].set(r.held_depth[i].get() + 1);
            return Held(i as u8);
        }
    }
    for i in 0..INLINE_HELD {
        if r.held_depth[i].get() == 0 {
            r.held_ids[i].set(id);
            r.held_depth[i].set(1);
            return Held(i as u8);
        }
    }
    hold_more(r, id)
}

#[cold]
#[inline(never)]
fn hold_more(r: &Record, id: u64) -> Held {
    let me = token_in(r);
    let recorded = with_more(
        |more| match more.iter_mut().find(|(t, k, _)| (*t, *k) == (me, id)) {
            Some((_, _, depth)) => *depth += 1,
            None => more.push((me, id, 1)),
        },
    );
    if recorded.is_some() {
        r.more.set(r.more.get() + 1);
        Held::MORE
    } else {
        r.untracked.set(r.untracked.get() + 1);
        Held::UNTRACKED
    }
}

/// Undoes one [`hold`] of the lifecycle `id` names (asked only off the
/// inline table, so the common case does not read it).
#[inline]
pub(crate) fn unhold(id: impl FnOnce() -> u64, held: Held) {
    let i = usize::from(held.0);
    if i < INLINE_HELD {
        let _ = with(|r| {
            // The id stays: a depth of 0 is what frees the slot.
            r.held_depth[i].set(r.held_depth[i].get() - 1);
        });
    } else {
        unhold_rare(id(), held);
    }
}

/// [`unhold`] off the inline table.
#[cold]
#[inline(never)]
fn unhold_rare(id: u64, held: Held) {
    if held == Held::MORE {
        let _ = with(|r| {
            let me = token_in(r);
            r.more.set(r.more.get() - 1);
            with_more(|more| {
                if let Some(pos) = more.iter().position(|(t, k, _)| (*t, *k) == (me, id)) {
                    more[pos].2 -= 1;
                    if more[pos].2 == 0 {
                        more.swap_remove(pos);
                    }
                }
            })
        });
    }
    #[cfg(loom)]
    unhold_untracked(held);
}

/// [`unhold_rare`] of an untracked hold: only under loom; elsewhere the
/// overflow table is always reached, and no hold is untracked.
#[cfg(loom)]
fn unhold_untracked(held: Held) {
    if held == Held::UNTRACKED {
        let _ = with(|r| r.untracked.set(r.untracked.get() - 1));
    }
}

/// Whether the calling thread holds a guard of lifecycle `id` (or an
/// untracked guard, which might be one: see the module docs).
pub(crate) fn holds(id: u64) -> bool {
    with(|r| {
        (0..INLINE_HELD).any(|i| r.held_ids[i].get() == id && r.held_depth[i].get() > 0)
            || r.untracked.get() > 0
            || (r.more.get() > 0 && {
                let me = token_in(r);
                with_more(|more| more.iter().any(|(t, k, _)| (*t, *k) == (me, id))).unwrap_or(false)
            })
    })
    .unwrap_or(false)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    // O3: threads spread over the shards round-robin, and however many
    // threads a process starts, the choice stays in range.
    #[test]
    fn o3_shard_choice_is_round_robin_and_in_range() {
        let picks: Vec<usize> = (0..6).map(|n| pick(n, 4)).collect();
        assert_eq!(picks, [0, 1, 2, 3, 0, 1]);
        for n in [31, 32, 1023, 1024, 1025, u64::MAX] {
            assert!(pick(n, 32) < 32, "thread {n}");
        }
        assert_eq!(pick(1025, 32), 1);
    }

    // O3: a guard reads its thread's shard unchecked; the thread's first
    // hold chooses it (its slots start empty, so that hold always takes
    // the slow path), and a token's first enter chooses it too.
    #[test]
    fn o3_the_first_hold_or_token_chooses_the_shard() {
        std::thread::spawn(|| {
            assert!(!with(|r| r.shard_chosen.get()).unwrap());
            assert_eq!(shard_key_as_is(), 0, "unchosen: key 0");
            let h = hold(3_000_001);
            assert!(with(|r| r.shard_chosen.get()).unwrap());
            let chosen = shard_key_as_is();
            assert!(crate::state::shard_key_of(chosen) < crate::state::SHARDS);
            assert_eq!(shard_key(crate::state::SHARDS), chosen, "chosen once");
            assert_eq!(hold(3_000_001), h, "the first slot, on the fast path");
            unhold(|| 3_000_001, h);
            unhold(|| 3_000_001, h);
            assert!(!holds(3_000_001));
        })
        .join()
        .unwrap();
        std::thread::spawn(|| {
            let key = shard_key(crate::state::SHARDS);
            assert!(with(|r| r.shard_chosen.get()).unwrap());
            assert_eq!(shard_key_as_is(), key);
        })
        .join()
        .unwrap();
        // Round-robin: of SHARDS + 1 new threads, two share a shard and
        // not every one is on shard 0.
        let picks: Vec<usize> = (0..crate::state::SHARDS + 1)
            .map(|_| {
                std::thread::spawn(|| crate::state::shard_key_of(shard_key(crate::state::SHARDS)))
                    .join()
                    .unwrap()
            })
            .collect();
        assert!(picks.iter().all(|&p| p < crate::state::SHARDS));
        assert!(picks.iter().any(|&p| p != picks[0]));
    }

    // L11: a thread that moves on from one lifecycle to another gives the
    // new one the first slot (its holds take the fast path), while a live
    // guard keeps its own slot.
    #[test]
    fn l11_an_idle_first_slot_goes_to_the_next_lifecycle() {
        std::thread::spawn(|| {
            let (a, b) = (4_000_001, 4_000_002);
            let ha = hold(a);
            assert_eq!(ha, Held(0));
            let hb = hold(b);
            assert_eq!(hb, Held(1), "a's guard lives: b takes the next slot");
            unhold(|| b, hb);
            unhold(|| a, ha);
            assert_eq!(hold(b), Held(0), "a is idle: b takes the first slot over");
            assert!(holds(b) && !holds(a));
            unhold(|| b, Held(0));
            assert!(!holds(b));
        })
        .join()
        .unwrap();
    }

    // L11, L15: the held table keeps every lifecycle a thread holds, past
    // the inline slots, and forgets each once its last guard goes.
    #[test]
    fn l15_held_table_tracks_every_lifecycle() {
        let ids: Vec<u64> = (1_000_001..1_000_011).collect();
        let held: Vec<Held> = ids.iter().map(|&id| hold(id)).collect();
        assert!(held[..INLINE_HELD].iter().all(|h| h.is_inline()));
        assert!(held[INLINE_HELD..].iter().all(|h| *h == Held::MORE));
        assert!(ids.iter().all(|&id| holds(id)));
        // A second guard of an inline and of an overflow lifecycle.
        let again = [hold(ids[0]), hold(ids[7])];
        assert_eq!(again, [held[0], Held::MORE]);
        for (&id, h) in ids.iter().zip(&held) {
            unhold(|| id, *h);
        }
        assert!(
            holds(ids[0]) && holds(ids[7]),
            "their second guards still live"
        );
        assert!(ids.iter().filter(|&&id| holds(id)).count() == 2);
        unhold(|| ids[0], again[0]);
        unhold(|| ids[7], again[1]);
        assert!(ids.iter().all(|&id| !holds(id)));
        assert_eq!(
            with(|r| r.more.get()),
            Some(0),
            "every overflow hold undone"
        );
    }

    // L11: a slot keeps its id after its last guard (a fast re-hold) but is
    // not held, and another lifecycle can take it over.
    #[test]
    fn l11_an_idle_slot_is_not_held_and_is_reusable() {
        let (a, b) = (2_000_001, 2_000_002);
        let h = hold(a);
        unhold(|| a, h);
        assert!(!holds(a), "depth 0: not held");
        assert_eq!(hold(a), h, "the same slot again");
        unhold(|| a, h);
        let others: Vec<Held> = (0..INLINE_HELD as u64).map(|i| hold(b + i)).collect();
        assert!(others.iter().all(|h| h.is_inline()), "a's idle slot reused");
        assert!(!holds(a));
        for (i, h) in others.into_iter().enumerate() {
            unhold(|| b + i as u64, h);
        }
    }
}
