//! A socket's line in the report: how its end went ([D1](crate::contract#D1)).

use std::fmt;

use crate::hook::HookOutcome;
use crate::{Linger, SocketHandle};

/// Why a socket's drain ended the way it did. For `Failed` and `Panicked`
/// the message is in [`SocketReport::error`].
///
/// ```
/// # use provider_lifecycle::*;
/// # use std::task::{Context, Poll};
/// # struct S(u64);
/// # impl Socket for S {
/// #     fn unsent(&self) -> u64 { self.0 }
/// #     fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> { self.0 = 0; Poll::Ready(Ok(())) }
/// #     fn abort(&mut self) -> Result<(), BoxError> { self.0 = 0; Ok(()) }
/// # }
/// # struct P;
/// # impl Provider for P {
/// #     type Socket = S;
/// #     type State = ();
/// #     fn versions(&self) -> VersionRange { VersionRange::new(Version::new(2, 2), Version::new(2, 2)) }
/// #     fn initialize(&self, _: &mut Registrar) -> Result<(), Error> { Ok(()) }
/// # }
/// let l = Lifecycle::new(P);
/// l.startup(Version::new(2, 2))?;
/// let h = l.register_socket(S(100))?; // 100 bytes unsent, left open
/// let report = l.cleanup()?.into_report().unwrap();
/// // The default open-socket policy resets: the bytes are counted, not lost silently.
/// assert_eq!(report.socket(h).unwrap().outcome, SocketOutcome::Reset);
/// # Ok::<(), Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum SocketOutcome {
    /// Every unsent byte was delivered.
    Flushed,
    /// Closed abortively (the `Reset` open-socket policy, or `Linger::Abort`);
    /// whatever was unsent is counted as discarded.
    Reset,
    /// The drain deadline cut the flush short; the rest was discarded.
    Deadline,
    /// The socket's own linger timeout cut the flush short; the rest was
    /// discarded.
    LingerTimeout,
    /// `poll_flush` failed; the rest was discarded.
    Failed,
    /// A socket method panicked; the rest was discarded.
    Panicked,
    /// A blocking close with a linger timeout was ended by the final
    /// cleanup's cancel step ([S6](crate::contract#S6)); the rest was
    /// discarded. A Winsock shim answers `WSAEINTR`
    /// ([`Error::Interrupted`](crate::Error::Interrupted)) for it.
    Cancelled,
    /// Only from [`close_socket`](crate::Lifecycle::close_socket): closed
    /// with `Linger::Background` and data left; the lifecycle keeps flushing
    /// it, and its final line appears in a drain report. The handle is
    /// already invalid.
    Background,
    /// Only from [`close_socket`](crate::Lifecycle::close_socket): the
    /// handle was one of several to one socket ([W3](crate::contract#W3));
    /// it is closed, and the socket stays open under the others. It closes,
    /// with its linger, when its last handle does.
    Retained,
    /// The final cleanup's guard wait passed its bound while an operation
    /// was using this socket ([L16](crate::contract#L16)): the socket was left
    /// as it is, never closed or freed, and its handle is invalid. Its
    /// linger in the line is unknown (`Linger::Abort` is shown).
    Abandoned,
}

impl fmt::Display for SocketOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SocketOutcome::Flushed => f.write_str("flushed"),
            SocketOutcome::Reset => f.write_str("reset"),
            SocketOutcome::Deadline => f.write_str("drain deadline"),
            SocketOutcome::LingerTimeout => f.write_str("linger timeout"),
            SocketOutcome::Failed => f.write_str("flush failed"),
            SocketOutcome::Panicked => f.write_str("panicked"),
            SocketOutcome::Background => f.write_str("flushing in the background"),
            SocketOutcome::Cancelled => f.write_str("cancelled by the final cleanup"),
            SocketOutcome::Retained => f.write_str("handle closed, socket still open"),
            SocketOutcome::Abandoned => f.write_str("abandoned to an operation in flight"),
        }
    }
}

/// Whether a socket was still open at the final cleanup or had already been
/// closed by the application (and was flushing in the background).
///
/// ```
/// # use provider_lifecycle::*;
/// # use std::task::{Context, Poll};
/// # struct S(u64);
/// # impl Socket for S {
/// #     fn unsent(&self) -> u64 { self.0 }
/// #     fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> { self.0 = 0; Poll::Ready(Ok(())) }
/// #     fn abort(&mut self) -> Result<(), BoxError> { self.0 = 0; Ok(()) }
/// # }
/// # struct P;
/// # impl Provider for P {
/// #     type Socket = S;
/// #     type State = ();
/// #     fn versions(&self) -> VersionRange { VersionRange::new(Version::new(2, 2), Version::new(2, 2)) }
/// #     fn initialize(&self, _: &mut Registrar) -> Result<(), Error> { Ok(()) }
/// # }
/// let l = Lifecycle::new(P);
/// l.startup(Version::new(2, 2))?;
/// let h = l.register_socket(S(100))?;
/// let report = l.cleanup()?.into_report().unwrap();
/// assert_eq!(report.socket(h).unwrap().phase, SocketPhase::Open); // still open at the end
/// # Ok::<(), Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum SocketPhase {
    /// Open at the final cleanup; closed by the open-socket policy ([L6.2](crate::contract#L6.2)).
    Open,
    /// Closed gracefully earlier by the application and handed to the
    /// background, still flushing ([L6.3](crate::contract#L6.3)).
    Background,
}

/// One socket's line in the report.
///
/// ```
/// # use provider_lifecycle::*;
/// # use std::task::{Context, Poll};
/// # struct S(u64);
/// # impl Socket for S {
/// #     fn unsent(&self) -> u64 { self.0 }
/// #     fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> { self.0 = 0; Poll::Ready(Ok(())) }
/// #     fn abort(&mut self) -> Result<(), BoxError> { self.0 = 0; Ok(()) }
/// # }
/// # struct P;
/// # impl Provider for P {
/// #     type Socket = S;
/// #     type State = ();
/// #     fn versions(&self) -> VersionRange { VersionRange::new(Version::new(2, 2), Version::new(2, 2)) }
/// #     fn initialize(&self, _: &mut Registrar) -> Result<(), Error> { Ok(()) }
/// # }
/// let l = Lifecycle::new(P);
/// l.startup(Version::new(2, 2))?;
/// let h = l.register_socket(S(100))?;
/// let report = l.cleanup()?.into_report().unwrap();
/// let line: &SocketReport = report.socket(h).unwrap();
/// assert_eq!((line.bytes_flushed, line.bytes_discarded), (0, 100));
/// assert!(!line.is_clean());
/// # Ok::<(), Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct SocketReport {
    /// The socket's handle.
    pub handle: SocketHandle,
    /// Its linger setting.
    pub linger: Linger,
    /// Open or already closing when the drain began.
    pub phase: SocketPhase,
    /// Bytes delivered during the drain.
    pub bytes_flushed: u64,
    /// Bytes discarded (never silently: this is the count).
    pub bytes_discarded: u64,
    /// How its flush ended.
    pub outcome: SocketOutcome,
    /// Pending overlapped operations its close ended with
    /// `WSA_OPERATION_ABORTED` ([W4](crate::contract#W4)): with their
    /// notifications at `close_socket`, silently at the final cleanup.
    pub aborted_operations: u32,
    /// What failed, if anything: the flush error or panic message, and how
    /// `abort` and `release` went. `None` when all went well; kept out of
    /// line so that a report of many sockets stays small (64 bytes a line).
    pub faults: Option<Box<SocketFaults>>,
}

/// What went wrong with one socket (see [`SocketReport::faults`]).
///
/// ```
/// use provider_lifecycle::{HookOutcome, SocketFaults};
/// let faults = SocketFaults::default(); // what a line without faults would say
/// assert_eq!((faults.error, faults.abort, faults.release), (None, HookOutcome::Ok, HookOutcome::Ok));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct SocketFaults {
    /// The flush error or panic message behind `SocketOutcome::Failed` or
    /// `SocketOutcome::Panicked`.
    pub error: Option<String>,
    /// How `abort` went, if it was called.
    pub abort: HookOutcome,
    /// How `release` went.
    pub release: HookOutcome,
}

/// The outcome of a hook that succeeded, for the accessors below.
static HOOK_OK: HookOutcome = HookOutcome::Ok;

impl SocketReport {
    /// A socket's line, the one place lines are built: nothing flushed or
    /// discarded and no fault until [`bytes`](SocketReport::bytes) and
    /// [`with_faults`](SocketReport::with_faults) say otherwise.
    #[inline]
    pub(crate) fn new(
        handle: SocketHandle,
        linger: Linger,
        phase: SocketPhase,
        outcome: SocketOutcome,
        aborted_operations: u32,
    ) -> SocketReport {
        SocketReport {
            handle,
            linger,
            phase,
            bytes_flushed: 0,
            bytes_discarded: 0,
            outcome,
            aborted_operations,
            faults: None,
        }
    }

    /// The line with what was flushed and discarded.
    #[inline]
    pub(crate) fn bytes(mut self, flushed: u64, discarded: u64) -> SocketReport {
        self.bytes_flushed = flushed;
        self.bytes_discarded = discarded;
        self
    }

    /// The line with its faults (`None`: all went well).
    #[inline]
    pub(crate) fn with_faults(mut self, faults: Option<Box<SocketFaults>>) -> SocketReport {
        self.faults = faults;
        self
    }

    /// Nothing discarded, nothing failed.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.bytes_discarded == 0
            && matches!(
                self.outcome,
                SocketOutcome::Flushed
                    | SocketOutcome::Reset
                    | SocketOutcome::Background
                    | SocketOutcome::Retained
            )
            && self.faults.is_none()
    }

    /// Whether this line must be listed in the final report
    /// ([D1](crate::contract#D1)): it moved or lost bytes, something failed
    /// or panicked, operations were aborted, or it ended otherwise than
    /// flushed or reset.
    pub(crate) fn owes_a_line(&self) -> bool {
        !(matches!(self.outcome, SocketOutcome::Flushed | SocketOutcome::Reset)
            && self.bytes_flushed == 0
            && self.bytes_discarded == 0
            && self.aborted_operations == 0
            && self.faults.is_none())
    }

    /// How `abort` went (`Ok` if it was not called).
    #[must_use]
    pub fn abort(&self) -> &HookOutcome {
        self.faults.as_ref().map_or(&HOOK_OK, |f| &f.abort)
    }

    /// How `release` went.
    #[must_use]
    pub fn release(&self) -> &HookOutcome {
        self.faults.as_ref().map_or(&HOOK_OK, |f| &f.release)
    }

    /// The flush error or panic message, for `Failed` and `Panicked`.
    #[must_use]
    pub fn error(&self) -> Option<&str> {
        self.faults.as_ref().and_then(|f| f.error.as_deref())
    }
}

impl SocketFaults {
    /// `None` when nothing failed.
    pub(crate) fn of(
        error: Option<String>,
        abort: HookOutcome,
        release: HookOutcome,
    ) -> Option<Box<SocketFaults>> {
        if error.is_none() && abort.is_ok() && release.is_ok() {
            None
        } else {
            Some(Box::new(SocketFaults {
                error,
                abort,
                release,
            }))
        }
    }
}
