//! `hlspipe reprocess` over a catalogue on a real S3 server (moto on 127.0.0.1), reached
//! through a proxy that records every request: the plan (text and JSON, compared whole), a
//! run that does only what the plan says, a second run that writes nothing, `--force`, and
//! an interrupted run resumed.

use crate::support::buckets::record;
use crate::support::proxy::{Fault, Proxy};
use crate::support::s3::{bucket_name, S3Server};
use crate::support::{small_clip, stderr, stdout};
use hlspipe::pipeline::config::PipelineConfig;
use hlspipe::pipeline::event::RecordKind;
use hlspipe::pipeline::outcome::Outcome;
use hlspipe::store::{S3Store, Store};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

fn put(store: &S3Store, key: &str, bytes: Vec<u8>) -> String {
    let obj = hlspipe::media::object::Object {
        key: key.into(),
        content_type: "video/mp4",
        cache_control: "no-cache",
        body: hlspipe::media::object::Body::from_bytes(bytes),
    };
    store.put(key, &obj, &[]).unwrap();
    store.head(key).unwrap().unwrap().etag
}

/// Publishes `key` (just written, `etag`) with `config`, as its upload event would.
fn publish(store: &Arc<S3Store>, key: &str, etag: &str, config: &PipelineConfig) -> Outcome {
    let store: Arc<dyn Store> = store.clone();
    crate::support::pipeline(config)
        .handle_record(&store, &record(RecordKind::Created, key, Some(etag)))
}

/// `file`'s bytes with a top-level `free` box carrying `n`: the same media, another ETag.
fn variant(n: u32) -> Vec<u8> {
    let mut bytes = std::fs::read(small_clip()).unwrap();
    bytes.extend_from_slice(&12u32.to_be_bytes());
    bytes.extend_from_slice(b"free");
    bytes.extend_from_slice(&n.to_be_bytes());
    bytes
}

/// The versions of [`grow_a_title`]'s title: the one its manifest names, and a retired one.
struct Growing {
    named: String,
    retired: String,
}

/// `uploads/cat/growing.mp4` as a progressive publish leaves it halfway: its manifest
/// `publishing` the version the source and `config` give (so the plan says "in progress"),
/// with a segment of it and of a version retired at time 0.
fn grow_a_title(store: &S3Store, config: &PipelineConfig) -> Growing {
    use hlspipe::pipeline::manifest::{Manifest, RetiredVersion, SourceInfo, State};
    let etag = put(store, "uploads/cat/growing.mp4", variant(7));
    let named =
        hlspipe::media::package::version_for_sources(&[etag.as_str()], &[], &config.settings());
    let retired = "0123456789ab".to_string();
    let sources = vec![SourceInfo {
        key: "uploads/cat/growing.mp4".into(),
        etag: Some(etag),
        size: 1,
    }];
    let manifest = Manifest {
        state: State::Publishing,
        version: Some(named.clone()),
        target_version: Some(named.clone()),
        retired: [&retired, &named]
            .into_iter()
            .map(|v| RetiredVersion {
                version: v.clone(),
                retired_at: 0,
            })
            .collect(),
        ..Manifest::processing(sources, hlspipe::clock::unix_now())
    };
    let folder = "hls/cat/growing.hls/";
    put(
        store,
        &format!("{folder}manifest.json"),
        serde_json::to_vec(&manifest).unwrap(),
    );
    for v in [&named, &retired] {
        put(store, &format!("{folder}v/{v}/seg.m4s"), vec![0; 100]);
    }
    Growing { named, retired }
}

/// moto behind a proxy that notes the method of every request.
fn recorded(server: &S3Server) -> (Proxy, Arc<Mutex<Vec<String>>>) {
    let methods: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = Arc::clone(&methods);
    let proxy = Proxy::start(server.addr, move |r| {
        seen.lock()
            .unwrap()
            .push(format!("{} {}", r.method, r.path));
        Fault::Forward
    });
    (proxy, methods)
}

/// The requests that write or delete, taken out of the record.
fn writes(methods: &Mutex<Vec<String>>) -> Vec<String> {
    std::mem::take(&mut *methods.lock().unwrap())
        .into_iter()
        .filter(|m| !m.starts_with("GET ") && !m.starts_with("HEAD "))
        .collect()
}

fn reprocess(endpoint: &str, args: &[&str]) -> Output {
    let mut cmd = S3Server::hlspipe_for(endpoint);
    cmd.arg("reprocess").args(args);
    cmd.output().unwrap()
}

/// The JSON lines of a run: (title, what happened) for each title, and the summary.
fn lines_of(out: &Output) -> (BTreeMap<String, String>, serde_json::Value) {
    let mut titles = BTreeMap::new();
    let mut summary = serde_json::Value::Null;
    for line in stdout(out).lines() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line}\n{}", stderr(out)));
        if v.get("summary").is_some() {
            summary = v["summary"].clone();
            continue;
        }
        if v.get("planned").is_none() {
            continue;
        }
        let title = v["planned"]["title"].as_str().unwrap().to_owned();
        let what = match v.get("result") {
            Some(r) => r["outcome"].as_str().unwrap().to_owned(),
            None => v["planned"]["status"].as_str().unwrap().to_owned(),
        };
        titles.insert(title, what);
    }
    (titles, summary)
}

#[test]
fn reprocess_plans_a_mixed_catalogue_and_does_only_what_it_needs() {
    let server = S3Server::shared();
    let name = bucket_name("reprocess-catalogue");
    let store = server.bucket(&name);
    let default = PipelineConfig::default();
    let two_seconds = PipelineConfig {
        segment_duration: 2.0,
        ..PipelineConfig::default()
    };
    let garbage = || b"this is not a video".to_vec();
    let clip = || std::fs::read(small_clip()).unwrap();
    // broken: failed before. changed: its source replaced since. current: up to date.
    // gone: its source removed. old: made with other settings. corrupt, new: never seen.
    let etag = put(&store, "uploads/cat/broken.mp4", garbage());
    let failed = publish(&store, "uploads/cat/broken.mp4", &etag, &default);
    assert!(matches!(failed, Outcome::Failed { .. }), "{failed}");
    for key in [
        "uploads/cat/changed.mp4",
        "uploads/cat/current.mp4",
        "uploads/cat/gone.mp4",
    ] {
        let etag = put(&store, key, clip());
        let outcome = publish(&store, key, &etag, &default);
        assert!(matches!(outcome, Outcome::Processed { .. }), "{outcome}");
    }
    put(&store, "uploads/cat/changed.mp4", variant(1));
    store.delete("uploads/cat/gone.mp4").unwrap();
    let etag = put(&store, "uploads/cat/old.mp4", clip());
    assert!(matches!(
        publish(&store, "uploads/cat/old.mp4", &etag, &two_seconds),
        Outcome::Processed { .. }
    ));
    put(&store, "uploads/cat/corrupt.mp4", garbage());
    put(&store, "uploads/cat/new.mp4", variant(2));
    put(&store, "uploads/cat/notes.txt", b"not media".to_vec());

    let (proxy, methods) = recorded(&server);
    let endpoint = proxy.endpoint();
    let prefix = format!("s3://{name}/uploads/cat/");
    let error = |title: &str| {
        let m = store
            .get(&format!("hls/cat/{title}.hls/manifest.json"))
            .unwrap()
            .unwrap();
        let m: serde_json::Value = serde_json::from_slice(&m).unwrap();
        m["error"].as_str().unwrap().to_owned()
    };

    // The plan, whole: nothing written.
    let plan = reprocess(&endpoint, &["--prefix", &prefix, "--dry-run"]);
    assert!(plan.status.success(), "{}", stderr(&plan));
    let expected = format!(
        "failed before  cat/broken  ({})\n\
         outdated       cat/changed  (its source changed)\n\
         new            cat/corrupt\n\
         up to date     cat/current\n\
         new            cat/new\n\
         outdated       cat/old  (the settings changed (segments of 2 s → segments of 6 s))\n\
         orphaned       cat/gone  (uploads/cat/gone.mp4 is gone)\n\
         plan: 2 new, 1 up to date, 2 outdated, 1 failed before, 0 in progress, 1 orphaned \
         (7 titles)\n",
        error("broken")
    );
    assert_eq!(stdout(&plan), expected);
    assert_eq!(writes(&methods), Vec::<String>::new(), "a dry run wrote");

    let plan = reprocess(&endpoint, &["--prefix", &prefix, "--dry-run", "--json"]);
    assert!(plan.status.success(), "{}", stderr(&plan));
    let (titles, summary) = lines_of(&plan);
    let statuses: Vec<(&str, &str)> = titles
        .iter()
        .map(|(t, s)| (t.as_str(), s.as_str()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("cat/broken", "failed_before"),
            ("cat/changed", "outdated"),
            ("cat/corrupt", "new"),
            ("cat/current", "up_to_date"),
            ("cat/gone", "orphaned"),
            ("cat/new", "new"),
            ("cat/old", "outdated"),
        ]
    );
    assert_eq!(
        summary["planned"],
        serde_json::json!({"new": 2, "up_to_date": 1, "outdated": 2, "failed_before": 1,
                           "orphaned": 1})
    );
    assert_eq!(writes(&methods), Vec::<String>::new(), "a dry run wrote");

    // The run: new and outdated only; the corrupt upload fails (exit 1), the rest go on.
    let run = reprocess(&endpoint, &["--prefix", &prefix, "--json"]);
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    let (titles, summary) = lines_of(&run);
    let done: BTreeMap<&str, &str> = titles
        .iter()
        .map(|(t, s)| (t.as_str(), s.as_str()))
        .collect();
    assert_eq!(
        done,
        BTreeMap::from([
            ("cat/broken", "failed_before"),
            ("cat/changed", "processed"),
            ("cat/corrupt", "failed"),
            ("cat/current", "up_to_date"),
            ("cat/gone", "orphaned"),
            ("cat/new", "processed"),
            ("cat/old", "processed"),
        ])
    );
    assert_eq!(
        summary["outcomes"],
        serde_json::json!({"processed": 3, "failed": 1})
    );
    assert_eq!(summary["failed"][0]["key"], "uploads/cat/corrupt.mp4");
    assert!(!writes(&methods).is_empty());

    // Again: every title is up to date, failed before or orphaned; nothing is written.
    let again = reprocess(&endpoint, &["--prefix", &prefix]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stdout(&again).contains(
            "plan: 0 new, 4 up to date, 0 outdated, 2 failed before, 0 in progress, 1 orphaned"
        ),
        "{}",
        stdout(&again)
    );
    assert_eq!(writes(&methods), Vec::<String>::new(), "a second run wrote");

    // --force publishes every title with a source again; the corrupt ones fail again.
    let forced = reprocess(&endpoint, &["--prefix", &prefix, "--force", "--json"]);
    assert_eq!(forced.status.code(), Some(1), "{}", stderr(&forced));
    let (titles, summary) = lines_of(&forced);
    assert_eq!(
        summary["outcomes"],
        serde_json::json!({"processed": 4, "failed": 2})
    );
    assert_eq!(titles["cat/gone"], "orphaned");
    assert!(!writes(&methods).is_empty());

    // A title being published progressively: its manifest names the growing version (as
    // live and as the one being written; an older entry retiring it too is stale) and one
    // retired long ago. GC takes the retired one only.
    let growing = grow_a_title(&store, &default);

    // --gc: the versions the runs retired (by the settings, the source, the failures), with
    // their sizes in a dry run, then removed; the live ones stay and still decode.
    let grace = ["--gc", "--grace", "0", "--json"];
    let listed = reprocess(
        &endpoint,
        &[&["--prefix", prefix.as_str(), "--dry-run"], &grace[..]].concat(),
    );
    assert!(listed.status.success(), "{}", stderr(&listed));
    assert_eq!(
        writes(&methods),
        Vec::<String>::new(),
        "a dry run collected"
    );
    let collectable: BTreeMap<String, serde_json::Value> = stdout(&listed)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v.get("gc").is_some())
        .map(|v| (v["gc"].as_str().unwrap().to_owned(), v["collected"].clone()))
        .collect();
    let old_live = |title: &str| -> String {
        let m = store
            .get(&format!("hls/cat/{title}.hls/manifest.json"))
            .unwrap()
            .unwrap();
        let m: serde_json::Value = serde_json::from_slice(&m).unwrap();
        m["version"].as_str().unwrap().to_owned()
    };
    assert_eq!(
        collectable["hls/cat/growing.hls/"]["versions"],
        serde_json::json!([growing.retired])
    );
    for title in ["old", "changed"] {
        let c = &collectable[&format!("hls/cat/{title}.hls/")];
        assert_eq!(c["versions"].as_array().unwrap().len(), 1, "{c}");
        assert_ne!(c["versions"][0].as_str().unwrap(), old_live(title));
        assert!(
            c["bytes"].as_u64().unwrap() > 0 && c["objects"].as_u64().unwrap() > 2,
            "{c}"
        );
    }
    let removed = reprocess(
        &endpoint,
        &[&["--prefix", prefix.as_str()], &grace[..]].concat(),
    );
    assert!(removed.status.success(), "{}", stderr(&removed));
    for title in ["old", "changed"] {
        let live = old_live(title);
        let versions: std::collections::BTreeSet<String> = store
            .list(&format!("hls/cat/{title}.hls/v/"))
            .unwrap()
            .iter()
            .map(|o| o.key.split('/').nth(4).unwrap().to_owned())
            .collect();
        assert_eq!(
            versions,
            std::collections::BTreeSet::from([live]),
            "{title}"
        );
        let m = store
            .get(&format!("hls/cat/{title}.hls/manifest.json"))
            .unwrap()
            .unwrap();
        let m: serde_json::Value = serde_json::from_slice(&m).unwrap();
        assert!(m.get("retired").is_none(), "{m}");
    }
    crate::aws_worker::assert_title_decodes(&store, "hls/cat/old.hls/");
    let left: Vec<String> = store
        .list("hls/cat/growing.hls/v/")
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(
        left,
        [format!("hls/cat/growing.hls/v/{}/seg.m4s", growing.named)],
        "the version a publishing manifest names stays"
    );

    // --prune removes the orphan's outputs, and only those.
    let pruned = reprocess(
        &endpoint,
        &["--prefix", &prefix, "--prune", "--only", "*gone*"],
    );
    assert!(pruned.status.success(), "{}", stderr(&pruned));
    assert!(store.list("hls/cat/gone.hls/").unwrap().is_empty());
    assert!(!store.list("hls/cat/current.hls/").unwrap().is_empty());
}

/// Stopped with Ctrl-C after two titles, a run prints its summary so far and exits 130; run
/// again, it does the rest and none of the first again.
#[test]
fn an_interrupted_reprocess_resumed_does_only_the_rest() {
    let server = S3Server::shared();
    let name = bucket_name("reprocess-resume");
    let store = server.bucket(&name);
    for n in 0..6 {
        put(&store, &format!("uploads/r/t{n}.mp4"), variant(10 + n));
    }
    let prefix = format!("s3://{name}/uploads/r/");
    let mut cmd = S3Server::hlspipe_for(&server.endpoint());
    cmd.args([
        "reprocess",
        "--prefix",
        &prefix,
        "--json",
        "--concurrency",
        "1",
    ]);
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = Vec::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        first.push(line.clone());
        if first.iter().filter(|l| l.contains("\"result\"")).count() == 2 {
            Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status()
                .unwrap();
            break;
        }
    }
    first.extend(lines.map(Result::unwrap));
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{first:#?}");
    let summary: serde_json::Value = serde_json::from_str(first.last().unwrap()).unwrap();
    assert_eq!(summary["summary"]["interrupted"], true, "{summary}");
    let done_first: Vec<String> = first
        .iter()
        .filter(|l| l.contains("\"result\""))
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["result"]["outcome"], "processed", "{v}");
            v["planned"]["title"].as_str().unwrap().to_owned()
        })
        .collect();
    assert!((2..6).contains(&done_first.len()), "{first:#?}");

    let again = reprocess(&server.endpoint(), &["--prefix", &prefix, "--json"]);
    assert!(again.status.success(), "{}", stderr(&again));
    let (titles, summary) = lines_of(&again);
    for t in &done_first {
        assert_eq!(titles[t], "up_to_date", "{t} was done again");
    }
    let processed = titles.values().filter(|s| *s == "processed").count();
    assert_eq!(processed + done_first.len(), 6, "{titles:?}");
    assert_eq!(summary["interrupted"], false);
}
