//! What the bench targets share: the providers they measure and the floors
//! they are measured against.
#![allow(dead_code, unreachable_pub)]

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use provider_lifecycle::{NoSocket, Provider, Version, VersionRange};

/// A provider with no sockets and no state.
pub struct Bench;

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

pub const V: Version = Version::new(2, 2);

/// The checked-add floor: add, read the state bits from the returned word,
/// undo if not Active, then subtract.
#[inline(always)]
pub fn checked_add_pair(a: &AtomicU64) {
    let prev = a.fetch_add(1 << 3, Ordering::AcqRel);
    if prev & 0b11 != 1 {
        a.fetch_sub(1 << 3, Ordering::AcqRel);
        return;
    }
    black_box(a.fetch_sub(1 << 3, Ordering::AcqRel));
}

/// The shard floor of a guard: this thread's cache-padded counter, chosen
/// once per thread through a `thread_local!`.
pub struct Shards(pub [crossbeam_utils::CachePadded<AtomicUsize>; 32]);

pub static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    pub static MY_SHARD: usize = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % 32;
}

/// Always inlined, like the paths it is the floor of: as a call, whether
/// it is inlined moved with unrelated changes to the crate.
#[inline(always)]
pub fn shard_pair(s: &Shards) {
    let i = MY_SHARD.with(|i| *i);
    black_box(s.0[i].fetch_add(1, Ordering::Acquire));
    black_box(s.0[i].fetch_sub(1, Ordering::Release));
}

impl Shards {
    pub fn new() -> Shards {
        Shards(std::array::from_fn(|_| Default::default()))
    }
}

/// The floor of a provider call on its own socket: this thread's shard
/// add/sub around the socket's own uncontended mutex.
#[inline(always)]
pub fn provider_call_floor(s: &Shards, socket: &std::sync::Mutex<u64>) {
    let i = MY_SHARD.with(|i| *i);
    s.0[i].fetch_add(1, Ordering::Acquire);
    *socket.lock().unwrap() += 1;
    s.0[i].fetch_sub(1, Ordering::Release);
}

/// A provider with a trivial socket, for the socket path.
pub struct Socketed;

pub struct Sock(pub u64);

impl provider_lifecycle::Socket for Sock {
    fn unsent(&self) -> u64 {
        0
    }
    fn poll_flush(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), provider_lifecycle::BoxError>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn abort(&mut self) -> Result<(), provider_lifecycle::BoxError> {
        Ok(())
    }
}

impl Provider for Socketed {
    type Socket = Sock;
    type State = u64;
    fn versions(&self) -> VersionRange {
        VersionRange::new(V, V)
    }
    fn initialize(
        &self,
        _: &mut provider_lifecycle::Registrar,
    ) -> Result<u64, provider_lifecycle::Error> {
        Ok(1)
    }
}
