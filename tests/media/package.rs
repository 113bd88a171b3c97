//! `hlspipe package` end to end on every media fixture: the output decodes with
//! ffmpeg with the source's frame count and duration, every playlist follows the
//! rules, every URI exists, and packaging twice gives identical bytes.

use crate::support::{
    expected_media, ffmpeg_decode_errors, ffprobe_duration, ffprobe_entries, ffprobe_frames,
    ffprobe_times, fixture, hlspipe, ExpectedMedia,
};
use hlspipe::testing::check::{check_master_playlist, check_media_playlist};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Expected renditions of a title: (video, audio).
fn renditions(inputs: &[&str]) -> (usize, usize) {
    match inputs {
        ["audio_only.m4a"] | ["alac.m4a"] => (0, 1),
        ["video_only.mp4"] => (1, 0),
        ["two_audio_langs.mp4"] => (1, 2),
        [_] => (1, 1),
        many => (many.len(), 1),
    }
}

/// Runs `hlspipe package` and returns the output directory.
pub(crate) fn package(inputs: &[&str], out: &Path, extra: &[&str]) {
    let mut cmd = hlspipe();
    cmd.arg("package");
    for i in inputs {
        cmd.arg(fixture(i));
    }
    cmd.arg(out).args(extra);
    let output = cmd.output().expect("run hlspipe");
    assert!(
        output.status.success(),
        "hlspipe package {inputs:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Every file under `dir`, relative path → bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

pub(crate) fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Checks the master and every media playlist, and that every URI they name exists.
/// Returns the media playlist paths, video first as the master lists them.
fn check_playlists(out: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let master = check_master_playlist(&read(&out.join("master.m3u8")))
        .unwrap_or_else(|errs| panic!("master.m3u8 breaks the rules: {errs:#?}"));
    let mut video = Vec::new();
    let mut audio = Vec::new();
    for uri in &master.variant_uris {
        video.push(out.join(uri));
    }
    for uri in &master.media_uris {
        audio.push(out.join(uri));
    }
    for p in video.iter().chain(&audio) {
        let media = check_media_playlist(&read(p))
            .unwrap_or_else(|errs| panic!("{} breaks the rules: {errs:#?}", p.display()));
        let dir = p.parent().unwrap();
        for uri in media.segment_uris.iter().chain(media.map_uris.iter()) {
            assert!(
                dir.join(uri).is_file(),
                "{} names {uri}, which is missing",
                p.display()
            );
        }
    }
    // I-frame playlists: every entry is a whole key-frame fragment, so ffmpeg
    // decodes exactly one picture per entry, with no error.
    for uri in &master.iframe_uris {
        let p = out.join(uri);
        let media = check_media_playlist(&read(&p))
            .unwrap_or_else(|errs| panic!("{} breaks the rules: {errs:#?}", p.display()));
        assert!(media.iframes_only, "{} is not I-frames only", p.display());
        let errors = ffmpeg_decode_errors(&p);
        assert!(errors.is_empty(), "{}: {errors}", p.display());
        assert_eq!(
            ffprobe_frames(&p),
            media.segment_uris.len() as u64,
            "{}",
            p.display()
        );
    }
    assert_eq!(
        master.iframe_uris.len(),
        master
            .variant_uris
            .iter()
            .filter(|u| u.contains("/video_"))
            .count(),
        "one I-frame playlist per video rendition"
    );
    video.sort();
    video.dedup();
    audio.sort();
    audio.dedup();
    (video, audio)
}

/// First audio packet time minus first video packet time (seconds), as ffprobe reads the
/// file (edit lists applied); `None` without both.
fn av_start_gap(path: &Path) -> Option<f64> {
    let first = |select| {
        ffprobe_times(path, select, "packet=pts_time")
            .into_iter()
            .fold(None, |m: Option<f64>, t| Some(m.map_or(t, |m| m.min(t))))
    };
    Some(first("a:0")? - first("v:0")?)
}

/// Packages `inputs` and checks everything the issue asks of the output.
fn check_title(inputs: &[&str]) {
    let expected: Vec<ExpectedMedia> = inputs
        .iter()
        .map(|i| {
            expected_media()
                .into_iter()
                .find(|e| e.file == *i)
                .unwrap_or_else(|| panic!("{i} is not in fixtures/media/expected.tsv"))
        })
        .collect();
    let (video_count, audio_count) = renditions(inputs);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    package(inputs, &out, &[]);
    let (variants, audio) = check_playlists(&out);
    // Audio-only titles list their audio playlist as the variant.
    let video: Vec<_> = variants
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("/video_"))
        .collect();
    assert_eq!(video.len(), video_count, "{inputs:?}: video renditions");
    let audio_dirs: std::collections::BTreeSet<_> = snapshot(&out)
        .keys()
        .filter_map(|k| {
            k.split('/')
                .nth(2)
                .filter(|n| n.starts_with("audio_"))
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(
        audio_dirs.len(),
        audio_count,
        "{inputs:?}: audio renditions {audio_dirs:?}"
    );
    let _ = audio;

    let master = out.join("master.m3u8");
    let errors = ffmpeg_decode_errors(&master);
    assert!(
        errors.is_empty(),
        "{inputs:?}: ffmpeg reports errors: {errors}"
    );
    // Every video rendition decodes to its source's frame count (ladder rungs in
    // the order the master lists them, which is the order of the inputs).
    for (v, e) in video.iter().zip(&expected) {
        assert_eq!(
            ffprobe_frames(v),
            e.video_frames,
            "{inputs:?}: frames of {}",
            v.display()
        );
    }
    let duration = ffprobe_duration(&master);
    let frame = 1.0 / 25.0;
    assert!(
        (duration - expected[0].duration_s).abs() <= frame + 1e-3,
        "{inputs:?}: duration {duration} vs {}",
        expected[0].duration_s
    );
    // Audio starts where it starts in the source, relative to the picture (an empty edit
    // delays it; AAC priming is within one audio frame either way).
    if let (Some(src), Some(out)) = (av_start_gap(&fixture(inputs[0])), av_start_gap(&master)) {
        assert!(
            (src - out).abs() <= frame + 1e-3,
            "{inputs:?}: audio starts {out} s after the video, {src} s in the source"
        );
    }

    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["state"], "complete", "{manifest}");

    // Deterministic: the same input and settings give byte-identical objects.
    let again = tmp.path().join("again");
    package(inputs, &again, &[]);
    let mut a = snapshot(&out);
    let mut b = snapshot(&again);
    a.remove("manifest.json");
    b.remove("manifest.json");
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (k, v) in &a {
        assert!(b[k] == *v, "{inputs:?}: {k} differs between two runs");
    }
}

macro_rules! title_tests {
    ($($name:ident: [$($input:expr),+];)+) => {$(
        #[test]
        fn $name() {
            check_title(&[$($input),+]);
        }
    )+};
}

title_tests! {
    h264_aac_faststart: ["h264_aac_faststart.mp4"];
    moov_at_end: ["moov_at_end.mp4"];
    bframes_editlist: ["bframes_editlist.mp4"];
    delayed_audio: ["delayed_audio.mp4"];
    hevc_aac: ["hevc_aac.mp4"];
    two_audio_langs: ["two_audio_langs.mp4"];
    audio_only: ["audio_only.m4a"];
    video_only: ["video_only.mp4"];
    long_gop: ["long_gop.mp4"];
    tiny_faststart: ["tiny_faststart.mp4"];
    three_file_ladder: ["ladder_360.mp4", "ladder_240.mp4", "ladder_180.mp4"];
    rotated_portrait: ["rotated_portrait.mp4"];
    aac_5_1: ["aac_5_1.mp4"];
    hevc_pq: ["hevc_pq.mp4"];
    hevc_hlg: ["hevc_hlg.mp4"];
    aac_and_pcm: ["aac_and_pcm.mov"];
    h264_mp3: ["h264_mp3.mp4"];
    h264_opus: ["h264_opus.mp4"];
    h264_flac: ["h264_flac.mp4"];
    h264_ac3: ["h264_ac3.mp4"];
    h264_eac3: ["h264_eac3.mp4"];
    alac: ["alac.m4a"];
    fragmented: ["fragmented.mp4"];
    fragmented_moov_first_gop: ["fragmented_moov_first_gop.mp4"];
    vp9_aac: ["vp9_aac.mp4"];
    av1_aac: ["av1_aac.mp4"];
    h264_aac_subs: ["h264_aac_subs.mp4"];
    he_aac: ["he_aac.mp4"];
    he_aac_compat: ["he_aac_compat.mp4"];
    he_aac_v2: ["he_aac_v2.mp4"];
    he_aac_v2_compat: ["he_aac_v2_compat.mp4"];
    eac3_atmos: ["eac3_atmos.mp4"];
    eac3_7_1: ["eac3_7_1.mp4"];
    dv_p5: ["dv_p5.mp4"];
    dv_p81: ["dv_p81.mp4"];
    dv_p84: ["dv_p84.mp4"];
    dv_p10: ["dv_p10.mp4"];
    mov_quicktime: ["mov_quicktime.mov"];
}

#[test]
fn every_media_fixture_has_a_title_test() {
    let tested = [
        "h264_aac_faststart.mp4",
        "moov_at_end.mp4",
        "bframes_editlist.mp4",
        "trimmed_mid_gop.mp4",
        "delayed_audio.mp4",
        "hevc_aac.mp4",
        "two_audio_langs.mp4",
        "audio_only.m4a",
        "video_only.mp4",
        "long_gop.mp4",
        "tiny_faststart.mp4",
        "ladder_360.mp4",
        "ladder_240.mp4",
        "ladder_180.mp4",
        "rotated_portrait.mp4",
        "aac_5_1.mp4",
        "hevc_pq.mp4",
        "hevc_hlg.mp4",
        "aac_and_pcm.mov",
        "h264_mp3.mp4",
        "h264_opus.mp4",
        "h264_flac.mp4",
        "h264_ac3.mp4",
        "h264_eac3.mp4",
        "alac.m4a",
        "fragmented.mp4",
        "fragmented_moov_first_gop.mp4",
        "vp9_aac.mp4",
        "av1_aac.mp4",
        "h264_aac_subs.mp4",
        "h264_aac_subs_fragmented.mp4",
        "he_aac.mp4",
        "he_aac_compat.mp4",
        "he_aac_v2.mp4",
        "he_aac_v2_compat.mp4",
        "eac3_atmos.mp4",
        "eac3_7_1.mp4",
        "dv_p5.mp4",
        "dv_p81.mp4",
        "dv_p84.mp4",
        "dv_p10.mp4",
        "mov_quicktime.mov",
    ];
    for e in expected_media() {
        assert!(
            tested.contains(&e.file.as_str()),
            "{} has no title test",
            e.file
        );
    }
}

/// What the master says of a title is what ffprobe says of its source: RESOLUTION as
/// displayed (a portrait phone video is taller than wide), CHANNELS from the real channel
/// configuration (5.1 AAC is written with channelcount 2), VIDEO-RANGE from the colour
/// information (PQ, HLG; SDR is the default and not written). The init segment keeps the
/// rotation, so players turn the picture as the source asked.
#[test]
fn master_attributes_follow_the_source_as_ffprobe_reads_it_regression_portrait_5_1_and_hdr() {
    for name in [
        "rotated_portrait.mp4",
        "aac_5_1.mp4",
        "hevc_pq.mp4",
        "hevc_hlg.mp4",
        "h264_aac_faststart.mp4",
        // Passed-through audio: CHANNELS from dac3, dec3, dOps, the first MP3 frame header
        // (the entry says 2 for mono), or the sample entry (FLAC).
        "h264_mp3.mp4",
        "h264_ac3.mp4",
        "h264_eac3.mp4",
        "h264_opus.mp4",
        "h264_flac.mp4",
    ] {
        let source = fixture(name);
        let video = ffprobe_entries(
            &source,
            "v:0",
            "stream=width,height,color_transfer:stream_side_data=rotation",
        );
        let audio = ffprobe_entries(&source, "a:0", "stream=channels");
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        package(&[name], &out, &[]);
        let master = read(&out.join("master.m3u8"));
        let variant = master
            .lines()
            .find(|l| l.starts_with("#EXT-X-STREAM-INF:"))
            .unwrap_or_else(|| panic!("{name}: {master}"));

        let (w, h) = (&video["width"], &video["height"]);
        let quarter_turn = video
            .get("rotation")
            .is_some_and(|r| matches!(r.as_str(), "90" | "-90" | "270" | "-270"));
        let displayed = if quarter_turn {
            format!("RESOLUTION={h}x{w}")
        } else {
            format!("RESOLUTION={w}x{h}")
        };
        assert!(
            variant.contains(&displayed),
            "{name}: {displayed} in {variant}"
        );

        let range = match video.get("color_transfer").map(String::as_str) {
            Some("smpte2084") => Some("VIDEO-RANGE=PQ"),
            Some("arib-std-b67") => Some("VIDEO-RANGE=HLG"),
            _ => None,
        };
        match range {
            Some(range) => assert!(variant.contains(range), "{name}: {range} in {variant}"),
            None => assert!(!variant.contains("VIDEO-RANGE"), "{name}: {variant}"),
        }

        let channels = format!("CHANNELS=\"{}\"", audio["channels"]);
        assert!(master.contains(&channels), "{name}: {channels} in {master}");

        // The rendition as a player gets it keeps the source's rotation.
        let rendition = out.join(variant_uri(&master));
        let packaged = ffprobe_entries(&rendition, "v:0", "stream_side_data=rotation");
        assert_eq!(packaged.get("rotation"), video.get("rotation"), "{name}");
    }
}

/// The URI line after the first `EXT-X-STREAM-INF`.
pub(crate) fn variant_uri(master: &str) -> String {
    let mut lines = master.lines();
    lines
        .find(|l| l.starts_with("#EXT-X-STREAM-INF:"))
        .and(lines.next())
        .unwrap_or_default()
        .to_string()
}

/// A trim without re-encoding: an edit list starting between key frames (with B-frames) and
/// ending before the media does. Before the fix the frames before the trim point were shown
/// and the audio was 0.38 s out of step with them. Now the pre-roll is carried (decoding
/// needs it) but packed into the first millisecond, the frames shown are the ones the source
/// shows, where the source shows them, and the audio keeps the source's times.
#[test]
fn trim_between_key_frames_shows_the_source_frames_in_sync_regression_edit_list_mid_gop() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    package(&["trimmed_mid_gop.mp4"], &out, &[]);
    let master = out.join("master.m3u8");
    let errors = ffmpeg_decode_errors(&master);
    assert!(errors.is_empty(), "ffmpeg reports errors: {errors}");

    let source = fixture("trimmed_mid_gop.mp4");
    let mut src_frames = ffprobe_times(&source, "v:0", "frame=pts_time");
    let mut out_frames = ffprobe_times(&master, "v:0", "frame=pts_time");
    src_frames.sort_by(f64::total_cmp);
    out_frames.sort_by(f64::total_cmp);
    let (packed, shown): (Vec<f64>, Vec<f64>) = out_frames.iter().partition(|&&t| t < 0.001);
    assert!(
        !packed.is_empty(),
        "the fixture's pre-roll is carried: {out_frames:?}"
    );
    assert_eq!(shown.len(), src_frames.len(), "frames shown: {shown:?}");
    // ffmpeg snaps the source's trim to a frame start (the trim point is 20 ms into a
    // frame); hlspipe presents it exactly, so the two agree within a frame.
    let frame = 1.0 / 25.0;
    for (k, (o, s)) in shown.iter().zip(&src_frames).enumerate() {
        assert!((o - s).abs() <= frame, "frame {k}: {o} vs the source's {s}");
    }
    let src_audio = ffprobe_times(&source, "a:0", "packet=pts_time");
    let out_audio = ffprobe_times(&master, "a:0", "packet=pts_time");
    assert_eq!(out_audio.len(), src_audio.len());
    for (k, (o, s)) in out_audio.iter().zip(&src_audio).enumerate() {
        assert!(
            (o - s).abs() < 0.001,
            "audio packet {k}: {o} vs the source's {s}"
        );
    }
    let duration = ffprobe_duration(&master);
    assert!((duration - 5.18).abs() <= frame, "duration {duration}");
}

/// ffmpeg reads a B-frame title's timestamps exactly as it reads its source's: the
/// composition delay is the init segment's edit list, not negative offsets (which ffmpeg
/// 5.1 turned into an 80 ms video delay).
#[test]
fn b_frame_timestamps_read_as_the_source_regression_negative_offsets() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    package(&["bframes_editlist.mp4"], &out, &[]);
    let source = fixture("bframes_editlist.mp4");
    let master = out.join("master.m3u8");
    for select in ["v:0", "a:0"] {
        let src = ffprobe_times(&source, select, "packet=pts_time");
        let got = ffprobe_times(&master, select, "packet=pts_time");
        assert_eq!(got.len(), src.len(), "{select}");
        for (k, (o, s)) in got.iter().zip(&src).enumerate() {
            assert!(
                (o - s).abs() < 0.001,
                "{select} packet {k}: {o} vs the source's {s}"
            );
        }
    }
}

/// Nothing is dropped silently: the manifest (and `package --json`) lists every track of
/// every input and what became of it: a rendition, the same audio as another input's
/// rendition, or skipped with the reason.
#[test]
fn manifest_lists_every_track_and_what_became_of_it() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("pcm");
    package(&["aac_and_pcm.mov"], &out, &[]);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let tracks = manifest["tracks"].as_array().expect("tracks");
    let became: Vec<(u64, &str, &str)> = tracks
        .iter()
        .map(|t| {
            (
                t["track"].as_u64().unwrap(),
                t["became"].as_str().unwrap(),
                t["kind"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        became,
        vec![
            (1, "rendition", "video"),
            (2, "rendition", "audio"),
            (3, "skipped", "audio")
        ]
    );
    assert_eq!(tracks[0]["rendition"], "video_180p");
    assert_eq!(tracks[1]["codec"], "mp4a");
    let reason = tracks[2]["reason"].as_str().unwrap();
    assert!(
        reason.contains("sowt") && reason.contains("PCM"),
        "{reason}"
    );

    let out = tmp.path().join("ladder");
    package(&["ladder_360.mp4", "ladder_240.mp4"], &out, &[]);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let tracks = manifest["tracks"].as_array().expect("tracks");
    assert_eq!(tracks.len(), 4, "{tracks:?}");
    assert!(tracks[0]["input"]
        .as_str()
        .unwrap()
        .ends_with("ladder_360.mp4"));
    assert_eq!(tracks[1]["became"], "rendition");
    assert_eq!(tracks[3]["became"], "same_as", "{tracks:?}");
    assert_eq!(tracks[3]["rendition"], tracks[1]["rendition"]);
}

/// A ladder's rungs stand for the upload they were made of: the version of a title of rungs
/// alone (the source not kept) is the upload's and the settings', the same as the one the
/// worker computes from the upload's ETag before encoding, and never the same for two
/// uploads. Regression: rungs without the source once gave every upload the same version,
/// so two titles' immutable objects shared their paths.
#[test]
fn a_title_of_rungs_alone_has_its_uploads_version_regression_shared_version() {
    use hlspipe::media::package::{derived_etag, package, version_for_etags, Input, Settings};
    use hlspipe::media::source::FileSource;
    let settings = Settings {
        transcode: Some("ladder 234p:200k".into()),
        ..Settings::default()
    };
    let rung = |from: &str| Input {
        source: std::sync::Arc::new(FileSource::open(crate::support::small_clip()).unwrap()),
        etag: Some(derived_etag("234p.mp4", from)),
    };
    let version = |inputs: &[Input]| package(inputs, &settings).unwrap().version;
    let of_one = version(&[rung("etag=\"aaa\"")]);
    assert_eq!(of_one, version_for_etags(&["\"aaa\""], &settings));
    assert_ne!(of_one, version(&[rung("etag=\"bbb\"")]));
    // Kept as the top rung, the upload is an input too: its identity counts once.
    let kept = Input {
        source: std::sync::Arc::new(FileSource::open(crate::support::small_clip()).unwrap()),
        etag: Some("\"aaa\"".into()),
    };
    assert_eq!(version(&[kept, rung("etag=\"aaa\"")]), of_one);
}
