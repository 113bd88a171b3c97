//! Every event fixture (fixtures/events/, AWS's documented shapes) round-trips through
//! aws_lambda_events' types, parses to the expected records, and drives
//! `hlspipe process-event` against a bucket folder holding a real MP4 at the decoded key.

use crate::support::buckets::{process_event, Buckets, BUCKET};
use crate::support::{assert_decodes, clip, event_fixture, small_clip, stderr, stdout};
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::s3::S3Event;
use aws_lambda_events::event::sqs::SqsEvent;
use hlspipe::pipeline::event::{parse_event, Job, Record, RecordKind};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::Path;

const FIXTURES: [&str; 8] = [
    "s3-put.json",
    "s3-multipart.json",
    "s3-copy.json",
    "s3-removed.json",
    "s3-test-event.json",
    "sqs-batch.json",
    "eventbridge-created.json",
    "eventbridge-deleted.json",
];

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(text: &str) {
    let parsed: T = serde_json::from_str(text).unwrap();
    let again: T = serde_json::from_str(&serde_json::to_string(&parsed).unwrap()).unwrap();
    assert_eq!(parsed, again);
}

#[test]
fn fixtures_round_trip_through_aws_lambda_events_types() {
    for name in FIXTURES {
        let text = event_fixture(name);
        match name {
            n if n.starts_with("sqs") => {
                round_trip::<SqsEvent>(&text);
                let event: SqsEvent = serde_json::from_str(&text).unwrap();
                for m in event.records {
                    round_trip::<S3Event>(m.body.as_deref().unwrap());
                }
            }
            n if n.starts_with("eventbridge") => {
                round_trip::<EventBridgeEvent<serde_json::Value>>(&text)
            }
            "s3-test-event.json" => round_trip::<serde_json::Value>(&text),
            _ => round_trip::<S3Event>(&text),
        }
        // And our records survive a JSON round trip too.
        let records: Vec<Record> = parse_event(text.as_bytes())
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let again: Vec<Record> =
            serde_json::from_str(&serde_json::to_string(&records).unwrap()).unwrap();
        assert_eq!(records, again, "{name}");
    }
}

fn job(key: &str, etag: Option<&str>, size: Option<u64>, sequencer: &str) -> Job {
    Job {
        bucket: BUCKET.into(),
        key: key.into(),
        etag: etag.map(String::from),
        size,
        sequencer: Some(sequencer.into()),
    }
}

fn created(job: Job, message_id: Option<&str>) -> Record {
    Record {
        reprocess: false,
        kind: RecordKind::Created,
        job,
        message_id: message_id.map(String::from),
    }
}

#[test]
fn fixtures_parse_to_decoded_records() {
    let parse = |name: &str| -> Vec<Record> {
        parse_event(event_fixture(name).as_bytes())
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(
        parse("s3-put.json"),
        [created(
            job(
                "uploads/shows/Happy Faceé.mp4",
                Some("9b2cf535f27731c974343645a3985328"),
                Some(61234),
                "0055AED6DCD90281E5"
            ),
            None
        )]
    );
    assert_eq!(
        parse("s3-multipart.json")[0].job.key,
        "uploads/films/Big Movie (2024).mp4"
    );
    assert_eq!(
        parse("s3-multipart.json")[0].job.etag.as_deref(),
        Some("c2b4f5b7e4b8a0e7d1f3a9b2c6d8e0f1-3")
    );
    assert_eq!(
        parse("s3-copy.json")[0].job.key,
        "uploads/clips/café + crème.m4v"
    );
    let removed = parse("s3-removed.json");
    assert_eq!(removed[0].kind, RecordKind::Removed);
    assert_eq!(
        removed[0].job,
        job(
            "uploads/shows/Happy Faceé.mp4",
            None,
            None,
            "0062F1A3B4C5D6EA11"
        )
    );
    let test = parse("s3-test-event.json");
    assert_eq!(test[0].kind, RecordKind::Test);
    assert_eq!(test[0].job.bucket, BUCKET);
    let sqs = parse("sqs-batch.json");
    assert_eq!(
        sqs,
        [
            created(
                job(
                    "uploads/batch/first one.mp4",
                    Some("1f3870be274f6c49b3e31a0c6728957f"),
                    Some(52100),
                    "0062F1A3B4C5D6EB01"
                ),
                Some("059f36b4-87a3-44ab-83d2-661975830a7d")
            ),
            created(
                job(
                    "uploads/batch/second—two.mp4",
                    Some("2e4a6c8e0a2c4e6a8c0e2a4c6e8a0c2e"),
                    Some(52344),
                    "0062F1A3B4C5D6EB02"
                ),
                Some("2e1424d4-f796-459a-8184-9c92662be6da")
            ),
        ]
    );
    assert_eq!(
        parse("eventbridge-created.json"),
        [created(
            job(
                "uploads/eb/Über clip.mp4",
                Some("b1946ac92492d2347c6235b4d2611184"),
                Some(61234),
                "617f08299329d189"
            ),
            None
        )]
    );
    let deleted = parse("eventbridge-deleted.json");
    assert_eq!(deleted[0].kind, RecordKind::Removed);
    assert_eq!(deleted[0].job.key, "uploads/eb/Über clip.mp4");
}

#[test]
fn a_single_sqs_message_body_is_an_event_too() {
    let event: SqsEvent = serde_json::from_str(&event_fixture("sqs-batch.json")).unwrap();
    let body = event.records[1].body.clone().unwrap();
    // The body alone (what a queue consumer receives) …
    let records = parse_event(body.as_bytes()).unwrap();
    assert_eq!(
        records[0].as_ref().unwrap().job.key,
        "uploads/batch/second—two.mp4"
    );
    // … and one message in the ReceiveMessage API's shape.
    let api = serde_json::json!({ "MessageId": "m-7", "ReceiptHandle": "r", "Body": body });
    let records = parse_event(api.to_string().as_bytes()).unwrap();
    assert_eq!(
        records[0].as_ref().unwrap().message_id.as_deref(),
        Some("m-7")
    );
}

/// Puts `files` (decoded key, media) in the bucket, rewrites the fixture's ETags to the
/// files' real ones (the fixtures carry made-up ETags; a mismatch would be "stale"), runs
/// `process-event` and returns its output.
fn run_fixture(buckets: &Buckets, name: &str, files: &[(&str, &Path)]) -> std::process::Output {
    let mut text = event_fixture(name);
    let records = parse_event(text.as_bytes()).unwrap();
    for (key, media) in files {
        let etag = buckets.put_file(key, media);
        let seen = records
            .iter()
            .flatten()
            .find(|r| r.job.key == *key)
            .and_then(|r| r.job.etag.clone());
        if let Some(seen) = seen {
            text = text.replace(&seen, &etag);
        }
    }
    process_event(buckets, &text, &[], &[])
}

fn assert_published(buckets: &Buckets, title_prefix: &str) {
    let master = buckets.bucket().join(title_prefix).join("master.m3u8");
    assert!(master.is_file(), "no {}", master.display());
    assert_eq!(buckets.manifest(title_prefix)["state"], "complete");
    assert_decodes(&master);
}

#[test]
fn s3_put_fixture_publishes_a_playable_title() {
    let b = Buckets::new();
    let out = run_fixture(
        &b,
        "s3-put.json",
        &[("uploads/shows/Happy Faceé.mp4", clip())],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("processed: shows/Happy Faceé"),
        "{}",
        stdout(&out)
    );
    assert_published(&b, "hls/shows/Happy Faceé.hls/");
}

#[test]
fn multipart_fixture_publishes() {
    let b = Buckets::new();
    let out = run_fixture(
        &b,
        "s3-multipart.json",
        &[("uploads/films/Big Movie (2024).mp4", clip())],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_published(&b, "hls/films/Big Movie (2024).hls/");
}

#[test]
fn copy_fixture_publishes() {
    let b = Buckets::new();
    let out = run_fixture(
        &b,
        "s3-copy.json",
        &[("uploads/clips/café + crème.m4v", clip())],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_published(&b, "hls/clips/café + crème.hls/");
}

#[test]
fn sqs_batch_fixture_publishes_both_messages() {
    let b = Buckets::new();
    let out = run_fixture(
        &b,
        "sqs-batch.json",
        &[
            ("uploads/batch/first one.mp4", clip()),
            ("uploads/batch/second—two.mp4", small_clip()),
        ],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        stdout(&out).matches("processed:").count(),
        2,
        "{}",
        stdout(&out)
    );
    assert_published(&b, "hls/batch/first one.hls/");
    assert_published(&b, "hls/batch/second—two.hls/");
}

#[test]
fn eventbridge_created_then_deleted() {
    let b = Buckets::new();
    let key = "uploads/eb/Über clip.mp4";
    let out = run_fixture(&b, "eventbridge-created.json", &[(key, clip())]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_published(&b, "hls/eb/Über clip.hls/");

    std::fs::remove_file(b.bucket().join(key)).unwrap();
    let out = process_event(&b, &event_fixture("eventbridge-deleted.json"), &[], &[]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("removed: eb/Über clip"),
        "{}",
        stdout(&out)
    );
    assert!(b.keys("hls/").is_empty(), "{:?}", b.keys("hls/"));
}

#[test]
fn s3_removed_fixture_removes_the_outputs() {
    let b = Buckets::new();
    let key = "uploads/shows/Happy Faceé.mp4";
    let out = run_fixture(&b, "s3-put.json", &[(key, clip())]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    // A neighbour whose name starts the same must survive.
    let etag2 = b.put_file("uploads/shows/Happy Faceé 2.mp4", small_clip());
    let event2 = event_fixture("s3-put.json")
        .replace("Happy+Face%C3%A9.mp4", "Happy+Face%C3%A9+2.mp4")
        .replace("9b2cf535f27731c974343645a3985328", &etag2);
    let out = process_event(&b, &event2, &[], &[]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(b.exists("hls/shows/Happy Faceé 2.hls/master.m3u8"));

    // While the source still exists the removal is stale: nothing is deleted.
    let out = process_event(&b, &event_fixture("s3-removed.json"), &[], &[]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("stale:"), "{}", stdout(&out));
    assert!(b.exists("hls/shows/Happy Faceé.hls/master.m3u8"));

    std::fs::remove_file(b.bucket().join(key)).unwrap();
    let out = process_event(&b, &event_fixture("s3-removed.json"), &[], &[]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("removed: shows/Happy Faceé ("),
        "{}",
        stdout(&out)
    );
    assert!(b.keys("hls/shows/Happy Faceé.hls/").is_empty());
    assert!(b.exists("hls/shows/Happy Faceé 2.hls/master.m3u8"));
}

#[test]
fn test_event_is_acknowledged() {
    let b = Buckets::new();
    let out = process_event(&b, &event_fixture("s3-test-event.json"), &[], &[]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("ignored: s3:TestEvent"),
        "{}",
        stdout(&out)
    );
    assert!(b.keys("").is_empty());
}
