//! `manifest.json`: a title's state (DESIGN.md "Object layout"), with the keys of the two
//! objects at the title's root. Written by the jobs, read by the playback API, the dev page,
//! reprocess and retention.
//!
//! ## Several jobs, one title
//! Two jobs for one title can run at once (two quick re-uploads delivered to two workers, an
//! SQS redelivery overlapping the first run). Every job's write is a compare-and-swap
//! ([`update_manifest`]): read the manifest with its ETag, apply the job's change to what was
//! read, write only if the ETag is still the one read (S3 `If-Match`, or `If-None-Match: *`
//! for a first manifest), else read again and apply again. The changes are functions of the
//! manifest read, written so that any order of them keeps every version any job wrote
//! recorded (live, being written, or retired), and the live version the one the master
//! names: `target_version` and `state` belong to the job that started last, and a job that
//! finds another job's target there leaves them alone.

use crate::error::{Error, Result};
use crate::media::object::{cache_control, content_type, Body, Object};
use crate::media::package::{PackagedTitle, Rendition, TrackReport};
use crate::store::{Precondition, Store};
use std::time::Duration;

pub const MANIFEST_KEY: &str = "manifest.json";
pub const MASTER_KEY: &str = "master.m3u8";

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Processing,
    /// Being published progressively: the master is out and the title plays as far as its
    /// playlists go (DESIGN.md "Publish protocol" 2).
    Publishing,
    Complete,
    Failed,
}

/// Where a title came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourceInfo {
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    pub size: u64,
}

/// A version that `master.m3u8` no longer names, kept for a grace period for players
/// that loaded the previous master, then removed (`worker::gc`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RetiredVersion {
    pub version: String,
    /// Unix seconds when the master stopped naming it (or when its publish failed).
    pub retired_at: u64,
}

/// `manifest.json`: the title's status. The one object allowed to differ between
/// two runs of the same input, because it carries times.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    pub state: State,
    pub sources: Vec<SourceInfo>,
    /// Subtitle side files the version was made with (`ep1.en.srt` beside `ep1.mp4`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subtitles: Vec<SourceInfo>,
    /// The version `master.m3u8` names: the live one, in every state (`None` before the
    /// first success). Its renditions and duration are the fields below.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The version being written (`processing`) or that could not be (`failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_version: Option<String>,
    /// Versions no longer named by the master, awaiting removal.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<RetiredVersion>,
    /// Unix seconds when the master last switched from one version to another (a title's
    /// first publish sets none): what `reprocess --invalidate-changed-since` reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flipped_at: Option<u64>,
    #[serde(default)]
    pub renditions: Vec<Rendition>,
    /// Every track of the live version's inputs and what became of it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tracks: Vec<TrackReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Unix seconds.
    pub started_at: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elapsed_seconds: Option<f64>,
    /// The transcoding stage of the live (or attempted) version: its settings, ffmpeg, the
    /// rungs and the time it took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcode: Option<crate::transcode::encode::TranscodeReport>,
    /// While `processing`: how far the running job is (what a progress bar shows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<JobProgress>,
    /// What made the live version besides its sources: what `reprocess` tells an outdated
    /// title by (absent in manifests written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub made_with: Option<MadeWith>,
}

/// The packager's format and the settings that went into a version's hash.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MadeWith {
    pub packager: String,
    pub settings: String,
}

/// How far a running job is: `done` of `total` in `unit`, in the stage named.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct JobProgress {
    /// `encoding` (the ladder) or `publishing`.
    pub stage: String,
    pub done: f64,
    pub total: f64,
    /// `seconds` (of video encoded here), `parts` (of a ladder shared by the fleet) or
    /// `segments` (written, in a progressive publish).
    pub unit: String,
    /// Unix seconds when it was written.
    pub at: u64,
    /// Publishing progressively: seconds of the title every rendition lists already.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playable_seconds: Option<f64>,
}

impl JobProgress {
    pub fn percent(&self) -> f64 {
        if self.total > 0.0 {
            (self.done / self.total * 100.0).clamp(0.0, 100.0)
        } else {
            0.0
        }
    }
}

/// Records `progress` of the job writing `version` in the title's manifest, unless another
/// job has started since (it owns the state) or the title is no longer `processing`.
pub fn record_progress(
    store: &dyn Store,
    prefix: &str,
    version: &str,
    progress: JobProgress,
) -> Result<()> {
    update_manifest(store, prefix, |fresh| {
        let Some(mut next) = fresh else {
            return Ok(Change::Keep(()));
        };
        if next.state != State::Processing || next.target_version.as_deref() != Some(version) {
            return Ok(Change::Keep(()));
        }
        next.progress = Some(progress.clone());
        Ok(Change::Write(Box::new(next), ()))
    })
}

/// A progressive publish of `version` has grown: once it `playable` (its master is out), the
/// manifest says `publishing` and names it as the version the master names; the progress
/// is recorded either way. Nothing changes unless this version's job owns the state.
pub fn record_growth(
    store: &dyn Store,
    prefix: &str,
    version: &str,
    playable: bool,
    progress: JobProgress,
) -> Result<()> {
    update_manifest(store, prefix, |fresh| {
        let Some(mut next) = fresh else {
            return Ok(Change::Keep(()));
        };
        let ours = next.target_version.as_deref() == Some(version);
        if !ours || !matches!(next.state, State::Processing | State::Publishing) {
            return Ok(Change::Keep(()));
        }
        if playable {
            next.state = State::Publishing;
            next.version = Some(version.to_owned());
        }
        next.progress = Some(progress.clone());
        Ok(Change::Write(Box::new(next), ()))
    })
}

impl Manifest {
    pub fn processing(sources: Vec<SourceInfo>, started_at: u64) -> Self {
        Manifest {
            state: State::Processing,
            sources,
            subtitles: Vec::new(),
            version: None,
            target_version: None,
            retired: Vec::new(),
            flipped_at: None,
            renditions: Vec::new(),
            tracks: Vec::new(),
            duration: None,
            error: None,
            warnings: Vec::new(),
            started_at,
            finished_at: None,
            elapsed_seconds: None,
            transcode: None,
            progress: None,
            made_with: None,
        }
    }

    /// The `processing` manifest of a new run. After a previous run it still describes the
    /// live version (the master names it until the flip, and a reader of the manifest must
    /// be able to trust that) and keeps the retired versions; the run's own fields start
    /// afresh.
    pub fn start(
        previous: Option<Manifest>,
        sources: Vec<SourceInfo>,
        target_version: Option<String>,
        started_at: u64,
    ) -> Self {
        match previous {
            Some(prev) => {
                // The previous run's version, if it never went live (superseded by a newer
                // upload, or a worker that died): its objects are on the store, and this is
                // the last record of them, so it is retired here for GC to collect.
                let unflipped = prev.target_version.clone().filter(|t| {
                    prev.version.as_ref() != Some(t) && target_version.as_ref() != Some(t)
                });
                let mut next = Manifest {
                    state: State::Processing,
                    sources,
                    target_version,
                    error: None,
                    warnings: Vec::new(),
                    started_at,
                    finished_at: None,
                    elapsed_seconds: None,
                    progress: None,
                    ..prev
                };
                if let Some(t) = unflipped {
                    next.retire(&t, started_at);
                }
                // Being written again (the same sources as a version retired earlier): it is
                // recorded as the target now, and GC must not collect it under the writer.
                if let Some(t) = &next.target_version {
                    next.retired.retain(|r| &r.version != t);
                }
                next
            }
            None => Manifest {
                target_version,
                ..Manifest::processing(sources, started_at)
            },
        }
    }

    /// Whether the job writing `ours` owns `state` and `target_version`: it is the job that
    /// started last (or no job is recorded as running).
    fn owns_state(&self, ours: Option<&str>) -> bool {
        self.target_version.is_none() || self.target_version.as_deref() == ours
    }

    /// The job of `title` has flipped the master. `master_is_mine`: the master still names
    /// its version (no later flip replaced it), so that version is now the live one, with
    /// its renditions, and the version live before is retired (from `now`, for the grace
    /// period) and returned. Otherwise a later job's flip replaced it already: it is retired
    /// and the live version stays what that job records. `complete` with the job's timings
    /// only when this job owns the state (none started after it).
    pub fn complete(
        &mut self,
        title: &PackagedTitle,
        now: u64,
        master_is_mine: bool,
    ) -> Option<String> {
        let ours = title.version.as_str();
        let owns = self.owns_state(Some(ours));
        let mut previous_live = None;
        if master_is_mine {
            previous_live = self.version.take();
            self.retired.retain(|r| r.version != ours);
            if let Some(old) = &previous_live {
                if old != ours {
                    self.retire(old, now);
                    self.flipped_at = Some(now);
                }
            }
            self.version = Some(ours.to_string());
            self.renditions = title.renditions.clone();
            self.tracks = title.tracks.clone();
            self.duration = Some(title.duration);
        } else if self.version.as_deref() != Some(ours) {
            self.retire(ours, now);
        }
        if owns {
            self.state = State::Complete;
            self.target_version = None;
            self.error = None;
            self.warnings = title.warnings.clone();
            self.finish(now);
        }
        previous_live
    }

    /// The run writing `ours` failed: `failed` with the reason when it owns the state; the
    /// live version stays. What the run wrote is referenced by nothing, so its version is
    /// retired like a replaced one.
    pub fn fail(&mut self, ours: Option<&str>, error: &dyn std::fmt::Display, now: u64) {
        if let Some(target) = ours {
            if self.version.as_deref() != Some(target) {
                self.retire(target, now);
            }
        }
        if self.owns_state(ours) {
            self.state = State::Failed;
            self.error = Some(error.to_string());
            self.finish(now);
        }
    }

    /// The run writing `ours` was overtaken by a newer upload of its sources: it writes no
    /// state (the newer upload's job does), but what it wrote is retired for GC, and it
    /// stops being the target, so that no finished job is left recorded as running.
    pub fn abandon(&mut self, ours: &str, now: u64) {
        if self.version.as_deref() != Some(ours) {
            self.retire(ours, now);
        }
        if self.target_version.as_deref() == Some(ours) {
            self.target_version = None;
            if self.state == State::Processing && self.version.is_some() {
                self.state = State::Complete;
            }
        }
    }

    /// Every version this manifest records: live, being written, retired. What removal
    /// deletes, and all it deletes.
    pub fn recorded_versions(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .version
            .iter()
            .chain(&self.target_version)
            .cloned()
            .chain(self.retired.iter().map(|r| r.version.clone()))
            .collect();
        all.sort();
        all.dedup();
        all
    }

    fn retire(&mut self, version: &str, now: u64) {
        if !self.retired.iter().any(|r| r.version == version) {
            self.retired.push(RetiredVersion {
                version: version.to_string(),
                retired_at: now,
            });
        }
    }

    fn finish(&mut self, now: u64) {
        self.progress = None;
        self.finished_at = Some(now);
        self.elapsed_seconds = Some(now.saturating_sub(self.started_at) as f64);
    }

    pub fn to_object(&self) -> Object {
        let mut text = serde_json::to_vec_pretty(self).unwrap_or_default();
        text.push(b'\n');
        Object {
            key: MANIFEST_KEY.into(),
            content_type: content_type::JSON,
            cache_control: cache_control::MANIFEST,
            body: Body::from_bytes(text),
        }
    }

    pub fn parse(bytes: &[u8]) -> Result<Self> {
        serde_json::from_slice(bytes)
            .map_err(|e| Error::store_permanent(MANIFEST_KEY, format!("unreadable manifest: {e}")))
    }
}

/// Attempts of one [`update_manifest`] before it gives up with a retryable error (the event
/// comes back and the job starts from a fresh read).
pub const UPDATE_ATTEMPTS: u32 = 10;

/// What a change does with the manifest it was given.
pub enum Change<T> {
    /// Write this manifest (only if nobody wrote since the read), then return `T`.
    Write(Box<Manifest>, T),
    /// Write nothing; return `T`.
    Keep(T),
}

/// Reads the title's manifest, applies `change` to it and writes the result only if the
/// manifest is still the one read (a conditional write on its ETag, or on its absence). When
/// another writer got there first, reads again and applies `change` again to what that writer
/// left, up to [`UPDATE_ATTEMPTS`] times with a random pause between (full jitter). A manifest
/// that does not parse is given to `change` as `None` (it is rewritten), but the write is
/// still conditional on the object read. Errors of `change` end the update, as they are.
pub fn update_manifest<T>(
    store: &dyn Store,
    prefix: &str,
    change: impl FnMut(Option<Manifest>) -> Result<Change<T>>,
) -> Result<T> {
    update_manifest_with(store, prefix, UPDATE_ATTEMPTS, change)
}

/// [`update_manifest`] with a given number of attempts.
pub fn update_manifest_with<T>(
    store: &dyn Store,
    prefix: &str,
    attempts: u32,
    mut change: impl FnMut(Option<Manifest>) -> Result<Change<T>>,
) -> Result<T> {
    let key = format!("{prefix}{MANIFEST_KEY}");
    let mut attempt = 0;
    loop {
        let read = store.get_versioned(&key)?;
        let current = read.as_ref().and_then(|v| Manifest::parse(&v.bytes).ok());
        let (next, out) = match change(current)? {
            Change::Keep(out) => return Ok(out),
            Change::Write(next, out) => (*next, out),
        };
        let condition = match &read {
            Some(v) => Precondition::Etag(&v.etag),
            None => Precondition::Absent,
        };
        match store.put_if(&key, &next.to_object(), &[], condition) {
            Ok(_) => return Ok(out),
            Err(e) if e.precondition_failed() && attempt + 1 < attempts => {
                attempt += 1;
                std::thread::sleep(jitter(attempt));
            }
            Err(e) => return Err(e),
        }
    }
}

/// A random pause before attempt `attempt` (from 1) of a write that lost a race: up to 10 ms
/// doubled each attempt, at most 640 ms ("full jitter", so that racing writers spread out).
pub fn jitter(attempt: u32) -> Duration {
    use rand_core::RngCore;
    let cap_ms = 10u64 << attempt.min(6);
    Duration::from_micros(rand_core::OsRng.next_u64() % (cap_ms * 1000 + 1))
}

/// Writes a manifest at the title's prefix, unconditionally: for a single writer (the
/// `package` command); jobs use [`update_manifest`].
pub fn write_manifest(store: &dyn Store, prefix: &str, manifest: &Manifest) -> Result<()> {
    let obj = manifest.to_object();
    store.put(&format!("{prefix}{}", obj.key), &obj, &[])
}

/// The title's `manifest.json`, if any. One that does not parse is treated as absent (it
/// is rewritten by this run), except that storage errors are errors.
pub fn read_manifest(store: &dyn Store, prefix: &str) -> Result<Option<Manifest>> {
    Ok(store
        .get(&format!("{prefix}{MANIFEST_KEY}"))?
        .and_then(|b| Manifest::parse(&b).ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_run_retires_the_version_a_previous_run_never_flipped() {
        let mut prev = Manifest::start(None, Vec::new(), Some("aaaaaaaaaaaa".into()), 10);
        prev.version = Some("111111111111".into());
        let next = Manifest::start(
            Some(prev.clone()),
            Vec::new(),
            Some("bbbbbbbbbbbb".into()),
            20,
        );
        assert_eq!(next.retired.len(), 1);
        assert_eq!(next.retired[0].version, "aaaaaaaaaaaa");
        assert_eq!(next.retired[0].retired_at, 20);
        assert_eq!(
            next.recorded_versions(),
            vec!["111111111111", "aaaaaaaaaaaa", "bbbbbbbbbbbb"]
        );
        // The same version again (a retried event) is not retired; nor is the live one.
        let again = Manifest::start(
            Some(prev.clone()),
            Vec::new(),
            Some("aaaaaaaaaaaa".into()),
            20,
        );
        assert!(again.retired.is_empty());
        prev.target_version = prev.version.clone();
        let after_flip = Manifest::start(Some(prev), Vec::new(), Some("bbbbbbbbbbbb".into()), 20);
        assert!(after_flip.retired.is_empty());
    }

    fn packaged(version: &str) -> PackagedTitle {
        PackagedTitle {
            version: version.into(),
            renditions: Vec::new(),
            tracks: Vec::new(),
            media: Vec::new(),
            playlists: Vec::new(),
            growing: Vec::new(),
            master: Object {
                key: MASTER_KEY.into(),
                content_type: content_type::JSON,
                cache_control: cache_control::MANIFEST,
                body: Body::from_bytes(version.as_bytes().to_vec()),
            },
            duration: 1.0,
            warnings: Vec::new(),
            media_bytes: 0,
        }
    }

    /// `flipped_at` says when the master last switched versions: not on a title's first
    /// publish, nor when the same version is published again; on a switch, the time of it.
    #[test]
    fn flipped_at_records_switches_only() {
        let mut m = Manifest::start(None, Vec::new(), Some("aaaaaaaaaaaa".into()), 10);
        m.complete(&packaged("aaaaaaaaaaaa"), 11, true);
        assert_eq!(m.flipped_at, None, "a first publish switches nothing");
        let mut m = Manifest::start(Some(m), Vec::new(), Some("aaaaaaaaaaaa".into()), 20);
        m.complete(&packaged("aaaaaaaaaaaa"), 21, true);
        assert_eq!(m.flipped_at, None, "the same version again");
        let mut m = Manifest::start(Some(m), Vec::new(), Some("bbbbbbbbbbbb".into()), 30);
        m.complete(&packaged("bbbbbbbbbbbb"), 31, true);
        assert_eq!(m.flipped_at, Some(31));
        // A job whose flip a later one replaced records none of its own.
        let mut m = Manifest::start(Some(m), Vec::new(), Some("cccccccccccc".into()), 40);
        m.complete(&packaged("cccccccccccc"), 41, false);
        assert_eq!(m.flipped_at, Some(31));
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["flipped_at"], 31);
    }

    /// Two jobs of one title, A (the older upload) and B, each `start` → flip → `complete`,
    /// in every interleaving the publish protocol allows (A's flip before B's: a job whose
    /// sources changed cannot flip after the newer job did). Whatever the order of their
    /// manifest writes, the manifest ends naming B live, as the master does, with A recorded
    /// for GC and no job left recorded as running.
    #[test]
    fn every_interleaving_of_two_jobs_ends_with_the_newer_live_and_both_recorded() {
        #[derive(Clone, Copy, Debug)]
        enum Step {
            Start(usize),
            Flip(usize),
            Complete(usize),
        }
        let versions = ["aaaaaaaaaaaa", "bbbbbbbbbbbb"];
        let mut orders: Vec<Vec<Step>> = Vec::new();
        // Choose which 3 of 6 slots are A's steps.
        for mask in 0u32..64 {
            if mask.count_ones() != 3 {
                continue;
            }
            let (mut a, mut b) = (0, 0);
            let mut order = Vec::new();
            for slot in 0..6 {
                let job = if mask & (1 << slot) != 0 { 0 } else { 1 };
                let n = if job == 0 { &mut a } else { &mut b };
                order.push([Step::Start(job), Step::Flip(job), Step::Complete(job)][*n]);
                *n += 1;
            }
            let pos = |f: &dyn Fn(&Step) -> bool| order.iter().position(f).unwrap();
            if pos(&|s| matches!(s, Step::Flip(0))) < pos(&|s| matches!(s, Step::Flip(1))) {
                orders.push(order);
            }
        }
        assert_eq!(orders.len(), 10);
        let live = Manifest {
            state: State::Complete,
            version: Some("000000000000".into()),
            ..Manifest::processing(Vec::new(), 0)
        };
        for order in orders {
            let mut stored = live.clone();
            let mut master = "000000000000";
            for (t, step) in order.iter().enumerate() {
                let now = 10 + t as u64;
                match *step {
                    Step::Start(j) => {
                        stored =
                            Manifest::start(Some(stored), Vec::new(), Some(versions[j].into()), now)
                    }
                    Step::Flip(j) => master = versions[j],
                    Step::Complete(j) => {
                        stored.complete(&packaged(versions[j]), now, master == versions[j]);
                    }
                }
            }
            assert_eq!(stored.version.as_deref(), Some(master), "{order:?}");
            assert_eq!(master, versions[1]);
            assert_eq!(stored.state, State::Complete, "{order:?}");
            assert_eq!(stored.target_version, None, "{order:?}");
            assert_eq!(
                stored.recorded_versions(),
                ["000000000000", versions[0], versions[1]],
                "{order:?}"
            );
        }
    }

    /// A job overtaken by a newer upload after it started, and a failed one, leave their
    /// versions recorded and the newer job's state alone.
    #[test]
    fn an_overtaken_or_failed_job_retires_its_version_and_leaves_the_newer_jobs_state() {
        let (a, b) = ("aaaaaaaaaaaa", "bbbbbbbbbbbb");
        // B started first, then A (a slow worker for the older upload) took the target.
        let m = Manifest::start(None, Vec::new(), Some(b.into()), 1);
        let mut m = Manifest::start(Some(m), Vec::new(), Some(a.into()), 2);
        m.abandon(a, 3);
        assert_eq!(m.target_version, None);
        m.complete(&packaged(b), 4, true);
        assert_eq!((m.state, m.version.as_deref()), (State::Complete, Some(b)));
        assert_eq!(m.recorded_versions(), [a, b]);

        // A fails while B (started later) is running: B's `processing` stays.
        let m = Manifest::start(None, Vec::new(), Some(a.into()), 1);
        let mut m = Manifest::start(Some(m), Vec::new(), Some(b.into()), 2);
        m.fail(Some(a), &"bad input", 3);
        assert_eq!(m.state, State::Processing);
        assert_eq!(m.error, None);
        assert_eq!(m.target_version.as_deref(), Some(b));
        assert_eq!(m.recorded_versions(), [a, b]);
        // And a failure of the job that owns the state says so.
        m.fail(Some(b), &"bad input", 4);
        assert_eq!(m.state, State::Failed);
    }

    /// A version retired long ago and written again (the same bytes uploaded again) is the
    /// target, not retired: GC does not collect it under its writer.
    #[test]
    fn a_version_written_again_is_no_longer_retired() {
        let mut m = Manifest::start(None, Vec::new(), Some("aaaaaaaaaaaa".into()), 1);
        m.retire("bbbbbbbbbbbb", 0);
        let next = Manifest::start(Some(m), Vec::new(), Some("bbbbbbbbbbbb".into()), 100_000);
        // Only the previous run's unflipped version is retired now.
        let retired: Vec<&str> = next.retired.iter().map(|r| r.version.as_str()).collect();
        assert_eq!(retired, ["aaaaaaaaaaaa"]);
        assert_eq!(next.recorded_versions(), ["aaaaaaaaaaaa", "bbbbbbbbbbbb"]);
    }

    fn retire_one(version: String) -> impl FnMut(Option<Manifest>) -> Result<Change<()>> {
        move |m| {
            let mut m = m.unwrap_or_else(|| Manifest::processing(Vec::new(), 0));
            m.retire(&version, 1);
            Ok(Change::Write(Box::new(m), ()))
        }
    }

    /// Another writer lands between this update's read and its write: the write does not
    /// land over it; the change is applied again to what that writer left.
    #[test]
    fn a_write_between_the_read_and_the_write_is_kept_and_the_change_reapplied() {
        let tmp = tempfile::tempdir().unwrap();
        let store = crate::store::DirStore::new(tmp.path());
        update_manifest(&store, "t/", retire_one("000000000000".into())).unwrap();
        let mut calls = 0;
        update_manifest(&store, "t/", |m| {
            calls += 1;
            if calls == 1 {
                update_manifest(&store, "t/", retire_one("111111111111".into()))?;
            }
            retire_one("222222222222".into())(m)
        })
        .unwrap();
        assert_eq!(calls, 2);
        let m = read_manifest(&store, "t/").unwrap().unwrap();
        assert_eq!(
            m.recorded_versions(),
            ["000000000000", "111111111111", "222222222222"]
        );
        // A first manifest is written only if there is none: two creators, one wins first.
        let mut calls = 0;
        update_manifest(&store, "u/", |m| {
            calls += 1;
            if calls == 1 {
                update_manifest(&store, "u/", retire_one("333333333333".into()))?;
            }
            retire_one("444444444444".into())(m)
        })
        .unwrap();
        assert_eq!(calls, 2);
        let m = read_manifest(&store, "u/").unwrap().unwrap();
        assert_eq!(m.recorded_versions(), ["333333333333", "444444444444"]);
    }

    /// Out of attempts, the update fails with a retryable error (the event comes back).
    #[test]
    fn an_update_that_keeps_losing_gives_up_retryable() {
        let tmp = tempfile::tempdir().unwrap();
        let store = crate::store::DirStore::new(tmp.path());
        let mut n = 0;
        let err = update_manifest_with(&store, "t/", 3, |m| {
            n += 1;
            update_manifest(&store, "t/", retire_one(format!("{n:012}")))?;
            retire_one("ffffffffffff".into())(m)
        })
        .unwrap_err();
        assert_eq!(n, 3);
        assert!(err.precondition_failed() && err.is_retryable(), "{err}");
        let m = read_manifest(&store, "t/").unwrap().unwrap();
        assert!(!m.recorded_versions().contains(&"ffffffffffff".to_string()));
    }

    /// Eight writers with eight stores on one folder (separate opens of the lock file, as
    /// separate processes have), 25 updates each: no update is lost.
    #[test]
    fn concurrent_updates_on_the_folder_store_lose_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let threads: Vec<_> = (0..8)
            .map(|w| {
                let root = tmp.path().to_path_buf();
                std::thread::spawn(move || {
                    let store = crate::store::DirStore::new(root);
                    for i in 0..25 {
                        let v = format!("{w:06}{i:06}");
                        update_manifest_with(&store, "t/", 1_000, retire_one(v)).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let store = crate::store::DirStore::new(tmp.path());
        let m = read_manifest(&store, "t/").unwrap().unwrap();
        assert_eq!(m.recorded_versions().len(), 200);
    }
}
