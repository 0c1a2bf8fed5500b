//! The drain engine: ending one socket (flushed, or aborted with what it
//! discarded counted) and flushing many sockets from one thread
//! ([L6.2](crate::contract#L6.2)–[L6.3](crate::contract#L6.3),
//! [S2](crate::contract#S2), [S3](crate::contract#S3)).

use std::time::{Duration, Instant};

use crate::hook::{HookOutcome, call, drop_quietly, hook};
use crate::report::{SocketFaults, SocketOutcome, SocketPhase, SocketReport};
use crate::{FlushStatus, Linger, Socket, SocketHandle};

/// A socket closed in the background that still holds unsent data.
pub(crate) struct Closing<S> {
    pub(crate) handle: SocketHandle,
    pub(crate) socket: S,
    pub(crate) linger: Linger,
}

/// One socket being flushed.
pub(crate) struct Task<S> {
    pub(crate) handle: SocketHandle,
    pub(crate) socket: S,
    pub(crate) linger: Linger,
    pub(crate) phase: SocketPhase,
    /// Unsent bytes when the flush began (for the flushed count).
    pub(crate) start_unsent: u64,
    /// When to give up, and what to call it then.
    pub(crate) deadline: Instant,
    pub(crate) deadline_outcome: SocketOutcome,
}

impl<S: Socket> Task<S> {
    /// A task for `socket`, reading its unsent count; `own` is the socket's
    /// own linger deadline, if any, and `drain` the drain's.
    pub(crate) fn new(
        handle: SocketHandle,
        socket: S,
        linger: Linger,
        phase: SocketPhase,
        start_unsent: u64,
        own: Option<Instant>,
        drain: Instant,
    ) -> Task<S> {
        let (deadline, deadline_outcome) = match own {
            Some(own) if own < drain => (own, SocketOutcome::LingerTimeout),
            _ => (drain, SocketOutcome::Deadline),
        };
        Task {
            handle,
            socket,
            linger,
            phase,
            start_unsent,
            deadline,
            deadline_outcome,
        }
    }
}

impl<S: Socket> Closing<S> {
    /// A flush task for a socket closed in the background ([L6.3](crate::contract#L6.3)), bounded
    /// by `deadline`.
    pub(crate) fn into_task(self, deadline: Instant) -> Task<S> {
        let unsent = unsent_or(&self.socket, 0);
        Task::new(
            self.handle,
            self.socket,
            self.linger,
            SocketPhase::Closing,
            unsent,
            None,
            deadline,
        )
    }
}

impl<S> Task<S> {
    /// Back to the closing list, unfinished.
    pub(crate) fn into_closing(self) -> Closing<S> {
        Closing {
            handle: self.handle,
            socket: self.socket,
            linger: self.linger,
        }
    }
}

/// Reads `unsent()` safely; a panic counts as "unknown" (`fallback`).
pub(crate) fn unsent_or<S: Socket>(socket: &S, fallback: u64) -> u64 {
    call(|| socket.unsent()).unwrap_or(fallback)
}

/// Ends a socket abortively: counts what is unsent as discarded, aborts,
/// releases. Used for the `Reset` policy, deadlines and failures.
pub(crate) fn abort_socket<S: Socket>(
    handle: SocketHandle,
    mut socket: S,
    linger: Linger,
    phase: SocketPhase,
    start_unsent: u64,
    outcome: SocketOutcome,
    error: Option<String>,
) -> SocketReport {
    let remaining = unsent_or(&socket, start_unsent);
    let abort = hook(|| socket.abort());
    let release = release_and_drop(socket);
    SocketReport {
        handle,
        linger,
        phase,
        bytes_flushed: start_unsent.saturating_sub(remaining),
        bytes_discarded: remaining,
        outcome,
        faults: SocketFaults::of(error, abort, release),
    }
}

/// Calls `release` ([S2](crate::contract#S2): last), then drops the socket with its `Drop` panics
/// caught ([L14](crate::contract#L14)); a panicking drop is reported as the
/// release's outcome unless the release itself already failed.
fn release_and_drop<S: Socket>(mut socket: S) -> HookOutcome {
    let release = hook(|| socket.release());
    match drop_quietly(socket) {
        Some(p) if release.is_ok() => HookOutcome::Panicked(format!("drop: {p}")),
        _ => release,
    }
}

/// Releases a socket whose data is all out.
pub(crate) fn finish_socket<S: Socket>(
    handle: SocketHandle,
    socket: S,
    linger: Linger,
    phase: SocketPhase,
    start_unsent: u64,
) -> SocketReport {
    let release = release_and_drop(socket);
    SocketReport {
        handle,
        linger,
        phase,
        bytes_flushed: start_unsent,
        bytes_discarded: 0,
        outcome: SocketOutcome::Flushed,
        faults: SocketFaults::of(None, HookOutcome::Ok, release),
    }
}

/// What one poll of one task led to.
enum Step<S> {
    Pending(Task<S>, bool),
    Finished(SocketReport),
}

fn step<S: Socket>(mut t: Task<S>, now: Instant) -> Step<S> {
    if now >= t.deadline {
        return Step::Finished(abort_socket(
            t.handle,
            t.socket,
            t.linger,
            t.phase,
            t.start_unsent,
            t.deadline_outcome,
            None,
        ));
    }
    let before = unsent_or(&t.socket, t.start_unsent);
    let failed = match call(|| t.socket.poll_flush()) {
        Ok(Ok(FlushStatus::Done)) => {
            let left = unsent_or(&t.socket, 0);
            if left == 0 {
                return Step::Finished(finish_socket(
                    t.handle,
                    t.socket,
                    t.linger,
                    t.phase,
                    t.start_unsent,
                ));
            }
            (
                SocketOutcome::Failed,
                format!("poll_flush said done with {left} bytes unsent"),
            )
        }
        Ok(Ok(FlushStatus::Pending)) => {
            let after = unsent_or(&t.socket, before);
            return Step::Pending(t, after < before);
        }
        Ok(Err(e)) => match call(move || e.to_string()) {
            Ok(text) => (SocketOutcome::Failed, text),
            Err(p) => (SocketOutcome::Panicked, format!("error Display: {p}")),
        },
        Err(p) => (SocketOutcome::Panicked, p),
    };
    Step::Finished(abort_socket(
        t.handle,
        t.socket,
        t.linger,
        t.phase,
        t.start_unsent,
        failed.0,
        Some(failed.1),
    ))
}

/// Flushes many sockets from the calling thread: polls every pending socket
/// in turn, and when a whole round made no progress backs off (yield, then
/// sleeps doubling from 20 µs to 1 ms, never past the next deadline). Total
/// time is bounded by the slowest socket, not the sum (no helper thread: [L13](crate::contract#L13)).
pub(crate) struct Flusher<S> {
    tasks: Vec<Task<S>>,
    pub(crate) reports: Vec<SocketReport>,
}

const MAX_BACKOFF: Duration = Duration::from_millis(1);

impl<S: Socket> Flusher<S> {
    pub(crate) fn new() -> Flusher<S> {
        Flusher {
            tasks: Vec::new(),
            reports: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, task: Task<S>) {
        self.tasks.push(task);
    }

    /// Gives the unfinished tasks back (for the background-closing list).
    pub(crate) fn into_pending(self) -> (Vec<Task<S>>, Vec<SocketReport>) {
        (self.tasks, self.reports)
    }

    /// Polls every task once; returns whether any progressed or finished.
    pub(crate) fn round(&mut self) -> bool {
        let now = Instant::now();
        let mut progressed = false;
        let tasks = std::mem::take(&mut self.tasks);
        self.tasks.reserve(tasks.len());
        for t in tasks {
            match step(t, now) {
                Step::Pending(t, p) => {
                    progressed |= p;
                    self.tasks.push(t);
                }
                Step::Finished(r) => {
                    progressed = true;
                    self.reports.push(r);
                }
            }
        }
        progressed
    }

    /// Runs rounds until every task is finished (done, failed, or past its
    /// deadline).
    pub(crate) fn run(&mut self) {
        let mut backoff = Backoff::default();
        while !self.tasks.is_empty() {
            let progressed = self.round();
            if let Some(next) = self.tasks.iter().map(|t| t.deadline).min() {
                backoff.pause(progressed, next);
            }
        }
    }
}

/// Flushes one socket until it is done, fails or reaches its deadline.
pub(crate) fn flush_one<S: Socket>(mut task: Task<S>) -> SocketReport {
    let mut backoff = Backoff::default();
    loop {
        match step(task, Instant::now()) {
            Step::Finished(report) => return report,
            Step::Pending(t, progressed) => {
                backoff.pause(progressed, t.deadline);
                task = t;
            }
        }
    }
}

/// The pause between rounds that made no progress: a yield, then sleeps
/// doubling from 20 µs to 1 ms, never past the next deadline.
#[derive(Default)]
struct Backoff(Duration);

impl Backoff {
    fn pause(&mut self, progressed: bool, next_deadline: Instant) {
        if progressed {
            self.0 = Duration::ZERO;
            return;
        }
        let until = next_deadline.saturating_duration_since(Instant::now());
        crate::sync::backoff(self.0.min(until));
        self.0 = if self.0.is_zero() {
            Duration::from_micros(20)
        } else {
            (self.0 * 2).min(MAX_BACKOFF)
        };
    }
}
