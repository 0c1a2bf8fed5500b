//! The real Winsock SPI over [`provider_lifecycle`]: a provider author
//! writes a [`Provider`](provider_lifecycle::Provider) (plus
//! [`WinsockProvider`] and [`WinsockSocket`]) and gets the exact exports
//! `ws2_32` loads — `WSPStartup` with its five arguments and the `system`
//! calling convention, and the full 30-entry `WSPPROC_TABLE` — on the
//! `windows-sys` types.
//!
//! ```text
//! ws2_32 ──WSPStartup(ver, &WSPDATA, &WSAPROTOCOL_INFOW, WSPUPCALLTABLE, &WSPPROC_TABLE)──▶ wsp_startup::<P>
//!        ──lpWSPSocket / lpWSPSend / lpWSPSetSockOpt / lpWSPCloseSocket / ...──▶ P's Lifecycle
//!        ──lpWSPCleanup──▶ Lifecycle::cleanup (the final one drains)
//! ```
//!
//! - **Startup** ([`wsp_startup`]): `WSAEFAULT` (10014) for a null
//!   `lpWSPData` or `lpProcTable`, nothing counted; version negotiation by
//!   the provider's [`negotiate`](provider_lifecycle::Provider::negotiate)
//!   (`VersionSet::WINSOCK` for `WSAStartup`'s set, W2), `WSPDATA` filled
//!   even when refused with 10092; every successful startup's upcall table
//!   replaces the one in force (W1).
//! - **Dispatch** ([`proc_table`]): `lpWSPCleanup`, `lpWSPSocket`,
//!   `lpWSPCloseSocket`, `lpWSPSend`, `lpWSPSetSockOpt` and
//!   `lpWSPGetSockOpt` (`SO_LINGER`, `SO_DONTLINGER`),
//!   `lpWSPDuplicateSocket` and `lpWSPGetOverlappedResult` go through the
//!   lifecycle; the other 21 entries answer `WSAEOPNOTSUPP` (10045), never
//!   null. Every entry checks initialization first (10093 between a final
//!   cleanup and the next startup, L8), then the caller's pointers (a bad
//!   one is `WSAEFAULT` and changes nothing, D3). Errors go to `*lpErrno`
//!   with their Winsock codes, a provider's own codes unchanged (E1).
//! - **Sockets**: `SOCKET` values come from the upcall table's
//!   `WPUCreateSocketHandle` when it has one (the table in force, W1), else
//!   the lifecycle's handle is the value. Duplicates share one socket (W3)
//!   under keys nobody can guess, bound to their generation and target
//!   process ([`dup`], W6). A close's bookkeeping happens in its own
//!   generation (W7).
//! - **Overlapped sends** ([`overlapped`]): the shim owns every pending
//!   operation and a provider refers to one by an [`IoToken`]; completions
//!   are indicated as the caller chose (completion routine through
//!   `WPUQueueApc`, completion port and event through
//!   `WPUCompleteOverlappedRequest`, else the event through `WPUSetEvent`),
//!   `WSPGetOverlappedResult` reads them, and an operation that ended (its
//!   socket closed: 995, notified; the final cleanup: 995, silent; its call
//!   failed: never) can never be completed or written again (W4).
//! - **Layering** ([`Lower`]): a layered provider starts the provider below
//!   through its `WSPStartup`, passes the upcall table down, rejects a
//!   table with a null entry (10104) after balancing the lower startup with
//!   one lower cleanup (W5), closes its lower sockets with
//!   `SO_LINGER {1, 0}`, and calls the lower cleanup once per lower startup.
//!
//! # A provider, end to end
//!
//! An in-memory provider whose sockets queue what they are sent and flush
//! it when asked, driven the way `ws2_32` drives a provider DLL: only
//! through `WSPStartup` and the table it fills.
//!
//! ```
//! use std::task::{Context, Poll};
//! use provider_lifecycle::*;
//! use provider_lifecycle_winsock::sys::*;
//! use provider_lifecycle_winsock::{Shim, SocketRequest, WinsockProvider, WinsockSocket};
//!
//! struct Queue(u64); // unsent bytes
//! impl Socket for Queue {
//!     fn unsent(&self) -> u64 { self.0 }
//!     fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
//!         self.0 = 0; // delivered
//!         Poll::Ready(Ok(()))
//!     }
//!     fn abort(&mut self) -> Result<(), BoxError> { self.0 = 0; Ok(()) }
//! }
//! impl WinsockSocket for Queue {
//!     fn set_linger(&mut self, _: Linger) {}
//!     fn send(&mut self, buffers: &[&[u8]]) -> Result<u32, Error> {
//!         let n: usize = buffers.iter().map(|b| b.len()).sum();
//!         self.0 += n as u64;
//!         Ok(n as u32)
//!     }
//! }
//!
//! struct Mem;
//! impl Provider for Mem {
//!     type Socket = Queue;
//!     type State = Shim; // the shim's bookkeeping, per generation
//!     fn versions(&self) -> VersionRange { VersionSet::WINSOCK.range() }
//!     fn negotiate(&self, v: Version) -> Result<Negotiated, Error> { VersionSet::WINSOCK.negotiate(v) }
//!     fn initialize(&self, _: &mut Registrar) -> Result<Shim, Error> { Ok(Shim::new()) }
//! }
//! static MEM: Lifecycle<Mem> = Lifecycle::new(Mem);
//! impl WinsockProvider for Mem {
//!     const DESCRIPTION: &'static str = "in-memory provider";
//!     fn lifecycle() -> &'static Lifecycle<Mem> { &MEM }
//!     fn shim(state: &Shim) -> &Shim { state }
//!     fn open_socket(&self, _: &Shim, _: &SocketRequest) -> Result<Queue, Error> { Ok(Queue(0)) }
//! }
//! // In the DLL: provider_lifecycle_winsock::export_wsp_startup!(Mem);
//!
//! let (mut data, mut table, mut errno) = (WSPDATA::default(), WSPPROC_TABLE::default(), 0);
//! // SAFETY: every pointer is to a live local of the SDK's type, as ws2_32
//! // passes them.
//! unsafe {
//!     let startup = provider_lifecycle_winsock::wsp_startup::<Mem>;
//!     let rc = startup(0x0202, &data, &WSAPROTOCOL_INFOW::default(), WSPUPCALLTABLE::default(), &mut table);
//!     assert_eq!((rc, data.wVersion), (0, 0x0202));
//!     let s = table.lpWSPSocket.unwrap()(2, 1, 6, std::ptr::null(), 0, 0, &mut errno);
//!     let payload = [7u8; 100];
//!     let buf = WSABUF { len: 100, buf: payload.as_ptr().cast_mut() };
//!     let mut sent = 0;
//!     let send = table.lpWSPSend.unwrap();
//!     let rc = send(s, &buf, 1, &mut sent, 0, std::ptr::null_mut(), None, std::ptr::null(), &mut errno);
//!     assert_eq!((rc, sent), (0, 100));
//!     assert_eq!(table.lpWSPCloseSocket.unwrap()(s, &mut errno), 0); // graceful: flushed later
//!     assert_eq!(table.lpWSPCleanup.unwrap()(&mut errno), 0); // the final one drains
//!     assert_eq!(table.lpWSPCleanup.unwrap()(&mut errno), SOCKET_ERROR);
//!     assert_eq!(errno, 10093); // WSANOTINITIALISED: one cleanup too many
//! }
//! assert_eq!(MEM.state(), State::Released);
//! ```
//!
//! Every `unsafe` block of the project lives in this crate, each with its
//! `// SAFETY:` argument; the core keeps `#![forbid(unsafe_code)]`. Each
//! export is a thin `unsafe` shell that validates the caller's pointers where
//! they enter and hands safe values to a safe function; nothing reachable
//! from safe code writes through a pointer whose owner could have freed it.
//! The tests run under valgrind and AddressSanitizer in CI, with a fuzz
//! target that calls only through the function pointers
//! (`cargo +nightly fuzz run table` in this crate's directory; its corpus is
//! replayed on stable by `tests/fuzz_corpus.rs`). The
//! layouts are pinned by compile-time assertions (`src/abi.rs`), and the
//! tests call the exports only through the function pointers `WSPStartup`
//! hands back, the way `ws2_32` does (on x86-64 Linux the `system` ABI is
//! the C ABI, so they run here).

/// The `windows-sys` Winsock, I/O and foundation types this crate uses,
/// re-exported so providers and tests name the same ones.
pub mod sys {
    pub use windows_sys::Win32::Foundation::{HANDLE, HWND};
    pub use windows_sys::Win32::Networking::WinSock::{
        FD_SET, FROM_PROTOCOL_INFO, INVALID_SOCKET, LINGER, LPCONDITIONPROC,
        LPWPUQUERYSOCKETHANDLECONTEXT, LPWSAOVERLAPPED_COMPLETION_ROUTINE, LPWSPSTARTUP, QOS,
        SO_DONTLINGER, SO_LINGER, SOCKADDR, SOCKET, SOCKET_ERROR, SOL_SOCKET, TIMEVAL,
        WSA_IO_INCOMPLETE, WSA_IO_PENDING, WSA_OPERATION_ABORTED, WSABUF, WSAEFAULT, WSAEINVAL,
        WSAENOPROTOOPT, WSAEOPNOTSUPP, WSAEVENT, WSANETWORKEVENTS, WSAPROTOCOL_INFOW,
        WSASYSNOTREADY, WSATHREADID, WSPDATA, WSPPROC_TABLE, WSPUPCALLTABLE,
        WSS_OPERATION_IN_PROGRESS,
    };
    pub use windows_sys::Win32::System::IO::OVERLAPPED;
}

mod abi;
mod calls;
pub mod dup;
mod exports;
mod layered;
pub mod overlapped;
mod shim;
mod sockets;
mod spawn;
mod stubs;

pub use calls::startup_context;
pub use exports::{proc_table, wsp_startup};
pub use layered::{
    Lower, LowerClose, PROC_TABLE_ENTRIES, close_abortively, code_to_error, null_entries,
};
pub use overlapped::{CompleteOverlappedRequest, IoToken};
pub use shim::{Shim, SocketRequest, WinsockProvider, WinsockSocket};
pub use spawn::os_spawner;

/// Completes the pending overlapped operation `op` of provider `P` from
/// anywhere (an I/O thread, a timer) with `result` (the bytes sent, or the
/// error the application reads back), and indicates it as the application
/// chose (see [`WinsockSocket::send_overlapped`]). Takes a guard of `P`'s
/// lifecycle; only an operation of the guard's generation is reached.
/// `Ok(false)`, doing nothing, when the operation has already ended
/// (completed before, its socket closed, or its call failed)
/// ([W4](provider_lifecycle::contract#W4)).
///
/// # Errors
///
/// [`Error::NotInitialised`](provider_lifecycle::Error::NotInitialised)
/// outside an Active generation: the final cleanup ended every operation
/// of its generation, so there is nothing left to complete.
pub fn complete_overlapped<P: WinsockProvider>(
    op: IoToken,
    result: Result<u32, provider_lifecycle::Error>,
) -> Result<bool, provider_lifecycle::Error> {
    let l = P::lifecycle();
    let guard = l.enter()?;
    let state = guard.state();
    // The guard's generation: it cannot end while the guard lives.
    Ok(P::shim(&state).complete(op, result, l.generation()))
}

/// Exports `WSPStartup` for provider `$p` under its real name, with the
/// SDK's signature and calling convention — what ws2_32 looks up in a
/// provider DLL.
///
/// ```ignore
/// provider_lifecycle_winsock::export_wsp_startup!(MyProvider);
/// ```
#[macro_export]
macro_rules! export_wsp_startup {
    ($p:ty) => {
        /// `WSPStartup`, exported for ws2_32.
        ///
        /// # Safety
        ///
        /// As [`wsp_startup`]($crate::wsp_startup).
        #[unsafe(no_mangle)]
        #[allow(non_snake_case)]
        pub unsafe extern "system" fn WSPStartup(
            wVersionRequested: u16,
            lpWSPData: *const $crate::sys::WSPDATA,
            lpProtocolInfo: *const $crate::sys::WSAPROTOCOL_INFOW,
            UpcallTable: $crate::sys::WSPUPCALLTABLE,
            lpProcTable: *mut $crate::sys::WSPPROC_TABLE,
        ) -> i32 {
            // SAFETY: forwarded with the caller's own guarantees.
            unsafe {
                $crate::wsp_startup::<$p>(
                    wVersionRequested,
                    lpWSPData,
                    lpProtocolInfo,
                    UpcallTable,
                    lpProcTable,
                )
            }
        }
    };
}
