//! Media segments: `styp`, one `moof` (`mfhd`, `traf` with `tfhd`, `tfdt`, `trun`)
//! and one `mdat` whose payload is copied from the source.

use super::boxes::{mdat_header, u32, u64, write_box, write_full_box};
use super::init::TRACK_ID;
use crate::model::{Track, TrackKind};
use crate::object::Body;
use crate::plan::SegmentRange;

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

/// Builds media segment `sequence` (1-based, the `mfhd` sequence number) of `track`
/// from the samples in `range`.
///
/// Timing: `tfdt` is the decode time (shifted by any leading empty edit). For
/// video the composition offsets are moved by the edit list's media start, so the
/// first frame is presented at 0 without an edit list; offsets may then be
/// negative, which needs `trun` version 1 (§ 8.8.8.3). Audio keeps its offsets and
/// carries its priming edit in the init segment instead.
pub fn create_media_segment(track: &Track, range: &SegmentRange, sequence: u32) -> Body {
    let samples = &track.samples[range.first..range.end];
    let is_video = track.kind == TrackKind::Video;
    let shift = if is_video { track.media_start } else { 0 };
    let offsets: Vec<i64> = samples
        .iter()
        .map(|s| i64::from(s.cts_offset) - shift)
        .collect();
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
    write_box(&mut head, b"styp", |o| {
        o.extend_from_slice(b"msdh");
        u32(o, 0);
        o.extend_from_slice(b"msdh");
        o.extend_from_slice(b"msix");
    });
    let moof_start = head.len();
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
                        u32(o, cto as i32 as u32);
                    }
                }
            });
        });
    });
    let mdat = mdat_header(payload);
    // data_offset is relative to the start of the moof (DEFAULT_BASE_IS_MOOF).
    let data_offset = (head.len() - moof_start + mdat.len()) as u32;
    head[data_offset_at..data_offset_at + 4].copy_from_slice(&data_offset.to_be_bytes());
    head.extend_from_slice(&mdat);

    let mut body = Body::from_bytes(head);
    for s in samples {
        body.push_source(track.input, s.offset, u64::from(s.size));
    }
    body
}
