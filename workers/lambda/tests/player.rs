//! Both functions end to end, as a deployment wires them: an S3 event through the packager
//! handler publishes a title into the bucket; the playback API function, invoked with a
//! function-URL event, hands out cookies for it; the edge (the local CloudFront stand-in) in
//! front of the same bucket admits them; hls.js in headless Chromium plays the title.

use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest;
use hlspipe::delivery::edge::{self, Access, EdgeConfig};
use hlspipe::delivery::sign::{PublicKey, PublicKeySet, Verifier};
use hlspipe::pipeline::config::PipelineConfig;
use hlspipe::pipeline::invalidate::NoInvalidation;
use hlspipe::store::location::Stores;
use hlspipe::store::{DirStore, Store};
use hlspipe_lambda::api::{handle_url_request, ApiFunction, ApiFunctionConfig, Backend, Secrets};
use hlspipe_lambda::{handle, Handler};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

const BUCKET: &str = "hlspipe-media";
const KEY_PAIR_ID: &str = "K2LAMBDAE2E";
const TOKEN: &str = "test-token-0123456789abcdef";

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap()
}

/// The packager function's answer to the S3 event of `fixtures/events/s3-put.json` for an
/// upload of the H.264/AAC fixture.
async fn publish(buckets: &Path) {
    let upload = buckets.join(BUCKET).join("uploads/shows/Happy Faceé.mp4");
    std::fs::create_dir_all(upload.parent().unwrap()).unwrap();
    std::fs::copy(
        repo().join("fixtures/media/h264_aac_faststart.mp4"),
        &upload,
    )
    .unwrap();
    let etag = DirStore::new(buckets.join(BUCKET))
        .head("uploads/shows/Happy Faceé.mp4")
        .unwrap()
        .unwrap()
        .etag;
    let json =
        read("fixtures/events/s3-put.json").replace("9b2cf535f27731c974343645a3985328", &etag);
    let handler = Arc::new(Handler {
        config: PipelineConfig::default(),
        stores: Stores::dir(buckets),
        invalidator: Arc::new(NoInvalidation),
        notifier: Arc::new(hlspipe::pipeline::notify::NoNotification),
        clock: || 1_000,
        redelivery: None,
        fleet: None,
    });
    let event = LambdaEvent::new(serde_json::from_str(&json).unwrap(), Context::default());
    let answer = handle(handler, event).await.unwrap();
    assert_eq!(answer["records"][0]["outcome"], "processed", "{answer}");
}

/// The edge over the bucket on 127.0.0.1, trusting the key the API signs with; its base URL.
async fn start_edge(store: Arc<dyn Store>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut keys = PublicKeySet::new();
    keys.insert(
        KEY_PAIR_ID,
        PublicKey::from_pem(&read("fixtures/keys/rsa2048.pub.pem")).unwrap(),
    )
    .unwrap();
    let config = EdgeConfig::new(&base)
        .unwrap()
        .map_prefix("/hls/", "hls/")
        .unwrap();
    let router = edge::router(config, store, Access::Signed(Arc::new(Verifier::new(keys))));
    tokio::spawn(hlspipe::delivery::http::serve(
        listener,
        router,
        std::future::pending(),
    ));
    base
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_functions_cookies_play_the_packaged_title_through_the_edge() {
    let buckets = tempfile::tempdir().unwrap();
    publish(buckets.path()).await;
    let store: Arc<dyn Store> = Arc::new(DirStore::new(buckets.path().join(BUCKET)));
    let cdn = start_edge(Arc::clone(&store)).await;

    let vars = [
        ("HLSPIPE_CDN_BASE_URL", cdn.as_str()),
        ("HLSPIPE_STORE", "s3://unused"),
        (
            "HLSPIPE_PRIVATE_KEY_SECRET",
            "secretsmanager:hlspipe/signing",
        ),
        ("HLSPIPE_API_TOKEN_SECRET", "secretsmanager:hlspipe/token"),
    ];
    let config =
        ApiFunctionConfig::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
            .unwrap();
    let secrets = Secrets {
        key_pair_id: KEY_PAIR_ID.into(),
        private_key_pem: read("fixtures/keys/rsa2048.pkcs1.pem"),
        token: Some(TOKEN.into()),
        jwt_key: None,
    };
    let router = ApiFunction::new(config, Backend::store_only(store))
        .unwrap()
        .router(&secrets)
        .unwrap();
    let mut request: LambdaFunctionUrlRequest =
        serde_json::from_str(&read("fixtures/events/function-url-playback.json")).unwrap();
    request.raw_path = Some("/v1/titles/shows/Happy%20Face%C3%A9/playback".into());
    let answer = handle_url_request(router, request).await;
    assert_eq!(answer.status_code, 200, "{:?}", answer.body);
    let body: Value = serde_json::from_str(answer.body.as_deref().unwrap()).unwrap();
    let master = body["master_url"].as_str().unwrap().to_owned();
    assert!(master.starts_with(&cdn), "{master}");

    let mut player = Command::new("node");
    player
        .arg(repo().join("tests/player/play.mjs"))
        .arg(&master)
        .args(["--seconds", "3"]);
    for cookie in &answer.cookies {
        player
            .arg("--cookie")
            .arg(cookie.split(';').next().unwrap());
    }
    let out = tokio::task::spawn_blocking(move || player.output())
        .await
        .unwrap()
        .expect("node runs tests/player/play.mjs (bash scripts/install-test-deps.sh installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value =
        serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap_or_else(|e| {
            panic!(
                "play.mjs report {stdout:?}: {e}; {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    assert_eq!(report["ok"], true, "{report}");
    assert!(report["currentTime"].as_f64().unwrap() > 3.0, "{report}");
    assert_eq!(report["httpErrors"], serde_json::json!([]), "{report}");

    // The same playback without the cookies is refused by the edge.
    let out = Command::new("node")
        .arg(repo().join("tests/player/play.mjs"))
        .arg(&master)
        .args(["--timeout", "15"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"status\":403"));
}
