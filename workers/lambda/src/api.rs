//! The playback API as a Lambda function behind a function URL: each invocation is one HTTP
//! request (payload format 2.0, "Invoking Lambda function URLs", Lambda Developer Guide),
//! answered by the very router `hlspipe serve` runs ([`hlspipe::delivery::api::router`]), so
//! the JSON, the status codes and the headers are the same byte for byte.
//!
//! The function is reached as `/v1/*` on the distribution's own host (a cache-disabled
//! behaviour whose origin is the function URL), so its `Set-Cookie` is for the host that
//! serves the media. Function URLs carry response cookies in `cookies`, not in `headers`.

use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use axum::body::Body;
use axum::http::{header, HeaderValue, Method, Request};
use axum::Router;
use base64::Engine;
use hlspipe::delivery::uploads::{self, UploadRules, UploadTarget, Uploads};
use hlspipe::pipeline::config::PipelineConfig;
use hlspipe::store::location::Stores;
use hlspipe::store::{S3Settings, Store};
use std::sync::Arc;
use tower::ServiceExt;

/// The largest response body passed back (a playback answer is a few hundred bytes, an
/// upload's at most 500 presigned URLs; the function URL limit is 6 MB).
const MAX_BODY: usize = 4 << 20;

/// Answers one function-URL request with `router`. A request the router cannot be given (no
/// method, a path that is not a URI) gets a JSON 400, as `serve` would.
pub async fn handle_url_request(
    router: Router,
    event: LambdaFunctionUrlRequest,
) -> LambdaFunctionUrlResponse {
    let request = match to_http(&event) {
        Ok(r) => r,
        Err(reason) => return json_answer(400, &reason),
    };
    let response = match router.oneshot(request).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let (parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) => return json_answer(500, &format!("reading the answer: {e}")),
    };
    let mut out = LambdaFunctionUrlResponse::default();
    out.status_code = i64::from(parts.status.as_u16());
    for (name, value) in &parts.headers {
        if name == header::SET_COOKIE {
            out.cookies.extend(value.to_str().ok().map(str::to_owned));
        } else {
            out.headers.append(name.clone(), value.clone());
        }
    }
    match String::from_utf8(bytes.to_vec()) {
        Ok(text) => out.body = Some(text),
        Err(_) => {
            out.body = Some(base64::engine::general_purpose::STANDARD.encode(&bytes));
            out.is_base64_encoded = true;
        }
    }
    out
}

/// The HTTP request a function-URL event describes: method, raw path and query, headers,
/// the `cookies` array folded back into one `Cookie` header, the body.
fn to_http(event: &LambdaFunctionUrlRequest) -> Result<Request<Body>, String> {
    let method = event
        .request_context
        .http
        .method
        .as_deref()
        .ok_or("the event has no requestContext.http.method")?;
    let method = Method::from_bytes(method.as_bytes()).map_err(|e| format!("method: {e}"))?;
    let path = event.raw_path.as_deref().unwrap_or("/");
    let uri = match event.raw_query_string.as_deref().filter(|q| !q.is_empty()) {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    };
    let body = match &event.body {
        Some(b) if event.is_base64_encoded => base64::engine::general_purpose::STANDARD
            .decode(b)
            .map_err(|e| format!("body: {e}"))?,
        Some(b) => b.clone().into_bytes(),
        None => Vec::new(),
    };
    let mut request = Request::builder()
        .method(method)
        .uri(&uri)
        .body(Body::from(body))
        .map_err(|e| format!("{uri}: {e}"))?;
    *request.headers_mut() = event.headers.clone();
    if let Some(cookies) = event.cookies.as_ref().filter(|c| !c.is_empty()) {
        let joined =
            HeaderValue::from_str(&cookies.join("; ")).map_err(|e| format!("cookies: {e}"))?;
        request.headers_mut().insert(header::COOKIE, joined);
    }
    Ok(request)
}

fn json_answer(status: u16, message: &str) -> LambdaFunctionUrlResponse {
    let mut out = LambdaFunctionUrlResponse::default();
    out.status_code = i64::from(status);
    out.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    out.body = Some(serde_json::json!({ "error": message }).to_string());
    out
}

/// What the API function is configured with (environment variables, set by the template):
/// never a secret itself, only where the secrets are.
#[derive(Debug, Clone)]
pub struct ApiFunctionConfig {
    /// `HLSPIPE_CDN_BASE_URL`: the distribution's host, `https://cdn.example.com`.
    pub cdn_base_url: String,
    /// `HLSPIPE_OUTPUT_PREFIX`, default `hls/`.
    pub output_prefix: String,
    /// `HLSPIPE_STORE`: `s3://BUCKET` (or `file:///DIR` with `HLSPIPE_BUCKET` in tests).
    pub store: String,
    pub bucket: String,
    /// `HLSPIPE_KEY_PAIR_ID`: the CloudFront public key id the private key belongs to.
    pub key_pair_id: String,
    /// `HLSPIPE_PRIVATE_KEY_SECRET`: `secretsmanager:NAME`, `ssm:PARAMETER` or an ARN.
    pub private_key_secret: String,
    /// `HLSPIPE_API_TOKEN_SECRET`: where the bearer token is; `None` only with
    /// `HLSPIPE_API_AUTH=none` (a public catalogue), said explicitly.
    pub token_secret: Option<String>,
    /// `HLSPIPE_COOKIE_TTL` seconds, default 3600.
    pub cookie_ttl: u64,
    /// `HLSPIPE_SECRET_REFRESH_SECONDS`, default 300: how often the secrets are read again,
    /// so that a rotated key is used without a deploy.
    pub refresh_seconds: u64,
    /// `HLSPIPE_UPLOADS=on`: `POST /v1/uploads` is offered (never with `HLSPIPE_API_AUTH=none`).
    pub uploads: Option<UploadSettings>,
}

/// What bounds uploads from the site (`HLSPIPE_INPUT_PREFIX`, `HLSPIPE_UPLOAD_MAX_BYTES`,
/// `HLSPIPE_UPLOAD_URL_TTL`).
#[derive(Debug, Clone)]
pub struct UploadSettings {
    pub input_prefix: String,
    pub max_bytes: u64,
    pub url_ttl: u64,
}

impl ApiFunctionConfig {
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self, String> {
        let vars: std::collections::HashMap<String, String> = vars.into_iter().collect();
        let get = |k: &str| vars.get(k).filter(|v| !v.is_empty()).cloned();
        let need = |k: &str| get(k).ok_or_else(|| format!("{k} is not set"));
        let number = |k: &str, default: u64| match get(k) {
            Some(v) => v.parse().map_err(|_| format!("{k}={v:?} is not a number")),
            None => Ok(default),
        };
        let token_secret = get("HLSPIPE_API_TOKEN_SECRET");
        match (get("HLSPIPE_API_AUTH").as_deref(), &token_secret) {
            (Some("none"), None) | (None | Some("bearer"), Some(_)) => {}
            (Some("none"), Some(_)) => return Err("HLSPIPE_API_AUTH=none with HLSPIPE_API_TOKEN_SECRET set: choose one".into()),
            (other, _) => {
                return Err(format!(
                    "HLSPIPE_API_AUTH={other:?}: set HLSPIPE_API_TOKEN_SECRET (bearer), or HLSPIPE_API_AUTH=none for a public catalogue"
                ))
            }
        }
        let uploads = match get("HLSPIPE_UPLOADS").as_deref() {
            None | Some("off") => None,
            Some("on") if token_secret.is_none() => return Err(
                "HLSPIPE_UPLOADS=on with HLSPIPE_API_AUTH=none: anyone could write to the bucket"
                    .into(),
            ),
            Some("on") => Some(UploadSettings {
                input_prefix: get("HLSPIPE_INPUT_PREFIX").unwrap_or_else(|| "uploads/".into()),
                max_bytes: number("HLSPIPE_UPLOAD_MAX_BYTES", uploads::DEFAULT_MAX_SIZE)?,
                url_ttl: number("HLSPIPE_UPLOAD_URL_TTL", uploads::DEFAULT_URL_TTL)?,
            }),
            Some(other) => return Err(format!("HLSPIPE_UPLOADS={other:?}: on or off")),
        };
        Ok(ApiFunctionConfig {
            cdn_base_url: need("HLSPIPE_CDN_BASE_URL")?,
            output_prefix: get("HLSPIPE_OUTPUT_PREFIX").unwrap_or_else(|| "hls/".into()),
            store: need("HLSPIPE_STORE")?,
            bucket: get("HLSPIPE_BUCKET").unwrap_or_default(),
            key_pair_id: need("HLSPIPE_KEY_PAIR_ID")?,
            private_key_secret: need("HLSPIPE_PRIVATE_KEY_SECRET")?,
            token_secret,
            cookie_ttl: number("HLSPIPE_COOKIE_TTL", 3600)?,
            refresh_seconds: number("HLSPIPE_SECRET_REFRESH_SECONDS", 300)?.max(1),
            uploads,
        })
    }
}

/// The secrets the router is built from, as last read.
#[derive(Clone, PartialEq, Eq)]
pub struct Secrets {
    pub private_key_pem: String,
    pub token: Option<String>,
}

/// What the API reads and writes: the store of title state and, with uploads on, where
/// uploads go.
#[derive(Clone)]
pub struct Backend {
    pub store: Arc<dyn Store>,
    pub uploads: Option<Arc<dyn UploadTarget>>,
}

impl Backend {
    /// The store `HLSPIPE_STORE` names and, with `HLSPIPE_UPLOADS=on`, its upload target.
    pub fn open(config: &ApiFunctionConfig) -> Result<Backend, String> {
        let opened = Stores::open_url_kind(&config.store, &config.bucket, S3Settings::from_env())
            .map_err(|e| e.to_string())?;
        let uploads = match config.uploads {
            Some(_) => Some(uploads::target_for(&opened).map_err(|e| e.to_string())?),
            None => None,
        };
        Ok(Backend {
            store: opened.store(),
            uploads,
        })
    }

    /// Title state only: no uploads.
    pub fn store_only(store: Arc<dyn Store>) -> Backend {
        Backend {
            store,
            uploads: None,
        }
    }
}

/// The upload endpoints, when configured and given a target.
fn upload_endpoints(
    config: &ApiFunctionConfig,
    backend: &Backend,
) -> Result<Option<Uploads>, String> {
    let (Some(settings), Some(target)) = (&config.uploads, &backend.uploads) else {
        return Ok(None);
    };
    let pipeline = PipelineConfig {
        input_prefix: settings.input_prefix.clone(),
        output_prefix: config.output_prefix.clone(),
        ..PipelineConfig::default()
    }
    .validate()
    .map_err(|e| e.to_string())?;
    let rules = UploadRules::new(pipeline)
        .max_size(settings.max_bytes)?
        .url_ttl(settings.url_ttl)?;
    Ok(Some(Uploads::new(
        rules,
        Arc::clone(target),
        &config.cdn_base_url,
    )))
}

/// The playback router for `secrets` (the same one `hlspipe serve` builds, without the edge).
pub fn build_router(
    config: &ApiFunctionConfig,
    backend: &Backend,
    secrets: &Secrets,
) -> Result<Router, String> {
    use hlspipe::delivery::api::{self, ApiConfig, Auth};
    use hlspipe::delivery::sign::{HashAlgorithm, KeySet, PrivateKey, Signer};
    let key =
        PrivateKey::from_pem(&secrets.private_key_pem).map_err(|e| format!("private key: {e}"))?;
    let keys = KeySet::new(&config.key_pair_id, key).map_err(|e| e.to_string())?;
    let auth = match &secrets.token {
        Some(t) => Auth::Bearer(t.trim().to_owned()),
        None => Auth::Disabled,
    };
    let api_config = ApiConfig::new(&config.cdn_base_url, auth)
        .and_then(|c| c.output_prefix(&config.output_prefix))
        .and_then(|c| c.lifetime(config.cookie_ttl, 60.min(config.cookie_ttl)))
        .map_err(|e| e.to_string())?;
    let api_config = match upload_endpoints(config, backend)? {
        Some(uploads) => api_config.uploads(uploads),
        None => api_config,
    };
    let signer = Arc::new(Signer::new(keys, HashAlgorithm::Sha1));
    Ok(api::router(api_config, Arc::clone(&backend.store), signer))
}

/// The router in use, rebuilt when a refresh finds other secrets: requests already running
/// keep the router they started with.
pub struct LiveRouter {
    current: std::sync::RwLock<(Secrets, Router)>,
}

impl LiveRouter {
    pub fn new(secrets: Secrets, router: Router) -> LiveRouter {
        LiveRouter {
            current: std::sync::RwLock::new((secrets, router)),
        }
    }

    pub fn router(&self) -> Router {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .clone()
    }

    /// Swaps in `secrets` if they differ; `Ok(true)` when the router was rebuilt. A bad new
    /// key keeps the old router (and is reported), so a botched rotation never stops
    /// playback.
    pub fn update(
        &self,
        secrets: Secrets,
        build: impl FnOnce(&Secrets) -> Result<Router, String>,
    ) -> Result<bool, String> {
        if self.current.read().unwrap_or_else(|p| p.into_inner()).0 == secrets {
            return Ok(false);
        }
        let router = build(&secrets)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = (secrets, router);
        Ok(true)
    }
}
