//! Any bytes through the subtitle readers (SRT, WebVTT, tx3g samples, side-file names) and
//! the WebVTT segmenter: an error is fine, a panic or an overflow is a bug, and every
//! segment written is WebVTT with the timestamp map.
#![no_main]

use hlspipe::media::text::{segment_webvtt, srt, tx3g, webvtt, SideFileName};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tx3g::sample_text(data);
    let _ = SideFileName::parse(&String::from_utf8_lossy(data));
    for parsed in [srt::parse(data), webvtt::parse(data)].into_iter().flatten() {
        let spans = [(0, 6_000), (6_000, 12_000)];
        for segment in segment_webvtt(&parsed.cues, &parsed.preamble, &spans) {
            assert!(segment.text.starts_with("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,"));
        }
    }
});
