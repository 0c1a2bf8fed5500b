//! Ending a generation at process exit ([L18](crate::contract#L18)).

use super::Lifecycle;
use crate::{Error, Provider};

impl<P: Provider> Lifecycle<P> {
    /// Ends the Active generation at process exit, without waiting on
    /// threads the operating system may already have stopped
    /// ([L18](crate::contract#L18)): it takes no lock (a stopped thread may
    /// hold one), waits for no guard, flushes no socket and joins no thread.
    /// The state becomes Draining for good, whatever the count: every later
    /// guard, socket call and cleanup gets
    /// [`NotInitialised`](Error::NotInitialised), and a startup gets
    /// [`InProgress`](Error::InProgress) without waiting. Everything of the
    /// generation (state, sockets, resources) stays where it is: the process
    /// is ending and the OS reclaims it. Returns the generation ended.
    ///
    /// Call it where the process exits with the provider still started: on
    /// Windows from `DllMain`'s `DLL_PROCESS_DETACH` when its `lpReserved`
    /// is non-null (the process is exiting; every other thread is already
    /// gone), or from an `atexit` handler. It is the only thing of this
    /// crate to call from a loader callback: never a cleanup (it waits and
    /// starts threads), a startup, or anything that joins or waits. When
    /// the library is being unloaded with the process going on
    /// (`lpReserved` null), the host has already made the final cleanup.
    ///
    /// ```
    /// use provider_lifecycle::*;
    ///
    /// struct P;
    /// impl Provider for P {
    ///     type Socket = NoSocket;
    ///     type State = ();
    ///     fn versions(&self) -> VersionRange {
    ///         VersionRange::new(Version::new(2, 2), Version::new(2, 2))
    ///     }
    ///     fn initialize(&self, _: &mut Registrar) -> Result<(), Error> {
    ///         Ok(())
    ///     }
    /// }
    ///
    /// static PROVIDER: Lifecycle<P> = Lifecycle::new(P);
    /// PROVIDER.startup(Version::new(2, 2)).unwrap();
    /// let leaked = PROVIDER.token().unwrap(); // a thread the OS stopped
    /// std::mem::forget(leaked);
    /// // At exit: returns at once, with a token still out.
    /// assert_eq!(PROVIDER.end_at_exit(), Ok(0));
    /// assert_eq!(PROVIDER.state(), State::Draining);
    /// assert_eq!(PROVIDER.enter().err(), Some(Error::NotInitialised(NotActive::Draining)));
    /// assert_eq!(PROVIDER.startup(Version::new(2, 2)).err(), Some(Error::InProgress));
    /// ```
    ///
    /// # Errors
    ///
    /// [`NotInitialised`](Error::NotInitialised) if no generation is Active
    /// (nothing to end); [`InProgress`](Error::InProgress) if a final cleanup
    /// or an initialization is running (it is left to finish, and a startup
    /// that finds Draining no longer waits).
    pub fn end_at_exit(&self) -> Result<u64, Error> {
        self.raw.end_at_exit()
    }
}
