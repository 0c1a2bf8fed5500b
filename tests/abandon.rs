//! Ending without waiting. L16: the final cleanup's bounded wait for
//! operations in flight: past the bound it still reaches Released, frees
//! nothing an outstanding operation may touch (abandons it), reports it, and
//! the next generation starts at once without counting the abandoned guards.
//! L18: ending a generation at process exit, waiting on nothing.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::time::Duration;

use provider_lifecycle::*;
use support::*;

const LIMIT: Duration = Duration::from_millis(50);

fn bounded(p: FakeProvider) -> Lifecycle<FakeProvider> {
    lifecycle_with(
        Config::new()
            .with_drain_deadline(Duration::from_millis(20))
            .with_guard_wait_limit(LIMIT),
        p,
    )
}

#[test]
fn l16_default_has_no_bound() {
    assert_eq!(Config::new().guard_wait_limit(), None);
    assert_eq!(
        Config::new()
            .with_guard_wait_limit(LIMIT)
            .guard_wait_limit(),
        Some(LIMIT)
    );
    assert_ne!(Config::new(), Config::new().with_guard_wait_limit(LIMIT));
}

// L16: a leaked guard no longer hangs the final cleanup: it ends at the
// bound, Released, with the guard counted as abandoned, the resources left
// unreleased, and a startup right after works and gets a clean teardown.
#[test]
fn l16_a_leaked_guard_is_abandoned_at_the_bound_and_the_next_generation_starts() {
    let _watchdog = watchdog(60);
    let p = FakeProvider::with_resources(&["pool", "port"]);
    let log = p.log.clone();
    let l = bounded(p);
    l.startup(v(2, 2)).unwrap();
    // Leaked on another thread (on this one, L11 would refuse the cleanup
    // as the guard's own holder's).
    std::thread::scope(|s| {
        s.spawn(|| std::mem::forget(l.enter().unwrap()));
    });
    let started = std::time::Instant::now();
    let c = l.cleanup().unwrap();
    assert!(started.elapsed() >= LIMIT, "it waited up to the bound");
    let r = c.into_report().unwrap();
    assert_eq!(l.state(), State::Released);
    assert_eq!(r.operations.waited_for, 1);
    assert_eq!(r.operations.abandoned, 1);
    assert!(r.operations.overran_deadline);
    assert_eq!(r.state, HookOutcome::Abandoned);
    let abandoned: Vec<_> = r
        .resources
        .iter()
        .map(|x| (x.name.as_str(), x.outcome.clone()))
        .collect();
    assert_eq!(
        abandoned,
        [
            ("port", HookOutcome::Abandoned),
            ("pool", HookOutcome::Abandoned)
        ]
    );
    assert_eq!(
        log.count(|e| matches!(e, Event::Release(_))),
        0,
        "O2: nothing a live guard may touch is released"
    );
    assert!(!r.is_clean());
    assert!(r.to_string().contains("abandoned"), "{r}");

    // The next generation starts at once and is not held by the leak.
    l.startup(v(2, 2)).unwrap();
    assert_eq!(l.generation(), 1);
    {
        let _g = l.enter().unwrap();
    }
    let r = l.cleanup().unwrap().into_report().unwrap();
    assert_eq!(r.operations.waited_for, 0);
    assert_eq!(r.operations.abandoned, 0);
    assert!(r.is_clean(), "{r}");
    assert_eq!(log.count(|e| matches!(e, Event::Release(_))), 2);
}

// L16, O4: a token the bounded wait abandoned knows its generation is over,
// even once a later generation is Active: it never takes that one for its
// own (its draining signals fire at once, whichever form).
#[test]
fn l16_an_abandoned_token_sees_its_generation_drained_after_a_restart() {
    let _watchdog = watchdog(60);
    let l = Arc::new(bounded(FakeProvider::default()));
    l.startup(v(2, 2)).unwrap();
    let token = l.token().unwrap();
    let owned = l.owned_token().unwrap();
    assert!(!token.is_draining() && !owned.is_draining());
    let r = l.cleanup().unwrap().into_report().unwrap();
    assert_eq!(r.operations.abandoned, 2);
    l.startup(v(2, 2)).unwrap(); // a later generation, Active
    assert_eq!(l.state(), State::Active);
    assert!(token.is_draining(), "its own generation ended");
    assert!(owned.is_draining());
    token.wait_draining(); // returns at once
    owned.wait_draining();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        token.draining().await;
        owned.draining().await;
    });
    // The later generation's own token is not draining.
    let fresh = l.token().unwrap();
    assert!(!fresh.is_draining());
    drop(fresh);
    drop((token, owned));
    assert!(l.cleanup().unwrap().is_final());
}

// L16 without a bound reached: guards that leave before it are waited for
// as always, nothing is abandoned.
#[test]
fn l16_guards_leaving_before_the_bound_are_waited_for() {
    let _watchdog = watchdog(60);
    let l = Arc::new(lifecycle_with(
        Config::new().with_guard_wait_limit(Duration::from_secs(30)),
        FakeProvider::with_resources(&["r"]),
    ));
    l.startup(v(2, 2)).unwrap();
    let entered = Arc::new(Barrier::new(2));
    let worker = {
        let (l, entered) = (l.clone(), entered.clone());
        std::thread::spawn(move || {
            let _g = l.enter().unwrap();
            entered.wait();
            std::thread::sleep(Duration::from_millis(30));
        })
    };
    entered.wait();
    let r = l.cleanup().unwrap().into_report().unwrap();
    worker.join().unwrap();
    assert_eq!(r.operations.abandoned, 0);
    assert_eq!(r.state, HookOutcome::Ok);
    assert_eq!(r.resources[0].outcome, HookOutcome::Ok);
}

/// A provider whose state records its drop and whose guard holder keeps
/// using it after the bound.
struct Counted;

static STATE_DROPS: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug)]
struct St(u64);

impl Drop for St {
    fn drop(&mut self) {
        STATE_DROPS.fetch_add(1, Ordering::SeqCst);
    }
}

impl Provider for Counted {
    type Socket = FakeSocket;
    type State = St;
    fn versions(&self) -> VersionRange {
        VersionRange::new(Version::new(2, 2), Version::new(2, 2))
    }
    fn initialize(&self, init: &mut Registrar) -> Result<St, Error> {
        Ok(St(init.generation()))
    }
}

// L16, O2: an operation still running past the bound keeps its state (never
// dropped while it reads it, nor afterwards: abandoned means never freed)
// and the socket it is using (left as is); other sockets are closed as
// usual. The operation's own guard leaving later does not touch the new
// generation's count, and the new generation has its own state.
#[test]
fn l16_an_operation_past_the_bound_keeps_its_state_and_its_socket() {
    let _watchdog = watchdog(60);
    let log = Log::default();
    let l = Arc::new(Lifecycle::with_config(
        Counted,
        Config::new()
            .with_open_socket_policy(OpenSocketPolicy::Graceful)
            .with_drain_deadline(Duration::from_secs(5))
            .with_guard_wait_limit(LIMIT),
    ));
    l.startup(v(2, 2)).unwrap();
    let (mut busy, busy_state) = FakeSocket::new(1, SockPlan::default(), &log);
    busy.write(10);
    let (mut idle, idle_state) = FakeSocket::new(2, SockPlan::default(), &log);
    idle.write(7);
    let busy = l.register_socket(busy).unwrap();
    let idle = l.register_socket(idle).unwrap();
    // A second handle to the busy socket (W3): its slot is free, the socket
    // behind it is not.
    let busy_dup = l.duplicate_socket(busy).unwrap();

    let (inside_tx, inside_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let worker = {
        let l = l.clone();
        std::thread::spawn(move || {
            let g = l.enter().unwrap();
            l.with_socket(busy, |s| {
                inside_tx.send(()).unwrap();
                go_rx.recv().unwrap();
                s.write(1);
            })
            .unwrap();
            // The old generation's state is still there after the bound.
            let generation = g.state().0;
            drop(g);
            generation
        })
    };
    inside_rx.recv().unwrap();
    let r = l.cleanup().unwrap().into_report().unwrap();
    assert_eq!(l.state(), State::Released);
    assert_eq!(r.operations.abandoned, 2, "the guard and with_socket's own");
    assert_eq!(r.state, HookOutcome::Abandoned);
    assert_eq!(STATE_DROPS.load(Ordering::SeqCst), 0);
    assert_eq!(r.socket(busy).unwrap().outcome, SocketOutcome::Abandoned);
    assert_eq!(
        r.socket(busy_dup).unwrap().outcome,
        SocketOutcome::Abandoned,
        "the socket behind the free handle is in use"
    );
    assert_eq!(r.socket(idle).unwrap().outcome, SocketOutcome::Flushed);
    assert_eq!(l.open_sockets(), 0, "abandoned handles are no longer open");
    assert_eq!(idle_state.lock().delivered.len(), 7);
    assert_eq!(
        busy_state.lock().releases,
        0,
        "the busy socket is left as is"
    );

    // A new generation starts while the old operation is still inside.
    l.startup(v(2, 2)).unwrap();
    let new_generation = l.generation();
    assert_eq!(l.enter().unwrap().state().0, new_generation);
    go_tx.send(()).unwrap();
    assert_eq!(worker.join().unwrap(), 0, "the old guard saw its own state");
    assert_eq!(
        busy_state.lock().accepted,
        11,
        "the operation finished its work"
    );
    assert_eq!(
        STATE_DROPS.load(Ordering::SeqCst),
        0,
        "abandoned: never freed"
    );

    // The new generation's cleanup waits for nobody and drops its state.
    let r = l.cleanup().unwrap().into_report().unwrap();
    assert_eq!(r.operations.waited_for, 0);
    assert_eq!(r.operations.abandoned, 0);
    assert_eq!(r.state, HookOutcome::Ok);
    assert_eq!(STATE_DROPS.load(Ordering::SeqCst), 1);
}

// L16: the async cleanup honours the bound too (its alarm wakes it).
#[test]
fn l16_async_cleanup_abandons_at_the_bound() {
    let _watchdog = watchdog(60);
    let l = bounded(FakeProvider::with_resources(&["r"]));
    l.startup(v(2, 2)).unwrap();
    std::mem::forget(l.token().unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let r = rt
        .block_on(l.cleanup_async())
        .unwrap()
        .into_report()
        .unwrap();
    assert_eq!(r.operations.abandoned, 1);
    assert_eq!(r.resources[0].outcome, HookOutcome::Abandoned);
    assert_eq!(l.state(), State::Released);
    l.startup(v(2, 2)).unwrap();
    assert!(l.cleanup().unwrap().into_report().unwrap().is_clean());
}

// L16: each generation left with leaked guards takes one of four lanes;
// with all four taken a startup is refused with 10091 instead of counting
// among them, and the lifecycle stays Released.
#[test]
fn l16_four_abandoned_generations_refuse_the_fifth_startup() {
    let _watchdog = watchdog(60);
    let l = bounded(FakeProvider::default());
    for _ in 0..4 {
        l.startup(v(2, 2)).unwrap();
        std::mem::forget(l.token().unwrap());
        let r = l.cleanup().unwrap().into_report().unwrap();
        assert_eq!(r.operations.abandoned, 1);
    }
    let e = l.startup(v(2, 2)).unwrap_err();
    assert_eq!(e.wsa_code(), 10091);
    assert_eq!(l.state(), State::Released);
    assert_eq!(l.count(), 0);
}

// L18: at process exit the generation ends at once, with a guard held by a
// thread that never returns, a token leaked and a socket that never
// flushes: no wait, no flush, nothing released, and from then on nothing
// enters and no startup waits.
#[test]
fn l18_end_at_exit_waits_for_nothing_and_releases_nothing() {
    let _watchdog = watchdog(60);
    let p = FakeProvider::with_resources(&["r"]);
    let log = p.log.clone();
    let l = Arc::new(lifecycle_with(Config::new(), p));
    l.startup(v(2, 2)).unwrap();
    l.startup(v(2, 2)).unwrap();
    let stuck = SockPlan {
        stuck: true,
        ..SockPlan::default()
    };
    let (mut s, sock) = FakeSocket::new(1, stuck, &log);
    s.write(5);
    let h = l.register_socket(s).unwrap();
    assert_eq!(
        l.close_socket(h).unwrap().outcome,
        SocketOutcome::Background
    );
    std::mem::forget(l.token().unwrap());
    let (entered_tx, entered_rx) = mpsc::channel();
    let (_never_tx, never_rx) = mpsc::channel::<()>();
    let holder = {
        let l = l.clone();
        std::thread::spawn(move || {
            let _g = l.enter().unwrap();
            entered_tx.send(()).unwrap();
            let _ = never_rx.recv(); // a thread the OS stopped
        })
    };
    entered_rx.recv().unwrap();

    assert_eq!(l.end_at_exit(), Ok(0));
    assert_eq!(l.state(), State::Draining);
    assert_eq!(
        l.enter().err(),
        Some(Error::NotInitialised(NotActive::Draining))
    );
    assert_eq!(
        l.register_socket(FakeSocket::new(2, SockPlan::default(), &log).0)
            .err(),
        Some(Error::NotInitialised(NotActive::Draining))
    );
    assert_eq!(l.startup(v(2, 2)).err(), Some(Error::InProgress), "no wait");
    assert_eq!(
        l.cleanup().err(),
        Some(Error::NotInitialised(NotActive::Draining))
    );
    assert_eq!(l.end_at_exit(), Err(Error::InProgress));
    assert_eq!(log.count(|e| matches!(e, Event::Release(_))), 0);
    assert_eq!(log.count(|e| matches!(e, Event::Cancel)), 0);
    assert_eq!(sock.lock().releases, 0);
    assert_eq!(sock.lock().unsent, 5, "nothing flushed, nothing dropped");
    drop(_never_tx);
    holder.join().unwrap();
}

// L18: nothing to end before a startup; a final cleanup already running is
// left to finish (and the lifecycle then starts again as usual).
#[test]
fn l18_end_at_exit_outside_an_active_generation() {
    let _watchdog = watchdog(60);
    let l = Arc::new(lifecycle_with(Config::new(), FakeProvider::default()));
    assert_eq!(
        l.end_at_exit(),
        Err(Error::NotInitialised(NotActive::NeverStarted))
    );
    l.startup(v(2, 2)).unwrap();
    let (entered_tx, entered_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let holder = {
        let l = l.clone();
        std::thread::spawn(move || {
            let _g = l.enter().unwrap();
            entered_tx.send(()).unwrap();
            go_rx.recv().unwrap();
        })
    };
    entered_rx.recv().unwrap();
    let cleaner = {
        let l = l.clone();
        std::thread::spawn(move || l.cleanup().unwrap().is_final())
    };
    while l.state() != State::Draining {
        std::thread::yield_now();
    }
    assert_eq!(l.end_at_exit(), Err(Error::InProgress));
    go_tx.send(()).unwrap();
    holder.join().unwrap();
    assert!(cleaner.join().unwrap());
    assert_eq!(l.state(), State::Released);
    l.startup(v(2, 2)).unwrap();
    assert!(l.cleanup().unwrap().is_final());
}
