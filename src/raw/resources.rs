//! The current generation's resources, kept under the slow-path lock
//! ([L6.4](crate::contract#L6.4)).

use super::RawLifecycle;
use crate::error::NotActive;
use crate::resource::Registered;

impl RawLifecycle {
    /// Adds a resource to the current generation; hands it back unless
    /// Active.
    pub(crate) fn register(&self, r: Registered) -> Result<(), (Registered, NotActive)> {
        let mut ctl = self.control.lock();
        // The drain takes the list under this lock after flipping the word,
        // so an Active seen here means the drain will see this entry.
        let w = self.word.load();
        if !w.is_active() {
            return Err((r, w.refused_use()));
        }
        ctl.resources.push(r);
        Ok(())
    }

    /// Takes the current generation's resources, in registration order.
    pub(crate) fn take_resources(&self) -> Vec<Registered> {
        std::mem::take(&mut self.control.lock().resources)
    }
}
