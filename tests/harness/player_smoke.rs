//! Tests of the test harness itself, on HLS made by ffmpeg rather than by hlspipe: the fixtures
//! are what generate.sh says, the static server answers like a CDN would, and hls.js in
//! Chromium both plays good HLS and reports a broken one. The product's own playback tests
//! build on these helpers.

use crate::support::*;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;

/// fMP4 HLS of `input` made by ffmpeg (`-c copy`, 2 s target) in `dir`: `master.m3u8` naming
/// `index.m3u8`, `init.mp4` and `seg<N>.m4s`.
fn ffmpeg_hls(input: &Path, dir: &Path) {
    let out = run_tool(
        Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-i"])
            .arg(input)
            .args([
                "-map",
                "0",
                "-c",
                "copy",
                "-f",
                "hls",
                "-hls_segment_type",
                "fmp4",
            ])
            .args(["-hls_time", "2", "-hls_playlist_type", "vod"])
            .args([
                "-hls_fmp4_init_filename",
                "init.mp4",
                "-master_pl_name",
                "master.m3u8",
            ])
            .arg("-hls_segment_filename")
            .arg(dir.join("seg%d.m4s"))
            .arg(dir.join("index.m3u8")),
    );
    assert!(
        out.status.success(),
        "ffmpeg hls: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn hls_js_plays_ffmpeg_fmp4_hls_of_faststart_fixture() {
    let source = fixture("h264_aac_faststart.mp4");
    let dir = tempfile::tempdir().unwrap();
    ffmpeg_hls(&source, dir.path());

    // The independent decoder agrees with the source before the browser is asked.
    assert_decodes_like_source(&source, &dir.path().join("master.m3u8"));

    let server = serve_dir(dir.path());
    let report = play_in_browser(&server.url("master.m3u8"));
    assert!(report.ok, "{report:?}");
    assert!(report.current_time > 3.0, "{report:?}");
    assert_eq!(report.fatal, None);
    assert!(report.frags_loaded >= 2, "{report:?}");
    assert_eq!(report.http_errors, vec![], "{report:?}");

    let fetched: Vec<String> = server.requests().into_iter().map(|r| r.target).collect();
    for name in ["/master.m3u8", "/index.m3u8", "/init.mp4", "/seg0.m4s"] {
        assert!(
            fetched.iter().any(|t| t == name),
            "{name} never fetched: {fetched:?}"
        );
    }
}

#[test]
fn hls_js_reports_fatal_error_for_master_naming_missing_playlist() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("master.m3u8"),
        "#EXTM3U\n#EXT-X-VERSION:7\n\
         #EXT-X-STREAM-INF:BANDWIDTH=300000,CODECS=\"avc1.64001e,mp4a.40.2\",RESOLUTION=426x240\n\
         missing/index.m3u8\n",
    )
    .unwrap();
    let server = serve_dir(dir.path());

    let report = play_in_browser(&server.url("master.m3u8"));
    assert!(!report.ok, "{report:?}");
    assert!(
        !report.timed_out,
        "a missing playlist must fail fast: {report:?}"
    );
    let fatal = report.fatal.as_deref().unwrap_or_default();
    assert!(fatal.starts_with("networkError/"), "{report:?}");
    assert!(
        report
            .http_errors
            .iter()
            .any(|e| e.status == 404 && e.url.ends_with("/missing/index.m3u8")),
        "{report:?}"
    );
}

#[test]
fn every_media_fixture_decodes_with_the_frames_and_duration_generate_sh_intended() {
    let expected = expected_media();
    let mut listed: Vec<&str> = expected.iter().map(|e| e.file.as_str()).collect();
    listed.sort_unstable();
    let mut on_disk: Vec<String> = fs::read_dir(repo_root().join("fixtures/media"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != "expected.tsv")
        .collect();
    on_disk.sort_unstable();
    assert_eq!(
        listed, on_disk,
        "fixtures/media and its expected.tsv disagree"
    );

    for e in &expected {
        let path = fixture(&e.file);
        assert_eq!(
            ffmpeg_decode_errors(&path),
            "",
            "{} decodes with errors",
            e.file
        );
        assert_eq!(
            ffprobe_frames(&path),
            e.video_frames,
            "{} video frames",
            e.file
        );
        let duration = ffprobe_duration(&path);
        assert!(
            (duration - e.duration_s).abs() < 0.05,
            "{}: duration {duration} s, generate.sh meant {} s",
            e.file,
            e.duration_s
        );
    }
}

#[test]
fn corrupt_fixtures_each_have_one_expectation() {
    let mut listed: Vec<String> = expected_corrupt().into_iter().map(|e| e.file).collect();
    listed.sort_unstable();
    let mut on_disk: Vec<String> = fs::read_dir(repo_root().join("fixtures/corrupt"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".mp4"))
        .collect();
    on_disk.sort_unstable();
    assert_eq!(
        listed, on_disk,
        "fixtures/corrupt and its expected.tsv disagree"
    );
    let readme = fs::read_to_string(repo_root().join("fixtures/corrupt/README.md")).unwrap();
    for name in &listed {
        corrupt_fixture(name);
        assert!(
            readme.contains(&format!("`{name}`")),
            "{name} is not described in the README"
        );
    }
}

/// Sends one raw request and returns the whole response (head and body).
fn raw_request(server: &StaticServer, request: &str) -> String {
    let mut stream = TcpStream::connect(server.base_url().trim_start_matches("http://")).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

#[test]
fn static_server_serves_types_head_ranges_and_refuses_escapes() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("index.m3u8"), "#EXTM3U\n").unwrap();
    fs::create_dir(dir.path().join("v")).unwrap();
    fs::write(dir.path().join("v/seg 1.m4s"), b"0123456789").unwrap();
    let server = serve_dir(dir.path());

    let get = raw_request(&server, "GET /index.m3u8?x=1 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(get.starts_with("HTTP/1.1 200 OK\r\n"), "{get}");
    assert!(
        get.contains("Content-Type: application/vnd.apple.mpegurl\r\n"),
        "{get}"
    );
    assert!(get.ends_with("\r\n\r\n#EXTM3U\n"), "{get}");

    let head = raw_request(&server, "HEAD /v/seg%201.m4s HTTP/1.1\r\n\r\n");
    assert!(
        head.contains("Content-Type: video/mp4\r\nContent-Length: 10\r\n"),
        "{head}"
    );
    assert!(head.ends_with("\r\n\r\n"), "HEAD must have no body: {head}");

    let range = raw_request(
        &server,
        "GET /v/seg%201.m4s HTTP/1.1\r\nRange: bytes=2-5\r\n\r\n",
    );
    assert!(
        range.starts_with("HTTP/1.1 206 Partial Content\r\n"),
        "{range}"
    );
    assert!(range.contains("Content-Range: bytes 2-5/10\r\n"), "{range}");
    assert!(range.ends_with("\r\n\r\n2345"), "{range}");

    let escape = raw_request(&server, "GET /../etc/passwd HTTP/1.1\r\n\r\n");
    assert!(escape.starts_with("HTTP/1.1 404"), "{escape}");
    let post = raw_request(&server, "POST /index.m3u8 HTTP/1.1\r\n\r\n");
    assert!(post.starts_with("HTTP/1.1 405"), "{post}");

    let statuses: Vec<u16> = server.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![200, 200, 206, 404, 405]);
}

#[test]
fn hlspipe_helper_runs_the_binary_of_this_build() {
    let out = run_tool(hlspipe().arg("--version"));
    assert!(out.status.success(), "{out:?}");
    let version = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        version.trim(),
        concat!("hlspipe ", env!("CARGO_PKG_VERSION"))
    );
}
