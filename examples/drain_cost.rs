//! What the final cleanup's wait costs: registers N in-memory sockets that
//! each become flushable at a time spread evenly over SPREAD_MS (half of
//! them trickling bytes out in four steps before that, half idle until
//! then), closes them in the background, runs the final cleanup, and prints
//! as its last line
//!
//! ```text
//! drain_cost: n=N wall_ms=W cpu_ms=C cpu_per_wall=R
//! ```
//!
//! where W is the wall time of the cleanup and C the CPU time the whole
//! process (every thread: the drain, the example's timer) used meanwhile,
//! from `getrusage`. The sockets wake through a one-thread timer
//! (`examples/common/timer.rs`), as real ones wake through a reactor; the
//! drain polls a socket only after its wake-up.
//!
//! ```sh
//! cargo run --release --example drain_cost -- 10000 1000
//! cargo run --release --example drain_cost -- 100000 2000
//! ```

#[path = "common/cpu.rs"]
mod cpu;
#[path = "common/timer.rs"]
mod timer;

use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use provider_lifecycle::{
    BoxError, Config, Lifecycle, Linger, Provider, Socket, Version, VersionRange,
};

/// Bytes each socket holds when it is closed.
const QUEUED: u64 = 4096;
/// Trickling sockets deliver their bytes in this many steps before ready.
const STEPS: u32 = 4;

struct MemSocket {
    unsent: u64,
    /// When everything can go.
    ready_at: Instant,
    /// Trickling: part goes at each of `STEPS` times before `ready_at`.
    trickle: Option<(Instant, Duration)>,
}

impl Socket for MemSocket {
    fn linger(&self) -> Linger {
        Linger::Background
    }
    fn unsent(&self) -> u64 {
        self.unsent
    }
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        let now = Instant::now();
        if now >= self.ready_at {
            self.unsent = 0;
            return Poll::Ready(Ok(()));
        }
        let mut next = self.ready_at;
        if let Some((start, step)) = self.trickle {
            // Steps that have come: the share of the bytes they let out.
            let done = (now.duration_since(start).as_nanos() / step.as_nanos().max(1)) as u64;
            let done = done.min(u64::from(STEPS));
            self.unsent = QUEUED - QUEUED * done / (u64::from(STEPS) + 1);
            let at = start + step * (done as u32 + 1);
            if at < next {
                next = at;
            }
        }
        timer::wake_at(next, cx.waker().clone());
        Poll::Pending
    }
    fn abort(&mut self) -> Result<(), BoxError> {
        self.unsent = 0;
        Ok(())
    }
}

struct Mem;

impl Provider for Mem {
    type Socket = MemSocket;
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

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let spread_ms: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000);
    let spread = Duration::from_millis(spread_ms);

    let l = Lifecycle::with_config(
        Mem,
        Config::new().with_drain_deadline(spread + Duration::from_secs(30)),
    );
    l.startup(Version::new(2, 2)).expect("startup");
    let t0 = Instant::now();
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let ready_at = t0 + spread * (i + 1) / n;
            let trickle = (i % 2 == 0).then(|| (t0, (ready_at - t0) / (STEPS + 1)));
            l.register_socket(MemSocket {
                unsent: QUEUED,
                ready_at,
                trickle,
            })
            .expect("register")
        })
        .collect();
    for h in handles {
        l.close_socket(h).expect("close");
    }

    let cpu0 = cpu::process_cpu();
    let start = Instant::now();
    let report = l.cleanup().expect("cleanup").into_report().expect("final");
    let wall = start.elapsed();
    let cpu = cpu::process_cpu() - cpu0;

    let lines = report.sockets.len() as u64 + report.flushed_in_background.sockets;
    assert_eq!(lines, u64::from(n), "every socket accounted");
    assert_eq!(report.bytes_discarded(), 0, "nothing discarded");
    assert_eq!(report.bytes_flushed(), u64::from(n) * QUEUED);
    println!(
        "drain_cost: n={n} wall_ms={:.1} cpu_ms={:.1} cpu_per_wall={:.3}",
        wall.as_secs_f64() * 1e3,
        cpu.as_secs_f64() * 1e3,
        cpu.as_secs_f64() / wall.as_secs_f64()
    );
}
