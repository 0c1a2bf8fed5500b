//! What the shim's bench targets share: a provider whose sockets queue what
//! they are sent, the calls ws2_32 makes, and the floor.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use provider_lifecycle::{
    BoxError, Error, Lifecycle, Linger, Provider, Registrar, Socket, SocketHandle, Version,
    VersionRange,
};
use provider_lifecycle_winsock::sys::{
    SOCKET, WSABUF, WSAPROTOCOL_INFOW, WSPDATA, WSPPROC_TABLE, WSPUPCALLTABLE,
};
use provider_lifecycle_winsock::{Shim, SocketRequest, WinsockProvider, WinsockSocket};

pub struct Queue;

pub struct QueueState {
    shim: Shim,
}

/// A socket that queues what it is sent: copies it into its 4 KiB ring.
pub struct Queued {
    ring: Box<[u8; 4096]>,
    at: usize,
}

impl Queued {
    pub fn new() -> Queued {
        Queued {
            ring: Box::new([0; 4096]),
            at: 0,
        }
    }

    /// The work a send does on the socket itself.
    pub fn queue(&mut self, buffers: &[&[u8]]) -> u32 {
        let mut n = 0;
        for b in buffers {
            for chunk in b.chunks(4096) {
                let room = 4096 - self.at;
                let first = chunk.len().min(room);
                self.ring[self.at..self.at + first].copy_from_slice(&chunk[..first]);
                self.ring[..chunk.len() - first].copy_from_slice(&chunk[first..]);
                self.at = (self.at + chunk.len()) % 4096;
                n += chunk.len();
            }
        }
        n as u32
    }
}

impl Socket for Queued {
    fn linger(&self) -> Linger {
        Linger::Abort
    }
    fn unsent(&self) -> u64 {
        0
    }
    fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }
    fn abort(&mut self) -> Result<(), BoxError> {
        Ok(())
    }
}

impl WinsockSocket for Queued {
    fn set_linger(&mut self, _: Linger) {}
    fn send(&mut self, buffers: &[&[u8]]) -> Result<u32, Error> {
        Ok(self.queue(buffers))
    }
}

pub const V: Version = Version::new(2, 2);

impl Provider for Queue {
    type Socket = Queued;
    type State = QueueState;
    fn versions(&self) -> VersionRange {
        VersionRange::new(V, V)
    }
    fn initialize(&self, _: &mut Registrar) -> Result<QueueState, Error> {
        Ok(QueueState { shim: Shim::new() })
    }
}

pub static QUEUE: Lifecycle<Queue> = Lifecycle::new(Queue);

impl WinsockProvider for Queue {
    const DESCRIPTION: &'static str = "bench queue provider";
    fn lifecycle() -> &'static Lifecycle<Queue> {
        &QUEUE
    }
    fn shim(state: &QueueState) -> &Shim {
        &state.shim
    }
    fn open_socket(&self, _: &QueueState, _: &SocketRequest) -> Result<Queued, Error> {
        Ok(Queued::new())
    }
}

/// `WPUCreateSocketHandle` and `WPUQuerySocketHandleContext` of a host that
/// maps a value to its context without any table (value = context ^ KEY).
const KEY: usize = 0x5a5a_0000_0000;
unsafe extern "system" fn create(_: u32, context: usize, _: *mut i32) -> SOCKET {
    context ^ KEY
}
unsafe extern "system" fn close_handle(_: SOCKET, _: *mut i32) -> i32 {
    0
}
unsafe extern "system" fn query(s: SOCKET, context: *mut usize, _: *mut i32) -> i32 {
    // SAFETY: the shim passes a pointer to its own local.
    unsafe { *context = s ^ KEY };
    0
}

/// The upcall table: with `handles`, ws2_32 makes the `SOCKET` values
/// (`WPUCreateSocketHandle`) and maps them back
/// (`WPUQuerySocketHandleContext`), as for a layered provider; without,
/// the values are the shim's own.
pub fn upcalls(handles: bool) -> WSPUPCALLTABLE {
    WSPUPCALLTABLE {
        lpWPUCreateSocketHandle: handles.then_some(create as _),
        lpWPUCloseSocketHandle: Some(close_handle),
        lpWPUQuerySocketHandleContext: handles.then_some(query as _),
        ..Default::default()
    }
}

provider_lifecycle_winsock::export_wsp_startup!(Queue);

/// `WSPStartup` as ws2_32 calls it; the table it fills.
pub fn start(upcalls: WSPUPCALLTABLE) -> WSPPROC_TABLE {
    let mut data = WSPDATA::default();
    let mut table = WSPPROC_TABLE::default();
    let info = WSAPROTOCOL_INFOW::default();
    // SAFETY: pointers to live locals of the SDK's types, as ws2_32 passes.
    let rc = unsafe { WSPStartup(V.to_word(), &raw const data, &info, upcalls, &mut table) };
    assert_eq!(rc, 0);
    let _ = &mut data;
    table
}

pub fn cleanup(t: &WSPPROC_TABLE) {
    let mut errno = 0;
    // SAFETY: the table's own entry.
    assert_eq!(unsafe { t.lpWSPCleanup.unwrap()(&mut errno) }, 0);
}

pub fn socket(t: &WSPPROC_TABLE) -> SOCKET {
    let mut errno = 0;
    // SAFETY: the table's own entry.
    let s = unsafe { t.lpWSPSocket.unwrap()(2, 1, 6, std::ptr::null(), 0, 0, &mut errno) };
    assert_eq!(errno, 0);
    s
}

/// One non-overlapped `WSPSend` of `data` through the table.
#[inline(never)]
pub fn send(t: &WSPPROC_TABLE, s: SOCKET, data: &[u8]) -> u32 {
    let buf = WSABUF {
        len: data.len() as u32,
        buf: data.as_ptr().cast_mut(),
    };
    let (mut sent, mut errno) = (0, 0);
    // SAFETY: the table's own entry; one readable buffer; live out-pointers.
    let rc = unsafe {
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
    debug_assert_eq!(rc, 0);
    sent
}

/// The same send on the core's provider-call path (`with_socket`), for a
/// `SOCKET` that is the shim's own (its raw handle).
#[inline(never)]
pub fn core_send(s: SOCKET, data: &[u8]) -> u32 {
    QUEUE
        .with_socket(SocketHandle::from_raw(s as u64), |q| q.queue(&[data]))
        .unwrap()
}

/// The same send on the core's path for a call that needs the provider's
/// state too (`operate`: a guard, the state, the socket), as the shim's
/// calls do (its `SOCKET` table lives in the state).
#[inline(never)]
pub fn core_operate_send(s: SOCKET, data: &[u8]) -> u32 {
    QUEUE
        .operate(SocketHandle::from_raw(s as u64), |state, q| {
            std::hint::black_box(&state.shim);
            q.queue(&[data])
        })
        .unwrap()
}

/// Per-thread cache-padded shards, as the guard floor uses.
pub struct Shards(pub [crossbeam_utils::CachePadded<AtomicUsize>; 32]);

static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static MY_SHARD: usize = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % 32;
}

impl Shards {
    pub fn new() -> Shards {
        Shards(std::array::from_fn(|_| Default::default()))
    }
}

/// The floor of the send: this thread's shard add/sub around the socket's
/// own uncontended mutex, and the socket's own work.
#[inline(never)]
pub fn floor_send(shards: &Shards, socket: &std::sync::Mutex<Queued>, data: &[u8]) -> u32 {
    let i = MY_SHARD.with(|i| *i);
    shards.0[i].fetch_add(1, Ordering::Acquire);
    let n = socket.lock().unwrap().queue(&[data]);
    shards.0[i].fetch_sub(1, Ordering::Release);
    n
}
