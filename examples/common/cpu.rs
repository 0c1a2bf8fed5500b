//! CPU time of the whole process (every thread), from `getrusage`: what
//! `examples/drain_cost.rs` and `tests/async.rs` measure a wait by.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::time::Duration;

/// CPU time of the whole process so far (user + system).
pub fn process_cpu() -> Duration {
    // SAFETY: getrusage writes one `rusage` into the zeroed struct we own
    // and reads nothing else; RUSAGE_SELF is a valid `who`.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}
