//! hls.js in headless Chromium plays through the edge of the real `hlspipe serve` with the
//! cookies its playback API issued, and fails with 403s without them, with another title's or
//! with expired ones; cross-origin playback works with credentialed CORS for an allowed page
//! origin only.
//!
//! Most tests hand the API's cookies to the harness (`play.mjs --cookie`, Playwright's
//! `addCookies`: host-only, without `Secure`). One lets Chromium take them from the API's own
//! `Set-Cookie` headers (`play.mjs --visit`), `Secure; HttpOnly; SameSite=Lax` included: Chromium
//! keeps and sends `Secure` cookies over plain http for 127.0.0.1 and localhost, which it counts
//! as potentially trustworthy.

use crate::support::edge::{cookie_pairs, cookies_for, now, Server, TOKEN};
use crate::support::{artifact, free_port, play_in_browser_with, PlayerReport};

fn api_cookies(server: &Server, title: &str) -> Vec<String> {
    let r = server.get(
        &format!("/v1/titles/{title}/playback"),
        &[("Authorization", &format!("Bearer {TOKEN}"))],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    cookie_pairs(&r.all("set-cookie"))
}

fn play(url: &str, cookies: &[String], extra: &[&str]) -> PlayerReport {
    let mut args: Vec<&str> = extra.to_vec();
    for cookie in cookies {
        args.push("--cookie");
        args.push(cookie);
    }
    play_in_browser_with(url, &args)
}

fn screenshot(name: &str) -> String {
    artifact(name).to_string_lossy().into_owned()
}

fn assert_denied(report: &PlayerReport, what: &str) {
    assert!(!report.ok, "{what}: played anyway: {report:?}");
    assert!(report.current_time < 0.5, "{what}: {report:?}");
    assert!(
        report
            .http_errors
            .iter()
            .any(|e| e.status == 403 && e.url.ends_with("master.m3u8")),
        "{what}: expected a 403 on the master playlist: {report:?}"
    );
}

fn assert_segments_served(server: &Server) {
    let lines = server.access_log_lines();
    let segments = lines
        .iter()
        .filter(|l| l.contains(".m4s HTTP/1.1\" 200 "))
        .count();
    assert!(
        segments >= 2,
        "segment GETs with 200 in the access log: {lines:#?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("\" 403 ")),
        "no request was denied: {lines:#?}"
    );
}

#[test]
fn plays_through_the_edge_with_the_apis_cookies() {
    let server = Server::start(&["--token", TOKEN]);
    let cookies = api_cookies(&server, "shows/ep1");
    let shot = screenshot("edge-player-cookies.png");
    let report = play(
        &format!("{}master.m3u8", server.title_url("ep1")),
        &cookies,
        &["--seconds", "3", "--screenshot", &shot],
    );
    assert!(report.ok, "{report:?}");
    assert!(report.current_time > 3.0, "{report:?}");
    assert_eq!(report.fatal, None);
    assert!(report.http_errors.is_empty(), "{report:?}");
    assert_segments_served(&server);
}

#[test]
fn plays_with_the_cookies_chromium_took_from_the_api() {
    let server = Server::start(&["--no-auth"]);
    let api = format!("{}/v1/titles/shows/ep1/playback", server.base_url());
    let shot = screenshot("edge-player-set-cookie.png");
    let report = play(
        &format!("{}master.m3u8", server.title_url("ep1")),
        &[],
        &["--visit", &api, "--screenshot", &shot],
    );
    assert!(report.ok, "{report:?}");
    assert!(report.current_time > 3.0, "{report:?}");
    assert_segments_served(&server);
    let lines = server.access_log_lines();
    assert!(
        lines[0].contains("\"GET /v1/titles/shows/ep1/playback HTTP/1.1\" 200 "),
        "{lines:#?}"
    );
}

#[test]
fn fails_with_403_without_cookies() {
    let server = Server::start(&["--token", TOKEN]);
    let report = play(&format!("{}master.m3u8", server.title_url("ep1")), &[], &[]);
    assert_denied(&report, "no cookies");
}

#[test]
fn fails_with_403_with_another_titles_cookies() {
    let server = Server::start(&["--token", TOKEN]);
    let ep1 = api_cookies(&server, "shows/ep1");
    let report = play(
        &format!("{}master.m3u8", server.title_url("ep10")),
        &ep1,
        &[],
    );
    assert_denied(&report, "ep1's cookies on ep10");
}

#[test]
fn fails_with_403_with_expired_cookies() {
    let server = Server::start(&["--token", TOKEN]);
    let expired = cookies_for(&server.title_url("ep1"), now() - 5);
    let pairs: Vec<String> = expired
        .pairs()
        .into_iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect();
    let report = play(
        &format!("{}master.m3u8", server.title_url("ep1")),
        &pairs,
        &[],
    );
    assert_denied(&report, "expired cookies");
}

#[test]
fn plays_cross_origin_with_credentialed_cors() {
    let page_origin = format!("http://127.0.0.1:{}", free_port());
    let server = Server::start(&["--token", TOKEN, "--allow-origin", &page_origin]);
    assert_ne!(server.base_url(), page_origin);
    let cookies = api_cookies(&server, "shows/ep1");
    let shot = screenshot("edge-player-cross-origin.png");
    let report = play(
        &format!("{}master.m3u8", server.title_url("ep1")),
        &cookies,
        &[
            "--page-origin",
            &page_origin,
            "--credentials",
            "--screenshot",
            &shot,
        ],
    );
    assert!(report.ok, "{report:?}");
    assert!(report.current_time > 3.0, "{report:?}");
    assert_segments_served(&server);
}

#[test]
fn cross_origin_fails_for_an_origin_not_allowed() {
    let page_origin = format!("http://127.0.0.1:{}", free_port());
    let server = Server::start(&["--token", TOKEN, "--allow-origin", "http://127.0.0.1:1"]);
    let cookies = api_cookies(&server, "shows/ep1");
    let report = play(
        &format!("{}master.m3u8", server.title_url("ep1")),
        &cookies,
        &[
            "--page-origin",
            &page_origin,
            "--credentials",
            "--timeout",
            "20",
        ],
    );
    assert!(!report.ok, "played without CORS: {report:?}");
    assert!(report.fatal.is_some(), "{report:?}");
    // The edge served the playlist (the cookies were good); the browser withheld it from the
    // page because the answer named no allowed origin.
    let lines = server.access_log_lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("master.m3u8 HTTP/1.1\" 200 ")),
        "{lines:#?}"
    );
    assert!(!lines.iter().any(|l| l.contains(".m4s")), "{lines:#?}");
}

/// A folder of buckets with `shows/short` packaged in 2-second segments (five of them), so
/// that a player with a short forward buffer fetches segments all through playback.
fn short_segment_store() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = crate::support::hlspipe()
        .arg("package")
        .arg(crate::support::fixture("h264_aac_faststart.mp4"))
        .arg(dir.path().join("media/hls/shows/short.hls"))
        .args(["--segment-duration", "2"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// Long titles outlive a cookie (the production-API issue): the page asks the API again
/// ahead of `expires_at`, as docs/delivery.md shows, and plays on through segments fetched
/// after the first cookies expired. Without the refresh, the same playback stops at a 403:
/// the cookies really expire mid-title.
#[test]
fn plays_past_the_cookie_lifetime_by_refreshing_ahead_of_expiry() {
    let store = short_segment_store();
    let url = format!("file://{}", store.path().display());
    // Two-second cookies, expiry rounded up to two seconds: they expire 2 to 4 s after each
    // answer, well inside the 10-second title.
    let server = Server::start_on(&url, &["--token", TOKEN, "--cookie-ttl", "2"], &[]);
    let master = format!("{}/hls/shows/short.hls/master.m3u8", server.base_url());
    let api = format!("{}/v1/titles/shows/short/playback", server.base_url());
    let player = |refresh: bool| {
        let mut args = vec!["--api", &api, "--api-token", TOKEN, "--max-buffer", "2"];
        args.extend(["--seconds", "9", "--timeout", "30"]);
        if refresh {
            args.push("--refresh");
        }
        play(&master, &[], &args)
    };

    let report = player(true);
    assert!(report.ok, "{report:?}");
    assert!(report.current_time > 9.0, "{report:?}");
    assert!(
        report.api_calls >= 3,
        "refreshed ahead of expiry: {report:?}"
    );
    assert!(report.http_errors.is_empty(), "{report:?}");
    let lines = server.access_log_lines();
    assert!(!lines.iter().any(|l| l.contains("\" 403 ")), "{lines:#?}");
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains(".m4s HTTP/1.1\" 200 "))
            .count(),
        10,
        "five segments of video and of audio, each fetched once: {lines:#?}"
    );

    let report = player(false);
    assert!(!report.ok, "played on expired cookies: {report:?}");
    assert_eq!(report.api_calls, 1, "{report:?}");
    assert!(
        report
            .http_errors
            .iter()
            .any(|e| e.status == 403 && e.url.ends_with(".m4s")),
        "a later segment was refused once the cookies expired: {report:?}"
    );
}
