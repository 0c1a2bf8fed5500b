//! libFuzzer target: `cargo +nightly fuzz run table` from
//! `provider-lifecycle-winsock/` (see `fuzz/harness.rs` for the calls made
//! and the oracle). New inputs that grow coverage land in `corpus/table`.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
