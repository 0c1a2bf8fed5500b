//! Recording fakes: a provider, resources and sockets that log every call,
//! so tests can assert order and exactly-once.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use provider_lifecycle::*;

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Init(u64),
    InitFailed(u64),
    Register(String),
    Release(String),
    Cancel,
    PrepareUnload,
    SockFlush(u32),
    SockAbort(u32),
    SockRelease(u32),
}

/// A shared log of events.
#[derive(Debug, Clone, Default)]
pub struct Log(Arc<Mutex<Vec<Event>>>);

impl Log {
    pub fn push(&self, e: Event) {
        self.0.lock().push(e);
    }
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().clone()
    }
    pub fn clear(&self) {
        self.0.lock().clear();
    }
    pub fn count(&self, f: impl Fn(&Event) -> bool) -> usize {
        self.0.lock().iter().filter(|e| f(e)).count()
    }
    /// The index of the first event matching `f`.
    pub fn position(&self, f: impl Fn(&Event) -> bool) -> Option<usize> {
        self.0.lock().iter().position(f)
    }
    pub fn inits(&self) -> usize {
        self.count(|e| matches!(e, Event::Init(_)))
    }
    pub fn unloads(&self) -> usize {
        self.count(|e| matches!(e, Event::PrepareUnload))
    }
}

/// What the fake provider should do; tests flip these between steps.
#[derive(Default)]
pub struct Knobs {
    /// Resource names initialize registers.
    pub resources: Mutex<Vec<String>>,
    /// Make the next initializations fail.
    pub fail_init: AtomicBool,
    /// Fail (or, with `panic_init`, panic) after registering this many
    /// resources; `usize::MAX` means after all of them.
    pub init_fault_at: AtomicUsize,
    /// Make initialization panic.
    pub panic_init: AtomicBool,
    /// Make the named resource's release fail.
    pub fail_release: Mutex<Vec<String>>,
    /// Make the named resource's release panic.
    pub panic_release: Mutex<Vec<String>>,
    pub panic_cancel: AtomicBool,
    pub fail_unload: AtomicBool,
    pub panic_unload: AtomicBool,
    /// Returned by cancel_pending.
    pub cancelled: AtomicUsize,
    /// Run by the cancel hook (e.g. unblock a parked receive).
    pub on_cancel: Mutex<Option<Box<dyn Fn() + Send + Sync>>>,
}

impl std::fmt::Debug for Knobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Knobs").finish_non_exhaustive()
    }
}

/// A provider whose every hook records into `log`.
#[derive(Debug, Clone)]
pub struct FakeProvider {
    pub log: Log,
    pub knobs: Arc<Knobs>,
    pub range: VersionRange,
}

impl Default for FakeProvider {
    fn default() -> Self {
        let knobs = Knobs::default();
        knobs.init_fault_at.store(usize::MAX, Ordering::SeqCst);
        FakeProvider {
            log: Log::default(),
            knobs: Arc::new(knobs),
            range: VersionRange::new(Version::new(1, 1), Version::new(2, 2)),
        }
    }
}

impl FakeProvider {
    pub fn with_resources(names: &[&str]) -> Self {
        let p = FakeProvider::default();
        *p.knobs.resources.lock() = names.iter().map(|s| s.to_string()).collect();
        p
    }
}

/// A resource that records its release.
pub struct FakeResource {
    pub name: String,
    pub log: Log,
    pub knobs: Arc<Knobs>,
}

impl Resource for FakeResource {
    fn name(&self) -> &str {
        &self.name
    }
    fn release(self: Box<Self>) -> Result<(), BoxError> {
        self.log.push(Event::Release(self.name.clone()));
        if self.knobs.panic_release.lock().contains(&self.name) {
            panic!("release of {} panicked", self.name);
        }
        if self.knobs.fail_release.lock().contains(&self.name) {
            return Err(format!("release of {} failed", self.name).into());
        }
        Ok(())
    }
}

impl Provider for FakeProvider {
    type Socket = FakeSocket;
    type State = ();

    fn versions(&self) -> VersionRange {
        self.range
    }

    fn initialize(&self, init: &mut Registrar) -> Result<(), Error> {
        let g = init.generation();
        let fault_at = self.knobs.init_fault_at.load(Ordering::SeqCst);
        for (i, name) in self.knobs.resources.lock().clone().into_iter().enumerate() {
            if i == fault_at {
                break;
            }
            self.log.push(Event::Register(name.clone()));
            init.register(FakeResource {
                name,
                log: self.log.clone(),
                knobs: self.knobs.clone(),
            });
        }
        if self.knobs.panic_init.load(Ordering::SeqCst) {
            self.log.push(Event::InitFailed(g));
            panic!("initialization exploded");
        }
        if self.knobs.fail_init.load(Ordering::SeqCst) {
            self.log.push(Event::InitFailed(g));
            return Err(Error::system_not_ready("fake init failure"));
        }
        self.log.push(Event::Init(g));
        Ok(())
    }

    fn cancel_pending(&self) -> Result<usize, BoxError> {
        self.log.push(Event::Cancel);
        if let Some(f) = &*self.knobs.on_cancel.lock() {
            f();
        }
        if self.knobs.panic_cancel.load(Ordering::SeqCst) {
            panic!("cancel exploded");
        }
        Ok(self.knobs.cancelled.load(Ordering::SeqCst))
    }

    fn prepare_unload(&self) -> Result<(), BoxError> {
        self.log.push(Event::PrepareUnload);
        if self.knobs.panic_unload.load(Ordering::SeqCst) {
            panic!("unload exploded");
        }
        if self.knobs.fail_unload.load(Ordering::SeqCst) {
            return Err("unload failed".into());
        }
        Ok(())
    }
}

/// The observable state of a fake socket, shared with the test.
#[derive(Debug, Default)]
pub struct SockState {
    pub accepted: u64,
    pub unsent: u64,
    /// Bytes delivered, in order: `delivered[i] == i as u8` checks order.
    pub delivered: Vec<u8>,
    pub discarded: u64,
    pub flush_calls: u64,
    pub aborts: u32,
    pub releases: u32,
    /// A flush or abort after release (rule S2 violation).
    pub used_after_release: bool,
}

/// How a fake socket flushes.
#[derive(Debug, Clone)]
pub struct SockPlan {
    pub linger: Linger,
    pub blocking: bool,
    /// Bytes delivered per poll once ready.
    pub rate: u64,
    /// No progress before this instant (a slow peer).
    pub ready_at: Option<Instant>,
    /// Never make progress (a stuck peer).
    pub stuck: bool,
    pub fail_flush: bool,
    pub panic_flush: bool,
    pub panic_abort: bool,
    pub fail_abort: bool,
    pub fail_release: bool,
    pub panic_release: bool,
}

impl Default for SockPlan {
    fn default() -> Self {
        SockPlan {
            linger: Linger::Background,
            blocking: true,
            rate: u64::MAX,
            ready_at: None,
            stuck: false,
            fail_flush: false,
            panic_flush: false,
            panic_abort: false,
            fail_abort: false,
            fail_release: false,
            panic_release: false,
        }
    }
}

/// A socket that records everything into its shared state and the log.
#[derive(Debug)]
pub struct FakeSocket {
    pub id: u32,
    pub plan: SockPlan,
    pub state: Arc<Mutex<SockState>>,
    pub log: Log,
}

impl FakeSocket {
    pub fn new(id: u32, plan: SockPlan, log: &Log) -> (FakeSocket, Arc<Mutex<SockState>>) {
        let state = Arc::new(Mutex::new(SockState::default()));
        (
            FakeSocket {
                id,
                plan,
                state: state.clone(),
                log: log.clone(),
            },
            state,
        )
    }

    /// The application writes `n` bytes (accepted, not yet sent).
    pub fn write(&mut self, n: u64) {
        let mut s = self.state.lock();
        s.accepted += n;
        s.unsent += n;
    }
}

impl Socket for FakeSocket {
    fn linger(&self) -> Linger {
        self.plan.linger
    }
    fn is_blocking(&self) -> bool {
        self.plan.blocking
    }
    fn unsent(&self) -> u64 {
        self.state.lock().unsent
    }
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.log.push(Event::SockFlush(self.id));
        let mut s = self.state.lock();
        s.flush_calls += 1;
        if s.releases > 0 {
            s.used_after_release = true;
        }
        if self.plan.panic_flush {
            drop(s);
            panic!("flush of socket {} exploded", self.id);
        }
        if self.plan.fail_flush {
            return Poll::Ready(Err("peer went away".into()));
        }
        let ready = self.plan.ready_at.is_none_or(|t| Instant::now() >= t);
        if ready && !self.plan.stuck {
            let n = s.unsent.min(self.plan.rate);
            let start = s.delivered.len();
            s.delivered
                .extend((start..start + n as usize).map(|i| i as u8));
            s.unsent -= n;
        }
        if s.unsent == 0 {
            return Poll::Ready(Ok(()));
        }
        // Arrange the wake-up, as a real socket would: a stuck socket never
        // wakes (only a deadline ends it); one that is not ready yet wakes
        // when it becomes ready; a rate-limited one can go on at once.
        match self.plan.ready_at {
            _ if self.plan.stuck => {}
            Some(at) if !ready => wake_at(at, cx.waker().clone()),
            _ => cx.waker().wake_by_ref(),
        }
        Poll::Pending
    }
    fn abort(&mut self) -> Result<(), BoxError> {
        self.log.push(Event::SockAbort(self.id));
        let mut s = self.state.lock();
        if s.releases > 0 {
            s.used_after_release = true;
        }
        s.aborts += 1;
        s.discarded += s.unsent;
        s.unsent = 0;
        if self.plan.panic_abort {
            drop(s);
            panic!("abort exploded");
        }
        if self.plan.fail_abort {
            return Err("abort failed".into());
        }
        Ok(())
    }
    fn release(&mut self) -> Result<(), BoxError> {
        self.log.push(Event::SockRelease(self.id));
        self.state.lock().releases += 1;
        if self.plan.panic_release {
            panic!("release of socket {} exploded", self.id);
        }
        if self.plan.fail_release {
            return Err("close failed".into());
        }
        Ok(())
    }
}

/// Checks the accounting invariant of one socket after it is released:
/// accepted = delivered + discarded, released exactly once, no use after.
pub fn assert_accounted(s: &SockState) {
    assert_eq!(
        s.accepted,
        s.delivered.len() as u64 + s.discarded,
        "accepted = flushed + discarded: {s:?}"
    );
    assert_eq!(s.releases, 1, "released exactly once: {s:?}");
    assert!(!s.used_after_release, "used after release: {s:?}");
    assert!(
        s.delivered.iter().enumerate().all(|(i, b)| *b == i as u8),
        "delivered in order"
    );
}

pub fn v(major: u8, minor: u8) -> Version {
    Version::new(major, minor)
}

/// A lifecycle over a fresh fake provider with `config`.
pub fn lifecycle_with(config: Config, provider: FakeProvider) -> Lifecycle<FakeProvider> {
    Lifecycle::with_config(provider, config)
}

/// Runs `f` on another thread and fails if it does not finish in `limit`.
pub fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("did not finish within {limit:?}"))
}

/// A watchdog for one test: if the test is still running after `secs`
/// seconds (a hang: a lost wake-up, a drain waiting for itself), it prints
/// the test's name and ends the whole test binary with exit code 124, so a
/// regression fails CI instead of stalling it. Dropping it (at the end of
/// the test) disarms it.
#[must_use = "the watchdog is disarmed when dropped"]
pub fn watchdog(secs: u64) -> Watchdog {
    let name = std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_owned();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
            rx.recv_timeout(Duration::from_secs(secs))
        {
            eprintln!("watchdog: test `{name}` still running after {secs} s: it hangs");
            std::process::exit(124);
        }
    });
    Watchdog(tx)
}

/// See [`watchdog`].
#[derive(Debug)]
pub struct Watchdog(std::sync::mpsc::Sender<()>);

/// Wakes `waker` at `at`, from a timer thread (the fakes' "reactor").
pub fn wake_at(at: Instant, waker: Waker) {
    std::thread::spawn(move || {
        std::thread::sleep(at.saturating_duration_since(Instant::now()));
        waker.wake();
    });
}

/// Threads of this process whose name starts with `prefix` (Linux keeps the
/// first 15 bytes of a thread's name in `/proc/self/task/*/comm`).
pub fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .filter_map(Result::ok)
                .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
                .filter(|comm| comm.trim_end().starts_with(prefix))
                .count()
        })
        .unwrap_or(0)
}
