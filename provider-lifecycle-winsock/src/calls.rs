//! The logic of every export, in safe functions: `exports.rs` holds thin
//! `unsafe` shells that check initialization, validate the caller's
//! pointers, and hand safe values here (so tests, mutation testing and
//! readers reach the decisions without crossing an `unsafe` boundary).
//!
//! Each function runs inside the one guard its shell took
//! ([L8](provider_lifecycle::contract#L8) reading: initialization first),
//! so a call's bookkeeping stays in the generation it started in
//! ([W7](provider_lifecycle::contract#W7)).

use provider_lifecycle::{
    Cleanup, Error, Linger, OperationGuard, Provider, Socket, SocketOutcome, SocketReport, Version,
};

use crate::dup::Dup;
use crate::overlapped::{OverlappedArgs, ReadableOverlapped, Settled, Status};
use crate::shim::{Shim, SocketRequest, WinsockProvider, WinsockSocket};
use crate::sys::{
    FROM_PROTOCOL_INFO, INVALID_SOCKET, SO_LINGER, SOCKET, WSAPROTOCOL_INFOW, WSPUPCALLTABLE,
};

/// The guard every export holds for the length of its call.
pub(crate) type Guard<P> = OperationGuard<'static, <P as Provider>::State>;

/// What `WSPStartup` fills in `WSPDATA` and returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Startup {
    /// 0 or the Winsock error code.
    pub(crate) code: i32,
    /// `wVersion`: the negotiated version (the lowest supported if refused).
    pub(crate) version: u16,
    /// `wHighVersion`.
    pub(crate) high: u16,
}

/// `WSPStartup`: negotiates, then counts one startup carrying this call's
/// upcall table and protocol info (W1).
pub(crate) fn startup<P: WinsockProvider>(
    requested: u16,
    protocol: Option<WSAPROTOCOL_INFOW>,
    upcalls: WSPUPCALLTABLE,
) -> Startup {
    let l = P::lifecycle();
    let requested = Version::from_word(requested);
    let (version, high) = match l.provider().negotiate(requested) {
        Ok(n) => (n.version, n.high_version),
        Err(_) => {
            let range = l.provider().versions();
            (range.lowest(), range.highest())
        }
    };
    let _starting = Starting::enter((upcalls, protocol));
    let port = P::complete_overlapped_request();
    let code = match l.startup_with_context(requested, (upcalls, protocol), |state, (u, p)| {
        P::shim(state).apply(u, p, port);
    }) {
        Ok(_) => 0,
        Err(e) => e.wsa_code(),
    };
    Startup {
        code,
        version: version.to_word(),
        high: high.to_word(),
    }
}

thread_local! {
    /// The upcall table and protocol info of the `wsp_startup` running on
    /// this thread, for the provider's `initialize` (which runs inside it).
    /// A const-initialized `Cell` of plain data: it registers no
    /// thread-exit destructor.
    static STARTING: std::cell::Cell<Option<(WSPUPCALLTABLE, Option<WSAPROTOCOL_INFOW>)>> =
        const { std::cell::Cell::new(None) };
}

/// The upcall table and protocol info the `WSPStartup` running on this
/// thread received, if one is running: what a layered provider's
/// [`initialize`](provider_lifecycle::Provider::initialize) passes down to
/// the provider below ([`Lower::start`](crate::Lower::start), W1). A
/// startup nested inside another (a layer starting the provider below on
/// the same thread) sees its own, and the outer one's is back when it
/// returns.
///
/// ```
/// // Outside a `WSPStartup` (here, or in any call but a provider's
/// // `initialize`) there is none.
/// assert!(provider_lifecycle_winsock::startup_context().is_none());
/// ```
#[must_use]
pub fn startup_context() -> Option<(WSPUPCALLTABLE, Option<WSAPROTOCOL_INFOW>)> {
    STARTING.with(std::cell::Cell::get)
}

/// Sets [`startup_context`] for the life of the value, and restores the
/// value it replaced (an outer startup's) when dropped.
struct Starting(Option<(WSPUPCALLTABLE, Option<WSAPROTOCOL_INFOW>)>);

impl Starting {
    fn enter(ctx: (WSPUPCALLTABLE, Option<WSAPROTOCOL_INFOW>)) -> Starting {
        Starting(STARTING.with(|s| s.replace(Some(ctx))))
    }
}

impl Drop for Starting {
    fn drop(&mut self) {
        STARTING.with(|s| s.set(self.0));
    }
}

/// `WSPCleanup`: one cleanup; the final one drains.
pub(crate) fn cleanup<P: WinsockProvider>() -> Result<(), Error> {
    P::lifecycle().cleanup().map(|_: Cleanup| ())
}

/// `WSPSocket`: a new socket, or (with a key a `WSPDuplicateSocket` put in
/// the protocol info) a new handle to an existing one (W3, W6).
pub(crate) fn socket<P: WinsockProvider>(
    guard: &Guard<P>,
    request: &SocketRequest,
    dup_key: Option<u32>,
) -> Result<SOCKET, Error> {
    let l = P::lifecycle();
    let state = guard.state();
    let shim = P::shim(&state);
    let (handle, of) = match dup_key.filter(|&k| k != 0) {
        Some(key) => {
            let Dup { handle, socket, .. } = shim.dups().take(key, std::process::id())?;
            (l.duplicate_socket(handle)?, Some(socket))
        }
        None if request.af == FROM_PROTOCOL_INFO => return Err(Error::Fault),
        None => {
            let socket = l.provider().open_socket(&state, request)?;
            (l.register_socket(socket)?, None)
        }
    };
    // The SOCKET value: from WPUCreateSocketHandle of the upcall table in
    // force (W1) when it has one, else the handle itself.
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
    shim.remember(s, handle, upcall, of);
    Ok(s)
}

/// `WSPCloseSocket`: closes the handle with its linger. Its bookkeeping
/// (forgetting `s`, `WPUCloseSocketHandle`, ending the socket's pending
/// operations with 995, notified) happens under the caller's guard, so in
/// the generation of this close (W7, W4).
pub(crate) fn close<P: WinsockProvider>(guard: &Guard<P>, s: SOCKET) -> Result<(), Error> {
    let l = P::lifecycle();
    let state = guard.state();
    let shim = P::shim(&state);
    let entry = shim.entry(s)?;
    let line: SocketReport = l.close_socket(entry.handle)?;
    shim.forget(s, entry);
    if line.outcome != SocketOutcome::Retained {
        shim.ops().end_socket(entry.socket, &shim.notify());
    }
    if let (true, Some(close)) = (entry.upcall, shim.upcalls().lpWPUCloseSocketHandle) {
        let mut e = 0;
        // SAFETY: ws2_32's upcall on the value it created.
        unsafe { close(s, &mut e) };
    }
    match line.outcome {
        SocketOutcome::Cancelled => Err(Error::Interrupted),
        _ => Ok(()),
    }
}

/// Runs `f` on the socket behind `s`.
fn on_socket<P: WinsockProvider, R>(
    guard: &Guard<P>,
    shim: &Shim,
    s: SOCKET,
    f: impl FnOnce(&mut P::Socket) -> Result<R, Error>,
) -> Result<R, Error> {
    // Under the entry's own guard: no second one.
    P::lifecycle().with_socket_in(guard, shim.entry(s)?.handle, f)?
}

/// A non-overlapped `WSPSend`: hands the buffers (read whole by the shell,
/// D3) to the socket.
pub(crate) fn send_now<P: WinsockProvider>(
    guard: &Guard<P>,
    s: SOCKET,
    buffers: &[&[u8]],
) -> Result<u32, Error> {
    let state = guard.state();
    on_socket::<P, _>(guard, P::shim(&state), s, |sock| sock.send(buffers))
}

/// An overlapped `WSPSend`: the shim records the operation first, hands
/// the buffers (read whole by the shell, D3) to the socket, and settles the
/// operation by the socket's answer (W4 completion).
pub(crate) fn send<P: WinsockProvider>(
    guard: &Guard<P>,
    s: SOCKET,
    buffers: &[&[u8]],
    args: OverlappedArgs,
) -> Result<Settled, Error> {
    let state = guard.state();
    let shim = P::shim(&state);
    let entry = shim.entry(s)?;
    let ops = shim.ops();
    // The guard's generation (it cannot end while the guard lives).
    let generation = guard.generation();
    let token = ops.start(generation, entry.socket, s, entry.upcall, args);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        on_socket::<P, _>(guard, shim, s, |sock| sock.send_overlapped(buffers, token))
    }));
    let result = match result {
        Ok(r) => r.map_err(Some),
        Err(_) => Err(None),
    };
    ops.settle(token, result, &shim.notify())
        .map_err(|e| e.unwrap_or_else(|| Error::system_not_ready("WSPSend panicked")))
}

/// `WSPSetSockOpt` of `SO_LINGER` (a `LINGER`'s 4 bytes) or
/// `SO_DONTLINGER` (a `BOOL`).
pub(crate) fn set_linger<P: WinsockProvider>(
    guard: &Guard<P>,
    s: SOCKET,
    name: i32,
    raw: [u8; 4],
) -> Result<(), Error> {
    let state = guard.state();
    on_socket::<P, _>(guard, P::shim(&state), s, |sock| {
        let linger = if name == SO_LINGER {
            Linger::from_winsock(
                u16::from_ne_bytes([raw[0], raw[1]]),
                u16::from_ne_bytes([raw[2], raw[3]]),
            )
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
}

/// `WSPGetSockOpt` of `SO_LINGER` or `SO_DONTLINGER`: the 4 bytes Winsock
/// encodes them as.
pub(crate) fn get_linger<P: WinsockProvider>(
    guard: &Guard<P>,
    s: SOCKET,
    name: i32,
) -> Result<[u8; 4], Error> {
    let state = guard.state();
    let linger = on_socket::<P, _>(guard, P::shim(&state), s, |sock| Ok(sock.linger()))?;
    Ok(if name == SO_LINGER {
        let (on, secs) = linger.to_winsock();
        let mut b = [0u8; 4];
        b[..2].copy_from_slice(&on.to_ne_bytes());
        b[2..].copy_from_slice(&secs.to_ne_bytes());
        b
    } else {
        i32::from(linger == Linger::Background).to_ne_bytes()
    })
}

/// `WSPDuplicateSocket`: the protocol info whose `dwProviderReserved` names
/// the duplication, bound to `process` (W3, W6).
pub(crate) fn duplicate<P: WinsockProvider>(
    guard: &Guard<P>,
    s: SOCKET,
    process: u32,
) -> Result<WSAPROTOCOL_INFOW, Error> {
    let state = guard.state();
    let shim = P::shim(&state);
    let entry = shim.entry(s)?;
    let mut out = shim.protocol_info();
    out.dwProviderReserved = shim.dups().announce(Dup {
        handle: entry.handle,
        socket: entry.socket,
        process,
    });
    Ok(out)
}

/// `WSPGetOverlappedResult`: `Ok(None)` while pending (`WSA_IO_INCOMPLETE`),
/// else the operation's status and flags. With `wait` it waits for the end
/// outside the guard (a final cleanup ends every operation and wakes it).
pub(crate) fn overlapped_result<P: WinsockProvider>(
    guard: Guard<P>,
    s: SOCKET,
    overlapped: ReadableOverlapped,
    wait: bool,
) -> Result<Option<(Status, u32)>, Error> {
    let ops = {
        let state = guard.state();
        let shim = P::shim(&state);
        shim.entry(s)?;
        std::sync::Arc::clone(shim.ops())
    };
    let generation = guard.generation();
    drop(guard);
    Ok(ops.result(overlapped, wait, generation))
}
