//! Where segments start. Shared by every output format: fMP4 today, MPEG-TS and
//! byte-range renditions later cut at the same places.
//!
//! Rules (RFC 8216 § 3, § 4.3.3.1; DESIGN.md "Segmenting rules"):
//! - a video segment starts at a sync sample, at the first one at or after the
//!   previous cut plus the target duration, so a long-GOP source gives longer
//!   segments, never one that starts mid-GOP;
//! - audio is cut at the sample boundary nearest to the video's cut times, so
//!   audio and video segments cover the same presentation time;
//! - every segment holds at least one sample: there is no zero-length segment.

use crate::media::model::{Track, TrackKind};

/// One segment of one track: samples `first..end` in decode order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentRange {
    pub first: usize,
    pub end: usize,
    /// Presentation start in the track's timescale (0 for the first segment).
    pub start: i64,
    /// Presentation duration in the track's timescale (to the next segment's start,
    /// or to the end of the track for the last one).
    pub duration: i64,
}

impl SegmentRange {
    pub fn duration_secs(&self, timescale: u32) -> f64 {
        self.duration as f64 / f64::from(timescale.max(1))
    }
}

/// Tolerance when comparing a sync sample's time with the target: timescales that
/// do not divide a second evenly put a 2 s GOP at 1.99999 s.
const EPSILON_SECS: f64 = 0.001;

/// Splits a track at its own sync samples: the first at or after the previous cut
/// plus `target_secs`. Every audio sample is a sync sample, so this also cuts an
/// audio-only title.
pub fn split_at_sync(track: &Track, target_secs: f64) -> Vec<SegmentRange> {
    let ts = f64::from(track.timescale.max(1));
    let mut starts = vec![0usize];
    let mut last = 0.0f64;
    for (i, s) in track.samples.iter().enumerate().skip(1) {
        if !(s.sync || track.kind == TrackKind::Audio) {
            continue;
        }
        let t = track.pts(s) as f64 / ts;
        if t >= last + target_secs - EPSILON_SECS {
            starts.push(i);
            last = t;
        }
    }
    ranges(track, &starts)
}

/// The presentation times (seconds) where `segments` after the first start: what
/// the other renditions of a title are cut at.
pub fn cut_times(segments: &[SegmentRange], timescale: u32) -> Vec<f64> {
    let ts = f64::from(timescale.max(1));
    segments
        .iter()
        .skip(1)
        .map(|r| r.start as f64 / ts)
        .collect()
}

/// Splits a track (audio, or a video without a reference of its own) at the sample
/// boundaries nearest to `cuts` (seconds).
pub fn split_at(track: &Track, cuts: &[f64]) -> Vec<SegmentRange> {
    let ts = f64::from(track.timescale.max(1));
    let mut starts = vec![0usize];
    let mut cut_iter = cuts.iter().peekable();
    for (i, s) in track.samples.iter().enumerate().skip(1) {
        let mid = (track.pts(s) as f64 + f64::from(s.duration) / 2.0) / ts;
        let mut crossed = false;
        while let Some(&&c) = cut_iter.peek() {
            if mid >= c {
                crossed = true;
                cut_iter.next();
            } else {
                break;
            }
        }
        if crossed && starts.last() != Some(&i) {
            starts.push(i);
        }
    }
    ranges(track, &starts)
}

/// Turns segment start indices into ranges with presentation start and duration.
fn ranges(track: &Track, starts: &[usize]) -> Vec<SegmentRange> {
    let n = track.samples.len();
    let end_time = track
        .samples
        .iter()
        .map(|s| track.pts(s) + i64::from(s.duration))
        .max()
        .unwrap_or(0);
    let mut out = Vec::with_capacity(starts.len());
    for (k, &first) in starts.iter().enumerate() {
        let end = starts.get(k + 1).copied().unwrap_or(n);
        let start = if k == 0 {
            0
        } else {
            track.pts(&track.samples[first])
        };
        out.push(SegmentRange {
            first,
            end,
            start,
            duration: 0,
        });
    }
    for k in 0..out.len() {
        let next = out.get(k + 1).map(|r| r.start).unwrap_or(end_time);
        out[k].duration = (next - out[k].start).max(0);
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::media::model::{Codec, Sample};

    /// `n` samples of `dur` ticks at `ts` per second, a sync sample every `gop`.
    pub(crate) fn track(kind: TrackKind, n: usize, gop: usize, dur: u32, ts: u32) -> Track {
        Track {
            input: 0,
            id: 1,
            kind,
            codec: Codec::Aac {
                asc: vec![0x12, 0x10],
            },
            sample_entry: vec![],
            timescale: ts,
            language: "und".into(),
            width: 0,
            height: 0,
            matrix: crate::media::model::UNITY_MATRIX,
            transfer: None,
            channels: 0,
            sample_rate: 0,
            media_start: 0,
            empty_delay: 0,
            media_end: None,
            samples: (0..n)
                .map(|i| Sample {
                    offset: i as u64,
                    size: 1,
                    dts: i as u64 * u64::from(dur),
                    duration: dur,
                    cts_offset: 0,
                    sync: i % gop == 0,
                })
                .collect(),
        }
    }

    #[test]
    fn video_cuts_at_sync_samples_after_target() {
        // 25 fps, GOP 2.5 s, 20 s: cuts at 7.5 and 15.
        let t = track(TrackKind::Video, 500, 62, 1, 25);
        let segs = split_at_sync(&t, 6.0);
        let starts: Vec<usize> = segs.iter().map(|s| s.first).collect();
        assert_eq!(starts, vec![0, 186, 372]);
        assert_eq!(segs.iter().map(|s| s.duration).sum::<i64>(), 500);
        assert!(segs.iter().all(|s| s.end > s.first));
    }

    #[test]
    fn long_gop_gives_longer_segments_never_broken_ones() {
        // 10 s GOPs with a 6 s target: every segment is a whole GOP.
        let t = track(TrackKind::Video, 750, 250, 1, 25);
        let segs = split_at_sync(&t, 6.0);
        assert_eq!(
            segs.iter().map(|s| s.first).collect::<Vec<_>>(),
            vec![0, 250, 500]
        );
    }

    #[test]
    fn audio_follows_video_cuts() {
        // AAC frames of 1024 at 48 kHz (21.3 ms); cut at 6 s lands on the nearest frame.
        let a = track(TrackKind::Audio, 600, 1, 1024, 48000);
        let segs = split_at(&a, &[6.0, 12.0]);
        assert_eq!(segs.len(), 3);
        let t1 = segs[1].start as f64 / 48000.0;
        assert!((t1 - 6.0).abs() <= 1024.0 / 48000.0 / 2.0, "{t1}");
        assert_eq!(segs.last().map(|s| s.end), Some(600));
    }

    #[test]
    fn cut_after_the_last_sample_gives_no_empty_segment() {
        let a = track(TrackKind::Audio, 10, 1, 1024, 48000);
        let segs = split_at(&a, &[100.0]);
        assert_eq!(segs.len(), 1);
    }
}
