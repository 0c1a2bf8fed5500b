//! Per-generation provider state (`Provider::State`) behind the guard, token
//! scopes for L11, and errors that keep their cause.
#![cfg(not(loom))]

mod support;

use std::error::Error as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;
use provider_lifecycle::*;
use support::watchdog;

const V: Version = Version::new(2, 2);

/// What happened, in order.
#[derive(Clone, Default)]
struct Journal(Arc<Mutex<Vec<String>>>);

impl Journal {
    fn push(&self, s: impl Into<String>) {
        self.0.lock().push(s.into());
    }
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock())
    }
}

/// The generation's state: a "connection pool" that records its drop.
struct Pool {
    generation: u64,
    serial: u64,
    journal: Journal,
    panic_on_drop: bool,
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.journal.push(format!("state {} dropped", self.serial));
        if self.panic_on_drop {
            panic!("pool drop exploded");
        }
    }
}

/// A socket that records its release.
struct Sock(Journal);

impl Socket for Sock {
    fn linger(&self) -> Linger {
        Linger::Abort
    }
    fn unsent(&self) -> u64 {
        0
    }
    fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }
    fn abort(&mut self) -> Result<(), BoxError> {
        Ok(())
    }
    fn release(&mut self) -> Result<(), BoxError> {
        self.0.push("socket released");
        Ok(())
    }
}

#[derive(Default)]
struct Pooled {
    journal: Journal,
    built: AtomicU64,
    fail: Mutex<Option<std::io::ErrorKind>>,
    panic_on_drop: std::sync::atomic::AtomicBool,
}

impl Provider for Pooled {
    type Socket = Sock;
    type State = Pool;
    fn versions(&self) -> VersionRange {
        VersionRange::new(V, V)
    }
    fn initialize(&self, init: &mut Registrar) -> Result<Pool, Error> {
        let j = self.journal.clone();
        init.register_fn("table", move || {
            j.push("resource released");
            Ok(())
        });
        if let Some(kind) = *self.fail.lock() {
            // `?` on an io::Error: SystemNotReady with the error as source.
            Err(std::io::Error::new(kind, "listener refused"))?;
        }
        let serial = self.built.fetch_add(1, SeqCst) + 1;
        Ok(Pool {
            generation: init.generation(),
            serial,
            journal: self.journal.clone(),
            panic_on_drop: self.panic_on_drop.load(SeqCst),
        })
    }
}

fn pooled() -> &'static Lifecycle<Pooled> {
    Box::leak(Box::new(Lifecycle::new(Pooled::default())))
}

// O1 by types: the state initialize built is reached through a guard or a
// token, one per generation, and each generation gets its own.
#[test]
fn o1_state_is_reached_through_guard_and_token_per_generation() {
    let _w = watchdog(30);
    let l = pooled();
    let first = l.startup(V).unwrap().generation;
    let guard = l.enter().unwrap();
    assert_eq!(guard.state().serial, 1);
    assert_eq!(guard.state().generation, first);
    drop(guard);
    let token = l.token().unwrap();
    let seen = std::thread::spawn(move || token.state().serial)
        .join()
        .unwrap();
    assert_eq!(seen, 1, "a token carries the state to another thread");
    l.startup(V).unwrap();
    l.cleanup().unwrap();
    assert_eq!(
        l.enter().unwrap().state().serial,
        1,
        "no new state without a new generation"
    );
    l.cleanup().unwrap();

    let second = l.startup(V).unwrap().generation;
    let g = l.enter().unwrap();
    assert_eq!((g.state().serial, g.state().generation), (2, second));
    drop(g);
    l.cleanup().unwrap();
}

// L6.4: the state is dropped after the sockets and before the resources,
// and only once no guard or token is left (O2).
#[test]
fn l6_4_state_dropped_after_sockets_before_resources() {
    let _w = watchdog(30);
    let l = pooled();
    l.startup(V).unwrap();
    l.register_socket(Sock(l.provider().journal.clone()))
        .unwrap();
    let token = l.token().unwrap();
    let holder = std::thread::spawn(move || {
        token.wait_draining();
        // The drain waits for this token: the state is still there.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let serial = token.state().serial;
        token.state().journal.push("token let go");
        serial
    });
    let report = l.cleanup().unwrap().into_report().unwrap();
    assert_eq!(holder.join().unwrap(), 1);
    assert_eq!(
        l.provider().journal.take(),
        [
            "token let go",
            "socket released",
            "state 1 dropped",
            "resource released"
        ]
    );
    assert!(report.state.is_ok());
    assert!(report.is_clean(), "{report}");
}

// L2: a failed initialize stores no state, releases what it registered, and
// its error keeps the io::Error as its source.
#[test]
fn l2_failed_initialize_keeps_its_cause_and_stores_no_state() {
    let _w = watchdog(30);
    let l = pooled();
    *l.provider().fail.lock() = Some(std::io::ErrorKind::AddrInUse);
    let err = l.startup(V).unwrap_err();
    assert_eq!(err.wsa_code(), 10091);
    let io = err
        .source()
        .and_then(|s| s.downcast_ref::<std::io::Error>());
    assert_eq!(io.map(|e| e.kind()), Some(std::io::ErrorKind::AddrInUse));
    assert_eq!(l.provider().journal.take(), ["resource released"]);
    assert_eq!(l.state(), State::Uninitialized);

    *l.provider().fail.lock() = None;
    l.startup(V).unwrap();
    assert_eq!(l.enter().unwrap().state().serial, 1);
    l.cleanup().unwrap();
}

// L14: a panic in the state's Drop is reported, and the teardown still
// reaches Released and can restart.
#[test]
fn l14_state_drop_panic_is_reported_and_released() {
    let _w = watchdog(30);
    let l = pooled();
    l.provider().panic_on_drop.store(true, SeqCst);
    l.startup(V).unwrap();
    let report = l.cleanup().unwrap().into_report().unwrap();
    assert!(matches!(&report.state, HookOutcome::Panicked(m) if m.contains("pool drop exploded")));
    assert!(!report.is_clean());
    assert!(report.to_string().contains("provider state"), "{report}");
    assert_eq!(
        l.provider().journal.take(),
        ["state 1 dropped", "resource released"],
        "the resources are still released"
    );
    assert_eq!(l.state(), State::Released);
    l.provider().panic_on_drop.store(false, SeqCst);
    l.startup(V).unwrap();
    l.cleanup().unwrap();
}

// L12: a lifecycle dropped while Active drops the state before releasing
// the resources, as a final cleanup would.
#[test]
fn l12_drop_while_active_drops_state_then_resources() {
    let _w = watchdog(30);
    let journal = Journal::default();
    let l = Lifecycle::new(Pooled {
        journal: journal.clone(),
        ..Pooled::default()
    });
    l.startup(V).unwrap();
    drop(l);
    assert_eq!(journal.take(), ["state 1 dropped", "resource released"]);
}

// L11 for tokens: a final cleanup issued inside a token's scope answers
// InProgress instead of waiting for the token; the count is kept.
#[test]
fn l11_final_cleanup_inside_token_scope_is_in_progress() {
    let _w = watchdog(30);
    let l = pooled();
    l.startup(V).unwrap();
    let token = l.token().unwrap();
    let pool = std::thread::spawn(move || {
        let answer = token.scope(|| l.cleanup());
        (answer, token.is_draining())
    });
    let (answer, cancelled) = pool.join().unwrap();
    assert_eq!(answer.unwrap_err(), Error::InProgress);
    assert!(!cancelled, "nothing began");
    assert_eq!(l.snapshot().count, 1, "the refused cleanup is not counted");
    assert!(matches!(l.cleanup().unwrap(), Cleanup::Final(_)));

    // A non-final cleanup inside the scope only decrements.
    l.startup(V).unwrap();
    l.startup(V).unwrap();
    let token = l.token().unwrap();
    assert!(matches!(
        token.scope(|| l.cleanup()).unwrap(),
        Cleanup::Decremented { remaining: 1 }
    ));
    drop(token);
    l.cleanup().unwrap();
}

// L11 for tokens, async: a tracked future that awaits the final cleanup gets
// InProgress instead of waiting for itself; untracked, it is waited for.
#[test]
fn l11_cleanup_async_inside_tracked_future_is_in_progress() {
    let _w = watchdog(30);
    let l = pooled();
    l.startup(V).unwrap();
    let task = l.token().unwrap().track(async move {
        let first = l.cleanup_async().await;
        // The scope covers every poll, not only the first.
        std::future::poll_fn(|cx| {
            cx.waker().wake_by_ref();
            Poll::Ready(())
        })
        .await;
        (first, l.cleanup_async().await)
    });
    let (first, second) = block_on(task);
    assert_eq!(first.unwrap_err(), Error::InProgress);
    assert_eq!(second.unwrap_err(), Error::InProgress);
    assert_eq!(l.snapshot().count, 1);
    // The scope ended with the future; the token went with it.
    assert!(matches!(
        block_on(l.cleanup_async()).unwrap(),
        Cleanup::Final(_)
    ));
    assert_eq!(l.state(), State::Released);
}

// O4: a scope ended by a panic unmarks the thread.
#[test]
fn l11_scope_unwinding_unmarks_the_thread() {
    let _w = watchdog(30);
    let l = pooled();
    l.startup(V).unwrap();
    let token = l.token().unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        token.scope(|| panic!("work failed"));
    }));
    assert!(r.is_err());
    drop(token);
    assert!(matches!(l.cleanup().unwrap(), Cleanup::Final(_)));
}

/// A minimal executor for one future (the crate is runtime-agnostic).
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}
