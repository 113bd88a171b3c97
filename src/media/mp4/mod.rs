//! MP4 / QuickTime demuxing (ISO/IEC 14496-12, ISO/IEC 14496-14, ISO/IEC 14496-15).

mod demux;
mod fragments;
pub mod reader;
mod toplevel;

pub use demux::{demux, pixel_aspect_ratio, Limits};
