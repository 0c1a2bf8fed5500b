//! A layered provider over a base provider, both exported through the shim
//! and reached only through `WSPStartup` pointers and their tables: the
//! layer's first startup starts the base through the base's `WSPStartup`
//! with the upcall table it received, validates the base table (W5), closes
//! its base sockets with `SO_LINGER {1, 0}` and calls the base cleanup once
//! per base startup. Every call order is asserted.

mod support;

use std::sync::atomic::Ordering::SeqCst;
use std::task::{Context, Poll};

use parking_lot::Mutex;
use provider_lifecycle::*;
use provider_lifecycle_winsock::sys::*;
use provider_lifecycle_winsock::*;
use support::*;

/// The base provider's `WSPStartup` the layer uses (switchable per test).
static LOWER: Mutex<LPWSPSTARTUP> = Mutex::new(MEM_STARTUP);

/// The base's startup, but its table has a null `lpWSPSend` (W5).
unsafe extern "system" fn broken_startup(
    v: u16,
    d: *const WSPDATA,
    p: *const WSAPROTOCOL_INFOW,
    u: WSPUPCALLTABLE,
    t: *mut WSPPROC_TABLE,
) -> i32 {
    // SAFETY: forwarded with the caller's pointers.
    let r = unsafe { WSPStartup(v, d, p, u, t) };
    if r == 0 {
        // SAFETY: the caller's table, just filled.
        unsafe { (*t).lpWSPSend = None };
    }
    r
}

struct Layer;

struct LayerState {
    shim: Shim,
    lower: Lower,
}

impl Drop for LayerState {
    fn drop(&mut self) {
        log("layer state dropped: lower cleanup next");
    }
}

struct LayerSocket {
    lower_socket: SOCKET,
    lower_table: WSPPROC_TABLE,
}

impl Socket for LayerSocket {
    fn unsent(&self) -> u64 {
        0
    }
    fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }
    fn abort(&mut self) -> Result<(), BoxError> {
        Ok(())
    }
    fn release(&mut self) -> Result<(), BoxError> {
        log("layer closes its base socket abortively");
        // SAFETY: the base is still started (the layer's state, which holds
        // the base startup, is dropped after the sockets), and this is its
        // socket.
        unsafe { close_abortively(&self.lower_table, self.lower_socket) }?;
        Ok(())
    }
}

impl WinsockSocket for LayerSocket {
    fn set_linger(&mut self, _: Linger) {}
    fn send(&mut self, buffers: &[&[u8]]) -> Result<u32, Error> {
        let data: Vec<u8> = buffers.concat();
        let (r, n, e) = send(&self.lower_table, self.lower_socket, &data);
        if r == 0 { Ok(n) } else { Err(code_to_error(e)) }
    }
}

impl Provider for Layer {
    type Socket = LayerSocket;
    type State = LayerState;
    fn versions(&self) -> VersionRange {
        VersionRange::new(Version::new(2, 2), Version::new(2, 2))
    }
    fn initialize(&self, _: &mut Registrar) -> Result<LayerState, Error> {
        log("layer initialize");
        let (upcalls, protocol) = startup_context().expect("inside WSPStartup");
        // The base gets its own catalog entry (the layer's + 1000), so a
        // context the nested startup left behind would show.
        let below = protocol.map(|mut p| {
            p.dwCatalogEntryId += 1000;
            p
        });
        let p = below.as_ref().map_or(std::ptr::null(), |p| p as *const _);
        // SAFETY: the base's WSPStartup; `p` is null or this call's info.
        let lower = unsafe { Lower::start(*LOWER.lock(), Version::new(2, 2), p, upcalls) }?;
        // The base's WSPStartup ran nested on this thread: the layer's own
        // context is back once it returned.
        let after = startup_context().map(|(_, p)| p.map(|p| p.dwCatalogEntryId));
        log(format!("layer context after the lower startup: {after:?}"));
        Ok(LayerState {
            shim: Shim::new(),
            lower,
        })
    }
}

static LAYER: Lifecycle<Layer> = Lifecycle::new(Layer);

impl WinsockProvider for Layer {
    const DESCRIPTION: &'static str = "layered test provider";
    fn lifecycle() -> &'static Lifecycle<Layer> {
        &LAYER
    }
    fn shim(state: &LayerState) -> &Shim {
        &state.shim
    }
    fn open_socket(&self, state: &LayerState, _: &SocketRequest) -> Result<LayerSocket, Error> {
        let (s, e) = socket(state.lower.table(), None);
        if s == INVALID_SOCKET {
            return Err(code_to_error(e));
        }
        Ok(LayerSocket {
            lower_socket: s,
            lower_table: *state.lower.table(),
        })
    }
}

const LAYER_STARTUP: LPWSPSTARTUP = Some(wsp_startup::<Layer>);

fn serial() -> parking_lot::MutexGuard<'static, ()> {
    let g = SERIAL.lock();
    fresh();
    *LOWER.lock() = MEM_STARTUP;
    g
}

// L1, L5, L6, W1: the layer's first startup (its context still in force
// after the nested base startup) starts the base once, passing
// the upcall table down; non-final layer cleanups call nothing below; the
// final one closes the layer's sockets (each closing its base socket
// abortively) and only then cleans the base up, once.
#[test]
fn w1_layered_stack_call_order() {
    let _s = serial();
    let _w = watchdog(30);
    let (code, _, t) = start_with(LAYER_STARTUP, 2, 2, table_a());
    assert_eq!(code, 0);
    let (code, _, _) = start_with(LAYER_STARTUP, 2, 2, table_a());
    assert_eq!(code, 0);
    assert_eq!(
        take_log(),
        [
            "layer initialize",
            "mem initialize",
            // A nested WSPStartup restores the outer startup's context.
            "layer context after the lower startup: Some(Some(1001))",
        ],
        "the base started once"
    );
    assert_eq!(MEM.count(), 1);

    let (s, e) = socket(&t, None);
    assert_ne!(s, INVALID_SOCKET, "{e}");
    assert_eq!(send(&t, s, b"through both"), (0, 12, 0));
    assert_eq!(
        take_log(),
        [
            "mem socket af=2",
            // The base's own catalog entry, then the layer's.
            "A create catalog=2001 ctx=true",
            "A create catalog=1001 ctx=true",
        ],
        "the base socket and the layer socket, both through the table passed down"
    );

    assert_eq!(cleanup(&t), (0, 0));
    assert!(
        take_log().is_empty(),
        "a non-final layer cleanup calls nothing below"
    );
    assert_eq!(cleanup(&t), (0, 0));
    assert_eq!(
        take_log(),
        [
            "layer closes its base socket abortively",
            "A close handle",
            "layer state dropped: lower cleanup next",
            "A close handle",
            "mem unload",
        ],
        "the layer's sockets (each closing its base socket), then the layer's \
         own SOCKET values back to ws2_32, then the base cleanup"
    );
    assert_eq!((MEM.count(), MEM.state()), (0, State::Released));
    assert_eq!(
        DELIVERED.load(SeqCst),
        0,
        "SO_LINGER {{1,0}}: reset, nothing flushed"
    );
    assert_eq!(cleanup(&t), (SOCKET_ERROR, 10093));
    assert!(
        take_log().is_empty(),
        "one cleanup too many reaches nothing below"
    );
}

// W5: the base cleanup is called as often as the base startup, across
// layer restarts.
#[test]
fn w5_lower_cleanups_balance_lower_startups_across_restarts() {
    let _s = serial();
    let _w = watchdog(30);
    for round in 0..3 {
        let (code, _, t) = start_with(LAYER_STARTUP, 2, 2, table_b());
        assert_eq!(code, 0, "round {round}");
        assert_eq!(MEM.count(), 1);
        assert_eq!(cleanup(&t), (0, 0));
        assert_eq!(MEM.count(), 0);
    }
    let log = take_log();
    let starts = log.iter().filter(|l| *l == "mem initialize").count();
    let ends = log.iter().filter(|l| *l == "mem unload").count();
    assert_eq!((starts, ends), (3, 3), "{log:?}");
}

// W5: a base table with a null entry fails the layer's startup with
// WSAEINVALIDPROCTABLE (10104); the base startup it made is balanced by one
// base cleanup, and the layer counts nothing.
#[test]
fn w5_null_lower_entry_is_10104_and_the_lower_startup_is_balanced() {
    let _s = serial();
    let _w = watchdog(30);
    *LOWER.lock() = Some(broken_startup);
    let (code, _, t) = start_with(LAYER_STARTUP, 2, 2, table_a());
    assert_eq!(code, 10104);
    assert!(t.lpWSPCleanup.is_none(), "no layer table handed out");
    assert_eq!(LAYER.count(), 0);
    assert_eq!(
        take_log(),
        ["layer initialize", "mem initialize", "mem unload"],
        "one base startup, one base cleanup"
    );
    assert_eq!((MEM.count(), MEM.state()), (0, State::Released));
    // A good base again: the layer starts normally.
    *LOWER.lock() = MEM_STARTUP;
    let (code, _, t) = start_with(LAYER_STARTUP, 2, 2, table_a());
    assert_eq!(code, 0);
    assert_eq!(cleanup(&t), (0, 0));
}

// W5: a base that fails its own startup fails the layer's with
// WSAEPROVIDERFAILEDINIT (10106) or its version refusal; nothing to balance.
#[test]
fn w5_failing_lower_startup_fails_the_layer() {
    let _s = serial();
    let _w = watchdog(30);
    unsafe extern "system" fn refusing(
        _: u16,
        _: *const WSPDATA,
        _: *const WSAPROTOCOL_INFOW,
        _: WSPUPCALLTABLE,
        _: *mut WSPPROC_TABLE,
    ) -> i32 {
        log("base refuses");
        10091
    }
    *LOWER.lock() = Some(refusing);
    let (code, _, _) = start_with(LAYER_STARTUP, 2, 2, table_a());
    assert_eq!(code, 10106);
    assert_eq!(take_log(), ["layer initialize", "base refuses"]);
    assert_eq!(LAYER.count(), 0);
}

// W1: the startup context exists only while a WSPStartup runs on this
// thread; a nested one (the base's, with its own catalog entry) restores
// the layer's, and nothing is left once the outer one returned.
#[test]
fn w1_startup_context_lives_only_inside_a_startup() {
    let _s = serial();
    let _w = watchdog(30);
    assert!(startup_context().is_none());
    let (code, _, t) = start_with(LAYER_STARTUP, 2, 2, table_a());
    assert_eq!(code, 0);
    assert!(
        startup_context().is_none(),
        "cleared when WSPStartup returned"
    );
    assert!(
        take_log().contains(&"layer context after the lower startup: Some(Some(1001))".to_owned()),
        "the layer's own context, not the base's (2001)"
    );
    assert_eq!(cleanup(&t), (0, 0));
}

// W5: Lower::cleanup reports the lower cleanup's own answer: Ok once, and
// the lower provider's 10093 when it was already cleaned up below.
#[test]
fn w5_lower_cleanup_reports_the_lower_answer() {
    let _s = serial();
    let _w = watchdog(30);
    let info = protocol();
    // SAFETY: the base's WSPStartup with a protocol info for the call.
    let lower = unsafe { Lower::start(MEM_STARTUP, Version::new(2, 2), &info, table_a()) }.unwrap();
    assert_eq!(lower.version(), Version::new(2, 2));
    assert_eq!(lower.cleanup(), Ok(()));
    // SAFETY: as above.
    let lower = unsafe { Lower::start(MEM_STARTUP, Version::new(2, 2), &info, table_a()) }.unwrap();
    // Someone else cleans the base up first: the lower cleanup is one too many.
    assert_eq!(cleanup(lower.table()), (0, 0));
    assert_eq!(
        lower.cleanup(),
        Err(Error::NotInitialised(NotActive::Reported))
    );
}
