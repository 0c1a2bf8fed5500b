//! Refcount and guard contention, against baselines in the same group.
//!
//! - `startup_cleanup/{lifecycle,arc,mutex}/T`: one startup + cleanup pair
//!   while the count is held at ≥ 1 elsewhere (the lock-free fast path),
//!   against an `Arc` clone + drop, a `parking_lot::Mutex<usize>`
//!   increment + decrement, and `load_cas`: a bare load-then-CAS increment and
//!   decrement of an `AtomicU64` (the floor of a load-first CAS design), at
//!   T = 1 and 2 threads.
//! - `enter_exit/{lifecycle,atomic,arc}/T`: one operation guard taken and
//!   dropped, against a single shared `AtomicUsize` fetch_add + fetch_sub and
//!   an `Arc` clone + drop, at T = 1, 2 and 4 threads.
//! - `token/{lifecycle,task_tracker}/T`: one `OperationToken` taken and
//!   dropped, against tokio-util's `TaskTracker::token()` (the peer users of
//!   async runtimes know), at T = 1, 2 and 4 threads.
//!
//! Reported times are per operation pair *per thread*: each worker runs
//! `iters` pairs after a spin barrier and the slowest worker's time is
//! returned. Run: `cargo bench --bench contention`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use parking_lot::Mutex;
use provider_lifecycle::{Lifecycle, NoSocket, Provider, Version, VersionRange};

struct Bench;

impl Provider for Bench {
    type Socket = NoSocket;
    type State = ();
    fn versions(&self) -> VersionRange {
        VersionRange::new(Version::new(2, 2), Version::new(2, 2))
    }
    fn initialize(
        &self,
        _: &mut provider_lifecycle::Registrar,
    ) -> Result<(), provider_lifecycle::Error> {
        Ok(())
    }
}

const V: Version = Version::new(2, 2);

/// One load-then-CAS step of `delta` on `a` (a load-first CAS fast path).
fn load_cas(a: &AtomicU64, delta: i64) {
    let mut w = a.load(Ordering::Acquire);
    loop {
        let next = w.wrapping_add_signed(delta);
        match a.compare_exchange_weak(w, next, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return,
            Err(now) => w = now,
        }
    }
}

/// Runs `op` `iters` times on each of `threads` workers released together by
/// a spin barrier (a blocking barrier lets the scheduler stack workers on one
/// core and measures time-slicing); returns the slowest worker's time.
fn run_threads<S: Sync>(
    threads: usize,
    iters: u64,
    shared: &S,
    op: impl Fn(&S) + Sync,
) -> Duration {
    let ready = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (ready, op) = (&ready, &op);
                scope.spawn(move || {
                    ready.fetch_add(1, Ordering::AcqRel);
                    while ready.load(Ordering::Acquire) < threads {
                        std::hint::spin_loop();
                    }
                    let start = Instant::now();
                    for _ in 0..iters {
                        op(shared);
                    }
                    start.elapsed()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .max()
            .unwrap_or_default()
    })
}

fn startup_cleanup(c: &mut Criterion) {
    let mut g = c.benchmark_group("startup_cleanup");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    for threads in [1, 2] {
        let lifecycle = Lifecycle::new(Bench);
        lifecycle.startup(V).unwrap(); // held ≥ 1 for the whole run
        g.bench_with_input(BenchmarkId::new("lifecycle", threads), &threads, |b, &t| {
            b.iter_custom(|iters| {
                run_threads(t, iters, &lifecycle, |l| {
                    black_box(l.startup(black_box(V)).unwrap());
                    black_box(l.cleanup().unwrap());
                })
            });
        });
        let arc = Arc::new(0u64);
        g.bench_with_input(BenchmarkId::new("arc", threads), &threads, |b, &t| {
            b.iter_custom(|iters| run_threads(t, iters, &arc, |a| drop(black_box(Arc::clone(a)))));
        });
        let word = AtomicU64::new(1 << 3);
        g.bench_with_input(BenchmarkId::new("load_cas", threads), &threads, |b, &t| {
            b.iter_custom(|iters| {
                run_threads(t, iters, &word, |a| {
                    load_cas(a, 1 << 3);
                    load_cas(a, -(1 << 3));
                })
            });
        });
        let mutex = Mutex::new(1usize);
        g.bench_with_input(BenchmarkId::new("mutex", threads), &threads, |b, &t| {
            b.iter_custom(|iters| {
                run_threads(t, iters, &mutex, |m| {
                    *m.lock() += 1;
                    *m.lock() -= 1;
                })
            });
        });
        lifecycle.cleanup().unwrap();
    }
    g.finish();
}

fn enter_exit(c: &mut Criterion) {
    let mut g = c.benchmark_group("enter_exit");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    let lifecycle = Lifecycle::new(Bench);
    lifecycle.startup(V).unwrap();
    for threads in [1, 2, 4] {
        g.bench_with_input(BenchmarkId::new("lifecycle", threads), &threads, |b, &t| {
            b.iter_custom(|iters| {
                run_threads(t, iters, &lifecycle, |l| {
                    drop(black_box(l.enter().unwrap()))
                })
            });
        });
        let atomic = AtomicUsize::new(0);
        g.bench_with_input(BenchmarkId::new("atomic", threads), &threads, |b, &t| {
            b.iter_custom(|iters| {
                run_threads(t, iters, &atomic, |a| {
                    black_box(a.fetch_add(1, Ordering::Acquire));
                    black_box(a.fetch_sub(1, Ordering::Release));
                })
            });
        });
        let arc = Arc::new(0u64);
        g.bench_with_input(BenchmarkId::new("arc", threads), &threads, |b, &t| {
            b.iter_custom(|iters| run_threads(t, iters, &arc, |a| drop(black_box(Arc::clone(a)))));
        });
    }
    g.finish();
    lifecycle.cleanup().unwrap();
}

fn token(c: &mut Criterion) {
    let mut g = c.benchmark_group("token");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    let lifecycle = Lifecycle::new(Bench);
    lifecycle.startup(V).unwrap();
    let tracker = tokio_util::task::TaskTracker::new();
    for threads in [1, 2, 4] {
        g.bench_with_input(BenchmarkId::new("lifecycle", threads), &threads, |b, &t| {
            b.iter_custom(|iters| {
                run_threads(t, iters, &lifecycle, |l| {
                    drop(black_box(l.token().unwrap()))
                })
            });
        });
        g.bench_with_input(
            BenchmarkId::new("task_tracker", threads),
            &threads,
            |b, &t| {
                b.iter_custom(|iters| {
                    run_threads(t, iters, &tracker, |tr| drop(black_box(tr.token())))
                });
            },
        );
    }
    g.finish();
    lifecycle.cleanup().unwrap();
}

criterion_group!(benches, startup_cleanup, enter_exit, token);
criterion_main!(benches);
