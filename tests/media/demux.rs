//! The demuxer on real files: what it reads must match what the fixtures hold, and
//! no mutation of a valid file can make it (or the writers after it) panic.

use crate::support::{fixture, repo_root};
use hlspipe::media::hls::codecs::codecs_string;
use hlspipe::media::model::{Codec, Movie, TrackKind};
use hlspipe::media::mp4::{demux, Limits};
use hlspipe::media::package::{package, Input, Settings};
use hlspipe::media::plan;
use hlspipe::media::source::{FileSource, MemorySource, Source};
use std::sync::Arc;

fn open(name: &str) -> Movie {
    let src = FileSource::open(&fixture(name)).unwrap();
    demux(&src, 0, &Limits::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn moov_at_the_end_reads_the_same_tracks_as_faststart() {
    let a = open("h264_aac_faststart.mp4");
    let b = open("moov_at_end.mp4");
    assert_eq!(a.tracks.len(), 2);
    assert_eq!(a.tracks.len(), b.tracks.len());
    for (x, y) in a.tracks.iter().zip(&b.tracks) {
        assert_eq!(x.kind, y.kind);
        assert_eq!(x.codec, y.codec);
        assert_eq!(x.samples.len(), y.samples.len());
        for (s, t) in x.samples.iter().zip(&y.samples) {
            assert_eq!(
                (s.size, s.dts, s.duration, s.sync, s.cts_offset),
                (t.size, t.dts, t.duration, t.sync, t.cts_offset)
            );
        }
    }
    let video = &a.tracks[0];
    assert_eq!(video.kind, TrackKind::Video);
    assert_eq!(video.samples.len(), 250);
    assert_eq!((video.width, video.height), (426, 240));
    // GOP of 2 s at 25 fps: a sync sample every 50 frames.
    assert_eq!(video.samples.iter().filter(|s| s.sync).count(), 5);
    assert_eq!(codecs_string(&video.codec).unwrap(), "avc1.640015");
    let audio = &a.tracks[1];
    assert_eq!((audio.channels, audio.sample_rate), (2, 48000));
    assert_eq!(codecs_string(&audio.codec).unwrap(), "mp4a.40.2");
}

#[test]
fn b_frames_and_edit_list_present_from_zero() {
    let m = open("bframes_editlist.mp4");
    let v = m
        .tracks
        .iter()
        .find(|t| t.kind == TrackKind::Video)
        .unwrap();
    assert!(
        v.samples.iter().any(|s| s.cts_offset != 0),
        "fixture should have B-frames"
    );
    assert!(v.media_start > 0, "fixture should have an edit list");
    let first_pts = v.samples.iter().map(|s| v.pts(s)).min().unwrap();
    assert_eq!(first_pts, 0, "presentation must start at 0");
    // Every presentation time is distinct and the frames tile the timeline.
    let mut pts: Vec<i64> = v.samples.iter().map(|s| v.pts(s)).collect();
    pts.sort();
    pts.dedup();
    assert_eq!(pts.len(), v.samples.len());
}

#[test]
fn hevc_is_tagged_hvc1() {
    let m = open("hevc_aac.mp4");
    let v = &m.tracks[0];
    assert!(matches!(&v.codec, Codec::H265 { fourcc, .. } if fourcc == b"hvc1"));
    let codecs = codecs_string(&v.codec).unwrap();
    assert!(codecs.starts_with("hvc1.1."), "{codecs}");
}

#[test]
fn two_audio_languages_are_two_tracks() {
    let m = open("two_audio_langs.mp4");
    let langs: Vec<&str> = m
        .tracks
        .iter()
        .filter(|t| t.kind == TrackKind::Audio)
        .map(|t| t.language.as_str())
        .collect();
    assert_eq!(langs, ["eng", "fra"]);
}

#[test]
fn audio_only_and_video_only() {
    let a = open("audio_only.m4a");
    assert_eq!(
        a.tracks.iter().map(|t| t.kind).collect::<Vec<_>>(),
        [TrackKind::Audio]
    );
    let v = open("video_only.mp4");
    assert_eq!(
        v.tracks.iter().map(|t| t.kind).collect::<Vec<_>>(),
        [TrackKind::Video]
    );
}

#[test]
fn long_gop_gives_whole_gop_segments() {
    let m = open("long_gop.mp4");
    let v = &m.tracks[0];
    let segs = plan::split_at_sync(v, 6.0);
    let secs: Vec<f64> = segs.iter().map(|s| s.duration_secs(v.timescale)).collect();
    assert_eq!(secs.len(), 3, "{secs:?}");
    assert!(
        (secs[0] - 10.0).abs() < 0.01 && (secs[1] - 10.0).abs() < 0.01,
        "{secs:?}"
    );
    for s in &segs {
        assert!(
            v.samples[s.first].sync,
            "every segment starts at a sync sample"
        );
    }
}

#[test]
fn ladder_rungs_cut_at_the_same_times() {
    let cuts: Vec<Vec<f64>> = ["ladder_360.mp4", "ladder_240.mp4", "ladder_180.mp4"]
        .iter()
        .map(|f| {
            let m = open(f);
            let v = &m.tracks[0];
            plan::cut_times(&plan::split_at_sync(v, 6.0), v.timescale)
        })
        .collect();
    assert!(!cuts[0].is_empty());
    assert_eq!(cuts[0], cuts[1]);
    assert_eq!(cuts[1], cuts[2]);
}

/// A small deterministic generator, so a failure names a reproducible case.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Flips bytes, rewrites 32-bit fields (where box sizes and counts live) and cuts
/// the file short; demuxing and packaging must return, never panic, and a body the
/// packager accepted must be readable from the source it came from.
#[test]
fn mutated_files_never_panic() {
    let original = std::fs::read(fixture("tiny_faststart.mp4")).unwrap();
    let moov_end = original.len().min(4096);
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let settings = Settings::default();
    let mut accepted = 0;
    for case in 0..1500u32 {
        let mut data = original.clone();
        let edits = 1 + rng.next() % 4;
        for _ in 0..edits {
            let at = (rng.next() as usize) % moov_end.min(data.len());
            match rng.next() % 4 {
                0 => data[at] ^= 1 << (rng.next() % 8),
                1 if at + 4 <= data.len() => {
                    let v = [0u32, 1, 7, 8, 0x7fff_ffff, 0xffff_ffff, 0xffff_fff0]
                        [(rng.next() % 7) as usize];
                    data[at..at + 4].copy_from_slice(&v.to_be_bytes());
                }
                2 => data.truncate(at.max(1)),
                _ => data[at] = rng.next() as u8,
            }
        }
        let source: Arc<dyn Source> = Arc::new(MemorySource::new(data, format!("case-{case}")));
        let input = Input {
            source: Arc::clone(&source),
            etag: None,
        };
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            package(std::slice::from_ref(&input), &settings).map(|title| {
                for obj in title.media.iter().chain(&title.playlists) {
                    obj.body
                        .to_vec(std::slice::from_ref(&source))
                        .unwrap_or_else(|e| {
                            panic!(
                                "case {case}: accepted object {} cannot be read: {e}",
                                obj.key
                            )
                        });
                }
            })
        }));
        match result {
            Ok(Ok(())) => accepted += 1,
            Ok(Err(_)) => {}
            Err(_) => panic!("case {case} panicked"),
        }
    }
    // Some mutations land in sample data or harmless fields; most must be caught.
    assert!(accepted > 0 && accepted < 1500, "accepted {accepted}");
}

#[test]
fn release_profile_keeps_overflow_checks() {
    let manifest = std::fs::read_to_string(repo_root().join("Cargo.toml")).unwrap();
    let release = manifest
        .split("[profile.release]")
        .nth(1)
        .expect("a [profile.release] section");
    let section = release.split("\n[").next().unwrap_or("");
    assert!(
        section.contains("overflow-checks = true"),
        "[profile.release] must keep overflow-checks = true"
    );
}

/// QuickTime sound description version 2 (rate as a 64-bit float, channels in their own
/// field, the entry's 16-bit fields placeholders: ffmpeg writes channelcount 3) with the
/// esds inside `wave`; the timecode and chapter tracks are ignored, not skipped media.
#[test]
fn quicktime_v2_sound_description_and_ignored_timecode_and_chapter_tracks() {
    let m = open("mov_quicktime.mov");
    assert_eq!(m.tracks.len(), 2, "{:?}", m.skipped);
    assert!(m.skipped.is_empty(), "{:?}", m.skipped);
    let ignored: Vec<(u32, &str)> = m
        .ignored
        .iter()
        .map(|s| (s.id, s.reason.as_str()))
        .collect();
    assert_eq!(
        ignored,
        [
            (3, "a chapter track (ignored)"),
            (4, "a 'tmcd' track (ignored)")
        ]
    );
    let audio = m
        .tracks
        .iter()
        .find(|t| t.kind == TrackKind::Audio)
        .unwrap();
    assert_eq!((audio.channels, audio.sample_rate), (2, 96000));
    assert_eq!(codecs_string(&audio.codec).unwrap(), "mp4a.40.2");
}

/// Dolby Vision: the record is read from dvcC (profile 5, in a dvh1 entry) and dvvC
/// (profile 8 in hvc1, profile 10 in av01).
#[test]
fn dolby_vision_records_are_read() {
    for (name, profile, compatibility) in [
        ("dv_p5.mp4", 5, 0),
        ("dv_p81.mp4", 8, 1),
        ("dv_p84.mp4", 8, 4),
        ("dv_p10.mp4", 10, 1),
    ] {
        let m = open(name);
        let dovi = match &m.tracks[0].codec {
            Codec::H265 { dovi, .. } | Codec::Av1 { dovi, .. } => dovi.unwrap(),
            other => panic!("{name}: {other:?}"),
        };
        assert_eq!((dovi.profile, dovi.level), (profile, 1), "{name}");
        assert_eq!(dovi.compatibility, compatibility, "{name}");
        assert!(
            dovi.rpu && dovi.base_layer && !dovi.enhancement_layer,
            "{name}"
        );
    }
}

/// The same, aimed at the sample descriptions the codec parsers read (esds with HE-AAC
/// signalling, dec3 with Atmos, dvcC/dvvC, QuickTime sound description v2 with wave and
/// chan): bytes flipped and 32-bit fields rewritten inside each `stsd`.
#[test]
fn mutated_sample_descriptions_never_panic() {
    let settings = Settings::default();
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    for name in [
        "he_aac_v2_compat.mp4",
        "eac3_atmos.mp4",
        "dv_p5.mp4",
        "dv_p10.mp4",
        "mov_quicktime.mov",
    ] {
        let original = std::fs::read(fixture(name)).unwrap();
        let stsds: Vec<usize> = original
            .windows(4)
            .enumerate()
            .filter(|(_, w)| *w == b"stsd")
            .map(|(i, _)| i)
            .collect();
        assert!(!stsds.is_empty(), "{name}");
        for case in 0..300u32 {
            let mut data = original.clone();
            let stsd = stsds[rng.next() as usize % stsds.len()];
            for _ in 0..1 + rng.next() % 3 {
                let at = (stsd + (rng.next() as usize) % 240).min(data.len() - 4);
                if rng.next().is_multiple_of(2) {
                    data[at] ^= 1 << (rng.next() % 8);
                } else {
                    let v = [0u32, 1, 5, 8, 0xff, 0xffff_ffff][(rng.next() % 6) as usize];
                    data[at..at + 4].copy_from_slice(&v.to_be_bytes());
                }
            }
            let source: Arc<dyn Source> =
                Arc::new(MemorySource::new(data, format!("{name}-{case}")));
            let input = Input { source, etag: None };
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let _ = package(std::slice::from_ref(&input), &settings);
            }));
            assert!(result.is_ok(), "{name} case {case} panicked");
        }
    }
}

/// QuickTime sound description version 1 with the esds inside `wave` (ffmpeg's MOV AAC) and a
/// mono `chan` layout: the track reads as mono AAC-LC at 48 kHz.
#[test]
fn quicktime_v1_sound_description_with_wave() {
    let m = open("aac_and_pcm.mov");
    let audio = m
        .tracks
        .iter()
        .find(|t| t.kind == TrackKind::Audio)
        .unwrap();
    // The entry: size, type, 6 reserved, data_reference_index, then the version.
    assert_eq!(&audio.sample_entry[4..8], b"mp4a");
    assert_eq!(
        audio.sample_entry[16..18],
        [0, 1],
        "sound description version"
    );
    assert!(audio.sample_entry.windows(4).any(|w| w == b"wave"));
    assert_eq!((audio.channels, audio.sample_rate), (1, 48000));
    assert_eq!(codecs_string(&audio.codec).unwrap(), "mp4a.40.2");
}

/// Timed-metadata and other data handlers are ignored like timecode (listed, never warned
/// about); a handler nobody knows is still a skipped track with a warning.
#[test]
fn data_tracks_are_ignored_and_unknown_handlers_reported() {
    let original = std::fs::read(fixture("mov_quicktime.mov")).unwrap();
    // The timecode track's media handler: QuickTime component type 'mhlr', subtype 'tmcd'.
    let at = original
        .windows(8)
        .position(|w| w == b"mhlrtmcd")
        .expect("tmcd handler")
        + 4;
    for (handler, skipped) in [(b"meta", 0), (b"camm", 0), (b"xyzw", 1)] {
        let mut data = original.clone();
        data[at..at + 4].copy_from_slice(handler);
        let src = MemorySource::new(data, "patched.mov");
        let m = demux(&src, 0, &Limits::default()).unwrap();
        assert_eq!(m.tracks.len(), 2);
        assert_eq!(m.skipped.len(), skipped, "{:?}", m.skipped);
        assert_eq!(m.ignored.len(), 2 - skipped, "{:?}", m.ignored);
        if skipped == 1 {
            assert_eq!(m.skipped[0].uncarried, None);
            assert!(m.skipped[0].reason.contains("xyzw"), "{:?}", m.skipped);
        }
    }
}
