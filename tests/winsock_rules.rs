//! The contract details the real Winsock ABI needs, in the core: per-startup
//! contexts (W1), version sets and the process-effective version (W2),
//! duplicated handles (W3) and pending overlapped operations (W4).
#![cfg(not(loom))]

mod support;

use std::sync::Arc;
use std::task::{Context, Poll};

use parking_lot::Mutex;
use provider_lifecycle::*;
use support::watchdog;

/// What one socket's overlapped operations went through: `(notified, count)`
/// per `abort_pending` call.
type Pending = Arc<Mutex<Vec<(bool, u32)>>>;

/// A socket with `unsent` bytes that flush at once, and `pending` overlapped
/// operations.
struct Sock {
    unsent: u64,
    delivered: Arc<Mutex<u64>>,
    pending: u32,
    log: Pending,
    linger: Linger,
}

impl Socket for Sock {
    fn linger(&self) -> Linger {
        self.linger
    }
    fn unsent(&self) -> u64 {
        self.unsent
    }
    fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        *self.delivered.lock() += self.unsent;
        self.unsent = 0;
        Poll::Ready(Ok(()))
    }
    fn abort(&mut self) -> Result<(), BoxError> {
        self.unsent = 0;
        Ok(())
    }
    fn abort_pending(&mut self, notify: bool) -> u32 {
        let n = std::mem::take(&mut self.pending);
        self.log.lock().push((notify, n));
        n
    }
}

fn sock(unsent: u64, pending: u32) -> (Sock, Arc<Mutex<u64>>, Pending) {
    let delivered = Arc::new(Mutex::new(0));
    let log = Pending::default();
    let s = Sock {
        unsent,
        delivered: delivered.clone(),
        pending,
        log: log.clone(),
        linger: Linger::Background,
    };
    (s, delivered, log)
}

/// A provider on WSAStartup's version set whose state keeps the latest
/// startup context.
struct Ws;

#[derive(Default)]
struct WsState {
    context: Mutex<Option<u32>>,
}

impl Provider for Ws {
    type Socket = Sock;
    type State = WsState;
    fn versions(&self) -> VersionRange {
        VersionSet::WINSOCK.range()
    }
    fn negotiate(&self, requested: Version) -> Result<Negotiated, Error> {
        VersionSet::WINSOCK.negotiate(requested)
    }
    fn initialize(&self, _: &mut Registrar) -> Result<WsState, Error> {
        Ok(WsState::default())
    }
}

fn v(major: u8, minor: u8) -> Version {
    Version::new(major, minor)
}

fn keep(state: &WsState, context: u32) {
    *state.context.lock() = Some(context);
}

fn context(l: &Lifecycle<Ws>) -> Option<u32> {
    *l.enter().unwrap().state().context.lock()
}

// W1: every successful startup carries a context; the latest is in force;
// a failed startup applies nothing; a new generation starts afresh.
#[test]
fn w1_the_latest_startup_context_is_in_force() {
    let _w = watchdog(30);
    let l = Lifecycle::new(Ws);
    l.startup_with_context(v(2, 2), 1, keep).unwrap();
    assert_eq!(context(&l), Some(1));
    l.startup_with_context(v(2, 0), 2, keep).unwrap();
    l.startup_with_context(v(1, 1), 3, keep).unwrap();
    assert_eq!(context(&l), Some(3), "the latest, not the first");
    let refused = l.startup_with_context(v(0, 9), 4, keep);
    assert_eq!(refused.unwrap_err(), Error::VersionNotSupported);
    assert_eq!(context(&l), Some(3), "a failed startup applies nothing");
    // Racing startups: whichever applies last is in force, and it is one
    // of theirs.
    std::thread::scope(|s| {
        for c in 10..14 {
            let l = &l;
            s.spawn(move || l.startup_with_context(v(2, 2), c, keep).unwrap());
        }
    });
    assert!((10..14).contains(&context(&l).unwrap()));
    while !l.cleanup().unwrap().is_final() {}
    l.startup(v(2, 2)).unwrap();
    assert_eq!(context(&l), None, "a new generation has no context yet");
    l.cleanup().unwrap();
}

// W2: WSAStartup's discrete set: 1.2–1.255 negotiate to 1.1, anything above
// 2.2 to 2.2, below 1.0 is refused.
#[test]
fn w2_winsock_version_set_negotiation() {
    let set = VersionSet::WINSOCK;
    for minor in 2..=255 {
        assert_eq!(set.negotiate(v(1, minor)).unwrap().version, v(1, 1));
    }
    for (req, got) in [
        (v(1, 0), v(1, 0)),
        (v(1, 1), v(1, 1)),
        (v(2, 0), v(2, 0)),
        (v(2, 1), v(2, 1)),
        (v(2, 2), v(2, 2)),
        (v(2, 3), v(2, 2)),
        (v(3, 0), v(2, 2)),
        (v(255, 255), v(2, 2)),
    ] {
        let n = set.negotiate(req).unwrap();
        assert_eq!((n.version, n.high_version), (got, v(2, 2)), "{req}");
    }
    for bad in [v(0, 0), v(0, 9)] {
        assert_eq!(set.negotiate(bad).unwrap_err().wsa_code(), 10092);
    }
    assert_eq!((set.lowest(), set.highest()), (v(1, 0), v(2, 2)));
    assert!(set.contains(v(2, 1)) && !set.contains(v(1, 2)));
    let l = Lifecycle::new(Ws);
    let s = l.startup(v(1, 200)).unwrap();
    assert_eq!(s.negotiated.version, v(1, 1), "the provider's own rule");
    l.cleanup().unwrap();
}

// W2: the process-effective version is the lowest version of any startup of
// the current generation, and resets at the final cleanup.
#[test]
fn w2_effective_version_is_the_lowest_and_resets() {
    let _w = watchdog(30);
    let l = Lifecycle::new(Ws);
    assert_eq!(l.effective_version(), None);
    l.startup(v(2, 2)).unwrap();
    assert_eq!(l.effective_version(), Some(v(2, 2)));
    l.startup(v(2, 0)).unwrap();
    l.startup(v(2, 1)).unwrap();
    assert_eq!(l.effective_version(), Some(v(2, 0)));
    l.startup(v(1, 9)).unwrap(); // negotiates to 1.1
    assert_eq!(l.effective_version(), Some(v(1, 1)));
    assert!(l.startup(v(0, 1)).is_err());
    assert_eq!(
        l.effective_version(),
        Some(v(1, 1)),
        "a refused startup counts nothing"
    );
    for _ in 0..3 {
        l.cleanup().unwrap();
        assert_eq!(
            l.effective_version(),
            Some(v(1, 1)),
            "until the final cleanup"
        );
    }
    assert!(l.cleanup().unwrap().is_final());
    assert_eq!(l.effective_version(), None);
    l.startup(v(2, 1)).unwrap();
    assert_eq!(
        l.effective_version(),
        Some(v(2, 1)),
        "the new generation's own"
    );
    l.cleanup().unwrap();
}

// W3: duplicated handles share one socket; closing one leaves the others
// working; the last close applies the linger (every byte delivered).
#[test]
fn w3_duplicated_handles_share_one_socket() {
    let _w = watchdog(30);
    let l = Lifecycle::new(Ws);
    l.startup(v(2, 2)).unwrap();
    let (s, delivered, _) = sock(100, 0);
    let a = l.register_socket(s).unwrap();
    let b = l.duplicate_socket(a).unwrap();
    let c = l.duplicate_socket(b).unwrap();
    assert!(a != b && b != c && a != c);
    assert_eq!(l.open_sockets(), 3, "counted per handle");
    let line = l.close_socket(b).unwrap();
    assert_eq!(line.outcome, SocketOutcome::Retained);
    assert!(line.is_clean());
    assert_eq!(
        l.close_socket(b).unwrap_err(),
        Error::NotSocket,
        "b is closed"
    );
    assert_eq!(
        l.with_socket(a, |s| s.unsent).unwrap(),
        100,
        "a still works"
    );
    assert_eq!(l.with_socket(c, |s| s.unsent).unwrap(), 100, "c too");
    assert_eq!(*delivered.lock(), 0, "nothing closed yet");
    assert_eq!(l.close_socket(c).unwrap().outcome, SocketOutcome::Retained);
    let last = l.close_socket(a).unwrap();
    assert_ne!(
        last.outcome,
        SocketOutcome::Retained,
        "the last closes the socket"
    );
    l.cleanup().unwrap();
    assert_eq!(*delivered.lock(), 100, "its linger applied: every byte out");
    assert_eq!(
        l.duplicate_socket(a).unwrap_err(),
        Error::NotInitialised(NotActive::Released)
    );
}

// W3: the final cleanup closes a duplicated socket once and reports it once.
#[test]
fn w3_final_cleanup_accounts_a_duplicated_socket_once() {
    let _w = watchdog(30);
    let l = Lifecycle::with_config(
        Ws,
        Config::new().with_open_socket_policy(OpenSocketPolicy::Graceful),
    );
    l.startup(v(2, 2)).unwrap();
    let (s, delivered, log) = sock(50, 2);
    let a = l.register_socket(s).unwrap();
    let b = l.duplicate_socket(a).unwrap();
    let (other, _, _) = sock(0, 0);
    let o = l.register_socket(other).unwrap();
    assert_eq!(l.close_socket(o).unwrap().outcome, SocketOutcome::Flushed);
    let report = l.cleanup().unwrap().into_report().unwrap();
    assert_eq!(report.sockets.len(), 1, "{report}");
    let line = &report.sockets[0];
    assert!(line.handle == a || line.handle == b);
    assert_eq!((line.bytes_flushed, line.bytes_discarded), (50, 0));
    assert_eq!(report.bytes_flushed(), 50, "accounted once");
    assert_eq!(*delivered.lock(), 50);
    assert_eq!(*log.lock(), [(false, 2)], "one abort_pending, silent");
    // The slots of both handles are free for the next generation.
    l.startup(v(2, 2)).unwrap();
    assert_eq!(l.with_socket(a, |_| ()).unwrap_err(), Error::NotSocket);
    assert_eq!(l.with_socket(b, |_| ()).unwrap_err(), Error::NotSocket);
    l.cleanup().unwrap();
}

// W4: pending overlapped operations end with 995 at the socket's close with
// their notification, and at the final cleanup without it.
#[test]
fn w4_overlapped_operations_abort_notified_at_close_silent_at_cleanup() {
    let _w = watchdog(30);
    let l = Lifecycle::new(Ws);
    l.startup(v(2, 2)).unwrap();
    let (closed, _, closed_log) = sock(0, 3);
    let (open, _, open_log) = sock(0, 4);
    let h = l.register_socket(closed).unwrap();
    l.register_socket(open).unwrap();
    let line = l.close_socket(h).unwrap();
    assert_eq!(line.aborted_operations, 3);
    assert_eq!(*closed_log.lock(), [(true, 3)], "closesocket: notified");
    assert_eq!(Error::OperationAborted.wsa_code(), 995);
    let report = l.cleanup().unwrap().into_report().unwrap();
    assert_eq!(report.sockets[0].aborted_operations, 4);
    assert_eq!(*open_log.lock(), [(false, 4)], "final cleanup: silent");
    assert_eq!(*closed_log.lock(), [(true, 3)], "called once per socket");
}

// W4, L12: a lifecycle dropped while Active ends pending operations
// silently too.
#[test]
fn w4_drop_while_active_aborts_silently() {
    let _w = watchdog(30);
    let (s, _, log) = sock(0, 1);
    let l = Lifecycle::new(Ws);
    l.startup(v(2, 2)).unwrap();
    l.register_socket(s).unwrap();
    drop(l);
    assert_eq!(*log.lock(), [(false, 1)]);
}

// W3, W4: a duplicated handle's close neither notifies nor aborts anything:
// the socket is still open.
#[test]
fn w3_w4_closing_one_duplicate_leaves_pending_operations_alone() {
    let _w = watchdog(30);
    let l = Lifecycle::new(Ws);
    l.startup(v(2, 2)).unwrap();
    let (s, _, log) = sock(0, 5);
    let a = l.register_socket(s).unwrap();
    let b = l.duplicate_socket(a).unwrap();
    assert_eq!(l.close_socket(a).unwrap().aborted_operations, 0);
    assert!(log.lock().is_empty());
    assert_eq!(l.close_socket(b).unwrap().aborted_operations, 5);
    assert_eq!(*log.lock(), [(true, 5)]);
    l.cleanup().unwrap();
}

// W4, S3: a background close's line counts the overlapped operations its
// close ended, like any other close.
#[test]
fn w4_a_background_close_reports_the_operations_it_aborted() {
    let _w = watchdog(30);
    let l = Lifecycle::with_config(
        Ws,
        Config::new().with_background_flush(BackgroundFlush::Manual),
    );
    l.startup(v(2, 2)).unwrap();
    let (s, delivered, log) = sock(50, 3);
    let h = l.register_socket(s).unwrap();
    let line = l.close_socket(h).unwrap();
    assert_eq!(line.outcome, SocketOutcome::Background);
    assert_eq!(line.aborted_operations, 3);
    assert_eq!(*log.lock(), [(true, 3)], "notified, once");
    l.cleanup().unwrap();
    assert_eq!(*delivered.lock(), 50);
}
