//! The blocking waits the final cleanup's cancel step ends
//! ([S6](crate::contract#S6)): a blocking close with a linger timeout
//! registers a waker here, and the cancel step wakes them all.

use std::task::Waker;

use super::RawLifecycle;

impl RawLifecycle {
    /// Registers `waker` to be woken by the final cleanup's cancel step;
    /// `None` if that step has begun already (the state is not Active).
    pub(crate) fn on_cancel(&self, waker: Waker) -> Option<u64> {
        let mut c = self.cancels.lock();
        // The cancel step takes this lock after the flip to Draining: if it
        // ran first, this load (Acquire, after the lock) sees Draining.
        if !self.word.load().is_active() {
            return None;
        }
        Some(c.add(waker))
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
