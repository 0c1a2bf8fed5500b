//! Event-driven sockets: background closes that finish by themselves (S4),
//! a drain that polls only woken sockets and sleeps otherwise (S5), and a
//! blocking linger close that the final cleanup can end (S6).
#![cfg(not(loom))]

mod support;

#[path = "../examples/common/tcp.rs"]
mod tcp;

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use provider_lifecycle::*;
use support::*;
use tcp::{TcpSocket, pair, slow_reader};

const V: Version = Version::new(2, 2);
const MIB: u64 = 1 << 20;

/// The tests here count the process's flusher threads, so they run one at
/// a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// A provider of `S` sockets with no hooks.
struct Bare<S>(std::marker::PhantomData<fn() -> S>);

impl<S: Socket> Provider for Bare<S> {
    type Socket = S;
    type State = ();
    fn versions(&self) -> VersionRange {
        VersionRange::new(V, V)
    }
    fn initialize(&self, _: &mut Registrar) -> Result<(), Error> {
        Ok(())
    }
}

fn bare<S: Socket>(config: Config) -> Lifecycle<Bare<S>> {
    let l = Lifecycle::with_config(Bare(std::marker::PhantomData), config);
    l.startup(V).unwrap();
    l
}

// S4 (and L13): a background close on real TCP delivers every byte, in
// order, to a slow peer while Active, with nobody calling `poll_background`;
// the bytes appear in the next drain report, and the lifecycle's flusher
// thread is gone when the final cleanup returns.
#[test]
fn s4_background_close_on_real_tcp_finishes_by_itself_while_active() {
    let _watchdog = watchdog(120);
    let _serial = SERIAL.lock();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let l = bare::<TcpSocket>(Config::new());
    let (ours, peer) = pair(&listener).unwrap();
    let h = l
        .register_socket(TcpSocket::new(ours, Linger::Background, true).unwrap())
        .unwrap();
    l.with_socket(h, |s| s.send_pattern(4 * MIB)).unwrap();
    let reader = std::thread::spawn(move || {
        slow_reader(
            peer,
            16 * 1024,
            Duration::from_micros(200),
            Duration::from_secs(60),
        )
    });
    assert_eq!(
        l.close_socket(h).unwrap().outcome,
        SocketOutcome::Background
    );
    // Nobody drives it: the peer still gets everything while Active.
    let got = reader.join().unwrap();
    assert_eq!(got.received, 4 * MIB, "every byte delivered while Active");
    assert!(got.in_order && !got.reset);
    assert_eq!(l.state(), State::Active);
    let start = Instant::now();
    while l.background_sockets() > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "released in time"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(
        threads_named("provider-lifecy") >= 1,
        "the flusher thread runs"
    );
    let report = l.cleanup().unwrap().into_report().unwrap();
    assert_eq!(report.flushed_in_background.sockets, 1);
    assert_eq!(report.flushed_in_background.bytes_flushed, 4 * MIB);
    assert_eq!(report.bytes_flushed(), 4 * MIB);
    assert!(report.is_clean(), "{report}");
    assert_eq!(
        threads_named("provider-lifecy"),
        0,
        "L13: joined by the cleanup"
    );
}

// S4: a background close that fails while Active is reported at the final
// cleanup, with what it discarded.
#[test]
fn s4_background_failure_while_active_is_reported_at_the_final_cleanup() {
    let _watchdog = watchdog(120);
    let _serial = SERIAL.lock();
    let log = Log::default();
    let l = bare::<FakeSocket>(Config::new());
    let plan = SockPlan {
        fail_flush: true,
        ..SockPlan::default()
    };
    let (mut s, st) = FakeSocket::new(1, plan, &log);
    s.write(77);
    let h = l.register_socket(s).unwrap();
    l.close_socket(h).unwrap();
    let start = Instant::now();
    while l.background_sockets() > 0 {
        assert!(start.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(st.lock().releases, 1, "ended while Active");
    let report = l.cleanup().unwrap().into_report().unwrap();
    let line = report.socket(h).expect("reported");
    assert_eq!(line.outcome, SocketOutcome::Failed);
    assert_eq!(line.bytes_discarded, 77);
    assert_eq!(line.phase, SocketPhase::Background);
    assert_accounted(&st.lock());
}

/// A socket that counts its polls and, while `held`, keeps its waker and
/// stays pending; it delivers its byte once released by the test.
struct Gate {
    polls: Arc<AtomicU64>,
    open: Arc<AtomicBool>,
    waker: Arc<Mutex<Option<Waker>>>,
    unsent: u64,
}

/// A gate with the test's handles on its poll count, its latch and the
/// waker it leaves.
type GateParts = (
    Gate,
    Arc<AtomicU64>,
    Arc<AtomicBool>,
    Arc<Mutex<Option<Waker>>>,
);

impl Gate {
    fn new() -> GateParts {
        let g = Gate {
            polls: Arc::default(),
            open: Arc::default(),
            waker: Arc::default(),
            unsent: 1,
        };
        let parts = (g.polls.clone(), g.open.clone(), g.waker.clone());
        (g, parts.0, parts.1, parts.2)
    }
}

impl Socket for Gate {
    fn unsent(&self) -> u64 {
        self.unsent
    }
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.polls.fetch_add(1, SeqCst);
        if self.open.load(SeqCst) {
            self.unsent = 0;
            return Poll::Ready(Ok(()));
        }
        *self.waker.lock() = Some(cx.waker().clone());
        Poll::Pending
    }
    fn abort(&mut self) -> Result<(), BoxError> {
        self.unsent = 0;
        Ok(())
    }
}

// S5: the drain polls each socket once at the start, then only sockets
// whose waker fired; a socket that never wakes is not polled again and is
// ended by the drain deadline.
#[test]
fn s5_the_drain_never_polls_a_socket_that_was_not_woken() {
    let _watchdog = watchdog(120);
    let _serial = SERIAL.lock();
    let config = Config::new()
        .with_open_socket_policy(OpenSocketPolicy::Graceful)
        .with_drain_deadline(Duration::from_millis(400));
    let l = bare::<Gate>(config);
    let mut gates = Vec::new();
    for _ in 0..10 {
        let (g, polls, open, waker) = Gate::new();
        let h = l.register_socket(g).unwrap();
        gates.push((h, polls, open, waker));
    }
    let woken: Vec<_> = gates[..5]
        .iter()
        .map(|(_, _, open, waker)| (open.clone(), waker.clone()))
        .collect();
    let waker_thread = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        for (open, waker) in woken {
            open.store(true, SeqCst);
            waker.lock().take().expect("polled once, waker left").wake();
        }
    });
    let started = Instant::now();
    let report = l.cleanup().unwrap().into_report().unwrap();
    waker_thread.join().unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "waited for the deadline"
    );
    for (i, (h, polls, _, _)) in gates.iter().enumerate() {
        let line = report.socket(*h).unwrap();
        if i < 5 {
            assert_eq!(
                polls.load(SeqCst),
                2,
                "socket {i}: the first poll and the woken one"
            );
            assert_eq!(line.outcome, SocketOutcome::Flushed);
        } else {
            assert_eq!(
                polls.load(SeqCst),
                1,
                "socket {i}: never woken, never polled again"
            );
            assert_eq!(line.outcome, SocketOutcome::Deadline);
            assert_eq!(line.bytes_discarded, 1);
        }
    }
}

// S5: a socket that never wakes is still bounded by its own linger timeout
// (a blocking close) and by the drain deadline (the final cleanup).
#[test]
fn s5_a_socket_that_never_wakes_is_bounded_by_its_deadlines() {
    let _watchdog = watchdog(120);
    let _serial = SERIAL.lock();
    let log = Log::default();
    let stuck = |linger| SockPlan {
        stuck: true,
        linger,
        ..SockPlan::default()
    };
    let config = Config::new()
        .with_open_socket_policy(OpenSocketPolicy::Graceful)
        .with_drain_deadline(Duration::from_millis(150));
    let l = bare::<FakeSocket>(config);
    let (mut s, st1) = FakeSocket::new(1, stuck(Linger::Timeout(Duration::from_millis(100))), &log);
    s.write(10);
    let h = l.register_socket(s).unwrap();
    let t = Instant::now();
    let line = l.close_socket(h).unwrap();
    assert_eq!(line.outcome, SocketOutcome::LingerTimeout);
    assert_eq!(line.bytes_discarded, 10);
    assert!(t.elapsed() >= Duration::from_millis(100));
    assert_eq!(st1.lock().flush_calls, 1, "never woken: polled once");

    let (mut s, st2) = FakeSocket::new(2, stuck(Linger::Background), &log);
    s.write(20);
    let h = l.register_socket(s).unwrap();
    let t = Instant::now();
    let report = l.cleanup().unwrap().into_report().unwrap();
    assert!(t.elapsed() >= Duration::from_millis(150));
    assert_eq!(report.socket(h).unwrap().outcome, SocketOutcome::Deadline);
    assert_eq!(report.bytes_discarded(), 20);
    for st in [st1, st2] {
        assert_accounted(&st.lock());
    }
}

// S5: a waker fired after its socket was released — after the drain, and
// after the lifecycle itself is gone — is harmless: no poll, no panic.
#[test]
fn s5_a_waker_fired_after_release_is_harmless() {
    let _watchdog = watchdog(120);
    let _serial = SERIAL.lock();
    let config = Config::new()
        .with_open_socket_policy(OpenSocketPolicy::Graceful)
        .with_drain_deadline(Duration::from_millis(50));
    let l = bare::<Gate>(config);
    let (g, polls, _open, waker) = Gate::new();
    let h = l.register_socket(g).unwrap();
    let report = l.cleanup().unwrap().into_report().unwrap();
    assert_eq!(report.socket(h).unwrap().outcome, SocketOutcome::Deadline);
    let stale = waker.lock().take().expect("the socket left its waker");
    stale.wake_by_ref();
    l.startup(V).unwrap(); // a new generation, new slots
    stale.wake_by_ref();
    drop(l);
    stale.wake();
    assert_eq!(polls.load(SeqCst), 1, "never polled after its release");
}

// S6: a blocking close with a long linger timeout is ended by the final
// cleanup's cancel step; it reports what it discarded, and the cleanup does
// not wait for the linger.
#[test]
fn s6_blocking_linger_close_is_ended_by_the_cancel_step() {
    let _watchdog = watchdog(120);
    let _serial = SERIAL.lock();
    let log = Log::default();
    let l = Arc::new(bare::<FakeSocket>(Config::new()));
    let plan = SockPlan {
        stuck: true,
        linger: Linger::Timeout(Duration::from_secs(3600)),
        ..SockPlan::default()
    };
    let (mut s, st) = FakeSocket::new(1, plan, &log);
    s.write(4096);
    let h = l.register_socket(s).unwrap();
    let closer = {
        let l = l.clone();
        std::thread::spawn(move || l.close_socket(h))
    };
    // Wait until the close is inside its linger wait.
    while st.lock().flush_calls == 0 {
        std::thread::yield_now();
    }
    let t = Instant::now();
    let report = l.cleanup().unwrap().into_report().unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "not held hostage by the linger"
    );
    assert_eq!(
        report.operations.waited_for, 1,
        "the close's guard was waited for"
    );
    let line = closer.join().unwrap().expect("the close answers");
    assert_eq!(line.outcome, SocketOutcome::Cancelled);
    assert_eq!(line.bytes_discarded, 4096);
    assert!(line.error().is_some_and(|e| e.contains("WSAEINTR")));
    assert_accounted(&st.lock());
    assert_eq!(Error::Interrupted.wsa_code(), 10004);
}

// S4, L13: with `BackgroundFlush::Manual` no thread is started; the
// provider's own `poll_background` (run when wakers fire) does the work.
#[test]
fn s4_manual_mode_starts_no_thread_and_poll_background_drives_it() {
    let _watchdog = watchdog(120);
    let _serial = SERIAL.lock();
    let before = threads_named("provider-lifecy");
    let l = bare::<Gate>(Config::new().with_background_flush(BackgroundFlush::Manual));
    let (g, polls, open, waker) = Gate::new();
    let h = l.register_socket(g).unwrap();
    assert_eq!(
        l.close_socket(h).unwrap().outcome,
        SocketOutcome::Background
    );
    assert_eq!(
        threads_named("provider-lifecy"),
        before,
        "no thread in Manual mode"
    );
    assert_eq!(l.poll_background(), Ok(1));
    assert_eq!(polls.load(SeqCst), 1);
    assert_eq!(l.poll_background(), Ok(1));
    assert_eq!(polls.load(SeqCst), 1, "not woken: not polled");
    open.store(true, SeqCst);
    waker.lock().take().unwrap().wake();
    assert_eq!(l.poll_background(), Ok(0));
    assert_eq!(polls.load(SeqCst), 2);
    let report = l.cleanup().unwrap().into_report().unwrap();
    assert_eq!(report.flushed_in_background.sockets, 1);
}

// D1: report lookups by handle work for every line (O(log n) index).
#[test]
fn d1_report_lookup_by_handle_finds_every_line() {
    let _watchdog = watchdog(120);
    let _serial = SERIAL.lock();
    let log = Log::default();
    let l = bare::<FakeSocket>(Config::new());
    let handles: Vec<_> = (0..1000)
        .map(|i| {
            let (mut s, _) = FakeSocket::new(i, SockPlan::default(), &log);
            s.write(u64::from(i));
            l.register_socket(s).unwrap()
        })
        .collect();
    let report = l.cleanup().unwrap().into_report().unwrap();
    // D1: the socket with nothing unsent closed cleanly: counted, no line.
    assert_eq!(report.socket(handles[0]), None);
    assert_eq!(report.closed_clean, 1);
    for (i, h) in handles.iter().enumerate().skip(1) {
        assert_eq!(report.socket(*h).unwrap().bytes_discarded, i as u64);
        assert_eq!(
            report
                .socket(SocketHandle::from_raw(h.to_raw()))
                .unwrap()
                .handle,
            *h
        );
    }
    assert!(report.socket(SocketHandle::from_raw(u64::MAX)).is_none());
}

// S4, L13, L17: the flusher thread is started through the configured
// spawner (once per generation), and the final cleanup joins it through the
// join that spawner returned.
#[test]
fn l17_the_flusher_thread_comes_from_the_configured_spawner() {
    static SPAWNED: AtomicU64 = AtomicU64::new(0);
    static JOINED: AtomicU64 = AtomicU64::new(0);
    fn counting(task: HelperTask) -> Option<HelperJoin> {
        assert_eq!(task.name(), "provider-lifecycle flusher");
        SPAWNED.fetch_add(1, SeqCst);
        let join = std_spawner(task)?;
        Some(HelperJoin::new(move || {
            join.join();
            JOINED.fetch_add(1, SeqCst);
        }))
    }
    let _watchdog = watchdog(120);
    // Serial: its flusher thread would count in the thread census of the
    // tests that check the flusher is gone after their cleanup.
    let _serial = SERIAL.lock();
    let log = Log::default();
    let l = lifecycle_with(
        Config::new().with_spawner(counting),
        FakeProvider::default(),
    );
    l.startup(V).unwrap();
    for id in 0..3 {
        let plan = SockPlan {
            ready_at: Some(Instant::now() + Duration::from_millis(20)),
            ..SockPlan::default()
        };
        let (mut s, _) = FakeSocket::new(id, plan, &log);
        s.write(10);
        let h = l.register_socket(s).unwrap();
        assert_eq!(
            l.close_socket(h).unwrap().outcome,
            SocketOutcome::Background
        );
    }
    assert_eq!(SPAWNED.load(SeqCst), 1, "one flusher for the generation");
    let report = l.cleanup().unwrap().into_report().unwrap();
    assert_eq!(JOINED.load(SeqCst), 1, "joined by the final cleanup (L13)");
    assert_eq!(
        report.bytes_flushed() + report.flushed_in_background.bytes_flushed,
        30
    );
}
