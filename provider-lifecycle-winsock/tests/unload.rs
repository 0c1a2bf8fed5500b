//! L17 (the seed: "prepare itself to be unloaded from memory"): a provider
//! library built on the shim (`examples/unload_provider.rs`, a cdylib) is
//! `dlopen`ed, driven through `WSPStartup` and its table — a socket, a send,
//! a graceful close that the background flusher thread finishes — finally
//! cleaned up and `dlclose`d, 200 times from one long-lived thread and 200
//! times from short-lived ones. After every `dlclose` the library must be
//! unmapped (`/proc/self/maps`), no thread of it left (`/proc/self/task`),
//! the next load must start from fresh statics, and resident memory must
//! stay bounded.
//!
//! What the platform does: glibc keeps a shared object mapped after
//! `dlclose` while a thread-exit destructor it registered
//! (`__cxa_thread_atexit_impl`, which Rust's thread-locals with `Drop` use)
//! is pending on a live thread — so a library must leave none on a host's
//! threads. (On Windows a DLL's thread-local destructors run from its own
//! TLS callback, and `FreeLibrary` unmaps it regardless; threads the DLL
//! left running would crash instead, which the final cleanup's join rules
//! out, L13.)
#![cfg(target_os = "linux")]

mod support;

use std::ffi::CString;
use std::path::PathBuf;

use provider_lifecycle_winsock::sys::*;

/// The library `cargo test` built beside this test.
fn library() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let debug = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let lib = debug.join("examples/libunload_provider.so");
    assert!(lib.exists(), "{} (built by cargo test)", lib.display());
    lib
}

fn mapped(lib: &std::path::Path) -> bool {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let name = lib.file_name().unwrap().to_str().unwrap();
    maps.lines().any(|l| l.ends_with(name))
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

/// The process's thread count once it settles at `baseline` (a joined
/// thread may stay listed in `/proc/self/task` for a moment after
/// `pthread_join` returned, until the kernel reaps it); the count found if
/// it does not within a second.
fn threads_settled_at(baseline: usize) -> usize {
    for _ in 0..1000 {
        if threads() == baseline {
            return baseline;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    threads()
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

unsafe extern "system" fn create(_: u32, ctx: usize, _: *mut i32) -> SOCKET {
    ctx as SOCKET | 0x10000
}
unsafe extern "system" fn close_handle(_: SOCKET, _: *mut i32) -> i32 {
    0
}

/// One cycle: load, drive, clean up, unload; checks the statics were fresh.
fn cycle(lib: &std::path::Path) {
    let path = CString::new(lib.to_str().unwrap()).unwrap();
    // SAFETY: a path to a shared object of ours; RTLD_NOW resolves it whole.
    let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    assert!(!handle.is_null(), "dlopen failed");
    assert!(mapped(lib), "mapped while loaded");
    // SAFETY: the exports' names, looked up in the handle just opened.
    let (startup, probe) = unsafe {
        (
            libc::dlsym(handle, c"WSPStartup".as_ptr()),
            libc::dlsym(handle, c"unload_probe".as_ptr()),
        )
    };
    assert!(!startup.is_null() && !probe.is_null());
    type Startup = unsafe extern "system" fn(
        u16,
        *const WSPDATA,
        *const WSAPROTOCOL_INFOW,
        WSPUPCALLTABLE,
        *mut WSPPROC_TABLE,
    ) -> i32;
    type Probe = extern "C" fn(u32) -> u64;
    // SAFETY: the exports' real signatures.
    let (startup, probe) = unsafe {
        (
            std::mem::transmute::<*mut libc::c_void, Startup>(startup),
            std::mem::transmute::<*mut libc::c_void, Probe>(probe),
        )
    };
    assert_eq!(probe(7), 0, "fresh statics: no mark, nothing delivered");

    let mut data = WSPDATA::default();
    let mut t = WSPPROC_TABLE::default();
    let upcalls = WSPUPCALLTABLE {
        lpWPUCreateSocketHandle: Some(create),
        lpWPUCloseSocketHandle: Some(close_handle),
        ..Default::default()
    };
    // SAFETY: valid out-pointers, as ws2_32 passes them.
    let code = unsafe {
        startup(
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
        assert_ne!(s, INVALID_SOCKET, "{e}");
        let bytes = *b"unload me";
        let buf = WSABUF {
            len: bytes.len() as u32,
            buf: bytes.as_ptr().cast_mut(),
        };
        let mut sent = 0;
        let r = t.lpWSPSend.unwrap()(
            s,
            &buf,
            1,
            &mut sent,
            0,
            std::ptr::null_mut(),
            None,
            std::ptr::null(),
            &mut e,
        );
        assert_eq!((r, sent), (0, 9));
        // A graceful close with data left: the background flusher thread.
        assert_eq!(t.lpWSPCloseSocket.unwrap()(s, &mut e), 0);
        assert_eq!(t.lpWSPCleanup.unwrap()(&mut e), 0, "the final cleanup");
    }
    assert_eq!(probe(7), (7 << 32) | 9, "every byte delivered");
    // SAFETY: the handle from dlopen above; nothing of it is used after.
    assert_eq!(unsafe { libc::dlclose(handle) }, 0);
}

#[test]
fn l17_the_library_unloads_after_every_final_cleanup() {
    let _w = support::watchdog(300);
    let lib = library();
    let baseline_threads = threads();
    cycle(&lib);
    assert!(!mapped(&lib), "unmapped after the first dlclose");
    let rss = rss_kib();
    // A long-lived thread (the test's own, like a host's main thread).
    for i in 0..200 {
        cycle(&lib);
        assert!(
            !mapped(&lib),
            "still mapped after cycle {i} (long-lived thread)"
        );
        assert_eq!(
            threads_settled_at(baseline_threads),
            baseline_threads,
            "a thread was left (cycle {i})"
        );
    }
    // Short-lived threads, one per cycle.
    for i in 0..200 {
        let l = lib.clone();
        std::thread::spawn(move || cycle(&l)).join().unwrap();
        assert!(
            !mapped(&lib),
            "still mapped after cycle {i} (short-lived thread)"
        );
        assert_eq!(
            threads_settled_at(baseline_threads),
            baseline_threads,
            "a thread was left (cycle {i})"
        );
    }
    let grown = rss_kib().saturating_sub(rss);
    assert!(
        grown < 16 * 1024,
        "resident memory grew by {grown} KiB over 400 cycles"
    );
}
