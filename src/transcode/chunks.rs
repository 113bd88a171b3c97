//! Chunked encoding: the upload's video cut at its own key frames into chunks of about
//! `chunk_seconds`, without decoding (the demuxer's samples, given to ffmpeg as a fragmented
//! MP4 of their own); each chunk encoded to every rung on its own, in parallel; each rung
//! then stitched back from its chunks into one fragmented MP4 that the packager reads like
//! any other input (a copy with new headers, no second encode).
//!
//! Every chunk starts with a key frame of the source and ends before the next chunk's, so
//! the chunks' frames are the source's frames, each once. When the source is kept as the top
//! rung, chunks start only where the packager cuts the source, so the rungs' IDR frames (and
//! so their segments) stay where the source's segments are.

use crate::error::{Error, Result};
use crate::media::fmp4::{create_fragment, create_init_segment};
use crate::media::model::{Sample, Track, TrackKind};
use crate::media::mp4::{demux, Limits};
use crate::media::object::{Body, BodySource};
use crate::media::source::Source;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A chunk shorter than this share of the chunk length is joined to the one before.
const SHORTEST_SHARE: f64 = 1.0 / 3.0;
/// Tolerance when comparing times from different timescales.
const EPSILON_SECS: f64 = 0.001;

/// One chunk of the source's video: samples `first..end` in decode order, from a key frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Chunk {
    pub index: usize,
    pub first: usize,
    pub end: usize,
    /// Presentation start and end, seconds.
    pub start: f64,
    pub until: f64,
}

impl Chunk {
    /// The cut times inside the chunk, relative to its start: where its rungs get IDR frames
    /// besides their first frame. A millisecond early, so a time that rounds up in the
    /// encoder's time base still lands on its frame and not the next (frames are further
    /// apart than that).
    pub fn key_frames(&self, cuts: &[f64]) -> Vec<f64> {
        cuts.iter()
            .filter(|&&t| t > self.start + EPSILON_SECS && t < self.until - EPSILON_SECS)
            .map(|t| (t - self.start - EPSILON_SECS).max(0.0))
            .collect()
    }
}

/// Cuts `video` into chunks of about `chunk_seconds`, each starting at a sync sample; with
/// `only_at`, only at those times (the packager's cuts of the kept source). One chunk (the
/// whole) when the video is not longer than one and a half chunks.
pub fn plan(video: &Track, chunk_seconds: f64, only_at: Option<&[f64]>) -> Vec<Chunk> {
    let ts = f64::from(video.timescale.max(1));
    let end_time = video
        .samples
        .iter()
        .map(|s| (video.pts(s) + i64::from(s.duration)) as f64 / ts)
        .fold(0.0f64, f64::max);
    let mut starts: Vec<(usize, f64)> = vec![(0, 0.0)];
    if chunk_seconds > 0.0 {
        let mut last = 0.0f64;
        for (i, s) in video.samples.iter().enumerate().skip(1) {
            let t = video.pts(s) as f64 / ts;
            let allowed = s.sync
                && only_at.is_none_or(|cuts| cuts.iter().any(|c| (c - t).abs() < EPSILON_SECS));
            if allowed
                && t >= last + chunk_seconds - EPSILON_SECS
                && end_time - t >= chunk_seconds * SHORTEST_SHARE
            {
                starts.push((i, t));
                last = t;
            }
        }
    }
    starts
        .iter()
        .enumerate()
        .map(|(index, &(first, start))| {
            let next = starts.get(index + 1);
            Chunk {
                index,
                first,
                end: next.map_or(video.samples.len(), |n| n.0),
                start,
                until: next.map_or(end_time, |n| n.1),
            }
        })
        .collect()
}

/// The chunk as a file of its own for ffmpeg: the video's init segment and one fragment of
/// the chunk's samples, read from `source` (the track's input) when ffmpeg reads them.
pub fn chunk_source(video: &Track, chunk: &Chunk, source: Arc<dyn Source>) -> BodySource {
    let mut track = video.clone();
    track.input = 0;
    let mut body = Body::from_bytes(create_init_segment(&track));
    body.append(create_fragment(&track, chunk.first..chunk.end, 1));
    let name = format!("{} (chunk {})", source.name(), chunk.index + 1);
    BodySource::new(body, vec![source], name)
}

/// The video's key frames alone, as a file of their own for ffmpeg: the init segment and one
/// fragment of the sync samples, each lasting until the next (the last until the track's
/// end), at their own decode and presentation times. What the previews decode (the poster
/// and the thumbnails come from key frames only) at a fraction of the source's bytes: a 2 s
/// GOP's key frame is typically a tenth of its bytes or less.
pub fn key_frames_source(video: &Track, source: Arc<dyn Source>) -> BodySource {
    let track = key_frames_track(video);
    let mut body = Body::from_bytes(create_init_segment(&track));
    body.append(create_fragment(&track, 0..track.samples.len(), 1));
    let name = format!("{} (key frames)", source.name());
    BodySource::new(body, vec![source], name)
}

/// The track of [`key_frames_source`]: the sync samples alone, each lasting until the next.
fn key_frames_track(video: &Track) -> Track {
    let mut track = video.clone();
    track.input = 0;
    let end = video.media_duration();
    let syncs: Vec<&Sample> = video.samples.iter().filter(|s| s.sync).collect();
    track.samples = syncs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let next = syncs.get(i + 1).map_or(end, |n| n.dts);
            Sample {
                duration: u32::try_from(next.saturating_sub(s.dts)).unwrap_or(u32::MAX),
                ..**s
            }
        })
        .collect();
    track
}

/// One rung stitched from its encoded chunks, in order: a fragmented MP4 of one video track
/// whose fragments are the chunks' samples, each fragment's decode time following on from
/// the last. The chunks must be encoded alike (the same sample description, timescale and
/// edit), which the same encoder settings give.
pub fn stitch(parts: Vec<Arc<dyn Source>>, name: String) -> Result<BodySource> {
    let mut tracks = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        let movie = demux(part.as_ref(), i, &Limits::default())?;
        let video = movie
            .tracks
            .into_iter()
            .find(|t| t.kind == TrackKind::Video)
            .ok_or_else(|| unlike(&name, i, "it has no video track"))?;
        tracks.push(video);
    }
    let Some(first) = tracks.first() else {
        return Err(Error::Transcode {
            reason: format!("{name}: no chunks to stitch"),
            class: crate::error::RetryClass::Permanent,
        });
    };
    let mut body = Body::from_bytes(create_init_segment(first));
    let mut decode_time = 0u64;
    for (i, track) in tracks.iter().enumerate() {
        if track.sample_entry != first.sample_entry {
            return Err(unlike(&name, i, "its sample description differs"));
        }
        if (track.timescale, track.media_start) != (first.timescale, first.media_start) {
            return Err(unlike(&name, i, "its timescale or edit differs"));
        }
        let mut shifted = track.clone();
        for s in &mut shifted.samples {
            s.dts = s.dts.saturating_add(decode_time);
        }
        decode_time = decode_time.saturating_add(track.media_duration());
        let sequence = u32::try_from(i + 1).unwrap_or(u32::MAX);
        body.append(create_fragment(
            &shifted,
            0..shifted.samples.len(),
            sequence,
        ));
    }
    Ok(BodySource::new(body, parts, name))
}

fn unlike(name: &str, chunk: usize, why: &str) -> Error {
    Error::Transcode {
        reason: format!("{name}: chunk {} cannot be stitched: {why}", chunk + 1),
        class: crate::error::RetryClass::Permanent,
    }
}

/// Runs `work` on every item, `concurrency` at a time, in order of the items; stops taking
/// new items after the first failure and returns it.
pub fn run_all<T: Sync>(
    items: &[T],
    concurrency: usize,
    work: &(dyn Fn(&T) -> Result<()> + Sync),
) -> Result<()> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..concurrency.clamp(1, items.len().max(1)) {
            scope.spawn(|| {
                while !failed.load(Ordering::Relaxed) {
                    let Some(item) = items.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        break;
                    };
                    if let Err(e) = work(item) {
                        failed.store(true, Ordering::Relaxed);
                        let mut slot = first_error.lock().unwrap_or_else(|p| p.into_inner());
                        slot.get_or_insert(e);
                    }
                }
            });
        }
    });
    match first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::plan::tests::track;

    #[test]
    fn chunks_start_at_key_frames_and_cover_every_sample_once() {
        // 100 s at 25 fps, a key frame every 2 s.
        let video = track(TrackKind::Video, 2500, 50, 1, 25);
        let chunks = plan(&video, 30.0, None);
        let starts: Vec<f64> = chunks.iter().map(|c| c.start).collect();
        // 30, 60, 90: the last would leave 10 s, at least a third of a chunk.
        assert_eq!(starts, [0.0, 30.0, 60.0, 90.0]);
        assert_eq!(chunks.last().map(|c| (c.end, c.until)), Some((2500, 100.0)));
        for pair in chunks.windows(2) {
            assert_eq!(pair[0].end, pair[1].first);
            assert!(video.samples[pair[1].first].sync);
        }
        // Only where the kept source is cut: the first allowed time past each 30 s (96 would
        // leave a tail of 4 s).
        let cuts = [12.0, 24.0, 36.0, 48.0, 64.0, 96.0];
        let only: Vec<f64> = plan(&video, 30.0, Some(&cuts))
            .iter()
            .map(|c| c.start)
            .collect();
        assert_eq!(only, [0.0, 36.0]);
        // A short tail joins the chunk before; no chunks asked, or too short: one.
        assert_eq!(plan(&video, 45.0, None).len(), 2);
        assert_eq!(plan(&video, 0.0, None).len(), 1);
        assert_eq!(plan(&video, 80.0, None).len(), 1);
    }

    #[test]
    fn the_key_frames_track_keeps_each_key_frame_s_time_and_lasts_the_whole_video() {
        // 10 s at 25 fps, a key frame every 2 s.
        let video = track(TrackKind::Video, 250, 50, 1, 25);
        let keys = key_frames_track(&video);
        let times: Vec<(u64, u32)> = keys.samples.iter().map(|s| (s.dts, s.duration)).collect();
        assert_eq!(times, [(0, 50), (50, 50), (100, 50), (150, 50), (200, 50)]);
        assert!(keys.samples.iter().all(|s| s.sync));
        assert_eq!(keys.media_duration(), video.media_duration());
        let offsets: Vec<u64> = keys.samples.iter().map(|s| s.offset).collect();
        let expected: Vec<u64> = video
            .samples
            .iter()
            .filter(|s| s.sync)
            .map(|s| s.offset)
            .collect();
        assert_eq!(offsets, expected);
    }

    #[test]
    fn a_chunk_s_key_frames_are_the_cuts_inside_it_a_millisecond_early() {
        let chunk = Chunk {
            index: 1,
            first: 0,
            end: 0,
            start: 30.0,
            until: 60.0,
        };
        let times = chunk.key_frames(&[6.0, 30.0, 36.0, 42.0, 60.0, 66.0]);
        assert_eq!(times.len(), 2);
        assert!((times[0] - 5.999).abs() < 1e-9 && (times[1] - 11.999).abs() < 1e-9);
    }

    #[test]
    fn a_body_reads_as_the_file_it_describes() {
        let source: Arc<dyn Source> = Arc::new(crate::media::source::MemorySource::new(
            b"0123456789".to_vec(),
            "m",
        ));
        let mut body = Body::from_bytes(b"ab".to_vec());
        body.push_source(0, 3, 4);
        body.push_bytes(b"cd".to_vec());
        let file = BodySource::new(body, vec![source], "body".into());
        assert_eq!(file.len(), 8);
        let mut all = [0u8; 8];
        file.read_at(0, &mut all).unwrap();
        assert_eq!(&all, b"ab3456cd");
        let mut mid = [0u8; 4];
        file.read_at(3, &mut mid).unwrap();
        assert_eq!(&mid, b"456c");
        assert!(file.read_at(6, &mut mid).is_err());
    }
}
