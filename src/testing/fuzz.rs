//! The properties the fuzzing targets (`fuzz/fuzz_targets/`) check, one function per target,
//! shared with the suite: `tests/harness/fuzz_inputs.rs` runs every committed seed
//! (`fuzz/seeds/<target>/`) and every input a campaign found a fault with
//! (`fixtures/fuzz/<target>/`) through the same function. Each panics on a broken property;
//! an error from the code under test is never a failure here.
//!
//! The targets build against the library without the `service` feature: no AWS SDK and no
//! server, so `cargo fuzz build` takes minutes on two cores.

use crate::delivery::request::{store_key, Answer, Conditions};
use crate::delivery::sign::{
    decode_cloudfront_base64, encode_cloudfront_base64, wildcard, Policy, PublicKey, PublicKeySet,
    Verifier,
};
use crate::media::package::{package, Input, Settings};
use crate::media::source::{MemorySource, Source};
use crate::media::text::{segment_webvtt, srt, tx3g, webvtt, SideFileName};
use crate::pipeline::config::PipelineConfig;
use crate::pipeline::event::{
    decode_s3_key, encode_s3_key, parse_event, parse_message_body, s3_put_event, Record,
};
use crate::store::ObjectInfo;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};

/// The fuzzing targets, by name: what `scripts/fuzz.sh` runs and the seed folders are named.
pub const TARGETS: [&str; 6] = ["demux", "text", "events", "sign", "edge_request", "config"];

/// Runs `data` through the target named `name` ([`TARGETS`]); `false` for an unknown name.
pub fn run(name: &str, data: &[u8]) -> bool {
    match name {
        "demux" => demux(data),
        "text" => text(data),
        "events" => events(data),
        "sign" => {
            sign(data);
        }
        "edge_request" => edge_request(data),
        "config" => config(data),
        _ => return false,
    }
    true
}

/// Any bytes through the demuxer and the packager (progressive and fragmented MP4,
/// QuickTime, edit lists, every audio format): every body the packager accepts must be
/// readable from the input it came from.
pub fn demux(data: &[u8]) {
    let source: Arc<dyn Source> = Arc::new(MemorySource::new(data.to_vec(), "fuzz"));
    let input = Input {
        source: Arc::clone(&source),
        etag: None,
    };
    if let Ok(title) = package(std::slice::from_ref(&input), &Settings::default()) {
        for obj in title.media.iter().chain(&title.playlists) {
            obj.body
                .to_vec(std::slice::from_ref(&source))
                .expect("an accepted body must be readable");
        }
    }
}

/// Any bytes through the subtitle readers (SRT, WebVTT, tx3g samples, side-file names) and
/// the WebVTT segmenter: every segment written is WebVTT with the timestamp map.
pub fn text(data: &[u8]) {
    let _ = tx3g::sample_text(data);
    let _ = SideFileName::parse(&String::from_utf8_lossy(data));
    for parsed in [srt::parse(data), webvtt::parse(data)]
        .into_iter()
        .flatten()
    {
        let spans = [(0, 6_000), (6_000, 12_000)];
        for segment in segment_webvtt(&parsed.cues, &parsed.preamble, &spans) {
            assert!(segment
                .text
                .starts_with("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,"));
        }
    }
}

/// Any bytes as an upload event: an S3 notification, an SQS batch or message body, an
/// EventBridge event. Every key that reads back is the key that was encoded, and every record
/// survives the JSON round trip the queue consumer and the status objects put it through.
pub fn events(data: &[u8]) {
    if let Ok(records) = parse_event(data) {
        for record in records.into_iter().flatten() {
            check_record(&record);
        }
    }
    let text = String::from_utf8_lossy(data);
    for record in parse_message_body(&text, Some("m1")).into_iter().flatten() {
        check_record(&record);
    }
    // The same text as an object key: what `reprocess --enqueue` sends reads back as sent.
    let body = s3_put_event("media", &text, "etag", 7, 1_700_000_000);
    match parse_message_body(&body, None).into_iter().next() {
        Some(Ok(record)) => assert_eq!(record.job.key, text, "an enqueued key reads back"),
        other => assert!(text.is_empty(), "{text:?} was enqueued as {other:?}"),
    }
}

fn check_record(record: &Record) {
    let key = &record.job.key;
    // S3's test event names no object (its key is empty), as some ignored events do.
    if !key.is_empty() {
        assert_eq!(decode_s3_key(&encode_s3_key(key)).as_ref(), Ok(key));
    }
    let json = serde_json::to_string(record).expect("a record serialises");
    let back: Record = serde_json::from_str(&json).expect("a serialised record reads back");
    assert_eq!(&back, record);
}

/// A moment inside the validity window of the `sign` seeds.
pub const SIGN_NOW: u64 = 1_900_000_000;

/// The prefix the `sign` seeds are signed for.
pub const SIGNED_PREFIX: &str = "https://cdn.example.com/hls/show/";

fn fixture_keys() -> &'static PublicKeySet {
    static KEYS: OnceLock<PublicKeySet> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut keys = PublicKeySet::new();
        for (id, pem) in [
            ("KEC", include_str!("../../fixtures/keys/ec-p256.pub.pem")),
            ("KRSA", include_str!("../../fixtures/keys/rsa2048.pub.pem")),
        ] {
            let key = PublicKey::from_pem(pem).expect("a fixture key reads");
            keys.insert(id, key).expect("a fixture key id is valid");
        }
        keys
    })
}

/// Any bytes as what a viewer sends the edge: a URL with signed-URL parameters (first line)
/// and a `Cookie` header (second line), decided by a [`Verifier`] holding the fixture keys
/// (`fixtures/keys`, as `KEC` and `KRSA`) at [`SIGN_NOW`] from 192.0.2.1; also as a policy
/// document, CloudFront base64 and a wildcard pattern with a URL. An `Allow` for a URL outside
/// [`SIGNED_PREFIX`] would be a forged signature. Policies that parse survive writing them
/// back. Returns whether the request was allowed (the seeds are, which the suite checks).
pub fn sign(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.splitn(3, '\n');
    let url = lines.next().unwrap_or_default();
    let cookies = lines.next().filter(|c| !c.is_empty());
    let verifier = Verifier::new(fixture_keys().clone());
    let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let allowed = verifier
        .verify_request(url, cookies, ip, SIGN_NOW)
        .is_allow();
    if allowed {
        assert!(
            url.starts_with(SIGNED_PREFIX),
            "allowed: {url:?} {cookies:?}"
        );
    }
    if let Ok(policy) = Policy::parse_json(data) {
        let again = Policy::parse_json(policy.to_json().as_bytes()).expect("a policy reads back");
        assert_eq!(again, policy);
    }
    if let Some(bytes) = decode_cloudfront_base64(&text) {
        let encoded = encode_cloudfront_base64(&bytes);
        assert_eq!(decode_cloudfront_base64(&encoded), Some(bytes));
    }
    if let Some((pattern, candidate)) = text.split_once('\n') {
        let _ = wildcard::matches(pattern, candidate);
    }
    allowed
}

/// Any bytes as what a viewer asks the edge for: the object's size (first 8 bytes, little
/// endian, shifted right by the first byte mod 64), then one field per line: the request
/// path after `/hls/`, `Range`, `If-None-Match`, `If-Modified-Since`, `If-Range`. A store
/// key outside the key prefix, or an answer sending bytes the object does not have, is a bug.
pub fn edge_request(data: &[u8]) {
    let (size, rest) = match data.split_first_chunk::<8>() {
        Some((size, rest)) => (u64::from_le_bytes(*size) >> (size[0] % 64), rest),
        None => (0, data),
    };
    let mut fields = rest.split(|&b| b == b'\n');
    let path = String::from_utf8_lossy(fields.next().unwrap_or_default());
    if let Some(key) = store_key("hls/", &path) {
        let inside = key
            .strip_prefix("hls/")
            .expect("the key is under the prefix");
        let segments_ok = inside
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..");
        assert!(segments_ok && !key.contains('\0'), "{path:?} gave {key:?}");
    }
    let mut field = || fields.next().filter(|f| !f.is_empty()).map(<[u8]>::to_vec);
    let conditions = Conditions {
        is_get: size % 2 == 0,
        range: field(),
        if_none_match: field(),
        if_modified_since: field(),
        if_range: field(),
    };
    let info = ObjectInfo {
        key: "hls/t/x".into(),
        size,
        etag: "0123456789abcdef".into(),
        last_modified: Some(784_111_777),
        content_type: None,
        cache_control: None,
    };
    if let Answer::Send {
        partial,
        start,
        end,
    } = conditions.decide(&info)
    {
        assert!(start <= end && end <= size, "{start}..{end} of {size}");
        if partial {
            assert!(start < end, "a 206 sends at least one byte");
        } else {
            assert_eq!((start, end), (0, size), "a 200 sends the whole object");
        }
    }
}

/// Any bytes as the worker's configuration: the first line `HLSPIPE_*` variables
/// (`NAME=value;NAME=value`), the rest the TOML file. What loads is valid, its prefixes do not
/// overlap, and validating it again changes nothing.
pub fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (vars, toml) = text.split_once('\n').unwrap_or((&text, ""));
    let env: Vec<(String, String)> = vars
        .split(';')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    if let Ok(config) = PipelineConfig::load(env, Some(toml)) {
        config
            .settings()
            .validate()
            .expect("loaded settings are valid");
        let (input, output) = (&config.input_prefix, &config.output_prefix);
        assert!(input.ends_with('/') && output.ends_with('/'));
        assert!(!input.starts_with(output.as_str()) && !output.starts_with(input.as_str()));
        assert_eq!(config.clone().validate().ok().as_ref(), Some(&config));
    }
}
