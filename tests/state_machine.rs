//! A proptest-state-machine reference model of the whole lifecycle: random
//! sequences of startups (random versions), cleanups (including extra ones),
//! sessions, guards, failing initializations, restarts after Released, and
//! socket register/write/close/flush-progress/stale use. After every step the
//! real lifecycle must agree with the model on state, count, generation,
//! exactly-once initialization and teardown, and socket counts; after every
//! teardown every socket's bytes must be accounted for.
//!
//! 256 cases by default; set `PROPTEST_CASES` for more.
#![cfg(not(loom))]

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use parking_lot::Mutex;
use proptest::prelude::*;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};
use provider_lifecycle::*;
use support::*;

const LIMIT: u32 = 4;
/// Bytes a fake socket delivers per flush poll.
const RATE: u64 = 8;

#[derive(Debug, Clone)]
enum Op {
    Startup(Version),
    TryStartup(Version),
    Cleanup,
    OpenSession(Version),
    EndSession,
    SetFailInit(bool),
    Enter,
    Exit,
    Register { abort: bool },
    Write { sock: usize, bytes: u64 },
    Close { sock: usize },
    PollBackground,
    UseStale { which: usize },
}

#[derive(Debug, Clone)]
struct RefSock {
    abort: bool,
    unsent: u64,
}

#[derive(Debug, Clone)]
struct Model {
    state: State,
    count: u32,
    generation: u64,
    fail_init: bool,
    inits: usize,
    teardowns: usize,
    sessions: usize,
    guards: usize,
    open: Vec<RefSock>,
    closing: Vec<u64>,
    /// Bytes held by this generation's background closes when they were
    /// closed: all of it is reported as flushed at the final cleanup, by
    /// the drain or (S4) as flushed in the background.
    background_bytes: u64,
    stale: usize,
    /// What the last op should have returned (checked by the SUT).
    expect: Result<(), Error>,
    /// Bytes the last final cleanup should report (flushed, discarded).
    expect_report: Option<(u64, u64)>,
}

fn version() -> impl Strategy<Value = Version> {
    (0u8..4, 0u8..4).prop_map(|(a, b)| Version::new(a, b))
}

impl Model {
    fn negotiable(v: Version) -> bool {
        v.major != 0 && v >= Version::new(1, 1)
    }

    fn startup(&mut self, v: Version) -> Result<(), Error> {
        if !Self::negotiable(v) {
            return Err(Error::VersionNotSupported);
        }
        match self.state {
            State::Active if self.count >= LIMIT => Err(Error::ProcessLimit),
            State::Active => {
                self.count += 1;
                Ok(())
            }
            _ if self.fail_init => Err(Error::system_not_ready("fake init failure")),
            _ => {
                self.state = State::Active;
                self.count = 1;
                self.inits += 1;
                Ok(())
            }
        }
    }

    fn cleanup(&mut self) -> Result<(), Error> {
        if self.state != State::Active {
            // L4: the refusal names the state that refused.
            return Err(Error::NotInitialised(match self.state {
                State::Uninitialized => NotActive::NeverStarted,
                State::Draining => NotActive::Draining,
                _ => NotActive::Unpaired,
            }));
        }
        if self.count > 1 {
            self.count -= 1;
            return Ok(());
        }
        if self.guards > 0 {
            return Err(Error::InProgress);
        }
        // Reset policy: open sockets discard; closing ones flush fully.
        let discarded = self.open.iter().map(|s| s.unsent).sum();
        let flushed = self.background_bytes;
        self.expect_report = Some((flushed, discarded));
        self.background_bytes = 0;
        self.stale += self.open.len();
        self.open.clear();
        self.closing.clear();
        self.state = State::Released;
        self.count = 0;
        self.generation += 1;
        self.teardowns += 1;
        Ok(())
    }

    fn active(&self) -> Result<(), Error> {
        if self.state == State::Active {
            Ok(())
        } else {
            Err(Error::NotInitialised(match self.state {
                State::Uninitialized => NotActive::NeverStarted,
                State::Draining => NotActive::Draining,
                _ => NotActive::Released,
            }))
        }
    }
}

struct Reference;

impl ReferenceStateMachine for Reference {
    type State = Model;
    type Transition = Op;

    fn init_state() -> BoxedStrategy<Model> {
        Just(Model {
            state: State::Uninitialized,
            count: 0,
            generation: 0,
            fail_init: false,
            inits: 0,
            teardowns: 0,
            sessions: 0,
            guards: 0,
            open: Vec::new(),
            closing: Vec::new(),
            background_bytes: 0,
            stale: 0,
            expect: Ok(()),
            expect_report: None,
        })
        .boxed()
    }

    fn transitions(_: &Model) -> BoxedStrategy<Op> {
        prop_oneof![
            4 => version().prop_map(Op::Startup),
            1 => version().prop_map(Op::TryStartup),
            4 => Just(Op::Cleanup),
            2 => version().prop_map(Op::OpenSession),
            2 => Just(Op::EndSession),
            1 => any::<bool>().prop_map(Op::SetFailInit),
            1 => Just(Op::Enter),
            1 => Just(Op::Exit),
            3 => any::<bool>().prop_map(|abort| Op::Register { abort }),
            3 => (any::<usize>(), 0u64..40).prop_map(|(sock, bytes)| Op::Write { sock, bytes }),
            2 => any::<usize>().prop_map(|sock| Op::Close { sock }),
            2 => Just(Op::PollBackground),
            1 => any::<usize>().prop_map(|which| Op::UseStale { which }),
        ]
        .boxed()
    }

    fn preconditions(m: &Model, op: &Op) -> bool {
        match op {
            Op::EndSession => m.sessions > 0,
            Op::Exit => m.guards > 0,
            Op::Enter => m.guards < 2,
            Op::UseStale { .. } => m.stale > 0,
            _ => true,
        }
    }

    fn apply(mut m: Model, op: &Op) -> Model {
        m.expect_report = None;
        m.expect = match op {
            Op::Startup(v) | Op::TryStartup(v) => m.startup(*v),
            Op::Cleanup => m.cleanup(),
            Op::OpenSession(v) => {
                let r = m.startup(*v);
                if r.is_ok() {
                    m.sessions += 1;
                }
                r
            }
            Op::EndSession => {
                let r = m.cleanup();
                if r.is_ok() {
                    m.sessions -= 1;
                }
                r
            }
            Op::SetFailInit(b) => {
                m.fail_init = *b;
                Ok(())
            }
            Op::Enter => {
                let r = m.active();
                if r.is_ok() {
                    m.guards += 1;
                }
                r
            }
            Op::Exit => {
                m.guards -= 1;
                Ok(())
            }
            Op::Register { abort } => {
                let r = m.active();
                if r.is_ok() {
                    m.open.push(RefSock {
                        abort: *abort,
                        unsent: 0,
                    });
                }
                r
            }
            Op::Write { sock, bytes } => match m.active() {
                Ok(()) if !m.open.is_empty() => {
                    let n = m.open.len();
                    m.open[sock % n].unsent += bytes;
                    Ok(())
                }
                other => other,
            },
            Op::Close { sock } => match m.active() {
                Ok(()) if !m.open.is_empty() => {
                    let n = m.open.len();
                    let s = m.open.remove(sock % n);
                    if !s.abort && s.unsent > 0 {
                        m.closing.push(s.unsent);
                        m.background_bytes += s.unsent;
                    }
                    m.stale += 1;
                    Ok(())
                }
                other => other,
            },
            Op::PollBackground => {
                let r = m.active();
                if r.is_ok() {
                    for u in &mut m.closing {
                        *u -= (*u).min(RATE);
                    }
                    m.closing.retain(|u| *u > 0);
                }
                r
            }
            Op::UseStale { .. } => match m.active() {
                Ok(()) => Err(Error::NotSocket),
                e => e,
            },
        };
        m
    }
}

struct Sut {
    l: &'static Lifecycle<FakeProvider>,
    log: Log,
    knobs: Arc<Knobs>,
    sessions: Vec<Session<'static, FakeProvider>>,
    guards: Vec<OperationGuard<'static>>,
    open: Vec<(SocketHandle, Arc<Mutex<SockState>>)>,
    /// Sockets of the current generation, closed or not.
    generation_socks: Vec<Arc<Mutex<SockState>>>,
    stale: Vec<SocketHandle>,
    next_id: u32,
}

struct LifecycleTest;

fn same<T>(got: &Result<T, Error>, want: &Result<(), Error>) {
    match (got, want) {
        (Ok(_), Ok(())) => {}
        (Err(Error::SystemNotReady(_)), Err(Error::SystemNotReady(_))) => {}
        (Err(g), Err(w)) => assert_eq!(g, w),
        (Ok(_), Err(w)) => panic!("expected {w:?}, got Ok"),
        (Err(g), Ok(())) => panic!("expected Ok, got {g:?}"),
    }
}

impl StateMachineTest for LifecycleTest {
    type SystemUnderTest = Sut;
    type Reference = Reference;

    fn init_test(_: &Model) -> Sut {
        let p = FakeProvider::with_resources(&["table", "pool"]);
        let (log, knobs) = (p.log.clone(), p.knobs.clone());
        // Leaked so sessions and guards can borrow it for 'static; one small
        // allocation per case.
        let l = Box::leak(Box::new(Lifecycle::with_config(
            p,
            // The model predicts background closes exactly: no flusher
            // thread racing it (tests/background.rs covers the thread).
            Config::new()
                .with_count_limit(LIMIT)
                .with_background_flush(BackgroundFlush::Manual),
        )));
        Sut {
            l,
            log,
            knobs,
            sessions: Vec::new(),
            guards: Vec::new(),
            open: Vec::new(),
            generation_socks: Vec::new(),
            stale: Vec::new(),
            next_id: 0,
        }
    }

    fn apply(mut s: Sut, m: &Model, op: Op) -> Sut {
        let l = s.l;
        match op {
            Op::Startup(v) => same(&l.startup(v), &m.expect),
            Op::TryStartup(v) => same(&l.startup_with(v, StartupPolicy::NoWait), &m.expect),
            Op::Cleanup => {
                let r = l.cleanup();
                same(&r, &m.expect);
                if let Ok(c) = &r {
                    s.check_teardown(c, m);
                }
            }
            Op::OpenSession(v) => {
                let r = l.session(v);
                same(&r, &m.expect);
                if let Ok(sess) = r {
                    s.sessions.push(sess);
                }
            }
            Op::EndSession => {
                let mut sess = s.sessions.pop().expect("precondition");
                let r = sess.end();
                same(&r, &m.expect);
                match &r {
                    Ok(c) => s.check_teardown(c, m),
                    Err(_) => s.sessions.push(sess),
                }
            }
            Op::SetFailInit(b) => s.knobs.fail_init.store(b, Ordering::SeqCst),
            Op::Enter => {
                let r = l.enter();
                same(&r, &m.expect);
                if let Ok(g) = r {
                    s.guards.push(g);
                }
            }
            Op::Exit => drop(s.guards.pop()),
            Op::Register { abort } => {
                let plan = SockPlan {
                    linger: if abort {
                        Linger::Abort
                    } else {
                        Linger::Background
                    },
                    rate: RATE,
                    ..SockPlan::default()
                };
                let (sock, st) = FakeSocket::new(s.next_id, plan, &s.log);
                s.next_id += 1;
                let r = l.register_socket(sock);
                same(&r, &m.expect);
                match r {
                    Ok(h) => {
                        s.open.push((h, st.clone()));
                        s.generation_socks.push(st);
                    }
                    Err(_) => assert_eq!(st.lock().releases, 1, "refused socket released"),
                }
            }
            Op::Write { sock, bytes } => {
                if s.open.is_empty() {
                    same(&l.enter().map(drop), &m.expect);
                } else {
                    let h = s.open[sock % s.open.len()].0;
                    same(&l.with_socket(h, |x| x.write(bytes)), &m.expect);
                }
            }
            Op::Close { sock } => {
                if s.open.is_empty() {
                    same(&l.enter().map(drop), &m.expect);
                } else {
                    let i = sock % s.open.len();
                    let r = l.close_socket(s.open[i].0);
                    same(&r, &m.expect);
                    if r.is_ok() {
                        let (h, _) = s.open.remove(i);
                        s.stale.push(h);
                    }
                }
            }
            Op::PollBackground => {
                let r = l.poll_background();
                same(&r, &m.expect);
                if let Ok(left) = r {
                    assert_eq!(left, m.closing.len());
                }
            }
            Op::UseStale { which } => {
                let h = s.stale[which % s.stale.len()];
                same(&l.with_socket(h, |_| ()), &m.expect);
                same(&l.close_socket(h), &m.expect);
            }
        }
        s
    }

    fn check_invariants(s: &Sut, m: &Model) {
        let snap = s.l.snapshot();
        assert_eq!(
            (snap.state, snap.count, snap.generation),
            (m.state, m.count, m.generation)
        );
        assert_eq!(
            s.log.inits(),
            m.inits,
            "initialization exactly once per generation"
        );
        assert_eq!(
            s.log.unloads(),
            m.teardowns,
            "teardown exactly once per generation"
        );
        let releases = s.log.count(|e| matches!(e, Event::Release(_)));
        let failed_inits = s.log.count(|e| matches!(e, Event::InitFailed(_)));
        assert_eq!(
            releases,
            2 * (m.teardowns + failed_inits),
            "every resource released exactly once"
        );
        assert_eq!(s.l.open_sockets(), m.open.len());
        assert_eq!(s.l.background_sockets(), m.closing.len());
        assert_eq!(s.guards.len(), m.guards);
        assert_eq!(s.sessions.len(), m.sessions);
    }

    fn teardown(mut s: Sut, _: Model) {
        s.guards.clear();
        // End what is still counted so every generation is accounted for. A
        // session whose count a manual cleanup already consumed (they share
        // one count) ends with NotInitialised, as the model predicts.
        for mut sess in s.sessions.drain(..) {
            let _ = sess.end();
        }
        while s.l.cleanup().is_ok() {}
        for st in s.generation_socks.drain(..) {
            assert_accounted(&st.lock());
        }
    }
}

impl Sut {
    /// After a final cleanup: the report matches the model and every socket of
    /// the generation is accounted for and released exactly once.
    fn check_teardown(&mut self, c: &Cleanup, m: &Model) {
        match (c.report(), m.expect_report) {
            (Some(r), Some((flushed, discarded))) => {
                assert_eq!(r.bytes_flushed(), flushed, "{r}");
                assert_eq!(r.bytes_discarded(), discarded, "{r}");
                assert_eq!(r.resources.len(), 2);
                for st in self.generation_socks.drain(..) {
                    assert_accounted(&st.lock());
                }
                self.stale.extend(self.open.drain(..).map(|(h, _)| h));
            }
            (None, None) => {}
            (r, e) => panic!("report {r:?} but model expected {e:?}"),
        }
    }
}

prop_state_machine! {
    #![proptest_config(ProptestConfig {
        // PROPTEST_CASES overrides this default of 256.
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(256),
        max_shrink_iters: 4096,
        .. ProptestConfig::default()
    })]

    #[test]
    fn lifecycle_matches_the_reference_model(sequential 1..60 => LifecycleTest);
}
