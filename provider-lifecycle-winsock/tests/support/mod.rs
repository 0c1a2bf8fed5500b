//! A provider of in-memory sockets exported through the shim, fake upcall
//! tables that record what they are asked, and the way ws2_32 calls a
//! provider: only through the `WSPStartup` pointer and the table it fills.
#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering::SeqCst};
use std::task::{Context, Poll};
use std::time::Duration;

use parking_lot::Mutex;
use provider_lifecycle::*;
use provider_lifecycle_winsock::sys::*;
use provider_lifecycle_winsock::*;

/// Everything the fakes saw, in order.
pub static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

pub fn log(s: impl Into<String>) {
    LOG.lock().push(s.into());
}

pub fn take_log() -> Vec<String> {
    std::mem::take(&mut *LOG.lock())
}

/// Tests share one static lifecycle: one at a time.
pub static SERIAL: Mutex<()> = Mutex::new(());

/// Fails the test binary (exit 124) if a test hangs.
pub fn watchdog(secs: u64) -> std::sync::mpsc::Sender<()> {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
            rx.recv_timeout(Duration::from_secs(secs))
        {
            eprintln!("watchdog: a test hung for {secs} s");
            std::process::exit(124);
        }
    });
    tx
}

// --- the provider ------------------------------------------------------------

pub struct Mem;

pub struct MemState {
    pub shim: Shim,
}

/// Bytes every in-memory socket delivered, in all.
pub static DELIVERED: AtomicUsize = AtomicUsize::new(0);
/// New sockets keep overlapped sends pending.
pub static KEEP_PENDING: AtomicBool = AtomicBool::new(false);
/// `open_socket` panics.
pub static PANIC_OPEN: AtomicBool = AtomicBool::new(false);
/// Sends fail with this Winsock code (0: they succeed).
pub static SEND_ERROR: AtomicI32 = AtomicI32::new(0);
/// Overlapped sends keep their token and then fail (an `Err` after taking
/// the operation: it must never complete).
pub static KEEP_THEN_FAIL: AtomicBool = AtomicBool::new(false);
/// Overlapped sends keep their token and then panic.
pub static KEEP_THEN_PANIC: AtomicBool = AtomicBool::new(false);
/// Tokens the sockets kept, as a provider's I/O thread would: completing
/// one whose operation ended must do nothing.
pub static KEPT: Mutex<Vec<IoToken>> = Mutex::new(Vec::new());
/// Sockets never finish flushing (a blocking linger close then waits).
pub static STALL_FLUSH: AtomicBool = AtomicBool::new(false);
/// Set when a stalled flush was polled.
pub static STALLED: AtomicBool = AtomicBool::new(false);
/// The provider names `port_complete` as its `WPUCompleteOverlappedRequest`.
pub static USE_PORT: AtomicBool = AtomicBool::new(false);

pub struct MemSocket {
    pub linger: Linger,
    pub unsent: u64,
    pub keep_pending: bool,
}

impl Socket for MemSocket {
    fn linger(&self) -> Linger {
        self.linger
    }
    fn unsent(&self) -> u64 {
        self.unsent
    }
    fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        if STALL_FLUSH.load(SeqCst) {
            STALLED.store(true, SeqCst);
            return Poll::Pending;
        }
        DELIVERED.fetch_add(self.unsent as usize, SeqCst);
        self.unsent = 0;
        Poll::Ready(Ok(()))
    }
    fn abort(&mut self) -> Result<(), BoxError> {
        self.unsent = 0;
        Ok(())
    }
}

impl WinsockSocket for MemSocket {
    fn set_linger(&mut self, linger: Linger) {
        self.linger = linger;
    }
    fn send(&mut self, buffers: &[&[u8]]) -> Result<u32, Error> {
        match SEND_ERROR.load(SeqCst) {
            0 => {}
            // The socket's own I/O error, kept as the cause (E1).
            -1 => {
                let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
                return Err(Error::from_io(reset));
            }
            code => return Err(Error::from_wsa_code(code)),
        }
        let n: usize = buffers.iter().map(|b| b.len()).sum();
        self.unsent += n as u64;
        Ok(n as u32)
    }
    fn send_overlapped(&mut self, buffers: &[&[u8]], op: IoToken) -> Result<Option<u32>, Error> {
        if KEEP_THEN_FAIL.load(SeqCst) {
            KEPT.lock().push(op);
            return Err(Error::from_wsa_code(10055));
        }
        if KEEP_THEN_PANIC.load(SeqCst) {
            KEPT.lock().push(op);
            panic!("send_overlapped exploded");
        }
        if self.keep_pending {
            let n = self.send(buffers)?;
            KEPT.lock().push(op);
            let _ = n;
            return Ok(None);
        }
        self.send(buffers).map(Some)
    }
}

impl Provider for Mem {
    type Socket = MemSocket;
    type State = MemState;
    fn versions(&self) -> VersionRange {
        VersionSet::WINSOCK.range()
    }
    fn negotiate(&self, requested: Version) -> Result<Negotiated, Error> {
        VersionSet::WINSOCK.negotiate(requested)
    }
    fn initialize(&self, _: &mut Registrar) -> Result<MemState, Error> {
        log("mem initialize");
        Ok(MemState { shim: Shim::new() })
    }
    fn prepare_unload(&self) -> Result<(), BoxError> {
        log("mem unload");
        Ok(())
    }
}

pub static MEM: Lifecycle<Mem> = Lifecycle::new(Mem);

impl WinsockProvider for Mem {
    const DESCRIPTION: &'static str = "in-memory test provider";
    fn lifecycle() -> &'static Lifecycle<Mem> {
        &MEM
    }
    fn shim(state: &MemState) -> &Shim {
        &state.shim
    }
    fn complete_overlapped_request() -> Option<CompleteOverlappedRequest> {
        USE_PORT
            .load(SeqCst)
            .then_some(port_complete as CompleteOverlappedRequest)
    }
    fn open_socket(&self, _: &MemState, r: &SocketRequest) -> Result<MemSocket, Error> {
        assert!(!PANIC_OPEN.load(SeqCst), "open_socket exploded");
        log(format!("mem socket af={}", r.af));
        Ok(MemSocket {
            linger: Linger::Background,
            unsent: 0,
            keep_pending: KEEP_PENDING.load(SeqCst),
        })
    }
}

// The export as ws2_32 finds it in the DLL.
provider_lifecycle_winsock::export_wsp_startup!(Mem);

/// `WSPStartup` as ws2_32 holds it: a function pointer of the SDK's type.
pub const MEM_STARTUP: LPWSPSTARTUP = Some(WSPStartup);

// --- fake upcall tables ------------------------------------------------------

static NEXT_SOCKET: AtomicUsize = AtomicUsize::new(0x1000);

macro_rules! create_handle {
    ($name:ident, $tag:literal) => {
        pub unsafe extern "system" fn $name(catalog: u32, ctx: usize, _e: *mut i32) -> SOCKET {
            let s = NEXT_SOCKET.fetch_add(4, SeqCst);
            log(format!(
                "{} create catalog={catalog} ctx={}",
                $tag,
                ctx != 0
            ));
            s
        }
    };
}
create_handle!(create_a, "A");
create_handle!(create_b, "B");

pub unsafe extern "system" fn close_a(_s: SOCKET, _e: *mut i32) -> i32 {
    log("A close handle");
    0
}
pub unsafe extern "system" fn close_b(_s: SOCKET, _e: *mut i32) -> i32 {
    log("B close handle");
    0
}

/// Runs the APC at once, as if the thread were alertable.
pub unsafe extern "system" fn queue_apc(
    _t: *const WSATHREADID,
    apc: Option<unsafe extern "system" fn(usize)>,
    ctx: usize,
    _e: *mut i32,
) -> i32 {
    log("queue apc");
    // SAFETY: the provider's APC with its own context.
    unsafe { apc.unwrap()(ctx) };
    0
}

pub unsafe extern "system" fn set_event(event: WSAEVENT, _e: *mut i32) -> i32 {
    log(format!("set event {event}"));
    1
}

/// ws2_32's `WPUCompleteOverlappedRequest`, faked: records the packet it
/// would queue to the socket's completion port (and the event it would set).
pub unsafe extern "system" fn port_complete(
    s: SOCKET,
    o: *mut OVERLAPPED,
    error: u32,
    bytes: u32,
    _e: *mut i32,
) -> i32 {
    // SAFETY: the shim passes the operation's own, still valid OVERLAPPED.
    let event = unsafe { (*o).hEvent } as usize;
    log(format!(
        "port packet s={} error={error} bytes={bytes} event={event}",
        s != 0
    ));
    0
}

/// A completion routine that records how its operation ended.
pub unsafe extern "system" fn completed(error: u32, bytes: u32, _o: *mut OVERLAPPED, _f: u32) {
    log(format!("completed error={error} bytes={bytes}"));
}

pub fn table_a() -> WSPUPCALLTABLE {
    WSPUPCALLTABLE {
        lpWPUCreateSocketHandle: Some(create_a),
        lpWPUCloseSocketHandle: Some(close_a),
        lpWPUQueueApc: Some(queue_apc),
        lpWPUSetEvent: Some(set_event),
        ..Default::default()
    }
}

pub fn table_b() -> WSPUPCALLTABLE {
    WSPUPCALLTABLE {
        lpWPUCreateSocketHandle: Some(create_b),
        lpWPUCloseSocketHandle: Some(close_b),
        lpWPUQueueApc: Some(queue_apc),
        lpWPUSetEvent: Some(set_event),
        ..Default::default()
    }
}

/// A protocol info naming catalog entry 1001.
pub fn protocol() -> WSAPROTOCOL_INFOW {
    WSAPROTOCOL_INFOW {
        dwCatalogEntryId: 1001,
        ..Default::default()
    }
}

// --- calling like ws2_32 -----------------------------------------------------

/// `WSPStartup` through `startup`; returns its code, the WSPDATA and table.
pub fn start_with(
    startup: LPWSPSTARTUP,
    major: u8,
    minor: u8,
    upcalls: WSPUPCALLTABLE,
) -> (i32, WSPDATA, WSPPROC_TABLE) {
    let mut data = WSPDATA::default();
    let mut table = WSPPROC_TABLE::default();
    let info = protocol();
    // SAFETY: valid pointers for the call, as ws2_32 passes them.
    let code = unsafe {
        startup.unwrap()(
            Version::new(major, minor).to_word(),
            (&raw mut data).cast_const(),
            &info,
            upcalls,
            &mut table,
        )
    };
    (code, data, table)
}

pub fn cleanup(t: &WSPPROC_TABLE) -> (i32, i32) {
    let mut errno = 0;
    // SAFETY: the table's own entry.
    let r = unsafe { t.lpWSPCleanup.unwrap()(&mut errno) };
    (r, errno)
}

pub fn socket(t: &WSPPROC_TABLE, info: Option<&WSAPROTOCOL_INFOW>) -> (SOCKET, i32) {
    let mut errno = 0;
    let af = if info.is_some() {
        FROM_PROTOCOL_INFO
    } else {
        2
    };
    let p = info.map_or(std::ptr::null(), |i| i as *const _);
    // SAFETY: the table's own entry.
    let s = unsafe { t.lpWSPSocket.unwrap()(af, 1, 6, p, 0, 0, &mut errno) };
    (s, errno)
}

pub fn send(t: &WSPPROC_TABLE, s: SOCKET, data: &[u8]) -> (i32, u32, i32) {
    let mut errno = 0;
    let mut sent = 0;
    let buf = WSABUF {
        len: data.len() as u32,
        buf: data.as_ptr().cast_mut(),
    };
    // SAFETY: the table's own entry, one valid buffer.
    let r = unsafe {
        t.lpWSPSend.unwrap()(
            s,
            &buf,
            1,
            &mut sent,
            0,
            std::ptr::null_mut(),
            None,
            std::ptr::null(),
            &mut errno,
        )
    };
    (r, sent, errno)
}

pub fn close(t: &WSPPROC_TABLE, s: SOCKET) -> (i32, i32) {
    let mut errno = 0;
    // SAFETY: the table's own entry.
    let r = unsafe { t.lpWSPCloseSocket.unwrap()(s, &mut errno) };
    (r, errno)
}

pub fn set_linger(t: &WSPPROC_TABLE, s: SOCKET, onoff: u16, secs: u16) -> (i32, i32) {
    let mut errno = 0;
    let l = LINGER {
        l_onoff: onoff,
        l_linger: secs,
    };
    // SAFETY: the table's own entry with a LINGER for the call.
    let r = unsafe {
        t.lpWSPSetSockOpt.unwrap()(
            s,
            SOL_SOCKET,
            SO_LINGER,
            (&raw const l).cast(),
            4,
            &mut errno,
        )
    };
    (r, errno)
}

/// Resets the shared lifecycle's bookkeeping between tests.
pub fn fresh() {
    while MEM.state() == State::Active {
        let _ = MEM.cleanup();
    }
    take_log();
    KEEP_PENDING.store(false, SeqCst);
    PANIC_OPEN.store(false, SeqCst);
    SEND_ERROR.store(0, SeqCst);
    KEEP_THEN_FAIL.store(false, SeqCst);
    KEEP_THEN_PANIC.store(false, SeqCst);
    USE_PORT.store(false, SeqCst);
    STALL_FLUSH.store(false, SeqCst);
    STALLED.store(false, SeqCst);
    KEPT.lock().clear();
    DELIVERED.store(0, SeqCst);
}

/// An overlapped `WSPSend` of `data` on `s` through the table.
pub fn send_overlapped(
    t: &WSPPROC_TABLE,
    s: SOCKET,
    data: &[u8],
    ov: *mut OVERLAPPED,
    routine: LPWSAOVERLAPPED_COMPLETION_ROUTINE,
) -> (i32, u32, i32) {
    let mut errno = 0;
    let mut sent = 0;
    let thread = WSATHREADID::default();
    let buf = WSABUF {
        len: data.len() as u32,
        buf: data.as_ptr().cast_mut(),
    };
    // SAFETY: the table's entry; the caller keeps `ov` valid until its
    // operation completes.
    let r =
        unsafe { t.lpWSPSend.unwrap()(s, &buf, 1, &mut sent, 0, ov, routine, &thread, &mut errno) };
    (r, sent, errno)
}

/// `WSPGetOverlappedResult` through the table: (result, bytes, errno).
pub fn overlapped_result(
    t: &WSPPROC_TABLE,
    s: SOCKET,
    ov: *const OVERLAPPED,
    wait: bool,
) -> (i32, u32, i32) {
    let mut bytes = 0;
    let mut flags = 0;
    let mut errno = 0;
    // SAFETY: the table's entry with valid out-pointers.
    let r = unsafe {
        t.lpWSPGetOverlappedResult.unwrap()(
            s,
            ov,
            &mut bytes,
            i32::from(wait),
            &mut flags,
            &mut errno,
        )
    };
    (r, bytes, errno)
}

/// `WSPDuplicateSocket` through the table, for `process`.
pub fn duplicate(t: &WSPPROC_TABLE, s: SOCKET, process: u32) -> (i32, i32, WSAPROTOCOL_INFOW) {
    let mut info = WSAPROTOCOL_INFOW::default();
    let mut errno = 0;
    // SAFETY: the table's entry, a writable protocol info.
    let r = unsafe { t.lpWSPDuplicateSocket.unwrap()(s, process, &mut info, &mut errno) };
    (r, errno, info)
}
