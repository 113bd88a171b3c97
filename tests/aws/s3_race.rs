//! Concurrent jobs for one title on the S3 store (a real S3 server on 127.0.0.1, through a
//! proxy that records each request's headers): uploads of one key a few ms apart, each
//! event handled by its own thread's job. At the end the newest upload's version is live in
//! the master and the manifest, the manifest records every version any job wrote, and
//! every write of the manifest and of the master carried its condition (`If-Match` on the
//! ETag read, or `If-None-Match: *`). moto checks a condition and then writes, not as one
//! step: the proxy hands it conditional writes one at a time, as S3 applies them. The
//! exclusivity of the store's own writes is proven on the folder store
//! (`tests/pipeline/race.rs`); here the requests and the outcome are.

use crate::support::proxy::{Fault, Proxy};
use crate::support::s3::S3Server;
use crate::support::{clip, small_clip};
use hlspipe::media::object::{Body, Object};
use hlspipe::pipeline::config::PipelineConfig;
use hlspipe::pipeline::event::{Job, Record, RecordKind};
use hlspipe::pipeline::manifest::{Manifest, State};
use hlspipe::pipeline::outcome::Outcome;
use hlspipe::store::{S3Client, S3Store, Store};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BUCKET: &str = "t-race";
const KEY: &str = "uploads/shows/race.mp4";
const TITLE: &str = "hls/shows/race.hls/";

/// `file`'s bytes with a top-level `free` box carrying `n` (ignored by readers, ISO/IEC
/// 14496-12 § 8.1.2): the same media, another ETag, another version.
fn variant(file: &Path, n: u32) -> Vec<u8> {
    let mut bytes = std::fs::read(file).unwrap();
    bytes.extend_from_slice(&12u32.to_be_bytes());
    bytes.extend_from_slice(b"free");
    bytes.extend_from_slice(&n.to_be_bytes());
    bytes
}

fn upload(store: &dyn Store, bytes: Vec<u8>) -> String {
    let obj = Object {
        key: KEY.into(),
        content_type: "video/mp4",
        cache_control: "no-cache",
        body: Body::from_bytes(bytes),
    };
    store.put(KEY, &obj, &[]).unwrap();
    store.head(KEY).unwrap().unwrap().etag
}

fn job(store: &Arc<dyn Store>, etag: &str) -> Outcome {
    let config = PipelineConfig::default();
    let worker = crate::support::pipeline(&config);
    let record = Record {
        reprocess: false,
        kind: RecordKind::Created,
        job: Job {
            bucket: BUCKET.into(),
            key: KEY.into(),
            etag: Some(etag.into()),
            size: None,
            sequencer: None,
        },
        message_id: None,
    };
    worker.handle_record(store, &record)
}

/// A PUT of the manifest or the master as the proxy saw it: (object, If-Match, If-None-Match).
type SeenPut = (String, Option<String>, Option<String>);

#[test]
fn racing_jobs_on_s3_end_with_the_newest_live_every_version_recorded_and_conditional_writes() {
    let server = S3Server::shared();
    let seen: Arc<Mutex<Vec<SeenPut>>> = Arc::default();
    let proxy = {
        let seen = Arc::clone(&seen);
        Proxy::start(server.addr, move |r| {
            let object = r.path.split('?').next().unwrap_or_default();
            let named = ["manifest.json", "master.m3u8"]
                .into_iter()
                .find(|name| object.ends_with(name));
            if let (Some(name), "PUT") = (named, r.method.as_str()) {
                let h = |n: &str| r.header(n).map(str::to_string);
                seen.lock()
                    .unwrap()
                    .push((name.to_string(), h("if-match"), h("if-none-match")));
            }
            // moto checks a condition and then writes, as two steps: two jobs' writes over
            // the same ETag could both pass. S3 applies them atomically, and so does moto
            // when they reach it one at a time.
            let conditional = r.header("if-match").is_some() || r.header("if-none-match").is_some();
            if conditional && r.method == "PUT" {
                Fault::OneAtATime
            } else {
                Fault::Forward
            }
        })
    };
    let client = Arc::new(S3Client::new(&S3Server::settings_for(&proxy.endpoint(), 4)).unwrap());
    let s3 = S3Store::new(client, BUCKET, "");
    s3.create_bucket().unwrap();
    let store: Arc<dyn Store> = Arc::new(s3);
    let first = upload(store.as_ref(), variant(clip(), 0));
    let t0 = std::time::Instant::now();
    assert!(matches!(job(&store, &first), Outcome::Processed { .. }));
    // Uploads spaced by up to one job's time: the jobs overlap, and some finish their
    // check before the next upload lands.
    let span = t0.elapsed().as_millis() as u64 + 1;

    let (jobs, rounds) = (6u32, 2u32);
    let (mut seed, mut published, mut overlapped) = (0x5eed_u64, 0, 0);
    for round in 0..rounds {
        let mut threads = Vec::new();
        let mut newest = String::new();
        for i in 0..jobs {
            let file = if i % 2 == 0 { clip() } else { small_clip() };
            newest = upload(store.as_ref(), variant(file, 1 + round * jobs + i));
            let (store, etag) = (Arc::clone(&store), newest.clone());
            threads.push(std::thread::spawn(move || {
                let started = Instant::now();
                (job(&store, &etag), started, Instant::now())
            }));
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            std::thread::sleep(Duration::from_millis((seed >> 33) % span));
        }
        let mut spans = Vec::new();
        for t in threads {
            let (outcome, started, ended) = t.join().unwrap();
            spans.push((started, ended));
            match outcome {
                Outcome::Processed { .. } => published += 1,
                Outcome::Stale { .. } => {}
                other => panic!("round {round}: a job neither published nor stood aside: {other}"),
            }
        }
        // Jobs that ran at the same time: pairs where one started before the other ended.
        for (i, a) in spans.iter().enumerate() {
            overlapped += spans[i + 1..]
                .iter()
                .filter(|b| b.0 < a.1 && a.0 < b.1)
                .count();
        }
        let bytes = store
            .get(&format!("{TITLE}manifest.json"))
            .unwrap()
            .unwrap();
        let m = Manifest::parse(&bytes).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert_eq!(
            (m.state, m.target_version.as_deref()),
            (State::Complete, None),
            "{text}"
        );
        assert_eq!(
            m.sources[0].etag.as_deref(),
            Some(newest.as_str()),
            "{text}"
        );
        let live = m.version.clone().unwrap();
        let master = store.get(&format!("{TITLE}master.m3u8")).unwrap().unwrap();
        let master = String::from_utf8(master).unwrap();
        assert!(master.contains(&format!("v/{live}/")), "{master}");
        let recorded = m.recorded_versions();
        for o in store.list(&format!("{TITLE}v/")).unwrap() {
            let version = o.key[TITLE.len() + 2..]
                .split('/')
                .next()
                .unwrap()
                .to_string();
            assert!(
                recorded.contains(&version),
                "{} is not recorded: {text}",
                o.key
            );
        }
    }
    let seen = seen.lock().unwrap();
    let (mut if_match, mut if_none) = (0, 0);
    for (name, m, n) in seen.iter() {
        match (m, n.as_deref()) {
            (Some(_), None) => if_match += 1,
            (None, Some("*")) => if_none += 1,
            _ => {
                panic!("a PUT of {name} without its condition: If-Match {m:?}, If-None-Match {n:?}")
            }
        }
    }
    eprintln!(
        "{rounds} rounds of {jobs} racing jobs on S3: {published} published, {overlapped} \
         overlaps; {} conditional PUTs of the manifest and master ({if_match} If-Match, \
         {if_none} If-None-Match: *)",
        seen.len()
    );
    assert!(overlapped > 0, "the jobs never ran at the same time");
    assert!(if_match > 0 && if_none >= 2, "{seen:?}");
    // How many jobs of a round publish before a newer one overtakes them depends on timing
    // (2 of 12 in one CI run, 6 in another): reported above, never asserted. What must hold
    // whatever the timing is checked per round above.
    assert!(
        published >= rounds,
        "{published} jobs published in {rounds} rounds"
    );
}
