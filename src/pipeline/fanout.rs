//! A ladder fanned out across the fleet: the upload's job plans the encode's parts
//! ([`LadderJob::parts`]: the sound and previews, and each chunk of the video), records the
//! plan in the store and puts one message per part on the queue; any worker that receives
//! a part encodes it and writes its files back through the store; the worker that finishes
//! the last part publishes the title from the parts, as the upload's own job would.
//!
//! Coordination is the store's, with conditional writes, never shared memory:
//! - `<title>/work/<version>/parts.json`: the plan (the parts, the ladder's settings);
//! - `…/<part>/<file>`: what a part made;
//! - `…/done/<part>`: written once (`If-None-Match: *`) after the part's files;
//! - `…/stitch`: written once by the worker that finds every part done; it names the part
//!   whose message won, so a redelivery of that message (its worker crashed) stitches
//!   again, and any other finds it taken.
//!
//! The stitching worker packages the title (headers only) and, when its segments come to
//! more than one share of `publish_share_mib`, shares the writing out the same way:
//! - `…/shares.json`: the cut, recorded once (`If-None-Match: *`);
//! - a `publish-<i>` message per share: its worker packages the title alike, writes the
//!   share's segments, then `…/done/publish-<i>`;
//! - `…/flip`: claimed once by the worker that finds every share written, which publishes
//!   the title: every segment is found present, and only the playlists, the master and the
//!   manifest are written.
//!
//! A duplicate message finds its `done` marker and does nothing again; a part whose worker
//! crashes is received again after the queue's visibility timeout and runs alone. The work
//! folder is removed once the title is published.

use crate::error::{Error, Result, RetryClass};
use crate::media::package::PackagedTitle;
use crate::media::source::Source;
use crate::pipeline::event::{Job, PartMessage, Record, RecordKind, PART_MESSAGE};
use crate::pipeline::job::{side_files, Pipeline};
use crate::pipeline::keys::{classify_key, parent, KeyRole};
use crate::pipeline::manifest::{record_progress, JobProgress};
use crate::pipeline::outcome::Outcome;
use crate::pipeline::publish::{self, PublishOptions};
use crate::pipeline::work::{share_index, share_name, PartQueue, Plan, Shares, Work};
use crate::store::{open_source, ObjectInfo, Store};
use crate::title::Title;
use crate::transcode::encode::{LadderJob, Part, Scratch};
use crate::transcode::ffmpeg::Ffmpeg;
use std::sync::Arc;
use std::time::{Duration, Instant};

impl Pipeline<'_> {
    /// After the upload's job has begun the version: with a part queue, a ladder that is
    /// encoded in chunks, and parts not all done yet, records the plan, sends the parts'
    /// messages (those not done) and returns what to report; `None`: the job goes on here
    /// (no fan-out, or every part is done and the title is published from them).
    pub(crate) fn fan_out(
        &self,
        store: &Arc<dyn Store>,
        title: &Title,
        version: &str,
        sources: &[(Arc<dyn Source>, ObjectInfo)],
        bucket: &str,
    ) -> Result<Option<Outcome>> {
        let (Some(queue), [(source, info)]) = (self.parts, sources) else {
            return Ok(None);
        };
        if !self.config.ladder.is_on() {
            return Ok(None);
        }
        let work = Work::new(store, &title.folder(&self.config.output_prefix), version);
        if work.complete()? {
            return Ok(None);
        }
        let ffmpeg = Ffmpeg::locate(self.config.ffmpeg.as_deref().map(std::ffi::OsStr::new))?;
        let settings = self.config.ladder_settings();
        let job = LadderJob::plan(&ffmpeg, Arc::clone(source), &settings)?;
        let parts = job.parts();
        if !parts.iter().any(|p| matches!(p, Part::Chunk(_))) {
            return Ok(None);
        }
        let plan = Plan {
            parts: parts.iter().map(|p| p.name()).collect(),
            settings: settings.describe(),
        };
        work.record_plan(&plan)?;
        let done = work.done()?;
        let left = plan.parts.iter().filter(|p| !done.contains(*p)).cloned();
        send_parts(queue, bucket, info, (title, version), left).map(Some)
    }

    /// After the last part of a fan-out, with the title packaged from the parts: when its
    /// segments come to more than one share ([`publish::shares`]), records the shares and
    /// sends a message for each share not yet written, and returns what to report; `None`:
    /// this worker publishes the title (no fan-out, one share, or every share written).
    pub(crate) fn share_out(
        &self,
        store: &Arc<dyn Store>,
        bucket: &str,
        title: &Title,
        version: &str,
        sources: &[(Arc<dyn Source>, ObjectInfo)],
        packaged: &PackagedTitle,
    ) -> Result<Option<Outcome>> {
        let (Some(queue), [(_, info)]) = (self.parts, sources) else {
            return Ok(None);
        };
        let work = Work::new(store, &title.folder(&self.config.output_prefix), version);
        if !work.complete()? {
            return Ok(None);
        }
        let shares = match work.shares()? {
            Some(recorded) => recorded,
            None => {
                let bytes = self.config.publish_share_mib.saturating_mul(1 << 20);
                let count = publish::shares(packaged, bytes).len();
                if count < 2 {
                    return Ok(None);
                }
                work.record_shares(&Shares { count, bytes })?
            }
        };
        let done = work.done()?;
        let left: Vec<String> = shares.names().filter(|n| !done.contains(n)).collect();
        if left.is_empty() {
            return Ok(None);
        }
        send_parts(queue, bucket, info, (title, version), left.into_iter()).map(Some)
    }

    /// A part's message: encodes the part (unless a duplicate already did), and when it
    /// was the last, publishes the title from the parts.
    pub(crate) fn ladder_part(
        &self,
        store: &Arc<dyn Store>,
        job: &Job,
        message: &PartMessage,
    ) -> Outcome {
        let title = match classify_key(self.config, &job.key) {
            KeyRole::Media { title } => title,
            _ => {
                return Outcome::Ignored {
                    reason: format!("'{}' is not a media upload of a title", job.key),
                }
            }
        };
        let step = match share_index(&message.part) {
            Some(share) => self.publish_share(store, &title, message, share),
            None => self.encode_part(store, &title, message),
        };
        match step {
            Ok(Step::Stale(reason)) => Outcome::Stale {
                key: job.key.clone(),
                reason,
            },
            Ok(Step::Encoded { done, of }) => Outcome::PartEncoded {
                title: title.to_string(),
                part: message.part.clone(),
                done,
                of,
            },
            Ok(Step::Last(work_folder)) => {
                // The last part: the title is published from the parts by its upload's job.
                let record = Record {
                    reprocess: false,
                    kind: RecordKind::Created,
                    job: job.clone(),
                    message_id: None,
                };
                let outcome = self.handle_record(store, &record);
                if matches!(
                    outcome,
                    Outcome::Processed { .. } | Outcome::AlreadyComplete { .. }
                ) {
                    let work = Work::at(store, work_folder);
                    if let Err(e) = work.remove() {
                        tracing::warn!(title = %title, error = %e, "ladder work folder not removed");
                    }
                }
                outcome
            }
            Err(e) if e.is_retryable() => Outcome::failed(Some(title.as_str()), &e),
            Err(e) => self.fail_without_sources(store.as_ref(), &title, &e),
        }
    }

    fn encode_part(
        &self,
        store: &Arc<dyn Store>,
        title: &Title,
        message: &PartMessage,
    ) -> Result<Step> {
        let Some(part) = Part::parse(&message.part) else {
            return Err(Error::Transcode {
                reason: format!("'{}' is no part of a ladder", message.part),
                class: RetryClass::Permanent,
            });
        };
        let (source, _) = match planned_upload(store, message)? {
            Ok(upload) => upload,
            Err(stale) => return Ok(stale),
        };
        let work = Work::new(
            store,
            &title.folder(&self.config.output_prefix),
            &message.version,
        );
        let Some(plan) = work.plan()? else {
            return Ok(Step::Stale(format!(
                "no ladder of version {} is being made (published or replaced)",
                message.version
            )));
        };
        let settings = self.config.ladder_settings();
        if plan.settings != settings.describe() {
            return Err(not_the_plan_s(format!(
                "this worker's ladder settings ({}) are not the plan's ({})",
                settings.describe(),
                plan.settings
            )));
        }
        if !work.done()?.contains(&message.part) {
            let ffmpeg = Ffmpeg::locate(self.config.ffmpeg.as_deref().map(std::ffi::OsStr::new))?;
            let job = LadderJob::plan(&ffmpeg, source, &settings)?;
            let scratch = Scratch::new()?;
            let mut until = Instant::now() + settings.chunk_timeout + Duration::from_secs(60);
            if let Some(deadline) = self.deadline {
                until = until.min(deadline);
            }
            let started = Instant::now();
            let files = job.encode_part(&ffmpeg, part, scratch.path(), until, &|_| {})?;
            work.finish_part(part, scratch.path(), &files)?;
            tracing::info!(
                title = %title,
                part = %message.part,
                seconds = started.elapsed().as_secs_f64(),
                "ladder part encoded"
            );
        }
        self.stage_step(
            store,
            title,
            message,
            work,
            &plan.parts,
            ("encoding", "stitch"),
        )
    }

    /// A share's message: writes the share's segments (unless a duplicate already did);
    /// the last share to be written publishes the title, whose own pass finds every segment
    /// present and writes only the playlists, the master and the manifest.
    fn publish_share(
        &self,
        store: &Arc<dyn Store>,
        title: &Title,
        message: &PartMessage,
        index: usize,
    ) -> Result<Step> {
        let (source, info) = match planned_upload(store, message)? {
            Ok(upload) => upload,
            Err(stale) => return Ok(stale),
        };
        let prefix = title.folder(&self.config.output_prefix);
        let work = Work::new(store, &prefix, &message.version);
        let Some(shares) = work.shares()? else {
            return Ok(Step::Stale(format!(
                "no ladder of version {} is being published (published or replaced)",
                message.version
            )));
        };
        let name = share_name(index);
        if !work.done()?.contains(&name) {
            let started = Instant::now();
            let sources = vec![(source, info)];
            let (subs, _) = side_files(self.config, store.as_ref(), parent(&message.key), title)?;
            let version = self.version_of(&sources, &subs);
            if version != message.version {
                return Err(not_the_plan_s(format!(
                    "{name}: the title's side files and this worker's settings give version \
                     {version}, not the planned {}",
                    message.version
                )));
            }
            let ready =
                self.package_title(store, &prefix, &message.version, &sources, &subs, None)?;
            let cut = publish::shares(&ready.packaged, shares.bytes);
            let Some(share) = cut.get(index).filter(|_| cut.len() == shares.count) else {
                return Err(Error::Settings(format!(
                    "{name}: the title packaged here comes to {} shares, not the {} recorded",
                    cut.len(),
                    shares.count
                )));
            };
            let opts = PublishOptions {
                prefix: &prefix,
                concurrency: self.config.concurrency,
                progress: &|_| {},
                before_flip: None,
                deadline: self.deadline,
            };
            publish::write_share(
                store.as_ref(),
                &ready.packaged,
                share.clone(),
                &ready.sources,
                &opts,
            )?;
            work.write_once(&format!("done/{name}"), &name)?;
            tracing::info!(
                title = %title,
                part = %name,
                objects = share.len(),
                seconds = started.elapsed().as_secs_f64(),
                "share of the segments written"
            );
        }
        let names: Vec<String> = shares.names().collect();
        self.stage_step(store, title, message, work, &names, ("publishing", "flip"))
    }

    /// After a part of a stage (`encoding` the parts, `publishing` the shares) was done here or
    /// found done: the stage's progress in the manifest, and [`Step::Last`] for the one worker
    /// that claims `claim` (`stitch`, `flip`) once every part of the stage is done.
    fn stage_step(
        &self,
        store: &Arc<dyn Store>,
        title: &Title,
        message: &PartMessage,
        work: Work<'_>,
        parts: &[String],
        (stage, claim): (&str, &str),
    ) -> Result<Step> {
        let done = work.done()?;
        let finished = parts.iter().filter(|p| done.contains(*p)).count();
        let of = parts.len();
        self.note_progress(store, title, &message.version, stage, (finished, of));
        if finished == of && work.write_once(claim, &message.part)? {
            return Ok(Step::Last(work.folder));
        }
        Ok(Step::Encoded { done: finished, of })
    }

    /// Records in the manifest how many parts of a stage (`encoding`, `publishing`) are done.
    fn note_progress(
        &self,
        store: &Arc<dyn Store>,
        title: &Title,
        version: &str,
        stage: &str,
        (done, of): (usize, usize),
    ) {
        let progress = JobProgress {
            stage: stage.into(),
            done: done as f64,
            total: of as f64,
            unit: "parts".into(),
            at: (self.clock)(),
            playable_seconds: None,
        };
        let prefix = title.folder(&self.config.output_prefix);
        if let Err(e) = record_progress(store.as_ref(), &prefix, version, progress) {
            tracing::warn!(title = %title, error = %e, "progress not recorded");
        }
    }
}

/// An upload and what the store says of it.
type Upload = (Arc<dyn Source>, ObjectInfo);

/// The upload a part's message names, as it was when the ladder was planned; `Err` with the
/// step to report when it is gone or was replaced since.
fn planned_upload(
    store: &Arc<dyn Store>,
    message: &PartMessage,
) -> Result<std::result::Result<Upload, Step>> {
    let Some((source, info)) = open_source(store, &message.key)? else {
        return Ok(Err(Step::Stale("the upload no longer exists".into())));
    };
    if info.etag != message.etag {
        return Ok(Err(Step::Stale(
            "the upload was replaced after its ladder was planned".into(),
        )));
    }
    Ok(Ok((source, info)))
}

/// A worker whose settings differ from the plan's (a deploy rolling across the fleet): the
/// message goes back to the queue for a worker that has them, and the queue's redrive
/// policy ends it if none does (a side file changed meanwhile: its own event publishes
/// the title again, as a new version with its own plan).
fn not_the_plan_s(reason: String) -> Error {
    Error::Transcode {
        reason,
        class: RetryClass::Retryable,
    }
}

/// Sends one part message per name in `parts` for `version` of `title`; returns what to
/// report.
fn send_parts(
    queue: &dyn PartQueue,
    bucket: &str,
    upload: &ObjectInfo,
    (title, version): (&Title, &str),
    parts: impl Iterator<Item = String>,
) -> Result<Outcome> {
    let messages: Vec<String> = parts
        .map(|part| {
            let message = PartMessage {
                hlspipe: PART_MESSAGE.into(),
                bucket: bucket.to_owned(),
                key: upload.key.clone(),
                etag: upload.etag.clone(),
                version: version.to_owned(),
                part,
            };
            serde_json::to_string(&message).unwrap_or_default()
        })
        .collect();
    queue.send(&messages)?;
    Ok(Outcome::FannedOut {
        title: title.to_string(),
        version: version.to_owned(),
        parts: messages.len(),
    })
}

enum Step {
    Stale(String),
    Encoded {
        done: usize,
        of: usize,
    },
    /// Every part is done and this one stitches: the work folder.
    Last(String),
}
