//! A provider in an async host: an echo service over tokio TCP whose
//! lifecycle is shared by `Arc` (the usual shape in an async host) and whose
//! connection tasks each hold an `OwnedToken` across `.await` (O5: `'static`,
//! so it moves into `tokio::spawn`; the final cleanup never frees the
//! service under them, rule O2) and stop when the token says the final
//! cleanup began (O4); the host awaits `cleanup_async()` without blocking
//! its runtime thread.
//!
//! ```sh
//! cargo run --example tokio_provider
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use provider_lifecycle::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The provider; the resource it registers is "the service".
struct Echo;

/// The per-generation state: what this generation echoed. Tasks reach it
/// through their token (`token.state()`), never without one.
#[derive(Default)]
struct Service {
    echoed: AtomicU64,
}

impl Provider for Echo {
    type Socket = NoSocket;
    type State = Service;
    fn versions(&self) -> VersionRange {
        VersionRange::new(Version::new(2, 2), Version::new(2, 2))
    }
    fn initialize(&self, init: &mut Registrar) -> Result<Service, Error> {
        init.register_fn("echo service", || Ok(()));
        Ok(Service::default())
    }
}

/// Serves one connection until the peer closes or the final cleanup begins.
async fn serve(mut stream: TcpStream, token: OwnedToken<Echo>) {
    let mut buf = [0u8; 1024];
    loop {
        tokio::select! {
            // O4: the signal; the token is dropped when this returns.
            () = token.draining() => return,
            read = stream.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    // Counted before the echo goes out, so a client that
                    // read its echo back finds it counted. The `StateRef`
                    // ends with the statement (it is `!Send`: never held
                    // across an `.await`).
                    token.state().echoed.fetch_add(n as u64, Ordering::Relaxed);
                    if stream.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            },
        }
    }
}

/// Accepts connections; every connection task carries its own token.
async fn accept_loop(listener: TcpListener, token: OwnedToken<Echo>) {
    loop {
        tokio::select! {
            () = token.draining() => return,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { return };
                // A new token (refused once the final cleanup began), not a
                // clone of this one (a clone is never refused).
                match token.lifecycle().owned_token() {
                    Ok(t) => drop(tokio::spawn(serve(stream, t))),
                    Err(_) => return, // not Active any more: refuse
                }
            }
        }
    }
}

/// Starts the provider, echoes through `clients` connections (leaving them
/// open), then awaits the final cleanup and returns its report and the
/// bytes echoed.
async fn run(echo: &Arc<Lifecycle<Echo>>, clients: usize) -> (DrainReport, u64) {
    echo.startup_async(Version::new(2, 2))
        .await
        .expect("startup");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(accept_loop(listener, echo.owned_token().expect("token")));

    let mut open = Vec::new();
    for i in 0..clients {
        let mut c = TcpStream::connect(addr).await.expect("connect");
        let msg = format!("hello {i}");
        c.write_all(msg.as_bytes()).await.expect("write");
        let mut back = vec![0u8; msg.len()];
        c.read_exact(&mut back).await.expect("echo");
        assert_eq!(back, msg.as_bytes());
        open.push(c); // still connected: its task holds a token
    }
    let echoed = echo
        .token()
        .expect("token")
        .state()
        .echoed
        .load(Ordering::Relaxed);
    // The final cleanup: the connection tasks see the signal, drop their
    // tokens, and only then is the service released.
    let report = tokio::time::timeout(Duration::from_secs(30), echo.cleanup_async())
        .await
        .expect("the cleanup does not hang")
        .expect("cleanup")
        .into_report()
        .expect("final");
    (report, echoed)
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let echo = Arc::new(Lifecycle::new(Echo));
    let (report, echoed) = rt.block_on(run(&echo, 8));
    println!("echoed {echoed} bytes over 8 connections");
    println!("{report}");
    assert!(report.is_clean());
    assert_eq!(echo.state(), State::Released);
}

#[cfg(test)]
mod tests {
    use super::*;

    // O2, O4, O5, L6: connection tasks holding owned tokens across `.await` stop on
    // the signal; the host's `cleanup_async` waits for all of them (the
    // accept loop's token and one per open connection) on a single-threaded
    // runtime, then releases the service.
    #[test]
    fn o4_tasks_holding_tokens_stop_and_the_host_awaits_the_cleanup() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let echo = Arc::new(Lifecycle::new(Echo));
        let (report, echoed) = rt.block_on(run(&echo, 5));
        assert!(report.is_clean(), "{report}");
        assert!(report.operations.waited_for <= 6);
        assert_eq!(report.resources[0].name, "echo service");
        assert_eq!(
            echoed,
            (0..5).map(|i| format!("hello {i}").len() as u64).sum()
        );
        assert_eq!(echo.state(), State::Released);
    }
}
