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
