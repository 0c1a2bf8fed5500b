//! The packed state word: the lifecycle's state, reference count and
//! generation in one `AtomicU64`, so every fast-path transition is one
//! compare-and-swap.
//!
//! | bits  | field          | meaning |
//! |-------|----------------|---------|
//! | 0–1   | `STATE`        | [`State`]: 0 Uninitialized, 1 Active, 2 Draining, 3 Released |
//! | 2     | `INITIALIZING` | a first startup is running the provider's initialization hook; only set with Uninitialized or Released |
//! | 3–32  | `COUNT`        | the reference count (30 bits, never wraps: rule L10) |
//! | 33–63 | `GENERATION`   | completed teardowns so far (31 bits, wrapping) |
//!
//! Invariants (checked by `Word::check` in debug builds and by the proptest
//! model): `COUNT ≥ 1` exactly when `STATE` is Active; `INITIALIZING` only with
//! Uninitialized or Released.

use std::fmt;

/// The four states of the lifecycle (see the crate docs' state table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
    pub(crate) const fn incremented(self) -> Word {
        Word(self.0 + (1 << COUNT_SHIFT))
    }

    /// Same state and generation, count - 1 (caller checked count > 1).
    #[inline]
    pub(crate) const fn decremented(self) -> Word {
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
