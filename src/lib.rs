//! hlspipe: MP4 in, HLS out, without re-encoding.
//!
//! ```text
//! Source (read_at) ─► mp4::demux ─► Movie (tracks, samples, codec configs)
//!                  ─► plan        ─► SegmentPlan (cuts at video sync samples)
//!                  ─► fmp4        ─► init.mp4 + .m4s bodies (headers + source byte ranges)
//!                  ─► hls         ─► media and master playlists
//!                  ─► package     ─► the title's objects, in publish order
//!                  ─► publish     ─► written through a store: segments, playlists, master, manifest
//! ```

pub mod error;
pub mod hls;
pub mod model;
pub mod sign;
pub mod source;

pub use error::{Error, Result};
