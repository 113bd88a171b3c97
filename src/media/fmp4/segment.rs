//! Media segments: `styp`, then `moof` (`mfhd`, `traf` with `tfhd`, `tfdt`,
//! `trun`) + `mdat` pairs whose payload is copied from the source.

use super::boxes::{mdat_header, u32, u64, write_box, write_full_box};
use super::init::TRACK_ID;
use crate::media::model::{Track, TrackKind};
use crate::media::object::Body;
use crate::media::plan::SegmentRange;

// tfhd flags (ISO/IEC 14496-12 § 8.8.7.1).
const DEFAULT_BASE_IS_MOOF: u32 = 0x02_0000;
// trun flags (§ 8.8.8.1).
const DATA_OFFSET_PRESENT: u32 = 0x000001;
const SAMPLE_DURATION_PRESENT: u32 = 0x000100;
const SAMPLE_SIZE_PRESENT: u32 = 0x000200;
const SAMPLE_FLAGS_PRESENT: u32 = 0x000400;
const SAMPLE_COMPOSITION_TIME_OFFSETS_PRESENT: u32 = 0x000800;
// Sample flags (§ 8.8.3.1): sample_depends_on = 2 (an I picture) for sync samples;
// depends_on = 1 and sample_is_non_sync_sample for the rest.
const SYNC_SAMPLE_FLAGS: u32 = 0x0200_0000;
const NON_SYNC_SAMPLE_FLAGS: u32 = 0x0101_0000;

/// One `moof` + `mdat` pair inside a media segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    /// Byte offset of the fragment's `moof` in the segment (after `styp` for the
    /// first one).
    pub offset: u64,
    /// Bytes from `offset` through the end of the fragment's first sample: for a
    /// key-frame fragment, its whole length, the byte range an I-frame playlist
    /// names (RFC 8216 § 4.3.3.6).
    pub first_sample_end: u64,
    /// Whether the fragment starts with a sync sample.
    pub starts_with_sync: bool,
    /// Presentation time of the first sample (track timescale).
    pub start: i64,
}

/// A media segment: its body (headers and source ranges) and where its fragments
/// lie in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSegment {
    pub body: Body,
    pub fragments: Vec<Fragment>,
}

/// Builds a media segment of `track` from the samples in `range`. In video every
/// sync sample gets a fragment of its own, followed by one for the rest of its
/// GOP, so an I-frame playlist can name each key frame as a byte range that is a
/// whole, self-contained `moof` + `mdat`; audio gets one fragment.
/// `sequence` is the `mfhd` sequence number of the first fragment; it is advanced
/// past the last one written (sequence numbers increase through the rendition,
/// ISO/IEC 14496-12 § 8.8.5).
pub fn create_media_segment(
    track: &Track,
    range: &SegmentRange,
    sequence: &mut u32,
) -> MediaSegment {
    let samples = &track.samples[range.first..range.end];
    let mut runs: Vec<std::ops::Range<usize>> = Vec::new();
    let mut start = 0usize;
    if track.kind == TrackKind::Video {
        for (i, s) in samples.iter().enumerate() {
            if s.sync {
                if start < i {
                    runs.push(start..i);
                }
                runs.push(i..i + 1);
                start = i + 1;
            }
        }
    }
    if start < samples.len() {
        runs.push(start..samples.len());
    }

    let mut head = Vec::with_capacity(64);
    write_box(&mut head, b"styp", |o| {
        o.extend_from_slice(b"msdh");
        u32(o, 0);
        o.extend_from_slice(b"msdh");
        o.extend_from_slice(b"msix");
    });
    let mut body = Body::from_bytes(head);
    let mut fragments = Vec::with_capacity(runs.len());
    for run in runs {
        let run_samples = &samples[run];
        let offset = body.len();
        let header = fragment_header(track, run_samples, *sequence);
        *sequence = sequence.wrapping_add(1);
        let first_size = run_samples.first().map(|s| u64::from(s.size)).unwrap_or(0);
        fragments.push(Fragment {
            offset,
            first_sample_end: header.len() as u64 + first_size,
            starts_with_sync: run_samples.first().is_some_and(|s| s.sync),
            start: run_samples.first().map(|s| track.pts(s)).unwrap_or(0),
        });
        body.push_bytes(header);
        for s in run_samples {
            body.push_source(track.input, s.offset, u64::from(s.size));
        }
    }
    MediaSegment { body, fragments }
}

/// One `moof` + `mdat` of the samples `range` of `track`, without `styp`: a fragment of a
/// fragmented file rather than a segment of a rendition (a rung stitched from chunks).
pub fn create_fragment(track: &Track, range: std::ops::Range<usize>, sequence: u32) -> Body {
    let samples = track.samples.get(range).unwrap_or_default();
    let mut body = Body::from_bytes(fragment_header(track, samples, sequence));
    for s in samples {
        body.push_source(track.input, s.offset, u64::from(s.size));
    }
    body
}

/// `moof` and the `mdat` header for `samples`.
///
/// Timing: `tfdt` is the decode time (shifted by any leading empty edit); the
/// composition offsets are the track's, and where presentation starts is the init
/// segment's edit list. A source with negative offsets (`ctts` version 1) keeps them,
/// which needs `trun` version 1 (§ 8.8.8.3).
fn fragment_header(
    track: &Track,
    samples: &[crate::media::model::Sample],
    sequence: u32,
) -> Vec<u8> {
    let is_video = track.kind == TrackKind::Video;
    let offsets: Vec<i64> = samples.iter().map(|s| i64::from(s.cts_offset)).collect();
    let with_cto = is_video && offsets.iter().any(|&c| c != 0);
    let version: u8 = if offsets.iter().any(|&c| c < 0) { 1 } else { 0 };
    let payload: u64 = samples.iter().map(|s| u64::from(s.size)).sum();
    let base_decode_time = samples
        .first()
        .map(|s| (s.dts as i64 + track.empty_delay).max(0) as u64)
        .unwrap_or(0);

    let mut flags = DATA_OFFSET_PRESENT | SAMPLE_DURATION_PRESENT | SAMPLE_SIZE_PRESENT;
    if is_video {
        flags |= SAMPLE_FLAGS_PRESENT;
    }
    if with_cto {
        flags |= SAMPLE_COMPOSITION_TIME_OFFSETS_PRESENT;
    }

    let mut head = Vec::with_capacity(128 + samples.len() * 16);
    let mut data_offset_at = 0usize;
    write_box(&mut head, b"moof", |o| {
        write_full_box(o, b"mfhd", 0, 0, |o| u32(o, sequence));
        write_box(o, b"traf", |o| {
            write_full_box(o, b"tfhd", 0, DEFAULT_BASE_IS_MOOF, |o| u32(o, TRACK_ID));
            write_full_box(o, b"tfdt", 1, 0, |o| u64(o, base_decode_time));
            write_full_box(o, b"trun", version, flags, |o| {
                u32(o, samples.len() as u32);
                data_offset_at = o.len();
                u32(o, 0); // data_offset, patched below
                for (s, &cto) in samples.iter().zip(&offsets) {
                    u32(o, s.duration);
                    u32(o, s.size);
                    if is_video {
                        u32(
                            o,
                            if s.sync {
                                SYNC_SAMPLE_FLAGS
                            } else {
                                NON_SYNC_SAMPLE_FLAGS
                            },
                        );
                    }
                    if with_cto {
                        // Version 1 reads this field as signed; version 0 only
                        // happens when every offset is non-negative.
                        let cto = cto.clamp(i64::from(i32::MIN), i64::from(i32::MAX));
                        u32(o, cto as i32 as u32);
                    }
                }
            });
        });
    });
    let mdat = mdat_header(payload);
    // data_offset is relative to the start of the moof (DEFAULT_BASE_IS_MOOF).
    let data_offset = (head.len() + mdat.len()) as u32;
    head[data_offset_at..data_offset_at + 4].copy_from_slice(&data_offset.to_be_bytes());
    head.extend_from_slice(&mdat);
    head
}
