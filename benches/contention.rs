//! Refcount and guard contention, against baselines in the same group.
//!
//! - `startup_cleanup/…/T`: one startup + cleanup pair while the count is
//!   held at ≥ 1 elsewhere (the lock-free fast path), at T = 1 and 2
//!   threads, against:
//!   - `arc`: an `Arc` clone + drop (the floor of any shared count);
//!   - `checked_add`: a bare `fetch_add` whose returned word's state bits are
//!     checked (undone if not Active) + `fetch_sub` (the floor of this
//!     crate's design);
//!   - `load_cas`: a bare load-then-CAS increment and decrement (the floor of
//!     a load-first CAS design);
//!   - `mutex` / `std_mutex`: a `parking_lot` / `std::sync` `Mutex<usize>`
//!     increment + decrement;
//!   - `rc_singleton`: the `reference-counted-singleton` crate's
//!     `get()` + drop of the reference (its counted handle).
//! - `enter_exit/…/T`: one operation guard taken and dropped, at T = 1, 2
//!   and 4 threads, against `shard` (the floor: a `fetch_add` + `fetch_sub`
//!   on this thread's `CachePadded` shard found through a `thread_local!`),
//!   `task_tracker` (tokio-util's `TaskTracker::token()`), a single shared
//!   `AtomicUsize` pair (`atomic`) and an `Arc` clone + drop.
//! - `token/{lifecycle,owned,owned_clone,task_tracker}/T`: one
//!   `OperationToken` taken and dropped; one `OwnedToken` taken from an
//!   `Arc`ed lifecycle and dropped (`owned`, O5); one clone of a held
//!   `OwnedToken` dropped (`owned_clone`); against tokio-util's
//!   `TaskTracker::token()` (the peer users of async runtimes know, itself
//!   an `Arc` clone and a shared count), at T = 1, 2 and 4 threads.
//!
//! - `socket/{with_socket,operate,enter_state,floor}/T`: the socket path a
//!   provider call takes, each worker on its own socket (see `socket_path`).
//!
//! Reported times are per operation pair *per thread*: each worker runs
//! `iters` pairs after a spin barrier and the slowest worker's time is
//! returned. Run: `cargo bench --bench contention`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, criterion_group, criterion_main};
use parking_lot::Mutex;
use provider_lifecycle::Lifecycle;

mod common;
use common::*;

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
    run_workers(threads, iters, shared, |s, _| op(s))
}

/// [`run_threads`] with each worker's index (0..threads) passed to `op`.
fn run_workers<S: Sync>(
    threads: usize,
    iters: u64,
    shared: &S,
    op: impl Fn(&S, usize) + Sync,
) -> Duration {
    let ready = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|worker| {
                let (ready, op) = (&ready, &op);
                scope.spawn(move || {
                    ready.fetch_add(1, Ordering::AcqRel);
                    while ready.load(Ordering::Acquire) < threads {
                        std::hint::spin_loop();
                    }
                    let start = Instant::now();
                    for _ in 0..iters {
                        op(shared, worker);
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

/// The same-run peer of guards and tokens: tokio-util's
/// `TaskTracker::token()` taken and dropped.
fn task_tracker_tokens(g: &mut BenchmarkGroup<'_, WallTime>, threads: usize) {
    let tracker = tokio_util::task::TaskTracker::new();
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
                    // The results are consumed as a caller does (is it Ok?),
                    // not forced whole through `black_box`: a 16-byte
                    // `Started` written field by field and re-read as one
                    // SSE value stalls store forwarding, a cost of the
                    // harness (an `Arc` is one 8-byte pointer).
                    black_box(l.startup(black_box(V)).is_ok());
                    black_box(l.cleanup().is_ok());
                })
            });
        });
        let arc = Arc::new(0u64);
        g.bench_with_input(BenchmarkId::new("arc", threads), &threads, |b, &t| {
            b.iter_custom(|iters| run_threads(t, iters, &arc, |a| drop(black_box(Arc::clone(a)))));
        });
        let word = AtomicU64::new((1 << 3) | 1);
        g.bench_with_input(
            BenchmarkId::new("checked_add", threads),
            &threads,
            |b, &t| {
                b.iter_custom(|iters| run_threads(t, iters, &word, checked_add_pair));
            },
        );
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
        let std_mutex = std::sync::Mutex::new(1usize);
        g.bench_with_input(BenchmarkId::new("std_mutex", threads), &threads, |b, &t| {
            b.iter_custom(|iters| {
                run_threads(t, iters, &std_mutex, |m| {
                    *m.lock().unwrap() += 1;
                    *m.lock().unwrap() -= 1;
                })
            });
        });
        let singleton = reference_counted_singleton::RefCountedSingleton::<u64>::default();
        let held = singleton
            .get_or_init(|| Ok::<u64, std::io::Error>(0))
            .unwrap(); // held ≥ 1, like the lifecycle
        g.bench_with_input(
            BenchmarkId::new("rc_singleton", threads),
            &threads,
            |b, &t| {
                b.iter_custom(|iters| {
                    run_threads(t, iters, &singleton, |s| drop(black_box(s.get().unwrap())))
                });
            },
        );
        drop(held);
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
        let shards = Shards::new();
        g.bench_with_input(BenchmarkId::new("shard", threads), &threads, |b, &t| {
            b.iter_custom(|iters| run_threads(t, iters, &shards, shard_pair));
        });
        task_tracker_tokens(&mut g, threads);
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
    let shared = Arc::new(Lifecycle::new(Bench));
    shared.startup(V).unwrap();
    let held = shared.owned_token().unwrap();
    for threads in [1, 2, 4] {
        g.bench_with_input(BenchmarkId::new("lifecycle", threads), &threads, |b, &t| {
            b.iter_custom(|iters| {
                run_threads(t, iters, &lifecycle, |l| {
                    drop(black_box(l.token().unwrap()))
                })
            });
        });
        g.bench_with_input(BenchmarkId::new("owned", threads), &threads, |b, &t| {
            b.iter_custom(|iters| {
                run_threads(t, iters, &shared, |l| {
                    drop(black_box(l.owned_token().unwrap()))
                })
            });
        });
        g.bench_with_input(
            BenchmarkId::new("owned_clone", threads),
            &threads,
            |b, &t| {
                b.iter_custom(|iters| run_threads(t, iters, &held, |h| drop(black_box(h.clone()))));
            },
        );
        task_tracker_tokens(&mut g, threads);
    }
    g.finish();
    drop(held);
    lifecycle.cleanup().unwrap();
    shared.cleanup().unwrap();
}

/// The socket path (issue 21): each worker on its own socket. `with_socket`
/// (a guard and a lookup), `operate` (a guard, a lookup and the state),
/// `enter_state` (a guard and `state()`), against `floor`: what such a call
/// needs at least, this thread's shard add/sub and the socket's own
/// uncontended mutex.
fn socket_path(c: &mut Criterion) {
    let mut g = c.benchmark_group("socket");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    let l = Lifecycle::new(Socketed);
    l.startup(V).unwrap();
    let handles: Vec<_> = (0..4)
        .map(|_| l.register_socket(Sock(0)).unwrap())
        .collect();
    let floor_shards = Shards::new();
    let floor_socks: Vec<crossbeam_utils::CachePadded<std::sync::Mutex<u64>>> =
        (0..4).map(|_| Default::default()).collect();
    for threads in [1, 2, 4] {
        g.bench_with_input(
            BenchmarkId::new("with_socket", threads),
            &threads,
            |b, &t| {
                b.iter_custom(|iters| {
                    run_workers(t, iters, &l, |l, w| {
                        l.with_socket(handles[w], |s| s.0 = black_box(s.0 + 1))
                            .unwrap();
                    })
                });
            },
        );
        g.bench_with_input(BenchmarkId::new("operate", threads), &threads, |b, &t| {
            b.iter_custom(|iters| {
                run_workers(t, iters, &l, |l, w| {
                    l.operate(handles[w], |st, s| s.0 = black_box(s.0 + *st))
                        .unwrap();
                })
            });
        });
        g.bench_with_input(
            BenchmarkId::new("enter_state", threads),
            &threads,
            |b, &t| {
                b.iter_custom(|iters| {
                    run_threads(t, iters, &l, |l| {
                        let g = l.enter().unwrap();
                        black_box(*g.state());
                    })
                });
            },
        );
        g.bench_with_input(BenchmarkId::new("floor", threads), &threads, |b, &t| {
            b.iter_custom(|iters| {
                run_workers(t, iters, &floor_shards, |s, w| {
                    provider_call_floor(s, &floor_socks[w]);
                })
            });
        });
    }
    g.finish();
    l.cleanup().unwrap();
}

criterion_group!(benches, startup_cleanup, enter_exit, token, socket_path);
criterion_main!(benches);
