//! Operation guards: O1–O3, L6.1 and L11.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use provider_lifecycle::*;
use support::*;

#[test]
fn o1_guards_need_active() {
    let _watchdog = support::watchdog(120);
    let l = Lifecycle::new(FakeProvider::default());
    assert_eq!(
        l.enter().unwrap_err(),
        Error::NotInitialised(NotActive::NeverStarted)
    );
    l.startup(v(2, 2)).unwrap();
    {
        let _a = l.enter().unwrap();
        let _b = l.enter().unwrap(); // nested guards are fine
    }
    l.cleanup().unwrap();
    assert_eq!(l.enter().unwrap_err().wsa_code(), 10093, "Released");
}

/// A fake blocking receive: parks until data arrives or it is cancelled.
#[derive(Default)]
struct Recv {
    cancelled: Mutex<bool>,
    cv: Condvar,
    parked: AtomicBool,
}

impl Recv {
    fn recv(&self) -> Result<(), &'static str> {
        let mut c = self.cancelled.lock().unwrap();
        self.parked.store(true, Ordering::SeqCst);
        while !*c {
            c = self.cv.wait(c).unwrap();
        }
        Err("cancelled")
    }
    fn cancel(&self) {
        *self.cancelled.lock().unwrap() = true;
        self.cv.notify_all();
    }
}

#[test]
fn l6_1_cancel_hook_unblocks_a_parked_receive_and_the_drain_waits_for_it() {
    let _watchdog = support::watchdog(120);
    let p = FakeProvider::with_resources(&["buffers"]);
    let log = p.log.clone();
    let recv = Arc::new(Recv::default());
    let r2 = recv.clone();
    *p.knobs.on_cancel.lock() = Some(Box::new(move || r2.cancel()));
    p.knobs.cancelled.store(1, Ordering::SeqCst);
    let l = Arc::new(Lifecycle::new(p));
    l.startup(v(2, 2)).unwrap();

    let worker = {
        let (l, recv, log) = (l.clone(), recv.clone(), log.clone());
        std::thread::spawn(move || {
            let _op = l.enter().unwrap();
            let r = recv.recv();
            // The cancel hook ended the blocked receive. While the guard
            // lives, nothing is released.
            assert!(r.is_err());
            std::thread::sleep(Duration::from_millis(20));
            assert_eq!(log.count(|e| matches!(e, Event::Release(_))), 0, "O2");
        })
    };
    while !recv.parked.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    let l2 = l.clone();
    let c = within(Duration::from_secs(10), move || l2.cleanup().unwrap());
    worker.join().unwrap();
    let r = c.report().unwrap();
    assert_eq!(r.operations.cancelled, 1);
    assert_eq!(r.operations.waited_for, 1);
    assert!(!r.operations.overran_deadline);
    assert!(r.is_clean(), "{r}");
}

#[test]
fn o2_no_teardown_step_overlaps_a_live_guard() {
    let _watchdog = support::watchdog(120);
    // Many workers take guards in a loop and check that no resource of the
    // generation is released while they hold one.
    for _ in 0..20 {
        let released = Arc::new(AtomicBool::new(false));
        let l = Arc::new(Lifecycle::new(FakeProvider::default()));
        l.startup(v(2, 2)).unwrap();
        let r2 = released.clone();
        l.register_resource_fn("flag", move || {
            r2.store(true, Ordering::SeqCst);
            Ok(())
        })
        .unwrap();
        let workers: Vec<_> = (0..3)
            .map(|_| {
                let (l, released) = (l.clone(), released.clone());
                std::thread::spawn(move || {
                    let mut taken = 0;
                    while let Ok(g) = l.enter() {
                        assert!(!released.load(Ordering::SeqCst), "released under a guard");
                        std::hint::spin_loop();
                        assert!(!released.load(Ordering::SeqCst), "released under a guard");
                        drop(g);
                        taken += 1;
                    }
                    taken
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(2));
        l.cleanup().unwrap();
        assert!(released.load(Ordering::SeqCst));
        for w in workers {
            w.join().unwrap();
        }
    }
}

#[test]
fn o3_the_drain_sees_zero_exactly_with_guards_on_many_threads() {
    let _watchdog = support::watchdog(120);
    // The guards are let go from the cancel hook, which runs only after the
    // drain has shut out new guards and counted the live ones: all 8 are
    // counted, then they leave at staggered times, and the teardown must
    // wait for the last one.
    let p = FakeProvider::with_resources(&["r"]);
    let log = p.log.clone();
    let go = Arc::new(std::sync::Barrier::new(9));
    let go_cancel = go.clone();
    *p.knobs.on_cancel.lock() = Some(Box::new(move || {
        go_cancel.wait();
    }));
    let l = Arc::new(Lifecycle::new(p));
    l.startup(v(2, 2)).unwrap();
    let held = Arc::new(std::sync::Barrier::new(9));
    let hs: Vec<_> = (0..8)
        .map(|i| {
            let (l, held, go, log) = (l.clone(), held.clone(), go.clone(), log.clone());
            std::thread::spawn(move || {
                let g = l.enter().unwrap();
                held.wait();
                go.wait();
                std::thread::sleep(Duration::from_millis(5 * i));
                assert_eq!(log.count(|e| matches!(e, Event::Release(_))), 0, "O2");
                drop(g);
            })
        })
        .collect();
    held.wait();
    let l2 = l.clone();
    let c = within(Duration::from_secs(10), move || l2.cleanup().unwrap());
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(c.report().unwrap().operations.waited_for, 8);
    assert_eq!(log.count(|e| matches!(e, Event::Release(_))), 1);
    assert_eq!(l.state(), State::Released);
}

#[test]
fn l11_final_cleanup_inside_a_guard_is_in_progress_and_changes_nothing() {
    let _watchdog = support::watchdog(120);
    let l = Arc::new(Lifecycle::new(FakeProvider::default()));
    l.startup(v(2, 2)).unwrap();
    l.startup(v(2, 2)).unwrap();
    let l2 = l.clone();
    // A deadlock here would trip `within`'s limit instead of hanging.
    within(Duration::from_secs(10), move || {
        let l = l2;
        let _g = l.enter().unwrap();
        // A non-final cleanup inside a guard is fine.
        assert_eq!(l.cleanup().unwrap(), Cleanup::Decremented { remaining: 1 });
        let before = l.snapshot();
        assert_eq!(l.cleanup(), Err(Error::InProgress));
        assert_eq!(l.snapshot(), before);
        // A session's end is a cleanup like any other.
        let mut s = l.session(v(2, 2)).unwrap();
        assert!(!s.end().unwrap().is_final());
        let mut last = l.session(v(2, 2)).unwrap();
        l.cleanup().unwrap();
        assert_eq!(
            last.end(),
            Err(Error::InProgress),
            "the session's final end too"
        );
        drop(_g);
        assert!(
            last.end().unwrap().is_final(),
            "retry after the guard is gone"
        );
    });
    assert_eq!(Error::InProgress.wsa_code(), 10036);
    assert_eq!(l.state(), State::Released);
}

#[test]
fn l11_a_guard_of_another_lifecycle_does_not_count() {
    let _watchdog = support::watchdog(120);
    let upper = Lifecycle::new(FakeProvider::default());
    let lower = Lifecycle::new(FakeProvider::default());
    upper.startup(v(2, 2)).unwrap();
    lower.startup(v(2, 2)).unwrap();
    let _g = upper.enter().unwrap();
    assert!(lower.cleanup().unwrap().is_final());
}

#[test]
fn l11_wait_startup_while_holding_a_guard_during_draining_does_not_deadlock() {
    let _watchdog = support::watchdog(120);
    let l = Arc::new(Lifecycle::new(FakeProvider::default()));
    l.startup(v(2, 2)).unwrap();
    let entered = Arc::new(std::sync::Barrier::new(2));
    let worker = {
        let (l, entered) = (l.clone(), entered.clone());
        std::thread::spawn(move || {
            let _g = l.enter().unwrap();
            entered.wait();
            while l.state() != State::Draining {
                std::thread::yield_now();
            }
            // Waiting for Released while our own guard holds the drain back
            // would deadlock: it fails fast instead.
            l.startup(v(2, 2))
        })
    };
    entered.wait();
    let l2 = l.clone();
    let c = within(Duration::from_secs(10), move || l2.cleanup().unwrap());
    assert_eq!(worker.join().unwrap(), Err(Error::InProgress));
    assert!(c.is_final());
}

#[test]
fn guards_overrunning_the_deadline_are_still_waited_for_and_reported() {
    let _watchdog = support::watchdog(120);
    // The worker starts its 120 ms hold only when the cancel hook says the
    // drain (and its 30 ms deadline) has begun, so the guard outlives the
    // deadline however the threads are scheduled.
    let p = FakeProvider::with_resources(&["r"]);
    let log = p.log.clone();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let tx = parking_lot::Mutex::new(tx);
    *p.knobs.on_cancel.lock() = Some(Box::new(move || {
        let _ = tx.lock().send(());
    }));
    let l = Arc::new(Lifecycle::with_config(
        p,
        Config::new().with_drain_deadline(Duration::from_millis(30)),
    ));
    l.startup(v(2, 2)).unwrap();
    let entered = Arc::new(std::sync::Barrier::new(2));
    let worker = {
        let (l, entered, log) = (l.clone(), entered.clone(), log.clone());
        std::thread::spawn(move || {
            let _g = l.enter().unwrap();
            entered.wait();
            rx.recv_timeout(Duration::from_secs(10))
                .expect("the drain began");
            std::thread::sleep(Duration::from_millis(120));
            assert_eq!(log.count(|e| matches!(e, Event::Release(_))), 0, "O2");
        })
    };
    entered.wait();
    let l2 = l.clone();
    let c = within(Duration::from_secs(10), move || l2.cleanup().unwrap());
    worker.join().unwrap();
    let r = c.report().unwrap();
    assert!(r.operations.overran_deadline);
    assert!(!r.is_clean());
    assert_eq!(log.count(|e| matches!(e, Event::Release(_))), 1);
}

#[test]
fn guards_work_from_thread_local_destructors() {
    let _watchdog = support::watchdog(120);
    // A provider callback can run while a thread's locals are being torn
    // down: taking and dropping a guard there, and a final cleanup, must not
    // panic. (The crate's thread-local has no destructor, so std keeps it
    // usable here; this breaks if that ever changes without a fallback.)
    struct OnExit(Arc<Lifecycle<FakeProvider>>, Arc<AtomicBool>);
    impl Drop for OnExit {
        fn drop(&mut self) {
            let g = self.0.enter();
            assert!(g.is_ok());
            drop(g);
            assert!(self.0.cleanup().unwrap().is_final());
            self.1.store(true, Ordering::SeqCst);
        }
    }
    std::thread_local! {
        static EXIT: std::cell::RefCell<Option<OnExit>> = const { std::cell::RefCell::new(None) };
    }
    for _ in 0..4 {
        let l = Arc::new(Lifecycle::new(FakeProvider::default()));
        l.startup(v(2, 2)).unwrap();
        let ran = Arc::new(AtomicBool::new(false));
        let (l2, ran2) = (l.clone(), ran.clone());
        std::thread::spawn(move || {
            // Take a guard first so the crate's thread-local exists and is
            // destroyed alongside ours, in an unspecified order.
            drop(l2.enter().unwrap());
            EXIT.with(|e| *e.borrow_mut() = Some(OnExit(l2, ran2)));
        })
        .join()
        .expect("no panic in thread-local destructors");
        assert!(ran.load(Ordering::SeqCst));
        assert_eq!(l.state(), State::Released);
    }
}

/// CPU time the calling thread has used so far.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the struct we own;
    // CLOCK_THREAD_CPUTIME_ID is a valid clock on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

// L6.1, S5: a final cleanup waiting for a guard sleeps — before its drain
// deadline and after it — instead of spinning: its thread's CPU time stays a
// small part of the wait (a spin would use all of it).
#[test]
fn l6_1_waiting_for_a_guard_sleeps_before_and_after_the_deadline() {
    let _watchdog = support::watchdog(120);
    let l = Arc::new(Lifecycle::with_config(
        FakeProvider::default(),
        Config::new().with_drain_deadline(Duration::from_millis(100)),
    ));
    l.startup(v(2, 2)).unwrap();
    let (entered_tx, entered_rx) = std::sync::mpsc::channel();
    let holder = {
        let l = l.clone();
        std::thread::spawn(move || {
            let _guard = l.enter().unwrap();
            entered_tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(400)); // past the deadline
        })
    };
    entered_rx.recv().unwrap();
    let cpu0 = thread_cpu();
    let t0 = std::time::Instant::now();
    let report = l.cleanup().unwrap().into_report().unwrap();
    let (wall, cpu) = (t0.elapsed(), thread_cpu() - cpu0);
    holder.join().unwrap();
    assert!(
        wall >= Duration::from_millis(300),
        "it waited for the guard"
    );
    assert!(report.operations.overran_deadline);
    assert!(
        cpu < wall / 4,
        "the waiting thread used {cpu:?} of CPU in {wall:?}: it spun"
    );
}
