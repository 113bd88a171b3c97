//! Crash consistency, proven by killing the worker (the reliability issue): `hlspipe
//! process-event` is killed with SIGKILL at seeded random moments while it re-publishes a live
//! title into the folder store, while another thread samples the title the whole time. At
//! every sample and after every kill, the master (if any) names only media playlists that
//! exist and they name only objects that exist, and the live version stays playable; the
//! re-delivered event then completes the title. A second test kills the progressive publish
//! of new titles the same way: the growing master names only what exists, and a growing
//! playlist only ever grows, across the kill and the redelivery too.
//!
//! The suite runs `HLSPIPE_KILLS` kills (default 20); `bash scripts/kill-campaign.sh` runs 200
//! against the folder store and against the S3 server through the fault proxy.

use crate::support::buckets::{process_event, Buckets, BUCKET};
use crate::support::{
    assert_decodes, clip, event_fixture, hlspipe_isolated, minute_clip, small_clip,
};
use hlspipe::testing::check::{check_event_playlist, check_master_playlist, check_media_playlist};
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) const KEY: &str = "uploads/shows/Happy Faceé.mp4";
pub(crate) const TITLE: &str = "hls/shows/Happy Faceé.hls/";

/// Every object the title's master names, and that those playlists name, exists. `Ok(false)`
/// when there is no master yet. Objects are replaced by rename, so a reader never sees half
/// a playlist: a playlist that does not parse is a failure too.
pub(crate) fn references_exist(bucket: &Path) -> Result<bool, String> {
    references_exist_in(bucket, TITLE)
}

/// [`references_exist`] for the title whose folder is `title`. The master of a title being
/// published progressively names growing playlists: those must pass the EVENT rules.
pub(crate) fn references_exist_in(bucket: &Path, title: &str) -> Result<bool, String> {
    let dir = bucket.join(title);
    let Ok(master) = std::fs::read_to_string(dir.join("master.m3u8")) else {
        return Ok(false);
    };
    let summary = check_master_playlist(&master).map_err(|e| format!("master: {e:?}"))?;
    for uri in summary.uris() {
        let path = dir.join(uri);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("the master names {uri}, which is missing: {e}"))?;
        let media = if uri.ends_with("/event.m3u8") {
            check_event_playlist(&text)
        } else {
            check_media_playlist(&text)
        }
        .map_err(|e| format!("{uri}: {e:?}"))?;
        let base = path.parent().unwrap_or(&dir);
        for object in media.uris() {
            if !base.join(object).is_file() {
                return Err(format!("{uri} names {object}, which is missing"));
            }
        }
    }
    Ok(true)
}

pub(crate) fn put_event(etag: &str) -> String {
    event_fixture("s3-put.json").replace("9b2cf535f27731c974343645a3985328", etag)
}

/// xorshift64*: the kill moments, the same on every run.
pub(crate) fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// How long one whole re-publish takes here, to spread the kills across it.
fn job_time(b: &Buckets, event: &str) -> Duration {
    let t0 = Instant::now();
    let out = process_event(b, event, &[], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    t0.elapsed()
}

#[test]
fn sigkill_at_random_moments_never_exposes_a_missing_object_and_redelivery_completes() {
    let kills: usize = std::env::var("HLSPIPE_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let b = Buckets::new();
    let etag = b.put_file(KEY, clip());
    let span = job_time(&b, &put_event(&etag));
    assert!(references_exist(&b.bucket()).unwrap());

    let stop = Arc::new(AtomicBool::new(false));
    let samples = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (bucket, stop, samples) = (b.bucket(), Arc::clone(&stop), Arc::clone(&samples));
        std::thread::spawn(move || -> Result<(), String> {
            while !stop.load(Ordering::Relaxed) {
                // Live from the first publish on: a master must exist at every moment.
                if !references_exist(&bucket)? {
                    return Err("the live title's master disappeared".into());
                }
                samples.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        })
    };

    let mut seed = 0x5eed_u64;
    let mut killed_mid_job = 0;
    for i in 0..kills {
        // Each round re-publishes: the upload alternates between two files.
        let file = if i % 2 == 0 { small_clip() } else { clip() };
        let etag = b.put_file(KEY, file);
        let event = put_event(&etag);
        let event_file = b.dir.path().join(format!("kill-event-{i}.json"));
        std::fs::write(&event_file, &event).unwrap();
        let delay =
            Duration::from_micros(next(&mut seed) % (span.as_micros() as u64 * 12 / 10 + 1));
        let mut child = hlspipe_isolated()
            .arg("process-event")
            .arg(&event_file)
            .env("HLSPIPE_STORE", b.url())
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
        if let Err(e) = references_exist(&b.bucket()) {
            panic!("after kill {i} ({delay:?} into the job): {e}");
        }
        // At-least-once delivery: the event comes again and completes the title.
        let out = process_event(&b, &event, &[], &[]);
        assert!(
            out.status.success(),
            "redelivery {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let manifest = b.manifest(TITLE);
        assert_eq!(
            manifest["state"], "complete",
            "after redelivery {i}: {manifest}"
        );
    }
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap().unwrap();
    assert_decodes(&b.bucket().join(TITLE).join("master.m3u8"));
    eprintln!(
        "kills survived: {kills}/{kills} ({killed_mid_job} mid-job); {} consistent samples",
        samples.load(Ordering::Relaxed)
    );
    assert!(
        killed_mid_job * 2 >= kills,
        "only {killed_mid_job} of {kills} kills landed mid-job"
    );
}

/// The growing playlists of `title` as they are now, by path.
fn growing_playlists(bucket: &Path, title: &str) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    let Ok(versions) = std::fs::read_dir(bucket.join(title).join("v")) else {
        return out;
    };
    for rendition in versions
        .flatten()
        .flat_map(|v| std::fs::read_dir(v.path()).into_iter().flatten().flatten())
    {
        let path = rendition.path().join("event.m3u8");
        if let Ok(text) = std::fs::read_to_string(&path) {
            out.insert(path.display().to_string(), text);
        }
    }
    out
}

/// Each playlist in `now` is the one in `before` with lines appended (or new).
fn only_appended(
    before: &std::collections::BTreeMap<String, String>,
    now: &std::collections::BTreeMap<String, String>,
) -> Result<(), String> {
    for (path, old) in before {
        match now.get(path) {
            Some(new) if new.starts_with(old.as_str()) => {}
            Some(new) => return Err(format!("{path} was not appended to:\n{old}---\n{new}")),
            None => return Err(format!("{path} disappeared")),
        }
    }
    Ok(())
}

/// Samples `title` until `stop`: every master names what exists, every growing playlist only
/// grows. Returns the samples taken, or the first violation.
fn sample(
    bucket: std::path::PathBuf,
    title: &str,
    stop: &Arc<AtomicBool>,
) -> std::thread::JoinHandle<Result<usize, String>> {
    let (stop, title) = (Arc::clone(stop), title.to_owned());
    std::thread::spawn(move || {
        let (mut seen, mut samples) = (Default::default(), 0);
        while !stop.load(Ordering::Relaxed) {
            references_exist_in(&bucket, &title)?;
            let now = growing_playlists(&bucket, &title);
            only_appended(&seen, &now)?;
            seen = now;
            samples += 1;
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(samples)
    })
}

/// New titles, each published progressively and killed with SIGKILL at a seeded random
/// moment: at every sample and after every kill, a master (once out) names only playlists
/// that exist and they only objects that exist; a growing playlist only ever grows, across
/// the kill and the redelivery too; the redelivered event completes the title.
#[test]
fn sigkill_during_a_progressive_publish_never_exposes_a_missing_object_nor_shrinks_a_playlist() {
    let kills: usize = std::env::var("HLSPIPE_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
        / 2;
    let b = Buckets::new();
    // One-second segments: 120 objects a title, so kills land between many writes.
    let env = [("HLSPIPE_SEGMENT_DURATION", "1")];
    let event_for = |key: &str| {
        let etag = b.put_file(key, minute_clip());
        let size = std::fs::metadata(minute_clip()).unwrap().len();
        hlspipe::pipeline::event::s3_put_event(BUCKET, key, &etag, size, 1_700_000_000)
    };
    // How long a whole publish takes here, watched as the killed ones will be.
    let stop = Arc::new(AtomicBool::new(false));
    let probe = sample(b.bucket(), "hls/new/probe.hls/", &stop);
    let t0 = Instant::now();
    let out = process_event(&b, &event_for("uploads/new/probe.mp4"), &env, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let span = t0.elapsed();
    stop.store(true, Ordering::Relaxed);
    probe.join().unwrap().unwrap();

    let mut seed = 0x9e0_u64;
    let mut killed_playable = 0;
    for i in 0..kills {
        let key = format!("uploads/new/title-{i}.mp4");
        let title = format!("hls/new/title-{i}.hls/");
        let event = event_for(&key);
        let event_file = b.dir.path().join(format!("progressive-event-{i}.json"));
        std::fs::write(&event_file, &event).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = sample(b.bucket(), &title, &stop);
        let mut child = hlspipe_isolated()
            .arg("process-event")
            .arg(&event_file)
            .env("HLSPIPE_STORE", b.url())
            .envs(env)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Even rounds: anywhere in the job. Odd rounds: once the master is out, while the
        // segments are still being written (the publish is the short end of the job here).
        let master = b.bucket().join(&title).join("master.m3u8");
        let micros = span.as_micros() as u64;
        let delay = if i % 2 == 0 {
            Duration::from_micros(next(&mut seed) % (micros * 15 / 10 + 1))
        } else {
            while !master.exists() && child.try_wait().unwrap().is_none() {
                std::thread::sleep(Duration::from_micros(200));
            }
            Duration::from_micros(next(&mut seed) % (micros / 20 + 1))
        };
        std::thread::sleep(delay);
        let running = child.try_wait().unwrap().is_none();
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        stop.store(true, Ordering::Relaxed);
        let samples = sampler.join().unwrap();
        if let Err(e) = samples {
            panic!("during kill {i} ({delay:?}): {e}");
        }
        let playable = references_exist_in(&b.bucket(), &title)
            .unwrap_or_else(|e| panic!("after kill {i}: {e}"));
        let complete =
            b.exists(&format!("{title}manifest.json")) && b.manifest(&title)["state"] == "complete";
        if running && playable && !complete {
            killed_playable += 1;
        }
        let after_kill = growing_playlists(&b.bucket(), &title);

        // At-least-once delivery: the event comes again and completes the title, growing
        // the same playlists on from where they were.
        let out = process_event(&b, &event, &env, &[]);
        assert!(
            out.status.success(),
            "redelivery {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(b.manifest(&title)["state"], "complete");
        let finished = growing_playlists(&b.bucket(), &title);
        only_appended(&after_kill, &finished).unwrap_or_else(|e| panic!("redelivery {i}: {e}"));
        // Every growing playlist a player may hold has its end.
        for (path, text) in &finished {
            assert!(
                text.ends_with("#EXT-X-ENDLIST\n"),
                "redelivery {i}: {path}:\n{text}"
            );
        }
        assert!(references_exist_in(&b.bucket(), &title).unwrap());
    }
    eprintln!(
        "progressive kills survived: {kills}/{kills} ({killed_playable} left a playable title)"
    );
    assert!(
        killed_playable * 4 >= kills,
        "only {killed_playable} of {kills} kills landed after the master was out, before the end"
    );
}
