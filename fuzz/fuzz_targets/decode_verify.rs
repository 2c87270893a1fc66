//! libFuzzer entry point: decode and verify arbitrary bytes as a token (see `../harness.rs`).
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::check(data));
