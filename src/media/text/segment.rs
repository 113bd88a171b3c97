//! Segmented WebVTT for an HLS subtitle rendition (RFC 8216 § 3.5): one complete WebVTT
//! file per segment of the video, each with the cues that show during it.

use super::{timestamp, Cue};
use std::fmt::Write;

/// The `X-TIMESTAMP-MAP` header of every segment (RFC 8216 § 3.5). The cue times are
/// the title's presentation times, and the fMP4 segments' presentation timeline starts
/// at 0 (tfdt of the first sample, edit list applied), so LOCAL 0 maps to MPEG-2 time 0.
/// hls.js (1.7, `webvtt-parser.ts`) subtracts the media's initial PTS from MPEGTS and
/// adds the result to each cue: 0 against a 0-based fMP4 timeline shifts nothing. A value
/// such as 900000 (common for MPEG-TS, whose PTS starts at 10 s) would put every cue
/// 10 s late here.
pub const TIMESTAMP_MAP: &str = "X-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000";

/// One WebVTT segment: its text and the span it covers (milliseconds of the title).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VttSegment {
    pub start_ms: u64,
    pub end_ms: u64,
    pub text: String,
    pub cue_count: usize,
}

/// Cuts `cues` (sorted by start) into one WebVTT file per span of `spans` (start and
/// end in milliseconds, contiguous, as the video's segments). A cue is written in every
/// segment it overlaps, with its full times: a cue spanning a boundary appears in both
/// (RFC 8216 § 3.5 allows it; players drop the repeat, hls.js by cue identity). Cues
/// after the last span go into the last segment, so none is lost.
pub fn segment_webvtt(cues: &[Cue], preamble: &[String], spans: &[(u64, u64)]) -> Vec<VttSegment> {
    let last = spans.len().saturating_sub(1);
    spans
        .iter()
        .enumerate()
        .map(|(k, &(start, end))| {
            let end_open = if k == last { u64::MAX } else { end };
            let inside: Vec<&Cue> = cues
                .iter()
                .take_while(|c| c.start_ms < end_open)
                .filter(|c| overlaps(c, start, end_open))
                .collect();
            VttSegment {
                start_ms: start,
                end_ms: end,
                text: webvtt_text(&inside, preamble),
                cue_count: inside.len(),
            }
        })
        .collect()
}

/// A cue shows during `[start, end)`; a zero-length cue counts where it starts.
fn overlaps(c: &Cue, start: u64, end: u64) -> bool {
    if c.end_ms == c.start_ms {
        (start..end).contains(&c.start_ms)
    } else {
        c.start_ms < end && c.end_ms > start
    }
}

/// A complete WebVTT file (W3C WebVTT § 4.1): signature, timestamp map, the source's
/// STYLE and REGION blocks, then the cues, every block ended by a blank line (so that a
/// reader joining segments end to end, as ffmpeg's HLS demuxer does, never reads the
/// next segment's header as cue text).
fn webvtt_text(cues: &[&Cue], preamble: &[String]) -> String {
    let mut out = format!("WEBVTT\n{TIMESTAMP_MAP}\n\n");
    for block in preamble {
        let _ = write!(out, "{block}\n\n");
    }
    for c in cues {
        if let Some(id) = &c.id {
            let _ = writeln!(out, "{id}");
        }
        let _ = write!(
            out,
            "{} --> {}",
            timestamp::format(c.start_ms),
            timestamp::format(c.end_ms)
        );
        if let Some(settings) = &c.settings {
            let _ = write!(out, " {settings}");
        }
        out.push('\n');
        if !c.text.is_empty() {
            let _ = writeln!(out, "{}", c.text);
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cue(start_ms: u64, end_ms: u64, text: &str) -> Cue {
        Cue {
            start_ms,
            end_ms,
            id: None,
            settings: None,
            text: text.into(),
        }
    }

    #[test]
    fn cues_follow_the_video_segments() {
        let cues = [
            cue(500, 1500, "a"),
            cue(5500, 6500, "b"),
            cue(7000, 8000, "c"),
        ];
        let segs = segment_webvtt(&cues, &[], &[(0, 6000), (6000, 9000)]);
        assert_eq!(segs.len(), 2);
        assert_eq!(
            segs[0].text,
            "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n\n\
             00:00:00.500 --> 00:00:01.500\na\n\n\
             00:00:05.500 --> 00:00:06.500\nb\n\n"
        );
        // The cue spanning 6 s is in both segments, with its full times.
        assert_eq!(segs[1].cue_count, 2);
        assert!(segs[1]
            .text
            .contains("00:00:05.500 --> 00:00:06.500\nb\n\n"));
    }

    #[test]
    fn empty_segments_are_still_webvtt() {
        let segs = segment_webvtt(&[], &["STYLE\n::cue {}".into()], &[(0, 1000)]);
        assert_eq!(
            segs[0].text,
            "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n\nSTYLE\n::cue {}\n\n"
        );
    }

    #[test]
    fn cues_past_the_end_go_to_the_last_segment() {
        let segs = segment_webvtt(&[cue(9500, 9800, "late")], &[], &[(0, 5000), (5000, 9000)]);
        assert_eq!(segs[1].cue_count, 1);
    }

    #[test]
    fn ids_and_settings_are_kept() {
        let mut c = cue(0, 10, "x");
        c.id = Some("one".into());
        c.settings = Some("align:start".into());
        let segs = segment_webvtt(&[c], &[], &[(0, 100)]);
        assert!(segs[0]
            .text
            .ends_with("\n\none\n00:00:00.000 --> 00:00:00.010 align:start\nx\n\n"));
    }
}
