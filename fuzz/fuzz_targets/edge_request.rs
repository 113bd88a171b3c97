//! Fuzzing target: any bytes through the edge's request path, Range and conditional fields.
//! The properties and the input layout: `hlspipe::testing::fuzz::edge_request`; the suite runs it
//! on every committed seed and found input (tests/harness/fuzz_inputs.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hlspipe::testing::fuzz::edge_request(data);
});
