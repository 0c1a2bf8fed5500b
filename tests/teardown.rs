//! Teardown that never gets stuck (L14), L11 however deep (L15), handles
//! that never alias (S7), and the bounded list of failed background closes:
//! one regression test per defect found by trying the crate as a hostile
//! user would.
#![cfg(not(loom))]

mod support;

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::task::{Context, Poll};
use std::time::Duration;

use provider_lifecycle::*;
use support::*;

const V: Version = Version::new(2, 2);

/// An error whose `Display` panics.
#[derive(Debug)]
struct LoudDisplay;

impl fmt::Display for LoudDisplay {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        panic!("Display exploded")
    }
}

impl std::error::Error for LoudDisplay {}

/// An error whose `Drop` panics.
#[derive(Debug)]
struct LoudDrop;

impl fmt::Display for LoudDrop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("loud drop")
    }
}

impl std::error::Error for LoudDrop {}

impl Drop for LoudDrop {
    fn drop(&mut self) {
        panic!("error Drop exploded")
    }
}

/// How a [`Hostile`] socket or provider misbehaves.
#[derive(Debug, Default)]
struct Plan {
    panic_on_drop: AtomicBool,
    flush_error_display_panics: AtomicBool,
    hooks_error_display_panics: AtomicBool,
    hooks_error_drop_panics: AtomicBool,
    drops: AtomicUsize,
    releases: AtomicUsize,
}

/// A socket with `unsent` bytes that never flushes them by itself.
struct HostileSocket {
    id: u32,
    unsent: u64,
    linger: Linger,
    plan: Arc<Plan>,
}

impl Socket for HostileSocket {
    fn linger(&self) -> Linger {
        self.linger
    }
    fn unsent(&self) -> u64 {
        self.unsent
    }
    fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        if self.plan.flush_error_display_panics.load(SeqCst) {
            return Poll::Ready(Err(Box::new(LoudDisplay)));
        }
        self.unsent = 0;
        Poll::Ready(Ok(()))
    }
    fn abort(&mut self) -> Result<(), BoxError> {
        self.unsent = 0;
        Ok(())
    }
    fn release(&mut self) -> Result<(), BoxError> {
        self.plan.releases.fetch_add(1, SeqCst);
        Ok(())
    }
}

impl Drop for HostileSocket {
    fn drop(&mut self) {
        self.plan.drops.fetch_add(1, SeqCst);
        if self.plan.panic_on_drop.load(SeqCst) {
            panic!("drop of socket {} exploded", self.id);
        }
    }
}

struct Hostile(Arc<Plan>);

impl Hostile {
    fn hook_error(&self) -> BoxError {
        if self.0.hooks_error_drop_panics.load(SeqCst) {
            Box::new(LoudDrop)
        } else {
            Box::new(LoudDisplay)
        }
    }
    fn misbehaves(&self) -> bool {
        self.0.hooks_error_display_panics.load(SeqCst)
            || self.0.hooks_error_drop_panics.load(SeqCst)
    }
}

impl Provider for Hostile {
    type Socket = HostileSocket;
    type State = ();
    fn versions(&self) -> VersionRange {
        VersionRange::new(V, V)
    }
    fn initialize(&self, init: &mut Registrar) -> Result<(), Error> {
        if self.misbehaves() {
            let e = self.hook_error();
            init.register_fn("resource with a hostile error", move || Err(e));
        }
        Ok(())
    }
    fn cancel_pending(&self) -> Result<usize, BoxError> {
        if self.misbehaves() {
            return Err(self.hook_error());
        }
        Ok(0)
    }
    fn prepare_unload(&self) -> Result<(), BoxError> {
        if self.misbehaves() {
            return Err(self.hook_error());
        }
        Ok(())
    }
}

/// A hostile lifecycle whose background closes make no progress until the
/// final cleanup (`BackgroundFlush::Manual`): a test that closes a socket in
/// the background and then changes the plan must find the socket still
/// flushing when the drain starts, never finished by a helper thread first.
fn hostile() -> (Lifecycle<Hostile>, Arc<Plan>) {
    let plan = Arc::new(Plan::default());
    let config = Config::new().with_background_flush(BackgroundFlush::Manual);
    (Lifecycle::with_config(Hostile(plan.clone()), config), plan)
}

fn socket(plan: &Arc<Plan>, id: u32, unsent: u64, linger: Linger) -> HostileSocket {
    HostileSocket {
        id,
        unsent,
        linger,
        plan: plan.clone(),
    }
}

/// After a teardown that met a panic: Released, next generation, and both
/// kinds of startup work at once (a stuck Draining would hang `Wait` and
/// fail `FailFast` with InProgress).
fn assert_released_and_restartable(l: &Lifecycle<Hostile>, generation: u64) {
    assert_eq!(l.state(), State::Released);
    assert_eq!(l.generation(), generation);
    let s = l.startup_with(V, StartupPolicy::FailFast).unwrap();
    assert!(s.initialized);
    assert_eq!(
        l.startup_with(V, StartupPolicy::Wait).unwrap().generation,
        generation
    );
    l.cleanup().unwrap();
    l.cleanup().unwrap();
}

// L14: a socket whose Drop panics during the drain (open, closing in the
// background, and closed while Active) neither unwinds out of cleanup nor
// leaves the state in Draining; the panic is in the socket's report line.
#[test]
fn l14_socket_drop_panic_during_the_drain_still_reaches_released() {
    let _watchdog = watchdog(120);
    let (l, plan) = hostile();
    l.startup(V).unwrap();
    let open = l
        .register_socket(socket(&plan, 1, 10, Linger::Background))
        .unwrap();
    let bg = l
        .register_socket(socket(&plan, 2, 10, Linger::Background))
        .unwrap();
    assert_eq!(
        l.close_socket(bg).unwrap().outcome,
        SocketOutcome::Background
    );
    plan.panic_on_drop.store(true, SeqCst);
    let now = l
        .register_socket(socket(&plan, 3, 0, Linger::Abort))
        .unwrap();
    let line = l
        .close_socket(now)
        .expect("a close whose drop panics still answers");
    assert!(matches!(line.release(), HookOutcome::Panicked(p) if p.contains("exploded")));

    let cleaned = catch_unwind(AssertUnwindSafe(|| l.cleanup()));
    let report = cleaned
        .expect("no panic escapes cleanup")
        .unwrap()
        .into_report()
        .unwrap();
    for h in [open, bg] {
        let line = report.socket(h).expect("reported");
        assert!(
            matches!(line.release(), HookOutcome::Panicked(p) if p.contains("drop")),
            "{line:?}"
        );
    }
    assert_eq!(plan.drops.load(SeqCst), 3);
    assert_eq!(plan.releases.load(SeqCst), 3);
    plan.panic_on_drop.store(false, SeqCst);
    assert_released_and_restartable(&l, 1);
}

// L12 + L14: dropping a still-Active lifecycle whose sockets panic on drop
// does not panic.
#[test]
fn l14_drop_of_an_active_lifecycle_with_panicking_socket_drops_does_not_panic() {
    let _watchdog = watchdog(120);
    let (l, plan) = hostile();
    l.startup(V).unwrap();
    l.register_socket(socket(&plan, 1, 5, Linger::Background))
        .unwrap();
    let bg = l
        .register_socket(socket(&plan, 2, 5, Linger::Background))
        .unwrap();
    l.close_socket(bg).unwrap();
    plan.panic_on_drop.store(true, SeqCst);
    let dropped = catch_unwind(AssertUnwindSafe(move || drop(l)));
    assert!(
        dropped.is_ok(),
        "L12: dropping an Active lifecycle never panics"
    );
    assert_eq!(plan.drops.load(SeqCst), 2);
    assert_eq!(plan.releases.load(SeqCst), 2);
}

// L14: hook errors whose Display panics (cancel, a resource release,
// prepare-to-unload, a socket's flush error) are reported as panics, and the
// teardown reaches Released.
#[test]
fn l14_hook_error_whose_display_panics_is_reported_not_unwound() {
    let _watchdog = watchdog(120);
    let (l, plan) = hostile();
    plan.hooks_error_display_panics.store(true, SeqCst);
    l.startup(V).unwrap();
    let bg = l
        .register_socket(socket(&plan, 1, 10, Linger::Background))
        .unwrap();
    l.close_socket(bg).unwrap();
    plan.flush_error_display_panics.store(true, SeqCst);
    let report = catch_unwind(AssertUnwindSafe(|| l.cleanup()))
        .expect("no panic escapes cleanup")
        .unwrap()
        .into_report()
        .unwrap();
    assert!(matches!(&report.operations.cancel, HookOutcome::Panicked(p) if p.contains("Display")));
    assert!(matches!(&report.prepare_unload, HookOutcome::Panicked(p) if p.contains("Display")));
    assert!(
        matches!(&report.resources[0].outcome, HookOutcome::Panicked(p) if p.contains("Display"))
    );
    let line = report.socket(bg).unwrap();
    assert_eq!(line.outcome, SocketOutcome::Panicked);
    assert_eq!(line.bytes_discarded, 10, "nothing lost silently");
    assert!(!report.is_clean());
    plan.hooks_error_display_panics.store(false, SeqCst);
    plan.flush_error_display_panics.store(false, SeqCst);
    assert_released_and_restartable(&l, 1);
}

// L14: hook errors whose Drop panics are caught too.
#[test]
fn l14_hook_error_whose_drop_panics_is_reported_not_unwound() {
    let _watchdog = watchdog(120);
    let (l, plan) = hostile();
    plan.hooks_error_drop_panics.store(true, SeqCst);
    l.startup(V).unwrap();
    let report = catch_unwind(AssertUnwindSafe(|| l.cleanup()))
        .expect("no panic escapes cleanup")
        .unwrap()
        .into_report()
        .unwrap();
    assert!(matches!(&report.operations.cancel, HookOutcome::Panicked(p) if p.contains("Drop")));
    assert!(matches!(&report.prepare_unload, HookOutcome::Panicked(p) if p.contains("Drop")));
    plan.hooks_error_drop_panics.store(false, SeqCst);
    assert_released_and_restartable(&l, 1);
}

/// Takes a guard of every lifecycle in `ls`, nested, then runs `f` inside all
/// of them.
fn nested<R>(ls: &[Lifecycle<FakeProvider>], f: &mut dyn FnMut() -> R) -> R {
    match ls.split_first() {
        None => f(),
        Some((first, rest)) => {
            let _g = first.enter().unwrap();
            nested(rest, f)
        }
    }
}

// L15: a final cleanup from inside the guard of the 5th (and the 64th)
// nested lifecycle answers InProgress instead of waiting for itself.
#[test]
fn l15_final_cleanup_inside_deeply_nested_guards_is_in_progress() {
    let _watchdog = watchdog(120);
    for depth in [5, 8, 64] {
        let ls: Vec<_> = (0..depth)
            .map(|_| Lifecycle::new(FakeProvider::default()))
            .collect();
        for l in &ls {
            l.startup(V).unwrap();
        }
        nested(&ls, &mut || {
            for (i, l) in ls.iter().enumerate() {
                assert_eq!(
                    l.cleanup(),
                    Err(Error::InProgress),
                    "depth {depth}, lifecycle {i}"
                );
                assert_eq!(l.count(), 1);
            }
        });
        for l in &ls {
            assert!(l.cleanup().unwrap().is_final());
        }
    }
}

// L15: a Wait startup from a thread holding the guard of the 5th nested
// lifecycle while that lifecycle drains answers InProgress instead of
// waiting for itself; the drain then completes once the guards go.
#[test]
fn l15_wait_startup_from_a_deep_guard_during_draining_is_in_progress() {
    let _watchdog = watchdog(120);
    let ls: Arc<Vec<_>> = Arc::new(
        (0..5)
            .map(|_| Lifecycle::new(FakeProvider::default()))
            .collect(),
    );
    for l in ls.iter() {
        l.startup(V).unwrap();
    }
    let (entered_tx, entered_rx) = std::sync::mpsc::channel();
    let holder = {
        let ls = ls.clone();
        std::thread::spawn(move || {
            nested(&ls, &mut || {
                entered_tx.send(()).unwrap();
                while ls[4].state() != State::Draining {
                    std::thread::yield_now();
                }
                ls[4].startup_with(V, StartupPolicy::Wait)
            })
        })
    };
    entered_rx.recv().unwrap();
    let drainer = {
        let ls = ls.clone();
        std::thread::spawn(move || ls[4].cleanup().unwrap().into_report().unwrap())
    };
    assert_eq!(holder.join().unwrap(), Err(Error::InProgress));
    let report = drainer.join().unwrap();
    // The holder may drop its guard between the flip it saw and the
    // drain's count of guards: counted or not, the drain completed.
    assert!(report.operations.waited_for <= 1);
    for l in &ls[..4] {
        l.cleanup().unwrap();
    }
}

// L11: threads record held guards by a unique lifecycle id, not by address:
// a leaked guard of a dropped lifecycle does not make a new lifecycle at the
// same address refuse its final cleanups.
#[test]
fn l11_a_leaked_guard_does_not_haunt_a_new_lifecycle_at_the_same_address() {
    let _watchdog = watchdog(120);
    let mut slot = Some(Lifecycle::new(FakeProvider::default()));
    let first = slot.as_ref().unwrap();
    first.startup(V).unwrap();
    std::mem::forget(first.enter().unwrap());
    let old_address = std::ptr::from_ref(first) as usize;
    drop(slot.take());
    slot = Some(Lifecycle::new(FakeProvider::default()));
    let second = slot.as_ref().unwrap();
    assert_eq!(
        std::ptr::from_ref(second) as usize,
        old_address,
        "same address"
    );
    second.startup(V).unwrap();
    assert!(second.cleanup().unwrap().is_final(), "not InProgress");
}

/// A provider of plain sockets, for handle tests with many sockets.
struct Plain;

struct PlainSocket(u32);

impl Socket for PlainSocket {
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
}

impl Provider for Plain {
    type Socket = PlainSocket;
    type State = ();
    fn versions(&self) -> VersionRange {
        VersionRange::new(V, V)
    }
    fn initialize(&self, _: &mut Registrar) -> Result<(), Error> {
        Ok(())
    }
}

fn assert_never_reaches(l: &Lifecycle<Plain>, stale: SocketHandle, live: SocketHandle) {
    // The case that used to alias: the live socket is in the stale one's slot.
    assert_eq!(
        live.to_raw() & 0xff_ffff,
        stale.to_raw() & 0xff_ffff,
        "same slot"
    );
    for h in [stale, SocketHandle::from_raw(stale.to_raw())] {
        assert_ne!(h, live);
        assert_eq!(l.with_socket(h, |s| s.0), Err(Error::NotSocket));
        assert_eq!(l.close_socket(h).err(), Some(Error::NotSocket));
    }
    assert_eq!(
        l.with_socket(live, |s| s.0),
        Ok(7),
        "the live socket is untouched"
    );
}

// S7: after 2^20 + 1 open/close cycles of one slot, a closed handle (typed
// or raw) still reaches nothing — before, slot sequences compared modulo
// 2^20 let it reach the slot's new socket.
#[test]
fn s7_closed_handle_never_aliases_after_2_pow_20_reuses_of_its_slot() {
    let _watchdog = watchdog(300);
    let l = Lifecycle::new(Plain);
    l.startup(V).unwrap();
    let stale = l.register_socket(PlainSocket(0)).unwrap();
    l.close_socket(stale).unwrap();
    for i in 0..(1 << 20) {
        let h = l.register_socket(PlainSocket(i)).unwrap();
        l.close_socket(h).unwrap();
    }
    let live = l.register_socket(PlainSocket(7)).unwrap();
    assert_never_reaches(&l, stale, live);
    l.cleanup().unwrap();
}

// S7, L8: after 2^20 restarts, a handle of generation 0 still reaches
// nothing — before, raw generations compared modulo 2^20 let it reach the
// socket of generation 2^20 in the same slot.
#[test]
fn s7_stale_handle_never_aliases_after_2_pow_20_restarts() {
    let _watchdog = watchdog(600);
    let l = Lifecycle::new(Plain);
    l.startup(V).unwrap();
    let stale = l.register_socket(PlainSocket(0)).unwrap();
    l.cleanup().unwrap();
    for _ in 1..(1 << 20) {
        l.startup(V).unwrap();
        l.cleanup().unwrap();
    }
    assert_eq!(l.startup(V).unwrap().generation, 1 << 20);
    let live = l.register_socket(PlainSocket(7)).unwrap();
    assert_never_reaches(&l, stale, live);
    l.cleanup().unwrap();
}

// D1: background closes that fail while Active are kept as report lines up
// to a bound and counted beyond it; the report's totals stay exact.
#[test]
fn d1_failed_background_closes_are_bounded_and_totals_stay_exact() {
    let _watchdog = watchdog(120);
    let log = Log::default();
    let l = lifecycle_with(Config::new(), FakeProvider::default());
    l.startup(V).unwrap();
    let n = 1100u32;
    let mut states = Vec::new();
    for id in 0..n {
        let plan = SockPlan {
            fail_flush: true,
            ..SockPlan::default()
        };
        let (mut s, state) = FakeSocket::new(id, plan, &log);
        s.write(u64::from(id % 7) + 1);
        let h = l.register_socket(s).unwrap();
        assert_eq!(
            l.close_socket(h).unwrap().outcome,
            SocketOutcome::Background
        );
        states.push(state);
    }
    assert_eq!(l.poll_background(), Ok(0), "every flush failed at once");
    let report = l.cleanup().unwrap().into_report().unwrap();
    let expected: u64 = (0..n).map(|id| u64::from(id % 7) + 1).sum();
    assert_eq!(report.sockets.len(), 1024);
    assert_eq!(report.summarized.sockets, u64::from(n) - 1024);
    assert_eq!(report.bytes_discarded(), expected);
    assert_eq!(report.bytes_flushed(), 0);
    assert!(!report.is_clean());
    for s in &states {
        assert_accounted(&s.lock());
    }
}

// L6.4: a resource registered while Active is released at the final
// cleanup, exactly once, and listed in the report.
#[test]
fn l6_4_register_resource_while_active_is_released_and_reported() {
    let _watchdog = watchdog(120);
    let l = Lifecycle::new(FakeProvider::default());
    l.startup(V).unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    l.register_resource_fn("late", move || {
        h.fetch_add(1, SeqCst);
        Ok(())
    })
    .unwrap();
    assert_eq!(hits.load(SeqCst), 0, "not released while Active");
    let report = l.cleanup().unwrap().into_report().unwrap();
    assert_eq!(hits.load(SeqCst), 1);
    assert_eq!(report.resources.len(), 1);
    assert_eq!(report.resources[0].name, "late");
}

// D1: the report names the generation it tore down.
#[test]
fn d1_report_names_its_generation() {
    let _watchdog = watchdog(120);
    let l = Lifecycle::new(FakeProvider::default());
    for generation in 0..3 {
        l.startup(V).unwrap();
        let report = l.cleanup().unwrap().into_report().unwrap();
        assert_eq!(report.generation, generation);
    }
}

// The configuration a lifecycle was built with is the one it reports.
#[test]
fn config_is_the_one_given() {
    let _watchdog = watchdog(120);
    let config = Config::new()
        .with_startup_policy(StartupPolicy::FailFast)
        .with_open_socket_policy(OpenSocketPolicy::Graceful)
        .with_drain_deadline(Duration::from_millis(1234))
        .with_count_limit(77);
    let l = Lifecycle::with_config(FakeProvider::default(), config);
    assert_eq!(*l.config(), config);
    assert_eq!(l.config().count_limit(), 77);
    assert_eq!(l.config().drain_deadline(), Duration::from_millis(1234));
}

thread_local! {
    static AT_EXIT: std::cell::RefCell<Option<AtExit>> = const { std::cell::RefCell::new(None) };
}

/// Runs a closure from a thread-local destructor.
struct AtExit(Option<Box<dyn FnOnce() + Send>>);

impl Drop for AtExit {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

// L15 from a thread-local destructor: guards taken there, more than the
// inline table holds, after the growable table is gone (destroyed first:
// it was created after this destructor was registered), are tracked
// conservatively: a final cleanup from that thread answers InProgress
// rather than waiting for itself.
#[test]
fn l15_guards_taken_in_a_thread_local_destructor_still_refuse_a_self_wait() {
    let _watchdog = watchdog(120);
    let ls: &'static [Lifecycle<FakeProvider>] = Box::leak(
        (0..6)
            .map(|_| Lifecycle::new(FakeProvider::default()))
            .collect(),
    );
    for l in ls {
        l.startup(V).unwrap();
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Registered first, so destroyed last.
        AT_EXIT.with(|a| {
            *a.borrow_mut() = Some(AtExit(Some(Box::new(move || {
                let guards: Vec<_> = ls.iter().map(|l| l.enter().unwrap()).collect();
                let answers: Vec<_> = ls.iter().map(Lifecycle::cleanup).collect();
                drop(guards);
                // No guard left: the same thread's final cleanup now runs.
                let after = ls[0].cleanup().map(|c| c.is_final());
                let _ = tx.send((answers, after));
            }))));
        });
        // Now create the growable table (it is destroyed before AT_EXIT).
        let guards: Vec<_> = ls.iter().map(|l| l.enter().unwrap()).collect();
        drop(guards);
    });
    let (answers, after) = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the destructor's cleanups answered instead of waiting");
    for a in answers {
        assert_eq!(a, Err(Error::InProgress));
    }
    assert_eq!(
        after,
        Ok(true),
        "untracked guards are forgotten when dropped"
    );
    for l in &ls[1..] {
        assert!(l.cleanup().unwrap().is_final());
    }
}

// L6.4: a `Resource` registered while Active (the trait form) is released
// at the final cleanup, once, under its own name; one refused while not
// Active is released at once.
#[test]
fn l6_4_register_resource_trait_form_is_released_and_reported() {
    let _watchdog = watchdog(120);
    struct Table(Arc<AtomicUsize>);
    impl Resource for Table {
        fn name(&self) -> &str {
            "routing table"
        }
        fn release(self: Box<Self>) -> Result<(), BoxError> {
            self.0.fetch_add(1, SeqCst);
            Ok(())
        }
    }
    let l = Lifecycle::new(FakeProvider::default());
    let hits = Arc::new(AtomicUsize::new(0));
    assert_eq!(
        l.register_resource(Table(hits.clone())),
        Err(Error::NotInitialised(NotActive::NeverStarted))
    );
    assert_eq!(hits.load(SeqCst), 1, "refused: released at once");
    l.startup(V).unwrap();
    l.register_resource(Table(hits.clone())).unwrap();
    assert_eq!(hits.load(SeqCst), 1, "not released while Active");
    let report = l.cleanup().unwrap().into_report().unwrap();
    assert_eq!(hits.load(SeqCst), 2);
    assert_eq!(report.resources.len(), 1);
    assert_eq!(report.resources[0].name, "routing table");
    assert_eq!(report.resources[0].outcome, HookOutcome::Ok);
}

/// A provider that keeps every final report its hook receives.
#[derive(Default)]
struct Observed {
    reports: parking_lot::Mutex<Vec<DrainReport>>,
    panic_in_hook: AtomicBool,
}

impl Provider for Observed {
    type Socket = NoSocket;
    type State = ();
    fn versions(&self) -> VersionRange {
        VersionRange::new(V, V)
    }
    fn initialize(&self, init: &mut Registrar) -> Result<(), Error> {
        init.register_fn("r", || Ok(()));
        Ok(())
    }
    fn on_drained(&self, report: &DrainReport) {
        self.reports.lock().push(report.clone());
        if self.panic_in_hook.load(SeqCst) {
            panic!("observer exploded");
        }
    }
}

// D1: the report is never lost — a final Session drop, cleanup and
// cleanup_async all hand it to the provider's hook, which runs before
// Released; a panic in the hook is caught.
#[test]
fn d1_every_final_report_reaches_the_provider_hook() {
    let _watchdog = watchdog(120);
    let l = Lifecycle::new(Observed::default());
    {
        let _s = l.session(V).unwrap();
    } // the final cleanup runs in the drop, its report is not returned
    assert_eq!(l.provider().reports.lock().len(), 1);
    assert_eq!(l.provider().reports.lock()[0].generation, 0);
    assert_eq!(l.provider().reports.lock()[0].resources[0].name, "r");

    l.startup(V).unwrap();
    let returned = l.cleanup().unwrap().into_report().unwrap();
    assert_eq!(l.provider().reports.lock()[1], returned);

    l.startup(V).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let returned = rt
        .block_on(l.cleanup_async())
        .unwrap()
        .into_report()
        .unwrap();
    assert_eq!(l.provider().reports.lock()[2], returned);

    l.provider().panic_in_hook.store(true, SeqCst);
    l.startup(V).unwrap();
    let cleaned = catch_unwind(AssertUnwindSafe(|| l.cleanup()));
    assert!(cleaned.expect("no panic escapes").unwrap().is_final());
    assert_eq!(l.state(), State::Released);
    assert_eq!(l.generation(), 4);
    assert_eq!(l.provider().reports.lock().len(), 4);
}
