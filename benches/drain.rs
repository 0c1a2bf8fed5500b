//! The final cleanup's cost.
//!
//! - `final_cleanup/{lifecycle,vec_drop}/N`: the final cleanup of a lifecycle
//!   holding N idle sockets and N resources (Reset policy: each socket is
//!   aborted and released, each resource released, all reported), against
//!   dropping a `Vec` of the same N boxed sockets and N boxed resources.
//! - `graceful_drain/1000x1ms`: 1,000 closed graceful sockets that each need
//!   1 ms after their first flush step before any byte moves. Draining them
//!   one after another would take at least 1 s.
//!
//! Run: `cargo bench --bench drain`.
#![allow(missing_docs)]

#[path = "../examples/common/timer.rs"]
mod timer;

use std::hint::black_box;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use provider_lifecycle::{BoxError, Lifecycle, Provider, Resource, Socket, Version, VersionRange};

struct Bench;

impl Provider for Bench {
    type Socket = BenchSocket;
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

/// An idle socket, or a slow one: `unsent` bytes that only move once `delay`
/// has passed since the first flush step.
struct BenchSocket {
    unsent: u64,
    delay: Duration,
    first_poll: Option<Instant>,
}

impl BenchSocket {
    fn idle() -> BenchSocket {
        BenchSocket {
            unsent: 0,
            delay: Duration::ZERO,
            first_poll: None,
        }
    }
}

impl Socket for BenchSocket {
    fn unsent(&self) -> u64 {
        self.unsent
    }
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        let first = *self.first_poll.get_or_insert_with(Instant::now);
        if first.elapsed() >= self.delay {
            self.unsent = 0;
        }
        if self.unsent == 0 {
            Poll::Ready(Ok(()))
        } else {
            // Ready after `delay`: the timer wakes it then.
            timer::wake_at(first + self.delay, cx.waker().clone());
            Poll::Pending
        }
    }
    fn abort(&mut self) -> Result<(), BoxError> {
        self.unsent = 0;
        Ok(())
    }
}

struct BenchResource(#[allow(dead_code)] u64);

impl Resource for BenchResource {
    fn name(&self) -> &str {
        "bench"
    }
    fn release(self: Box<Self>) -> Result<(), BoxError> {
        Ok(())
    }
}

const V: Version = Version::new(2, 2);

fn final_cleanup(c: &mut Criterion) {
    let mut g = c.benchmark_group("final_cleanup");
    g.sample_size(20).measurement_time(Duration::from_secs(4));
    for n in [10_000usize, 100_000] {
        g.bench_with_input(BenchmarkId::new("lifecycle", n), &n, |b, &n| {
            b.iter_batched(
                || {
                    let l = Lifecycle::new(Bench);
                    l.startup(V).unwrap();
                    for i in 0..n {
                        l.register_socket(BenchSocket::idle()).unwrap();
                        l.register_resource(BenchResource(i as u64)).unwrap();
                    }
                    l
                },
                |l| {
                    let report = l.cleanup().unwrap();
                    black_box(&report);
                    (l, report)
                },
                BatchSize::PerIteration,
            );
        });
        g.bench_with_input(BenchmarkId::new("vec_drop", n), &n, |b, &n| {
            b.iter_batched(
                || {
                    let socks: Vec<Box<dyn Socket>> =
                        (0..n).map(|_| Box::new(BenchSocket::idle()) as _).collect();
                    let res: Vec<Box<dyn Resource>> = (0..n)
                        .map(|i| Box::new(BenchResource(i as u64)) as _)
                        .collect();
                    (socks, res)
                },
                |v| drop(black_box(v)),
                BatchSize::PerIteration,
            );
        });
    }
    g.finish();
}

fn graceful_drain(c: &mut Criterion) {
    let mut g = c.benchmark_group("graceful_drain");
    g.sample_size(20).measurement_time(Duration::from_secs(4));
    g.bench_function("1000x1ms", |b| {
        b.iter_batched(
            || {
                let l = Lifecycle::new(Bench);
                l.startup(V).unwrap();
                for _ in 0..1000 {
                    let h = l
                        .register_socket(BenchSocket {
                            unsent: 4096,
                            delay: Duration::from_millis(1),
                            first_poll: None,
                        })
                        .unwrap();
                    l.close_socket(h).unwrap(); // background: stays flushing
                }
                l
            },
            |l| {
                let report = l.cleanup().unwrap();
                assert!(report.report().unwrap().is_clean());
                (l, report)
            },
            BatchSize::PerIteration,
        );
    });
    g.finish();
}

criterion_group!(benches, final_cleanup, graceful_drain);
criterion_main!(benches);
