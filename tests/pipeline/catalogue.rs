//! The catalogue plan (`hlspipe reprocess --dry-run`'s statuses) on the folder store, with
//! the keys that group a title (side files, title manifests and their inputs), and over a
//! made-up catalogue of 20,000 titles read a page at a time.

use crate::support::buckets::{record, Buckets};
use crate::support::small_clip;
use hlspipe::pipeline::catalogue::{plan, PlannedTitle, Scope, Status};
use hlspipe::pipeline::config::PipelineConfig;
use hlspipe::pipeline::event::RecordKind;
use hlspipe::pipeline::outcome::Outcome;
use hlspipe::store::Store;
use hlspipe::testing::catalogue::SyntheticCatalogue;
use std::sync::atomic::Ordering;
use std::sync::Arc;

const EN_SRT: &[u8] = b"1\n00:00:01,000 --> 00:00:02,000\nHello\n";

fn planned(store: &dyn Store, config: &PipelineConfig, prefix: &str) -> Vec<PlannedTitle> {
    let mut all = Vec::new();
    let scope = Scope {
        prefix: prefix.into(),
        orphans: true,
        ..Scope::default()
    };
    plan(store, config, &scope, &mut |p| {
        all.push(p);
        Ok(true)
    })
    .unwrap();
    all
}

fn statuses(all: &[PlannedTitle]) -> Vec<(String, Status)> {
    all.iter()
        .map(|p| (p.title.clone(), p.status.clone()))
        .collect()
}

#[test]
fn side_files_and_title_manifests_count_in_the_plan_as_the_job_counts_them() {
    let b = Buckets::new();
    let store: Arc<dyn Store> = Arc::new(b.store());
    let config = PipelineConfig::default();
    let publish = |key: &str, etag: &str| {
        let outcome = crate::support::pipeline(&config)
            .handle_record(&store, &record(RecordKind::Created, key, Some(etag)));
        assert!(matches!(outcome, Outcome::Processed { .. }), "{outcome}");
    };
    // A video with a side file; a title of two files named by a title manifest (its inputs
    // are not titles of their own); a video whose name starts like the first one's.
    b.put_bytes("uploads/s/ep1.en.srt", EN_SRT);
    let ep1 = b.put_file("uploads/s/ep1.mp4", small_clip());
    publish("uploads/s/ep1.mp4", &ep1);
    let ep1x = b.put_file("uploads/s/ep1.extra.mp4", small_clip());
    publish("uploads/s/ep1.extra.mp4", &ep1x);
    b.put_file("uploads/s/a high.mp4", small_clip());
    b.put_file("uploads/s/a low.mp4", small_clip());
    let m = b.put_bytes(
        "uploads/s/pair.title.json",
        br#"{ "inputs": ["s/a high.mp4", "s/a low.mp4"] }"#,
    );
    publish("uploads/s/pair.title.json", &m);

    let all = planned(store.as_ref(), &config, "uploads/s/");
    assert_eq!(
        statuses(&all),
        [
            ("s/ep1.extra".into(), Status::UpToDate),
            ("s/ep1".into(), Status::UpToDate),
            ("s/pair".into(), Status::UpToDate),
        ]
    );
    assert_eq!(all[2].key.as_deref(), Some("uploads/s/pair.title.json"));
    assert_eq!(
        all[2].bytes,
        2 * std::fs::metadata(small_clip()).unwrap().len()
    );

    // A side file changed, one of the pair's inputs too.
    b.put_bytes(
        "uploads/s/ep1.en.srt",
        b"1\n00:00:01,000 --> 00:00:03,000\nHi\n",
    );
    b.put_bytes("uploads/s/a low.mp4", b"replaced");
    let all = planned(store.as_ref(), &config, "uploads/s/");
    assert_eq!(
        statuses(&all),
        [
            ("s/ep1.extra".into(), Status::UpToDate),
            (
                "s/ep1".into(),
                Status::Outdated("its side files changed".into())
            ),
            (
                "s/pair".into(),
                Status::Outdated("its source changed".into())
            ),
        ]
    );
    // Only a part of the catalogue, by pattern.
    let scope = Scope {
        prefix: "uploads/".into(),
        only: Some("*pair*".into()),
        ..Scope::default()
    };
    let mut only = Vec::new();
    plan(store.as_ref(), &config, &scope, &mut |p| {
        only.push(p.title);
        Ok(true)
    })
    .unwrap();
    assert_eq!(only, ["s/pair"]);
}

/// A server that lists no ETags (s3s-fs) still gets a true plan: each object the plan
/// reckons with is read with a HEAD. Found by the reprocess bench: every title was planned
/// with an empty ETag, and its job then stood aside as stale.
#[test]
fn a_listing_without_etags_is_planned_with_each_objects_own_regression_s3s_fs() {
    let b = Buckets::new();
    let config = PipelineConfig::default();
    let store: Arc<dyn Store> = Arc::new(b.store());
    let etag = b.put_file("uploads/s/ep1.mp4", small_clip());
    b.put_bytes("uploads/s/ep1.en.srt", EN_SRT);
    let outcome = crate::support::pipeline(&config).handle_record(
        &store,
        &record(RecordKind::Created, "uploads/s/ep1.mp4", Some(&etag)),
    );
    assert!(matches!(outcome, Outcome::Processed { .. }), "{outcome}");
    b.put_file("uploads/s/ep2.mp4", small_clip());
    let blank = crate::support::store::FakeStore::new(b.store()).without_listed_etags();
    let all = planned(&blank, &config, "uploads/");
    assert_eq!(
        statuses(&all),
        [
            ("s/ep1".into(), Status::UpToDate),
            ("s/ep2".into(), Status::New)
        ]
    );
    assert_eq!(all[1].source.as_ref().unwrap().etag, etag);
}

#[test]
fn a_catalogue_is_planned_a_page_at_a_time_one_manifest_read_a_title() {
    let config = PipelineConfig::default();
    let store = SyntheticCatalogue::new(20_000, config.clone());
    let scope = Scope {
        prefix: "uploads/".into(),
        orphans: true,
        ..Scope::default()
    };
    let mut pages_at_first = None;
    let mut up_to_date = 0;
    plan(&store, &config, &scope, &mut |p| {
        pages_at_first.get_or_insert(store.pages.load(Ordering::Relaxed));
        up_to_date += usize::from(p.status == Status::UpToDate);
        Ok(true)
    })
    .unwrap();
    assert_eq!(up_to_date, 20_000);
    // Two passes of 20 pages; the first title was planned during the second pass's first
    // page, long before the listing ended.
    assert_eq!(store.pages.load(Ordering::Relaxed), 40);
    assert_eq!(pages_at_first, Some(21));
    assert_eq!(store.manifests_read.load(Ordering::Relaxed), 20_000);
}
