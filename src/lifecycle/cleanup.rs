//! Counted cleanups ([L4](crate::contract#L4), [L5](crate::contract#L5)):
//! the decrement, and the 1 → 0 transition that hands the final cleanup to
//! `teardown.rs`.

#[cfg(not(loom))]
use std::future::Future;

use super::teardown;
use super::{Cleanup, Lifecycle};
use crate::raw::Begun;
use crate::state::{Leave, Word};
use crate::{Error, Provider};

/// How a cleanup began.
pub(super) enum Begin<'a, P: Provider> {
    /// Only decremented; the count left.
    Decremented(u32),
    /// The final cleanup: its drain, to drive (boxed: this enum is the
    /// return value of the cleanup fast path, kept small).
    Final(Box<teardown::Drain<'a, P>>),
}

impl<P: Provider> Lifecycle<P> {
    /// Counts one cleanup (`WSPCleanup`). With the count above 1 it only
    /// decrements ([L5](crate::contract#L5)). The final one moves the state
    /// to Draining at once and tears down in the order of rule
    /// [L6](crate::contract#L6), returning only when the provider is Released
    /// and immediately re-initializable ([L7](crate::contract#L7)), with the
    /// drain report. No panic in user code escapes it or leaves the state in
    /// Draining ([L14](crate::contract#L14)).
    ///
    /// # Errors
    ///
    /// - [`Error::NotInitialised`]: the count is 0 (its [`NotActive`](crate::NotActive) says
    ///   [`NeverStarted`](crate::NotActive::NeverStarted), one cleanup too many,
    ///   [`Unpaired`](crate::NotActive::Unpaired), or
    ///   [`Draining`](crate::NotActive::Draining)); nothing changes
    ///   ([L4](crate::contract#L4));
    /// - [`Error::InProgress`]: the final cleanup was issued from a thread
    ///   holding an [`OperationGuard`](crate::OperationGuard) of this lifecycle; nothing changes
    ///   ([L11](crate::contract#L11)).
    ///
    /// ```
    /// # use provider_lifecycle::*;
    /// # struct P;
    /// # impl Provider for P {
    /// #     type Socket = NoSocket;
    /// #     type State = ();
    /// #     fn versions(&self) -> VersionRange { VersionRange::new(Version::new(1, 1), Version::new(2, 2)) }
    /// #     fn initialize(&self, _: &mut Registrar) -> Result<(), Error> { Ok(()) }
    /// # }
    /// let l = Lifecycle::new(P);
    /// l.startup(Version::new(2, 2))?;
    /// l.startup(Version::new(2, 2))?;
    /// assert_eq!(l.cleanup()?, Cleanup::Decremented { remaining: 1 });
    /// let Cleanup::Final(report) = l.cleanup()? else { unreachable!() };
    /// assert!(report.is_clean());
    /// assert_eq!(l.state(), State::Released); // and ready to start again
    /// assert_eq!(l.cleanup(), Err(Error::NotInitialised(NotActive::Unpaired))); // one too many
    /// # Ok::<(), Error>(())
    /// ```
    #[inline]
    pub fn cleanup(&self) -> Result<Cleanup, Error> {
        // The final cleanup's engine stays out of line (`cleanup_last`), so
        // a decrement pays for no stack frame sized for a drain.
        self.decrement(
            |remaining| Cleanup::Decremented { remaining },
            |last| self.cleanup_last(last),
        )
    }

    /// Every cleanup's decrement ([L4](crate::contract#L4),
    /// [L5](crate::contract#L5)): `decremented` builds the result of a
    /// plain decrement, `last` takes over when the count reached 0. Both
    /// the blocking and the async cleanup start here; always inlined, each
    /// builds its own result in place.
    #[inline(always)]
    fn decrement<R>(
        &self,
        decremented: impl FnOnce(u32) -> R,
        last: impl FnOnce(Word) -> Result<R, Error>,
    ) -> Result<R, Error> {
        match self.raw.word.leave() {
            Leave::Left(remaining) => Ok(decremented(remaining)),
            Leave::NotActive(w) => Err(Error::NotInitialised(w.refused_cleanup())),
            Leave::Last(word) => last(word),
        }
    }

    /// A blocking cleanup whose decrement took the count to 0.
    #[cold]
    #[inline(never)]
    fn cleanup_last(&self, last: Word) -> Result<Cleanup, Error> {
        Ok(match self.begin_last(last)? {
            Begin::Decremented(remaining) => Cleanup::Decremented { remaining },
            Begin::Final(drain) => Cleanup::Final(Box::new(drain.run_blocking())),
        })
    }

    /// [`cleanup`](Lifecycle::cleanup) for async hosts: the same engine,
    /// driven from a future that never blocks its thread. A cleanup that only
    /// decrements completes on its first poll; the final one waits for
    /// guards and sockets by registering the task's waker (with the last
    /// guard's leaver and with the sockets' wakers), and for socket deadlines
    /// through one helper thread that it joins before completing
    /// ([L13](crate::contract#L13)). Runtime-agnostic (plain `std::task`);
    /// the report is the one `cleanup` would give.
    ///
    /// Dropped before it completes, the future finishes the teardown on the
    /// dropping thread (a teardown cannot be abandoned halfway). Polled again
    /// after it completed, it answers `NotInitialised`.
    ///
    /// # Errors
    ///
    /// As [`cleanup`](Lifecycle::cleanup).
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
    /// l.startup(Version::new(2, 2))?;
    /// l.startup(Version::new(2, 2))?;
    /// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// rt.block_on(async {
    ///     // A decrement completes on its first poll; the final one drains.
    ///     assert_eq!(l.cleanup_async().await?, Cleanup::Decremented { remaining: 1 });
    ///     let done = l.cleanup_async().await?;
    ///     assert!(done.report().is_some_and(|r| r.is_clean()));
    ///     Ok::<(), Error>(())
    /// })?;
    /// # Ok::<(), Error>(())
    /// ```
    #[cfg(not(loom))]
    pub fn cleanup_async(&self) -> impl Future<Output = Result<Cleanup, Error>> + Send + '_ {
        super::cleanup_future::CleanupFuture::new(self)
    }

    /// The start of every cleanup: the fast-path decrement, or the 1 → 0
    /// transition that begins the drain.
    #[inline]
    // Only the async cleanup, which loom builds leave out, calls it.
    #[cfg_attr(loom, allow(dead_code))]
    pub(super) fn begin_cleanup(&self) -> Result<Begin<'_, P>, Error> {
        self.decrement(Begin::Decremented, |last| self.begin_last(last))
    }

    /// Rule 1's flip and the drain it begins, or a plain decrement if a
    /// startup joined first.
    fn begin_last(&self, last: Word) -> Result<Begin<'_, P>, Error> {
        Ok(match self.raw.begin_final(last)? {
            Begun::Final(frame) => Begin::Final(Box::new(teardown::Drain::start(self, frame))),
            Begun::Kept(remaining) => Begin::Decremented(remaining),
            Begun::Overtaken => Begin::Decremented(0),
        })
    }
}
