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

/// Subtitles: a title with two mov_text tracks lists both in `hls.subtitleTracks` with their
/// language, and once one is selected its cues reach the video's text track at the times
/// the source gave them (X-TIMESTAMP-MAP MPEGTS:0 against the 0-based fMP4 timeline).
#[test]
fn hlsjs_lists_subtitle_tracks_and_delivers_their_cues() {
    let (_tmp, out) = packaged(&[], &fixture("h264_aac_subs.mp4"));
    let server = serve_dir(&out);
    // Played through both segments: the cue across the 6 s cut is in both.
    let report = play_in_browser_with(
        &server.url("master.m3u8"),
        &["--seconds", "7.2", "--subtitle-track", "0", "--cues", "3"],
    );
    assert!(report.ok, "hls.js did not play with subtitles: {report:?}");
    let tracks: Vec<(&str, Option<&str>)> = report
        .subtitle_tracks
        .iter()
        .map(|t| (t.name.as_str(), t.lang.as_deref()))
        .collect();
    assert_eq!(tracks, [("English", Some("en")), ("Français", Some("fr"))]);
    // VTTCue.text is the raw cue text: the entity stays escaped until rendered.
    let cues: Vec<(&str, f64, f64, &str)> = report
        .cues
        .iter()
        .map(|c| (c.track.as_str(), c.start, c.end, c.text.as_str()))
        .collect();
    assert_eq!(
        cues,
        [
            ("en", 0.5, 1.5, "Hello &amp; welcome"),
            ("en", 5.5, 6.5, "Across the cut"),
            ("en", 7.0, 7.8, "Goodbye"),
        ],
        "cues at the source's times, the one across the cut once"
    );
    let requests = server.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.target.ends_with(".vtt") && r.status == 200),
        "{requests:?}"
    );
}

/// A forced SRT side file (`--subtitles`, Windows-1252 bytes) is the DEFAULT subtitle
/// rendition: hls.js selects it without the viewer choosing, and delivers its cue decoded.
#[test]
fn hlsjs_shows_a_forced_srt_side_file_by_default() {
    let tmp = tempfile::tempdir().unwrap();
    let srt = tmp.path().join("clip.fr.forced.srt");
    std::fs::write(
        &srt,
        b"1\r\n00:00:01,000 --> 00:00:02,000\r\nCaf\xE9 cr\xE8me\r\n",
    )
    .unwrap();
    let out = tmp.path().join("title");
    let status = hlspipe()
        .arg("package")
        .arg(fixture("h264_aac_faststart.mp4"))
        .arg(&out)
        .arg("--subtitles")
        .arg(&srt)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(
        String::from_utf8_lossy(&status.stderr).contains("read as Windows-1252"),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let server = serve_dir(&out);
    let report = play_in_browser_with(
        &server.url("master.m3u8"),
        &["--seconds", "2", "--cues", "1"],
    );
    assert!(
        report.ok,
        "hls.js did not deliver the forced cue: {report:?}"
    );
    let track = &report.subtitle_tracks[0];
    assert!(
        track.default && track.forced && track.autoselect,
        "{track:?}"
    );
    assert_eq!(track.lang.as_deref(), Some("fr"));
    let cues: Vec<(f64, f64, &str)> = report
        .cues
        .iter()
        .map(|c| (c.start, c.end, c.text.as_str()))
        .collect();
    assert_eq!(cues, [(1.0, 2.0, "Café crème")]);
}

/// A ladder made with `--ladder auto` from a 720p upload: hls.js lists every rung, switches
/// level on demand several times round the ladder (each rendition has the same segment
/// boundaries, so every switch lands on a segment of the same times), and plays on through
/// the switches with no error.
#[test]
fn hlsjs_switches_between_the_rungs_of_an_auto_ladder() {
    let (_tmp, out) = packaged(
        &["--ladder", "auto", "--segment-duration", "1"],
        crate::support::ladder_source_720p_16s(),
    );
    let server = serve_dir(&out);
    let shot = artifact("player-ladder.png");
    let report = play_in_browser_with(
        &server.url("master.m3u8"),
        &[
            "--seconds",
            "3.5",
            "--max-buffer",
            "2",
            "--switch-levels",
            "3",
            "--screenshot",
            shot.to_str().unwrap(),
        ],
    );
    assert!(
        report.ok,
        "hls.js did not play through the switches: {report:?}"
    );
    let mut heights = report.levels.clone();
    heights.sort_unstable();
    assert_eq!(heights, [234, 360, 540, 720], "{report:?}");
    let switched: Vec<u32> = report.level_switches.iter().map(|s| s.height).collect();
    // Round the ladder: the first level, then the three others in turn.
    assert!(switched.len() >= 4, "{switched:?}");
    // Round the ladder: the first level, then four others in turn.
    let distinct: std::collections::BTreeSet<u32> = switched.iter().copied().collect();
    assert_eq!(distinct.len(), 4, "switched through {switched:?}");
    // hls.js cancels the load of a segment of the level it leaves (net::ERR_ABORTED): not an
    // error of ours. Nothing was refused or missing.
    let refused: Vec<_> = report
        .http_errors
        .iter()
        .filter(|e| e.status != 0)
        .collect();
    assert!(refused.is_empty(), "{report:?}");
    assert!(report.current_time > 3.5, "{report:?}");
}

/// The same with the source's own HEVC kept as the top rung: Chromium here has no HEVC
/// decoder, so hls.js leaves that level out and plays and switches round the H.264 rungs.
#[test]
fn hlsjs_skips_the_source_s_hevc_rung_and_plays_the_h264_rungs() {
    let source = crate::support::picture_with_tone(
        "ladder_source_hevc_720p_8s.mp4",
        "testsrc2=size=1280x720:rate=30",
        "8",
        &[
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-b:v",
            "3M",
            "-x265-params",
            "keyint=30:min-keyint=30:scenecut=0:log-level=error",
            "-tag:v",
            "hvc1",
        ],
    );
    let (_tmp, out) = packaged(&["--ladder", "auto", "--segment-duration", "1"], &source);
    let master = std::fs::read_to_string(out.join("master.m3u8")).unwrap();
    assert!(
        master.contains("hvc1."),
        "the source is the top rung: {master}"
    );
    let server = serve_dir(&out);
    let report = play_in_browser_with(
        &server.url("master.m3u8"),
        &[
            "--seconds",
            "3",
            "--max-buffer",
            "2",
            "--switch-levels",
            "2",
        ],
    );
    assert!(report.ok, "hls.js did not play the H.264 rungs: {report:?}");
    let mut heights = report.levels.clone();
    heights.sort_unstable();
    assert_eq!(
        heights,
        [234, 360, 540],
        "the HEVC level is left out: {report:?}"
    );
    let distinct: std::collections::BTreeSet<u32> =
        report.level_switches.iter().map(|s| s.height).collect();
    // hls.js's own start, then the two switches asked for, landing on other levels.
    assert!(report.level_switches.len() >= 3, "{report:?}");
    assert!(distinct.len() >= 2, "{report:?}");
    assert!(report.current_time > 3.0, "{report:?}");
}

/// `hlspipe package ARGS INPUT` into a title folder of a new temporary folder, which must
/// succeed: the folder (removed on drop) and the title's path.
fn packaged(args: &[&str], input: &std::path::Path) -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("title");
    let run = hlspipe()
        .arg("package")
        .args(args)
        .arg(input)
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    (tmp, out)
}

/// A new title published progressively: hls.js starts at 0 while it is still being written,
/// follows the growing playlists (reloading them) to their `EXT-X-ENDLIST` without a stall,
/// and ends with a finite duration, the source's.
#[test]
fn hlsjs_plays_a_title_from_0_while_it_is_published_and_on_to_its_end() {
    use crate::support::buckets::{record, Buckets};
    use crate::support::minute_clip;
    use crate::support::store::FakeStore;
    use hlspipe::pipeline::config::PipelineConfig;
    use hlspipe::pipeline::event::RecordKind;
    use hlspipe::pipeline::outcome::Outcome;
    use hlspipe::store::Store;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    let b = Buckets::new();
    let key = "uploads/live/talk.mp4";
    let etag = b.put_file(key, minute_clip());
    let title = "hls/live/talk.hls/";
    let folder = b.bucket().join(title);
    std::fs::create_dir_all(&folder).unwrap();
    let server = serve_dir(&folder);
    // A slow link: 400 ms a segment, two at a time, so the minute takes about 12 s to write,
    // 5 s of it a second: ahead of the player at 4x, which must never catch up and stall.
    let store: Arc<dyn Store> = Arc::new(FakeStore::new(b.store()).before_put(|k| {
        if k.ends_with(".m4s") {
            std::thread::sleep(Duration::from_millis(400));
        }
    }));
    let publisher = std::thread::spawn(move || {
        let config = PipelineConfig {
            segment_duration: 2.0,
            concurrency: 2,
            ..PipelineConfig::default()
        };
        crate::support::pipeline(&config)
            .handle_record(&store, &record(RecordKind::Created, key, Some(&etag)))
    });
    // The player starts once the title plays, with ten seconds of it listed.
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        if !b.exists(&format!("{title}manifest.json")) {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        let m = b.manifest(title);
        let playable = m["progress"]["playable_seconds"].as_f64().unwrap_or(0.0);
        if m["state"] == "publishing" && playable >= 10.0 {
            break;
        }
        assert_ne!(
            m["state"], "complete",
            "published before the player could start: {m}"
        );
        assert!(Instant::now() < until, "never playable: {m}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let shot = artifact("player-progressive.png");
    let report = play_in_browser_with(
        &server.url("master.m3u8"),
        &[
            "--seconds",
            "0",
            "--playback-rate",
            "4",
            "--until-ended",
            "--timeout",
            "120",
            "--screenshot",
            shot.to_str().unwrap(),
        ],
    );
    let outcome = publisher.join().unwrap();
    assert!(matches!(outcome, Outcome::Processed { .. }), "{outcome}");
    assert!(report.ok && report.ended, "{report:?}");
    assert_eq!(report.fatal, None);
    assert!(report.http_errors.is_empty(), "{report:?}");
    assert_eq!(report.stalls, 0, "{report:?}");
    let duration = report.duration.expect("a finite duration");
    assert!((duration - 60.0).abs() < 0.2, "{report:?}");
    assert!(buffered_start(&report, "video") < 0.05, "{report:?}");
    // It played the growing playlists, reloading them as they grew.
    let requests = server.requests();
    let reloads = requests
        .iter()
        .filter(|r| r.target.ends_with("/event.m3u8") && r.status == 200)
        .count();
    assert!(reloads >= 4, "{requests:?}");
    assert!(
        !requests.iter().any(|r| r.target.ends_with("/index.m3u8")),
        "{requests:?}"
    );
}
