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
use crate::media::object::{Body, Object};
use crate::media::source::{FileSource, Source};
use crate::pipeline::event::{Job, PartMessage, Record, RecordKind, PART_MESSAGE};
use crate::pipeline::job::Pipeline;
use crate::pipeline::keys::{classify_key, KeyRole};
use crate::pipeline::manifest::{record_progress, JobProgress};
use crate::pipeline::outcome::Outcome;
use crate::store::{open_source, ObjectInfo, Precondition, Store};
use crate::title::Title;
use crate::transcode::encode::{LadderJob, Part, Scratch};
use crate::transcode::ffmpeg::Ffmpeg;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where part messages go: the queue the fleet reads.
pub trait PartQueue: Send + Sync {
    /// Sends every message (JSON bodies), or fails naming what was not sent.
    fn send(&self, messages: &[String]) -> Result<()>;
}

/// The plan, as recorded in `parts.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Plan {
    parts: Vec<String>,
    /// [`crate::transcode::encode::LadderSettings::describe`]: every part is encoded alike.
    settings: String,
}

/// The work folder of one version of a title.
pub struct Work<'a> {
    store: &'a Arc<dyn Store>,
    folder: String,
}

impl<'a> Work<'a> {
    pub fn new(store: &'a Arc<dyn Store>, title_folder: &str, version: &str) -> Work<'a> {
        Work {
            store,
            folder: format!("{title_folder}work/{version}/"),
        }
    }

    fn plan(&self) -> Result<Option<Plan>> {
        let Some(bytes) = self.store.get(&format!("{}parts.json", self.folder))? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::store_permanent(&self.folder, format!("parts.json: {e}")))
    }

    fn record_plan(&self, plan: &Plan) -> Result<()> {
        let body = serde_json::to_vec_pretty(plan).unwrap_or_default();
        self.put(
            &format!("{}parts.json", self.folder),
            Body::from_bytes(body),
            &[],
        )
    }

    /// The parts whose files are all written.
    fn done(&self) -> Result<BTreeSet<String>> {
        let prefix = format!("{}done/", self.folder);
        Ok(self
            .store
            .list(&prefix)?
            .into_iter()
            .filter_map(|o| o.key.strip_prefix(&prefix).map(str::to_owned))
            .collect())
    }

    /// Whether a plan is recorded and every part of it is done.
    pub fn complete(&self) -> Result<bool> {
        let Some(plan) = self.plan()? else {
            return Ok(false);
        };
        let done = self.done()?;
        Ok(plan.parts.iter().all(|p| done.contains(p)))
    }

    /// A part's file, by its name relative to the encode's root (`chunk-00003/360p.mp4`).
    pub fn open(&self, name: &str) -> Result<Arc<dyn Source>> {
        let key = format!("{}{name}", self.folder);
        match open_source(self.store, &key)? {
            Some((source, _)) => Ok(source),
            None => Err(Error::store_permanent(
                &key,
                "a ladder part's file is missing",
            )),
        }
    }

    fn put(&self, key: &str, body: Body, sources: &[Arc<dyn Source>]) -> Result<()> {
        let obj = Object {
            key: key.to_owned(),
            content_type: crate::media::object::content_type_for_key(key),
            cache_control: "no-cache",
            body,
        };
        self.store.put(key, &obj, sources)
    }

    /// Writes a part's files (named relative to `root`), then its `done` marker.
    fn finish_part(&self, part: Part, root: &Path, files: &[String]) -> Result<()> {
        for name in files {
            let file: Arc<dyn Source> = Arc::new(FileSource::open(&root.join(name))?);
            let mut body = Body::default();
            body.push_source(0, 0, file.len());
            self.put(&format!("{}{name}", self.folder), body, &[file])?;
        }
        self.write_once(&format!("done/{}", part.name()), part)
            .map(|_| ())
    }

    /// Writes `…/<name>` naming `part` unless it exists; whether it now names `part`.
    fn write_once(&self, name: &str, part: Part) -> Result<bool> {
        let key = format!("{}{name}", self.folder);
        let obj = Object {
            key: key.clone(),
            content_type: "text/plain",
            cache_control: "no-cache",
            body: Body::from_bytes(part.name().into_bytes()),
        };
        match self.store.put_if(&key, &obj, &[], Precondition::Absent) {
            Ok(_) => Ok(true),
            Err(Error::PreconditionFailed { .. }) => {
                Ok(self.store.get(&key)?.as_deref() == Some(part.name().as_bytes()))
            }
            Err(e) => Err(e),
        }
    }

    /// Removes the work folder.
    pub fn remove(&self) -> Result<usize> {
        let all: Vec<ObjectInfo> = self.store.list(&self.folder)?;
        for o in &all {
            self.store.delete(&o.key)?;
        }
        Ok(all.len())
    }
}

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
                    let work = Work {
                        store,
                        folder: work_folder,
                    };
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
