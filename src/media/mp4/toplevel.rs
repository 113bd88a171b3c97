//! The top level of an input file (ISO/IEC 14496-12 § 4.2): the limits every read is held
//! to, and the header of a top-level box, read before any of its size fields is trusted.
//! Shared by the `moov` walk and the fragment walk.

use super::reader::{BoxHeader, HeaderError};
use crate::error::{Error, FourCc, Result};
use crate::media::source::Source;

/// Limits that keep a hostile file from costing unbounded memory or time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest `moov` box read into memory.
    pub max_moov_bytes: u64,
    /// Most samples in one track (a 24-hour 60 fps video has 5.2 million).
    pub max_samples_per_track: u64,
    /// Most top-level boxes scanned while looking for `moov`.
    pub max_top_level_boxes: u32,
    /// Most tracks in one file.
    pub max_tracks: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_moov_bytes: 256 << 20,
            max_samples_per_track: 8_000_000,
            max_top_level_boxes: 100_000,
            max_tracks: 64,
        }
    }
}

/// Top-level box types that may appear in an ISO BMFF / QuickTime file. Used to tell
/// an MP4 from something else before trusting any size field.
const TOP_LEVEL: &[&[u8; 4]] = &[
    b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"uuid", b"pdin", b"meta", b"moof",
    b"mfra", b"styp", b"sidx", b"prft", b"pnot", b"junk", b"PICT",
];

pub(super) fn check_top_level_box_count(seen: u32, limits: &Limits) -> Result<()> {
    if seen > limits.max_top_level_boxes {
        return Err(Error::Limit {
            fourcc: FourCc(*b"file"),
            track: None,
            what: "top-level box count",
            value: u64::from(seen),
            limit: u64::from(limits.max_top_level_boxes),
        });
    }
    Ok(())
}

/// Reads the header of the top-level box at `offset` (at least 8 bytes before the end
/// of the file). The first box must be a known top-level type before any of its size
/// fields is trusted: otherwise the input is not an MP4 at all.
pub(super) fn read_top_level_header(
    src: &dyn Source,
    offset: u64,
    file_len: u64,
    first: bool,
) -> Result<BoxHeader> {
    let left = file_len - offset;
    let mut head = [0u8; 16];
    let head_len = left.min(16) as usize;
    src.read_at(offset, &mut head[..head_len])
        .map_err(|e| Error::Io {
            what: src.name().to_string(),
            source: e,
        })?;
    let fourcc = [head[4], head[5], head[6], head[7]];
    if first && !TOP_LEVEL.contains(&&fourcc) {
        return Err(Error::NotMp4(format!(
            "{} does not start with an MP4 box (first bytes read as '{}')",
            src.name(),
            FourCc(fourcc)
        )));
    }
    match BoxHeader::parse(&head[..head_len], left) {
        Ok(h) => Ok(h),
        Err(HeaderError::CutShort { needed, .. }) => Err(Error::Truncated {
            fourcc: FourCc(fourcc),
            offset,
            needed,
            file_len,
        }),
        Err(HeaderError::TooSmall { size, .. }) => Err(Error::malformed(
            &fourcc,
            None,
            format!("top-level box at offset {offset} has impossible size {size}"),
        )),
    }
}
