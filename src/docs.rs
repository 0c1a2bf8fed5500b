//! Design notes: how the crate is built, and why. Nothing here is code;
//! these modules exist for their documentation (as arc-swap's `docs` and
//! sharded-slab's `implementation`).
//!
//! - [`architecture`]: the rooms (one concept per file), who imports whom
//!   (checked by `.ci/check-layout.py` against the code), and the walk of a
//!   startup, a provider call, a close and a final cleanup through them.
//! - [`orderings`]: every pair of atomic operations that orders memory
//!   between threads, labelled and cross-referenced with the code.
//! - [`performance`]: what each fast path costs, measured, and which rule
//!   keeps each instruction above its floor.

pub mod architecture;
pub mod orderings;
pub mod performance;
