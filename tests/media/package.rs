//! `hlspipe package` end to end on every media fixture: the output decodes with
//! ffmpeg with the source's frame count and duration, every playlist follows the
//! rules, every URI exists, and packaging twice gives identical bytes.

use crate::support::{
    expected_media, ffmpeg_decode_errors, ffprobe_duration, ffprobe_entries, ffprobe_frames,
    fixture, hlspipe, ExpectedMedia,
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
