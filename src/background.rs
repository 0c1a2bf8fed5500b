//! Background closes that finish by themselves ([S4](crate::contract#S4)).
//!
//! A socket closed with `Linger::Background` and data left becomes an
//! [`Ending`] in this lifecycle-owned engine. By default
//! ([`BackgroundFlush::Thread`]) the first such close of a generation starts
//! one helper thread, which runs the event-driven [`Flusher`]: it polls a
//! socket only after its waker fired and otherwise sleeps, so an idle
//! background costs nothing. The final cleanup interrupts and **joins** the
//! thread before it touches any socket ([L13](crate::contract#L13)), then
//! takes the endings still flushing into its own drain. With
//! [`BackgroundFlush::Manual`] no thread is started and the provider drives
//! the same engine from its own loop with
//! [`Lifecycle::poll_background`](crate::Lifecycle::poll_background).
//!
//! Lines of background closes that ended while Active are kept for the next
//! drain report: clean ones are counted ([`DrainReport::flushed_in_background`]),
//! the first 1,024 bad ones (failed, discarded) are listed and the rest counted
//! ([`DrainReport::summarized`]).
//!
//! [`DrainReport::flushed_in_background`]: crate::DrainReport::flushed_in_background
//! [`DrainReport::summarized`]: crate::DrainReport::summarized

use std::sync::Arc;

use crate::Socket;
use crate::config::BackgroundFlush;
use crate::flush::{Ending, Flusher, ReadyQueue};
use crate::helper::Spawner;
use crate::report::{SocketReport, SummarizedSockets};
use crate::sync::{self, JoinHandle, Mutex};

/// How many bad background lines are kept per generation.
pub(crate) const FINISHED_LINES: usize = 1024;

/// What background closes that ended while Active leave for the next report.
#[derive(Debug, Default)]
pub(crate) struct Books {
    /// Bad lines, up to [`FINISHED_LINES`].
    pub(crate) lines: Vec<SocketReport>,
    /// Bad lines beyond the limit.
    pub(crate) summarized: SummarizedSockets,
    /// Clean ones: counted, not listed.
    pub(crate) flushed: SummarizedSockets,
}

impl Books {
    fn record(&mut self, line: SocketReport) {
        if line.is_clean() {
            self.flushed.add(&line);
        } else if self.lines.len() < FINISHED_LINES {
            self.lines.push(line);
        } else {
            self.summarized.add(&line);
        }
    }
}

/// The engine a generation's background closes run in.
struct Engine<S> {
    flusher: Mutex<Flusher<S>>,
    /// The flusher's queue, to sleep on without holding the flusher.
    queue: Arc<ReadyQueue>,
    books: Mutex<Books>,
}

impl<S: Socket> Engine<S> {
    /// One pass over what was woken.
    fn pass(&self) -> usize {
        let mut flusher = self.flusher.lock();
        flusher.pass(&mut |line| self.books.lock().record(line));
        flusher.len()
    }

    /// The helper thread: passes until interrupted, sleeping in between.
    fn run(&self) {
        loop {
            let mut flusher = self.flusher.lock();
            flusher.pass(&mut |line| self.books.lock().record(line));
            if self.queue.is_interrupted() {
                return;
            }
            let next = flusher.next_deadline();
            drop(flusher);
            self.queue.sleep(next);
        }
    }
}

/// A lifecycle's background closes (see the module docs).
pub(crate) struct Background<S> {
    engine: Option<Arc<Engine<S>>>,
    thread: Option<JoinHandle>,
}

/// What the final cleanup takes over from the background: the flusher
/// itself (its wakers stay valid, so nothing is polled again unless woken)
/// and the books.
pub(crate) struct Handover<S> {
    pub(crate) flusher: Flusher<S>,
    pub(crate) books: Books,
}

impl<S: Socket> Background<S> {
    sync::loom_const_fn! {
        pub(crate) fn new() -> Background<S> {
            Background {
                engine: None,
                thread: None,
            }
        }
    }

    /// Hands a background close to the engine; in `Thread` mode starts the
    /// helper thread if it is not running (if the OS refuses a thread, the
    /// close still completes at `poll_background` or the final cleanup).
    pub(crate) fn push(&mut self, ending: Ending<S>, mode: BackgroundFlush, spawner: Spawner) {
        let engine = self.engine.get_or_insert_with(|| {
            let flusher = Flusher::new();
            Arc::new(Engine {
                queue: Arc::clone(flusher.queue()),
                flusher: Mutex::new(flusher),
                books: Mutex::new(Books::default()),
            })
        });
        engine.flusher.lock().push(ending.in_background());
        if mode == BackgroundFlush::Thread && self.thread.is_none() {
            let engine = Arc::clone(engine);
            self.thread = sync::spawn(spawner, "provider-lifecycle flusher", move || engine.run());
        }
    }

    /// One pass on the caller's thread (`poll_background`); returns how many
    /// are still flushing.
    pub(crate) fn poll(&self) -> usize {
        self.engine.as_ref().map_or(0, |e| e.pass())
    }

    /// Sockets still flushing.
    pub(crate) fn len(&self) -> usize {
        self.engine.as_ref().map_or(0, |e| e.flusher.lock().len())
    }

    /// Stops and joins the helper thread, and takes everything over, leaving
    /// this empty for the next generation.
    pub(crate) fn take(&mut self) -> Handover<S> {
        let Some(engine) = self.engine.take() else {
            return Handover {
                flusher: Flusher::new(),
                books: Books::default(),
            };
        };
        engine.queue.interrupt();
        if let Some(thread) = self.thread.take() {
            // The thread never unwinds (user code is called through the
            // panic catching).
            thread.join();
        }
        let flusher = std::mem::replace(&mut *engine.flusher.lock(), Flusher::new());
        let books = std::mem::take(&mut *engine.books.lock());
        Handover { flusher, books }
    }
}
