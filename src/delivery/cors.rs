//! Credentialed CORS, shared by the edge and the playback API.
//!
//! A player on `https://www.example.com` fetches from `https://cdn.example.com` with
//! credentials (the signed cookies, or the site's `Authorization` header for the API). Browsers
//! accept such a response only when it names the page's origin exactly, never `*`, and says
//! `Access-Control-Allow-Credentials: true` (Fetch standard, "CORS protocol and credentials").
//! Every answer carries `Vary: Origin`, allowed or not, so a cache keyed on the URL never hands
//! one origin's headers to another. A preflight (`OPTIONS` with
//! `Access-Control-Request-Method`) carries no credentials (Fetch standard, "CORS-preflight
//! fetch"), so it is answered before any signature or token check.

use axum::body::Body;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use std::collections::HashSet;

/// Why an origin was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("allowed origin {origin:?}: {reason}")]
pub struct BadOrigin {
    pub origin: String,
    pub reason: &'static str,
}

/// The origins whose pages may read responses with credentials, and what their preflights
/// may ask for.
#[derive(Clone, Debug)]
pub struct Cors {
    origins: HashSet<String>,
    methods: &'static str,
    request_headers: &'static str,
    expose: &'static str,
}

/// What an `OPTIONS` request is.
#[derive(Debug, PartialEq, Eq)]
pub enum Preflight {
    /// Not a preflight (no `Access-Control-Request-Method`), or not `OPTIONS` at all.
    No,
    /// A preflight from an origin that is not allowed: answer 403 without CORS headers, and
    /// the browser never sends the real request.
    Refused,
    /// A preflight from an allowed origin: answer [`Cors::preflight_response`].
    Allowed,
}

impl Cors {
    /// No origin allowed yet. `methods` and `request_headers` are what a preflight is told
    /// the page may send; `expose` the response headers scripts may read.
    pub fn new(methods: &'static str, request_headers: &'static str, expose: &'static str) -> Cors {
        Cors {
            origins: HashSet::new(),
            methods,
            request_headers,
            expose,
        }
    }

    /// Let pages on `origin` (`scheme://host[:port]`) read responses with credentials.
    pub fn allow_origin(&mut self, origin: &str) -> Result<(), BadOrigin> {
        let bad = |reason| BadOrigin {
            origin: origin.to_owned(),
            reason,
        };
        if origin.trim() == "*" {
            return Err(bad("`*` cannot be used with credentials; list each origin"));
        }
        self.origins
            .insert(normalize_base_url(origin).map_err(bad)?);
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.origins.is_empty()
    }

    /// The request's `Origin`, as sent, when it is allowed.
    fn allowed(&self, request: &HeaderMap) -> Option<HeaderValue> {
        let value = request.get(header::ORIGIN)?;
        let text = value.to_str().ok()?;
        let normalized = normalize_base_url(text).ok()?;
        // A browser's Origin never ends in `/`; one that does is not a browser's.
        (self.origins.contains(&normalized) && !text.ends_with('/')).then(|| value.clone())
    }

    pub fn classify(&self, method: &Method, request: &HeaderMap) -> Preflight {
        if method != Method::OPTIONS || !request.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            Preflight::No
        } else if self.allowed(request).is_some() {
            Preflight::Allowed
        } else {
            Preflight::Refused
        }
    }

    /// 204 with what the page may send; cached by the browser for ten minutes.
    /// [`Cors::decorate`] adds the origin.
    pub fn preflight_response(&self) -> Response {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NO_CONTENT;
        let h = r.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(self.methods),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(self.request_headers),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        r
    }

    /// Adds `Vary: Origin` always and, for an allowed origin, the credentialed CORS headers
    /// (exposed headers only on a real response, not a preflight's).
    pub fn decorate(&self, request: &HeaderMap, response: &mut HeaderMap) {
        response.append(header::VARY, HeaderValue::from_static("Origin"));
        let Some(origin) = self.allowed(request) else {
            return;
        };
        response.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        response.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        if !response.contains_key(header::ACCESS_CONTROL_ALLOW_METHODS) && !self.expose.is_empty() {
            response.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(self.expose),
            );
        }
    }
}

/// `scheme://authority`, lowercased, without a trailing slash; refuses paths, queries and
/// wildcards. The form of a public base URL and of a browser's `Origin`.
pub fn normalize_base_url(url: &str) -> Result<String, &'static str> {
    let trimmed = url.strip_suffix('/').unwrap_or(url);
    let (scheme, authority) = trimmed
        .split_once("://")
        .ok_or("expected http:// or https://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err("the scheme must be http or https");
    }
    if authority.is_empty() {
        return Err("the host is missing");
    }
    if !authority
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
    {
        return Err("only a host and port are allowed (no path, query, user info or wildcard)");
    }
    Ok(format!("{scheme}://{}", authority.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors() -> Cors {
        let mut c = Cors::new("GET, POST", "Authorization", "Content-Length");
        c.allow_origin("https://WWW.example.com/").unwrap();
        c
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn origins_are_exact_and_never_a_wildcard() {
        let mut c = cors();
        assert!(c.allow_origin("*").is_err());
        assert!(c.allow_origin("https://*.example.com").is_err());
        assert!(c.allow_origin("https://example.com/path").is_err());
        assert!(c.allow_origin("ftp://example.com").is_err());
        let sent = headers(&[("origin", "https://www.example.com")]);
        let mut out = HeaderMap::new();
        c.decorate(&sent, &mut out);
        assert_eq!(
            out["access-control-allow-origin"],
            "https://www.example.com"
        );
        assert_eq!(out["access-control-allow-credentials"], "true");
        assert_eq!(out["access-control-expose-headers"], "Content-Length");
        assert_eq!(out["vary"], "Origin");
        for other in [
            "https://evil.example.com",
            "https://www.example.com/",
            "null",
        ] {
            let mut out = HeaderMap::new();
            let sent = headers(&[("origin", other)]);
            c.decorate(&sent, &mut out);
            assert!(!out.contains_key("access-control-allow-origin"), "{other}");
            assert_eq!(out["vary"], "Origin");
        }
    }

    #[test]
    fn preflights_are_told_apart() {
        let c = cors();
        let allowed = headers(&[
            ("origin", "https://www.example.com"),
            ("access-control-request-method", "POST"),
        ]);
        assert_eq!(c.classify(&Method::OPTIONS, &allowed), Preflight::Allowed);
        assert_eq!(c.classify(&Method::GET, &allowed), Preflight::No);
        let other = headers(&[
            ("origin", "https://evil.example.com"),
            ("access-control-request-method", "POST"),
        ]);
        assert_eq!(c.classify(&Method::OPTIONS, &other), Preflight::Refused);
        let plain = headers(&[("origin", "https://www.example.com")]);
        assert_eq!(c.classify(&Method::OPTIONS, &plain), Preflight::No);
        let r = c.preflight_response();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert_eq!(r.headers()["access-control-allow-headers"], "Authorization");
    }
}
