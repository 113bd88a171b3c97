//! Edit lists as editors write them, applied to a demuxed track (ISO/IEC 14496-12 § 8.6.6).
//!
//! A trim without re-encoding (Photos, QuickTime, `ffmpeg -ss 2.3 -c copy`) keeps the
//! samples from the key frame before the trim point and says, with an edit, that
//! presentation starts at the trim point. The frames between that key frame and the trim
//! point (the *pre-roll*) must reach the decoder, since the frames after them refer to
//! them, but must never be shown.
//!
//! fMP4 has no "decode but do not show" flag, and Media Source Extensions drop every frame
//! presented before the append window (0) together with everything that depends on it up
//! to the next key frame (MSE § 3.5.8 "Coded Frame Processing", step "presentation
//! timestamp is less than appendWindowStart"). So the pre-roll cannot sit before 0.
//! Instead it is packed into the first ticks of the presentation: pre-roll frame `r` (in
//! presentation order) is presented at tick `r`, and every other frame `n` ticks later than the
//! edit says, `n` being the number of pre-roll frames. In a timescale of at least 90 kHz
//! (one is chosen when the source's is coarser, keeping every time exact) that is under a
//! millisecond for a 90-frame GOP: the pre-roll is decoded and shown for an instant no
//! display refreshes at, and the picture that stays on screen at time 0 is the trim point.
//!
//! The end of the edit is applied the same way round: samples that start after it and
//! that nothing shown depends on are dropped; the few a B-frame shown before the end
//! still needs are packed into the ticks after the last shown frame.

use crate::media::model::{Track, TrackKind, MAX_TICKS};

/// The finest tick the packed pre-roll is given: 1/90000 s, the MPEG system clock.
const FINE_TIMESCALE: u32 = 90_000;

/// Applies the track's resolved edit (`media_start`, `media_end`) to its samples, as the
/// module documentation says. Leaves `media_start` and `empty_delay` for the writers (the
/// init segment's edit list and `tfdt`), scaled with the timescale when it changes.
pub fn apply(track: &mut Track) {
    if let Some(end) = track.media_end.take() {
        trim_end(track, end);
    }
    if track.kind == TrackKind::Video {
        let pre_roll = pre_roll(track);
        if !pre_roll.is_empty() {
            // Scaling keeps the order of times, so the pre-roll found before it stays.
            refine_timescale(track);
            pack_pre_roll(track, &pre_roll);
        }
    }
}

/// Source presentation time (before the edit) of sample `i`.
fn source_pts(track: &Track, i: usize) -> i64 {
    let s = &track.samples[i];
    dts(s).saturating_add(i64::from(s.cts_offset))
}

/// Decode time as a signed number (a hostile `stts` can sum past `i64::MAX`).
fn dts(s: &crate::media::model::Sample) -> i64 {
    i64::try_from(s.dts).unwrap_or(i64::MAX)
}

/// A composition offset, saturated into the field's range.
fn offset(cto: i64) -> i32 {
    cto.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

/// The samples presented before the edit's start, in the source's presentation order.
fn pre_roll(track: &Track) -> Vec<usize> {
    let mut pre_roll: Vec<usize> = (0..track.samples.len())
        .filter(|&i| source_pts(track, i) < track.media_start)
        .collect();
    pre_roll.sort_by_key(|&i| (source_pts(track, i), i));
    pre_roll
}

/// Drops the samples presented at or after `end` (media time) that no shown sample is
/// decoded after; in video, the ones left (references of B-frames shown before the end)
/// are packed just after the last shown frame.
fn trim_end(track: &mut Track, end: i64) {
    let shown_last = (0..track.samples.len())
        .rev()
        .find(|&i| source_pts(track, i) < end);
    let Some(last) = shown_last else {
        // The edit ends before any sample: keep the track whole rather than empty.
        return;
    };
    track.samples.truncate(last + 1);
    if track.kind != TrackKind::Video {
        return;
    }
    let mut r = 0i64;
    for i in 0..track.samples.len() {
        if source_pts(track, i) >= end {
            let s = &mut track.samples[i];
            s.cts_offset = offset(end.saturating_add(r).saturating_sub(dts(s)));
            r += 1;
        }
    }
}

/// Multiplies every time of the track by the smallest whole factor that gives at least
/// [`FINE_TIMESCALE`] ticks a second, unless a time would pass [`MAX_TICKS`] (then it
/// stays).
fn refine_timescale(track: &mut Track) {
    let ts = track.timescale.max(1);
    if ts >= FINE_TIMESCALE {
        return;
    }
    let k = FINE_TIMESCALE.div_ceil(ts);
    let end = track.decode_end();
    if end.saturating_mul(u64::from(k)) > MAX_TICKS {
        return;
    }
    let Some(scaled) = scaled_samples(track, k) else {
        return;
    };
    let (Some(timescale), Some(start), Some(delay)) = (
        ts.checked_mul(k),
        track.media_start.checked_mul(i64::from(k)),
        track.empty_delay.checked_mul(i64::from(k)),
    ) else {
        return;
    };
    track.samples = scaled;
    track.timescale = timescale;
    track.media_start = start;
    track.empty_delay = delay;
}

fn scaled_samples(track: &Track, k: u32) -> Option<Vec<crate::media::model::Sample>> {
    track
        .samples
        .iter()
        .map(|s| {
            let mut s = *s;
            s.dts = s.dts.checked_mul(u64::from(k))?;
            s.duration = s.duration.checked_mul(k)?;
            s.cts_offset = s.cts_offset.checked_mul(i32::try_from(k).ok()?)?;
            Some(s)
        })
        .collect()
}

/// Presents pre-roll frame `r` (in the source's presentation order, so a decoder's output
/// stays in timestamp order) at tick `r` after the edit's start, and every other frame `n`
/// ticks later than before.
fn pack_pre_roll(track: &mut Track, pre_roll: &[usize]) {
    let start = track.media_start;
    let n = pre_roll.len() as i64;
    for s in &mut track.samples {
        let pts = dts(s).saturating_add(i64::from(s.cts_offset));
        if pts >= start {
            s.cts_offset = offset(i64::from(s.cts_offset) + n);
        }
    }
    for (r, &i) in pre_roll.iter().enumerate() {
        let s = &mut track.samples[i];
        s.cts_offset = offset(start.saturating_add(r as i64).saturating_sub(dts(s)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::model::{Codec, Sample, UNITY_MATRIX};

    /// A 25 fps video in timescale 25 (one tick a frame), key frames every `gop`, no
    /// B-frames, the edit starting `start` frames in.
    fn video(n: usize, gop: usize, start: i64, end: Option<i64>) -> Track {
        Track {
            input: 0,
            id: 1,
            kind: TrackKind::Video,
            codec: Codec::Aac { asc: vec![] },
            sample_entry: vec![],
            timescale: 25,
            language: "und".into(),
            width: 0,
            height: 0,
            matrix: UNITY_MATRIX,
            transfer: None,
            channels: 0,
            sample_rate: 0,
            media_start: start,
            media_end: end,
            empty_delay: 0,
            samples: (0..n)
                .map(|i| Sample {
                    offset: i as u64,
                    size: 1,
                    dts: i as u64,
                    duration: 1,
                    cts_offset: 0,
                    sync: i % gop == 0,
                })
                .collect(),
        }
    }

    fn shown_pts(t: &Track) -> Vec<i64> {
        t.samples.iter().map(|s| t.pts(s)).collect()
    }

    #[test]
    fn pre_roll_is_packed_into_the_first_ticks_of_a_fine_timescale() {
        // Trim 8 frames into a 50-frame GOP.
        let mut t = video(100, 50, 8, None);
        apply(&mut t);
        assert_eq!(t.timescale, 90_000);
        let pts = shown_pts(&t);
        assert_eq!(&pts[..8], &[0, 1, 2, 3, 4, 5, 6, 7]);
        // The trim point is presented 8 ticks (89 µs) late; later frames keep their spacing.
        assert_eq!(pts[8], 8);
        assert_eq!(pts[9], 8 + 3600);
        assert_eq!(t.samples.len(), 100, "the pre-roll is carried");
        assert!(t.samples[0].sync);
    }

    #[test]
    fn no_pre_roll_leaves_the_track_alone() {
        let mut t = video(10, 5, 0, None);
        let before = t.clone().samples;
        apply(&mut t);
        assert_eq!(t.timescale, 25);
        assert_eq!(t.samples, before);
    }

    #[test]
    fn end_of_edit_drops_the_samples_after_it() {
        let mut t = video(100, 50, 0, Some(60));
        apply(&mut t);
        assert_eq!(t.samples.len(), 60);
    }

    #[test]
    fn b_frame_reference_after_the_end_is_kept_and_packed() {
        // Decode order I0 P2 B1 with presentation 0 2 1: an edit ending at 2 shows I0
        // and B1, and B1 needs P2.
        let mut t = video(3, 3, 0, Some(2));
        t.samples[1].cts_offset = 1; // P: dts 1, pts 2
        t.samples[2].cts_offset = -1; // B: dts 2, pts 1
        apply(&mut t);
        assert_eq!(t.samples.len(), 3);
        assert_eq!(shown_pts(&t), vec![0, 2, 1]);
    }

    #[test]
    fn audio_is_trimmed_at_the_end_and_never_packed() {
        let mut t = video(10, 1, 3, Some(8));
        t.kind = TrackKind::Audio;
        apply(&mut t);
        assert_eq!(t.samples.len(), 8);
        assert_eq!(t.timescale, 25);
    }

    #[test]
    fn overflowing_rescale_keeps_the_source_timescale() {
        let mut t = video(10, 10, 2, None);
        t.samples[9].dts = u64::MAX / 100;
        apply(&mut t);
        assert_eq!(t.timescale, 25);
        assert_eq!(shown_pts(&t)[..3], [0, 1, 2]);
    }
}
