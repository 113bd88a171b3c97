//! `hlspipe dev`, the embedded default, as a newcomer meets it: start it, open the
//! player page, watch the bundled sample play through signed cookies, copy a new
//! file into the uploads folder and watch that play too, without a restart.

#[path = "../support/mod.rs"]
mod support;

use hlspipe::percent;
use hlspipe::title::Title;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{artifact, fixture, hlspipe, repo_root};

mod soak;

/// The running `hlspipe dev`, killed on drop.
struct Dev {
    child: Child,
    base: String,
    /// Its stderr lines so far.
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `hlspipe dev` without the ladder: the tests of the page, the API and the soak are about
/// them, not about ffmpeg's time.
fn start(data: &std::path::Path) -> Dev {
    start_with(data, &["--ladder", "off"])
}

fn start_with(data: &std::path::Path, args: &[&str]) -> Dev {
    let mut child = hlspipe()
        .args(["dev", "--listen", "127.0.0.1:0", "--poll-seconds", "0.3"])
        .args(args)
        .arg("--data")
        .arg(data)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start hlspipe dev");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let log: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let kept = std::sync::Arc::clone(&log);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[dev] {line}");
            kept.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(line.clone());
            if let Some(rest) = line.strip_prefix("hlspipe dev: http://") {
                let base = format!("http://{}", rest.split('/').next().unwrap_or(""));
                let _ = tx.send(base);
            }
        }
    });
    let base = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("hlspipe dev printed its URL");
    Dev { child, base, log }
}

/// A plain HTTP/1.0 GET: status and body.
fn get(base: &str, path: &str) -> (u16, String) {
    let addr = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|b| b.1)
        .unwrap_or("")
        .to_string();
    (status, body)
}

/// Waits until the page's title list says `title` is playable.
fn wait_playable(dev: &Dev, title: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (_, body) = get(&dev.base, "/dev/titles");
        let titles: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let ready = titles.as_array().is_some_and(|a| {
            a.iter()
                .any(|t| t["title"] == title && t["playable"] == true && t["state"] == "complete")
        });
        if ready {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{title} never became playable: {body}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Opens the player page asking it to play `title`; asserts the video passed 3 s.
fn watch(dev: &Dev, title: &str) {
    let file_name: String = title
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let shot = artifact(&format!("dev-page-{file_name}.png"));
    // A query value: everything but unreserved characters encoded (`+` would read as a space).
    let query = percent::encode(title, |b| {
        b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
    });
    let out = Command::new("node")
        .arg(repo_root().join("tests/player/page.mjs"))
        .arg(format!("{}/?play={query}", dev.base))
        .args(["--seconds", "3", "--screenshot"])
        .arg(&shot)
        .output()
        .expect("node: run scripts/install-test-deps.sh");
    let report = String::from_utf8_lossy(&out.stdout);
    assert_ne!(
        out.status.code(),
        Some(2),
        "the page harness broke: {report} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_str(report.lines().last().unwrap_or("{}")).unwrap();
    assert_eq!(
        json["ok"], true,
        "the dev page did not play {title}: {json}"
    );
    assert!(shot.is_file());
}

#[test]
fn dev_plays_the_sample_and_a_new_upload_behind_signed_cookies() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let dev = start(&data);

    // The bundled sample is packaged at start and plays from the page.
    wait_playable(&dev, "sample");
    assert!(data.join("media/hls/sample.hls/master.m3u8").is_file());
    assert!(data.join("dev-key.pem").is_file());
    watch(&dev, "sample");

    // The edge refuses the title to anyone without the cookies.
    let (status, _) = get(&dev.base, "/hls/sample.hls/master.m3u8");
    assert_eq!(status, 403);
    let (status, page) = get(&dev.base, "/");
    assert_eq!(status, 200);
    assert!(page.contains("hls.min.js"));

    // A file copied into the bucket while running becomes playable without a restart.
    std::fs::copy(
        fixture("bframes_editlist.mp4"),
        data.join("media/uploads/later.mp4"),
    )
    .unwrap();
    wait_playable(&dev, "later");
    watch(&dev, "later");
}

/// DESIGN.md "Titles": any Unicode. An upload named as people name files (spaces, an en
/// dash, `+ & ' # %`, accents, an emoji, an upper-case extension, NFD as macOS writes it)
/// plays end to end: page → playback API → cookies → edge (a CloudFront-style check of the
/// cookie's policy against the percent-encoded URL) → hls.js.
#[test]
fn dev_plays_an_upload_named_with_spaces_symbols_and_non_ascii_regression_playback_api_said_400() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let dev = start(&data);
    wait_playable(&dev, "sample");

    let folder = data.join("media/uploads/My Trip");
    std::fs::create_dir_all(&folder).unwrap();
    // "Cafe" + U+0301: the decomposed "é" of a macOS file name; the title is its NFC form.
    let name = "Day 1 \u{2013} Beach + friends & 'fun' #1 100% Cafe\u{301} \u{1F3AC}";
    std::fs::copy(
        fixture("h264_aac_faststart.mp4"),
        folder.join(format!("{name}.MP4")),
    )
    .unwrap();
    let title = Title::new(&format!("My Trip/{name}")).unwrap();
    assert_eq!(
        title.as_str(),
        "My Trip/Day 1 \u{2013} Beach + friends & 'fun' #1 100% Caf\u{e9} \u{1F3AC}"
    );
    wait_playable(&dev, title.as_str());
    let bundle = data.join("media").join(title.folder("hls/"));
    assert!(bundle.join("master.m3u8").is_file(), "{}", bundle.display());
    // Without cookies the edge refuses the encoded URL, as CloudFront would.
    let (status, _) = get(
        &dev.base,
        &format!("/{}master.m3u8", title.url_folder("hls/")),
    );
    assert_eq!(status, 403);
    watch(&dev, title.as_str());
}

/// One listing error stopped the dev upload watcher for good (a self-referencing symlink in
/// `uploads/`). Now the link is skipped and named once, a later upload is packaged, and its
/// deletion is applied.
#[test]
fn one_listing_error_stops_the_dev_upload_watcher_regression_self_referencing_symlink() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let dev = start(&data);
    wait_playable(&dev, "sample");
    let uploads = data.join("media/uploads");
    std::os::unix::fs::symlink("loop.mp4", uploads.join("loop.mp4")).unwrap();
    let upload = uploads.join("after the loop.mp4");
    std::fs::copy(fixture("h264_aac_faststart.mp4"), &upload).unwrap();
    wait_playable(&dev, "after the loop");

    std::fs::remove_file(&upload).unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (_, body) = get(&dev.base, "/dev/titles");
        let titles: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let listed = |t: &str| {
            titles
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x["title"] == t))
        };
        if listed("sample") && !listed("after the loop") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the deletion was not applied: {body}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// A page uploads through the API (`POST /v1/uploads`, the part PUT to the dev server, then
/// complete), as a site would to S3: the file lands whole in the uploads folder under a name
/// with spaces and accents, and the watcher packages it.
#[test]
fn dev_takes_an_upload_through_the_api_and_plays_it() {
    use support::edge::request_url;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let dev = start(&data);
    let bytes = std::fs::read(fixture("h264_aac_faststart.mp4")).unwrap();
    let request = serde_json::json!({
        "filename": "IMG 0001.MP4",
        "size": bytes.len(),
        "title": "Vacances d'été/Jour 1 – plage",
    })
    .to_string();
    let json = [("Content-Type", "application/json")];
    let r = request_url(
        "POST",
        &format!("{}/v1/uploads", dev.base),
        &json,
        Some(request.as_bytes()),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let answer = r.json();
    assert_eq!(answer["parts"].as_array().unwrap().len(), 1);
    let part = answer["parts"][0]["url"].as_str().unwrap();
    let r = request_url("PUT", part, &[], Some(&bytes));
    assert_eq!(r.status, 200, "{}", r.text());
    let etag = r.header("etag").unwrap().to_owned();
    let done = serde_json::json!({"parts": [{"part_number": 1, "etag": etag}]}).to_string();
    let complete = answer["complete"]["url"].as_str().unwrap();
    let r = request_url("POST", complete, &json, Some(done.as_bytes()));
    assert_eq!(r.status, 200, "{}", r.text());
    let upload = data.join("media/uploads/Vacances d'été/Jour 1 – plage.mp4");
    assert_eq!(std::fs::read(&upload).unwrap(), bytes);
    wait_playable(&dev, "Vacances d'été/Jour 1 – plage");
}

#[test]
fn dev_refuses_to_listen_off_loopback_without_a_token() {
    let tmp = tempfile::tempdir().unwrap();
    let out = hlspipe()
        .args(["dev", "--listen", "0.0.0.0:0", "--data"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--token"));
}

/// With ffmpeg on the machine, `dev` turns the ladder on (`auto`) unless told otherwise,
/// says so, and the sample title is made with it (its poster and thumbnails).
#[test]
fn dev_turns_the_ladder_on_when_ffmpeg_is_there() {
    let data = tempfile::tempdir().unwrap();
    let dev = start_with(data.path(), &[]);
    wait_playable(&dev, "sample");
    let log = dev.log.lock().unwrap_or_else(|p| p.into_inner()).join("\n");
    assert!(log.contains("ladder:   auto (ffmpeg version"), "{log}");
    let title = data.path().join("media/hls/sample.hls");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(title.join("manifest.json")).unwrap()).unwrap();
    assert!(
        manifest["transcode"]["settings"]
            .as_str()
            .is_some_and(|s| s.starts_with("ladder=auto;")),
        "{manifest}"
    );
    let version = manifest["version"].as_str().unwrap();
    assert!(title.join(format!("v/{version}/poster.jpg")).is_file());
}

/// `curl -T` against the page's upload endpoint: the name as given (spaces, accents, the
/// extension lower-cased), streamed into the bucket, then packaged like any upload; a file
/// over the limit, one the worker would not take, and a body cut short are refused with a
/// reason and leave nothing in the bucket.
#[test]
fn dev_takes_a_curl_upload_and_refuses_what_it_must() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let dev = start_with(&data, &["--ladder", "off", "--upload-max-bytes", "2000000"]);
    let file = tmp.path().join("Été à la plage 1.MP4");
    std::fs::copy(fixture("h264_aac_faststart.mp4"), &file).unwrap();
    let out = Command::new("curl")
        .args(["-sS", "-T"])
        .arg(&file)
        .arg(format!("{}/dev/uploads/", dev.base))
        .output()
        .expect("curl: run scripts/install-test-deps.sh");
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["title"], "Été à la plage 1", "{answer}");
    assert_eq!(answer["key"], "uploads/Été à la plage 1.mp4");
    let stored = data.join("media/uploads/Été à la plage 1.mp4");
    assert_eq!(
        std::fs::read(&stored).unwrap(),
        std::fs::read(&file).unwrap()
    );
    wait_playable(&dev, "Été à la plage 1");

    // Re-process: the upload's job again, published anew; then Delete: the upload goes, and
    // the watcher's removal takes the title down.
    let jobs = || {
        let log = dev.log.lock().unwrap_or_else(|p| p.into_inner());
        log.iter()
            .filter(|l| {
                l.starts_with("hlspipe dev: upload uploads/Été à la plage 1.mp4: processed")
            })
            .count()
    };
    assert_eq!(jobs(), 1);
    let encoded = "%C3%89t%C3%A9%20%C3%A0%20la%20plage%201";
    let post =
        |path: &str| support::edge::request_url("POST", &format!("{}{path}", dev.base), &[], None);
    let r = post(&format!("/dev/titles/{encoded}/reprocess"));
    assert_eq!(r.status, 202, "{}", r.text());
    let deadline = Instant::now() + Duration::from_secs(60);
    while jobs() < 2 {
        assert!(Instant::now() < deadline, "the title was not re-processed");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(post("/dev/titles/nothing-here/delete").status, 404);
    let r = post(&format!("/dev/titles/{encoded}/delete"));
    assert_eq!(r.status, 202, "{}", r.text());
    assert!(!stored.exists());
    let deadline = Instant::now() + Duration::from_secs(60);
    while data
        .join("media/hls/Été à la plage 1.hls/master.m3u8")
        .exists()
    {
        assert!(Instant::now() < deadline, "the title was not taken down");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (_, listed) = get(&dev.base, "/dev/titles");
    assert!(!listed.contains("plage"), "{listed}");

    let put = |name: &str, len: usize, send: usize| -> (u16, String) {
        let addr = dev.base.trim_start_matches("http://");
        let mut s = TcpStream::connect(addr).unwrap();
        write!(
            s,
            "PUT /dev/uploads/{name} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let _ = s.write_all(&vec![0u8; send]);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (status, text)
    };
    // Refused from the head alone, before any body is sent (as curl's `Expect:
    // 100-continue` lets it; a body sent anyway may make the closing server reset the
    // connection before the client reads the answer).
    let (status, text) = put("big.mp4", 3_000_000, 0);
    assert!(status == 413 && text.contains("allowed"), "{text}");
    let (status, text) = put("notes.txt", 10, 0);
    assert!(status == 400 && text.contains("not a video"), "{text}");
    // A body cut short: the server answers 400 if it still can (the connection may be gone
    // first); either way nothing reaches the bucket and the staging file goes.
    let (status, text) = put("cut.mp4", 1000, 400);
    assert!(
        (status == 400 && text.contains("broke off")) || text.is_empty(),
        "{text}"
    );
    assert!(!data.join("media/uploads/cut.mp4").exists());
    let staging = data.join(".hlspipe-uploads/page");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_dir(&staging).unwrap().next().is_some() {
        assert!(Instant::now() < deadline, "a staging file was left behind");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!data.join("media/uploads/big.mp4").exists());
}

/// The page as a person uses it, in headless Chromium, with nothing reachable but
/// 127.0.0.1: three files chosen in its file input upload with progress bars; the two
/// videos complete and the corrupt one shows why it failed and which file; the
/// two-language title switches audio and plays on; subtitles show cues; the sample's
/// ladder switches rung by hand; the player keys work; cookies of 8 s are renewed before
/// they expire and the edge serves the title after the first ones have; screenshots of the list, a title playing, the failure
/// and the phone-width layout are kept in target/test-artifacts/.
#[test]
fn the_dev_page_uploads_plays_and_switches_audio_subtitles_and_quality_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // Cookies of 8 s: the page must renew them to go on playing.
    let dev = start_with(&data, &["--segment-duration", "2", "--cookie-seconds", "8"]);
    let corrupt = tmp.path().join("corrupt.mp4");
    std::fs::write(&corrupt, b"\0\0\0\x18ftypisom this is not a video at all").unwrap();
    let shots = artifact("dev-page-list.png")
        .parent()
        .unwrap()
        .to_path_buf();
    let out = Command::new("node")
        .arg(repo_root().join("tests/player/devpage.mjs"))
        .arg(&dev.base)
        .arg(&shots)
        .arg(fixture("two_audio_langs.mp4"))
        .arg(fixture("h264_aac_subs.mp4"))
        .arg(&corrupt)
        .output()
        .expect("node: run scripts/install-test-deps.sh");
    let text = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value =
        serde_json::from_str(text.lines().last().unwrap_or("{}")).unwrap_or_default();
    assert_eq!(
        report["ok"],
        true,
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(report["offHost"], serde_json::json!([]));
    assert!(report["audio"].as_array().unwrap().len() >= 2, "{report}");
    assert!(report["levels"].as_array().unwrap().len() >= 2, "{report}");
    assert_eq!(report["afterExpiry"], 200, "{report}");
    for shot in ["list", "playing", "failed", "phone"] {
        let path = shots.join(format!("dev-page-{shot}.png"));
        assert!(std::fs::metadata(&path).unwrap().len() > 10_000, "{shot}");
    }
}

/// With `--token`, the page's routes want it as the playback API does: the list, the
/// limits, uploads and the buttons answer 401 without it and work with it; the page
/// itself and hls.js are served to anyone (the page asks for the token).
#[test]
fn the_dev_page_routes_want_the_token_when_there_is_one() {
    use support::edge::request_url;
    let tmp = tempfile::tempdir().unwrap();
    let dev = start_with(
        &tmp.path().join("data"),
        &["--ladder", "off", "--token", "dev-page-token-0123456789"],
    );
    let url = |path: &str| format!("{}{path}", dev.base);
    let bearer = [("Authorization", "Bearer dev-page-token-0123456789")];
    let wrong = [("Authorization", "Bearer guess")];
    for path in ["/dev/titles", "/dev/limits"] {
        assert_eq!(
            request_url("GET", &url(path), &[], None).status,
            401,
            "{path}"
        );
        assert_eq!(
            request_url("GET", &url(path), &wrong, None).status,
            401,
            "{path}"
        );
        assert_eq!(
            request_url("GET", &url(path), &bearer, None).status,
            200,
            "{path}"
        );
    }
    let clip = std::fs::read(fixture("tiny_faststart.mp4")).unwrap();
    let put = |headers: &[(&str, &str)]| {
        request_url("PUT", &url("/dev/uploads/tiny.mp4"), headers, Some(&clip)).status
    };
    assert_eq!(put(&[]), 401);
    assert_eq!(put(&bearer), 201);
    let act = |headers: &[(&str, &str)]| {
        request_url("POST", &url("/dev/titles/tiny/reprocess"), headers, None).status
    };
    assert_eq!(act(&[]), 401);
    assert_eq!(act(&bearer), 202);
    assert_eq!(request_url("GET", &url("/"), &[], None).status, 200);
    assert_eq!(
        request_url("GET", &url("/player/hls.min.js"), &[], None).status,
        200
    );
}

/// The hls.js in the binary is the release the player tests install (their package.json
/// pins it), byte for byte.
#[test]
fn vendored_hls_js_is_the_release_the_player_tests_pin() {
    let installed =
        std::fs::read(repo_root().join("tests/player/node_modules/hls.js/dist/hls.min.js"))
            .expect("tests/player/node_modules: run scripts/install-test-deps.sh");
    assert!(
        installed == hlspipe::dev::HLS_JS,
        "src/dev/vendor/hls.js/README.md says how to update"
    );
    let package: serde_json::Value = serde_json::from_slice(
        &std::fs::read(repo_root().join("tests/player/package.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        package["dependencies"]["hls.js"],
        hlspipe::dev::HLS_JS_VERSION
    );
}
