//! The 21 dispatch entries this shim does not implement. Each has the SDK's
//! exact signature and answers with its entry's failure value
//! (`SOCKET_ERROR`, `INVALID_SOCKET` or `FALSE`) and, in `*lpErrno`,
//! `WSANOTINITIALISED` (10093) while the provider is not initialized
//! (initialization is checked first, [L8](provider_lifecycle::contract#L8))
//! and `WSAEOPNOTSUPP` (10045) while it is: a caller never finds a null
//! entry, and never a silent success. No stub reads or writes any pointer
//! but `lpErrno`.
#![allow(clippy::too_many_arguments)]

use core::ffi::c_void;

use crate::abi::set_errno;
use crate::shim::WinsockProvider;
use crate::sys::{
    FD_SET, HANDLE, HWND, INVALID_SOCKET, LPCONDITIONPROC, LPWSAOVERLAPPED_COMPLETION_ROUTINE,
    OVERLAPPED, QOS, SOCKADDR, SOCKET, SOCKET_ERROR, TIMEVAL, WSABUF, WSAEOPNOTSUPP, WSAEVENT,
    WSANETWORKEVENTS, WSAPROTOCOL_INFOW, WSATHREADID,
};

/// The code an unimplemented entry answers: 10093 unless `P` is
/// initialized, else `WSAEOPNOTSUPP`.
fn unsupported_code<P: WinsockProvider>() -> i32 {
    match P::lifecycle().enter() {
        Ok(_) => WSAEOPNOTSUPP,
        Err(e) => e.wsa_code(),
    }
}

/// `*lpErrno = ` [`unsupported_code`], and `failure`.
///
/// # Safety
///
/// `errno` is null or the caller's writable `lpErrno`.
unsafe fn unsupported<P: WinsockProvider, T>(errno: *mut i32, failure: T) -> T {
    // SAFETY: this function's contract.
    unsafe { set_errno(errno, unsupported_code::<P>()) };
    failure
}

pub(crate) unsafe extern "system" fn accept<P: WinsockProvider>(
    _: SOCKET,
    _: *mut SOCKADDR,
    _: *mut i32,
    _: LPCONDITIONPROC,
    _: usize,
    errno: *mut i32,
) -> SOCKET {
    // SAFETY: lpErrno is null or the caller's writable int.
    unsafe { unsupported::<P, _>(errno, INVALID_SOCKET) }
}

pub(crate) unsafe extern "system" fn address_to_string<P: WinsockProvider>(
    _: *const SOCKADDR,
    _: u32,
    _: *const WSAPROTOCOL_INFOW,
    _: *mut u16,
    _: *mut u32,
    errno: *mut i32,
) -> i32 {
    // SAFETY: lpErrno is null or the caller's writable int.
    unsafe { unsupported::<P, _>(errno, SOCKET_ERROR) }
}

pub(crate) unsafe extern "system" fn async_select<P: WinsockProvider>(
    _: SOCKET,
    _: HWND,
    _: u32,
    _: i32,
    errno: *mut i32,
) -> i32 {
    // SAFETY: lpErrno is null or the caller's writable int.
    unsafe { unsupported::<P, _>(errno, SOCKET_ERROR) }
}

pub(crate) unsafe extern "system" fn bind<P: WinsockProvider>(
    _: SOCKET,
    _: *const SOCKADDR,
    _: i32,
    errno: *mut i32,
) -> i32 {
    // SAFETY: lpErrno is null or the caller's writable int.
    unsafe { unsupported::<P, _>(errno, SOCKET_ERROR) }
}

pub(crate) unsafe extern "system" fn cancel_blocking_call<P: WinsockProvider>(
    errno: *mut i32,
) -> i32 {
    // SAFETY: lpErrno is null or the caller's writable int.
    unsafe { unsupported::<P, _>(errno, SOCKET_ERROR) }
}

pub(crate) unsafe extern "system" fn connect<P: WinsockProvider>(
    _: SOCKET,
    _: *const SOCKADDR,
    _: i32,
    _: *const WSABUF,
    _: *mut WSABUF,
    _: *const QOS,
    _: *const QOS,
    errno: *mut i32,
) -> i32 {
    // SAFETY: lpErrno is null or the caller's writable int.
    unsafe { unsupported::<P, _>(errno, SOCKET_ERROR) }
}

pub(crate) unsafe extern "system" fn enum_network_events<P: WinsockProvider>(
    _: SOCKET,
    _: HANDLE,
    _: *mut WSANETWORKEVENTS,
    errno: *mut i32,
) -> i32 {
    // SAFETY: lpErrno is null or the caller's writable int.
    unsafe { unsupported::<P, _>(errno, SOCKET_ERROR) }
}

pub(crate) unsafe extern "system" fn event_select<P: WinsockProvider>(
    _: SOCKET,
    _: WSAEVENT,
    _: i32,
    errno: *mut i32,
) -> i32 {
    // SAFETY: lpErrno is null or the caller's writable int.
    unsafe { unsupported::<P, _>(errno, SOCKET_ERROR) }
}

pub(crate) unsafe extern "system" fn get_peer_name<P: WinsockProvider>(
    _: SOCKET,
    _: *mut SOCKADDR,
    _: *mut i32,
    errno: *mut i32,
) -> i32 {
    // SAFETY: lpErrno is null or the caller's writable int.
    unsafe { unsupported::<P, _>(errno, SOCKET_ERROR) }
}

pub(crate) unsafe extern "system" fn get_sock_name<P: WinsockProvider>(
    _: SOCKET,
    _: *mut SOCKADDR,
    _: *mut i32,
    errno: *mut i32,
) -> i32 {
    // SAFETY: lpErrno is null or the caller's writable int.
    unsafe { unsupported::<P, _>(errno, SOCKET_ERROR) }
}

pub(crate) unsafe extern "system" fn get_qos_by_name<P: WinsockProvider>(
    _: SOCKET,
    _: *const WSABUF,
    _: *mut QOS,
    errno: *mut i32,
) -> i32 {
    // SAFETY: lpErrno is null or the caller's writable int.
    unsafe { unsupported::<P, _>(errno, 0) } // FALSE
}

pub(crate) unsafe extern "system" fn ioctl<P: WinsockProvider>(
    _: SOCKET,
    _: u32,
    _: *const c_void,
    _: u32,
    _: *mut c_void,
    _: u32,
    _: *mut u32,
    _: *mut OVERLAPPED,
    _: LPWSAOVERLAPPED_COMPLETION_ROUTINE,
    _: *const WSATHREADID,
    errno: *mut i32,
) -> i32 {
    // SAFETY: lpErrno is null or the caller's writable int.
    unsafe { unsupported::<P, _>(errno, SOCKET_ERROR) }
}

pub(crate) unsafe extern "system" fn join_leaf<P: WinsockProvider>(
    _: SOCKET,
    _: *const SOCKADDR,
    _: i32,
    _: *const WSABUF,
    _: *mut WSABUF,
    _: *const QOS,
    _: *const QOS,
    _: u32,
    errno: *mut i32,
) -> SOCKET {
    // SAFETY: lpErrno is null or the caller's writable int.
    unsafe { unsupported::<P, _>(errno, INVALID_SOCKET) }
}

pub(crate) unsafe extern "system" fn listen<P: WinsockProvider>(
    _: SOCKET,
    _: i32,
    errno: *mut i32,
) -> i32 {
    // SAFETY: lpErrno is null or the caller's writable int.
    unsafe { unsupported::<P, _>(errno, SOCKET_ERROR) }
}

pub(crate) unsafe extern "system" fn recv<P: WinsockProvider>(
    _: SOCKET,
    _: *const WSABUF,
    _: u32,
    _: *mut u32,
    _: *mut u32,
    _: *mut OVERLAPPED,
    _: LPWSAOVERLAPPED_COMPLETION_ROUTINE,
    _: *const WSATHREADID,
    errno: *const i32,
) -> i32 {
    // SAFETY: the SDK's LPWSPRECV declares lpErrno `LPINT`, the caller's
    // writable error slot like every entry's; windows-sys's metadata types
    // it `*const i32`, so it is cast back to what the caller passed.
    unsafe { unsupported::<P, _>(errno.cast_mut(), SOCKET_ERROR) }
}

pub(crate) unsafe extern "system" fn recv_disconnect<P: WinsockProvider>(
    _: SOCKET,
    _: *const WSABUF,
    errno: *mut i32,
) -> i32 {
    // SAFETY: lpErrno is null or the caller's writable int.
    unsafe { unsupported::<P, _>(errno, SOCKET_ERROR) }
}

pub(crate) unsafe extern "system" fn recv_from<P: WinsockProvider>(
    _: SOCKET,
    _: *const WSABUF,
    _: u32,
    _: *mut u32,
    _: *mut u32,
    _: *mut SOCKADDR,
    _: *mut i32,
    _: *mut OVERLAPPED,
    _: LPWSAOVERLAPPED_COMPLETION_ROUTINE,
    _: *const WSATHREADID,
    errno: *mut i32,
) -> i32 {
    // SAFETY: lpErrno is null or the caller's writable int.
    unsafe { unsupported::<P, _>(errno, SOCKET_ERROR) }
}

pub(crate) unsafe extern "system" fn select<P: WinsockProvider>(
    _: i32,
    _: *mut FD_SET,
    _: *mut FD_SET,
    _: *mut FD_SET,
    _: *const TIMEVAL,
    errno: *mut i32,
) -> i32 {
    // SAFETY: lpErrno is null or the caller's writable int.
    unsafe { unsupported::<P, _>(errno, SOCKET_ERROR) }
}

pub(crate) unsafe extern "system" fn send_disconnect<P: WinsockProvider>(
    _: SOCKET,
    _: *const WSABUF,
    errno: *mut i32,
) -> i32 {
    // SAFETY: lpErrno is null or the caller's writable int.
    unsafe { unsupported::<P, _>(errno, SOCKET_ERROR) }
}

pub(crate) unsafe extern "system" fn send_to<P: WinsockProvider>(
    _: SOCKET,
    _: *const WSABUF,
    _: u32,
    _: *mut u32,
    _: u32,
    _: *const SOCKADDR,
    _: i32,
    _: *mut OVERLAPPED,
    _: LPWSAOVERLAPPED_COMPLETION_ROUTINE,
    _: *const WSATHREADID,
    errno: *mut i32,
) -> i32 {
    // SAFETY: lpErrno is null or the caller's writable int.
    unsafe { unsupported::<P, _>(errno, SOCKET_ERROR) }
}

pub(crate) unsafe extern "system" fn shutdown<P: WinsockProvider>(
    _: SOCKET,
    _: i32,
    errno: *mut i32,
) -> i32 {
    // SAFETY: lpErrno is null or the caller's writable int.
    unsafe { unsupported::<P, _>(errno, SOCKET_ERROR) }
}

pub(crate) unsafe extern "system" fn string_to_address<P: WinsockProvider>(
    _: *const u16,
    _: i32,
    _: *const WSAPROTOCOL_INFOW,
    _: *mut SOCKADDR,
    _: *mut i32,
    errno: *mut i32,
) -> i32 {
    // SAFETY: lpErrno is null or the caller's writable int.
    unsafe { unsupported::<P, _>(errno, SOCKET_ERROR) }
}
