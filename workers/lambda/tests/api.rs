//! The playback API function, run as Lambda runs it: the function-URL event JSON of
//! `fixtures/events/function-url-playback.json`, title state in a bucket folder, the same
//! router `hlspipe serve` answers with.

use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use hlspipe::aws::secrets::SecretRef;
use hlspipe::delivery::sign::{PublicKey, PublicKeySet, Verifier};
use hlspipe::store::{DirStore, Store};
use hlspipe_lambda::api::{
    handle_url_request, read_secrets, ApiFunction, ApiFunctionConfig, AuthSpec, Backend,
    LiveRouter, SecretSource, Secrets,
};
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
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
    config_with(
        dir,
        &[(
            "HLSPIPE_API_TOKEN_SECRET",
            "secretsmanager:hlspipe/api-token",
        )],
    )
}

/// The function's environment as the template sets it, plus `auth`.
fn config_with(dir: &Path, auth: &[(&str, &str)]) -> ApiFunctionConfig {
    let store = format!("file://{}", dir.display());
    let vars = [
        ("HLSPIPE_CDN_BASE_URL", "https://cdn.example.com"),
        ("HLSPIPE_STORE", store.as_str()),
        ("HLSPIPE_BUCKET", "media"),
        ("HLSPIPE_KEY_PAIR_ID", "K2LAMBDAAPI"),
        ("HLSPIPE_ALLOW_ORIGIN", "https://www.example.com"),
        (
            "HLSPIPE_PRIVATE_KEY_SECRET",
            "secretsmanager:hlspipe/private-key",
        ),
    ];
    ApiFunctionConfig::from_vars(
        vars.iter()
            .chain(auth)
            .map(|(k, v)| (k.to_string(), v.to_string())),
    )
    .unwrap()
}

fn function(config: ApiFunctionConfig, store: Arc<dyn Store>) -> ApiFunction {
    ApiFunction::new(config, Backend::store_only(store)).unwrap()
}

/// The test double of Secrets Manager / SSM: a map from secret reference to value.
struct MapSecrets(HashMap<SecretRef, String>);

impl MapSecrets {
    fn new(pairs: &[(&str, &str)]) -> MapSecrets {
        MapSecrets(
            pairs
                .iter()
                .map(|(k, v)| (SecretRef::parse(k).unwrap(), v.to_string()))
                .collect(),
        )
    }
}

impl SecretSource for MapSecrets {
    fn read<'a>(
        &'a self,
        secret: &'a SecretRef,
    ) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>> {
        let found = self.0.get(secret).cloned();
        Box::pin(async move { found.ok_or_else(|| format!("{secret:?}: no such secret")) })
    }
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
        key_pair_id: "K2LAMBDAAPI".into(),
        private_key_pem: pem.into(),
        token: Some(format!("{TOKEN}\n")),
        jwt_key: None,
    }
}

fn answer(r: &LambdaFunctionUrlResponse) -> Value {
    serde_json::from_str(r.body.as_deref().unwrap_or("null")).unwrap()
}

#[tokio::test]
async fn a_function_url_request_gets_the_same_answer_as_serve() {
    let (dir, store) = bucket();
    let config = config(dir.path());
    let router = function(config, store)
        .router(&secrets(&key("rsa2048.pkcs1.pem")))
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
    let function = function(config, store);
    let build = |s: &Secrets| function.router(s);
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
    assert_eq!(public.auth, AuthSpec::None);
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

const SIGNING: &str = "secretsmanager:hlspipe/private-key";
const HS_SECRET: &str = "ssm:/hlspipe/jwt-hs256";
const HS_KEY: &str = "site-login-hmac-secret-0123456789abcdef";

fn hs256_token(claims: &Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(HS_KEY.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn with_bearer(credential: &str, path: &str) -> LambdaFunctionUrlRequest {
    let mut e = event();
    e.raw_path = Some(path.into());
    e.headers.insert(
        "authorization",
        format!("Bearer {credential}").parse().unwrap(),
    );
    e
}

/// `HLSPIPE_API_AUTH=jwt`: the site's own login token decides, its titles claim limits what
/// the viewer may watch, and the HMAC secret comes from SSM (read through the secret source).
#[tokio::test]
async fn the_sites_jwt_decides_who_watches_what() {
    let (dir, store) = bucket();
    let config = config_with(
        dir.path(),
        &[
            ("HLSPIPE_API_AUTH", "jwt"),
            ("HLSPIPE_JWT_HS256_SECRET", HS_SECRET),
            ("HLSPIPE_JWT_ISSUER", "https://login.example.com"),
            ("HLSPIPE_JWT_AUDIENCE", "video"),
            ("HLSPIPE_JWT_TITLES_CLAIM", "titles"),
        ],
    );
    let source = MapSecrets::new(&[
        (SIGNING, &key("rsa2048.pkcs1.pem")),
        (HS_SECRET, &format!("{HS_KEY}\n")),
    ]);
    let secrets = read_secrets(&source, &config).await.unwrap();
    assert_eq!(secrets.jwt_key.as_deref(), Some(&*format!("{HS_KEY}\n")));
    let router = function(config, store).router(&secrets).unwrap();
    let now = jsonwebtoken::get_current_timestamp();
    let claims = |titles: &[&str], aud: &str| {
        serde_json::json!({"iss": "https://login.example.com", "aud": aud,
                           "exp": now + 600, "sub": "viewer-1", "titles": titles})
    };
    let play = |token: String, title: &str| {
        handle_url_request(
            router.clone(),
            with_bearer(&token, &format!("/v1/titles/{title}/playback")),
        )
    };

    let r = play(
        hs256_token(&claims(&["shows/"], "video")),
        "shows/My%20Show",
    )
    .await;
    assert_eq!(r.status_code, 200, "{:?}", r.body);
    assert_eq!(r.cookies.len(), 3);
    assert_eq!(
        r.headers["access-control-allow-origin"],
        "https://www.example.com"
    );

    let r = play(
        hs256_token(&claims(&["movies/"], "video")),
        "shows/My%20Show",
    )
    .await;
    assert_eq!((r.status_code, r.cookies.len()), (403, 0), "{:?}", r.body);
    assert!(r.body.unwrap().contains("error"));

    let r = play(
        hs256_token(&claims(&["shows/"], "other")),
        "shows/My%20Show",
    )
    .await;
    assert_eq!((r.status_code, r.cookies.len()), (401, 0));
    assert!(r.headers["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));

    let r = play(TOKEN.to_owned(), "shows/My%20Show").await;
    assert_eq!(r.status_code, 401, "a bearer token is not a JWT");
}

/// A browser on the site's origin asks before it sends `Authorization`: the preflight is
/// answered 204 without credentials, and never reaches the authoriser.
#[tokio::test]
async fn a_preflight_from_the_site_is_answered_without_credentials() {
    let (dir, store) = bucket();
    let router = function(config(dir.path()), store)
        .router(&secrets(&key("rsa2048.pkcs1.pem")))
        .unwrap();
    let mut preflight = event();
    preflight.request_context.http.method = Some("OPTIONS".into());
    preflight.headers.remove("authorization");
    preflight
        .headers
        .insert("access-control-request-method", "GET".parse().unwrap());
    preflight.headers.insert(
        "access-control-request-headers",
        "authorization".parse().unwrap(),
    );
    let r = handle_url_request(router.clone(), preflight.clone()).await;
    assert_eq!(r.status_code, 204, "{:?}", r.body);
    assert_eq!(
        r.headers["access-control-allow-origin"],
        "https://www.example.com"
    );
    assert_eq!(r.headers["access-control-allow-credentials"], "true");
    assert!(r.cookies.is_empty());

    preflight
        .headers
        .insert("origin", "https://evil.example.net".parse().unwrap());
    let r = handle_url_request(router, preflight).await;
    assert_eq!(r.status_code, 403);
    assert!(r.headers.get("access-control-allow-origin").is_none());
}

/// A rotation is one write of a JSON secret (the new key and its id together): the next
/// refresh signs with the new id. A bare PEM needs HLSPIPE_KEY_PAIR_ID.
#[tokio::test]
async fn a_json_signing_secret_names_its_key_pair_id() {
    let (dir, store) = bucket();
    let config = config(dir.path());
    let token = ("secretsmanager:hlspipe/api-token", TOKEN);
    let rotated = serde_json::json!({
        "key_pair_id": "K2NEWKEY",
        "private_key": key("rsa2048-second.pkcs1.pem"),
    })
    .to_string();
    let source = MapSecrets::new(&[(SIGNING, &rotated), token]);
    let secrets = read_secrets(&source, &config).await.unwrap();
    assert_eq!(secrets.key_pair_id, "K2NEWKEY");
    let router = function(config.clone(), store).router(&secrets).unwrap();
    let r = handle_url_request(router, event()).await;
    assert_eq!(r.status_code, 200);
    assert!(r
        .cookies
        .iter()
        .any(|c| c.starts_with("CloudFront-Key-Pair-Id=K2NEWKEY;")));

    let mut no_id = config;
    no_id.key_pair_id = None;
    let pem = key("rsa2048.pkcs1.pem");
    let source = MapSecrets::new(&[(SIGNING, &pem), token]);
    let err = read_secrets(&source, &no_id).await.err().unwrap();
    assert!(err.contains("HLSPIPE_KEY_PAIR_ID"), "{err}");
    let source = MapSecrets::new(&[(SIGNING, "{\"key_pair_id\": 7}"), token]);
    let err = read_secrets(&source, &no_id).await.err().unwrap();
    assert!(err.contains("key_pair_id"), "{err}");
    let source = MapSecrets::new(&[(SIGNING, &rotated)]);
    let err = read_secrets(&source, &no_id).await.err().unwrap();
    assert!(
        err.contains("api-token") && err.contains("no such secret"),
        "{err}"
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
    let router = ApiFunction::new(config, backend)
        .unwrap()
        .router(&secrets(&key("rsa2048.pkcs1.pem")))
        .unwrap();
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
fn jwt_configuration_needs_exactly_one_key_source() {
    let base = [
        ("HLSPIPE_CDN_BASE_URL", "https://cdn.example.com"),
        ("HLSPIPE_STORE", "s3://media"),
        ("HLSPIPE_PRIVATE_KEY_SECRET", "secretsmanager:k"),
        ("HLSPIPE_API_AUTH", "jwt"),
    ];
    let parse = |extra: &[(&str, &str)]| {
        ApiFunctionConfig::from_vars(
            base.iter()
                .chain(extra)
                .map(|(k, v)| (k.to_string(), v.to_string())),
        )
    };
    assert!(parse(&[]).unwrap_err().contains("HLSPIPE_JWT_JWKS_URL"));
    let both = parse(&[
        (
            "HLSPIPE_JWT_JWKS_URL",
            "https://login.example.com/jwks.json",
        ),
        ("HLSPIPE_JWT_HS256_SECRET", "ssm:/s"),
    ]);
    assert!(both.is_err());
    let with_token = parse(&[
        (
            "HLSPIPE_JWT_JWKS_URL",
            "https://login.example.com/jwks.json",
        ),
        ("HLSPIPE_API_TOKEN_SECRET", "ssm:/t"),
    ]);
    assert!(with_token.is_err());
    let jwks = parse(&[
        (
            "HLSPIPE_JWT_JWKS_URL",
            "https://login.example.com/jwks.json",
        ),
        ("HLSPIPE_JWT_LEEWAY", "30"),
    ])
    .unwrap();
    assert!(matches!(jwks.auth, AuthSpec::Jwt { leeway: 30, .. }));
    assert!(ApiFunction::new(
        parse(&[("HLSPIPE_JWT_JWKS_URL", "ftp://login.example.com/jwks.json")]).unwrap(),
        Backend::store_only(Arc::new(DirStore::new(std::env::temp_dir()))),
    )
    .is_err());
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
