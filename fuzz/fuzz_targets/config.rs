//! Fuzzing target: any bytes through the worker's TOML configuration and variables.
//! The properties and the input layout: `hlspipe::testing::fuzz::config`; the suite runs it
//! on every committed seed and found input (tests/harness/fuzz_inputs.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hlspipe::testing::fuzz::config(data);
});
