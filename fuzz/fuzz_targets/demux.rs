//! Fuzzing target: any bytes through the demuxer and the packager.
//! The properties and the input layout: `hlspipe::testing::fuzz::demux`; the suite runs it
//! on every committed seed and found input (tests/harness/fuzz_inputs.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hlspipe::testing::fuzz::demux(data);
});
