//! loom models of the lifecycle's races. Run with
//! `RUSTFLAGS="--cfg loom" cargo test --release --target-dir target-loom --test loom`
//! (CI bounds the search with `LOOM_MAX_PREEMPTIONS=3`).
//!
//! The crate's atomics, mutex, condvar and thread-locals are loom's under
//! `cfg(loom)` (see `src/sync.rs`), so these explore the real code. The fakes'
//! own counters are plain std atomics: they are only read after every thread
//! has joined.
#![cfg(loom)]

use std::sync::Arc as StdArc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};

use loom::sync::Arc;
use loom::thread;
use provider_lifecycle::*;

#[derive(Default, Debug)]
struct Counts {
    inits: AtomicUsize,
    teardowns: AtomicUsize,
    releases: AtomicUsize,
    /// Set when the generation's resource is released; read under guards.
    released: AtomicBool,
    sock_releases: AtomicUsize,
    sock_aborts: AtomicUsize,
}

#[derive(Debug)]
struct Model(StdArc<Counts>);

impl Provider for Model {
    type Socket = Sock;
    fn versions(&self) -> VersionRange {
        VersionRange::new(Version::new(2, 2), Version::new(2, 2))
    }
    fn initialize(&self, init: &mut Registrar) -> Result<(), Error> {
        self.0.inits.fetch_add(1, SeqCst);
        self.0.released.store(false, SeqCst);
        let c = self.0.clone();
        init.register_fn("res", move || {
            c.releases.fetch_add(1, SeqCst);
            c.released.store(true, SeqCst);
            Ok(())
        });
        Ok(())
    }
    fn prepare_unload(&self) -> Result<(), BoxError> {
        self.0.teardowns.fetch_add(1, SeqCst);
        Ok(())
    }
}

#[derive(Debug)]
struct Sock(StdArc<Counts>);

impl Socket for Sock {
    fn unsent(&self) -> u64 {
        0
    }
    fn poll_flush(&mut self) -> Result<FlushStatus, BoxError> {
        Ok(FlushStatus::Done)
    }
    fn abort(&mut self) -> Result<(), BoxError> {
        self.0.sock_aborts.fetch_add(1, SeqCst);
        Ok(())
    }
    fn release(&mut self) -> Result<(), BoxError> {
        self.0.sock_releases.fetch_add(1, SeqCst);
        Ok(())
    }
}

fn new(config: Config) -> (Arc<Lifecycle<Model>>, StdArc<Counts>) {
    let counts = StdArc::new(Counts::default());
    (
        Arc::new(Lifecycle::with_config(Model(counts.clone()), config)),
        counts,
    )
}

const V: Version = Version::new(2, 2);

#[test]
fn racing_first_startups_initialize_exactly_once() {
    loom::model(|| {
        let (l, c) = new(Config::new());
        let l2 = l.clone();
        let t = thread::spawn(move || l2.startup(V).unwrap().initialized);
        let mine = l.startup(V).unwrap().initialized;
        let theirs = t.join().unwrap();
        assert!(mine ^ theirs, "exactly one startup initializes");
        assert_eq!(c.inits.load(SeqCst), 1);
        assert_eq!(l.count(), 2);
    });
}

#[test]
fn racing_cleanups_at_two_tear_down_exactly_once() {
    loom::model(|| {
        let (l, c) = new(Config::new());
        l.startup(V).unwrap();
        l.startup(V).unwrap();
        let l2 = l.clone();
        let t = thread::spawn(move || l2.cleanup().unwrap().is_final());
        let mine = l.cleanup().unwrap().is_final();
        let theirs = t.join().unwrap();
        assert!(mine ^ theirs, "exactly one cleanup is final");
        assert_eq!(c.teardowns.load(SeqCst), 1);
        assert_eq!(c.releases.load(SeqCst), 1);
        assert_eq!(l.state(), State::Released);
        assert_eq!(l.cleanup(), Err(Error::NotInitialised));
    });
}

#[test]
fn wait_startup_racing_the_final_cleanup_is_woken_into_a_fresh_generation() {
    loom::model(|| {
        let (l, c) = new(Config::new());
        l.startup(V).unwrap();
        let l2 = l.clone();
        let t = thread::spawn(move || l2.startup(V).unwrap());
        let cleaned = l.cleanup().unwrap();
        // A lost wakeup would leave `t` asleep: loom reports the deadlock.
        let s = t.join().unwrap();
        if cleaned.is_final() {
            // The startup came after the flip: it waited, then started gen 1.
            assert!(s.initialized);
            assert_eq!(s.generation, 1);
            assert_eq!(c.inits.load(SeqCst), 2);
            assert_eq!(c.teardowns.load(SeqCst), 1);
        } else {
            // It came first: the cleanup only decremented.
            assert!(!s.initialized);
            assert_eq!(s.generation, 0);
            assert_eq!(c.inits.load(SeqCst), 1);
            assert_eq!(c.teardowns.load(SeqCst), 0);
        }
        assert_eq!(l.state(), State::Active);
        assert_eq!(l.count(), 1);
    });
}

#[test]
fn fail_fast_during_draining_is_in_progress() {
    loom::model(|| {
        let (l, c) = new(Config::new());
        l.startup(V).unwrap();
        let l2 = l.clone();
        let t = thread::spawn(move || l2.startup_with(V, StartupPolicy::FailFast));
        let cleaned = l.cleanup().unwrap();
        match t.join().unwrap() {
            Err(e) => {
                assert_eq!(e, Error::InProgress);
                assert!(cleaned.is_final());
                assert_eq!(l.state(), State::Released);
            }
            Ok(s) if s.initialized => {
                // After Released: a fresh generation.
                assert_eq!(s.generation, 1);
                assert_eq!(c.teardowns.load(SeqCst), 1);
            }
            Ok(s) => {
                assert_eq!(s.generation, 0);
                assert!(!cleaned.is_final());
            }
        }
    });
}

#[test]
fn try_startup_never_waits() {
    loom::model(|| {
        let (l, _c) = new(Config::new());
        let l2 = l.clone();
        let t = thread::spawn(move || l2.try_startup(V));
        let a = l.try_startup(V);
        let b = t.join().unwrap();
        // Both may succeed (one initializes, one joins) or one sees the other
        // initializing and fails fast; never both fail, never a wait.
        let ok = [&a, &b].iter().filter(|r| r.is_ok()).count();
        assert!(ok >= 1);
        for r in [a, b] {
            if let Err(e) = r {
                assert_eq!(e, Error::InProgress);
            }
        }
        assert_eq!(l.count() as usize, ok);
    });
}

#[test]
fn fast_path_startup_never_revives_a_generation_being_torn_down() {
    loom::model(|| {
        let (l, c) = new(Config::new());
        l.startup(V).unwrap();
        let l2 = l.clone();
        let t = thread::spawn(move || l2.startup_with(V, StartupPolicy::FailFast));
        let cleaned = l.cleanup().unwrap();
        let r = t.join().unwrap();
        if let Ok(s) = r {
            if s.generation == 0 {
                // Joined generation 0: then it must still be alive.
                assert!(!cleaned.is_final());
                assert_eq!(c.teardowns.load(SeqCst), 0);
                assert_eq!(c.releases.load(SeqCst), 0);
            } else {
                assert!(s.initialized, "a later generation starts fresh");
            }
        }
        assert!(c.teardowns.load(SeqCst) <= 1);
    });
}

#[test]
fn register_socket_racing_the_final_cleanup_is_drained_or_refused() {
    loom::model(|| {
        let (l, c) = new(Config::new());
        l.startup(V).unwrap();
        let l2 = l.clone();
        let c2 = c.clone();
        let t = thread::spawn(move || l2.register_socket(Sock(c2)));
        let report = l.cleanup().unwrap();
        let r = t.join().unwrap();
        // Either way the socket is released exactly once: never leaked.
        assert_eq!(c.sock_releases.load(SeqCst), 1);
        let report = report.report().unwrap();
        match r {
            Ok(h) => {
                let line = report.socket(h).expect("registered sockets are drained");
                assert_eq!(line.outcome, SocketOutcome::Reset);
            }
            Err(e) => {
                assert_eq!(e, Error::NotInitialised);
                assert!(report.sockets.is_empty());
            }
        }
    });
}

#[test]
fn guard_racing_the_final_cleanup_never_overlaps_teardown() {
    loom::model(|| {
        let (l, c) = new(Config::new());
        l.startup(V).unwrap();
        let l2 = l.clone();
        let c2 = c.clone();
        let t = thread::spawn(move || match l2.enter() {
            Ok(g) => {
                assert!(!c2.released.load(SeqCst), "released under a live guard");
                drop(g);
                true
            }
            Err(e) => {
                assert_eq!(e, Error::NotInitialised);
                false
            }
        });
        let report = l.cleanup().unwrap();
        let entered = t.join().unwrap();
        assert_eq!(c.releases.load(SeqCst), 1);
        let waited = report.report().unwrap().operations.waited_for;
        // A guard taken before the flip is always waited for; an enter that
        // races the closing may be counted for the instant before it fails.
        assert!(waited <= 1);
        let _ = entered;
    });
}

#[test]
fn enters_on_two_shards_racing_the_draining_flip() {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(2);
    b.check(|| {
        let (l, c) = new(Config::new());
        l.startup(V).unwrap();
        let spawn = |l: Arc<Lifecycle<Model>>, c: StdArc<Counts>| {
            thread::spawn(move || {
                if let Ok(g) = l.enter() {
                    assert!(!c.released.load(SeqCst), "released under a live guard");
                    drop(g);
                }
            })
        };
        let t1 = spawn(l.clone(), c.clone());
        let t2 = spawn(l.clone(), c.clone());
        l.cleanup().unwrap();
        t1.join().unwrap();
        t2.join().unwrap();
        assert_eq!(c.releases.load(SeqCst), 1);
    });
}

#[test]
fn the_drainer_is_woken_when_the_last_guard_leaves() {
    loom::model(|| {
        let (l, c) = new(Config::new());
        l.startup(V).unwrap();
        let g_l = l.clone();
        // The guard is taken before the cleanup starts, and dropped while the
        // cleanup may be waiting: a lost wakeup deadlocks the model.
        let guard = g_l.enter().unwrap();
        let l2 = l.clone();
        let t = thread::spawn(move || l2.cleanup().unwrap());
        drop(guard);
        let report = t.join().unwrap();
        assert!(report.report().unwrap().operations.waited_for <= 1);
        assert_eq!(c.teardowns.load(SeqCst), 1);
    });
}

#[test]
fn l11_final_cleanup_inside_a_guard_is_in_progress() {
    loom::model(|| {
        let (l, c) = new(Config::new());
        l.startup(V).unwrap();
        {
            let _g = l.enter().unwrap();
            assert_eq!(l.cleanup(), Err(Error::InProgress));
            assert_eq!(l.count(), 1);
        }
        assert!(l.cleanup().unwrap().is_final());
        assert_eq!(c.teardowns.load(SeqCst), 1);
    });
}

#[test]
fn cleanup_guard_socket_and_startup_all_racing() {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(2);
    b.check(|| {
        let (l, c) = new(Config::new());
        l.startup(V).unwrap();
        let (l1, c1) = (l.clone(), c.clone());
        let worker = thread::spawn(move || {
            let Ok(g) = l1.enter() else { return None };
            assert!(!c1.released.load(SeqCst), "released under a live guard");
            let h = l1.register_socket(Sock(c1.clone()));
            drop(g);
            h.ok()
        });
        let l2 = l.clone();
        let starter = thread::spawn(move || l2.startup(V).unwrap());
        let cleaned = l.cleanup().unwrap();
        let handle = worker.join().unwrap();
        let s = starter.join().unwrap();
        // Exactly one teardown if the cleanup was final, none otherwise;
        // the waiting startup always ends Active.
        assert_eq!(c.teardowns.load(SeqCst), usize::from(cleaned.is_final()));
        assert_eq!(c.inits.load(SeqCst), 1 + usize::from(s.initialized));
        assert_eq!(l.state(), State::Active);
        assert_eq!(l.count(), 1);
        if let (Some(h), Some(r)) = (handle, cleaned.report()) {
            if h.generation() == Some(r.generation) {
                assert!(
                    r.socket(h).is_some(),
                    "a socket of the torn-down generation is drained"
                );
            }
        }
        l.cleanup().unwrap();
        // Every registered socket was released exactly once by now.
        assert!(c.sock_releases.load(SeqCst) <= 1);
    });
}
