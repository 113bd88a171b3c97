//! Item 2 of the deployment review: without `s3:ListBucket` applying to the request, S3
//! answers a HEAD or GET of a missing key with `403 AccessDenied` (Amazon S3 API Reference,
//! HeadObject and GetObject, "Permissions"). A new title's first step reads its (missing)
//! `manifest.json`, so under such a policy every job meets a 403. It must come back as a
//! retryable failure, so that the queue delivers it again and a wrong policy ends in the
//! dead-letter queue, seen, not as a deleted message with a log line; and nothing of the
//! title may be written. Once the policy is right, the same record publishes.
//!
//! A real S3 server behind the fault proxy, which turns each 404 into S3's 403. And the
//! invocation deadline on the same server, the proxy slowing the writes down.

use crate::support::proxy::{Fault, Proxy};
use crate::support::s3::S3Server;
use crate::support::{clip, s3::bucket_name};
use hlspipe::media::object::{Body, Object};
use hlspipe::pipeline::batch::retryable_batch_item_failures;
use hlspipe::pipeline::config::PipelineConfig;
use hlspipe::pipeline::event::{Job, Record, RecordKind};
use hlspipe::pipeline::outcome::Outcome;
use hlspipe::store::{S3Client, S3Store, Store};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

const KEY: &str = "uploads/shows/denied.mp4";
const GONE: &str = "uploads/shows/gone.mp4";

fn record(kind: RecordKind, bucket: &str, key: &str, etag: Option<&str>, id: &str) -> Record {
    Record {
        reprocess: false,
        kind,
        job: Job {
            bucket: bucket.into(),
            key: key.into(),
            etag: etag.map(str::to_owned),
            size: None,
            sequencer: None,
        },
        message_id: Some(id.into()),
    }
}

/// The clip at [`KEY`], written straight to the server; its ETag.
fn upload(direct: &S3Store) -> String {
    let upload = Object {
        key: KEY.into(),
        content_type: "video/mp4",
        cache_control: "no-cache",
        body: Body::from_bytes(std::fs::read(clip()).unwrap()),
    };
    direct.put(KEY, &upload, &[]).unwrap();
    direct.head(KEY).unwrap().unwrap().etag
}

#[test]
fn access_denied_for_a_missing_key_is_retried_and_writes_nothing_regression_403_treated_as_permanent(
) {
    let server = S3Server::shared();
    let bucket = bucket_name("denied");
    let direct = server.bucket(&bucket);
    let etag = upload(&direct);
    let proxy = Proxy::start(server.addr, |_| Fault::DenyMissing);
    let client = Arc::new(S3Client::new(&S3Server::settings_for(&proxy.endpoint(), 2)).unwrap());
    let denied: Arc<dyn Store> = Arc::new(S3Store::new(client, &bucket, ""));
    let config = PipelineConfig::default();
    let worker = crate::support::pipeline(&config);

    let created = record(RecordKind::Created, &bucket, KEY, Some(&etag), "m-created");
    // The removal of an upload that is gone: its HEAD is denied too, which must not be read
    // as "gone, delete the title".
    let removed = record(RecordKind::Removed, &bucket, GONE, None, "m-removed");
    let store_for = |_: &str| Ok(Arc::clone(&denied));
    let handled = worker.handle_all(&[Ok(created.clone()), Ok(removed)], &store_for);
    for h in &handled {
        let Outcome::Failed {
            reason, retryable, ..
        } = &h.outcome
        else {
            panic!("{:?}: not a failure: {:?}", h.message_id, h.outcome);
        };
        assert!(
            *retryable,
            "{:?}: a 403 must be retried: {reason}",
            h.message_id
        );
        assert!(
            reason.contains("AccessDenied") || reason.contains("403"),
            "{reason}"
        );
    }
    // What the Lambda function reports as batchItemFailures and the worker leaves on the
    // queue: both messages come back.
    assert_eq!(
        retryable_batch_item_failures(&handled),
        Some(vec!["m-created".to_string(), "m-removed".to_string()])
    );
    assert!(proxy.counts.denied.load(Ordering::SeqCst) >= 2);
    let written: Vec<String> = direct
        .list("hls/")
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert!(
        written.is_empty(),
        "written under a denied policy: {written:?}"
    );
    assert!(direct.head(KEY).unwrap().is_some(), "the upload is kept");

    // The policy fixed (404 for a missing key): the message delivered again publishes.
    let fixed: Arc<dyn Store> = direct;
    let outcome = worker.handle_record(&fixed, &created);
    assert!(matches!(outcome, Outcome::Processed { .. }), "{outcome:?}");
    assert!(fixed
        .head("hls/shows/denied.hls/master.m3u8")
        .unwrap()
        .is_some());
}

/// The deadline on S3 (deployment issue, checks): PUTs made slow by the proxy, a job with
/// three seconds stops before its deadline with a retryable failure that `manifest.json`
/// records, the live master untouched; the retry, without a deadline, writes none of the
/// segments the first attempt wrote and publishes.
#[test]
fn a_job_out_of_time_on_s3_stops_records_it_and_the_retry_resumes() {
    let server = S3Server::shared();
    let bucket = bucket_name("deadline");
    let direct = server.bucket(&bucket);
    let etag = upload(&direct);
    let segment_puts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = Arc::clone(&segment_puts);
    // After three segment writes, every one takes 4 s.
    let proxy = Proxy::start(server.addr, move |r| {
        let segment = r.method == "PUT"
            && r.path
                .split('?')
                .next()
                .is_some_and(|p| p.ends_with(".m4s"));
        if segment && counted.fetch_add(1, Ordering::SeqCst) >= 3 {
            Fault::Delay(std::time::Duration::from_secs(4))
        } else {
            Fault::Forward
        }
    });
    let client = Arc::new(S3Client::new(&S3Server::settings_for(&proxy.endpoint(), 2)).unwrap());
    let slow: Arc<dyn Store> = Arc::new(S3Store::new(client, &bucket, ""));
    let config = PipelineConfig {
        segment_duration: 1.0,
        ..PipelineConfig::default()
    };
    let worker = hlspipe::pipeline::job::Pipeline {
        deadline: Some(std::time::Instant::now() + std::time::Duration::from_secs(3)),
        ..crate::support::pipeline(&config)
    };
    let created = record(RecordKind::Created, &bucket, KEY, Some(&etag), "m-1");
    let outcome = worker.handle_record(&slow, &created);
    let Outcome::Failed {
        reason, retryable, ..
    } = &outcome
    else {
        panic!("not stopped: {outcome:?}");
    };
    assert!(*retryable && reason.contains("deadline"), "{outcome:?}");
    let title = "hls/shows/denied.hls/";
    // Published progressively (no version was live): a master out before the deadline names
    // the growing playlists, never the complete ones.
    if let Some(master) = direct.get(&format!("{title}master.m3u8")).unwrap() {
        let master = String::from_utf8(master).unwrap();
        assert!(
            master.contains("/event.m3u8") && !master.contains("/index.m3u8"),
            "{master}"
        );
    }
    let manifest: serde_json::Value = serde_json::from_slice(
        &direct
            .get(&format!("{title}manifest.json"))
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert!(
        manifest["error"]
            .as_str()
            .unwrap_or("")
            .contains("deadline"),
        "{manifest}"
    );
    let segments = |store: &S3Store| -> Vec<String> {
        store
            .list(&format!("{title}v/"))
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .filter(|k| k.ends_with(".m4s"))
            .collect()
    };
    let before = segments(&direct);
    assert!(
        !before.is_empty(),
        "nothing was written before the deadline"
    );

    let writes = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = Arc::clone(&writes);
    let recording = Proxy::start(server.addr, move |r| {
        if r.method == "PUT" {
            seen.lock()
                .unwrap()
                .push(r.path.split('?').next().unwrap_or_default().to_owned());
        }
        Fault::Forward
    });
    let client =
        Arc::new(S3Client::new(&S3Server::settings_for(&recording.endpoint(), 2)).unwrap());
    let store: Arc<dyn Store> = Arc::new(S3Store::new(client, &bucket, ""));
    let retry = crate::support::pipeline(&config);
    let outcome = retry.handle_record(&store, &created);
    assert!(matches!(outcome, Outcome::Processed { .. }), "{outcome:?}");
    let rewritten: Vec<String> = writes
        .lock()
        .unwrap()
        .iter()
        .filter(|path| before.iter().any(|k| path.ends_with(k.as_str())))
        .cloned()
        .collect();
    assert!(rewritten.is_empty(), "the retry wrote again: {rewritten:?}");
    assert!(segments(&direct).len() >= before.len());
    assert!(direct
        .head(&format!("{title}master.m3u8"))
        .unwrap()
        .is_some());
}
