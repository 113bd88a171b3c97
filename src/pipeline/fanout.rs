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
//! A duplicate part message finds its `done` marker and encodes nothing; a part whose
//! worker crashes is received again after the queue's visibility timeout and runs alone.
//! The work folder is removed once the title is published.

use crate::error::{Error, Result};
use crate::media::source::Source;
use crate::pipeline::event::{Job, PartMessage, Record, RecordKind, PART_MESSAGE};
use crate::pipeline::job::Pipeline;
use crate::pipeline::keys::{classify_key, KeyRole};
use crate::pipeline::manifest::{record_progress, JobProgress};
use crate::pipeline::outcome::Outcome;
use crate::pipeline::work::{Plan, Work};
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
        let messages: Vec<String> = plan
            .parts
            .iter()
            .filter(|p| !done.contains(*p))
            .map(|part| {
                let message = PartMessage {
                    hlspipe: PART_MESSAGE.into(),
                    bucket: bucket.to_owned(),
                    key: info.key.clone(),
                    etag: info.etag.clone(),
                    version: version.to_owned(),
                    part: part.clone(),
                };
                serde_json::to_string(&message).unwrap_or_default()
            })
            .collect();
        queue.send(&messages)?;
        Ok(Some(Outcome::FannedOut {
            title: title.to_string(),
            version: version.to_owned(),
            parts: messages.len(),
        }))
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
        match self.encode_part(store, &title, message) {
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
                class: crate::error::RetryClass::Permanent,
            });
        };
        let Some((source, info)) = open_source(store, &message.key)? else {
            return Ok(Step::Stale("the upload no longer exists".into()));
        };
        if info.etag != message.etag {
            return Ok(Step::Stale(
                "the upload was replaced after its ladder was planned".into(),
            ));
        }
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
            return Err(Error::Config(format!(
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
        let done = work.done()?;
        let of = plan.parts.len();
        let all = plan.parts.iter().all(|p| done.contains(p));
        let progress = JobProgress {
            stage: "encoding".into(),
            done: done.len() as f64,
            total: of as f64,
            unit: "parts".into(),
            at: (self.clock)(),
        };
        let prefix = title.folder(&self.config.output_prefix);
        if let Err(e) = record_progress(store.as_ref(), &prefix, &message.version, progress) {
            tracing::warn!(title = %title, error = %e, "progress not recorded");
        }
        if all && work.write_once("stitch", part)? {
            return Ok(Step::Last(work.folder));
        }
        Ok(Step::Encoded {
            done: done.len(),
            of,
        })
    }
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
