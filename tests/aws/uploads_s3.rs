//! `POST /v1/uploads` through `hlspipe serve --store s3://… --uploads` against a real S3 server
//! on 127.0.0.1 (moto): the server starts the multipart upload and presigns one UploadPart URL
//! per part; the parts go straight to S3 with a plain HTTP client (no AWS signing here), the
//! ETags S3 answered complete the upload through the API, and the object holds the exact bytes.
//! moto checks no signatures (a forged or expired part URL is answered 200), so refusing those
//! is tested on the folder target (`tests/delivery/uploads.rs`); on AWS, S3 refuses them.

use crate::support::edge::{request_url, request_with_body, HttpResponse, Server, TOKEN};
use crate::support::s3::{bucket_name, S3Server};
use hlspipe::store::Store;
use serde_json::{json, Value};

const AUTH: (&str, &str) = ("Authorization", "Bearer test-token-0123456789abcdef");
const JSON: (&str, &str) = ("Content-Type", "application/json");

fn post(server: &Server, body: &Value) -> HttpResponse {
    let body = body.to_string();
    request_with_body(
        server.addr,
        "POST",
        "/v1/uploads",
        &[AUTH, JSON],
        Some(body.as_bytes()),
    )
}

fn completion(etags: &[String]) -> String {
    let parts: Vec<Value> = etags
        .iter()
        .zip(1..)
        .map(|(etag, n)| json!({"part_number": n, "etag": etag}))
        .collect();
    json!({ "parts": parts }).to_string()
}

#[test]
fn uploads_go_straight_to_s3_through_presigned_part_urls() {
    let s3 = S3Server::shared();
    let bucket = bucket_name("uploads-go-straight-to-s3");
    let store = s3.bucket(&bucket);
    let env = S3Server::child_env(&s3.endpoint());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::start_on(
        &format!("s3://{bucket}"),
        &["--token", TOKEN, "--uploads"],
        &env,
    );
    // Two parts: S3 refuses a part under 5 MiB unless it is the last.
    let size = (8 << 20) + 1000;
    let data: Vec<u8> = (0..size).map(|i: usize| (i * 7 % 253) as u8).collect();

    let r = request_with_body(server.addr, "POST", "/v1/uploads", &[JSON], Some(b"{}"));
    assert_eq!(r.status, 401, "{}", r.text());
    let r = post(
        &server,
        &json!({"filename": "My Trip – Été.MOV", "size": size, "content_type": "video/quicktime"}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let answer = r.json();
    assert_eq!(answer["key"], "uploads/My Trip – Été.mov");
    let parts = answer["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 2);
    let part_size = answer["part_size"].as_u64().unwrap() as usize;
    let mut etags = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let url = part["url"].as_str().unwrap();
        assert!(url.starts_with(&s3.endpoint()), "{url}");
        assert!(url.contains("X-Amz-Signature="), "{url}");
        // The key is percent-encoded in the URL: no space, no raw UTF-8.
        assert!(
            url.contains("My%20Trip%20%E2%80%93%20%C3%89t%C3%A9.mov"),
            "{url}"
        );
        let chunk = &data[i * part_size..((i + 1) * part_size).min(size)];
        let r = request_url("PUT", url, &[], Some(chunk));
        assert_eq!(r.status, 200, "part {}: {}", i + 1, r.text());
        etags.push(
            r.header("etag")
                .expect("S3 answers the part's ETag")
                .to_owned(),
        );
    }
    let complete = answer["complete"]["url"].as_str().unwrap();
    assert!(complete.starts_with(&format!("http://{}/v1/uploads/", server.addr)));
    let r = request_url(
        "POST",
        complete,
        &[AUTH, JSON],
        Some(completion(&etags).as_bytes()),
    );
    assert_eq!(r.status, 200, "{}", r.text());

    let stored = store
        .get("uploads/My Trip – Été.mov")
        .unwrap()
        .expect("the object exists");
    assert!(stored == data, "the object is not the uploaded bytes");
    let info = store.head("uploads/My Trip – Été.mov").unwrap().unwrap();
    assert!(
        info.etag.ends_with("-2"),
        "a two-part upload: {}",
        info.etag
    );
}

#[test]
fn an_aborted_s3_upload_cannot_be_completed() {
    let s3 = S3Server::shared();
    let bucket = bucket_name("aborted-s3-upload");
    let store = s3.bucket(&bucket);
    let env = S3Server::child_env(&s3.endpoint());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::start_on(
        &format!("s3://{bucket}"),
        &["--token", TOKEN, "--uploads"],
        &env,
    );
    let r = post(
        &server,
        &json!({"filename": "a.mp4", "size": 100, "title": "shows/a b"}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let answer = r.json();
    let url = answer["parts"][0]["url"].as_str().unwrap();
    let r = request_url("PUT", url, &[], Some(&[7u8; 100]));
    assert_eq!(r.status, 200, "{}", r.text());
    let etag = r.header("etag").unwrap().to_owned();

    assert_eq!(open_uploads(&s3, &bucket), ["uploads/shows/a b.mp4"]);

    let abort = answer["abort"]["url"].as_str().unwrap();
    let r = request_url("DELETE", abort, &[AUTH], None);
    assert_eq!(r.status, 204, "{}", r.text());
    // S3 holds no parts of it any more (no storage billed for them).
    assert!(open_uploads(&s3, &bucket).is_empty());
    assert!(store.get("uploads/shows/a b.mp4").unwrap().is_none());
    // (Completing it now is S3's NoSuchUpload, a 404 here; moto answers that with a 500.)
    let _ = etag;
}

/// The keys of the bucket's multipart uploads in progress (ListMultipartUploads).
fn open_uploads(s3: &S3Server, bucket: &str) -> Vec<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let settings = S3Server::settings_for(&s3.endpoint(), 2);
        let client = hlspipe::store::S3Client::build_sdk_client(&settings).await;
        let out = client
            .list_multipart_uploads()
            .bucket(bucket)
            .send()
            .await
            .unwrap();
        out.uploads()
            .iter()
            .filter_map(|u| u.key().map(str::to_owned))
            .collect()
    })
}
