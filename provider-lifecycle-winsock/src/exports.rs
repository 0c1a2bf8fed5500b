//! The exports: `WSPStartup` and the dispatch entries that go through the
//! lifecycle, generic over the provider. Each is a thin `unsafe` shell: it
//! checks initialization first ([L8](provider_lifecycle::contract#L8)),
//! validates the caller's pointers where they enter
//! ([D3](provider_lifecycle::contract#D3): a bad one is `WSAEFAULT` and
//! changes nothing), hands safe values to its function in `calls.rs`, and
//! writes the results back. The other 21 entries are in `stubs.rs`.

use provider_lifecycle::Error;

use crate::abi::{describe, fail, guarded, set_errno};
use crate::calls::{self, Guard};
use crate::overlapped::{OverlappedArgs, ReadableOverlapped, Settled};
use crate::shim::{SocketRequest, WinsockProvider};
use crate::stubs;
use crate::sys::{
    INVALID_SOCKET, LPWSAOVERLAPPED_COMPLETION_ROUTINE, OVERLAPPED, SO_DONTLINGER, SO_LINGER,
    SOCKET, SOL_SOCKET, WSA_IO_INCOMPLETE, WSA_IO_PENDING, WSABUF, WSAEFAULT, WSAENOPROTOOPT,
    WSAPROTOCOL_INFOW, WSASYSNOTREADY, WSATHREADID, WSPDATA, WSPPROC_TABLE, WSPUPCALLTABLE,
};

/// The dispatch table a successful startup hands back: every one of the 30
/// entries is set. Cleanup, Socket, CloseSocket, Send, SetSockOpt,
/// GetSockOpt, DuplicateSocket and GetOverlappedResult go through `P`'s
/// lifecycle; the others answer `WSAEOPNOTSUPP` (10045) in `*lpErrno` while
/// `P` is initialized, `WSANOTINITIALISED` (10093) while it is not.
///
/// ```
/// # use std::task::{Context, Poll};
/// # use provider_lifecycle::*;
/// # use provider_lifecycle_winsock::{Shim, SocketRequest, WinsockProvider, WinsockSocket};
/// # struct Queue;
/// # impl Socket for Queue {
/// #     fn unsent(&self) -> u64 { 0 }
/// #     fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> { Poll::Ready(Ok(())) }
/// #     fn abort(&mut self) -> Result<(), BoxError> { Ok(()) }
/// # }
/// # impl WinsockSocket for Queue {
/// #     fn set_linger(&mut self, _: Linger) {}
/// #     fn send(&mut self, b: &[&[u8]]) -> Result<u32, Error> { Ok(b.iter().map(|b| b.len() as u32).sum()) }
/// # }
/// # struct Mem;
/// # impl Provider for Mem {
/// #     type Socket = Queue;
/// #     type State = Shim;
/// #     fn versions(&self) -> VersionRange { VersionSet::WINSOCK.range() }
/// #     fn negotiate(&self, v: Version) -> Result<Negotiated, Error> { VersionSet::WINSOCK.negotiate(v) }
/// #     fn initialize(&self, _: &mut Registrar) -> Result<Shim, Error> { Ok(Shim::new()) }
/// # }
/// # static MEM: Lifecycle<Mem> = Lifecycle::new(Mem);
/// # impl WinsockProvider for Mem {
/// #     const DESCRIPTION: &'static str = "in-memory provider";
/// #     fn lifecycle() -> &'static Lifecycle<Mem> { &MEM }
/// #     fn shim(state: &Shim) -> &Shim { state }
/// #     fn open_socket(&self, _: &Shim, _: &SocketRequest) -> Result<Queue, Error> { Ok(Queue) }
/// # }
/// use provider_lifecycle_winsock::{null_entries, proc_table, sys::SOCKET_ERROR};
///
/// let table = proc_table::<Mem>();
/// assert_eq!(null_entries(&table), 0); // every entry is set
/// let mut errno = 0;
/// // SAFETY: the table's own entry, with a live lpErrno.
/// let rc = unsafe { table.lpWSPCleanup.unwrap()(&mut errno) };
/// assert_eq!((rc, errno), (SOCKET_ERROR, 10093)); // no startup to pair with
/// ```
#[must_use]
pub fn proc_table<P: WinsockProvider>() -> WSPPROC_TABLE {
    WSPPROC_TABLE {
        lpWSPAccept: Some(stubs::accept::<P>),
        lpWSPAddressToString: Some(stubs::address_to_string::<P>),
        lpWSPAsyncSelect: Some(stubs::async_select::<P>),
        lpWSPBind: Some(stubs::bind::<P>),
        lpWSPCancelBlockingCall: Some(stubs::cancel_blocking_call::<P>),
        lpWSPCleanup: Some(wsp_cleanup::<P>),
        lpWSPCloseSocket: Some(wsp_close_socket::<P>),
        lpWSPConnect: Some(stubs::connect::<P>),
        lpWSPDuplicateSocket: Some(wsp_duplicate_socket::<P>),
        lpWSPEnumNetworkEvents: Some(stubs::enum_network_events::<P>),
        lpWSPEventSelect: Some(stubs::event_select::<P>),
        lpWSPGetOverlappedResult: Some(wsp_get_overlapped_result::<P>),
        lpWSPGetPeerName: Some(stubs::get_peer_name::<P>),
        lpWSPGetSockName: Some(stubs::get_sock_name::<P>),
        lpWSPGetSockOpt: Some(wsp_get_sock_opt::<P>),
        lpWSPGetQOSByName: Some(stubs::get_qos_by_name::<P>),
        lpWSPIoctl: Some(stubs::ioctl::<P>),
        lpWSPJoinLeaf: Some(stubs::join_leaf::<P>),
        lpWSPListen: Some(stubs::listen::<P>),
        lpWSPRecv: Some(stubs::recv::<P>),
        lpWSPRecvDisconnect: Some(stubs::recv_disconnect::<P>),
        lpWSPRecvFrom: Some(stubs::recv_from::<P>),
        lpWSPSelect: Some(stubs::select::<P>),
        lpWSPSend: Some(wsp_send::<P>),
        lpWSPSendDisconnect: Some(stubs::send_disconnect::<P>),
        lpWSPSendTo: Some(stubs::send_to::<P>),
        lpWSPSetSockOpt: Some(wsp_set_sock_opt::<P>),
        lpWSPShutdown: Some(stubs::shutdown::<P>),
        lpWSPSocket: Some(wsp_socket::<P>),
        lpWSPStringToAddress: Some(stubs::string_to_address::<P>),
    }
}

/// `WSPStartup` for provider `P`, with the SDK's exact signature
/// (`LPWSPSTARTUP`): negotiates the version, counts one startup of `P`'s
/// lifecycle carrying this call's upcall table (the latest one is in force,
/// [W1](provider_lifecycle::contract#W1)), and fills `WSPDATA` and the
/// dispatch table. Export it under its real name with
/// [`export_wsp_startup!`](crate::export_wsp_startup).
///
/// Returns 0, or the Winsock error code (the SPI's startup reports errors
/// by return value): `WSAEFAULT` (10014) for a null `lpWSPData` or
/// `lpProcTable` (nothing is counted), `WSAVERNOTSUPPORTED` (10092) below
/// the provider's versions (`WSPDATA` is still filled: `wVersion` the lowest
/// supported, `wHighVersion` the highest), and the lifecycle's other errors
/// by their codes.
///
/// # Safety
///
/// The pointers are ws2_32's: `lpWSPData` and `lpProcTable` null or
/// writable, `lpProtocolInfo` null or readable. (`windows-sys` types
/// `lpWSPData` as `*const`; the SDK's `LPWSPDATA` is the caller's writable
/// buffer, which is how it is used.)
pub unsafe extern "system" fn wsp_startup<P: WinsockProvider>(
    version: u16,
    data: *const WSPDATA,
    protocol: *const WSAPROTOCOL_INFOW,
    upcalls: WSPUPCALLTABLE,
    table: *mut WSPPROC_TABLE,
) -> i32 {
    guarded(
        || WSASYSNOTREADY,
        || {
            if data.is_null() || table.is_null() {
                return WSAEFAULT;
            }
            // SAFETY: null or the caller's readable WSAPROTOCOL_INFOW (plain
            // data, copied).
            let protocol = (!protocol.is_null()).then(|| unsafe { *protocol });
            let out = calls::startup::<P>(version, protocol, upcalls);
            // SAFETY: non-null and writable (the caller's WSPDATA).
            let data = unsafe { &mut *data.cast_mut() };
            describe(data, P::DESCRIPTION);
            data.wVersion = out.version;
            data.wHighVersion = out.high;
            if out.code == 0 {
                // SAFETY: non-null and writable (the caller's table).
                unsafe { *table = proc_table::<P>() };
            }
            out.code
        },
    )
}

/// The guard of one export, or its `NotInitialised` (checked first, L8).
#[inline(always)]
fn enter<P: WinsockProvider>() -> Result<Guard<P>, Error> {
    P::lifecycle().enter()
}

/// A panic in an export's body, as the error it answers.
fn panicked(entry: &str) -> Error {
    Error::system_not_ready(format!("{entry} panicked"))
}

/// `lpWSPCleanup`: one cleanup of the lifecycle; the final one drains.
/// One cleanup too many answers `SOCKET_ERROR` with 10093 in `*lpErrno`.
unsafe extern "system" fn wsp_cleanup<P: WinsockProvider>(errno: *mut i32) -> i32 {
    match guarded(|| Err(panicked("WSPCleanup")), calls::cleanup::<P>) {
        Ok(()) => 0,
        // SAFETY: lpErrno is null or the caller's.
        Err(e) => unsafe { fail(errno, e.wsa_code()) },
    }
}

/// `lpWSPSocket`: a new socket, or (with the protocol info a
/// `WSPDuplicateSocket` filled) a duplicate handle of an existing one
/// ([W3](provider_lifecycle::contract#W3), [W6](provider_lifecycle::contract#W6)).
unsafe extern "system" fn wsp_socket<P: WinsockProvider>(
    af: i32,
    socket_type: i32,
    protocol: i32,
    info: *const WSAPROTOCOL_INFOW,
    group: u32,
    flags: u32,
    errno: *mut i32,
) -> SOCKET {
    let result = guarded(
        || Err(panicked("WSPSocket")),
        || {
            let guard = enter::<P>()?;
            // SAFETY: null or the caller's readable WSAPROTOCOL_INFOW.
            let dup_key = (!info.is_null()).then(|| unsafe { (*info).dwProviderReserved });
            let request = SocketRequest {
                af,
                socket_type,
                protocol,
                group,
                flags,
            };
            calls::socket::<P>(&guard, &request, dup_key)
        },
    );
    match result {
        Ok(s) => s,
        Err(e) => {
            // SAFETY: lpErrno is null or the caller's.
            unsafe { set_errno(errno, e.wsa_code()) };
            INVALID_SOCKET
        }
    }
}

/// `lpWSPCloseSocket`: closes the handle with its linger (its pending
/// overlapped operations end with 995, notified, W4); one of several
/// duplicate handles closes alone (W3). A blocking linger ended by the final
/// cleanup answers `WSAEINTR`; a non-blocking one that cannot finish,
/// `WSAEWOULDBLOCK` (the handle stays valid).
unsafe extern "system" fn wsp_close_socket<P: WinsockProvider>(s: SOCKET, errno: *mut i32) -> i32 {
    let result = guarded(
        || Err(panicked("WSPCloseSocket")),
        || calls::close::<P>(&enter::<P>()?, s),
    );
    match result {
        Ok(()) => 0,
        // SAFETY: lpErrno is null or the caller's.
        Err(e) => unsafe { fail(errno, e.wsa_code()) },
    }
}

/// Reads `count` `WSABUF`s at `buffers`, whole, and hands them to `f`, or
/// fails with `WSAEFAULT` (a null `buf` with a nonzero `len`): nothing is
/// handed on unless every buffer is readable (D3). The slices live on the
/// stack up to [`FEW`] buffers (one, the usual count, without even the
/// array), so that a send allocates nothing; on the heap beyond.
///
/// # Safety
///
/// `buffers` points to `count` readable `WSABUF`s, each `buf` null or
/// `len` readable bytes, valid for the call.
#[inline]
unsafe fn with_buffers<R>(
    buffers: *const WSABUF,
    count: u32,
    f: impl FnOnce(&[&[u8]]) -> Result<R, Error>,
) -> Result<R, Error> {
    let read = |i: usize| {
        // SAFETY: i < count (this function's contract).
        let b = unsafe { &*buffers.add(i) };
        match (b.buf.is_null(), b.len) {
            (_, 0) => Ok(&[][..]),
            (true, _) => Err(Error::Fault),
            // SAFETY: non-null with `len` readable bytes.
            (false, len) => Ok(unsafe { std::slice::from_raw_parts(b.buf, len as usize) }),
        }
    };
    let count = count as usize;
    if count == 1 {
        return f(std::slice::from_ref(&read(0)?));
    }
    if count <= FEW {
        let mut few: [&[u8]; FEW] = [&[]; FEW];
        for (i, slot) in few[..count].iter_mut().enumerate() {
            *slot = read(i)?;
        }
        return f(&few[..count]);
    }
    let many = (0..count).map(read).collect::<Result<Vec<_>, _>>()?;
    f(&many)
}

/// Buffers a call gathers on the stack (one is the usual count).
const FEW: usize = 4;

/// `lpWSPSend`: gathers the buffers and hands them to the socket; with an
/// `OVERLAPPED` the shim records the operation, and the socket completes it
/// at once or keeps it pending (`WSA_IO_PENDING`).
#[allow(clippy::too_many_arguments)]
unsafe extern "system" fn wsp_send<P: WinsockProvider>(
    s: SOCKET,
    buffers: *const WSABUF,
    count: u32,
    sent: *mut u32,
    _flags: u32,
    overlapped: *mut OVERLAPPED,
    completion: LPWSAOVERLAPPED_COMPLETION_ROUTINE,
    thread: *const WSATHREADID,
    errno: *mut i32,
) -> i32 {
    if overlapped.is_null() {
        // The usual send, on its own short path: no overlapped record, and
        // a result of four bytes to carry out of the panic catching.
        // The error leaves the panic catch as its code alone: a result of
        // eight bytes comes back in registers.
        let result = guarded(
            || Err(panicked("WSPSend").wsa_code()),
            || {
                let send = || {
                    let guard = enter::<P>()?;
                    if (buffers.is_null() && count > 0) || sent.is_null() {
                        return Err(Error::Fault);
                    }
                    let send = |slices: &[&[u8]]| calls::send_now::<P>(&guard, s, slices);
                    // SAFETY: `count` WSABUFs at `buffers`, the caller's, valid
                    // for the call (the SPI's contract for lpBuffers).
                    unsafe { with_buffers(buffers, count, send) }
                };
                send().map_err(|e| e.wsa_code())
            },
        );
        return match result {
            Ok(n) => {
                // SAFETY: checked non-null above, the caller's.
                unsafe { *sent = n };
                0
            }
            // SAFETY: lpErrno is null or the caller's.
            Err(code) => unsafe { fail(errno, code) },
        };
    }
    let result = guarded(
        || Err(panicked("WSPSend")),
        || {
            let guard = enter::<P>()?;
            if buffers.is_null() && count > 0 {
                return Err(Error::Fault);
            }
            let send = |slices: &[&[u8]]| {
                // SAFETY: a non-null lpOverlapped stays valid until its
                // operation completes, and lpThreadId is null or readable for
                // the call (the SPI's contract for an overlapped WSPSend).
                let args = unsafe { OverlappedArgs::new(overlapped, completion, thread) };
                calls::send::<P>(&guard, s, slices, args)
            };
            // SAFETY: `count` WSABUFs at `buffers`, the caller's, valid for the
            // call (the SPI's contract for lpBuffers).
            unsafe { with_buffers(buffers, count, send) }
        },
    );
    match result {
        Ok(Settled::Done(n)) => {
            if !sent.is_null() {
                // SAFETY: non-null, the caller's.
                unsafe { *sent = n };
            }
            0
        }
        // SAFETY: lpErrno is null or the caller's.
        Ok(Settled::Pending) => unsafe { fail(errno, WSA_IO_PENDING) },
        Err(e) => unsafe { fail(errno, e.wsa_code()) },
    }
}

/// Whether `(level, name)` is an option the shim handles.
fn linger_option(level: i32, name: i32) -> bool {
    level == SOL_SOCKET && (name == SO_LINGER || name == SO_DONTLINGER)
}

/// `lpWSPSetSockOpt`: `SO_LINGER` (a `LINGER`) and `SO_DONTLINGER` (a
/// `BOOL`) at `SOL_SOCKET`, both 4 bytes (a shorter `optlen` is
/// `WSAEFAULT`, D3); anything else is `WSAENOPROTOOPT`.
unsafe extern "system" fn wsp_set_sock_opt<P: WinsockProvider>(
    s: SOCKET,
    level: i32,
    name: i32,
    value: *const u8,
    len: i32,
    errno: *mut i32,
) -> i32 {
    let result = guarded(
        || Err(panicked("WSPSetSockOpt")),
        || {
            let guard = enter::<P>()?;
            if !linger_option(level, name) {
                return Err(Error::from_wsa_code(WSAENOPROTOOPT));
            }
            if value.is_null() || len < 4 {
                return Err(Error::Fault);
            }
            // SAFETY: non-null with at least 4 readable bytes (a LINGER or a
            // BOOL), possibly unaligned.
            let raw = unsafe { value.cast::<[u8; 4]>().read_unaligned() };
            calls::set_linger::<P>(&guard, s, name, raw)
        },
    );
    match result {
        Ok(()) => 0,
        // SAFETY: lpErrno is null or the caller's.
        Err(e) => unsafe { fail(errno, e.wsa_code()) },
    }
}

/// `lpWSPGetSockOpt`: `SO_LINGER` and `SO_DONTLINGER` as Winsock encodes
/// them; `*optlen` is set to the size written.
unsafe extern "system" fn wsp_get_sock_opt<P: WinsockProvider>(
    s: SOCKET,
    level: i32,
    name: i32,
    value: *mut u8,
    len: *mut i32,
    errno: *mut i32,
) -> i32 {
    let result = guarded(
        || Err(panicked("WSPGetSockOpt")),
        || {
            let guard = enter::<P>()?;
            if !linger_option(level, name) {
                return Err(Error::from_wsa_code(WSAENOPROTOOPT));
            }
            // SAFETY: null or the caller's in/out length.
            if value.is_null() || len.is_null() || unsafe { *len } < 4 {
                return Err(Error::Fault);
            }
            let bytes = calls::get_linger::<P>(&guard, s, name)?;
            // SAFETY: at least 4 writable bytes (checked above), unaligned.
            unsafe {
                value.cast::<[u8; 4]>().write_unaligned(bytes);
                *len = 4;
            }
            Ok(())
        },
    );
    match result {
        Ok(()) => 0,
        // SAFETY: lpErrno is null or the caller's.
        Err(e) => unsafe { fail(errno, e.wsa_code()) },
    }
}

/// `lpWSPDuplicateSocket`: fills the protocol info the target process passes
/// to `WSPSocket`, whose `dwProviderReserved` names the duplication
/// ([W3](provider_lifecycle::contract#W3), [W6](provider_lifecycle::contract#W6)).
unsafe extern "system" fn wsp_duplicate_socket<P: WinsockProvider>(
    s: SOCKET,
    process: u32,
    info: *mut WSAPROTOCOL_INFOW,
    errno: *mut i32,
) -> i32 {
    let result = guarded(
        || Err(panicked("WSPDuplicateSocket")),
        || {
            let guard = enter::<P>()?;
            if info.is_null() {
                return Err(Error::Fault);
            }
            let out = calls::duplicate::<P>(&guard, s, process)?;
            // SAFETY: non-null, the caller's writable WSAPROTOCOL_INFOW.
            unsafe { *info = out };
            Ok(())
        },
    );
    match result {
        Ok(()) => 0,
        // SAFETY: lpErrno is null or the caller's.
        Err(e) => unsafe { fail(errno, e.wsa_code()) },
    }
}

/// `lpWSPGetOverlappedResult`: the outcome of an overlapped operation this
/// shim started (W4 completion). `TRUE` with the bytes on success; `FALSE`
/// with the operation's own code on failure (995 for an aborted one), with
/// `WSA_IO_INCOMPLETE` (996) while pending and `fWait` is `FALSE`; with
/// `fWait` it waits for the end (a final cleanup ends every operation).
unsafe extern "system" fn wsp_get_overlapped_result<P: WinsockProvider>(
    s: SOCKET,
    overlapped: *const OVERLAPPED,
    transferred: *mut u32,
    wait: i32,
    flags: *mut u32,
    errno: *mut i32,
) -> i32 {
    let result = guarded(
        || Err(panicked("WSPGetOverlappedResult")),
        || {
            let guard = enter::<P>()?;
            if overlapped.is_null() || transferred.is_null() || flags.is_null() {
                return Err(Error::Fault);
            }
            // SAFETY: non-null, the caller's OVERLAPPED, readable for the call;
            // the value does not outlive it.
            let ov = unsafe { ReadableOverlapped::new(overlapped) };
            calls::overlapped_result::<P>(guard, s, ov, wait != 0)
        },
    );
    match result {
        Ok(Some((status, f))) if status.error == 0 => {
            // SAFETY: non-null (checked), the caller's out-parameters.
            unsafe {
                *transferred = status.bytes;
                *flags = f;
            }
            1
        }
        Ok(Some((status, _))) => {
            // The operation failed: lpcbTransfer is not updated.
            // SAFETY: lpErrno is null or the caller's.
            unsafe { set_errno(errno, status.error as i32) };
            0
        }
        Ok(None) => {
            // SAFETY: as above.
            unsafe { set_errno(errno, WSA_IO_INCOMPLETE) };
            0
        }
        Err(e) => {
            // SAFETY: as above.
            unsafe { set_errno(errno, e.wsa_code()) };
            0
        }
    }
}
