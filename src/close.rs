//! How a socket ends: every close decision in one place — the linger table
//! while Active ([S1](crate::contract#S1), [S4](crate::contract#S4),
//! [S6](crate::contract#S6)), the open-socket policy at the final cleanup
//! ([L6.2](crate::contract#L6.2)), and the abortive end of a lifecycle
//! dropped while Active ([L12](crate::contract#L12)). The mechanics of an
//! end (flush, abort, release, account) are [`Ending`]'s.

use std::sync::Arc;
use std::task::Waker;
use std::time::{Duration, Instant};

use crate::config::OpenSocketPolicy;
use crate::deadline::after;
use crate::flush::{Ending, Flusher, Interrupt, ReadyQueue, flush_one};
use crate::hook::call;
use crate::raw::RawLifecycle;
use crate::registry::{Closing, Detached, Drained, Registry, Taken};
use crate::report::{SocketOutcome, SocketPhase, SocketReport};
use crate::{Error, Linger, Socket, SocketHandle};

/// A socket's linger, blocking mode and unsent count, read with panics
/// caught.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Probe {
    pub(crate) linger: Linger,
    pub(crate) blocking: bool,
    pub(crate) unsent: u64,
}

impl Probe {
    /// Reads a socket's probe; `Err` carries a panic message.
    pub(crate) fn of<S: Socket>(socket: &S) -> Result<Probe, String> {
        call(|| Probe {
            linger: socket.linger(),
            blocking: socket.is_blocking(),
            unsent: socket.unsent(),
        })
    }

    /// The linger table's last row: a non-blocking socket with a linger
    /// timeout that cannot finish now must answer `WouldBlock` and stay open.
    pub(crate) fn would_block(&self) -> bool {
        matches!(self.linger, Linger::Timeout(_)) && !self.blocking && self.unsent > 0
    }
}

/// The probe of a socket whose probe panicked: ended abortively.
const PANICKED: Probe = Probe {
    linger: Linger::Abort,
    blocking: true,
    unsent: 0,
};

/// What closing a socket while Active led to.
pub(crate) enum Closed<S> {
    /// The socket is gone; this is its line.
    Done(SocketReport),
    /// `Linger::Background` with data left: for the background engine.
    Background(Ending<S>),
}

/// `close_socket` while Active: one registry pass decides, with the socket
/// (its slot) locked, what becomes of the handle — unlinked alone while the
/// socket has other handles ([W3](crate::contract#W3): Retained), left
/// open when a non-blocking `Timeout` close would have to wait
/// (`WouldBlock`), else taken out — and then the linger table runs on the
/// socket taken out, with no lock held.
pub(crate) fn close_socket<S: Socket>(
    raw: &RawLifecycle,
    registry: &Registry<S>,
    handle: SocketHandle,
) -> Result<Closed<S>, Error> {
    let pass = registry.close(handle, |socket, last| {
        let probed = Probe::of(socket);
        if last && probed.as_ref().is_ok_and(Probe::would_block) {
            Closing::Keep
        } else {
            Closing::Close(probed)
        }
    })?;
    match pass {
        Detached::Kept => Err(Error::WouldBlock),
        Detached::Unlinked(probed) => {
            let linger = probed.map(|p| p.linger).unwrap_or_default();
            Ok(Closed::Done(line(
                handle,
                linger,
                SocketOutcome::Retained,
                0,
            )))
        }
        Detached::Last(socket, probed) => Ok(close_active(raw, handle, socket, probed)),
    }
}

/// Closes a socket already taken out of the registry while Active, by the
/// linger table (see [`Linger`]). A blocking `Timeout` close waits here,
/// inside the caller's guard, until flushed, its linger timeout, or the
/// final cleanup's cancel step (`raw`), whichever comes first.
fn close_active<S: Socket>(
    raw: &RawLifecycle,
    handle: SocketHandle,
    socket: S,
    probed: Result<Probe, String>,
) -> Closed<S> {
    let p = match probed {
        Ok(p) => p,
        Err(panic) => {
            let ending =
                Ending::new(handle, socket, PANICKED.linger, PANICKED.unsent).abort_pending(true);
            return Closed::Done(ending.abort(SocketOutcome::Panicked, Some(panic)));
        }
    };
    // W4: closesocket ends pending overlapped operations, notified.
    let ending = Ending::new(handle, socket, p.linger, p.unsent).abort_pending(true);
    Closed::Done(match p.linger {
        Linger::Abort => ending.abort(SocketOutcome::Reset, None),
        Linger::Background if p.unsent == 0 => ending.finish(),
        Linger::Background => return Closed::Background(ending),
        Linger::Timeout(d) => {
            let now = Instant::now();
            let own = after(now, d);
            flush_cancellable(
                raw,
                ending.bound(Some(own), after(own, Duration::from_secs(1))),
            )
        }
    })
}

/// S6: a blocking linger flush that the final cleanup's cancel step ends.
fn flush_cancellable<S: Socket>(raw: &RawLifecycle, ending: Ending<S>) -> SocketReport {
    let queue = Arc::new(ReadyQueue::new());
    let key = raw.on_cancel(Waker::from(Arc::new(Interrupt(Arc::clone(&queue)))), None);
    if key.is_none() {
        // The cancel step has begun already: do not wait at all.
        queue.interrupt();
    }
    let line = flush_one(ending, &queue, |e| {
        e.abort(
            SocketOutcome::Cancelled,
            Some("ended by the final cleanup's cancel step (WSAEINTR)".to_owned()),
        )
    });
    if let Some(key) = key {
        raw.forget_cancel(key);
    }
    line
}

/// The line `close_socket` returns for a socket handed to the background.
pub(crate) fn background_line(handle: SocketHandle, linger: Linger, aborted: u32) -> SocketReport {
    line(handle, linger, SocketOutcome::Background, aborted)
}

fn line(
    handle: SocketHandle,
    linger: Linger,
    outcome: SocketOutcome,
    aborted: u32,
) -> SocketReport {
    SocketReport::new(handle, linger, SocketPhase::Open, outcome, aborted)
}

/// L6.2 (and the start of L6.3): closes the open sockets by `policy`:
/// abortive ones end at once (their lines go to `file`), graceful ones join
/// `flusher` — the background's, adopted by the drain, whose endings are
/// bounded by the drain `deadline` too. The caller then runs the flusher
/// until it is empty.
pub(crate) fn close_open<S: Socket>(
    policy: OpenSocketPolicy,
    open: Drained<'_, S>,
    flusher: &mut Flusher<S>,
    deadline: Instant,
    file: &mut impl FnMut(SocketReport),
) {
    flusher.bound_all(deadline);
    let now = Instant::now();
    for (handle, taken) in open {
        let socket = match taken {
            Taken::Socket(socket) => socket,
            // L16: an operation the guard wait gave up on may be using the
            // socket right now (its slot locked): left as it is.
            Taken::Abandoned => {
                file(line(handle, Linger::Abort, SocketOutcome::Abandoned, 0));
                continue;
            }
        };
        let p = match Probe::of(&socket) {
            Ok(p) => p,
            Err(panic) => {
                let ending = Ending::new(handle, socket, PANICKED.linger, PANICKED.unsent)
                    .abort_pending(false);
                file(ending.abort(SocketOutcome::Panicked, Some(panic)));
                continue;
            }
        };
        // W4: the final cleanup ends pending overlapped operations silently.
        let ending = Ending::new(handle, socket, p.linger, p.unsent).abort_pending(false);
        let own = match (policy, p.linger) {
            (OpenSocketPolicy::Reset, _) | (OpenSocketPolicy::Graceful, Linger::Abort) => {
                file(ending.abort(SocketOutcome::Reset, None));
                continue;
            }
            (OpenSocketPolicy::Graceful, Linger::Background) => None,
            (OpenSocketPolicy::Graceful, Linger::Timeout(d)) => Some(after(now, d)),
        };
        flusher.push(ending.bound(own, deadline));
    }
}

/// L12: ends every socket abortively, with no flush and no report.
pub(crate) fn abort_all<S: Socket>(open: Drained<'_, S>, handover: Flusher<S>) {
    for (handle, taken) in open {
        if let Taken::Socket(socket) = taken {
            let p = Probe::of(&socket).unwrap_or(PANICKED);
            let _ = Ending::new(handle, socket, p.linger, p.unsent)
                .abort_pending(false)
                .abort(SocketOutcome::Reset, None);
        }
    }
    for ending in handover.into_endings() {
        let _ = ending.abort(SocketOutcome::Reset, None);
    }
}

/// Ends a socket the registry refused (not Active, or no slot left): aborted
/// and released at once, never leaked.
pub(crate) fn refuse<S: Socket>(socket: S) {
    let _ = Ending::new(
        SocketHandle::from_raw(0),
        socket,
        PANICKED.linger,
        PANICKED.unsent,
    )
    .abort(SocketOutcome::Reset, None);
}
