//! The exports: `WSPStartup` and the eight dispatch entries that go
//! through the lifecycle, generic over the provider. The other 22 entries
//! are in `stubs.rs`.

use provider_lifecycle::{Cleanup, Error, Linger, Socket, SocketOutcome, Version};

use crate::abi::{describe, fail, guarded, set_errno};
use crate::shim::{Overlapped, SocketRequest, WinsockProvider, WinsockSocket};
use crate::stubs;
use crate::sys::{
    FROM_PROTOCOL_INFO, INVALID_SOCKET, LINGER, LPWSAOVERLAPPED_COMPLETION_ROUTINE, OVERLAPPED,
    SO_DONTLINGER, SO_LINGER, SOCKET, SOL_SOCKET, WSA_IO_PENDING, WSABUF, WSAEFAULT,
    WSAENOPROTOOPT, WSAPROTOCOL_INFOW, WSASYSNOTREADY, WSATHREADID, WSPDATA, WSPPROC_TABLE,
    WSPUPCALLTABLE,
};

/// The dispatch table a successful startup hands back: every one of the 30
/// entries is set. Cleanup, Socket, CloseSocket, Send, SetSockOpt,
/// GetSockOpt and DuplicateSocket go through `P`'s lifecycle; the others
/// answer `WSAEOPNOTSUPP` (10045) in `*lpErrno`.
#[must_use]
pub fn proc_table<P: WinsockProvider>() -> WSPPROC_TABLE {
    WSPPROC_TABLE {
        lpWSPAccept: Some(stubs::accept),
        lpWSPAddressToString: Some(stubs::address_to_string),
        lpWSPAsyncSelect: Some(stubs::async_select),
        lpWSPBind: Some(stubs::bind),
        lpWSPCancelBlockingCall: Some(stubs::cancel_blocking_call),
        lpWSPCleanup: Some(wsp_cleanup::<P>),
        lpWSPCloseSocket: Some(wsp_close_socket::<P>),
        lpWSPConnect: Some(stubs::connect),
        lpWSPDuplicateSocket: Some(wsp_duplicate_socket::<P>),
        lpWSPEnumNetworkEvents: Some(stubs::enum_network_events),
        lpWSPEventSelect: Some(stubs::event_select),
        lpWSPGetOverlappedResult: Some(stubs::get_overlapped_result),
        lpWSPGetPeerName: Some(stubs::get_peer_name),
        lpWSPGetSockName: Some(stubs::get_sock_name),
        lpWSPGetSockOpt: Some(wsp_get_sock_opt::<P>),
        lpWSPGetQOSByName: Some(stubs::get_qos_by_name),
        lpWSPIoctl: Some(stubs::ioctl),
        lpWSPJoinLeaf: Some(stubs::join_leaf),
        lpWSPListen: Some(stubs::listen),
        lpWSPRecv: Some(stubs::recv),
        lpWSPRecvDisconnect: Some(stubs::recv_disconnect),
        lpWSPRecvFrom: Some(stubs::recv_from),
        lpWSPSelect: Some(stubs::select),
        lpWSPSend: Some(wsp_send::<P>),
        lpWSPSendDisconnect: Some(stubs::send_disconnect),
        lpWSPSendTo: Some(stubs::send_to),
        lpWSPSetSockOpt: Some(wsp_set_sock_opt::<P>),
        lpWSPShutdown: Some(stubs::shutdown),
        lpWSPSocket: Some(wsp_socket::<P>),
        lpWSPStringToAddress: Some(stubs::string_to_address),
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
    guarded(WSASYSNOTREADY, || {
        if data.is_null() || table.is_null() {
            return WSAEFAULT;
        }
        let data = data.cast_mut();
        let l = P::lifecycle();
        let requested = Version::from_word(version);
        // SAFETY: non-null and writable (the caller's WSPDATA).
        let out = unsafe { &mut *data };
        describe(out, P::DESCRIPTION);
        let range = l.provider().versions();
        match l.provider().negotiate(requested) {
            Ok(n) => {
                out.wVersion = n.version.to_word();
                out.wHighVersion = n.high_version.to_word();
            }
            Err(_) => {
                out.wVersion = range.lowest().to_word();
                out.wHighVersion = range.highest().to_word();
            }
        }
        // SAFETY: null or the caller's readable WSAPROTOCOL_INFOW (plain
        // data, copied).
        let protocol = (!protocol.is_null()).then(|| unsafe { *protocol });
        let _starting = Starting::enter((upcalls, protocol));
        match l.startup_with_context(requested, (upcalls, protocol), |state, (u, p)| {
            P::shim(state).apply(u, p);
        }) {
            Ok(_) => {
                // SAFETY: non-null and writable (the caller's table).
                unsafe { *table = proc_table::<P>() };
                0
            }
            Err(e) => e.wsa_code(),
        }
    })
}

thread_local! {
    /// The upcall table and protocol info of the `wsp_startup` running on
    /// this thread, for the provider's `initialize` (which runs inside it).
    static STARTING: std::cell::Cell<Option<(WSPUPCALLTABLE, Option<WSAPROTOCOL_INFOW>)>> =
        const { std::cell::Cell::new(None) };
}

/// The upcall table and protocol info the `WSPStartup` running on this
/// thread received, if one is running: what a layered provider's
/// [`initialize`](provider_lifecycle::Provider::initialize) passes down to
/// the provider below ([`Lower::start`](crate::Lower::start), W1).
#[must_use]
pub fn startup_context() -> Option<(WSPUPCALLTABLE, Option<WSAPROTOCOL_INFOW>)> {
    STARTING.with(std::cell::Cell::get)
}

/// Sets [`startup_context`] for the life of the value.
struct Starting;

impl Starting {
    fn enter(ctx: (WSPUPCALLTABLE, Option<WSAPROTOCOL_INFOW>)) -> Starting {
        STARTING.with(|s| s.set(Some(ctx)));
        Starting
    }
}

impl Drop for Starting {
    fn drop(&mut self) {
        STARTING.with(|s| s.set(None));
    }
}

/// `lpWSPCleanup`: one cleanup of the lifecycle; the final one drains it.
/// One cleanup too many answers `SOCKET_ERROR` with 10093 in `*lpErrno`.
unsafe extern "system" fn wsp_cleanup<P: WinsockProvider>(errno: *mut i32) -> i32 {
    let result = guarded(Err(Error::system_not_ready("WSPCleanup panicked")), || {
        P::lifecycle()
            .cleanup()
            .map(|c| matches!(c, Cleanup::Final(_)))
    });
    match result {
        Ok(_) => 0,
        // SAFETY: lpErrno is null or the caller's.
        Err(e) => unsafe { fail(errno, e.wsa_code()) },
    }
}

/// `lpWSPSocket`: a new socket, or (with the protocol info a
/// `WSPDuplicateSocket` filled) a duplicate handle of an existing one
/// ([W3](provider_lifecycle::contract#W3)).
unsafe extern "system" fn wsp_socket<P: WinsockProvider>(
    af: i32,
    socket_type: i32,
    protocol: i32,
    info: *const WSAPROTOCOL_INFOW,
    group: u32,
    flags: u32,
    errno: *mut i32,
) -> SOCKET {
    let result = guarded(Err(Error::system_not_ready("WSPSocket panicked")), || {
        let l = P::lifecycle();
        let guard = l.enter()?;
        let state = guard.state();
        let shim = P::shim(&state);
        // SAFETY: null or the caller's readable WSAPROTOCOL_INFOW.
        let dup_key = (!info.is_null()).then(|| unsafe { (*info).dwProviderReserved });
        let handle = match dup_key.filter(|&k| k != 0) {
            Some(key) => {
                let original = shim.take_dup(key).ok_or(Error::Fault)?;
                l.duplicate_socket(original)?
            }
            None if af == FROM_PROTOCOL_INFO => return Err(Error::Fault),
            None => {
                let request = SocketRequest {
                    af,
                    socket_type,
                    protocol,
                    group,
                    flags,
                };
                let socket = l.provider().open_socket(&state, &request)?;
                l.register_socket(socket)?
            }
        };
        // The SOCKET value: from WPUCreateSocketHandle of the upcall table
        // in force (W1) when it has one, else the handle itself.
        let (s, upcall) = match shim.upcalls().lpWPUCreateSocketHandle {
            Some(create) => {
                let mut e = 0;
                // SAFETY: ws2_32's upcall; the context is the handle.
                let s = unsafe { create(shim.catalog_entry(), handle.to_raw() as usize, &mut e) };
                if s == INVALID_SOCKET {
                    let _ = l.close_socket(handle);
                    return Err(Error::ProviderFailedInit);
                }
                (s, true)
            }
            None => (handle.to_raw() as SOCKET, false),
        };
        shim.remember(s, handle, upcall);
        Ok(s)
    });
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
        Err(Error::system_not_ready("WSPCloseSocket panicked")),
        || {
            let l = P::lifecycle();
            let (handle, upcall) = {
                let guard = l.enter()?;
                P::shim(&guard.state()).handle(s)?
            };
            let line = l.close_socket(handle)?;
            if let Ok(guard) = l.enter() {
                let state = guard.state();
                let shim = P::shim(&state);
                shim.forget(s);
                if let (true, Some(close)) = (upcall, shim.upcalls().lpWPUCloseSocketHandle) {
                    let mut e = 0;
                    // SAFETY: ws2_32's upcall on the value it created.
                    unsafe { close(s, &mut e) };
                }
            }
            match line.outcome {
                SocketOutcome::Cancelled => Err(Error::Interrupted),
                _ => Ok(()),
            }
        },
    );
    match result {
        Ok(()) => 0,
        // SAFETY: lpErrno is null or the caller's (WSAEINTR for a close
        // the final cleanup cancelled: Error::Interrupted's code).
        Err(e) => unsafe { fail(errno, e.wsa_code()) },
    }
}

/// Runs `f` on the socket behind `s`, inside a guard.
fn on_socket<P: WinsockProvider, R>(
    s: SOCKET,
    f: impl FnOnce(&mut P::Socket) -> Result<R, Error>,
) -> Result<R, Error> {
    let l = P::lifecycle();
    let (handle, _) = {
        let guard = l.enter()?;
        P::shim(&guard.state()).handle(s)?
    };
    l.with_socket(handle, f)?
}

/// `lpWSPSend`: gathers the buffers and hands them to the socket; with an
/// `OVERLAPPED` the socket may keep the operation pending
/// (`WSA_IO_PENDING`).
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
    let result = guarded(Err(Error::system_not_ready("WSPSend panicked")), || {
        if (buffers.is_null() && count > 0) || (sent.is_null() && overlapped.is_null()) {
            return Err(Error::Fault);
        }
        // SAFETY: `count` WSABUFs at `buffers`, each `len` readable bytes
        // at `buf` (the caller's, valid for the call).
        let slices: Vec<&[u8]> = (0..count as usize)
            .map(|i| unsafe {
                let b = &*buffers.add(i);
                if b.buf.is_null() || b.len == 0 {
                    &[][..]
                } else {
                    std::slice::from_raw_parts(b.buf, b.len as usize)
                }
            })
            .collect();
        if overlapped.is_null() {
            return on_socket::<P, _>(s, |sock| sock.send(&slices)).map(Some);
        }
        let upcalls = {
            let guard = P::lifecycle().enter()?;
            P::shim(&guard.state()).upcall_cell()
        };
        let op = Overlapped::new(overlapped, completion, thread, upcalls);
        on_socket::<P, _>(s, |sock| sock.send_overlapped(&slices, op))
    });
    match result {
        Ok(Some(n)) => {
            if !sent.is_null() {
                // SAFETY: non-null, the caller's.
                unsafe { *sent = n };
            }
            0
        }
        // SAFETY: lpErrno is null or the caller's.
        Ok(None) => unsafe { fail(errno, WSA_IO_PENDING) },
        Err(e) => unsafe { fail(errno, e.wsa_code()) },
    }
}

/// `lpWSPSetSockOpt`: `SO_LINGER` (a `LINGER`) and `SO_DONTLINGER` (a
/// `BOOL`) at `SOL_SOCKET`; anything else is `WSAENOPROTOOPT`.
unsafe extern "system" fn wsp_set_sock_opt<P: WinsockProvider>(
    s: SOCKET,
    level: i32,
    name: i32,
    value: *const u8,
    len: i32,
    errno: *mut i32,
) -> i32 {
    if level != SOL_SOCKET || (name != SO_LINGER && name != SO_DONTLINGER) {
        // SAFETY: lpErrno is null or the caller's.
        return unsafe { fail(errno, WSAENOPROTOOPT) };
    }
    let result = guarded(
        Err(Error::system_not_ready("WSPSetSockOpt panicked")),
        || {
            if value.is_null() || len < 4 {
                return Err(Error::Fault);
            }
            // SAFETY: non-null with at least 4 readable bytes (a LINGER or a
            // BOOL), possibly unaligned.
            let raw = unsafe { value.cast::<[u8; 4]>().read_unaligned() };
            on_socket::<P, _>(s, |sock| {
                let linger = if name == SO_LINGER {
                    let l = LINGER {
                        l_onoff: u16::from_ne_bytes([raw[0], raw[1]]),
                        l_linger: u16::from_ne_bytes([raw[2], raw[3]]),
                    };
                    Linger::from_winsock(l.l_onoff, l.l_linger)
                } else if i32::from_ne_bytes(raw) != 0 {
                    // SO_DONTLINGER TRUE: linger off (a graceful background close).
                    Linger::Background
                } else {
                    // FALSE: linger on, with the timeout set before (0: abortive).
                    match sock.linger() {
                        t @ Linger::Timeout(_) => t,
                        _ => Linger::Abort,
                    }
                };
                sock.set_linger(linger);
                Ok(())
            })
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
    if level != SOL_SOCKET || (name != SO_LINGER && name != SO_DONTLINGER) {
        // SAFETY: lpErrno is null or the caller's.
        return unsafe { fail(errno, WSAENOPROTOOPT) };
    }
    let result = guarded(
        Err(Error::system_not_ready("WSPGetSockOpt panicked")),
        || {
            // SAFETY: null or the caller's in/out length.
            if value.is_null() || len.is_null() || unsafe { *len } < 4 {
                return Err(Error::Fault);
            }
            let linger = on_socket::<P, _>(s, |sock| Ok(sock.linger()))?;
            let bytes = if name == SO_LINGER {
                let (on, secs) = linger.to_winsock();
                let mut b = [0u8; 4];
                b[..2].copy_from_slice(&on.to_ne_bytes());
                b[2..].copy_from_slice(&secs.to_ne_bytes());
                b
            } else {
                i32::from(linger == Linger::Background).to_ne_bytes()
            };
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
/// to `WSPSocket`, whose `dwProviderReserved` names the socket to share
/// ([W3](provider_lifecycle::contract#W3)).
unsafe extern "system" fn wsp_duplicate_socket<P: WinsockProvider>(
    s: SOCKET,
    _process: u32,
    info: *mut WSAPROTOCOL_INFOW,
    errno: *mut i32,
) -> i32 {
    let result = guarded(
        Err(Error::system_not_ready("WSPDuplicateSocket panicked")),
        || {
            if info.is_null() {
                return Err(Error::Fault);
            }
            let l = P::lifecycle();
            let guard = l.enter()?;
            let state = guard.state();
            let shim = P::shim(&state);
            let (handle, _) = shim.handle(s)?;
            let mut out = shim.protocol_info();
            out.dwProviderReserved = shim.announce_dup(handle);
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
