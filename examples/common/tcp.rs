//! A real TCP socket for the provider-lifecycle examples and tests: a
//! non-blocking loopback `TcpStream` with a user-space send queue, whose
//! abortive close sets `SO_LINGER {on, 0}` (through `socket2`) so the peer
//! sees a reset, exactly as `closesocket` with `l_linger = 0` does. Its
//! flush is event-driven: when the kernel will not take more, it leaves the
//! lifecycle's waker with the `mio` reactor in `reactor.rs`, which wakes it
//! at the next writability edge.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use provider_lifecycle::{BoxError, Linger, Socket};
use socket2::SockRef;

#[path = "reactor.rs"]
mod reactor;
use reactor::reactor;

/// The byte at stream offset `i`: peers check order with it.
pub fn pattern(i: u64) -> u8 {
    (i % 251) as u8
}

/// A provider-side TCP socket.
#[derive(Debug)]
pub struct TcpSocket {
    stream: Option<mio::net::TcpStream>,
    /// The stream's token with the reactor.
    token: usize,
    queue: VecDeque<u8>,
    /// Bytes the application handed to `send`.
    pub accepted: u64,
    linger: Linger,
    blocking: bool,
}

impl TcpSocket {
    /// Wraps a connected stream. The kernel send buffer is kept small so
    /// that most unsent data stays in the user-space queue, where the
    /// lifecycle can see and account for it.
    pub fn new(stream: TcpStream, linger: Linger, blocking: bool) -> io::Result<TcpSocket> {
        stream.set_nonblocking(true)?;
        stream.set_nodelay(true)?;
        SockRef::from(&stream).set_send_buffer_size(16 * 1024)?;
        let mut stream = mio::net::TcpStream::from_std(stream);
        let token = reactor().register(&mut stream)?;
        Ok(TcpSocket {
            stream: Some(stream),
            token,
            queue: VecDeque::new(),
            accepted: 0,
            linger,
            blocking,
        })
    }

    /// The application sends `len` bytes of the pattern (queued, not yet
    /// written to the kernel).
    pub fn send_pattern(&mut self, len: u64) {
        let start = self.accepted;
        self.queue.extend((start..start + len).map(pattern));
        self.accepted += len;
    }

    /// Sets the linger option (`setsockopt(SO_LINGER)`).
    pub fn set_linger(&mut self, linger: Linger) {
        self.linger = linger;
    }
}

impl Socket for TcpSocket {
    fn linger(&self) -> Linger {
        self.linger
    }

    fn is_blocking(&self) -> bool {
        self.blocking
    }

    fn unsent(&self) -> u64 {
        self.queue.len() as u64
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        let Some(stream) = self.stream.as_mut() else {
            return Poll::Ready(Err("socket already closed".into()));
        };
        let mut waker_left = false;
        while !self.queue.is_empty() {
            let (front, _) = self.queue.as_slices();
            match stream.write(front) {
                Ok(0) => return Poll::Ready(Err("peer closed the connection".into())),
                Ok(n) => drop(self.queue.drain(..n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if waker_left {
                        return Poll::Pending;
                    }
                    // Leave the waker, then try once more: an edge that came
                    // between the failed write and now would otherwise be
                    // lost (mio is edge-triggered).
                    reactor().wake_on_ready(self.token, cx.waker());
                    waker_left = true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e.into())),
            }
        }
        // Everything is with the kernel: send FIN; the kernel delivers the
        // rest in the background (l_onoff = 0 at the OS level).
        let _ = stream.shutdown(Shutdown::Write);
        Poll::Ready(Ok(()))
    }

    fn abort(&mut self) -> Result<(), BoxError> {
        self.queue.clear();
        if let Some(mut stream) = self.stream.take() {
            reactor().deregister(&mut stream, self.token);
            // SO_LINGER {on, 0}: close sends RST and drops the kernel's
            // unsent data too.
            SockRef::from(&stream).set_linger(Some(Duration::ZERO))?;
            drop(stream);
        }
        Ok(())
    }

    fn release(&mut self) -> Result<(), BoxError> {
        if let Some(mut stream) = self.stream.take() {
            reactor().deregister(&mut stream, self.token);
        }
        Ok(())
    }
}

/// What a peer saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerResult {
    /// Bytes received.
    pub received: u64,
    /// Every byte matched the pattern at its offset.
    pub in_order: bool,
    /// The connection was reset (rather than closed with FIN).
    pub reset: bool,
}

/// Reads from `stream` slowly (`chunk` bytes, then `pause`) until EOF or
/// reset or `limit` elapses, checking the pattern.
pub fn slow_reader(
    mut stream: TcpStream,
    chunk: usize,
    pause: Duration,
    limit: Duration,
) -> PeerResult {
    let start = Instant::now();
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf = vec![0u8; chunk];
    let mut r = PeerResult {
        received: 0,
        in_order: true,
        reset: false,
    };
    while start.elapsed() < limit {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                for (k, b) in buf[..n].iter().enumerate() {
                    if *b != pattern(r.received + k as u64) {
                        r.in_order = false;
                    }
                }
                r.received += n as u64;
                if !pause.is_zero() {
                    std::thread::sleep(pause);
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                r.reset = true;
                break;
            }
            Err(_) => break,
        }
    }
    r
}

/// A connected loopback pair: (provider side, peer side).
pub fn pair(listener: &TcpListener) -> io::Result<(TcpStream, TcpStream)> {
    let peer = TcpStream::connect(listener.local_addr()?)?;
    let (ours, _) = listener.accept()?;
    Ok((ours, peer))
}
