//! `hlspipe package s3://… s3://…/` against a real S3 server on 127.0.0.1, directly
//! and through a proxy that drops connections and answers `503 SlowDown`.

use crate::support::proxy::{Fault, Proxy};
use crate::support::s3::S3Server;
use crate::support::{clip, repo_root};
use hlspipe::media::object::{Body, Object};
use hlspipe::media::source::{FileSource, Source};
use hlspipe::store::{S3Store, Store};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};

/// The H.264/AAC fixture, or (in a tree without fixtures) the same kind of file
/// made with ffmpeg: 4 s, 25 fps, a keyframe every 2 s, AAC audio.
fn input_mp4() -> PathBuf {
    let fixture = repo_root().join("fixtures/media/h264_aac_faststart.mp4");
    if fixture.exists() {
        return fixture;
    }
    clip().to_path_buf()
}

fn upload(store: &S3Store, key: &str, path: &Path) {
    let src: Arc<dyn Source> = Arc::new(FileSource::open(path).unwrap());
    let mut body = Body::default();
    body.push_source(0, 0, src.len());
    let obj = Object {
        key: key.into(),
        content_type: "video/mp4",
        cache_control: "no-cache",
        body,
    };
    store.put(key, &obj, &[src]).unwrap();
}

fn hlspipe(endpoint: &str, args: &[&str], extra_env: &[(&str, &str)]) -> Output {
    let mut cmd = S3Server::hlspipe_for(endpoint);
    cmd.args(args);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd.output().expect("cannot run hlspipe")
}

/// URIs a playlist names (variant streams, EXT-X-MEDIA and EXT-X-MAP URIs, segments).
fn uris(playlist: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in playlist.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !line.starts_with('#') {
            out.push(line.to_string());
        } else if let Some(i) = line.find("URI=\"") {
            let rest = &line[i + 5..];
            if let Some(end) = rest.find('"') {
                out.push(rest[..end].to_string());
            }
        }
    }
    out
}

/// Follows the master through every media playlist and checks that each object
/// they name exists. Returns how many objects were checked.
fn assert_complete_title(store: &dyn Store, prefix: &str) -> usize {
    let master = store
        .get(&format!("{prefix}master.m3u8"))
        .unwrap()
        .expect("no master.m3u8");
    let master = String::from_utf8(master).unwrap();
    assert!(master.starts_with("#EXTM3U"), "{master}");
    let playlists = uris(&master);
    assert!(playlists.len() >= 2, "expected video and audio: {master}");
    let mut checked = 0;
    for p in playlists {
        let key = format!("{prefix}{p}");
        let text = String::from_utf8(store.get(&key).unwrap().expect(&key)).unwrap();
        assert!(text.contains("#EXT-X-ENDLIST"), "{key}");
        let dir = &key[..key.rfind('/').map_or(0, |i| i + 1)];
        for uri in uris(&text) {
            let k = format!("{dir}{uri}");
            let info = store
                .head(&k)
                .unwrap()
                .unwrap_or_else(|| panic!("{k} is missing"));
            assert!(info.size > 0, "{k}");
            checked += 1;
        }
    }
    checked
}

#[test]
fn package_s3_to_s3() {
    let server = S3Server::shared();
    let tmp = tempfile::tempdir().unwrap();
    let input = input_mp4();
    let store = server.bucket("t-package");
    upload(&store, "uploads/x.mp4", &input);
    let etag = store.head("uploads/x.mp4").unwrap().unwrap().etag;

    let out = hlspipe(
        &server.endpoint(),
        &[
            "package",
            "--json",
            "s3://t-package/uploads/x.mp4",
            "s3://t-package/hls/x/",
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "hlspipe failed: {stderr}");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["master"], "s3://t-package/hls/x/master.m3u8");

    let n = assert_complete_title(store.as_ref(), "hls/x/");
    // An init segment and a media segment for each of video and audio.
    assert!(n >= 4, "{n} objects");
    let manifest = store.get("hls/x/manifest.json").unwrap().unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    assert_eq!(manifest["state"], "complete");
    assert_eq!(
        manifest["sources"][0]["key"],
        "s3://t-package/uploads/x.mp4"
    );
    assert_eq!(manifest["sources"][0]["etag"], etag.as_str());
    let h = store.head_headers("hls/x/master.m3u8").unwrap().unwrap();
    assert_eq!(
        h.content_type.as_deref(),
        Some("application/vnd.apple.mpegurl")
    );
    assert_eq!(h.cache_control.as_deref(), Some("max-age=60"));

    // The same S3 input packaged to a local folder: same version (from the ETag),
    // same keys, same bytes.
    let local = tmp.path().join("local");
    let out = hlspipe(
        &server.endpoint(),
        &[
            "package",
            "s3://t-package/uploads/x.mp4",
            local.to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s3_keys = store.list("hls/x/v/").unwrap();
    for info in s3_keys.iter().filter(|i| i.key.ends_with(".m4s")).take(3) {
        let rel = info.key.strip_prefix("hls/x/").unwrap();
        let local_bytes = std::fs::read(local.join(rel)).unwrap();
        assert_eq!(store.get(&info.key).unwrap().unwrap(), local_bytes, "{rel}");
    }
}

#[test]
fn missing_input_is_a_clean_error() {
    let server = S3Server::shared();
    let _store = server.bucket("t-missing");
    let out = hlspipe(
        &server.endpoint(),
        &[
            "package",
            "s3://t-missing/uploads/none.mp4",
            "s3://t-missing/hls/none/",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no such object"), "{stderr}");
    let out = hlspipe(
        &server.endpoint(),
        &["package", "s3://Bad_Bucket/x.mp4", "out/"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bucket name"));
}

/// Dropped connections and SlowDown answers within the retry budget: the title is
/// complete and every object the master names exists.
#[test]
fn faults_within_the_retry_budget_still_publish_a_complete_title() {
    let server = S3Server::shared();
    let input = input_mp4();
    let store = server.bucket("t-faults-heal");
    upload(&store, "uploads/x.mp4", &input);

    // Each request fails at most twice, whatever the order the writers' requests
    // reach the proxy in, so 5 attempts always suffice.
    let attempts: Mutex<HashMap<(String, String), usize>> = Mutex::new(HashMap::new());
    let proxy = Proxy::start(server.addr, move |r| {
        let mut seen = attempts.lock().unwrap();
        let n = seen.entry((r.method.clone(), r.path.clone())).or_insert(0);
        *n += 1;
        match (r.index, r.method.as_str(), *n) {
            // The first connections (the HEAD of the input) die mid-request.
            (0..=2, _, _) => Fault::Drop,
            // Every upload is first told to slow down; some are then cut halfway.
            (_, "PUT" | "POST", 1) => Fault::SlowDown,
            (i, "PUT", 2) if i % 2 == 0 => Fault::Drop,
            // The first ranged GET of each object, too.
            (_, "GET", 1) => Fault::SlowDown,
            _ => Fault::Forward,
        }
    });
    let out = hlspipe(
        &proxy.endpoint(),
        &[
            "package",
            "s3://t-faults-heal/uploads/x.mp4",
            "s3://t-faults-heal/hls/x/",
        ],
        &[("AWS_MAX_ATTEMPTS", "5")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "hlspipe failed: {stderr}");
    let counts = &proxy.counts;
    let dropped = counts.dropped.load(std::sync::atomic::Ordering::SeqCst);
    let slowed = counts.slowed.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        dropped >= 3 && slowed >= 5,
        "dropped {dropped}, slowed {slowed}"
    );
    assert_complete_title(store.as_ref(), "hls/x/");
}

/// Faults that outlast the retries: a clean error, a failed manifest, and no
/// master.m3u8 pointing at objects that were never written.
#[test]
fn faults_past_the_retry_budget_fail_cleanly_without_a_master() {
    let server = S3Server::shared();
    let input = input_mp4();
    let store = server.bucket("t-faults-fail");
    upload(&store, "uploads/x.mp4", &input);

    let proxy = Proxy::start(server.addr, |r| {
        // The 4 s input makes one segment per rendition: the video one never lands.
        if r.method == "PUT" && r.path.contains("/video_") && r.path.contains("seg_00001") {
            Fault::SlowDown
        } else {
            Fault::Forward
        }
    });
    let out = hlspipe(
        &proxy.endpoint(),
        &[
            "package",
            "s3://t-faults-fail/uploads/x.mp4",
            "s3://t-faults-fail/hls/x/",
        ],
        &[("AWS_MAX_ATTEMPTS", "3")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("SlowDown"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(store.head("hls/x/master.m3u8").unwrap(), None);
    let manifest = store.get("hls/x/manifest.json").unwrap().unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    assert_eq!(manifest["state"], "failed");
    // Every attempt (3 per failing segment PUT) went through the proxy.
    let slowed = proxy
        .counts
        .slowed
        .load(std::sync::atomic::Ordering::SeqCst);
    assert!(slowed >= 3, "slowed {slowed}");
}
