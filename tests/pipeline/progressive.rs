//! Progressive publish: a title with no live version plays while it is written. The store
//! is watched as a player would see it, after every write.

use crate::support::buckets::{record, Buckets};
use crate::support::store::FakeStore;
use crate::support::{assert_decodes, decoded_frame_count, minute_clip, small_clip};
use hlspipe::pipeline::config::PipelineConfig;
use hlspipe::pipeline::event::RecordKind;
use hlspipe::pipeline::outcome::Outcome;
use hlspipe::store::Store;
use hlspipe::testing::check::{check_master_playlist, check_media_playlist};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const TITLE: &str = "hls/long/talk.hls/";

/// What a reader saw after each write.
#[derive(Default)]
struct Seen {
    /// Whatever a playlist named that was not in the store when the playlist was.
    missing: Vec<String>,
    /// Every version of every playlist, in the order written.
    playlists: BTreeMap<String, Vec<String>>,
    /// Media segments in the store when the master was first written, and in all.
    segments_at_first_master: Option<usize>,
    /// The manifest's states, in the order written.
    states: Vec<serde_json::Value>,
}

fn uris(text: &str) -> impl Iterator<Item = String> + '_ {
    text.lines().filter_map(|l| {
        if l.starts_with('#') {
            // EXT-X-MAP and EXT-X-MEDIA name objects in a URI attribute.
            let at = l.find("URI=\"")? + 5;
            let end = l[at..].find('"')?;
            Some(l[at..at + end].to_owned())
        } else {
            (!l.is_empty()).then(|| l.to_owned())
        }
    })
}

fn segments_in(dir: &Path) -> usize {
    walk(dir)
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "m4s"))
        .count()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A store that sleeps `delay` before each segment (a slow link) and records, after each
/// write, what a player could see.
fn watched(b: &Buckets, delay: Duration) -> (Arc<FakeStore>, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let root = b.bucket();
    let record = Arc::clone(&seen);
    let store = FakeStore::new(b.store())
        .before_put(move |key| {
            if key.ends_with(".m4s") {
                std::thread::sleep(delay);
            }
        })
        .after_put(move |key| {
            let path = root.join(key);
            let mut seen = record.lock().unwrap();
            if key.ends_with("manifest.json") {
                let m: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
                seen.states.push(m);
                return;
            }
            if !key.ends_with(".m3u8") {
                return;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let folder = path.parent().unwrap();
            for uri in uris(&text) {
                if !folder.join(&uri).exists() {
                    seen.missing.push(format!("{key} names {uri}"));
                }
            }
            if key.ends_with("master.m3u8") && seen.segments_at_first_master.is_none() {
                seen.segments_at_first_master = Some(segments_in(&root.join(TITLE)));
            }
            seen.playlists.entry(key.to_owned()).or_default().push(text);
        });
    (Arc::new(store), seen)
}

fn publish(store: &Arc<FakeStore>, config: &PipelineConfig, key: &str, etag: &str) -> Outcome {
    let store: Arc<dyn Store> = store.clone();
    crate::support::pipeline(config)
        .handle_record(&store, &record(RecordKind::Created, key, Some(etag)))
}

fn config() -> PipelineConfig {
    PipelineConfig {
        segment_duration: 2.0,
        concurrency: 2,
        ..PipelineConfig::default()
    }
}

/// Every version of each `event.m3u8` is the one before with lines appended, the last ends
/// with `EXT-X-ENDLIST` and lists what the VOD playlist beside it lists.
fn assert_grew_by_appending(seen: &Seen, bucket: &Path) -> usize {
    let mut grown = 0;
    for (key, versions) in seen
        .playlists
        .iter()
        .filter(|(k, _)| k.ends_with("/event.m3u8"))
    {
        for pair in versions.windows(2) {
            assert!(
                pair[1].starts_with(&pair[0]),
                "{key} was not appended to:\n{}---\n{}",
                pair[0],
                pair[1]
            );
        }
        let last = versions.last().unwrap();
        assert!(
            last.contains("#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-START:TIME-OFFSET=0\n"),
            "{last}"
        );
        assert!(last.ends_with("#EXT-X-ENDLIST\n"), "{key}: {last}");
        let vod =
            std::fs::read_to_string(bucket.join(key.replace("event.m3u8", "index.m3u8"))).unwrap();
        let from_map = |t: &str| {
            t.lines()
                .skip_while(|l| !l.starts_with("#EXT-X-MAP") && !l.starts_with("#EXTINF"))
                .map(String::from)
                .collect::<Vec<_>>()
        };
        assert_eq!(from_map(last), from_map(&vod), "{key}");
        if versions.len() > 2 {
            grown += 1;
        }
    }
    grown
}

#[test]
fn a_new_title_plays_while_it_is_written_and_no_playlist_ever_names_a_missing_object() {
    let b = Buckets::new();
    let key = "uploads/long/talk.mp4";
    let etag = b.put_file(key, minute_clip());
    let (store, seen) = watched(&b, Duration::from_millis(40));
    let outcome = publish(&store, &config(), key, &etag);
    let Outcome::Processed { version, .. } = outcome else {
        panic!("{outcome}");
    };
    let seen = seen.lock().unwrap();
    assert!(seen.missing.is_empty(), "{:#?}", seen.missing);

    // The master came out after the first segments, long before the last.
    let bucket = b.bucket();
    let all = segments_in(&bucket.join(TITLE));
    assert_eq!(all, 60, "30 segments of video and 30 of sound");
    let first = seen.segments_at_first_master.unwrap();
    assert!(
        (2..all / 2).contains(&first),
        "first master with {first} of {all} segments"
    );
    let masters = &seen.playlists[&format!("{TITLE}master.m3u8")];
    assert_eq!(
        masters.len(),
        2,
        "the growing master, then the complete one"
    );
    assert!(masters[0].contains("/event.m3u8"), "{}", masters[0]);
    assert!(!masters[0].contains("I-FRAME"), "{}", masters[0]);
    assert!(
        !masters[1].contains("event.m3u8") && masters[1].contains("I-FRAME"),
        "{}",
        masters[1]
    );

    // The playlists grew in several steps, only by appending, and ended complete.
    let grown = assert_grew_by_appending(&seen, &bucket);
    assert!(
        grown >= 1,
        "no playlist grew in steps: {:?}",
        seen.playlists.values().map(Vec::len).collect::<Vec<_>>()
    );

    // The manifest said `publishing`, naming the version, while it was playable.
    let publishing: Vec<&serde_json::Value> = seen
        .states
        .iter()
        .filter(|m| m["state"] == "publishing")
        .collect();
    assert!(!publishing.is_empty(), "{:#?}", seen.states);
    assert_eq!(publishing[0]["version"], version.as_str());
    assert_eq!(publishing[0]["progress"]["stage"], "publishing");
    assert_eq!(publishing[0]["progress"]["unit"], "segments");
    assert!(
        publishing[0]["progress"]["playable_seconds"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    let m = b.manifest(TITLE);
    assert_eq!(m["state"], "complete");
    assert_eq!(m["version"], version.as_str());
    assert!(m.get("progress").is_none(), "{m}");

    // The complete title passes the rules and decodes whole.
    let master = bucket.join(TITLE).join("master.m3u8");
    check_master_playlist(&std::fs::read_to_string(&master).unwrap()).unwrap();
    for p in walk(&bucket.join(TITLE))
        .iter()
        .filter(|p| p.ends_with("index.m3u8"))
    {
        check_media_playlist(&std::fs::read_to_string(p).unwrap()).unwrap();
    }
    assert_decodes(&master);
    assert_eq!(
        decoded_frame_count(&master),
        decoded_frame_count(minute_clip())
    );
}

#[test]
fn a_re_upload_of_a_live_title_flips_only_once_complete() {
    let b = Buckets::new();
    let key = "uploads/long/talk.mp4";
    let etag = b.put_file(key, small_clip());
    let (store, _) = watched(&b, Duration::ZERO);
    assert!(matches!(
        publish(&store, &config(), key, &etag),
        Outcome::Processed { .. }
    ));
    let etag = b.put_file(key, minute_clip());
    let (store, seen) = watched(&b, Duration::from_millis(10));
    let Outcome::Processed { version, .. } = publish(&store, &config(), key, &etag) else {
        panic!("second publish");
    };
    let seen = seen.lock().unwrap();
    assert!(seen.missing.is_empty(), "{:#?}", seen.missing);
    let masters = &seen.playlists[&format!("{TITLE}master.m3u8")];
    assert_eq!(masters.len(), 1, "one flip, when complete");
    assert!(masters[0].contains(&format!("v/{version}/")) && !masters[0].contains("event.m3u8"));
    // Every segment of both versions was there when the master flipped.
    assert_eq!(
        seen.segments_at_first_master,
        Some(segments_in(&b.bucket().join(TITLE)))
    );
    assert!(
        seen.playlists.keys().all(|k| !k.ends_with("event.m3u8")),
        "{:?}",
        seen.playlists.keys()
    );
    assert!(seen.states.iter().all(|m| m["state"] != "publishing"));
}

#[test]
fn a_progressive_publish_that_fails_half_way_stays_playable_as_far_as_it_got_and_its_retry_finishes_it(
) {
    let b = Buckets::new();
    let key = "uploads/long/talk.mp4";
    let etag = b.put_file(key, minute_clip());
    let (store, seen) = watched(&b, Duration::from_millis(30));
    // The 40th write fails: past the master, before the last segment.
    let failing = Arc::new(FakeStore::new(b.store()).failing_put(40).before_put(|k| {
        if k.ends_with(".m4s") {
            std::thread::sleep(Duration::from_millis(30));
        }
    }));
    let outcome = publish(&failing, &config(), key, &etag);
    assert!(
        matches!(
            outcome,
            Outcome::Failed {
                retryable: true,
                ..
            }
        ),
        "{outcome}"
    );
    let m = b.manifest(TITLE);
    assert_eq!(m["state"], "failed", "{m}");
    let version = m["version"]
        .as_str()
        .expect("the growing version stays live")
        .to_owned();
    let bucket = b.bucket();
    let master = std::fs::read_to_string(bucket.join(TITLE).join("master.m3u8")).unwrap();
    assert!(master.contains("event.m3u8"), "{master}");
    // Every playlist names only what is there.
    for p in walk(&bucket.join(TITLE))
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "m3u8"))
    {
        let text = std::fs::read_to_string(p).unwrap();
        for uri in uris(&text) {
            assert!(
                p.parent().unwrap().join(&uri).exists(),
                "{} names missing {uri}",
                p.display()
            );
        }
        assert!(
            !text.contains("#EXT-X-ENDLIST") || p.ends_with("index.m3u8"),
            "{}",
            p.display()
        );
    }
    let before: BTreeMap<PathBuf, String> = walk(&bucket.join(TITLE))
        .into_iter()
        .filter(|p| p.ends_with("event.m3u8"))
        .map(|p| {
            let t = std::fs::read_to_string(&p).unwrap();
            (p, t)
        })
        .collect();
    assert!(!before.is_empty());

    // The retry goes on from there: the same version, each playlist only appended to.
    let Outcome::Processed { version: again, .. } = publish(&store, &config(), key, &etag) else {
        panic!("retry");
    };
    assert_eq!(again, version);
    let seen = seen.lock().unwrap();
    assert!(seen.missing.is_empty(), "{:#?}", seen.missing);
    for (path, text) in &before {
        let now = std::fs::read_to_string(path).unwrap();
        assert!(now.starts_with(text.as_str()), "{} shrank", path.display());
        assert!(now.ends_with("#EXT-X-ENDLIST\n"));
    }
    assert_eq!(b.manifest(TITLE)["state"], "complete");
    assert_decodes(&bucket.join(TITLE).join("master.m3u8"));
}

/// A run stopped after its last segment but before the growing playlists got their end (a
/// kill in that moment): the retry finds every segment written and still ends each growing
/// playlist, or players that started on them would wait for more forever.
#[test]
fn a_retry_with_every_segment_written_still_ends_the_growing_playlists() {
    let b = Buckets::new();
    let key = "uploads/long/talk.mp4";
    let etag = b.put_file(key, minute_clip());
    let (store, _) = watched(&b, Duration::ZERO);
    let Outcome::Processed { version, .. } = publish(&store, &config(), key, &etag) else {
        panic!("first publish");
    };
    // What the stopped run left: the growing playlists listing every segment, no end, the
    // growing master live, no VOD playlist, and a manifest that is not complete.
    let root = b.bucket().join(TITLE);
    let mut growing = Vec::new();
    for p in walk(&root) {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name == "event.m3u8" {
            let text = std::fs::read_to_string(&p).unwrap();
            let unended = text.strip_suffix("#EXT-X-ENDLIST\n").unwrap().to_owned();
            std::fs::write(&p, &unended).unwrap();
            growing.push((p, unended));
        } else if name == "index.m3u8" || name == "iframes.m3u8" {
            std::fs::remove_file(&p).unwrap();
        }
    }
    assert_eq!(growing.len(), 2);
    let master = std::fs::read_to_string(root.join("master.m3u8")).unwrap();
    let growing_master: String = master
        .lines()
        .filter(|l| !l.starts_with("#EXT-X-I-FRAME-STREAM-INF"))
        .map(|l| l.replace("/index.m3u8", "/event.m3u8") + "\n")
        .collect();
    std::fs::write(root.join("master.m3u8"), growing_master).unwrap();
    let mut m = b.manifest(TITLE);
    m["state"] = "failed".into();
    m["target_version"] = version.as_str().into();
    std::fs::write(root.join("manifest.json"), m.to_string()).unwrap();

    let (store, seen) = watched(&b, Duration::ZERO);
    let Outcome::Processed { version: again, .. } = publish(&store, &config(), key, &etag) else {
        panic!("retry");
    };
    assert_eq!(again, version);
    for (path, before) in &growing {
        let now = std::fs::read_to_string(path).unwrap();
        assert_eq!(
            now,
            format!("{before}#EXT-X-ENDLIST\n"),
            "{}",
            path.display()
        );
    }
    let seen = seen.lock().unwrap();
    assert!(seen.missing.is_empty(), "{:#?}", seen.missing);
    let master = std::fs::read_to_string(root.join("master.m3u8")).unwrap();
    assert!(
        master.contains("/index.m3u8") && !master.contains("event.m3u8"),
        "{master}"
    );
    assert_eq!(b.manifest(TITLE)["state"], "complete");
}
