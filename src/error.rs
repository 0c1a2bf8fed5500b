//! The crate's one error type ([D2](crate::contract#D2)), each variant with its Winsock code.

use std::fmt;
use std::sync::Arc;

/// Everything that can go wrong in the lifecycle, as one enum ([D2](crate::contract#D2)).
///
/// Every variant maps to the Winsock error code a provider would hand back to
/// `ws2_32` ([`Error::wsa_code`]), so an FFI shim can translate it without a
/// table of its own.
///
/// | variant | code | when |
/// |---|---|---|
/// | [`NotInitialised`](Error::NotInitialised) | 10093 | cleanup at count 0; any use while not Active ([`NotActive`] says which) |
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
/// | [`Winsock`](Error::Winsock) | any other | a provider's own code, carried unchanged ([E1](crate::contract#E1)) |
/// | [`Caused`](Error::Caused) | any | a code with the error behind it as the `source` ([E1](crate::contract#E1)) |
///
/// ```
/// # use provider_lifecycle::*;
/// # struct P;
/// # impl Provider for P {
/// #     type Socket = NoSocket;
/// #     type State = ();
/// #     fn versions(&self) -> VersionRange { VersionRange::new(Version::new(2, 2), Version::new(2, 2)) }
/// #     fn initialize(&self, _: &mut Registrar) -> Result<(), Error> { Ok(()) }
/// # }
/// let l = Lifecycle::new(P);
/// let e = l.enter().unwrap_err();
/// assert_eq!(e, Error::NotInitialised(NotActive::NeverStarted));
/// assert_eq!((e.wsa_code(), e.wsa_name()), (10093, "WSANOTINITIALISED"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The provider is not Active: cleanup at count 0, or any use while
    /// Uninitialized, Draining or Released (`WSANOTINITIALISED`). The
    /// [`NotActive`] says which, so a log line explains itself; the code is
    /// 10093 for all of them.
    ///
    /// ```
    /// # use provider_lifecycle::*;
    /// # struct P;
    /// # impl Provider for P {
    /// #     type Socket = NoSocket;
    /// #     type State = ();
    /// #     fn versions(&self) -> VersionRange { VersionRange::new(Version::new(2, 2), Version::new(2, 2)) }
    /// #     fn initialize(&self, _: &mut Registrar) -> Result<(), Error> { Ok(()) }
    /// # }
    /// let l = Lifecycle::new(P);
    /// assert_eq!(l.enter().err(), Some(Error::NotInitialised(NotActive::NeverStarted)));
    /// l.startup(Version::new(2, 2))?;
    /// l.cleanup()?;
    /// let e = l.cleanup().unwrap_err(); // one cleanup too many
    /// assert_eq!(e, Error::NotInitialised(NotActive::Unpaired));
    /// assert_eq!(e.wsa_code(), 10093);
    /// assert_eq!(
    ///     e.to_string(),
    ///     "the provider is not initialised: a cleanup without a startup to pair with (WSANOTINITIALISED, 10093)"
    /// );
    /// # Ok::<(), Error>(())
    /// ```
    NotInitialised(NotActive),
    /// The requested version is below the provider's lowest, or has major 0
    /// (`WSAVERNOTSUPPORTED`).
    VersionNotSupported,
    /// The provider's initialization failed (`WSASYSNOTREADY`). The
    /// [`Cause`] is the provider's own error, kept whole: it is this error's
    /// [`source`](std::error::Error::source), so `downcast_ref` reaches,
    /// say, the [`std::io::Error`] an `initialize` returned with `?`.
    SystemNotReady(Cause),
    /// Counting one more startup would pass the configured limit
    /// (`WSAEPROCLIM`).
    ProcessLimit,
    /// A teardown is under way, or a final cleanup was issued from inside an
    /// operation guard of the same lifecycle (`WSAEINPROGRESS`).
    InProgress,
    /// The handle is unknown, already closed, or from an earlier generation
    /// (`WSAENOTSOCK`).
    NotSocket,
    /// A non-blocking close with a linger timeout cannot finish now; the
    /// handle stays valid (`WSAEWOULDBLOCK`).
    WouldBlock,
    /// A null or invalid pointer crossed an FFI boundary (`WSAEFAULT`).
    Fault,
    /// The provider reports that its network failed (`WSAENETDOWN`).
    NetworkDown,
    /// A lower provider's dispatch table has a null entry
    /// (`WSAEINVALIDPROCTABLE`).
    InvalidProcTable,
    /// A provider's startup failed, as the layer above it sees it
    /// (`WSAEPROVIDERFAILEDINIT`): the lower provider answered with an error
    /// code, so there is no Rust error to keep.
    ProviderFailedInit,
    /// A blocking call was ended by the final cleanup's cancel step
    /// (`WSAEINTR`).
    Interrupted,
    /// A pending overlapped operation was ended (`WSA_OPERATION_ABORTED`).
    OperationAborted,
    /// Any other Winsock code, carried unchanged from a socket or a lower
    /// provider to the caller's `lpErrno` ([E1](crate::contract#E1)):
    /// `WSAECONNRESET` (10054), `WSAENOBUFS` (10055), ... Build it with
    /// [`Error::from_wsa_code`], which maps the codes above to their own
    /// variants.
    ///
    /// ```
    /// use provider_lifecycle::Error;
    /// let reset = Error::from_wsa_code(10054);
    /// assert_eq!(reset, Error::Winsock(10054));
    /// assert_eq!(reset.wsa_code(), 10054);
    /// assert_eq!(reset.wsa_name(), "WSAECONNRESET");
    /// assert_eq!(Error::from_wsa_code(10038), Error::NotSocket);
    /// ```
    Winsock(i32),
    /// A Winsock code with the error that caused it
    /// ([E1](crate::contract#E1)): [`wsa_code`](Error::wsa_code) is the
    /// code, unchanged on its way to the caller's `lpErrno`, and the
    /// [`source`](std::error::Error::source) is the cause, kept whole. Build
    /// it with [`Error::with_cause`] or [`Error::from_io`].
    ///
    /// ```
    /// use provider_lifecycle::Error;
    /// use std::error::Error as _;
    /// use std::io;
    ///
    /// let e = Error::from_io(io::Error::from(io::ErrorKind::ConnectionReset));
    /// assert_eq!(e.wsa_code(), 10054);
    /// assert_eq!(e.wsa_name(), "WSAECONNRESET");
    /// let io = e.source().unwrap().downcast_ref::<io::Error>().unwrap();
    /// assert_eq!(io.kind(), io::ErrorKind::ConnectionReset);
    /// ```
    Caused(i32, Cause),
}

/// Why a lifecycle answered [`Error::NotInitialised`]: one code (10093,
/// `WSANOTINITIALISED`) for several conditions a log line should tell
/// apart.
///
/// ```
/// use provider_lifecycle::{Error, NotActive};
/// let e = Error::NotInitialised(NotActive::Draining);
/// assert!(e.to_string().contains("the final cleanup is running"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NotActive {
    /// No startup has succeeded yet: the lifecycle is Uninitialized.
    NeverStarted,
    /// A cleanup found no startup left to pair it with: one cleanup too
    /// many ([L4](crate::contract#L4)), or a [`Session`](crate::Session)
    /// ended twice.
    Unpaired,
    /// The final cleanup is tearing the generation down (Draining).
    Draining,
    /// The last generation was torn down (Released); a startup begins a new
    /// one.
    Released,
    /// A socket or a lower provider answered 10093
    /// ([`Error::from_wsa_code`]); nothing more is known.
    Reported,
}

impl NotActive {
    /// The condition, as Display writes it.
    ///
    /// ```
    /// use provider_lifecycle::NotActive;
    /// assert_eq!(NotActive::Unpaired.describe(), "a cleanup without a startup to pair with");
    /// ```
    #[must_use]
    pub const fn describe(self) -> &'static str {
        match self {
            NotActive::NeverStarted => "it was never started",
            NotActive::Unpaired => "a cleanup without a startup to pair with",
            NotActive::Draining => "the final cleanup is running",
            NotActive::Released => "it was torn down (a startup begins a new generation)",
            NotActive::Reported => "a socket or lower provider reported it",
        }
    }
}

impl fmt::Display for NotActive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

impl fmt::Display for Error {
    /// The condition and its Winsock name and code. The cause of
    /// [`SystemNotReady`](Error::SystemNotReady) is not repeated here: it is
    /// the [`source`](std::error::Error::source), which error reporters
    /// print after this line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            Error::NotInitialised(why) => {
                return write!(
                    f,
                    "the provider is not initialised: {} ({}, {})",
                    why.describe(),
                    self.wsa_name(),
                    self.wsa_code()
                );
            }
            Error::VersionNotSupported => "the requested version is not supported",
            Error::SystemNotReady(_) => "the provider is not ready",
            Error::ProcessLimit => "too many startups",
            Error::InProgress => "an operation is in progress",
            Error::NotSocket => "not a socket of this provider",
            Error::WouldBlock => "the operation would block",
            Error::Fault => "bad pointer",
            Error::NetworkDown => "the network is down",
            Error::InvalidProcTable => "the lower provider's dispatch table is invalid",
            Error::ProviderFailedInit => "the provider failed to initialize",
            Error::Interrupted => "the blocking call was interrupted",
            Error::OperationAborted => "the overlapped operation was aborted",
            Error::Winsock(_) => "the provider reported an error",
            Error::Caused(code, _) => {
                // The text of the code's own variant; the cause is the source.
                return fmt::Display::fmt(&Error::from_wsa_code(*code), f);
            }
        };
        write!(f, "{what} ({}, {})", self.wsa_name(), self.wsa_code())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::SystemNotReady(cause) | Error::Caused(_, cause) => Some(cause.get()),
            _ => None,
        }
    }
}

/// `?` on an I/O error inside [`Provider::initialize`](crate::Provider::initialize)
/// fails the startup with [`Error::SystemNotReady`], the I/O error as its
/// source.
impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::SystemNotReady(Cause::new(e))
    }
}

impl Error {
    /// The Winsock error code of this error (for `*lpErrno` or `WSAGetLastError`).
    ///
    /// ```
    /// use provider_lifecycle::{Error, NotActive};
    /// assert_eq!(Error::NotInitialised(NotActive::Draining).wsa_code(), 10093);
    /// assert_eq!(Error::WouldBlock.wsa_code(), 10035);
    /// ```
    #[must_use]
    pub const fn wsa_code(&self) -> i32 {
        match self {
            Error::NotInitialised(_) => 10093,
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
            Error::Winsock(code) | Error::Caused(code, _) => *code,
        }
    }

    /// The error for a Winsock code a socket or a lower provider reported
    /// ([E1](crate::contract#E1)): the codes of the table above map to their
    /// own variant (10091 to a `SystemNotReady` whose cause names the code),
    /// every other code to [`Error::Winsock`] unchanged, so
    /// `Error::from_wsa_code(c).wsa_code() == c` for every `c`.
    ///
    /// ```
    /// use provider_lifecycle::Error;
    /// for code in [10054, 10093, 10091, 995, 10022, 7] {
    ///     assert_eq!(Error::from_wsa_code(code).wsa_code(), code);
    /// }
    /// ```
    #[must_use]
    pub fn from_wsa_code(code: i32) -> Error {
        match code {
            10093 => Error::NotInitialised(NotActive::Reported),
            10092 => Error::VersionNotSupported,
            10091 => Error::system_not_ready("the provider answered WSASYSNOTREADY (10091)"),
            10067 => Error::ProcessLimit,
            10036 => Error::InProgress,
            10038 => Error::NotSocket,
            10035 => Error::WouldBlock,
            10014 => Error::Fault,
            10050 => Error::NetworkDown,
            10104 => Error::InvalidProcTable,
            10106 => Error::ProviderFailedInit,
            10004 => Error::Interrupted,
            995 => Error::OperationAborted,
            other => Error::Winsock(other),
        }
    }

    /// The Winsock name of this error's code (`"WSANOTINITIALISED"`, ...).
    ///
    /// ```
    /// use provider_lifecycle::{Error, NotActive};
    /// assert_eq!(Error::NotInitialised(NotActive::Released).wsa_name(), "WSANOTINITIALISED");
    /// ```
    #[must_use]
    pub const fn wsa_name(&self) -> &'static str {
        match self {
            Error::NotInitialised(_) => "WSANOTINITIALISED",
            Error::VersionNotSupported => "WSAVERNOTSUPPORTED",
            Error::SystemNotReady(_) => "WSASYSNOTREADY",
            Error::ProcessLimit => "WSAEPROCLIM",
            Error::InProgress => "WSAEINPROGRESS",
            Error::NotSocket => "WSAENOTSOCK",
            Error::WouldBlock => "WSAEWOULDBLOCK",
            Error::Fault => "WSAEFAULT",
            Error::NetworkDown => "WSAENETDOWN",
            Error::InvalidProcTable => "WSAEINVALIDPROCTABLE",
            Error::ProviderFailedInit => "WSAEPROVIDERFAILEDINIT",
            Error::Interrupted => "WSAEINTR",
            Error::OperationAborted => "WSA_OPERATION_ABORTED",
            Error::Winsock(code) => other_name(*code),
            Error::Caused(code, _) => match *code {
                // The codes of the crate's own variants, by their names.
                10093 => "WSANOTINITIALISED",
                10092 => "WSAVERNOTSUPPORTED",
                10091 => "WSASYSNOTREADY",
                10067 => "WSAEPROCLIM",
                10036 => "WSAEINPROGRESS",
                10038 => "WSAENOTSOCK",
                10035 => "WSAEWOULDBLOCK",
                10014 => "WSAEFAULT",
                10050 => "WSAENETDOWN",
                10104 => "WSAEINVALIDPROCTABLE",
                10106 => "WSAEPROVIDERFAILEDINIT",
                10004 => "WSAEINTR",
                995 => "WSA_OPERATION_ABORTED",
                other => other_name(other),
            },
        }
    }

    /// A [`SystemNotReady`](Error::SystemNotReady) caused by `cause`: any
    /// error (kept whole, as the [`source`](std::error::Error::source)) or
    /// a message (`&str`, `String`).
    ///
    /// ```
    /// use provider_lifecycle::Error;
    /// use std::error::Error as _;
    ///
    /// let io = std::io::Error::new(std::io::ErrorKind::AddrInUse, "port 7 taken");
    /// let e = Error::system_not_ready(io);
    /// assert_eq!(e.wsa_code(), 10091);
    /// let cause = e.source().unwrap().downcast_ref::<std::io::Error>().unwrap();
    /// assert_eq!(cause.kind(), std::io::ErrorKind::AddrInUse);
    /// ```
    pub fn system_not_ready(cause: impl Into<BoxError>) -> Error {
        Error::SystemNotReady(Cause::from(cause.into()))
    }

    /// Winsock `code` caused by `cause` ([`Error::Caused`]): the code
    /// reaches the caller unchanged ([E1](crate::contract#E1)), the cause
    /// stays the [`source`](std::error::Error::source).
    ///
    /// ```
    /// use provider_lifecycle::Error;
    /// use std::error::Error as _;
    ///
    /// let e = Error::with_cause(10055, "the send queue is full");
    /// assert_eq!(e.wsa_code(), 10055);
    /// assert_eq!(e.source().unwrap().to_string(), "the send queue is full");
    /// ```
    pub fn with_cause(code: i32, cause: impl Into<BoxError>) -> Error {
        Error::Caused(code, Cause::from(cause.into()))
    }

    /// The Winsock code of an I/O error, with the error as the cause: a
    /// socket over the operating system's sockets reports what the peer
    /// did (`ConnectionReset` is `WSAECONNRESET`, 10054), not a generic
    /// failure. A raw OS error on Windows is already a Winsock code and is
    /// kept; kinds without a Winsock counterpart are `WSAENETDOWN` (10050).
    /// (For `initialize`, `?` on an I/O error gives `SystemNotReady`.)
    ///
    /// ```
    /// use provider_lifecycle::Error;
    /// use std::io;
    /// let e = Error::from_io(io::Error::from(io::ErrorKind::ConnectionReset));
    /// assert_eq!(e.wsa_code(), 10054); // WSAECONNRESET, for lpErrno
    /// assert!(std::error::Error::source(&e).is_some()); // the io::Error stays
    /// ```
    #[must_use]
    pub fn from_io(e: std::io::Error) -> Error {
        use std::io::ErrorKind as K;
        #[cfg(windows)]
        if let Some(code) = e.raw_os_error().filter(|c| (10000..12000).contains(c)) {
            return Error::Caused(code, Cause::new(e));
        }
        let code = match e.kind() {
            K::ConnectionReset => 10054,
            K::ConnectionAborted => 10053,
            K::ConnectionRefused => 10061,
            K::NotConnected => 10057,
            K::BrokenPipe => 10058,
            K::AddrInUse => 10048,
            K::AddrNotAvailable => 10049,
            K::TimedOut => 10060,
            K::WouldBlock => 10035,
            K::Interrupted => 10004,
            K::InvalidInput => 10022,
            K::PermissionDenied => 10013,
            K::OutOfMemory => 10055,
            K::Unsupported => 10045,
            K::HostUnreachable => 10065,
            K::NetworkUnreachable => 10051,
            // NetworkDown, and every kind without a Winsock counterpart.
            _ => 10050,
        };
        Error::Caused(code, Cause::new(e))
    }
}

/// The names of the Winsock codes a provider reports most often beyond the
/// crate's own variants ([`Error::Winsock`]).
const fn other_name(code: i32) -> &'static str {
    match code {
        996 => "WSA_IO_INCOMPLETE",
        997 => "WSA_IO_PENDING",
        10022 => "WSAEINVAL",
        10040 => "WSAEMSGSIZE",
        10045 => "WSAEOPNOTSUPP",
        10053 => "WSAECONNABORTED",
        10054 => "WSAECONNRESET",
        10055 => "WSAENOBUFS",
        10057 => "WSAENOTCONN",
        10058 => "WSAESHUTDOWN",
        10060 => "WSAETIMEDOUT",
        10061 => "WSAECONNREFUSED",
        10013 => "WSAEACCES",
        10048 => "WSAEADDRINUSE",
        10049 => "WSAEADDRNOTAVAIL",
        10051 => "WSAENETUNREACH",
        10065 => "WSAEHOSTUNREACH",
        _ => "a Winsock error",
    }
}

/// The provider's own error inside [`Error::SystemNotReady`]: shared (so
/// [`Error`] stays `Clone`), shown by its `Display`, and reachable whole
/// through [`get`](Cause::get) or the error's
/// [`source`](std::error::Error::source). Two causes are equal when they
/// are the same error or render the same text.
///
/// ```
/// use provider_lifecycle::Error;
/// use std::error::Error as _;
/// let e = Error::system_not_ready("no network adapter");
/// let Error::SystemNotReady(cause) = &e else { unreachable!() };
/// assert_eq!(cause.to_string(), "no network adapter");
/// assert_eq!(e.source().unwrap().to_string(), "no network adapter");
/// ```
#[derive(Clone)]
pub struct Cause(Arc<dyn std::error::Error + Send + Sync + 'static>);

impl Cause {
    /// Wraps an error.
    pub fn new(e: impl std::error::Error + Send + Sync + 'static) -> Cause {
        Cause(Arc::new(e))
    }

    /// The error itself.
    #[must_use]
    pub fn get(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }
}

impl From<BoxError> for Cause {
    fn from(e: BoxError) -> Cause {
        Cause(Arc::from(e))
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl PartialEq for Cause {
    fn eq(&self, other: &Cause) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.to_string() == other.0.to_string()
    }
}

impl Eq for Cause {}

/// The boxed error type user callbacks (sockets, resources, hooks) return.
///
/// ```
/// use provider_lifecycle::BoxError;
/// // What a socket's or a resource's hook returns on failure: any error.
/// fn flush() -> Result<(), BoxError> {
///     Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe).into())
/// }
/// assert!(flush().is_err());
/// ```
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[cfg(test)]
mod tests;
