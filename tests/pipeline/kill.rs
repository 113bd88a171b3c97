//! Crash consistency, proven by killing the worker (the reliability issue): `hlspipe
//! process-event` is killed with SIGKILL at seeded random moments while it re-publishes a live
//! title into the folder store, while another thread samples the title the whole time. At
//! every sample and after every kill, the master (if any) names only media playlists that
//! exist and they name only objects that exist, and the live version stays playable; the
//! re-delivered event then completes the title.
//!
//! The suite runs `HLSPIPE_KILLS` kills (default 20); `bash scripts/kill-campaign.sh` runs 200
//! against the folder store and against the S3 server through the fault proxy.

use crate::support::buckets::{process_event, Buckets};
use crate::support::{assert_decodes, clip, event_fixture, hlspipe_isolated, small_clip};
use hlspipe::testing::check::{check_master_playlist, check_media_playlist};
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
    let dir = bucket.join(TITLE);
    let Ok(master) = std::fs::read_to_string(dir.join("master.m3u8")) else {
        return Ok(false);
    };
    let summary = check_master_playlist(&master).map_err(|e| format!("master: {e:?}"))?;
    for uri in summary.uris() {
        let path = dir.join(uri);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("the master names {uri}, which is missing: {e}"))?;
        let media = check_media_playlist(&text).map_err(|e| format!("{uri}: {e:?}"))?;
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
