//! `hlspipe serve` over HTTP: the playback API (bearer token, cookies, title states) and the
//! edge (CloudFront's decisions, ranges, conditional requests, CORS, the access log), talking
//! to the real binary with a raw HTTP/1.1 client.

use crate::support;
use crate::support::edge::{
    self, cookie_pairs, cookies_for, first_segment, now, request, Server, KEY_PAIR_ID, PRIVATE_KEY,
    TOKEN,
};

const AUTH: (&str, &str) = ("Authorization", "Bearer test-token-0123456789abcdef");
const ORIGIN: &str = "http://player.test:3000";

fn serve() -> Server {
    Server::start(&["--token", TOKEN, "--allow-origin", ORIGIN])
}

/// The API's cookies for a title, as one `Cookie` request header.
fn api_cookie_header(server: &Server, title: &str) -> String {
    let r = server.get(&format!("/v1/titles/{title}/playback"), &[AUTH]);
    assert_eq!(r.status, 200, "{}", r.text());
    cookie_pairs(&r.all("set-cookie")).join("; ")
}

#[test]
fn healthz_needs_no_token() {
    let server = serve();
    let r = server.get("/healthz", &[]);
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
}

#[test]
fn api_refuses_missing_and_wrong_tokens() {
    let server = serve();
    let r = server.get("/v1/titles/shows/ep1/playback", &[]);
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"hlspipe\"")
    );
    assert!(r.all("set-cookie").is_empty());

    for wrong in [
        "Bearer test-token-0123456789abcdeX",
        "Bearer test-token-0123456789abcde",
        "Basic dGVzdA==",
        "Bearer",
    ] {
        let r = server.get("/v1/titles/shows/ep1/playback", &[("Authorization", wrong)]);
        assert_eq!(r.status, 401, "{wrong}");
        assert!(
            r.header("www-authenticate").unwrap().starts_with("Bearer"),
            "{wrong}"
        );
        assert!(r.all("set-cookie").is_empty());
    }
    // The scheme is case-insensitive.
    let r = server.get(
        "/v1/titles/shows/ep1/playback",
        &[("Authorization", &format!("bearer {TOKEN}"))],
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn api_issues_three_cookies_for_the_title_folder() {
    let server = serve();
    let before = now();
    let r = server.get("/v1/titles/shows/ep1/playback", &[AUTH]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let body = r.json();
    assert_eq!(
        body["master_url"],
        format!("{}master.m3u8", server.title_url("ep1"))
    );
    let expires = body["expires_at"].as_u64().unwrap();
    assert!(
        expires >= before + 3600 && expires <= now() + 3600 + 60,
        "{expires}"
    );
    assert_eq!(expires % 60, 0, "expiries are rounded to the minute");

    let set_cookies = r.all("set-cookie");
    assert_eq!(set_cookies.len(), 3, "{set_cookies:?}");
    for (cookie, name) in set_cookies.iter().zip([
        "CloudFront-Policy=",
        "CloudFront-Signature=",
        "CloudFront-Key-Pair-Id=K2EDGETESTKEY",
    ]) {
        assert!(cookie.starts_with(name), "{cookie}");
        for attribute in ["; Path=/", "; Secure", "; HttpOnly", "; SameSite=Lax"] {
            assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
        }
    }
    // The policy covers the title's folder and nothing wider.
    let policy = cookie_pairs(&set_cookies)[0]
        .strip_prefix("CloudFront-Policy=")
        .unwrap()
        .to_owned();
    let policy = hlspipe::delivery::sign::decode_cloudfront_base64(&policy).unwrap();
    let policy = String::from_utf8(policy).unwrap();
    assert_eq!(
        policy,
        format!(
            r#"{{"Statement":[{{"Resource":"{}*","Condition":{{"DateLessThan":{{"AWS:EpochTime":{expires}}}}}}}]}}"#,
            server.title_url("ep1")
        )
    );

    // Asking again in the same minute gives the same cookies (issued once, then cached).
    let again = server.get("/v1/titles/shows/ep1/playback", &[AUTH]);
    if again.json()["expires_at"] == body["expires_at"] {
        assert_eq!(again.all("set-cookie"), set_cookies);
    }
}

#[test]
fn api_cookie_attributes_come_from_configuration() {
    let server = Server::start_with(
        &[
            "--no-auth",
            "--cookie-domain",
            "example.com",
            "--same-site",
            "none",
        ],
        &[("HLSPIPE_COOKIE_TTL", "120")],
    );
    let before = now();
    let r = server.get("/v1/titles/shows/ep1/playback", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    let expires = r.json()["expires_at"].as_u64().unwrap();
    assert!(
        expires >= before + 120 && expires <= now() + 180,
        "{expires}"
    );
    for cookie in r.all("set-cookie") {
        assert!(cookie.contains("; Domain=example.com"), "{cookie}");
        assert!(cookie.contains("; SameSite=None"), "{cookie}");
    }
}

#[test]
fn token_from_the_environment() {
    let server = Server::start_with(&[], &[("HLSPIPE_TOKEN", TOKEN)]);
    assert_eq!(server.get("/v1/titles/shows/ep1/playback", &[]).status, 401);
    assert_eq!(
        server.get("/v1/titles/shows/ep1/playback", &[AUTH]).status,
        200
    );
}

#[test]
fn serve_requires_a_token_or_no_auth() {
    let out = support::hlspipe()
        .args([
            "serve",
            "--key-pair-id",
            "K",
            "--private-key",
            edge::PRIVATE_KEY,
        ])
        .env_remove("HLSPIPE_TOKEN")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn api_unknown_and_bad_titles() {
    let server = serve();
    let r = server.get("/v1/titles/shows/ep2/playback", &[AUTH]);
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(r.json()["error"], "unknown title");
    assert!(r.all("set-cookie").is_empty());
    // A rendition folder is not a title.
    let r = server.get("/v1/titles/shows/playback", &[AUTH]);
    assert_eq!(r.status, 404);

    for bad in [
        "/v1/titles/shows/%2e%2e/ep1/playback",
        "/v1/titles/shows/../ep1/playback",
        "/v1/titles/shows/ep*/playback",
        "/v1/titles/shows/ep%3F/playback",
        "/v1/titles/shows//ep1/playback",
        "/v1/titles//playback",
    ] {
        let r = server.get(bad, &[AUTH]);
        assert!(
            r.status == 400 || r.status == 404,
            "{bad}: {} {}",
            r.status,
            r.text()
        );
        assert!(r.all("set-cookie").is_empty(), "{bad}");
    }
}

#[test]
fn api_409_for_titles_not_complete() {
    let server = serve();
    let r = server.get("/v1/titles/shows/processing/playback", &[AUTH]);
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.json()["state"], "processing");
    assert!(r.all("set-cookie").is_empty());

    let r = server.get("/v1/titles/shows/failed/playback", &[AUTH]);
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.json()["state"], "failed");
    assert_eq!(r.json()["error"], "moov: missing box 'stsz'");
}

/// A title being published progressively plays already: cookies, and the state beside them.
#[test]
fn api_gives_cookies_for_a_title_being_published_progressively() {
    let server = serve();
    let r = server.get("/v1/titles/shows/growing/playback", &[AUTH]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["state"], "publishing");
    assert!(!r.all("set-cookie").is_empty());
}

#[test]
fn edge_denies_without_cookies_with_cloudfronts_body() {
    let server = serve();
    let r = server.get("/hls/shows/ep1.hls/master.m3u8", &[]);
    assert_eq!(r.status, 403);
    assert_eq!(r.header("content-type"), Some("text/xml"));
    assert_eq!(
        r.text(),
        r#"<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access denied</Message></Error>"#
    );
    // Missing objects are denied too when there are no credentials (no probing).
    assert_eq!(
        server.get("/hls/shows/ep1.hls/nothing.m4s", &[]).status,
        403
    );
}

#[test]
fn edge_serves_the_title_with_the_apis_cookies() {
    let server = serve();
    let cookie = api_cookie_header(&server, "shows/ep1");
    let with = [("Cookie", cookie.as_str())];

    let master = server.get("/hls/shows/ep1.hls/master.m3u8", &with);
    assert_eq!(master.status, 200, "{}", master.text());
    assert_eq!(
        master.header("content-type"),
        Some("application/vnd.apple.mpegurl")
    );
    assert_eq!(master.header("cache-control"), Some("max-age=60"));
    assert!(master.text().starts_with("#EXTM3U"));

    // Every object of the title: bytes and headers as stored.
    let root = edge::title_dir("ep1");
    for file in edge::title_files("ep1") {
        let r = server.get(&format!("/hls/shows/ep1.hls/{file}"), &with);
        assert_eq!(r.status, 200, "{file}");
        assert_eq!(r.body, std::fs::read(root.join(&file)).unwrap(), "{file}");
        assert_eq!(
            r.header("content-length").map(str::to_owned),
            Some(r.body.len().to_string()),
            "{file}"
        );
        if file.ends_with(".m4s") {
            assert_eq!(r.header("content-type"), Some("video/mp4"));
            assert_eq!(
                r.header("cache-control"),
                Some("public, max-age=31536000, immutable")
            );
        }
    }

    // A missing object of the title, once allowed: 404 (see src/edge.rs for why not 403).
    let r = server.get("/hls/shows/ep1.hls/v/nothing.m4s", &with);
    assert_eq!(r.status, 404);
    assert!(r.text().contains("<Code>NoSuchKey</Code>"));

    // The access log shows the requests in Combined Log Format.
    let lines = server.access_log_lines();
    let segment = first_segment("ep1");
    let line = lines
        .iter()
        .find(|l| {
            l.contains(&format!(
                "\"GET /hls/shows/ep1.hls/{segment} HTTP/1.1\" 200 "
            ))
        })
        .unwrap_or_else(|| panic!("{lines:#?}"));
    assert!(line.starts_with("127.0.0.1 - - ["), "{line}");
    assert!(line.ends_with("\"-\" \"-\""), "{line}");
}

#[test]
fn edge_denies_other_titles_expired_and_tampered_cookies() {
    let server = serve();
    let ep1 = api_cookie_header(&server, "shows/ep1");
    let segment = first_segment("ep10");

    // ep1's cookies open ep1/, not ep10/ (the resource ends in `/*`).
    for path in [
        "/hls/shows/ep10.hls/master.m3u8".to_owned(),
        format!("/hls/shows/ep10.hls/{segment}"),
    ] {
        let r = server.get(&path, &[("Cookie", &ep1)]);
        assert_eq!(r.status, 403, "{path}");
    }

    let expired = cookies_for(&server.title_url("ep1"), now() - 1).cookie_header();
    let r = server.get("/hls/shows/ep1.hls/master.m3u8", &[("Cookie", &expired)]);
    assert_eq!(r.status, 403);
    let valid = cookies_for(&server.title_url("ep1"), now() + 600).cookie_header();
    let r = server.get("/hls/shows/ep1.hls/master.m3u8", &[("Cookie", &valid)]);
    assert_eq!(r.status, 200);

    // One character in the middle of the signature changed: still CloudFront base64, but not
    // the signature of this policy.
    let cookies = cookies_for(&server.title_url("ep1"), now() + 600);
    let mut signature = cookies.signature.as_bytes().to_vec();
    signature[100] = if signature[100] == b'A' { b'B' } else { b'A' };
    let signature = String::from_utf8(signature).unwrap();
    let tampered = format!(
        "CloudFront-Policy={}; CloudFront-Signature={signature}; CloudFront-Key-Pair-Id={}",
        cookies.policy, cookies.key_pair_id
    );
    let r = server.get("/hls/shows/ep1.hls/master.m3u8", &[("Cookie", &tampered)]);
    assert_eq!(r.status, 403);

    // A policy widened by hand (ep1* would open ep10/) without re-signing.
    let wide = cookies_for(&server.title_url("ep1"), now() + 600);
    let policy =
        String::from_utf8(hlspipe::delivery::sign::decode_cloudfront_base64(&wide.policy).unwrap())
            .unwrap()
            .replace("/ep1/*", "/ep1*");
    let forged = format!(
        "CloudFront-Policy={}; CloudFront-Signature={}; CloudFront-Key-Pair-Id={}",
        hlspipe::delivery::sign::encode_cloudfront_base64(policy.as_bytes()),
        wide.signature,
        wide.key_pair_id
    );
    assert_eq!(
        server
            .get("/hls/shows/ep10.hls/master.m3u8", &[("Cookie", &forged)])
            .status,
        403
    );
}

#[test]
fn edge_accepts_signed_urls() {
    let server = serve();
    let url = format!("{}master.m3u8", server.title_url("ep1"));
    let signed = edge::signer().signed_url_canned(&url, now() + 600).unwrap();
    let target = signed.strip_prefix(&server.base_url()).unwrap();
    assert_eq!(server.get(target, &[]).status, 200);
    // The canned policy is for exactly that URL.
    let other = target.replace("master.m3u8", "manifest.json");
    assert_eq!(server.get(&other, &[]).status, 403);
}

#[test]
fn edge_ranges_head_and_conditional_requests() {
    let server = serve();
    let cookie = api_cookie_header(&server, "shows/ep1");
    let segment = format!("/hls/shows/ep1.hls/{}", first_segment("ep1"));
    let bytes = std::fs::read(edge::title_dir("ep1").join(first_segment("ep1"))).unwrap();
    let len = bytes.len();
    let c = ("Cookie", cookie.as_str());

    let full = server.get(&segment, &[c]);
    assert_eq!(full.status, 200);
    assert_eq!(full.header("accept-ranges"), Some("bytes"));
    let etag = full.header("etag").unwrap().to_owned();
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && etag.len() == 34,
        "{etag}"
    );
    let last_modified = full.header("last-modified").unwrap().to_owned();
    let last_modified = last_modified.as_str();
    assert!(last_modified.ends_with(" GMT"), "{last_modified}");

    let r = server.get(&segment, &[c, ("Range", "bytes=100-199")]);
    assert_eq!(r.status, 206);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes 100-199/{len}").as_str())
    );
    assert_eq!(r.header("content-length"), Some("100"));
    assert_eq!(r.body, bytes[100..200]);

    let r = server.get(&segment, &[c, ("Range", "bytes=-10")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.body, bytes[len - 10..]);

    let r = server.get(&segment, &[c, ("Range", &format!("bytes={len}-"))]);
    assert_eq!(r.status, 416);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes */{len}").as_str())
    );

    // Several ranges: the whole object.
    let r = server.get(&segment, &[c, ("Range", "bytes=0-1,5-6")]);
    assert_eq!((r.status, r.body.len()), (200, len));

    // If-Range with another ETag: the Range is ignored.
    let r = server.get(
        &segment,
        &[c, ("Range", "bytes=0-9"), ("If-Range", "\"other\"")],
    );
    assert_eq!((r.status, r.body.len()), (200, len));
    let r = server.get(&segment, &[c, ("Range", "bytes=0-9"), ("If-Range", &etag)]);
    assert_eq!((r.status, r.body.len()), (206, 10));

    let head = request(server.addr, "HEAD", &segment, &[c]);
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(len.to_string().as_str())
    );
    assert_eq!(head.header("etag"), Some(etag.as_str()));
    assert_eq!(head.header("content-type"), Some("video/mp4"));
    assert!(head.body.is_empty());

    let r = server.get(&segment, &[c, ("If-None-Match", &etag)]);
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    let r = server.get(&segment, &[c, ("If-None-Match", "\"something-else\"")]);
    assert_eq!(r.status, 200);
    let r = server.get(&segment, &[c, ("If-Modified-Since", last_modified)]);
    assert_eq!(r.status, 304);
    let r = server.get(
        &segment,
        &[c, ("If-Modified-Since", "Thu, 01 Jan 1970 00:00:00 GMT")],
    );
    assert_eq!(r.status, 200);

    // Conditional and ranged requests are still checked first.
    let r = server.get(
        &segment,
        &[("Range", "bytes=0-9"), ("If-None-Match", &etag)],
    );
    assert_eq!(r.status, 403);
}

#[test]
fn edge_credentialed_cors_for_allowed_origins_only() {
    let server = serve();
    let cookie = api_cookie_header(&server, "shows/ep1");
    let path = "/hls/shows/ep1.hls/master.m3u8";

    let preflight = request(
        server.addr,
        "OPTIONS",
        path,
        &[
            ("Origin", ORIGIN),
            ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Headers", "range"),
        ],
    );
    assert_eq!(preflight.status, 204);
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some(ORIGIN)
    );
    assert_eq!(
        preflight.header("access-control-allow-credentials"),
        Some("true")
    );
    assert!(preflight
        .header("access-control-allow-methods")
        .unwrap()
        .contains("GET"));
    assert!(preflight
        .header("access-control-allow-headers")
        .unwrap()
        .to_ascii_lowercase()
        .contains("range"));
    assert_eq!(preflight.header("vary"), Some("Origin"));

    let r = server.get(path, &[("Cookie", &cookie), ("Origin", ORIGIN)]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some(ORIGIN));
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(
        r.header("access-control-expose-headers"),
        Some("Content-Length, Content-Range")
    );
    assert_eq!(r.header("vary"), Some("Origin"));

    // A denied request from an allowed origin still carries CORS headers, so the player can
    // read the 403 instead of seeing an opaque network error.
    let r = server.get(path, &[("Origin", ORIGIN)]);
    assert_eq!(r.status, 403);
    assert_eq!(r.header("access-control-allow-origin"), Some(ORIGIN));

    for other in ["http://evil.test:3000", "http://player.test:3001", "null"] {
        let r = server.get(path, &[("Cookie", &cookie), ("Origin", other)]);
        assert_eq!(r.status, 200, "{other}");
        assert_eq!(r.header("access-control-allow-origin"), None, "{other}");
        assert_eq!(
            r.header("access-control-allow-credentials"),
            None,
            "{other}"
        );
        let p = request(
            server.addr,
            "OPTIONS",
            path,
            &[("Origin", other), ("Access-Control-Request-Method", "GET")],
        );
        assert_eq!(p.header("access-control-allow-origin"), None, "{other}");
        assert_ne!(p.status, 204, "{other}");
    }
}

#[test]
fn edge_refuses_paths_outside_the_title_folders() {
    let server = serve();
    let cookie = api_cookie_header(&server, "shows/ep1");
    for path in [
        "/hls/shows/ep1/../ep10.hls/master.m3u8",
        "/hls/shows/ep1/%2e%2e/ep10.hls/master.m3u8",
        "/hls/shows/ep1/.hls/master.m3u8",
    ] {
        let r = server.get(path, &[("Cookie", &cookie)]);
        assert!(r.status == 403 || r.status == 404, "{path}: {}", r.status);
        assert!(!r.text().starts_with("#EXTM3U"), "{path}");
    }
    let r = request(
        server.addr,
        "POST",
        "/hls/shows/ep1.hls/master.m3u8",
        &[("Cookie", &cookie)],
    );
    assert_eq!(r.status, 405);
}

#[test]
fn serve_stops_cleanly_on_sigterm() {
    let mut server = serve();
    assert_eq!(server.get("/healthz", &[]).status, 200);
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
}

#[test]
fn edge_checks_the_source_ip_against_the_policy() {
    use hlspipe::delivery::sign::{IpRange, Policy, TitlePrefix};
    let server = serve();
    let prefix = TitlePrefix::parse(&server.title_url("ep1")).unwrap();
    let cookie_for = |range: &str| {
        let policy =
            Policy::for_title(&prefix, now() + 600).with_source_ip(IpRange::parse(range).unwrap());
        edge::signer()
            .signed_cookies(&policy)
            .unwrap()
            .cookie_header()
    };
    // The viewer is 127.0.0.1, the peer address of the connection.
    let r = server.get(
        "/hls/shows/ep1.hls/master.m3u8",
        &[("Cookie", &cookie_for("127.0.0.0/8"))],
    );
    assert_eq!(r.status, 200);
    let r = server.get(
        "/hls/shows/ep1.hls/master.m3u8",
        &[("Cookie", &cookie_for("192.0.2.0/24"))],
    );
    assert_eq!(r.status, 403);
    // A forwarded-for header is not the viewer's address.
    let r = server.get(
        "/hls/shows/ep1.hls/master.m3u8",
        &[
            ("Cookie", &cookie_for("192.0.2.0/24")),
            ("X-Forwarded-For", "192.0.2.7"),
        ],
    );
    assert_eq!(r.status, 403);
}

/// Two `Range` headers: RFC 9110 § 5.3 and § 14.2, the whole object with 200 (the edge used
/// to answer the first with 206).
#[test]
fn two_range_headers_get_the_whole_object() {
    let server = serve();
    let cookie = api_cookie_header(&server, "shows/ep1");
    let segment = format!("/hls/shows/ep1.hls/{}", first_segment("ep1"));
    let bytes = std::fs::read(edge::title_dir("ep1").join(first_segment("ep1"))).unwrap();
    let c = ("Cookie", cookie.as_str());
    let one = server.get(&segment, &[c, ("Range", "bytes=0-9")]);
    assert_eq!((one.status, one.body.len()), (206, 10));
    let two = server.get(
        &segment,
        &[c, ("Range", "bytes=0-9"), ("Range", "bytes=20-29")],
    );
    assert_eq!(two.status, 200);
    assert_eq!(two.header("content-range"), None);
    assert_eq!(two.body, bytes);
}

/// The API behind CloudFront (`/v1/*` on the distribution's host) is called from the site's
/// pages on another origin, with credentials: its preflight is answered before the
/// authoriser, and every answer names the exact origin.
#[test]
fn api_credentialed_cors_for_allowed_origins_only() {
    let server = serve();
    let path = "/v1/titles/shows/ep1/playback";
    let preflight = server.options(
        path,
        &[
            ("Origin", ORIGIN),
            ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Headers", "authorization"),
        ],
    );
    assert_eq!(preflight.status, 204, "{}", preflight.text());
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some(ORIGIN)
    );
    assert_eq!(
        preflight.header("access-control-allow-credentials"),
        Some("true")
    );
    let allowed = preflight.header("access-control-allow-headers").unwrap();
    assert!(allowed.contains("Authorization"), "{allowed}");
    assert!(preflight
        .header("access-control-allow-methods")
        .unwrap()
        .contains("POST"));
    assert!(preflight.all("set-cookie").is_empty());

    let r = server.get(path, &[AUTH, ("Origin", ORIGIN)]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("access-control-allow-origin"), Some(ORIGIN));
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(r.header("vary"), Some("Origin"));
    assert_eq!(r.all("set-cookie").len(), 3);

    // A 401 is readable by the page too (it can then send the viewer to log in).
    let r = server.get(path, &[("Origin", ORIGIN)]);
    assert_eq!(r.status, 401);
    assert_eq!(r.header("access-control-allow-origin"), Some(ORIGIN));

    for other in ["http://evil.test:3000", "null"] {
        let p = server.options(
            path,
            &[("Origin", other), ("Access-Control-Request-Method", "GET")],
        );
        assert_eq!(p.status, 403, "{other}");
        assert_eq!(p.header("access-control-allow-origin"), None, "{other}");
        let r = server.get(path, &[AUTH, ("Origin", other)]);
        assert_eq!(r.header("access-control-allow-origin"), None, "{other}");
        assert_eq!(r.header("vary"), Some("Origin"), "{other}");
    }
}

/// Without `--edge`, `serve` is the API only (CloudFront serves the media): the CDN paths are
/// not answered from the store, and the CDN's address must be given.
#[test]
fn serve_without_edge_is_the_api_only() {
    let server = Server::start_api_only(&[
        "--token",
        TOKEN,
        "--cdn-base-url",
        "https://cdn.example.com",
    ]);
    let r = server.get("/v1/titles/shows/ep1/playback", &[AUTH]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["master_url"],
        "https://cdn.example.com/hls/shows/ep1.hls/master.m3u8"
    );
    let cookie = cookie_pairs(&r.all("set-cookie")).join("; ");
    let media = server.get("/hls/shows/ep1.hls/master.m3u8", &[("Cookie", &cookie)]);
    assert_eq!(media.status, 404);
    assert!(server.stderr_lines().iter().any(|l| l.contains("no edge")));

    let out = support::hlspipe()
        .args(["serve", "--listen", "127.0.0.1:0", "--token", TOKEN])
        .args(["--store", "file:///nonexistent"])
        .args(["--key-pair-id", KEY_PAIR_ID, "--private-key", PRIVATE_KEY])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--cdn-base-url") && stderr.contains("--edge"),
        "{stderr}"
    );
}
