//! Concurrent stress: more threads than cores run random mixes of startup,
//! NoWait startups, cleanup, sessions, guards, resource and socket
//! register/write/close for a bounded time, then every invariant is checked:
//! initialization and teardown exactly once per generation, every resource
//! released exactly once, per socket accepted = flushed + discarded and
//! released once, the count equal to successful startups minus cleanups, no
//! panic escaped. A watchdog fails the run on a hang and prints where each
//! thread was.
//!
//! `STRESS_SECS` (default 3) sets the duration, `STRESS_THREADS` (default 6)
//! the thread count, `STRESS_SEED` replays a run.
#![cfg(not(loom))]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use provider_lifecycle::*;

const V: Version = Version::new(2, 2);

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// splitmix64: small, seedable, good enough to pick operations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Debug, Default)]
struct SockCounters {
    accepted: AtomicU64,
    unsent: AtomicU64,
    delivered: AtomicU64,
    discarded: AtomicU64,
    releases: AtomicUsize,
    used_after_release: AtomicBool,
}

struct StressSocket {
    c: Arc<SockCounters>,
    linger: Linger,
    rate: u64,
}

impl Socket for StressSocket {
    fn linger(&self) -> Linger {
        self.linger
    }
    fn unsent(&self) -> u64 {
        self.c.unsent.load(Ordering::SeqCst)
    }
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        if self.c.releases.load(Ordering::SeqCst) > 0 {
            self.c.used_after_release.store(true, Ordering::SeqCst);
        }
        let n = self.unsent().min(self.rate);
        self.c.unsent.fetch_sub(n, Ordering::SeqCst);
        self.c.delivered.fetch_add(n, Ordering::SeqCst);
        if self.unsent() == 0 {
            Poll::Ready(Ok(()))
        } else {
            // Rate-limited, not blocked: ask to be polled again at once.
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
    fn abort(&mut self) -> Result<(), BoxError> {
        if self.c.releases.load(Ordering::SeqCst) > 0 {
            self.c.used_after_release.store(true, Ordering::SeqCst);
        }
        let n = self.c.unsent.swap(0, Ordering::SeqCst);
        self.c.discarded.fetch_add(n, Ordering::SeqCst);
        Ok(())
    }
    fn release(&mut self) -> Result<(), BoxError> {
        self.c.releases.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[derive(Default)]
struct Books {
    inits: Mutex<Vec<u64>>,
    unloads: Mutex<Vec<u64>>,
    /// resource id -> releases
    resources: Mutex<HashMap<u64, u32>>,
    next_resource: AtomicU64,
    sockets: Mutex<Vec<Arc<SockCounters>>>,
    /// One past the highest generation any of whose resources has been
    /// released: a guard of generation `g` must see this `<= g` (O2).
    released_from: AtomicU64,
}

impl Books {
    fn resource(
        self: &Arc<Self>,
        generation: u64,
    ) -> (
        String,
        impl FnOnce() -> Result<(), BoxError> + Send + 'static,
    ) {
        let id = self.next_resource.fetch_add(1, Ordering::SeqCst);
        self.resources.lock().insert(id, 0);
        let books = Arc::clone(self);
        (format!("res{id}"), move || {
            books
                .released_from
                .fetch_max(generation + 1, Ordering::SeqCst);
            *books.resources.lock().get_mut(&id).expect("registered") += 1;
            Ok(())
        })
    }
}

struct StressProvider(Arc<Books>);

impl Provider for StressProvider {
    type Socket = StressSocket;
    type State = ();
    fn versions(&self) -> VersionRange {
        VersionRange::new(Version::new(1, 1), Version::new(2, 2))
    }
    fn initialize(&self, init: &mut Registrar) -> Result<(), Error> {
        self.0.inits.lock().push(init.generation());
        for _ in 0..2 {
            let (name, f) = self.0.resource(init.generation());
            init.register_fn(name, f);
        }
        Ok(())
    }
    fn prepare_unload(&self) -> Result<(), BoxError> {
        // The generation being torn down is the one whose init ran last.
        let g = *self.0.inits.lock().last().expect("initialized");
        self.0.unloads.lock().push(g);
        Ok(())
    }
}

struct Watch {
    ops: Vec<AtomicU64>,
    at: Vec<Mutex<&'static str>>,
}

#[test]
fn stress_random_mixes_keep_every_invariant() {
    let secs = env("STRESS_SECS", 3);
    let threads = env("STRESS_THREADS", 6) as usize;
    let seed = env(
        "STRESS_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
    );
    eprintln!("stress: {threads} threads for {secs}s, STRESS_SEED={seed}");
    let books = Arc::new(Books::default());
    let l = Arc::new(Lifecycle::with_config(
        StressProvider(Arc::clone(&books)),
        Config::new()
            .with_drain_deadline(Duration::from_secs(5))
            .with_count_limit(1000),
    ));
    let watch = Arc::new(Watch {
        ops: (0..threads).map(|_| AtomicU64::new(0)).collect(),
        at: (0..threads).map(|_| Mutex::new("start")).collect(),
    });
    let startups = Arc::new(AtomicU64::new(0));
    let cleanups = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));

    // The watchdog: no thread made progress for 20 s means a hang.
    let watchdog = {
        let (watch, done) = (Arc::clone(&watch), Arc::clone(&done));
        let l = Arc::clone(&l);
        std::thread::spawn(move || {
            let mut last: Vec<u64> = vec![0; threads];
            let mut stuck_since = Instant::now();
            while !done.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(100));
                let now: Vec<u64> = watch.ops.iter().map(|o| o.load(Ordering::SeqCst)).collect();
                if now != last {
                    last = now;
                    stuck_since = Instant::now();
                } else if stuck_since.elapsed() > Duration::from_secs(20) {
                    eprintln!("watchdog: no progress for 20 s; lifecycle {l:?}");
                    for (i, at) in watch.at.iter().enumerate() {
                        eprintln!("  thread {i}: in {} after {} ops", at.lock(), last[i]);
                    }
                    eprintln!("STRESS_SEED={seed}");
                    std::process::exit(101);
                }
            }
        })
    };

    let deadline = Instant::now() + Duration::from_secs(secs);
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (l, books, watch) = (Arc::clone(&l), Arc::clone(&books), Arc::clone(&watch));
            let (startups, cleanups) = (Arc::clone(&startups), Arc::clone(&cleanups));
            std::thread::spawn(move || {
                let mut rng = Rng(seed ^ (t as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
                let mut held = 0u64;
                // Sockets this thread registered (and the counters they must
                // lead to), and older ones whose generation may have ended.
                let mut mine: Vec<(SocketHandle, Arc<SockCounters>)> = Vec::new();
                let mut stale: Vec<(SocketHandle, Arc<SockCounters>)> = Vec::new();
                let set = |s: &'static str| *watch.at[t].lock() = s;
                let check_final = |c: &Cleanup| {
                    if let Some(r) = c.report() {
                        assert!(r.resources.iter().all(|r| r.outcome.is_ok()), "{r}");
                        assert!(r.sockets.iter().all(|s| s.faults.is_none()), "{r}");
                        assert!(!r.operations.overran_deadline, "{r}");
                    }
                };
                while Instant::now() < deadline {
                    // Bias towards holding 0 or 1 counts, so that all the
                    // threads often hold none and generations turn over.
                    let r = rng.below(100);
                    let r = match held {
                        0 if r < 60 => r % 25, // mostly startups, some try
                        0 => 45 + r % 25,      // sessions and guards
                        1 => r,
                        _ => 25 + r % 20, // over one: clean up
                    };
                    match r {
                        0..=17 => {
                            set("startup");
                            let policy = if rng.below(2) == 0 {
                                StartupPolicy::Wait
                            } else {
                                StartupPolicy::FailFast
                            };
                            match l.startup_with(V, policy) {
                                Ok(_) => {
                                    held += 1;
                                    startups.fetch_add(1, Ordering::SeqCst);
                                }
                                Err(Error::InProgress) => {
                                    assert_eq!(policy, StartupPolicy::FailFast)
                                }
                                Err(Error::ProcessLimit) => {}
                                Err(e) => panic!("startup: {e}"),
                            }
                        }
                        18..=24 => {
                            set("no-wait startup");
                            match l.startup_with(V, StartupPolicy::NoWait) {
                                Ok(_) => {
                                    held += 1;
                                    startups.fetch_add(1, Ordering::SeqCst);
                                }
                                Err(Error::InProgress | Error::ProcessLimit) => {}
                                Err(e) => panic!("no-wait startup: {e}"),
                            }
                        }
                        25..=44 if held > 0 => {
                            set("cleanup");
                            let c = l.cleanup().expect("a held count can be cleaned up");
                            held -= 1;
                            cleanups.fetch_add(1, Ordering::SeqCst);
                            if held == 0 {
                                // Another thread's final cleanup may end this
                                // generation from now on.
                                stale.append(&mut mine);
                                stale.truncate(64);
                            }
                            check_final(&c);
                        }
                        45..=54 => {
                            set("session");
                            if let Ok(mut s) = l.session(V) {
                                startups.fetch_add(1, Ordering::SeqCst);
                                set("session: guard");
                                if let Ok(g) = l.enter() {
                                    std::hint::black_box(&g);
                                }
                                set("session: end");
                                let c = s.end().expect("session end");
                                cleanups.fetch_add(1, Ordering::SeqCst);
                                check_final(&c);
                            }
                        }
                        55..=69 => {
                            set("guard");
                            match l.enter() {
                                Ok(g) => {
                                    assert!(held == 0 || l.state() == State::Active);
                                    // O2: nothing of this guard's generation
                                    // is released while it lives.
                                    let generation = l.generation();
                                    let o2 = || {
                                        let from = books.released_from.load(Ordering::SeqCst);
                                        assert!(
                                            from <= generation,
                                            "O2: generation {generation} released under a live guard"
                                        );
                                    };
                                    o2();
                                    if rng.below(4) == 0 {
                                        std::thread::yield_now();
                                    }
                                    o2();
                                    drop(g);
                                }
                                Err(e) => {
                                    assert!(
                                        matches!(e, Error::NotInitialised(NotActive::NeverStarted | NotActive::Draining | NotActive::Released)),
                                        "{e:?}"
                                    );
                                    assert_eq!(held, 0, "holding a count means Active");
                                }
                            }
                        }
                        70..=74 if held > 0 => {
                            set("register resource");
                            let (name, f) = books.resource(l.generation());
                            l.register_resource_fn(name, f).expect("Active while held");
                        }
                        75..=86 if held > 0 => {
                            set("register socket");
                            let c = Arc::new(SockCounters::default());
                            books.sockets.lock().push(Arc::clone(&c));
                            let linger = match rng.below(3) {
                                0 => Linger::Abort,
                                _ => Linger::Background,
                            };
                            let s = StressSocket {
                                c: Arc::clone(&c),
                                linger,
                                rate: 1 + rng.below(64),
                            };
                            let h = match l.register_socket(s) {
                                Ok(h) => h,
                                // A long run without a generation turning
                                // over can fill the registry (2^24 open):
                                // the refused socket is already released.
                                Err(Error::ProcessLimit) => {
                                    assert_eq!(c.releases.load(Ordering::SeqCst), 1);
                                    continue;
                                }
                                Err(e) => panic!("register_socket while held: {e}"),
                            };
                            let n = rng.below(500);
                            set("write");
                            l.with_socket(h, |s| {
                                s.c.accepted.fetch_add(n, Ordering::SeqCst);
                                s.c.unsent.fetch_add(n, Ordering::SeqCst);
                            })
                            .expect("own socket");
                            mine.push((h, c));
                        }
                        87..=94 if held > 0 && !mine.is_empty() => {
                            set("close socket");
                            let i = rng.below(mine.len() as u64) as usize;
                            let (h, _) = mine.swap_remove(i);
                            // We have held a count since registering it, so
                            // its generation cannot have ended.
                            l.close_socket(h).expect("own open socket");
                            assert_eq!(l.close_socket(h), Err(Error::NotSocket));
                        }
                        87..=94 if held > 0 && !stale.is_empty() => {
                            set("stale handle");
                            let i = rng.below(stale.len() as u64) as usize;
                            let (h, mine_c) = &stale[i];
                            // Either the very same socket (its generation is
                            // still alive) or NotSocket: never another one.
                            match l.with_socket(*h, |s| Arc::ptr_eq(&s.c, mine_c)) {
                                Ok(same) => assert!(same, "a handle reached another socket"),
                                Err(e) => {
                                    assert_eq!(e, Error::NotSocket);
                                    stale.swap_remove(i);
                                }
                            }
                        }
                        95..=99 if held > 0 => {
                            set("poll closing");
                            l.poll_background().expect("Active while held");
                        }
                        _ => {}
                    }
                    watch.ops[t].fetch_add(1, Ordering::SeqCst);
                }
                set("releasing");
                while held > 0 {
                    let c = l.cleanup().expect("release held counts");
                    cleanups.fetch_add(1, Ordering::SeqCst);
                    check_final(&c);
                    held -= 1;
                    watch.ops[t].fetch_add(1, Ordering::SeqCst);
                }
                set("done");
            })
        })
        .collect();

    let mut panicked = 0;
    for w in workers {
        if w.join().is_err() {
            panicked += 1;
        }
    }
    done.store(true, Ordering::SeqCst);
    watchdog.join().unwrap();
    assert_eq!(panicked, 0, "no panic escaped (STRESS_SEED={seed})");

    // The count matches successful startups minus cleanups, and is zero.
    assert_eq!(
        startups.load(Ordering::SeqCst),
        cleanups.load(Ordering::SeqCst)
    );
    assert_eq!(l.count(), 0);
    assert_ne!(l.state(), State::Active);
    assert_ne!(l.state(), State::Draining);

    // Initialization and teardown exactly once per generation.
    let inits = books.inits.lock().clone();
    let unloads = books.unloads.lock().clone();
    let generations = l.generation();
    assert_eq!(
        inits,
        (0..generations).collect::<Vec<_>>(),
        "one init per generation"
    );
    assert_eq!(unloads, inits, "one teardown per generation");
    eprintln!(
        "stress: {} startups, {} generations, {} resources, {} sockets",
        startups.load(Ordering::SeqCst),
        generations,
        books.resources.lock().len(),
        books.sockets.lock().len()
    );
    assert!(generations > 0, "the run tore down at least once");

    // Every resource released exactly once.
    for (id, n) in books.resources.lock().iter() {
        assert_eq!(*n, 1, "resource {id} released {n} times");
    }
    // Every socket: accepted = flushed + discarded, released once.
    for c in books.sockets.lock().iter() {
        let (a, d, x) = (
            c.accepted.load(Ordering::SeqCst),
            c.delivered.load(Ordering::SeqCst),
            c.discarded.load(Ordering::SeqCst),
        );
        assert_eq!(a, d + x, "accepted = flushed + discarded");
        assert_eq!(c.unsent.load(Ordering::SeqCst), 0);
        assert_eq!(
            c.releases.load(Ordering::SeqCst),
            1,
            "released exactly once"
        );
        assert!(!c.used_after_release.load(Ordering::SeqCst));
    }
}
