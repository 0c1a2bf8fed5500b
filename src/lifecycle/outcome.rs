//! What startups, cleanups and snapshots return.

use crate::Negotiated;
use crate::report::DrainReport;
use crate::state::State;

/// The result of a successful startup.
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
/// let started = l.startup(Version::new(2, 2))?;
/// assert!(started.initialized); // the generation's first startup
/// assert_eq!(started.generation, 0);
/// assert_eq!(started.negotiated.version, Version::new(2, 2));
/// # Ok::<(), Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Started {
    /// The negotiated version and the provider's highest ([V2](crate::contract#V2)). A caller that
    /// rejects it must still call cleanup once ([L3](crate::contract#L3)).
    pub negotiated: Negotiated,
    /// The generation this startup joined.
    pub generation: u64,
    /// Whether this startup ran the provider's initialization (the first one
    /// of its generation).
    pub initialized: bool,
}

/// The result of a successful cleanup: a plain decrement or the final one.
/// These are the only two a cleanup can be ([L5](crate::contract#L5),
/// [L6](crate::contract#L6)), so the enum never grows.
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
/// l.startup(Version::new(2, 2))?;
/// l.startup(Version::new(2, 2))?;
/// match l.cleanup()? {
///     Cleanup::Decremented { remaining } => assert_eq!(remaining, 1),
///     Cleanup::Final(_) => unreachable!("one startup is still counted"),
/// }
/// let Cleanup::Final(report) = l.cleanup()? else { unreachable!() };
/// assert!(report.is_clean());
/// # Ok::<(), Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cleanup {
    /// The count went down; nothing was closed
    /// ([L5](crate::contract#L5)).
    Decremented {
        /// The count after this cleanup: at least 1, except in one race.
        /// A cleanup that takes the count to 0 while a startup joins the
        /// same generation may find that startup's own cleanup ended the
        /// generation first; it was then a plain decrement with nothing
        /// left to count in its generation, and says `remaining: 0`.
        remaining: u32,
    },
    /// This was the final cleanup: the provider is torn down and Released,
    /// and this is what the drain did ([L6](crate::contract#L6),
    /// [D1](crate::contract#D1)).
    Final(Box<DrainReport>),
}

impl Cleanup {
    /// The drain report, if this was the final cleanup.
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
    /// l.startup(Version::new(2, 2))?;
    /// l.startup(Version::new(2, 2))?;
    /// assert!(l.cleanup()?.report().is_none()); // only decremented
    /// let last = l.cleanup()?;
    /// assert!(last.report().is_some_and(|r| r.is_clean()));
    /// # Ok::<(), Error>(())
    /// ```
    #[must_use]
    pub fn report(&self) -> Option<&DrainReport> {
        match self {
            Cleanup::Final(r) => Some(r),
            Cleanup::Decremented { .. } => None,
        }
    }

    /// The drain report by value, if this was the final cleanup.
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
    /// l.startup(Version::new(2, 2))?;
    /// let report = l.cleanup()?.into_report().expect("the final cleanup");
    /// assert!(report.sockets.is_empty());
    /// # Ok::<(), Error>(())
    /// ```
    #[must_use]
    pub fn into_report(self) -> Option<DrainReport> {
        match self {
            Cleanup::Final(r) => Some(*r),
            Cleanup::Decremented { .. } => None,
        }
    }

    /// Whether this was the final cleanup.
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
    /// l.startup(Version::new(2, 2))?;
    /// assert!(!l.cleanup()?.is_final()); // 2 -> 1: only counted
    /// let last = l.cleanup()?;
    /// assert!(last.is_final()); // 1 -> 0: the drain ran
    /// assert!(last.report().expect("a final cleanup has one").is_clean());
    /// # Ok::<(), Error>(())
    /// ```
    #[must_use]
    pub fn is_final(&self) -> bool {
        matches!(self, Cleanup::Final(_))
    }
}

/// A consistent reading of the state, count and generation.
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
/// let s: Snapshot = l.snapshot();
/// assert_eq!((s.state, s.count, s.generation), (State::Uninitialized, 0, 0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Snapshot {
    /// The state.
    pub state: State,
    /// The reference count (0 unless Active).
    pub count: u32,
    /// The generation: how many final cleanups have completed (modulo 2^31).
    pub generation: u64,
}
