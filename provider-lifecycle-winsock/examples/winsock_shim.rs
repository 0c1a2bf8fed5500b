//! A Winsock service provider in ~100 lines: a `Provider` of in-memory
//! sockets, exported with the real `WSPStartup` (five arguments, `system`
//! calling convention) and the full 30-entry `WSPPROC_TABLE`, then driven
//! the way ws2_32 drives a provider DLL: only through the startup pointer
//! and the table it fills.
//!
//! `cargo run -p provider-lifecycle-winsock --example winsock_shim`

use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use provider_lifecycle::*;
use provider_lifecycle_winsock::sys::*;
use provider_lifecycle_winsock::{Shim, SocketRequest, WinsockProvider, WinsockSocket};

/// The provider: counts what its sockets deliver.
struct Echo {
    delivered: AtomicU64,
}

/// Its per-generation state: the shim's bookkeeping (upcall table in force,
/// SOCKET values handed out).
struct EchoState {
    shim: Shim,
}

/// A socket that "sends" by queueing, and flushes everything when asked.
struct EchoSocket {
    linger: Linger,
    unsent: u64,
}

impl Socket for EchoSocket {
    fn linger(&self) -> Linger {
        self.linger
    }
    fn unsent(&self) -> u64 {
        self.unsent
    }
    fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        ECHO.provider()
            .delivered
            .fetch_add(self.unsent, Ordering::Relaxed);
        self.unsent = 0;
        Poll::Ready(Ok(()))
    }
    fn abort(&mut self) -> Result<(), BoxError> {
        self.unsent = 0;
        Ok(())
    }
}

impl WinsockSocket for EchoSocket {
    fn set_linger(&mut self, linger: Linger) {
        self.linger = linger;
    }
    fn send(&mut self, buffers: &[&[u8]]) -> Result<u32, Error> {
        let n: usize = buffers.iter().map(|b| b.len()).sum();
        self.unsent += n as u64;
        Ok(n as u32)
    }
}

impl Provider for Echo {
    type Socket = EchoSocket;
    type State = EchoState;
    fn versions(&self) -> VersionRange {
        VersionSet::WINSOCK.range()
    }
    fn negotiate(&self, requested: Version) -> Result<Negotiated, Error> {
        VersionSet::WINSOCK.negotiate(requested)
    }
    fn initialize(&self, _: &mut Registrar) -> Result<EchoState, Error> {
        Ok(EchoState { shim: Shim::new() })
    }
}

static ECHO: Lifecycle<Echo> = Lifecycle::new(Echo {
    delivered: AtomicU64::new(0),
});

impl WinsockProvider for Echo {
    const DESCRIPTION: &'static str = "provider-lifecycle echo provider";
    fn lifecycle() -> &'static Lifecycle<Echo> {
        &ECHO
    }
    fn shim(state: &EchoState) -> &Shim {
        &state.shim
    }
    fn open_socket(&self, _: &EchoState, _: &SocketRequest) -> Result<EchoSocket, Error> {
        Ok(EchoSocket {
            linger: Linger::Background,
            unsent: 0,
        })
    }
}

// The DLL export ws2_32 looks up.
provider_lifecycle_winsock::export_wsp_startup!(Echo);

fn main() {
    // As ws2_32 holds it after GetProcAddress: the SDK's pointer type.
    let startup: LPWSPSTARTUP = std::hint::black_box(Some(WSPStartup));
    let mut data = WSPDATA::default();
    let mut table = WSPPROC_TABLE::default();
    let info = WSAPROTOCOL_INFOW::default();
    let mut errno = 0;
    // SAFETY: every pointer is to a live local of the SDK's type, as ws2_32
    // passes them; the entries are the table's own.
    unsafe {
        let rc = startup.unwrap()(
            0x0102, // MAKEWORD(2, 1)
            (&raw mut data).cast_const(),
            &info,
            WSPUPCALLTABLE::default(),
            &mut table,
        );
        let desc = String::from_utf16_lossy(
            &data.szDescription[..data.szDescription.iter().position(|&u| u == 0).unwrap_or(0)],
        );
        println!(
            "WSPStartup(2.1) = {rc}: version {}, high {}, \"{desc}\"",
            Version::from_word(data.wVersion),
            Version::from_word(data.wHighVersion)
        );
        let s = table.lpWSPSocket.unwrap()(2, 1, 6, std::ptr::null(), 0, 0, &mut errno);
        let payload = [7u8; 1000];
        let buf = WSABUF {
            len: 1000,
            buf: payload.as_ptr().cast_mut(),
        };
        let mut sent = 0;
        table.lpWSPSend.unwrap()(
            s,
            &buf,
            1,
            &mut sent,
            0,
            std::ptr::null_mut(),
            None,
            std::ptr::null(),
            &mut errno,
        );
        println!("WSPSocket = {s:#x}; WSPSend sent {sent} bytes");
        let hard = LINGER {
            l_onoff: 1,
            l_linger: 5,
        };
        let rc = table.lpWSPSetSockOpt.unwrap()(
            s,
            SOL_SOCKET,
            SO_LINGER,
            (&raw const hard).cast(),
            4,
            &mut errno,
        );
        println!("WSPSetSockOpt(SO_LINGER {{1, 5}}) = {rc}");
        println!(
            "WSPCloseSocket = {}",
            table.lpWSPCloseSocket.unwrap()(s, &mut errno)
        );
        let rc = table.lpWSPListen.unwrap()(s, 5, &mut errno);
        println!("WSPListen = {rc}, errno {errno} (WSAEOPNOTSUPP: not implemented, never null)");
        println!("WSPCleanup = {}", table.lpWSPCleanup.unwrap()(&mut errno));
        let rc = table.lpWSPCleanup.unwrap()(&mut errno);
        println!("WSPCleanup again = {rc}, errno {errno} (WSANOTINITIALISED)");
    }
    println!(
        "delivered {} bytes; state {:?}",
        ECHO.provider().delivered.load(Ordering::Relaxed),
        ECHO.state()
    );
}
