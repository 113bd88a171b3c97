//! fMP4 / CMAF writer: an init segment per rendition and media segments made of
//! `styp` + `moof` + `mdat` (ISO/IEC 14496-12 § 8.8, ISO/IEC 23000-19).

pub mod boxes;
mod init;
mod segment;

pub use init::create_init_segment;
pub use segment::{create_fragment, create_media_segment, Fragment, MediaSegment};
