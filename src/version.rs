//! Version negotiation (rules [V1](crate::contract#V1)–[V3](crate::contract#V3)).

use std::fmt;

use crate::Error;

/// A `major.minor` version (rule [V1](crate::contract#V1)). Versions order by `(major, minor)`.
///
/// Winsock encodes a version in a 16-bit word with the major in the low byte
/// and the minor in the high byte (`MAKEWORD(major, minor)`):
///
/// ```
/// use provider_lifecycle::Version;
/// let v = Version::new(2, 2);
/// assert_eq!(v.to_word(), 0x0202);
/// assert_eq!(Version::from_word(0x0102), Version::new(2, 1)); // MAKEWORD(2, 1)
/// assert!(Version::new(1, 1) < Version::new(2, 0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Version {
    /// The major version (the word's low byte).
    pub major: u8,
    /// The minor version (the word's high byte).
    pub minor: u8,
}

impl Version {
    /// `major.minor`.
    ///
    /// ```
    /// use provider_lifecycle::Version;
    /// let v = Version::new(2, 2);
    /// assert_eq!(v.to_word(), 0x0202); // MAKEWORD(2, 2)
    /// assert!(Version::new(1, 1) < v);
    /// ```
    #[must_use]
    #[inline]
    pub const fn new(major: u8, minor: u8) -> Version {
        Version { major, minor }
    }

    /// Decodes a Winsock version word (`LOBYTE` = major, `HIBYTE` = minor).
    ///
    /// ```
    /// use provider_lifecycle::Version;
    /// // wVersionRequested's low byte is the major version.
    /// assert_eq!(Version::from_word(0x0102), Version::new(2, 1));
    /// ```
    #[must_use]
    #[inline]
    pub const fn from_word(word: u16) -> Version {
        Version {
            major: (word & 0xff) as u8,
            minor: (word >> 8) as u8,
        }
    }

    /// Encodes as a Winsock version word, `MAKEWORD(major, minor)`.
    ///
    /// ```
    /// use provider_lifecycle::Version;
    /// assert_eq!(Version::new(2, 1).to_word(), 0x0102);
    /// ```
    #[must_use]
    #[inline]
    pub const fn to_word(self) -> u16 {
        (self.major as u16) | ((self.minor as u16) << 8)
    }
}

// Ordered as (major, minor), which is the order of this 16-bit key: one
// comparison instead of two branches, on every startup's fast path.
impl Version {
    #[inline]
    pub(crate) const fn key(self) -> u16 {
        ((self.major as u16) << 8) | self.minor as u16
    }
}

impl Ord for Version {
    #[inline]
    fn cmp(&self, other: &Version) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

impl PartialOrd for Version {
    #[inline]
    fn partial_cmp(&self, other: &Version) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The versions a provider supports, `lowest..=highest` (rule [V2](crate::contract#V2)).
///
/// ```
/// use provider_lifecycle::{Error, Version, VersionRange};
/// let r = VersionRange::new(Version::new(1, 1), Version::new(2, 2));
/// assert_eq!(r.negotiate(Version::new(3, 0))?.version, Version::new(2, 2)); // capped
/// assert_eq!(r.negotiate(Version::new(2, 0))?.version, Version::new(2, 0));
/// assert_eq!(r.negotiate(Version::new(1, 0)), Err(Error::VersionNotSupported));
/// # Ok::<(), Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VersionRange {
    lowest: Version,
    highest: Version,
}

impl VersionRange {
    /// The range `lowest..=highest`. If the two are given in the wrong order
    /// they are swapped, so a range is never empty.
    ///
    /// ```
    /// use provider_lifecycle::{Version, VersionRange};
    /// let r = VersionRange::new(Version::new(1, 1), Version::new(2, 2));
    /// assert_eq!((r.lowest(), r.highest()), (Version::new(1, 1), Version::new(2, 2)));
    /// ```
    #[must_use]
    pub const fn new(lowest: Version, highest: Version) -> VersionRange {
        // Compared by key: trait methods are not callable in a const fn.
        if lowest.key() <= highest.key() {
            VersionRange { lowest, highest }
        } else {
            VersionRange {
                lowest: highest,
                highest: lowest,
            }
        }
    }

    /// The lowest supported version.
    #[must_use]
    #[inline]
    pub const fn lowest(&self) -> Version {
        self.lowest
    }

    /// The highest supported version.
    #[must_use]
    #[inline]
    pub const fn highest(&self) -> Version {
        self.highest
    }

    /// Negotiates `requested` against this range (rules [V2](crate::contract#V2), [V3](crate::contract#V3)).
    ///
    /// # Errors
    ///
    /// [`Error::VersionNotSupported`] when `requested` is below `lowest` or has
    /// major 0.
    ///
    /// ```
    /// use provider_lifecycle::{Version, VersionRange};
    /// let r = VersionRange::new(Version::new(1, 1), Version::new(2, 2));
    /// let n = r.negotiate(Version::new(3, 0)).unwrap();
    /// assert_eq!((n.version, n.high_version), (Version::new(2, 2), Version::new(2, 2)));
    /// assert!(r.negotiate(Version::new(1, 0)).is_err());
    /// ```
    #[inline]
    pub fn negotiate(&self, requested: Version) -> Result<Negotiated, Error> {
        if requested.major == 0 || requested < self.lowest {
            return Err(Error::VersionNotSupported);
        }
        Ok(Negotiated {
            version: requested.min(self.highest),
            high_version: self.highest,
        })
    }
}

/// A discrete set of supported versions ([W2](crate::contract#W2)), for
/// providers whose versions are not one range: a request negotiates to the
/// highest member not above it. [`VersionSet::WINSOCK`] is `WSAStartup`'s
/// set, where 1.2–1.255 negotiate to 1.1 and anything above 2.2 to 2.2.
///
/// ```
/// use provider_lifecycle::{Version, VersionSet};
/// let set = VersionSet::WINSOCK;
/// assert_eq!(set.negotiate(Version::new(1, 7)).unwrap().version, Version::new(1, 1));
/// assert_eq!(set.negotiate(Version::new(2, 9)).unwrap().version, Version::new(2, 2));
/// assert_eq!(set.negotiate(Version::new(2, 1)).unwrap().version, Version::new(2, 1));
/// assert_eq!(set.negotiate(Version::new(0, 9)).unwrap_err().wsa_code(), 10092);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VersionSet {
    versions: &'static [Version],
}

impl VersionSet {
    /// `WSAStartup`'s versions: 1.0, 1.1, 2.0, 2.1 and 2.2.
    pub const WINSOCK: VersionSet = VersionSet::new(&[
        Version::new(1, 0),
        Version::new(1, 1),
        Version::new(2, 0),
        Version::new(2, 1),
        Version::new(2, 2),
    ]);

    /// The set of `versions`, which must be non-empty and strictly
    /// ascending (checked at compile time when used in a `const`).
    ///
    /// ```
    /// use provider_lifecycle::{Version, VersionSet};
    /// const MINE: VersionSet = VersionSet::new(&[Version::new(2, 0), Version::new(2, 2)]);
    /// assert_eq!(MINE.range().highest(), Version::new(2, 2));
    /// ```
    ///
    /// # Panics
    ///
    /// If `versions` is empty or not strictly ascending.
    #[must_use]
    pub const fn new(versions: &'static [Version]) -> VersionSet {
        assert!(!versions.is_empty(), "a version set is never empty");
        let mut i = 1;
        while i < versions.len() {
            let (a, b) = (versions[i - 1], versions[i]);
            assert!(
                a.major < b.major || (a.major == b.major && a.minor < b.minor),
                "a version set is strictly ascending"
            );
            i += 1;
        }
        VersionSet { versions }
    }

    /// The lowest supported version.
    #[must_use]
    pub const fn lowest(&self) -> Version {
        self.versions[0]
    }

    /// The highest supported version.
    #[must_use]
    pub const fn highest(&self) -> Version {
        self.versions[self.versions.len() - 1]
    }

    /// The range from the lowest to the highest member (what
    /// [`Provider::versions`](crate::Provider::versions) reports).
    #[must_use]
    pub const fn range(&self) -> VersionRange {
        VersionRange::new(self.lowest(), self.highest())
    }

    /// Whether `v` is a member.
    ///
    /// ```
    /// use provider_lifecycle::{Version, VersionSet};
    /// assert!(VersionSet::WINSOCK.contains(Version::new(2, 1)));
    /// assert!(!VersionSet::WINSOCK.contains(Version::new(1, 2)));
    /// ```
    #[must_use]
    pub fn contains(&self, v: Version) -> bool {
        self.versions.contains(&v)
    }

    /// Negotiates `requested`: the highest member not above it.
    ///
    /// ```
    /// use provider_lifecycle::{Error, Version, VersionSet};
    /// // 1.2 is not a member: the highest member below it, 1.1, is negotiated.
    /// let n = VersionSet::WINSOCK.negotiate(Version::new(1, 2))?;
    /// assert_eq!((n.version, n.high_version), (Version::new(1, 1), Version::new(2, 2)));
    /// assert_eq!(VersionSet::WINSOCK.negotiate(Version::new(0, 9)).err(), Some(Error::VersionNotSupported));
    /// # Ok::<(), Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::VersionNotSupported`] if `requested` has major 0 or is below
    /// every member.
    pub fn negotiate(&self, requested: Version) -> Result<Negotiated, Error> {
        if requested.major == 0 {
            return Err(Error::VersionNotSupported);
        }
        match self.versions.iter().rev().find(|&&v| v <= requested) {
            Some(&version) => Ok(Negotiated {
                version,
                high_version: self.highest(),
            }),
            None => Err(Error::VersionNotSupported),
        }
    }
}

/// The outcome of one version negotiation (rule [V2](crate::contract#V2)): what `WSPStartup` writes
/// into `wVersion` and `wHighVersion`.
///
/// ```
/// use provider_lifecycle::{Version, VersionRange};
/// let n = VersionRange::new(Version::new(1, 1), Version::new(2, 2)).negotiate(Version::new(2, 0))?;
/// assert_eq!((n.version, n.high_version), (Version::new(2, 0), Version::new(2, 2)));
/// # Ok::<(), provider_lifecycle::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Negotiated {
    /// `min(requested, highest)`: the version the caller is to use.
    pub version: Version,
    /// The highest version the provider supports.
    pub high_version: Version,
}

impl Negotiated {
    /// An outcome, for a provider that negotiates by hand
    /// ([`Provider::negotiate`](crate::Provider::negotiate)).
    ///
    /// ```
    /// use provider_lifecycle::{Negotiated, Version};
    /// let n = Negotiated::new(Version::new(2, 0), Version::new(2, 2));
    /// assert_eq!(n.version, Version::new(2, 0));
    /// assert_eq!(n.high_version, Version::new(2, 2));
    /// ```
    #[must_use]
    pub const fn new(version: Version, high_version: Version) -> Negotiated {
        Negotiated {
            version,
            high_version,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_word_round_trip_all() {
        for w in 0..=u16::MAX {
            assert_eq!(Version::from_word(w).to_word(), w);
        }
        assert_eq!(Version::from_word(0x0001), Version::new(1, 0));
        assert_eq!(Version::from_word(0xffff), Version::new(255, 255));
    }

    #[test]
    fn v2_order_is_major_then_minor() {
        // The hand-written Ord (a 16-bit key) against the lexicographic
        // order it stands for, over every version and a spread of pivots.
        let pivots = [
            (0, 0),
            (0, 255),
            (1, 0),
            (1, 1),
            (2, 2),
            (2, 255),
            (3, 0),
            (255, 255),
        ];
        for w in 0..=u16::MAX {
            let v = Version::from_word(w);
            for &(major, minor) in &pivots {
                let p = Version::new(major, minor);
                assert_eq!(
                    v.cmp(&p),
                    (v.major, v.minor).cmp(&(major, minor)),
                    "{v} vs {p}"
                );
                assert_eq!(v.partial_cmp(&p), Some(v.cmp(&p)));
            }
        }
    }

    #[test]
    fn v1_range_new_orders() {
        let r = VersionRange::new(Version::new(2, 2), Version::new(1, 9));
        assert_eq!(r.lowest(), Version::new(1, 9));
        assert_eq!(r.highest(), Version::new(2, 2));
    }
}
