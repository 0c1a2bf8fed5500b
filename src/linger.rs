//! How a socket closes: Winsock's `linger` setting as an enum, and its
//! encoding to and from the `LINGER` structure ([S1](crate::contract#S1)).

use std::time::Duration;

/// How a socket closes: Winsock's `linger` structure as an enum.
/// These are the three closes Winsock's `linger` can ask for, so the enum
/// never grows.
///
/// | linger | Winsock setting | close while Active |
/// |---|---|---|
/// | `Background` (default) | `l_onoff = 0` | returns at once; the lifecycle keeps the socket, flushing, until its data is out |
/// | `Abort` | `l_onoff ≠ 0`, `l_linger = 0` | returns at once; unsent data discarded (reported), connection reset |
/// | `Timeout(d)`, blocking | `l_onoff ≠ 0`, `l_linger = d` | blocks until flushed or `d` elapsed; the outcome says which |
/// | `Timeout(d)`, non-blocking | same | if it cannot finish now: [`Error::WouldBlock`](crate::Error::WouldBlock), handle still valid |
///
/// ```
/// use provider_lifecycle::Linger;
/// use std::time::Duration;
/// // SO_LINGER as Winsock sets it: (l_onoff, l_linger in seconds).
/// assert_eq!(Linger::from_winsock(0, 0), Linger::Background);
/// assert_eq!(Linger::from_winsock(1, 0), Linger::Abort);
/// assert_eq!(Linger::from_winsock(1, 5), Linger::Timeout(Duration::from_secs(5)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum Linger {
    /// Graceful close in the background (`l_onoff = 0`).
    #[default]
    Background,
    /// Abortive close: discard unsent data, reset (`l_linger = 0`).
    Abort,
    /// Graceful close bounded by a timeout (`l_linger = d`).
    Timeout(Duration),
}

impl Linger {
    /// The setting for a Winsock `linger` structure (`l_linger` in seconds).
    ///
    /// ```
    /// use provider_lifecycle::Linger;
    /// use std::time::Duration;
    /// assert_eq!(Linger::from_winsock(0, 0), Linger::Background); // SO_LINGER off
    /// assert_eq!(Linger::from_winsock(1, 0), Linger::Abort); // on, 0 s: reset
    /// assert_eq!(Linger::from_winsock(1, 5), Linger::Timeout(Duration::from_secs(5)));
    /// ```
    #[must_use]
    pub const fn from_winsock(l_onoff: u16, l_linger: u16) -> Linger {
        match (l_onoff, l_linger) {
            (0, _) => Linger::Background,
            (_, 0) => Linger::Abort,
            (_, secs) => Linger::Timeout(Duration::from_secs(secs as u64)),
        }
    }

    /// The Winsock `linger` structure for this setting, `(l_onoff,
    /// l_linger)`: the inverse of [`from_winsock`](Linger::from_winsock), a
    /// timeout rounded up to whole seconds and capped at 65,535.
    ///
    /// ```
    /// use provider_lifecycle::Linger;
    /// use std::time::Duration;
    /// assert_eq!(Linger::Background.to_winsock(), (0, 0));
    /// assert_eq!(Linger::Abort.to_winsock(), (1, 0));
    /// assert_eq!(Linger::Timeout(Duration::from_secs(5)).to_winsock(), (1, 5));
    /// assert_eq!(Linger::from_winsock(1, 7).to_winsock(), (1, 7));
    /// ```
    #[must_use]
    pub const fn to_winsock(self) -> (u16, u16) {
        match self {
            Linger::Background => (0, 0),
            Linger::Abort => (1, 0),
            Linger::Timeout(d) => {
                let secs = d.as_secs() + (d.subsec_nanos() > 0) as u64;
                let secs = if secs > u16::MAX as u64 {
                    u16::MAX
                } else {
                    secs as u16
                };
                // A sub-second timeout still lingers: at least 1 s.
                (1, if secs == 0 { 1 } else { secs })
            }
        }
    }
}
