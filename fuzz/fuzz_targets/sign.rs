//! Fuzzing target: any bytes through signed cookies, signed URLs, policies and their verification.
//! The properties and the input layout: `hlspipe::testing::fuzz::sign`; the suite runs it
//! on every committed seed and found input (tests/harness/fuzz_inputs.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hlspipe::testing::fuzz::sign(data);
});
