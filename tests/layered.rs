//! A layered provider over a base provider, both built on this crate.
//!
//! The layer's first startup starts the lower provider; non-final layer
//! cleanups call nothing below; the final layer cleanup closes the layer's
//! own sockets (each closing its lower socket) before it calls the lower
//! cleanup, exactly as many times as it started the lower provider.
#![cfg(not(loom))]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use parking_lot::Mutex;
mod support;

use provider_lifecycle::*;

/// One ordered log shared by both layers.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, s: impl Into<String>) {
        self.0.lock().push(s.into());
    }
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock())
    }
}

const V: Version = Version::new(2, 2);

// --- the base provider ------------------------------------------------------

struct Base {
    log: Log,
    fail_init: AtomicBool,
}

struct BaseSocket {
    id: u32,
    unsent: u64,
    linger: Linger,
    log: Log,
}

impl Socket for BaseSocket {
    fn linger(&self) -> Linger {
        self.linger
    }
    fn unsent(&self) -> u64 {
        self.unsent
    }
    fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.unsent = 0;
        Poll::Ready(Ok(()))
    }
    fn abort(&mut self) -> Result<(), BoxError> {
        self.log.push(format!("base abort {}", self.id));
        self.unsent = 0;
        Ok(())
    }
    fn release(&mut self) -> Result<(), BoxError> {
        self.log.push(format!("base release {}", self.id));
        Ok(())
    }
}

impl Provider for Base {
    type Socket = BaseSocket;
    type State = ();
    fn versions(&self) -> VersionRange {
        VersionRange::new(Version::new(2, 0), Version::new(2, 2))
    }
    fn initialize(&self, init: &mut Registrar) -> Result<(), Error> {
        if self.fail_init.load(Ordering::SeqCst) {
            self.log.push("base init failed");
            return Err(Error::NetworkDown);
        }
        self.log.push(format!("base init g{}", init.generation()));
        Ok(())
    }
    fn prepare_unload(&self) -> Result<(), BoxError> {
        self.log.push("base unload");
        Ok(())
    }
}

// --- the layer ----------------------------------------------------------------

struct Layer {
    base: Arc<Lifecycle<Base>>,
    log: Log,
}

/// A layer socket owns one lower socket.
struct LayerSocket {
    id: u32,
    lower: SocketHandle,
    base: Arc<Lifecycle<Base>>,
    log: Log,
}

impl Socket for LayerSocket {
    fn linger(&self) -> Linger {
        Linger::Abort
    }
    fn unsent(&self) -> u64 {
        self.base
            .with_socket(self.lower, |s| s.unsent())
            .unwrap_or(0)
    }
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // The lower socket registers the layer's waker: a wake below wakes
        // the flush above.
        match self.base.with_socket(self.lower, |s| s.poll_flush(cx)) {
            Ok(poll) => poll,
            Err(e) => Poll::Ready(Err(e.into())),
        }
    }
    fn abort(&mut self) -> Result<(), BoxError> {
        self.log.push(format!("layer abort {}", self.id));
        // An abortive close of the layer socket is abortive below too: the
        // layer passes SO_LINGER {on, 0} down before closing.
        self.base
            .with_socket(self.lower, |s| s.linger = Linger::Abort)?;
        self.base.close_socket(self.lower)?;
        Ok(())
    }
    fn release(&mut self) -> Result<(), BoxError> {
        self.log.push(format!("layer release {}", self.id));
        Ok(())
    }
}

impl Provider for Layer {
    type Socket = LayerSocket;
    type State = ();
    fn versions(&self) -> VersionRange {
        VersionRange::new(Version::new(2, 2), Version::new(2, 2))
    }
    fn initialize(&self, init: &mut Registrar) -> Result<(), Error> {
        // The layer's first startup starts the lower provider (once per
        // generation); a failure there fails the layer's startup (L2).
        self.log.push("layer -> base startup");
        self.base.startup(V)?;
        let base = Arc::clone(&self.base);
        let log = self.log.clone();
        // Registered first, so released last: after the layer's sockets and
        // every resource registered after it (L6.4 reverse order).
        init.register_fn("lower provider", move || {
            log.push("layer -> base cleanup");
            base.cleanup()?;
            Ok(())
        });
        let log = self.log.clone();
        init.register_fn("layer table", move || {
            log.push("layer table released");
            Ok(())
        });
        self.log.push(format!("layer init g{}", init.generation()));
        Ok(())
    }
    fn prepare_unload(&self) -> Result<(), BoxError> {
        self.log.push("layer unload");
        Ok(())
    }
}

fn stack() -> (Arc<Lifecycle<Base>>, Lifecycle<Layer>, Log) {
    let log = Log::default();
    let base = Arc::new(Lifecycle::new(Base {
        log: log.clone(),
        fail_init: AtomicBool::new(false),
    }));
    let layer = Lifecycle::new(Layer {
        base: Arc::clone(&base),
        log: log.clone(),
    });
    (base, layer, log)
}

fn open_socket(layer: &Lifecycle<Layer>, base: &Arc<Lifecycle<Base>>, log: &Log, id: u32) {
    let lower = base
        .register_socket(BaseSocket {
            id,
            unsent: 10,
            linger: Linger::Background,
            log: log.clone(),
        })
        .unwrap();
    layer
        .register_socket(LayerSocket {
            id,
            lower,
            base: Arc::clone(base),
            log: log.clone(),
        })
        .unwrap();
}

#[test]
fn first_layer_startup_starts_the_base_once() {
    let _watchdog = support::watchdog(120);
    let (base, layer, log) = stack();
    layer.startup(V).unwrap();
    assert_eq!(
        log.take(),
        ["layer -> base startup", "base init g0", "layer init g0"]
    );
    assert_eq!(base.count(), 1);
    layer.startup(V).unwrap();
    layer.startup(V).unwrap();
    assert!(
        log.take().is_empty(),
        "later layer startups call nothing below"
    );
    assert_eq!(base.count(), 1);
    while layer.cleanup().is_ok() {}
}

#[test]
fn non_final_layer_cleanups_call_nothing_below() {
    let _watchdog = support::watchdog(120);
    let (base, layer, log) = stack();
    for _ in 0..3 {
        layer.startup(V).unwrap();
    }
    open_socket(&layer, &base, &log, 1);
    log.take();
    assert!(!layer.cleanup().unwrap().is_final());
    assert!(!layer.cleanup().unwrap().is_final());
    assert!(log.take().is_empty());
    assert_eq!(base.count(), 1);
    assert_eq!(base.open_sockets(), 1);
    layer.cleanup().unwrap();
}

#[test]
fn final_layer_cleanup_closes_its_sockets_then_cleans_up_below_in_order() {
    let _watchdog = support::watchdog(120);
    let (base, layer, log) = stack();
    layer.startup(V).unwrap();
    layer.startup(V).unwrap();
    open_socket(&layer, &base, &log, 1);
    open_socket(&layer, &base, &log, 2);
    log.take();
    layer.cleanup().unwrap();
    let report = layer.cleanup().unwrap();
    assert!(report.is_final());
    assert_eq!(
        log.take(),
        [
            // L6.2: the layer's own sockets, each closing its lower socket.
            "layer abort 1",
            "base abort 1",
            "base release 1",
            "layer release 1",
            "layer abort 2",
            "base abort 2",
            "base release 2",
            "layer release 2",
            // L6.4: resources in reverse order; the lower cleanup last.
            "layer table released",
            "layer -> base cleanup",
            "base unload",
            // L6.5
            "layer unload",
        ]
    );
    assert_eq!(base.state(), State::Released);
    assert_eq!(layer.state(), State::Released);
    let r = report.report().unwrap();
    assert_eq!(r.resources.len(), 2);
    assert!(r.resources.iter().all(|r| r.outcome.is_ok()), "{r}");
}

#[test]
fn the_lower_cleanup_is_called_as_often_as_the_lower_startup_across_restarts() {
    let _watchdog = support::watchdog(120);
    let (base, layer, log) = stack();
    // Another client of the base keeps it alive throughout.
    base.startup(V).unwrap();
    for generation in 0..3 {
        layer.startup(V).unwrap();
        layer.startup(V).unwrap();
        assert_eq!(base.count(), 2, "generation {generation}");
        layer.cleanup().unwrap();
        layer.cleanup().unwrap();
        assert_eq!(base.count(), 1, "the layer gave back exactly what it took");
        assert_eq!(
            base.state(),
            State::Active,
            "the other client's count remains"
        );
    }
    let events = log.take();
    let starts = events
        .iter()
        .filter(|e| *e == "layer -> base startup")
        .count();
    let cleanups = events
        .iter()
        .filter(|e| *e == "layer -> base cleanup")
        .count();
    assert_eq!((starts, cleanups), (3, 3));
    assert!(base.cleanup().unwrap().is_final());
}

#[test]
fn a_failing_lower_startup_fails_the_layer_startup_and_counts_nothing() {
    let _watchdog = support::watchdog(120);
    let (base, layer, log) = stack();
    base.provider().fail_init.store(true, Ordering::SeqCst);
    let e = layer.startup(V).unwrap_err();
    assert_eq!(e, Error::NetworkDown);
    assert_eq!((layer.count(), base.count()), (0, 0));
    assert_eq!(log.take(), ["layer -> base startup", "base init failed"]);
    base.provider().fail_init.store(false, Ordering::SeqCst);
    layer.startup(V).unwrap();
    assert_eq!(base.count(), 1);
    layer.cleanup().unwrap();
    assert_eq!(base.state(), State::Released);
}
