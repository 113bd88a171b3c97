//! `hlspipe serve --auth jwt`: the playback API behind the site's login token, through the real
//! binary. A PEM public key (RS256) with a titles claim; then a JWKS served on 127.0.0.1 and
//! rotated while the server runs. Each refusal is a 401 with `error="invalid_token"` and a
//! warn line that says why, never the token.

use crate::support::edge::{Server, TOKEN};
use crate::support::{hlspipe, repo_root};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ISSUER: &str = "https://login.example.com/";
const AUDIENCE: &str = "hlspipe-playback";
const EP1: &str = "/v1/titles/shows/ep1/playback";
const EP10: &str = "/v1/titles/shows/ep10/playback";

fn key_path(name: &str) -> String {
    repo_root()
        .join("fixtures/keys")
        .join(name)
        .display()
        .to_string()
}

fn der(name: &str) -> Vec<u8> {
    let b64: String = std::fs::read_to_string(key_path(name))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn claims(titles: &[&str]) -> serde_json::Value {
    json!({"sub": "viewer-1", "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 600, "titles": titles})
}

fn sign(kid: Option<&str>, claims: &serde_json::Value, key_file: &str) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_owned);
    let key = EncodingKey::from_rsa_der(&der(key_file));
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn jwt_args<'a>(key: &'a [&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--auth", "jwt", "--jwt-issuer", ISSUER];
    args.extend(["--jwt-audience", AUDIENCE, "--jwt-titles-claim", "titles"]);
    args.extend(key);
    args
}

/// Waits (briefly) for a stderr line containing every one of `words`.
fn logged(server: &Server, words: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let lines = server.stderr_lines();
        if let Some(line) = lines.iter().find(|l| words.iter().all(|w| l.contains(w))) {
            return line.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no log line with {words:?} in {lines:#?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A 401 with the RFC 6750 challenge and a JSON body, and a warn line with `reason`.
fn assert_refused(server: &Server, token: &str, reason: &str) {
    let r = server.get(EP1, &[("Authorization", &bearer(token))]);
    assert_eq!(r.status, 401, "{reason}: {}", r.text());
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"hlspipe\", error=\"invalid_token\"")
    );
    assert_eq!(r.json()["error"], "unauthorized");
    assert!(r.all("set-cookie").is_empty());
    let line = logged(server, &["WARN", reason]);
    assert!(!line.contains(token), "the token was logged: {line}");
}

#[test]
fn jwt_from_a_pem_key_gives_cookies_for_the_titles_it_lists() {
    let key = key_path("rsa2048.pub.pem");
    let server = Server::start(&jwt_args(&["--jwt-public-key", &key]));
    let r = server.get(EP1, &[]);
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"hlspipe\"")
    );

    let token = sign(None, &claims(&["shows/ep1"]), "rsa2048.pkcs1.pem");
    let r = server.get(EP1, &[("Authorization", &bearer(&token))]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.all("set-cookie").len(), 3);
    // `shows/ep1` does not open `shows/ep10`: whole path segments only.
    let r = server.get(EP10, &[("Authorization", &bearer(&token))]);
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["title"], "shows/ep10");
    assert!(r.all("set-cookie").is_empty());
    logged(&server, &["WARN", "shows/ep10", "allowed prefixes"]);

    let folder = sign(None, &claims(&["shows/"]), "rsa2048.pkcs1.pem");
    let r = server.get(EP10, &[("Authorization", &bearer(&folder))]);
    assert_eq!(r.status, 200, "{}", r.text());
    let mut no_claim = claims(&[]);
    no_claim.as_object_mut().unwrap().remove("titles");
    let no_claim = sign(None, &no_claim, "rsa2048.pkcs1.pem");
    let r = server.get(EP1, &[("Authorization", &bearer(&no_claim))]);
    assert_eq!(r.status, 403, "an absent claim allows nothing");
}

#[test]
fn jwt_refusals_through_serve_are_401_with_the_reason_logged() {
    let key = key_path("rsa2048.pub.pem");
    let server = Server::start(&jwt_args(&["--jwt-public-key", &key]));
    let signed = |change: &dyn Fn(&mut serde_json::Value)| {
        let mut c = claims(&["shows/"]);
        change(&mut c);
        sign(None, &c, "rsa2048.pkcs1.pem")
    };
    assert_refused(
        &server,
        &signed(&|c| c["exp"] = json!(now() - 600)),
        "expired",
    );
    assert_refused(
        &server,
        &signed(&|c| c["nbf"] = json!(now() + 600)),
        "not yet valid",
    );
    assert_refused(
        &server,
        &signed(&|c| c["aud"] = json!("other")),
        "wrong audience",
    );
    assert_refused(
        &server,
        &signed(&|c| c["iss"] = json!("https://x/")),
        "wrong issuer",
    );

    let b64 = |v: &serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none"})),
        b64(&claims(&["shows/"]))
    );
    assert_refused(&server, &none, "alg \"none\"");
    let pem = std::fs::read(key_path("rsa2048.pub.pem")).unwrap();
    let hs256 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(&["shows/"]),
        &EncodingKey::from_secret(&pem).unwrap(),
    )
    .unwrap();
    assert_refused(&server, &hs256, "signed with HS256");
    let good = signed(&|_| {});
    let parts: Vec<&str> = good.split('.').collect();
    let tampered = format!("{}.{}.{}", parts[0], b64(&claims(&["films/"])), parts[2]);
    assert_refused(&server, &tampered, "bad signature");
}

/// A one-route HTTP/1.1 server on 127.0.0.1 answering every request with `body`.
fn jwks_server(body: Arc<Mutex<String>>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
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

fn jwk(kid: &str, pub_pem: &str) -> serde_json::Value {
    use rsa::pkcs8::DecodePublicKey;
    use rsa::traits::PublicKeyParts;
    let pem = std::fs::read_to_string(key_path(pub_pem)).unwrap();
    let key = rsa::RsaPublicKey::from_public_key_pem(&pem).unwrap();
    let b64 = |b: Vec<u8>| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    json!({"kty": "RSA", "kid": kid, "alg": "RS256", "n": b64(key.n().to_bytes_be()), "e": b64(key.e().to_bytes_be())})
}

#[test]
fn jwt_from_a_jwks_url_follows_key_rotation() {
    let body = Arc::new(Mutex::new(
        json!({"keys": [jwk("k1", "rsa2048.pub.pem")]}).to_string(),
    ));
    let url = jwks_server(Arc::clone(&body));
    let key = ["--jwt-jwks-url", &url, "--jwt-jwks-min-refresh", "1"];
    let server = Server::start(&jwt_args(&key));
    let k1 = sign(Some("k1"), &claims(&["shows/"]), "rsa2048.pkcs1.pem");
    let r = server.get(EP1, &[("Authorization", &bearer(&k1))]);
    assert_eq!(r.status, 200, "{}", r.text());

    // The provider rotates: k2 in, k1 out. A k2 token makes the server refetch the set.
    *body.lock().unwrap() = json!({"keys": [jwk("k2", "rsa2048-second.pub.pem")]}).to_string();
    std::thread::sleep(Duration::from_millis(1100));
    let k2 = sign(Some("k2"), &claims(&["shows/"]), "rsa2048-second.pkcs1.pem");
    let r = server.get(EP1, &[("Authorization", &bearer(&k2))]);
    assert_eq!(r.status, 200, "{}", r.text());
    // k1 is gone from the set now, and a kid nobody publishes is refused.
    assert_refused(&server, &k1, "unknown key id \"k1\"");
    let k3 = sign(Some("k3"), &claims(&["shows/"]), "rsa2048.pkcs1.pem");
    assert_refused(&server, &k3, "unknown key id \"k3\"");
}

#[test]
fn serve_refuses_contradictory_auth_flags() {
    let key = key_path("rsa2048.pkcs1.pem");
    let pubkey = key_path("rsa2048.pub.pem");
    let run = |extra: &[&str]| {
        let mut args = vec!["serve", "--private-key", &key, "--key-pair-id", "K2CLI"];
        args.extend(["--store", "file:///nonexistent", "--listen", "127.0.0.1:0"]);
        args.extend(extra);
        let out = hlspipe().args(&args).output().unwrap();
        assert!(!out.status.success(), "{extra:?} accepted");
        // No authoriser at all is a usage error; contradictions and bad keys are errors.
        let usage = extra.is_empty();
        assert_eq!(
            out.status.code(),
            Some(if usage { 2 } else { 1 }),
            "{extra:?}"
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert!(run(&[]).contains("--auth"));
    assert!(run(&["--auth", "jwt"]).contains("--jwt-public-key"));
    assert!(run(&["--auth", "jwt", "--token", TOKEN]).contains("--token"));
    assert!(run(&["--auth", "bearer", "--jwt-public-key", &pubkey]).contains("--auth jwt"));
    assert!(
        run(&["--no-auth", "--auth", "jwt", "--jwt-public-key", &pubkey]).contains("--no-auth")
    );
    assert!(run(&["--auth", "jwt", "--jwt-public-key", &key]).contains("public key"));
}
