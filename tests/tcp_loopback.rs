//! S3 and the linger table on real loopback TCP sockets (loopback only,
//! bounded in time).
#![cfg(not(loom))]

#[path = "../examples/common/tcp.rs"]
mod tcp;

use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod support;

use provider_lifecycle::*;
use tcp::{PeerResult, TcpSocket, pair, slow_reader};

struct Tcp;

impl Provider for Tcp {
    type Socket = TcpSocket;
    type State = ();
    fn versions(&self) -> VersionRange {
        VersionRange::new(Version::new(2, 2), Version::new(2, 2))
    }
    fn initialize(&self, _: &mut Registrar) -> Result<(), Error> {
        Ok(())
    }
}

const V: Version = Version::new(2, 2);
const MIB: u64 = 1024 * 1024;

fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").expect("bind loopback")
}

fn slow_peer(peer: TcpStream) -> std::thread::JoinHandle<PeerResult> {
    std::thread::spawn(move || {
        slow_reader(
            peer,
            32 * 1024,
            Duration::from_millis(1),
            Duration::from_secs(60),
        )
    })
}

/// Runs `f` on a thread, failing the test if it takes longer than `limit`.
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("did not finish within {limit:?}"))
}

#[test]
fn s3_graceful_sockets_deliver_every_byte_in_order_at_the_final_cleanup() {
    let _watchdog = support::watchdog(120);
    let l = std::sync::Arc::new(Lifecycle::with_config(
        Tcp,
        Config::new().with_drain_deadline(Duration::from_secs(60)),
    ));
    l.startup(V).unwrap();
    let lis = listener();
    let mut peers = Vec::new();
    let mut accepted = 0;
    for _ in 0..32 {
        let (ours, peer) = pair(&lis).unwrap();
        peers.push(slow_peer(peer));
        let h = l
            .register_socket(TcpSocket::new(ours, Linger::Background, true).unwrap())
            .unwrap();
        l.with_socket(h, |s| s.send_pattern(MIB + 4321)).unwrap();
        accepted += MIB + 4321;
        assert_eq!(
            l.close_socket(h).unwrap().outcome,
            SocketOutcome::Background
        );
    }
    assert!(
        l.background_sockets() > 0,
        "data is still queued when the cleanup starts"
    );
    let l2 = l.clone();
    let report = within(Duration::from_secs(90), move || l2.cleanup().unwrap());
    let report = report.report().unwrap();
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.bytes_discarded(), 0);
    let mut received = 0;
    for p in peers {
        let r = p.join().unwrap();
        assert!(r.in_order, "in order");
        assert!(!r.reset);
        assert_eq!(r.received, MIB + 4321, "every byte the socket accepted");
        received += r.received;
    }
    assert_eq!(received, accepted);
}

#[test]
fn s3_graceful_policy_drains_open_sockets_too() {
    let _watchdog = support::watchdog(120);
    let l = Lifecycle::with_config(
        Tcp,
        Config::new().with_open_socket_policy(OpenSocketPolicy::Graceful),
    );
    l.startup(V).unwrap();
    let lis = listener();
    let mut peers = Vec::new();
    for _ in 0..4 {
        let (ours, peer) = pair(&lis).unwrap();
        peers.push(slow_peer(peer));
        let h = l
            .register_socket(TcpSocket::new(ours, Linger::Background, true).unwrap())
            .unwrap();
        l.with_socket(h, |s| s.send_pattern(MIB)).unwrap();
    }
    let c = l.cleanup().unwrap();
    assert!(c.report().unwrap().is_clean());
    for p in peers {
        let r = p.join().unwrap();
        assert_eq!((r.received, r.in_order), (MIB, true));
    }
}

#[test]
fn abortive_close_resets_the_peer_and_reports_the_discarded_bytes() {
    let _watchdog = support::watchdog(120);
    let l = Lifecycle::new(Tcp);
    l.startup(V).unwrap();
    let lis = listener();
    // Abort linger while Active.
    let (ours, peer) = pair(&lis).unwrap();
    let p1 = std::thread::spawn(move || {
        slow_reader(
            peer,
            1024,
            Duration::from_millis(20),
            Duration::from_secs(10),
        )
    });
    let h = l
        .register_socket(TcpSocket::new(ours, Linger::Abort, true).unwrap())
        .unwrap();
    l.with_socket(h, |s| s.send_pattern(MIB)).unwrap();
    let out = l.close_socket(h).unwrap();
    assert_eq!(out.outcome, SocketOutcome::Reset);
    assert_eq!(out.bytes_discarded, MIB);
    // Reset policy at the final cleanup on a socket left open.
    let (ours, peer) = pair(&lis).unwrap();
    let p2 = std::thread::spawn(move || {
        slow_reader(
            peer,
            1024,
            Duration::from_millis(20),
            Duration::from_secs(10),
        )
    });
    let h2 = l
        .register_socket(TcpSocket::new(ours, Linger::Background, true).unwrap())
        .unwrap();
    l.with_socket(h2, |s| s.send_pattern(MIB)).unwrap();
    let c = l.cleanup().unwrap();
    let line = c.report().unwrap().socket(h2).unwrap().clone();
    assert_eq!(line.outcome, SocketOutcome::Reset);
    assert_eq!(line.bytes_discarded, MIB);
    for p in [p1, p2] {
        let r = p.join().unwrap();
        assert!(r.reset, "the peer sees a connection reset: {r:?}");
        assert_eq!(r.received, 0, "nothing was flushed before the abort");
    }
}

#[test]
fn timeout_linger_blocking_returns_after_flush_or_deadline() {
    let _watchdog = support::watchdog(120);
    let l = Lifecycle::new(Tcp);
    l.startup(V).unwrap();
    let lis = listener();
    // A reading peer: the close returns once everything is flushed.
    let (ours, peer) = pair(&lis).unwrap();
    let reader = slow_peer(peer);
    let h = l
        .register_socket(
            TcpSocket::new(ours, Linger::Timeout(Duration::from_secs(20)), true).unwrap(),
        )
        .unwrap();
    l.with_socket(h, |s| s.send_pattern(MIB)).unwrap();
    let out = l.close_socket(h).unwrap();
    assert_eq!(out.outcome, SocketOutcome::Flushed);
    assert_eq!((out.bytes_flushed, out.bytes_discarded), (MIB, 0));
    assert_eq!(reader.join().unwrap().received, MIB);
    // A peer that never reads: the close returns at the linger deadline and
    // says so; the rest is discarded and counted.
    let (ours, _silent_peer) = pair(&lis).unwrap();
    let linger = Duration::from_millis(300);
    let h = l
        .register_socket(TcpSocket::new(ours, Linger::Timeout(linger), true).unwrap())
        .unwrap();
    l.with_socket(h, |s| s.send_pattern(8 * MIB)).unwrap();
    let t = Instant::now();
    let out = l.close_socket(h).unwrap();
    let took = t.elapsed();
    assert!(
        took >= linger && took < linger + Duration::from_secs(5),
        "{took:?}"
    );
    assert_eq!(out.outcome, SocketOutcome::LingerTimeout);
    assert!(out.bytes_discarded > 0);
    assert_eq!(out.bytes_flushed + out.bytes_discarded, 8 * MIB);
    l.cleanup().unwrap();
}

#[test]
fn timeout_linger_nonblocking_would_block_and_the_handle_stays_valid() {
    let _watchdog = support::watchdog(120);
    let l = Lifecycle::new(Tcp);
    l.startup(V).unwrap();
    let lis = listener();
    let (ours, peer) = pair(&lis).unwrap();
    let h = l
        .register_socket(
            TcpSocket::new(ours, Linger::Timeout(Duration::from_secs(1)), false).unwrap(),
        )
        .unwrap();
    l.with_socket(h, |s| s.send_pattern(MIB)).unwrap();
    assert_eq!(l.close_socket(h), Err(Error::WouldBlock));
    assert_eq!(
        l.with_socket(h, |s| s.unsent()).unwrap(),
        MIB,
        "nothing was started"
    );
    // The application keeps the socket and may still use it.
    l.with_socket(h, |s| s.send_pattern(10)).unwrap();
    let reader = slow_peer(peer);
    // Once its queue is out, the same close succeeds.
    while l.with_socket(h, |s| s.unsent()).unwrap() > 0 {
        // The application's own send loop: write what the kernel takes.
        let noop = &mut std::task::Context::from_waker(std::task::Waker::noop());
        let _ = l.with_socket(h, |s| s.poll_flush(noop)).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(l.close_socket(h).unwrap().outcome, SocketOutcome::Flushed);
    assert_eq!(reader.join().unwrap().received, MIB + 10);
    l.cleanup().unwrap();
}
