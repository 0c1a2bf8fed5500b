//! A Winsock-style C ABI over `provider-lifecycle`: the `WSPStartup` /
//! `WSPCleanup` pair a service provider exports, a dispatch table that
//! startup fills, and a few socket entry points reached through it. This is
//! the shape a real provider DLL has; the sockets here are in memory so it
//! runs anywhere.
//!
//! `cargo run --example winsock_shim` prints a session; `cargo test` runs the
//! tests at the bottom, which call these functions the way `ws2_32` would.
#![allow(non_snake_case, non_camel_case_types, unreachable_pub, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use provider_lifecycle::{
    BoxError, Error, Lifecycle, Linger, Provider, Registrar, Socket, SocketHandle, Version,
    VersionRange,
};

// ---------------------------------------------------------------------------
// The C types (defined locally: nothing here links against Winsock)
// ---------------------------------------------------------------------------

pub const WSPDESCRIPTION_LEN: usize = 255;
pub const SOCKET_ERROR: i32 = -1;
pub const NO_ERROR: i32 = 0;
pub type SOCKET = usize;
pub const INVALID_SOCKET: SOCKET = !0;
pub const SOL_SOCKET: i32 = 0xffff;
pub const SO_LINGER: i32 = 0x0080;
pub const WSAEFAULT: i32 = 10014;
pub const WSAEINVAL: i32 = 10022;

/// `WSPDATA`: what startup tells the caller.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct WSPDATA {
    pub wVersion: u16,
    pub wHighVersion: u16,
    /// NUL-terminated UTF-16, at most `WSPDESCRIPTION_LEN + 1` units.
    pub szDescription: [u16; WSPDESCRIPTION_LEN + 1],
}

impl WSPDATA {
    pub const fn zeroed() -> WSPDATA {
        WSPDATA {
            wVersion: 0,
            wHighVersion: 0,
            szDescription: [0; WSPDESCRIPTION_LEN + 1],
        }
    }
}

/// Winsock's `linger` structure.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct linger {
    pub l_onoff: u16,
    pub l_linger: u16,
}

pub type LPWSPCLEANUP = unsafe extern "C" fn(lpErrno: *mut i32) -> i32;
pub type LPWSPSOCKET = unsafe extern "C" fn(lpErrno: *mut i32) -> SOCKET;
pub type LPWSPSEND = unsafe extern "C" fn(
    s: SOCKET,
    buf: *const u8,
    len: u32,
    sent: *mut u32,
    lpErrno: *mut i32,
) -> i32;
pub type LPWSPSETSOCKOPT = unsafe extern "C" fn(
    s: SOCKET,
    level: i32,
    optname: i32,
    optval: *const u8,
    optlen: i32,
    lpErrno: *mut i32,
) -> i32;
pub type LPWSPCLOSESOCKET = unsafe extern "C" fn(s: SOCKET, lpErrno: *mut i32) -> i32;

/// The provider's dispatch table (a subset of `WSPPROC_TABLE`), filled by
/// `WSPStartup`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct WSPPROC_TABLE {
    pub lpWSPCleanup: Option<LPWSPCLEANUP>,
    pub lpWSPSocket: Option<LPWSPSOCKET>,
    pub lpWSPSend: Option<LPWSPSEND>,
    pub lpWSPSetSockOpt: Option<LPWSPSETSOCKOPT>,
    pub lpWSPCloseSocket: Option<LPWSPCLOSESOCKET>,
}

// ---------------------------------------------------------------------------
// The provider behind the ABI
// ---------------------------------------------------------------------------

/// An in-memory socket that delivers 64 KiB per flush step.
#[derive(Debug)]
pub struct MemSocket {
    unsent: u64,
    linger: Linger,
    delivered: Arc<AtomicU64>,
}

impl Socket for MemSocket {
    fn linger(&self) -> Linger {
        self.linger
    }
    fn unsent(&self) -> u64 {
        self.unsent
    }
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        let n = self.unsent.min(64 * 1024);
        self.unsent -= n;
        self.delivered.fetch_add(n, Ordering::SeqCst);
        if self.unsent == 0 {
            Poll::Ready(Ok(()))
        } else {
            // Memory is always writable: ask to be polled again at once.
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
    fn abort(&mut self) -> Result<(), BoxError> {
        self.unsent = 0;
        Ok(())
    }
}

#[derive(Debug)]
pub struct ShimProvider {
    delivered: Arc<AtomicU64>,
}

impl Provider for ShimProvider {
    type Socket = MemSocket;
    type State = ();
    fn versions(&self) -> VersionRange {
        VersionRange::new(Version::new(2, 0), Version::new(2, 2))
    }
    fn initialize(&self, init: &mut Registrar) -> Result<(), Error> {
        init.register_fn("protocol catalog entry", || Ok(()));
        Ok(())
    }
}

pub static PROVIDER: std::sync::LazyLock<Lifecycle<ShimProvider>> =
    std::sync::LazyLock::new(|| {
        Lifecycle::new(ShimProvider {
            delivered: Arc::new(AtomicU64::new(0)),
        })
    });

const DESCRIPTION: &str = "provider-lifecycle example provider";

/// Writes `code` through `lpErrno` if it is not null.
///
/// # Safety
///
/// `lpErrno` is null or valid for a write of an `i32`.
unsafe fn set_errno(lpErrno: *mut i32, code: i32) {
    if !lpErrno.is_null() {
        // SAFETY: non-null, and the caller promises it is writable.
        unsafe { lpErrno.write(code) };
    }
}

// ---------------------------------------------------------------------------
// The exported entry points
// ---------------------------------------------------------------------------

/// `WSPStartup`: negotiates, counts one startup, fills `lpWSPData` and the
/// dispatch table. Returns 0 or a Winsock error code. Null pointers give
/// `WSAEFAULT` and are not counted. On `WSAVERNOTSUPPORTED` the data still
/// reports the provider's highest version (as `WSAStartup` does).
///
/// # Safety
///
/// Non-null pointers must be valid for writes of their types.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn WSPStartup(
    wVersionRequested: u16,
    lpWSPData: *mut WSPDATA,
    lpProcTable: *mut WSPPROC_TABLE,
) -> i32 {
    if lpWSPData.is_null() || lpProcTable.is_null() {
        return Error::Fault.wsa_code();
    }
    let highest = PROVIDER.provider().versions().highest();
    let mut data = WSPDATA::zeroed();
    for (dst, src) in data
        .szDescription
        .iter_mut()
        .zip(DESCRIPTION.encode_utf16().take(WSPDESCRIPTION_LEN))
    {
        *dst = src;
    }
    let result = PROVIDER.startup(Version::from_word(wVersionRequested));
    let code = match &result {
        Ok(started) => {
            data.wVersion = started.negotiated.version.to_word();
            data.wHighVersion = started.negotiated.high_version.to_word();
            NO_ERROR
        }
        Err(e) => {
            data.wVersion = highest.to_word();
            data.wHighVersion = highest.to_word();
            e.wsa_code()
        }
    };
    // SAFETY: both pointers are non-null (checked above) and the caller
    // promises they are valid for writes.
    unsafe {
        lpWSPData.write(data);
        if code == NO_ERROR {
            lpProcTable.write(WSPPROC_TABLE {
                lpWSPCleanup: Some(WSPCleanup),
                lpWSPSocket: Some(WSPSocket),
                lpWSPSend: Some(WSPSend),
                lpWSPSetSockOpt: Some(WSPSetSockOpt),
                lpWSPCloseSocket: Some(WSPCloseSocket),
            });
        }
    }
    code
}

/// `WSPCleanup`: counts one cleanup; the final one drains. Returns 0, or
/// `SOCKET_ERROR` with the code in `*lpErrno`. A null `lpErrno` is not
/// counted (the code cannot be delivered).
///
/// # Safety
///
/// `lpErrno` is null or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn WSPCleanup(lpErrno: *mut i32) -> i32 {
    if lpErrno.is_null() {
        return SOCKET_ERROR;
    }
    match PROVIDER.cleanup() {
        Ok(_) => NO_ERROR,
        Err(e) => {
            // SAFETY: non-null; the caller promises it is writable.
            unsafe { set_errno(lpErrno, e.wsa_code()) };
            SOCKET_ERROR
        }
    }
}

fn handle(s: SOCKET) -> SocketHandle {
    SocketHandle::from_raw(s as u64)
}

/// `WSPSocket` (simplified): a new socket, or `INVALID_SOCKET` with an error.
///
/// # Safety
///
/// `lpErrno` is null or valid for a write.
pub unsafe extern "C" fn WSPSocket(lpErrno: *mut i32) -> SOCKET {
    let socket = MemSocket {
        unsent: 0,
        linger: Linger::Background,
        delivered: PROVIDER.provider().delivered.clone(),
    };
    match PROVIDER.register_socket(socket) {
        Ok(h) => h.to_raw() as SOCKET,
        Err(e) => {
            // SAFETY: forwarded from our caller.
            unsafe { set_errno(lpErrno, e.wsa_code()) };
            INVALID_SOCKET
        }
    }
}

/// `WSPSend` (simplified): queues `len` bytes.
///
/// # Safety
///
/// `buf` is valid for `len` bytes of reads; `sent` and `lpErrno` are null or
/// valid for writes.
pub unsafe extern "C" fn WSPSend(
    s: SOCKET,
    buf: *const u8,
    len: u32,
    sent: *mut u32,
    lpErrno: *mut i32,
) -> i32 {
    if buf.is_null() && len > 0 {
        // SAFETY: forwarded from our caller.
        unsafe { set_errno(lpErrno, WSAEFAULT) };
        return SOCKET_ERROR;
    }
    match PROVIDER.with_socket(handle(s), |sock| sock.unsent += u64::from(len)) {
        Ok(()) => {
            if !sent.is_null() {
                // SAFETY: non-null; the caller promises it is writable.
                unsafe { sent.write(len) };
            }
            NO_ERROR
        }
        Err(e) => {
            // SAFETY: forwarded from our caller.
            unsafe { set_errno(lpErrno, e.wsa_code()) };
            SOCKET_ERROR
        }
    }
}

/// `WSPSetSockOpt` for `SOL_SOCKET` / `SO_LINGER` only.
///
/// # Safety
///
/// `optval` is valid for `optlen` bytes of reads; `lpErrno` is null or valid
/// for a write.
pub unsafe extern "C" fn WSPSetSockOpt(
    s: SOCKET,
    level: i32,
    optname: i32,
    optval: *const u8,
    optlen: i32,
    lpErrno: *mut i32,
) -> i32 {
    let fail = |code: i32| {
        // SAFETY: forwarded from our caller.
        unsafe { set_errno(lpErrno, code) };
        SOCKET_ERROR
    };
    if level != SOL_SOCKET || optname != SO_LINGER {
        return fail(WSAEINVAL);
    }
    if optval.is_null() || optlen < std::mem::size_of::<linger>() as i32 {
        return fail(WSAEFAULT);
    }
    // SAFETY: non-null and at least size_of::<linger>() readable bytes;
    // read_unaligned because a C caller need not align a byte buffer.
    let l = unsafe { optval.cast::<linger>().read_unaligned() };
    match PROVIDER.with_socket(handle(s), |sock| {
        sock.linger = Linger::from_winsock(l.l_onoff, l.l_linger)
    }) {
        Ok(()) => NO_ERROR,
        Err(e) => fail(e.wsa_code()),
    }
}

/// `WSPCloseSocket`: closes by the socket's linger setting.
///
/// # Safety
///
/// `lpErrno` is null or valid for a write.
pub unsafe extern "C" fn WSPCloseSocket(s: SOCKET, lpErrno: *mut i32) -> i32 {
    match PROVIDER.close_socket(handle(s)) {
        Ok(_) => NO_ERROR,
        Err(e) => {
            // SAFETY: forwarded from our caller.
            unsafe { set_errno(lpErrno, e.wsa_code()) };
            SOCKET_ERROR
        }
    }
}

fn description(data: &WSPDATA) -> String {
    let end = data
        .szDescription
        .iter()
        .position(|&c| c == 0)
        .unwrap_or(data.szDescription.len());
    String::from_utf16_lossy(&data.szDescription[..end])
}

fn main() {
    let mut data = WSPDATA::zeroed();
    let mut table = WSPPROC_TABLE::default();
    let mut errno = 0;
    // SAFETY: every pointer is to a live local of the right type.
    unsafe {
        let rc = WSPStartup(0x0202, &mut data, &mut table);
        println!(
            "WSPStartup(2.2) = {rc}: version {:#06x}, high {:#06x}, \"{}\"",
            data.wVersion,
            data.wHighVersion,
            description(&data)
        );
        let s = (table.lpWSPSocket.unwrap())(&mut errno);
        let payload = [7u8; 1000];
        let mut sent = 0;
        (table.lpWSPSend.unwrap())(s, payload.as_ptr(), 1000, &mut sent, &mut errno);
        println!("WSPSocket = {s:#x}; WSPSend sent {sent} bytes");
        println!(
            "WSPCloseSocket = {}",
            (table.lpWSPCloseSocket.unwrap())(s, &mut errno)
        );
        println!("WSPCleanup = {}", (table.lpWSPCleanup.unwrap())(&mut errno));
        let rc = (table.lpWSPCleanup.unwrap())(&mut errno);
        println!("WSPCleanup again = {rc}, errno {errno} (WSANOTINITIALISED)");
    }
    println!(
        "delivered {} bytes; state {:?}",
        PROVIDER.provider().delivered.load(Ordering::SeqCst),
        PROVIDER.state()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use provider_lifecycle::State;

    /// The tests share the one exported provider: run them one at a time.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn serial() -> std::sync::MutexGuard<'static, ()> {
        SERIAL.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn startup(word: u16) -> (i32, WSPDATA, WSPPROC_TABLE) {
        let mut data = WSPDATA::zeroed();
        let mut table = WSPPROC_TABLE::default();
        // SAFETY: pointers to live locals.
        let rc = unsafe { WSPStartup(word, &mut data, &mut table) };
        (rc, data, table)
    }

    fn cleanup() -> (i32, i32) {
        let mut errno = 0;
        // SAFETY: pointer to a live local.
        let rc = unsafe { WSPCleanup(&mut errno) };
        (rc, errno)
    }

    #[test]
    fn nested_pairs_and_one_cleanup_too_many() {
        let _s = serial();
        let generation = PROVIDER.generation();
        for _ in 0..3 {
            assert_eq!(startup(0x0202).0, 0);
        }
        assert_eq!(PROVIDER.count(), 3);
        assert_eq!(cleanup(), (0, 0));
        assert_eq!(cleanup(), (0, 0));
        assert_eq!(PROVIDER.state(), State::Active, "not final yet");
        assert_eq!(cleanup(), (0, 0));
        assert_eq!(PROVIDER.state(), State::Released);
        assert_eq!(PROVIDER.generation(), generation + 1);
        assert_eq!(cleanup(), (SOCKET_ERROR, 10093), "one cleanup too many");
        assert_eq!(PROVIDER.state(), State::Released, "and nothing changed");
    }

    #[test]
    fn startup_fills_data_and_a_callable_dispatch_table() {
        let _s = serial();
        let (rc, data, table) = startup(0x0102); // MAKEWORD(2, 1)
        assert_eq!(rc, 0);
        assert_eq!(data.wVersion, 0x0102);
        assert_eq!(data.wHighVersion, 0x0202);
        let desc = description(&data);
        assert_eq!(desc, DESCRIPTION);
        assert!(data.szDescription.contains(&0), "NUL-terminated");
        assert_eq!(data.szDescription.len(), 256);
        let mut errno = 0;
        // SAFETY: the table's functions with pointers to live locals.
        unsafe {
            let s = (table.lpWSPSocket.unwrap())(&mut errno);
            assert_ne!(s, INVALID_SOCKET);
            let buf = [1u8; 300];
            let mut sent = 0;
            assert_eq!(
                (table.lpWSPSend.unwrap())(s, buf.as_ptr(), 300, &mut sent, &mut errno),
                0
            );
            assert_eq!(sent, 300);
            let l = linger {
                l_onoff: 1,
                l_linger: 0,
            };
            let rc = (table.lpWSPSetSockOpt.unwrap())(
                s,
                SOL_SOCKET,
                SO_LINGER,
                (&l as *const linger).cast(),
                std::mem::size_of::<linger>() as i32,
                &mut errno,
            );
            assert_eq!(rc, 0);
            assert_eq!(
                PROVIDER.with_socket(handle(s), |x| x.linger),
                Ok(Linger::Abort)
            );
            assert_eq!((table.lpWSPCloseSocket.unwrap())(s, &mut errno), 0);
            assert_eq!(
                (table.lpWSPCloseSocket.unwrap())(s, &mut errno),
                SOCKET_ERROR
            );
            assert_eq!(errno, 10038, "closed handle: WSAENOTSOCK");
            assert_eq!((table.lpWSPCleanup.unwrap())(&mut errno), 0);
            // After the final cleanup the old handle is WSANOTINITIALISED.
            assert_eq!(
                (table.lpWSPSend.unwrap())(s, buf.as_ptr(), 1, &mut sent, &mut errno),
                SOCKET_ERROR
            );
            assert_eq!(errno, 10093);
        }
    }

    #[test]
    fn versions_below_and_above_the_range() {
        let _s = serial();
        let count = PROVIDER.count();
        for word in [0x0001u16, 0x0101, 0x0000, 0x0a01] {
            // 1.0, 1.1, 0.0, 1.10: all below 2.0
            let (rc, data, table) = startup(word);
            assert_eq!(rc, 10092, "{word:#06x}");
            assert_eq!(data.wHighVersion, 0x0202);
            assert!(table.lpWSPCleanup.is_none(), "no table on failure");
        }
        assert_eq!(PROVIDER.count(), count, "not counted");
        let (rc, data, _) = startup(0x0303); // 3.3: above, negotiates 2.2
        assert_eq!(rc, 0);
        assert_eq!((data.wVersion, data.wHighVersion), (0x0202, 0x0202));
        let (rc, data, _) = startup(0xffff); // 255.255
        assert_eq!(rc, 0);
        assert_eq!(data.wVersion, 0x0202);
        assert_eq!(cleanup(), (0, 0));
        assert_eq!(cleanup(), (0, 0));
    }

    #[test]
    fn null_pointers_are_faults_and_not_counted() {
        let _s = serial();
        let before = PROVIDER.snapshot();
        let mut data = WSPDATA::zeroed();
        let mut table = WSPPROC_TABLE::default();
        // SAFETY: null pointers are exactly what is being tested; the others
        // point to live locals.
        unsafe {
            assert_eq!(
                WSPStartup(0x0202, std::ptr::null_mut(), &mut table),
                WSAEFAULT
            );
            assert_eq!(
                WSPStartup(0x0202, &mut data, std::ptr::null_mut()),
                WSAEFAULT
            );
            assert_eq!(WSPCleanup(std::ptr::null_mut()), SOCKET_ERROR);
        }
        assert_eq!(PROVIDER.snapshot(), before);
        assert_eq!(startup(0x0202).0, 0);
        let after = PROVIDER.snapshot();
        // SAFETY: null lpErrno: not counted.
        assert_eq!(unsafe { WSPCleanup(std::ptr::null_mut()) }, SOCKET_ERROR);
        assert_eq!(PROVIDER.snapshot(), after);
        let mut errno = 0;
        let buf = [0u8; 4];
        // SAFETY: null buffer with a length: a fault, reported through errno.
        unsafe {
            let s = WSPSocket(&mut errno);
            assert_eq!(
                WSPSend(s, std::ptr::null(), 4, std::ptr::null_mut(), &mut errno),
                SOCKET_ERROR
            );
            assert_eq!(errno, WSAEFAULT);
            assert_eq!(
                WSPSend(s, buf.as_ptr(), 4, std::ptr::null_mut(), &mut errno),
                0
            );
            let rc = WSPSetSockOpt(s, SOL_SOCKET, SO_LINGER, std::ptr::null(), 4, &mut errno);
            assert_eq!((rc, errno), (SOCKET_ERROR, WSAEFAULT));
        }
        assert_eq!(cleanup(), (0, 0));
    }
}
