//! A minimal readiness reactor for the examples: one thread blocked in
//! `mio::Poll`, waking the `std::task::Waker` a socket left when its write
//! would block. This is all a provider needs to give the lifecycle's
//! event-driven flushing: the crate itself has no reactor.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::task::Waker;

use mio::{Events, Interest, Poll, Registry, Token};

/// The process's reactor (started on first use).
pub struct Reactor {
    registry: Registry,
    wakers: Mutex<HashMap<usize, Waker>>,
    next: AtomicUsize,
}

/// The reactor, starting its thread on first use.
pub fn reactor() -> &'static Reactor {
    static REACTOR: OnceLock<&'static Reactor> = OnceLock::new();
    REACTOR.get_or_init(|| {
        let mut poll = Poll::new().expect("mio::Poll");
        let registry = poll.registry().try_clone().expect("registry");
        let reactor: &'static Reactor = Box::leak(Box::new(Reactor {
            registry,
            wakers: Mutex::new(HashMap::new()),
            next: AtomicUsize::new(1),
        }));
        std::thread::Builder::new()
            .name("example reactor".into())
            .spawn(move || {
                let mut events = Events::with_capacity(1024);
                loop {
                    if poll.poll(&mut events, None).is_err() {
                        continue; // EINTR
                    }
                    let mut wakers = reactor.wakers.lock().unwrap();
                    let ready: Vec<Waker> = events
                        .iter()
                        .filter_map(|e| wakers.remove(&e.token().0))
                        .collect();
                    drop(wakers);
                    for w in ready {
                        w.wake();
                    }
                }
            })
            .expect("reactor thread");
        reactor
    })
}

impl Reactor {
    /// Registers `stream` for writability edges; returns its token.
    pub fn register(&self, stream: &mut mio::net::TcpStream) -> io::Result<usize> {
        let token = self.next.fetch_add(1, Ordering::Relaxed);
        self.registry
            .register(stream, Token(token), Interest::WRITABLE)?;
        Ok(token)
    }

    /// Stops watching `stream`.
    pub fn deregister(&self, stream: &mut mio::net::TcpStream, token: usize) {
        let _ = self.registry.deregister(stream);
        self.wakers.lock().unwrap().remove(&token);
    }

    /// Wakes `waker` at the next readiness edge of `token`.
    pub fn wake_on_ready(&self, token: usize, waker: &Waker) {
        self.wakers.lock().unwrap().insert(token, waker.clone());
    }
}
