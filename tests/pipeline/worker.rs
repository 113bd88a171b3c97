//! The job logic: idempotency (no writes the second time), stale events, failures that
//! keep the previous master, removal, re-publish with invalidation and garbage collection,
//! title manifests, and the configuration the worker refuses.

use crate::support::buckets::{process_event, record, Buckets};
use crate::support::store::FakeStore;
use crate::support::{assert_decodes, clip, event_fixture, small_clip, stderr, stdout};
use hlspipe::media::package::version_for_etags;
use hlspipe::pipeline::config::PipelineConfig;
use hlspipe::pipeline::event::RecordKind;
use hlspipe::pipeline::invalidate::NoInvalidation;
use hlspipe::pipeline::job::Pipeline;
use hlspipe::pipeline::outcome::Outcome;
use hlspipe::store::Store;
use hlspipe::testing::RecordingInvalidator;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

fn put_event(key_encoded: &str, etag: &str) -> String {
    event_fixture("s3-put.json")
        .replace("uploads/shows/Happy+Face%C3%A9.mp4", key_encoded)
        .replace("9b2cf535f27731c974343645a3985328", etag)
}

#[test]
fn same_event_twice_is_one_version_and_writes_nothing() {
    let b = Buckets::new();
    let key = "uploads/shows/ep 1.mp4";
    let etag = b.put_file(key, clip());
    let counting = Arc::new(FakeStore::new(b.store()));
    let store: Arc<dyn Store> = counting.clone();
    let config = PipelineConfig::default();
    let worker = crate::support::pipeline(&config);
    let rec = record(RecordKind::Created, key, Some(&etag));

    let Outcome::Processed { version, .. } = worker.handle_record(&store, &rec) else {
        panic!("not processed");
    };
    assert_eq!(version, version_for_etags(&[&etag], &config.settings()));
    let writes = counting.writes();
    assert!(writes > 3);
    let keys = b.keys("hls/");
    let manifest = b.read("hls/shows/ep 1.hls/manifest.json");

    let again = worker.handle_record(&store, &rec);
    assert_eq!(
        again,
        Outcome::AlreadyComplete {
            title: "shows/ep 1".into(),
            version: version.clone()
        }
    );
    assert_eq!(counting.writes(), writes, "the second run wrote something");
    assert_eq!(b.keys("hls/"), keys);
    assert_eq!(b.read("hls/shows/ep 1.hls/manifest.json"), manifest);

    // Through the CLI as well: the same event file twice.
    let event = put_event("uploads/shows/ep+1.mp4", &etag);
    let out = process_event(&b, &event, &[], &[]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("already complete"),
        "{}",
        stdout(&out)
    );
    assert_eq!(b.keys("hls/"), keys);
    assert_eq!(b.read("hls/shows/ep 1.hls/manifest.json"), manifest);
    let versions: std::collections::BTreeSet<String> = keys
        .iter()
        .filter_map(|k| k.strip_prefix("hls/shows/ep 1.hls/v/"))
        .filter_map(|k| k.split('/').next())
        .map(String::from)
        .collect();
    assert_eq!(versions.into_iter().collect::<Vec<_>>(), [version]);
}

#[test]
fn stale_etag_is_skipped() {
    let b = Buckets::new();
    b.put_file("uploads/shows/ep1.mp4", clip());
    let event = put_event("uploads/shows/ep1.mp4", "0123456789abcdef0123456789abcdef");
    let out = process_event(&b, &event, &[], &[]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("stale:"), "{}", stdout(&out));
    assert!(b.keys("hls/").is_empty());
}

/// 1 KiB of noise (a fixed-seed xorshift, so every run sees the same bytes).
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

#[test]
fn corrupt_upload_fails_and_the_next_record_still_runs() {
    let b = Buckets::new();
    let bad = b.put_bytes("uploads/batch/first one.mp4", &noise());
    let good = b.put_file("uploads/batch/second—two.mp4", clip());
    let event = event_fixture("sqs-batch.json")
        .replace("1f3870be274f6c49b3e31a0c6728957f", &bad)
        .replace("2e4a6c8e0a2c4e6a8c0e2a4c6e8a0c2e", &good);
    let out = process_event(&b, &event, &[], &["--json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["records"][0]["outcome"], "failed");
    assert_eq!(report["records"][0]["retryable"], false);
    assert_eq!(report["records"][1]["outcome"], "processed");
    // A corrupt upload is a permanent failure: not delivered again (the Lambda function's
    // partial batch response lists only retryable ones).
    assert_eq!(report["batchItemFailures"], serde_json::json!([]));

    let failed = b.manifest("hls/batch/first one.hls/");
    assert_eq!(failed["state"], "failed");
    assert!(
        failed["error"].as_str().unwrap().contains("first one.mp4"),
        "{failed}"
    );
    assert!(!b.exists("hls/batch/first one.hls/master.m3u8"));
    assert_decodes(&b.bucket().join("hls/batch/second—two.hls/master.m3u8"));

    // Text output says the same, one line per record.
    let out = process_event(&b, &event, &[], &[]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.lines().next().unwrap().contains("failed:"), "{text}");
    assert!(
        text.lines().nth(1).unwrap().contains("already complete"),
        "{text}"
    );
}

#[test]
fn failed_republish_keeps_the_previous_master() {
    let b = Buckets::new();
    let key = "uploads/shows/ep1.mp4";
    let etag = b.put_file(key, clip());
    let store: Arc<dyn Store> = Arc::new(b.store());
    let config = PipelineConfig::default();
    let worker = Pipeline {
        config: &config,
        invalidator: &NoInvalidation,
        notifier: &hlspipe::pipeline::notify::NoNotification,
        parts: None,
        deadline: None,
        clock: &|| 5,
        rebuild: false,
    };
    let Outcome::Processed { version, .. } =
        worker.handle_record(&store, &record(RecordKind::Created, key, Some(&etag)))
    else {
        panic!("not processed");
    };
    let master = b.read("hls/shows/ep1.hls/master.m3u8");

    let bad = b.put_bytes(key, &noise());
    let outcome = worker.handle_record(&store, &record(RecordKind::Created, key, Some(&bad)));
    assert!(
        matches!(
            &outcome,
            Outcome::Failed {
                retryable: false,
                ..
            }
        ),
        "{outcome}"
    );
    assert_eq!(b.read("hls/shows/ep1.hls/master.m3u8"), master);
    let m = b.manifest("hls/shows/ep1.hls/");
    assert_eq!(m["state"], "failed");
    assert_eq!(
        m["version"],
        version.as_str(),
        "the live version is still named"
    );
    assert!(m["error"].as_str().is_some_and(|e| !e.is_empty()));
    assert_eq!(m["retired"][0]["version"], m["target_version"]);
    assert_decodes(&b.bucket().join("hls/shows/ep1.hls/master.m3u8"));
}

/// Publishes `clip()` at `key`, then uploads `small_clip()` over it and hands that
/// upload's event to the worker through the fake store as `store` sets it up: the
/// outcome, and the master before.
fn overtaken_republish(
    b: &Buckets,
    key: &str,
    store: impl FnOnce(FakeStore) -> FakeStore,
) -> (Outcome, Vec<u8>) {
    let etag = b.put_file(key, clip());
    let config = PipelineConfig::default();
    let worker = Pipeline {
        config: &config,
        invalidator: &NoInvalidation,
        notifier: &hlspipe::pipeline::notify::NoNotification,
        parts: None,
        deadline: None,
        clock: &|| 5,
        rebuild: false,
    };
    let plain: Arc<dyn Store> = Arc::new(b.store());
    let Outcome::Processed { .. } =
        worker.handle_record(&plain, &record(RecordKind::Created, key, Some(&etag)))
    else {
        panic!("not processed");
    };
    let master = b.read("hls/shows/ep1.hls/master.m3u8");
    let next = b.put_file(key, small_clip());
    let store: Arc<dyn Store> = Arc::new(store(FakeStore::new(b.store())));
    let outcome = worker.handle_record(&store, &record(RecordKind::Created, key, Some(&next)));
    (outcome, master)
}

/// Being overtaken is not a failure of the title: the newer upload's event will publish
/// it. So the job is stale: not retried, no `failed` manifest (which could land after the
/// newer job's `complete` one), and the live master stays.
fn assert_overtaken(b: &Buckets, key: &str, outcome: &Outcome, master: &[u8]) {
    let Outcome::Stale {
        key: stale_key,
        reason,
    } = outcome
    else {
        panic!("{outcome}");
    };
    assert_eq!(stale_key, key);
    assert!(reason.contains("newer upload"), "{reason}");
    assert!(!outcome.is_retryable() && !outcome.is_failure());
    assert_eq!(b.read("hls/shows/ep1.hls/master.m3u8"), master);
    assert_ne!(b.manifest("hls/shows/ep1.hls/")["state"], "failed");
    assert_decodes(&b.bucket().join("hls/shows/ep1.hls/master.m3u8"));
}

#[test]
fn a_source_replaced_while_read_is_stale_not_failed() {
    let b = Buckets::new();
    let key = "uploads/shows/ep1.mp4";
    let (outcome, master) = overtaken_republish(&b, key, |store| store.sources_replaced_after(3));
    assert_overtaken(&b, key, &outcome, &master);
}

/// A newer upload lands while this job writes its objects. Its bytes were all read, but
/// the master must not flip to them: the newer job may already have flipped it to its
/// own version. The check runs just before the flip.
#[test]
fn a_source_replaced_during_publish_does_not_flip_the_master() {
    let b = Buckets::new();
    let key = "uploads/shows/ep1.mp4";
    let source = b.bucket().join(key);
    let landed = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&landed);
    let (outcome, master) = overtaken_republish(&b, key, move |store| {
        store.before_put(move |put_key| {
            // With the first media playlist: after every segment was read and written.
            if put_key.ends_with("/index.m3u8") && seen.fetch_add(1, Ordering::SeqCst) == 0 {
                std::fs::write(&source, noise()).unwrap();
            }
        })
    });
    assert!(
        landed.load(Ordering::SeqCst) > 0,
        "no media playlist was written"
    );
    assert_overtaken(&b, key, &outcome, &master);
}

#[test]
fn republish_invalidates_only_the_master_and_gc_collects_old_versions() {
    let b = Buckets::new();
    let key = "uploads/shows/ep1.mp4";
    let store: Arc<dyn Store> = Arc::new(b.store());
    let invalidator = RecordingInvalidator::default();
    let now = AtomicU64::new(1_000);
    let clock = || now.load(Ordering::SeqCst);
    let mut config = PipelineConfig {
        gc_grace_seconds: 100,
        ..PipelineConfig::default()
    };
    let publish = |config: &PipelineConfig, etag: &str| {
        let worker = Pipeline {
            config,
            invalidator: &invalidator,
            notifier: &hlspipe::pipeline::notify::NoNotification,
            parts: None,
            deadline: None,
            clock: &clock,
            rebuild: false,
        };
        match worker.handle_record(&store, &record(RecordKind::Created, key, Some(etag))) {
            Outcome::Processed { version, .. } => version,
            other => panic!("{other}"),
        }
    };

    let v1 = publish(&config, &b.put_file(key, clip()));
    assert!(
        invalidator.calls().is_empty(),
        "first publish: nothing cached to drop"
    );

    now.store(2_000, Ordering::SeqCst);
    let v2 = publish(&config, &b.put_file(key, small_clip()));
    assert_ne!(v1, v2);
    assert_eq!(
        invalidator.calls(),
        [vec!["/hls/shows/ep1.hls/master.m3u8".to_string()]]
    );
    let m = b.manifest("hls/shows/ep1.hls/");
    assert_eq!(
        m["retired"],
        serde_json::json!([{ "version": v1, "retired_at": 2000 }])
    );
    assert!(
        !b.keys(&format!("hls/shows/ep1.hls/v/{v1}/")).is_empty(),
        "still in grace"
    );

    // Same source, new settings: a third version; by now v1's grace has passed.
    now.store(2_200, Ordering::SeqCst);
    config.segment_duration = 2.0;
    let etag = store.head(key).unwrap().unwrap().etag;
    let v3 = publish(&config, &etag);
    assert_eq!(invalidator.calls().len(), 2);
    let refs = invalidator.references();
    assert_ne!(refs[0], refs[1], "one reference per (title, version)");
    assert!(b.keys(&format!("hls/shows/ep1.hls/v/{v1}/")).is_empty());
    assert!(!b.keys(&format!("hls/shows/ep1.hls/v/{v2}/")).is_empty());
    assert!(!b.keys(&format!("hls/shows/ep1.hls/v/{v3}/")).is_empty());
    let m = b.manifest("hls/shows/ep1.hls/");
    assert_eq!(m["version"], v3.as_str());
    assert_eq!(
        m["retired"],
        serde_json::json!([{ "version": v2, "retired_at": 2200 }])
    );
    assert_decodes(&b.bucket().join("hls/shows/ep1.hls/master.m3u8"));
}

#[test]
fn overlapping_prefixes_are_refused() {
    let b = Buckets::new();
    let etag = b.put_file("uploads/shows/ep1.mp4", clip());
    let out = process_event(
        &b,
        &put_event("uploads/shows/ep1.mp4", &etag),
        &[("HLSPIPE_OUTPUT_PREFIX", "uploads/hls/")],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("overlap"), "{}", stderr(&out));
    assert_eq!(b.keys(""), ["uploads/shows/ep1.mp4"]);
}

#[test]
fn objects_under_the_output_prefix_are_never_processed() {
    let b = Buckets::new();
    let key = "hls/shows/ep1.hls/v/0123456789ab/video_180p/init.mp4";
    let etag = b.put_file(key, clip());
    let counting = Arc::new(FakeStore::new(b.store()));
    let store: Arc<dyn Store> = counting.clone();
    let config = PipelineConfig::default();
    let worker = Pipeline {
        config: &config,
        invalidator: &NoInvalidation,
        notifier: &hlspipe::pipeline::notify::NoNotification,
        parts: None,
        deadline: None,
        clock: &|| 1,
        rebuild: false,
    };
    for kind in [RecordKind::Created, RecordKind::Removed] {
        let outcome = worker.handle_record(&store, &record(kind, key, Some(&etag)));
        assert!(matches!(outcome, Outcome::Ignored { .. }), "{outcome}");
    }
    assert_eq!(counting.calls(), 0, "the store was not even asked");

    let out = process_event(
        &b,
        &put_event(
            "hls/shows/ep1.hls/v/0123456789ab/video_180p/init.mp4",
            &etag,
        ),
        &[],
        &[],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("ignored:"), "{}", stdout(&out));
    assert_eq!(b.keys(""), [key]);
}

#[test]
fn title_manifest_publishes_a_ladder() {
    let b = Buckets::new();
    let store: Arc<dyn Store> = Arc::new(b.store());
    let config = PipelineConfig::default();
    let worker = Pipeline {
        config: &config,
        invalidator: &NoInvalidation,
        notifier: &hlspipe::pipeline::notify::NoNotification,
        parts: None,
        deadline: None,
        clock: &|| 7,
        rebuild: false,
    };
    let manifest_key = "uploads/shows/ep1.title.json";
    let m_etag = b.put_bytes(
        manifest_key,
        br#"{ "inputs": ["shows/ep1 high.mp4", "shows/ep1 low.mp4"] }"#,
    );
    let hi = b.put_file("uploads/shows/ep1 high.mp4", clip());

    // The title manifest arrives first: one input is missing, the title waits.
    let outcome = worker.handle_record(
        &store,
        &record(RecordKind::Created, manifest_key, Some(&m_etag)),
    );
    assert!(
        matches!(&outcome, Outcome::Ignored { reason } if reason.contains("waiting")),
        "{outcome}"
    );
    // An input's own event is claimed by the title manifest, and also waits.
    let outcome = worker.handle_record(
        &store,
        &record(RecordKind::Created, "uploads/shows/ep1 high.mp4", Some(&hi)),
    );
    assert!(matches!(outcome, Outcome::Ignored { .. }), "{outcome}");
    assert!(b.keys("hls/").is_empty());

    // The last input completes the title.
    let lo = b.put_file("uploads/shows/ep1 low.mp4", small_clip());
    let outcome = worker.handle_record(
        &store,
        &record(RecordKind::Created, "uploads/shows/ep1 low.mp4", Some(&lo)),
    );
    let Outcome::Processed { title, version, .. } = outcome else {
        panic!("{outcome}");
    };
    assert_eq!(title, "shows/ep1");
    assert_eq!(version, version_for_etags(&[&hi, &lo], &config.settings()));
    let m = b.manifest("hls/shows/ep1.hls/");
    let names: Vec<&str> = m["renditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["video_180p", "video_90p", "audio_und"]);
    assert!(b.keys("hls/shows/ep1 ").is_empty(), "inputs are not titles");
    assert_decodes(&b.bucket().join("hls/shows/ep1.hls/master.m3u8"));

    // The title manifest's own (late) event: nothing more to do.
    let outcome = worker.handle_record(
        &store,
        &record(RecordKind::Created, manifest_key, Some(&m_etag)),
    );
    assert!(
        matches!(outcome, Outcome::AlreadyComplete { .. }),
        "{outcome}"
    );

    // Removing an input keeps the title; removing the title manifest removes it.
    std::fs::remove_file(b.bucket().join("uploads/shows/ep1 low.mp4")).unwrap();
    let outcome = worker.handle_record(
        &store,
        &record(RecordKind::Removed, "uploads/shows/ep1 low.mp4", None),
    );
    assert!(matches!(outcome, Outcome::Ignored { .. }), "{outcome}");
    assert!(b.exists("hls/shows/ep1.hls/master.m3u8"));
    std::fs::remove_file(b.bucket().join(manifest_key)).unwrap();
    let outcome = worker.handle_record(&store, &record(RecordKind::Removed, manifest_key, None));
    assert!(matches!(outcome, Outcome::Removed { .. }), "{outcome}");
    assert!(b.keys("hls/").is_empty());
}

#[test]
fn a_bad_title_manifest_is_a_permanent_failure_with_a_failed_manifest() {
    let b = Buckets::new();
    let store: Arc<dyn Store> = Arc::new(b.store());
    let config = PipelineConfig::default();
    let worker = Pipeline {
        config: &config,
        invalidator: &NoInvalidation,
        notifier: &hlspipe::pipeline::notify::NoNotification,
        parts: None,
        deadline: None,
        clock: &|| 7,
        rebuild: false,
    };
    let key = "uploads/shows/ep2.title.json";
    let etag = b.put_bytes(key, br#"{ "inputs": ["elsewhere/ep2.mp4"] }"#);
    let outcome = worker.handle_record(&store, &record(RecordKind::Created, key, Some(&etag)));
    assert!(
        matches!(&outcome, Outcome::Failed { retryable: false, reason, .. } if reason.contains("folder")),
        "{outcome}"
    );
    assert_eq!(b.manifest("hls/shows/ep2.hls/")["state"], "failed");
}

#[test]
fn unsupported_store_schemes_are_refused_clearly() {
    let b = Buckets::new();
    let out = process_event(
        &b,
        &event_fixture("s3-test-event.json"),
        &[("HLSPIPE_STORE", "http://bucket")],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("expected file:///absolute/path (a folder of buckets) or s3://"),
        "{}",
        stderr(&out)
    );
    // Event commands take buckets from the events: a bucket in the URL is refused by name.
    let out = process_event(
        &b,
        &event_fixture("s3-test-event.json"),
        &[("HLSPIPE_STORE", "s3://bucket")],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("buckets come from the events"),
        "{}",
        stderr(&out)
    );
}

/// STYLE.md's warning about a Lambda example: a record that cannot be read must fail (and
/// be reported for its SQS message), never be skipped while the batch reports success.
#[test]
fn an_undecodable_key_fails_its_message_and_the_batch_goes_on() {
    let b = Buckets::new();
    let good = b.put_file("uploads/batch/second—two.mp4", clip());
    let event = event_fixture("sqs-batch.json")
        .replace("first+one.mp4", "first%C3one.mp4")
        .replace("2e4a6c8e0a2c4e6a8c0e2a4c6e8a0c2e", &good);
    let out = process_event(&b, &event, &[], &["--json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["records"][0]["outcome"], "failed");
    assert!(
        report["records"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("UTF-8"),
        "{report}"
    );
    assert_eq!(report["records"][1]["outcome"], "processed");
    // A corrupt upload is a permanent failure: not delivered again (the Lambda function's
    // partial batch response lists only retryable ones).
    assert_eq!(report["batchItemFailures"], serde_json::json!([]));
}

/// DESIGN.md "Titles": two uploads that make one title (another extension, or the NFD
/// spelling macOS writes) cannot both own it. The first keeps it, the second is refused by
/// name as a permanent failure that writes nothing, and once the first upload is gone the
/// second may take the title over.
#[test]
fn a_second_upload_that_names_the_same_title_is_refused_until_the_first_is_gone() {
    let b = Buckets::new();
    let store: Arc<dyn Store> = Arc::new(b.store());
    let config = PipelineConfig::default();
    let worker = crate::support::pipeline(&config);
    let first = "uploads/Café.mp4";
    let first_etag = b.put_file(first, clip());
    let rec = record(RecordKind::Created, first, Some(&first_etag));
    assert!(matches!(
        worker.handle_record(&store, &rec),
        Outcome::Processed { .. }
    ));
    let manifest = b.read("hls/Café.hls/manifest.json");

    for second in ["uploads/Cafe\u{301}.MOV", "uploads/Café.m4v"] {
        let etag = b.put_file(second, small_clip());
        let outcome =
            worker.handle_record(&store, &record(RecordKind::Created, second, Some(&etag)));
        let Outcome::Failed {
            reason, retryable, ..
        } = &outcome
        else {
            panic!("{second}: {outcome:?}");
        };
        assert!(!retryable, "{outcome:?}");
        assert!(
            reason.contains("already made from 'uploads/Café.mp4'") && reason.contains(second),
            "{reason}"
        );
        assert_eq!(b.read("hls/Café.hls/manifest.json"), manifest, "{second}");
        std::fs::remove_file(b.bucket().join(second)).unwrap();
    }

    // The owner is removed (its own removal event not yet seen): the other upload takes over.
    let second = "uploads/Cafe\u{301}.MOV";
    let etag = b.put_file(second, small_clip());
    std::fs::remove_file(b.bucket().join(first)).unwrap();
    let outcome = worker.handle_record(&store, &record(RecordKind::Created, second, Some(&etag)));
    assert!(
        matches!(outcome, Outcome::Processed { ref title, .. } if title == "Café"),
        "{outcome:?}"
    );
    assert_decodes(&b.bucket().join("hls/Café.hls/master.m3u8"));
}

/// Regressions (reliability issue, defects 1, 2 and 6): a title nested below another
/// (`uploads/show.mp4` and `uploads/show/ep1.mp4`) is opened by neither the other's cookies
/// nor its removal; removal deletes exactly the versions the title's manifest records; and a
/// version written by a job that never flipped (superseded, or a worker that died) is recorded
/// by the next job, so GC collects it instead of leaving it on the store for good.
#[test]
fn removal_by_record_spares_nested_titles_and_unflipped_versions_are_collected_regression_pattern_removal(
) {
    let b = Buckets::new();
    let store: Arc<dyn Store> = Arc::new(b.store());
    let config = PipelineConfig {
        gc_grace_seconds: 0,
        ..PipelineConfig::default()
    };
    let now = AtomicU64::new(1_000);
    let clock = || now.fetch_add(1, Ordering::SeqCst);
    let worker = Pipeline {
        config: &config,
        invalidator: &NoInvalidation,
        notifier: &hlspipe::pipeline::notify::NoNotification,
        parts: None,
        deadline: None,
        clock: &clock,
        rebuild: false,
    };
    let parent = b.put_file("uploads/show.mp4", clip());
    let nested = b.put_file("uploads/show/ep1.mp4", small_clip());
    for (key, etag) in [
        ("uploads/show.mp4", &parent),
        ("uploads/show/ep1.mp4", &nested),
    ] {
        let outcome = worker.handle_record(&store, &record(RecordKind::Created, key, Some(etag)));
        assert!(matches!(outcome, Outcome::Processed { .. }), "{outcome:?}");
    }
    // The bundles cannot nest: the nested title lives beside its parent's bundle.
    assert!(b.exists("hls/show.hls/master.m3u8"));
    assert!(b.exists("hls/show/ep1.hls/master.m3u8"));

    // A job that wrote a version and never flipped: its version is the manifest's target.
    let manifest_key = "hls/show.hls/manifest.json";
    let mut m = b.manifest("hls/show.hls/");
    m["target_version"] = "aaaaaaaaaaaa".into();
    b.put_bytes(manifest_key, &serde_json::to_vec(&m).unwrap());
    b.put_bytes(
        "hls/show.hls/v/aaaaaaaaaaaa/video_180p/seg_00001.m4s",
        b"unflipped",
    );
    // The next upload's job records it as retired, and GC (grace 0) removes it.
    let replaced = b.put_file("uploads/show.mp4", small_clip());
    let outcome = worker.handle_record(
        &store,
        &record(RecordKind::Created, "uploads/show.mp4", Some(&replaced)),
    );
    assert!(matches!(outcome, Outcome::Processed { .. }), "{outcome:?}");
    assert!(
        b.keys("hls/show.hls/v/aaaaaaaaaaaa/").is_empty(),
        "the unflipped version stays"
    );

    // Something the manifest does not record is never removed by pattern.
    b.put_bytes(
        "hls/show.hls/v/bbbbbbbbbbbb/keep.bin",
        b"not ours to delete",
    );
    std::fs::remove_file(b.bucket().join("uploads/show.mp4")).unwrap();
    let outcome = worker.handle_record(
        &store,
        &record(RecordKind::Removed, "uploads/show.mp4", None),
    );
    assert!(matches!(outcome, Outcome::Removed { .. }), "{outcome:?}");
    assert_eq!(
        b.keys("hls/show.hls/"),
        vec!["hls/show.hls/v/bbbbbbbbbbbb/keep.bin".to_string()]
    );
    // The nested title is whole and still plays.
    assert_eq!(b.manifest("hls/show/ep1.hls/")["state"], "complete");
    assert_decodes(&b.bucket().join("hls/show/ep1.hls/master.m3u8"));
}

/// Title events (deployment issue, item 14): the notifier hears of a publish (with the
/// master's key), of a permanent failure (with the reason), of a removal; not of a title
/// already complete, nor of an ignored key.
#[test]
fn the_notifier_hears_of_publishes_failures_and_removals() {
    use hlspipe::pipeline::notify::TitleChange;
    let b = Buckets::new();
    let store: Arc<dyn Store> = Arc::new(b.store());
    let config = PipelineConfig::default();
    let notifier = hlspipe::testing::RecordingNotifier::default();
    let worker = Pipeline {
        config: &config,
        invalidator: &NoInvalidation,
        notifier: &notifier,
        parts: None,
        deadline: None,
        clock: &|| 1_000,
        rebuild: false,
    };
    let key = "uploads/shows/ep 1.mp4";
    let etag = b.put_file(key, clip());
    let created = record(RecordKind::Created, key, Some(&etag));
    assert!(matches!(
        worker.handle_record(&store, &created),
        Outcome::Processed { .. }
    ));
    assert!(matches!(
        worker.handle_record(&store, &created),
        Outcome::AlreadyComplete { .. }
    ));
    let bad_etag = b.put_bytes("uploads/shows/broken.mp4", &noise());
    let bad = record(
        RecordKind::Created,
        "uploads/shows/broken.mp4",
        Some(&bad_etag),
    );
    assert!(worker.handle_record(&store, &bad).is_failure());
    let ignored = record(RecordKind::Created, "uploads/notes.txt", None);
    assert!(matches!(
        worker.handle_record(&store, &ignored),
        Outcome::Ignored { .. }
    ));
    std::fs::remove_file(b.bucket().join(key)).unwrap();
    let removed = record(RecordKind::Removed, key, None);
    assert!(matches!(
        worker.handle_record(&store, &removed),
        Outcome::Removed { .. }
    ));

    let events = notifier.events();
    let changes: Vec<TitleChange> = events.iter().map(|e| e.change).collect();
    assert_eq!(
        changes,
        [
            TitleChange::Published,
            TitleChange::Failed,
            TitleChange::Removed
        ]
    );
    let published = &events[0];
    assert_eq!(published.title, "shows/ep 1");
    assert_eq!(published.source, key);
    assert_eq!(
        published.master.as_deref(),
        Some("hls/shows/ep 1.hls/master.m3u8")
    );
    assert!(published.version.is_some() && published.error.is_none());
    let failed = &events[1];
    assert_eq!(failed.title, "shows/broken");
    assert!(
        failed
            .error
            .as_deref()
            .is_some_and(|e| e.contains("broken.mp4")),
        "{failed:?}"
    );
    assert!(failed.master.is_none());
    assert_eq!(events[2].title, "shows/ep 1");
}

/// Deployment issue, item 7: a Lambda timeout left `manifest.json` at `processing` and the
/// retry started over. The job now starts no write past its deadline: it stops with a
/// retryable error the manifest records, the master untouched; the retry writes only what
/// is missing and publishes.
#[test]
fn a_job_out_of_time_stops_records_it_and_the_retry_resumes_regression_timeout_left_processing() {
    let b = Buckets::new();
    let key = "uploads/shows/long.mp4";
    let etag = b.put_file(key, clip());
    let rec = record(RecordKind::Created, key, Some(&etag));
    let config = PipelineConfig {
        segment_duration: 1.0,
        ..PipelineConfig::default()
    };
    // The first three writes are quick, every later one takes 4 s; the job has 3 s: a few
    // objects are written, most are not, whatever the machine's speed.
    let puts = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&puts);
    let slow = Arc::new(FakeStore::new(b.store()).before_put(move |_| {
        if counted.fetch_add(1, Ordering::SeqCst) >= 3 {
            std::thread::sleep(std::time::Duration::from_secs(4));
        }
    }));
    let store: Arc<dyn Store> = slow.clone();
    let worker = Pipeline {
        config: &config,
        invalidator: &NoInvalidation,
        notifier: &hlspipe::pipeline::notify::NoNotification,
        parts: None,
        deadline: Some(std::time::Instant::now() + std::time::Duration::from_secs(3)),
        clock: &|| 1_000,
        rebuild: false,
    };
    let outcome = worker.handle_record(&store, &rec);
    let Outcome::Failed {
        reason, retryable, ..
    } = &outcome
    else {
        panic!("not stopped: {outcome:?}");
    };
    assert!(*retryable && reason.contains("deadline"), "{outcome:?}");
    // No version was live, so the title was published progressively: a master that came out
    // before the deadline names the growing playlists, which list only what was written.
    if b.exists("hls/shows/long.hls/master.m3u8") {
        let master = String::from_utf8(b.read("hls/shows/long.hls/master.m3u8")).unwrap();
        assert!(master.contains("/event.m3u8"), "{master}");
        for playlist in b.keys("hls/shows/long.hls/v/") {
            if !playlist.ends_with("/event.m3u8") {
                continue;
            }
            let text = String::from_utf8(b.read(&playlist)).unwrap();
            let folder = playlist.trim_end_matches("event.m3u8");
            for uri in text.lines().filter(|l| l.ends_with(".m4s")) {
                assert!(
                    b.exists(&format!("{folder}{uri}")),
                    "{playlist} names {uri}"
                );
            }
        }
    }
    let manifest = b.manifest("hls/shows/long.hls/");
    assert!(
        manifest["error"].as_str().unwrap().contains("deadline"),
        "{manifest}"
    );
    let before: Vec<String> = b
        .keys("hls/shows/long.hls/v/")
        .into_iter()
        .filter(|k| k.ends_with(".m4s") || k.ends_with(".mp4"))
        .collect();
    assert!(
        !before.is_empty(),
        "nothing was written before the deadline"
    );

    let counting = Arc::new(FakeStore::new(b.store()));
    let store: Arc<dyn Store> = counting.clone();
    let retry = Pipeline {
        deadline: None,
        ..worker
    };
    assert!(matches!(
        retry.handle_record(&store, &rec),
        Outcome::Processed { .. }
    ));
    let rewritten: Vec<String> = counting
        .written()
        .into_iter()
        .filter(|k| before.contains(k))
        .collect();
    assert!(rewritten.is_empty(), "written again: {rewritten:?}");
    assert_decodes(&b.bucket().join("hls/shows/long.hls/master.m3u8"));
}

/// The transcoding stage in the worker (`HLSPIPE_LADDER`): the upload and its rung are one
/// title with the same segment boundaries, the manifest records the ladder, and the same
/// event again is already complete without encoding anything (the ladder's settings are in
/// the version, which is known before any media is read).
#[test]
fn a_worker_with_a_ladder_publishes_the_upload_and_its_rungs_as_one_title() {
    let b = Buckets::new();
    let key = "uploads/shows/laddered.mp4";
    let etag = b.put_file(key, clip());
    let config = PipelineConfig::load([("HLSPIPE_LADDER", "90p:120k")], None).unwrap();
    // Every manifest the job wrote, as it was before the next write: the encode's progress.
    let title = "hls/shows/laddered.hls/";
    let seen = Arc::new(std::sync::Mutex::new(Vec::<serde_json::Value>::new()));
    let (bucket, seen_by_hook) = (b.bucket(), Arc::clone(&seen));
    let store: Arc<dyn Store> = Arc::new(FakeStore::new(b.store()).before_put(move |_| {
        let path = bucket.join(format!("{title}manifest.json"));
        if let Ok(bytes) = std::fs::read(path) {
            seen_by_hook
                .lock()
                .unwrap()
                .push(serde_json::from_slice(&bytes).unwrap());
        }
    }));
    let worker = crate::support::pipeline(&config);
    let rec = record(RecordKind::Created, key, Some(&etag));
    let Outcome::Processed { version, .. } = worker.handle_record(&store, &rec) else {
        panic!("not processed");
    };
    assert_eq!(version, version_for_etags(&[&etag], &config.settings()));
    let plain = PipelineConfig::default();
    assert_ne!(
        version,
        version_for_etags(&[&etag], &plain.settings()),
        "the ladder is in the version"
    );
    let manifest = b.manifest(title);
    let progress: Vec<serde_json::Value> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|m| m["state"] == "processing" && m["progress"].is_object())
        .map(|m| m["progress"].clone())
        .collect();
    let first = progress
        .first()
        .expect("the encode's progress was recorded");
    assert_eq!(first["stage"], "encoding", "{first}");
    assert_eq!(first["unit"], "seconds", "{first}");
    assert!(first["total"].as_f64().unwrap() > 1.9, "{first}");
    assert!(
        manifest.get("progress").is_none(),
        "cleared when complete: {manifest}"
    );
    assert_eq!(
        manifest["transcode"]["rungs"][0], "90p:120k 160x90",
        "{manifest}"
    );
    let master = String::from_utf8(b.read(&format!("{title}master.m3u8"))).unwrap();
    assert!(
        master.contains("RESOLUTION=320x180") && master.contains("RESOLUTION=160x90"),
        "{master}"
    );
    let extinf = |rendition: &str| -> Vec<String> {
        String::from_utf8(b.read(&format!("{title}v/{version}/{rendition}/index.m3u8")))
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("#EXTINF"))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(extinf("video_180p"), extinf("video_90p"));
    assert_decodes(&b.bucket().join(format!("{title}master.m3u8")));

    let writes_before = b.keys("hls/");
    assert!(matches!(
        worker.handle_record(&store, &rec),
        Outcome::AlreadyComplete { .. }
    ));
    assert_eq!(b.keys("hls/"), writes_before);
}

/// The events `reprocess --enqueue` sends are marked: the worker that handles one sends no
/// CDN invalidation (the reprocess sends the changed masters in batches once the queue has
/// drained), while a fresh upload's event keeps its one-path invalidation.
#[test]
fn an_enqueued_reprocess_event_is_not_invalidated_title_by_title() {
    use hlspipe::pipeline::event::{parse_message_body, s3_put_event};
    let b = Buckets::new();
    let key = "uploads/shows/ep1.mp4";
    let store: Arc<dyn Store> = Arc::new(b.store());
    let invalidator = RecordingInvalidator::default();
    let config = PipelineConfig::default();
    let worker = Pipeline {
        invalidator: &invalidator,
        ..crate::support::pipeline(&config)
    };
    let handle = |body: &str| {
        let parsed = parse_message_body(body, Some("m1"));
        let [Ok(record)] = parsed.as_slice() else {
            panic!("one record: {body}");
        };
        (record.reprocess, worker.handle_record(&store, record))
    };
    let etag = b.put_file(key, clip());
    let (marked, outcome) = handle(&s3_put_event("media", key, &etag, 1, 1_700_000_000));
    assert!(
        marked && matches!(outcome, Outcome::Processed { .. }),
        "{outcome}"
    );

    // A new version through a reprocess event: published, nothing invalidated.
    let etag = b.put_file(key, small_clip());
    let (marked, outcome) = handle(&s3_put_event("media", key, &etag, 1, 1_700_000_001));
    assert!(
        marked && matches!(outcome, Outcome::Processed { .. }),
        "{outcome}"
    );
    assert!(invalidator.calls().is_empty(), "{:?}", invalidator.calls());

    // A fresh upload's own event (S3's configuration id): its one path.
    let etag = b.put_file(key, clip());
    let fresh = s3_put_event("media", key, &etag, 1, 1_700_000_002)
        .replace("\"hlspipe-reprocess\"", "\"uploads-to-queue\"");
    let (marked, outcome) = handle(&fresh);
    assert!(
        !marked && matches!(outcome, Outcome::Processed { .. }),
        "{outcome}"
    );
    assert_eq!(
        invalidator.calls(),
        [vec!["/hls/shows/ep1.hls/master.m3u8".to_string()]]
    );
}
