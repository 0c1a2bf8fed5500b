//! The 22 dispatch entries this shim does not implement. Each has the SDK's
//! exact signature and answers `WSAEOPNOTSUPP` (10045) in `*lpErrno` with
//! its entry's failure value (`SOCKET_ERROR`, `INVALID_SOCKET` or `FALSE`):
//! a caller never finds a null entry, and never a silent success.
#![allow(clippy::too_many_arguments)]

use core::ffi::c_void;

use crate::abi::set_errno;
use crate::sys::{
    FD_SET, HANDLE, HWND, INVALID_SOCKET, LPCONDITIONPROC, LPWSAOVERLAPPED_COMPLETION_ROUTINE,
    OVERLAPPED, QOS, SOCKADDR, SOCKET, SOCKET_ERROR, TIMEVAL, WSABUF, WSAEOPNOTSUPP, WSAEVENT,
    WSANETWORKEVENTS, WSAPROTOCOL_INFOW, WSATHREADID,
};

/// `*lpErrno = WSAEOPNOTSUPP`, and `failure`.
fn unsupported<T>(errno: *mut i32, failure: T) -> T {
    // SAFETY: every entry's lpErrno is null or the caller's writable int.
    unsafe { set_errno(errno, WSAEOPNOTSUPP) };
    failure
}

pub(crate) unsafe extern "system" fn accept(
    _: SOCKET,
    _: *mut SOCKADDR,
    _: *mut i32,
    _: LPCONDITIONPROC,
    _: usize,
    errno: *mut i32,
) -> SOCKET {
    unsupported(errno, INVALID_SOCKET)
}

pub(crate) unsafe extern "system" fn address_to_string(
    _: *const SOCKADDR,
    _: u32,
    _: *const WSAPROTOCOL_INFOW,
    _: *mut u16,
    _: *mut u32,
    errno: *mut i32,
) -> i32 {
    unsupported(errno, SOCKET_ERROR)
}

pub(crate) unsafe extern "system" fn async_select(
    _: SOCKET,
    _: HWND,
    _: u32,
    _: i32,
    errno: *mut i32,
) -> i32 {
    unsupported(errno, SOCKET_ERROR)
}

pub(crate) unsafe extern "system" fn bind(
    _: SOCKET,
    _: *const SOCKADDR,
    _: i32,
    errno: *mut i32,
) -> i32 {
    unsupported(errno, SOCKET_ERROR)
}

pub(crate) unsafe extern "system" fn cancel_blocking_call(errno: *mut i32) -> i32 {
    unsupported(errno, SOCKET_ERROR)
}

pub(crate) unsafe extern "system" fn connect(
    _: SOCKET,
    _: *const SOCKADDR,
    _: i32,
    _: *const WSABUF,
    _: *mut WSABUF,
    _: *const QOS,
    _: *const QOS,
    errno: *mut i32,
) -> i32 {
    unsupported(errno, SOCKET_ERROR)
}

pub(crate) unsafe extern "system" fn enum_network_events(
    _: SOCKET,
    _: HANDLE,
    _: *mut WSANETWORKEVENTS,
    errno: *mut i32,
) -> i32 {
    unsupported(errno, SOCKET_ERROR)
}

pub(crate) unsafe extern "system" fn event_select(
    _: SOCKET,
    _: WSAEVENT,
    _: i32,
    errno: *mut i32,
) -> i32 {
    unsupported(errno, SOCKET_ERROR)
}

pub(crate) unsafe extern "system" fn get_overlapped_result(
    _: SOCKET,
    _: *const OVERLAPPED,
    _: *mut u32,
    _: i32,
    _: *mut u32,
    errno: *mut i32,
) -> i32 {
    unsupported(errno, 0) // FALSE
}

pub(crate) unsafe extern "system" fn get_peer_name(
    _: SOCKET,
    _: *mut SOCKADDR,
    _: *mut i32,
    errno: *mut i32,
) -> i32 {
    unsupported(errno, SOCKET_ERROR)
}

pub(crate) unsafe extern "system" fn get_sock_name(
    _: SOCKET,
    _: *mut SOCKADDR,
    _: *mut i32,
    errno: *mut i32,
) -> i32 {
    unsupported(errno, SOCKET_ERROR)
}

pub(crate) unsafe extern "system" fn get_qos_by_name(
    _: SOCKET,
    _: *const WSABUF,
    _: *mut QOS,
    errno: *mut i32,
) -> i32 {
    unsupported(errno, 0) // FALSE
}

pub(crate) unsafe extern "system" fn ioctl(
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
    unsupported(errno, SOCKET_ERROR)
}

pub(crate) unsafe extern "system" fn join_leaf(
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
    unsupported(errno, INVALID_SOCKET)
}

pub(crate) unsafe extern "system" fn listen(_: SOCKET, _: i32, errno: *mut i32) -> i32 {
    unsupported(errno, SOCKET_ERROR)
}

pub(crate) unsafe extern "system" fn recv(
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
    // windows-sys types this entry's lpErrno `*const`; the SDK's LPINT is
    // the caller's writable int.
    unsupported(errno.cast_mut(), SOCKET_ERROR)
}

pub(crate) unsafe extern "system" fn recv_disconnect(
    _: SOCKET,
    _: *const WSABUF,
    errno: *mut i32,
) -> i32 {
    unsupported(errno, SOCKET_ERROR)
}

pub(crate) unsafe extern "system" fn recv_from(
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
    unsupported(errno, SOCKET_ERROR)
}

pub(crate) unsafe extern "system" fn select(
    _: i32,
    _: *mut FD_SET,
    _: *mut FD_SET,
    _: *mut FD_SET,
    _: *const TIMEVAL,
    errno: *mut i32,
) -> i32 {
    unsupported(errno, SOCKET_ERROR)
}

pub(crate) unsafe extern "system" fn send_disconnect(
    _: SOCKET,
    _: *const WSABUF,
    errno: *mut i32,
) -> i32 {
    unsupported(errno, SOCKET_ERROR)
}

pub(crate) unsafe extern "system" fn send_to(
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
    unsupported(errno, SOCKET_ERROR)
}

pub(crate) unsafe extern "system" fn shutdown(_: SOCKET, _: i32, errno: *mut i32) -> i32 {
    unsupported(errno, SOCKET_ERROR)
}

pub(crate) unsafe extern "system" fn string_to_address(
    _: *const u16,
    _: i32,
    _: *const WSAPROTOCOL_INFOW,
    _: *mut SOCKADDR,
    _: *mut i32,
    errno: *mut i32,
) -> i32 {
    unsupported(errno, SOCKET_ERROR)
}
