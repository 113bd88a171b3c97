//! The playback API function's handler time per invocation, as Lambda runs it (function-URL
//! event in, response out), for an RSA-2048 and an ECDSA P-256 key:
//! - cold: `ApiFunction::router` (which parses the PEM key) and the first request, for a title whose
//!   state is not cached yet: what the first invocation of a new execution environment pays
//!   after its secrets are read;
//! - warm, new title: a router already in use, a title not asked for before (its
//!   manifest.json is read and a policy signed);
//! - warm, cached: the same title again within the expiry bucket (no read, no signature).
//!
//! Run: `cargo bench -p hlspipe-lambda --bench api` (plain harness). Titles live in a bucket
//! folder made here, or in `BENCH_API_STORE` (`s3://BUCKET`, with AWS_ENDPOINT_URL etc.), which
//! must hold `hls/bench/t00000.hls/manifest.json` … `t00399` (benches/sign.sh uploads them).

use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest;
use hlspipe::store::location::Stores;
use hlspipe::store::{S3Settings, Store};
use hlspipe_lambda::api::{handle_url_request, ApiFunction, ApiFunctionConfig, Backend, Secrets};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const TOKEN: &str = "bench-token-0123456789abcdef";
const TITLES: usize = 400;
/// A live title (a version is published), as `manifest.json` says it.
pub const MANIFEST: &str =
    r#"{"state":"processing","version":"0123456789ab","sources":[],"started_at":1}"#;

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn event(title: &str) -> LambdaFunctionUrlRequest {
    let path = repo().join("fixtures/events/function-url-playback.json");
    let text = std::fs::read_to_string(path).expect("event fixture");
    let mut event: LambdaFunctionUrlRequest = serde_json::from_str(&text).expect("event JSON");
    event.raw_path = Some(format!("/v1/titles/{title}/playback"));
    let bearer = format!("Bearer {TOKEN}").parse().expect("header value");
    event.headers.insert("authorization", bearer);
    event
}

/// The store and the config pointing at it (a temporary bucket folder unless BENCH_API_STORE).
fn store() -> (Option<tempfile::TempDir>, ApiFunctionConfig, Arc<dyn Store>) {
    let (dir, url, bucket) = match std::env::var("BENCH_API_STORE") {
        Ok(url) => (None, url, String::new()),
        Err(_) => {
            let dir = tempfile::tempdir().expect("temp dir");
            for i in 0..TITLES {
                let folder = dir.path().join(format!("media/hls/bench/t{i:05}.hls"));
                std::fs::create_dir_all(&folder).expect("mkdir");
                std::fs::write(folder.join("manifest.json"), MANIFEST).expect("write");
            }
            let url = format!("file://{}", dir.path().display());
            (Some(dir), url, "media".to_owned())
        }
    };
    let vars = [
        ("HLSPIPE_CDN_BASE_URL", "https://cdn.example.com"),
        ("HLSPIPE_STORE", url.as_str()),
        ("HLSPIPE_BUCKET", bucket.as_str()),
        ("HLSPIPE_KEY_PAIR_ID", "K2LAMBDABENCH"),
        ("HLSPIPE_PRIVATE_KEY_SECRET", "secretsmanager:bench/key"),
        ("HLSPIPE_API_TOKEN_SECRET", "secretsmanager:bench/token"),
    ];
    let config =
        ApiFunctionConfig::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
            .expect("config");
    let store =
        Stores::open_url(&config.store, &config.bucket, S3Settings::from_env()).expect("store");
    (dir, config, store)
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn summary(name: &str, mut samples: Vec<f64>) {
    samples.sort_by(f64::total_cmp);
    let median = samples[samples.len() / 2];
    let mean = samples.iter().sum::<f64>() / samples.len() as f64;
    println!(
        "{name:<44} median {median:>9.1} µs  mean {mean:>9.1} µs  ({} calls)",
        samples.len()
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (_dir, config, store) = store();
    let mut next_title = 0usize;
    let mut title = || {
        let t = format!("bench/t{:05}", next_title % TITLES);
        next_title += 1;
        t
    };
    for key_file in ["rsa2048.pkcs1.pem", "ec-p256.sec1.pem"] {
        let pem =
            std::fs::read_to_string(repo().join("fixtures/keys").join(key_file)).expect("key");
        let secrets = Secrets {
            key_pair_id: "K2LAMBDABENCH".to_owned(),
            private_key_pem: pem,
            token: Some(TOKEN.to_owned()),
            jwt_key: None,
        };
        let function = ApiFunction::new(config.clone(), Backend::store_only(Arc::clone(&store)))
            .expect("function");
        let call = |router: &axum::Router, t: &str| {
            let start = Instant::now();
            let r = runtime.block_on(handle_url_request(router.clone(), event(t)));
            assert_eq!(r.status_code, 200, "{:?}", r.body);
            micros(start.elapsed())
        };
        let mut cold = Vec::new();
        for _ in 0..40 {
            let t = title();
            let start = Instant::now();
            let router = function.router(&secrets).expect("router");
            let built = start.elapsed();
            cold.push(micros(built) + call(&router, &t));
        }
        summary(&format!("{key_file}: cold (router + 1st call)"), cold);
        let router = function.router(&secrets).expect("router");
        let fresh: Vec<f64> = (0..200).map(|_| call(&router, &title())).collect();
        summary(&format!("{key_file}: warm, new title (read + sign)"), fresh);
        let t = title();
        call(&router, &t);
        let start = Instant::now();
        let mut hits = Vec::new();
        while start.elapsed() < Duration::from_secs(2) {
            hits.push(call(&router, &t));
        }
        summary(&format!("{key_file}: warm, cached title"), hits);
    }
}
