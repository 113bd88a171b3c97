//! The pure core's outputs through the real binary and the library: the demuxer on the
//! fixtures, `hlspipe package` end to end, bad input, and the publish order.

#[path = "../support/mod.rs"]
mod support;

mod bad_input;
mod codecs;
mod demux;
mod ladder;
mod mutate;
mod package;
mod publish;
mod subtitles;
