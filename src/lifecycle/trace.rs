//! The final cleanup's events with the `tracing` feature (without it, each
//! function here is empty): a phase's end, a failed hook, a drain still
//! waiting past its deadline, guards abandoned.

use std::time::Duration;

use crate::report::DrainReport;

/// With the `tracing` feature: one event per finished phase of the final
/// cleanup, and a warning per failed hook.
#[cfg(feature = "tracing")]
pub(super) fn trace_phase(phase: &'static str, report: &DrainReport) {
    match phase {
        "operations" => {
            let o = &report.operations;
            tracing::info!(
                phase,
                cancelled = o.cancelled,
                waited_for = o.waited_for,
                overran = o.overran_deadline
            );
            if !o.cancel.is_ok() {
                tracing::warn!(hook = "cancel_pending", outcome = %o.cancel, "hook failed");
            }
        }
        "sockets" => {
            tracing::info!(
                phase,
                sockets = report.sockets.len(),
                bytes_flushed = report.bytes_flushed(),
                bytes_discarded = report.bytes_discarded(),
                deadline_hit = report.deadline_hit
            );
            for s in report.sockets.iter().filter(|s| !s.is_clean()) {
                tracing::warn!(socket = %s.handle, outcome = %s.outcome, discarded = s.bytes_discarded, "socket not drained cleanly");
            }
        }
        "resources" => {
            tracing::info!(phase, resources = report.resources.len());
            for r in report.resources.iter().filter(|r| !r.outcome.is_ok()) {
                tracing::warn!(resource = %r.name, outcome = %r.outcome, "release failed");
            }
        }
        _ => {
            tracing::info!(phase, clean = report.is_clean(), total = ?report.timings.total);
            if !report.prepare_unload.is_ok() {
                tracing::warn!(hook = "prepare_unload", outcome = %report.prepare_unload, "hook failed");
            }
        }
    }
}

#[cfg(not(feature = "tracing"))]
#[inline(always)]
pub(super) fn trace_phase(_phase: &'static str, _report: &DrainReport) {}

/// With the `tracing` feature: the final cleanup is still waiting for
/// operations in flight past its drain deadline (L16: logged as it
/// happens, then again at intervals, never only after the fact).
#[cfg(feature = "tracing")]
pub(super) fn warn_still_waiting(outstanding: usize, past_deadline: Duration) {
    tracing::warn!(
        outstanding,
        past_deadline_ms = past_deadline.as_millis() as u64,
        "the final cleanup is still waiting for operations in flight past its drain deadline"
    );
}

#[cfg(not(feature = "tracing"))]
#[inline(always)]
pub(super) fn warn_still_waiting(_outstanding: usize, _past_deadline: Duration) {}

/// With the `tracing` feature: the guard wait's bound passed and the final
/// cleanup abandoned what `outstanding` operations may touch (L16).
pub(super) fn warn_abandoned(outstanding: usize) {
    #[cfg(feature = "tracing")]
    if outstanding != 0 {
        tracing::warn!(
            outstanding,
            "the final cleanup's guard wait limit passed: the provider's state, its resources \
             and any socket in use are abandoned (left in place, never freed) to the operations \
             still in flight"
        );
    }
    #[cfg(not(feature = "tracing"))]
    let _ = outstanding;
}
