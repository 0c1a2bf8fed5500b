//! Rules L1–L5, L7, L9, L10, L12 and V1–V3 with real threads and recording fakes.

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use provider_lifecycle::*;
use support::*;

fn lc(names: &[&str]) -> (Lifecycle<FakeProvider>, Log, Arc<Knobs>) {
    let p = FakeProvider::with_resources(names);
    let (log, knobs) = (p.log.clone(), p.knobs.clone());
    (Lifecycle::new(p), log, knobs)
}

#[test]
fn l1_only_the_last_cleanup_tears_down_and_init_runs_once() {
    let _watchdog = support::watchdog(120);
    let (l, log, _) = lc(&["a"]);
    for i in 1..=5 {
        let s = l.startup(v(2, 2)).unwrap();
        assert_eq!(s.initialized, i == 1);
        assert_eq!(l.count(), i);
    }
    assert_eq!(log.inits(), 1);
    for i in (1..5).rev() {
        assert_eq!(l.cleanup().unwrap(), Cleanup::Decremented { remaining: i });
        assert_eq!(log.count(|e| matches!(e, Event::Release(_))), 0);
    }
    let done = l.cleanup().unwrap();
    assert!(done.is_final());
    assert_eq!(log.count(|e| *e == Event::Release("a".into())), 1);
    assert_eq!(log.unloads(), 1);
    assert_eq!(l.state(), State::Released);
}

#[test]
fn l1_sessions_and_manual_pairs_share_one_count() {
    let _watchdog = support::watchdog(120);
    let (l, log, _) = lc(&[]);
    let s1 = l.session(v(2, 0)).unwrap();
    l.startup(v(2, 0)).unwrap();
    assert_eq!(l.count(), 2);
    drop(s1);
    assert_eq!(l.count(), 1);
    let mut s2 = l.session(v(2, 2)).unwrap();
    assert_eq!(s2.started().negotiated.version, v(2, 2));
    assert!(!s2.end().unwrap().is_final());
    assert_eq!(
        s2.end(),
        Err(Error::NotInitialised(NotActive::Unpaired)),
        "a session ends once"
    );
    drop(s2);
    assert_eq!(l.count(), 1);
    assert!(l.cleanup().unwrap().is_final());
    assert_eq!(log.unloads(), 1);
}

#[test]
fn l1_racing_first_startups_initialize_exactly_once() {
    let _watchdog = support::watchdog(120);
    for _ in 0..50 {
        let (l, log, _) = lc(&["r"]);
        let l = Arc::new(l);
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let l = l.clone();
                std::thread::spawn(move || l.startup(v(2, 2)).unwrap())
            })
            .collect();
        let inits = hs
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|s| s.initialized)
            .count();
        assert_eq!(inits, 1);
        assert_eq!(log.inits(), 1);
        assert_eq!(l.count(), 4);
    }
}

#[test]
fn l2_failed_init_releases_in_reverse_and_is_not_counted() {
    let _watchdog = support::watchdog(120);
    let (l, log, knobs) = lc(&["first", "second", "third"]);
    knobs.fail_init.store(true, Ordering::SeqCst);
    let err = l.startup(v(2, 2)).unwrap_err();
    assert_eq!(err.wsa_code(), 10091);
    assert!(
        matches!(&err, Error::SystemNotReady(m) if m.to_string().contains("fake init failure"))
    );
    assert_eq!(l.snapshot().state, State::Uninitialized);
    assert_eq!(l.count(), 0);
    let releases: Vec<_> = log
        .events()
        .into_iter()
        .filter(|e| matches!(e, Event::Release(_)))
        .collect();
    assert_eq!(
        releases,
        vec![
            Event::Release("third".into()),
            Event::Release("second".into()),
            Event::Release("first".into())
        ]
    );
    assert_eq!(
        l.cleanup(),
        Err(Error::NotInitialised(NotActive::NeverStarted))
    );
    // A retry that succeeds starts from nothing and is counted once.
    knobs.fail_init.store(false, Ordering::SeqCst);
    log.clear();
    assert!(l.startup(v(2, 2)).unwrap().initialized);
    assert_eq!(l.count(), 1);
    let r = l.cleanup().unwrap();
    assert_eq!(r.report().unwrap().resources.len(), 3);
    assert_eq!(log.count(|e| matches!(e, Event::Release(_))), 3);
}

#[test]
fn l2_failed_init_after_release_goes_back_to_released() {
    let _watchdog = support::watchdog(120);
    let (l, _log, knobs) = lc(&[]);
    l.startup(v(2, 2)).unwrap();
    l.cleanup().unwrap();
    knobs.fail_init.store(true, Ordering::SeqCst);
    assert!(l.startup(v(2, 2)).is_err());
    let s = l.snapshot();
    assert_eq!((s.state, s.count, s.generation), (State::Released, 0, 1));
}

#[test]
fn l2_panicking_init_is_system_not_ready() {
    let _watchdog = support::watchdog(120);
    let (l, log, knobs) = lc(&["x"]);
    knobs.panic_init.store(true, Ordering::SeqCst);
    let err = l.startup(v(2, 2)).unwrap_err();
    assert!(
        matches!(&err, Error::SystemNotReady(m) if m.to_string().contains("exploded")),
        "{err}"
    );
    assert_eq!(log.count(|e| *e == Event::Release("x".into())), 1);
    assert_eq!(l.state(), State::Uninitialized);
    knobs.panic_init.store(false, Ordering::SeqCst);
    assert!(l.startup(v(2, 2)).is_ok());
}

#[test]
fn l2_provider_can_choose_its_error_code() {
    let _watchdog = support::watchdog(120);
    struct Down;
    impl Provider for Down {
        type Socket = NoSocket;
        type State = ();
        fn versions(&self) -> VersionRange {
            VersionRange::new(v(2, 2), v(2, 2))
        }
        fn initialize(&self, _: &mut Registrar) -> Result<(), Error> {
            Err(Error::NetworkDown)
        }
    }
    let l = Lifecycle::new(Down);
    assert_eq!(l.startup(v(2, 2)).unwrap_err().wsa_code(), 10050);
    assert_eq!(l.count(), 0);
}

#[test]
fn l3_a_rejected_negotiation_still_counts() {
    let _watchdog = support::watchdog(120);
    let (l, log, _) = lc(&[]);
    let s = l.startup(v(3, 1)).unwrap();
    // The caller wanted 3.1, got 2.2, and rejects it: it still owes a cleanup.
    assert_eq!(s.negotiated.version, v(2, 2));
    assert_eq!(l.count(), 1);
    assert!(l.cleanup().unwrap().is_final());
    assert_eq!(log.unloads(), 1);
}

#[test]
fn l4_cleanup_at_zero_fails_and_changes_nothing() {
    let _watchdog = support::watchdog(120);
    let (l, log, _) = lc(&[]);
    let before = l.snapshot();
    assert_eq!(
        l.cleanup(),
        Err(Error::NotInitialised(NotActive::NeverStarted))
    );
    assert_eq!(l.cleanup().unwrap_err().wsa_code(), 10093);
    assert_eq!(l.snapshot(), before);
    l.startup(v(2, 2)).unwrap();
    l.cleanup().unwrap();
    let after = l.snapshot();
    assert_eq!(l.cleanup(), Err(Error::NotInitialised(NotActive::Unpaired)));
    assert_eq!(l.snapshot(), after);
    assert_eq!(log.unloads(), 1);
}

#[test]
fn l5_non_final_cleanup_closes_nothing() {
    let _watchdog = support::watchdog(120);
    let (l, log, _) = lc(&["res"]);
    l.startup(v(2, 2)).unwrap();
    l.startup(v(2, 2)).unwrap();
    let (sock, st) = FakeSocket::new(1, SockPlan::default(), &log);
    let h = l.register_socket(sock).unwrap();
    l.with_socket(h, |s| s.write(10)).unwrap();
    assert_eq!(l.cleanup().unwrap(), Cleanup::Decremented { remaining: 1 });
    assert_eq!(st.lock().releases, 0);
    assert_eq!(st.lock().aborts, 0);
    assert_eq!(log.count(|e| matches!(e, Event::Release(_))), 0);
    assert!(l.with_socket(h, |_| ()).is_ok());
    l.cleanup().unwrap();
}

#[test]
fn l7_restart_after_release_is_a_fresh_generation() {
    let _watchdog = support::watchdog(120);
    let (l, log, _) = lc(&["r"]);
    l.startup(v(2, 2)).unwrap();
    let h = l
        .register_socket(FakeSocket::new(1, SockPlan::default(), &log).0)
        .unwrap();
    l.register_resource_fn("late", || Ok(())).unwrap();
    assert_eq!(l.generation(), 0);
    l.cleanup().unwrap();
    let s = l.startup(v(2, 2)).unwrap();
    assert!(s.initialized);
    assert_eq!(s.generation, 1);
    assert_eq!(log.inits(), 2);
    assert_eq!(l.count(), 1);
    assert_eq!(l.open_sockets(), 0, "no socket of the old generation");
    assert_eq!(l.with_socket(h, |_| ()), Err(Error::NotSocket));
    let r = l.cleanup().unwrap();
    let names: Vec<_> = r
        .report()
        .unwrap()
        .resources
        .iter()
        .map(|r| r.name.clone())
        .collect();
    assert_eq!(
        names,
        vec!["r".to_string()],
        "no resource of the old generation"
    );
}

/// A lifecycle whose final cleanup is running on another thread and held in
/// Draining by a cancel hook that blocks until the returned sender is used.
fn held_in_draining(
    config: Config,
) -> (
    Arc<Lifecycle<FakeProvider>>,
    Log,
    std::sync::mpsc::Sender<()>,
    std::thread::JoinHandle<Cleanup>,
) {
    let p = FakeProvider::default();
    let log = p.log.clone();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let rx = parking_lot::Mutex::new(rx);
    *p.knobs.on_cancel.lock() = Some(Box::new(move || {
        let _ = rx.lock().recv_timeout(Duration::from_secs(10));
    }));
    let l = Arc::new(Lifecycle::with_config(p, config));
    l.startup(v(2, 2)).unwrap();
    let drainer = {
        let l = l.clone();
        std::thread::spawn(move || l.cleanup().unwrap())
    };
    while l.state() != State::Draining {
        std::thread::yield_now();
    }
    (l, log, tx, drainer)
}

#[test]
fn l9_wait_policy_startup_waits_for_the_drain_then_starts_fresh() {
    let _watchdog = support::watchdog(120);
    let (l, log, tx, drainer) = held_in_draining(Config::new());
    assert_eq!(
        l.startup_with(v(2, 2), StartupPolicy::NoWait),
        Err(Error::InProgress)
    );
    assert_eq!(
        l.startup_with(v(2, 2), StartupPolicy::FailFast),
        Err(Error::InProgress)
    );
    assert_eq!(
        l.enter().unwrap_err(),
        Error::NotInitialised(NotActive::Draining)
    );
    let waiter = {
        let l = l.clone();
        std::thread::spawn(move || l.startup(v(2, 2)).unwrap())
    };
    std::thread::sleep(Duration::from_millis(50));
    assert!(!waiter.is_finished(), "Wait blocks while Draining");
    tx.send(()).unwrap();
    assert!(drainer.join().unwrap().is_final());
    let s = waiter.join().unwrap();
    assert!(s.initialized);
    assert_eq!(s.generation, 1);
    assert_eq!(log.inits(), 2);
    // Teardown finished before the new generation's init.
    let unload = log.position(|e| *e == Event::PrepareUnload).unwrap();
    let init1 = log.position(|e| *e == Event::Init(1)).unwrap();
    assert!(unload < init1);
}

#[test]
fn l9_fail_fast_config_applies_to_startup() {
    let _watchdog = support::watchdog(120);
    let (l, _log, tx, drainer) =
        held_in_draining(Config::new().with_startup_policy(StartupPolicy::FailFast));
    assert_eq!(l.startup(v(2, 2)).unwrap_err().wsa_code(), 10036);
    assert_eq!(l.cleanup(), Err(Error::NotInitialised(NotActive::Draining)));
    tx.send(()).unwrap();
    drainer.join().unwrap();
    assert!(l.startup(v(2, 2)).is_ok());
}

#[test]
fn l10_count_limit_is_process_limit_and_not_counted() {
    let _watchdog = support::watchdog(120);
    let l = Lifecycle::with_config(FakeProvider::default(), Config::new().with_count_limit(3));
    for _ in 0..3 {
        l.startup(v(2, 2)).unwrap();
    }
    assert_eq!(l.startup(v(2, 2)), Err(Error::ProcessLimit));
    assert_eq!(
        l.startup_with(v(2, 2), StartupPolicy::NoWait)
            .unwrap_err()
            .wsa_code(),
        10067
    );
    assert_eq!(l.count(), 3);
    l.cleanup().unwrap();
    assert!(l.startup(v(2, 2)).is_ok(), "room again after a cleanup");
}

#[test]
fn l10_default_limit_is_max_count_and_never_wraps() {
    let _watchdog = support::watchdog(120);
    assert_eq!(Config::new().count_limit(), MAX_COUNT);
    assert_eq!(
        Config::new().with_count_limit(u32::MAX).count_limit(),
        MAX_COUNT
    );
    assert_eq!(Config::new().with_count_limit(0).count_limit(), 1);
    let l = Lifecycle::with_config(FakeProvider::default(), Config::new().with_count_limit(1));
    l.startup(v(2, 2)).unwrap();
    assert_eq!(l.startup(v(2, 2)), Err(Error::ProcessLimit));
    assert_eq!(l.count(), 1);
}

#[test]
fn l12_dropping_an_active_lifecycle_releases_abortively() {
    let _watchdog = support::watchdog(120);
    let (l, log, _) = lc(&["a", "b"]);
    l.startup(v(2, 2)).unwrap();
    l.startup(v(2, 2)).unwrap();
    let (mut s, st) = FakeSocket::new(7, SockPlan::default(), &log);
    s.write(100);
    l.register_socket(s).unwrap();
    // A background close that cannot progress: still flushing at the drop.
    let stuck = SockPlan {
        stuck: true,
        ..SockPlan::default()
    };
    let (s2, st2) = FakeSocket::new(8, stuck, &log);
    let h2 = l.register_socket(s2).unwrap();
    l.with_socket(h2, |s| s.write(5)).unwrap();
    l.close_socket(h2).unwrap(); // background close, data left
    within(Duration::from_secs(5), move || drop(l));
    for st in [st, st2] {
        let st = st.lock();
        assert_eq!(st.aborts, 1);
        assert_accounted(&st);
    }
    assert_eq!(
        log.events()
            .into_iter()
            .filter(|e| matches!(e, Event::Release(_)))
            .collect::<Vec<_>>(),
        vec![Event::Release("b".into()), Event::Release("a".into())]
    );
    assert_eq!(log.unloads(), 0, "no hooks at drop");
}

#[test]
fn l12_dropping_an_unstarted_or_released_lifecycle_does_nothing() {
    let _watchdog = support::watchdog(120);
    let (l, log, _) = lc(&["a"]);
    drop(l);
    assert!(log.events().is_empty());
    let (l, log, _) = lc(&["a"]);
    l.startup(v(2, 2)).unwrap();
    l.cleanup().unwrap();
    let n = log.events().len();
    drop(l);
    assert_eq!(log.events().len(), n);
}

#[test]
fn v1_version_words_encode_major_low_minor_high() {
    let _watchdog = support::watchdog(120);
    assert_eq!(Version::new(2, 2).to_word(), 0x0202);
    assert_eq!(Version::new(1, 2).to_word(), 0x0201);
    assert_eq!(Version::from_word(0x0201), Version::new(1, 2));
    assert_eq!(Version::from_word(0).to_word(), 0);
    assert_eq!(Version::from_word(0xffff), Version::new(255, 255));
    assert!(Version::new(1, 255) < Version::new(2, 0));
    assert!(Version::new(2, 1) < Version::new(2, 2));
}

#[test]
fn v2_negotiation_below_within_above() {
    let _watchdog = support::watchdog(120);
    let (l, log, _) = lc(&[]);
    for bad in [v(1, 0), v(0, 0), v(0, 9), v(1, 0)] {
        assert_eq!(l.startup(bad), Err(Error::VersionNotSupported));
        assert_eq!(
            l.startup_with(bad, StartupPolicy::NoWait)
                .unwrap_err()
                .wsa_code(),
            10092
        );
    }
    assert_eq!(l.count(), 0);
    assert_eq!(log.inits(), 0, "a rejected version never initializes");
    let s = l.startup(v(1, 1)).unwrap();
    assert_eq!(s.negotiated, Negotiated::new(v(1, 1), v(2, 2)));
    let s = l.startup(v(2, 1)).unwrap();
    assert_eq!(s.negotiated.version, v(2, 1));
    let s = l.startup(v(255, 255)).unwrap();
    assert_eq!(s.negotiated.version, v(2, 2));
    assert_eq!(s.negotiated.high_version, v(2, 2));
    // A bad version while Active is not counted either.
    assert_eq!(l.startup(v(1, 0)), Err(Error::VersionNotSupported));
    assert_eq!(l.count(), 3);
}

#[test]
fn v3_each_startup_negotiates_on_its_own() {
    let _watchdog = support::watchdog(120);
    let (l, _, _) = lc(&[]);
    let l = Arc::new(l);
    let hs: Vec<_> = [v(1, 1), v(2, 0), v(9, 9), v(2, 2)]
        .into_iter()
        .map(|req| {
            let l = l.clone();
            std::thread::spawn(move || (req, l.startup(req).unwrap().negotiated.version))
        })
        .collect();
    for h in hs {
        let (req, got) = h.join().unwrap();
        assert_eq!(got, req.min(v(2, 2)));
    }
}

#[test]
fn lifecycle_is_send_sync_static_and_debug() {
    let _watchdog = support::watchdog(120);
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Lifecycle<FakeProvider>>();
    static L: std::sync::LazyLock<Lifecycle<FakeProvider>> =
        std::sync::LazyLock::new(|| Lifecycle::new(FakeProvider::default()));
    L.startup(v(2, 2)).unwrap();
    let d = format!("{:?}", *L);
    assert!(d.contains("Active") && d.contains("count: 1"), "{d}");
    L.cleanup().unwrap();
}

#[test]
fn reentrant_startup_from_initialize_fails_instead_of_hanging() {
    let _watchdog = support::watchdog(120);
    use std::sync::OnceLock;
    struct Reenter(
        OnceLock<Arc<Lifecycle<Reenter>>>,
        parking_lot::Mutex<Option<Error>>,
    );
    impl Provider for Reenter {
        type Socket = NoSocket;
        type State = ();
        fn versions(&self) -> VersionRange {
            VersionRange::new(v(2, 2), v(2, 2))
        }
        fn initialize(&self, _: &mut Registrar) -> Result<(), Error> {
            let inner = self.0.get().unwrap().startup(v(2, 2));
            *self.1.lock() = inner.err();
            Ok(())
        }
    }
    let l = Arc::new(Lifecycle::new(Reenter(
        OnceLock::new(),
        parking_lot::Mutex::new(None),
    )));
    let _ = l.provider().0.set(l.clone());
    let l2 = l.clone();
    within(Duration::from_secs(5), move || l2.startup(v(2, 2)).unwrap());
    assert_eq!(*l.provider().1.lock(), Some(Error::InProgress));
    assert_eq!(l.count(), 1);
    l.cleanup().unwrap();
    // The provider's OnceLock keeps an Arc to its own lifecycle: this test
    // leaks that one value on purpose.
}

// L10: a thread whose last startup took the count to the limit; after
// another thread's cleanup the count is below the limit again, and this
// thread's next startup is counted; a refusal at the limit leaves no
// transient behind.
#[test]
fn l10_the_limit_is_judged_on_the_current_count() {
    let _watchdog = support::watchdog(120);
    let l = Lifecycle::with_config(FakeProvider::default(), Config::new().with_count_limit(2));
    l.startup(v(2, 2)).unwrap();
    l.startup(v(2, 2)).unwrap(); // count 2 = the limit, remembered here
    std::thread::scope(|s| {
        s.spawn(|| assert!(!l.cleanup().unwrap().is_final()));
    });
    assert_eq!(l.count(), 1);
    assert!(
        l.startup(v(2, 2)).is_ok(),
        "counted: the limit is not reached"
    );
    assert_eq!(l.count(), 2);
    assert_eq!(l.startup(v(2, 2)), Err(Error::ProcessLimit));
    assert_eq!(l.count(), 2, "the refused startup took its unit back");
    assert!(!l.cleanup().unwrap().is_final());
    assert!(l.cleanup().unwrap().is_final());
    assert_eq!(l.cleanup(), Err(Error::NotInitialised(NotActive::Unpaired)));
    assert_eq!(l.count(), 0, "the refused cleanup took nothing");
    assert_eq!(l.startup(v(2, 2)).unwrap().generation, 1);
    assert_eq!(l.count(), 1);
}

// The Provider docs' promise: inside `initialize` the lifecycle can be read
// but not used (not Active yet), and nothing deadlocks; resources go
// through the Registrar.
#[test]
fn initialize_can_read_the_lifecycle_but_not_use_it() {
    let _watchdog = support::watchdog(120);
    struct Curious(std::sync::OnceLock<&'static Lifecycle<Curious>>);
    impl Provider for Curious {
        type Socket = NoSocket;
        type State = ();
        fn versions(&self) -> VersionRange {
            VersionRange::new(v(2, 2), v(2, 2))
        }
        fn initialize(&self, init: &mut Registrar) -> Result<(), Error> {
            let l = self.0.get().expect("set");
            assert_ne!(l.state(), State::Active);
            assert_eq!(
                l.enter().err(),
                Some(Error::NotInitialised(NotActive::NeverStarted))
            );
            assert_eq!(
                l.token().err(),
                Some(Error::NotInitialised(NotActive::NeverStarted))
            );
            assert_eq!(
                l.register_resource_fn("too early", || Ok(())),
                Err(Error::NotInitialised(NotActive::NeverStarted))
            );
            assert_eq!(
                l.startup_with(v(2, 2), StartupPolicy::NoWait),
                Err(Error::InProgress)
            );
            init.register_fn("through the registrar", || Ok(()));
            Ok(())
        }
    }
    let l: &'static Lifecycle<Curious> = Box::leak(Box::new(Lifecycle::new(Curious(
        std::sync::OnceLock::new(),
    ))));
    l.provider().0.set(l).ok().unwrap();
    assert!(l.startup(v(2, 2)).unwrap().initialized);
    let report = l.cleanup().unwrap().into_report().unwrap();
    assert_eq!(report.resources.len(), 1);
    assert_eq!(report.resources[0].name, "through the registrar");
}

// O1, S1, S7: `operate` reaches state and socket under one guard;
// `with_socket_in` uses the caller's guard: a handle of another generation
// or a guard of another lifecycle reaches nothing, and nothing is reached
// once not Active.
#[test]
fn s7_operate_and_with_socket_in_reach_only_their_own_sockets() {
    let (l, log, _) = lc(&[]);
    let (other, _, _) = lc(&[]);
    l.startup(v(2, 2)).unwrap();
    other.startup(v(2, 2)).unwrap();
    let (sock, state) = FakeSocket::new(1, SockPlan::default(), &log);
    let h = l.register_socket(sock).unwrap();
    assert_eq!(l.operate(h, |(), s| s.write(3)), Ok(()));
    assert_eq!(state.lock().accepted, 3);
    let g = l.enter().unwrap();
    assert_eq!(g.generation(), 0);
    assert_eq!(l.with_socket_in(&g, h, |s| s.id), Ok(1));
    let foreign = other.enter().unwrap();
    assert_eq!(
        l.with_socket_in(&foreign, h, |s| s.id),
        Err(Error::NotSocket),
        "a guard of another lifecycle"
    );
    drop((g, foreign));
    l.cleanup().unwrap();
    assert_eq!(
        l.operate(h, |(), _| ()),
        Err(Error::NotInitialised(NotActive::Released)),
        "L8"
    );
    l.startup(v(2, 2)).unwrap();
    let g = l.enter().unwrap();
    assert_eq!(g.generation(), 1);
    assert_eq!(
        l.with_socket_in(&g, h, |s| s.id),
        Err(Error::NotSocket),
        "S7: a handle of the last generation"
    );
    assert_eq!(l.operate(h, |(), _| ()), Err(Error::NotSocket));
    drop(g);
    other.cleanup().unwrap();
    l.cleanup().unwrap();
}
