//! The blocking waits the final cleanup's cancel step ends
//! ([S6](crate::contract#S6)): a blocking close with a linger timeout
//! registers a waker here, and the cancel step wakes them all.

use std::task::Waker;

use super::RawLifecycle;

impl RawLifecycle {
    /// Registers `waker` to be woken by the cancel step of the final
    /// cleanup of `generation` (`None`: the current one); `None` if that
    /// step has begun already (the generation is not the Active one).
    pub(crate) fn on_cancel(&self, waker: Waker, generation: Option<u64>) -> Option<u64> {
        let mut c = self.cancels.lock();
        // The cancel step takes this lock after the flip to Draining: if it
        // ran first, this load (Acquire, after the lock) sees Draining.
        if !self.is_active_in(generation) {
            return None;
        }
        Some(c.add(waker))
    }

    /// Whether `generation` (`None`: whichever) is the Active one: a token
    /// abandoned by a bounded guard wait ([L16](crate::contract#L16)) must
    /// not take a later generation for its own.
    #[inline]
    pub(crate) fn is_active_in(&self, generation: Option<u64>) -> bool {
        let w = self.word.load();
        w.is_active() && generation.is_none_or(|g| g == w.generation())
    }

    /// How many wakers wait for the cancel step (tests check they do not
    /// pile up).
    #[cfg(test)]
    pub(crate) fn cancel_waiters(&self) -> usize {
        self.cancels.lock().len()
    }

    /// Forgets a registration of [`on_cancel`](RawLifecycle::on_cancel).
    pub(crate) fn forget_cancel(&self, key: u64) {
        self.cancels.lock().remove(key);
    }
}
