//! The entry hint ([`Entry`]): what a guard's enter expects of the state
//! word, and where it counts; and the thread's shard key that indexes it.

use super::{ENTRY_MASK, LANES, State, Word, lane_of};

/// Number of guard shards in a lane. Four under loom keep the models small
/// while still letting two threads count on different shards, and leave
/// room below the lane bits of an [`Entry`] for the state bits its
/// [`index`](Entry::index) cancels.
#[cfg(not(loom))]
pub(crate) const SHARDS: usize = 32;
#[cfg(loom)]
pub(crate) const SHARDS: usize = 4;

/// The bits of an [`Entry`] that hold its lane's first shard index
/// (`lane * SHARDS`), where a shard index has them.
const LANE_BASE_MASK: u64 = ((LANES - 1) * SHARDS) as u64;
// The lane base lies in bits an enter's compare ignores, and an Active
// word's state bits in a shard's (which the shard key cancels).
const _: () = assert!(LANE_BASE_MASK & ENTRY_MASK == 0);
const _: () = assert!(SHARDS.is_power_of_two() && (State::Active.bits() as usize) < SHARDS);

/// A thread's *shard key*: its shard (below [`SHARDS`]) with an Active
/// word's state bits flipped, so that an [`Entry`] xor the key is the
/// shard's index in the entry's lane ([`Entry::index`]). The same function
/// turns a key back into its shard.
#[inline]
pub(crate) const fn shard_key_of(shard: usize) -> usize {
    shard ^ State::Active.bits() as usize
}

/// What a guard's enter expects of the word: Active, in the lane of the
/// current generation (the word's `ENTRY_MASK` bits), and, in bits the
/// compare ignores, that lane's first shard index (where a shard index has
/// it, so that [`Entry::index`] is one exclusive or). A hint, published after
/// the word: an enter counts in the lane it names and then checks the word
/// itself ([`Word::admits`]), so a stale hint costs a retry, never a wrong
/// count.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Entry(pub(super) u64);

impl Entry {
    /// Active in `generation`'s lane.
    #[inline]
    pub(crate) const fn active_in(generation: u64) -> Entry {
        let lane_base = (lane_of(generation) * SHARDS) as u64;
        Entry(Word::new(State::Active, 0, generation).0 & ENTRY_MASK | lane_base)
    }

    /// The index an enter with shard key `key` ([`shard_key_of`]) counts at:
    /// its shard of this entry's lane. The entry's state bits and the key's
    /// flipped ones cancel in one exclusive or; the mask drops the rest.
    #[inline]
    pub(crate) const fn index(self, key: usize) -> usize {
        (self.0 as usize ^ key) % (LANES * SHARDS)
    }

    /// The first shard index of the lane an enter counts in (`lane * SHARDS`).
    #[cfg(test)]
    pub(crate) const fn lane_base(self) -> usize {
        (self.0 & LANE_BASE_MASK) as usize
    }

    /// The lane an enter counts in.
    #[cfg(test)]
    pub(crate) const fn lane(self) -> usize {
        self.lane_base() / SHARDS
    }
}
