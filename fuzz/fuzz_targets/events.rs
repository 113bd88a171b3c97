//! Fuzzing target: any bytes through upload event JSON (S3, SQS, EventBridge).
//! The properties and the input layout: `hlspipe::testing::fuzz::events`; the suite runs it
//! on every committed seed and found input (tests/harness/fuzz_inputs.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hlspipe::testing::fuzz::events(data);
});
