//! `hlspipe serve --store s3://…` against a real S3 server on 127.0.0.1: title state comes
//! from each title's `manifest.json` in the bucket, answered as DESIGN.md "Object layout"
//! says and cached for a couple of seconds.

use crate::support::edge::{Server, TOKEN};
use crate::support::s3::{bucket_name, S3Server};
use hlspipe::media::object::{Body, Object};
use hlspipe::store::Store;
use std::time::{Duration, Instant};

const AUTH: (&str, &str) = ("Authorization", "Bearer test-token-0123456789abcdef");

fn put_manifest(store: &dyn Store, title: &str, manifest: serde_json::Value) {
    let key = format!("hls/{title}.hls/manifest.json");
    let obj = Object {
        key: key.clone(),
        content_type: "application/json",
        cache_control: "no-cache",
        body: Body::from_bytes(serde_json::to_vec(&manifest).unwrap()),
    };
    store.put(&key, &obj, &[]).unwrap();
}

fn manifest(state: &str, version: Option<&str>, error: Option<&str>) -> serde_json::Value {
    let mut m = serde_json::json!({"state": state, "sources": [], "started_at": 1_700_000_000});
    if let Some(v) = version {
        m["version"] = v.into();
    }
    if let Some(e) = error {
        m["error"] = e.into();
    }
    m
}

/// Asks for `title` until `want` answers (the state cache lasts 2 s), or panics after 10 s.
fn playback_until(server: &Server, title: &str, want: u16) -> crate::support::edge::HttpResponse {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = server.get(&format!("/v1/titles/{title}/playback"), &[AUTH]);
        if r.status == want || Instant::now() > deadline {
            assert_eq!(r.status, want, "{title}: {}", r.text());
            return r;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Regression (reliability issue, defect 3): a live title being re-processed, or whose
/// re-upload failed, was refused with 409 although its old master was still served. Now: 200
/// whenever a version is live, with the latest job's state beside it; 409 only when nothing
/// is playable; 404 for no title; and a title that completes while `serve` runs becomes
/// playable within seconds, without a restart.
#[test]
fn serve_answers_from_manifests_in_s3_regression_409_while_live_title_reprocessed() {
    let s3 = S3Server::shared();
    let bucket = bucket_name("serve-answers-from-manifests");
    let store = s3.bucket(&bucket);
    let env = S3Server::child_env(&s3.endpoint());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::start_on(&format!("s3://{bucket}"), &["--token", TOKEN], &env);

    let r = playback_until(&server, "shows/new", 404);
    assert_eq!(r.json()["error"], "unknown title");

    put_manifest(
        store.as_ref(),
        "shows/new",
        manifest("processing", None, None),
    );
    let r = playback_until(&server, "shows/new", 409);
    assert_eq!(r.json()["state"], "processing");
    assert!(r.all("set-cookie").is_empty());

    // The first job completes while serve runs.
    put_manifest(
        store.as_ref(),
        "shows/new",
        manifest("complete", Some("0123456789ab"), None),
    );
    let r = playback_until(&server, "shows/new", 200);
    assert_eq!(r.json()["state"], "complete");
    assert_eq!(r.all("set-cookie").len(), 3);

    // A re-upload is processed: the live version keeps playing.
    put_manifest(
        store.as_ref(),
        "shows/new",
        manifest("processing", Some("0123456789ab"), None),
    );
    let r = playback_until(&server, "shows/new", 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut body = r.json();
    while body["state"] != "processing" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        body = playback_until(&server, "shows/new", 200).json();
    }
    assert_eq!(body["state"], "processing", "{body}");

    // The re-upload fails: still 200, with the job's error beside the live version.
    put_manifest(
        store.as_ref(),
        "shows/new",
        manifest(
            "failed",
            Some("0123456789ab"),
            Some("moov: missing box 'stsz'"),
        ),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = playback_until(&server, "shows/new", 200);
        let body = r.json();
        if body["state"] == "failed" {
            assert_eq!(body["error"], "moov: missing box 'stsz'");
            assert_eq!(r.all("set-cookie").len(), 3);
            break;
        }
        assert!(Instant::now() < deadline, "{body}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // A first job that failed leaves nothing playable: 409 with the reason.
    put_manifest(
        store.as_ref(),
        "shows/broken",
        manifest("failed", None, Some("not an MP4")),
    );
    let r = playback_until(&server, "shows/broken", 409);
    assert_eq!(
        (r.json()["state"].as_str(), r.json()["error"].as_str()),
        (Some("failed"), Some("not an MP4"))
    );
}
