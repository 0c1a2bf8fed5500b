//! The ABI this crate relies on, checked at compile time, and the small
//! helpers every export uses (writing `*lpErrno`, catching panics at the
//! boundary).
//!
//! Every type comes from `windows-sys`, which declares them from Microsoft's
//! metadata without `cfg(windows)`: they are usable on any target, and on
//! x86-64 Linux the `system` ABI is the C ABI, so the exports run in tests
//! here exactly as ws2_32 would call them. The assertions below pin the
//! SDK's 64-bit layouts, so a change in `windows-sys` (or a target where they
//! differ) fails the build instead of corrupting a caller.

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::sys::{
    LINGER, OVERLAPPED, SOCKET_ERROR, WSABUF, WSAPROTOCOL_INFOW, WSATHREADID, WSPDATA,
    WSPPROC_TABLE, WSPUPCALLTABLE,
};

// The SDK layouts below are pinned for 64-bit targets only; a 32-bit
// Windows provider (the WOW64 catalog) is not supported, so a 32-bit build is
// refused rather than risk a layout this crate never checked.
#[cfg(not(target_pointer_width = "64"))]
compile_error!(
    "provider-lifecycle-winsock supports 64-bit targets only: its WSPPROC_TABLE, \
     WSPUPCALLTABLE and WSAPROTOCOL_INFOW layouts are pinned for 64 bits"
);

#[cfg(target_pointer_width = "64")]
const _: () = {
    use std::mem::{offset_of, size_of};
    // WSPDATA: two WORDs and WCHAR[WSPDESCRIPTION_LEN + 1].
    assert!(size_of::<WSPDATA>() == 2 + 2 + 2 * 256);
    assert!(offset_of!(WSPDATA, szDescription) == 4);
    // WSPPROC_TABLE: 30 function pointers, in the SDK's order.
    assert!(size_of::<WSPPROC_TABLE>() == 30 * 8);
    assert!(offset_of!(WSPPROC_TABLE, lpWSPAccept) == 0);
    assert!(offset_of!(WSPPROC_TABLE, lpWSPCleanup) == 5 * 8);
    assert!(offset_of!(WSPPROC_TABLE, lpWSPCloseSocket) == 6 * 8);
    assert!(offset_of!(WSPPROC_TABLE, lpWSPDuplicateSocket) == 8 * 8);
    assert!(offset_of!(WSPPROC_TABLE, lpWSPGetSockOpt) == 14 * 8);
    assert!(offset_of!(WSPPROC_TABLE, lpWSPSend) == 23 * 8);
    assert!(offset_of!(WSPPROC_TABLE, lpWSPSetSockOpt) == 26 * 8);
    assert!(offset_of!(WSPPROC_TABLE, lpWSPSocket) == 28 * 8);
    assert!(offset_of!(WSPPROC_TABLE, lpWSPStringToAddress) == 29 * 8);
    // WSPUPCALLTABLE: 15 function pointers.
    assert!(size_of::<WSPUPCALLTABLE>() == 15 * 8);
    assert!(offset_of!(WSPUPCALLTABLE, lpWPUCreateSocketHandle) == 3 * 8);
    assert!(offset_of!(WSPUPCALLTABLE, lpWPUQueueApc) == 10 * 8);
    assert!(offset_of!(WSPUPCALLTABLE, lpWPUSetEvent) == 12 * 8);
    // WSAPROTOCOL_INFOW: 628 bytes; dwProviderReserved just before szProtocol.
    assert!(size_of::<WSAPROTOCOL_INFOW>() == 628);
    assert!(offset_of!(WSAPROTOCOL_INFOW, dwCatalogEntryId) == 36);
    assert!(offset_of!(WSAPROTOCOL_INFOW, dwProviderReserved) == 624 - 512);
    // Small structs.
    assert!(size_of::<LINGER>() == 4);
    assert!(size_of::<WSABUF>() == 16);
    assert!(size_of::<WSATHREADID>() == 16);
    assert!(size_of::<OVERLAPPED>() == 32);
};

/// Writes `code` to `*errno` if the pointer is not null.
///
/// # Safety
///
/// `errno` is null or points to a writable `i32` (the caller's `lpErrno`).
pub(crate) unsafe fn set_errno(errno: *mut i32, code: i32) {
    if !errno.is_null() {
        // SAFETY: non-null, writable per this function's contract.
        unsafe { *errno = code };
    }
}

/// The usual Winsock failure: `*lpErrno = code`, return `SOCKET_ERROR`.
///
/// # Safety
///
/// As [`set_errno`].
pub(crate) unsafe fn fail(errno: *mut i32, code: i32) -> i32 {
    // SAFETY: forwarded.
    unsafe { set_errno(errno, code) };
    SOCKET_ERROR
}

/// Runs an export's body with panics caught: a panic must never unwind into
/// ws2_32 (an `extern "system"` function aborts the process on unwind). A
/// panic answers what `panicked` builds (only then: a call that does not
/// panic builds nothing, which keeps every export's fast path free of it).
pub(crate) fn guarded<T>(panicked: impl FnOnce() -> T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|_| panicked())
}

/// Fills `WSPDATA`'s description with `text`, truncated to 255 UTF-16 units
/// and NUL-terminated.
pub(crate) fn describe(data: &mut WSPDATA, text: &str) {
    data.szDescription = [0; 256];
    for (slot, unit) in data.szDescription[..255]
        .iter_mut()
        .zip(text.encode_utf16())
    {
        *slot = unit;
    }
}
