//! The startup slow path ([L9](crate::contract#L9)) and the frame of an
//! initialization ([L2](crate::contract#L2)): what a startup does when the
//! fast path finds the lifecycle not Active.

use std::task::Waker;
use std::time::Instant;

use super::{RawLifecycle, lane_of};
use crate::config::StartupPolicy;
use crate::resource::Registered;
use crate::state::State;
use crate::{Error, thread};

/// What a startup's slow path decided.
pub(crate) enum Slow<'a> {
    /// Active now: retry the fast path.
    Retry,
    /// This thread initializes the next generation.
    Initialize(Initializing<'a>),
    /// (Async only) the waker is registered: poll again when it fires.
    Pending,
}

/// With the `tracing` feature: a `Wait` startup gave up at the drain
/// deadline.
fn warn_gave_up(outstanding: usize) {
    #[cfg(feature = "tracing")]
    tracing::warn!(
        outstanding,
        "a Wait startup gave up with InProgress (10036): the drain deadline passed while the \
         final cleanup still waits for operations in flight (is this thread holding a token?)"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = outstanding;
}

impl RawLifecycle {
    /// Not Active: initialize, or wait for whoever is initializing or
    /// draining, as `policy` says ([L9](crate::contract#L9)).
    #[cold]
    /// With `waker` (an async startup), a wait registers it and answers
    /// [`Slow::Pending`] instead of blocking.
    pub(crate) fn startup_slow(
        &self,
        policy: StartupPolicy,
        waker: Option<&Waker>,
    ) -> Result<Slow<'_>, Error> {
        let me = thread::token();
        let mut ctl = self.control.lock();
        loop {
            let w = self.word.load();
            match w.state() {
                State::Active => return Ok(Slow::Retry),
                State::Draining => {
                    if policy != StartupPolicy::Wait
                        || ctl.drain_token == me
                        || self.exited()
                        || self.held_by_current_thread()
                    {
                        return Err(Error::InProgress);
                    }
                    if let Some(waker) = waker {
                        ctl.waiters.add(waker.clone());
                        return Ok(Slow::Pending);
                    }
                    // Never silently forever: past the drain deadline, with
                    // operations still in flight, this wait may be behind
                    // the caller's own token (L9, L16); give up with
                    // InProgress, and say so.
                    match ctl.drain_until {
                        Some(at)
                            if Instant::now() >= at && self.guards(lane_of(w.generation())) > 0 =>
                        {
                            warn_gave_up(self.guards(lane_of(w.generation())));
                            return Err(Error::InProgress);
                        }
                        Some(at) => ctl = self.cv.wait_until(ctl, at),
                        None => ctl = self.cv.wait(ctl),
                    }
                }
                State::Uninitialized | State::Released if w.initializing() => {
                    if policy == StartupPolicy::NoWait || ctl.init_token == me {
                        return Err(Error::InProgress);
                    }
                    if let Some(waker) = waker {
                        ctl.waiters.add(waker.clone());
                        return Ok(Slow::Pending);
                    }
                    ctl = self.cv.wait(ctl);
                }
                State::Uninitialized | State::Released => {
                    // L16: a lane whose abandoned guards are still out is
                    // skipped; with every lane taken, no generation can
                    // start without counting among them.
                    let Some(generation) = self.free_generation(w.generation()) else {
                        return Err(Error::system_not_ready(
                            "every guard lane holds operations a bounded final cleanup \
                             abandoned; they have not ended yet (L16)",
                        ));
                    };
                    self.word.mark_initializing();
                    ctl.init_token = me;
                    return Ok(Slow::Initialize(Initializing {
                        raw: self,
                        generation,
                        done: false,
                    }));
                }
            }
        }
    }
}

/// A startup running the provider's initialization. Dropped without
/// [`publish`](Initializing::publish) (an unwind), it puts the state back.
pub(crate) struct Initializing<'a> {
    raw: &'a RawLifecycle,
    /// The generation it initializes: the Released word's, or the first
    /// after it whose guard lane is free (L16).
    generation: u64,
    done: bool,
}

impl Initializing<'_> {
    /// The generation being initialized.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// Ends the initialization: `Ok(resources)` publishes Active with count 1
    /// and the generation's resources; `Err(())` puts the state back ([L2](crate::contract#L2);
    /// the caller released what was registered).
    pub(crate) fn publish(mut self, resources: Result<Vec<Registered>, ()>) {
        self.done = true;
        let mut ctl = self.raw.control.lock();
        ctl.init_token = 0;
        match resources {
            Ok(resources) => {
                ctl.resources = resources;
                // The id exists before any word is Active: a guard, having
                // seen Active, reads it without the lazy check (`active_id`).
                self.raw.id();
                self.raw.word.publish_active(self.generation);
            }
            Err(()) => self.raw.word.clear_initializing(),
        };
        self.raw.notify(ctl);
    }
}

impl Drop for Initializing<'_> {
    fn drop(&mut self) {
        if !self.done {
            let mut ctl = self.raw.control.lock();
            ctl.init_token = 0;
            self.raw.word.clear_initializing();
            self.raw.notify(ctl);
        }
    }
}
