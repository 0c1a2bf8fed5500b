//! The one registry of wakers the raw lifecycle keeps, for every wait it
//! ends: async startups waiting for the state to change, and blocking
//! closes waiting for the cancel step ([S6](crate::contract#S6)).

use std::task::Waker;

/// Wakers waiting for one event, each under a key so that a waiter that
/// gives up takes its own back.
pub(crate) struct Wakers {
    next: u64,
    list: Vec<(u64, Waker)>,
}

impl Wakers {
    crate::sync::loom_const_fn! {
        pub(crate) fn new() -> Wakers {
            Wakers {
                next: 0,
                list: Vec::new(),
            }
        }
    }

    /// Adds `waker`; returns its key.
    pub(crate) fn add(&mut self, waker: Waker) -> u64 {
        self.next += 1;
        self.list.push((self.next, waker));
        self.next
    }

    /// Takes back the waker added under `key`.
    pub(crate) fn remove(&mut self, key: u64) {
        self.list.retain(|(k, _)| *k != key);
    }

    /// Takes every waker, to wake them once the lock is released.
    pub(crate) fn take(&mut self) -> Vec<Waker> {
        std::mem::take(&mut self.list)
            .into_iter()
            .map(|(_, w)| w)
            .collect()
    }

    /// How many wait.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }
}
