//! The packed state word: the lifecycle's state, reference count and
//! generation in one `AtomicU64`, and every transition of it, each ordering
//! argued once (the way tokio's task state does it).
//!
//! | bits  | field          | meaning |
//! |-------|----------------|---------|
//! | 0–1   | `STATE`        | [`State`]: 0 Uninitialized, 1 Active, 2 Draining, 3 Released |
//! | 2     | `INITIALIZING` | a first startup is running the provider's initialization hook; only set with Uninitialized or Released |
//! | 3–32  | `COUNT`        | the count, biased by 2^29 so that it is signed: see below |
//! | 33–63 | `GENERATION`   | completed teardowns so far (31 bits, wrapping after 2^31; socket handles do not depend on it, see [S7](crate::contract#S7)) |
//!
//! # Checked add: the fast paths are one read-modify-write each
//!
//! A startup is one `fetch_add` and a cleanup one `fetch_sub` of the count
//! unit, like an `Arc` clone and drop: neither can fail and retry, so
//! contention costs what it costs `Arc`. The state is read from the word
//! the RMW *returns*, and an RMW that should not have happened is undone.
//! So the count field is the number of holders plus the *transients* of
//! racing calls that are about to undo (a startup that found the state not
//! Active or at the limit: +1; a cleanup that found no count to take: −1).
//! The field is biased, so a transient −1 never borrows from the
//! generation, and it has 2^28 units of headroom above [`MAX_COUNT`], so
//! transient +1s never carry into it.
//!
//! The rules that keep every decision exact despite transients:
//!
//! 1. **Only one transition ends a generation**: the compare-and-swap of
//!    Active with count *exactly 0* to Draining ([`finish_last`](StateWord::finish_last)),
//!    tried by the cleanup whose `fetch_sub` took the count from 1 to 0.
//!    A transient present makes it fail; the cleanup then was not the
//!    last (someone holds a unit: the cleanup backs off and reports a
//!    plain decrement), or a transient −1 is in flight (it waits the few
//!    instructions until that is undone). So a startup racing the 1 → 0
//!    transition either lands before the flip — and the generation lives on,
//!    as if the startup came first — or sees Draining and undoes: it never
//!    revives a generation being torn down.
//! 2. **A startup's unit is kept or taken back, never lost**
//!    ([`join`](StateWord::join)'s settle): it is kept if the word is Active
//!    and the count (its unit included) is within the limit; otherwise it is
//!    removed by a CAS that never goes below 1 in Active (there the last unit
//!    is kept: the startup succeeds). So an Active count never reaches 0
//!    except through rule 1, and the count of holders never passes the limit.
//! 3. **Slow-path transitions preserve the count field** (they are RMWs,
//!    not stores), so pending undos stay exact across Draining → Released →
//!    Initializing → Active. Publishing Active adds the initializer's unit to
//!    the transients present (each then settles by rule 2) and waits for any
//!    transient −1 to be undone first.
//! 4. **A cleanup that finds no count undoes at once** and answers
//!    `NotInitialised` ([L4](crate::contract#L4)): the count never goes
//!    negative for more than the instructions between its two RMWs.
//!
//! Every rule is model-checked in `tests/loom.rs`, including a startup and
//! its undo racing the final cleanup and a restart.
//!
//! | transition | from → to | how | by |
//! |---|---|---|---|
//! | [`join`](StateWord::join) | Active(n) → Active(n+1) | `fetch_add`, settled by CAS when refused | any startup |
//! | [`leave`](StateWord::leave) | Active(n) → Active(n−1) | `fetch_sub`, undone by `fetch_add` when refused | any cleanup |
//! | [`finish_last`](StateWord::finish_last) | Active(0) → Draining | CAS | the cleanup that took the count to 0 |
//! | [`restore`](StateWord::restore) | Active(n) → Active(n+1) | CAS | that cleanup, from inside a guard ([L11](crate::contract#L11)) |
//! | [`mark_initializing`](StateWord::mark_initializing) | Uninitialized/Released → same + INITIALIZING | `fetch_or` | first startup, under `control` |
//! | [`publish_active`](StateWord::publish_active) | INITIALIZING → Active(1) | CAS loop | the initializer, under `control` |
//! | [`clear_initializing`](StateWord::clear_initializing) | INITIALIZING → back ([L2](crate::contract#L2)) | `fetch_and` | the initializer, under `control` |
//! | [`publish_released`](StateWord::publish_released) | Draining → Released(g+1) | CAS loop | the drainer, under `control` |

use std::fmt;

use crate::error::NotActive;
use crate::sync::{AtomicU64, CachePadded, Ordering};

mod entry;
pub(crate) use entry::{Entry, SHARDS, shard_key_of};

/// The four states of the lifecycle (see the crate docs' state table).
///
/// These four are the contract's states and never grow: a match on them
/// need not have a wildcard arm.
///
/// `Uninitialized` is spelled the American way like the rest of the API;
/// the error [`NotInitialised`](crate::Error::NotInitialised) keeps the
/// British spelling of the Winsock code it stands for, `WSANOTINITIALISED`.
///
/// ```
/// # use provider_lifecycle::*;
/// # struct P;
/// # impl Provider for P {
/// #     type Socket = NoSocket;
/// #     type State = ();
/// #     fn versions(&self) -> VersionRange { VersionRange::new(Version::new(2, 2), Version::new(2, 2)) }
/// #     fn initialize(&self, _: &mut Registrar) -> Result<(), Error> { Ok(()) }
/// # }
/// let l = Lifecycle::new(P);
/// assert_eq!(l.state(), State::Uninitialized);
/// l.startup(Version::new(2, 2))?;
/// assert_eq!(l.state(), State::Active);
/// l.cleanup()?; // Draining while it tears down, then:
/// assert_eq!(l.state(), State::Released);
/// l.startup(Version::new(2, 2))?; // a new generation
/// assert_eq!((l.state(), l.generation()), (State::Active, 1));
/// # Ok::<(), Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum State {
    /// Never started.
    Uninitialized,
    /// Started: the count is at least 1; sockets and operations are allowed.
    Active,
    /// The final cleanup is tearing down.
    Draining,
    /// Torn down and ready to be initialized afresh.
    Released,
}

impl State {
    const fn from_bits(bits: u64) -> State {
        match bits & STATE_MASK {
            0 => State::Uninitialized,
            1 => State::Active,
            2 => State::Draining,
            _ => State::Released,
        }
    }

    const fn bits(self) -> u64 {
        match self {
            State::Uninitialized => 0,
            State::Active => 1,
            State::Draining => 2,
            State::Released => 3,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Uninitialized => "Uninitialized",
            State::Active => "Active",
            State::Draining => "Draining",
            State::Released => "Released",
        })
    }
}

const STATE_MASK: u64 = 0b11;
const INITIALIZING: u64 = 1 << 2;
const COUNT_SHIFT: u32 = 3;
const COUNT_BITS: u32 = 30;
const COUNT_MASK: u64 = ((1 << COUNT_BITS) - 1) << COUNT_SHIFT;
/// One count unit.
const ONE: u64 = 1 << COUNT_SHIFT;
/// The count field holds `count + BIAS`: transients may take it below 0.
const BIAS: i64 = 1 << (COUNT_BITS - 1);
const GEN_SHIFT: u32 = COUNT_SHIFT + COUNT_BITS;
const GEN_BITS: u32 = 64 - GEN_SHIFT;
pub(crate) const GEN_MASK: u64 = (1 << GEN_BITS) - 1;
/// The bits an enter compares: the state and the generation's lane.
const ENTRY_MASK: u64 = STATE_MASK | ((LANES as u64 - 1) << GEN_SHIFT);

/// Lanes of guard shards (and of provider states): a generation counts its
/// guards in lane `generation % LANES`, so guards a bounded wait abandoned
/// ([L16](crate::contract#L16)) never count in a later generation. Two
/// under loom.
#[cfg(not(loom))]
pub(crate) const LANES: usize = 4;
#[cfg(loom)]
pub(crate) const LANES: usize = 2;

/// The lane of `generation`'s guards and state.
#[inline]
pub(crate) const fn lane_of(generation: u64) -> usize {
    // LANES is a power of two dividing the generation field's 2^31: the
    // lane stays the same across the field's wrap.
    (generation % LANES as u64) as usize
}

/// The largest reference count a lifecycle allows (about 268 million); the
/// configurable limit is clamped to it. The word's count field has as much
/// again in headroom for the transients of racing calls (see the module
/// docs of the state word), so no number of racing startups can carry it
/// into the generation.
pub const MAX_COUNT: u32 = (1 << (COUNT_BITS - 2)) - 1;

/// A decoded copy of the state word.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Word(pub(crate) u64);

impl Word {
    pub(crate) const UNINITIALIZED: Word = Word::new(State::Uninitialized, 0, 0);

    #[inline]
    pub(crate) const fn state(self) -> State {
        State::from_bits(self.0)
    }

    #[inline]
    pub(crate) const fn is_active(self) -> bool {
        self.0 & STATE_MASK == 1
    }

    #[inline]
    pub(crate) const fn initializing(self) -> bool {
        self.0 & INITIALIZING != 0
    }

    /// The count field: holders plus transients, possibly negative for an
    /// instant (see the module docs).
    #[inline]
    pub(crate) const fn signed_count(self) -> i64 {
        ((self.0 & COUNT_MASK) >> COUNT_SHIFT) as i64 - BIAS
    }

    /// The reference count as reported: the count field while Active
    /// (transients of racing calls included), 0 otherwise.
    #[inline]
    pub(crate) const fn count(self) -> u32 {
        let c = self.signed_count();
        if self.is_active() && c > 0 {
            c as u32
        } else {
            0
        }
    }

    /// Why a use (a guard, a token, a registration) found this word not
    /// Active.
    #[cold]
    pub(crate) const fn refused_use(self) -> NotActive {
        match self.state() {
            State::Uninitialized => NotActive::NeverStarted,
            State::Draining => NotActive::Draining,
            // Active only for an instant a racing cleanup took to 0.
            State::Released | State::Active => NotActive::Released,
        }
    }

    /// Why a cleanup found no count to take in this word
    /// ([L4](crate::contract#L4)).
    #[cold]
    pub(crate) const fn refused_cleanup(self) -> NotActive {
        match self.state() {
            State::Uninitialized => NotActive::NeverStarted,
            State::Draining => NotActive::Draining,
            State::Released | State::Active => NotActive::Unpaired,
        }
    }

    #[inline]
    pub(crate) const fn generation(self) -> u64 {
        self.0 >> GEN_SHIFT
    }

    /// The entry this word asks of an enter: Active in its own lane.
    #[inline]
    pub(crate) const fn entry(self) -> Entry {
        Entry::active_in(self.generation())
    }

    /// Whether this word is Active in the lane `entry` names (an
    /// [`Entry`] from [`StateWord::entry`]): the one test of a guard's
    /// fast path, state and lane in one compare.
    #[inline]
    pub(crate) const fn admits(self, entry: Entry) -> bool {
        (self.0 ^ entry.0) & ENTRY_MASK == 0
    }

    /// `count − from` if this word is Active, not initializing, with a
    /// count field of at least `from`; otherwise a value of at least 2^31.
    /// One subtraction and a rotation stand for the three tests the fast
    /// paths make (state, sign, bound): the subtraction leaves the low three
    /// bits zero only for Active without INITIALIZING, the rotation moves
    /// any that are not up to bits 61–63, and a word below the target wraps
    /// to a value whose bits 34–63 are all set (the target is below 2^34),
    /// bits 31–60 after the rotation.
    #[inline]
    const fn active_offset(self, from: u32) -> u64 {
        let low = self.0 & (COUNT_MASK | INITIALIZING | STATE_MASK);
        low.wrapping_sub(Word::new(State::Active, from, 0).0)
            .rotate_right(COUNT_SHIFT)
    }

    /// Same state and generation, count field + 1.
    #[inline]
    const fn incremented(self) -> Word {
        Word(self.0.wrapping_add(ONE))
    }

    /// Same state and generation, count field − 1.
    #[inline]
    const fn decremented(self) -> Word {
        Word(self.0.wrapping_sub(ONE))
    }

    /// This word with its state and generation replaced, its count field
    /// (transients) kept, and INITIALIZING cleared.
    #[inline]
    const fn restated(self, state: State, generation: u64) -> Word {
        Word(state.bits() | (self.0 & COUNT_MASK) | ((generation & GEN_MASK) << GEN_SHIFT))
    }

    /// A word with these fields (initializing clear, no transients).
    pub(crate) const fn new(state: State, count: u32, generation: u64) -> Word {
        Word(
            state.bits()
                | (((count as i64 + BIAS) as u64) << COUNT_SHIFT)
                | ((generation & GEN_MASK) << GEN_SHIFT),
        )
    }

    /// This word with the initializing flag set or cleared.
    #[cfg(test)]
    pub(crate) const fn with_initializing(self, on: bool) -> Word {
        if on {
            Word(self.0 | INITIALIZING)
        } else {
            Word(self.0 & !INITIALIZING)
        }
    }

    /// The next generation number (wrapping within the field).
    pub(crate) const fn next_generation(self) -> u64 {
        (self.generation() + 1) & GEN_MASK
    }

    /// Debug-build check of the documented invariant.
    #[inline]
    pub(crate) fn check(self) {
        debug_assert!(
            !self.initializing() || matches!(self.state(), State::Uninitialized | State::Released),
            "{self:?}"
        );
    }
}

/// What [`StateWord::join`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Join {
    /// Counted; a word of the generation joined.
    Joined(Word),
    /// Active at the limit: not counted ([L10](crate::contract#L10)).
    Limit,
    /// Not Active: not counted; take the slow path.
    NotActive,
}

/// What [`StateWord::leave`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Leave {
    /// Decremented; the count left (transients included).
    Left(u32),
    /// This took the count from 1 to 0: the word it left (Active, count 0).
    /// The caller must call [`StateWord::finish_last`] or
    /// [`StateWord::restore`].
    Last(Word),
    /// No count to take (not Active, [L4](crate::contract#L4)); nothing
    /// changed. The word seen, to say why.
    NotActive(Word),
}

/// What [`StateWord::finish_last`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Last {
    /// The final cleanup: the word is Draining and the caller owns the
    /// teardown.
    Final,
    /// A startup joined first: the cleanup was a plain decrement, with this
    /// count left.
    Kept(u32),
}

/// The state word and the entry hint, alone on their cache line.
struct Words {
    word: AtomicU64,
    entry: AtomicU64,
}

/// The atomic state word, alone on its cache line, with its transitions.
pub(crate) struct StateWord {
    cell: CachePadded<Words>,
}

impl StateWord {
    crate::sync::loom_const_fn! {
        pub(crate) fn new() -> StateWord {
            StateWord {
                cell: CachePadded::new(Words {
                    word: AtomicU64::new(Word::UNINITIALIZED.0),
                    // A hint of Active matches no word before the first
                    // startup: an enter then goes to the slow path, which
                    // refuses it.
                    entry: AtomicU64::new(Entry::active_in(0).0),
                }),
            }
        }
    }

    /// The entry hint: what an enter expects (see [`Entry`]).
    #[inline]
    pub(crate) fn entry(&self) -> Entry {
        // Relaxed: a hint; the enter's Acquire load of the word decides.
        Entry(self.cell.entry.load(Ordering::Relaxed))
    }

    /// The current word.
    #[inline]
    pub(crate) fn load(&self) -> Word {
        // [P1] Acquire: pairs with the Release/AcqRel writes of every transition,
        // so a caller that sees Active also sees the initialization.
        Word(self.cell.word.load(Ordering::Acquire))
    }

    /// A compare-and-swap of the whole word (AcqRel; Acquire on failure, so
    /// the returned word is re-examined with what it publishes).
    /// Every transition goes through it: [P1] (Active published) and [P2]
    /// (the flip to Draining), see `docs::orderings`.
    #[inline]
    fn cas(&self, current: Word, new: Word) -> Result<Word, Word> {
        self.cell
            .word
            .compare_exchange(current.0, new.0, Ordering::AcqRel, Ordering::Acquire)
            .map(Word)
            .map_err(Word)
    }

    /// The startup fast path: one `fetch_add`, kept if the word it returns
    /// was Active with room below `limit`.
    #[inline]
    pub(crate) fn join(&self, limit: u32) -> Join {
        // [P1, P2] AcqRel: Acquire to see the initialization that published Active;
        // Release so a later final cleanup sees what this caller did before.
        let prev = Word(self.cell.word.fetch_add(ONE, Ordering::AcqRel));
        // Active with 0 ≤ count < limit. A count of 0 while Active: this
        // raced the cleanup that took the count to 0 and landed before its
        // flip, which will now fail (rule 1).
        if prev.active_offset(0) < u64::from(limit) {
            return Join::Joined(prev);
        }
        self.settle_join(limit)
    }

    /// Rule 2: keeps this startup's unit if the word is Active and within
    /// the limit now, or takes it back.
    #[cold]
    fn settle_join(&self, limit: u32) -> Join {
        let mut w = self.load();
        loop {
            let c = w.signed_count(); // this startup's unit included
            if c <= 0 {
                // A cleanup's transient −1 is in flight; it is undone within
                // a few instructions.
                crate::sync::spin_wait();
                w = self.load();
                continue;
            }
            if w.is_active() && c <= i64::from(limit) {
                return Join::Joined(w);
            }
            match self.cas(w, w.decremented()) {
                // Active here means above the limit (c ≥ 2: the last unit
                // of an Active word is always kept, above).
                Ok(_) if w.is_active() => return Join::Limit,
                Ok(_) => return Join::NotActive,
                Err(now) => w = now,
            }
        }
    }

    /// The cleanup fast path: one `fetch_sub`, undone if there was no count
    /// to take.
    #[inline]
    pub(crate) fn leave(&self) -> Leave {
        // [P2] AcqRel: Release publishes this caller's work to the eventual final
        // cleanup; Acquire, for the cleanup that takes the count to 0, to see
        // every earlier cleanup's work.
        let prev = Word(self.cell.word.fetch_sub(ONE, Ordering::AcqRel));
        // Active with a count of 1 + left.
        let left = prev.active_offset(1);
        if left < 1 << COUNT_BITS {
            if left > 0 {
                return Leave::Left(left as u32);
            }
            return Leave::Last(prev.decremented());
        }
        self.undo_leave();
        Leave::NotActive(prev)
    }

    /// Rule 4: takes back a cleanup that found no count.
    #[cold]
    fn undo_leave(&self) {
        // [P2] Release: nothing to publish, but AcqRel keeps this RMW in the
        // release sequence of the word like every other.
        self.cell.word.fetch_add(ONE, Ordering::AcqRel);
    }

    /// Rule 1: after [`Leave::Last`], flips Active(0) to Draining, or backs
    /// off if a startup joined first.
    pub(crate) fn finish_last(&self, last: Word) -> Last {
        let draining = last.restated(State::Draining, last.generation());
        loop {
            // [P2, P4] AcqRel: Acquire every earlier cleanup's Release decrement;
            // Release the flip to enters whose Acquire load sees Draining.
            match self.cas(last, draining) {
                Ok(_) => return Last::Final,
                Err(now) if now.is_active() && now.generation() == last.generation() => {
                    match now.signed_count() {
                        c if c > 0 => return Last::Kept(c as u32),
                        0 => {} // the word changed elsewhere (a flag): retry
                        _ => crate::sync::spin_wait(), // a transient −1 in flight
                    }
                }
                // Not reachable without an unpaired cleanup stealing this
                // generation's last unit: this cleanup was then not the last.
                Err(_) => return Last::Kept(0),
            }
        }
    }

    /// After [`Leave::Last`] from inside a guard ([L11](crate::contract#L11)):
    /// puts the unit back. `false` if the generation ended meanwhile (a
    /// startup joined and its own cleanup was final): the cleanup stands as
    /// a plain decrement.
    pub(crate) fn restore(&self, last: Word) -> bool {
        let mut w = self.load();
        loop {
            if !(w.is_active() && w.generation() == last.generation()) {
                return false;
            }
            match self.cas(w, w.incremented()) {
                Ok(_) => return true,
                Err(now) => w = now,
            }
        }
    }

    /// [L18](crate::contract#L18): Active(n) → Draining(n) for good, by CAS,
    /// whatever the count (the count field is kept, so every pending
    /// transient still undoes exactly, rule 3). `Err(word)`: not Active.
    pub(crate) fn end_for_good(&self) -> Result<Word, Word> {
        let mut w = self.load();
        loop {
            if !w.is_active() {
                return Err(w);
            }
            // AcqRel (in `cas`): as the final cleanup's flip, so an enter that
            // sees Draining fails.
            match self.cas(w, w.restated(State::Draining, w.generation())) {
                Ok(_) => return Ok(w),
                Err(now) => w = now,
            }
        }
    }

    /// Sets INITIALIZING on an Uninitialized or Released word (under
    /// `control`; an RMW so that transients are kept, rule 3).
    pub(crate) fn mark_initializing(&self) {
        // Relaxed: the flag is only read under `control` or by fast paths
        // that see a word that is not Active and refuse anyway.
        let before = Word(self.cell.word.fetch_or(INITIALIZING, Ordering::Relaxed));
        debug_assert!(!before.is_active() && !before.initializing(), "{before:?}");
    }

    /// Clears INITIALIZING: a failed initialization puts the state back
    /// ([L2](crate::contract#L2); under `control`, rule 3).
    pub(crate) fn clear_initializing(&self) {
        // [P3] Release: a startup that sees the flag gone also sees the cleanup of
        // the failed initialization.
        self.cell.word.fetch_and(!INITIALIZING, Ordering::Release);
    }

    /// INITIALIZING → Active in `generation`, count 1 plus the transients
    /// present (under `control`, rule 3).
    pub(crate) fn publish_active(&self, generation: u64) {
        self.publish(|w| {
            // A transient −1 would eat the initializer's unit: wait it out.
            (w.signed_count() >= 0).then(|| w.restated(State::Active, generation).incremented())
        });
        // After the word: an enter that reads this hint before the word is
        // Active in `generation` finds the word not matching it and retries
        // on the slow path.
        self.publish_entry(Entry::active_in(generation));
    }

    /// Sets the entry hint.
    fn publish_entry(&self, entry: Entry) {
        // Relaxed: a hint (see `Entry`).
        self.cell.entry.store(entry.0, Ordering::Relaxed);
    }

    /// Draining → Released in `generation`, transients kept (under
    /// `control`, rule 3).
    pub(crate) fn publish_released(&self, generation: u64) {
        self.publish(|w| Some(w.restated(State::Released, generation)));
    }

    /// A slow-path transition by CAS loop; `next` answers `None` to wait.
    fn publish(&self, next: impl Fn(Word) -> Option<Word>) {
        let mut w = self.load();
        loop {
            let Some(n) = next(w) else {
                crate::sync::spin_wait();
                w = self.load();
                continue;
            };
            n.check();
            // Release (in the AcqRel): whoever sees this word also sees the
            // initialization (and its resources) or the whole teardown.
            match self.cas(w, n) {
                Ok(_) => return,
                Err(now) => w = now,
            }
        }
    }

    /// The final cleanup's flip from Active(1), for unit tests.
    #[cfg(test)]
    pub(crate) fn drain_for_tests(&self) -> bool {
        match self.leave() {
            Leave::Last(last) => self.finish_last(last) == Last::Final,
            _ => false,
        }
    }

    /// Sets the word outright: tests start the generation near its wrap.
    #[cfg(test)]
    pub(crate) fn force(&self, w: Word) {
        self.cell.word.store(w.0, Ordering::SeqCst);
        if w.is_active() {
            self.publish_entry(w.entry());
        }
    }

    /// Sets the word and leaves the entry hint as it is: a hint gone
    /// stale, as between a publication and its hint (tests).
    #[cfg(test)]
    pub(crate) fn force_word_only(&self, w: Word) {
        self.cell.word.store(w.0, Ordering::SeqCst);
    }
}

impl fmt::Debug for Word {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Word")
            .field("state", &self.state())
            .field("initializing", &self.initializing())
            .field("count", &self.count())
            .field("generation", &self.generation())
            .finish()
    }
}

#[cfg(test)]
mod tests;
