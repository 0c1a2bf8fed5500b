//! Duplication keys ([W6](provider_lifecycle::contract#W6)): what
//! `WSPDuplicateSocket` puts in `dwProviderReserved` for the `WSPSocket`
//! that consumes it.
//!
//! - **Unguessable.** A key is SipHash-1-3, under a random per-generation
//!   key (std's `RandomState`, seeded by the operating system), of a counter:
//!   knowing every earlier key tells nothing of the next. 0 (no
//!   duplication) and keys still live are never handed out, so a key never
//!   wraps onto a live one.
//! - **Bound.** A key lives in its generation's table only (a final cleanup
//!   drops the table: a protocol info filled before it names nothing
//!   after), and records the target process it was made for: consumed from
//!   another process it is refused with `WSAEINVAL` (10022) and stays for
//!   the right one.
//! - **Consumed once, bounded.** Consuming a key removes it; at most
//!   [`MAX_ANNOUNCED`] unconsumed keys live at once, the oldest expiring
//!   first.
//!
//! A duplication into **another** process needs that process's own copy of
//! the provider to reach the same socket — through an object the operating
//! system can share (a kernel handle the provider duplicates into the
//! target, or shared memory). This crate keeps sockets in one process's
//! memory and does not do that: the target process's `WSPSocket` finds no
//! key in its own table and fails; only a duplication whose target is this
//! process (what `WSADuplicateSocket` to oneself does) is consumed.

use std::collections::VecDeque;
use std::hash::{BuildHasher, RandomState};

use provider_lifecycle::{Error, SocketHandle};

/// Unconsumed duplications kept per generation; the oldest expires first.
pub const MAX_ANNOUNCED: usize = 1024;

/// One announced duplication.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dup {
    pub(crate) handle: SocketHandle,
    /// The shim's socket id, shared by duplicates.
    pub(crate) socket: u64,
    /// `dwProcessId` of `WSPDuplicateSocket`.
    pub(crate) process: u32,
}

/// A generation's announced duplications.
#[derive(Debug, Default)]
pub(crate) struct Dups {
    secret: RandomState,
    drawn: u64,
    live: VecDeque<(u32, Dup)>,
}

impl Dups {
    /// A fresh key for `dup`; the oldest unconsumed one expires if
    /// [`MAX_ANNOUNCED`] are live.
    pub(crate) fn announce(&mut self, dup: Dup) -> u32 {
        let key = loop {
            self.drawn += 1;
            let key = self.secret.hash_one(self.drawn) as u32;
            if self.may_use(key) {
                break key;
            }
        };
        if self.live.len() == MAX_ANNOUNCED {
            self.live.pop_front();
        }
        self.live.push_back((key, dup));
        key
    }

    /// Whether a drawn key may be handed out: never 0 ("no duplication"),
    /// never a live key.
    fn may_use(&self, key: u32) -> bool {
        key != 0 && !self.live.iter().any(|&(k, _)| k == key)
    }

    /// Consumes `key` from `process`.
    ///
    /// # Errors
    ///
    /// [`Error::Fault`] (10014) for a key this generation does not hold
    /// (never announced, consumed, expired, or of another generation);
    /// `WSAEINVAL` (10022) for a key made for another process (kept).
    pub(crate) fn take(&mut self, key: u32, process: u32) -> Result<Dup, Error> {
        let at = self
            .live
            .iter()
            .position(|&(k, _)| k == key)
            .ok_or(Error::Fault)?;
        if self.live[at].1.process != process {
            return Err(Error::from_wsa_code(10022));
        }
        Ok(self.live.remove(at).map(|(_, d)| d).expect("found above"))
    }

    pub(crate) fn len(&self) -> usize {
        self.live.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dup(process: u32) -> Dup {
        Dup {
            handle: SocketHandle::from_raw(1),
            socket: 1,
            process,
        }
    }

    // W6: keys are not sequential, never 0, never a live one; consumed once.
    #[test]
    fn w6_keys_are_unpredictable_unique_and_consumed_once() {
        let mut d = Dups::default();
        let keys: Vec<u32> = (0..200).map(|_| d.announce(dup(7))).collect();
        assert!(keys.iter().all(|&k| k != 0));
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), keys.len(), "no live key twice");
        let steps = keys
            .windows(2)
            .filter(|w| w[1] == w[0].wrapping_add(1))
            .count();
        assert!(steps < 3, "not a counter: {steps} successive pairs");
        let guess = keys[199].wrapping_add(1);
        assert!(d.take(guess, 7).is_err() || keys.contains(&guess));
        assert!(d.take(keys[5], 7).is_ok());
        assert_eq!(d.take(keys[5], 7).unwrap_err(), Error::Fault, "once");
        // Another generation's table (another secret) draws other keys.
        let mut other = Dups::default();
        let theirs: Vec<u32> = (0..200).map(|_| other.announce(dup(7))).collect();
        assert_ne!(keys, theirs);
    }

    // W6: 0 and live keys are never handed out.
    #[test]
    fn w6_zero_and_live_keys_are_never_drawn() {
        let mut d = Dups::default();
        assert!(!d.may_use(0));
        let k = d.announce(dup(1));
        assert!(!d.may_use(k), "live");
        assert!(d.may_use(k.wrapping_add(1)) || k.wrapping_add(1) == 0);
        d.take(k, 1).unwrap();
        assert!(d.may_use(k), "consumed: free again");
    }

    // W6: bound to the target process; a mismatch is refused and kept.
    #[test]
    fn w6_a_key_made_for_another_process_is_refused_and_kept() {
        let mut d = Dups::default();
        let k = d.announce(dup(42));
        assert_eq!(d.take(k, 43).unwrap_err().wsa_code(), 10022);
        assert_eq!(d.len(), 1);
        assert_eq!(d.take(k, 42).unwrap().process, 42);
        assert_eq!(d.len(), 0);
    }

    // W6: at most MAX_ANNOUNCED live; the oldest expires first.
    #[test]
    fn w6_unconsumed_keys_are_bounded_oldest_first() {
        let mut d = Dups::default();
        let first = d.announce(dup(1));
        let second = d.announce(dup(1));
        for _ in 2..MAX_ANNOUNCED {
            d.announce(dup(1));
        }
        assert_eq!(d.len(), MAX_ANNOUNCED);
        let newest = d.announce(dup(1));
        assert_eq!(d.len(), MAX_ANNOUNCED);
        assert_eq!(d.take(first, 1).unwrap_err(), Error::Fault, "expired");
        assert!(d.take(second, 1).is_ok());
        assert!(d.take(newest, 1).is_ok());
    }
}
