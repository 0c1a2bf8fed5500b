//! A provider whose sockets are real loopback TCP connections, driven through
//! the whole lifecycle: nested startups, data that peers read slowly, one
//! close per linger mode, the final cleanup's drain report, and an immediate
//! restart. Exits non-zero if a gracefully closed socket lost a byte.
//!
//! Run: `cargo run --example tcp_provider`

#[path = "common/tcp.rs"]
mod tcp;

use std::net::TcpListener;
use std::process::ExitCode;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use provider_lifecycle::{
    Config, Error, Lifecycle, Linger, OpenSocketPolicy, Provider, Registrar, Version, VersionRange,
};
use tcp::{PeerResult, TcpSocket, pair, slow_reader};

/// The provider. Its per-generation state is the listener `initialize`
/// opens: reachable only through a guard, closed by the final cleanup after
/// the sockets.
#[derive(Default)]
struct TcpProvider;

/// The generation's state.
struct Listening(TcpListener);

impl Drop for Listening {
    fn drop(&mut self) {
        println!("  state dropped: listener closed");
    }
}

impl Provider for TcpProvider {
    type Socket = TcpSocket;
    type State = Listening;

    fn versions(&self) -> VersionRange {
        VersionRange::new(Version::new(1, 1), Version::new(2, 2))
    }

    fn initialize(&self, init: &mut Registrar) -> Result<Listening, Error> {
        // `?` on an io::Error: a failed bind fails the startup with
        // SystemNotReady, the io::Error as its source.
        let listener = TcpListener::bind("127.0.0.1:0")?;
        println!(
            "  initialize: generation {} listening on {}",
            init.generation(),
            listener.local_addr()?
        );
        init.register_fn("address book", || {
            println!("  release: address book");
            Ok(())
        });
        Ok(Listening(listener))
    }

    fn prepare_unload(&self) -> Result<(), provider_lifecycle::BoxError> {
        println!("  prepare-to-unload");
        Ok(())
    }
}

const MIB: u64 = 1024 * 1024;

struct Conn {
    name: &'static str,
    linger: Linger,
    blocking: bool,
    graceful: bool,
    reader: JoinHandle<PeerResult>,
}

fn main() -> ExitCode {
    let started = Instant::now();
    let provider = Lifecycle::with_config(
        TcpProvider,
        Config::new()
            .with_open_socket_policy(OpenSocketPolicy::Graceful)
            .with_drain_deadline(Duration::from_secs(20)),
    );

    println!("1. nested startups");
    let a = provider.startup(Version::new(2, 2)).expect("startup A");
    println!(
        "  A: negotiated {} (initialized: {})",
        a.negotiated.version, a.initialized
    );
    let mut b = provider.session(Version::new(3, 0)).expect("session B");
    println!(
        "  B: asked 3.0, negotiated {} (high {}); count = {}",
        b.started().negotiated.version,
        b.started().negotiated.high_version,
        provider.count()
    );
    assert_eq!(
        provider.startup(Version::new(1, 0)).unwrap_err(),
        Error::VersionNotSupported
    );

    println!("2. five connections, 2 MiB each, peers reading slowly");
    // The listener is the generation's state: reached through a guard.
    let guard = provider.enter().expect("active");
    let listener = guard.state().0.try_clone().expect("listener clone");
    drop(guard);
    let specs = [
        ("background", Linger::Background, true, true),
        ("abort", Linger::Abort, true, false),
        (
            "timeout 5s",
            Linger::Timeout(Duration::from_secs(5)),
            true,
            true,
        ),
        (
            "nonblock 1s",
            Linger::Timeout(Duration::from_secs(1)),
            false,
            true,
        ),
        ("left open", Linger::Background, true, true),
    ];
    let mut conns = Vec::new();
    let mut handles = Vec::new();
    for (name, linger, blocking, graceful) in specs {
        let (ours, peer) = pair(&listener).expect("loopback pair");
        let reader = std::thread::spawn(move || {
            slow_reader(
                peer,
                64 * 1024,
                Duration::from_millis(2),
                Duration::from_secs(30),
            )
        });
        let socket = TcpSocket::new(ours, linger, blocking).expect("socket");
        let h = provider.register_socket(socket).expect("register");
        provider
            .with_socket(h, |s| s.send_pattern(2 * MIB))
            .expect("send");
        handles.push(h);
        conns.push(Conn {
            name,
            linger,
            blocking,
            graceful,
            reader,
        });
    }
    drop(listener);

    println!("3. closing with each linger mode");
    for (i, c) in conns.iter().enumerate().take(4) {
        let t = Instant::now();
        match provider.close_socket(handles[i]) {
            Ok(out) => println!(
                "  {:<12} {:?} (blocking: {}): {:?}, {} flushed, {} discarded, in {:?}",
                c.name,
                c.linger,
                c.blocking,
                out.outcome,
                out.bytes_flushed,
                out.bytes_discarded,
                t.elapsed()
            ),
            Err(e) => println!(
                "  {:<12} {:?} (blocking: {}): {e}; the handle stays valid",
                c.name, c.linger, c.blocking
            ),
        }
    }
    assert!(matches!(
        provider.close_socket(handles[0]),
        Err(Error::NotSocket)
    ));

    println!("4. cleanups: B (not final), then A (final)");
    let first = b.end().expect("cleanup B");
    println!("  B: {first:?}");
    let report = match provider.cleanup().expect("cleanup A") {
        provider_lifecycle::Cleanup::Final(r) => r,
        other => panic!("expected the final cleanup, got {other:?}"),
    };
    println!("{report}");

    println!("5. restart at once");
    let again = provider.startup(Version::new(2, 2)).expect("restart");
    println!(
        "  state {:?}, count {}, generation {}, sockets {}",
        provider.state(),
        provider.count(),
        again.generation,
        provider.open_sockets()
    );
    provider.cleanup().expect("final cleanup of generation 1");

    println!("6. what the peers received");
    let mut lost = false;
    println!(
        "  {:<12} {:>10} {:>9} {:>6}  verdict",
        "socket", "received", "in order", "reset"
    );
    for c in conns {
        let r = c.reader.join().expect("reader");
        let verdict = if c.graceful {
            if r.received == 2 * MIB && r.in_order {
                "every byte, in order"
            } else {
                lost = true;
                "LOST DATA"
            }
        } else if r.reset || r.received < 2 * MIB {
            "reset, unsent data discarded (reported)"
        } else {
            "abort delivered everything before the reset"
        };
        println!(
            "  {:<12} {:>10} {:>9} {:>6}  {verdict}",
            c.name, r.received, r.in_order, r.reset
        );
    }
    println!("done in {:?}", started.elapsed());
    if lost {
        eprintln!("a graceful socket lost data");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
