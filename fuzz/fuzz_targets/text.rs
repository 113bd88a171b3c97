//! Fuzzing target: any bytes through the subtitle readers and the WebVTT segmenter.
//! The properties and the input layout: `hlspipe::testing::fuzz::text`; the suite runs it
//! on every committed seed and found input (tests/harness/fuzz_inputs.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hlspipe::testing::fuzz::text(data);
});
