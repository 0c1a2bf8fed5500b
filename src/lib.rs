//! The lifecycle contract of a network service provider — a Winsock SPI or
//! layered provider, a driver shim, a plug-in host, any runtime with a global
//! start/stop pair — as a reusable, model-checked component.
//!
//! Callers pair every startup with one cleanup; each cleanup decrements a
//! per-process reference count; at zero the provider **first** finishes
//! transmitting unsent data on sockets configured for a graceful close,
//! **then** frees every resource, and is immediately re-initializable.
//! [`Lifecycle`] does exactly that, and nothing here calls Winsock: a provider
//! embeds a `Lifecycle` and calls it from its own `WSPStartup`/`WSPCleanup`.
//!
//! # Example
//!
//! ```
//! use provider_lifecycle::*;
//!
//! struct Echo;
//!
//! impl Provider for Echo {
//!     type Socket = NoSocket;
//!     type State = ();
//!     fn versions(&self) -> VersionRange {
//!         VersionRange::new(Version::new(1, 1), Version::new(2, 2))
//!     }
//!     fn initialize(&self, init: &mut Registrar) -> Result<(), Error> {
//!         init.register_fn("worker pool", || Ok(()));
//!         Ok(())
//!     }
//! }
//!
//! static ECHO: Lifecycle<Echo> = Lifecycle::new(Echo);
//!
//! // Two callers start the provider; the first one initializes it.
//! let a = ECHO.startup(Version::new(2, 2))?;
//! let b = ECHO.startup(Version::new(3, 0))?; // above the range: negotiates 2.2
//! assert!(a.initialized && !b.initialized);
//! assert_eq!(b.negotiated.version, Version::new(2, 2));
//! assert_eq!(ECHO.count(), 2);
//!
//! // Provider calls run inside an operation guard.
//! {
//!     let _op = ECHO.enter()?;
//! }
//!
//! // The first cleanup only decrements; the last one drains and reports.
//! assert!(!ECHO.cleanup()?.is_final());
//! let done = ECHO.cleanup()?;
//! let report = done.report().expect("final cleanup");
//! assert!(report.is_clean());
//! assert_eq!(report.resources[0].name, "worker pool");
//! assert_eq!(ECHO.state(), State::Released);
//!
//! // One cleanup too many changes nothing.
//! // The error says which of WSANOTINITIALISED's conditions it met.
//! assert_eq!(ECHO.cleanup(), Err(Error::NotInitialised(NotActive::Unpaired)));
//! assert_eq!(ECHO.cleanup().unwrap_err().wsa_code(), 10093);
//!
//! // And it restarts at once, in a new generation.
//! let c = ECHO.startup(Version::new(2, 0))?;
//! assert_eq!(c.generation, 1);
//! ECHO.cleanup()?;
//! # Ok::<(), Error>(())
//! ```
//!
//! # States
//!
//! | state | meaning | startup | cleanup | new sockets / operations |
//! |---|---|---|---|---|
//! | Uninitialized | never started | initializes, count = 1 | `NotInitialised` | `NotInitialised` |
//! | Active | count ≥ 1 | count += 1 | count -= 1; at 0 → Draining | allowed |
//! | Draining | the final cleanup is tearing down | [`StartupPolicy::Wait`] (default): wait, then initialize afresh; or `InProgress` | `NotInitialised` | `NotInitialised` |
//! | Released | torn down, ready | initializes afresh (new generation) | `NotInitialised` | `NotInitialised` |
//!
//! The final cleanup (rule [L6](crate::contract#L6)) flips Active → Draining in one atomic step, then
//! on the calling thread: (1) calls [`Provider::cancel_pending`] and waits for
//! every [`OperationGuard`]; (2) closes sockets still open by the
//! [`OpenSocketPolicy`]; (3) flushes gracefully closed sockets until done,
//! their own linger deadline or the drain deadline, reporting every byte not
//! delivered; (4) releases resources in reverse order of registration;
//! (5) runs [`Provider::prepare_unload`]; (6) becomes Released with the next
//! generation and wakes waiting startups. It returns a [`DrainReport`].
//!
//! # Sockets
//!
//! Sockets implement [`Socket`]; flushing is event-driven: `poll_flush` has
//! the `std::task` shape of `AsyncWrite::poll_flush`, and the lifecycle
//! polls a socket only after the waker it was given fires, or at a deadline.
//! A close with [`Linger::Background`] returns at once and the lifecycle's
//! background flusher finishes it while Active ([`BackgroundFlush`]). The
//! whole contract, rule by rule, is in [`contract`].
//!
//! # Correctness
//!
//! - The state, count and generation are one packed `AtomicU64`. A startup
//!   is one `fetch_add` and a cleanup one `fetch_sub` (a *checked add*: the
//!   state is read from the word the add returns, and an add that should
//!   not have happened is undone); only a compare-and-swap of Active with
//!   count exactly 0 ends a generation. So the count is never lost and never
//!   stays negative, never passes its limit, and a startup racing the 1 → 0
//!   transition never revives the generation being torn down (the rules and
//!   their argument are in `src/state.rs`; loom checks each).
//! - Initialization and teardown run exactly once per generation; user hooks
//!   run with no lock of the lifecycle held, and their panics are caught and
//!   reported.
//! - No thread outlives a cleanup ([L13](crate::contract#L13)): the drain
//!   runs on the cleanup's own thread, and the background flusher thread
//!   (started by the first background close of a generation) is joined by
//!   the final cleanup before it touches any socket.
//! - No panic in user code (hooks, sockets, their `Drop`, an error's
//!   `Display`) escapes a cleanup or leaves the state in Draining
//!   ([L14](crate::contract#L14)): the teardown's frame publishes Released
//!   when it is dropped, however the teardown ends.
//! - `tests/loom.rs` model-checks the races (run with
//!   `RUSTFLAGS="--cfg loom" cargo test --release --test loom`);
//!   `tests/state_machine.rs` checks the whole state machine against a
//!   reference model with proptest; every rule of the contract has a test
//!   named after its id.
//!
//! # Optional features
//!
//! | feature | adds |
//! |---|---|
//! | `serde` | `Serialize` for the [`DrainReport`] and everything in it ([`SocketReport`], [`ResourceReport`], [`HookOutcome`], ...), [`State`], [`OpenSocketPolicy`], [`BackgroundFlush`] and [`Linger`]: a report can be logged as JSON |
//! | `tracing` | events from the final cleanup: each phase at INFO when it ends; at WARN, a failed hook, release or socket, the drain deadline passing while the drain still waits (at that moment, naming what is outstanding, and again at intervals), guards abandoned by a bounded wait, and a failed `initialize` with its cause |
//!
//! Neither is on by default; both leave the hot paths unchanged.
//!
//! # Performance
//!
//! Startup and cleanup while the count stays at least 1 take no lock and
//! never retry: one `fetch_add` and one `fetch_sub`, the same two
//! read-modify-writes as an `Arc` clone and drop. [`Lifecycle::enter`]
//! counts on a per-thread, cache-padded shard (no allocation, no syscall),
//! so the guard hot path scales with threads. `benches/contention.rs`
//! measures both against `Arc`, `Mutex` and peer-crate baselines in the same
//! run, and `benches/drain.rs` the final cleanup against dropping the same
//! objects; the README quotes the ratios and the command that produces them.

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
// The loom build is the crate testing itself: keep `cfg(loom)` out of the
// rendered "Available on" notes.
#![cfg_attr(docsrs, doc(auto_cfg(hide(loom))))]

mod background;
mod close;
mod config;
pub mod contract;
mod deadline;
pub mod docs;
mod error;
mod flush;
mod generation;
mod guard;
mod handle;
mod helper;
mod hook;
mod lifecycle;
mod linger;
mod provider;
mod raw;
mod registry;
mod report;
mod resource;
mod session;
mod socket;
mod state;
mod sync;
mod thread;
mod version;

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub use config::{
    BackgroundFlush, Config, DEFAULT_DRAIN_DEADLINE, OpenSocketPolicy, StartupPolicy,
};
pub use error::{BoxError, Cause, Error, NotActive};
pub use generation::StateRef;
pub use guard::{OperationGuard, OperationToken, Tracked};
pub use handle::SocketHandle;
pub use helper::{HelperJoin, HelperTask, Spawner, std_spawner};
pub use lifecycle::{Cleanup, Lifecycle, OwnedToken, Snapshot, Started};
pub use linger::Linger;
pub use provider::{Provider, Registrar};
pub use report::{
    DrainReport, HookOutcome, OperationsReport, PhaseTimings, ResourceReport, SocketFaults,
    SocketOutcome, SocketPhase, SocketReport, SummarizedSockets,
};
pub use resource::Resource;
pub use session::Session;
pub use socket::{NoSocket, Socket};
pub use state::{MAX_COUNT, State};
pub use version::{Negotiated, Version, VersionRange, VersionSet};

/// Compile-time proof of which public types can be shared across threads.
#[allow(dead_code)]
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    const fn send<T: Send>() {}
    struct P;
    impl Provider for P {
        type Socket = NoSocket;
        type State = ();
        fn versions(&self) -> VersionRange {
            VersionRange::new(Version::new(1, 0), Version::new(1, 0))
        }
        fn initialize(&self, _: &mut Registrar) -> Result<(), Error> {
            Ok(())
        }
    }
    send_sync::<Lifecycle<P>>();
    send_sync::<Config>();
    send_sync::<Error>();
    send_sync::<DrainReport>();
    send_sync::<SocketReport>();
    send_sync::<Cleanup>();
    send_sync::<Started>();
    send_sync::<Snapshot>();
    send_sync::<SocketHandle>();
    send_sync::<State>();
    send_sync::<Version>();
    send_sync::<VersionRange>();
    send_sync::<OperationToken<'static>>();
    send::<Registrar>();
    send::<Session<'static, P>>();
    send_sync::<Session<'static, P>>();
};
