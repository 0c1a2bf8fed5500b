//! A lifecycle's identity in the per-thread records
//! ([L11](crate::contract#L11)): a process-unique id, never its address, so
//! a leaked guard of a dropped lifecycle is never taken for a guard of a
//! new one at the same address.

use super::RawLifecycle;
use crate::sync::{self, Counter, Ordering};
use crate::thread;

impl RawLifecycle {
    /// This lifecycle's process-unique id.
    #[inline]
    pub(crate) fn id(&self) -> u64 {
        // Relaxed: the id is only compared for identity; the CAS below makes
        // every thread agree on one value.
        let id = self.id.load(Ordering::Relaxed);
        if id != 0 { id } else { self.assign_id() }
    }

    /// This lifecycle's id, for a caller that has seen the word Active:
    /// the startup that published Active assigned it first, and the
    /// caller's Acquire load of the word synchronizes with that
    /// publication (P1 in `docs::orderings`), so no lazy check is needed.
    #[inline]
    pub(crate) fn active_id(&self) -> u64 {
        let id = self.id.load(Ordering::Relaxed);
        debug_assert_ne!(id, 0, "an Active lifecycle has an id");
        id
    }

    #[cold]
    fn assign_id(&self) -> u64 {
        let fresh = sync::next_id(Counter::Lifecycle);
        match self
            .id
            .compare_exchange(0, fresh, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => fresh,
            Err(winner) => winner,
        }
    }

    /// Whether the calling thread holds a guard of this lifecycle ([L11](crate::contract#L11)).
    pub(crate) fn held_by_current_thread(&self) -> bool {
        thread::holds(self.id())
    }
}
