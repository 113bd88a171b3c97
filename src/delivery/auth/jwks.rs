//! The identity provider's JSON Web Key Set (RFC 7517 § 5), fetched over HTTP(S) and cached.
//!
//! Keys are looked up by `kid`. A `kid` the cache does not know refetches the set, at most
//! once per `min_refresh`, so a key the provider just rotated in is accepted within one
//! request while a flood of made-up key ids costs one fetch per period, not one per request.
//! The set is also refetched when older than `max_age`, so a key the provider withdrew stops
//! being accepted. A failed fetch keeps the keys already known.
//!
//! The algorithm a key verifies is decided here, from the key (its `alg`, else its `kty` and
//! `crv`), never from the token's header (RFC 8725 § 3.1): RSA keys verify RS256 and P-256
//! keys ES256; other keys, and keys whose `use` is not `sig`, are left out.

use super::AuthConfigError;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// A verification key and the one algorithm it is used with.
pub type VerificationKey = (Arc<DecodingKey>, Algorithm);

/// How the set is fetched and kept.
#[derive(Debug, Clone)]
pub struct JwksSettings {
    /// The shortest time between two fetches caused by unknown key ids.
    pub min_refresh: Duration,
    /// The set is refetched (on the next request) once it is this old.
    pub max_age: Duration,
    /// A fetch that takes longer fails.
    pub timeout: Duration,
    /// A larger response fails: a key set is a few kilobytes.
    pub max_bytes: usize,
}

impl Default for JwksSettings {
    fn default() -> JwksSettings {
        JwksSettings {
            min_refresh: Duration::from_secs(30),
            max_age: Duration::from_secs(600),
            timeout: Duration::from_secs(5),
            max_bytes: 256 * 1024,
        }
    }
}

/// A JWKS URL and the keys last fetched from it.
pub struct Jwks {
    url: hyper::Uri,
    settings: JwksSettings,
    client: HttpsClient,
    /// An async lock: requests that miss at the same time wait for one fetch.
    state: tokio::sync::Mutex<State>,
}

#[derive(Default)]
struct State {
    keys: HashMap<String, VerificationKey>,
    fetched_at: Option<Instant>,
}

impl Jwks {
    /// `https://…` (or `http://` to a loopback address, for tests and a local provider).
    pub fn new(url: &str, settings: JwksSettings) -> Result<Jwks, AuthConfigError> {
        let bad = |reason| AuthConfigError::BadJwksUrl {
            url: url.to_owned(),
            reason,
        };
        let uri: hyper::Uri = url.parse().map_err(|_| bad("not a URL"))?;
        let host = uri.host().ok_or_else(|| bad("no host"))?;
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") if is_loopback(host) => {}
            Some("http") => return Err(bad("plain http only to a loopback address; use https")),
            _ => return Err(bad("expected an https:// URL")),
        }
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
            .map_err(|_| bad("no TLS root certificates could be loaded"))?
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector);
        Ok(Jwks {
            url: uri,
            settings,
            client,
            state: tokio::sync::Mutex::new(State::default()),
        })
    }

    /// The key with this id: from the cache, or after a (rate-limited) fetch. `None` when the
    /// provider does not publish it (or could not be reached).
    pub async fn key(&self, kid: &str) -> Option<VerificationKey> {
        let mut state = self.state.lock().await;
        let stale = state
            .fetched_at
            .is_none_or(|at| at.elapsed() >= self.settings.max_age);
        if !stale {
            if let Some(key) = state.keys.get(kid) {
                return Some(key.clone());
            }
        }
        let may_fetch = state
            .fetched_at
            .is_none_or(|at| at.elapsed() >= self.settings.min_refresh);
        if stale || may_fetch {
            self.refresh_locked(&mut state).await;
        }
        state.keys.get(kid).cloned()
    }

    /// Fetches the set now (at start-up, to find a wrong URL early); the error says why it
    /// failed, and the keys already known are kept.
    pub async fn refresh(&self) -> Result<usize, String> {
        let mut state = self.state.lock().await;
        let fetched = self.fetch().await;
        state.fetched_at = Some(Instant::now());
        let keys = fetched?;
        state.keys = keys;
        Ok(state.keys.len())
    }

    async fn refresh_locked(&self, state: &mut State) {
        let fetched = self.fetch().await;
        // A failure counts as a fetch too: an unreachable provider is not asked again at once.
        state.fetched_at = Some(Instant::now());
        match fetched {
            Ok(keys) => {
                tracing::info!(target: "hlspipe::delivery::auth", url = %self.url, keys = keys.len(), "JWKS fetched");
                state.keys = keys;
            }
            Err(reason) => {
                tracing::warn!(target: "hlspipe::delivery::auth", url = %self.url, %reason, "JWKS fetch failed; keeping the keys already known");
            }
        }
    }

    async fn fetch(&self) -> Result<HashMap<String, VerificationKey>, String> {
        let body = tokio::time::timeout(self.settings.timeout, self.get_body())
            .await
            .map_err(|_| format!("no answer within {:?}", self.settings.timeout))??;
        parse_key_set(&body)
    }

    async fn get_body(&self) -> Result<Bytes, String> {
        let request = hyper::Request::get(self.url.clone())
            .header(hyper::header::ACCEPT, "application/json")
            .body(Empty::new())
            .map_err(|e| e.to_string())?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| e.to_string())?;
        if response.status() != hyper::StatusCode::OK {
            return Err(format!("HTTP status {}", response.status()));
        }
        let limited = Limited::new(response.into_body(), self.settings.max_bytes);
        match limited.collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(e) => Err(format!(
                "reading the body (at most {} bytes): {e}",
                self.settings.max_bytes
            )),
        }
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The usable signature keys of a JWKS document, by `kid`. Keys that cannot be used are left
/// out one by one (a provider may publish encryption keys or key types we do not take); a
/// document that is not a key set at all is an error.
pub fn parse_key_set(body: &[u8]) -> Result<HashMap<String, VerificationKey>, String> {
    #[derive(serde::Deserialize)]
    struct Document {
        keys: Vec<serde_json::Value>,
    }
    let document: Document =
        serde_json::from_slice(body).map_err(|e| format!("not a JWK set: {e}"))?;
    let mut keys = HashMap::new();
    for value in document.keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
            continue;
        };
        let Some(kid) = jwk.common.key_id.clone() else {
            continue;
        };
        if let Some(key) = verification_key(&jwk) {
            keys.insert(kid, key);
        }
    }
    Ok(keys)
}

/// The key and the algorithm it verifies, when it is a signature key we take.
fn verification_key(jwk: &Jwk) -> Option<VerificationKey> {
    // RFC 7517 § 4.2: `use` is "sig" or absent for a key that verifies signatures.
    if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    let algorithm = match (&jwk.algorithm, &jwk.common.key_algorithm) {
        (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
        (AlgorithmParameters::EllipticCurve(ec), None | Some(KeyAlgorithm::ES256))
            if ec.curve == EllipticCurve::P256 =>
        {
            Algorithm::ES256
        }
        _ => return None,
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some((Arc::new(key), algorithm))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_rs256_and_es256_signature_keys_are_kept() {
        let set = serde_json::json!({"keys": [
            {"kty": "RSA", "kid": "rsa", "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw", "e": "AQAB"},
            {"kty": "RSA", "kid": "rsa-enc", "use": "enc", "n": "sXch", "e": "AQAB"},
            {"kty": "RSA", "kid": "rsa-ps", "alg": "PS256", "n": "sXch", "e": "AQAB"},
            {"kty": "EC", "kid": "p384", "crv": "P-384", "x": "AA", "y": "AA"},
            {"kty": "oct", "kid": "secret", "k": "c2VjcmV0"},
            {"kty": "RSA", "n": "sXch", "e": "AQAB"},
            {"kty": "XYZ", "kid": "unknown"}
        ]});
        let keys = parse_key_set(set.to_string().as_bytes()).unwrap();
        assert_eq!(keys.keys().collect::<Vec<_>>(), vec!["rsa"]);
        assert_eq!(keys["rsa"].1, Algorithm::RS256);
        assert!(parse_key_set(b"[]").is_err());
        assert!(parse_key_set(b"{\"keys\": []}").unwrap().is_empty());
    }

    #[test]
    fn urls_are_https_or_loopback_http() {
        let s = JwksSettings::default;
        assert!(Jwks::new("https://login.example.com/.well-known/jwks.json", s()).is_ok());
        assert!(Jwks::new("http://127.0.0.1:9000/jwks.json", s()).is_ok());
        assert!(Jwks::new("http://[::1]:9000/jwks.json", s()).is_ok());
        assert!(Jwks::new("http://localhost/jwks.json", s()).is_ok());
        assert!(Jwks::new("http://login.example.com/jwks.json", s()).is_err());
        assert!(Jwks::new("ftp://login.example.com/jwks.json", s()).is_err());
        assert!(Jwks::new("jwks.json", s()).is_err());
    }
}
