//! The crate's one error type ([D2](crate::contract#D2)), each variant with its Winsock code.

/// Everything that can go wrong in the lifecycle, as one enum ([D2](crate::contract#D2)).
///
/// Every variant maps to the Winsock error code a provider would hand back to
/// `ws2_32` ([`Error::wsa_code`]), so an FFI shim can translate it without a
/// table of its own.
///
/// | variant | code | when |
/// |---|---|---|
/// | [`NotInitialised`](Error::NotInitialised) | 10093 | cleanup at count 0; any use while not Active |
/// | [`VersionNotSupported`](Error::VersionNotSupported) | 10092 | request below the supported range |
/// | [`SystemNotReady`](Error::SystemNotReady) | 10091 | the provider's initialization failed |
/// | [`ProcessLimit`](Error::ProcessLimit) | 10067 | the count would pass its limit |
/// | [`InProgress`](Error::InProgress) | 10036 | startup while Draining with `FailFast`; cleanup from inside a guard |
/// | [`NotSocket`](Error::NotSocket) | 10038 | unknown, closed or stale handle |
/// | [`WouldBlock`](Error::WouldBlock) | 10035 | a non-blocking close with a linger timeout cannot finish now |
/// | [`Fault`](Error::Fault) | 10014 | a null or invalid pointer at an FFI boundary |
/// | [`NetworkDown`](Error::NetworkDown) | 10050 | the provider reports its network failed |
/// | [`InvalidProcTable`](Error::InvalidProcTable) | 10104 | a lower provider's dispatch table has a null entry |
/// | [`ProviderFailedInit`](Error::ProviderFailedInit) | 10106 | a provider's startup failed, as the layer above sees it |
/// | [`Interrupted`](Error::Interrupted) | 10004 | a blocking call ended by the final cleanup's cancel step |
/// | [`OperationAborted`](Error::OperationAborted) | 995 | a pending overlapped operation ended |
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The provider is not Active: cleanup at count 0, or any use while
    /// Uninitialized, Draining or Released (`WSANOTINITIALISED`).
    #[error("the provider is not initialised (WSANOTINITIALISED, 10093)")]
    NotInitialised,
    /// The requested version is below the provider's lowest, or has major 0
    /// (`WSAVERNOTSUPPORTED`).
    #[error("the requested version is not supported (WSAVERNOTSUPPORTED, 10092)")]
    VersionNotSupported,
    /// The provider's initialization failed; the text is its cause
    /// (`WSASYSNOTREADY`).
    #[error("the provider is not ready (WSASYSNOTREADY, 10091): {0}")]
    SystemNotReady(String),
    /// Counting one more startup would pass the configured limit
    /// (`WSAEPROCLIM`).
    #[error("too many startups (WSAEPROCLIM, 10067)")]
    ProcessLimit,
    /// A teardown is under way, or a final cleanup was issued from inside an
    /// operation guard of the same lifecycle (`WSAEINPROGRESS`).
    #[error("an operation is in progress (WSAEINPROGRESS, 10036)")]
    InProgress,
    /// The handle is unknown, already closed, or from an earlier generation
    /// (`WSAENOTSOCK`).
    #[error("not a socket of this provider (WSAENOTSOCK, 10038)")]
    NotSocket,
    /// A non-blocking close with a linger timeout cannot finish now; the
    /// handle stays valid (`WSAEWOULDBLOCK`).
    #[error("the operation would block (WSAEWOULDBLOCK, 10035)")]
    WouldBlock,
    /// A null or invalid pointer crossed an FFI boundary (`WSAEFAULT`).
    #[error("bad pointer (WSAEFAULT, 10014)")]
    Fault,
    /// The provider reports that its network failed (`WSAENETDOWN`).
    #[error("the network is down (WSAENETDOWN, 10050)")]
    NetworkDown,
    /// A lower provider's dispatch table has a null entry
    /// (`WSAEINVALIDPROCTABLE`).
    #[error("the lower provider's dispatch table is invalid (WSAEINVALIDPROCTABLE, 10104)")]
    InvalidProcTable,
    /// A provider's startup failed, as the layer above it sees it
    /// (`WSAEPROVIDERFAILEDINIT`).
    #[error("the provider failed to initialize (WSAEPROVIDERFAILEDINIT, 10106)")]
    ProviderFailedInit,
    /// A blocking call was ended by the final cleanup's cancel step
    /// (`WSAEINTR`).
    #[error("the blocking call was interrupted (WSAEINTR, 10004)")]
    Interrupted,
    /// A pending overlapped operation was ended (`WSA_OPERATION_ABORTED`).
    #[error("the overlapped operation was aborted (WSA_OPERATION_ABORTED, 995)")]
    OperationAborted,
}

impl Error {
    /// The Winsock error code of this error (for `*lpErrno` or `WSAGetLastError`).
    ///
    /// ```
    /// use provider_lifecycle::Error;
    /// assert_eq!(Error::NotInitialised.wsa_code(), 10093);
    /// assert_eq!(Error::WouldBlock.wsa_code(), 10035);
    /// ```
    #[must_use]
    pub const fn wsa_code(&self) -> i32 {
        match self {
            Error::NotInitialised => 10093,
            Error::VersionNotSupported => 10092,
            Error::SystemNotReady(_) => 10091,
            Error::ProcessLimit => 10067,
            Error::InProgress => 10036,
            Error::NotSocket => 10038,
            Error::WouldBlock => 10035,
            Error::Fault => 10014,
            Error::NetworkDown => 10050,
            Error::InvalidProcTable => 10104,
            Error::ProviderFailedInit => 10106,
            Error::Interrupted => 10004,
            Error::OperationAborted => 995,
        }
    }

    /// A [`SystemNotReady`](Error::SystemNotReady) carrying `cause`, for a
    /// provider's failed initialization.
    pub fn system_not_ready(cause: impl std::fmt::Display) -> Error {
        Error::SystemNotReady(cause.to_string())
    }
}

/// The boxed error type user callbacks (sockets, resources, hooks) return.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[cfg(test)]
mod tests {
    use super::*;

    // D2: every variant maps to its Winsock code.
    #[test]
    fn d2_codes() {
        let table = [
            (Error::NotInitialised, 10093),
            (Error::VersionNotSupported, 10092),
            (Error::system_not_ready("x"), 10091),
            (Error::ProcessLimit, 10067),
            (Error::InProgress, 10036),
            (Error::NotSocket, 10038),
            (Error::WouldBlock, 10035),
            (Error::Fault, 10014),
            (Error::NetworkDown, 10050),
            (Error::InvalidProcTable, 10104),
            (Error::ProviderFailedInit, 10106),
            (Error::Interrupted, 10004),
            (Error::OperationAborted, 995),
        ];
        for (e, code) in table {
            assert_eq!(e.wsa_code(), code, "{e}");
            assert!(e.to_string().contains(&code.to_string()), "{e}");
        }
    }
}
