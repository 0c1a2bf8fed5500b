//! The hostile caller: interprets bytes as calls made only through
//! `WSPStartup` and the `WSPPROC_TABLE` it fills, from two threads, and
//! checks the oracle after every input. Shared by the cargo-fuzz target
//! (`fuzz/fuzz_targets/table.rs`, libFuzzer, nightly) and the stable replay
//! of the checked-in corpus (`tests/fuzz_corpus.rs`, which CI also runs
//! under valgrind).
//!
//! Oracle, per input:
//! - no sanitizer or valgrind finding (the tools' own job);
//! - every failing call returns its failure value with a nonzero Winsock
//!   code in `*lpErrno` (no silent failure), and no call panics;
//! - the count never drifts: after cleaning up every startup that
//!   succeeded, one more cleanup answers 10093 and the lifecycle is
//!   Released;
//! - nothing is lost: every byte a socket accepted was delivered or
//!   discarded (reported), exactly once.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::task::{Context, Poll};

use parking_lot::Mutex;
use provider_lifecycle::*;
use provider_lifecycle_winsock::sys::*;
use provider_lifecycle_winsock::*;

/// Bytes sockets accepted, delivered and discarded, in all.
pub static ACCEPTED: AtomicU64 = AtomicU64::new(0);
pub static DELIVERED: AtomicU64 = AtomicU64::new(0);
pub static DISCARDED: AtomicU64 = AtomicU64::new(0);
thread_local! {
    /// Bytes accepted by sends made on this thread (D3's "nothing queued"
    /// is checked per thread: the other thread may be sending meanwhile).
    static ACCEPTED_HERE: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}
/// Tokens the sockets kept (completed later by the input, or never).
static KEPT: Mutex<Vec<IoToken>> = Mutex::new(Vec::new());
/// Whether new sockets keep overlapped sends pending.
static PEND: AtomicBool = AtomicBool::new(false);

pub struct Fz;

pub struct FzState {
    shim: Shim,
}

pub struct FzSocket {
    linger: Linger,
    unsent: u64,
    pend: bool,
}

impl Socket for FzSocket {
    fn linger(&self) -> Linger {
        self.linger
    }
    fn unsent(&self) -> u64 {
        self.unsent
    }
    fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        DELIVERED.fetch_add(std::mem::take(&mut self.unsent), SeqCst);
        Poll::Ready(Ok(()))
    }
    fn abort(&mut self) -> Result<(), BoxError> {
        DISCARDED.fetch_add(std::mem::take(&mut self.unsent), SeqCst);
        Ok(())
    }
}

impl WinsockSocket for FzSocket {
    fn set_linger(&mut self, linger: Linger) {
        self.linger = linger;
    }
    fn send(&mut self, buffers: &[&[u8]]) -> Result<u32, Error> {
        let n: u64 = buffers.iter().map(|b| b.len() as u64).sum();
        if n > 1 << 20 {
            return Err(Error::from_wsa_code(10055));
        }
        self.unsent += n;
        ACCEPTED.fetch_add(n, SeqCst);
        ACCEPTED_HERE.with(|a| a.set(a.get() + n));
        Ok(n as u32)
    }
    fn send_overlapped(&mut self, buffers: &[&[u8]], op: IoToken) -> Result<Option<u32>, Error> {
        let n = self.send(buffers)?;
        if self.pend {
            KEPT.lock().push(op);
            return Ok(None);
        }
        Ok(Some(n))
    }
}

impl Provider for Fz {
    type Socket = FzSocket;
    type State = FzState;
    fn versions(&self) -> VersionRange {
        VersionSet::WINSOCK.range()
    }
    fn negotiate(&self, requested: Version) -> Result<Negotiated, Error> {
        VersionSet::WINSOCK.negotiate(requested)
    }
    fn initialize(&self, _: &mut Registrar) -> Result<FzState, Error> {
        Ok(FzState { shim: Shim::new() })
    }
}

static FZ: Lifecycle<Fz> = Lifecycle::with_config(
    Fz,
    Config::new().with_drain_deadline(std::time::Duration::from_secs(5)),
);

impl WinsockProvider for Fz {
    const DESCRIPTION: &'static str = "fuzzed provider";
    fn lifecycle() -> &'static Lifecycle<Fz> {
        &FZ
    }
    fn shim(state: &FzState) -> &Shim {
        &state.shim
    }
    fn open_socket(&self, _: &FzState, _: &SocketRequest) -> Result<FzSocket, Error> {
        Ok(FzSocket {
            linger: Linger::Background,
            unsent: 0,
            pend: PEND.load(SeqCst),
        })
    }
}

static NEXT: AtomicU64 = AtomicU64::new(0x4000);

unsafe extern "system" fn create(_: u32, _: usize, _: *mut i32) -> SOCKET {
    NEXT.fetch_add(4, SeqCst) as SOCKET
}
unsafe extern "system" fn close_handle(_: SOCKET, _: *mut i32) -> i32 {
    0
}
unsafe extern "system" fn queue_apc(
    _: *const WSATHREADID,
    apc: Option<unsafe extern "system" fn(usize)>,
    ctx: usize,
    _: *mut i32,
) -> i32 {
    // SAFETY: the provider's APC with its own context, run at once.
    unsafe { apc.unwrap()(ctx) };
    0
}
unsafe extern "system" fn set_event(_: WSAEVENT, _: *mut i32) -> i32 {
    1
}
unsafe extern "system" fn routine(_: u32, _: u32, _: *mut OVERLAPPED, _: u32) {}

fn upcalls(with_handles: bool) -> WSPUPCALLTABLE {
    WSPUPCALLTABLE {
        lpWPUCreateSocketHandle: with_handles.then_some(create as _),
        lpWPUCloseSocketHandle: Some(close_handle),
        lpWPUQueueApc: Some(queue_apc),
        lpWPUSetEvent: Some(set_event),
        ..Default::default()
    }
}

/// An application's `OVERLAPPED`, kept until the input ends (after the
/// final cleanup ended its operation).
struct Ov(Box<OVERLAPPED>);

// SAFETY: plain data (its hEvent is never a real handle here); the shim
// writes it only under its own lock, and the harness reads it only through
// WSPGetOverlappedResult.
unsafe impl Send for Ov {}

/// Reads the input a byte at a time (0 once it is used up).
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }
    fn done(&self) -> bool {
        self.0.is_empty()
    }
}

/// A failing call must say why: a nonzero code.
fn failed_with_code(r: i32, failure: i32, errno: i32, what: &str) {
    if r == failure {
        assert_ne!(errno, 0, "{what} failed with no code");
    }
}

/// What one thread of an input does; returns how many startups it made
/// that it did not clean up.
fn run_thread(input: &[u8], table: WSPPROC_TABLE, ovs: &Mutex<Vec<Ov>>) -> i64 {
    let t = table;
    let mut b = Bytes(input);
    let mut socks: Vec<SOCKET> = Vec::new();
    let mut started: i64 = 0;
    let mut steps = 0;
    while !b.done() && steps < 64 {
        steps += 1;
        let pick = |b: &mut Bytes<'_>, socks: &[SOCKET]| -> SOCKET {
            let i = b.byte() as usize;
            if socks.is_empty() || i >= 4 * socks.len() {
                (i as SOCKET) * 4 + 1
            } else {
                socks[i % socks.len()]
            }
        };
        match b.byte() % 11 {
            0 => {
                let (mut data, mut table) = (WSPDATA::default(), WSPPROC_TABLE::default());
                let version = b.u16();
                // SAFETY: valid out-pointers, as ws2_32 passes them.
                let code = unsafe {
                    wsp_startup::<Fz>(
                        version,
                        (&raw mut data).cast_const(),
                        std::ptr::null(),
                        upcalls(b.byte() % 2 == 0),
                        &mut table,
                    )
                };
                if code == 0 {
                    started += 1;
                }
            }
            1 => {
                let mut e = 0;
                // SAFETY: the table's entry.
                let r = unsafe { t.lpWSPCleanup.unwrap()(&mut e) };
                failed_with_code(r, SOCKET_ERROR, e, "cleanup");
                if r == 0 {
                    started -= 1;
                }
            }
            2 => {
                let mut e = 0;
                // SAFETY: the table's entry.
                let s = unsafe { t.lpWSPSocket.unwrap()(2, 1, 6, std::ptr::null(), 0, 0, &mut e) };
                if s == INVALID_SOCKET {
                    assert_ne!(e, 0, "socket failed with no code");
                } else {
                    socks.push(s);
                }
            }
            3 | 4 => {
                let s = pick(&mut b, &socks);
                let n = (b.byte() % 4) as usize;
                let data = [0xabu8; 64];
                let bufs: Vec<WSABUF> = (0..n)
                    .map(|_| {
                        let len = u32::from(b.byte() % 65);
                        let null = b.byte() % 8 == 0;
                        WSABUF {
                            len,
                            buf: if null {
                                std::ptr::null_mut()
                            } else {
                                data.as_ptr().cast_mut()
                            },
                        }
                    })
                    .collect();
                let overlapped = b.byte() % 2 == 0;
                PEND.store(b.byte() % 2 == 0, SeqCst);
                let mut sent = 0;
                let mut e = 0;
                let before = ACCEPTED_HERE.with(std::cell::Cell::get);
                let r = if overlapped {
                    let mut ov = Box::new(OVERLAPPED::default());
                    let p: *mut OVERLAPPED = &mut *ov;
                    ovs.lock().push(Ov(ov));
                    let with_routine = b.byte() % 2 == 0;
                    // SAFETY: the table's entry; the OVERLAPPED lives (in
                    // `ovs`) until the input ends, after the final cleanup.
                    unsafe {
                        t.lpWSPSend.unwrap()(
                            s,
                            bufs.as_ptr(),
                            n as u32,
                            &mut sent,
                            0,
                            p,
                            with_routine.then_some(routine as _),
                            std::ptr::null(),
                            &mut e,
                        )
                    }
                } else {
                    // SAFETY: the table's entry; bufs' pointers are null or
                    // point into `data`, 64 readable bytes.
                    unsafe {
                        t.lpWSPSend.unwrap()(
                            s,
                            bufs.as_ptr(),
                            n as u32,
                            &mut sent,
                            0,
                            std::ptr::null_mut(),
                            None,
                            std::ptr::null(),
                            &mut e,
                        )
                    }
                };
                failed_with_code(r, SOCKET_ERROR, e, "send");
                let bad = bufs.iter().any(|w| w.buf.is_null() && w.len > 0);
                if bad {
                    // D3, or L8's 10093 first when not initialized.
                    assert_eq!(r, SOCKET_ERROR, "D3");
                    assert!(e == 10014 || e == 10093, "D3: {e}");
                    let after = ACCEPTED_HERE.with(std::cell::Cell::get);
                    assert_eq!(after, before, "D3: nothing queued");
                }
            }
            5 => {
                let s = pick(&mut b, &socks);
                let v = [b.byte(), b.byte(), b.byte(), b.byte()];
                let len = i32::from(b.byte() % 8) - 1;
                let name = if b.byte() % 2 == 0 {
                    SO_LINGER
                } else {
                    SO_DONTLINGER
                };
                let mut e = 0;
                // SAFETY: the table's entry; `v` has 4 readable bytes and
                // the shim reads none unless len >= 4.
                let r = unsafe {
                    t.lpWSPSetSockOpt.unwrap()(s, SOL_SOCKET, name, v.as_ptr(), len, &mut e)
                };
                failed_with_code(r, SOCKET_ERROR, e, "setsockopt");
                if len < 4 {
                    assert_eq!(r, SOCKET_ERROR);
                }
            }
            6 => {
                let s = pick(&mut b, &socks);
                let mut info = WSAPROTOCOL_INFOW::default();
                let mut e = 0;
                let me = std::process::id();
                let pid = if b.byte() % 4 == 0 { me + 1 } else { me };
                // SAFETY: the table's entry, a writable protocol info.
                let r = unsafe { t.lpWSPDuplicateSocket.unwrap()(s, pid, &mut info, &mut e) };
                failed_with_code(r, SOCKET_ERROR, e, "duplicate");
                if b.byte() % 3 == 0 {
                    info.dwProviderReserved = u32::from(b.byte());
                }
                // SAFETY: the table's entry with this protocol info.
                let d = unsafe {
                    t.lpWSPSocket.unwrap()(FROM_PROTOCOL_INFO, 1, 6, &info, 0, 0, &mut e)
                };
                if d == INVALID_SOCKET {
                    assert_ne!(e, 0, "socket from info failed with no code");
                } else {
                    socks.push(d);
                }
            }
            7 | 8 => {
                let s = pick(&mut b, &socks);
                let mut e = 0;
                // SAFETY: the table's entry.
                let r = unsafe { t.lpWSPCloseSocket.unwrap()(s, &mut e) };
                failed_with_code(r, SOCKET_ERROR, e, "close");
                if r == 0 {
                    socks.retain(|&x| x != s);
                }
            }
            9 => {
                let token = {
                    let mut kept = KEPT.lock();
                    let i = b.byte() as usize;
                    let n = kept.len();
                    (n > 0).then(|| kept.swap_remove(i % n))
                };
                if let Some(token) = token {
                    let result = if b.byte() % 4 == 0 {
                        Err(Error::from_wsa_code(10054))
                    } else {
                        Ok(1)
                    };
                    let _ = complete_overlapped::<Fz>(token, result);
                }
            }
            _ => {
                let s = pick(&mut b, &socks);
                let ov = ovs.lock().last().map(|o| &*o.0 as *const OVERLAPPED);
                if let Some(ov) = ov {
                    let (mut bytes, mut flags, mut e) = (0, 0, 0);
                    // SAFETY: the table's entry; the OVERLAPPED lives in
                    // `ovs` until the input ends.
                    let r = unsafe {
                        t.lpWSPGetOverlappedResult.unwrap()(
                            s, ov, &mut bytes, 0, &mut flags, &mut e,
                        )
                    };
                    failed_with_code(r, 0, e, "get overlapped result");
                }
            }
        }
    }
    started
}

/// Runs one input: a startup, two threads of calls, then every cleanup
/// still owed; checks the oracle.
pub fn run(input: &[u8]) {
    // One input at a time: the lifecycle is a process-wide static.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _one = ONE_AT_A_TIME.lock();
    let mut data = WSPDATA::default();
    let mut table = WSPPROC_TABLE::default();
    // SAFETY: valid out-pointers, as ws2_32 passes them.
    let code = unsafe {
        wsp_startup::<Fz>(
            0x0202,
            (&raw mut data).cast_const(),
            std::ptr::null(),
            upcalls(true),
            &mut table,
        )
    };
    assert_eq!(code, 0, "a fresh startup succeeds");
    let ovs: Mutex<Vec<Ov>> = Mutex::new(Vec::new());
    let half = input.len() / 2;
    let (a, b) = input.split_at(half);
    let owed = std::thread::scope(|s| {
        let ta = s.spawn(|| run_thread(a, table, &ovs));
        let tb = s.spawn(|| run_thread(b, table, &ovs));
        ta.join().unwrap() + tb.join().unwrap()
    });
    // Startups made by the input and not cleaned up, plus the first one;
    // a cleanup too many inside the input is L4's 10093 (not counted).
    let mut owed = owed + 1;
    while owed > 0 {
        let mut e = 0;
        // SAFETY: the table's entry.
        let r = unsafe { table.lpWSPCleanup.unwrap()(&mut e) };
        assert_eq!(r, 0, "the count drifted: a cleanup owed failed with {e}");
        owed -= 1;
    }
    let mut e = 0;
    // SAFETY: the table's entry.
    let r = unsafe { table.lpWSPCleanup.unwrap()(&mut e) };
    assert_eq!(
        (r, e),
        (SOCKET_ERROR, 10093),
        "the count drifted: one too many"
    );
    assert_ne!(FZ.state(), State::Active);
    let (acc, del, dis) = (
        ACCEPTED.load(SeqCst),
        DELIVERED.load(SeqCst),
        DISCARDED.load(SeqCst),
    );
    assert_eq!(
        acc,
        del + dis,
        "bytes lost: accepted {acc}, delivered {del}, discarded {dis}"
    );
    KEPT.lock().clear();
    drop(ovs);
}
