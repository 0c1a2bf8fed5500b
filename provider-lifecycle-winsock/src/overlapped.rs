//! Pending overlapped operations, owned by the shim
//! ([W4](provider_lifecycle::contract#W4), its completion reading in the
//! crate's contract).
//!
//! The application's `OVERLAPPED` must stay valid until its operation
//! completes; after that it may free it. So the only code that writes into
//! it is this module, and only while the operation's record is in the
//! generation's table: a record is created by `WSPSend` (where the caller's
//! pointer enters: the one `unsafe` promise about it), and
//! removed by the one event that ends the operation — its completion
//! ([`complete_overlapped`](crate::complete_overlapped)), the close of its socket
//! (995, notified), the final cleanup (995, silent: the table is dropped
//! with the generation), or the failure of the call that started it (never
//! written). A provider holds only an [`IoToken`], a plain number: a token
//! whose operation ended finds no record, so nothing can write into memory
//! its owner may already have freed.
//!
//! | the provider's `send_overlapped` | `WSPSend` returns | completion indicated |
//! |---|---|---|
//! | `Ok(Some(n))` | 0, `*lpNumberOfBytesSent = n` | at once, with `n` bytes |
//! | `Ok(None)` | `SOCKET_ERROR`, `WSA_IO_PENDING` | when the provider completes the token, or the socket closes (995) |
//! | `Err(e)` or a panic | `SOCKET_ERROR`, `e`'s code | never: the record is discarded |
//!
//! A completion is indicated as the caller chose: a completion routine
//! through `WPUQueueApc` on the caller's thread; otherwise, on a socket
//! created by `WPUCreateSocketHandle`, through `WPUCompleteOverlappedRequest`
//! (which sets the event and queues the completion port's packet); otherwise
//! the event through `WPUSetEvent`. While pending, the `OVERLAPPED`'s
//! `Internal` reads `WSS_OPERATION_IN_PROGRESS`; at the end `Internal` and
//! `OffsetHigh` hold the Winsock status (0 for success), `InternalHigh` the
//! bytes and `Offset` the flags (0), which `WSPGetOverlappedResult` reads.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use provider_lifecycle::Error;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use crate::sys::{
    LPWSAOVERLAPPED_COMPLETION_ROUTINE, OVERLAPPED, SOCKET, WSA_OPERATION_ABORTED, WSATHREADID,
    WSPUPCALLTABLE, WSS_OPERATION_IN_PROGRESS,
};

/// `WPUCompleteOverlappedRequest`'s signature. ws2_32 exports the function
/// itself (it is not in the upcall table);
/// [`WinsockProvider::complete_overlapped_request`](crate::WinsockProvider::complete_overlapped_request)
/// names it.
pub type CompleteOverlappedRequest =
    unsafe extern "system" fn(SOCKET, *mut OVERLAPPED, u32, u32, *mut i32) -> i32;

/// A pending overlapped operation, as the provider refers to it: a number
/// the shim gave out, never reused in the process. Complete it with
/// [`complete_overlapped`](crate::complete_overlapped); once its operation
/// has ended in any way, the token reaches nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IoToken(u64);

/// Process-wide, so a token of one generation never names an operation of
/// the next (2^64 tokens never wrap in practice).
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

/// The overlapped arguments of one call, as they entered the shim.
#[derive(Clone, Copy)]
pub(crate) struct OverlappedArgs {
    overlapped: *mut OVERLAPPED,
    routine: LPWSAOVERLAPPED_COMPLETION_ROUTINE,
    thread: WSATHREADID,
}

impl OverlappedArgs {
    /// # Safety
    ///
    /// `overlapped` is non-null and the caller's `OVERLAPPED`, valid until
    /// the operation it starts completes (the Winsock contract of an
    /// overlapped call); `thread` is null or the caller's readable
    /// `WSATHREADID` for this call.
    pub(crate) unsafe fn new(
        overlapped: *mut OVERLAPPED,
        routine: LPWSAOVERLAPPED_COMPLETION_ROUTINE,
        thread: *const WSATHREADID,
    ) -> OverlappedArgs {
        // SAFETY: null or readable for the call (this function's contract);
        // plain data, copied.
        let thread = if thread.is_null() {
            WSATHREADID::default()
        } else {
            unsafe { *thread }
        };
        OverlappedArgs {
            overlapped,
            routine,
            thread,
        }
    }
}

/// An `OVERLAPPED` the caller handed to `WSPGetOverlappedResult`, readable
/// for the call.
#[derive(Clone, Copy)]
pub(crate) struct ReadableOverlapped(*const OVERLAPPED);

impl ReadableOverlapped {
    /// # Safety
    ///
    /// `overlapped` is non-null and the caller's readable `OVERLAPPED`,
    /// valid until the call that received it returns (the value must not
    /// outlive that call).
    pub(crate) unsafe fn new(overlapped: *const OVERLAPPED) -> ReadableOverlapped {
        ReadableOverlapped(overlapped)
    }
}

/// Where an operation's record is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The provider's `send_overlapped` is running. `early` is a completion
    /// that came in meanwhile; `closed` says the socket closed meanwhile.
    Starting { early: Option<Status>, closed: bool },
    /// `WSA_IO_PENDING` was returned.
    Pending,
}

/// How an operation ended: its Winsock status (0: success) and its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Status {
    pub(crate) error: u32,
    pub(crate) bytes: u32,
}

impl Status {
    pub(crate) const ABORTED: Status = Status {
        error: WSA_OPERATION_ABORTED as u32,
        bytes: 0,
    };

    pub(crate) fn of(result: Result<u32, Error>) -> Status {
        match result {
            Ok(bytes) => Status { error: 0, bytes },
            Err(e) => Status {
                error: e.wsa_code() as u32,
                bytes: 0,
            },
        }
    }
}

/// One operation's record.
struct Op {
    /// The lifecycle generation the operation started in: only a guard of
    /// that generation completes it (a `Shim` a provider kept outside its
    /// per-generation state, in a `static` say, outlives the final cleanup
    /// that ended the operation; its records then reach nothing).
    generation: u64,
    /// The shim's id of the socket (shared by its duplicate handles).
    socket: u64,
    /// The `SOCKET` value the call named.
    s: SOCKET,
    /// Whether `s` came from `WPUCreateSocketHandle`.
    upcall: bool,
    args: OverlappedArgs,
    phase: Phase,
}

/// How a completion is indicated.
#[derive(Clone, Copy)]
pub(crate) struct Notify {
    pub(crate) upcalls: WSPUPCALLTABLE,
    pub(crate) port: Option<CompleteOverlappedRequest>,
}

/// The generation's pending operations.
#[derive(Default)]
pub(crate) struct Ops {
    records: Mutex<HashMap<u64, Op>>,
    /// Signalled whenever a record is removed (`WSPGetOverlappedResult`
    /// with `fWait` waits on it).
    ended: Condvar,
    /// `WSPGetOverlappedResult` calls waiting on `ended`.
    waiters: std::sync::atomic::AtomicUsize,
}

// SAFETY: the raw pointers in a record (the caller's OVERLAPPED and its
// thread's handle) are used only under `records`' lock, to end the
// operation once, from whichever thread ends it: what Winsock's contract
// for an overlapped call allows (the OVERLAPPED stays valid until then).
unsafe impl Send for Ops {}
// SAFETY: as above: every access goes through the mutex.
unsafe impl Sync for Ops {}

/// Counts one waiter out when its wait ends (or unwinds).
struct Waiting<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What the shim does with a settled `send_overlapped`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Settled {
    /// Completed at once with these bytes (already indicated).
    Done(u32),
    /// `WSA_IO_PENDING`: a completion comes (or came) through the chosen
    /// mechanism.
    Pending,
}

impl Ops {
    /// The table, whatever a panic elsewhere did (no user code runs under
    /// this lock but the upcalls, which do not unwind into it).
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Op>> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records an operation about to be handed to the provider.
    pub(crate) fn start(
        &self,
        generation: u64,
        socket: u64,
        s: SOCKET,
        upcall: bool,
        args: OverlappedArgs,
    ) -> IoToken {
        let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
        let op = Op {
            generation,
            socket,
            s,
            upcall,
            args,
            phase: Phase::Starting {
                early: None,
                closed: false,
            },
        };
        self.lock().insert(token, op);
        IoToken(token)
    }

    /// The provider's `send_overlapped` returned `result` (`Err(None)`: it
    /// panicked). Ends or arms the record; an error leaves nothing behind.
    pub(crate) fn settle(
        &self,
        token: IoToken,
        result: Result<Option<u32>, Option<Error>>,
        notify: &Notify,
    ) -> Result<Settled, Option<Error>> {
        let mut records = self.lock();
        let Some(Phase::Starting { early, closed }) = records.get(&token.0).map(|op| op.phase)
        else {
            // A record is started and settled by the same call, and only
            // settling removes a Starting one.
            return result.map(|_| Settled::Pending);
        };
        match result {
            Err(e) => {
                // Never started: never completed, nothing written.
                records.remove(&token.0);
                Err(e)
            }
            Ok(_) if closed => {
                // W4: the socket closed while the call ran.
                let d = self.end(&mut records, token.0, Status::ABORTED, notify);
                drop(records);
                run_all(d);
                Ok(Settled::Pending)
            }
            Ok(Some(n)) => {
                let d = self.end(&mut records, token.0, Status { error: 0, bytes: n }, notify);
                drop(records);
                run_all(d);
                Ok(Settled::Done(n))
            }
            Ok(None) => match early {
                Some(status) => {
                    let d = self.end(&mut records, token.0, status, notify);
                    drop(records);
                    run_all(d);
                    Ok(Settled::Pending)
                }
                None => {
                    let op = records.get_mut(&token.0).expect("found above");
                    op.phase = Phase::Pending;
                    // SAFETY: the record is in the table, so its operation
                    // has not completed and the caller's OVERLAPPED is
                    // valid (OverlappedArgs::new's contract); written under
                    // the table's lock, like every access to it.
                    unsafe {
                        (*op.args.overlapped).Internal = WSS_OPERATION_IN_PROGRESS as usize;
                    }
                    Ok(Settled::Pending)
                }
            },
        }
    }

    /// The provider completes `token` from a guard of `generation`: `false`
    /// if its operation has already ended (or completed), or is not of that
    /// generation.
    pub(crate) fn complete(
        &self,
        token: IoToken,
        status: Status,
        notify: &Notify,
        generation: u64,
    ) -> bool {
        let mut records = self.lock();
        let Some(op) = records.get_mut(&token.0) else {
            return false;
        };
        if op.generation != generation {
            return false;
        }
        match &mut op.phase {
            Phase::Starting { early: Some(_), .. } => false,
            Phase::Starting { early, .. } => {
                *early = Some(status);
                true
            }
            Phase::Pending => {
                let d = self.end(&mut records, token.0, status, notify);
                drop(records);
                run_all(d);
                true
            }
        }
    }

    /// W4: the socket `socket` closed: its pending operations end with 995,
    /// notified; one whose call is still running ends when the call
    /// returns. Returns how many ended here.
    pub(crate) fn end_socket(&self, socket: u64, notify: &Notify) -> u32 {
        let mut records = self.lock();
        let mut tokens: Vec<u64> = Vec::new();
        for (&token, op) in records.iter_mut() {
            if op.socket != socket {
                continue;
            }
            match &mut op.phase {
                Phase::Starting { closed, .. } => *closed = true,
                Phase::Pending => tokens.push(token),
            }
        }
        tokens.sort_unstable();
        let n = tokens.len() as u32;
        let deferred: Vec<Deferred> = tokens
            .into_iter()
            .filter_map(|token| self.end(&mut records, token, Status::ABORTED, notify))
            .collect();
        drop(records);
        run_all(deferred);
        n
    }

    /// `WSPGetOverlappedResult` calls waiting for an operation's end.
    pub(crate) fn waiters(&self) -> usize {
        self.waiters.load(Ordering::Relaxed)
    }

    /// Pending operations.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether an operation of `generation` on `overlapped` is pending.
    fn is_pending(
        records: &HashMap<u64, Op>,
        overlapped: *const OVERLAPPED,
        generation: u64,
    ) -> bool {
        records
            .values()
            .any(|op| op.generation == generation && std::ptr::eq(op.args.overlapped, overlapped))
    }

    /// `WSPGetOverlappedResult`'s reading: `None` while the operation on
    /// `overlapped` is pending (after waiting for its end if `wait`), else
    /// its status and flags.
    pub(crate) fn result(
        &self,
        overlapped: ReadableOverlapped,
        wait: bool,
        generation: u64,
    ) -> Option<(Status, u32)> {
        let mut records = self.lock();
        while Self::is_pending(&records, overlapped.0, generation) {
            if !wait {
                return None;
            }
            self.waiters.fetch_add(1, Ordering::Relaxed);
            let _waiting = Waiting(&self.waiters);
            records = self
                .ended
                .wait(records)
                .unwrap_or_else(PoisonError::into_inner);
        }
        // SAFETY: readable for the call (ReadableOverlapped::new's
        // contract), read under the lock every write happens under.
        let ov = unsafe { &*overlapped.0 };
        if ov.Internal == WSS_OPERATION_IN_PROGRESS as usize {
            return None;
        }
        // SAFETY: the union's Offset/OffsetHigh arm is plain data.
        let (flags, error) = unsafe {
            (
                ov.Anonymous.Anonymous.Offset,
                ov.Anonymous.Anonymous.OffsetHigh,
            )
        };
        Some((
            Status {
                error,
                bytes: ov.InternalHigh as u32,
            },
            flags,
        ))
    }

    /// Removes `token`'s record and ends its operation with `status`:
    /// writes the status into the caller's `OVERLAPPED` and indicates the
    /// completion. What needs the `OVERLAPPED` itself (the status, and
    /// `WPUCompleteOverlappedRequest`, which reads it) happens under the
    /// table's lock; what only passes its address on (`WPUQueueApc`,
    /// `WPUSetEvent`) is returned to run after the lock is released, so a
    /// completion routine an upcall runs at once may call back into the
    /// shim.
    #[must_use]
    fn end(
        &self,
        records: &mut HashMap<u64, Op>,
        token: u64,
        status: Status,
        notify: &Notify,
    ) -> Option<Deferred> {
        let op = records.remove(&token)?;
        self.ended.notify_all();
        // SAFETY: the record was in the table, so the operation had not
        // completed and the caller's OVERLAPPED is valid; this is its
        // completion, once (the record is gone).
        unsafe { write_status(op.args.overlapped, status) };
        // SAFETY: as above.
        unsafe { indicate(&op, status, notify) }
    }
}

/// The part of an indication that runs after the table's lock is released.
pub(crate) enum Deferred {
    /// `WPUQueueApc` with a boxed [`Completion`].
    Apc {
        queue: unsafe extern "system" fn(
            *const WSATHREADID,
            Option<unsafe extern "system" fn(usize)>,
            usize,
            *mut i32,
        ) -> i32,
        thread: WSATHREADID,
        ctx: Box<Completion>,
    },
    /// `WPUSetEvent` on the caller's event.
    Event {
        set: unsafe extern "system" fn(crate::sys::WSAEVENT, *mut i32) -> i32,
        event: crate::sys::WSAEVENT,
    },
}

impl Deferred {
    /// Runs the deferred upcall.
    pub(crate) fn run(self) {
        let mut errno = 0;
        match self {
            Deferred::Apc { queue, thread, ctx } => {
                let ctx = Box::into_raw(ctx);
                // SAFETY: WPUQueueApc is the upcall ws2_32 gave this
                // provider; it runs `apc` once with `ctx`, which `apc` frees.
                let queued = unsafe { queue(&thread, Some(apc), ctx as usize, &mut errno) };
                if queued != 0 {
                    // Not queued: free the context here instead.
                    // SAFETY: `ctx` came from Box::into_raw above and no APC
                    // owns it.
                    drop(unsafe { Box::from_raw(ctx) });
                }
            }
            Deferred::Event { set, event } => {
                // SAFETY: ws2_32's upcall on the caller's event handle (a
                // value read while the operation was still pending).
                unsafe { set(event, &mut errno) };
            }
        }
    }
}

/// Runs deferred indications (after the lock is released).
fn run_all(deferred: impl IntoIterator<Item = Deferred>) {
    for d in deferred {
        d.run();
    }
}

impl Ops {
    /// The final cleanup: every operation still pending ends with 995,
    /// without its notification (W4), and every `WSPGetOverlappedResult`
    /// waiting on one wakes up.
    pub(crate) fn end_generation(&self) {
        let records = std::mem::take(&mut *self.lock());
        for op in records.into_values() {
            if op.phase == Phase::Pending {
                // SAFETY: pending, so not completed: the OVERLAPPED is valid.
                unsafe { write_status(op.args.overlapped, Status::ABORTED) };
            }
        }
        self.ended.notify_all();
    }
}

/// # Safety
///
/// `ov` is a valid, writable `OVERLAPPED` whose operation this ends.
unsafe fn write_status(ov: *mut OVERLAPPED, status: Status) {
    // SAFETY: this function's contract.
    unsafe {
        (*ov).Anonymous.Anonymous.Offset = 0;
        (*ov).Anonymous.Anonymous.OffsetHigh = status.error;
        (*ov).InternalHigh = status.bytes as usize;
        (*ov).Internal = status.error as usize;
    }
}

/// Indicates `op`'s completion by the mechanism its caller chose; returns
/// what must run once the table's lock is released.
///
/// # Safety
///
/// `op`'s `OVERLAPPED` is valid and this is its operation's end.
unsafe fn indicate(op: &Op, status: Status, notify: &Notify) -> Option<Deferred> {
    let ov = op.args.overlapped;
    if let Some(routine) = op.args.routine {
        let queue = notify.upcalls.lpWPUQueueApc?;
        return Some(Deferred::Apc {
            queue,
            thread: op.args.thread,
            ctx: Box::new(Completion {
                routine,
                overlapped: ov,
                status,
            }),
        });
    }
    if let (true, Some(port)) = (op.upcall, notify.port) {
        let mut errno = 0;
        // SAFETY: ws2_32's WPUCompleteOverlappedRequest on a socket value it
        // created for this provider, with the operation's own (valid)
        // OVERLAPPED: it sets the event and queues the completion port's
        // packet.
        unsafe { port(op.s, ov, status.error, status.bytes, &mut errno) };
        return None;
    }
    let set = notify.upcalls.lpWPUSetEvent?;
    // SAFETY: the OVERLAPPED is valid (this function's contract).
    let event = unsafe { (*ov).hEvent };
    (!event.is_null()).then_some(Deferred::Event {
        set,
        event: event as isize,
    })
}

/// What the APC needs to call a completion routine.
pub(crate) struct Completion {
    routine: unsafe extern "system" fn(u32, u32, *mut OVERLAPPED, u32),
    overlapped: *mut OVERLAPPED,
    status: Status,
}

/// The APC queued through `WPUQueueApc`: calls the completion routine.
unsafe extern "system" fn apc(ctx: usize) {
    // SAFETY: `ctx` is the Box::into_raw of a Completion, queued once.
    let c = unsafe { Box::from_raw(ctx as *mut Completion) };
    // SAFETY: the caller's completion routine with its own OVERLAPPED.
    unsafe { (c.routine)(c.status.error, c.status.bytes, c.overlapped, 0) };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How the indications went, for the unit tests' fake upcalls.
    static EVENTS: std::sync::Mutex<Vec<isize>> = std::sync::Mutex::new(Vec::new());

    unsafe extern "system" fn set_event(event: crate::sys::WSAEVENT, _: *mut i32) -> i32 {
        EVENTS.lock().unwrap().push(event);
        1
    }

    fn notify() -> Notify {
        Notify {
            upcalls: WSPUPCALLTABLE {
                lpWPUSetEvent: Some(set_event),
                ..Default::default()
            },
            port: None,
        }
    }

    fn args(ov: &mut OVERLAPPED) -> OverlappedArgs {
        // SAFETY: `ov` outlives every use in these tests.
        unsafe { OverlappedArgs::new(ov, None, std::ptr::null()) }
    }

    // W4: a socket closed while the call that started an operation still
    // runs: the operation ends (995, notified) when the call returns
    // pending or done, never after; a failed call leaves nothing.
    #[test]
    fn w4_closed_while_starting_ends_when_the_call_returns() {
        let ops = Ops::default();
        let mut ov = OVERLAPPED {
            hEvent: 31usize as _,
            ..Default::default()
        };
        let t = ops.start(0, 1, 5, false, args(&mut ov));
        assert_eq!(ops.end_socket(1, &notify()), 0, "still starting");
        assert_eq!(ops.settle(t, Ok(None), &notify()), Ok(Settled::Pending));
        assert_eq!((ov.Internal, ops.len()), (995, 0));
        assert!(EVENTS.lock().unwrap().contains(&31));
        assert!(
            !ops.complete(t, Status::of(Ok(1)), &notify(), 0),
            "ended once"
        );

        let mut ov = OVERLAPPED::default();
        let t = ops.start(0, 2, 6, false, args(&mut ov));
        ops.end_socket(2, &notify());
        assert_eq!(
            ops.settle(t, Err(Some(Error::NotSocket)), &notify()),
            Err(Some(Error::NotSocket))
        );
        assert_eq!((ov.Internal, ops.len()), (0, 0), "never started: untouched");
    }

    // W4: a completion that arrives while the call still runs is kept, and
    // delivered once the call says pending; a second one is refused.
    #[test]
    fn w4_an_early_completion_is_delivered_when_the_call_returns() {
        let ops = Ops::default();
        let mut ov = OVERLAPPED::default();
        let t = ops.start(0, 3, 7, false, args(&mut ov));
        assert_eq!(ops.len(), 1);
        assert!(
            !ops.complete(t, Status::of(Ok(9)), &notify(), 1),
            "another generation's guard reaches nothing"
        );
        assert!(ops.complete(t, Status::of(Ok(9)), &notify(), 0));
        assert!(!ops.complete(t, Status::of(Ok(9)), &notify(), 0), "once");
        assert_eq!(ov.Internal, 0, "not written before the call returned");
        assert_eq!(ops.settle(t, Ok(None), &notify()), Ok(Settled::Pending));
        assert_eq!((ov.Internal, ov.InternalHigh, ops.len()), (0, 9, 0));
        // Completed at once: the provider's own count wins.
        let mut ov = OVERLAPPED::default();
        let t = ops.start(0, 3, 7, false, args(&mut ov));
        assert_eq!(ops.settle(t, Ok(Some(4)), &notify()), Ok(Settled::Done(4)));
        assert_eq!((ov.Internal, ov.InternalHigh), (0, 4));
    }
}
