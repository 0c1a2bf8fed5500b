//! The final cleanup ([L6](crate::contract#L6)) as one resumable state
//! machine. [`Lifecycle::cleanup`] drives it on the calling thread, blocking
//! whenever it must wait; [`Lifecycle::cleanup_async`] drives the very same
//! machine from a future, registering its task's waker instead of blocking.
//!
//! | phase | runs | waits for |
//! |---|---|---|
//! | start | L6.1: shut out guards, cancel hook, end blocking closes | — |
//! | `Guards` | — | every guard to leave (the last leaver wakes us) |
//! | `Sockets` | L6.2 and passes of L6.3 | a socket's waker, or the next deadline |
//! | finish | L6.4, L6.5; the frame's drop is L6.6 | — |

#[cfg(not(loom))]
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

#[cfg(not(loom))]
use super::alarm::Alarm;
use super::trace::{trace_phase, warn_abandoned, warn_still_waiting};
use super::{Lifecycle, NO_VERSION};
use crate::HookOutcome;
use crate::Provider;
use crate::background::Handover;
use crate::close;
use crate::deadline::after;
use crate::flush::Flusher;
use crate::hook::{call, drop_quietly, hook, hook_value};
use crate::raw::Teardown;
use crate::registry::Drained;
use crate::report::{
    DrainReport, OperationsReport, PhaseTimings, ResourceReport, SocketOutcome, SocketReport,
    SummarizedSockets,
};
use crate::resource::{Registered, release_resources};
use crate::sync::Ordering;

enum Phase<S> {
    Guards,
    Sockets(Flusher<S>),
    Done,
}

/// What the machine is waiting for when it cannot go on.
enum Wait {
    Guards,
    Sockets,
}

/// One final cleanup in progress (see the module docs).
pub(super) struct Drain<'a, P: Provider> {
    l: &'a Lifecycle<P>,
    /// Dropped when the machine is done: L6.6 (Released, next generation,
    /// waiters woken), and on any unwind too (L14).
    frame: Option<Teardown<'a>>,
    report: DrainReport,
    phase: Phase<P::Socket>,
    start: Instant,
    deadline: Instant,
    waited: bool,
    /// When the next "still waiting for guards" warning is due.
    next_warning: Instant,
    /// When the guard wait gives up and abandons what the guards may touch
    /// ([L16](crate::contract#L16)); `None`: it never does.
    give_up: Option<Instant>,
    /// Whether it did: the state and the resources stay in place, never
    /// freed, and a socket in use is left as it is.
    abandoned: bool,
    t_ops: Instant,
    /// Background closes that ended while Active: bad lines, bad beyond the
    /// limit, clean ones (for the report once the sockets are done).
    books: Option<(Vec<SocketReport>, SummarizedSockets, SummarizedSockets)>,
    /// With the `tracing` feature: the `final_cleanup` span, entered for
    /// every step the machine takes.
    #[cfg(feature = "tracing")]
    span: tracing::Span,
}

impl<'a, P: Provider> Drain<'a, P> {
    /// L6.1 up to the wait: guards shut out, the provider's cancel hook, and
    /// blocking linger closes ended (S6).
    pub(super) fn start(l: &'a Lifecycle<P>, frame: Teardown<'a>) -> Drain<'a, P> {
        #[cfg(feature = "tracing")]
        let span = tracing::info_span!("final_cleanup", generation = frame.generation());
        #[cfg(feature = "tracing")]
        let entered = span.enter();
        let start = Instant::now();
        let mut report = DrainReport {
            generation: frame.generation(),
            ..DrainReport::default()
        };
        let waited_for = frame.shut_out_guards();
        let (cancelled, cancel) = hook_value(|| l.provider.cancel_pending());
        frame.cancel_blocking();
        report.operations = OperationsReport {
            cancelled,
            waited_for,
            cancel,
            overran_deadline: false,
            abandoned: 0,
        };
        Drain {
            l,
            frame: Some(frame),
            report,
            phase: Phase::Guards,
            start,
            deadline: after(start, l.raw.config.drain_deadline()),
            next_warning: after(start, l.raw.config.drain_deadline()),
            give_up: l.raw.config.guard_wait_limit().map(|d| after(start, d)),
            abandoned: false,
            waited: false,
            t_ops: start,
            books: None,
            #[cfg(feature = "tracing")]
            span: {
                drop(entered);
                span
            },
        }
    }

    /// Runs as far as it can without waiting.
    fn advance(&mut self) -> Result<DrainReport, Wait> {
        #[cfg(feature = "tracing")]
        let span = self.span.clone();
        #[cfg(feature = "tracing")]
        let _entered = span.enter();
        loop {
            match &mut self.phase {
                Phase::Guards => {
                    let frame = self.frame.as_ref().expect("frame lives until Done");
                    if frame.guards() != 0 {
                        self.waited = true;
                        if self.give_up.is_none_or(|at| Instant::now() < at) {
                            return Err(Wait::Guards);
                        }
                        // L16: the bound passed. Stop waiting; what the
                        // guards may touch stays in place.
                        let outstanding = frame.abandon();
                        self.abandoned = outstanding != 0;
                        self.report.operations.abandoned = outstanding;
                        warn_abandoned(outstanding);
                    } else {
                        frame.unpark();
                    }
                    // O2: the drain never frees under a live guard, so guards
                    // that outlive the deadline delay it; the report says so.
                    self.report.operations.overran_deadline =
                        self.waited && Instant::now() >= self.deadline;
                    self.t_ops = Instant::now();
                    trace_phase("operations", &self.report);
                    self.phase = Phase::Sockets(self.open_sockets());
                }
                Phase::Sockets(flusher) => {
                    let report = &mut self.report;
                    flusher.pass(&mut |line| report.record(line));
                    if flusher.len() > 0 {
                        return Err(Wait::Sockets);
                    }
                    return Ok(self.finish());
                }
                Phase::Done => return Ok(DrainReport::default()),
            }
        }
    }

    /// L6.2: joins the background flusher (L13) and adopts its endings,
    /// closes the open sockets by policy; graceful ones join the flusher.
    fn open_sockets(&mut self) -> Flusher<P::Socket> {
        let generation = self.report.generation;
        let (handover, open) = self.l.take_sockets(generation, self.abandoned);
        let mut flusher = handover.flusher;
        let policy = self.l.raw.config.open_socket_policy();
        let report = &mut self.report;
        close::close_open(policy, open, &mut flusher, self.deadline, &mut |line| {
            report.record(line);
        });
        let b = handover.books;
        self.books = Some((b.lines, b.summarized, b.flushed));
        flusher
    }

    /// L6.3's accounting, then L6.4, L6.5 and (dropping the frame) L6.6.
    fn finish(&mut self) -> DrainReport {
        let t_sockets = Instant::now();
        let r = &mut self.report;
        if let Some((lines, summarized, flushed)) = self.books.take() {
            r.sockets.extend(lines);
            r.summarized = summarized;
            r.flushed_in_background = flushed;
        }
        r.deadline_hit = r
            .sockets
            .iter()
            .any(|s| s.outcome == SocketOutcome::Deadline);
        trace_phase("sockets", r);

        let frame = self.frame.take().expect("finish runs once");
        // L6.4: the provider's state (built last by `initialize`), then the
        // resources in reverse order of registration. No guard is left --
        // unless the wait abandoned them (L16): then both stay, never freed.
        if self.abandoned {
            r.state = HookOutcome::Abandoned;
            r.resources = crate::resource::abandon_resources(frame.take_resources());
        } else {
            let state = self.l.state.of(r.generation).take();
            let (dropped, released) = drop_then_release(state, frame.take_resources());
            if let Some(p) = dropped {
                r.state = HookOutcome::Panicked(p);
            }
            r.resources = released;
        }
        let t_resources = Instant::now();
        trace_phase("resources", r);

        // L6.5
        r.prepare_unload = hook(|| self.l.provider.prepare_unload());
        let end = Instant::now();
        r.timings = PhaseTimings {
            operations: self.t_ops - self.start,
            sockets: t_sockets - self.t_ops,
            resources: t_resources - t_sockets,
            prepare_unload: end - t_resources,
            total: end - self.start,
        };
        trace_phase("prepare_unload", r);
        let _ = call(|| self.l.provider.on_drained(r));
        self.phase = Phase::Done;
        // W2: the next generation's effective version starts afresh.
        self.l.effective.store(NO_VERSION, Ordering::Relaxed);
        // L6.6: Released, next generation, wake waiting startups.
        drop(frame);
        std::mem::take(r)
    }

    /// When the next "still waiting for guards" warning is due (the drain
    /// deadline, then every deadline's length, at least a second), and
    /// emits the one due now.
    fn still_waiting(&mut self, outstanding: usize) -> Instant {
        let now = Instant::now();
        if now >= self.next_warning {
            warn_still_waiting(outstanding, now.saturating_duration_since(self.deadline));
            let every = self
                .l
                .raw
                .config
                .drain_deadline()
                .max(Duration::from_secs(1));
            self.next_warning = after(now, every);
        }
        self.next_warning
    }

    /// When the guard wait must look again: the next warning, or the bound
    /// if it comes first.
    fn wake_at(&mut self, outstanding: usize) -> Instant {
        let warning = self.still_waiting(outstanding);
        self.give_up.map_or(warning, |at| at.min(warning))
    }

    /// Drives the machine to the end on this thread, blocking between steps.
    pub(super) fn run_blocking(mut self: Box<Self>) -> DrainReport {
        loop {
            match self.advance() {
                Ok(report) => return report,
                Err(Wait::Guards) => {
                    let outstanding = self.frame.as_ref().map_or(0, Teardown::guards);
                    let until = self.wake_at(outstanding);
                    let frame = self.frame.as_ref().expect("frame lives until Done");
                    frame.block_until_no_guards_or(until);
                }
                Err(Wait::Sockets) => {
                    if let Phase::Sockets(flusher) = &mut self.phase {
                        let next = flusher.next_deadline();
                        flusher.queue().sleep(next);
                    }
                }
            }
        }
    }

    /// Drives the machine from a future: `Pending` after registering the
    /// task's waker wherever the next step will come from, and arming
    /// `alarm` for the next socket deadline.
    #[cfg(not(loom))]
    pub(super) fn poll(&mut self, cx: &mut Context<'_>, alarm: &mut Alarm) -> Poll<DrainReport> {
        loop {
            match self.advance() {
                Ok(report) => return Poll::Ready(report),
                Err(Wait::Guards) => {
                    let outstanding = self.frame.as_ref().map_or(0, Teardown::guards);
                    alarm.set(self.wake_at(outstanding), cx.waker());
                    let frame = self.frame.as_ref().expect("frame lives until Done");
                    if !frame.guards_gone_or_register(cx.waker()) {
                        return Poll::Pending;
                    }
                }
                Err(Wait::Sockets) => {
                    if let Phase::Sockets(flusher) = &mut self.phase {
                        if let Some(at) = flusher.next_deadline() {
                            alarm.set(at, cx.waker());
                        }
                        if !flusher.queue().woken_or_register(cx.waker()) {
                            return Poll::Pending;
                        }
                    }
                }
            }
        }
    }
}

impl<P: Provider> Lifecycle<P> {
    /// The sockets of `generation` at its end, for the final cleanup and
    /// for `Drop` alike: the background flusher joined (L13) with what it
    /// still holds, and the open sockets taken out of the registry.
    pub(super) fn take_sockets(
        &self,
        generation: u64,
        abandoning: bool,
    ) -> (Handover<P::Socket>, Drained<'_, P::Socket>) {
        let handover = self.background.lock().take();
        (handover, self.sockets.take_open(generation, abandoning))
    }
}

/// L6.4's order, for the final cleanup and `Drop` alike: the provider's
/// state (built last by `initialize`) is dropped first, then the resources
/// are released in reverse order of registration. Returns the state's
/// drop panic, if any, and the resources' lines.
pub(super) fn drop_then_release<S>(
    states: impl IntoIterator<Item = S>,
    resources: Vec<Registered>,
) -> (Option<String>, Vec<ResourceReport>) {
    let mut panicked = None;
    for state in states {
        panicked = drop_quietly(state).or(panicked);
    }
    (panicked, release_resources(resources))
}
