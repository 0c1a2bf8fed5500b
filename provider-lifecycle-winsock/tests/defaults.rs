//! A provider that keeps the trait defaults (no `send_overlapped` of its
//! own): an overlapped send completes at once and is indicated as the SPI
//! says (W4 completion).

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::task::{Context, Poll};

use provider_lifecycle::*;
use provider_lifecycle_winsock::sys::*;
use provider_lifecycle_winsock::*;

struct Plain;

struct PlainState {
    shim: Shim,
}

struct PlainSocket(u64);

impl Socket for PlainSocket {
    fn unsent(&self) -> u64 {
        self.0
    }
    fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.0 = 0;
        Poll::Ready(Ok(()))
    }
    fn abort(&mut self) -> Result<(), BoxError> {
        self.0 = 0;
        Ok(())
    }
}

impl WinsockSocket for PlainSocket {
    fn set_linger(&mut self, _: Linger) {}
    fn send(&mut self, buffers: &[&[u8]]) -> Result<u32, Error> {
        let n: usize = buffers.iter().map(|b| b.len()).sum();
        self.0 += n as u64;
        Ok(n as u32)
    }
}

impl Provider for Plain {
    type Socket = PlainSocket;
    type State = PlainState;
    fn versions(&self) -> VersionRange {
        VersionRange::new(Version::new(2, 2), Version::new(2, 2))
    }
    fn initialize(&self, _: &mut Registrar) -> Result<PlainState, Error> {
        Ok(PlainState { shim: Shim::new() })
    }
}

static PLAIN: Lifecycle<Plain> = Lifecycle::new(Plain);

impl WinsockProvider for Plain {
    const DESCRIPTION: &'static str = "defaults";
    fn lifecycle() -> &'static Lifecycle<Plain> {
        &PLAIN
    }
    fn shim(state: &PlainState) -> &Shim {
        &state.shim
    }
    fn open_socket(&self, _: &PlainState, _: &SocketRequest) -> Result<PlainSocket, Error> {
        Ok(PlainSocket(0))
    }
}

static EVENTS: AtomicUsize = AtomicUsize::new(0);

unsafe extern "system" fn set_event(event: WSAEVENT, _: *mut i32) -> i32 {
    EVENTS.store(event as usize, SeqCst);
    1
}

// W4 (completion): the default send_overlapped completes at once with every
// byte; WSPSend returns 0 with the count, the status is written and the
// event set.
#[test]
fn w4_the_default_overlapped_send_completes_at_once_and_is_indicated() {
    let mut data = WSPDATA::default();
    let mut t = WSPPROC_TABLE::default();
    let upcalls = WSPUPCALLTABLE {
        lpWPUSetEvent: Some(set_event),
        ..Default::default()
    };
    // SAFETY: valid out-pointers, as ws2_32 passes them.
    let code = unsafe {
        wsp_startup::<Plain>(
            0x0202,
            (&raw mut data).cast_const(),
            std::ptr::null(),
            upcalls,
            &mut t,
        )
    };
    assert_eq!(code, 0);
    let mut e = 0;
    // SAFETY: the table's entries, called as ws2_32 does.
    unsafe {
        let s = t.lpWSPSocket.unwrap()(2, 1, 6, std::ptr::null(), 0, 0, &mut e);
        let bytes = *b"seven!!";
        let buf = WSABUF {
            len: 7,
            buf: bytes.as_ptr().cast_mut(),
        };
        let mut ov = OVERLAPPED {
            hEvent: 44usize as HANDLE,
            ..Default::default()
        };
        let mut sent = 0;
        let r = t.lpWSPSend.unwrap()(
            s,
            &buf,
            1,
            &mut sent,
            0,
            &mut ov,
            None,
            std::ptr::null(),
            &mut e,
        );
        assert_eq!((r, sent, e), (0, 7, 0));
        assert_eq!((ov.Internal, ov.InternalHigh), (0, 7));
        assert_eq!(EVENTS.load(SeqCst), 44, "the event was set");
        assert_eq!(t.lpWSPCleanup.unwrap()(&mut e), 0);
    }
}
