//! Subtitle side files through the job: `ep1.en.srt` beside `ep1.mp4` is read by the
//! video's job, in whichever order they arrive; a side file's upload or removal publishes
//! the title again (a new version, since side files are part of it), and never removes it.

use crate::support::assert_decodes;
use crate::support::buckets::{record, Buckets};
use hlspipe::media::package::version_for_etags;
use hlspipe::pipeline::config::PipelineConfig;
use hlspipe::pipeline::event::RecordKind;
use hlspipe::pipeline::invalidate::NoInvalidation;
use hlspipe::pipeline::job::Pipeline;
use hlspipe::pipeline::outcome::Outcome;
use hlspipe::store::Store;
use std::sync::Arc;

const VIDEO: &str = "uploads/shows/ep1.mp4";
const OUT: &str = "hls/shows/ep1.hls/";
const EN_SRT: &[u8] = b"1\n00:00:01,000 --> 00:00:02,000\nHello\n";

struct Setup {
    b: Buckets,
    store: Arc<dyn Store>,
    config: PipelineConfig,
}

impl Setup {
    fn new() -> Self {
        let b = Buckets::new();
        let store: Arc<dyn Store> = Arc::new(b.store());
        Setup {
            b,
            store,
            config: PipelineConfig::default(),
        }
    }

    fn handle(&self, kind: RecordKind, key: &str, etag: Option<&str>) -> Outcome {
        let pipeline = Pipeline {
            config: &self.config,
            invalidator: &NoInvalidation,
            notifier: &hlspipe::pipeline::notify::NoNotification,
            parts: None,
            deadline: None,
            clock: &|| 1_000,
            rebuild: false,
        };
        pipeline.handle_record(&self.store, &record(kind, key, etag))
    }

    fn put(&self, key: &str, bytes: &[u8]) -> Outcome {
        let etag = self.b.put_bytes(key, bytes);
        self.handle(RecordKind::Created, key, Some(&etag))
    }

    fn put_video(&self) -> (String, Outcome) {
        let etag = self.b.put_file(VIDEO, crate::support::small_clip());
        let outcome = self.handle(RecordKind::Created, VIDEO, Some(&etag));
        (etag, outcome)
    }

    fn master(&self) -> String {
        String::from_utf8(self.b.read(&format!("{OUT}master.m3u8"))).unwrap()
    }
}

fn version(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Processed { version, .. } => version.clone(),
        other => panic!("not processed: {other:?}"),
    }
}

#[test]
fn a_side_file_before_its_video_waits_and_the_video_job_reads_it() {
    let s = Setup::new();
    let waiting = s.put("uploads/shows/ep1.en.srt", EN_SRT);
    assert!(
        matches!(&waiting, Outcome::Ignored { reason } if reason.contains("has no video yet")),
        "{waiting:?}"
    );
    assert!(s.b.keys("hls/").is_empty());
    let (_, outcome) = s.put_video();
    version(&outcome);
    let master = s.master();
    assert!(
        master.contains("TYPE=SUBTITLES,URI=") && master.contains("LANGUAGE=\"en\""),
        "{master}"
    );
    assert_decodes(&s.b.bucket().join(format!("{OUT}master.m3u8")));
    let manifest = s.b.manifest(OUT);
    assert_eq!(manifest["subtitles"][0]["key"], "uploads/shows/ep1.en.srt");
    let subs: Vec<&serde_json::Value> = manifest["renditions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "subtitles")
        .collect();
    assert_eq!(subs.len(), 1, "{manifest}");
    assert_eq!(subs[0]["language"], "en");
}

#[test]
fn a_side_file_after_the_video_publishes_a_new_version_and_its_removal_another() {
    let s = Setup::new();
    let (etag, first) = s.put_video();
    let plain = version(&first);
    assert_eq!(plain, version_for_etags(&[&etag], &s.config.settings()));
    assert!(!s.master().contains("SUBTITLES"));

    // Windows-1252 bytes: read, with a warning in the manifest.
    let key = "uploads/shows/ep1.fr.forced.srt";
    let with_subs = version(&s.put(key, b"00:00:01,000 --> 00:00:02,000\nD\xE9j\xE0 vu\n"));
    assert_ne!(with_subs, plain);
    let master = s.master();
    assert!(
        master.contains(
            "LANGUAGE=\"fr\",NAME=\"Français (forced)\",DEFAULT=YES,AUTOSELECT=YES,FORCED=YES"
        ),
        "{master}"
    );
    assert!(master.contains(",SUBTITLES=\"subs\"\n"), "{master}");
    let warnings = s.b.manifest(OUT)["warnings"].to_string();
    assert!(warnings.contains("Windows-1252"), "{warnings}");
    let segment = format!("{OUT}v/{with_subs}/subs_fr/seg_00001.vtt");
    let text = String::from_utf8(s.b.read(&segment)).unwrap();
    assert!(text.contains("Déjà vu"), "{text}");

    // The same event again: nothing to do.
    let etag = s.store.head(key).unwrap().unwrap().etag;
    assert!(matches!(
        s.handle(RecordKind::Created, key, Some(&etag)),
        Outcome::AlreadyComplete { .. }
    ));
    // An event for an older upload of the side file is stale.
    assert!(matches!(
        s.handle(
            RecordKind::Created,
            key,
            Some("0123456789abcdef0123456789abcdef")
        ),
        Outcome::Stale { .. }
    ));

    // Removed: the title is published again without it, and stays.
    std::fs::remove_file(s.b.bucket().join(key)).unwrap();
    let after = version(&s.handle(RecordKind::Removed, key, None));
    assert_eq!(after, plain);
    assert!(!s.master().contains("SUBTITLES"), "{}", s.master());
    assert!(s.b.exists(VIDEO));
    assert_eq!(s.b.manifest(OUT)["state"], "complete");
    assert!(s.b.manifest(OUT).get("subtitles").is_none());
}

#[test]
fn an_unreadable_side_file_is_a_warning_never_a_failed_title() {
    let s = Setup::new();
    s.put_video();
    let outcome = s.put("uploads/shows/ep1.de.vtt", b"not webvtt at all");
    let Outcome::Processed { warnings, .. } = &outcome else {
        panic!("{outcome:?}");
    };
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("uploads/shows/ep1.de.vtt: subtitles left out: not a WebVTT file")),
        "{warnings:?}"
    );
    assert!(!s.master().contains("SUBTITLES"));
    // A side file of another title in the folder is not read.
    let other = s.put("uploads/shows/ep10.en.srt", EN_SRT);
    assert!(matches!(other, Outcome::Ignored { .. }), "{other:?}");
    assert!(!s.master().contains("SUBTITLES"));
}

#[test]
fn a_side_file_of_a_ladder_title_republishes_it_through_its_title_manifest() {
    let s = Setup::new();
    s.b.put_bytes(
        "uploads/shows/ep1.title.json",
        br#"{ "inputs": ["shows/ep1 high.mp4", "shows/ep1 low.mp4"] }"#,
    );
    s.b.put_file("uploads/shows/ep1 high.mp4", crate::support::clip());
    let lo =
        s.b.put_file("uploads/shows/ep1 low.mp4", crate::support::small_clip());
    let plain = version(&s.handle(RecordKind::Created, "uploads/shows/ep1 low.mp4", Some(&lo)));
    let with = version(&s.put("uploads/shows/ep1.en.srt", EN_SRT));
    assert_ne!(with, plain);
    let master = s.master();
    assert_eq!(master.matches("#EXT-X-STREAM-INF").count(), 2, "{master}");
    assert_eq!(
        master.matches(",SUBTITLES=\"subs\"\n").count(),
        2,
        "{master}"
    );
    assert!(master.contains("TYPE=SUBTITLES"), "{master}");
    // A side file named after a ladder input is not the title's: the title is checked
    // again (through the input's title manifest) and stays as it was.
    let input_side = s.put("uploads/shows/ep1 low.en.srt", EN_SRT);
    assert!(
        matches!(&input_side, Outcome::AlreadyComplete { version, .. } if *version == with),
        "{input_side:?}"
    );
    assert_eq!(
        s.b.manifest(OUT)["subtitles"].as_array().map(Vec::len),
        Some(1),
        "only the title's own side file is read"
    );
}

/// A job lists its title's own keys for side files, not its whole folder (a folder of
/// 100,000 uploads would make every job list 100,000 keys), and still finds a side file
/// whose name came NFD (`Cafe` + U+0301, as macOS writes it) beside an NFC video.
#[test]
fn side_files_are_found_by_the_titles_own_keys_in_either_normalization() {
    let b = Buckets::new();
    let fake = Arc::new(crate::support::store::FakeStore::new(b.store()));
    let store: Arc<dyn Store> = fake.clone();
    let config = PipelineConfig::default();
    for n in 0..20 {
        b.put_file(
            &format!("uploads/shows/other{n:02}.mp4"),
            crate::support::small_clip(),
        );
    }
    b.put_bytes("uploads/shows/ep1.en.srt", EN_SRT);
    b.put_bytes("uploads/shows/Cafe\u{301}.fr.srt", EN_SRT);
    let publish = |key: &str| {
        let etag = b.put_file(key, crate::support::small_clip());
        crate::support::pipeline(&config)
            .handle_record(&store, &record(RecordKind::Created, key, Some(&etag)))
    };
    assert!(matches!(publish(VIDEO), Outcome::Processed { .. }));
    assert_eq!(
        b.manifest(OUT)["subtitles"][0]["key"],
        "uploads/shows/ep1.en.srt"
    );
    assert!(matches!(
        publish("uploads/shows/Caf\u{e9}.mp4"),
        Outcome::Processed { .. }
    ));
    let m = b.manifest("hls/shows/Caf\u{e9}.hls/");
    assert_eq!(m["subtitles"][0]["key"], "uploads/shows/Cafe\u{301}.fr.srt");
    // The side files: each title's own keys. (The folder itself is still listed once a
    // job, for the title manifests that may claim the upload: their names are free.)
    let listed = fake.listed_prefixes();
    let side: Vec<&String> = listed
        .iter()
        .filter(|p| p.starts_with("uploads/") && *p != "uploads/shows/")
        .collect();
    assert_eq!(side, ["uploads/shows/ep1.", "uploads/shows/Caf"]);
    assert_eq!(listed.iter().filter(|p| *p == "uploads/shows/").count(), 2);
}
