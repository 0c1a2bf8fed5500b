//! The async faces of the engine: `cleanup_async` and `startup_async`
//! under tokio (the crate itself is runtime-agnostic; tokio is only a
//! dev-dependency here).
#![cfg(not(loom))]

mod support;

#[path = "../examples/common/cpu.rs"]
mod cpu;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use provider_lifecycle::*;
use support::*;

const V: Version = Version::new(2, 2);

/// A single-threaded runtime with timers: the harshest host for a future
/// that might block its thread.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

/// Counts in `ticks` every 5 ms, for as long as its runtime thread is free.
async fn tick_every_5ms(ticks: Arc<AtomicU64>) {
    loop {
        tokio::time::sleep(Duration::from_millis(5)).await;
        ticks.fetch_add(1, SeqCst);
    }
}

/// One test at a time: one of them measures the process's CPU time.
static SERIAL: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

/// A lifecycle with a deterministic teardown: two resources (one failing),
/// an open socket (reset), two background closes that become flushable after
/// `delay` (woken by a timer thread), one stuck one (drain deadline).
fn scenario(delay: Duration) -> (Lifecycle<FakeProvider>, Log) {
    let p = FakeProvider::with_resources(&["table", "pool"]);
    p.knobs.fail_release.lock().push("pool".into());
    let log = p.log.clone();
    let config = Config::new()
        .with_drain_deadline(Duration::from_millis(300))
        .with_background_flush(BackgroundFlush::Manual);
    let l = Lifecycle::with_config(p, config);
    l.startup(V).unwrap();
    let (mut open, _) = FakeSocket::new(1, SockPlan::default(), &log);
    open.write(11);
    l.register_socket(open).unwrap();
    for id in 2..4 {
        let plan = SockPlan {
            rate: 1 << 20,
            ready_at: Some(Instant::now() + delay),
            ..SockPlan::default()
        };
        let (mut s, _) = FakeSocket::new(id, plan, &log);
        s.write(1000 * u64::from(id));
        let h = l.register_socket(s).unwrap();
        l.close_socket(h).unwrap();
    }
    let stuck = SockPlan {
        stuck: true,
        ..SockPlan::default()
    };
    let (mut s, _) = FakeSocket::new(4, stuck, &log);
    s.write(7);
    let h = l.register_socket(s).unwrap();
    l.close_socket(h).unwrap();
    (l, log)
}

/// The report without what differs from run to run: its timings, and the
/// order of lines of sockets that finished concurrently.
fn untimed(mut r: DrainReport) -> DrainReport {
    r.timings = PhaseTimings::default();
    r.sockets.sort_by_key(|s| s.handle);
    r
}

// L6, D1: cleanup_async is the same engine: under tokio it gives the report
// cleanup gives, line for line.
#[test]
fn l6_cleanup_async_under_tokio_gives_the_same_report_as_cleanup() {
    let _watchdog = watchdog(120);
    let _serial = SERIAL.lock();
    let (blocking, _) = scenario(Duration::from_millis(50));
    let expected = blocking.cleanup().unwrap().into_report().unwrap();

    let (l, _) = scenario(Duration::from_millis(50));
    let rt = runtime();
    let got = rt
        .block_on(l.cleanup_async())
        .unwrap()
        .into_report()
        .unwrap();
    assert_eq!(
        untimed(got.clone()),
        untimed(expected.clone()),
        "{got}\n{expected}"
    );
    assert_eq!(got.bytes_flushed(), 5000);
    assert_eq!(got.bytes_discarded(), 18);
    assert!(got.deadline_hit);
    assert_eq!(l.state(), State::Released);
    assert_eq!(l.generation(), 1);
}

// L6, L13: while the final cleanup waits for slow sockets, the runtime's
// only thread keeps running other tasks (nothing blocks it), and no helper
// thread of the crate outlives the cleanup.
#[test]
fn l6_cleanup_async_does_not_block_a_current_thread_runtime() {
    let _watchdog = watchdog(120);
    let _serial = SERIAL.lock();
    let (l, _) = scenario(Duration::from_millis(100));
    let rt = runtime();
    let ticks = Arc::new(AtomicU64::new(0));
    let report = rt.block_on(async {
        let ticker = tokio::spawn(tick_every_5ms(ticks.clone()));
        let report = l.cleanup_async().await.unwrap();
        ticker.abort();
        report
    });
    assert!(
        ticks.load(SeqCst) >= 10,
        "the runtime thread ran other tasks during the drain ({} ticks)",
        ticks.load(SeqCst)
    );
    assert!(report.is_final());
    assert_eq!(report.report().unwrap().bytes_flushed(), 5000);
}

// L5: a cleanup_async that only decrements completes at once; one too many
// answers NotInitialised.
#[test]
fn l5_cleanup_async_that_only_decrements() {
    let _watchdog = watchdog(120);
    let _serial = SERIAL.lock();
    let l = Lifecycle::new(FakeProvider::default());
    l.startup(V).unwrap();
    l.startup(V).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        assert_eq!(
            l.cleanup_async().await,
            Ok(Cleanup::Decremented { remaining: 1 })
        );
        assert!(l.cleanup_async().await.unwrap().is_final());
        assert_eq!(
            l.cleanup_async().await,
            Err(Error::NotInitialised(NotActive::Unpaired))
        );
    });
}

// L9: an async Wait startup during Draining waits without blocking its
// thread, then initializes the next generation.
#[test]
fn l9_startup_async_waits_for_the_drain_without_blocking() {
    let _watchdog = watchdog(120);
    let _serial = SERIAL.lock();
    let (l, _) = scenario(Duration::from_millis(150));
    let l = Arc::new(l);
    let drainer = {
        let l = l.clone();
        std::thread::spawn(move || l.cleanup().unwrap())
    };
    while l.state() != State::Draining {
        std::thread::yield_now();
    }
    let rt = runtime();
    let ticks = Arc::new(AtomicU64::new(0));
    let started = rt
        .block_on(async {
            let t = ticks.clone();
            let ticker = tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    t.fetch_add(1, SeqCst);
                }
            });
            let s = l.startup_async(V).await;
            ticker.abort();
            s
        })
        .unwrap();
    assert!(drainer.join().unwrap().is_final());
    assert!(started.initialized);
    assert_eq!(started.generation, 1);
    assert!(ticks.load(SeqCst) >= 5, "the thread was not blocked");
    assert_eq!(l.count(), 1);
    l.cleanup().unwrap();
}

// L6: a cleanup_async future dropped halfway finishes the teardown: nothing
// is left in Draining, every socket is released once.
#[test]
fn l6_dropping_cleanup_async_halfway_finishes_the_teardown() {
    let _watchdog = watchdog(120);
    let _serial = SERIAL.lock();
    let (l, log) = scenario(Duration::from_millis(100));
    let rt = runtime();
    rt.block_on(async {
        let cleanup = l.cleanup_async();
        // Poll it once (the drain begins), then give up on it.
        let r = tokio::time::timeout(Duration::from_millis(10), cleanup).await;
        assert!(r.is_err(), "still draining after 10 ms");
    });
    assert_eq!(l.state(), State::Released);
    assert_eq!(log.count(|e| matches!(e, Event::SockRelease(_))), 4);
}

// O2, L6.1: cleanup_async waits for a guard held on another thread without
// blocking its own thread: nothing is freed while the guard lives, and the
// future completes once it goes.
#[test]
fn o2_cleanup_async_waits_for_a_guard_held_elsewhere() {
    let _watchdog = watchdog(120);
    let _serial = SERIAL.lock();
    // No sockets: the drain is all guard wait, so the ticks below are
    // counted while the future waits for the guard.
    let p = FakeProvider::with_resources(&["table", "pool"]);
    let log = p.log.clone();
    let l = Arc::new(Lifecycle::new(p));
    l.startup(V).unwrap();
    let (entered_tx, entered_rx) = std::sync::mpsc::channel();
    let holder = {
        let (l, log) = (l.clone(), log.clone());
        std::thread::spawn(move || {
            let _guard = l.enter().unwrap();
            entered_tx.send(()).unwrap();
            while l.state() != State::Draining {
                std::thread::yield_now();
            }
            std::thread::sleep(Duration::from_millis(100));
            let released = log.count(|e| matches!(e, Event::Release(_)));
            assert_eq!(released, 0, "nothing freed under a live guard");
        })
    };
    entered_rx.recv().unwrap();
    let rt = runtime();
    let ticks = Arc::new(AtomicU64::new(0));
    let report = rt.block_on(async {
        let ticker = tokio::spawn(tick_every_5ms(ticks.clone()));
        let r = l.cleanup_async().await.unwrap();
        ticker.abort();
        r
    });
    holder.join().unwrap();
    let report = report.into_report().unwrap();
    assert!(report.operations.waited_for <= 1);
    assert!(
        ticks.load(SeqCst) >= 5,
        "the runtime kept running meanwhile"
    );
    assert_eq!(log.count(|e| matches!(e, Event::Release(_))), 2);
}

// S5: cleanup_async waiting for a socket's deadline sleeps (its alarm
// thread wakes it once, at the deadline): the process's CPU time stays a
// small part of the wait.
#[test]
fn s5_cleanup_async_sleeps_until_a_socket_deadline() {
    let _watchdog = watchdog(120);
    let _serial = SERIAL.lock();
    let log = Log::default();
    let l = Lifecycle::with_config(
        FakeProvider::default(),
        Config::new()
            .with_open_socket_policy(OpenSocketPolicy::Graceful)
            .with_drain_deadline(Duration::from_millis(300)),
    );
    l.startup(V).unwrap();
    let stuck = SockPlan {
        stuck: true,
        ..SockPlan::default()
    };
    let (mut s, _) = FakeSocket::new(1, stuck, &log);
    s.write(9);
    l.register_socket(s).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (cpu0, t0) = (cpu::process_cpu(), Instant::now());
    let report = rt
        .block_on(l.cleanup_async())
        .unwrap()
        .into_report()
        .unwrap();
    let (wall, cpu) = (t0.elapsed(), cpu::process_cpu() - cpu0);
    assert!(wall >= Duration::from_millis(300));
    assert!(report.deadline_hit);
    assert!(cpu < wall / 4, "{cpu:?} of CPU in {wall:?}: the wait spun");
    // L13: the future's alarm thread is joined before it completes.
    assert_eq!(threads_named("provider-lifecy"), 0, "no helper thread left");
}
