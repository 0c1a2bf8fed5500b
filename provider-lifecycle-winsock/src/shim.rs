//! What a provider implements to be exported, and the shim's own
//! per-generation bookkeeping (the latest upcall table, the `SOCKET` values
//! handed out, pending duplications).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use parking_lot::Mutex;
use provider_lifecycle::{Error, Lifecycle, Linger, Provider, Socket, SocketHandle};

use crate::sys::{
    LPWSAOVERLAPPED_COMPLETION_ROUTINE, OVERLAPPED, SOCKET, WSA_OPERATION_ABORTED,
    WSAPROTOCOL_INFOW, WSATHREADID, WSPUPCALLTABLE,
};

/// A provider the shim can export: a [`Provider`] whose sockets speak
/// Winsock ([`WinsockSocket`]), reachable from `extern "system"` functions
/// through a `static` lifecycle.
///
/// ```ignore
/// static LIFECYCLE: Lifecycle<MyProvider> = Lifecycle::new(MyProvider);
/// impl WinsockProvider for MyProvider {
///     const DESCRIPTION: &'static str = "my provider";
///     fn lifecycle() -> &'static Lifecycle<Self> { &LIFECYCLE }
///     fn shim(state: &MyState) -> &Shim { &state.shim }
///     fn open_socket(&self, state: &MyState, r: &SocketRequest) -> Result<MySocket, Error> { ... }
/// }
/// provider_lifecycle_winsock::export_wsp_startup!(MyProvider);
/// ```
pub trait WinsockProvider: Provider<Socket: WinsockSocket> + Sized + 'static {
    /// `WSPDATA::szDescription` (truncated to 255 UTF-16 units).
    const DESCRIPTION: &'static str;

    /// The lifecycle every export goes through.
    fn lifecycle() -> &'static Lifecycle<Self>;

    /// The shim's bookkeeping inside the provider's per-generation state.
    fn shim(state: &Self::State) -> &Shim;

    /// `WSPSocket`: a new socket of this provider.
    ///
    /// # Errors
    ///
    /// Its Winsock code is what `WSPSocket` reports in `*lpErrno`.
    fn open_socket(
        &self,
        state: &Self::State,
        request: &SocketRequest,
    ) -> Result<Self::Socket, Error>;
}

/// A socket as the Winsock entries use it.
pub trait WinsockSocket: Socket {
    /// `SO_LINGER` / `SO_DONTLINGER` set through `WSPSetSockOpt`.
    fn set_linger(&mut self, linger: Linger);

    /// A non-overlapped `WSPSend`: takes the buffers' bytes (queued for the
    /// peer) and returns how many it took.
    ///
    /// # Errors
    ///
    /// Its Winsock code is reported in `*lpErrno`.
    fn send(&mut self, buffers: &[&[u8]]) -> Result<u32, Error>;

    /// An overlapped `WSPSend`. `Ok(Some(n))`: completed at once with `n`
    /// bytes; `Ok(None)`: pending — the socket keeps `op` (usually in a
    /// [`PendingIo`]) until it completes it or
    /// [`Socket::abort_pending`] ends it ([W4](provider_lifecycle::contract#W4)).
    /// The default completes at once through [`send`](WinsockSocket::send).
    ///
    /// # Errors
    ///
    /// Its Winsock code is reported in `*lpErrno`.
    fn send_overlapped(&mut self, buffers: &[&[u8]], op: Overlapped) -> Result<Option<u32>, Error> {
        drop(op);
        self.send(buffers).map(Some)
    }
}

/// The arguments of one `WSPSocket` call.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct SocketRequest {
    /// Address family.
    pub af: i32,
    /// Socket type.
    pub socket_type: i32,
    /// Protocol.
    pub protocol: i32,
    /// Group and flags as passed (`g`, `dwFlags`).
    pub group: u32,
    /// `dwFlags` (`WSA_FLAG_OVERLAPPED`, ...).
    pub flags: u32,
}

/// The shim's per-generation bookkeeping; a provider keeps one in its
/// [`Provider::State`] and hands it out through [`WinsockProvider::shim`].
#[derive(Debug, Default)]
pub struct Shim {
    upcalls: Upcalls,
    /// The catalog entry and protocol of the startup in force.
    protocol: Mutex<Option<ProtocolInfo>>,
    /// `SOCKET` value → the lifecycle's handle, and whether the value came
    /// from `WPUCreateSocketHandle` (so its close goes back through
    /// `WPUCloseSocketHandle`).
    sockets: Mutex<BTreeMap<SOCKET, (SocketHandle, bool)>>,
    /// Duplications announced by `WSPDuplicateSocket`, by the key put in
    /// `dwProviderReserved`.
    dups: Mutex<BTreeMap<u32, SocketHandle>>,
    next_dup: AtomicU32,
}

/// The generation's end (the final cleanup drops the state after the
/// sockets): `SOCKET` values still registered that came from
/// `WPUCreateSocketHandle` go back through `WPUCloseSocketHandle` of the
/// table in force, so ws2_32's handles do not outlive the provider's sockets.
impl Drop for Shim {
    fn drop(&mut self) {
        let Some(close) = self.upcalls.get().lpWPUCloseSocketHandle else {
            return;
        };
        for (s, (_, upcall)) in std::mem::take(self.sockets.get_mut()) {
            if upcall {
                let mut errno = 0;
                // SAFETY: ws2_32's upcall on a value it created for us.
                unsafe { close(s, &mut errno) };
            }
        }
    }
}

/// A copy of the protocol info a startup passed (it is plain data).
#[derive(Clone, Copy)]
struct ProtocolInfo(WSAPROTOCOL_INFOW);

impl std::fmt::Debug for ProtocolInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProtocolInfo")
            .field("dwCatalogEntryId", &self.0.dwCatalogEntryId)
            .finish_non_exhaustive()
    }
}

impl Shim {
    /// An empty shim (for `initialize`).
    #[must_use]
    pub fn new() -> Shim {
        Shim::default()
    }

    /// The upcall table in force: the latest startup's
    /// ([W1](provider_lifecycle::contract#W1)).
    #[must_use]
    pub fn upcalls(&self) -> WSPUPCALLTABLE {
        self.upcalls.get()
    }

    /// The shared cell of the upcall table in force, for sockets that must
    /// reach it later (a [`PendingIo`] notifying completions).
    #[must_use]
    pub fn upcall_cell(&self) -> Upcalls {
        self.upcalls.clone()
    }

    /// The catalog entry id of the startup in force (0 if it passed no
    /// protocol info).
    #[must_use]
    pub fn catalog_entry(&self) -> u32 {
        self.protocol.lock().map_or(0, |p| p.0.dwCatalogEntryId)
    }

    /// W1: what one successful startup carries.
    pub(crate) fn apply(&self, upcalls: WSPUPCALLTABLE, protocol: Option<WSAPROTOCOL_INFOW>) {
        self.upcalls.set(upcalls);
        if let Some(p) = protocol {
            *self.protocol.lock() = Some(ProtocolInfo(p));
        }
    }

    pub(crate) fn protocol_info(&self) -> WSAPROTOCOL_INFOW {
        self.protocol.lock().map(|p| p.0).unwrap_or_default()
    }

    pub(crate) fn remember(&self, s: SOCKET, handle: SocketHandle, upcall: bool) {
        self.sockets.lock().insert(s, (handle, upcall));
    }

    pub(crate) fn handle(&self, s: SOCKET) -> Result<(SocketHandle, bool), Error> {
        self.sockets.lock().get(&s).copied().ok_or(Error::NotSocket)
    }

    pub(crate) fn forget(&self, s: SOCKET) {
        self.sockets.lock().remove(&s);
    }

    pub(crate) fn announce_dup(&self, handle: SocketHandle) -> u32 {
        // Keys start at 1: 0 in dwProviderReserved means "no duplication".
        let key = self.next_dup.fetch_add(1, Ordering::Relaxed) + 1;
        self.dups.lock().insert(key, handle);
        key
    }

    pub(crate) fn take_dup(&self, key: u32) -> Option<SocketHandle> {
        self.dups.lock().remove(&key)
    }
}

/// A shared, replaceable upcall table: the one in force for a generation
/// ([W1](provider_lifecycle::contract#W1)).
#[derive(Clone, Default)]
pub struct Upcalls(Arc<Mutex<WSPUPCALLTABLE>>);

impl Upcalls {
    /// The table in force.
    #[must_use]
    pub fn get(&self) -> WSPUPCALLTABLE {
        *self.0.lock()
    }

    fn set(&self, table: WSPUPCALLTABLE) {
        *self.0.lock() = table;
    }
}

impl std::fmt::Debug for Upcalls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upcalls").finish_non_exhaustive()
    }
}

/// A pending overlapped operation: the caller's `OVERLAPPED`, its
/// completion routine and thread, and how to reach the upcalls that notify
/// it.
pub struct Overlapped {
    overlapped: *mut OVERLAPPED,
    completion: LPWSAOVERLAPPED_COMPLETION_ROUTINE,
    thread: Option<WSATHREADID>,
    upcalls: Upcalls,
}

// SAFETY: the only non-Send fields are the caller's OVERLAPPED pointer and
// the thread id's handle. Winsock requires the OVERLAPPED (and the thread
// named by lpThreadId) to stay valid until the operation completes, from
// whichever thread completes it; this value is the record of that promise
// and is used only to complete the operation once.
unsafe impl Send for Overlapped {}

impl std::fmt::Debug for Overlapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Overlapped")
            .field("overlapped", &self.overlapped)
            .field("completion", &self.completion.is_some())
            .finish_non_exhaustive()
    }
}

impl Overlapped {
    pub(crate) fn new(
        overlapped: *mut OVERLAPPED,
        completion: LPWSAOVERLAPPED_COMPLETION_ROUTINE,
        thread: *const WSATHREADID,
        upcalls: Upcalls,
    ) -> Overlapped {
        // SAFETY: a non-null lpThreadId points to the caller's WSATHREADID,
        // valid for the call; it is plain data, copied here.
        let thread = (!thread.is_null()).then(|| unsafe { *thread });
        Overlapped {
            overlapped,
            completion,
            thread,
            upcalls,
        }
    }

    /// Ends the operation with `error` and `bytes`: writes the status into
    /// the caller's `OVERLAPPED`, and with `notify` delivers the completion
    /// notification the way the SPI does: the completion routine through
    /// `WPUQueueApc` on the caller's thread, else the event through
    /// `WPUSetEvent` (both from the upcall table in force).
    pub fn complete(self, error: i32, bytes: u32, notify: bool) {
        // SAFETY: the caller's OVERLAPPED stays valid until its operation
        // completes (the Winsock contract this value records); this is that
        // completion, and it happens once (by value).
        unsafe {
            (*self.overlapped).Internal = error as usize;
            (*self.overlapped).InternalHigh = bytes as usize;
        }
        if !notify {
            return;
        }
        let table = self.upcalls.get();
        let mut errno = 0;
        if let Some(routine) = self.completion {
            let Some(queue) = table.lpWPUQueueApc else {
                return;
            };
            let ctx = Box::into_raw(Box::new(Completion {
                routine,
                overlapped: self.overlapped,
                error,
                bytes,
            }));
            let thread = self.thread.unwrap_or_default();
            // SAFETY: WPUQueueApc is the upcall ws2_32 gave this provider;
            // it runs `apc` once with `ctx`, which `apc` frees.
            let queued = unsafe { queue(&thread, Some(apc), ctx as usize, &mut errno) };
            if queued != 0 {
                // Not queued: free the context here instead.
                // SAFETY: `ctx` came from Box::into_raw above and was not
                // handed to a queued APC.
                drop(unsafe { Box::from_raw(ctx) });
            }
        } else if let Some(set) = table.lpWPUSetEvent {
            // SAFETY: the OVERLAPPED is valid (above); hEvent is the caller's.
            let event = unsafe { (*self.overlapped).hEvent };
            if !event.is_null() {
                // SAFETY: WPUSetEvent is ws2_32's upcall on the caller's event.
                unsafe { set(event as isize, &mut errno) };
            }
        }
    }
}

/// What the APC needs to call a completion routine.
struct Completion {
    routine: unsafe extern "system" fn(u32, u32, *mut OVERLAPPED, u32),
    overlapped: *mut OVERLAPPED,
    error: i32,
    bytes: u32,
}

/// The APC queued through `WPUQueueApc`: calls the completion routine.
unsafe extern "system" fn apc(ctx: usize) {
    // SAFETY: `ctx` is the Box::into_raw of a Completion, queued once.
    let c = unsafe { Box::from_raw(ctx as *mut Completion) };
    // SAFETY: the caller's completion routine with its own OVERLAPPED.
    unsafe { (c.routine)(c.error as u32, c.bytes, c.overlapped, 0) };
}

/// The pending overlapped operations of one socket: embed one and forward
/// [`Socket::abort_pending`] to [`PendingIo::abort`].
#[derive(Debug, Default)]
pub struct PendingIo(Vec<Overlapped>);

impl PendingIo {
    /// Keeps `op` until it completes or is aborted.
    pub fn push(&mut self, op: Overlapped) {
        self.0.push(op);
    }

    /// Operations pending.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none is pending.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Completes the oldest pending operation with `bytes`, notified.
    pub fn complete_next(&mut self, bytes: u32) -> bool {
        if self.0.is_empty() {
            return false;
        }
        self.0.remove(0).complete(0, bytes, true);
        true
    }

    /// [W4](provider_lifecycle::contract#W4): ends every pending operation
    /// with `WSA_OPERATION_ABORTED` (995), notified or not; returns how many.
    pub fn abort(&mut self, notify: bool) -> u32 {
        let ops = std::mem::take(&mut self.0);
        let n = ops.len() as u32;
        for op in ops {
            op.complete(WSA_OPERATION_ABORTED, 0, notify);
        }
        n
    }
}
