//! loom models of the lifecycle's races. Run with
//! `RUSTFLAGS="--cfg loom" cargo test --release --target-dir target-loom --test loom`
//! (CI bounds the search with `LOOM_MAX_PREEMPTIONS=3`).
//!
//! The crate's atomics, mutex, condvar, thread-locals and id counters are
//! loom's under `cfg(loom)` (see `src/sync.rs`), so these explore the real
//! code. The fakes' own counters are plain std atomics: they are only read
//! after every thread has joined, or under a guard (where the model checks
//! the crate's ordering, not theirs).
//!
//! Every model starts with [`run_model`]: a fresh lifecycle, started
//! `starts` times. Each model has a default preemption bound: none for the
//! two-thread models (loom's `LOOM_MAX_PREEMPTIONS` applies: CI sets 3),
//! 2 for models with three threads or a restart inside a thread (their
//! unbounded state space takes minutes; loom's own guidance: most bugs need
//! at most two preemptions). `LOOM_BOUND` overrides every model's bound:
//! `LOOM_BOUND=4` searches every model deeper, `LOOM_BOUND=none` removes
//! the bound (some models then run for many minutes).
#![cfg(loom)]

use std::sync::Arc as StdArc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::task::{Context, Poll, Waker};

use loom::sync::Arc;
use loom::thread;
use provider_lifecycle::*;

#[derive(Default, Debug)]
struct Counts {
    inits: AtomicUsize,
    /// Initializations still to fail (L2 races).
    fail_inits: AtomicUsize,
    teardowns: AtomicUsize,
    releases: AtomicUsize,
    /// Set when the generation's resource is released; read under guards.
    released: AtomicBool,
    sock_releases: AtomicUsize,
    sock_aborts: AtomicUsize,
    /// Bytes sockets really delivered through `poll_flush`.
    flushed: AtomicU64,
    /// Set when generation 0's resource is released (L16: the abandoned
    /// one must not be while its guard lives).
    released_first: AtomicBool,
}

#[derive(Debug)]
struct Model(StdArc<Counts>);

impl Provider for Model {
    type Socket = Sock;
    /// The generation `initialize` built it for: a guard must see its own.
    type State = u64;
    fn versions(&self) -> VersionRange {
        VersionRange::new(Version::new(2, 2), Version::new(2, 2))
    }
    fn initialize(&self, init: &mut Registrar) -> Result<u64, Error> {
        self.0.inits.fetch_add(1, SeqCst);
        if self
            .0
            .fail_inits
            .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(Error::system_not_ready("planned"));
        }
        self.0.released.store(false, SeqCst);
        let c = self.0.clone();
        let first = init.generation() == 0;
        init.register_fn("res", move || {
            c.releases.fetch_add(1, SeqCst);
            c.released.store(true, SeqCst);
            c.released_first.fetch_or(first, SeqCst);
            Ok(())
        });
        Ok(init.generation())
    }
    fn prepare_unload(&self) -> Result<(), BoxError> {
        self.0.teardowns.fetch_add(1, SeqCst);
        Ok(())
    }
}

/// A socket with `left` bytes queued, delivering one per `poll_flush` and
/// asking to be polled again at once (`wake_by_ref`) while some are left.
#[derive(Debug)]
struct Sock {
    c: StdArc<Counts>,
    id: u32,
    left: u64,
    linger: Linger,
}

impl Sock {
    fn idle(c: &StdArc<Counts>) -> Sock {
        Sock::new(c, 0, 0, Linger::Background)
    }
    fn new(c: &StdArc<Counts>, id: u32, left: u64, linger: Linger) -> Sock {
        Sock {
            c: c.clone(),
            id,
            left,
            linger,
        }
    }
}

impl Socket for Sock {
    fn linger(&self) -> Linger {
        self.linger
    }
    fn unsent(&self) -> u64 {
        self.left
    }
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        if self.left > 0 {
            self.left -= 1;
            self.c.flushed.fetch_add(1, SeqCst);
        }
        if self.left == 0 {
            Poll::Ready(Ok(()))
        } else {
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
    fn abort(&mut self) -> Result<(), BoxError> {
        self.c.sock_aborts.fetch_add(1, SeqCst);
        Ok(())
    }
    fn release(&mut self) -> Result<(), BoxError> {
        self.c.sock_releases.fetch_add(1, SeqCst);
        Ok(())
    }
}

type L = Arc<Lifecycle<Model>>;

const V: Version = Version::new(2, 2);

/// A loom builder with the model's default bound (`Some(n)`; `None`: loom's
/// own, from `LOOM_MAX_PREEMPTIONS`), unless `LOOM_BOUND` overrides it.
fn builder(default: Option<usize>) -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    match std::env::var("LOOM_BOUND").as_deref() {
        Ok("none") => b.preemption_bound = None,
        Ok(n) => b.preemption_bound = Some(n.parse().expect("LOOM_BOUND: a number or none")),
        Err(_) if default.is_some() => b.preemption_bound = default,
        Err(_) => {}
    }
    b
}

/// The one prologue: runs `f` under loom (bounded to `bound` preemptions if
/// given) with a fresh lifecycle of `config`, started `starts` times.
fn run_model_with<F>(bound: Option<usize>, config: Config, starts: u32, f: F)
where
    F: Fn(L, StdArc<Counts>) + Sync + Send + 'static,
{
    let b = builder(bound);
    b.check(move || {
        let c = StdArc::new(Counts::default());
        let l = Arc::new(Lifecycle::with_config(Model(c.clone()), config));
        for _ in 0..starts {
            l.startup(V).unwrap();
        }
        f(l, c);
    });
}

/// [`run_model_with`] with background closes driven by hand
/// (`BackgroundFlush::Manual`): the models that are not about the flusher
/// thread do not pay for its interleavings.
fn run_model<F>(bound: Option<usize>, starts: u32, f: F)
where
    F: Fn(L, StdArc<Counts>) + Sync + Send + 'static,
{
    let manual = Config::new().with_background_flush(BackgroundFlush::Manual);
    run_model_with(bound, manual, starts, f);
}

/// Spawns `f` with clones of the lifecycle and the counts.
fn spawn<T: Send + 'static>(
    l: &L,
    c: &StdArc<Counts>,
    f: impl FnOnce(L, StdArc<Counts>) -> T + Send + 'static,
) -> thread::JoinHandle<T> {
    let (l, c) = (l.clone(), c.clone());
    thread::spawn(move || f(l, c))
}

/// A guard that checks O2 while it lives: nothing of its generation
/// released, and the state it reaches is its own generation's.
fn guarded_check(l: &L, c: &Counts) -> bool {
    match l.enter() {
        Ok(g) => {
            assert!(!c.released.load(SeqCst), "released under a live guard");
            assert_eq!(*g.state(), l.generation(), "another generation's state");
            drop(g);
            true
        }
        Err(e) => {
            assert!(
                matches!(
                    e,
                    Error::NotInitialised(NotActive::Draining | NotActive::Released)
                ),
                "{e:?}"
            );
            false
        }
    }
}

/// Whether the socket behind `h` ended flushed: with a line, or counted in
/// `closed_clean` when it had nothing left to send by then (D1).
fn flushed_or_counted(report: &DrainReport, h: SocketHandle) -> bool {
    match report.socket(h) {
        Some(line) => line.outcome == SocketOutcome::Flushed,
        None => report.closed_clean == 1,
    }
}

/// Sums a report's bytes for one socket.
fn accounted(report: &DrainReport, h: SocketHandle) -> (u64, u64) {
    report
        .socket(h)
        .map_or((0, 0), |s| (s.bytes_flushed, s.bytes_discarded))
}

// ----------------------------------------------------------------------
// startup and cleanup
// ----------------------------------------------------------------------

#[test]
fn l1_racing_first_startups_initialize_exactly_once() {
    run_model(None, 0, |l, c| {
        let t = spawn(&l, &c, |l, _| l.startup(V).unwrap().initialized);
        let mine = l.startup(V).unwrap().initialized;
        let theirs = t.join().unwrap();
        assert!(mine ^ theirs, "exactly one startup initializes");
        assert_eq!(c.inits.load(SeqCst), 1);
        assert_eq!(l.count(), 2);
    });
}

#[test]
fn l1_racing_cleanups_at_two_tear_down_exactly_once() {
    run_model(None, 2, |l, c| {
        let t = spawn(&l, &c, |l, _| l.cleanup().unwrap().is_final());
        let mine = l.cleanup().unwrap().is_final();
        let theirs = t.join().unwrap();
        assert!(mine ^ theirs, "exactly one cleanup is final");
        assert_eq!(c.teardowns.load(SeqCst), 1);
        assert_eq!(c.releases.load(SeqCst), 1);
        assert_eq!(l.state(), State::Released);
        assert_eq!(l.cleanup(), Err(Error::NotInitialised(NotActive::Unpaired)));
    });
}

#[test]
fn l9_wait_startup_racing_the_final_cleanup_is_woken_into_a_fresh_generation() {
    run_model(None, 1, |l, c| {
        let t = spawn(&l, &c, |l, _| l.startup(V).unwrap());
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
fn l9_two_wait_startups_racing_the_drain_both_end_active() {
    run_model(Some(2), 1, |l, c| {
        let a = spawn(&l, &c, |l, _| l.startup(V).unwrap());
        let b = spawn(&l, &c, |l, _| l.startup(V).unwrap());
        let cleaned = l.cleanup().unwrap();
        let (a, b) = (a.join().unwrap(), b.join().unwrap());
        assert_eq!(l.count(), 2);
        assert_eq!(l.state(), State::Active);
        assert_eq!(c.teardowns.load(SeqCst), usize::from(cleaned.is_final()));
        // At most one of them initializes the fresh generation.
        assert!(!(a.initialized && b.initialized));
        assert_eq!(
            c.inits.load(SeqCst),
            1 + usize::from(a.initialized) + usize::from(b.initialized)
        );
    });
}

#[test]
fn l9_fail_fast_during_draining_is_in_progress() {
    run_model(None, 1, |l, c| {
        let t = spawn(&l, &c, |l, _| l.startup_with(V, StartupPolicy::FailFast));
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
fn l9_no_wait_startup_never_waits() {
    run_model(None, 0, |l, c| {
        let t = spawn(&l, &c, |l, _| l.startup_with(V, StartupPolicy::NoWait));
        let a = l.startup_with(V, StartupPolicy::NoWait);
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
fn l2_failing_initialization_racing_a_waiting_startup() {
    run_model(None, 0, |l, c| {
        c.fail_inits.store(1, SeqCst);
        let t = spawn(&l, &c, |l, _| l.startup(V));
        let mine = l.startup(V);
        let theirs = t.join().unwrap();
        // Exactly one initialization fails (the planned one), is not counted,
        // and the other startup then initializes (or joins) a working one.
        let failed = [&mine, &theirs].iter().filter(|r| r.is_err()).count();
        assert_eq!(failed, 1);
        for r in [&mine, &theirs] {
            if let Err(e) = r {
                assert_eq!(e.wsa_code(), 10091);
            }
        }
        assert_eq!(c.inits.load(SeqCst), 2);
        assert_eq!(l.count(), 1);
        assert_eq!(l.state(), State::Active);
    });
}

#[test]
fn l6_fast_path_startup_never_revives_a_generation_being_torn_down() {
    run_model(None, 1, |l, c| {
        let t = spawn(&l, &c, |l, _| l.startup_with(V, StartupPolicy::FailFast));
        let cleaned = l.cleanup().unwrap();
        if let Ok(s) = t.join().unwrap() {
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
fn l1_startups_and_cleanups_racing_a_restart_balance() {
    // Thread A runs two startup/cleanup pairs while main ends generation 0
    // and starts and ends another: every final cleanup tears down once, and
    // the count ends at exactly 0 (no transient lost or doubled).
    run_model(Some(2), 1, |l, c| {
        let a = spawn(&l, &c, |l, _| {
            for _ in 0..2 {
                let s = l.startup(V).unwrap();
                // Four cleanups in all may be final: generations 0 to 3.
                assert!(s.generation <= 3);
                assert!(s.initialized || l.generation() == s.generation);
                l.cleanup().unwrap();
            }
        });
        l.cleanup().unwrap();
        l.startup(V).unwrap();
        l.cleanup().unwrap();
        a.join().unwrap();
        assert_eq!(l.count(), 0);
        assert_eq!(l.state(), State::Released);
        assert_eq!(c.inits.load(SeqCst), c.teardowns.load(SeqCst));
        assert_eq!(c.releases.load(SeqCst), c.teardowns.load(SeqCst));
        // The word holds no leftover transient: a restart counts from 1.
        l.startup(V).unwrap();
        assert_eq!(l.count(), 1);
    });
}

// Checked add, rule 2: a startup refused at the limit (limit 1) racing the
// last cleanup either takes the freed unit (the cleanup was then a plain
// decrement) or is refused; its transient unit is never lost or kept twice.
#[test]
fn l10_startup_at_the_limit_racing_the_last_cleanup() {
    let one = Config::new()
        .with_background_flush(BackgroundFlush::Manual)
        .with_count_limit(1)
        .with_startup_policy(StartupPolicy::FailFast);
    run_model_with(None, one, 1, |l, c| {
        let t = spawn(&l, &c, |l, _| l.startup(V));
        let cleaned = l.cleanup().unwrap();
        match t.join().unwrap() {
            Ok(s) if !s.initialized => {
                // Took the unit before the flip: generation 0 lives on.
                assert!(!cleaned.is_final());
                assert_eq!(s.generation, 0);
                assert_eq!((l.state(), l.count()), (State::Active, 1));
                assert!(l.cleanup().unwrap().is_final());
            }
            Ok(s) => {
                // After the teardown: a fresh generation.
                assert!(cleaned.is_final());
                assert_eq!(s.generation, 1);
                assert!(l.cleanup().unwrap().is_final());
            }
            Err(e) => {
                assert!(
                    matches!(e, Error::ProcessLimit | Error::InProgress),
                    "{e:?}"
                );
                assert!(cleaned.is_final());
            }
        }
        assert_eq!((l.state(), l.count()), (State::Released, 0));
        assert_eq!(c.inits.load(SeqCst), c.teardowns.load(SeqCst));
        l.startup(V).unwrap();
        assert_eq!(l.count(), 1, "no transient left in the word");
    });
}

// Checked add, rule 4: an unpaired cleanup racing the final cleanup takes
// nothing that is not there: one of them is final, the other answers
// NotInitialised, and the count never goes below 0 for good.
#[test]
fn l4_unpaired_cleanup_racing_the_final_cleanup() {
    run_model(None, 1, |l, c| {
        let t = spawn(&l, &c, |l, _| l.cleanup());
        let mine = l.cleanup();
        let theirs = t.join().unwrap();
        let finals = [&mine, &theirs]
            .iter()
            .filter(|r| r.as_ref().is_ok_and(Cleanup::is_final))
            .count();
        assert_eq!(finals, 1, "{mine:?} {theirs:?}");
        assert!(
            [&mine, &theirs].iter().any(|r| matches!(
                r,
                Err(Error::NotInitialised(
                    NotActive::Draining | NotActive::Unpaired
                ))
            )),
            "{mine:?} {theirs:?}"
        );
        assert_eq!(c.teardowns.load(SeqCst), 1);
        assert_eq!((l.state(), l.count()), (State::Released, 0));
        assert_eq!(l.startup(V).unwrap().generation, 1);
        assert_eq!(l.count(), 1, "no transient left in the word");
    });
}

// Checked add, rules 1 and 3: a startup that never waits, racing the final
// cleanup and the restart after it, lands in exactly one generation or is
// refused; its undo survives the Draining → Released → Active transitions.
#[test]
fn l9_no_wait_startup_undo_racing_a_restart() {
    run_model(Some(2), 1, |l, c| {
        let t = spawn(&l, &c, |l, _| l.startup_with(V, StartupPolicy::NoWait));
        l.cleanup().unwrap();
        let s = l.startup(V).unwrap();
        let joined = t.join().unwrap();
        // main holds one unit of the current generation; the racer maybe one.
        let expected = 1 + u32::from(joined.is_ok());
        assert_eq!(l.count(), expected, "{joined:?} {s:?}");
        for _ in 0..expected {
            l.cleanup().unwrap();
        }
        assert_eq!((l.state(), l.count()), (State::Released, 0));
        assert_eq!(c.inits.load(SeqCst), c.teardowns.load(SeqCst));
    });
}

// Checked add and L11: a final cleanup from inside a guard racing a
// startup/cleanup pair on another thread either puts its unit back
// (InProgress) or, if that pair ended the generation meanwhile, stands as a
// plain decrement; either way exactly one teardown per generation.
#[test]
fn l11_restore_racing_a_startup_cleanup_pair() {
    run_model(None, 1, |l, c| {
        let t = spawn(&l, &c, |l, _| {
            if l.startup_with(V, StartupPolicy::FailFast).is_ok() {
                l.cleanup().unwrap();
            }
        });
        let answer = {
            let _g = l.enter().unwrap();
            l.cleanup()
        };
        t.join().unwrap();
        match answer {
            Err(Error::InProgress) => {
                assert!(l.cleanup().unwrap().is_final());
            }
            Ok(Cleanup::Decremented { .. }) => {}
            other => panic!("{other:?}"),
        }
        assert_eq!((l.state(), l.count()), (State::Released, 0));
        assert_eq!(c.inits.load(SeqCst), c.teardowns.load(SeqCst));
    });
}

#[test]
fn l1_session_drop_racing_cleanup_tears_down_once() {
    run_model(None, 1, |l, c| {
        let t = spawn(&l, &c, |l, _| {
            let s = l.session(V).unwrap();
            drop(s);
        });
        let cleaned = l.cleanup().unwrap();
        t.join().unwrap();
        assert_eq!(l.count(), 0);
        assert_eq!(l.state(), State::Released);
        // Either the session ran inside generation 0 (one teardown) or it
        // started and ended generation 1 on its own (two).
        assert_eq!(c.teardowns.load(SeqCst), c.inits.load(SeqCst));
        assert!(cleaned.is_final() || c.teardowns.load(SeqCst) == 1);
    });
}

// ----------------------------------------------------------------------
// guards
// ----------------------------------------------------------------------

#[test]
fn o2_guard_racing_the_final_cleanup_never_overlaps_teardown() {
    run_model(None, 1, |l, c| {
        let t = spawn(&l, &c, |l, c| guarded_check(&l, &c));
        let report = l.cleanup().unwrap();
        t.join().unwrap();
        assert_eq!(c.releases.load(SeqCst), 1);
        // A guard taken before the flip is always waited for; an enter that
        // races the closing may be counted for the instant before it fails.
        assert!(report.report().unwrap().operations.waited_for <= 1);
    });
}

#[test]
fn o1_an_enter_that_observed_draining_always_fails() {
    run_model(None, 1, |l, c| {
        let t = spawn(&l, &c, |l, _| {
            if l.state() != State::Active {
                let e = l.enter().err();
                assert!(
                    matches!(
                        e,
                        Some(Error::NotInitialised(
                            NotActive::Draining | NotActive::Released
                        ))
                    ),
                    "{e:?}"
                );
            }
        });
        l.cleanup().unwrap();
        t.join().unwrap();
        assert_eq!(c.teardowns.load(SeqCst), 1);
    });
}

#[test]
fn o2_enter_racing_a_restart_into_a_new_generation() {
    run_model(None, 1, |l, c| {
        let t = spawn(&l, &c, |l, c| guarded_check(&l, &c));
        l.cleanup().unwrap();
        let s = l.startup(V).unwrap();
        t.join().unwrap();
        assert!(s.initialized);
        assert_eq!(s.generation, 1);
        assert_eq!(c.inits.load(SeqCst), 2);
        assert_eq!(c.teardowns.load(SeqCst), 1);
    });
}

#[test]
fn o3_enters_on_two_shards_racing_the_draining_flip() {
    run_model(Some(2), 1, |l, c| {
        let t1 = spawn(&l, &c, |l, c| guarded_check(&l, &c));
        let t2 = spawn(&l, &c, |l, c| guarded_check(&l, &c));
        l.cleanup().unwrap();
        t1.join().unwrap();
        t2.join().unwrap();
        assert_eq!(c.releases.load(SeqCst), 1);
    });
}

#[test]
fn l6_1_the_drainer_is_woken_when_the_last_guard_leaves() {
    run_model(None, 1, |l, c| {
        // The guard is taken before the cleanup starts, and dropped while the
        // cleanup may be waiting: a lost wakeup deadlocks the model.
        let guard_l = l.clone();
        let guard = guard_l.enter().unwrap();
        let t = spawn(&l, &c, |l, _| l.cleanup().unwrap());
        drop(guard);
        let report = t.join().unwrap();
        assert!(report.report().unwrap().operations.waited_for <= 1);
        assert_eq!(c.teardowns.load(SeqCst), 1);
    });
}

#[test]
fn l11_final_cleanup_inside_a_guard_is_in_progress() {
    run_model(None, 1, |l, c| {
        {
            let _g = l.enter().unwrap();
            assert_eq!(l.cleanup(), Err(Error::InProgress));
            assert_eq!(l.count(), 1);
        }
        assert!(l.cleanup().unwrap().is_final());
        assert_eq!(c.teardowns.load(SeqCst), 1);
    });
}

// ----------------------------------------------------------------------
// resources and sockets
// ----------------------------------------------------------------------

#[test]
fn l6_4_register_resource_racing_the_drain_is_released_once() {
    run_model(None, 1, |l, c| {
        let hits = StdArc::new(AtomicUsize::new(0));
        let h2 = hits.clone();
        let t = spawn(&l, &c, move |l, _| {
            l.register_resource_fn("late", move || {
                h2.fetch_add(1, SeqCst);
                Ok(())
            })
        });
        let report = l.cleanup().unwrap().into_report().unwrap();
        let registered = t.join().unwrap();
        assert_eq!(hits.load(SeqCst), 1, "released exactly once, either way");
        let listed = report.resources.iter().any(|r| r.name == "late");
        assert_eq!(listed, registered.is_ok());
        if let Err(e) = registered {
            assert!(
                matches!(
                    e,
                    Error::NotInitialised(NotActive::Draining | NotActive::Released)
                ),
                "{e:?}"
            );
        }
    });
}

#[test]
fn l6_register_socket_racing_the_final_cleanup_is_drained_or_refused() {
    run_model(None, 1, |l, c| {
        let t = spawn(&l, &c, |l, c| l.register_socket(Sock::idle(&c)));
        let report = l.cleanup().unwrap();
        let r = t.join().unwrap();
        // Either way the socket is released exactly once: never leaked.
        assert_eq!(c.sock_releases.load(SeqCst), 1);
        let report = report.report().unwrap();
        match r {
            Ok(h) => {
                // D1: an idle socket that closed cleanly is counted.
                assert_eq!(report.socket(h), None);
                assert_eq!(report.closed_clean, 1, "registered sockets are drained");
            }
            Err(e) => {
                assert!(
                    matches!(
                        e,
                        Error::NotInitialised(NotActive::Draining | NotActive::Released)
                    ),
                    "{e:?}"
                );
                assert!(report.sockets.is_empty());
                assert_eq!(report.closed_clean, 0);
            }
        }
    });
}

// W3: a duplicate racing the last close of the same socket. Either the
// duplicate lands first (the close is then not the last: Retained, and the
// new handle works) or the close does (the duplicate answers NotSocket and
// the socket is closed once): never a live duplicate of a closed socket.
#[test]
fn w3_duplicate_racing_the_last_close_is_before_or_after_never_between() {
    run_model(None, 1, |l, c| {
        let h = l.register_socket(Sock::idle(&c)).unwrap();
        let t = spawn(&l, &c, move |l, _| l.duplicate_socket(h));
        let closed = l.close_socket(h).unwrap();
        match t.join().unwrap() {
            Ok(dup) => {
                assert_eq!(closed.outcome, SocketOutcome::Retained);
                assert_eq!(l.with_socket(dup, |_| ()), Ok(()), "the duplicate works");
                assert_eq!(l.open_sockets(), 1);
                assert_eq!(c.sock_releases.load(SeqCst), 0);
            }
            Err(e) => {
                assert_eq!(e, Error::NotSocket);
                assert_ne!(closed.outcome, SocketOutcome::Retained);
                assert_eq!(l.open_sockets(), 0, "nothing dead on arrival counted");
                assert_eq!(c.sock_releases.load(SeqCst), 1);
            }
        }
        l.cleanup().unwrap();
        assert_eq!(c.sock_releases.load(SeqCst), 1, "released once");
    });
}

/// `close_socket` of a socket holding 2 bytes races the final cleanup (Reset
/// policy for open sockets): every byte is flushed or counted as discarded,
/// exactly once, and the socket is released once.
fn close_racing_the_drain(linger: Linger) {
    run_model(None, 1, move |l, c| {
        let h = l.register_socket(Sock::new(&c, 1, 2, linger)).unwrap();
        let t = spawn(&l, &c, move |l, _| l.close_socket(h));
        let report = l.cleanup().unwrap().into_report().unwrap();
        let closed = t.join().unwrap();
        assert_eq!(c.sock_releases.load(SeqCst), 1);
        let (mut flushed, mut discarded) = accounted(&report, h);
        match closed {
            Ok(line) => {
                flushed += line.bytes_flushed;
                discarded += line.bytes_discarded;
            }
            Err(e) => assert!(
                matches!(
                    e,
                    Error::NotInitialised(NotActive::Draining | NotActive::Released)
                ),
                "{e:?}"
            ),
        }
        assert_eq!(flushed + discarded, 2, "every byte accounted once");
        assert_eq!(flushed, c.flushed.load(SeqCst));
    });
}

#[test]
fn s3_background_close_racing_the_drain_accounts_every_byte() {
    close_racing_the_drain(Linger::Background);
}

#[test]
fn s3_blocking_linger_close_racing_the_drain_accounts_every_byte() {
    close_racing_the_drain(Linger::Timeout(std::time::Duration::from_secs(5)));
}

#[test]
fn s2_poll_background_racing_the_cleanup_releases_once() {
    run_model(None, 1, |l, c| {
        let h = l
            .register_socket(Sock::new(&c, 1, 2, Linger::Background))
            .unwrap();
        assert_eq!(
            l.close_socket(h).unwrap().outcome,
            SocketOutcome::Background
        );
        let t = spawn(&l, &c, |l, _| l.poll_background());
        let report = l.cleanup().unwrap().into_report().unwrap();
        let polled = t.join().unwrap();
        assert_eq!(c.sock_releases.load(SeqCst), 1);
        assert_eq!(c.flushed.load(SeqCst), 2, "graceful: everything delivered");
        // Its line is in the report unless a poll finished it cleanly.
        let (flushed, discarded) = accounted(&report, h);
        assert_eq!(discarded, 0);
        assert!(flushed <= 2);
        if let Err(e) = polled {
            assert!(
                matches!(
                    e,
                    Error::NotInitialised(NotActive::Draining | NotActive::Released)
                ),
                "{e:?}"
            );
        }
    });
}

// S7 with the lock-free lookup: a lookup racing the close of its socket
// and the opening of the next one (which takes the vacated slot from the
// vacant stack) reaches its own socket or nothing, never the new one.
#[test]
fn s7_lookup_racing_close_and_reuse_of_its_slot_never_reaches_the_new_socket() {
    run_model(None, 1, |l, c| {
        let old = l
            .register_socket(Sock::new(&c, 1, 0, Linger::Abort))
            .unwrap();
        let t = spawn(&l, &c, move |l, _| l.with_socket(old, |s| s.id));
        l.close_socket(old).unwrap();
        let new = l
            .register_socket(Sock::new(&c, 2, 0, Linger::Abort))
            .unwrap();
        match t.join().unwrap() {
            Ok(id) => assert_eq!(id, 1, "a stale handle reached another socket"),
            Err(e) => assert_eq!(e, Error::NotSocket),
        }
        assert_eq!(l.with_socket(new, |s| s.id), Ok(2));
        assert_eq!(l.open_sockets(), 1);
    });
}

// The vacant stack: two threads each closing a socket and opening another
// never get one slot for two sockets (the tagged head), and every handle
// reaches its own socket.
#[test]
fn s7_opens_and_closes_on_two_threads_never_share_a_slot() {
    run_model(None, 1, |l, c| {
        let a = l
            .register_socket(Sock::new(&c, 1, 0, Linger::Abort))
            .unwrap();
        let b = l
            .register_socket(Sock::new(&c, 2, 0, Linger::Abort))
            .unwrap();
        let t = spawn(&l, &c, move |l, c| {
            l.close_socket(a).unwrap();
            l.register_socket(Sock::new(&c, 3, 0, Linger::Abort))
                .unwrap()
        });
        l.close_socket(b).unwrap();
        let d = l
            .register_socket(Sock::new(&c, 4, 0, Linger::Abort))
            .unwrap();
        let e = t.join().unwrap();
        assert_ne!(
            d.to_raw() & 0xff_ffff,
            e.to_raw() & 0xff_ffff,
            "one slot, two sockets"
        );
        assert_eq!(l.with_socket(d, |s| s.id), Ok(4));
        assert_eq!(l.with_socket(e, |s| s.id), Ok(3));
        assert_eq!(l.open_sockets(), 2);
    });
}

// O2 with the lock-free lookup: a call on a socket racing the final
// cleanup either runs on the live socket (and the cleanup waits for it) or
// is refused; the socket is released once, after the call.
#[test]
fn o2_socket_call_racing_the_final_cleanup_never_meets_a_released_socket() {
    run_model(None, 1, |l, c| {
        let h = l
            .register_socket(Sock::new(&c, 1, 0, Linger::Abort))
            .unwrap();
        let t = spawn(&l, &c, move |l, c| {
            l.with_socket(h, |s| {
                assert_eq!(c.sock_releases.load(SeqCst), 0, "released under a call");
                s.id
            })
        });
        l.cleanup().unwrap();
        match t.join().unwrap() {
            Ok(id) => assert_eq!(id, 1),
            Err(e) => assert!(matches!(e, Error::NotInitialised(_) | Error::NotSocket)),
        }
        assert_eq!(c.sock_releases.load(SeqCst), 1);
        assert_eq!(l.open_sockets(), 0);
    });
}

#[test]
fn s7_stale_handle_racing_a_restart_never_reaches_the_new_socket() {
    run_model(None, 1, |l, c| {
        let old = l
            .register_socket(Sock::new(&c, 1, 0, Linger::Abort))
            .unwrap();
        let t = spawn(&l, &c, move |l, _| {
            let raw = SocketHandle::from_raw(old.to_raw());
            [l.with_socket(old, |s| s.id), l.with_socket(raw, |s| s.id)]
        });
        l.cleanup().unwrap();
        l.startup(V).unwrap();
        let new = l
            .register_socket(Sock::new(&c, 2, 0, Linger::Abort))
            .unwrap();
        for r in t.join().unwrap() {
            match r {
                Ok(id) => assert_eq!(id, 1, "a stale handle reached another socket"),
                Err(e) => assert!(matches!(e, Error::NotSocket | Error::NotInitialised(_))),
            }
        }
        assert_eq!(l.with_socket(new, |s| s.id), Ok(2));
        assert_eq!(l.with_socket(old, |s| s.id), Err(Error::NotSocket));
    });
}

#[test]
fn l6_cleanup_guard_socket_and_startup_all_racing() {
    run_model(Some(2), 1, |l, c| {
        let worker = spawn(&l, &c, |l, c| {
            let Ok(g) = l.enter() else { return None };
            assert!(!c.released.load(SeqCst), "released under a live guard");
            let h = l.register_socket(Sock::idle(&c));
            drop(g);
            h.ok()
        });
        let starter = spawn(&l, &c, |l, _| l.startup(V).unwrap());
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
                    r.socket(h).is_some() || r.closed_clean == 1,
                    "a socket of the torn-down generation is drained"
                );
            }
        }
        l.cleanup().unwrap();
        // Every registered socket was released exactly once by now.
        assert!(c.sock_releases.load(SeqCst) <= 1);
    });
}

// ----------------------------------------------------------------------
// event-driven flushing: the ready queue and the flusher thread (S4, S5)
// ----------------------------------------------------------------------

/// A socket that stays pending until its gate opens, leaving its waker in
/// `waker` for another thread to fire.
#[derive(Debug)]
struct Gated {
    c: StdArc<Counts>,
    gate: StdArc<loom::sync::Mutex<(bool, Option<Waker>)>>,
    polls: StdArc<AtomicUsize>,
}

impl Socket for Gated {
    fn unsent(&self) -> u64 {
        u64::from(!self.gate.lock().unwrap().0)
    }
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.polls.fetch_add(1, SeqCst);
        let mut g = self.gate.lock().unwrap();
        if g.0 {
            self.c.flushed.fetch_add(1, SeqCst);
            return Poll::Ready(Ok(()));
        }
        g.1 = Some(cx.waker().clone());
        Poll::Pending
    }
    fn abort(&mut self) -> Result<(), BoxError> {
        self.c.sock_aborts.fetch_add(1, SeqCst);
        Ok(())
    }
    fn release(&mut self) -> Result<(), BoxError> {
        self.c.sock_releases.fetch_add(1, SeqCst);
        Ok(())
    }
}

struct GatedProvider(StdArc<Counts>);

impl Provider for GatedProvider {
    type Socket = Gated;
    type State = ();
    fn versions(&self) -> VersionRange {
        VersionRange::new(V, V)
    }
    fn initialize(&self, _: &mut Registrar) -> Result<(), Error> {
        Ok(())
    }
}

type Gate = StdArc<loom::sync::Mutex<(bool, Option<Waker>)>>;

/// Opens the gate and fires the waker the socket left, if any.
fn open(gate: &Gate) {
    let w = {
        let mut g = gate.lock().unwrap();
        g.0 = true;
        g.1.take()
    };
    if let Some(w) = w {
        w.wake();
    }
}

fn gated(
    mode: BackgroundFlush,
) -> (
    Arc<Lifecycle<GatedProvider>>,
    StdArc<Counts>,
    Gate,
    SocketHandle,
    StdArc<AtomicUsize>,
) {
    let c = StdArc::new(Counts::default());
    let config = Config::new()
        .with_background_flush(mode)
        .with_open_socket_policy(OpenSocketPolicy::Graceful);
    let l = Arc::new(Lifecycle::with_config(GatedProvider(c.clone()), config));
    l.startup(V).unwrap();
    let gate: Gate = StdArc::new(loom::sync::Mutex::new((false, None)));
    let polls = StdArc::new(AtomicUsize::new(0));
    let h = l
        .register_socket(Gated {
            c: c.clone(),
            gate: gate.clone(),
            polls: polls.clone(),
        })
        .unwrap();
    (l, c, gate, h, polls)
}

// S5: a wake racing the drain's park is never lost (a lost wake-up would
// leave the final cleanup asleep: loom reports the deadlock, since timed
// waits never time out under loom).
#[test]
fn s5_wake_racing_the_drains_park_is_never_lost() {
    loom::model(|| {
        let (l, c, gate, h, polls) = gated(BackgroundFlush::Manual);
        let g = gate.clone();
        let t = thread::spawn(move || open(&g));
        let report = l.cleanup().unwrap().into_report().unwrap();
        t.join().unwrap();
        assert!(flushed_or_counted(&report, h), "{report}");
        assert_eq!(c.flushed.load(SeqCst), 1);
        assert_eq!(c.sock_releases.load(SeqCst), 1);
        assert!(polls.load(SeqCst) <= 2, "polled only when woken");
    });
}

// S5, S2: a wake racing the socket's release (after the drain finished it,
// or after the lifecycle is gone) polls nothing and releases nothing twice.
#[test]
fn s5_wake_racing_the_release_is_harmless() {
    loom::model(|| {
        let (l, c, gate, h, polls) = gated(BackgroundFlush::Manual);
        // Open first: the drain finishes the socket on its first poll, and
        // the waker it left (none yet, or a stale one) races the release.
        gate.lock().unwrap().0 = true;
        let g = gate.clone();
        let t = thread::spawn(move || {
            let w = g.lock().unwrap().1.take();
            if let Some(w) = w {
                w.wake();
            }
        });
        let report = l.cleanup().unwrap().into_report().unwrap();
        t.join().unwrap();
        assert!(flushed_or_counted(&report, h), "{report}");
        assert_eq!(c.sock_releases.load(SeqCst), 1);
        assert_eq!(polls.load(SeqCst), 1);
    });
}

// S5: two wakes racing each other and the poll: neither is lost, and the
// socket is finished and released once (coalescing itself is a cost
// property, tested deterministically in drain.rs).
#[test]
fn s5_two_racing_wakes_are_neither_lost_nor_doubled() {
    loom::model(|| {
        let (l, c, gate, h, polls) = gated(BackgroundFlush::Manual);
        let (g1, g2) = (gate.clone(), gate.clone());
        let t1 = thread::spawn(move || open(&g1));
        let t2 = thread::spawn(move || open(&g2));
        let report = l.cleanup().unwrap().into_report().unwrap();
        t1.join().unwrap();
        t2.join().unwrap();
        assert!(flushed_or_counted(&report, h), "{report}");
        assert_eq!(c.sock_releases.load(SeqCst), 1);
        assert!(polls.load(SeqCst) <= 2, "two wakes, one extra poll at most");
    });
}

// S4, L13: the flusher thread finishes a background close woken from
// another thread, or the final cleanup joins it and finishes the close;
// either way exactly once, and no thread is left.
#[test]
fn s4_flusher_thread_racing_the_final_cleanup() {
    let b = builder(Some(2));
    b.check(|| {
        let (l, c, gate, h, _) = gated(BackgroundFlush::Thread);
        assert_eq!(
            l.close_socket(h).unwrap().outcome,
            SocketOutcome::Background
        );
        let g = gate.clone();
        let t = thread::spawn(move || open(&g));
        let report = l.cleanup().unwrap().into_report().unwrap();
        t.join().unwrap();
        assert_eq!(c.sock_releases.load(SeqCst), 1);
        assert_eq!(
            c.flushed.load(SeqCst),
            1,
            "graceful: delivered, by one or the other"
        );
        let listed = report.socket(h).map(|line| line.outcome);
        let counted = report.flushed_in_background.sockets;
        assert!(
            (listed == Some(SocketOutcome::Flushed) && counted == 0)
                || (listed.is_none() && counted == 1),
            "{listed:?} {counted}"
        );
    });
}

// O4, O2: a token taken on one thread and dropped on another, racing the
// final cleanup: nothing of its generation is released while it lives, and
// the drain's wait ends when it goes (or it was refused). (The lifecycle is
// leaked so that the token can be `'static`, as with a `static` lifecycle.)
#[test]
fn o4_token_moved_across_threads_racing_the_final_cleanup() {
    loom::model(|| {
        let c = StdArc::new(Counts::default());
        let manual = Config::new().with_background_flush(BackgroundFlush::Manual);
        let l: &'static Lifecycle<Model> =
            Box::leak(Box::new(Lifecycle::with_config(Model(c.clone()), manual)));
        l.startup(V).unwrap();
        let c2 = c.clone();
        let t = thread::spawn(move || {
            if let Ok(token) = l.token() {
                let moved = thread::spawn(move || {
                    assert!(!c2.released.load(SeqCst), "released under a live token");
                    drop(token);
                });
                moved.join().unwrap();
            }
        });
        l.cleanup().unwrap();
        t.join().unwrap();
        assert_eq!(c.releases.load(SeqCst), 1);
    });
}

// L16: the abandon path of a bounded guard wait (bound zero: any guard
// counted at the cleanup is abandoned), racing the guard itself and a
// restart. The guard lands in generation 0, in generation 1, or nowhere.
// If generation 0 abandoned it, nothing of generation 0 is released while
// it lives (nor ever), it keeps reading its own state while generation 1
// stores its own, and generation 1 neither counts it nor waits for it.
#[test]
fn l16_abandon_racing_the_guard_and_a_restart() {
    let config = Config::new()
        .with_background_flush(BackgroundFlush::Manual)
        .with_guard_wait_limit(std::time::Duration::ZERO);
    run_model_with(Some(2), config, 1, |l, c| {
        let t = spawn(&l, &c, |l, c| {
            let Ok(g) = l.enter() else { return None };
            let mine = *g.state();
            thread::yield_now();
            assert_eq!(*g.state(), mine, "another generation's state");
            if mine == 0 {
                assert!(
                    !c.released_first.load(SeqCst),
                    "released under a live guard"
                );
            }
            Some(mine)
        });
        let first = l.cleanup().unwrap().into_report().unwrap();
        assert_eq!(l.state(), State::Released);
        let s = l.startup(V).unwrap();
        assert!(s.initialized);
        assert_eq!(s.generation, 1, "lane 1 is free");
        let second = l.cleanup().unwrap().into_report().unwrap();
        let entered = t.join().unwrap();
        let (a, b) = (first.operations.abandoned, second.operations.abandoned);
        // Like `waited_for`, `abandoned` may count an enter racing the flip
        // that then fails (or retries in the next generation's lane).
        assert!(a <= 1 && b <= 1, "{a}, {b}");
        if entered == Some(0) {
            assert_eq!(b, 0, "generation 1 counted generation 0's guard");
        }
        if a == 0 {
            assert!(c.released_first.load(SeqCst), "nothing abandoned: released");
        } else if entered == Some(0) {
            assert!(!c.released_first.load(SeqCst), "abandoned: never released");
            assert_eq!(c.releases.load(SeqCst), 1, "generation 1's only");
        }
    });
}

// O5: an owned token cloned and dropped on another thread while the final
// cleanup runs: the clone joins the counted operation (nothing released
// while either lives) however the clone, the drops and the drain's park
// interleave, and the drain's wait ends when the last goes.
#[test]
fn o5_owned_token_clone_racing_the_final_cleanup() {
    loom::model(|| {
        let c = StdArc::new(Counts::default());
        let manual = Config::new().with_background_flush(BackgroundFlush::Manual);
        let l = StdArc::new(Lifecycle::with_config(Model(c.clone()), manual));
        l.startup(V).unwrap();
        let token = l.owned_token().unwrap();
        let c2 = c.clone();
        let t = thread::spawn(move || {
            let clone = token.clone();
            drop(token);
            assert!(!c2.released.load(SeqCst), "released under a live clone");
            drop(clone);
        });
        let report = l.cleanup().unwrap().into_report().unwrap();
        t.join().unwrap();
        assert_eq!(c.releases.load(SeqCst), 1);
        assert!(report.operations.waited_for <= 2);
    });
}
