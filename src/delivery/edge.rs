//! The edge: a local stand-in for the CloudFront distribution in front of the bucket.
//!
//! It answers the way the distribution would for a cache behaviour with a trusted key group, an
//! S3 origin and a CORS response headers policy:
//! - Every `GET`/`HEAD` is decided by the signing [`Verifier`] before the store is touched:
//!   signed URL parameters or `CloudFront-*` cookies, signature, time window, wildcard resource
//!   and source IP. The URL checked is the distribution's public base URL followed by the path
//!   and query as the viewer sent them: CloudFront matches the policy `Resource` against the
//!   whole URL, query string included (CloudFront Developer Guide, "Create a signed URL using
//!   a custom policy", the `Resource` element). The `Host` header is not used: behind a real
//!   distribution it would be the distribution's own name anyway.
//! - A denial is `403` with CloudFront's short XML body; why it was denied goes to the log
//!   (`tracing`, target `hlspipe::delivery::edge`), never to the viewer.
//! - A missing object is `404` (after the check). Behind CloudFront with origin access control
//!   the answer for a missing key is S3's: `403 AccessDenied` unless the OAC's principal may
//!   `s3:ListBucket`, `404 NoSuchKey` when it may (Amazon S3 API Reference, GetObject,
//!   "Permissions"). We behave like the second: it only tells a viewer who is already allowed
//!   into the title's folder that a file is absent, and it makes broken playlists easy to spot.
//! - `Range` (one range: `206`; unsatisfiable: `416` with `Content-Range: bytes */len`; several
//!   ranges, or two `Range` field lines: the whole object with `200`, which RFC 9110 § 14.2
//!   allows), `If-Range`,
//!   `If-None-Match` and `If-Modified-Since` (`304`), `Accept-Ranges: bytes`, and the object's
//!   `Content-Type`, `Cache-Control`, `ETag` and `Last-Modified` passed through as S3 returns
//!   them.
//! - Credentialed CORS for players on another origin: the viewer's `Origin` echoed when it is
//!   in the allowed list (never `*`, which browsers refuse with credentials: Fetch standard,
//!   "CORS protocol and credentials"), `Access-Control-Allow-Credentials: true`, `Vary:
//!   Origin`, and `Content-Length`/`Content-Range` exposed to scripts. Preflight `OPTIONS`
//!   requests are answered without a signature check: browsers never send cookies with a
//!   preflight (Fetch standard, "CORS-preflight fetch").
//!
//! Bodies are streamed from the store in chunks read on the blocking pool (the [`Store`] trait
//! is synchronous), so a 30 MB segment costs one chunk of memory per request, not 30 MB.

use crate::delivery::cors::{self, Cors, Preflight};
use crate::delivery::http::{peer_ip, Clock};
use crate::delivery::request::{store_key, Answer, Conditions};
use crate::delivery::sign::{Decision, Verifier};
use crate::store::{ObjectInfo, Store};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::Router;
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

/// Body chunk read from the store per step: memory per streaming request.
pub const DEFAULT_CHUNK_SIZE: usize = 256 * 1024;

/// Why an edge configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EdgeError {
    #[error("public base URL {url:?}: {reason}")]
    BadBaseUrl { url: String, reason: &'static str },
    #[error("allowed origin {origin:?}: {reason}")]
    BadOrigin {
        origin: String,
        reason: &'static str,
    },
    #[error("path prefix {prefix:?}: {reason}")]
    BadPrefix {
        prefix: String,
        reason: &'static str,
    },
}

/// How requests are admitted.
#[derive(Clone)]
pub enum Access {
    /// As CloudFront with a trusted key group: every request must carry valid signed cookies or
    /// a valid signed URL.
    Signed(Arc<Verifier>),
    /// No check at all, as a public distribution. For benchmarks (the cost of the check is the
    /// difference) and never the default of any command.
    Open,
}

/// How the edge maps CDN URLs to store keys, and who may call it from a browser.
#[derive(Clone)]
pub struct EdgeConfig {
    public_base_url: String,
    path_prefix: String,
    key_prefix: String,
    cors: Cors,
    chunk_size: usize,
    clock: Clock,
}

impl EdgeConfig {
    /// `public_base_url` is the distribution's scheme and host as viewers use it, e.g.
    /// `https://cdn.example.com` or `http://127.0.0.1:8080` (no path, no trailing slash needed).
    /// By default the request path `/hls/x` is the store key `hls/x`, no origin is allowed
    /// CORS, and the clock is the system's.
    pub fn new(public_base_url: &str) -> Result<EdgeConfig, EdgeError> {
        Ok(EdgeConfig {
            public_base_url: parse_base_url(public_base_url)?,
            path_prefix: "/hls/".into(),
            key_prefix: "hls/".into(),
            cors: edge_cors(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            clock: crate::clock::system_clock(),
        })
    }

    /// Serve request paths under `path_prefix` (starts and ends with `/`, e.g. `/hls/`) from
    /// store keys under `key_prefix` (empty, or ends with `/`, e.g. `hls/`). Other paths are 404.
    pub fn map_prefix(
        mut self,
        path_prefix: &str,
        key_prefix: &str,
    ) -> Result<EdgeConfig, EdgeError> {
        let bad = |prefix: &str, reason| EdgeError::BadPrefix {
            prefix: prefix.to_owned(),
            reason,
        };
        if !path_prefix.starts_with('/') || !path_prefix.ends_with('/') {
            return Err(bad(path_prefix, "a path prefix starts and ends with `/`"));
        }
        if !(key_prefix.is_empty() || key_prefix.ends_with('/')) || key_prefix.starts_with('/') {
            return Err(bad(
                key_prefix,
                "a key prefix is empty or ends with `/`, and does not start with `/`",
            ));
        }
        for prefix in [path_prefix, key_prefix] {
            if prefix.split('/').any(|s| s == "." || s == "..") {
                return Err(bad(prefix, "`.` and `..` segments are not allowed"));
            }
        }
        self.path_prefix = path_prefix.to_owned();
        self.key_prefix = key_prefix.to_owned();
        Ok(self)
    }

    /// Let pages on `origin` (`scheme://host[:port]`, e.g. `https://www.example.com`) read
    /// responses with credentials.
    pub fn allow_origin(mut self, origin: &str) -> Result<EdgeConfig, EdgeError> {
        self.cors
            .allow_origin(origin)
            .map_err(|e| EdgeError::BadOrigin {
                origin: e.origin,
                reason: e.reason,
            })?;
        Ok(self)
    }

    pub fn chunk_size(mut self, bytes: usize) -> EdgeConfig {
        self.chunk_size = bytes.clamp(4096, 16 << 20);
        self
    }

    pub fn clock(mut self, clock: Clock) -> EdgeConfig {
        self.clock = clock;
        self
    }

    pub fn public_base_url(&self) -> &str {
        &self.public_base_url
    }
}

/// The distribution's base URL as [`cors::normalize_base_url`] writes it: paths, queries and
/// wildcards would make the checked URL differ from what CloudFront sees.
fn parse_base_url(url: &str) -> Result<String, EdgeError> {
    cors::normalize_base_url(url).map_err(|reason| EdgeError::BadBaseUrl {
        url: url.to_owned(),
        reason,
    })
}

/// What a CloudFront CORS response headers policy for a player allows: GET/HEAD with the
/// headers a player sends, `Content-Length`/`Content-Range` readable by scripts.
fn edge_cors() -> Cors {
    Cors::new(
        "GET, HEAD",
        "Range, If-None-Match, If-Range, If-Modified-Since",
        "Content-Length, Content-Range",
    )
}

struct Edge {
    config: EdgeConfig,
    store: Arc<dyn Store>,
    access: Access,
    /// Fingerprints of credentials (query and cookies) that were allowed once: only a hint of
    /// where to run the check, never a reason to skip it.
    known: Mutex<HashSet<u64>>,
}

/// Known credential fingerprints kept before the set starts over.
const KNOWN_CREDENTIALS_LIMIT: usize = 16_384;

impl Edge {
    fn is_known(&self, fingerprint: u64) -> bool {
        let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        known.contains(&fingerprint)
    }

    fn remember(&self, fingerprint: u64) {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        if known.len() >= KNOWN_CREDENTIALS_LIMIT {
            known.clear();
        }
        known.insert(fingerprint);
    }
}

fn credentials_fingerprint(query: Option<&str>, cookies: Option<&str>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (query, cookies).hash(&mut hasher);
    hasher.finish()
}

/// The edge as a router that answers every path (mount it as a fallback, or nest it). Run it
/// with [`crate::delivery::http::serve`] so that the viewer's address reaches the IP check.
pub fn router(config: EdgeConfig, store: Arc<dyn Store>, access: Access) -> Router {
    let edge = Arc::new(Edge {
        config,
        store,
        access,
        known: Mutex::new(HashSet::new()),
    });
    Router::new().fallback(handle).with_state(edge)
}

async fn handle(State(edge): State<Arc<Edge>>, req: Request) -> Response {
    // Only the head is needed; a body is not read (and `Request` itself is not `Sync`).
    let (req, _body) = req.into_parts();
    let cors = &edge.config.cors;
    let mut response = match (&req.method, cors.classify(&req.method, &req.headers)) {
        (_, Preflight::Allowed) => cors.preflight_response(),
        (_, Preflight::Refused) => error(StatusCode::FORBIDDEN, "AccessDenied", "Access denied"),
        (&Method::OPTIONS, Preflight::No) => {
            // A plain OPTIONS, not a preflight.
            let mut r = empty(StatusCode::NO_CONTENT);
            r.headers_mut().insert(
                header::ALLOW,
                HeaderValue::from_static("GET, HEAD, OPTIONS"),
            );
            r
        }
        (&Method::GET | &Method::HEAD, Preflight::No) => serve_object(&edge, &req).await,
        _ => {
            let mut r = error(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "Method not allowed",
            );
            r.headers_mut().insert(
                header::ALLOW,
                HeaderValue::from_static("GET, HEAD, OPTIONS"),
            );
            r
        }
    };
    cors.decorate(&req.headers, response.headers_mut());
    response
}

/// `GET`/`HEAD` under the path prefix. As at CloudFront, the signature is checked before the
/// origin is asked, so a viewer without valid credentials gets 403 whether or not the key exists.
async fn serve_object(edge: &Edge, req: &Parts) -> Response {
    let path = req.uri.path();
    let Some(rest) = path.strip_prefix(edge.config.path_prefix.as_str()) else {
        return not_found();
    };
    if let Access::Signed(verifier) = &edge.access {
        if let Err(refused) = check_signature(edge, verifier, req).await {
            return refused;
        }
    }
    let Some(key) = store_key(&edge.config.key_prefix, rest) else {
        return not_found();
    };
    match open_object(edge, &key, conditions_of(req)).await {
        Ok(opened) => object_response(edge, key, opened),
        Err(response) => response,
    }
}

/// The trusted-key-group check, made before the store is touched. `Err` is the answer to send
/// instead: 403 for a denial (why goes to the log only), 500 when the check itself failed.
async fn check_signature(
    edge: &Edge,
    verifier: &Arc<Verifier>,
    req: &Parts,
) -> Result<(), Response> {
    let path_and_query = req
        .uri
        .path_and_query()
        .map_or(req.uri.path(), |pq| pq.as_str());
    let url = format!("{}{path_and_query}", edge.config.public_base_url);
    let cookies = cookie_header(&req.headers);
    let ip = peer_ip(&req.extensions);
    let now = (edge.config.clock)();
    // Credentials allowed before verify from the Verifier's cache in microseconds: check
    // them here. Unknown ones may cost a public-key operation (about 0.5 ms for RSA-2048),
    // which goes to the blocking pool so that a flood of made-up signatures cannot stall
    // the connections being served.
    let fingerprint = credentials_fingerprint(req.uri.query(), cookies.as_deref());
    let known = edge.is_known(fingerprint);
    let decision = if known {
        verifier.verify_request(&url, cookies.as_deref(), ip, now)
    } else {
        verify_on_blocking_pool(verifier, &url, cookies.as_deref(), ip, now).await?
    };
    match decision {
        Decision::Allow(_) => {
            if !known {
                edge.remember(fingerprint);
            }
            Ok(())
        }
        Decision::Deny(reason) => {
            tracing::info!(target: "hlspipe::delivery::edge", %ip, %url, %reason, "403 denied");
            Err(error(
                StatusCode::FORBIDDEN,
                "AccessDenied",
                "Access denied",
            ))
        }
    }
}

/// [`Verifier::verify_request`] for credentials not seen before, off the connection's task.
async fn verify_on_blocking_pool(
    verifier: &Arc<Verifier>,
    url: &str,
    cookies: Option<&str>,
    ip: IpAddr,
    now: u64,
) -> Result<Decision, Response> {
    let (verifier, url, cookies) = (
        Arc::clone(verifier),
        url.to_owned(),
        cookies.map(str::to_owned),
    );
    tokio::task::spawn_blocking(move || verifier.verify_request(&url, cookies.as_deref(), ip, now))
        .await
        .map_err(|e| {
            tracing::error!(target: "hlspipe::delivery::edge", error = %e, "verification task failed");
            internal_error()
        })
}

/// The object's HEAD, what to answer, and the start of the body, from the blocking pool. `Err`
/// is the answer to send instead: 404 for a missing key, 500 when the store failed.
async fn open_object(edge: &Edge, key: &str, conditions: Conditions) -> Result<Opened, Response> {
    let store = Arc::clone(&edge.store);
    let task_key = key.to_owned();
    let chunk_size = edge.config.chunk_size;
    let opened = tokio::task::spawn_blocking(move || {
        Opened::read(&*store, &task_key, &conditions, chunk_size)
    })
    .await;
    match opened {
        Ok(Ok(Some(opened))) => Ok(opened),
        Ok(Ok(None)) => Err(not_found()),
        Ok(Err(e)) => {
            tracing::error!(target: "hlspipe::delivery::edge", %key, error = %e, "store read failed");
            Err(internal_error())
        }
        Err(e) => {
            tracing::error!(target: "hlspipe::delivery::edge", %key, error = %e, "store task failed");
            Err(internal_error())
        }
    }
}

/// The answer for an object that exists: 304, 416, or its bytes with 200 or 206.
fn object_response(edge: &Edge, key: String, opened: Opened) -> Response {
    let Opened {
        info,
        outcome,
        first,
    } = opened;
    let mut headers = object_headers(&info);
    let len = info.size;
    let (status, start, end) = match outcome {
        Answer::NotModified => return not_modified(headers),
        Answer::Unsatisfiable => return range_not_satisfiable(len),
        Answer::Send {
            partial,
            start,
            end,
        } => {
            if partial {
                headers.insert(
                    header::CONTENT_RANGE,
                    header_value(&format!("bytes {start}-{}/{len}", end - 1)),
                );
            }
            let status = if partial {
                StatusCode::PARTIAL_CONTENT
            } else {
                StatusCode::OK
            };
            (status, start, end)
        }
    };
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));

    let body = match first {
        None => Body::empty(),
        Some(first) => object_body(edge, key, first, start, end),
    };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r.headers_mut().extend(headers);
    r
}

/// 304 with the object's validators and caching headers (RFC 9110 § 15.4.5), but no
/// `Content-Type`: there is no content to describe.
fn not_modified(mut headers: HeaderMap) -> Response {
    let mut r = empty(StatusCode::NOT_MODIFIED);
    headers.remove(header::CONTENT_TYPE);
    r.headers_mut().extend(headers);
    r
}

/// 416 with the object's length in `Content-Range: bytes */len`, so that the client can ask
/// again inside it (RFC 9110 § 15.5.17).
fn range_not_satisfiable(len: u64) -> Response {
    let mut r = error(
        StatusCode::RANGE_NOT_SATISFIABLE,
        "InvalidRange",
        "The requested range is not satisfiable",
    );
    r.headers_mut().insert(
        header::CONTENT_RANGE,
        header_value(&format!("bytes */{len}")),
    );
    r.headers_mut()
        .insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    r
}

/// `[start, end)` of `key`, `first` being its beginning: whole when it already covers the
/// range, otherwise streamed from the store after it.
fn object_body(edge: &Edge, key: String, first: Bytes, start: u64, end: u64) -> Body {
    let rest_start = start + first.len() as u64;
    if rest_start >= end {
        Body::from(first)
    } else {
        stream_body(
            first,
            Arc::clone(&edge.store),
            key.into(),
            rest_start,
            end,
            edge.config.chunk_size,
        )
    }
}

struct Opened {
    info: ObjectInfo,
    outcome: Answer,
    /// The first chunk of the body (GET only).
    first: Option<Bytes>,
}

impl Opened {
    /// One trip to the blocking pool answers small objects whole: HEAD, the decision, and the
    /// first chunk of the body (all of a typical segment) are read together. `None` when there
    /// is no such object.
    fn read(
        store: &dyn Store,
        key: &str,
        conditions: &Conditions,
        chunk_size: usize,
    ) -> crate::Result<Option<Opened>> {
        let Some(info) = store.head(key)? else {
            return Ok(None);
        };
        let outcome = conditions.decide(&info);
        let first = match outcome {
            Answer::Send { start, end, .. } if conditions.is_get && end > start => {
                let len = chunk_len(start, end, chunk_size);
                let mut buf = vec![0u8; len];
                store.read_range(key, start, &mut buf)?;
                Some(Bytes::from(buf))
            }
            _ => None,
        };
        Ok(Some(Opened {
            info,
            outcome,
            first,
        }))
    }
}

/// The fields of `req` that decide the answer.
fn conditions_of(req: &Parts) -> Conditions {
    let field = |name| {
        req.headers
            .get(name)
            .map(|v: &HeaderValue| v.as_bytes().to_vec())
    };
    Conditions {
        is_get: req.method == Method::GET,
        if_none_match: field(header::IF_NONE_MATCH),
        if_modified_since: field(header::IF_MODIFIED_SINCE),
        if_range: field(header::IF_RANGE),
        range: one_field_line(&req.headers, header::RANGE),
    }
}

fn chunk_len(offset: u64, end: u64, chunk_size: usize) -> usize {
    usize::try_from(end.saturating_sub(offset)).map_or(chunk_size, |left| left.min(chunk_size))
}

/// Every `Cookie` header, joined: HTTP/2 clients may split cookies over several (RFC 9113
/// § 8.2.3).
fn cookie_header(headers: &HeaderMap) -> Option<String> {
    let mut joined: Option<String> = None;
    for value in headers.get_all(header::COOKIE) {
        let Ok(text) = value.to_str() else { continue };
        match &mut joined {
            None => joined = Some(text.to_owned()),
            Some(all) => {
                all.push_str("; ");
                all.push_str(text);
            }
        }
    }
    joined
}

fn object_headers(info: &ObjectInfo) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Some(value) = info
        .content_type
        .as_deref()
        .and_then(|v| HeaderValue::from_str(v).ok())
    {
        h.insert(header::CONTENT_TYPE, value);
    }
    if let Some(value) = info
        .cache_control
        .as_deref()
        .and_then(|v| HeaderValue::from_str(v).ok())
    {
        h.insert(header::CACHE_CONTROL, value);
    }
    if let Ok(value) = HeaderValue::from_str(&format!("\"{}\"", info.etag)) {
        h.insert(header::ETAG, value);
    }
    if let Some(secs) = info.last_modified {
        let date = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs));
        h.insert(header::LAST_MODIFIED, header_value(&date));
    }
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h
}

/// The value of a field that must appear once, `None` when it is absent or repeated.
///
/// Two `Range` field lines: RFC 9110 § 5.3 lets a message repeat a field only when it is
/// defined as a list, and `Range` is one `ranges-specifier` (§ 14.2), so the two together
/// (`bytes=0-1, bytes=5-6` once combined) are not a valid one. § 14.2 then has the server
/// ignore `Range` and answer with the whole object, as for any other invalid `Range`; taking
/// the first line, as the edge did, answered a request that has no single meaning.
fn one_field_line(headers: &HeaderMap, name: header::HeaderName) -> Option<Vec<u8>> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    values.next().is_none().then(|| first.as_bytes().to_vec())
}

/// `first`, then `[start, end)` of `key` read a chunk at a time on the blocking pool as the
/// connection drains: at most one chunk per request is in memory.
fn stream_body(
    first: Bytes,
    store: Arc<dyn Store>,
    key: Arc<str>,
    start: u64,
    end: u64,
    chunk_size: usize,
) -> Body {
    use futures_util::StreamExt;
    let rest = futures_util::stream::try_unfold(start, move |offset| {
        let (store, key) = (Arc::clone(&store), Arc::clone(&key));
        async move {
            if offset >= end {
                return Ok::<_, std::io::Error>(None);
            }
            let len = chunk_len(offset, end, chunk_size);
            let bytes = tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; len];
                store
                    .read_range(&key, offset, &mut buf)
                    .map(|()| Bytes::from(buf))
                    .map_err(|e| {
                        tracing::error!(target: "hlspipe::delivery::edge", %key, offset, error = %e, "store read failed mid-body");
                        std::io::Error::other(e.to_string())
                    })
            })
            .await
            .map_err(std::io::Error::other)??;
            Ok(Some((bytes, offset + len as u64)))
        }
    });
    Body::from_stream(futures_util::stream::once(async { Ok(first) }).chain(rest))
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn empty(status: StatusCode) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    r
}

/// An error the way CloudFront and S3 write them: a short XML document.
fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    r
}

fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "NoSuchKey",
        "The specified key does not exist.",
    )
}

fn internal_error() -> Response {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalError",
        "We encountered an internal error. Please try again.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_and_origins() {
        assert_eq!(
            parse_base_url("https://CDN.example.com/").unwrap(),
            "https://cdn.example.com"
        );
        assert_eq!(
            parse_base_url("http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert!(parse_base_url("https://cdn.example.com/hls").is_err());
        assert!(parse_base_url("cdn.example.com").is_err());
        assert!(parse_base_url("https://u@cdn").is_err());
        assert!(EdgeConfig::new("http://x")
            .unwrap()
            .allow_origin("*")
            .is_err());
    }
}
