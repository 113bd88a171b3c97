//! Upload notifications → records: one [`Record`] per object that an event names.
//!
//! Accepted documents (DESIGN.md "What flows where"):
//! - an S3 event notification (`{"Records": [{"eventSource": "aws:s3", …}]}`);
//! - an SQS event whose `Records[].body` is itself one of these documents (S3 → SQS → Lambda),
//!   or a single SQS message (Lambda's `{"messageId", "body"}` or the API's
//!   `{"MessageId", "Body"}` shape, as a long-running consumer receives it);
//! - S3's `s3:TestEvent`, sent once when a notification is configured: acknowledged, ignored;
//! - an EventBridge event from `aws.s3` (`"detail-type": "Object Created" | "Object Deleted"`).
//!
//! A document that is not JSON or has none of these shapes is an error for the whole
//! document. A record that cannot be read (a missing field, a key that does not decode) is
//! an error for that record only, carrying its SQS message id so the caller can report it
//! as a partial batch failure instead of dropping it.

use crate::error::{Error, Result};
use crate::percent::{self, Plus};
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::s3::S3EventRecord;
use aws_lambda_events::event::sqs::SqsMessage;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// What happened to the object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "reason", rename_all = "snake_case")]
pub enum RecordKind {
    /// `ObjectCreated:Put | Post | Copy | CompleteMultipartUpload`, EventBridge "Object Created".
    Created,
    /// `ObjectRemoved:*`, `LifecycleExpiration:*`, EventBridge "Object Deleted".
    Removed,
    /// S3's `s3:TestEvent`.
    Test,
    /// Any other event (restores, replication, tagging …), with why it is not work.
    Ignored(String),
    /// One part of a ladder's encode, fanned out by the upload's job
    /// ([`crate::pipeline::fanout`]); the record's job is the upload.
    Part(PartMessage),
}

/// The body of a part's message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartMessage {
    /// [`PART_MESSAGE`]: what tells this body from an S3 event.
    pub hlspipe: String,
    pub bucket: String,
    /// The upload.
    pub key: String,
    /// The upload's ETag when the ladder was planned: a part of a replaced upload is stale.
    pub etag: String,
    /// The title's version being made.
    pub version: String,
    /// [`Part::name`].
    pub part: String,
}

pub const PART_MESSAGE: &str = "ladder-part";

/// The object an event is about. The key is decoded: it is the key to ask the store for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub bucket: String,
    pub key: String,
    /// The ETag the event saw, without quotes (absent on removals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// S3's ordering token for events on one key (hex, compare right-padded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequencer: Option<String>,
}

/// One object event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub kind: RecordKind,
    pub job: Job,
    /// Sent by `hlspipe reprocess --enqueue` (its events say so, [`REPROCESS_CONFIGURATION`]):
    /// the worker sends no CDN invalidation for it; the reprocess sends the changed masters
    /// in batches once the queue has drained.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reprocess: bool,
    /// The SQS message the record came in, for partial batch failure reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
}

/// A record that could not be read. It is a failure of that record, never skipped silently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordError {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    pub reason: String,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.message_id {
            Some(id) => write!(f, "SQS message {id}: {}", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

impl std::error::Error for RecordError {}

pub type ParsedRecord = std::result::Result<Record, RecordError>;

/// Reads one event document into its records, in order.
pub fn parse_event(json: &[u8]) -> Result<Vec<ParsedRecord>> {
    let doc: Value =
        serde_json::from_slice(json).map_err(|e| Error::Event(format!("not JSON: {e}")))?;
    parse_value(doc, None, 0).map_err(Error::Event)
}

/// Reads the body of one SQS message (what a queue consumer receives). Never fails as a
/// whole: an unreadable body is one failed record carrying `message_id`.
pub fn parse_message_body(body: &str, message_id: Option<&str>) -> Vec<ParsedRecord> {
    let id = message_id.map(str::to_string);
    let parsed = serde_json::from_str::<Value>(body)
        .map_err(|e| format!("message body is not JSON: {e}"))
        .and_then(|doc| parse_value(doc, id.clone(), 1));
    match parsed {
        Ok(records) => records,
        Err(reason) => vec![Err(RecordError {
            message_id: id,
            reason,
        })],
    }
}

/// How deep SQS wrapping may go: an SQS event holds message bodies, which hold S3 or
/// EventBridge documents; nothing legitimate nests further.
const MAX_DEPTH: u8 = 2;

fn parse_value(
    doc: Value,
    message_id: Option<String>,
    depth: u8,
) -> std::result::Result<Vec<ParsedRecord>, String> {
    let Value::Object(map) = &doc else {
        return Err("expected a JSON object".into());
    };
    if let Some(records) = map.get("Records") {
        let Value::Array(records) = records else {
            return Err("'Records' is not an array".into());
        };
        let mut out = Vec::with_capacity(records.len().min(1024));
        for (i, rec) in records.iter().enumerate() {
            if is_sqs_message(rec) {
                if depth >= MAX_DEPTH {
                    return Err("SQS messages nested too deeply".into());
                }
                out.extend(sqs_message(rec.clone(), depth + 1));
            } else {
                out.push(s3_record(rec.clone(), i).map_err(|reason| RecordError {
                    message_id: message_id.clone(),
                    reason,
                }));
            }
        }
        for r in &mut out {
            // Records of a message inherit its id; records of an SQS event keep their own.
            match r {
                Ok(rec) if rec.message_id.is_none() => rec.message_id.clone_from(&message_id),
                Err(e) if e.message_id.is_none() => e.message_id.clone_from(&message_id),
                _ => {}
            }
        }
        return Ok(out);
    }
    if map.contains_key("detail-type") {
        return Ok(vec![eventbridge(doc, message_id.clone())
            .map_err(|reason| RecordError { message_id, reason })]);
    }
    if map.get("hlspipe").and_then(Value::as_str) == Some(PART_MESSAGE) {
        let record = serde_json::from_value::<PartMessage>(doc)
            .map(|part| Record {
                reprocess: false,
                job: Job {
                    bucket: part.bucket.clone(),
                    key: part.key.clone(),
                    etag: Some(part.etag.clone()),
                    size: None,
                    sequencer: None,
                },
                kind: RecordKind::Part(part),
                message_id: message_id.clone(),
            })
            .map_err(|e| RecordError {
                message_id,
                reason: format!("a ladder part message that does not read: {e}"),
            });
        return Ok(vec![record]);
    }
    if map.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        let bucket = map
            .get("Bucket")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        return Ok(vec![Ok(Record {
            reprocess: false,
            kind: RecordKind::Test,
            job: Job {
                bucket,
                key: String::new(),
                etag: None,
                size: None,
                sequencer: None,
            },
            message_id,
        })]);
    }
    if is_sqs_message(&doc) {
        if depth >= MAX_DEPTH {
            return Err("SQS messages nested too deeply".into());
        }
        return Ok(sqs_message(doc, depth + 1));
    }
    Err(
        "not an S3 event notification, an SQS message, an EventBridge event or \
         s3:TestEvent"
            .into(),
    )
}

/// Lambda's SQS record (`messageId`, `body`) or the ReceiveMessage API's (`MessageId`, `Body`).
fn is_sqs_message(v: &Value) -> bool {
    let has = |k: &str| v.get(k).is_some();
    (has("body") && (has("messageId") || has("receiptHandle"))) || (has("Body") && has("MessageId"))
}

fn sqs_message(v: Value, depth: u8) -> Vec<ParsedRecord> {
    // The API shape has the same fields in PascalCase; read it by hand.
    if v.get("Body").is_some() {
        let id = v.get("MessageId").and_then(Value::as_str).map(String::from);
        return match v.get("Body").and_then(Value::as_str) {
            Some(body) => body_records(body, id, depth),
            None => vec![Err(RecordError {
                message_id: id,
                reason: "SQS message 'Body' is not a string".into(),
            })],
        };
    }
    let id = v.get("messageId").and_then(Value::as_str).map(String::from);
    match serde_json::from_value::<SqsMessage>(v) {
        Ok(msg) => match msg.body {
            Some(body) => body_records(&body, msg.message_id.or(id), depth),
            None => vec![Err(RecordError {
                message_id: msg.message_id.or(id),
                reason: "SQS message has no body".into(),
            })],
        },
        Err(e) => vec![Err(RecordError {
            message_id: id,
            reason: format!("unreadable SQS message: {e}"),
        })],
    }
}

fn body_records(body: &str, message_id: Option<String>, depth: u8) -> Vec<ParsedRecord> {
    let parsed = serde_json::from_str::<Value>(body)
        .map_err(|e| format!("message body is not JSON: {e}"))
        .and_then(|doc| parse_value(doc, message_id.clone(), depth));
    match parsed {
        Ok(records) => records,
        Err(reason) => vec![Err(RecordError { message_id, reason })],
    }
}

/// Event types that are work. `eventName` comes without the `s3:` prefix from S3 (AWS S3
/// User Guide, "Event message structure"); S3-compatible servers often keep it.
fn s3_kind(name: &str) -> RecordKind {
    let name = name.strip_prefix("s3:").unwrap_or(name);
    match name {
        "ObjectCreated:Put"
        | "ObjectCreated:Post"
        | "ObjectCreated:Copy"
        | "ObjectCreated:CompleteMultipartUpload" => RecordKind::Created,
        // "Supported event types": ObjectRemoved:Delete, ObjectRemoved:DeleteMarkerCreated,
        // and lifecycle expirations, which remove the object just the same.
        n if n.starts_with("ObjectRemoved:") || n.starts_with("LifecycleExpiration:") => {
            RecordKind::Removed
        }
        other => RecordKind::Ignored(format!("event {other} is not an upload or a removal")),
    }
}

fn s3_record(mut v: Value, index: usize) -> std::result::Result<Record, String> {
    // aws_lambda_events requires `userIdentity`, `requestParameters` and `eventTime`, which
    // S3 always sends and nothing here reads; S3-compatible servers (moto) leave the first
    // two out. Absent, they are filled in rather than failing the record.
    if let Value::Object(map) = &mut v {
        for field in ["userIdentity", "requestParameters"] {
            map.entry(field)
                .or_insert_with(|| Value::Object(Default::default()));
        }
        map.entry("eventTime")
            .or_insert_with(|| Value::String("1970-01-01T00:00:00.000Z".into()));
    }
    let rec: S3EventRecord =
        serde_json::from_value(v).map_err(|e| format!("S3 record {index} is not readable: {e}"))?;
    let name = rec
        .event_name
        .as_deref()
        .ok_or_else(|| format!("S3 record {index} has no eventName"))?;
    let kind = s3_kind(name);
    let bucket = rec
        .s3
        .bucket
        .name
        .clone()
        .filter(|b| !b.is_empty())
        .ok_or_else(|| format!("S3 record {index} has no bucket name"))?;
    let raw_key = rec
        .s3
        .object
        .key
        .as_deref()
        .ok_or_else(|| format!("S3 record {index} has no object key"))?;
    let key = decode_s3_key(raw_key).map_err(|e| format!("S3 record {index}: {e}"))?;
    let size = match rec.s3.object.size {
        Some(n) => {
            Some(u64::try_from(n).map_err(|_| format!("S3 record {index}: negative size {n}"))?)
        }
        None => None,
    };
    // The events `reprocess --enqueue` sends name this configuration (`s3_created_event`).
    let reprocess = rec.s3.configuration_id.as_deref() == Some(REPROCESS_CONFIGURATION);
    Ok(Record {
        reprocess,
        kind,
        job: Job {
            bucket,
            key,
            etag: rec.s3.object.e_tag.as_deref().map(unquote),
            size,
            sequencer: rec.s3.object.sequencer.clone(),
        },
        message_id: None,
    })
}

/// `detail` of an S3 event on EventBridge (AWS S3 User Guide, "EventBridge event message
/// structure": detail.bucket.name, detail.object.{key, size, etag, version-id, sequencer}).
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct S3Detail {
    bucket: S3DetailBucket,
    object: S3DetailObject,
}

#[derive(Deserialize)]
struct S3DetailBucket {
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct S3DetailObject {
    key: String,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    etag: Option<String>,
    #[serde(default)]
    sequencer: Option<String>,
}

fn eventbridge(doc: Value, message_id: Option<String>) -> std::result::Result<Record, String> {
    let event: EventBridgeEvent<Value> =
        serde_json::from_value(doc).map_err(|e| format!("unreadable EventBridge event: {e}"))?;
    let kind = match (event.source.as_str(), event.detail_type.as_str()) {
        ("aws.s3", "Object Created") => RecordKind::Created,
        ("aws.s3", "Object Deleted") => RecordKind::Removed,
        ("aws.s3", other) => RecordKind::Ignored(format!(
            "EventBridge '{other}' is not an upload or a removal"
        )),
        (source, _) => RecordKind::Ignored(format!(
            "EventBridge event from '{source}' is not an S3 event"
        )),
    };
    if let RecordKind::Ignored(_) = kind {
        // Other services' details have other shapes: nothing more to read.
        let bucket = event
            .detail
            .pointer("/bucket/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let key = event
            .detail
            .pointer("/object/key")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        return Ok(Record {
            reprocess: false,
            kind,
            job: Job {
                bucket,
                key,
                etag: None,
                size: None,
                sequencer: None,
            },
            message_id,
        });
    }
    let detail: S3Detail = serde_json::from_value(event.detail)
        .map_err(|e| format!("unreadable S3 detail in EventBridge event: {e}"))?;
    if detail.bucket.name.is_empty() || detail.object.key.is_empty() {
        return Err("EventBridge S3 event without a bucket name or an object key".into());
    }
    Ok(Record {
        reprocess: false,
        kind,
        job: Job {
            bucket: detail.bucket.name,
            // Taken as it stands. The EventBridge message structure documents `key` as the
            // object key name, with no URL encoding (AWS S3 User Guide, "EventBridge event
            // message structure"), unlike S3 event notifications, whose key "is URL encoded"
            // ("Event message structure").
            key: detail.object.key,
            etag: detail.object.etag.as_deref().map(unquote),
            size: detail.object.size,
            sequencer: detail.object.sequencer,
        },
        message_id,
    })
}

fn unquote(etag: &str) -> String {
    etag.trim_matches('"').to_string()
}

/// Decodes an S3 event notification key. S3 URL-encodes keys in notifications the way HTML
/// forms do (`application/x-www-form-urlencoded`): "red flower.jpg" arrives as
/// "red+flower.jpg" (AWS S3 User Guide, "Event message structure"). So `+` is a space, `%XY`
/// is the byte 0xXY (`%2B` is a literal `+`), and the bytes must be UTF-8, as S3 keys are.
/// A `%` not followed by two hex digits, or bytes that are not UTF-8, are errors.
pub fn decode_s3_key(raw: &str) -> std::result::Result<String, String> {
    match percent::decode(raw, Plus::Space) {
        Ok(key) if key.is_empty() => Err("empty object key".into()),
        Ok(key) => Ok(key.into_owned()),
        Err(e) => Err(format!("object key '{raw}': {e}")),
    }
}

/// Encodes a key as S3 writes it in event notifications, the inverse of
/// [`decode_s3_key`]: form encoding, with `/` kept (S3's `uploads/shows/Happy+Face.jpg`).
/// Letters, digits and `- _ . *` stay; a space is `+`; every other byte is `%XY`.
pub fn encode_s3_key(key: &str) -> String {
    percent::encode(key, |b| {
        b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'*' | b'/')
    })
    .replace("%20", "+")
}

/// An `ObjectCreated:Put` notification for one object, shaped as S3 sends it ("Event
/// message structure", S3 User Guide, event version 2.1): what `reprocess --enqueue`
/// puts on the queue so that every consumer sees the same document as for an upload.
pub fn s3_put_event(bucket: &str, key: &str, etag: &str, size: u64, unix_seconds: u64) -> String {
    let job = Job {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        etag: Some(etag.to_owned()),
        size: Some(size),
        sequencer: None,
    };
    s3_created_event(&job, unix_seconds)
}

/// The `configurationId` of the S3 events `hlspipe reprocess` sends ([`s3_put_event`]):
/// a bucket's own notification configurations never use it.
pub const REPROCESS_CONFIGURATION: &str = "hlspipe-reprocess";

/// The S3 `ObjectCreated:Put` notification for `job`, which reads back as the same job: its
/// sequencer kept (one made from `unix_seconds` when it has none), so that a job handed on to
/// another queue still orders against the other events of its key.
pub fn s3_created_event(job: &Job, unix_seconds: u64) -> String {
    let bucket = &job.bucket;
    let doc = serde_json::json!({
        "Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": "",
            "eventTime": rfc3339(unix_seconds),
            "eventName": "ObjectCreated:Put",
            "userIdentity": { "principalId": "hlspipe-reprocess" },
            "requestParameters": { "sourceIPAddress": "127.0.0.1" },
            "responseElements": {},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": REPROCESS_CONFIGURATION,
                "bucket": {
                    "name": bucket,
                    "ownerIdentity": { "principalId": "hlspipe-reprocess" },
                    "arn": format!("arn:aws:s3:::{bucket}"),
                },
                "object": {
                    "key": encode_s3_key(&job.key),
                    "size": job.size.unwrap_or(0),
                    "eTag": job.etag.as_deref().unwrap_or_default(),
                    "sequencer": job.sequencer.clone().unwrap_or_else(|| format!("{unix_seconds:016X}")),
                },
            },
        }]
    });
    doc.to_string()
}

/// `1970-01-01T00:00:00.000Z` from Unix seconds (proleptic Gregorian calendar; Howard
/// Hinnant's days-to-civil algorithm).
fn rfc3339(unix_seconds: u64) -> String {
    let days = i64::try_from(unix_seconds / 86_400).unwrap_or(0);
    let secs = unix_seconds % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.000Z",
        secs / 3_600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_form_encoded_keys() {
        assert_eq!(
            decode_s3_key("uploads/Happy+Face%C3%A9.mp4").as_deref(),
            Ok("uploads/Happy Faceé.mp4")
        );
        assert_eq!(decode_s3_key("a%2Bb+c").as_deref(), Ok("a+b c"));
        assert_eq!(decode_s3_key("x%2fy").as_deref(), Ok("x/y"));
    }

    #[test]
    fn synthetic_events_read_back() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_714_817_472), "2024-05-04T10:11:12.000Z");
        let key = "uploads/Shows/Épisode 1 + (x)%.mp4";
        assert_eq!(
            encode_s3_key(key),
            "uploads/Shows/%C3%89pisode+1+%2B+%28x%29%25.mp4"
        );
        let doc = s3_put_event("hlspipe-media", key, "abc", 42, 1_714_817_472);
        let records = parse_event(doc.as_bytes()).unwrap();
        let rec = records[0].as_ref().unwrap();
        assert_eq!(rec.kind, RecordKind::Created);
        assert_eq!(rec.job.key, key);
        assert_eq!(rec.job.etag.as_deref(), Some("abc"));
        assert_eq!(rec.job.size, Some(42));
    }

    #[test]
    fn refuses_bad_encodings() {
        assert!(decode_s3_key("100%").is_err());
        assert!(decode_s3_key("a%zzb").is_err());
        assert!(decode_s3_key("a%C3").unwrap_err().contains("UTF-8"));
        assert!(decode_s3_key("%FF%FE").is_err());
        assert!(decode_s3_key("").is_err());
    }

    #[test]
    fn event_names() {
        assert_eq!(s3_kind("ObjectCreated:Put"), RecordKind::Created);
        assert_eq!(s3_kind("s3:ObjectCreated:Copy"), RecordKind::Created);
        assert_eq!(
            s3_kind("ObjectRemoved:DeleteMarkerCreated"),
            RecordKind::Removed
        );
        assert!(matches!(
            s3_kind("ObjectRestore:Completed"),
            RecordKind::Ignored(_)
        ));
    }

    #[test]
    fn bad_key_is_a_record_error_with_the_message_id() {
        let body = r#"{"Records":[{"eventName":"ObjectCreated:Put","eventTime":"1970-01-01T00:00:00.000Z",
            "userIdentity":{},"requestParameters":{},"s3":{"bucket":{"name":"b"},"object":{"key":"bad%C3"}}}]}"#;
        let records = parse_message_body(body, Some("m-1"));
        assert_eq!(records.len(), 1);
        let err = records[0].as_ref().unwrap_err();
        assert_eq!(err.message_id.as_deref(), Some("m-1"));
        assert!(err.reason.contains("UTF-8"), "{err}");
    }

    #[test]
    fn records_without_identity_fields_are_read() {
        // moto's notification: no userIdentity, requestParameters or sequencer; '/' encoded.
        let body = r#"{"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": "2026-11-23T13:22:52.092Z", "eventName": "ObjectCreated:Put",
            "s3": {"s3SchemaVersion": "1.0", "configurationId": "x", "bucket": {"name": "media",
            "arn": "arn:aws:s3:::media"}, "object": {"key": "uploads%2Fa+b%2F%C3%89pisode+%2B1.mp4",
            "size": 5, "eTag": "5d41402abc4b2a76b9719d911017c592"}}}]}"#;
        let records = parse_message_body(body, Some("m"));
        let rec = records[0].as_ref().unwrap();
        assert_eq!(rec.job.key, "uploads/a b/Épisode +1.mp4");
        assert_eq!(rec.job.bucket, "media");
    }

    #[test]
    fn unknown_documents_are_refused() {
        assert!(parse_event(b"[]").is_err());
        assert!(parse_event(b"{\"hello\":1}").is_err());
        assert!(parse_event(b"not json").is_err());
        assert!(parse_event(br#"{"Records": 3}"#).is_err());
    }
}
