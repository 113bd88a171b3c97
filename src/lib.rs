//! hlspipe: MP4 in, HLS out, without re-encoding.
//!
//! The modules are the stages of the flow, each using only those below it:
//!
//! ```text
//! delivery  sign (CloudFront policies, cookies, verifier) · api (cookies for a title)
//!           · edge (a local CloudFront) · http          ── viewers
//! dev       the embedded default: watches a folder bucket, wires pipeline + delivery
//! aws       sqs (the queue consumer) · cloudfront (invalidations)   ── AWS adapters
//! pipeline  event JSON → Record → job (keys, title) → package → publish → manifest
//! store     Store trait: folder and S3 implementations, read-ahead, store URLs
//! transcode ffmpeg beside the packager: ladder rungs, previews, sound it cannot carry
//! media     pure core: mp4 demux → plan → fmp4 mux → hls playlists → package
//! title · percent · error · clock   shared by all: the naming rule, percent-encoding,
//!           errors with a retry class, the one reader of the system clock
//! logs      log set-up, and escape_name for outside names in log lines (store, dev)
//! ```
//!
//! `media` is pure: bytes and settings in, objects out; no storage, AWS type, clock or
//! subprocess (`tests/harness/layers.rs` holds every layer to its imports). The transcoding
//! stage (`transcode`, ffmpeg) sits beside `media`, driven by the CLI and the pipeline; the
//! core never calls it.
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

#[cfg(feature = "service")]
pub mod aws;
pub mod clock;
pub mod delivery;
#[cfg(feature = "service")]
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
pub mod transcode;

pub use error::{Error, Result};
