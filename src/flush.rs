//! A socket's end, and the event-driven engine that flushes many of them
//! from one thread ([L6.3](crate::contract#L6.3), [S2](crate::contract#S2),
//! [S3](crate::contract#S3), [S5](crate::contract#S5)).
//!
//! # One value per socket's end
//!
//! When a socket leaves the registry it becomes an [`Ending`]: the socket
//! with its handle, linger, phase, the unsent count it started from and its
//! deadline. An ending is finished exactly once, by [`Ending::finish`]
//! (everything delivered) or [`Ending::abort`] (the rest discarded and
//! counted), and either way `release` is the last call the socket sees.
//!
//! # The engine: poll only what was woken
//!
//! A [`Flusher`] owns endings in slots. Each slot has a waker that, when
//! woken, pushes `(slot, token)` onto the flusher's [`ReadyQueue`] — once:
//! a `scheduled` flag coalesces wakes until the next poll — and signals its
//! condition variable. A pass polls exactly the woken slots (every ending is
//! woken once when it arrives), then ends those past their deadline. Between
//! passes the thread sleeps on the queue until a wake or the next deadline:
//! no spinning, no back-off, so CPU follows progress, not sockets × time.
//!
//! A waker can outlive its slot (the socket's reactor may fire it after the
//! socket was released, or after its slot holds another ending): the token
//! does not match, and the wake is ignored. Wakers hold only the queue, so
//! firing one after the flusher is gone is harmless too.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

use crate::deadline::far;
use crate::hook::{HookOutcome, call, drop_quietly, hook};
use crate::report::{SocketFaults, SocketOutcome, SocketPhase, SocketReport};
use crate::sync::{AtomicBool, Condvar, Mutex, Ordering};
use crate::{Linger, Socket, SocketHandle};

/// One socket on its way out (see the module docs).
pub(crate) struct Ending<S> {
    pub(crate) handle: SocketHandle,
    socket: S,
    pub(crate) linger: Linger,
    phase: SocketPhase,
    /// Unsent bytes when the end began (for the flushed count).
    start_unsent: u64,
    /// When to give up, and what to call it then.
    deadline: Instant,
    deadline_outcome: SocketOutcome,
    /// Overlapped operations its `abort_pending` ended (W4).
    aborted: u32,
}

/// What one poll of an ending led to.
enum Step<S> {
    Pending(Ending<S>),
    Finished(SocketReport),
}

impl<S: Socket> Ending<S> {
    /// The end of a socket taken out of the registry with its `linger` and
    /// `unsent` count as the close read them: open phase, no deadline yet
    /// (see [`bound`](Ending::bound)).
    pub(crate) fn new(handle: SocketHandle, socket: S, linger: Linger, unsent: u64) -> Ending<S> {
        Ending {
            handle,
            socket,
            linger,
            phase: SocketPhase::Open,
            start_unsent: unsent,
            deadline: far(),
            deadline_outcome: SocketOutcome::Deadline,
            aborted: 0,
        }
    }

    /// [W4](crate::contract#W4): ends the socket's pending overlapped
    /// operations (with their notifications if `notify`), before its linger
    /// is applied. A panic counts as none ended.
    pub(crate) fn abort_pending(mut self, notify: bool) -> Ending<S> {
        self.aborted = call(|| self.socket.abort_pending(notify)).unwrap_or(0);
        self
    }

    /// What `abort_pending` ended.
    pub(crate) fn aborted(&self) -> u32 {
        self.aborted
    }

    /// Bounds the flush by the socket's own linger deadline `own` and the
    /// drain's `drain`, whichever comes first.
    pub(crate) fn bound(mut self, own: Option<Instant>, drain: Instant) -> Ending<S> {
        (self.deadline, self.deadline_outcome) = match own {
            Some(own) if own < drain => (own, SocketOutcome::LingerTimeout),
            _ => (drain, SocketOutcome::Deadline),
        };
        self
    }

    /// Marks the ending as closed by the application before the drain
    /// (its report line says `Background`).
    pub(crate) fn in_background(mut self) -> Ending<S> {
        self.phase = SocketPhase::Background;
        self
    }

    /// Ends abortively: counts what is unsent as discarded, aborts, releases.
    pub(crate) fn abort(mut self, outcome: SocketOutcome, error: Option<String>) -> SocketReport {
        let remaining = call(|| self.socket.unsent()).unwrap_or(self.start_unsent);
        let abort = hook(|| self.socket.abort());
        let release = release_and_drop(self.socket);
        SocketReport::new(self.handle, self.linger, self.phase, outcome, self.aborted)
            .bytes(self.start_unsent.saturating_sub(remaining), remaining)
            .with_faults(SocketFaults::of(error, abort, release))
    }

    /// Releases a socket whose data is all out.
    pub(crate) fn finish(self) -> SocketReport {
        let release = release_and_drop(self.socket);
        let outcome = SocketOutcome::Flushed;
        SocketReport::new(self.handle, self.linger, self.phase, outcome, self.aborted)
            .bytes(self.start_unsent, 0)
            .with_faults(SocketFaults::of(None, HookOutcome::Ok, release))
    }

    /// Polls the socket once (or ends it, past its deadline).
    fn step(mut self, cx: &mut Context<'_>, now: Instant) -> Step<S> {
        if now >= self.deadline {
            let outcome = self.deadline_outcome;
            return Step::Finished(self.abort(outcome, None));
        }
        let failed = match call(|| self.socket.poll_flush(cx)) {
            Ok(Poll::Pending) => return Step::Pending(self),
            Ok(Poll::Ready(Ok(()))) => match call(|| self.socket.unsent()) {
                Ok(0) => return Step::Finished(self.finish()),
                Ok(left) => (
                    SocketOutcome::Failed,
                    format!("poll_flush said done with {left} bytes unsent"),
                ),
                Err(p) => (SocketOutcome::Panicked, p),
            },
            // The error is rendered and dropped inside the panic catching.
            Ok(Poll::Ready(Err(e))) => match call(move || e.to_string()) {
                Ok(text) => (SocketOutcome::Failed, text),
                Err(p) => (SocketOutcome::Panicked, format!("error Display: {p}")),
            },
            Err(p) => (SocketOutcome::Panicked, p),
        };
        Step::Finished(self.abort(failed.0, Some(failed.1)))
    }
}

/// Calls `release` (S2: last), then drops the socket with its `Drop` panics
/// caught ([L14](crate::contract#L14)); a panicking drop is reported as the
/// release's outcome unless the release itself already failed.
fn release_and_drop<S: Socket>(mut socket: S) -> HookOutcome {
    let release = hook(|| socket.release());
    match drop_quietly(socket) {
        Some(p) if release.is_ok() => HookOutcome::Panicked(format!("drop: {p}")),
        _ => release,
    }
}

/// Where wakers push what they woke, and where a flusher sleeps.
#[derive(Debug)]
pub(crate) struct ReadyQueue {
    state: Mutex<Ready>,
    cv: Condvar,
}

#[derive(Debug, Default)]
struct Ready {
    woken: Vec<(usize, u64)>,
    interrupted: bool,
    /// An async task sleeping on this queue instead of a thread.
    sleeper: Option<Waker>,
}

impl ReadyQueue {
    pub(crate) fn new() -> ReadyQueue {
        ReadyQueue {
            state: Mutex::new(Ready::default()),
            cv: Condvar::new(),
        }
    }

    fn push(&self, slot: usize, token: u64) {
        let mut state = self.state.lock();
        state.woken.push((slot, token));
        let sleeper = state.sleeper.take();
        drop(state);
        self.cv.notify_one();
        if let Some(task) = sleeper {
            task.wake();
        }
    }

    /// For an async drain: `true` if something is woken already; otherwise
    /// `task` is woken by the next push (checked under the queue's lock, so
    /// the wake cannot be missed).
    // Only the async cleanup, which loom builds leave out, calls it.
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn woken_or_register(&self, task: &Waker) -> bool {
        let mut state = self.state.lock();
        if !state.woken.is_empty() || state.interrupted {
            return true;
        }
        state.sleeper = Some(task.clone());
        false
    }

    /// Wakes the sleeper for good: its next `sleep` returns at once.
    pub(crate) fn interrupt(&self) {
        self.state.lock().interrupted = true;
        self.cv.notify_one();
    }

    /// Undoes [`interrupt`](ReadyQueue::interrupt): the queue's sleeper
    /// changes (the background thread hands its flusher to the drain).
    pub(crate) fn resume(&self) {
        self.state.lock().interrupted = false;
    }

    pub(crate) fn is_interrupted(&self) -> bool {
        self.state.lock().interrupted
    }

    /// Moves what was woken into `into` (which is empty).
    fn take(&self, into: &mut Vec<(usize, u64)>) {
        std::mem::swap(&mut self.state.lock().woken, into);
    }

    /// Sleeps until something is woken, an interrupt, or `deadline`.
    pub(crate) fn sleep(&self, deadline: Option<Instant>) {
        let mut state = self.state.lock();
        while state.woken.is_empty() && !state.interrupted {
            match deadline {
                None => state = self.cv.wait(state),
                Some(d) => {
                    if Instant::now() >= d {
                        return;
                    }
                    state = self.cv.wait_until(state, d);
                }
            }
        }
    }
}

/// The waker of one slot.
struct SlotWaker {
    queue: Arc<ReadyQueue>,
    slot: usize,
    token: u64,
    /// Set from a wake until the next poll: wakes in between coalesce.
    scheduled: AtomicBool,
}

impl Wake for SlotWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // [P10] AcqRel: Release what the waking thread saw (the socket's new
        // readiness) to the flusher's Acquire swap before it polls.
        if !self.scheduled.swap(true, Ordering::AcqRel) {
            self.queue.push(self.slot, self.token);
        }
    }
}

struct Slot<S> {
    ending: Ending<S>,
    token: u64,
    flag: Arc<SlotWaker>,
    waker: Waker,
}

/// Flushes many endings from one thread, polling only those woken (see the
/// module docs). Finished lines go to the `done` callback of each call.
pub(crate) struct Flusher<S> {
    slots: Vec<Option<Slot<S>>>,
    free: Vec<usize>,
    live: usize,
    queue: Arc<ReadyQueue>,
    deadlines: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    next_token: u64,
    woken: Vec<(usize, u64)>,
}

impl<S: Socket> Flusher<S> {
    pub(crate) fn new() -> Flusher<S> {
        Flusher::on(Arc::new(ReadyQueue::new()))
    }

    /// A flusher sleeping on `queue` (which an [`Interrupt`] may end).
    fn on(queue: Arc<ReadyQueue>) -> Flusher<S> {
        Flusher {
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
            queue,
            deadlines: BinaryHeap::new(),
            next_token: 1,
            woken: Vec::new(),
        }
    }

    /// The queue this flusher sleeps on.
    pub(crate) fn queue(&self) -> &Arc<ReadyQueue> {
        &self.queue
    }

    /// Endings not finished yet.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// Adds an ending; it is polled on the next pass.
    pub(crate) fn push(&mut self, ending: Ending<S>) {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        let token = self.next_token;
        self.next_token += 1;
        let flag = Arc::new(SlotWaker {
            queue: Arc::clone(&self.queue),
            slot,
            token,
            scheduled: AtomicBool::new(true),
        });
        let waker = Waker::from(Arc::clone(&flag));
        self.deadlines.push(Reverse((ending.deadline, slot, token)));
        self.slots[slot] = Some(Slot {
            ending,
            token,
            flag,
            waker,
        });
        self.live += 1;
        self.queue.push(slot, token);
    }

    fn take_slot(&mut self, slot: usize, token: u64) -> Option<Slot<S>> {
        match self.slots.get_mut(slot) {
            Some(s) if s.as_ref().is_some_and(|s| s.token == token) => {
                self.free.push(slot);
                self.live -= 1;
                s.take()
            }
            _ => None,
        }
    }

    /// One pass: polls every woken ending once, then ends those past their
    /// deadline.
    pub(crate) fn pass(&mut self, done: &mut impl FnMut(SocketReport)) {
        let mut woken = std::mem::take(&mut self.woken);
        self.queue.take(&mut woken);
        let now = Instant::now();
        for (slot, token) in woken.drain(..) {
            let Some(s) = self.take_slot(slot, token) else {
                continue; // a stale wake: the ending is gone
            };
            // [P10] AcqRel: see the waker's side; a wake after this re-queues.
            s.flag.scheduled.swap(false, Ordering::AcqRel);
            let mut cx = Context::from_waker(&s.waker);
            match s.ending.step(&mut cx, now) {
                Step::Finished(line) => done(line),
                Step::Pending(ending) => {
                    self.free.pop();
                    self.live += 1;
                    self.slots[slot] = Some(Slot { ending, ..s });
                }
            }
        }
        self.woken = woken;
        while let Some(Reverse((at, slot, token))) = self.deadlines.peek().copied() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            if let Some(s) = self.take_slot(slot, token) {
                let outcome = s.ending.deadline_outcome;
                done(s.ending.abort(outcome, None));
            }
        }
    }

    /// The earliest deadline of a live ending (dropping stale entries).
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, slot, token))) = self.deadlines.peek().copied() {
            if self
                .slots
                .get(slot)
                .and_then(Option::as_ref)
                .is_some_and(|s| s.token == token)
            {
                return Some(at);
            }
            self.deadlines.pop();
        }
        None
    }

    /// Takes every unfinished ending out.
    pub(crate) fn into_endings(self) -> impl Iterator<Item = Ending<S>> {
        self.slots.into_iter().flatten().map(|s| s.ending)
    }

    /// Bounds every ending by `drain` too (the final cleanup adopting the
    /// background's flusher): wakers, and wakes already queued, stay valid,
    /// so nothing is polled again unless woken.
    pub(crate) fn bound_all(&mut self, drain: Instant) {
        self.queue.resume();
        for slot in self.slots.iter_mut().flatten() {
            // A tie is the drain's, as in `Ending::bound`.
            if drain <= slot.ending.deadline {
                slot.ending.deadline = drain;
                slot.ending.deadline_outcome = SocketOutcome::Deadline;
                self.deadlines
                    .push(Reverse((drain, slot.flag.slot, slot.token)));
            }
        }
    }
}

/// Flushes one ending on the calling thread until it finishes or `queue` is
/// interrupted; an interrupted ending is ended by `interrupted`. The same
/// engine as every other flush, with one ending: it sleeps between passes
/// until the socket's waker fires, the interrupt, or the ending's deadline.
pub(crate) fn flush_one<S: Socket>(
    ending: Ending<S>,
    queue: &Arc<ReadyQueue>,
    interrupted: impl FnOnce(Ending<S>) -> SocketReport,
) -> SocketReport {
    let mut flusher = Flusher::on(Arc::clone(queue));
    flusher.push(ending);
    let mut finished = None;
    loop {
        flusher.pass(&mut |line| finished = Some(line));
        if let Some(line) = finished {
            return line;
        }
        if queue.is_interrupted() {
            let ending = flusher.into_endings().next();
            return interrupted(ending.expect("one ending, not finished"));
        }
        queue.sleep(flusher.next_deadline());
    }
}

/// A waker that interrupts a queue (the final cleanup's cancel step uses it
/// to end a blocking close, [S6](crate::contract#S6)).
pub(crate) struct Interrupt(pub(crate) Arc<ReadyQueue>);

impl Wake for Interrupt {
    fn wake(self: Arc<Self>) {
        self.0.interrupt();
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
