//! The optional features, checked from outside: `serde` (the report types
//! serialize) and `tracing` (a span per final cleanup, an event per phase,
//! a warning per failed hook). Run with `cargo test --all-features --test
//! features`; without the features this file compiles to nothing.
#![cfg(all(not(loom), any(feature = "serde", feature = "tracing")))]

mod support;

use provider_lifecycle::*;
use support::*;

const V: Version = Version::new(2, 2);

/// A final cleanup with one resource whose release fails, one socket reset.
fn a_report() -> DrainReport {
    let log = Log::default();
    let p = FakeProvider::with_resources(&["table", "pool"]);
    p.knobs.fail_release.lock().push("pool".into());
    let l = Lifecycle::new(p);
    l.startup(V).unwrap();
    let (mut s, _) = FakeSocket::new(1, SockPlan::default(), &log);
    s.write(5);
    l.register_socket(s).unwrap();
    l.cleanup().unwrap().into_report().unwrap()
}

/// One test for both features, tracing first: `tracing` caches each
/// callsite's interest process-wide, so a cleanup run concurrently by
/// another test with no subscriber could make the capture miss events.
#[test]
fn features_tracing_then_serde() {
    let _watchdog = watchdog(120);
    #[cfg(feature = "tracing")]
    tracing_a_span_per_final_cleanup_and_events_per_phase_and_failure();
    #[cfg(feature = "tracing")]
    tracing_a_wait_startup_that_gives_up_says_so();
    #[cfg(feature = "tracing")]
    tracing_the_drain_warns_while_it_still_waits();
    #[cfg(feature = "tracing")]
    tracing_an_abandoning_drain_warns_then_and_there();
    #[cfg(feature = "tracing")]
    tracing_a_failed_initialization_is_logged_with_its_cause();
    #[cfg(feature = "serde")]
    serde_the_report_serializes_with_every_field();
}

#[cfg(feature = "serde")]
fn serde_the_report_serializes_with_every_field() {
    let report = a_report();
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["generation"], 0);
    assert_eq!(json["sockets"][0]["bytes_discarded"], 5);
    assert_eq!(json["sockets"][0]["outcome"], "Reset");
    assert_eq!(
        json["sockets"][0]["handle"],
        report.sockets[0].handle.to_raw()
    );
    assert_eq!(json["resources"][0]["name"], "pool");
    assert!(json["resources"][0]["outcome"]["Failed"].is_string());
    assert_eq!(json["resources"][1]["outcome"], "Ok");
    assert_eq!(json["operations"]["waited_for"], 0);
    assert!(json["timings"]["total"].is_object());
    assert_eq!(json["summarized"]["sockets"], 0);
}

#[cfg(feature = "tracing")]
mod tracing_capture {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use parking_lot::Mutex;
    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Level, Metadata, Subscriber};

    /// What the subscriber saw: span names, and each event's level and fields.
    #[derive(Default, Debug)]
    pub(crate) struct Seen {
        pub(crate) spans: Vec<String>,
        pub(crate) events: Vec<(Level, String)>,
    }

    pub(crate) struct Capture(pub Arc<Mutex<Seen>>, AtomicU64);

    impl Capture {
        pub(crate) fn new() -> (Capture, Arc<Mutex<Seen>>) {
            let seen = Arc::new(Mutex::new(Seen::default()));
            (Capture(seen.clone(), AtomicU64::new(1)), seen)
        }
    }

    struct Fields(String);

    impl Visit for Fields {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            self.0.push_str(&format!("{}={:?} ", field.name(), value));
        }
    }

    impl Subscriber for Capture {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, span: &Attributes<'_>) -> Id {
            let mut f = Fields(String::new());
            span.record(&mut f);
            self.0
                .lock()
                .spans
                .push(format!("{} {}", span.metadata().name(), f.0));
            Id::from_u64(self.1.fetch_add(1, Ordering::Relaxed))
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let mut f = Fields(String::new());
            event.record(&mut f);
            self.0.lock().events.push((*event.metadata().level(), f.0));
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }
}

#[cfg(feature = "tracing")]
fn tracing_a_span_per_final_cleanup_and_events_per_phase_and_failure() {
    let (capture, seen) = tracing_capture::Capture::new();
    let report = tracing::subscriber::with_default(capture, a_report);
    assert!(!report.is_clean());
    let seen = seen.lock();
    assert_eq!(seen.spans.len(), 1, "{seen:?}");
    assert!(
        seen.spans[0].starts_with("final_cleanup generation=0"),
        "{seen:?}"
    );
    for phase in ["operations", "sockets", "resources", "prepare_unload"] {
        assert!(
            seen.events
                .iter()
                .any(|(l, f)| *l == tracing::Level::INFO
                    && f.contains(&format!("phase=\"{phase}\""))),
            "no event for phase {phase}: {seen:?}"
        );
    }
    let warnings: Vec<_> = seen
        .events
        .iter()
        .filter(|(l, _)| *l == tracing::Level::WARN)
        .map(|(_, f)| f.as_str())
        .collect();
    assert!(
        warnings.iter().any(|f| f.contains("resource=pool")),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().any(|f| f.contains("discarded=5")),
        "{warnings:?}"
    );
}

/// L9, L16: a `Wait` startup that gives up at the drain deadline (behind its
/// own thread's token) logs a warning naming the operations outstanding.
#[cfg(feature = "tracing")]
fn tracing_a_wait_startup_that_gives_up_says_so() {
    use std::time::Duration;
    let config = Config::new().with_drain_deadline(Duration::from_millis(50));
    let l: &'static Lifecycle<FakeProvider> =
        Box::leak(Box::new(lifecycle_with(config, FakeProvider::default())));
    l.startup(V).unwrap();
    let token = l.token().unwrap();
    let cleaner = std::thread::spawn(move || l.cleanup());
    token.wait_draining();
    let (capture, seen) = tracing_capture::Capture::new();
    let refused =
        tracing::subscriber::with_default(capture, || l.startup_with(V, StartupPolicy::Wait));
    assert_eq!(refused, Err(Error::InProgress));
    drop(token);
    cleaner.join().unwrap().unwrap();
    let seen = seen.lock();
    assert!(
        seen.events
            .iter()
            .any(|(level, f)| *level == tracing::Level::WARN
                && f.contains("gave up")
                && f.contains("outstanding=1")),
        "{seen:?}"
    );
}

/// L16, D1: a final cleanup still waiting for an operation past its drain
/// deadline says so as it happens: the token's holder releases it only once
/// it has seen the warning (a drain that warned only afterwards would never
/// finish; the watchdog would fail the test).
#[cfg(feature = "tracing")]
fn tracing_the_drain_warns_while_it_still_waits() {
    use std::time::Duration;
    let config = Config::new().with_drain_deadline(Duration::from_millis(30));
    let l: &'static Lifecycle<FakeProvider> =
        Box::leak(Box::new(lifecycle_with(config, FakeProvider::default())));
    l.startup(V).unwrap();
    let token = l.token().unwrap();
    let (capture, seen) = tracing_capture::Capture::new();
    let watcher = {
        let seen = seen.clone();
        std::thread::spawn(move || {
            token.wait_draining();
            loop {
                let warned = seen.lock().events.iter().any(|(level, f)| {
                    *level == tracing::Level::WARN && f.contains("still waiting")
                });
                if warned {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            drop(token);
        })
    };
    let report = tracing::subscriber::with_default(capture, || l.cleanup())
        .unwrap()
        .into_report()
        .unwrap();
    watcher.join().unwrap();
    assert!(report.operations.overran_deadline);
    let seen = seen.lock();
    let warning = seen
        .events
        .iter()
        .find(|(_, f)| f.contains("still waiting"))
        .map(|(_, f)| f.clone())
        .unwrap();
    assert!(warning.contains("outstanding=1"), "{warning}");
}

/// L16: a bounded guard wait that gives up says so as it happens, naming
/// how many operations it abandoned.
#[cfg(feature = "tracing")]
fn tracing_an_abandoning_drain_warns_then_and_there() {
    use std::time::Duration;
    let config = Config::new()
        .with_drain_deadline(Duration::from_millis(10))
        .with_guard_wait_limit(Duration::from_millis(30));
    let l = lifecycle_with(config, FakeProvider::default());
    l.startup(V).unwrap();
    std::mem::forget(l.token().unwrap());
    let (capture, seen) = tracing_capture::Capture::new();
    let report = tracing::subscriber::with_default(capture, || l.cleanup())
        .unwrap()
        .into_report()
        .unwrap();
    assert_eq!(report.operations.abandoned, 1);
    let seen = seen.lock();
    let warning = seen
        .events
        .iter()
        .find(|(level, f)| *level == tracing::Level::WARN && f.contains("abandoned"))
        .map(|(_, f)| f.clone())
        .expect("the abandon is logged");
    assert!(warning.contains("outstanding=1"), "{warning}");
}

/// A failed `initialize` is logged with its error and its cause.
#[cfg(feature = "tracing")]
fn tracing_a_failed_initialization_is_logged_with_its_cause() {
    let p = FakeProvider::default();
    p.knobs
        .fail_init
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let l = lifecycle_with(Config::new(), p);
    let (capture, seen) = tracing_capture::Capture::new();
    let e = tracing::subscriber::with_default(capture, || l.startup(V)).unwrap_err();
    assert_eq!(e.wsa_code(), 10091);
    let seen = seen.lock();
    let line = seen
        .events
        .iter()
        .find(|(level, f)| *level == tracing::Level::WARN && f.contains("initialization failed"))
        .map(|(_, f)| f.clone())
        .expect("the failure is logged");
    assert!(line.contains("fake init failure"), "{line}");
    assert!(line.contains("WSASYSNOTREADY"), "{line}");
}
