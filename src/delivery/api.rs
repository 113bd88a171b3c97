//! The playback API: a viewer's app asks to play a title and gets the master playlist's CDN URL
//! plus the CloudFront signed cookies that open the title's folder.
//!
//! ```text
//! GET /v1/titles/{title}/playback     Authorization: Bearer <token>
//!   200 {"title","master_url","expires_at","state"[,"error"]} + Set-Cookie CloudFront-Policy /
//!       -Signature / -Key-Pair-Id: the title has a live version (the master names one);
//!       `state` is the latest job's (a re-upload being processed, or one that failed, leaves
//!       the live version playing)
//!   401 no or wrong token (WWW-Authenticate: Bearer)   400 bad title
//!   403 the token does not allow this title             404 no manifest.json
//!   409 nothing playable yet, or any more ({"title","state","error"})
//! POST /v1/uploads …                  uploads from the site, when configured
//!                                     ([`crate::delivery::uploads`])
//! GET /healthz                        200 ok
//! ```
//!
//! `title` is the title, percent-encoded in the request path (`My%20Show/ep1`); the policy
//! covers the title's bundle `<cdn base>/<output prefix><encoded title>.hls/*` and nothing
//! else: not `…/ep1*`, which would open `…/ep10/` too, and not a nested title's folder
//! ([`crate::title`]; DESIGN.md "CloudFront signing").
//!
//! Expiries are rounded up to a bucket (a minute by default) and the issued cookies are kept
//! per (title, expiry): every viewer asking for the same title in the same minute gets the same
//! cookies, and issuing them costs a map lookup instead of an RSA signature. AWS recommends
//! session cookies for CloudFront ("Set signed cookies using a custom policy"); the policy's
//! `DateLessThan` is what ends access, so `expires_at` is that time.
//!
//! Title state comes from `manifest.json` through [`TitleStates`], cached a few seconds. Who
//! may ask is decided by an [`Authoriser`] (none, a shared bearer token, or a JWT).

use crate::delivery::auth::{AuthConfigError, Authoriser, BearerToken, Grant, JwtAuthoriser};
use crate::delivery::cors::{BadOrigin, Cors, Preflight};
use crate::delivery::http::{json_error, json_response, Clock};
use crate::delivery::sign::{CookieAttributes, Policy, Signer, TitlePrefix};
use crate::delivery::state::{playable, TitleStates};
use crate::delivery::uploads::{self, Uploads};
use crate::pipeline::manifest::Manifest;
use crate::store::Store;
use crate::title::Title;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Extension, Path, Request, State};
use axum::http::header::{self, HeaderValue};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Issued cookie sets remembered before expired ones are dropped.
const ISSUED_CACHE_LIMIT: usize = 4096;

/// Why an API configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("CDN base URL {url:?}: {reason}")]
    BadCdnBaseUrl { url: String, reason: &'static str },
    #[error("output prefix {prefix:?}: {reason}")]
    BadOutputPrefix {
        prefix: String,
        reason: &'static str,
    },
    #[error("bearer token: {0}")]
    BadToken(&'static str),
    #[error("cookie lifetime: {0}")]
    BadLifetime(&'static str),
    #[error(transparent)]
    BadOrigin(#[from] BadOrigin),
}

/// How callers prove they may ask for cookies ([`crate::delivery::auth`]).
#[derive(Clone)]
pub enum Auth {
    /// `Authorization: Bearer <token>`, compared in constant time.
    Bearer(String),
    /// `Authorization: Bearer <JWT>` from the site's login; its claim may limit the titles.
    Jwt(Arc<JwtAuthoriser>),
    /// Anyone may ask: a public catalogue, or `hlspipe dev` on loopback.
    Disabled,
}

/// What the API signs and how.
#[derive(Clone)]
pub struct ApiConfig {
    cdn_base_url: String,
    output_prefix: String,
    cookie_ttl: u64,
    expiry_bucket: u64,
    cookie_attributes: CookieAttributes,
    authoriser: Authoriser,
    clock: Clock,
    state_ttl: u64,
    cors: Cors,
    uploads: Option<Arc<Uploads>>,
}

impl ApiConfig {
    /// `cdn_base_url` is what viewers fetch media from (`https://cdn.example.com`); titles live
    /// under `hls/` there and in the store, cookies last an hour (rounded up to the minute),
    /// session cookies host-only with `SameSite=Lax`.
    pub fn new(cdn_base_url: &str, auth: Auth) -> Result<ApiConfig, ApiError> {
        let bad = |reason| ApiError::BadCdnBaseUrl {
            url: cdn_base_url.to_owned(),
            reason,
        };
        let base = cdn_base_url.strip_suffix('/').unwrap_or(cdn_base_url);
        // The same rules as a title prefix, checked on a sample title.
        TitlePrefix::parse(&format!("{base}/t/"))
            .map_err(|_| bad("expected http(s)://host[:port] with printable ASCII only"))?;
        if base.contains(['?', '#', '*']) {
            return Err(bad("no query, fragment or wildcard"));
        }
        let authoriser = match auth {
            Auth::Disabled => Authoriser::None,
            Auth::Jwt(jwt) => Authoriser::Jwt(jwt),
            Auth::Bearer(token) => match BearerToken::new(&token) {
                Ok(token) => Authoriser::Bearer(token),
                Err(AuthConfigError::BadToken(reason)) => return Err(ApiError::BadToken(reason)),
                Err(_) => return Err(ApiError::BadToken("refused")),
            },
        };
        Ok(ApiConfig {
            cdn_base_url: base.to_owned(),
            output_prefix: "hls/".into(),
            cookie_ttl: 3600,
            expiry_bucket: 60,
            cookie_attributes: CookieAttributes::new(),
            authoriser,
            clock: crate::clock::system_clock(),
            state_ttl: 2,
            cors: Cors::new("GET, POST, DELETE", "Authorization, Content-Type", ""),
            uploads: None,
        })
    }

    /// Where titles live under the CDN base URL and in the store: empty or ending in `/`.
    pub fn output_prefix(mut self, prefix: &str) -> Result<ApiConfig, ApiError> {
        let bad = |reason| ApiError::BadOutputPrefix {
            prefix: prefix.to_owned(),
            reason,
        };
        if !(prefix.is_empty() || prefix.ends_with('/')) || prefix.starts_with('/') {
            return Err(bad("empty, or ending in `/` and not starting with `/`"));
        }
        // The prefix's folders follow the title rule (it is encoded with the title).
        if !prefix.is_empty() && Title::new(&prefix[..prefix.len() - 1]).is_err() {
            return Err(bad("segments must be non-empty and not `.` or `..`"));
        }
        self.output_prefix = prefix.to_owned();
        Ok(self)
    }

    /// Cookies are valid for at least `ttl` seconds and at most `ttl + bucket`: the expiry is
    /// rounded up to a multiple of `bucket` so that cookies can be shared and cached.
    pub fn lifetime(mut self, ttl: u64, bucket: u64) -> Result<ApiConfig, ApiError> {
        if ttl == 0 || ttl > 7 * 24 * 3600 {
            return Err(ApiError::BadLifetime("between 1 second and 7 days"));
        }
        if bucket == 0 || bucket > ttl.max(60) {
            return Err(ApiError::BadLifetime(
                "the rounding bucket is at least 1 second and at most the lifetime",
            ));
        }
        self.cookie_ttl = ttl;
        self.expiry_bucket = bucket;
        Ok(self)
    }

    pub fn cookie_attributes(mut self, attributes: CookieAttributes) -> ApiConfig {
        self.cookie_attributes = attributes;
        self
    }

    /// Let pages on `origin` (`scheme://host[:port]`, the site that embeds the player) call
    /// the API with credentials: `fetch(url, {credentials: "include", headers: {Authorization}})`
    /// needs a preflight answered and the origin echoed, or the browser drops the response and
    /// its `Set-Cookie`.
    pub fn allow_origin(mut self, origin: &str) -> Result<ApiConfig, ApiError> {
        self.cors.allow_origin(origin)?;
        Ok(self)
    }

    pub fn clock(mut self, clock: Clock) -> ApiConfig {
        self.clock = clock;
        self
    }

    /// How long a title's state (its manifest, or its absence) is reused: 2 seconds unless
    /// set; 0 reads the store on every request.
    pub fn state_cache_seconds(mut self, ttl: u64) -> ApiConfig {
        self.state_ttl = ttl;
        self
    }

    /// Offers `POST /v1/uploads` (behind the same authoriser) and its companions
    /// ([`crate::delivery::uploads`]).
    pub fn uploads(mut self, uploads: Uploads) -> ApiConfig {
        self.uploads = Some(Arc::new(uploads));
        self
    }

    /// `<cdn base>/<output prefix><title>.hls/`, percent-encoded ([`Title::url_folder`]).
    pub fn title_url(&self, title: &Title) -> String {
        format!(
            "{}/{}",
            self.cdn_base_url,
            title.url_folder(&self.output_prefix)
        )
    }

    /// The `DateLessThan` of cookies issued at `now`: `now + ttl` rounded up to a multiple of
    /// the bucket, so that every viewer of a title within one bucket shares one set of cookies.
    fn cookie_expiry(&self, now: u64) -> u64 {
        let bucket = self.expiry_bucket;
        now.saturating_add(self.cookie_ttl)
            .div_ceil(bucket)
            .saturating_mul(bucket)
    }
}

/// A title's cookies for one expiry, ready to send.
struct Issued {
    set_cookies: Vec<HeaderValue>,
    /// `title`, `master_url` and `expires_at`; the state is added per response.
    body: serde_json::Value,
}

struct Api {
    config: ApiConfig,
    states: TitleStates,
    signer: Arc<Signer>,
    issued: Mutex<HashMap<(Title, u64), Arc<Issued>>>,
}

/// `/v1/titles/{title}/playback` (behind the bearer check unless disabled) and `/healthz`.
pub fn router(config: ApiConfig, store: Arc<dyn Store>, signer: Arc<Signer>) -> Router {
    let states = TitleStates::new(store, &config.output_prefix, config.state_ttl);
    let uploads = config.uploads.clone();
    let api = Arc::new(Api {
        config,
        states,
        signer,
        issued: Mutex::new(HashMap::new()),
    });
    let cors = Arc::new(api.config.cors.clone());
    let mut v1 = Router::new().route("/v1/titles/{*rest}", get(playback));
    if let Some(uploads) = &uploads {
        v1 = v1.merge(uploads::authorised_routes(Arc::clone(uploads)));
    }
    let v1 = v1
        .route_layer(middleware::from_fn_with_state(Arc::clone(&api), authorize))
        .with_state(api)
        // Outside the authoriser: a preflight carries no credentials.
        .layer(middleware::from_fn_with_state(cors, with_cors));
    let mut app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .merge(v1);
    // Part URLs carry their own capability: outside the authoriser.
    if let Some(parts) = uploads.as_deref().and_then(uploads::open_routes) {
        app = app.merge(parts);
    }
    app
}

/// Answers preflights from allowed origins (403 for others) before anything else, and adds the
/// credentialed CORS headers to every answer ([`crate::delivery::cors`]).
async fn with_cors(State(cors): State<Arc<Cors>>, req: Request, next: Next) -> Response {
    let request_headers = req.headers().clone();
    let mut response = match cors.classify(req.method(), &request_headers) {
        Preflight::Allowed => cors.preflight_response(),
        Preflight::Refused => json_error(StatusCode::FORBIDDEN, "origin not allowed"),
        Preflight::No => next.run(req).await,
    };
    cors.decorate(&request_headers, response.headers_mut());
    response
}

/// Runs the authoriser and hands its [`Grant`] to the handler, which checks the title against
/// it. RFC 6750 § 3: 401 with `WWW-Authenticate: Bearer`, adding `error="invalid_token"` when
/// a credential was sent but refused; the reason goes to the log, never the credential.
async fn authorize(State(api): State<Arc<Api>>, mut req: Request, next: Next) -> Response {
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match api
        .config
        .authoriser
        .authorise(authorization.as_deref())
        .await
    {
        Ok(grant) => {
            req.extensions_mut().insert(grant);
            next.run(req).await
        }
        Err(refusal) => {
            let path = req.uri().path();
            if refusal.invalid_token {
                tracing::warn!(target: "hlspipe::delivery::api", %path, reason = %refusal.reason, "401: credential refused");
            } else {
                tracing::info!(target: "hlspipe::delivery::api", %path, reason = %refusal.reason, "401");
            }
            unauthorized(refusal.invalid_token)
        }
    }
}

fn unauthorized(invalid_token: bool) -> Response {
    let challenge = if invalid_token {
        "Bearer realm=\"hlspipe\", error=\"invalid_token\""
    } else {
        "Bearer realm=\"hlspipe\""
    };
    let mut r = json_error(StatusCode::UNAUTHORIZED, "unauthorized");
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    r
}

async fn playback(
    State(api): State<Arc<Api>>,
    grant: Option<Extension<Grant>>,
    rest: Result<Path<String>, PathRejection>,
) -> Response {
    let title = match playback_title(rest) {
        Ok(title) => title,
        Err((status, message)) => return json_error(status, &message),
    };
    // No grant means the middleware did not run: fail closed.
    if !grant.is_some_and(|Extension(g)| g.allows(&title)) {
        tracing::warn!(target: "hlspipe::delivery::api", %title, "403: the title is outside the token's allowed prefixes");
        return json_response(
            StatusCode::FORBIDDEN,
            &serde_json::json!({ "error": "this title is not allowed for this viewer", "title": title }),
        );
    }
    let now = (api.config.clock)();
    let manifest = match read_manifest(&api, &title, now).await {
        Ok(manifest) => manifest,
        Err(refused) => return refused,
    };
    if !playable(&manifest) {
        return nothing_playable(&title, &manifest);
    }
    let expires = api.config.cookie_expiry(now);
    match title_cookies(&api, title, expires, now).await {
        Ok(issued) => playback_response(&issued, &manifest),
        Err(refused) => refused,
    }
}

/// The title in `{title}/playback`, or the status and message to refuse with: 400 when the
/// path is not UTF-8 or breaks the title rule, 404 for another endpoint.
fn playback_title(
    rest: Result<Path<String>, PathRejection>,
) -> Result<Title, (StatusCode, String)> {
    let Ok(Path(rest)) = rest else {
        return Err((
            StatusCode::BAD_REQUEST,
            "the path is not valid UTF-8".into(),
        ));
    };
    let Some(title) = rest.strip_suffix("/playback") else {
        return Err((StatusCode::NOT_FOUND, "no such endpoint".into()));
    };
    // axum has percent-decoded the path; the title rule normalises it to NFC.
    Title::new(title).map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))
}

/// The title's `manifest.json` (through the state cache), read on the blocking pool (the
/// store is synchronous): 404 when there is none, 500 when it cannot be read or parsed.
async fn read_manifest(api: &Arc<Api>, title: &Title, now: u64) -> Result<Arc<Manifest>, Response> {
    let (task_api, task_title) = (Arc::clone(api), title.clone());
    let read = tokio::task::spawn_blocking(move || task_api.states.get(&task_title, now)).await;
    match read {
        Ok(Ok(Some(manifest))) => Ok(manifest),
        Ok(Ok(None)) => Err(json_response(
            StatusCode::NOT_FOUND,
            &serde_json::json!({ "error": "unknown title", "title": title }),
        )),
        Ok(Err(e)) => {
            tracing::error!(target: "hlspipe::delivery::api", %title, error = %e, "title state unreadable");
            Err(json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "storage error",
            ))
        }
        Err(e) => {
            tracing::error!(target: "hlspipe::delivery::api", %title, error = %e, "store task failed");
            Err(json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "storage error",
            ))
        }
    }
}

/// 409 when nothing is playable: the first job is still running, or it failed and no
/// version was ever live. The state and the error say which, so that an app can tell
/// waiting from giving up.
fn nothing_playable(title: &Title, manifest: &Manifest) -> Response {
    json_response(
        StatusCode::CONFLICT,
        &serde_json::json!({ "title": title, "state": manifest.state, "error": manifest.error }),
    )
}

/// The title's cookies for `expires`: the set already issued for (title, expiry), or a new one
/// signed on the blocking pool and remembered. 500 when signing failed.
async fn title_cookies(
    api: &Arc<Api>,
    title: Title,
    expires: u64,
    now: u64,
) -> Result<Arc<Issued>, Response> {
    if let Some(issued) = cached(api, &title, expires) {
        return Ok(issued);
    }
    let (task_api, task_title) = (Arc::clone(api), title.clone());
    match tokio::task::spawn_blocking(move || issue(&task_api, &task_title, expires)).await {
        Ok(Ok(issued)) => Ok(remember(api, title, expires, now, issued)),
        Ok(Err(e)) => {
            tracing::error!(target: "hlspipe::delivery::api", %title, error = %e, "signing failed");
            Err(json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "signing failed",
            ))
        }
        Err(e) => {
            tracing::error!(target: "hlspipe::delivery::api", %title, error = %e, "signing task failed");
            Err(json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "signing failed",
            ))
        }
    }
}

/// 200: the title's JSON, with the latest job's state (and error) beside the live version's
/// URL, and its `Set-Cookie` headers.
fn playback_response(issued: &Issued, manifest: &Manifest) -> Response {
    let mut body = issued.body.clone();
    body["state"] = serde_json::json!(manifest.state);
    if let Some(error) = &manifest.error {
        body["error"] = error.as_str().into();
    }
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let mut r = Response::new(Body::from(bytes));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // A response that sets cookies must never be stored by a shared cache.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for cookie in &issued.set_cookies {
        h.append(header::SET_COOKIE, cookie.clone());
    }
    r
}

fn cached(api: &Api, title: &Title, expires: u64) -> Option<Arc<Issued>> {
    let issued = api.issued.lock().unwrap_or_else(|p| p.into_inner());
    issued.get(&(title.clone(), expires)).cloned()
}

fn remember(api: &Api, title: Title, expires: u64, now: u64, issued: Issued) -> Arc<Issued> {
    let issued = Arc::new(issued);
    let mut map = api.issued.lock().unwrap_or_else(|p| p.into_inner());
    if map.len() >= ISSUED_CACHE_LIMIT {
        map.retain(|(_, exp), _| *exp > now);
        if map.len() >= ISSUED_CACHE_LIMIT {
            map.clear();
        }
    }
    map.insert((title, expires), Arc::clone(&issued));
    issued
}

/// Sign the title's policy (an RSA or ECDSA operation on a miss of the signer's own cache).
fn issue(
    api: &Api,
    title: &Title,
    expires: u64,
) -> Result<Issued, crate::delivery::sign::SignError> {
    let prefix = TitlePrefix::parse(&api.config.title_url(title))?;
    let cookies = api
        .signer
        .signed_cookies(&Policy::for_title(&prefix, expires))?;
    let set_cookies = cookies
        .set_cookie_headers(&api.config.cookie_attributes)
        .into_iter()
        .filter_map(|c| HeaderValue::from_str(&c).ok())
        .collect();
    let body = serde_json::json!({
        "title": title,
        "master_url": format!("{prefix}{}", crate::pipeline::manifest::MASTER_KEY),
        "expires_at": expires,
    });
    Ok(Issued { set_cookies, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_is_checked() {
        assert!(ApiConfig::new("https://cdn.example.com", Auth::Disabled).is_ok());
        assert!(ApiConfig::new("https://cdn.example.com/", Auth::Disabled).is_ok());
        assert!(ApiConfig::new("cdn.example.com", Auth::Disabled).is_err());
        assert!(ApiConfig::new("https://cdn.example.com", Auth::Bearer("short".into())).is_err());
        let config = ApiConfig::new("https://cdn.example.com", Auth::Disabled).unwrap();
        assert!(config.clone().output_prefix("/hls/").is_err());
        assert!(config.clone().output_prefix("hls").is_err());
        assert!(config.clone().output_prefix("a/../").is_err());
        let config = config.output_prefix("media/hls/").unwrap();
        assert_eq!(
            config.title_url(&Title::new("shows/ép 1").unwrap()),
            "https://cdn.example.com/media/hls/shows/%C3%A9p%201.hls/"
        );
    }
}
