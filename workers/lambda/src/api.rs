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
use hlspipe::aws::secrets::{SecretReader, SecretRef};
use hlspipe::delivery::api::{self, ApiConfig, Auth};
use hlspipe::delivery::auth::{Jwks, JwksSettings, JwtAuthoriser, JwtKeys, JwtSettings};
use hlspipe::delivery::sign::{CookieAttributes, HashAlgorithm, KeySet, PrivateKey, Signer};
use hlspipe::delivery::uploads::{self, UploadRules, UploadTarget, Uploads};
use hlspipe::pipeline::config::PipelineConfig;
use hlspipe::store::location::Stores;
use hlspipe::store::{S3Settings, Store};
use std::future::Future;
use std::pin::Pin;
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

/// How the function decides who may watch (`HLSPIPE_API_AUTH`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthSpec {
    /// `none`: a public catalogue, said explicitly.
    None,
    /// `bearer`: one shared token, read from `HLSPIPE_API_TOKEN_SECRET`.
    Bearer { token_secret: String },
    /// `jwt`: the site's own login tokens.
    Jwt {
        keys: JwtKeySpec,
        issuer: Option<String>,
        audience: Option<String>,
        leeway: u64,
        titles_claim: Option<String>,
    },
}

/// Where the JWT verification keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtKeySpec {
    /// `HLSPIPE_JWT_JWKS_URL`: the identity provider's key set (Cognito, Auth0, …).
    JwksUrl(String),
    /// `HLSPIPE_JWT_PUBLIC_KEY_SECRET`: a PEM public key, kept in SSM or Secrets Manager
    /// (a multi-line PEM in a template parameter is cut at its first space).
    PublicKeySecret(String),
    /// `HLSPIPE_JWT_HS256_SECRET`: the shared HMAC secret.
    Hs256Secret(String),
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
    /// `HLSPIPE_KEY_PAIR_ID`: the CloudFront public key id of a secret that holds a bare PEM.
    /// A JSON secret (`{"key_pair_id", "private_key"}`) names its own, so that a rotation
    /// changes the key and its id in one write.
    pub key_pair_id: Option<String>,
    /// `HLSPIPE_PRIVATE_KEY_SECRET`: `secretsmanager:NAME`, `ssm:PARAMETER` or an ARN.
    pub private_key_secret: String,
    pub auth: AuthSpec,
    /// `HLSPIPE_ALLOW_ORIGIN`: the site's origins (comma-separated) allowed credentialed CORS.
    pub allow_origins: Vec<String>,
    /// `HLSPIPE_COOKIE_DOMAIN`: shared by the site and the distribution's alternate domain.
    pub cookie_domain: Option<String>,
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

impl UploadSettings {
    fn from_vars(vars: &Vars, auth: &AuthSpec) -> Result<Option<UploadSettings>, String> {
        match var(vars, "HLSPIPE_UPLOADS").as_deref() {
            None | Some("off") => Ok(None),
            Some("on") if *auth == AuthSpec::None => Err(
                "HLSPIPE_UPLOADS=on with HLSPIPE_API_AUTH=none: anyone could write to the bucket"
                    .into(),
            ),
            Some("on") => Ok(Some(UploadSettings {
                input_prefix: var(vars, "HLSPIPE_INPUT_PREFIX")
                    .unwrap_or_else(|| "uploads/".into()),
                max_bytes: number(vars, "HLSPIPE_UPLOAD_MAX_BYTES", uploads::DEFAULT_MAX_SIZE)?,
                url_ttl: number(vars, "HLSPIPE_UPLOAD_URL_TTL", uploads::DEFAULT_URL_TTL)?,
            })),
            Some(other) => Err(format!("HLSPIPE_UPLOADS={other:?}: on or off")),
        }
    }
}

type Vars = std::collections::HashMap<String, String>;

fn var(vars: &Vars, k: &str) -> Option<String> {
    vars.get(k).filter(|v| !v.is_empty()).cloned()
}

fn number(vars: &Vars, k: &str, default: u64) -> Result<u64, String> {
    match var(vars, k) {
        Some(v) => v.parse().map_err(|_| format!("{k}={v:?} is not a number")),
        None => Ok(default),
    }
}

impl AuthSpec {
    fn from_vars(vars: &Vars) -> Result<AuthSpec, String> {
        let token_secret = var(vars, "HLSPIPE_API_TOKEN_SECRET");
        let jwt_sources = [
            (
                "HLSPIPE_JWT_JWKS_URL",
                JwtKeySpec::JwksUrl as fn(String) -> JwtKeySpec,
            ),
            ("HLSPIPE_JWT_PUBLIC_KEY_SECRET", JwtKeySpec::PublicKeySecret),
            ("HLSPIPE_JWT_HS256_SECRET", JwtKeySpec::Hs256Secret),
        ];
        let mut jwt_keys: Vec<JwtKeySpec> = jwt_sources
            .iter()
            .filter_map(|(k, make)| var(vars, k).map(make))
            .collect();
        let mode = var(vars, "HLSPIPE_API_AUTH");
        match (mode.as_deref(), token_secret, jwt_keys.len()) {
            (Some("none"), None, 0) => Ok(AuthSpec::None),
            (None | Some("bearer"), Some(token_secret), 0) => Ok(AuthSpec::Bearer { token_secret }),
            (Some("jwt"), None, 1) => Ok(AuthSpec::Jwt {
                keys: jwt_keys.remove(0),
                issuer: var(vars, "HLSPIPE_JWT_ISSUER"),
                audience: var(vars, "HLSPIPE_JWT_AUDIENCE"),
                leeway: number(vars, "HLSPIPE_JWT_LEEWAY", 60)?,
                titles_claim: var(vars, "HLSPIPE_JWT_TITLES_CLAIM"),
            }),
            (other, _, _) => Err(format!(
                "HLSPIPE_API_AUTH={other:?}: set HLSPIPE_API_TOKEN_SECRET (bearer), or \
                 HLSPIPE_API_AUTH=jwt with exactly one of HLSPIPE_JWT_JWKS_URL, \
                 HLSPIPE_JWT_PUBLIC_KEY_SECRET, HLSPIPE_JWT_HS256_SECRET, or HLSPIPE_API_AUTH=none \
                 for a public catalogue (and nothing else)"
            )),
        }
    }
}

impl ApiFunctionConfig {
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self, String> {
        let vars: Vars = vars.into_iter().collect();
        let need = |k: &str| var(&vars, k).ok_or_else(|| format!("{k} is not set"));
        let auth = AuthSpec::from_vars(&vars)?;
        let uploads = UploadSettings::from_vars(&vars, &auth)?;
        Ok(ApiFunctionConfig {
            cdn_base_url: need("HLSPIPE_CDN_BASE_URL")?,
            output_prefix: var(&vars, "HLSPIPE_OUTPUT_PREFIX").unwrap_or_else(|| "hls/".into()),
            store: need("HLSPIPE_STORE")?,
            bucket: var(&vars, "HLSPIPE_BUCKET").unwrap_or_default(),
            key_pair_id: var(&vars, "HLSPIPE_KEY_PAIR_ID"),
            private_key_secret: need("HLSPIPE_PRIVATE_KEY_SECRET")?,
            auth,
            allow_origins: var(&vars, "HLSPIPE_ALLOW_ORIGIN")
                .map(|v| v.split(',').map(|o| o.trim().to_owned()).collect())
                .unwrap_or_default(),
            cookie_domain: var(&vars, "HLSPIPE_COOKIE_DOMAIN"),
            cookie_ttl: number(&vars, "HLSPIPE_COOKIE_TTL", 3600)?,
            refresh_seconds: number(&vars, "HLSPIPE_SECRET_REFRESH_SECONDS", 300)?.max(1),
            uploads,
        })
    }
}

/// Reads one secret's text. The function reads through [`SecretReader`] (Secrets Manager or
/// SSM); tests use a map.
pub trait SecretSource: Send + Sync {
    fn read<'a>(
        &'a self,
        secret: &'a SecretRef,
    ) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>>;
}

impl SecretSource for SecretReader {
    fn read<'a>(
        &'a self,
        secret: &'a SecretRef,
    ) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>> {
        Box::pin(async move {
            SecretReader::read(self, secret)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// The secrets the router is built from, as last read.
#[derive(Clone, PartialEq, Eq)]
pub struct Secrets {
    /// The id CloudFront knows the signing key by, and the key.
    pub key_pair_id: String,
    pub private_key_pem: String,
    /// The bearer token (`bearer`).
    pub token: Option<String>,
    /// The JWT public key PEM or HS256 secret (`jwt` without a JWKS URL).
    pub jwt_key: Option<String>,
}

/// The signing secret's value: a bare PEM (its id from `HLSPIPE_KEY_PAIR_ID`) or
/// `{"key_pair_id": "K…", "private_key": "-----BEGIN …"}`.
pub fn signing_secret(
    value: &str,
    configured_id: Option<&str>,
) -> Result<(String, String), String> {
    #[derive(serde::Deserialize)]
    struct Signing {
        key_pair_id: String,
        private_key: String,
    }
    if value.trim_start().starts_with('{') {
        let s: Signing = serde_json::from_str(value).map_err(|e| {
            format!("private key secret: expected {{\"key_pair_id\", \"private_key\"}}: {e}")
        })?;
        return Ok((s.key_pair_id, s.private_key));
    }
    let id = configured_id.ok_or(
        "the private key secret is a bare PEM: set HLSPIPE_KEY_PAIR_ID, or store \
         {\"key_pair_id\", \"private_key\"}",
    )?;
    Ok((id.to_owned(), value.to_owned()))
}

/// Reads every secret the configuration names.
pub async fn read_secrets(
    source: &dyn SecretSource,
    config: &ApiFunctionConfig,
) -> Result<Secrets, String> {
    let read = |text: &str| -> Result<SecretRef, String> {
        SecretRef::parse(text).map_err(|e| e.to_string())
    };
    let signing = source.read(&read(&config.private_key_secret)?).await?;
    let (key_pair_id, private_key_pem) = signing_secret(&signing, config.key_pair_id.as_deref())?;
    let (mut token, mut jwt_key) = (None, None);
    match &config.auth {
        AuthSpec::Bearer { token_secret } => {
            token = Some(source.read(&read(token_secret)?).await?);
        }
        AuthSpec::Jwt {
            keys: JwtKeySpec::PublicKeySecret(r) | JwtKeySpec::Hs256Secret(r),
            ..
        } => jwt_key = Some(source.read(&read(r)?).await?),
        AuthSpec::None | AuthSpec::Jwt { .. } => {}
    }
    Ok(Secrets {
        key_pair_id,
        private_key_pem,
        token,
        jwt_key,
    })
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
    /// Call it off the runtime's threads: an S3 client starts (and blocks on) a runtime of
    /// its own.
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

/// What every router of the function shares: the configuration, the backend, and the JWKS
/// (fetched once and kept across secret refreshes).
pub struct ApiFunction {
    pub config: ApiFunctionConfig,
    backend: Backend,
    jwks: Option<Arc<Jwks>>,
}

impl ApiFunction {
    pub fn new(config: ApiFunctionConfig, backend: Backend) -> Result<ApiFunction, String> {
        let jwks = match &config.auth {
            AuthSpec::Jwt {
                keys: JwtKeySpec::JwksUrl(url),
                ..
            } => Some(Arc::new(
                Jwks::new(url, JwksSettings::default()).map_err(|e| e.to_string())?,
            )),
            _ => None,
        };
        Ok(ApiFunction {
            config,
            backend,
            jwks,
        })
    }

    /// The playback router for `secrets` (the same one `hlspipe serve` builds, without the
    /// edge).
    pub fn router(&self, secrets: &Secrets) -> Result<Router, String> {
        let config = &self.config;
        let key = PrivateKey::from_pem(&secrets.private_key_pem)
            .map_err(|e| format!("private key: {e}"))?;
        let keys = KeySet::new(&secrets.key_pair_id, key).map_err(|e| e.to_string())?;
        let mut attributes = CookieAttributes::new();
        if let Some(domain) = &config.cookie_domain {
            attributes = attributes.domain(domain).map_err(|e| e.to_string())?;
        }
        let mut api_config = ApiConfig::new(&config.cdn_base_url, self.auth(secrets)?)
            .and_then(|c| c.output_prefix(&config.output_prefix))
            .and_then(|c| c.lifetime(config.cookie_ttl, 60.min(config.cookie_ttl)))
            .map_err(|e| e.to_string())?
            .cookie_attributes(attributes);
        for origin in &config.allow_origins {
            api_config = api_config.allow_origin(origin).map_err(|e| e.to_string())?;
        }
        if let Some(uploads) = self.upload_endpoints()? {
            api_config = api_config.uploads(uploads);
        }
        let signer = Arc::new(Signer::new(keys, HashAlgorithm::Sha1));
        Ok(api::router(
            api_config,
            Arc::clone(&self.backend.store),
            signer,
        ))
    }

    /// The upload endpoints, when configured and given a target.
    fn upload_endpoints(&self) -> Result<Option<Uploads>, String> {
        let config = &self.config;
        let (Some(settings), Some(target)) = (&config.uploads, &self.backend.uploads) else {
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

    fn auth(&self, secrets: &Secrets) -> Result<Auth, String> {
        let AuthSpec::Jwt {
            keys,
            issuer,
            audience,
            leeway,
            titles_claim,
        } = &self.config.auth
        else {
            return Ok(match &secrets.token {
                Some(t) => Auth::Bearer(t.trim().to_owned()),
                None => Auth::Disabled,
            });
        };
        let secret = || {
            secrets
                .jwt_key
                .as_deref()
                .ok_or("the JWT key secret was not read")
        };
        let keys = match (keys, &self.jwks) {
            (_, Some(jwks)) => Ok(JwtKeys::Jwks(Arc::clone(jwks))),
            (JwtKeySpec::PublicKeySecret(_), None) => JwtKeys::public_key_pem(secret()?),
            (_, None) => JwtKeys::hs256_secret(secret()?.trim_end_matches(['\r', '\n']).as_bytes()),
        }
        .map_err(|e| format!("JWT key: {e}"))?;
        let settings = JwtSettings {
            issuer: issuer.clone(),
            audience: audience.clone(),
            leeway: *leeway,
            titles_claim: titles_claim.clone(),
        };
        let jwt = JwtAuthoriser::new(keys, settings).map_err(|e| e.to_string())?;
        Ok(Auth::Jwt(Arc::new(jwt)))
    }

    /// Fetches the JWKS once, so that a wrong URL shows in the first log lines.
    pub async fn warm_up(&self) {
        if let Some(jwks) = &self.jwks {
            if let Err(reason) = jwks.refresh().await {
                tracing::warn!(%reason, "JWKS fetch failed; retried on the first token");
            }
        }
    }
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
