//! A provider library as a host loads it: a `cdylib` built on the shim,
//! exporting `WSPStartup`, whose helper threads come from `os_spawner`.
//! `tests/unload.rs` `dlopen`s it, drives it through its table, cleans it
//! up and `dlclose`s it, hundreds of times, and checks that it really
//! unloads (L17). `cargo test` builds it (as
//! `target/debug/examples/libunload_provider.so`).

use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll};

use provider_lifecycle::*;
use provider_lifecycle_winsock::{Shim, SocketRequest, WinsockProvider, WinsockSocket, os_spawner};

struct Unload;

struct UnloadState {
    shim: Shim,
}

/// A socket that accepts bytes and flushes them one poll later (so a
/// graceful close goes to the background flusher thread).
struct Slow {
    linger: Linger,
    unsent: u64,
    polled: bool,
}

impl Socket for Slow {
    fn linger(&self) -> Linger {
        self.linger
    }
    fn unsent(&self) -> u64 {
        self.unsent
    }
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        if !self.polled {
            self.polled = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        DELIVERED.fetch_add(self.unsent as u32, Ordering::Relaxed);
        self.unsent = 0;
        Poll::Ready(Ok(()))
    }
    fn abort(&mut self) -> Result<(), BoxError> {
        self.unsent = 0;
        Ok(())
    }
}

impl WinsockSocket for Slow {
    fn set_linger(&mut self, linger: Linger) {
        self.linger = linger;
    }
    fn send(&mut self, buffers: &[&[u8]]) -> Result<u32, Error> {
        let n: usize = buffers.iter().map(|b| b.len()).sum();
        self.unsent += n as u64;
        Ok(n as u32)
    }
}

impl Provider for Unload {
    type Socket = Slow;
    type State = UnloadState;
    fn versions(&self) -> VersionRange {
        VersionSet::WINSOCK.range()
    }
    fn negotiate(&self, requested: Version) -> Result<Negotiated, Error> {
        VersionSet::WINSOCK.negotiate(requested)
    }
    fn initialize(&self, _: &mut Registrar) -> Result<UnloadState, Error> {
        Ok(UnloadState { shim: Shim::new() })
    }
}

static LIFECYCLE: Lifecycle<Unload> =
    Lifecycle::with_config(Unload, Config::new().with_spawner(os_spawner));

/// Bytes the sockets delivered; a fresh load starts at 0.
static DELIVERED: AtomicU32 = AtomicU32::new(0);
/// Set by the host through `unload_probe_mark`; a fresh load starts at 0.
static MARK: AtomicU32 = AtomicU32::new(0);

impl WinsockProvider for Unload {
    const DESCRIPTION: &'static str = "unload test provider";
    fn lifecycle() -> &'static Lifecycle<Unload> {
        &LIFECYCLE
    }
    fn shim(state: &UnloadState) -> &Shim {
        &state.shim
    }
    fn open_socket(&self, _: &UnloadState, _: &SocketRequest) -> Result<Slow, Error> {
        Ok(Slow {
            linger: Linger::Background,
            unsent: 0,
            polled: false,
        })
    }
}

provider_lifecycle_winsock::export_wsp_startup!(Unload);

/// The host's probe of this load's statics: sets the mark to `mark` and
/// returns the mark and the bytes delivered before, as `mark << 32 | bytes`.
#[unsafe(no_mangle)]
pub extern "C" fn unload_probe(mark: u32) -> u64 {
    let before = MARK.swap(mark, Ordering::Relaxed);
    (u64::from(before) << 32) | u64::from(DELIVERED.load(Ordering::Relaxed))
}

/// Not used as a program: the library is the example.
#[allow(dead_code)]
fn main() {}
