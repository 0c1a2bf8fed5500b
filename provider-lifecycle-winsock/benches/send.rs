//! Where a provider spends its time: a 1 KiB `WSPSend` through the table,
//! each worker thread on its own socket, at 1, 2 and 4 threads, measured in
//! the same run as
//!
//! - `core`: the same send on the core's provider-call path (`with_socket`
//!   on the socket's handle): what the shim adds is the difference;
//! - `core_operate`: the same through `operate` (a guard, the provider's
//!   state and the socket), the core path of a call that needs its state
//!   as every shim call does (the shim's `SOCKET` table lives there);
//! - `floor`: what such a call needs at least: this thread's shard add/sub
//!   around the socket's own uncontended mutex, and the socket's copy.
//!
//! `wsp_send` uses the shim's own `SOCKET` values; `wsp_send_upcall` values
//! a host made with `WPUCreateSocketHandle`, mapped back through
//! `WPUQuerySocketHandleContext`. Times are per call per thread (the
//! slowest worker's). Run: `cargo bench -p provider-lifecycle-winsock --bench send`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

mod common;
use common::*;

const DATA: [u8; 1024] = [7; 1024];

/// Runs `op(worker)` `iters` times on each of `threads` workers released
/// together by a spin barrier; the slowest worker's time.
fn run_workers(threads: usize, iters: u64, op: impl Fn(usize) + Sync) -> Duration {
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
                        op(worker);
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

fn send_path(c: &mut Criterion) {
    let mut g = c.benchmark_group("send");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    for handles in [false, true] {
        let t = start(upcalls(handles));
        let sockets: Vec<_> = (0..4).map(|_| socket(&t)).collect();
        let name = if handles {
            "wsp_send_upcall"
        } else {
            "wsp_send"
        };
        for threads in [1, 2, 4] {
            g.bench_with_input(BenchmarkId::new(name, threads), &threads, |b, &n| {
                b.iter_custom(|iters| {
                    run_workers(n, iters, |w| {
                        black_box(send(&t, sockets[w], &DATA));
                    })
                });
            });
            if !handles {
                g.bench_with_input(BenchmarkId::new("core", threads), &threads, |b, &n| {
                    b.iter_custom(|iters| {
                        run_workers(n, iters, |w| {
                            black_box(core_send(sockets[w], &DATA));
                        })
                    });
                });
                g.bench_with_input(
                    BenchmarkId::new("core_operate", threads),
                    &threads,
                    |b, &n| {
                        b.iter_custom(|iters| {
                            run_workers(n, iters, |w| {
                                black_box(core_operate_send(sockets[w], &DATA));
                            })
                        });
                    },
                );
            }
        }
        cleanup(&t);
    }
    let shards = Shards::new();
    let floor_sockets: Vec<crossbeam_utils::CachePadded<std::sync::Mutex<Queued>>> = (0..4)
        .map(|_| crossbeam_utils::CachePadded::new(std::sync::Mutex::new(Queued::new())))
        .collect();
    for threads in [1, 2, 4] {
        g.bench_with_input(BenchmarkId::new("floor", threads), &threads, |b, &n| {
            b.iter_custom(|iters| {
                run_workers(n, iters, |w| {
                    black_box(floor_send(&shards, &floor_sockets[w], &DATA));
                })
            });
        });
    }
    g.finish();
}

criterion_group!(benches, send_path);
criterion_main!(benches);
