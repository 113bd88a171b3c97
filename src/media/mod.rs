//! The pure media core: bytes and settings in, objects out. No storage, no AWS type, no
//! clock, no subprocess, no environment variable (DESIGN.md "What flows where").
//!
//! ```text
//! Source (read_at) ─► mp4::demux ─► Movie (tracks, samples, codec configs)
//!                  ─► edit        ─► edit lists applied (trim points, pre-roll)
//!                  ─► plan        ─► segment ranges (cuts at video sync samples)
//!                  ─► fmp4        ─► init.mp4 + .m4s bodies (headers + source byte ranges)
//!                  ─► hls         ─► media, I-frame and master playlists
//!                  ─► package     ─► the title's objects, in publish order
//! ```
//!
//! MPEG-TS segments and byte-range renditions (DESIGN.md) will sit beside `fmp4` as
//! other muxers of the same [`plan`], with `package` choosing between them.

pub mod aac;
mod bits;
pub mod dovi;
pub mod eac3;
pub mod edit;
pub mod fmp4;
pub mod hls;
pub mod model;
pub mod mp4;
pub mod object;
pub mod package;
pub mod plan;
pub mod rendition;
pub mod source;
pub mod subtitles;
pub mod text;
