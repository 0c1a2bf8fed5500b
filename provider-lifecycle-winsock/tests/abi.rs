//! The exports, called only through `WSPStartup`'s function pointer and the
//! dispatch table it fills, the way ws2_32 calls a provider.

mod support;

use std::sync::atomic::Ordering::SeqCst;

use provider_lifecycle::*;
use provider_lifecycle_winsock::sys::*;
use provider_lifecycle_winsock::*;
use support::*;

fn serial() -> parking_lot::MutexGuard<'static, ()> {
    let g = SERIAL.lock();
    fresh();
    g
}

// D2, L4: null lpWSPData or lpProcTable is WSAEFAULT (10014), and nothing is
// counted.
#[test]
fn d2_null_wspdata_or_proc_table_is_efault_and_not_counted() {
    let _s = serial();
    let _w = watchdog(30);
    let startup = MEM_STARTUP.unwrap();
    let mut data = WSPDATA::default();
    let mut table = WSPPROC_TABLE::default();
    let info = protocol();
    // SAFETY: the null pointers are the point; the others are valid.
    let (a, b) = unsafe {
        (
            startup(0x0202, std::ptr::null(), &info, table_a(), &mut table),
            startup(
                0x0202,
                (&raw mut data).cast_const(),
                &info,
                table_a(),
                std::ptr::null_mut(),
            ),
        )
    };
    assert_eq!((a, b), (WSAEFAULT, WSAEFAULT));
    assert_eq!(MEM.count(), 0, "not counted");
    assert_ne!(MEM.state(), State::Active);
    assert!(table.lpWSPCleanup.is_none(), "no table handed out");
}

// V2, W2: below the lowest version is WSAVERNOTSUPPORTED (10092) with WSPDATA
// still filled, not counted; WSAStartup's set negotiates 1.2–1.255 to 1.1.
#[test]
fn w2_below_the_minimum_is_10092_with_wspdata_filled() {
    let _s = serial();
    let _w = watchdog(30);
    let (code, data, table) = start_with(MEM_STARTUP, 0, 9, table_a());
    assert_eq!(code, 10092);
    assert_eq!(Version::from_word(data.wVersion), Version::new(1, 0));
    assert_eq!(Version::from_word(data.wHighVersion), Version::new(2, 2));
    let desc: String =
        char::decode_utf16(data.szDescription.iter().copied().take_while(|&u| u != 0))
            .map(Result::unwrap)
            .collect();
    assert_eq!(desc, "in-memory test provider");
    assert!(table.lpWSPCleanup.is_none());
    assert_eq!(MEM.count(), 0);

    let (code, data, table) = start_with(MEM_STARTUP, 1, 7, table_a());
    assert_eq!(code, 0);
    assert_eq!(Version::from_word(data.wVersion), Version::new(1, 1));
    assert_eq!(MEM.effective_version(), Some(Version::new(1, 1)));
    assert_eq!(cleanup(&table), (0, 0));
}

// L4: one cleanup too many answers SOCKET_ERROR with WSANOTINITIALISED
// (10093) in *lpErrno; the count never goes below 0.
#[test]
fn l4_one_cleanup_too_many_is_10093() {
    let _s = serial();
    let _w = watchdog(30);
    let (code, _, table) = start_with(MEM_STARTUP, 2, 2, table_a());
    assert_eq!(code, 0);
    let (code, _, _) = start_with(MEM_STARTUP, 2, 2, table_a());
    assert_eq!(code, 0);
    assert_eq!(cleanup(&table), (0, 0));
    assert_eq!(cleanup(&table), (0, 0), "the final one");
    assert_eq!(cleanup(&table), (SOCKET_ERROR, 10093));
    assert_eq!(MEM.count(), 0);
    assert_eq!(MEM.state(), State::Released);
    assert_eq!(take_log(), ["mem initialize", "mem unload"]);
}

// W1: the latest startup's upcall table is the one in force: sockets are
// created (and closed) through it.
#[test]
fn w1_the_latest_upcall_table_is_used() {
    let _s = serial();
    let _w = watchdog(30);
    let (_, _, table) = start_with(MEM_STARTUP, 2, 2, table_a());
    let (s1, e) = socket(&table, None);
    assert_ne!(s1, INVALID_SOCKET, "{e}");
    let (_, _, table2) = start_with(MEM_STARTUP, 2, 2, table_b());
    let (s2, _) = socket(&table2, None);
    assert_eq!(close(&table, s2), (0, 0));
    assert_eq!(close(&table, s1), (0, 0));
    assert_eq!(
        take_log(),
        [
            "mem initialize",
            "mem socket af=2",
            "A create catalog=1001 ctx=true",
            "mem socket af=2",
            "B create catalog=1001 ctx=true",
            "B close handle",
            "B close handle",
        ],
        "after the second startup, B is in force for every socket"
    );
    cleanup(&table);
    cleanup(&table);
}

// W3: WSPDuplicateSocket + WSPSocket(FROM_PROTOCOL_INFO) give a second
// handle to one socket; closing one leaves the other working; the last
// close applies the linger; the final cleanup accounts the socket once.
#[test]
fn w3_duplicated_handles_share_one_socket() {
    let _s = serial();
    let _w = watchdog(30);
    let (_, _, t) = start_with(MEM_STARTUP, 2, 2, WSPUPCALLTABLE::default());
    let (s1, _) = socket(&t, None);
    assert_eq!(send(&t, s1, b"hello"), (0, 5, 0));
    let (r, errno, info) = duplicate(&t, s1, std::process::id());
    assert_eq!((r, errno), (0, 0));
    assert_ne!(info.dwProviderReserved, 0);
    assert_eq!(info.dwCatalogEntryId, 1001, "the startup's protocol info");
    let (s2, e) = socket(&t, Some(&info));
    assert_ne!(s2, INVALID_SOCKET, "{e}");
    assert_ne!(s1, s2);
    assert_eq!(send(&t, s2, b" world"), (0, 6, 0), "the same socket");
    assert_eq!(close(&t, s1), (0, 0));
    assert_eq!(send(&t, s1, b"x"), (SOCKET_ERROR, 0, 10038), "s1 is closed");
    assert_eq!(send(&t, s2, b"!"), (0, 1, 0), "s2 still works");
    assert_eq!(DELIVERED.load(SeqCst), 0, "not closed yet");
    // A protocol info whose duplication was used is not reusable.
    assert_eq!(socket(&t, Some(&info)), (INVALID_SOCKET, 10014));
    assert_eq!(close(&t, s2), (0, 0));
    assert_eq!(cleanup(&t), (0, 0));
    assert_eq!(DELIVERED.load(SeqCst), 12, "every byte, once");
}

// W4: pending overlapped sends end with WSA_OPERATION_ABORTED (995): at
// closesocket with their notification (completion routine through
// WPUQueueApc, event through WPUSetEvent), at the final cleanup without.
#[test]
fn w4_overlapped_abort_with_and_without_notification() {
    let _s = serial();
    let _w = watchdog(30);
    KEEP_PENDING.store(true, SeqCst);
    let (_, _, t) = start_with(MEM_STARTUP, 2, 2, table_a());
    let (closed, _) = socket(&t, None);
    let (open, _) = socket(&t, None);
    take_log();
    let mut ov = [
        OVERLAPPED::default(),
        OVERLAPPED::default(),
        OVERLAPPED::default(),
    ];
    ov[1].hEvent = 77usize as HANDLE;
    ov[2].hEvent = 78usize as HANDLE;
    let data = *b"pending";
    let buf = WSABUF {
        len: data.len() as u32,
        buf: data.as_ptr().cast_mut(),
    };
    let pend = |s: SOCKET, o: *mut OVERLAPPED, routine: LPWSAOVERLAPPED_COMPLETION_ROUTINE| {
        let mut errno = 0;
        let thread = WSATHREADID::default();
        // SAFETY: the table's entry; the OVERLAPPEDs outlive their operations.
        let r = unsafe {
            t.lpWSPSend.unwrap()(
                s,
                &buf,
                1,
                std::ptr::null_mut(),
                0,
                o,
                routine,
                &thread,
                &mut errno,
            )
        };
        (r, errno)
    };
    let [a, b, c] = &mut ov;
    assert_eq!(
        pend(closed, a, Some(completed)),
        (SOCKET_ERROR, WSA_IO_PENDING)
    );
    assert_eq!(pend(closed, b, None), (SOCKET_ERROR, WSA_IO_PENDING));
    assert_eq!(pend(open, c, None), (SOCKET_ERROR, WSA_IO_PENDING));
    assert!(take_log().is_empty(), "nothing completed yet");

    assert_eq!(close(&t, closed), (0, 0));
    assert_eq!(
        take_log(),
        [
            "queue apc",
            "completed error=995 bytes=0",
            "set event 77",
            "A close handle"
        ],
        "closesocket: both notified, with 995"
    );
    assert_eq!((ov[0].Internal, ov[1].Internal), (995, 995));

    assert_eq!(cleanup(&t), (0, 0));
    assert_eq!(ov[2].Internal, 995, "ended with 995");
    let log = take_log();
    assert!(
        !log.iter()
            .any(|l| l.starts_with("set event") || l.starts_with("completed")),
        "{log:?}"
    );
    let _ = open;
}

// S1, S2: SO_LINGER and SO_DONTLINGER through WSPSetSockOpt/WSPGetSockOpt;
// other options are WSAENOPROTOOPT; null pointers WSAEFAULT.
#[test]
fn s1_linger_options_round_trip() {
    let _s = serial();
    let _w = watchdog(30);
    let (_, _, t) = start_with(MEM_STARTUP, 2, 2, WSPUPCALLTABLE::default());
    let (s, _) = socket(&t, None);
    let get = |name: i32| {
        let mut v = [0u8; 4];
        let mut len = 4;
        let mut errno = 0;
        // SAFETY: the table's entry with a 4-byte buffer.
        let r = unsafe {
            t.lpWSPGetSockOpt.unwrap()(s, SOL_SOCKET, name, v.as_mut_ptr(), &mut len, &mut errno)
        };
        (r, errno, v, len)
    };
    assert_eq!(set_linger(&t, s, 1, 5), (0, 0));
    let (r, _, v, len) = get(SO_LINGER);
    assert_eq!((r, len), (0, 4));
    assert_eq!(
        (
            u16::from_ne_bytes([v[0], v[1]]),
            u16::from_ne_bytes([v[2], v[3]])
        ),
        (1, 5)
    );
    assert_eq!(get(SO_DONTLINGER).2, 0i32.to_ne_bytes());
    let yes = 1i32.to_ne_bytes();
    let mut errno = 0;
    // SAFETY: the table's entry with a BOOL.
    let r = unsafe {
        t.lpWSPSetSockOpt.unwrap()(s, SOL_SOCKET, SO_DONTLINGER, yes.as_ptr(), 4, &mut errno)
    };
    assert_eq!(r, 0);
    assert_eq!(get(SO_DONTLINGER).2, 1i32.to_ne_bytes());
    assert_eq!(&get(SO_LINGER).2[..2], &0u16.to_ne_bytes());
    // SAFETY: as above; an option the shim does not handle, then a null value.
    let (other, null) = unsafe {
        let mut e1 = 0;
        let mut e2 = 0;
        t.lpWSPSetSockOpt.unwrap()(s, SOL_SOCKET, 0x1001, yes.as_ptr(), 4, &mut e1);
        t.lpWSPSetSockOpt.unwrap()(s, SOL_SOCKET, SO_LINGER, std::ptr::null(), 4, &mut e2);
        (e1, e2)
    };
    assert_eq!((other, null), (WSAENOPROTOOPT, WSAEFAULT));
    assert_eq!(
        set_linger(&t, 0xdead, 1, 0),
        (SOCKET_ERROR, 10038),
        "not a socket"
    );
    assert_eq!(close(&t, s), (0, 0));
    cleanup(&t);
}

// The 22 entries the shim does not implement are set (never null) and
// answer WSAEOPNOTSUPP (10045) with their failure value.
#[test]
fn unimplemented_entries_answer_wsaeopnotsupp() {
    let _s = serial();
    let _w = watchdog(30);
    let (_, _, t) = start_with(MEM_STARTUP, 2, 2, WSPUPCALLTABLE::default());
    assert_eq!(null_entries(&t), 0, "all 30 entries set");
    let null = std::ptr::null_mut();
    let mut e = [0i32; 8];
    // SAFETY: the table's entries; they only write *lpErrno.
    let results = unsafe {
        [
            t.lpWSPBind.unwrap()(1, std::ptr::null(), 0, &mut e[0]),
            t.lpWSPListen.unwrap()(1, 5, &mut e[1]),
            t.lpWSPShutdown.unwrap()(1, 2, &mut e[2]),
            t.lpWSPCancelBlockingCall.unwrap()(&mut e[3]),
            t.lpWSPGetPeerName.unwrap()(1, null, null.cast(), &mut e[4]),
            t.lpWSPSelect.unwrap()(
                0,
                null.cast(),
                null.cast(),
                null.cast(),
                std::ptr::null(),
                &mut e[5],
            ),
        ]
    };
    assert_eq!(results, [SOCKET_ERROR; 6]);
    assert_eq!(&e[..6], &[10045; 6]);
    // SAFETY: as above.
    let accepted =
        unsafe { t.lpWSPAccept.unwrap()(1, null.cast(), null.cast(), None, 0, &mut e[6]) };
    assert_eq!((accepted, e[6]), (INVALID_SOCKET, 10045));
    // SAFETY: as above.
    let got = unsafe { t.lpWSPGetQOSByName.unwrap()(1, null.cast(), null.cast(), &mut e[7]) };
    assert_eq!((got, e[7]), (0, 10045), "FALSE");
    cleanup(&t);
}

// L14: a panic in the provider never unwinds into ws2_32: WSPSocket answers
// INVALID_SOCKET with WSASYSNOTREADY, and the lifecycle goes on.
#[test]
fn l14_a_panicking_provider_is_an_error_code() {
    let _s = serial();
    let _w = watchdog(30);
    let (_, _, t) = start_with(MEM_STARTUP, 2, 2, WSPUPCALLTABLE::default());
    PANIC_OPEN.store(true, SeqCst);
    assert_eq!(socket(&t, None), (INVALID_SOCKET, WSASYSNOTREADY));
    PANIC_OPEN.store(false, SeqCst);
    let (s, _) = socket(&t, None);
    assert_ne!(s, INVALID_SOCKET);
    assert_eq!(cleanup(&t), (0, 0));
    assert_eq!(MEM.state(), State::Released);
}

// L6, S3: the final WSPCleanup drains: a socket left open with data is
// flushed gracefully (SO_LINGER on with a timeout) before anything is freed.
#[test]
fn l6_final_cleanup_through_the_table_drains_open_sockets() {
    let _s = serial();
    let _w = watchdog(30);
    let (_, _, t) = start_with(MEM_STARTUP, 2, 2, WSPUPCALLTABLE::default());
    let (s, _) = socket(&t, None);
    assert_eq!(send(&t, s, &[7u8; 300]), (0, 300, 0));
    assert_eq!(set_linger(&t, s, 1, 0), (0, 0)); // abortive: discarded
    let (s2, _) = socket(&t, None);
    assert_eq!(send(&t, s2, &[1u8; 40]), (0, 40, 0));
    assert_eq!(close(&t, s2), (0, 0)); // graceful background close
    assert_eq!(cleanup(&t), (0, 0));
    assert_eq!(
        DELIVERED.load(SeqCst),
        40,
        "the closed one delivered, the reset one not"
    );
}

/// A host that maps its `SOCKET` values to their contexts without a table
/// of its own (value = context ^ KEY), and counts the queries.
mod querying {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    const KEY: usize = 0x7700_0000_0000;
    pub static QUERIES: AtomicUsize = AtomicUsize::new(0);

    unsafe extern "system" fn create(_: u32, context: usize, _: *mut i32) -> SOCKET {
        context ^ KEY
    }
    unsafe extern "system" fn close(_: SOCKET, _: *mut i32) -> i32 {
        0
    }
    unsafe extern "system" fn query(s: SOCKET, context: *mut usize, errno: *mut i32) -> i32 {
        QUERIES.fetch_add(1, SeqCst);
        if s & KEY != KEY {
            // Not a value this host made: WSAENOTSOCK, as ws2_32 answers.
            // SAFETY: the shim passes a pointer to its local.
            unsafe { *errno = 10038 };
            return SOCKET_ERROR;
        }
        // SAFETY: the shim passes a pointer to its local.
        unsafe { *context = s ^ KEY };
        0
    }

    pub fn table() -> WSPUPCALLTABLE {
        WSPUPCALLTABLE {
            lpWPUCreateSocketHandle: Some(create),
            lpWPUCloseSocketHandle: Some(close),
            lpWPUQuerySocketHandleContext: Some(query),
            ..Default::default()
        }
    }
}

// S1, S7: on a host with WPUQuerySocketHandleContext the shim finds a
// WPUCreateSocketHandle value's socket through its context: each value
// reaches its own socket, a closed one and one the host never made answer
// WSAENOTSOCK (10038), and a value that only looks like a raw handle does
// not pass for one.
#[test]
fn s7_values_made_by_the_host_are_found_through_their_context() {
    let _s = serial();
    let _w = watchdog(30);
    let (code, _, t) = start_with(MEM_STARTUP, 2, 2, querying::table());
    assert_eq!(code, 0);
    let (a, _) = socket(&t, None);
    let (b, _) = socket(&t, None);
    assert_ne!(a, b);
    let before = querying::QUERIES.load(SeqCst);
    assert_eq!(send(&t, a, b"abc"), (0, 3, 0));
    assert_eq!(send(&t, b, b"de"), (0, 2, 0));
    assert!(
        querying::QUERIES.load(SeqCst) > before,
        "found through the host's query"
    );
    // The raw handle behind `a` is not a SOCKET this provider handed out.
    let raw = a ^ 0x7700_0000_0000;
    assert_eq!(send(&t, raw, b"x"), (SOCKET_ERROR, 0, 10038));
    assert_eq!(send(&t, 0x1234, b"x"), (SOCKET_ERROR, 0, 10038));
    assert_eq!(close(&t, a), (0, 0));
    assert_eq!(send(&t, a, b"x"), (SOCKET_ERROR, 0, 10038), "closed");
    assert_eq!(send(&t, b, b"f"), (0, 1, 0), "b unaffected");
    assert_eq!(close(&t, b), (0, 0));
    assert_eq!(cleanup(&t), (0, 0));
    assert_eq!(DELIVERED.load(SeqCst), 6, "every byte, once");
}
