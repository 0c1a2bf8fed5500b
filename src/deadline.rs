//! Deadlines that never overflow: `start + d` saturates a century ahead,
//! and "no deadline" is a century away ([S3](crate::contract#S3),
//! [L6.3](crate::contract#L6.3)).

use std::time::{Duration, Instant};

/// What "no deadline" means: a century.
const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `start + d`, saturating a century ahead instead of overflowing.
pub(crate) fn after(start: Instant, d: Duration) -> Instant {
    start
        .checked_add(d)
        .or_else(|| start.checked_add(CENTURY))
        .unwrap_or(start)
}

/// Far enough to mean "no deadline" (a background flush runs until done):
/// a century after the first use, read once per process rather than once
/// per socket.
pub(crate) fn far() -> Instant {
    static FAR: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *FAR.get_or_init(|| after(Instant::now(), CENTURY))
}

#[cfg(test)]
mod tests {
    use super::*;

    const YEARS_99: Duration = Duration::from_secs(99 * 365 * 24 * 3600);

    // S3, L6.3: "no deadline" (a background close of a slow socket) is a
    // century away, not minutes or days: a flush cut short there would
    // discard bytes no deadline asked to discard.
    #[test]
    fn s3_no_deadline_is_a_century_away() {
        let now = Instant::now();
        assert!(far().saturating_duration_since(now) > YEARS_99);
        // An overflowing `start + d` saturates a century ahead, not at `start`.
        assert!(after(now, Duration::MAX).saturating_duration_since(now) > YEARS_99);
        assert_eq!(
            after(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
    }
}
