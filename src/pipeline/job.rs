//! The job logic behind every event surface (the CLI's `process-event`, the Lambda
//! function, the SQS consumer): one [`Record`] in, one [`Outcome`] out, through a
//! [`Store`]. No AWS type, no clock (one is passed in), no environment.
//!
//! For an upload (DESIGN.md "Publish protocol"):
//! 1. map the key to a title (`uploads/shows/ep1.mp4` → `shows/ep1` → `hls/shows/ep1/`), or
//!    ignore it (outside the input prefix, under the output prefix, not media);
//! 2. HEAD the source: an event whose ETag is no longer the object's is stale (the newer
//!    upload has its own event);
//! 3. compute the version from the sources' ETags; if `manifest.json` already says
//!    `complete` with it, stop: nothing is written;
//! 4. `manifest.json` → `processing` (still naming the live version), package, publish
//!    (segments → playlists → master flip), `manifest.json` → `complete`; invalidate the
//!    master if it replaced a previous version; collect versions retired long enough ago.
//!
//! On failure the manifest says `failed` with the reason and the previous master stays.
//! A job overtaken by a newer upload of its source (a ranged GET's `If-Match` fails, or
//! the source's ETag has changed when it is checked again just before the flip) is
//! `stale`: it writes nothing more and leaves the title to the newer upload's job.
//! A removal deletes the title's objects, unless the source exists again.
//!
//! ## Title manifests: several files, one title
//! A bit-rate ladder (the same content encoded several times) is one title. Upload a title
//! manifest named `<title>.title.json`, then the files, next to it:
//! ```json
//! { "inputs": ["shows/ep1_1080.mp4", "shows/ep1_720.mp4"] }
//! ```
//! - `inputs`: 1 to 16 keys relative to the input prefix, each with a media extension and
//!   in the same folder as the title manifest; unknown fields are refused; at most 64 KiB.
//! - `uploads/shows/ep1.title.json` makes the title `shows/ep1` (`hls/shows/ep1/`).
//! - Inputs named by a title manifest are not titles of their own: their upload events
//!   (re)build the title that names them, so the files may arrive in any order after the
//!   title manifest. Until every input exists, the title waits (outcome `ignored: title …
//!   is waiting for its inputs`). A file uploaded before the title manifest that names it
//!   is, at that moment, a title of its own.
//! - Removing the title manifest removes the title; removing one of its inputs does not.
//!
//! ## Subtitle side files
//! `uploads/shows/ep1.en.srt` (or `.vtt`, with optional `.forced`, `.sdh`, `.cc` tags) beside
//! `uploads/shows/ep1.mp4` (or `ep1.title.json`) is a subtitle track of title `shows/ep1`.
//! The title's job lists its folder and reads every side file of the title (at most 32, each
//! at most 8 MiB); their keys and ETags are part of the version, so adding, changing or
//! removing one gives a new version. A side file's upload or removal publishes its title
//! again through the video's (or title manifest's) job; before the video exists it waits
//! (`ignored`), and the video's job reads it. Removing a side file never removes the title.
//! A side file that cannot be read is left out with a warning in the manifest.

use crate::error::{Error, Result};
use crate::media::package::{
    package_with_subtitles, settings_in_version, version_for_sources, PackagedTitle, SubtitleInput,
};
use crate::media::source::Source;
use crate::media::text::MAX_FILE_BYTES as MAX_SUBTITLE_BYTES;
use crate::pipeline::batch::Handled;
use crate::pipeline::config::PipelineConfig;
use crate::pipeline::event::{Job, ParsedRecord, Record, RecordKind};
use crate::pipeline::grow::{self, GrowPlan, Growth};
use crate::pipeline::invalidate::{invalidation_reference, Invalidator, NoInvalidation};
use crate::pipeline::keys::{
    classify_key, parent, KeyRole, TitleManifest, TITLE_MANIFEST_MAX_BYTES, TITLE_MANIFEST_SUFFIX,
};
use crate::pipeline::ladder;
use crate::pipeline::manifest::{
    self, Change, JobProgress, MadeWith, Manifest, SourceInfo, State, MASTER_KEY,
};
use crate::pipeline::notify::{Notifier, TitleChange, TitleEvent};
use crate::pipeline::outcome::Outcome;
use crate::pipeline::publish::{self, PublishOptions};
use crate::pipeline::retention::{drop_collected, gc, remove_title};
use crate::pipeline::work::{PartQueue, Work};
use crate::store::{open_source, ObjectInfo, Store};
use crate::title::Title;
use crate::transcode::encode::{Encoded, TranscodeReport};
use std::sync::Arc;

/// How often a running encode's progress is written to the manifest, at most.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Calls `f` at most once per `every` (the first call at once, and any call asked to be):
/// progress reports arrive several times a second, a manifest write is a round trip to the
/// store.
struct Throttled<F> {
    every: std::time::Duration,
    last: std::sync::Mutex<Option<std::time::Instant>>,
    f: F,
}

impl<F> Throttled<F> {
    fn new(every: std::time::Duration, f: F) -> Self {
        Throttled {
            every,
            last: std::sync::Mutex::new(None),
            f,
        }
    }

    /// `f(report)` if it is due, or `at_once`.
    fn call<T>(&self, report: T, at_once: bool)
    where
        F: Fn(T),
    {
        {
            let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            if !at_once && last.is_some_and(|t| t.elapsed() < self.every) {
                return;
            }
            *last = Some(std::time::Instant::now());
        }
        (self.f)(report);
    }
}

/// A title packaged, ready to write.
pub(crate) struct Ready {
    pub(crate) packaged: PackagedTitle,
    /// The sources the objects' bodies read.
    pub(crate) sources: Vec<Arc<dyn Source>>,
    /// The ladder, when the title has one: its rungs (and their scratch folder) live until
    /// the title is written.
    pub(crate) transcoded: Option<ladder::Transcoded>,
}

/// What a job's writes are checked against: the title's prefix, the version written and
/// the sources (side files included) it was made of.
#[derive(Clone, Copy)]
struct Checks<'c> {
    prefix: &'c str,
    version: &'c str,
    sources: &'c [(Arc<dyn Source>, ObjectInfo)],
    subs: &'c [ObjectInfo],
}

/// What every write of a job's title goes through: the publish options (with the check
/// before a flip) and where the growth of a progressive publish is reported.
pub(crate) struct Publishing<'p> {
    opts: PublishOptions<'p>,
    report: &'p (dyn Fn(Growth) + Sync),
}

/// The plan a ladder's growing playlists follow.
fn grow_plan(encoded: &Encoded) -> GrowPlan {
    GrowPlan {
        target_duration: encoded.planned.target_duration,
        segments_per_rendition: encoded.planned.count,
    }
}

/// A title written up to its master flip: what `finish` records.
struct Published {
    title: PackagedTitle,
    /// The flipped master's ETag.
    master_etag: String,
    /// The ladder, when the title has one.
    transcode: Option<TranscodeReport>,
}

/// Everything a job needs besides the store and the record.
#[derive(Clone, Copy)]
pub struct Pipeline<'a> {
    pub config: &'a PipelineConfig,
    pub invalidator: &'a dyn Invalidator,
    /// Told when a title is published, fails for good, or is removed.
    pub notifier: &'a dyn Notifier,
    /// Where a ladder's parts are sent to be encoded across the fleet; `None`: here.
    pub parts: Option<&'a dyn PartQueue>,
    /// No object is started after this (a Lambda invocation's deadline, less a margin).
    pub deadline: Option<std::time::Instant>,
    /// Unix seconds, now. Passed in so tests control time.
    pub clock: &'a (dyn Fn() -> u64 + Send + Sync),
    /// Publish a title again even when its manifest says it is complete with the version
    /// its sources give (`reprocess --force`): its objects are found written and skipped;
    /// the playlists, the master and the manifest are written again.
    pub rebuild: bool,
}

impl Pipeline<'_> {
    /// Handles every record of an event in order. A failed record never stops the others;
    /// `store_for` gives the store of a bucket.
    pub fn handle_all(
        &self,
        records: &[ParsedRecord],
        store_for: &dyn Fn(&str) -> Result<Arc<dyn Store>>,
    ) -> Vec<Handled> {
        records
            .iter()
            .map(|r| match r {
                Err(e) => Handled {
                    message_id: e.message_id.clone(),
                    bucket: None,
                    key: None,
                    outcome: Outcome::Failed {
                        title: None,
                        reason: e.reason.clone(),
                        retryable: false,
                    },
                },
                Ok(rec) => {
                    let outcome = match rec.kind {
                        // No store needed, and a test event's bucket may be none of ours.
                        RecordKind::Test | RecordKind::Ignored(_) => {
                            self.handle_record_with(&|| Err(Error::Config("no store".into())), rec)
                        }
                        _ => self.handle_record_with(&|| store_for(&rec.job.bucket), rec),
                    };
                    Handled {
                        message_id: rec.message_id.clone(),
                        bucket: Some(rec.job.bucket.clone()).filter(|b| !b.is_empty()),
                        key: Some(rec.job.key.clone()).filter(|k| !k.is_empty()),
                        outcome,
                    }
                }
            })
            .collect()
    }

    /// [`Pipeline::handle_all`] one record at a time, with how long each took (for logs).
    pub fn handle_each(
        &self,
        records: &[ParsedRecord],
        store_for: &dyn Fn(&str) -> Result<Arc<dyn Store>>,
    ) -> Vec<(Handled, std::time::Duration)> {
        records
            .iter()
            .flat_map(|r| {
                let started = std::time::Instant::now();
                let handled = self.handle_all(std::slice::from_ref(r), store_for);
                let elapsed = started.elapsed();
                handled.into_iter().map(move |h| (h, elapsed))
            })
            .collect()
    }

    /// Tells the notifier what became of a title. A failed announcement is logged: the
    /// title is published (or failed) either way.
    fn announce(&self, record: &Record, outcome: &Outcome) {
        let (change, title, version, error) = match outcome {
            Outcome::Processed { title, version, .. } => {
                (TitleChange::Published, title, Some(version), None)
            }
            Outcome::Removed { title, .. } => (TitleChange::Removed, title, None, None),
            Outcome::Failed {
                title: Some(title),
                reason,
                retryable: false,
            } => (TitleChange::Failed, title, None, Some(reason)),
            _ => return,
        };
        let master = (change == TitleChange::Published)
            .then(|| Title::new(title).ok())
            .flatten()
            .map(|t| format!("{}{MASTER_KEY}", t.folder(&self.config.output_prefix)));
        let mut event = TitleEvent {
            change,
            bucket: record.job.bucket.clone(),
            title: title.clone(),
            source: record.job.key.clone(),
            version: version.cloned(),
            master,
            error: None,
        };
        if let Some(reason) = error {
            event = event.with_error(reason);
        }
        if let Err(e) = self.notifier.notify(&event) {
            tracing::warn!(title = %title, error = %e, "title event not sent");
        }
    }

    /// Handles one record against the store of its bucket.
    pub fn handle_record(&self, store: &Arc<dyn Store>, record: &Record) -> Outcome {
        self.handle_record_with(&|| Ok(Arc::clone(store)), record)
    }

    fn handle_record_with(
        &self,
        store: &dyn Fn() -> Result<Arc<dyn Store>>,
        record: &Record,
    ) -> Outcome {
        let job = &record.job;
        match &record.kind {
            RecordKind::Test => Outcome::Ignored {
                reason: format!("s3:TestEvent for bucket '{}' acknowledged", job.bucket),
            },
            RecordKind::Ignored(reason) => Outcome::Ignored {
                reason: reason.clone(),
            },
            RecordKind::Part(part) => match store() {
                Ok(store) => {
                    let outcome = self.ladder_part(&store, job, part);
                    if !matches!(outcome, Outcome::Processed { .. }) {
                        // The last part's publish was announced by the upload's job.
                        self.announce(record, &outcome);
                    }
                    outcome
                }
                Err(e) => Outcome::failed(None, &e),
            },
            RecordKind::Created | RecordKind::Removed if record.reprocess => {
                // A reprocess invalidates the masters it changed in batches, at the end.
                let quiet = Pipeline {
                    invalidator: &NoInvalidation,
                    ..*self
                };
                let record = Record {
                    reprocess: false,
                    ..record.clone()
                };
                quiet.handle_record_with(store, &record)
            }
            RecordKind::Created | RecordKind::Removed => {
                let role = classify_key(self.config, &job.key);
                if let KeyRole::Ignored(reason) = role {
                    // Decided from the key alone: the store is never touched.
                    return Outcome::Ignored { reason };
                }
                let store = match store() {
                    Ok(s) => s,
                    Err(e) => return Outcome::failed(None, &e),
                };
                let outcome = if record.kind == RecordKind::Created {
                    self.created(&store, job, role)
                } else {
                    self.removed(&store, job, role)
                };
                self.announce(record, &outcome);
                outcome
            }
        }
    }

    fn created(&self, store: &Arc<dyn Store>, job: &Job, role: KeyRole) -> Outcome {
        let (title, manifest_key) = match role {
            KeyRole::Ignored(reason) => return Outcome::Ignored { reason },
            KeyRole::Subtitles { title } => {
                return self.side_file_changed(store, job, &title, true)
            }
            KeyRole::TitleManifest { title } => (title, job.key.clone()),
            KeyRole::Media { title } => {
                let claims = match self.claims(store.as_ref(), &job.key) {
                    Ok(c) => c,
                    Err(e) => return Outcome::failed(Some(title.as_str()), &e),
                };
                match claims.as_slice() {
                    [] => return self.media_title(store, job, &title),
                    [(manifest_key, manifest_title)] => {
                        // An input of a ladder: the event still has to describe the
                        // object as it is now.
                        match self.check_fresh(store.as_ref(), job) {
                            Ok(None) => {}
                            Ok(Some(stale)) => return stale,
                            Err(e) => return Outcome::failed(Some(manifest_title.as_str()), &e),
                        }
                        (manifest_title.clone(), manifest_key.clone())
                    }
                    several => {
                        let names: Vec<&str> = several.iter().map(|(k, _)| k.as_str()).collect();
                        return Outcome::Failed {
                            title: None,
                            reason: format!(
                                "'{}' is named by several title manifests: {}",
                                job.key,
                                names.join(", ")
                            ),
                            retryable: false,
                        };
                    }
                }
            }
        };
        self.manifest_title(store, job, &title, &manifest_key)
    }

    /// One media file, one title.
    fn media_title(&self, store: &Arc<dyn Store>, job: &Job, title: &Title) -> Outcome {
        let (source, info) = match open_source(store, &job.key) {
            Ok(Some(s)) => s,
            Ok(None) => {
                return Outcome::Stale {
                    key: job.key.clone(),
                    reason: "the object no longer exists".into(),
                }
            }
            Err(e) if e.changed_source().is_some() => return superseded(&job.key),
            Err(e) => return Outcome::failed(Some(title.as_str()), &e),
        };
        if let Some(stale) = stale(job, &info) {
            return stale;
        }
        self.publish_title(
            store,
            &job.bucket,
            title,
            vec![(source, info)],
            Some(&job.key),
        )
    }

    /// A subtitle side file was uploaded (`created`) or removed: the title is published
    /// again from its video (or its title manifest), whose job reads the side files as they
    /// are now. Without the video yet, the side file waits: the video's job will read it.
    fn side_file_changed(
        &self,
        store: &Arc<dyn Store>,
        job: &Job,
        title: &Title,
        created: bool,
    ) -> Outcome {
        if created {
            match self.check_fresh(store.as_ref(), job) {
                Ok(None) => {}
                Ok(Some(stale)) => return stale,
                Err(e) => return Outcome::failed(Some(title.as_str()), &e),
            }
        }
        let owner = match self.title_owner(store.as_ref(), parent(&job.key), title) {
            Ok(owner) => owner,
            Err(e) => return Outcome::failed(Some(title.as_str()), &e),
        };
        let Some((key, role)) = owner else {
            return Outcome::Ignored {
                reason: format!(
                    "'{}' is a subtitle file of title '{title}', which has no video yet; \
                     the video's upload will read it",
                    job.key
                ),
            };
        };
        let owner_job = Job {
            bucket: job.bucket.clone(),
            key,
            etag: None,
            size: None,
            sequencer: None,
        };
        self.created(store, &owner_job, role)
    }

    /// The key that makes `title` in `folder`: its title manifest, else its media file.
    fn title_owner(
        &self,
        store: &dyn Store,
        folder: &str,
        title: &Title,
    ) -> Result<Option<(String, KeyRole)>> {
        let mut media = None;
        for obj in store.list(folder)? {
            if obj.key[folder.len()..].contains('/') {
                continue;
            }
            match classify_key(self.config, &obj.key) {
                role @ KeyRole::TitleManifest { .. } if role_title(&role) == Some(title) => {
                    return Ok(Some((obj.key, role)));
                }
                role @ KeyRole::Media { .. } if role_title(&role) == Some(title) => {
                    media.get_or_insert((obj.key, role));
                }
                _ => {}
            }
        }
        Ok(media)
    }

    /// One title, one source (DESIGN.md "Titles"): `uploads/show.MOV` beside
    /// `uploads/show.mp4`, or an NFD spelling beside the NFC one, map to the same title.
    /// The key whose output the manifest records keeps the title while it exists; the
    /// other is refused by name (a permanent failure, written to no manifest, so the
    /// owner's state is untouched). A title manifest's inputs are handled by it instead.
    fn check_owner(
        &self,
        store: &dyn Store,
        title: &Title,
        key: &str,
        previous: Option<&Manifest>,
    ) -> Result<()> {
        let Some(manifest) = previous else {
            return Ok(());
        };
        let [owner] = manifest.sources.as_slice() else {
            return Ok(());
        };
        if owner.key == key || store.head(&owner.key)?.is_none() {
            return Ok(());
        }
        Err(Error::TitleTaken {
            title: title.to_string(),
            owner: owner.key.clone(),
            key: key.to_string(),
        })
    }

    /// A title manifest's title, triggered by the manifest or by one of its inputs.
    fn manifest_title(
        &self,
        store: &Arc<dyn Store>,
        job: &Job,
        title: &Title,
        manifest_key: &str,
    ) -> Outcome {
        let info = match store.head(manifest_key) {
            Ok(Some(info)) => info,
            Ok(None) => {
                return Outcome::Stale {
                    key: manifest_key.to_string(),
                    reason: "the title manifest no longer exists".into(),
                }
            }
            Err(e) => return Outcome::failed(Some(title.as_str()), &e),
        };
        if job.key == manifest_key {
            if let Some(stale) = stale(job, &info) {
                return stale;
            }
        }
        let inputs = match self.read_title_manifest(store.as_ref(), manifest_key, &info) {
            Ok(inputs) => inputs,
            Err(e) => return self.fail_without_sources(store.as_ref(), title, &e),
        };
        let mut sources = Vec::with_capacity(inputs.len());
        let mut missing = Vec::new();
        for key in &inputs {
            match open_source(store, key) {
                Ok(Some(opened)) => sources.push(opened),
                Ok(None) => missing.push(key.as_str()),
                Err(e) if e.changed_source().is_some() => return superseded(key),
                Err(e) => return Outcome::failed(Some(title.as_str()), &e),
            }
        }
        if !missing.is_empty() {
            return Outcome::Ignored {
                reason: format!(
                    "title '{title}' is waiting for its inputs {} ({manifest_key}); their \
                     uploads will trigger it",
                    missing.join(", ")
                ),
            };
        }
        self.publish_title(store, &job.bucket, title, sources, None)
    }

    fn read_title_manifest(
        &self,
        store: &dyn Store,
        key: &str,
        info: &ObjectInfo,
    ) -> Result<Vec<String>> {
        if info.size > TITLE_MANIFEST_MAX_BYTES {
            return Err(Error::TitleManifest {
                key: key.to_string(),
                reason: format!(
                    "{} bytes; a title manifest is at most {TITLE_MANIFEST_MAX_BYTES}",
                    info.size
                ),
            });
        }
        let bytes = store
            .get(key)?
            .ok_or_else(|| Error::store_permanent(key, "no such object"))?;
        TitleManifest::parse(self.config, key, &bytes)
    }

    /// Title manifests in the folder of `key` that name it: `(manifest key, title)`.
    /// One listing of the folder, a page at a time (memory stays flat in a folder of a
    /// catalogue); a title manifest that does not parse claims nothing (its own event
    /// reports it).
    fn claims(&self, store: &dyn Store, key: &str) -> Result<Vec<(String, Title)>> {
        let folder = parent(key);
        let mut found = Vec::new();
        store.list_pages(folder, &mut |page| {
            found.extend(page.into_iter().filter_map(|obj| {
                let name = &obj.key[folder.len()..];
                let candidate = !name.contains('/')
                    && name.to_ascii_lowercase().ends_with(TITLE_MANIFEST_SUFFIX)
                    && obj.size <= TITLE_MANIFEST_MAX_BYTES;
                match classify_key(self.config, &obj.key) {
                    KeyRole::TitleManifest { title } if candidate => Some((obj.key, title)),
                    _ => None,
                }
            }));
            Ok(true)
        })?;
        let mut out = Vec::new();
        for (manifest_key, title) in found {
            let Some(bytes) = store.get(&manifest_key)? else {
                continue;
            };
            if let Ok(inputs) = TitleManifest::parse(self.config, &manifest_key, &bytes) {
                if inputs.iter().any(|k| k == key) {
                    out.push((manifest_key, title));
                }
            }
        }
        Ok(out)
    }

    /// `Some(Stale)` when the event's object is gone or was replaced since the event.
    fn check_fresh(&self, store: &dyn Store, job: &Job) -> Result<Option<Outcome>> {
        Ok(match store.head(&job.key)? {
            None => Some(Outcome::Stale {
                key: job.key.clone(),
                reason: "the object no longer exists".into(),
            }),
            Some(info) => stale(job, &info),
        })
    }

    /// `media_key`: the upload that must own the title (a media file that is its own
    /// title; `None` for a title manifest's title). `bucket`: the store's, for messages.
    fn publish_title(
        &self,
        store: &Arc<dyn Store>,
        bucket: &str,
        title: &Title,
        sources: Vec<(Arc<dyn Source>, ObjectInfo)>,
        media_key: Option<&str>,
    ) -> Outcome {
        let prefix = title.folder(&self.config.output_prefix);
        let folder = sources.first().map_or("", |(_, i)| parent(&i.key));
        let (subs, sub_warnings) = match side_files(self.config, store.as_ref(), folder, title) {
            Ok(found) => found,
            Err(e) => return Outcome::failed(Some(title.as_str()), &e),
        };
        let version = self.version_of(&sources, &subs);
        let infos: Vec<SourceInfo> = sources.iter().map(|(_, i)| source_info(i)).collect();
        let sub_infos: Vec<SourceInfo> = subs.iter().map(source_info).collect();
        let started_at = (self.clock)();
        // Recorded before the first object of the version is written, on top of whatever
        // another job of the title wrote meanwhile (a compare-and-swap of the manifest).
        let begun = manifest::update_manifest(store.as_ref(), &prefix, |previous| {
            // Before anything else: a same-bytes upload under another name has the same
            // version.
            if let Some(key) = media_key {
                self.check_owner(store.as_ref(), title, key, previous.as_ref())?;
            }
            if let Some(prev) = &previous {
                let same = prev.version.as_deref() == Some(&version);
                if prev.state == State::Complete && same && !self.rebuild {
                    return Ok(Change::Keep(None));
                }
            }
            let mut next =
                Manifest::start(previous, infos.clone(), Some(version.clone()), started_at);
            next.subtitles = sub_infos.clone();
            Ok(Change::Write(Box::new(next.clone()), Some(next)))
        });
        let manifest = match begun {
            Ok(Some(m)) => m,
            Ok(None) => {
                return Outcome::AlreadyComplete {
                    title: title.to_string(),
                    version,
                }
            }
            Err(e) => return Outcome::failed(Some(title.as_str()), &e),
        };
        match self.fan_out(store, title, &version, &sources, bucket) {
            Ok(Some(fanned_out)) => return fanned_out,
            Ok(None) => {}
            Err(e) => {
                return self.fail(store.as_ref(), title, &prefix, manifest, Some(&version), &e)
            }
        }
        // A title with no live version plays while it is written (with a ladder, from its
        // first chunks on); a re-upload of a live one flips only once complete, so that its
        // viewers never move to a half-written version (DESIGN.md "Publish protocol" 2). The
        // live version may be this one, grown part-way by a job that stopped: this one goes
        // on growing it.
        let progressive = manifest.version.is_none() || manifest.version == Some(version.clone());
        let checks = Checks {
            prefix: &prefix,
            version: &version,
            sources: &sources,
            subs: &subs,
        };
        match self.write_title(store, bucket, title, &checks, progressive) {
            Ok(Ok(mut published)) => {
                published.title.warnings.extend(sub_warnings);
                self.finish(store.as_ref(), title, &prefix, manifest, published)
            }
            Ok(Err(shared_out)) => shared_out,
            Err(e) => self.fail(store.as_ref(), title, &prefix, manifest, Some(&version), &e),
        }
    }

    /// Packages the title (encoding its ladder, writing ahead when `progressive`) and writes
    /// it up to the master flip; or, when the fleet is to write it in shares, sends those
    /// (`Err` of the outcome).
    fn write_title(
        &self,
        store: &Arc<dyn Store>,
        bucket: &str,
        title: &Title,
        checks: &Checks<'_>,
        progressive: bool,
    ) -> Result<std::result::Result<Published, Outcome>> {
        let Checks {
            prefix,
            version,
            sources,
            subs,
        } = *checks;
        self.with_publishing(store.as_ref(), checks, |publishing| {
            let grow = progressive.then_some(publishing);
            let ready = self.package_title(store, prefix, version, sources, subs, grow)?;
            if let Some(out) =
                self.share_out(store, bucket, title, version, sources, &ready.packaged)?
            {
                return Ok(Err(out));
            }
            self.publish_ready(store.as_ref(), ready, publishing, progressive)
                .map(Ok)
        })
    }

    /// The version the sources (side files included) and the settings give.
    pub(crate) fn version_of(
        &self,
        sources: &[(Arc<dyn Source>, ObjectInfo)],
        subs: &[ObjectInfo],
    ) -> String {
        let etags: Vec<&str> = sources.iter().map(|(_, i)| i.etag.as_str()).collect();
        let sub_ids: Vec<(String, String)> = subs
            .iter()
            .map(|o| (o.key.clone(), o.etag.clone()))
            .collect();
        version_for_sources(&etags, &sub_ids, &self.config.settings())
    }

    /// Encodes the ladder (or assembles it from the fleet's parts) and packages the sources:
    /// the title, ready to write. With `grow` (a progressive publish), a ladder encoded
    /// here in chunks is written ahead as its first chunks are done ([`Self::write_ahead`]).
    pub(crate) fn package_title(
        &self,
        store: &Arc<dyn Store>,
        prefix: &str,
        version: &str,
        sources: &[(Arc<dyn Source>, ObjectInfo)],
        subs: &[ObjectInfo],
        grow: Option<&Publishing<'_>>,
    ) -> Result<Ready> {
        let work = Work::new(store, prefix, version);
        let progress = Throttled::new(PROGRESS_EVERY, |(done, total): (f64, f64)| {
            let progress = JobProgress {
                stage: "encoding".into(),
                done,
                total,
                unit: "seconds".into(),
                at: (self.clock)(),
                playable_seconds: None,
            };
            if let Err(e) = manifest::record_progress(store.as_ref(), prefix, version, progress) {
                tracing::warn!(prefix, error = %e, "progress not recorded");
            }
        });
        let side_inputs = read_side_files(store.as_ref(), subs)?;
        let transcoded = std::thread::scope(|scope| {
            let (ahead, partials) = std::sync::mpsc::channel::<Encoded>();
            let writer = grow.map(|publishing| {
                let side_inputs = &side_inputs;
                scope.spawn(move || {
                    self.write_ahead(store.as_ref(), sources, side_inputs, publishing, partials)
                })
            });
            let ahead = move |partial: Encoded| {
                // The writer stops taking partial titles after a failure: a missed head start.
                let _ = ahead.send(partial);
            };
            let partial: Option<&(dyn Fn(Encoded) + Sync)> = match writer {
                Some(_) => Some(&ahead),
                None => None,
            };
            let transcoded = ladder::transcode(
                self.config,
                sources,
                &work,
                self.deadline,
                &|d, t| progress.call((d, t), false),
                partial,
            );
            drop(ahead);
            if let Some(writer) = writer {
                // Its last round ends before the whole is written; a panic there is a bug.
                if writer.join().is_err() {
                    tracing::error!(prefix, "writing ahead panicked");
                }
            }
            transcoded
        })?;
        let encoded = transcoded.as_ref().map(|t| &t.encoded);
        let (packaged, dyn_sources) = self.package_encoded(sources, encoded, &side_inputs)?;
        Ok(Ready {
            packaged,
            sources: dyn_sources,
            transcoded,
        })
    }

    /// The title of the sources and the ladder `encoded` from them (the whole, or its first
    /// chunks), and the sources its objects' bodies read.
    fn package_encoded(
        &self,
        sources: &[(Arc<dyn Source>, ObjectInfo)],
        encoded: Option<&Encoded>,
        side_inputs: &[SubtitleInput],
    ) -> Result<(PackagedTitle, Vec<Arc<dyn Source>>)> {
        let ladder::PackagerInputs {
            inputs,
            sources: dyn_sources,
        } = ladder::inputs(sources, encoded)?;
        let mut packaged = package_with_subtitles(&inputs, side_inputs, &self.config.settings())?;
        if let Some(e) = encoded {
            // The poster and the thumbnails, written with the segments, before the flip.
            packaged.media.extend(e.preview_objects(&packaged.version)?);
        }
        Ok((packaged, dyn_sources))
    }

    /// Writes ahead, while the ladder is encoded, the titles made of its first chunks as
    /// they arrive (the latest one when several are waiting): the viewer can start on the
    /// first chunks' segments long before the last chunk is encoded. A failure here stops
    /// the writing ahead only; the title's publish, once encoded, writes what is missing.
    fn write_ahead(
        &self,
        store: &dyn Store,
        sources: &[(Arc<dyn Source>, ObjectInfo)],
        side_inputs: &[SubtitleInput],
        publishing: &Publishing<'_>,
        partials: std::sync::mpsc::Receiver<Encoded>,
    ) {
        while let Ok(mut encoded) = partials.recv() {
            while let Ok(later) = partials.try_recv() {
                encoded = later;
            }
            let plan = grow_plan(&encoded);
            let written = self
                .package_encoded(sources, Some(&encoded), side_inputs)
                .and_then(|(title, dyn_sources)| {
                    let (opts, report) = (&publishing.opts, publishing.report);
                    grow::publish_partial(store, &title, &dyn_sources, opts, report, plan)
                });
            if let Err(e) = written {
                tracing::warn!(prefix = publishing.opts.prefix, error = %e, "stopped writing ahead");
                return;
            }
        }
    }

    /// Builds what every write of a job's title goes through (the checks before a flip, the
    /// growth reports to the manifest) and hands it to `f`.
    fn with_publishing<R>(
        &self,
        store: &dyn Store,
        checks: &Checks<'_>,
        f: impl FnOnce(&Publishing<'_>) -> R,
    ) -> R {
        let Checks {
            prefix,
            version,
            sources,
            subs,
        } = *checks;
        let growth = Throttled::new(PROGRESS_EVERY, |g: Growth| {
            let progress = JobProgress {
                stage: "publishing".into(),
                done: g.segments_done as f64,
                total: g.segments_total as f64,
                unit: "segments".into(),
                at: (self.clock)(),
                playable_seconds: Some(g.seconds_playable),
            };
            if let Err(e) = manifest::record_growth(store, prefix, version, g.playable, progress) {
                tracing::warn!(prefix, error = %e, "progress not recorded");
            }
        });
        // The manifest hears of the growth at once when the title becomes playable (the
        // playback API hands out cookies from then on), then every few seconds.
        let playable_told = std::sync::atomic::AtomicBool::new(false);
        let report = |g: Growth| {
            let first_playable =
                g.playable && !playable_told.swap(true, std::sync::atomic::Ordering::SeqCst);
            growth.call(g, first_playable);
        };
        // Just before the flip: are the sources (side files included) still the versions
        // read? If a newer upload replaced one meanwhile, its own job may have flipped the
        // master already, and flipping now would put the older version back live.
        let still_current = || -> Result<()> {
            for info in sources.iter().map(|(_, i)| i).chain(subs) {
                match store.head(&info.key)? {
                    Some(now) if now.etag == info.etag => {}
                    _ => {
                        return Err(Error::SourceChanged {
                            key: info.key.clone(),
                        })
                    }
                }
            }
            Ok(())
        };
        f(&Publishing {
            opts: PublishOptions {
                prefix,
                concurrency: self.config.concurrency,
                progress: &|_| {},
                before_flip: Some(&still_current),
                deadline: self.deadline,
            },
            report: &report,
        })
    }

    /// Writes a packaged title up to the master flip, which happens only if the sources are
    /// still the versions read; returns the title and the flipped master's ETag.
    fn publish_ready(
        &self,
        store: &dyn Store,
        ready: Ready,
        publishing: &Publishing<'_>,
        progressive: bool,
    ) -> Result<Published> {
        let Ready {
            packaged,
            sources: dyn_sources,
            transcoded,
        } = ready;
        let (opts, report) = (&publishing.opts, publishing.report);
        let master_etag =
            if progressive {
                // A ladder's playlists grow by its plan, as they did while it was encoded.
                let plan = transcoded.as_ref().map(|t| grow_plan(&t.encoded));
                let longest = packaged
                    .growing
                    .iter()
                    .map(|g| g.target_duration(g.segments.len()))
                    .max();
                let plan =
                    plan.filter(|p| {
                        let fits = longest.is_none_or(|t| t <= p.target_duration);
                        if !fits {
                            tracing::warn!(prefix = opts.prefix, ?longest, plan = p.target_duration,
                        "a segment is longer than planned: the playlists declare its length");
                        }
                        fits
                    });
                grow::publish_progressively(store, &packaged, &dyn_sources, opts, report, plan)?
            } else {
                publish::publish(store, &packaged, &dyn_sources, opts)?
            };
        Ok(Published {
            title: packaged,
            master_etag,
            transcode: transcoded.map(|t| t.report),
        })
    }

    /// After the flip: the `complete` manifest (applied to the manifest as it is now, which
    /// another job of the title may have written since this one started; `local`, this job's
    /// own, stands in if the title's manifest is gone), retired versions collected, and the
    /// master invalidated on the CDN when it replaced another version.
    fn finish(
        &self,
        store: &dyn Store,
        title: &Title,
        prefix: &str,
        local: Manifest,
        published: Published,
    ) -> Outcome {
        let Published {
            title: packaged,
            master_etag,
            transcode,
        } = published;
        let now = (self.clock)();
        let master_key = format!("{prefix}{MASTER_KEY}");
        let completed = manifest::update_manifest(store, prefix, |fresh| {
            let mut next = fresh.unwrap_or_else(|| local.clone());
            // A later job's flip may have replaced this one's master already: then that job
            // records the live version, and this one's is retired.
            let mine = publish::master_is(store, &master_key, &master_etag)?;
            let previous_live = next.complete(&packaged, now, mine);
            if mine {
                next.transcode = transcode.clone();
                let (packager, settings) = settings_in_version(&self.config.settings());
                next.made_with = Some(MadeWith { packager, settings });
            }
            Ok(Change::Write(Box::new(next.clone()), (next, previous_live)))
        });
        let (written, previous_live) = match completed {
            Ok(done) => done,
            Err(e) => return Outcome::failed(Some(title.as_str()), &e),
        };
        let mut warnings = packaged.warnings.clone();
        warnings.extend(self.collect(store, prefix, &written, now));
        if let Some(old) = previous_live.filter(|old| *old != packaged.version) {
            let path = format!("/{prefix}{MASTER_KEY}");
            let reference =
                invalidation_reference(prefix, &old, &packaged.version, local.started_at);
            if let Err(e) = self.invalidator.invalidate(&[path], &reference) {
                // The master's max-age is 60 s: a failed invalidation only delays the flip.
                warnings.push(format!("CDN invalidation failed: {e}"));
            }
        }
        Outcome::Processed {
            title: title.to_string(),
            version: packaged.version,
            warnings,
        }
    }

    /// Removes the objects of versions retired longer than the grace period, then drops
    /// them from the manifest (those it still lists as expired retired versions: another
    /// job may have taken one up again meanwhile). Returns warnings.
    fn collect(
        &self,
        store: &dyn Store,
        prefix: &str,
        written: &Manifest,
        now: u64,
    ) -> Vec<String> {
        let grace = self.config.gc_grace_seconds;
        let collected = match gc(store, prefix, written, now, grace) {
            Ok(collected) if collected.is_empty() => return Vec::new(),
            Ok(collected) => collected,
            Err(e) => return vec![format!("old versions not removed: {e}")],
        };
        match drop_collected(store, prefix, &collected, now, grace) {
            Ok(()) => Vec::new(),
            Err(e) => vec![format!(
                "collected versions not dropped from the manifest: {e}"
            )],
        }
    }

    /// Writes the `failed` manifest (the live version and its master stay) and reports.
    /// `version`: the version this job was writing, retired for GC.
    ///
    /// A source replaced while it was read is not a failure of the title: the newer
    /// upload's own event will publish it, so no state is written here (a `failed`
    /// manifest could land after that newer job's `complete` one); the version is only
    /// retired.
    fn fail(
        &self,
        store: &dyn Store,
        title: &Title,
        prefix: &str,
        local: Manifest,
        version: Option<&str>,
        err: &Error,
    ) -> Outcome {
        let now = (self.clock)();
        let superseded_by = err.changed_source();
        let written = manifest::update_manifest(store, prefix, |fresh| {
            let mut next = fresh.unwrap_or_else(|| local.clone());
            match (superseded_by, version) {
                (Some(_), Some(ours)) => next.abandon(ours, now),
                (Some(_), None) => return Ok(Change::Keep(())),
                (None, _) => next.fail(version, err, now),
            }
            Ok(Change::Write(Box::new(next), ()))
        });
        if let Some(key) = superseded_by {
            return superseded(key);
        }
        let mut outcome = Outcome::failed(Some(title.as_str()), err);
        if let Err(e) = written {
            if let Outcome::Failed { reason, .. } = &mut outcome {
                reason.push_str(&format!(" (and the failed manifest was not written: {e})"));
            }
        }
        outcome
    }

    /// A failure before any source was opened (an unreadable title manifest).
    pub(crate) fn fail_without_sources(
        &self,
        store: &dyn Store,
        title: &Title,
        err: &Error,
    ) -> Outcome {
        let prefix = title.folder(&self.config.output_prefix);
        let now = (self.clock)();
        let local = Manifest::processing(Vec::new(), now);
        // A new run without a version: a previous run's unflipped version is retired.
        let started = manifest::update_manifest(store, &prefix, |fresh| {
            let next = match fresh {
                Some(prev) => {
                    let sources = prev.sources.clone();
                    Manifest::start(Some(prev), sources, None, now)
                }
                None => local.clone(),
            };
            Ok(Change::Keep(next))
        });
        match started {
            Ok(base) => self.fail(store, title, &prefix, base, None, err),
            Err(e) => Outcome::failed(Some(title.as_str()), &e),
        }
    }

    fn removed(&self, store: &Arc<dyn Store>, job: &Job, role: KeyRole) -> Outcome {
        let title = match role {
            KeyRole::Ignored(reason) => return Outcome::Ignored { reason },
            // Losing a side file loses a subtitle track, never the title.
            KeyRole::Subtitles { title } => {
                return self.side_file_changed(store, job, &title, false)
            }
            KeyRole::TitleManifest { title } => title,
            KeyRole::Media { title } => {
                match self.claims(store.as_ref(), &job.key) {
                    Ok(claims) if claims.is_empty() => {}
                    Ok(claims) => {
                        return Outcome::Ignored {
                            reason: format!(
                                "'{}' is an input of {}; remove the title manifest to remove \
                                 the title",
                                job.key, claims[0].0
                            ),
                        }
                    }
                    Err(e) => return Outcome::failed(Some(title.as_str()), &e),
                }
                title
            }
        };
        // Events arrive out of order: a removal older than a new upload must not delete
        // the new upload's title.
        match store.head(&job.key) {
            Ok(None) => {}
            Ok(Some(_)) => {
                return Outcome::Stale {
                    key: job.key.clone(),
                    reason: "the object exists again (uploaded after the removal)".into(),
                }
            }
            Err(e) => return Outcome::failed(Some(title.as_str()), &e),
        }
        match remove_title(store.as_ref(), &title.folder(&self.config.output_prefix)) {
            Ok(objects) => Outcome::Removed {
                title: title.to_string(),
                objects,
            },
            Err(e) => Outcome::failed(Some(title.as_str()), &e),
        }
    }
}

fn source_info(i: &ObjectInfo) -> SourceInfo {
    SourceInfo {
        key: i.key.clone(),
        etag: Some(i.etag.clone()),
        size: i.size,
    }
}

/// The side files' bytes. One that is gone or replaced since it was listed is a changed
/// source: its own event publishes the title again.
fn read_side_files(store: &dyn Store, subs: &[ObjectInfo]) -> Result<Vec<SubtitleInput>> {
    subs.iter()
        .map(|info| {
            let changed = || Error::SourceChanged {
                key: info.key.clone(),
            };
            let bytes = store.get(&info.key)?.ok_or_else(changed)?;
            if bytes.len() as u64 != info.size {
                return Err(changed());
            }
            Ok(SubtitleInput {
                name: info.key.clone(),
                bytes,
                etag: Some(info.etag.clone()),
            })
        })
        .collect()
}

fn role_title(role: &KeyRole) -> Option<&Title> {
    match role {
        KeyRole::Media { title } | KeyRole::TitleManifest { title } => Some(title),
        KeyRole::Subtitles { title } => Some(title),
        KeyRole::Ignored(_) => None,
    }
}

/// Most side files one title reads.
const MAX_SIDE_FILES: usize = 32;

/// The side files of `title` in `folder` (`<title>.<lang>.srt` …), in key order, and
/// warnings for those left out (too large, too many).
pub(crate) fn side_files(
    config: &PipelineConfig,
    store: &dyn Store,
    folder: &str,
    title: &Title,
) -> Result<(Vec<ObjectInfo>, Vec<String>)> {
    let listed = store.list(&side_file_prefix(config, title))?;
    Ok(pick_side_files(config, folder, title, listed))
}

/// A key prefix every side file of `title` starts with (`uploads/shows/ep1.`), however its
/// name is normalized: a title is NFC, and a name may come NFD from another system
/// (`Cafe\u{301}.en.srt` beside `Caf\u{e9}.mp4`), so a non-ASCII title is listed from
/// before its first non-ASCII character, where both forms still agree. Listing the title's
/// own keys, not its whole folder, spares a job in a folder of 100,000 uploads a listing of
/// 100,000 keys (the reprocess bench found every job listing the folder).
pub(crate) fn side_file_prefix(config: &PipelineConfig, title: &Title) -> String {
    let t = title.as_str();
    match t.find(|c: char| !c.is_ascii()) {
        Some(at) => format!("{}{}", config.input_prefix, &t[..at]),
        None => format!("{}{t}.", config.input_prefix),
    }
}

/// The side files of `title` among `listed` (objects of `folder` and below, in key order)
/// that its job reads, and a warning for each one it leaves out: the rule both the job and
/// `reprocess`'s plan follow, so that they reckon the same version.
pub(crate) fn pick_side_files(
    config: &PipelineConfig,
    folder: &str,
    title: &Title,
    listed: impl IntoIterator<Item = ObjectInfo>,
) -> (Vec<ObjectInfo>, Vec<String>) {
    let mut found = Vec::new();
    let mut warnings = Vec::new();
    for obj in listed {
        let mine = obj.key.starts_with(folder)
            && !obj.key[folder.len()..].contains('/')
            && matches!(classify_key(config, &obj.key), KeyRole::Subtitles { title: t } if t == *title);
        if !mine {
            continue;
        }
        if obj.size > MAX_SUBTITLE_BYTES as u64 {
            warnings.push(format!(
                "{}: subtitles left out: {} bytes is over the {MAX_SUBTITLE_BYTES}-byte limit",
                obj.key, obj.size
            ));
        } else if found.len() == MAX_SIDE_FILES {
            warnings.push(format!(
                "{}: subtitles left out: a title reads at most {MAX_SIDE_FILES} side files",
                obj.key
            ));
        } else {
            found.push(obj);
        }
    }
    found.sort_by(|a, b| a.key.cmp(&b.key));
    (found, warnings)
}

/// The source was replaced (or removed) after this job's HEAD of it: the newer upload's
/// own event does the work.
fn superseded(key: &str) -> Outcome {
    Outcome::Stale {
        key: key.to_string(),
        reason: "it changed while its title was being made; the newer upload's event \
                 publishes it"
            .into(),
    }
}

/// `Some(Stale)` when the event names an ETag the object no longer has.
fn stale(job: &Job, info: &ObjectInfo) -> Option<Outcome> {
    let seen = job.etag.as_deref()?;
    (seen != info.etag).then(|| Outcome::Stale {
        key: job.key.clone(),
        reason: format!(
            "the event saw ETag {seen}, the object now has {}: a newer upload's event will follow",
            info.etag
        ),
    })
}
