//! The final cleanup's drain and the socket rules: L6 (every step, in order),
//! L8, L13, S1–S3, D1, and the linger table.

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use provider_lifecycle::*;
use support::*;

/// A started lifecycle over the fakes. Background closes are driven by hand
/// (`BackgroundFlush::Manual`) so that these tests see exactly what the
/// final cleanup and `poll_background` do; `tests/background.rs` tests the
/// lifecycle's own flusher thread.
fn started(config: Config, names: &[&str]) -> (Lifecycle<FakeProvider>, Log, Arc<Knobs>) {
    let p = FakeProvider::with_resources(names);
    let (log, knobs) = (p.log.clone(), p.knobs.clone());
    let l = Lifecycle::with_config(p, config.with_background_flush(BackgroundFlush::Manual));
    l.startup(v(2, 2)).unwrap();
    (l, log, knobs)
}

fn add(
    l: &Lifecycle<FakeProvider>,
    log: &Log,
    id: u32,
    plan: SockPlan,
    bytes: u64,
) -> (SocketHandle, Arc<parking_lot::Mutex<SockState>>) {
    let (s, st) = FakeSocket::new(id, plan, log);
    let h = l.register_socket(s).unwrap();
    l.with_socket(h, |s| s.write(bytes)).unwrap();
    (h, st)
}

fn report(c: Cleanup) -> DrainReport {
    match c {
        Cleanup::Final(r) => *r,
        other => panic!("not final: {other:?}"),
    }
}

#[test]
fn l6_steps_run_in_order() {
    let _watchdog = support::watchdog(120);
    let (l, log, _) = started(
        Config::new().with_open_socket_policy(OpenSocketPolicy::Graceful),
        &["r1", "r2"],
    );
    let (_h_open, _) = add(&l, &log, 1, SockPlan::default(), 10);
    let (h_closed, _) = add(
        &l,
        &log,
        2,
        SockPlan {
            rate: 1,
            ..SockPlan::default()
        },
        10,
    );
    assert_eq!(
        l.close_socket(h_closed).unwrap().outcome,
        SocketOutcome::Background
    );
    log.clear();
    let r = report(l.cleanup().unwrap());
    let ev = log.events();
    let pos = |e: &Event| ev.iter().position(|x| x == e).unwrap();
    let last = |e: &Event| ev.iter().rposition(|x| x == e).unwrap();
    // 1 cancel, 2/3 sockets (flushes and releases), 4 resources reversed, 5 unload.
    assert_eq!(pos(&Event::Cancel), 0);
    let socks_done = last(&Event::SockRelease(1)).max(last(&Event::SockRelease(2)));
    assert!(socks_done < pos(&Event::Release("r2".into())));
    assert!(pos(&Event::Release("r2".into())) < pos(&Event::Release("r1".into())));
    assert!(pos(&Event::Release("r1".into())) < pos(&Event::PrepareUnload));
    assert_eq!(*ev.last().unwrap(), Event::PrepareUnload);
    assert!(r.is_clean(), "{r}");
    assert_eq!(l.state(), State::Released);
    assert_eq!(r.generation, 0);
    assert_eq!(l.generation(), 1);
}

#[test]
fn l6_flip_to_draining_is_visible_to_hooks() {
    let _watchdog = support::watchdog(120);
    // From the instant of the flip, new sockets and operations are refused.
    struct Probe(
        parking_lot::Mutex<Option<Arc<Lifecycle<Probe>>>>,
        parking_lot::Mutex<Vec<String>>,
    );
    impl Provider for Probe {
        type Socket = NoSocket;
        type State = ();
        fn versions(&self) -> VersionRange {
            VersionRange::new(v(2, 2), v(2, 2))
        }
        fn cancel_pending(&self) -> Result<usize, BoxError> {
            let l = self.0.lock().clone().unwrap();
            let mut seen = self.1.lock();
            seen.push(format!("{:?}", l.state()));
            seen.push(format!("{:?}", l.enter().map(drop)));
            seen.push(format!("{:?}", l.register_resource_fn("late", || Ok(()))));
            seen.push(format!("{:?}", l.cleanup().map(drop)));
            Ok(0)
        }
        fn initialize(&self, _: &mut Registrar) -> Result<(), Error> {
            Ok(())
        }
    }
    let l = Arc::new(Lifecycle::new(Probe(
        Default::default(),
        Default::default(),
    )));
    *l.provider().0.lock() = Some(l.clone());
    l.startup(v(2, 2)).unwrap();
    l.cleanup().unwrap();
    let seen = l.provider().1.lock().clone();
    assert_eq!(
        seen,
        vec![
            "Draining",
            "Err(NotInitialised(Draining))",
            "Err(NotInitialised(Draining))",
            "Err(NotInitialised(Draining))"
        ]
    );
    l.provider().0.lock().take();
}

#[test]
fn l6_2_reset_policy_discards_and_reports_bytes() {
    let _watchdog = support::watchdog(120);
    let (l, log, _) = started(Config::new(), &[]);
    let (h, st) = add(&l, &log, 1, SockPlan::default(), 1234);
    let r = report(l.cleanup().unwrap());
    let s = r.socket(h).unwrap();
    assert_eq!(s.outcome, SocketOutcome::Reset);
    assert_eq!(s.phase, SocketPhase::Open);
    assert_eq!((s.bytes_flushed, s.bytes_discarded), (0, 1234));
    assert!(!r.is_clean());
    assert_eq!(r.bytes_discarded(), 1234);
    let st = st.lock();
    assert_eq!(st.aborts, 1);
    assert_eq!(st.flush_calls, 0);
    assert_accounted(&st);
}

#[test]
fn l6_2_graceful_policy_uses_each_sockets_linger() {
    let _watchdog = support::watchdog(120);
    let (l, log, _) = started(
        Config::new().with_open_socket_policy(OpenSocketPolicy::Graceful),
        &[],
    );
    let (hb, sb) = add(
        &l,
        &log,
        1,
        SockPlan {
            rate: 100,
            ..SockPlan::default()
        },
        1000,
    );
    let (ha, sa) = add(
        &l,
        &log,
        2,
        SockPlan {
            linger: Linger::Abort,
            ..SockPlan::default()
        },
        50,
    );
    let (ht, stt) = add(
        &l,
        &log,
        3,
        SockPlan {
            linger: Linger::Timeout(Duration::from_millis(30)),
            stuck: true,
            ..SockPlan::default()
        },
        70,
    );
    let r = report(l.cleanup().unwrap());
    assert_eq!(r.socket(hb).unwrap().outcome, SocketOutcome::Flushed);
    assert_eq!(r.socket(hb).unwrap().bytes_flushed, 1000);
    assert_eq!(r.socket(ha).unwrap().outcome, SocketOutcome::Reset);
    assert_eq!(r.socket(ha).unwrap().bytes_discarded, 50);
    assert_eq!(r.socket(ht).unwrap().outcome, SocketOutcome::LingerTimeout);
    assert_eq!(r.socket(ht).unwrap().bytes_discarded, 70);
    assert!(
        !r.deadline_hit,
        "the socket's own deadline, not the drain's"
    );
    for st in [sb, sa, stt] {
        assert_accounted(&st.lock());
    }
}

#[test]
fn l6_3_and_s3_closed_graceful_sockets_are_flushed_completely_in_order() {
    let _watchdog = support::watchdog(120);
    let (l, log, _) = started(Config::new(), &["res"]);
    let mut states = Vec::new();
    for id in 0..32 {
        let plan = SockPlan {
            rate: 4096,
            ready_at: Some(Instant::now() + Duration::from_millis(5)),
            ..SockPlan::default()
        };
        let (h, st) = add(&l, &log, id, plan, 64 * 1024);
        assert_eq!(
            l.close_socket(h).unwrap().outcome,
            SocketOutcome::Background
        );
        assert_eq!(
            l.with_socket(h, |_| ()),
            Err(Error::NotSocket),
            "handle invalid after close"
        );
        states.push(st);
    }
    assert_eq!(l.background_sockets(), 32);
    let r = report(l.cleanup().unwrap());
    assert!(r.is_clean(), "{r}");
    assert_eq!(r.bytes_flushed(), 32 * 64 * 1024);
    assert!(r.sockets.iter().all(|s| s.phase == SocketPhase::Background));
    for st in states {
        let st = st.lock();
        assert_eq!(st.delivered.len(), 64 * 1024);
        assert_eq!(st.discarded, 0);
        assert_accounted(&st);
    }
}

#[test]
fn l6_3_drain_deadline_cuts_a_stuck_peer_and_reports_it() {
    let _watchdog = support::watchdog(120);
    let deadline = Duration::from_millis(100);
    let (l, log, _) = started(Config::new().with_drain_deadline(deadline), &["res"]);
    let (h, st) = add(
        &l,
        &log,
        1,
        SockPlan {
            stuck: true,
            ..SockPlan::default()
        },
        500,
    );
    let (h2, st2) = add(&l, &log, 2, SockPlan::default(), 20);
    l.close_socket(h).unwrap();
    l.close_socket(h2).unwrap();
    let t = Instant::now();
    let r = within(Duration::from_secs(5), move || report(l.cleanup().unwrap()));
    assert!(t.elapsed() >= deadline);
    assert!(r.deadline_hit);
    assert!(!r.is_clean());
    let line = r.socket(h).unwrap();
    assert_eq!(line.outcome, SocketOutcome::Deadline);
    assert_eq!(line.bytes_discarded, 500);
    // The background close already delivered 20 bytes of socket 2.
    assert_eq!(st2.lock().delivered.len(), 20);
    assert_eq!(
        r.resources.len(),
        1,
        "resources still released after a deadline"
    );
    assert_accounted(&st.lock());
    assert_accounted(&st2.lock());
    assert!(r.to_string().contains("drain deadline"), "{r}");
}

#[test]
fn l6_3_sockets_drain_concurrently_not_one_after_another() {
    let _watchdog = support::watchdog(120);
    // 200 sockets that each need 20 ms before any byte moves: sequential
    // draining would take 4 s; concurrent draining takes about 20 ms.
    let (l, log, _) = started(Config::new(), &[]);
    let ready = Instant::now() + Duration::from_millis(20);
    for id in 0..200 {
        let (h, _) = add(
            &l,
            &log,
            id,
            SockPlan {
                ready_at: Some(ready),
                ..SockPlan::default()
            },
            10,
        );
        l.close_socket(h).unwrap();
    }
    let r = within(Duration::from_secs(2), move || report(l.cleanup().unwrap()));
    assert!(r.is_clean());
    assert_eq!(r.bytes_flushed(), 2000);
}

#[test]
fn l6_4_failing_and_panicking_releases_do_not_stop_the_others() {
    let _watchdog = support::watchdog(120);
    let (l, log, knobs) = started(Config::new(), &["a", "b", "c", "d"]);
    knobs.fail_release.lock().push("b".into());
    knobs.panic_release.lock().push("c".into());
    let r = report(l.cleanup().unwrap());
    let got: Vec<_> = r
        .resources
        .iter()
        .map(|r| (r.name.as_str(), r.outcome.clone()))
        .collect();
    assert_eq!(got[0], ("d", HookOutcome::Ok));
    assert!(matches!(&got[1], ("c", HookOutcome::Panicked(m)) if m.contains("panicked")));
    assert!(matches!(&got[2], ("b", HookOutcome::Failed(m)) if m.contains("failed")));
    assert_eq!(got[3], ("a", HookOutcome::Ok));
    assert!(!r.is_clean());
    assert_eq!(log.unloads(), 1);
    assert_eq!(l.state(), State::Released);
    assert!(l.startup(v(2, 2)).is_ok(), "the next startup works");
}

#[test]
fn l6_5_prepare_unload_failure_or_panic_is_reported() {
    let _watchdog = support::watchdog(120);
    for panic in [false, true] {
        let (l, _, knobs) = started(Config::new(), &[]);
        if panic {
            knobs.panic_unload.store(true, Ordering::SeqCst);
        } else {
            knobs.fail_unload.store(true, Ordering::SeqCst);
        }
        let r = report(l.cleanup().unwrap());
        assert!(!r.prepare_unload.is_ok());
        assert_eq!(matches!(r.prepare_unload, HookOutcome::Panicked(_)), panic);
        assert_eq!(l.state(), State::Released);
        assert!(l.startup(v(2, 2)).unwrap().initialized);
    }
}

#[test]
fn l6_1_cancel_hook_panic_is_reported_and_teardown_goes_on() {
    let _watchdog = support::watchdog(120);
    let (l, log, knobs) = started(Config::new(), &["r"]);
    knobs.panic_cancel.store(true, Ordering::SeqCst);
    let r = report(l.cleanup().unwrap());
    assert!(matches!(r.operations.cancel, HookOutcome::Panicked(_)));
    assert_eq!(log.count(|e| *e == Event::Release("r".into())), 1);
    assert_eq!(log.unloads(), 1);
}

#[test]
fn l6_socket_faults_are_reported_and_nothing_is_lost() {
    let _watchdog = support::watchdog(120);
    let (l, log, _) = started(
        Config::new().with_open_socket_policy(OpenSocketPolicy::Graceful),
        &[],
    );
    let plans = [
        SockPlan {
            fail_flush: true,
            ..SockPlan::default()
        },
        SockPlan {
            panic_flush: true,
            ..SockPlan::default()
        },
        SockPlan {
            panic_abort: true,
            linger: Linger::Abort,
            ..SockPlan::default()
        },
        SockPlan {
            fail_release: true,
            ..SockPlan::default()
        },
    ];
    let mut socks = Vec::new();
    for (i, plan) in plans.into_iter().enumerate() {
        socks.push(add(&l, &log, i as u32, plan, 100));
    }
    let r = report(l.cleanup().unwrap());
    assert!(matches!(
        r.socket(socks[0].0).unwrap().outcome,
        SocketOutcome::Failed
    ));
    assert!(matches!(
        r.socket(socks[1].0).unwrap().outcome,
        SocketOutcome::Panicked
    ));
    assert!(matches!(
        r.socket(socks[2].0).unwrap().abort(),
        HookOutcome::Panicked(_)
    ));
    assert!(matches!(
        r.socket(socks[3].0).unwrap().release(),
        HookOutcome::Failed(_)
    ));
    assert_eq!(r.socket(socks[3].0).unwrap().bytes_flushed, 100);
    assert_eq!(
        r.socket(socks[0].0).unwrap().error(),
        Some("peer went away")
    );
    assert!(
        r.socket(socks[1].0)
            .unwrap()
            .error()
            .unwrap()
            .contains("exploded")
    );
    assert!(r.to_string().contains("peer went away"), "{r}");
    for (h, st) in &socks {
        let st = st.lock();
        assert_accounted(&st);
        let line = r.socket(*h).unwrap();
        assert_eq!(
            st.discarded, line.bytes_discarded,
            "report matches the socket"
        );
    }
    assert!(!r.is_clean());
    assert_eq!(l.state(), State::Released);
}

#[test]
fn l8_handles_carry_their_generation_and_init_is_checked_first() {
    let _watchdog = support::watchdog(120);
    let (l, log, _) = started(Config::new(), &[]);
    let (old, _) = add(&l, &log, 1, SockPlan::default(), 0);
    l.cleanup().unwrap();
    // Not Active: NotInitialised, whatever the handle.
    assert_eq!(
        l.with_socket(old, |_| ()),
        Err(Error::NotInitialised(NotActive::Released))
    );
    assert_eq!(
        l.close_socket(old),
        Err(Error::NotInitialised(NotActive::Released))
    );
    l.startup(v(2, 2)).unwrap();
    let (new, _) = add(&l, &log, 2, SockPlan::default(), 0);
    assert_ne!(old.generation(), new.generation());
    // Active: the earlier generation's handle is NotSocket, even if it names
    // the same slot as a live socket.
    assert_eq!(l.with_socket(old, |_| ()), Err(Error::NotSocket));
    assert_eq!(l.close_socket(old).unwrap_err().wsa_code(), 10038);
    assert_eq!(l.with_socket(new, |s| s.id).unwrap(), 2);
}

#[test]
fn s1_unknown_closed_and_reused_slot_handles_are_not_sockets() {
    let _watchdog = support::watchdog(120);
    let (l, log, _) = started(Config::new(), &[]);
    let (h1, st1) = add(&l, &log, 1, SockPlan::default(), 0);
    l.close_socket(h1).unwrap();
    assert_eq!(l.close_socket(h1), Err(Error::NotSocket), "double close");
    // The slot is reused by the next socket; the old handle must not alias it.
    let (h2, _) = add(&l, &log, 2, SockPlan::default(), 0);
    assert_eq!(l.with_socket(h1, |s| s.id), Err(Error::NotSocket));
    assert_eq!(l.with_socket(h2, |s| s.id), Ok(2));
    let forged = SocketHandle::from_raw(h2.to_raw() ^ 0x5);
    assert_eq!(l.with_socket(forged, |s| s.id), Err(Error::NotSocket));
    assert_eq!(SocketHandle::from_raw(h2.to_raw()), h2);
    assert_eq!(st1.lock().releases, 1);
    l.cleanup().unwrap();
    assert_eq!(
        l.close_socket(h2),
        Err(Error::NotInitialised(NotActive::Released))
    );
}

#[test]
fn s2_a_socket_is_released_once_and_never_used_after() {
    let _watchdog = support::watchdog(120);
    let (l, log, _) = started(
        Config::new().with_open_socket_policy(OpenSocketPolicy::Graceful),
        &[],
    );
    let mut all = Vec::new();
    for (i, linger) in [
        Linger::Background,
        Linger::Abort,
        Linger::Timeout(Duration::from_millis(5)),
    ]
    .into_iter()
    .enumerate()
    {
        let plan = SockPlan {
            linger,
            rate: 7,
            ..SockPlan::default()
        };
        let (h, st) = add(&l, &log, i as u32, plan.clone(), 100);
        let _ = l.close_socket(h).unwrap();
        assert_eq!(l.close_socket(h), Err(Error::NotSocket));
        all.push(st);
        all.push(add(&l, &log, 10 + i as u32, plan, 100).1);
    }
    l.cleanup().unwrap();
    for st in all {
        assert_accounted(&st.lock());
    }
}

#[test]
fn linger_abort_close_resets_and_reports() {
    let _watchdog = support::watchdog(120);
    let (l, log, _) = started(Config::new(), &[]);
    let (h, st) = add(
        &l,
        &log,
        1,
        SockPlan {
            linger: Linger::Abort,
            ..SockPlan::default()
        },
        99,
    );
    let out = l.close_socket(h).unwrap();
    assert_eq!(out.outcome, SocketOutcome::Reset);
    assert_eq!(out.bytes_discarded, 99);
    assert_accounted(&st.lock());
    l.cleanup().unwrap();
}

#[test]
fn linger_timeout_blocking_waits_for_flush_or_deadline() {
    let _watchdog = support::watchdog(120);
    let (l, log, _) = started(Config::new(), &[]);
    // Finishes: a slow peer that is ready after 20 ms.
    let plan = SockPlan {
        linger: Linger::Timeout(Duration::from_secs(5)),
        ready_at: Some(Instant::now() + Duration::from_millis(20)),
        ..SockPlan::default()
    };
    let (h, st) = add(&l, &log, 1, plan, 300);
    let out = l.close_socket(h).unwrap();
    assert_eq!(out.outcome, SocketOutcome::Flushed);
    assert_eq!((out.bytes_flushed, out.bytes_discarded), (300, 0));
    assert_accounted(&st.lock());
    // Times out: a stuck peer; the close still succeeds and says so.
    let plan = SockPlan {
        linger: Linger::Timeout(Duration::from_millis(40)),
        stuck: true,
        ..SockPlan::default()
    };
    let (h, st) = add(&l, &log, 2, plan, 300);
    let t = Instant::now();
    let out = l.close_socket(h).unwrap();
    assert!(t.elapsed() >= Duration::from_millis(40));
    assert_eq!(out.outcome, SocketOutcome::LingerTimeout);
    assert_eq!(out.bytes_discarded, 300);
    assert_accounted(&st.lock());
    l.cleanup().unwrap();
}

#[test]
fn linger_timeout_nonblocking_would_block_and_keeps_the_handle() {
    let _watchdog = support::watchdog(120);
    let (l, log, _) = started(Config::new(), &[]);
    let plan = SockPlan {
        linger: Linger::Timeout(Duration::from_secs(1)),
        blocking: false,
        ..SockPlan::default()
    };
    let (h, st) = add(&l, &log, 1, plan, 10);
    assert_eq!(l.close_socket(h), Err(Error::WouldBlock));
    assert_eq!(Error::WouldBlock.wsa_code(), 10035);
    assert_eq!(st.lock().flush_calls, 0, "nothing started");
    assert_eq!(l.with_socket(h, |s| s.id), Ok(1), "handle still valid");
    // Once its data is out (the application flushed), the close completes.
    l.with_socket(h, |s| {
        let _ = s.poll_flush(&mut std::task::Context::from_waker(std::task::Waker::noop()));
    })
    .unwrap();
    assert_eq!(l.close_socket(h).unwrap().outcome, SocketOutcome::Flushed);
    assert_accounted(&st.lock());
    l.cleanup().unwrap();
}

#[test]
fn poll_background_makes_background_progress_while_active() {
    let _watchdog = support::watchdog(120);
    let (l, log, _) = started(Config::new(), &[]);
    let (h, st) = add(
        &l,
        &log,
        1,
        SockPlan {
            rate: 10,
            ..SockPlan::default()
        },
        30,
    );
    l.close_socket(h).unwrap();
    assert_eq!(l.poll_background().unwrap(), 1);
    assert_eq!(l.poll_background().unwrap(), 1);
    assert_eq!(l.poll_background().unwrap(), 0);
    assert_eq!(l.background_sockets(), 0);
    assert_accounted(&st.lock());
    let r = report(l.cleanup().unwrap());
    assert!(r.sockets.is_empty());
}

#[test]
fn l13_cleanup_spawns_no_thread_left_behind() {
    let _watchdog = support::watchdog(120);
    // The drain runs on the caller: hooks observe the caller's thread.
    struct Where(parking_lot::Mutex<Vec<std::thread::ThreadId>>);
    impl Provider for Where {
        type Socket = NoSocket;
        type State = ();
        fn versions(&self) -> VersionRange {
            VersionRange::new(v(2, 2), v(2, 2))
        }
        fn initialize(&self, init: &mut Registrar) -> Result<(), Error> {
            init.register_fn("probe", || Ok(()));
            Ok(())
        }
        fn cancel_pending(&self) -> Result<usize, BoxError> {
            self.0.lock().push(std::thread::current().id());
            Ok(0)
        }
        fn prepare_unload(&self) -> Result<(), BoxError> {
            self.0.lock().push(std::thread::current().id());
            Ok(())
        }
    }
    let l = Lifecycle::new(Where(Default::default()));
    l.startup(v(2, 2)).unwrap();
    l.cleanup().unwrap();
    let me = std::thread::current().id();
    assert_eq!(*l.provider().0.lock(), vec![me, me]);
}

#[test]
fn d1_report_has_every_part_and_displays_a_table() {
    let _watchdog = support::watchdog(120);
    let (l, log, knobs) = started(
        Config::new().with_open_socket_policy(OpenSocketPolicy::Graceful),
        &["pool"],
    );
    knobs.cancelled.store(3, Ordering::SeqCst);
    let (h, _) = add(&l, &log, 1, SockPlan::default(), 64);
    let r = report(l.cleanup().unwrap());
    assert_eq!(r.operations.cancelled, 3);
    assert_eq!(r.operations.waited_for, 0);
    assert_eq!(r.socket(h).unwrap().bytes_flushed, 64);
    assert_eq!(r.resources[0].name, "pool");
    assert!(r.timings.total >= r.timings.sockets);
    assert!(r.is_clean());
    let text = r.to_string();
    for needle in [
        "clean",
        "cancelled",
        "flushed",
        "discarded",
        "pool",
        "prepare-to-unload",
    ] {
        assert!(text.contains(needle), "missing {needle}: {text}");
    }
}

#[test]
fn register_socket_when_not_active_releases_it() {
    let _watchdog = support::watchdog(120);
    let p = FakeProvider::default();
    let log = p.log.clone();
    let l = Lifecycle::new(p);
    let (s, st) = FakeSocket::new(1, SockPlan::default(), &log);
    assert_eq!(
        l.register_socket(s),
        Err(Error::NotInitialised(NotActive::NeverStarted))
    );
    assert_eq!(st.lock().releases, 1, "refused sockets are not leaked");
    let released = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let r2 = released.clone();
    assert_eq!(
        l.register_resource_fn("late", move || {
            r2.store(true, Ordering::SeqCst);
            Ok(())
        }),
        Err(Error::NotInitialised(NotActive::NeverStarted))
    );
    assert!(released.load(Ordering::SeqCst));
}
