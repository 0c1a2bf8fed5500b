//! The future of [`Lifecycle::cleanup_async`]: the same final cleanup
//! machine as the blocking [`Lifecycle::cleanup`], driven by polls that
//! register the task's waker instead of blocking.

use std::task::{Context, Poll};

use super::alarm::Alarm;
use super::cleanup::Begin;
use super::teardown::Drain;
use super::{Cleanup, Lifecycle};
use crate::error::NotActive;
use crate::{Error, Provider};

/// The future of [`Lifecycle::cleanup_async`].
pub(super) struct CleanupFuture<'a, P: Provider> {
    l: &'a Lifecycle<P>,
    state: FutureState<'a, P>,
    alarm: Alarm,
}

enum FutureState<'a, P: Provider> {
    Start,
    Draining(Box<Drain<'a, P>>),
    Done,
}

impl<'a, P: Provider> CleanupFuture<'a, P> {
    pub(super) fn new(l: &'a Lifecycle<P>) -> CleanupFuture<'a, P> {
        CleanupFuture {
            l,
            state: FutureState::Start,
            alarm: Alarm::new(l.raw.config.spawner()),
        }
    }
}

// The future never pins what it holds (no pin projection, no self
// references): moving it between polls is fine whatever the socket type.
impl<P: Provider> Unpin for CleanupFuture<'_, P> {}

impl<P: Provider> std::future::Future for CleanupFuture<'_, P> {
    type Output = Result<Cleanup, Error>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let FutureState::Start = this.state {
            match this.l.begin_cleanup() {
                Err(e) => {
                    this.state = FutureState::Done;
                    return Poll::Ready(Err(e));
                }
                Ok(Begin::Decremented(remaining)) => {
                    this.state = FutureState::Done;
                    return Poll::Ready(Ok(Cleanup::Decremented { remaining }));
                }
                Ok(Begin::Final(drain)) => this.state = FutureState::Draining(drain),
            }
        }
        let FutureState::Draining(drain) = &mut this.state else {
            return Poll::Ready(Err(Error::NotInitialised(NotActive::Unpaired)));
        };
        match drain.poll(cx, &mut this.alarm) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(report) => {
                this.state = FutureState::Done;
                Poll::Ready(Ok(Cleanup::Final(Box::new(report))))
            }
        }
    }
}

impl<P: Provider> Drop for CleanupFuture<'_, P> {
    fn drop(&mut self) {
        // A teardown cannot be abandoned halfway: finish it here. (A drain
        // that completed already left the Draining state.)
        if let FutureState::Draining(drain) = std::mem::replace(&mut self.state, FutureState::Done)
        {
            let _ = drain.run_blocking();
        }
    }
}
