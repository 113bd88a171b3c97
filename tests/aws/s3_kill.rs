//! Crash consistency on S3 (the reliability issue): `hlspipe process-event` reaches the S3
//! server through a proxy that, on a seeded schedule, drops connections, delays requests and
//! answers 500 InternalError or 503 SlowDown, and is killed with SIGKILL at seeded random
//! moments while it re-publishes a live title. A sampler reading the bucket directly checks
//! the whole time, and after every kill, that the manifest is readable, the master names only
//! media playlists that exist and they name only objects that exist; the event is then
//! re-delivered (again, while it fails retryably, as SQS would) until the title is complete.
//!
//! The suite runs `HLSPIPE_S3_KILLS` kills (default 6); `bash scripts/kill-campaign.sh --s3`
//! runs 200.

use crate::support::proxy::{Fault, Proxy};
use crate::support::s3::S3Server;
use crate::support::{clip, event_fixture, small_clip};
use hlspipe::media::object::{Body, Object};
use hlspipe::pipeline::manifest::{Manifest, State};
use hlspipe::store::{S3Store, Store};
use hlspipe::testing::check::{check_master_playlist, check_media_playlist};
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BUCKET: &str = "t-kill-campaign";
const KEY: &str = "uploads/shows/Happy Faceé.mp4";
const TITLE: &str = "hls/shows/Happy Faceé.hls/";

/// xorshift64*: the same schedule on every run.
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// What the proxy does to request `index`: about 3% dropped, 3% 503, 2% 500, 8% delayed
/// by up to 200 ms; the rest forwarded.
fn schedule(index: usize) -> Fault {
    let mut s = 0x5eed_0000_u64 ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let roll = next(&mut s) % 100;
    match roll {
        0..=2 => Fault::Drop,
        3..=5 => Fault::SlowDown,
        6..=7 => Fault::InternalError,
        8..=15 => Fault::Delay(Duration::from_millis(next(&mut s) % 200)),
        _ => Fault::Forward,
    }
}

/// The manifest parses and every object the master names, and that those playlists name,
/// exists. `Ok(false)` when there is no master.
fn consistent(store: &S3Store) -> Result<bool, String> {
    let get = |key: &str| store.get(key).map_err(|e| format!("GET {key}: {e}"));
    let manifest = get(&format!("{TITLE}manifest.json"))?.ok_or("no manifest")?;
    Manifest::parse(&manifest).map_err(|e| format!("manifest: {e}"))?;
    let Some(master) = get(&format!("{TITLE}master.m3u8"))? else {
        return Ok(false);
    };
    let master = String::from_utf8_lossy(&master);
    let summary = check_master_playlist(&master).map_err(|e| format!("master: {e:?}"))?;
    for uri in summary.uris() {
        let key = format!("{TITLE}{uri}");
        let text = get(&key)?.ok_or_else(|| format!("the master names {uri}, which is missing"))?;
        let text = String::from_utf8_lossy(&text);
        let media = check_media_playlist(&text).map_err(|e| format!("{uri}: {e:?}"))?;
        let base = &key[..key.rfind('/').map_or(0, |i| i + 1)];
        for object in media.uris() {
            let found = store.head(&format!("{base}{object}"));
            if !matches!(found, Ok(Some(_))) {
                return Err(format!(
                    "{uri} names {object}, which is missing ({found:?})"
                ));
            }
        }
    }
    Ok(true)
}

fn upload(store: &S3Store, bytes: Vec<u8>) -> String {
    let obj = Object {
        key: KEY.into(),
        content_type: "video/mp4",
        cache_control: "no-cache",
        body: Body::from_bytes(bytes),
    };
    store.put(KEY, &obj, &[]).unwrap();
    store.head(KEY).unwrap().unwrap().etag
}

fn event(etag: &str) -> String {
    event_fixture("s3-put.json")
        .replace("hlspipe-media", BUCKET)
        .replace("9b2cf535f27731c974343645a3985328", etag)
}

/// Delivers `event` until the job succeeds (a retryable failure is delivered again, as SQS
/// does), at most 10 times; the last output.
fn deliver(endpoint: &str, event_file: &std::path::Path) -> Output {
    let mut last = None;
    for _ in 0..10 {
        let out = S3Server::hlspipe_for(endpoint)
            .arg("process-event")
            .arg(event_file)
            .output()
            .unwrap();
        if out.status.success() {
            return out;
        }
        last = Some(out);
    }
    last.unwrap()
}

#[test]
fn sigkill_through_a_faulty_s3_proxy_never_exposes_a_missing_object_and_redelivery_completes() {
    let kills: usize = std::env::var("HLSPIPE_S3_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let server = S3Server::shared();
    let direct = server.bucket(BUCKET);
    let proxy = Proxy::start(server.addr, |r| schedule(r.index));
    let dir = tempfile::tempdir().unwrap();
    let event_file = dir.path().join("event.json");

    let etag = upload(&direct, std::fs::read(clip()).unwrap());
    std::fs::write(&event_file, event(&etag)).unwrap();
    let t0 = Instant::now();
    let out = deliver(&proxy.endpoint(), &event_file);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let span = t0.elapsed();
    assert!(consistent(&direct).unwrap());

    let stop = Arc::new(AtomicBool::new(false));
    let samples = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (store, stop, samples) = (Arc::clone(&direct), Arc::clone(&stop), Arc::clone(&samples));
        std::thread::spawn(move || -> Result<(), String> {
            while !stop.load(Ordering::Relaxed) {
                if !consistent(&store)? {
                    return Err("the live title's master disappeared".into());
                }
                samples.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        })
    };

    let (mut seed, mut killed_mid_job) = (0x5eed_u64, 0);
    for i in 0..kills {
        let file = if i % 2 == 0 { small_clip() } else { clip() };
        let mut bytes = std::fs::read(file).unwrap();
        // A top-level `free` box (ignored by readers): a new ETag every round.
        bytes.extend_from_slice(&12u32.to_be_bytes());
        bytes.extend_from_slice(b"free");
        bytes.extend_from_slice(&(i as u32).to_be_bytes());
        let etag = upload(&direct, bytes);
        std::fs::write(&event_file, event(&etag)).unwrap();
        // Within the first half of the first job's time: that one published to an empty
        // title and may have waited out retries, so later jobs can be quicker.
        let delay = Duration::from_micros(next(&mut seed) % (span.as_micros() as u64 / 2 + 1));
        let mut child = S3Server::hlspipe_for(&proxy.endpoint())
            .arg("process-event")
            .arg(&event_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_none() {
            killed_mid_job += 1;
        }
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        if let Err(e) = consistent(&direct) {
            panic!("after kill {i} ({delay:?} into the job): {e}");
        }
        let out = deliver(&proxy.endpoint(), &event_file);
        assert!(
            out.status.success(),
            "redelivery {i}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let m = Manifest::parse(
            &direct
                .get(&format!("{TITLE}manifest.json"))
                .unwrap()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(m.state, State::Complete, "after redelivery {i}: {m:?}");
        assert_eq!(m.sources[0].etag.as_deref(), Some(etag.as_str()));
    }
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap().unwrap();
    let c = &proxy.counts;
    eprintln!(
        "S3 kills survived: {kills}/{kills} ({killed_mid_job} mid-job); {} consistent samples; \
         proxy: {} requests, {} dropped, {} 503, {} 500, {} delayed",
        samples.load(Ordering::Relaxed),
        c.requests.load(Ordering::Relaxed),
        c.dropped.load(Ordering::Relaxed),
        c.slowed.load(Ordering::Relaxed),
        c.errors.load(Ordering::Relaxed),
        c.delayed.load(Ordering::Relaxed),
    );
    assert!(
        killed_mid_job * 2 >= kills,
        "only {killed_mid_job} of {kills} kills landed mid-job"
    );
}
