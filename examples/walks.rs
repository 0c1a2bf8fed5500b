//! The walks of `provider_lifecycle::docs::architecture`, each in a
//! function of its own, so that `python3 .ci/walks.py` can run this example
//! under callgrind once and list, per walk, every file of the crate whose
//! code runs in it: a startup that initializes, a provider call, a
//! graceful close (`Linger::Background` with data left, while Active) and
//! a blocking final cleanup with that close still in the background, one
//! open socket and one resource.
//!
//! ```sh
//! cargo run --example walks    # runs the walks once; prints nothing else
//! python3 .ci/walks.py         # the files of each walk, from callgrind
//! ```

use std::hint::black_box;
use std::task::{Context, Poll};

use provider_lifecycle::{
    BoxError, Error, Lifecycle, Linger, Provider, Registrar, Resource, Socket, SocketHandle,
    Version, VersionRange,
};

/// A socket holding `unsent` bytes until its first flush sends them.
struct Sock {
    unsent: u64,
}

impl Socket for Sock {
    fn linger(&self) -> Linger {
        Linger::Background
    }
    fn unsent(&self) -> u64 {
        self.unsent
    }
    fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.unsent = 0;
        Poll::Ready(Ok(()))
    }
    fn abort(&mut self) -> Result<(), BoxError> {
        self.unsent = 0;
        Ok(())
    }
}

struct Pool;

impl Resource for Pool {
    fn name(&self) -> &str {
        "pool"
    }
    fn release(self: Box<Self>) -> Result<(), BoxError> {
        Ok(())
    }
}

struct P;

impl Provider for P {
    type Socket = Sock;
    type State = u64;
    fn versions(&self) -> VersionRange {
        VersionRange::new(Version::new(2, 2), Version::new(2, 2))
    }
    fn initialize(&self, init: &mut Registrar) -> Result<u64, Error> {
        init.register(Pool);
        Ok(1024)
    }
}

#[inline(never)]
fn walk_startup(l: &Lifecycle<P>) {
    black_box(l.startup(Version::new(2, 2)).unwrap());
}

#[inline(never)]
fn walk_provider_call(l: &Lifecycle<P>, h: SocketHandle) {
    let sent = l.operate(h, |mtu, s| {
        s.unsent += *mtu;
        s.unsent
    });
    black_box(sent.unwrap());
}

#[inline(never)]
fn walk_graceful_close(l: &Lifecycle<P>, h: SocketHandle) {
    black_box(l.close_socket(h).unwrap());
}

#[inline(never)]
fn walk_final_cleanup(l: &Lifecycle<P>) {
    black_box(l.cleanup().unwrap());
}

fn main() {
    let l = Lifecycle::new(P);
    walk_startup(&l);
    let closed = l.register_socket(Sock { unsent: 0 }).unwrap();
    let _open = l.register_socket(Sock { unsent: 10 }).unwrap();
    walk_provider_call(&l, closed);
    walk_graceful_close(&l, closed);
    walk_final_cleanup(&l);
}
