//! The packed state word: the lifecycle's state, reference count and
//! generation in one `AtomicU64`, and every transition of it, each ordering
//! argued once (the way tokio's task state does it). Fast paths are one
//! compare-and-swap; slow-path transitions are stores made under the
//! lifecycle's control mutex.
//!
//! | bits  | field          | meaning |
//! |-------|----------------|---------|
//! | 0–1   | `STATE`        | [`State`]: 0 Uninitialized, 1 Active, 2 Draining, 3 Released |
//! | 2     | `INITIALIZING` | a first startup is running the provider's initialization hook; only set with Uninitialized or Released |
//! | 3–32  | `COUNT`        | the reference count (30 bits, never wraps: rule [L10](crate::contract#L10)) |
//! | 33–63 | `GENERATION`   | completed teardowns so far (31 bits, wrapping after 2^31; socket handles do not depend on it, see [S7](crate::contract#S7)) |
//!
//! Invariants (checked by `Word::check` in debug builds and by the proptest
//! model): `COUNT ≥ 1` exactly when `STATE` is Active; `INITIALIZING` only with
//! Uninitialized or Released.
//!
//! | transition | from → to | how | by |
//! |---|---|---|---|
//! | [`join`](StateWord::join) | Active(n) → Active(n+1) | CAS | any startup |
//! | [`leave`](StateWord::leave) | Active(n ≥ 2) → Active(n−1) | CAS | any cleanup |
//! | [`begin_drain`](StateWord::begin_drain) | Active(1) → Draining | CAS | the final cleanup |
//! | [`mark_initializing`](StateWord::mark_initializing) | Uninitialized/Released → same + INITIALIZING | store | first startup, under `control` |
//! | [`publish`](StateWord::publish) | INITIALIZING → Active(1), or back ([L2](crate::contract#L2)) | store | the initializer, under `control` |
//! | [`publish`](StateWord::publish) | Draining → Released(g+1) | store | the drainer, under `control` |
//!
//! Stores are race-free because in those states only slow paths (all under
//! `control`) write the word: the fast-path CASes require Active and fail.

use std::fmt;

use crate::sync::{AtomicU64, CachePadded, Ordering};
use crate::thread;

/// The four states of the lifecycle (see the crate docs' state table).
///
/// `Uninitialized` is spelled the American way like the rest of the API;
/// the error [`NotInitialised`](crate::Error::NotInitialised) keeps the
/// British spelling of the Winsock code it stands for, `WSANOTINITIALISED`.
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
const GEN_SHIFT: u32 = COUNT_SHIFT + COUNT_BITS;
const GEN_BITS: u32 = 64 - GEN_SHIFT;
const GEN_MASK: u64 = (1 << GEN_BITS) - 1;

/// The largest reference count the word can hold; the configurable limit is
/// clamped to it.
pub const MAX_COUNT: u32 = (1 << COUNT_BITS) - 1;

/// A decoded copy of the state word.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Word(pub(crate) u64);

impl Word {
    pub(crate) const UNINITIALIZED: Word = Word(0);

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

    #[inline]
    pub(crate) const fn count(self) -> u32 {
        ((self.0 & COUNT_MASK) >> COUNT_SHIFT) as u32
    }

    #[inline]
    pub(crate) const fn generation(self) -> u64 {
        self.0 >> GEN_SHIFT
    }

    /// Same state and generation, count + 1 (caller checked the limit).
    #[inline]
    const fn incremented(self) -> Word {
        Word(self.0 + (1 << COUNT_SHIFT))
    }

    /// Same state and generation, count - 1 (caller checked count > 1).
    #[inline]
    const fn decremented(self) -> Word {
        Word(self.0 - (1 << COUNT_SHIFT))
    }

    /// A word with these fields (initializing clear).
    pub(crate) const fn new(state: State, count: u32, generation: u64) -> Word {
        Word(
            state.bits() | ((count as u64) << COUNT_SHIFT) | ((generation & GEN_MASK) << GEN_SHIFT),
        )
    }

    /// This word with the initializing flag set or cleared.
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

    /// Debug-build check of the documented invariants.
    #[inline]
    pub(crate) fn check(self) {
        debug_assert_eq!(self.is_active(), self.count() >= 1, "{self:?}");
        debug_assert!(
            !self.initializing() || matches!(self.state(), State::Uninitialized | State::Released),
            "{self:?}"
        );
    }
}

/// What [`StateWord::join`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Join {
    /// Counted; the word before the increment.
    Joined(Word),
    /// Active at the limit: not counted ([L10](crate::contract#L10)).
    Limit,
    /// Not Active: take the slow path.
    NotActive(Word),
}

/// What [`StateWord::leave`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Leave {
    /// Decremented; the word before.
    Left(Word),
    /// The count is 1: this would be the final cleanup; nothing changed.
    Last(Word),
    /// Not Active: nothing to leave ([L4](crate::contract#L4)).
    NotActive,
}

/// The atomic state word, alone on its cache line, with its transitions.
pub(crate) struct StateWord {
    word: CachePadded<AtomicU64>,
}

impl StateWord {
    crate::sync::loom_const_fn! {
        pub(crate) fn new() -> StateWord {
            StateWord {
                word: CachePadded::new(AtomicU64::new(Word::UNINITIALIZED.0)),
            }
        }
    }

    /// The current word.
    #[inline]
    pub(crate) fn load(&self) -> Word {
        // Acquire: pairs with the Release/AcqRel writes of every transition,
        // so a caller that sees Active also sees the initialization.
        Word(self.word.load(Ordering::Acquire))
    }

    /// The expected value for a fast-path CAS: the word this thread last
    /// wrote to lifecycle `id` if `usable` accepts it, else a fresh load.
    ///
    /// Under contention a load followed by a CAS costs two coherence
    /// transactions (the load fetches the line shared, the CAS upgrades it);
    /// a CAS from a guess costs one when the guess is right, and when it is
    /// wrong it fails and returns the current value with the line already
    /// owned. Correctness does not depend on the guess: the CAS compares all
    /// 64 bits, so it succeeds only if the guess *was* the current word,
    /// exactly as if it had just been loaded; every decision is taken on a
    /// loaded or CAS-returned word.
    #[inline]
    fn guess(&self, id: u64, usable: impl Fn(Word) -> bool) -> Word {
        thread::hint(id)
            .map(Word)
            .filter(|w| usable(*w))
            .unwrap_or_else(|| self.load())
    }

    /// The fast-path increment of a startup while Active, below `limit`.
    #[inline]
    pub(crate) fn join(&self, id: u64, limit: u32) -> Join {
        let mut w = self.guess(id, |w| w.is_active() && w.count() < limit);
        loop {
            if !w.is_active() {
                return Join::NotActive(w);
            }
            if w.count() >= limit {
                return Join::Limit;
            }
            // AcqRel on success: Acquire to see the initialization that
            // published Active; Release so a later final cleanup (which reads
            // this count) sees what this caller did before. Acquire on
            // failure: the fresh word is re-examined.
            match self.word.compare_exchange_weak(
                w.0,
                w.incremented().0,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    thread::remember(id, w.incremented().0);
                    return Join::Joined(w);
                }
                Err(now) => w = Word(now),
            }
        }
    }

    /// The fast-path decrement of a cleanup that is not the final one.
    #[inline]
    pub(crate) fn leave(&self, id: u64) -> Leave {
        let mut w = self.guess(id, |w| w.is_active() && w.count() > 1);
        loop {
            if !w.is_active() {
                return Leave::NotActive;
            }
            if w.count() == 1 {
                return Leave::Last(w);
            }
            // AcqRel on success: Release publishes this caller's work to the
            // eventual final cleanup; Acquire keeps the chain of decrements a
            // release sequence. Acquire on failure: re-examined.
            match self.word.compare_exchange_weak(
                w.0,
                w.decremented().0,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    thread::remember(id, w.decremented().0);
                    return Leave::Left(w);
                }
                Err(now) => w = Word(now),
            }
        }
    }

    /// The 1 → 0 transition: Active(1) in `active`'s generation → Draining.
    /// `false` if the word is no longer `active` (retry from a fresh load).
    pub(crate) fn begin_drain(&self, active: Word) -> bool {
        debug_assert!(active.is_active() && active.count() == 1);
        let draining = Word::new(State::Draining, 0, active.generation());
        // AcqRel: Acquire every earlier cleanup's Release decrement; Release
        // the flip to enters whose Acquire load sees Draining.
        self.word
            .compare_exchange(active.0, draining.0, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Sets INITIALIZING on an Uninitialized or Released word (under
    /// `control`; see the module docs for why a store is race-free).
    pub(crate) fn mark_initializing(&self, w: Word) {
        debug_assert!(!w.is_active() && !w.initializing());
        // Relaxed: the flag is only read under `control` or compared by
        // fast-path CASes that require Active and so fail anyway.
        self.word
            .store(w.with_initializing(true).0, Ordering::Relaxed);
    }

    /// Sets the word outright: tests start the generation near its wrap.
    #[cfg(test)]
    pub(crate) fn force(&self, w: Word) {
        self.word.store(w.0, Ordering::SeqCst);
    }

    /// Publishes a slow-path result: Active(1) after initialization, the
    /// state before a failed initialization, or Released after the drain
    /// (under `control`).
    pub(crate) fn publish(&self, w: Word) {
        w.check();
        // Release: whoever sees this word also sees the initialization (and
        // its resources) or the whole teardown.
        self.word.store(w.0, Ordering::Release);
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
mod tests {
    use super::*;

    #[test]
    fn state_display_and_flag_idempotence() {
        let names: Vec<String> = [
            State::Uninitialized,
            State::Active,
            State::Draining,
            State::Released,
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(names, ["Uninitialized", "Active", "Draining", "Released"]);
        // Setting the flag twice keeps it set; clearing twice keeps it clear.
        let w = Word::new(State::Released, 0, 5);
        assert!(
            w.with_initializing(true)
                .with_initializing(true)
                .initializing()
        );
        assert!(
            !w.with_initializing(false)
                .with_initializing(false)
                .initializing()
        );
        assert_eq!(w.with_initializing(true).generation(), 5);
    }

    #[test]
    fn fields_round_trip() {
        let w = Word::new(State::Active, MAX_COUNT, GEN_MASK);
        assert_eq!(w.state(), State::Active);
        assert_eq!(w.count(), MAX_COUNT);
        assert_eq!(w.generation(), GEN_MASK);
        assert_eq!(w.next_generation(), 0);
        let w = Word::new(State::Active, 1, 7).incremented();
        assert_eq!((w.count(), w.generation()), (2, 7));
        assert_eq!(w.decremented().count(), 1);
        let r = Word::new(State::Released, 0, 3).with_initializing(true);
        assert!(r.initializing());
        assert_eq!(r.state(), State::Released);
        assert!(!r.with_initializing(false).initializing());
        for s in [
            State::Uninitialized,
            State::Active,
            State::Draining,
            State::Released,
        ] {
            assert_eq!(Word::new(s, 0, 0).state(), s);
        }
    }
}
