//! hlspipe: MP4 in, HLS out, without re-encoding.
//!
//! ```text
//! Source (read_at) ─► mp4::demux ─► Movie (tracks, samples, codec configs)
//!                  ─► plan        ─► segment ranges (cuts at video sync samples)
//!                  ─► fmp4        ─► init.mp4 + .m4s bodies (headers + source byte ranges)
//!                  ─► hls         ─► media and master playlists
//!                  ─► package     ─► the title's objects, in publish order
//!                  ─► publish     ─► written through a store: segments, playlists, master
//!
//! S3 / SQS / EventBridge event ─► events ─► Record ─► worker (config) ─► package + publish
//! ```

pub mod config;
pub mod error;
pub mod events;
pub mod fmp4;
pub mod hls;
pub mod model;
pub mod mp4;
pub mod object;
pub mod package;
pub mod plan;
pub mod publish;
pub mod source;
pub mod store;
pub mod worker;

pub use error::{Error, Result};
