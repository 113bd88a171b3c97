//! Every refusal the issue lists, each with the reason the log gets; then the JWKS cache
//! against a key set served on 127.0.0.1 and rotated.

use super::*;
use crate::delivery::auth::JwksSettings;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

const ISSUER: &str = "https://login.example.com/";
const AUDIENCE: &str = "hlspipe-playback";

fn key_file(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/fixtures/keys/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// The DER inside a one-block PEM file.
fn der(name: &str) -> Vec<u8> {
    let b64: String = key_file(name)
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

fn rsa_signer() -> EncodingKey {
    EncodingKey::from_rsa_der(&der("rsa2048.pkcs1.pem"))
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn claims() -> serde_json::Value {
    json!({"sub": "viewer-1", "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 600, "iat": now()})
}

fn token(
    alg: Algorithm,
    kid: Option<&str>,
    claims: &serde_json::Value,
    key: &EncodingKey,
) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn rs256(claims: &serde_json::Value) -> String {
    token(Algorithm::RS256, None, claims, &rsa_signer())
}

fn settings() -> JwtSettings {
    JwtSettings {
        issuer: Some(ISSUER.into()),
        audience: Some(AUDIENCE.into()),
        leeway: 60,
        titles_claim: None,
    }
}

fn rsa_pem_authoriser(settings: JwtSettings) -> JwtAuthoriser {
    let keys = JwtKeys::public_key_pem(&key_file("rsa2048.pub.pem")).unwrap();
    JwtAuthoriser::new(keys, settings).unwrap()
}

/// The refusal's reason, asserting it is a 401 with `invalid_token`.
async fn refused(authoriser: &JwtAuthoriser, token: &str) -> String {
    let refusal = authoriser.verify(token).await.unwrap_err();
    assert!(refusal.invalid_token);
    assert!(
        !refusal.reason.contains(token),
        "the reason never quotes the token"
    );
    refusal.reason
}

fn with(mut claims: serde_json::Value, name: &str, value: serde_json::Value) -> serde_json::Value {
    claims[name] = value;
    claims
}

#[tokio::test]
async fn a_valid_rs256_token_from_a_pem_key_is_accepted() {
    let authoriser = rsa_pem_authoriser(settings());
    assert_eq!(
        authoriser.verify(&rs256(&claims())).await,
        Ok(Grant::AnyTitle)
    );
    // `aud` may be a list that contains ours (RFC 7519 § 4.1.3).
    let listed = with(claims(), "aud", json!(["other", AUDIENCE]));
    assert_eq!(
        authoriser.verify(&rs256(&listed)).await,
        Ok(Grant::AnyTitle)
    );
}

#[tokio::test]
async fn expired_and_not_yet_valid_tokens_are_refused_beyond_the_leeway() {
    let authoriser = rsa_pem_authoriser(settings());
    let expired = with(claims(), "exp", json!(now() - 120));
    assert!(refused(&authoriser, &rs256(&expired))
        .await
        .contains("expired"));
    let just_expired = with(claims(), "exp", json!(now() - 30));
    assert!(
        authoriser.verify(&rs256(&just_expired)).await.is_ok(),
        "inside the leeway"
    );
    let early = with(claims(), "nbf", json!(now() + 120));
    assert!(refused(&authoriser, &rs256(&early))
        .await
        .contains("not yet valid"));
    let mut no_exp = claims();
    no_exp.as_object_mut().unwrap().remove("exp");
    assert!(refused(&authoriser, &rs256(&no_exp))
        .await
        .contains("\"exp\""));
}

#[tokio::test]
async fn wrong_audience_and_wrong_issuer_are_refused() {
    let authoriser = rsa_pem_authoriser(settings());
    let aud = with(claims(), "aud", json!("someone-else"));
    assert!(refused(&authoriser, &rs256(&aud))
        .await
        .contains("audience"));
    let iss = with(claims(), "iss", json!("https://evil.example.com/"));
    assert!(refused(&authoriser, &rs256(&iss)).await.contains("issuer"));
    let mut no_iss = claims();
    no_iss.as_object_mut().unwrap().remove("iss");
    assert!(refused(&authoriser, &rs256(&no_iss))
        .await
        .contains("\"iss\""));
}

#[tokio::test]
async fn alg_none_is_refused() {
    let authoriser = rsa_pem_authoriser(settings());
    let b64 = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let unsigned = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "typ": "JWT"})),
        b64(claims())
    );
    assert!(refused(&authoriser, &unsigned).await.contains("\"none\""));
    let shouting = format!("{}.{}.", b64(json!({"alg": "NONE"})), b64(claims()));
    assert!(refused(&authoriser, &shouting).await.contains("none"));
}

#[tokio::test]
async fn an_hs256_token_is_refused_by_an_rs256_configuration() {
    // The classic confusion: HMAC keyed with the RSA public key the server trusts.
    let authoriser = rsa_pem_authoriser(settings());
    let secret = EncodingKey::from_secret(key_file("rsa2048.pub.pem").as_bytes()).unwrap();
    let forged = token(Algorithm::HS256, None, &claims(), &secret);
    let reason = refused(&authoriser, &forged).await;
    assert!(
        reason.contains("HS256") && reason.contains("RS256"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_tampered_payload_is_refused() {
    let authoriser = rsa_pem_authoriser(settings());
    let good = rs256(&claims());
    let parts: Vec<&str> = good.split('.').collect();
    let other = with(claims(), "sub", json!("viewer-2"));
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(other.to_string());
    let tampered = format!("{}.{payload}.{}", parts[0], parts[2]);
    assert!(refused(&authoriser, &tampered)
        .await
        .contains("bad signature"));
    assert!(refused(&authoriser, "not.a.jwt")
        .await
        .contains("malformed"));
    assert!(refused(&authoriser, "garbage").await.contains("malformed"));
}

#[tokio::test]
async fn es256_and_hs256_configurations_take_their_algorithm_only() {
    let ec = JwtKeys::public_key_pem(&key_file("ec-p256.pub.pem")).unwrap();
    let ec = JwtAuthoriser::new(ec, settings()).unwrap();
    let ec_signer = EncodingKey::from_ec_der(&der("ec-p256.pkcs8.pem"));
    assert!(ec
        .verify(&token(Algorithm::ES256, None, &claims(), &ec_signer))
        .await
        .is_ok());
    assert!(refused(&ec, &rs256(&claims())).await.contains("ES256"));

    let secret = b"0123456789abcdef0123456789abcdef";
    let hs = JwtAuthoriser::new(JwtKeys::hs256_secret(secret).unwrap(), settings()).unwrap();
    let signed = token(
        Algorithm::HS256,
        None,
        &claims(),
        &EncodingKey::from_secret(secret).unwrap(),
    );
    assert!(hs.verify(&signed).await.is_ok());
    assert!(refused(&hs, &rs256(&claims())).await.contains("HS256"));
    let wrong = EncodingKey::from_secret(b"another secret, 32 bytes or more!!").unwrap();
    let bad = token(Algorithm::HS256, None, &claims(), &wrong);
    assert!(refused(&hs, &bad).await.contains("bad signature"));
}

#[test]
fn configurations_are_checked() {
    assert!(JwtKeys::hs256_secret(b"too short").is_err());
    assert!(JwtKeys::public_key_pem("not a key").is_err());
    assert!(
        JwtKeys::public_key_pem(&key_file("rsa2048.pkcs1.pem")).is_err(),
        "a private key"
    );
    let keys = || JwtKeys::public_key_pem(&key_file("rsa2048.pub.pem")).unwrap();
    let long_leeway = JwtSettings {
        leeway: 3600,
        ..settings()
    };
    assert!(JwtAuthoriser::new(keys(), long_leeway).is_err());
    let empty_claim = JwtSettings {
        titles_claim: Some(String::new()),
        ..settings()
    };
    assert!(JwtAuthoriser::new(keys(), empty_claim).is_err());
}

#[tokio::test]
async fn the_titles_claim_becomes_the_grant() {
    let authoriser = rsa_pem_authoriser(JwtSettings {
        titles_claim: Some("titles".into()),
        ..settings()
    });
    let listed = with(claims(), "titles", json!(["shows/", "films/one"]));
    assert_eq!(
        authoriser.verify(&rs256(&listed)).await,
        Ok(Grant::prefixes(&["shows/", "films/one"]))
    );
    // Absent, empty, or not a list: nothing.
    let nothing = Grant::Prefixes(Vec::new());
    assert_eq!(
        authoriser.verify(&rs256(&claims())).await,
        Ok(nothing.clone())
    );
    let empty = with(claims(), "titles", json!([]));
    assert_eq!(authoriser.verify(&rs256(&empty)).await, Ok(nothing.clone()));
    let string = with(claims(), "titles", json!("shows/"));
    assert_eq!(authoriser.verify(&rs256(&string)).await, Ok(nothing));
}

/// A JWK for a fixture public key.
fn rsa_jwk(kid: &str, pub_pem: &str) -> serde_json::Value {
    use rsa::pkcs8::DecodePublicKey;
    use rsa::traits::PublicKeyParts;
    let key = rsa::RsaPublicKey::from_public_key_pem(&key_file(pub_pem)).unwrap();
    let b64 = |b: Vec<u8>| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
           "n": b64(key.n().to_bytes_be()), "e": b64(key.e().to_bytes_be())})
}

/// A one-route HTTP/1.1 server on 127.0.0.1 that answers every request with `body`, counting
/// the requests.
fn jwks_server(body: Arc<Mutex<String>>, hits: Arc<AtomicUsize>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            hits.fetch_add(1, Ordering::SeqCst);
            let body = body.lock().unwrap().clone();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}/.well-known/jwks.json")
}

#[tokio::test]
async fn an_unknown_kid_refetches_the_jwks_once_per_period() {
    let body = Arc::new(Mutex::new(
        json!({"keys": [rsa_jwk("k1", "rsa2048.pub.pem")]}).to_string(),
    ));
    let hits = Arc::new(AtomicUsize::new(0));
    let url = jwks_server(Arc::clone(&body), Arc::clone(&hits));
    let period = Duration::from_millis(400);
    let jwks = Jwks::new(
        &url,
        JwksSettings {
            min_refresh: period,
            ..JwksSettings::default()
        },
    );
    let authoriser =
        JwtAuthoriser::new(JwtKeys::Jwks(Arc::new(jwks.unwrap())), settings()).unwrap();
    let k1 = token(Algorithm::RS256, Some("k1"), &claims(), &rsa_signer());
    assert!(authoriser.verify(&k1).await.is_ok());
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // A kid that is not in the set: one refetch, then none within the period.
    let second = EncodingKey::from_rsa_der(&der("rsa2048-second.pkcs1.pem"));
    let k2 = token(Algorithm::RS256, Some("k2"), &claims(), &second);
    tokio::time::sleep(period).await;
    assert!(refused(&authoriser, &k2)
        .await
        .contains("unknown key id \"k2\""));
    assert!(refused(&authoriser, &k2).await.contains("unknown key id"));
    assert_eq!(hits.load(Ordering::SeqCst), 2, "rate-limited");

    // The provider rotates k2 in: accepted once the period has passed, k1 dropped.
    *body.lock().unwrap() = json!({"keys": [rsa_jwk("k2", "rsa2048-second.pub.pem")]}).to_string();
    tokio::time::sleep(period).await;
    assert!(authoriser.verify(&k2).await.is_ok());
    assert_eq!(hits.load(Ordering::SeqCst), 3);
    // k1 is no longer published; its token now names an unknown kid (rate-limited: no fetch).
    assert!(refused(&authoriser, &k1).await.contains("unknown key id"));
    let no_kid = rs256(&claims());
    assert!(refused(&authoriser, &no_kid).await.contains("no key id"));
    // A k2 token whose header claims HS256 is refused before any key is used.
    let forged = token(
        Algorithm::HS256,
        Some("k2"),
        &claims(),
        &EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef").unwrap(),
    );
    assert!(refused(&authoriser, &forged).await.contains("HS256"));
}

#[tokio::test]
async fn an_oversized_or_unreachable_jwks_keeps_the_keys_known() {
    let body = Arc::new(Mutex::new(
        json!({"keys": [rsa_jwk("k1", "rsa2048.pub.pem")]}).to_string(),
    ));
    let hits = Arc::new(AtomicUsize::new(0));
    let url = jwks_server(Arc::clone(&body), Arc::clone(&hits));
    let settings = JwksSettings {
        min_refresh: Duration::ZERO,
        max_bytes: 4096,
        ..JwksSettings::default()
    };
    let jwks = Jwks::new(&url, settings).unwrap();
    assert_eq!(jwks.refresh().await, Ok(1));
    *body.lock().unwrap() = format!("{{\"keys\": [], \"pad\": \"{}\"}}", "x".repeat(8192));
    let err = jwks.refresh().await.unwrap_err();
    assert!(err.contains("at most 4096 bytes"), "{err}");
    assert!(
        jwks.key("k1").await.is_some(),
        "a failed fetch keeps the old keys"
    );
    let unreachable = Jwks::new("http://127.0.0.1:9/jwks.json", JwksSettings::default()).unwrap();
    assert!(unreachable.refresh().await.is_err());
}
