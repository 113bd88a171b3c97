//! A ladder fanned out over workers, driven by hand through the pipeline: an in-memory
//! queue collects the part messages, delivered in an order the test chooses, duplicates
//! included.

use crate::support::buckets::{record, Buckets};
use crate::support::store::FakeStore;
use crate::support::{assert_decodes, ladder_source_720p_16s};
use hlspipe::pipeline::config::PipelineConfig;
use hlspipe::pipeline::event::{parse_message_body, RecordKind};
use hlspipe::pipeline::job::Pipeline;
use hlspipe::pipeline::outcome::Outcome;
use hlspipe::pipeline::work::PartQueue;
use hlspipe::store::Store;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The fleet's queue: what was sent, in order.
#[derive(Default)]
struct Queue(Mutex<Vec<String>>);

impl PartQueue for Queue {
    fn send(&self, messages: &[String]) -> hlspipe::Result<()> {
        self.0.lock().unwrap().extend_from_slice(messages);
        Ok(())
    }
}

impl Queue {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

fn deliver(worker: &Pipeline<'_>, store: &Arc<dyn Store>, body: &str) -> Outcome {
    let parsed = parse_message_body(body, None);
    let [Ok(record)] = parsed.as_slice() else {
        panic!("not one part record: {body}");
    };
    assert!(matches!(record.kind, RecordKind::Part(_)), "{body}");
    worker.handle_record(store, record)
}

fn part_of(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    v["part"].as_str().unwrap().to_owned()
}

#[test]
fn a_fanned_out_ladder_is_published_in_shares_each_segment_written_once() {
    let b = Buckets::new();
    let key = "uploads/fan/clip.mp4";
    let etag = b.put_file(key, ladder_source_720p_16s());
    let fake = Arc::new(FakeStore::new(b.store()));
    let store: Arc<dyn Store> = fake.clone();
    let config = PipelineConfig {
        ladder: "234p:200k".parse().unwrap(),
        chunk_seconds: 4.0,
        segment_duration: 2.0,
        // The kept 720p source (6 MB) and the 234p rung come to several shares.
        publish_share_mib: 1,
        ..PipelineConfig::default()
    };
    let queue = Queue::default();
    let worker = Pipeline {
        parts: Some(&queue),
        ..crate::support::pipeline(&config)
    };
    let title = "hls/fan/clip.hls/";

    // The upload: a plan, and one message per part.
    let outcome = worker.handle_record(&store, &record(RecordKind::Created, key, Some(&etag)));
    assert!(matches!(outcome, Outcome::FannedOut { .. }), "{outcome}");
    let parts = queue.take();
    let names: Vec<String> = parts.iter().map(|m| part_of(m)).collect();
    assert_eq!(
        names,
        [
            "previews",
            "chunk-00000",
            "chunk-00001",
            "chunk-00002",
            "chunk-00003"
        ]
    );

    // A worker configured otherwise (a deploy rolling across the fleet) leaves the part to
    // the queue for another: a retryable failure, the title still processing.
    let other_config = PipelineConfig {
        ladder: "234p:300k".parse().unwrap(),
        ..config.clone()
    };
    let other = Pipeline {
        config: &other_config,
        ..worker
    };
    match deliver(&other, &store, &parts[1]) {
        Outcome::Failed {
            retryable: true,
            reason,
            ..
        } => assert!(reason.contains("not the plan's"), "{reason}"),
        o => panic!("{o}"),
    }
    assert_eq!(b.manifest(title)["state"], "processing");

    // The parts, last first: the one that completes the set stitches, packages the title
    // and shares its segments out instead of writing them all.
    let mut outcomes: Vec<Outcome> = parts
        .iter()
        .rev()
        .map(|m| deliver(&worker, &store, m))
        .collect();
    let Some(Outcome::FannedOut { parts: count, .. }) = outcomes.pop() else {
        panic!("the last part did not share the segments out: {outcomes:?}");
    };
    assert!(count >= 3, "{count} shares");
    for o in &outcomes {
        assert!(matches!(o, Outcome::PartEncoded { .. }), "{o}");
    }
    let shares = queue.take();
    let share_names: Vec<String> = shares.iter().map(|m| part_of(m)).collect();
    let expected: Vec<String> = (0..count).map(|i| format!("publish-{i:05}")).collect();
    assert_eq!(share_names, expected);
    assert!(
        !b.exists(&format!("{title}master.m3u8")),
        "no master before the shares"
    );
    let manifest = b.manifest(title);
    assert_eq!(manifest["state"], "processing", "{manifest}");
    let version = manifest["target_version"].as_str().unwrap().to_owned();
    let media = format!("{title}v/{version}/");
    assert!(
        b.keys(&media).is_empty(),
        "nothing of the version written yet"
    );

    // Each share writes only its segments, and a duplicate of one writes nothing.
    let before = fake.written().len();
    let first = deliver(&worker, &store, &shares[0]);
    assert!(
        matches!(first, Outcome::PartEncoded { done: 1, .. }),
        "{first}"
    );
    let one_share = fake.written().len() - before;
    assert!(one_share > 1, "a share writes segments");
    assert!(!b.exists(&format!("{title}master.m3u8")));
    assert_eq!(b.manifest(title)["progress"]["stage"], "publishing");
    let again = fake.written().len();
    let duplicate = deliver(&worker, &store, &shares[0]);
    assert!(
        matches!(duplicate, Outcome::PartEncoded { done: 1, .. }),
        "{duplicate}"
    );
    assert_eq!(
        fake.written().len(),
        again + 1,
        "only the progress in the manifest"
    );

    // The last share publishes: the playlists, the master and the manifest, no segment again.
    let mut last = None;
    for m in shares.iter().skip(1) {
        last = Some(deliver(&worker, &store, m));
    }
    let last = last.unwrap();
    assert!(matches!(last, Outcome::Processed { .. }), "{last}");
    let written = fake.written();
    let mut times: BTreeMap<&str, usize> = BTreeMap::new();
    // (A growing playlist is written again as it grows; every other object once.)
    for k in written
        .iter()
        .filter(|k| k.starts_with(&media) && !k.ends_with("/event.m3u8"))
    {
        *times.entry(k.as_str()).or_default() += 1;
    }
    assert!(times.keys().any(|k| k.ends_with(".m4s")));
    let twice: Vec<_> = times.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "written more than once: {twice:?}");
    let master_at = written
        .iter()
        .position(|k| k.as_str() == format!("{title}master.m3u8"))
        .unwrap();
    let last_segment = written
        .iter()
        .rposition(|k| k.starts_with(&media) && k.ends_with(".m4s"))
        .unwrap();
    assert!(last_segment < master_at, "every segment before the flip");
    let manifest = b.manifest(title);
    assert_eq!(manifest["state"], "complete", "{manifest}");
    assert_eq!(manifest["version"], version.as_str());
    assert!(
        b.keys(&format!("{title}work/")).is_empty(),
        "work folder removed"
    );
    assert_decodes(&b.bucket().join(format!("{title}master.m3u8")));

    // A share delivered again after the title is out: stale, nothing written.
    let after = fake.written().len();
    let late = deliver(&worker, &store, &shares[1]);
    assert!(matches!(late, Outcome::Stale { .. }), "{late}");
    assert_eq!(fake.written().len(), after);
}
