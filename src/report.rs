//! The drain report the final cleanup returns ([D1](crate::contract#D1)),
//! and the line that closing one socket produces.

use std::fmt;
use std::time::Duration;

pub use crate::hook::HookOutcome;
use crate::{Linger, SocketHandle};

mod line;

pub use line::{SocketFaults, SocketOutcome, SocketPhase, SocketReport};

/// Background closes that ended badly while Active beyond the report's
/// line limit (1,024 a generation): counted, not listed, so a long
/// generation cannot grow the report without bound while totals stay exact.
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
/// let report = l.cleanup()?.into_report().unwrap();
/// // Background closes past the 1,024 lines a generation lists: none here.
/// let s: SummarizedSockets = report.summarized;
/// assert_eq!((s.sockets, s.bytes_flushed, s.bytes_discarded), (0, 0, 0));
/// # Ok::<(), Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct SummarizedSockets {
    /// How many sockets.
    pub sockets: u64,
    /// Bytes they delivered.
    pub bytes_flushed: u64,
    /// Bytes they discarded.
    pub bytes_discarded: u64,
}

impl SummarizedSockets {
    pub(crate) fn add(&mut self, r: &SocketReport) {
        self.sockets += 1;
        self.bytes_flushed += r.bytes_flushed;
        self.bytes_discarded += r.bytes_discarded;
    }
}

/// One resource's line in the report.
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
/// l.register_resource_fn("cache", || Err("disk full".into()))?;
/// let report = l.cleanup()?.into_report().unwrap();
/// let r: &ResourceReport = &report.resources[0];
/// assert_eq!(r.name, "cache");
/// assert_eq!(r.outcome, HookOutcome::Failed("disk full".into())); // reported, not fatal
/// # Ok::<(), Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct ResourceReport {
    /// The name it was registered under.
    pub name: String,
    /// How its release went.
    pub outcome: HookOutcome,
}

/// The cancel-and-wait phase ([L6.1](crate::contract#L6.1)).
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
/// let report = l.cleanup()?.into_report().unwrap();
/// let ops: &OperationsReport = &report.operations;
/// assert_eq!((ops.waited_for, ops.abandoned), (0, 0)); // no guard was live
/// # Ok::<(), Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct OperationsReport {
    /// What the provider's cancel hook said it cancelled.
    pub cancelled: usize,
    /// Operation guards counted when the drain shut out new ones, all of
    /// which it waited for. An `enter` racing that instant may be counted
    /// even though it then fails.
    pub waited_for: usize,
    /// How the cancel hook went.
    pub cancel: HookOutcome,
    /// Whether guards outlived the drain deadline. The drain never frees
    /// anything under a live guard (rule [O2](crate::contract#O2)), so it kept waiting; sockets then
    /// had no time left to flush.
    pub overran_deadline: bool,
    /// Guards still outstanding when the guard wait's bound passed
    /// ([`Config::with_guard_wait_limit`](crate::Config::with_guard_wait_limit),
    /// [L16](crate::contract#L16)); 0 if it did not. When nonzero, the
    /// provider's state and resources were abandoned (their outcome is
    /// [`HookOutcome::Abandoned`]), and so was any socket an operation was
    /// using ([`SocketOutcome::Abandoned`]).
    pub abandoned: usize,
}

/// How long each phase of the final cleanup took.
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
/// let t: PhaseTimings = l.cleanup()?.into_report().unwrap().timings;
/// assert!(t.operations + t.sockets + t.resources + t.prepare_unload <= t.total);
/// # Ok::<(), Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct PhaseTimings {
    /// Calling the cancel hook and waiting for the guards ([L6.1](crate::contract#L6.1)).
    pub operations: Duration,
    /// Closing open sockets and flushing graceful ones ([L6.2](crate::contract#L6.2), [L6.3](crate::contract#L6.3)).
    pub sockets: Duration,
    /// Releasing resources ([L6.4](crate::contract#L6.4)).
    pub resources: Duration,
    /// The prepare-to-unload hook ([L6.5](crate::contract#L6.5)).
    pub prepare_unload: Duration,
    /// The whole final cleanup.
    pub total: Duration,
}

/// What the final cleanup did ([D1](crate::contract#D1)). Returned in
/// [`Cleanup::Final`](crate::Cleanup::Final).
///
/// ```
/// use provider_lifecycle::*;
/// struct P;
/// impl Provider for P {
///     type Socket = NoSocket;
///     type State = ();
///     fn versions(&self) -> VersionRange {
///         VersionRange::new(Version::new(2, 2), Version::new(2, 2))
///     }
///     fn initialize(&self, init: &mut Registrar) -> Result<(), Error> {
///         init.register_fn("table", || Ok(()));
///         init.register_fn("pool", || Err("pool busy".into()));
///         Ok(())
///     }
/// }
/// let l = Lifecycle::new(P);
/// l.startup(Version::new(2, 2))?;
/// let report = l.cleanup()?.into_report().expect("the final cleanup");
/// assert!(!report.is_clean()); // a release failed, and the report says so
/// assert_eq!(report.resources[0].name, "pool"); // reverse order
/// assert_eq!(report.resources[0].outcome, HookOutcome::Failed("pool busy".into()));
/// assert_eq!(report.resources[1].outcome, HookOutcome::Ok);
/// println!("{report}"); // a readable table
/// # Ok::<(), Error>(())
/// ```
#[derive(Debug, Clone, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct DrainReport {
    /// The generation that was torn down.
    pub generation: u64,
    /// Cancelled operations and waited-for guards.
    pub operations: OperationsReport,
    /// One line per socket: the open ones first, then the closing ones,
    /// then background closes that ended badly while Active.
    pub sockets: Vec<SocketReport>,
    /// Background closes that ended badly while Active past the line limit.
    pub summarized: SummarizedSockets,
    /// Background closes that delivered everything while Active
    /// ([S4](crate::contract#S4)): counted, not listed. Their bytes are part
    /// of [`bytes_flushed`](DrainReport::bytes_flushed).
    pub flushed_in_background: SummarizedSockets,
    /// Sockets still open at the final cleanup that had nothing unsent and
    /// closed cleanly (flushed or reset with no byte to lose, no failure,
    /// no aborted operation): counted, not listed
    /// ([D1](crate::contract#D1)), so that a cleanup of many idle sockets
    /// writes one number instead of a line each.
    /// [`socket`](DrainReport::socket) finds no line for them.
    pub closed_clean: u64,
    /// How dropping the provider's per-generation
    /// [`State`](crate::Provider::State) went: `Panicked` if its `Drop`
    /// panicked. The state is dropped after the sockets and before the
    /// resources ([L6.4](crate::contract#L6.4)).
    pub state: HookOutcome,
    /// One line per resource, in release order (reverse of registration).
    pub resources: Vec<ResourceReport>,
    /// How the prepare-to-unload hook went.
    pub prepare_unload: HookOutcome,
    /// Whether the drain deadline expired before the sockets were done.
    pub deadline_hit: bool,
    /// Phase durations.
    pub timings: PhaseTimings,
    /// Lookup index for [`socket`](DrainReport::socket), built on demand.
    #[cfg_attr(feature = "serde", serde(skip))]
    pub(crate) index: std::sync::OnceLock<Box<[(u64, usize)]>>,
}

impl PartialEq for DrainReport {
    fn eq(&self, other: &DrainReport) -> bool {
        self.generation == other.generation
            && self.operations == other.operations
            && self.sockets == other.sockets
            && self.summarized == other.summarized
            && self.flushed_in_background == other.flushed_in_background
            && self.closed_clean == other.closed_clean
            && self.state == other.state
            && self.resources == other.resources
            && self.prepare_unload == other.prepare_unload
            && self.deadline_hit == other.deadline_hit
            && self.timings == other.timings
    }
}

impl Eq for DrainReport {}

impl DrainReport {
    /// Clean: nothing was discarded, no hook failed or panicked, and no
    /// deadline was hit. Abortive closes of sockets with nothing unsent are
    /// clean.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        !self.deadline_hit
            && !self.operations.overran_deadline
            && self.operations.abandoned == 0
            && self.operations.cancel.is_ok()
            && self.prepare_unload.is_ok()
            && self.state.is_ok()
            && self.sockets.iter().all(SocketReport::is_clean)
            && self.summarized.sockets == 0
            && self.resources.iter().all(|r| r.outcome.is_ok())
    }

    /// Bytes delivered over all sockets of the report: during the drain, and
    /// by background closes of the generation.
    #[must_use]
    pub fn bytes_flushed(&self) -> u64 {
        self.sockets.iter().map(|s| s.bytes_flushed).sum::<u64>()
            + self.summarized.bytes_flushed
            + self.flushed_in_background.bytes_flushed
    }

    /// Bytes discarded, over all sockets.
    #[must_use]
    pub fn bytes_discarded(&self) -> u64 {
        self.sockets.iter().map(|s| s.bytes_discarded).sum::<u64>()
            + self.summarized.bytes_discarded
    }

    /// Files the line of a socket the final cleanup ended: listed if it
    /// owes one, else counted in `closed_clean`.
    pub(crate) fn record(&mut self, line: SocketReport) {
        if line.owes_a_line() {
            self.sockets.push(line);
        } else {
            self.closed_clean += 1;
        }
    }

    /// The report line of one socket, in O(log n) (an index sorted by
    /// handle is built on the first call). `None` for a socket counted in
    /// [`closed_clean`](DrainReport::closed_clean) instead of listed.
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
    /// let config = Config::new().with_open_socket_policy(OpenSocketPolicy::Reset);
    /// let l = Lifecycle::with_config(P, config);
    /// l.startup(Version::new(2, 2))?;
    /// let busy = l.register_socket(S(7))?; // 7 bytes unsent
    /// let idle = l.register_socket(S(0))?;
    /// let report = l.cleanup()?.into_report().expect("the final cleanup");
    /// assert_eq!(report.socket(busy).map(|s| s.bytes_discarded), Some(7));
    /// assert!(report.socket(idle).is_none()); // nothing to say: counted (D1)
    /// assert_eq!(report.closed_clean, 1);
    /// assert_eq!(report.bytes_discarded(), 7);
    /// # Ok::<(), Error>(())
    /// ```
    #[must_use]
    pub fn socket(&self, handle: SocketHandle) -> Option<&SocketReport> {
        let index = self.index.get_or_init(|| {
            let mut index: Vec<(u64, usize)> = self
                .sockets
                .iter()
                .enumerate()
                .map(|(i, s)| (s.handle.to_raw(), i))
                .collect();
            index.sort_unstable();
            index.into_boxed_slice()
        });
        let raw = handle.to_raw();
        let found = index
            .binary_search_by_key(&raw, |&(r, _)| r)
            .ok()
            .and_then(|at| self.sockets.get(index[at].1))
            .filter(|s| s.handle == handle);
        // `sockets` is a public field: if it changed since the index was
        // built, fall back to a scan.
        found.or_else(|| self.sockets.iter().find(|s| s.handle == handle))
    }
}

impl fmt::Display for DrainReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "drain of generation {}: {} in {:?}",
            self.generation,
            if self.is_clean() {
                "clean"
            } else {
                "NOT clean"
            },
            self.timings.total
        )?;
        let o = &self.operations;
        writeln!(
            f,
            "  operations: {} cancelled, {} waited for, cancel hook {}{} ({:?})",
            o.cancelled,
            o.waited_for,
            o.cancel,
            if o.overran_deadline {
                ", guards overran the deadline"
            } else {
                ""
            },
            self.timings.operations
        )?;
        if o.abandoned != 0 {
            writeln!(
                f,
                "  {} operations still in flight at the guard wait limit: state, resources \
                 and sockets in use abandoned (never freed)",
                o.abandoned
            )?;
        }
        writeln!(
            f,
            "  sockets: {} ({} bytes flushed, {} discarded{}) ({:?})",
            self.sockets.len(),
            self.bytes_flushed(),
            self.bytes_discarded(),
            if self.deadline_hit {
                ", drain deadline hit"
            } else {
                ""
            },
            self.timings.sockets
        )?;
        if !self.sockets.is_empty() {
            writeln!(
                f,
                "    {:<18} {:<8} {:<14} {:>12} {:>12}  outcome",
                "handle", "phase", "linger", "flushed", "discarded"
            )?;
        }
        for s in &self.sockets {
            let linger = match s.linger {
                Linger::Background => "background".to_owned(),
                Linger::Abort => "abort".to_owned(),
                Linger::Timeout(d) => format!("timeout {d:?}"),
            };
            let phase = match s.phase {
                SocketPhase::Open => "open",
                SocketPhase::Background => "background",
            };
            write!(
                f,
                "    {:<18} {:<8} {:<14} {:>12} {:>12}  {}",
                s.handle.to_string(),
                phase,
                linger,
                s.bytes_flushed,
                s.bytes_discarded,
                s.outcome
            )?;
            if let Some(e) = s.error() {
                write!(f, ": {e}")?;
            }
            if !s.abort().is_ok() {
                write!(f, "; abort {}", s.abort())?;
            }
            if !s.release().is_ok() {
                write!(f, "; release {}", s.release())?;
            }
            writeln!(f)?;
        }
        if self.flushed_in_background.sockets > 0 {
            writeln!(
                f,
                "    and {} background closes that delivered everything while Active ({} bytes)",
                self.flushed_in_background.sockets, self.flushed_in_background.bytes_flushed
            )?;
        }
        if self.closed_clean > 0 {
            writeln!(
                f,
                "    and {} idle sockets that closed cleanly (counted, not listed)",
                self.closed_clean
            )?;
        }
        if self.summarized.sockets > 0 {
            writeln!(
                f,
                "    and {} more background closes that ended badly ({} flushed, {} discarded)",
                self.summarized.sockets,
                self.summarized.bytes_flushed,
                self.summarized.bytes_discarded
            )?;
        }
        if !self.state.is_ok() {
            writeln!(f, "  provider state: {}", self.state)?;
        }
        writeln!(
            f,
            "  resources: {} released in reverse order ({:?})",
            self.resources.len(),
            self.timings.resources
        )?;
        for r in &self.resources {
            writeln!(f, "    {}: {}", r.name, r.outcome)?;
        }
        write!(
            f,
            "  prepare-to-unload: {} ({:?})",
            self.prepare_unload, self.timings.prepare_unload
        )
    }
}

#[cfg(test)]
mod tests;
