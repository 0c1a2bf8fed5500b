//! The shim as a hostile caller and a careless provider would use it, only
//! through `WSPStartup` and the table it fills: no write into an
//! `OVERLAPPED` whose operation ended, completions indicated as the caller
//! chose (W4 completion), bad buffers refused whole (D3), duplication keys
//! nobody can guess or reuse (W6), close bookkeeping in its own generation
//! (W7), codes kept (E1) and initialization checked first (L8).

mod support;

use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use provider_lifecycle::*;
use provider_lifecycle_winsock::sys::*;
use provider_lifecycle_winsock::*;
use support::*;

fn serial() -> parking_lot::MutexGuard<'static, ()> {
    let g = SERIAL.lock();
    fresh();
    g
}

/// A value no completion writes: the test checks it is still there.
const SENTINEL: usize = 0x5eed;

fn sentinel() -> OVERLAPPED {
    OVERLAPPED {
        Internal: SENTINEL,
        InternalHigh: SENTINEL,
        ..Default::default()
    }
}

fn kept() -> Vec<IoToken> {
    std::mem::take(&mut *KEPT.lock())
}

// W4 (completion): a token a provider kept past the final cleanup completes
// nothing: refused while not Active, and unknown to the next generation.
// The application's OVERLAPPED (freed, as far as the shim knows) is never
// written again.
#[test]
fn w4_a_token_kept_past_the_final_cleanup_writes_nothing() {
    let _s = serial();
    let _w = watchdog(30);
    KEEP_PENDING.store(true, SeqCst);
    let (_, _, t) = start_with(MEM_STARTUP, 2, 2, table_a());
    let (s, _) = socket(&t, None);
    let mut ov = Box::new(OVERLAPPED::default());
    ov.hEvent = 9usize as HANDLE;
    assert_eq!(
        send_overlapped(&t, s, b"abc", &mut *ov, None),
        (SOCKET_ERROR, 0, WSA_IO_PENDING)
    );
    assert_eq!(ov.Internal, WSS_OPERATION_IN_PROGRESS as usize, "pending");
    let [token] = kept()[..] else {
        panic!("one token kept")
    };
    assert_eq!(cleanup(&t), (0, 0));
    assert_eq!(ov.Internal, 995, "the final cleanup ended it with 995");
    // The application may now free it: make any later write visible.
    *ov = sentinel();
    take_log();
    assert_eq!(
        complete_overlapped::<Mem>(token, Ok(3)),
        Err(Error::NotInitialised(NotActive::Released))
    );
    let (_, _, t) = start_with(MEM_STARTUP, 2, 2, table_a());
    assert_eq!(
        complete_overlapped::<Mem>(token, Ok(3)),
        Ok(false),
        "the next generation does not know it"
    );
    assert_eq!((ov.Internal, ov.InternalHigh), (SENTINEL, SENTINEL));
    assert!(
        take_log().iter().all(|l| !l.contains("event")),
        "no notification"
    );
    cleanup(&t);
}

// W4 (completion): a call that fails (or panics) after its socket took the
// operation never started it: nothing is ever indicated or written, even
// when the socket closes or the provider completes the kept token.
#[test]
fn w4_an_operation_whose_call_failed_is_never_completed() {
    let _s = serial();
    let _w = watchdog(30);
    let (_, _, t) = start_with(MEM_STARTUP, 2, 2, table_a());
    let (s, _) = socket(&t, None);
    let mut ov = sentinel();
    ov.hEvent = 5usize as HANDLE;
    KEEP_THEN_FAIL.store(true, SeqCst);
    assert_eq!(
        send_overlapped(&t, s, b"x", &mut ov, Some(completed)),
        (SOCKET_ERROR, 0, 10055),
        "the provider's own code (E1)"
    );
    KEEP_THEN_FAIL.store(false, SeqCst);
    KEEP_THEN_PANIC.store(true, SeqCst);
    assert_eq!(
        send_overlapped(&t, s, b"x", &mut ov, None),
        (SOCKET_ERROR, 0, WSASYSNOTREADY),
        "a panic is 10091"
    );
    KEEP_THEN_PANIC.store(false, SeqCst);
    take_log();
    for token in kept() {
        assert_eq!(complete_overlapped::<Mem>(token, Ok(1)), Ok(false));
    }
    assert_eq!(close(&t, s), (0, 0));
    assert_eq!(take_log(), ["A close handle"], "no completion indicated");
    assert_eq!((ov.Internal, ov.InternalHigh), (SENTINEL, SENTINEL));
    cleanup(&t);
}

// W4 (completion): an operation that completes at once is indicated as the
// SPI says: status written, event set or routine queued; the bytes are
// returned in lpNumberOfBytesSent.
#[test]
fn w4_an_immediate_completion_is_indicated() {
    let _s = serial();
    let _w = watchdog(30);
    let (_, _, t) = start_with(MEM_STARTUP, 2, 2, table_a());
    let (s, _) = socket(&t, None);
    take_log();
    let mut ev = OVERLAPPED {
        hEvent: 41usize as HANDLE,
        ..Default::default()
    };
    assert_eq!(send_overlapped(&t, s, b"hello", &mut ev, None), (0, 5, 0));
    assert_eq!((ev.Internal, ev.InternalHigh), (0, 5));
    let mut rt = OVERLAPPED::default();
    assert_eq!(
        send_overlapped(&t, s, b"hi", &mut rt, Some(completed)),
        (0, 2, 0)
    );
    assert_eq!(
        take_log(),
        ["set event 41", "queue apc", "completed error=0 bytes=2"]
    );
    assert_eq!(overlapped_result(&t, s, &ev, false), (1, 5, 0));
    cleanup(&t);
}

// W4 (completion): on a socket made by WPUCreateSocketHandle, a completion
// that is not an APC goes through WPUCompleteOverlappedRequest (the
// completion port's packet, and the event), never only WPUSetEvent: at
// once, when the provider completes a pending one, and with 995 at close.
// While pending, the status reads as pending and WSPGetOverlappedResult
// answers WSA_IO_INCOMPLETE; afterwards it reports the outcome.
#[test]
fn w4_completion_ports_get_their_packets() {
    let _s = serial();
    let _w = watchdog(30);
    USE_PORT.store(true, SeqCst);
    let (_, _, t) = start_with(MEM_STARTUP, 2, 2, table_a());
    let (s, _) = socket(&t, None);
    take_log();
    let mut now = OVERLAPPED::default();
    assert_eq!(send_overlapped(&t, s, b"abcd", &mut now, None), (0, 4, 0));
    assert_eq!(take_log(), ["port packet s=true error=0 bytes=4 event=0"]);

    KEEP_PENDING.store(true, SeqCst);
    let (p, _) = socket(&t, None);
    take_log();
    let mut later = OVERLAPPED {
        hEvent: 12usize as HANDLE,
        ..Default::default()
    };
    let mut aborted = OVERLAPPED::default();
    assert_eq!(
        send_overlapped(&t, p, b"123456", &mut later, None),
        (SOCKET_ERROR, 0, WSA_IO_PENDING)
    );
    assert_eq!(
        send_overlapped(&t, p, b"zz", &mut aborted, None),
        (SOCKET_ERROR, 0, WSA_IO_PENDING)
    );
    assert_eq!(later.Internal, WSS_OPERATION_IN_PROGRESS as usize);
    let pending = || MEM.enter().unwrap().state().shim.pending();
    assert_eq!(pending(), 2);
    assert_eq!(
        overlapped_result(&t, p, &later, false),
        (0, 0, WSA_IO_INCOMPLETE)
    );
    assert!(take_log().is_empty(), "nothing indicated while pending");
    let tokens = kept();
    assert_eq!(complete_overlapped::<Mem>(tokens[0], Ok(6)), Ok(true));
    assert_eq!(
        complete_overlapped::<Mem>(tokens[0], Ok(6)),
        Ok(false),
        "once"
    );
    assert_eq!(take_log(), ["port packet s=true error=0 bytes=6 event=12"]);
    assert_eq!(overlapped_result(&t, p, &later, false), (1, 6, 0));
    assert_eq!(pending(), 1);

    assert_eq!(close(&t, p), (0, 0));
    assert_eq!(
        take_log(),
        [
            "port packet s=true error=995 bytes=0 event=0",
            "A close handle"
        ],
        "W4: 995 at closesocket reaches the port too"
    );
    assert_eq!(complete_overlapped::<Mem>(tokens[1], Ok(2)), Ok(false));
    assert_eq!(pending(), 0);
    cleanup(&t);
}

// W4 (completion): WSPGetOverlappedResult with fWait waits for the
// completion (outside the guard), and reports a provider's failure code.
#[test]
fn w4_get_overlapped_result_waits_and_reports_failures() {
    let _s = serial();
    let _w = watchdog(30);
    KEEP_PENDING.store(true, SeqCst);
    let (_, _, t) = start_with(MEM_STARTUP, 2, 2, WSPUPCALLTABLE::default());
    let (s, _) = socket(&t, None);
    let mut ov = Box::new(OVERLAPPED::default());
    assert_eq!(
        send_overlapped(&t, s, b"wait", &mut *ov, None),
        (SOCKET_ERROR, 0, WSA_IO_PENDING)
    );
    let [token] = kept()[..] else {
        panic!("one token")
    };
    let completer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        complete_overlapped::<Mem>(token, Err(Error::from_wsa_code(10054)))
    });
    assert_eq!(
        overlapped_result(&t, s, &*ov, true),
        (0, 0, 10054),
        "waited, then the provider's code (E1)"
    );
    assert_eq!(completer.join().unwrap(), Ok(true));
    let mut null = 0;
    // SAFETY: the table's entry; the null OVERLAPPED is the point.
    let r = unsafe {
        t.lpWSPGetOverlappedResult.unwrap()(
            s,
            std::ptr::null(),
            &mut null,
            0,
            &mut null,
            &mut null.cast_signed(),
        )
    };
    assert_eq!(r, 0);
    assert_eq!(overlapped_result(&t, 0xbad, &*ov, false).2, 10038);
    // A waiter is woken by the final cleanup, which ends the operation.
    let (s2, _) = socket(&t, None);
    let ov2 = Box::into_raw(Box::new(OVERLAPPED::default()));
    assert_eq!(send_overlapped(&t, s2, b"w", ov2, None).2, WSA_IO_PENDING);
    // The OVERLAPPED's address crosses to the waiter as a number; it is
    // freed only after the waiter returned.
    let addr = ov2 as usize;
    let t2 = t;
    let waiter =
        std::thread::spawn(move || overlapped_result(&t2, s2, addr as *const OVERLAPPED, true));
    while MEM.enter().unwrap().state().shim.waiters() == 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(cleanup(&t), (0, 0));
    assert_eq!(waiter.join().unwrap(), (0, 0, 995));
    // SAFETY: from Box::into_raw above; its operation ended, nobody holds it.
    drop(unsafe { Box::from_raw(ov2) });
}

// D3: a WSABUF with a null buf and a nonzero len fails the whole call with
// WSAEFAULT: no byte of the other buffers is queued, nothing is counted.
// A short option length and a null output pointer are WSAEFAULT too.
#[test]
fn d3_a_bad_buffer_fails_the_whole_send() {
    let _s = serial();
    let _w = watchdog(30);
    let (_, _, t) = start_with(MEM_STARTUP, 2, 2, WSPUPCALLTABLE::default());
    let (s, _) = socket(&t, None);
    let good = *b"good bytes";
    let bufs = [
        WSABUF {
            len: good.len() as u32,
            buf: good.as_ptr().cast_mut(),
        },
        WSABUF {
            len: 7,
            buf: std::ptr::null_mut(),
        },
    ];
    let mut sent = 99;
    let mut errno = 0;
    // SAFETY: the table's entry; the null buf is the point.
    let r = unsafe {
        t.lpWSPSend.unwrap()(
            s,
            bufs.as_ptr(),
            2,
            &mut sent,
            0,
            std::ptr::null_mut(),
            None,
            std::ptr::null(),
            &mut errno,
        )
    };
    assert_eq!(
        (r, errno, sent),
        (SOCKET_ERROR, 10014, 99),
        "nothing written"
    );
    let mut ov = sentinel();
    let mut errno = 0;
    // SAFETY: as above, overlapped: the OVERLAPPED is not touched either.
    let r = unsafe {
        t.lpWSPSend.unwrap()(
            s,
            bufs.as_ptr(),
            2,
            std::ptr::null_mut(),
            0,
            &mut ov,
            None,
            std::ptr::null(),
            &mut errno,
        )
    };
    assert_eq!((r, errno), (SOCKET_ERROR, 10014));
    assert_eq!(ov.Internal, SENTINEL);
    let short = [0u8; 2];
    let mut errno = 0;
    // SAFETY: the table's entry with a 2-byte value and its length.
    let r = unsafe {
        t.lpWSPSetSockOpt.unwrap()(s, SOL_SOCKET, SO_LINGER, short.as_ptr(), 2, &mut errno)
    };
    assert_eq!((r, errno), (SOCKET_ERROR, 10014));
    assert_eq!(close(&t, s), (0, 0));
    assert_eq!(cleanup(&t), (0, 0));
    assert_eq!(DELIVERED.load(SeqCst), 0, "no byte of the failed sends");
}

// D3, for every way the shim gathers buffers (one, a few on the stack,
// more than a few on the heap): a send of good buffers hands every byte on
// and says how many; the same buffers with a bad one last fail whole, with
// nothing handed on and nothing written to lpNumberOfBytesSent.
#[test]
fn d3_every_buffer_count_is_read_whole() {
    let _s = serial();
    let _w = watchdog(30);
    let (_, _, t) = start_with(MEM_STARTUP, 2, 2, WSPUPCALLTABLE::default());
    let (s, _) = socket(&t, None);
    let bytes = *b"0123456789";
    let send_raw = |bufs: &[WSABUF]| {
        let (mut sent, mut errno) = (99u32, 0);
        // SAFETY: the table's entry; `bufs` live for the call (a null buf is
        // the point where there is one).
        let r = unsafe {
            t.lpWSPSend.unwrap()(
                s,
                bufs.as_ptr(),
                bufs.len() as u32,
                &mut sent,
                0,
                std::ptr::null_mut(),
                None,
                std::ptr::null(),
                &mut errno,
            )
        };
        (r, errno, sent)
    };
    for count in [1usize, 3, 4, 5, 9] {
        let mut bufs: Vec<WSABUF> = (0..count)
            .map(|i| WSABUF {
                len: (i + 1) as u32,
                buf: bytes.as_ptr().cast_mut(),
            })
            .collect();
        let total: u32 = (1..=count as u32).sum();
        assert_eq!(send_raw(&bufs), (0, 0, total), "{count} good buffers");
        bufs[count - 1].buf = std::ptr::null_mut();
        assert_eq!(
            send_raw(&bufs),
            (SOCKET_ERROR, 10014, 99),
            "{count} buffers, the last bad"
        );
    }
    assert_eq!(close(&t, s), (0, 0));
    assert_eq!(cleanup(&t), (0, 0));
    let good: usize = [1usize, 3, 4, 5, 9].iter().map(|&c| c * (c + 1) / 2).sum();
    assert_eq!(DELIVERED.load(SeqCst), good, "the good sends' bytes only");
}

// E1: a socket's own Winsock code reaches lpErrno unchanged.
#[test]
fn e1_a_providers_own_code_reaches_lperrno() {
    let _s = serial();
    let _w = watchdog(30);
    let (_, _, t) = start_with(MEM_STARTUP, 2, 2, WSPUPCALLTABLE::default());
    let (s, _) = socket(&t, None);
    for code in [10054, 10055, 10057, 10045, 10091] {
        SEND_ERROR.store(code, SeqCst);
        assert_eq!(send(&t, s, b"x"), (SOCKET_ERROR, 0, code));
    }
    // An io::Error from the socket, kept as the cause: still 10054.
    SEND_ERROR.store(-1, SeqCst);
    assert_eq!(send(&t, s, b"x"), (SOCKET_ERROR, 0, 10054));
    SEND_ERROR.store(0, SeqCst);
    cleanup(&t);
}

// W6: duplication keys cannot be guessed (neither 1, 2, ... nor a key's
// neighbours reach a duplication), are bound to their target process (a
// mismatch is WSAEINVAL and the key stays for the right one) and to their
// generation, are consumed once, and at most MAX_ANNOUNCED stay live.
#[test]
fn w6_duplication_keys_cannot_be_guessed_or_reused() {
    let _s = serial();
    let _w = watchdog(60);
    let (_, _, t) = start_with(MEM_STARTUP, 2, 2, WSPUPCALLTABLE::default());
    let (s, _) = socket(&t, None);
    let me = std::process::id();
    let (r, _, info) = duplicate(&t, s, me);
    assert_eq!(r, 0);
    let key = info.dwProviderReserved;
    let mut forged = info;
    for guess in [1, 2, 3, key.wrapping_add(1), key.wrapping_sub(1), key ^ 1] {
        forged.dwProviderReserved = guess;
        assert_eq!(
            socket(&t, Some(&forged)),
            (INVALID_SOCKET, 10014),
            "{guess}"
        );
    }
    let (_, _, elsewhere) = duplicate(&t, s, me.wrapping_add(1));
    assert_eq!(
        socket(&t, Some(&elsewhere)),
        (INVALID_SOCKET, 10022),
        "made for another process"
    );
    let (dup, e) = socket(&t, Some(&info));
    assert_ne!(dup, INVALID_SOCKET, "{e}");
    assert_eq!(socket(&t, Some(&info)), (INVALID_SOCKET, 10014), "once");
    // Bounded: the oldest expires.
    let (_, _, oldest) = duplicate(&t, s, me);
    for _ in 0..dup::MAX_ANNOUNCED {
        assert_eq!(duplicate(&t, s, me).0, 0);
    }
    let announced = MEM.enter().unwrap().state().shim.announced();
    assert_eq!(announced, dup::MAX_ANNOUNCED);
    assert_eq!(
        socket(&t, Some(&oldest)),
        (INVALID_SOCKET, 10014),
        "expired"
    );
    // Bound to the generation: filled before a final cleanup, refused after.
    let (_, _, stale) = duplicate(&t, s, me);
    assert_eq!(cleanup(&t), (0, 0));
    let (_, _, t) = start_with(MEM_STARTUP, 2, 2, WSPUPCALLTABLE::default());
    let (s, _) = socket(&t, None);
    let (_, _, fresh_info) = duplicate(&t, s, me);
    assert_eq!(socket(&t, Some(&stale)), (INVALID_SOCKET, 10014));
    let (d, e) = socket(&t, Some(&fresh_info));
    assert_ne!(
        d, INVALID_SOCKET,
        "the new generation's own duplication: {e}"
    );
    cleanup(&t);
}

// W7: a close's bookkeeping happens in its own generation: a SOCKET of a
// generation that ended is NotSocket after the restart, and is never
// returned through WPUCloseSocketHandle a second time.
#[test]
fn w7_a_close_after_a_restart_touches_nothing_of_the_new_generation() {
    let _s = serial();
    let _w = watchdog(30);
    let (_, _, t) = start_with(MEM_STARTUP, 2, 2, table_a());
    let (old, _) = socket(&t, None);
    assert_eq!(cleanup(&t), (0, 0));
    assert!(
        take_log().contains(&"A close handle".to_owned()),
        "returned once"
    );
    let (_, _, t) = start_with(MEM_STARTUP, 2, 2, table_a());
    let (new, _) = socket(&t, None);
    take_log();
    assert_eq!(close(&t, old), (SOCKET_ERROR, 10038));
    assert!(take_log().is_empty(), "nothing closed twice");
    assert_eq!(
        send(&t, new, b"ok"),
        (0, 2, 0),
        "the new socket keeps its mapping"
    );
    cleanup(&t);
}

// L8 (reading): between a final cleanup and the next startup every entry,
// the unimplemented ones included, answers WSANOTINITIALISED first.
#[test]
fn l8_every_entry_checks_initialization_first() {
    let _s = serial();
    let _w = watchdog(30);
    let (_, _, t) = start_with(MEM_STARTUP, 2, 2, WSPUPCALLTABLE::default());
    let (s, _) = socket(&t, None);
    assert_eq!(cleanup(&t), (0, 0));
    let null: *mut i32 = std::ptr::null_mut();
    let mut e = [0i32; 8];
    // SAFETY: the table's entries; bad pointers must not even be looked at
    // before initialization is checked.
    let results = unsafe {
        [
            t.lpWSPBind.unwrap()(s, std::ptr::null(), 0, &mut e[0]),
            t.lpWSPListen.unwrap()(s, 5, &mut e[1]),
            t.lpWSPSetSockOpt.unwrap()(s, SOL_SOCKET, 0x1001, std::ptr::null(), 0, &mut e[2]),
            t.lpWSPGetSockOpt.unwrap()(s, SOL_SOCKET, SO_LINGER, null.cast(), null, &mut e[3]),
            t.lpWSPDuplicateSocket.unwrap()(s, 1, null.cast(), &mut e[4]),
            t.lpWSPSend.unwrap()(
                s,
                std::ptr::null(),
                3,
                null.cast(),
                0,
                null.cast(),
                None,
                std::ptr::null(),
                &mut e[5],
            ),
            t.lpWSPCloseSocket.unwrap()(s, &mut e[6]),
            t.lpWSPGetOverlappedResult.unwrap()(
                s,
                std::ptr::null(),
                null.cast(),
                0,
                null.cast(),
                &mut e[7],
            ),
        ]
    };
    assert_eq!(&results[..7], &[SOCKET_ERROR; 7]);
    assert_eq!(results[7], 0, "FALSE");
    assert_eq!(e, [10093; 8]);
    assert_eq!(socket(&t, None), (INVALID_SOCKET, 10093));
}

// W3, D3: WSPSocket with FROM_PROTOCOL_INFO but no duplication named (a
// null protocol info, or a key of 0) is WSAEFAULT, and opens nothing.
#[test]
fn w3_from_protocol_info_without_a_duplication_is_efault() {
    let _s = serial();
    let _w = watchdog(30);
    let (_, _, t) = start_with(MEM_STARTUP, 2, 2, WSPUPCALLTABLE::default());
    let mut e = 0;
    // SAFETY: the table's entry; the null protocol info is the point.
    let s =
        unsafe { t.lpWSPSocket.unwrap()(FROM_PROTOCOL_INFO, 1, 6, std::ptr::null(), 0, 0, &mut e) };
    assert_eq!((s, e), (INVALID_SOCKET, 10014));
    let zero = WSAPROTOCOL_INFOW::default();
    assert_eq!(socket(&t, Some(&zero)), (INVALID_SOCKET, 10014));
    assert_eq!(MEM.open_sockets(), 0);
    cleanup(&t);
}

// S1: SO_DONTLINGER FALSE turns lingering on with the timeout set before
// (a Timeout stays a Timeout), and with none set it is abortive.
#[test]
fn s1_dontlinger_false_keeps_the_earlier_timeout() {
    let _s = serial();
    let _w = watchdog(30);
    let (_, _, t) = start_with(MEM_STARTUP, 2, 2, WSPUPCALLTABLE::default());
    let (s, _) = socket(&t, None);
    let dont = |on: i32| {
        let v = on.to_ne_bytes();
        let mut e = 0;
        // SAFETY: the table's entry with a BOOL.
        unsafe { t.lpWSPSetSockOpt.unwrap()(s, SOL_SOCKET, SO_DONTLINGER, v.as_ptr(), 4, &mut e) }
    };
    let get = || {
        let mut v = [0u8; 4];
        let mut len = 4;
        let mut e = 0;
        // SAFETY: the table's entry with a 4-byte buffer.
        unsafe {
            t.lpWSPGetSockOpt.unwrap()(s, SOL_SOCKET, SO_LINGER, v.as_mut_ptr(), &mut len, &mut e)
        };
        (
            u16::from_ne_bytes([v[0], v[1]]),
            u16::from_ne_bytes([v[2], v[3]]),
        )
    };
    assert_eq!(dont(0), 0);
    assert_eq!(get(), (1, 0), "linger on, no timeout: abortive");
    assert_eq!(set_linger(&t, s, 1, 5), (0, 0));
    assert_eq!(dont(0), 0);
    assert_eq!(get(), (1, 5), "the timeout set before stays");
    assert_eq!(dont(1), 0);
    assert_eq!(get().0, 0, "linger off");
    cleanup(&t);
}

// S6: a blocking linger close ended by the final cleanup's cancel step
// answers WSAEINTR (10004).
#[test]
fn s6_a_blocking_close_ended_by_the_final_cleanup_is_wsaeintr() {
    let _s = serial();
    let _w = watchdog(30);
    let (_, _, t) = start_with(MEM_STARTUP, 2, 2, WSPUPCALLTABLE::default());
    let (s, _) = socket(&t, None);
    assert_eq!(send(&t, s, b"stuck"), (0, 5, 0));
    assert_eq!(set_linger(&t, s, 1, 60), (0, 0));
    STALL_FLUSH.store(true, SeqCst);
    let t2 = t;
    let closer = std::thread::spawn(move || close(&t2, s));
    // The close is waiting once its flush was polled (its cancel waker is
    // registered before that).
    while !STALLED.load(SeqCst) {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(cleanup(&t), (0, 0));
    assert_eq!(closer.join().unwrap(), (SOCKET_ERROR, 10004));
}

/// A provider that keeps its `Shim` in a `static` instead of its
/// per-generation state: nothing ends its operations at the final cleanup,
/// so the shim must still never let a later generation complete them.
mod static_shim {
    use super::*;
    use std::sync::LazyLock;

    pub static SHIM: LazyLock<Shim> = LazyLock::new(Shim::new);
    pub static KEPT: parking_lot::Mutex<Vec<IoToken>> = parking_lot::Mutex::new(Vec::new());

    pub struct Stray;
    pub struct StraySocket;

    impl Socket for StraySocket {
        fn unsent(&self) -> u64 {
            0
        }
        fn poll_flush(
            &mut self,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), BoxError>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn abort(&mut self) -> Result<(), BoxError> {
            Ok(())
        }
    }

    impl WinsockSocket for StraySocket {
        fn set_linger(&mut self, _: Linger) {}
        fn send(&mut self, b: &[&[u8]]) -> Result<u32, Error> {
            Ok(b.iter().map(|x| x.len() as u32).sum())
        }
        fn send_overlapped(&mut self, _: &[&[u8]], op: IoToken) -> Result<Option<u32>, Error> {
            KEPT.lock().push(op);
            Ok(None)
        }
    }

    impl Provider for Stray {
        type Socket = StraySocket;
        type State = ();
        fn versions(&self) -> VersionRange {
            VersionRange::new(Version::new(2, 2), Version::new(2, 2))
        }
        fn initialize(&self, _: &mut Registrar) -> Result<(), Error> {
            Ok(())
        }
    }

    pub static STRAY: Lifecycle<Stray> = Lifecycle::new(Stray);

    impl WinsockProvider for Stray {
        const DESCRIPTION: &'static str = "static shim";
        fn lifecycle() -> &'static Lifecycle<Stray> {
            &STRAY
        }
        fn shim(_: &()) -> &Shim {
            &SHIM
        }
        fn open_socket(&self, _: &(), _: &SocketRequest) -> Result<StraySocket, Error> {
            Ok(StraySocket)
        }
    }
}

// W4 (completion): even a Shim kept outside the per-generation state (a
// static, which the final cleanup never drops) never lets a later
// generation complete an operation of an earlier one: its OVERLAPPED (freed
// by then, as far as anyone knows) is never written, and a WSPGetOverlappedResult
// of the next generation on reused memory does not wait for it.
#[test]
fn w4_a_static_shim_never_completes_an_earlier_generations_operation() {
    use static_shim::*;
    let _w = watchdog(30);
    let start = || {
        let mut data = WSPDATA::default();
        let mut t = WSPPROC_TABLE::default();
        // SAFETY: valid out-pointers, as ws2_32 passes them.
        let code = unsafe {
            wsp_startup::<Stray>(
                0x0202,
                (&raw mut data).cast_const(),
                std::ptr::null(),
                WSPUPCALLTABLE::default(),
                &mut t,
            )
        };
        assert_eq!(code, 0);
        t
    };
    let t = start();
    let (s, _) = socket(&t, None);
    let mut ov = sentinel();
    assert_eq!(
        send_overlapped(&t, s, b"x", &mut ov, None),
        (SOCKET_ERROR, 0, WSA_IO_PENDING)
    );
    let token = KEPT.lock().pop().unwrap();
    assert_eq!(cleanup(&t), (0, 0));
    ov = sentinel();
    let t = start();
    assert_eq!(
        complete_overlapped::<Stray>(token, Ok(1)),
        Ok(false),
        "an earlier generation's operation"
    );
    assert_eq!((ov.Internal, ov.InternalHigh), (SENTINEL, SENTINEL));
    let (s, _) = socket(&t, None);
    assert_eq!(
        overlapped_result(&t, s, &ov, true).2,
        0,
        "reused memory: not pending in this generation (no wait)"
    );
    cleanup(&t);
}
