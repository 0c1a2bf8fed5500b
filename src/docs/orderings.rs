//! The orderings: every pair of atomic operations that orders memory
//! between two threads, labelled. The code's comment at each end names its
//! pair (`[P1]` ... `[P10]`); the loom models in `tests/loom.rs` check the
//! races each pair decides. An operation not listed here is `Relaxed`
//! because a lock or one of these pairs already orders what it publishes.
//!
//! # The state word (`state.rs`)
//!
//! - **P1 — a generation's initialization before its first use.** The
//!   startup frame publishes Active with an AcqRel compare-and-swap
//!   (`StateWord::publish_active`, after the provider's state was stored
//!   in `generation.rs`); every reader of the word loads it with Acquire
//!   (`StateWord::load`, the checked add `StateWord::join`). A thread that
//!   sees Active sees the initialization. It also sees the lifecycle's
//!   id, assigned before the first Active is published: a guard reads it
//!   Relaxed, without the lazy check (`RawLifecycle::active_id`).
//! - **P2 — every counted caller's work before the final cleanup.** Each
//!   startup's `fetch_add` and each cleanup's `fetch_sub` is AcqRel
//!   (`StateWord::join`, `StateWord::leave`, `undo_leave`); the flip to
//!   Draining is an AcqRel compare-and-swap (`StateWord::finish_last`). All
//!   are in the word's release sequence, so the cleanup that flips sees
//!   what every earlier holder of a count did.
//! - **P3 — a failed initialization undone before a retry.**
//!   `StateWord::clear_initializing` is a Release `fetch_and`; the next
//!   startup's Acquire load (P1's) sees the failed initialization's
//!   cleanup.
//!
//! # The guard shards (`raw/shards.rs`; the drainer's half in `raw/teardown.rs`)
//!
//! - **P4 — an enter after the drainer parked its shard fails.** An enter
//!   counts with an Acquire `fetch_add` (`RawLifecycle::enter_on`); the
//!   drainer parks each shard with an AcqRel `fetch_or`
//!   (`RawLifecycle::park_on_shards`) after its flip to Draining (P2's
//!   compare-and-swap). The read-modify-writes of one shard are totally
//!   ordered: an add before the `fetch_or` is counted by the drainer; an
//!   add after it reads it, synchronizes with it, and its Acquire load of
//!   the word (P1's) then sees Draining and backs out. The lane the add
//!   counts in comes from the entry hint (`StateWord::entry`), loaded
//!   Relaxed: it orders nothing. The word loaded after the add decides,
//!   and an enter whose hint the word does not match undoes the add.
//! - **P5 — a guard's work before the teardown.** A leave is an AcqRel
//!   `fetch_sub` (`RawLifecycle::leave`); the drainer sums the shards with
//!   Acquire loads (`RawLifecycle::guards`). A zero it reads is after every
//!   leave, so the teardown sees every guard's work. The Acquire half of
//!   the leave pairs with P4's `fetch_or`: a leave that returns `PARKED`
//!   knows the drainer waits and wakes it, under the control lock so the
//!   wake cannot fall between the drainer's check and its wait.
//! - **P6 — an abandoned lane reused only once empty** (L16). The frame
//!   marks a lane abandoned with a Release store (`Teardown::abandon`, in
//!   `raw/teardown.rs`); `RawLifecycle::free_generation` loads the mark
//!   with Acquire before it reads the lane's count (P5's loads), so a zero
//!   it reads is of the abandoned guards' own leaves.
//!
//! # Process exit (`raw.rs`)
//!
//! - **P7 — a startup after `end_at_exit` does not wait.** The exit flag
//!   is stored with Release (`RawLifecycle::end_at_exit`) before the word's
//!   flip; `RawLifecycle::exited` loads it with Acquire in the startup slow
//!   path that found Draining.
//!
//! # The socket registry (`registry.rs`)
//!
//! - **P8 — a popped vacant slot's link.** A close pushes its slot on the
//!   vacant stack with a Release compare-and-swap of the head (after a
//!   Relaxed store of the slot's `below`); an open pops with Acquire loads
//!   and compare-and-swap, so it reads the `below` written before the push.
//!   The head carries a push/pop count against ABA.
//! - **P9 — a slot's sequence and contents.** The slot's `mark` (sequence
//!   and occupied bit) is read and written `Relaxed`, always under the
//!   slot's own lock, which orders it with the socket it guards: a lookup
//!   checks the sequence under the same lock it uses the socket under (S7).
//!
//! # The flush engine (`flush.rs`)
//!
//! - **P10 — a socket's readiness before its poll.** A socket's waker sets
//!   its slot's `scheduled` flag with an AcqRel swap before it queues the
//!   slot (`SlotWaker::wake_by_ref`); the flusher clears it with an AcqRel
//!   swap before it polls (`Flusher::pass`). What the waking thread saw
//!   (the socket's new readiness) happens before the poll; a wake after the
//!   clear queues the slot again.
//!
//! # Locks
//!
//! Everything else is under a lock: the slow path's control block
//! (`raw.rs`: resources, the initializing and draining threads, the
//! startup waiters), the cancel step's waiters (`raw/cancel.rs`), each
//! socket's slot (`registry.rs`), each shard's read lock on the
//! generation's state (`generation.rs`), the background flusher
//! (`background.rs`). The locks are std's (`sync.rs`), and under loom
//! loom's.
