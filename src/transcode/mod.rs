//! The transcoding stage: a ladder of H.264 renditions from one upload, made with ffmpeg
//! beside the packager (which never calls it: the pipeline and the CLI drive it, then
//! package the rungs with the source as one title).
//!
//! [`ladder`] decides the rungs, [`ffmpeg`] runs the program, [`serve`] lends it the source
//! over loopback HTTP, and [`encode`] puts them together.

pub mod args;
pub mod chunks;
pub mod encode;
pub mod ffmpeg;
pub mod ladder;
pub mod preview;
pub mod probe;
pub mod serve;
