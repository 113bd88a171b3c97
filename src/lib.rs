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
//!
//! The core is pure: bytes and settings in, objects out. Writing is the store's job.
//!
//! ```
//! use hlspipe::media::package::{package, Input, Settings};
//! use hlspipe::media::source::FileSource;
//! use std::sync::Arc;
//!
//! let source = Arc::new(FileSource::open("fixtures/media/tiny_faststart.mp4".as_ref())?);
//! let title = package(&[Input { source, etag: None }], &Settings::default())?;
//! // Segments first, then media playlists, then the master: the publish order.
//! assert!(title.media.iter().all(|o| o.key.starts_with(&format!("v/{}/", title.version))));
//! let master = std::str::from_utf8(title.master.body.as_bytes().unwrap_or_default())?;
//! assert!(master.contains(r#"CODECS="avc1.64000b,mp4a.40.2""#));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod aws;
pub mod clock;
pub mod delivery;
pub mod dev;
pub mod error;
pub mod logs;
pub mod media;
pub mod percent;
pub mod pipeline;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod title;

pub use error::{Error, Result};
