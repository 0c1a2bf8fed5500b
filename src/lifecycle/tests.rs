//! Tests that need to start the state word near its wrap points.

use super::*;
use crate::state::{State, Word};
use std::task::{Context, Poll};

use crate::{BoxError, Linger, Registrar, Socket, SocketHandle, VersionRange};

struct Sock(u32);

impl Socket for Sock {
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

struct P;

impl Provider for P {
    type Socket = Sock;
    type State = ();
    fn versions(&self) -> VersionRange {
        VersionRange::new(Version::new(2, 2), Version::new(2, 2))
    }
    fn initialize(&self, _: &mut Registrar) -> Result<(), Error> {
        Ok(())
    }
}

const V: Version = Version::new(2, 2);
const LAST_GENERATION: u64 = (1 << 31) - 1;

// S7, L8: the generation field wraps after 2^31 restarts; a handle of the
// generation that wrapped around to the same number never reaches the
// socket now in its slot, typed or raw.
#[test]
fn s7_handles_never_alias_across_the_generation_wrap() {
    let l = Lifecycle::new(P);
    l.startup(V).unwrap();
    let h0 = l.register_socket(Sock(0)).unwrap();
    assert_eq!(h0.generation(), Some(0));
    assert!(l.cleanup().unwrap().is_final());

    // Jump to the last generation before the wrap, Released.
    l.raw
        .word
        .force(Word::new(State::Released, 0, LAST_GENERATION));
    assert_eq!(l.startup(V).unwrap().generation, LAST_GENERATION);
    let h_last = l.register_socket(Sock(1)).unwrap();
    assert_eq!(h_last.generation(), Some(LAST_GENERATION));
    let report = l.cleanup().unwrap().into_report().unwrap();
    assert_eq!(report.generation, LAST_GENERATION);
    assert_eq!(l.generation(), 0, "the generation wrapped");

    // Generation 0 again, same slot: the old handles are refused.
    assert_eq!(l.startup(V).unwrap().generation, 0);
    let h_new = l.register_socket(Sock(2)).unwrap();
    assert_eq!(h_new.generation(), Some(0));
    for stale in [
        h0,
        h_last,
        SocketHandle::from_raw(h0.to_raw()),
        SocketHandle::from_raw(h_last.to_raw()),
    ] {
        assert_ne!(stale, h_new);
        assert_eq!(l.with_socket(stale, |s| s.0), Err(Error::NotSocket));
        assert_eq!(l.close_socket(stale).err(), Some(Error::NotSocket));
    }
    assert_eq!(l.with_socket(h_new, |s| s.0), Ok(2));
    l.cleanup().unwrap();
}

// L10 + the wrap: a count at its limit in the last generation is refused,
// and the generation still wraps cleanly.
#[test]
fn l10_limit_and_wrap_together() {
    let l = Lifecycle::with_config(P, Config::new().with_count_limit(2));
    l.raw
        .word
        .force(Word::new(State::Released, 0, LAST_GENERATION));
    l.startup(V).unwrap();
    l.startup(V).unwrap();
    assert_eq!(l.startup(V), Err(Error::ProcessLimit));
    assert!(!l.cleanup().unwrap().is_final());
    assert!(l.cleanup().unwrap().is_final());
    assert_eq!(l.snapshot().generation, 0);
    assert_eq!(l.snapshot().state, State::Released);
}
