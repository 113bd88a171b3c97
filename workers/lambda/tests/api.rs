//! The playback API function, run as Lambda runs it: the function-URL event JSON of
//! `fixtures/events/function-url-playback.json`, title state in a bucket folder, the same
//! router `hlspipe serve` answers with.

use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use hlspipe::delivery::sign::{PublicKey, PublicKeySet, Verifier};
use hlspipe::store::{DirStore, Store};
use hlspipe_lambda::api::{
    build_router, handle_url_request, ApiFunctionConfig, Backend, LiveRouter, Secrets,
};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;

const TOKEN: &str = "test-token-0123456789abcdef";

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn key(name: &str) -> String {
    std::fs::read_to_string(repo().join("fixtures/keys").join(name)).unwrap()
}

fn event() -> LambdaFunctionUrlRequest {
    let text =
        std::fs::read_to_string(repo().join("fixtures/events/function-url-playback.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn config(dir: &Path) -> ApiFunctionConfig {
    let vars = [
        ("HLSPIPE_CDN_BASE_URL", "https://cdn.example.com"),
        ("HLSPIPE_STORE", &format!("file://{}", dir.display())),
        ("HLSPIPE_BUCKET", "media"),
        ("HLSPIPE_KEY_PAIR_ID", "K2LAMBDAAPI"),
        (
            "HLSPIPE_PRIVATE_KEY_SECRET",
            "secretsmanager:hlspipe/private-key",
        ),
        (
            "HLSPIPE_API_TOKEN_SECRET",
            "secretsmanager:hlspipe/api-token",
        ),
    ];
    ApiFunctionConfig::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string()))).unwrap()
}

/// A bucket folder with `shows/My Show` live (re-processing), `shows/new` still processing.
fn bucket() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("media/hls/shows");
    for (title, manifest) in [
        (
            "My Show",
            r#"{"state":"processing","version":"0123456789ab","sources":[],"started_at":1}"#,
        ),
        (
            "new",
            r#"{"state":"processing","sources":[],"started_at":1}"#,
        ),
    ] {
        let folder = root.join(format!("{title}.hls"));
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("manifest.json"), manifest).unwrap();
    }
    let store: Arc<dyn Store> = Arc::new(DirStore::new(dir.path().join("media")));
    (dir, store)
}

fn secrets(pem: &str) -> Secrets {
    Secrets {
        private_key_pem: pem.into(),
        token: Some(format!("{TOKEN}\n")),
    }
}

fn answer(r: &LambdaFunctionUrlResponse) -> Value {
    serde_json::from_str(r.body.as_deref().unwrap_or("null")).unwrap()
}

#[tokio::test]
async fn a_function_url_request_gets_the_same_answer_as_serve() {
    let (dir, store) = bucket();
    let config = config(dir.path());
    let router = build_router(
        &config,
        &Backend::store_only(store),
        &secrets(&key("rsa2048.pkcs1.pem")),
    )
    .unwrap();

    let r = handle_url_request(router.clone(), event()).await;
    assert_eq!(r.status_code, 200, "{:?}", r.body);
    let body = answer(&r);
    assert_eq!(
        body["master_url"],
        "https://cdn.example.com/hls/shows/My%20Show.hls/master.m3u8"
    );
    assert_eq!(
        body["state"], "processing",
        "the live version plays while a re-upload is processed"
    );
    assert_eq!(r.headers["cache-control"], "no-store");
    assert!(
        r.headers.get("set-cookie").is_none(),
        "cookies go in `cookies`"
    );
    let names: Vec<&str> = r
        .cookies
        .iter()
        .map(|c| c.split('=').next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "CloudFront-Policy",
            "CloudFront-Signature",
            "CloudFront-Key-Pair-Id"
        ]
    );

    let mut anonymous = event();
    anonymous.headers.remove("authorization");
    let r = handle_url_request(router.clone(), anonymous).await;
    assert_eq!(r.status_code, 401);
    assert!(r.headers["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    assert!(r.cookies.is_empty());

    let mut unknown = event();
    unknown.raw_path = Some("/v1/titles/shows/nothing/playback".into());
    assert_eq!(
        handle_url_request(router.clone(), unknown)
            .await
            .status_code,
        404
    );

    let mut waiting = event();
    waiting.raw_path = Some("/v1/titles/shows/new/playback".into());
    let r = handle_url_request(router, waiting).await;
    assert_eq!(
        (r.status_code, answer(&r)["state"].as_str()),
        (409, Some("processing"))
    );
}

/// A rotated key (a new secret value) is used by the next request without a deploy; a bad
/// one is refused and the last good key stays in use.
#[tokio::test]
async fn a_rotated_private_key_takes_effect_and_a_bad_one_is_refused() {
    let (dir, store) = bucket();
    let config = config(dir.path());
    let first = secrets(&key("rsa2048.pkcs1.pem"));
    let build = |s: &Secrets| build_router(&config, &Backend::store_only(Arc::clone(&store)), s);
    let live = LiveRouter::new(first.clone(), build(&first).unwrap());
    assert!(
        !live.update(first.clone(), build).unwrap(),
        "the same secrets rebuild nothing"
    );
    assert!(live
        .update(secrets("-----BEGIN NONSENSE-----"), build)
        .is_err());

    let second = secrets(&key("rsa2048-second.pkcs1.pem"));
    assert!(live.update(second, build).unwrap());
    let r = handle_url_request(live.router(), event()).await;
    assert_eq!(r.status_code, 200);
    // The cookies verify with the second key's public half, not the first's.
    let cookie: Vec<&str> = r
        .cookies
        .iter()
        .map(|c| c.split(';').next().unwrap())
        .collect();
    let verify_with = |pem: &str| {
        let mut keys = PublicKeySet::new();
        keys.insert("K2LAMBDAAPI", PublicKey::from_pem(pem).unwrap())
            .unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        Verifier::new(keys)
            .verify_request(
                "https://cdn.example.com/hls/shows/My%20Show.hls/master.m3u8",
                Some(&cookie.join("; ")),
                "203.0.113.7".parse().unwrap(),
                now,
            )
            .is_allow()
    };
    assert!(verify_with(&key("rsa2048-second.pub.pem")));
    assert!(!verify_with(&key("rsa2048.pub.pem")));
}

#[test]
fn configuration_names_what_is_missing_and_refuses_an_unsaid_public_api() {
    let base = [
        ("HLSPIPE_CDN_BASE_URL", "https://cdn.example.com"),
        ("HLSPIPE_STORE", "s3://media"),
        ("HLSPIPE_KEY_PAIR_ID", "K2"),
        ("HLSPIPE_PRIVATE_KEY_SECRET", "secretsmanager:k"),
    ];
    let parse = |extra: &[(&str, &str)]| {
        ApiFunctionConfig::from_vars(
            base.iter()
                .chain(extra)
                .map(|(k, v)| (k.to_string(), v.to_string())),
        )
    };
    let err = parse(&[]).unwrap_err();
    assert!(
        err.contains("HLSPIPE_API_TOKEN_SECRET") && err.contains("none"),
        "{err}"
    );
    let public = parse(&[("HLSPIPE_API_AUTH", "none")]).unwrap();
    assert!(public.token_secret.is_none());
    assert_eq!((public.cookie_ttl, public.refresh_seconds), (3600, 300));
    assert!(parse(&[
        ("HLSPIPE_API_TOKEN_SECRET", "ssm:/t"),
        ("HLSPIPE_COOKIE_TTL", "soon")
    ])
    .is_err());
    let missing = ApiFunctionConfig::from_vars(Vec::new()).unwrap_err();
    assert!(
        missing.contains("is not set") || missing.contains("HLSPIPE_API"),
        "{missing}"
    );
}

fn upload_config(
    dir: &Path,
    uploads: &str,
    auth: Option<&str>,
) -> Result<ApiFunctionConfig, String> {
    let store = format!("file://{}", dir.display());
    let mut vars = vec![
        ("HLSPIPE_CDN_BASE_URL", "https://cdn.example.com"),
        ("HLSPIPE_STORE", store.as_str()),
        ("HLSPIPE_BUCKET", "media"),
        ("HLSPIPE_KEY_PAIR_ID", "K2LAMBDAAPI"),
        (
            "HLSPIPE_PRIVATE_KEY_SECRET",
            "secretsmanager:hlspipe/private-key",
        ),
        ("HLSPIPE_UPLOADS", uploads),
    ];
    match auth {
        Some(a) => vars.push(("HLSPIPE_API_AUTH", a)),
        None => vars.push((
            "HLSPIPE_API_TOKEN_SECRET",
            "secretsmanager:hlspipe/api-token",
        )),
    }
    ApiFunctionConfig::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
}

/// The request an absolute URL of an answer names, as a function-URL event.
fn event_for(method: &str, url: &str, body: &[u8]) -> LambdaFunctionUrlRequest {
    use base64::Engine;
    let rest = url.strip_prefix("https://cdn.example.com").unwrap();
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut e: LambdaFunctionUrlRequest = serde_json::from_str(
        &std::fs::read_to_string(repo().join("fixtures/events/function-url-upload.json")).unwrap(),
    )
    .unwrap();
    e.raw_path = Some(path.into());
    e.raw_query_string = Some(query.into());
    e.request_context.http.method = Some(method.into());
    e.headers.remove("content-length");
    e.body = Some(base64::engine::general_purpose::STANDARD.encode(body));
    e.is_base64_encoded = true;
    e
}

/// `POST /v1/uploads` through the function: 401 without the token, 201 with it; the part is
/// PUT and the upload completed through the same handler (a folder store here; over S3 the
/// part URLs are presigned, `tests/aws/uploads_s3.rs`).
#[tokio::test]
async fn the_api_function_offers_uploads_behind_its_token() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("media")).unwrap();
    let config = upload_config(dir.path(), "on", None).unwrap();
    let backend = Backend::open(&config).unwrap();
    let router = build_router(&config, &backend, &secrets(&key("rsa2048.pkcs1.pem"))).unwrap();
    let fixture: LambdaFunctionUrlRequest = serde_json::from_str(
        &std::fs::read_to_string(repo().join("fixtures/events/function-url-upload.json")).unwrap(),
    )
    .unwrap();

    let mut anonymous = fixture.clone();
    anonymous.headers.remove("authorization");
    assert_eq!(
        handle_url_request(router.clone(), anonymous)
            .await
            .status_code,
        401
    );

    let r = handle_url_request(router.clone(), fixture).await;
    assert_eq!(r.status_code, 201, "{:?}", r.body);
    let body = answer(&r);
    assert_eq!(body["key"], "uploads/My Trip.mov");
    let part = body["parts"][0]["url"].as_str().unwrap();
    assert!(
        part.starts_with("https://cdn.example.com/v1/uploads/"),
        "{part}"
    );

    let data: Vec<u8> = (0..1000u32).map(|i| (i % 256) as u8).collect();
    let r = handle_url_request(router.clone(), event_for("PUT", part, &data)).await;
    assert_eq!(r.status_code, 200, "{:?}", r.body);
    let etag = r.headers["etag"].to_str().unwrap().to_owned();
    let done = serde_json::json!({"parts": [{"part_number": 1, "etag": etag}]}).to_string();
    let complete = body["complete"]["url"].as_str().unwrap();
    let r = handle_url_request(router, event_for("POST", complete, done.as_bytes())).await;
    assert_eq!(r.status_code, 200, "{:?}", r.body);
    assert_eq!(
        std::fs::read(dir.path().join("media/uploads/My Trip.mov")).unwrap(),
        data
    );
}

#[test]
fn uploads_are_never_open_to_anyone() {
    let dir = tempfile::tempdir().unwrap();
    let refused = upload_config(dir.path(), "on", Some("none")).unwrap_err();
    assert!(refused.contains("anyone could write"), "{refused}");
    assert!(upload_config(dir.path(), "yes", None).is_err());
    assert!(upload_config(dir.path(), "off", Some("none"))
        .unwrap()
        .uploads
        .is_none());
}
