//! Operation tokens (O4): owned, `Send` guards with a cancellation signal.
#![cfg(not(loom))]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::time::Duration;

use provider_lifecycle::*;
use support::*;

const V: Version = Version::new(2, 2);

/// A provider whose one resource records its release.
struct Flagged(Arc<AtomicBool>);

impl Provider for Flagged {
    type Socket = NoSocket;
    type State = ();
    fn versions(&self) -> VersionRange {
        VersionRange::new(V, V)
    }
    fn initialize(&self, init: &mut Registrar) -> Result<(), Error> {
        let released = self.0.clone();
        released.store(false, SeqCst);
        init.register_fn("state", move || {
            released.store(true, SeqCst);
            Ok(())
        });
        Ok(())
    }
}

fn flagged() -> (&'static Lifecycle<Flagged>, Arc<AtomicBool>) {
    let released = Arc::new(AtomicBool::new(false));
    let l: &'static Lifecycle<Flagged> =
        Box::leak(Box::new(Lifecycle::new(Flagged(released.clone()))));
    l.startup(V).unwrap();
    (l, released)
}

// O4, O2: a token moved to another thread keeps the final cleanup from
// freeing anything until it is dropped there; the drain counts it exactly.
#[test]
fn o4_a_token_on_another_thread_holds_off_the_teardown() {
    let _watchdog = watchdog(120);
    let (l, released) = flagged();
    let token = l.token().unwrap();
    assert_eq!(token.generation(), 0);
    let holder = std::thread::spawn(move || {
        // The cancel step comes after the drain counted this token.
        token.wait_draining();
        std::thread::sleep(Duration::from_millis(50));
        assert!(!released.load(SeqCst), "nothing freed under a live token");
        drop(token);
    });
    let report = l.cleanup().unwrap().into_report().unwrap();
    holder.join().unwrap();
    assert_eq!(report.operations.waited_for, 1);
    assert_eq!(report.resources.len(), 1);
}

// O4, L6.1: the holder learns, cheaply, that the final cleanup began — at
// the cancel step, before the drain waits for it and before anything is
// freed.
#[test]
fn o4_is_draining_turns_true_at_the_cancel_step() {
    let _watchdog = watchdog(120);
    let (l, released) = flagged();
    let token = l.token().unwrap();
    assert!(!token.is_draining());
    let holder = std::thread::spawn(move || {
        while !token.is_draining() {
            std::thread::yield_now();
        }
        assert!(!released.load(SeqCst), "signalled before anything is freed");
    });
    let report = l.cleanup().unwrap().into_report().unwrap();
    holder.join().unwrap();
    // The flip comes before the drain counts guards: a holder that drops its
    // token as soon as it sees the flip may or may not be counted.
    assert!(report.operations.waited_for <= 1);
}

// O4: waiting for the signal, blocking or as a future under tokio, with the
// token held across `.await`.
#[test]
fn o4_waiting_for_the_signal_blocking_and_async() {
    let _watchdog = watchdog(120);
    let (l, _) = flagged();
    let blocking = {
        let token = l.token().unwrap();
        std::thread::spawn(move || {
            token.wait_draining();
            assert!(token.is_draining());
        })
    };
    let task = {
        let token = l.token().unwrap();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            rt.block_on(async move {
                token.draining().await; // the token lives across the await
                assert!(token.is_draining());
            });
        })
    };
    std::thread::sleep(Duration::from_millis(20));
    let report = l.cleanup().unwrap().into_report().unwrap();
    blocking.join().unwrap();
    task.join().unwrap();
    assert_eq!(report.operations.waited_for, 2);
    // After the cleanup: no token, and a new generation's token is fresh.
    assert_eq!(
        l.token().err(),
        Some(Error::NotInitialised(NotActive::Released))
    );
    l.startup(V).unwrap();
    let t = l.token().unwrap();
    assert_eq!(t.generation(), 1);
    assert!(!t.is_draining());
    drop(t);
    l.cleanup().unwrap();
}

// O1, O4: a token is refused unless Active, and many tokens dropped on
// another thread than the one that took them are counted exactly.
#[test]
fn o4_tokens_are_refused_unless_active_and_counted_exactly() {
    let _watchdog = watchdog(120);
    let l = Lifecycle::new(FakeProvider::default());
    assert_eq!(
        l.token().err(),
        Some(Error::NotInitialised(NotActive::NeverStarted))
    );
    l.startup(V).unwrap();
    let tokens: Vec<_> = (0..1000).map(|_| l.token().unwrap()).collect();
    std::thread::scope(|s| {
        s.spawn(move || drop(tokens));
    });
    let report = l.cleanup().unwrap().into_report().unwrap();
    assert_eq!(
        report.operations.waited_for, 0,
        "all dropped before the cleanup"
    );
    assert_eq!(
        l.token().err(),
        Some(Error::NotInitialised(NotActive::Released))
    );
}

// L9, L16: a thread holding a plain token that calls a `Wait` startup
// during the drain never waits silently forever: once the drain deadline
// has passed with operations still in flight (its own token among them),
// the startup gives up with InProgress (10036); the drain then finishes
// when the token goes.
#[test]
fn l9_a_wait_startup_behind_its_own_token_gives_up_at_the_drain_deadline() {
    let _watchdog = watchdog(120);
    let released = Arc::new(AtomicBool::new(false));
    let config = Config::new().with_drain_deadline(Duration::from_millis(100));
    let l: &'static Lifecycle<Flagged> = Box::leak(Box::new(Lifecycle::with_config(
        Flagged(released.clone()),
        config,
    )));
    l.startup(V).unwrap();
    let token = l.token().unwrap();
    let cleaner = std::thread::spawn(move || l.cleanup());
    token.wait_draining();
    assert_eq!(
        l.startup_with(V, StartupPolicy::Wait),
        Err(Error::InProgress),
        "not a silent hang behind its own token"
    );
    assert!(!released.load(SeqCst), "nothing freed under the live token");
    drop(token);
    let report = cleaner.join().unwrap().unwrap().into_report().unwrap();
    assert!(report.operations.overran_deadline);
    assert!(released.load(SeqCst));
    assert_eq!(l.state(), State::Released);
    // Past the drain, a Wait startup works as always.
    assert!(l.startup_with(V, StartupPolicy::Wait).unwrap().initialized);
    l.cleanup().unwrap();
}

/// A shared (`Arc`) lifecycle of [`Flagged`].
fn shared() -> (Arc<Lifecycle<Flagged>>, Arc<AtomicBool>) {
    let released = Arc::new(AtomicBool::new(false));
    let l = Arc::new(Lifecycle::new(Flagged(released.clone())));
    l.startup(V).unwrap();
    (l, released)
}

fn assert_owned<T: Send + Sync + Clone + 'static>(_: &T) {}

// O5: an owned token from an `Arc`ed lifecycle moves into `tokio::spawn`
// (it is `'static`); the final cleanup waits for the task and releases
// nothing while it runs.
#[test]
fn o5_an_owned_token_moves_into_a_spawned_task_and_is_waited_for() {
    let _watchdog = watchdog(60);
    let (l, released) = shared();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let token = l.owned_token().unwrap();
    assert_owned(&token);
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let task = {
        let released = released.clone();
        rt.spawn(token.track(async move {
            started_tx.send(()).unwrap();
            tokio::time::sleep(Duration::from_millis(30)).await;
            assert!(!released.load(SeqCst), "O2: released under a live token");
        }))
    };
    // The runtime runs on its own thread, as in a host.
    let driver = std::thread::spawn(move || rt.block_on(task).unwrap());
    started_rx.recv().unwrap();
    let r = l.cleanup().unwrap().into_report().unwrap();
    assert_eq!(r.operations.waited_for, 1);
    assert!(released.load(SeqCst));
    driver.join().unwrap();
}

// O5: every clone is counted; the drain waits for the last one, whichever
// thread drops it, and a clone taken during the drain is waited for too.
#[test]
fn o5_clones_are_counted_even_during_the_drain() {
    let _watchdog = watchdog(60);
    let (l, released) = shared();
    let token = l.owned_token().unwrap();
    assert!(!token.is_draining(), "Active: not cancelled");
    assert_eq!(token.generation(), 0);
    let first = token.clone();
    assert_eq!(first.generation(), token.generation());
    drop(token);
    let cleaner = {
        let l = l.clone();
        std::thread::spawn(move || l.cleanup().unwrap().into_report().unwrap())
    };
    first.wait_draining();
    assert!(first.is_draining());
    assert_eq!(
        l.owned_token().err(),
        Some(Error::NotInitialised(NotActive::Draining)),
        "O1"
    );
    // Cloned while the drain waits: it extends the counted operation.
    let second = first.clone();
    drop(first);
    std::thread::sleep(Duration::from_millis(20));
    assert!(!released.load(SeqCst), "O2: a clone is waited for");
    assert_eq!(l.state(), State::Draining);
    drop(second);
    let r = cleaner.join().unwrap();
    assert!(released.load(SeqCst));
    assert_eq!(r.operations.waited_for, 1);
    assert_eq!(l.state(), State::Released);
}

// O5, L11: inside a tracked future (or a scope), a cleanup answers
// InProgress instead of waiting for the token it runs under.
#[test]
fn o5_l11_scope_rules_hold_for_owned_tokens() {
    let _watchdog = watchdog(60);
    let (l, _) = shared();
    let token = l.owned_token().unwrap();
    assert_eq!(token.scope(|| l.cleanup().err()), Some(Error::InProgress));
    let inner = l.clone();
    let got = futures_lite_block_on(token.track(async move { inner.cleanup_async().await.err() }));
    assert_eq!(got, Some(Error::InProgress));
    assert_eq!(l.count(), 1, "the count is unchanged");
    assert!(l.cleanup().unwrap().is_final(), "the tracked token is gone");
}

/// A minimal executor for a future that never waits.
fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

// O5: a clone is counted in its own generation's lane, whatever the
// generation (here the second, whose guards count in lane 1).
#[test]
fn o5_clones_are_counted_in_a_later_generation_too() {
    let _watchdog = watchdog(60);
    let (l, released) = shared();
    assert!(l.cleanup().unwrap().is_final());
    l.startup(V).unwrap();
    assert_eq!(l.generation(), 1);
    let token = l.owned_token().unwrap();
    assert_eq!(token.generation(), 1);
    let clone = token.clone();
    drop(token);
    let cleaner = {
        let l = l.clone();
        std::thread::spawn(move || l.cleanup().unwrap().into_report().unwrap())
    };
    clone.wait_draining();
    std::thread::sleep(Duration::from_millis(20));
    assert!(!released.load(SeqCst), "O2: the clone is waited for");
    drop(clone);
    let r = cleaner.join().unwrap();
    assert_eq!(r.operations.waited_for, 1);
    assert!(released.load(SeqCst));
}
