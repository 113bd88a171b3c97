//! A real player: hls.js in headless Chromium plays what `hlspipe package` wrote,
//! served by a plain local HTTP server on 127.0.0.1. (Debian's Chromium has no
//! HEVC decoder, so the HEVC title is checked by ffmpeg in tests/media/package.rs only.)

use crate::support::{artifact, fixture, hlspipe, play_in_browser_with, serve_dir, PlayerReport};

fn package_and_play(inputs: &[&str]) {
    package_and_play_with(inputs, &[]);
}

/// The 4-second fixtures are cut into 2-second segments, so that the player loads more
/// than one fragment of each.
fn package_and_play_short(inputs: &[&str]) {
    package_and_play_with(inputs, &["--segment-duration", "2"]);
}

fn package_and_play_with(inputs: &[&str], extra: &[&str]) -> PlayerReport {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("title");
    let mut cmd = hlspipe();
    cmd.arg("package");
    for i in inputs {
        cmd.arg(fixture(i));
    }
    let status = cmd.arg(&out).args(extra).output().unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );

    let server = serve_dir(&out);
    let shot = artifact(&format!(
        "player-{}.png",
        inputs[0].trim_end_matches(".mp4")
    ));
    let report = play_in_browser_with(
        &server.url("master.m3u8"),
        &["--seconds", "3", "--screenshot", shot.to_str().unwrap()],
    );
    assert!(report.ok, "{inputs:?}: hls.js did not play: {report:?}");
    assert!(report.current_time > 3.0, "{report:?}");
    assert_eq!(report.fatal, None);
    assert!(report.frags_loaded >= 2, "{report:?}");
    assert!(report.http_errors.is_empty(), "{report:?}");
    // The player fetched media segments of ours, not just the playlists.
    let requests = server.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.target.ends_with(".m4s") && r.status == 200),
        "{requests:?}"
    );
    assert!(
        requests.iter().any(|r| r.target.ends_with("init.mp4")),
        "{requests:?}"
    );
    report
}

/// Where the browser put a track on the timeline: the first buffered range of the
/// SourceBuffer whose MIME type starts with `kind` (`video`, `audio`).
fn buffered_start(report: &PlayerReport, kind: &str) -> f64 {
    let track = report
        .buffered
        .iter()
        .find(|b| b.mime.starts_with(kind))
        .unwrap_or_else(|| panic!("no {kind} SourceBuffer: {report:?}"));
    track
        .ranges
        .first()
        .unwrap_or_else(|| panic!("{kind} buffered nothing: {report:?}"))
        .0
}

/// A trim without re-encoding (an edit list starting between key frames, B-frames, ending
/// early): before the fix Chromium dropped the pre-roll and, with it, every frame up to the
/// next key frame, so the picture started 1.6 s late. Now both tracks start at 0.
#[test]
fn hlsjs_starts_a_trimmed_title_at_its_trim_point_regression_edit_list_mid_gop() {
    let report = package_and_play_with(&["trimmed_mid_gop.mp4"], &["--segment-duration", "2"]);
    let video = buffered_start(&report, "video");
    let audio = buffered_start(&report, "audio");
    assert!(video.abs() < 0.001, "video starts at {video}: {report:?}");
    assert!(audio.abs() < 0.001, "audio starts at {audio}: {report:?}");
}

/// An empty edit (audio starting 0.5 s after the video) keeps the delay in the player.
#[test]
fn hlsjs_keeps_a_delayed_audio_start() {
    let report = package_and_play_with(&["delayed_audio.mp4"], &["--segment-duration", "2"]);
    assert!(buffered_start(&report, "video").abs() < 0.001, "{report:?}");
    // 0.5 s of empty edit minus the AAC priming ffmpeg folded into it (22 ms).
    let audio = buffered_start(&report, "audio");
    assert!(
        (audio - 0.478).abs() < 0.005,
        "audio starts at {audio}: {report:?}"
    );
}

#[test]
fn hlsjs_plays_h264_aac_faststart() {
    package_and_play(&["h264_aac_faststart.mp4"]);
}

#[test]
fn hlsjs_plays_b_frames_with_edit_list() {
    package_and_play(&["bframes_editlist.mp4"]);
}

#[test]
fn hlsjs_plays_a_three_file_ladder() {
    package_and_play(&["ladder_360.mp4", "ladder_240.mp4", "ladder_180.mp4"]);
}

#[test]
fn hlsjs_plays_two_audio_languages() {
    package_and_play(&["two_audio_langs.mp4"]);
}

#[test]
fn hlsjs_plays_a_long_gop_title() {
    package_and_play(&["long_gop.mp4"]);
}

/// The real-uploads issue: audio HLS carries besides AAC, passed through in fMP4, plays in
/// Chromium through hls.js (AC-3 and E-AC-3 are not decoded by Chromium; ffmpeg checks them
/// in tests/media/package.rs).
#[test]
fn hlsjs_plays_mp3_opus_and_flac_audio() {
    for fixture in ["h264_mp3.mp4", "h264_opus.mp4", "h264_flac.mp4"] {
        package_and_play_short(&[fixture]);
    }
}

/// A portrait phone video (a 90° matrix) plays, the matrix kept in the init segment.
#[test]
fn hlsjs_plays_a_rotated_portrait_video() {
    package_and_play_short(&["rotated_portrait.mp4"]);
}

/// Fragmented input (what browsers' MediaRecorder and OBS write) plays like a progressive one.
#[test]
fn hlsjs_plays_a_fragmented_input() {
    package_and_play(&["fragmented.mp4"]);
}

/// VP9 and AV1 pass through (CODECS `vp09.PP.LL.DD`, `av01.P.LLT.DD`) and play in Chromium.
#[test]
fn hlsjs_plays_vp9_and_av1() {
    for fixture in ["vp9_aac.mp4", "av1_aac.mp4"] {
        package_and_play_short(&[fixture]);
    }
}
