//! The handler, run as Lambda runs it: a `LambdaEvent` built from the real event JSON of
//! `fixtures/events/`, buckets as folders, the packaged title checked with ffmpeg.

use hlspipe::aws::sqs::QueueSender;
use hlspipe::media::object::Object;
use hlspipe::media::source::Source;
use hlspipe::pipeline::config::PipelineConfig;
use hlspipe::pipeline::event::{parse_message_body, RecordKind};
use hlspipe::pipeline::invalidate::NoInvalidation;
use hlspipe::store::location::Stores;
use hlspipe::store::{DirStore, ObjectInfo, Precondition, Store, Versioned};
use hlspipe::testing::RecordingInvalidator;
use hlspipe_lambda::{handle, FleetRoute, Handler, HandlerError};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

const BUCKET: &str = "hlspipe-media";

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(repo().join("fixtures/events").join(name)).unwrap()
}

fn media() -> PathBuf {
    repo().join("fixtures/media/h264_aac_faststart.mp4")
}

/// 1 KiB of noise: no MP4 at all.
fn noise() -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

struct Buckets {
    dir: tempfile::TempDir,
}

impl Buckets {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(BUCKET)).unwrap();
        Buckets { dir }
    }

    fn bucket(&self) -> PathBuf {
        self.dir.path().join(BUCKET)
    }

    /// Writes `bytes` at `key`; returns the ETag the store gives it.
    fn put(&self, key: &str, bytes: &[u8]) -> String {
        let path = self.bucket().join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        DirStore::new(self.bucket())
            .head(key)
            .unwrap()
            .unwrap()
            .etag
    }

    fn manifest(&self, title_prefix: &str) -> Value {
        let bytes = std::fs::read(self.bucket().join(title_prefix).join("manifest.json")).unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    fn handler(&self) -> Arc<Handler<Stores>> {
        Arc::new(Handler {
            config: PipelineConfig::default(),
            stores: Stores::dir(self.dir.path()),
            invalidator: Arc::new(NoInvalidation),
            notifier: Arc::new(hlspipe::pipeline::notify::NoNotification),
            clock: || 1_000,
            redelivery: None,
            fleet: None,
        })
    }
}

fn event(json: &str) -> LambdaEvent<Value> {
    LambdaEvent::new(serde_json::from_str(json).unwrap(), Context::default())
}

fn assert_decodes(master: &Path) {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(master)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg is needed for these tests");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "ffmpeg could not decode {}: {}",
        master.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A store that answers every call as S3 does when it throttles (503 SlowDown).
struct Throttled;

fn slow_down<T>(key: &str) -> hlspipe::Result<T> {
    Err(hlspipe::Error::store_retryable(
        key,
        "service error: SlowDown (HTTP 503): Please reduce your request rate",
    ))
}

impl Store for Throttled {
    fn put(&self, key: &str, _: &Object, _: &[Arc<dyn Source>]) -> hlspipe::Result<()> {
        slow_down(key)
    }
    fn put_if(
        &self,
        key: &str,
        _: &Object,
        _: &[Arc<dyn Source>],
        _: Precondition<'_>,
    ) -> hlspipe::Result<String> {
        slow_down(key)
    }
    fn get(&self, key: &str) -> hlspipe::Result<Option<Vec<u8>>> {
        slow_down(key)
    }
    fn get_versioned(&self, key: &str) -> hlspipe::Result<Option<Versioned>> {
        slow_down(key)
    }
    fn read_range(&self, key: &str, _: u64, _: &mut [u8]) -> hlspipe::Result<()> {
        slow_down(key)
    }
    fn head(&self, key: &str) -> hlspipe::Result<Option<ObjectInfo>> {
        slow_down(key)
    }
    fn delete(&self, key: &str) -> hlspipe::Result<()> {
        slow_down(key)
    }
    fn list(&self, prefix: &str) -> hlspipe::Result<Vec<ObjectInfo>> {
        slow_down(prefix)
    }
}

type Factory = fn(&str) -> hlspipe::Result<Arc<dyn Store>>;

fn throttled_handler() -> Arc<Handler<Factory>> {
    Arc::new(Handler {
        config: PipelineConfig::default(),
        stores: |_: &str| Ok(Arc::new(Throttled) as Arc<dyn Store>),
        invalidator: Arc::new(NoInvalidation),
        notifier: Arc::new(hlspipe::pipeline::notify::NoNotification),
        clock: || 1_000,
        redelivery: None,
        fleet: None,
    })
}

#[tokio::test]
async fn s3_put_event_publishes_the_decoded_key() {
    let b = Buckets::new();
    let etag = b.put(
        "uploads/shows/Happy Faceé.mp4",
        &std::fs::read(media()).unwrap(),
    );
    let ev = event(&fixture("s3-put.json").replace("9b2cf535f27731c974343645a3985328", &etag));
    let answer = handle(b.handler(), ev).await.unwrap();
    assert_eq!(answer["failed"], 0, "{answer}");
    assert_eq!(answer["records"][0]["outcome"], "processed", "{answer}");
    assert_eq!(answer["records"][0]["key"], "uploads/shows/Happy Faceé.mp4");
    assert_eq!(b.manifest("hls/shows/Happy Faceé.hls")["state"], "complete");
    assert_decodes(&b.bucket().join("hls/shows/Happy Faceé.hls/master.m3u8"));
}

#[tokio::test]
async fn sqs_batch_with_a_corrupt_and_a_good_record_reports_no_item_failure() {
    let b = Buckets::new();
    let bad = b.put("uploads/batch/first one.mp4", &noise());
    let good = b.put(
        "uploads/batch/second—two.mp4",
        &std::fs::read(media()).unwrap(),
    );
    let ev = event(
        &fixture("sqs-batch.json")
            .replace("1f3870be274f6c49b3e31a0c6728957f", &bad)
            .replace("2e4a6c8e0a2c4e6a8c0e2a4c6e8a0c2e", &good),
    );
    let answer = handle(b.handler(), ev).await.unwrap();
    // The corrupt upload is permanent: a failed manifest, and no redelivery.
    assert_eq!(answer, json!({ "batchItemFailures": [] }));
    let failed = b.manifest("hls/batch/first one.hls");
    assert_eq!(failed["state"], "failed");
    assert!(
        failed["error"].as_str().unwrap().contains("first one.mp4"),
        "{failed}"
    );
    assert!(!b
        .bucket()
        .join("hls/batch/first one.hls/master.m3u8")
        .exists());
    assert_eq!(b.manifest("hls/batch/second—two.hls")["state"], "complete");
    assert_decodes(&b.bucket().join("hls/batch/second—two.hls/master.m3u8"));
}

#[tokio::test]
async fn sqs_batch_reports_throttled_records_as_item_failures() {
    let ev = event(&fixture("sqs-batch.json"));
    let answer = handle(throttled_handler(), ev).await.unwrap();
    assert_eq!(
        answer,
        json!({ "batchItemFailures": [
            { "itemIdentifier": "059f36b4-87a3-44ab-83d2-661975830a7d" },
            { "itemIdentifier": "2e1424d4-f796-459a-8184-9c92662be6da" },
        ] })
    );
}

#[tokio::test]
async fn sqs_batch_reports_only_the_message_that_failed() {
    // One bucket throttles, the other answers: only the throttled message is redelivered.
    let b = Buckets::new();
    let good = b.put(
        "uploads/batch/second—two.mp4",
        &std::fs::read(media()).unwrap(),
    );
    let root = b.dir.path().to_path_buf();
    let handler = Arc::new(Handler {
        config: PipelineConfig::default(),
        stores: move |bucket: &str| -> hlspipe::Result<Arc<dyn Store>> {
            if bucket == "throttled-bucket" {
                Ok(Arc::new(Throttled))
            } else {
                Ok(Arc::new(DirStore::new(root.join(bucket))))
            }
        },
        invalidator: Arc::new(NoInvalidation),
        notifier: Arc::new(hlspipe::pipeline::notify::NoNotification),
        clock: || 1_000,
        redelivery: None,
        fleet: None,
    });
    let doc = fixture("sqs-batch.json").replace("2e4a6c8e0a2c4e6a8c0e2a4c6e8a0c2e", &good);
    // The first message's body names another bucket.
    let mut v: Value = serde_json::from_str(&doc).unwrap();
    let body = v["Records"][0]["body"]
        .as_str()
        .unwrap()
        .replace(r#""name":"hlspipe-media""#, r#""name":"throttled-bucket""#);
    v["Records"][0]["body"] = Value::String(body);
    let answer = handle(handler, LambdaEvent::new(v, Context::default()))
        .await
        .unwrap();
    assert_eq!(
        answer,
        json!({ "batchItemFailures": [{ "itemIdentifier": "059f36b4-87a3-44ab-83d2-661975830a7d" }] })
    );
    assert_eq!(b.manifest("hls/batch/second—two.hls")["state"], "complete");
}

#[tokio::test]
async fn direct_invocation_with_a_throttled_store_fails_so_lambda_retries() {
    let err = handle(throttled_handler(), event(&fixture("s3-put.json")))
        .await
        .unwrap_err();
    assert!(matches!(err, HandlerError::Retryable(_)), "{err}");
    assert!(err.to_string().contains("SlowDown"), "{err}");
    let err = handle(
        throttled_handler(),
        event(&fixture("eventbridge-created.json")),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, HandlerError::Retryable(_)), "{err}");
}

#[tokio::test]
async fn direct_corrupt_upload_succeeds_with_a_failed_manifest() {
    let b = Buckets::new();
    let etag = b.put("uploads/shows/Happy Faceé.mp4", &noise());
    let ev = event(&fixture("s3-put.json").replace("9b2cf535f27731c974343645a3985328", &etag));
    let answer = handle(b.handler(), ev).await.unwrap();
    assert_eq!(answer["failed"], 1, "{answer}");
    assert_eq!(answer["records"][0]["retryable"], false, "{answer}");
    assert_eq!(b.manifest("hls/shows/Happy Faceé.hls")["state"], "failed");
}

#[tokio::test]
async fn eventbridge_created_then_deleted() {
    let b = Buckets::new();
    let key = "uploads/eb/Über clip.mp4";
    let etag = b.put(key, &std::fs::read(media()).unwrap());
    let ev = event(
        &fixture("eventbridge-created.json").replace("b1946ac92492d2347c6235b4d2611184", &etag),
    );
    let answer = handle(b.handler(), ev).await.unwrap();
    assert_eq!(answer["records"][0]["outcome"], "processed", "{answer}");
    assert_decodes(&b.bucket().join("hls/eb/Über clip.hls/master.m3u8"));

    std::fs::remove_file(b.bucket().join(key)).unwrap();
    let answer = handle(b.handler(), event(&fixture("eventbridge-deleted.json")))
        .await
        .unwrap();
    assert_eq!(answer["records"][0]["outcome"], "removed", "{answer}");
    assert!(!b.bucket().join("hls/eb/Über clip.hls/master.m3u8").exists());
}

#[tokio::test]
async fn test_event_is_acknowledged_and_garbage_is_refused() {
    let b = Buckets::new();
    let answer = handle(b.handler(), event(&fixture("s3-test-event.json")))
        .await
        .unwrap();
    assert_eq!(answer["records"][0]["outcome"], "ignored", "{answer}");
    let err = handle(b.handler(), event(r#"{"hello": "world"}"#))
        .await
        .unwrap_err();
    assert!(matches!(err, HandlerError::Unreadable(_)), "{err}");
}

#[tokio::test]
async fn republish_through_the_handler_invalidates_the_master_once_per_version() {
    let b = Buckets::new();
    let key = "uploads/shows/Happy Faceé.mp4";
    let invalidator = Arc::new(RecordingInvalidator::default());
    let handler = |segment_duration: f64| {
        Arc::new(Handler {
            config: PipelineConfig {
                segment_duration,
                ..PipelineConfig::default()
            },
            stores: Stores::dir(b.dir.path()),
            invalidator: invalidator.clone(),
            notifier: Arc::new(hlspipe::pipeline::notify::NoNotification),
            clock: || 1_000,
            redelivery: None,
            fleet: None,
        })
    };
    let etag = b.put(key, &std::fs::read(media()).unwrap());
    let doc = fixture("s3-put.json").replace("9b2cf535f27731c974343645a3985328", &etag);
    handle(handler(6.0), event(&doc)).await.unwrap();
    assert!(invalidator.calls().is_empty());
    // New settings: a new version, so the master flips and is invalidated.
    handle(handler(2.0), event(&doc)).await.unwrap();
    assert_eq!(
        invalidator.calls(),
        [vec!["/hls/shows/Happy Faceé.hls/master.m3u8".to_string()]]
    );
    let reference = invalidator.references()[0].clone();
    assert!(
        reference.starts_with("hlspipe-") && reference.len() == 40,
        "{reference}"
    );
}

/// What the handler asked of SQS: (queue URL, receipt handle, seconds).
#[derive(Default)]
struct RecordingRedelivery(std::sync::Mutex<Vec<(String, String, i32)>>);

impl hlspipe::aws::sqs::Redelivery for RecordingRedelivery {
    fn delay<'a>(
        &'a self,
        queue_url: &'a str,
        receipt_handle: &'a str,
        seconds: i32,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = hlspipe::Result<()>> + Send + 'a>> {
        self.0
            .lock()
            .unwrap()
            .push((queue_url.into(), receipt_handle.into(), seconds));
        Box::pin(async { Ok(()) })
    }
}

/// Deployment issue, item 7: a retryable message came back only after the queue's whole
/// visibility timeout (an hour with the template's defaults). Each retried message is now
/// made visible again after a backoff by its delivery count; the answer is unchanged.
#[tokio::test]
async fn retried_sqs_messages_come_back_after_a_backoff_regression_an_hour_late() {
    let recorded = Arc::new(RecordingRedelivery::default());
    let handler = Arc::new(Handler {
        config: PipelineConfig::default(),
        stores: |_: &str| Ok(Arc::new(Throttled) as Arc<dyn Store>),
        invalidator: Arc::new(NoInvalidation),
        notifier: Arc::new(hlspipe::pipeline::notify::NoNotification),
        clock: || 1_000,
        redelivery: Some(Arc::clone(&recorded) as Arc<dyn hlspipe::aws::sqs::Redelivery>),
        fleet: None,
    });
    let mut v: Value = serde_json::from_str(&fixture("sqs-batch.json")).unwrap();
    v["Records"][1]["attributes"]["ApproximateReceiveCount"] = json!("3");
    let answer = handle(handler, LambdaEvent::new(v, Context::default()))
        .await
        .unwrap();
    assert_eq!(answer["batchItemFailures"].as_array().unwrap().len(), 2);
    let queue = "https://sqs.eu-west-1.amazonaws.com/123456789012/hlspipe-uploads";
    assert_eq!(
        *recorded.0.lock().unwrap(),
        [
            (
                queue.into(),
                "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a059f36b4".into(),
                30
            ),
            (
                queue.into(),
                "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a2e1424d4".into(),
                120
            ),
        ]
    );
}

/// The job's deadline keeps back at least 15 s, or a tenth of the invocation's time, from
/// Lambda's; a context without one (0) gives none.
#[test]
fn the_job_deadline_keeps_a_margin_before_lambdas() {
    use hlspipe_lambda::job_deadline;
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
    let now = SystemTime::now();
    let now_ms = now.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    assert!(job_deadline(0, now).is_none());
    let before = Instant::now();
    let ten_minutes = job_deadline(now_ms + 600_000, now).unwrap();
    let left = ten_minutes.duration_since(before);
    assert!(
        left <= Duration::from_secs(541) && left >= Duration::from_secs(539),
        "{left:?}"
    );
    let one_minute = job_deadline(now_ms + 60_000, now).unwrap();
    let left = one_minute.duration_since(before);
    assert!(
        left <= Duration::from_secs(46) && left >= Duration::from_secs(44),
        "{left:?}"
    );
    // Already too late: no write is started.
    assert!(
        job_deadline(now_ms + 5_000, now).unwrap() <= Instant::now() + Duration::from_millis(50)
    );
}

/// Records the messages a [`FleetRoute`] sends; fails every send when `refuse` is set.
#[derive(Default)]
struct FleetQueue {
    sent: std::sync::Mutex<Vec<(String, String)>>,
    refuse: bool,
}

impl QueueSender for FleetQueue {
    fn send<'a>(
        &'a self,
        queue_url: &'a str,
        body: String,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = hlspipe::Result<()>> + Send + 'a>> {
        Box::pin(async move {
            if self.refuse {
                return Err(hlspipe::Error::Queue("SendMessage: AccessDenied".into()));
            }
            self.sent.lock().unwrap().push((queue_url.into(), body));
            Ok(())
        })
    }
}

const FLEET_QUEUE: &str = "https://sqs.eu-west-1.amazonaws.com/123456789012/hlspipe-fleet";

fn fleet_handler(b: &Buckets, queue: &Arc<FleetQueue>, min_bytes: u64) -> Arc<Handler<Stores>> {
    let mut handler = Arc::try_unwrap(b.handler()).ok().unwrap();
    let sender: Arc<dyn QueueSender> = queue.clone();
    handler.fleet = Some(FleetRoute {
        queue_url: FLEET_QUEUE.into(),
        min_bytes,
        sender,
    });
    Arc::new(handler)
}

#[tokio::test]
async fn uploads_past_the_fleet_threshold_go_to_the_fleet_queue_as_the_same_job() {
    let b = Buckets::new();
    let small = b.put(
        "uploads/batch/first one.mp4",
        &std::fs::read(media()).unwrap(),
    );
    let large = b.put(
        "uploads/batch/second—two.mp4",
        &std::fs::read(media()).unwrap(),
    );
    let batch = fixture("sqs-batch.json")
        .replace("1f3870be274f6c49b3e31a0c6728957f", &small)
        .replace("2e4a6c8e0a2c4e6a8c0e2a4c6e8a0c2e", &large);
    // The first record says 52,100 bytes, the second 52,344: a threshold between them.
    let queue = Arc::new(FleetQueue::default());
    let answer = handle(fleet_handler(&b, &queue, 52_200), event(&batch))
        .await
        .unwrap();
    assert_eq!(answer, json!({ "batchItemFailures": [] }));
    // The small one is packaged here; the large one is not, and is on the fleet's queue.
    assert_eq!(b.manifest("hls/batch/first one.hls")["state"], "complete");
    assert!(!b.bucket().join("hls/batch/second—two.hls").exists());
    let sent = queue.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].0, FLEET_QUEUE);
    // What the fleet's `hlspipe worker` reads back: the same job, sequencer and all.
    let back = parse_message_body(&sent[0].1, Some("fleet-1"));
    let [Ok(record)] = back.as_slice() else {
        panic!("{back:?}");
    };
    assert_eq!(record.kind, RecordKind::Created);
    assert_eq!(record.job.key, "uploads/batch/second—two.mp4");
    assert_eq!(record.job.etag.as_deref(), Some(large.as_str()));
    assert_eq!(record.job.size, Some(52_344));
    assert_eq!(record.job.sequencer.as_deref(), Some("0062F1A3B4C5D6EB02"));

    // A queue that refuses: the large record comes back as a batch item failure, the small
    // one is done (already complete).
    let refusing = Arc::new(FleetQueue {
        refuse: true,
        ..FleetQueue::default()
    });
    let answer = handle(fleet_handler(&b, &refusing, 52_200), event(&batch))
        .await
        .unwrap();
    assert_eq!(
        answer,
        json!({ "batchItemFailures": [{ "itemIdentifier": "2e1424d4-f796-459a-8184-9c92662be6da" }] })
    );
}

#[test]
fn the_fleet_route_needs_its_queue_and_a_threshold() {
    let sender = || Arc::new(FleetQueue::default()) as Arc<dyn QueueSender>;
    let vars = |q: Option<&str>, m: Option<&str>| {
        FleetRoute::from_vars(q.map(str::to_owned), m.map(str::to_owned), sender)
    };
    assert!(vars(None, None).unwrap().is_none());
    assert!(vars(Some(""), Some("")).unwrap().is_none());
    assert_eq!(
        vars(Some(FLEET_QUEUE), Some("4294967296"))
            .unwrap()
            .unwrap()
            .min_bytes,
        4 << 30
    );
    for (q, m) in [
        (Some(FLEET_QUEUE), None),
        (None, Some("10")),
        (Some(FLEET_QUEUE), Some("4GB")),
        (Some(FLEET_QUEUE), Some("0")),
    ] {
        assert!(vars(q, m).is_err(), "{q:?} {m:?}");
    }
}

/// 16 s of 320x180 (a key frame each second) with AAC, made once with ffmpeg.
fn ladder_source() -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("lambda-ladder-source-16s.mp4");
    if path.exists() {
        return path;
    }
    let tmp = path.with_extension(format!("{}.mp4", std::process::id()));
    let out = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x180:rate=25",
        ])
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            "16",
        ])
        .args([
            "-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-pix_fmt", "yuv420p",
        ])
        .args(["-c:a", "aac", "-shortest"])
        .arg(&tmp)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&tmp, &path).unwrap();
    path
}

/// With a ladder and a fleet, the function plans a chunked ladder and puts its parts on the
/// fleet's queue (the fleet encodes them and publishes the title); the title is `processing`.
#[tokio::test]
async fn a_chunked_ladder_s_parts_go_to_the_fleet_queue() {
    let b = Buckets::new();
    let key = "uploads/long/clip.mp4";
    let source = std::fs::read(ladder_source()).unwrap();
    let etag = b.put(key, &source);
    let queue = Arc::new(FleetQueue::default());
    let mut handler = Arc::try_unwrap(fleet_handler(&b, &queue, u64::MAX))
        .ok()
        .unwrap();
    handler.config = PipelineConfig::load(
        [
            ("HLSPIPE_LADDER", "90p:120k"),
            ("HLSPIPE_CHUNK_SECONDS", "4"),
            ("HLSPIPE_SEGMENT_DURATION", "2"),
        ],
        None,
    )
    .unwrap();
    let s3_event =
        hlspipe::pipeline::event::s3_put_event(BUCKET, key, &etag, source.len() as u64, 0);
    let answer = handle(Arc::new(handler), event(&s3_event)).await.unwrap();
    assert_eq!(answer["failed"], 0, "{answer}");
    assert!(answer.to_string().contains("\"fanned_out\""), "{answer}");
    assert_eq!(b.manifest("hls/long/clip.hls")["state"], "processing");
    let sent = queue.sent.lock().unwrap().clone();
    let parts: Vec<String> = sent
        .iter()
        .map(|(url, body)| {
            assert_eq!(url, FLEET_QUEUE);
            let back = parse_message_body(body, Some("part"));
            let [Ok(record)] = back.as_slice() else {
                panic!("{back:?}");
            };
            let RecordKind::Part(part) = &record.kind else {
                panic!("{record:?}");
            };
            assert_eq!(record.job.key, key);
            assert_eq!(record.job.etag.as_deref(), Some(etag.as_str()));
            part.part.clone()
        })
        .collect();
    assert_eq!(
        parts,
        // The source is kept, with its own AAC sound: no `sound` part.
        [
            "previews",
            "chunk-00000",
            "chunk-00001",
            "chunk-00002",
            "chunk-00003"
        ]
    );
}
