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
        token.wait_cancelled();
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
fn o4_is_cancelled_turns_true_at_the_cancel_step() {
    let _watchdog = watchdog(120);
    let (l, released) = flagged();
    let token = l.token().unwrap();
    assert!(!token.is_cancelled());
    let holder = std::thread::spawn(move || {
        while !token.is_cancelled() {
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
            token.wait_cancelled();
            assert!(token.is_cancelled());
        })
    };
    let task = {
        let token = l.token().unwrap();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            rt.block_on(async move {
                token.cancelled().await; // the token lives across the await
                assert!(token.is_cancelled());
            });
        })
    };
    std::thread::sleep(Duration::from_millis(20));
    let report = l.cleanup().unwrap().into_report().unwrap();
    blocking.join().unwrap();
    task.join().unwrap();
    assert_eq!(report.operations.waited_for, 2);
    // After the cleanup: no token, and a new generation's token is fresh.
    assert_eq!(l.token().err(), Some(Error::NotInitialised));
    l.startup(V).unwrap();
    let t = l.token().unwrap();
    assert_eq!(t.generation(), 1);
    assert!(!t.is_cancelled());
    drop(t);
    l.cleanup().unwrap();
}

// O1, O4: a token is refused unless Active, and many tokens dropped on
// another thread than the one that took them are counted exactly.
#[test]
fn o4_tokens_are_refused_unless_active_and_counted_exactly() {
    let _watchdog = watchdog(120);
    let l = Lifecycle::new(FakeProvider::default());
    assert_eq!(l.token().err(), Some(Error::NotInitialised));
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
    assert_eq!(l.token().err(), Some(Error::NotInitialised));
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
    token.wait_cancelled();
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
