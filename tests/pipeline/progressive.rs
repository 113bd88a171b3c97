//! Progressive publish: a title with no live version plays while it is written. The store
//! is watched as a player would see it, after every write.

use crate::support::buckets::{record, Buckets};
use crate::support::store::FakeStore;
use crate::support::{
    assert_decodes, decoded_frame_count, ladder_source_720p_16s, minute_clip, small_clip,
};
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
    /// When the master was first written, Unix seconds.
    first_master_at: Option<f64>,
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
                seen.first_master_at = Some(unix_now());
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

/// An ffmpeg that notes when each run of it ends (Unix seconds, one line each) in the log
/// beside it, then exits as the real one did; ffprobe beside it is the real one. Each run
/// starts half a second late, so that the writes a test expects between the chunks' runs
/// have time to happen on a loaded machine. With `fail_from`, that run and every later one
/// fails at once, as an ffmpeg killed would.
fn ffmpeg_noting_exits(dir: &Path, fail_from: Option<usize>) -> (PathBuf, PathBuf) {
    let real = |tool: &str| {
        let out = std::process::Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let log = dir.join("exits.log");
    let ffmpeg = dir.join("ffmpeg");
    std::fs::write(
        &ffmpeg,
        format!(
            "#!/bin/sh\nsleep 0.5\n{}'{}' \"$@\"\nrc=$?\ndate +%s.%N >> '{}'\nexit $rc\n",
            fail_from.map_or(String::new(), |n| format!(
                "[ \"$(wc -l < '{log}' 2>/dev/null || echo 0)\" -ge {} ] && exit 1\n",
                n - 1,
                log = log.display()
            )),
            real("ffmpeg"),
            log.display()
        ),
    )
    .unwrap();
    std::os::unix::fs::symlink(real("ffprobe"), dir.join("ffprobe")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&ffmpeg, std::fs::Permissions::from_mode(0o755)).unwrap();
    (ffmpeg, log)
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The target duration a playlist declares.
fn target_of(text: &str) -> &str {
    text.lines()
        .find_map(|l| l.strip_prefix("#EXT-X-TARGETDURATION:"))
        .unwrap_or_else(|| panic!("no target duration:\n{text}"))
}

/// Every file of `dir`, by its path below it, with its bytes.
fn files_of(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    walk(dir)
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p.strip_prefix(dir).unwrap().to_owned(), bytes)
        })
        .collect()
}

/// With the ladder on, a new title plays from its first chunks on while the later ones are
/// still encoding, and comes out the same to the byte as the title published whole: with
/// the source kept as the top rung (the rungs cut where the source is), and without it (the
/// top rung cut every target duration, the sound encoded apart).
#[test]
fn a_ladder_title_plays_from_its_first_chunks_while_the_later_ones_encode() {
    for (ladder, keep_source) in [("234p:200k", true), ("360p:400k,234p:200k", false)] {
        let tools = tempfile::tempdir().unwrap();
        let (ffmpeg, exits) = ffmpeg_noting_exits(tools.path(), None);
        let config = PipelineConfig {
            ladder: ladder.parse().unwrap(),
            keep_source,
            chunk_seconds: 4.0,
            ffmpeg: Some(ffmpeg.to_string_lossy().into_owned()),
            ..config()
        };
        let b = Buckets::new();
        let key = "uploads/long/talk.mp4";
        let etag = b.put_file(key, ladder_source_720p_16s());
        let (store, seen) = watched(&b, Duration::ZERO);
        let Outcome::Processed { version, .. } = publish(&store, &config, key, &etag) else {
            panic!("{ladder}: not processed");
        };
        let seen = seen.lock().unwrap();
        assert!(seen.missing.is_empty(), "{ladder}: {:#?}", seen.missing);

        // The growing master was out, naming segments already written, before the last
        // chunk's ffmpeg ended.
        let last_exit = std::fs::read_to_string(&exits)
            .unwrap()
            .lines()
            .map(|l| l.parse::<f64>().unwrap())
            .fold(0.0, f64::max);
        let master_at = seen.first_master_at.expect("a master");
        assert!(
            master_at < last_exit,
            "{ladder}: the master came {:.2} s after the last encode",
            master_at - last_exit
        );
        assert!(seen.segments_at_first_master.unwrap() > 0, "{ladder}");
        let masters = &seen.playlists[&format!("{TITLE}master.m3u8")];
        assert_eq!(
            masters.len(),
            2,
            "{ladder}: the growing master, then the whole"
        );
        assert!(masters[0].contains("event.m3u8"), "{}", masters[0]);

        // Each growing playlist only grew, from its first version on with the target
        // duration its VOD playlist has (planned before a rung was encoded).
        let bucket = b.bucket();
        assert!(assert_grew_by_appending(&seen, &bucket) >= 1, "{ladder}");
        for (k, versions) in seen
            .playlists
            .iter()
            .filter(|(k, _)| k.ends_with("event.m3u8"))
        {
            let vod = std::fs::read_to_string(bucket.join(k.replace("event", "index"))).unwrap();
            assert_eq!(target_of(&versions[0]), target_of(&vod), "{ladder} {k}");
        }
        let publishing = seen.states.iter().find(|m| m["state"] == "publishing");
        assert_eq!(publishing.expect("publishing")["version"], version.as_str());
        let master = bucket.join(TITLE).join("master.m3u8");
        assert_decodes(&master);
        assert_eq!(
            decoded_frame_count(&master),
            decoded_frame_count(ladder_source_720p_16s()),
            "{ladder}"
        );

        // The title published whole (a re-upload of a live one flips once complete) is the
        // same, object for object, to the byte: the segments written ahead are the whole's.
        let whole = Buckets::new();
        let (whole_store, _) = watched(&whole, Duration::ZERO);
        let before = whole.put_file(key, small_clip());
        assert!(matches!(
            publish(&whole_store, &config, key, &before),
            Outcome::Processed { .. }
        ));
        let etag_again = whole.put_file(key, ladder_source_720p_16s());
        assert_eq!(etag_again, etag);
        let Outcome::Processed { version: same, .. } =
            publish(&whole_store, &config, key, &etag_again)
        else {
            panic!("{ladder}: the whole publish");
        };
        assert_eq!(same, version);
        let folder = format!("{TITLE}v/{version}");
        let grown = files_of(&bucket.join(&folder));
        let published = files_of(&whole.bucket().join(&folder));
        // The growing playlists (and the local store's locks of them) only in the grown.
        let not_event = |p: &PathBuf| !p.to_string_lossy().contains("event.m3u8");
        assert_eq!(
            grown.keys().filter(|p| not_event(p)).collect::<Vec<_>>(),
            published.keys().collect::<Vec<_>>(),
            "{ladder}"
        );
        for (path, bytes) in &published {
            assert!(
                grown[path] == *bytes,
                "{ladder}: {} differs",
                path.display()
            );
        }
    }
}

/// A ladder whose later chunks fail to encode after its first ones were written ahead: the
/// title plays as far as they go, every playlist names only what is written, and the retry
/// of the event encodes again and finishes the same playlists, only appending to them.
#[test]
fn a_ladder_that_fails_after_its_first_chunks_plays_as_far_as_they_go_and_its_retry_finishes_it() {
    let tools = tempfile::tempdir().unwrap();
    // Runs: the version check, the previews, the sound, chunk 0 and 1; a run that starts
    // after five have ended fails: the last chunk (and every try of it again) at least.
    let (ffmpeg, _) = ffmpeg_noting_exits(tools.path(), Some(6));
    let config = PipelineConfig {
        ladder: "234p:200k".parse().unwrap(),
        keep_source: false,
        chunk_seconds: 4.0,
        ..config()
    };
    let failing = PipelineConfig {
        ffmpeg: Some(ffmpeg.to_string_lossy().into_owned()),
        ..config.clone()
    };
    let b = Buckets::new();
    let key = "uploads/long/talk.mp4";
    let etag = b.put_file(key, ladder_source_720p_16s());
    let (store, seen) = watched(&b, Duration::ZERO);
    let outcome = publish(&store, &failing, key, &etag);
    assert!(matches!(outcome, Outcome::Failed { .. }), "{outcome}");
    let m = b.manifest(TITLE);
    assert_eq!(m["state"], "failed", "{m}");
    let version = m["version"]
        .as_str()
        .expect("the growing version is live")
        .to_owned();
    let root = b.bucket().join(TITLE);
    let master = std::fs::read_to_string(root.join("master.m3u8")).unwrap();
    assert!(master.contains("event.m3u8"), "{master}");
    let before: BTreeMap<PathBuf, String> = walk(&root)
        .into_iter()
        .filter(|p| p.ends_with("event.m3u8"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            assert!(!text.contains("#EXT-X-ENDLIST"), "{}", p.display());
            assert!(text.contains("#EXTINF"), "{}: {text}", p.display());
            (p, text)
        })
        .collect();
    assert_eq!(before.len(), 2, "video and sound");
    assert!(seen.lock().unwrap().missing.is_empty());

    let Outcome::Processed { version: again, .. } = publish(&store, &config, key, &etag) else {
        panic!("retry");
    };
    assert_eq!(again, version);
    let seen = seen.lock().unwrap();
    assert!(seen.missing.is_empty(), "{:#?}", seen.missing);
    for (path, text) in &before {
        let now = std::fs::read_to_string(path).unwrap();
        assert!(now.starts_with(text.as_str()), "{} shrank", path.display());
        assert!(now.ends_with("#EXT-X-ENDLIST\n"), "{now}");
    }
    assert_eq!(b.manifest(TITLE)["state"], "complete");
    assert_decodes(&root.join("master.m3u8"));
}
