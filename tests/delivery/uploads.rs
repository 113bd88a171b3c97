//! `POST /v1/uploads` through the real `hlspipe serve --uploads` over a folder store: the part
//! URLs point at the server, parts are PUT with a plain HTTP client, completing writes the
//! exact bytes to `uploads/<title>.<ext>`; refusals (401, 400, 403, 404) answer JSON that
//! says why.

use crate::support::edge::{request_url, request_with_body, HttpResponse, Server, TOKEN};
use crate::support::repo_root;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::path::Path;

const AUTH: (&str, &str) = ("Authorization", "Bearer test-token-0123456789abcdef");
const JSON: (&str, &str) = ("Content-Type", "application/json");
/// Two parts: one of the minimum part size (8 MiB) and 1,000 bytes.
const SIZE: usize = (8 << 20) + 1000;

/// A folder of buckets with an empty `media` bucket.
fn bucket_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("media")).unwrap();
    root
}

fn serve(root: &Path, extra: &[&str]) -> Server {
    let mut args = vec!["--uploads"];
    args.extend(extra);
    Server::start_on(&format!("file://{}", root.display()), &args, &[])
}

fn post(server: &Server, target: &str, auth: &[(&str, &str)], body: &Value) -> HttpResponse {
    let mut headers = vec![JSON];
    headers.extend(auth);
    let body = body.to_string();
    request_with_body(server.addr, "POST", target, &headers, Some(body.as_bytes()))
}

fn bytes(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

/// PUTs each part of `data` to its URL; the ETags answered, in order.
fn put_parts(answer: &Value, data: &[u8]) -> Vec<String> {
    let part_size = answer["part_size"].as_u64().unwrap() as usize;
    let parts = answer["parts"].as_array().unwrap();
    assert_eq!(parts.len(), data.len().div_ceil(part_size));
    let mut etags = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        assert_eq!(part["part_number"], i + 1);
        let chunk = &data[i * part_size..((i + 1) * part_size).min(data.len())];
        let r = request_url("PUT", part["url"].as_str().unwrap(), &[], Some(chunk));
        assert_eq!(r.status, 200, "part {}: {}", i + 1, r.text());
        etags.push(r.header("etag").expect("an ETag").to_owned());
    }
    etags
}

fn completion(etags: &[String]) -> Value {
    let parts: Vec<Value> = etags
        .iter()
        .zip(1..)
        .map(|(etag, n)| json!({"part_number": n, "etag": etag}))
        .collect();
    json!({ "parts": parts })
}

fn complete(answer: &Value, etags: &[String]) -> HttpResponse {
    let url = answer["complete"]["url"].as_str().unwrap();
    assert_eq!(answer["complete"]["method"], "POST");
    let body = completion(etags).to_string();
    request_url("POST", url, &[AUTH, JSON], Some(body.as_bytes()))
}

#[test]
fn uploads_to_a_folder_store_end_to_end_with_a_non_ascii_name() {
    let root = bucket_root();
    let server = serve(root.path(), &["--token", TOKEN]);
    let data = bytes(SIZE);
    let request =
        json!({"filename": "Été à la plage.MOV", "size": SIZE, "content_type": "video/quicktime"});

    let r = post(&server, "/v1/uploads", &[], &request);
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.json()["error"], "unauthorized");

    let r = post(&server, "/v1/uploads", &[AUTH], &request);
    assert_eq!(r.status, 201, "{}", r.text());
    let answer = r.json();
    assert_eq!(answer["key"], "uploads/Été à la plage.mov");
    assert_eq!(answer["title"], "Été à la plage");
    assert_eq!(answer["part_size"], 8 << 20);
    let base = format!("http://{}/v1/uploads/", server.addr);
    assert!(answer["parts"][0]["url"]
        .as_str()
        .unwrap()
        .starts_with(&base));

    // A part URL with another token, or a part of the wrong length, is refused.
    let last = answer["parts"][1]["url"].as_str().unwrap();
    let (head, token) = last.split_once("token=").unwrap();
    let forged = format!("{head}token={}", "0".repeat(token.len()));
    let r = request_url("PUT", &forged, &[], Some(&data[8 << 20..]));
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["error"], "this part URL is not valid");
    let r = request_url("PUT", last, &[], Some(&data[(8 << 20) + 1..]));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.json()["error"].as_str().unwrap().contains("must be 1000"));

    let etags = put_parts(&answer, &data);
    // An ETag that is not the part's is refused; then the right list completes.
    let r = complete(&answer, &[etags[0].clone(), etags[0].clone()]);
    assert_eq!(r.status, 400, "{}", r.text());
    let r = complete(&answer, &etags);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["key"], "uploads/Été à la plage.mov");
    let written = std::fs::read(root.path().join("media/uploads/Été à la plage.mov")).unwrap();
    assert!(written == data, "the object is not the uploaded bytes");
    // Nothing staged is left, and the upload is gone.
    let staged = root.path().join(".hlspipe-uploads/media");
    assert_eq!(std::fs::read_dir(&staged).unwrap().count(), 0);
    let r = complete(&answer, &etags);
    assert_eq!(r.status, 404, "{}", r.text());
}

#[test]
fn aborted_and_expired_uploads_leave_nothing() {
    let root = bucket_root();
    let server = serve(root.path(), &["--token", TOKEN, "--upload-url-ttl", "1"]);
    let request = json!({"filename": "clip.mp4", "size": 1000, "title": "shows/ep 1"});

    let r = post(&server, "/v1/uploads", &[AUTH], &request);
    assert_eq!(r.status, 201, "{}", r.text());
    let answer = r.json();
    assert_eq!(answer["key"], "uploads/shows/ep 1.mp4");
    let url = answer["parts"][0]["url"].as_str().unwrap();
    let r = request_url("PUT", url, &[], Some(&bytes(1000)));
    assert_eq!(r.status, 200, "{}", r.text());
    let abort = answer["abort"]["url"].as_str().unwrap();
    assert_eq!(answer["abort"]["method"], "DELETE");
    let r = request_url("DELETE", abort, &[], None);
    assert_eq!(r.status, 401, "aborting needs the credential too");
    let r = request_url("DELETE", abort, &[AUTH], None);
    assert_eq!(r.status, 204, "{}", r.text());
    let staged = root.path().join(".hlspipe-uploads/media");
    assert_eq!(std::fs::read_dir(&staged).unwrap().count(), 0);
    let r = request_url("PUT", url, &[], Some(&bytes(1000)));
    assert_eq!(r.status, 404, "{}", r.text());

    // Part URLs live one second here.
    let r = post(&server, "/v1/uploads", &[AUTH], &request);
    assert_eq!(r.status, 201, "{}", r.text());
    let answer = r.json();
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let url = answer["parts"][0]["url"].as_str().unwrap();
    let r = request_url("PUT", url, &[], Some(&bytes(1000)));
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["error"], "this part URL has expired");
    assert!(!root.path().join("media/uploads/shows/ep 1.mp4").exists());
}

#[test]
fn bad_names_and_sizes_are_400_with_the_reason() {
    let root = bucket_root();
    let server = serve(
        root.path(),
        &["--token", TOKEN, "--upload-max-bytes", "20000000"],
    );
    for (request, says) in [
        (json!({"filename": "notes.txt", "size": 10}), "not a video"),
        (json!({"filename": "a.mp4", "size": 0}), "empty"),
        (
            json!({"filename": "a.mp4", "size": 20_000_001}),
            "more than",
        ),
        (
            json!({"filename": "a.mp4", "size": 10, "title": "show.hls/ep1"}),
            "title",
        ),
        (
            json!({"filename": "a.mp4", "size": 10, "title": "a//b"}),
            "title",
        ),
        (json!({"filename": "a.mp4"}), "size"),
        (
            json!({"filename": "a.mp4", "size": 10, "colour": "red"}),
            "colour",
        ),
    ] {
        let r = post(&server, "/v1/uploads", &[AUTH], &request);
        assert_eq!(r.status, 400, "{request}: {}", r.text());
        let error = r.json()["error"].as_str().unwrap().to_owned();
        assert!(error.contains(says), "{request}: {error}");
    }
    let r = request_url(
        "POST",
        &format!("http://{}/v1/uploads/not-an-id/complete", server.addr),
        &[AUTH, JSON],
        Some(br#"{"parts":[{"part_number":1,"etag":"x"}]}"#),
    );
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(!root.path().join("media/uploads").exists());
}

#[test]
fn a_jwt_limited_to_some_titles_uploads_only_there() {
    let root = bucket_root();
    let key = repo_root().join("fixtures/keys/rsa2048.pub.pem");
    let key = key.to_str().unwrap();
    let server = serve(
        root.path(),
        &[
            "--auth",
            "jwt",
            "--jwt-public-key",
            key,
            "--jwt-titles-claim",
            "titles",
        ],
    );
    let pem = std::fs::read_to_string(repo_root().join("fixtures/keys/rsa2048.pkcs1.pem")).unwrap();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let claims = json!({"sub": "uploader", "exp": jsonwebtoken::get_current_timestamp() + 600, "titles": ["shows/"]});
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &claims,
        &EncodingKey::from_rsa_der(&der),
    )
    .unwrap();
    let auth = format!("Bearer {token}");
    let auth = [("Authorization", auth.as_str())];

    let r = post(
        &server,
        "/v1/uploads",
        &auth,
        &json!({"filename": "x.mp4", "size": 10, "title": "films/x"}),
    );
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["title"], "films/x");
    // The title defaults to the file name, which is outside `shows/` too.
    let r = post(
        &server,
        "/v1/uploads",
        &auth,
        &json!({"filename": "x.mp4", "size": 10}),
    );
    assert_eq!(r.status, 403, "{}", r.text());

    let r = post(
        &server,
        "/v1/uploads",
        &auth,
        &json!({"filename": "x.mp4", "size": 10, "title": "shows/x"}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let answer = r.json();
    let etags = put_parts(&answer, &bytes(10));
    let body = completion(&etags).to_string();
    let url = answer["complete"]["url"].as_str().unwrap();
    let r = request_url("POST", url, &[auth[0], JSON], Some(body.as_bytes()));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        std::fs::read(root.path().join("media/uploads/shows/x.mp4")).unwrap(),
        bytes(10)
    );
}
