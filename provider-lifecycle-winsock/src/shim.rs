//! What a provider implements to be exported, and the shim's own
//! per-generation bookkeeping: the latest upcall table, the `SOCKET` values
//! handed out, pending duplications ([`dup`](crate::dup)) and pending
//! overlapped operations ([`overlapped`](crate::overlapped)).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use provider_lifecycle::{Error, Lifecycle, Linger, Provider, Socket, SocketHandle};

use crate::dup::Dups;
use crate::overlapped::{CompleteOverlappedRequest, IoToken, Notify, Ops, Status};
use crate::sockets::{Entry, Sockets};
use crate::sys::{LPWPUQUERYSOCKETHANDLECONTEXT, SOCKET, WSAPROTOCOL_INFOW, WSPUPCALLTABLE};

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

    /// The shim's bookkeeping inside the provider's per-generation state:
    /// the same `Shim` for the whole generation, created by `initialize` and
    /// dropped with the state by the final cleanup (which is when the
    /// generation's pending operations end). A `Shim` kept elsewhere (a
    /// `static`) stays memory-safe — an operation is completed only through
    /// a guard of the generation it started in — but its operations then
    /// never get the final cleanup's 995.
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

    /// `WPUCompleteOverlappedRequest`, which ws2_32 exports (it is not in
    /// the upcall table): how completions reach an application that chose
    /// an event or a completion port for a socket made by
    /// `WPUCreateSocketHandle`. On Windows the default is ws2_32's own; off
    /// Windows it is `None` (completions then set the event through
    /// `WPUSetEvent`), and a test names its fake here.
    #[must_use]
    fn complete_overlapped_request() -> Option<CompleteOverlappedRequest> {
        #[cfg(windows)]
        {
            Some(windows_sys::Win32::Networking::WinSock::WPUCompleteOverlappedRequest)
        }
        #[cfg(not(windows))]
        {
            None
        }
    }
}

/// A socket as the Winsock entries use it.
pub trait WinsockSocket: Socket {
    /// `SO_LINGER` / `SO_DONTLINGER` set through `WSPSetSockOpt`.
    fn set_linger(&mut self, linger: Linger);

    /// A non-overlapped `WSPSend`: takes the buffers' bytes (queued for the
    /// peer) and returns how many it took. The shim calls it only with
    /// buffers it could read whole: a bad buffer fails the call with
    /// `WSAEFAULT` before the socket sees anything
    /// ([D3](provider_lifecycle::contract#D3)).
    ///
    /// # Errors
    ///
    /// Its Winsock code is reported in `*lpErrno` unchanged
    /// ([E1](provider_lifecycle::contract#E1)): return
    /// `Error::from_wsa_code(10054)` for `WSAECONNRESET`.
    fn send(&mut self, buffers: &[&[u8]]) -> Result<u32, Error>;

    /// An overlapped `WSPSend`. `Ok(Some(n))`: completed at once with `n`
    /// bytes (the shim indicates the completion); `Ok(None)`: pending — the
    /// socket keeps `op` and completes it later with
    /// [`complete_overlapped`](crate::complete_overlapped) (from any
    /// thread). An `Err`
    /// means the operation never started: the shim discards it and nothing
    /// is ever indicated. The shim owns the operation itself, so a token
    /// whose operation ended (socket closed, final cleanup) completes
    /// nothing ([W4](provider_lifecycle::contract#W4)).
    ///
    /// The default completes at once through [`send`](WinsockSocket::send).
    ///
    /// # Errors
    ///
    /// Its Winsock code is reported in `*lpErrno` unchanged.
    fn send_overlapped(&mut self, buffers: &[&[u8]], op: IoToken) -> Result<Option<u32>, Error> {
        let _ = op;
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

/// Ids of sockets for the shim (shared by duplicates), process-wide.
static NEXT_SOCKET_ID: AtomicU64 = AtomicU64::new(1);

/// The shim's per-generation bookkeeping; a provider keeps one in its
/// [`Provider::State`] and hands it out through [`WinsockProvider::shim`].
#[derive(Default)]
pub struct Shim {
    upcalls: Mutex<WSPUPCALLTABLE>,
    /// The table's `WPUQuerySocketHandleContext` (0: none), read on every
    /// socket call without the table's lock.
    query: AtomicUsize,
    port: Mutex<Option<CompleteOverlappedRequest>>,
    /// The catalog entry and protocol of the startup in force.
    protocol: Mutex<Option<ProtocolInfo>>,
    /// `SOCKET` value → what it names.
    sockets: Sockets,
    dups: Mutex<Dups>,
    ops: Arc<Ops>,
}

impl std::fmt::Debug for Shim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shim")
            .field("pending", &self.ops.len())
            .finish_non_exhaustive()
    }
}

/// The generation's end (the final cleanup drops the state after the
/// sockets): `SOCKET` values still registered that came from
/// `WPUCreateSocketHandle` go back through `WPUCloseSocketHandle` of the
/// table in force, so ws2_32's handles do not outlive the provider's sockets;
/// pending operations end with 995, silently (W4).
impl Drop for Shim {
    fn drop(&mut self) {
        self.ops.end_generation();
        let Some(close) = self
            .upcalls
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .lpWPUCloseSocketHandle
        else {
            return;
        };
        for s in self.sockets.upcall_values() {
            let mut errno = 0;
            // SAFETY: ws2_32's upcall on a value it created for us.
            unsafe { close(s, &mut errno) };
        }
    }
}

/// Locks `m`, whatever a panic elsewhere did (the shim's critical sections
/// call no user code). std's locks, not parking_lot's: a thread that blocks
/// in parking_lot registers a thread-exit destructor, which would keep the
/// provider library mapped after `dlclose`
/// ([L17](provider_lifecycle::contract#L17)).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A copy of the protocol info a startup passed (it is plain data).
#[derive(Clone, Copy)]
struct ProtocolInfo(WSAPROTOCOL_INFOW);

impl Shim {
    /// An empty shim (for `initialize`).
    ///
    /// ```
    /// use provider_lifecycle_winsock::Shim;
    /// let shim = Shim::new(); // what a provider's `initialize` puts in its state
    /// assert_eq!((shim.pending(), shim.waiters(), shim.announced()), (0, 0, 0));
    /// assert_eq!(shim.catalog_entry(), 0); // no startup applied yet
    /// ```
    #[must_use]
    pub fn new() -> Shim {
        Shim::default()
    }

    /// The upcall table in force: the latest startup's
    /// ([W1](provider_lifecycle::contract#W1)).
    ///
    /// ```
    /// use provider_lifecycle_winsock::Shim;
    /// let shim = Shim::new();
    /// // No startup applied yet: no upcall, so the shim's SOCKET values are
    /// // its own handles.
    /// assert!(shim.upcalls().lpWPUCreateSocketHandle.is_none());
    /// ```
    #[must_use]
    pub fn upcalls(&self) -> WSPUPCALLTABLE {
        *lock(&self.upcalls)
    }

    /// The catalog entry id of the startup in force (0 if it passed no
    /// protocol info).
    #[must_use]
    pub fn catalog_entry(&self) -> u32 {
        lock(&self.protocol).map_or(0, |p| p.0.dwCatalogEntryId)
    }

    /// Completes the pending overlapped operation `op` from a guard of
    /// `generation` (see [`complete_overlapped`](crate::complete_overlapped),
    /// the public way).
    pub(crate) fn complete(
        &self,
        op: IoToken,
        result: Result<u32, Error>,
        generation: u64,
    ) -> bool {
        self.ops
            .complete(op, Status::of(result), &self.notify(), generation)
    }

    /// Overlapped operations still pending.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.ops.len()
    }

    /// `WSPGetOverlappedResult` calls (with `fWait`) waiting for their
    /// operation's end: the final cleanup wakes them.
    #[must_use]
    pub fn waiters(&self) -> usize {
        self.ops.waiters()
    }

    /// Duplications announced and not consumed yet
    /// ([W6](provider_lifecycle::contract#W6)).
    #[must_use]
    pub fn announced(&self) -> usize {
        lock(&self.dups).len()
    }

    /// W1: what one successful startup carries.
    pub(crate) fn apply(
        &self,
        upcalls: WSPUPCALLTABLE,
        protocol: Option<WSAPROTOCOL_INFOW>,
        port: Option<CompleteOverlappedRequest>,
    ) {
        *lock(&self.upcalls) = upcalls;
        self.query.store(
            upcalls
                .lpWPUQuerySocketHandleContext
                .map_or(0, |f| f as usize),
            Ordering::Relaxed,
        );
        *lock(&self.port) = port;
        if let Some(p) = protocol {
            *lock(&self.protocol) = Some(ProtocolInfo(p));
        }
    }

    pub(crate) fn notify(&self) -> Notify {
        Notify {
            upcalls: self.upcalls(),
            port: *lock(&self.port),
        }
    }

    pub(crate) fn ops(&self) -> &Arc<Ops> {
        &self.ops
    }

    pub(crate) fn protocol_info(&self) -> WSAPROTOCOL_INFOW {
        lock(&self.protocol).map(|p| p.0).unwrap_or_default()
    }

    #[inline]
    fn query(&self) -> LPWPUQUERYSOCKETHANDLECONTEXT {
        let f = self.query.load(Ordering::Relaxed);
        // SAFETY: 0 or a function pointer of this type stored by `apply`
        // (`Option` of a function pointer has the null niche).
        unsafe { std::mem::transmute::<usize, LPWPUQUERYSOCKETHANDLECONTEXT>(f) }
    }

    /// Remembers a new `SOCKET` value; `of` is the entry it duplicates.
    pub(crate) fn remember(&self, s: SOCKET, handle: SocketHandle, upcall: bool, of: Option<u64>) {
        let socket = of.unwrap_or_else(|| NEXT_SOCKET_ID.fetch_add(1, Ordering::Relaxed));
        let entry = Entry {
            handle,
            upcall,
            socket,
        };
        self.sockets.remember(s, entry, self.query().is_some());
    }

    /// What `s` names (without a lock shared with other sockets when the
    /// value is the shim's own or the table can query its context).
    #[inline]
    pub(crate) fn entry(&self, s: SOCKET) -> Result<Entry, Error> {
        self.sockets.entry(s, self.query())
    }

    pub(crate) fn forget(&self, s: SOCKET, entry: Entry) {
        self.sockets.forget(s, entry);
    }

    pub(crate) fn dups(&self) -> MutexGuard<'_, Dups> {
        lock(&self.dups)
    }
}
