//! How a socket ends: every close decision in one place — the linger table
//! while Active ([S1](crate::contract#S1), [L8](crate::contract#L8)), the
//! open-socket policy at the final cleanup ([L6.2](crate::contract#L6.2)),
//! background flushing ([L6.3](crate::contract#L6.3)), and the abortive end
//! of a lifecycle dropped while Active ([L12](crate::contract#L12)).

use std::time::{Duration, Instant};

use crate::config::OpenSocketPolicy;
use crate::drain::{Closing, Flusher, Task, abort_socket, finish_socket, flush_one, unsent_or};
use crate::hook::call;
use crate::report::{SocketOutcome, SocketPhase, SocketReport, SummarizedSockets};
use crate::socket::{Cell, take};
use crate::{Linger, Socket, SocketHandle};

/// How many background closes that ended badly while Active are kept as
/// report lines; beyond it they are only counted ([`SummarizedSockets`]).
pub(crate) const FINISHED_LINES: usize = 1024;

/// The sockets closed in the background while Active: those still flushing,
/// and those that ended badly (failed or discarded), kept for the next drain
/// report — the first [`FINISHED_LINES`] as lines, the rest summed, so a
/// long generation cannot grow it without bound.
pub(crate) struct Background<S> {
    pub(crate) closing: Vec<Closing<S>>,
    pub(crate) finished: Vec<SocketReport>,
    pub(crate) summarized: SummarizedSockets,
}

impl<S> Background<S> {
    crate::sync::loom_const_fn! {
        pub(crate) fn new() -> Background<S> {
            Background {
                closing: Vec::new(),
                finished: Vec::new(),
                summarized: SummarizedSockets::ZERO,
            }
        }
    }

    /// Keeps a background close that ended badly for the next drain report.
    pub(crate) fn record_finished(&mut self, report: SocketReport) {
        if self.finished.len() < FINISHED_LINES {
            self.finished.push(report);
        } else {
            self.summarized.add(&report);
        }
    }

    /// Everything, for the final cleanup, leaving this empty.
    pub(crate) fn take(&mut self) -> Background<S> {
        std::mem::replace(self, Background::new())
    }
}

/// A socket's linger, blocking mode and unsent count, read with panics
/// caught.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Probe {
    pub(crate) linger: Linger,
    pub(crate) blocking: bool,
    pub(crate) unsent: u64,
}

/// Reads a socket's [`Probe`]; `Err` carries a panic message.
pub(crate) fn probe<S: Socket>(socket: &S) -> Result<Probe, String> {
    call(|| Probe {
        linger: socket.linger(),
        blocking: socket.is_blocking(),
        unsent: socket.unsent(),
    })
}

impl Probe {
    /// The linger table's last row: a non-blocking socket with a linger
    /// timeout that cannot finish now must answer `WouldBlock` and stay open.
    pub(crate) fn would_block(&self) -> bool {
        matches!(self.linger, Linger::Timeout(_)) && !self.blocking && self.unsent > 0
    }
}

/// What closing a socket while Active led to.
pub(crate) enum Closed<S> {
    /// The socket is gone; this is its line.
    Done(SocketReport),
    /// `Linger::Background` with data left: the lifecycle keeps it, flushing.
    Background(Closing<S>),
}

/// Closes a socket already taken out of the registry while Active, by the
/// linger table (see [`Linger`]).
pub(crate) fn close_active<S: Socket>(
    handle: SocketHandle,
    socket: S,
    probed: Result<Probe, String>,
) -> Closed<S> {
    let p = match probed {
        Ok(p) => p,
        Err(panic) => {
            return Closed::Done(abort_socket(
                handle,
                socket,
                Linger::Abort,
                SocketPhase::Open,
                0,
                SocketOutcome::Panicked,
                Some(panic),
            ));
        }
    };
    Closed::Done(match p.linger {
        Linger::Abort => abort_socket(
            handle,
            socket,
            p.linger,
            SocketPhase::Open,
            p.unsent,
            SocketOutcome::Reset,
            None,
        ),
        Linger::Background if p.unsent == 0 => {
            finish_socket(handle, socket, p.linger, SocketPhase::Open, 0)
        }
        Linger::Background => {
            return Closed::Background(Closing {
                handle,
                socket,
                linger: p.linger,
            });
        }
        Linger::Timeout(d) => {
            let now = Instant::now();
            flush_one(Task::new(
                handle,
                socket,
                p.linger,
                SocketPhase::Open,
                p.unsent,
                Some(after(now, d)),
                after(now, d.saturating_add(Duration::from_secs(1))),
            ))
        }
    })
}

/// The line `close_socket` returns for a socket handed to the background.
pub(crate) fn background_line(handle: SocketHandle, linger: Linger) -> SocketReport {
    SocketReport {
        handle,
        linger,
        phase: SocketPhase::Open,
        bytes_flushed: 0,
        bytes_discarded: 0,
        outcome: SocketOutcome::Background,
        faults: None,
    }
}

/// One round of flush progress on the background-closing sockets: returns
/// the unfinished ones and the lines of those that ended.
pub(crate) fn poll_background<S: Socket>(
    closing: Vec<Closing<S>>,
) -> (Vec<Closing<S>>, Vec<SocketReport>) {
    let far = after(Instant::now(), Duration::from_secs(365 * 24 * 3600));
    let mut flusher = Flusher::new();
    for c in closing {
        flusher.push(c.into_task(far));
    }
    flusher.round();
    let (pending, reports) = flusher.into_pending();
    (
        pending.into_iter().map(Task::into_closing).collect(),
        reports,
    )
}

/// [L6.2](crate::contract#L6.2) + [L6.3](crate::contract#L6.3): closes the open sockets by `policy` and flushes every
/// graceful one (open or already closing) concurrently, until done, its own
/// linger deadline or the drain `deadline`.
pub(crate) fn close_all<S: Socket>(
    policy: OpenSocketPolicy,
    open: Vec<(SocketHandle, Cell<S>)>,
    closing: Vec<Closing<S>>,
    deadline: Instant,
) -> Vec<SocketReport> {
    let mut reports = Vec::with_capacity(open.len() + closing.len());
    let mut flusher = Flusher::new();
    let now = Instant::now();
    for (handle, cell) in open {
        let Some(socket) = take(cell) else {
            continue;
        };
        let p = match probe(&socket) {
            Ok(p) => p,
            Err(panic) => {
                reports.push(abort_socket(
                    handle,
                    socket,
                    Linger::Abort,
                    SocketPhase::Open,
                    0,
                    SocketOutcome::Panicked,
                    Some(panic),
                ));
                continue;
            }
        };
        let own = match (policy, p.linger) {
            (OpenSocketPolicy::Reset, _) | (OpenSocketPolicy::Graceful, Linger::Abort) => {
                reports.push(abort_socket(
                    handle,
                    socket,
                    p.linger,
                    SocketPhase::Open,
                    p.unsent,
                    SocketOutcome::Reset,
                    None,
                ));
                continue;
            }
            (OpenSocketPolicy::Graceful, Linger::Background) => None,
            (OpenSocketPolicy::Graceful, Linger::Timeout(d)) => Some(after(now, d)),
        };
        flusher.push(Task::new(
            handle,
            socket,
            p.linger,
            SocketPhase::Open,
            p.unsent,
            own,
            deadline,
        ));
    }
    for c in closing {
        flusher.push(c.into_task(deadline));
    }
    flusher.run();
    reports.append(&mut flusher.reports);
    reports
}

/// [L12](crate::contract#L12): ends every socket abortively, with no flush and no report.
pub(crate) fn abort_all<S: Socket>(open: Vec<(SocketHandle, Cell<S>)>, closing: Vec<Closing<S>>) {
    for (handle, cell) in open {
        if let Some(socket) = take(cell) {
            let unsent = unsent_or(&socket, 0);
            let _ = abort_socket(
                handle,
                socket,
                Linger::Abort,
                SocketPhase::Open,
                unsent,
                SocketOutcome::Reset,
                None,
            );
        }
    }
    for c in closing {
        let unsent = unsent_or(&c.socket, 0);
        let _ = abort_socket(
            c.handle,
            c.socket,
            c.linger,
            SocketPhase::Closing,
            unsent,
            SocketOutcome::Reset,
            None,
        );
    }
}

/// Ends a socket the registry refused (not Active, or no slot left): aborted
/// and released at once, never leaked.
pub(crate) fn refuse<S: Socket>(socket: S) {
    let _ = abort_socket(
        SocketHandle::from_raw(0),
        socket,
        Linger::Abort,
        SocketPhase::Open,
        0,
        SocketOutcome::Reset,
        None,
    );
}

/// `start + d`, saturating far in the future instead of overflowing.
pub(crate) fn after(start: Instant, d: Duration) -> Instant {
    start
        .checked_add(d)
        .or_else(|| start.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
        .unwrap_or(start)
}
