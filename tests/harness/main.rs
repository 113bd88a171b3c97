//! The test harness itself (fixtures, static server, hls.js in Chromium on ffmpeg's HLS),
//! then hls.js playing what `hlspipe package` wrote.

#[path = "../support/mod.rs"]
mod support;

mod fuzz_inputs;
mod layers;
mod player;
mod player_smoke;
