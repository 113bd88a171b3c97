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

use crate::config::WorkerConfig;
use crate::error::{Error, Result};
use crate::events::{Job, ParsedRecord, Record, RecordKind};
use crate::package::{package, version_for_etags, Input};
use crate::publish::{
    self, Manifest, PublishOptions, RetiredVersion, SourceInfo, State, MANIFEST_KEY, MASTER_KEY,
};
use crate::source::Source;
use crate::store::{open_source, ObjectInfo, Store};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::{Arc, Mutex};

/// File name suffix of a title manifest (matched ignoring ASCII case).
pub const TITLE_MANIFEST_SUFFIX: &str = ".title.json";
const TITLE_MANIFEST_MAX_BYTES: u64 = 64 * 1024;
const TITLE_MANIFEST_MAX_INPUTS: usize = 16;

/// What became of one record.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Published: the master now names `version`.
    Processed {
        title: String,
        version: String,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        warnings: Vec<String>,
    },
    /// `manifest.json` already said `complete` with this version: nothing written.
    AlreadyComplete { title: String, version: String },
    /// The event no longer describes the object (replaced or gone, or back after a removal).
    Stale { key: String, reason: String },
    /// Deliberately not work (test events, other prefixes, other event types …).
    Ignored { reason: String },
    /// The title's objects were deleted.
    Removed { title: String, objects: usize },
    /// `retryable`: storage or I/O trouble that may pass; otherwise the input is bad and
    /// will fail the same way again.
    Failed {
        #[serde(skip_serializing_if = "Option::is_none")]
        title: Option<String>,
        reason: String,
        retryable: bool,
    },
}

impl Outcome {
    pub fn is_failure(&self) -> bool {
        matches!(self, Outcome::Failed { .. })
    }

    /// A failure that may pass on a later attempt (storage or I/O trouble).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Outcome::Failed {
                retryable: true,
                ..
            }
        )
    }

    /// The outcome's name as serialized (`processed`, `failed` …), for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Processed { .. } => "processed",
            Outcome::AlreadyComplete { .. } => "already_complete",
            Outcome::Stale { .. } => "stale",
            Outcome::Ignored { .. } => "ignored",
            Outcome::Removed { .. } => "removed",
            Outcome::Failed { .. } => "failed",
        }
    }

    fn failed(title: Option<&str>, err: &Error) -> Self {
        Outcome::Failed {
            title: title.map(String::from),
            reason: err.to_string(),
            retryable: err.is_retryable(),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Processed {
                title,
                version,
                warnings,
            } => {
                write!(f, "processed: {title} (version {version})")?;
                for w in warnings {
                    write!(f, "; warning: {w}")?;
                }
                Ok(())
            }
            Outcome::AlreadyComplete { title, version } => {
                write!(f, "already complete: {title} (version {version})")
            }
            Outcome::Stale { key, reason } => write!(f, "stale: {key}: {reason}"),
            Outcome::Ignored { reason } => write!(f, "ignored: {reason}"),
            Outcome::Removed { title, objects } => {
                write!(f, "removed: {title} ({objects} objects)")
            }
            Outcome::Failed {
                title,
                reason,
                retryable,
            } => {
                let kind = if *retryable { "retryable" } else { "permanent" };
                match title {
                    Some(t) => write!(f, "failed: {t}: {reason} ({kind})"),
                    None => write!(f, "failed: {reason} ({kind})"),
                }
            }
        }
    }
}

/// Tells the CDN that cached copies of some paths are out of date. After a re-publish only
/// `master.m3u8` changed path-wise (every other object has a new, versioned key), so the
/// worker invalidates exactly that one path, never `/*` (DESIGN.md "Publish protocol").
/// The CloudFront implementation is `cdn::CloudFrontInvalidator`.
pub trait Invalidator: Send + Sync {
    /// `paths` are URL paths from the distribution's root (`/hls/shows/ep1/master.m3u8`),
    /// not percent-encoded: an implementation must encode them as CloudFront requires
    /// ("Specifying the objects to invalidate", CloudFront Developer Guide: URL-encode
    /// non-ASCII and unsafe characters).
    ///
    /// `reference` is the same for the same title and version ([`invalidation_reference`]):
    /// an event handled twice asks for the same invalidation, which CloudFront answers
    /// with the first one instead of making another (its `CallerReference`).
    fn invalidate(&self, paths: &[String], reference: &str) -> Result<()>;
}

/// The invalidation reference of a title's publish: `hlspipe-` and 32 hex digits of
/// SHA-256 over the title prefix and the version. Deterministic, so a retried job
/// repeats its request rather than adding one; at most 128 characters, as CloudFront's
/// `CallerReference` allows.
pub fn invalidation_reference(title_prefix: &str, version: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(title_prefix.as_bytes());
    h.update([0u8]);
    h.update(version.as_bytes());
    format!("hlspipe-{}", &hex::encode(h.finalize())[..32])
}

/// No CDN in front (the directory store, local tests).
pub struct NoInvalidation;

impl Invalidator for NoInvalidation {
    fn invalidate(&self, _paths: &[String], _reference: &str) -> Result<()> {
        Ok(())
    }
}

/// Remembers every call: for tests.
#[derive(Default)]
pub struct RecordingInvalidator {
    calls: Mutex<Vec<(Vec<String>, String)>>,
}

impl RecordingInvalidator {
    /// The paths of every call, in order.
    pub fn calls(&self) -> Vec<Vec<String>> {
        self.calls
            .lock()
            .map(|c| c.iter().map(|(p, _)| p.clone()).collect())
            .unwrap_or_default()
    }

    /// The reference of every call, in order.
    pub fn references(&self) -> Vec<String> {
        self.calls
            .lock()
            .map(|c| c.iter().map(|(_, r)| r.clone()).collect())
            .unwrap_or_default()
    }
}

impl Invalidator for RecordingInvalidator {
    fn invalidate(&self, paths: &[String], reference: &str) -> Result<()> {
        if let Ok(mut calls) = self.calls.lock() {
            calls.push((paths.to_vec(), reference.to_string()));
        }
        Ok(())
    }
}

/// What a key under the input prefix is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRole {
    /// A media file: a title of its own, unless a title manifest beside it names it.
    Media { title: String },
    /// A title manifest (`<title>.title.json`).
    TitleManifest { title: String },
    /// Not work, and why.
    Ignored(String),
}

/// Maps a store key to its role: `uploads/shows/ep1.mp4` → media of title `shows/ep1`.
pub fn classify_key(config: &WorkerConfig, key: &str) -> KeyRole {
    if key.starts_with(&config.output_prefix) {
        return KeyRole::Ignored(format!(
            "'{key}' is under the output prefix '{}': hlspipe's own output is never processed",
            config.output_prefix
        ));
    }
    let Some(rel) = key.strip_prefix(&config.input_prefix) else {
        return KeyRole::Ignored(format!(
            "'{key}' is outside the input prefix '{}'",
            config.input_prefix
        ));
    };
    // ASCII lower-casing keeps byte offsets, so the stem can be cut from `rel` itself.
    let lower = rel.to_ascii_lowercase();
    let (stem, manifest) = if lower.ends_with(TITLE_MANIFEST_SUFFIX) {
        (&rel[..rel.len() - TITLE_MANIFEST_SUFFIX.len()], true)
    } else if let Some(ext) = config
        .extensions
        .iter()
        .find(|e| lower.ends_with(e.as_str()))
    {
        (&rel[..rel.len() - ext.len()], false)
    } else {
        return KeyRole::Ignored(format!(
            "'{key}' is not media (accepted: {}, or a title manifest '*{TITLE_MANIFEST_SUFFIX}')",
            config.extensions.join(" ")
        ));
    };
    if let Err(reason) = check_title(stem) {
        return KeyRole::Ignored(format!("'{key}': {reason}"));
    }
    let title = stem.to_string();
    if manifest {
        KeyRole::TitleManifest { title }
    } else {
        KeyRole::Media { title }
    }
}

/// A title becomes a path on the CDN and the resource of a signed policy: no empty, `.` or
/// `..` segment (clients normalise those away, reaching another title), no `*` or `?`
/// (wildcards in a CloudFront policy resource, CloudFront Developer Guide "Creating a
/// policy statement for a signed URL that uses a custom policy"), no control characters.
fn check_title(title: &str) -> std::result::Result<(), String> {
    if title
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err("the title path has an empty, '.' or '..' part".into());
    }
    if title.contains(['*', '?']) {
        return Err("the title holds '*' or '?', which a signed CDN policy cannot name".into());
    }
    if title.chars().any(char::is_control) {
        return Err("the title holds control characters".into());
    }
    Ok(())
}

/// The title's folder in the store: `hls/shows/ep1/`.
pub fn title_prefix(config: &WorkerConfig, title: &str) -> String {
    format!("{}{title}/", config.output_prefix)
}

/// A title manifest (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TitleManifest {
    /// Keys relative to the input prefix, in ladder order (the first video is the
    /// reference for segment cuts).
    pub inputs: Vec<String>,
}

impl TitleManifest {
    /// Parses and checks a title manifest stored at `key`; returns the inputs' full keys.
    pub fn parse(config: &WorkerConfig, key: &str, bytes: &[u8]) -> Result<Vec<String>> {
        let err = |reason: String| Error::TitleManifest {
            key: key.to_string(),
            reason,
        };
        let m: TitleManifest = serde_json::from_slice(bytes)
            .map_err(|e| err(format!("not a title manifest ({{\"inputs\": [...]}}): {e}")))?;
        if m.inputs.is_empty() || m.inputs.len() > TITLE_MANIFEST_MAX_INPUTS {
            return Err(err(format!(
                "'inputs' must name 1 to {TITLE_MANIFEST_MAX_INPUTS} files, not {}",
                m.inputs.len()
            )));
        }
        let folder = parent(key);
        let mut keys: Vec<String> = Vec::with_capacity(m.inputs.len());
        for input in &m.inputs {
            let full = format!("{}{input}", config.input_prefix);
            match classify_key(config, &full) {
                KeyRole::Media { .. } => {}
                KeyRole::TitleManifest { .. } => {
                    return Err(err(format!("input '{input}' is a title manifest")))
                }
                KeyRole::Ignored(reason) => {
                    return Err(err(format!("input '{input}' cannot be used: {reason}")))
                }
            }
            if parent(&full) != folder {
                return Err(err(format!(
                    "input '{input}' is not in the title manifest's folder '{folder}'"
                )));
            }
            if keys.contains(&full) {
                return Err(err(format!("input '{input}' is named twice")));
            }
            keys.push(full);
        }
        Ok(keys)
    }
}

/// `a/b/c.mp4` → `a/b/`; `c.mp4` → ``.
fn parent(key: &str) -> &str {
    match key.rfind('/') {
        Some(i) => &key[..=i],
        None => "",
    }
}

/// A record with what became of it, for reports and SQS partial batch failures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Handled {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// The message ids a queue should deliver again: those with a *retryable* failure (each
/// once, in order). A permanent failure (a corrupt upload) already wrote its `failed`
/// manifest; delivering it again would fail the same way until the dead-letter queue, so
/// it is not listed. `None` when a retryable failure came without a message id: the
/// whole invocation must then fail, or that record would be dropped.
///
/// This is the `batchItemFailures` list of an SQS-triggered Lambda function ("Reporting
/// batch item failures for Lambda functions with an Amazon SQS trigger", AWS Lambda
/// Developer Guide) and what the queue consumer leaves on the queue.
pub fn retryable_batch_item_failures(handled: &[Handled]) -> Option<Vec<String>> {
    let mut ids: Vec<String> = Vec::new();
    for h in handled.iter().filter(|h| h.outcome.is_retryable()) {
        let id = h.message_id.as_ref()?;
        if !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    Some(ids)
}

/// Logs one handled record as a structured event (`tracing`; the binaries print JSON):
/// message id, bucket, key, outcome, title, retryable, elapsed milliseconds, and the
/// outcome in words. Failures are errors (retryable) or warnings (permanent).
pub fn log_handled(h: &Handled, elapsed: std::time::Duration) {
    let title = match &h.outcome {
        Outcome::Processed { title, .. }
        | Outcome::AlreadyComplete { title, .. }
        | Outcome::Removed { title, .. } => Some(title.as_str()),
        Outcome::Failed { title, .. } => title.as_deref(),
        Outcome::Stale { .. } | Outcome::Ignored { .. } => None,
    };
    let elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
    macro_rules! event {
        ($level:expr) => {
            tracing::event!(
                target: "hlspipe::job",
                $level,
                message_id = h.message_id.as_deref(),
                bucket = h.bucket.as_deref(),
                key = h.key.as_deref(),
                outcome = h.outcome.name(),
                title,
                retryable = h.outcome.is_retryable(),
                elapsed_ms,
                "{}",
                h.outcome
            )
        };
    }
    if h.outcome.is_retryable() {
        event!(tracing::Level::ERROR);
    } else if h.outcome.is_failure() {
        event!(tracing::Level::WARN);
    } else {
        event!(tracing::Level::INFO);
    }
}

/// Everything a job needs besides the store and the record.
pub struct Worker<'a> {
    pub config: &'a WorkerConfig,
    pub invalidator: &'a dyn Invalidator,
    /// Unix seconds, now. Passed in so tests control time.
    pub clock: &'a (dyn Fn() -> u64 + Send + Sync),
}

impl Worker<'_> {
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

    /// [`Worker::handle_all`] one record at a time, with how long each took (for logs).
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
                if record.kind == RecordKind::Created {
                    self.created(&store, job, role)
                } else {
                    self.removed(&store, job, role)
                }
            }
        }
    }

    fn created(&self, store: &Arc<dyn Store>, job: &Job, role: KeyRole) -> Outcome {
        let (title, manifest_key) = match role {
            KeyRole::Ignored(reason) => return Outcome::Ignored { reason },
            KeyRole::TitleManifest { title } => (title, job.key.clone()),
            KeyRole::Media { title } => {
                let claims = match self.claims(store.as_ref(), &job.key) {
                    Ok(c) => c,
                    Err(e) => return Outcome::failed(Some(&title), &e),
                };
                match claims.as_slice() {
                    [] => return self.media_title(store, job, &title),
                    [(manifest_key, manifest_title)] => {
                        // An input of a ladder: the event still has to describe the
                        // object as it is now.
                        match self.check_fresh(store.as_ref(), job) {
                            Ok(None) => {}
                            Ok(Some(stale)) => return stale,
                            Err(e) => return Outcome::failed(Some(manifest_title), &e),
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
    fn media_title(&self, store: &Arc<dyn Store>, job: &Job, title: &str) -> Outcome {
        let (source, info) = match open_source(store, &job.key) {
            Ok(Some(s)) => s,
            Ok(None) => {
                return Outcome::Stale {
                    key: job.key.clone(),
                    reason: "the object no longer exists".into(),
                }
            }
            Err(e) if e.changed_source().is_some() => return superseded(&job.key),
            Err(e) => return Outcome::failed(Some(title), &e),
        };
        if let Some(stale) = stale(job, &info) {
            return stale;
        }
        self.publish_title(store, title, vec![(source, info)])
    }

    /// A title manifest's title, triggered by the manifest or by one of its inputs.
    fn manifest_title(
        &self,
        store: &Arc<dyn Store>,
        job: &Job,
        title: &str,
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
            Err(e) => return Outcome::failed(Some(title), &e),
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
                Err(e) => return Outcome::failed(Some(title), &e),
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
        self.publish_title(store, title, sources)
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
        let bytes = store.get(key)?.ok_or_else(|| Error::Store {
            key: key.to_string(),
            reason: "no such object".into(),
        })?;
        TitleManifest::parse(self.config, key, &bytes)
    }

    /// Title manifests in the folder of `key` that name it: `(manifest key, title)`.
    /// One listing of the folder; a title manifest that does not parse claims nothing (its
    /// own event reports it).
    fn claims(&self, store: &dyn Store, key: &str) -> Result<Vec<(String, String)>> {
        let folder = parent(key);
        let mut out = Vec::new();
        for obj in store.list(folder)? {
            let name = &obj.key[folder.len()..];
            if name.contains('/')
                || !name.to_ascii_lowercase().ends_with(TITLE_MANIFEST_SUFFIX)
                || obj.size > TITLE_MANIFEST_MAX_BYTES
            {
                continue;
            }
            let KeyRole::TitleManifest { title } = classify_key(self.config, &obj.key) else {
                continue;
            };
            let Some(bytes) = store.get(&obj.key)? else {
                continue;
            };
            if let Ok(inputs) = TitleManifest::parse(self.config, &obj.key, &bytes) {
                if inputs.iter().any(|k| k == key) {
                    out.push((obj.key.clone(), title));
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

    fn publish_title(
        &self,
        store: &Arc<dyn Store>,
        title: &str,
        sources: Vec<(Arc<dyn Source>, ObjectInfo)>,
    ) -> Outcome {
        let prefix = title_prefix(self.config, title);
        let settings = self.config.settings();
        let etags: Vec<&str> = sources.iter().map(|(_, i)| i.etag.as_str()).collect();
        let version = version_for_etags(&etags, &settings);
        let previous = match read_manifest(store.as_ref(), &prefix) {
            Ok(m) => m,
            Err(e) => return Outcome::failed(Some(title), &e),
        };
        if let Some(prev) = &previous {
            if prev.state == State::Complete && prev.version.as_deref() == Some(&version) {
                return Outcome::AlreadyComplete {
                    title: title.to_string(),
                    version,
                };
            }
        }
        let started_at = (self.clock)();
        let infos: Vec<SourceInfo> = sources
            .iter()
            .map(|(_, i)| SourceInfo {
                key: i.key.clone(),
                etag: Some(i.etag.clone()),
                size: i.size,
            })
            .collect();
        // The processing manifest still describes the live version: the master names it
        // until the flip, and a reader of the manifest must be able to trust that.
        let mut manifest = match previous {
            Some(prev) => Manifest {
                state: State::Processing,
                sources: infos,
                target_version: Some(version.clone()),
                error: None,
                warnings: Vec::new(),
                started_at,
                finished_at: None,
                elapsed_seconds: None,
                ..prev
            },
            None => Manifest {
                target_version: Some(version.clone()),
                ..Manifest::processing(infos, started_at)
            },
        };
        if let Err(e) = publish::write_manifest(store.as_ref(), &prefix, &manifest) {
            return Outcome::failed(Some(title), &e);
        }

        let dyn_sources: Vec<Arc<dyn Source>> =
            sources.iter().map(|(s, _)| Arc::clone(s)).collect();
        let inputs: Vec<Input> = sources
            .iter()
            .map(|(s, info)| Input {
                source: Arc::clone(s),
                etag: Some(info.etag.clone()),
            })
            .collect();
        let packaged = match package(&inputs, &settings) {
            Ok(p) => p,
            Err(e) => return self.fail(store.as_ref(), title, &prefix, manifest, &e),
        };
        // Just before the flip: are the sources still the versions read? If a newer
        // upload replaced one meanwhile, its own job may have flipped the master already,
        // and flipping now would put the older version back live.
        let still_current = || -> Result<()> {
            for (_, info) in &sources {
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
        let opts = PublishOptions {
            prefix: &prefix,
            concurrency: self.config.concurrency,
            progress: &|_| {},
            before_flip: Some(&still_current),
        };
        if let Err(e) = publish::publish(store.as_ref(), &packaged, &dyn_sources, &opts) {
            return self.fail(store.as_ref(), title, &prefix, manifest, &e);
        }

        // The master now names the new version.
        let now = (self.clock)();
        let previous_live = manifest.version.take();
        let mut warnings = packaged.warnings.clone();
        manifest.retired.retain(|r| r.version != packaged.version);
        if let Some(old) = &previous_live {
            if *old != packaged.version && !manifest.retired.iter().any(|r| &r.version == old) {
                manifest.retired.push(RetiredVersion {
                    version: old.clone(),
                    retired_at: now,
                });
            }
        }
        manifest.state = State::Complete;
        manifest.version = Some(packaged.version.clone());
        manifest.target_version = None;
        manifest.renditions = packaged.renditions.clone();
        manifest.duration = Some(packaged.duration);
        manifest.warnings = packaged.warnings.clone();
        manifest.finished_at = Some(now);
        manifest.elapsed_seconds = Some(now.saturating_sub(started_at) as f64);
        match gc(
            store.as_ref(),
            &prefix,
            &manifest,
            now,
            self.config.gc_grace_seconds,
        ) {
            Ok(collected) => manifest.retired.retain(|r| !collected.contains(&r.version)),
            Err(e) => warnings.push(format!("old versions not removed: {e}")),
        }
        if let Err(e) = publish::write_manifest(store.as_ref(), &prefix, &manifest) {
            return Outcome::failed(Some(title), &e);
        }
        if previous_live.is_some_and(|old| old != packaged.version) {
            let path = format!("/{prefix}{MASTER_KEY}");
            let reference = invalidation_reference(&prefix, &packaged.version);
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

    /// Writes the `failed` manifest (the live version and its master stay) and reports.
    ///
    /// A source replaced while it was read is not a failure of the title: the newer
    /// upload's own event will publish it, so nothing more is written here (a `failed`
    /// manifest could land after that newer job's `complete` one).
    fn fail(
        &self,
        store: &dyn Store,
        title: &str,
        prefix: &str,
        mut manifest: Manifest,
        err: &Error,
    ) -> Outcome {
        if let Some(key) = err.changed_source() {
            return superseded(key);
        }
        let now = (self.clock)();
        manifest.state = State::Failed;
        manifest.error = Some(err.to_string());
        manifest.finished_at = Some(now);
        manifest.elapsed_seconds = Some(now.saturating_sub(manifest.started_at) as f64);
        // What the failed run wrote is referenced by nothing: collect it like a retired one.
        if let Some(target) = &manifest.target_version {
            if manifest.version.as_ref() != Some(target)
                && !manifest.retired.iter().any(|r| &r.version == target)
            {
                manifest.retired.push(RetiredVersion {
                    version: target.clone(),
                    retired_at: now,
                });
            }
        }
        let mut outcome = Outcome::failed(Some(title), err);
        if let Err(e) = publish::write_manifest(store, prefix, &manifest) {
            if let Outcome::Failed { reason, .. } = &mut outcome {
                reason.push_str(&format!(" (and the failed manifest was not written: {e})"));
            }
        }
        outcome
    }

    /// A failure before any source was opened (an unreadable title manifest).
    fn fail_without_sources(&self, store: &dyn Store, title: &str, err: &Error) -> Outcome {
        let prefix = title_prefix(self.config, title);
        let now = (self.clock)();
        let manifest = match read_manifest(store, &prefix) {
            Ok(Some(prev)) => Manifest {
                started_at: now,
                target_version: None,
                ..prev
            },
            Ok(None) => Manifest::processing(Vec::new(), now),
            Err(e) => return Outcome::failed(Some(title), &e),
        };
        self.fail(store, title, &prefix, manifest, err)
    }

    fn removed(&self, store: &Arc<dyn Store>, job: &Job, role: KeyRole) -> Outcome {
        let title = match role {
            KeyRole::Ignored(reason) => return Outcome::Ignored { reason },
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
                    Err(e) => return Outcome::failed(Some(&title), &e),
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
            Err(e) => return Outcome::failed(Some(&title), &e),
        }
        match remove_title(store.as_ref(), &title_prefix(self.config, &title)) {
            Ok(objects) => Outcome::Removed { title, objects },
            Err(e) => Outcome::failed(Some(&title), &e),
        }
    }
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

/// The title's `manifest.json`, if any. One that does not parse is treated as absent (it
/// is rewritten by this run), except that storage errors are errors.
pub fn read_manifest(store: &dyn Store, prefix: &str) -> Result<Option<Manifest>> {
    Ok(store
        .get(&format!("{prefix}{MANIFEST_KEY}"))?
        .and_then(|b| Manifest::parse(&b).ok()))
}

/// A version directory name: what `package` makes (12 lower-case hex digits).
fn is_version_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether `rel` (relative to a title prefix) is an object of that title and not of a
/// title nested below it (`hls/shows/` and `hls/shows/ep1/` are both title prefixes when
/// `uploads/shows.mp4` and `uploads/shows/ep1.mp4` both exist).
fn is_title_object(rel: &str) -> bool {
    if rel == MASTER_KEY || rel == MANIFEST_KEY {
        return true;
    }
    rel.strip_prefix("v/")
        .and_then(|r| r.split_once('/'))
        .is_some_and(|(v, rest)| is_version_id(v) && !rest.is_empty())
}

/// Deletes every object of the title at `prefix`: the master first (the title stops being
/// playable), the versions, the manifest last. Returns how many were deleted.
pub fn remove_title(store: &dyn Store, prefix: &str) -> Result<usize> {
    let mut keys: Vec<String> = store
        .list(prefix)?
        .into_iter()
        .map(|o| o.key)
        .filter(|k| is_title_object(&k[prefix.len()..]))
        .collect();
    let rank = |k: &str| match &k[prefix.len()..] {
        MASTER_KEY => 0,
        MANIFEST_KEY => 2,
        _ => 1,
    };
    keys.sort_by_key(|k| rank(k));
    for k in &keys {
        store.delete(k)?;
    }
    Ok(keys.len())
}

/// Which objects of `listing` (a listing of the title's prefix) garbage collection removes:
/// those of versions retired at least `grace` seconds before `now`, never the live one nor
/// the one being written. Directories that the manifest does not list as retired are left
/// alone (another worker may be writing them).
pub fn gc_plan(
    listing: &[ObjectInfo],
    prefix: &str,
    manifest: &Manifest,
    now: u64,
    grace: u64,
) -> Vec<String> {
    let expired = expired_versions(manifest, now, grace);
    listing
        .iter()
        .filter_map(|o| {
            let rel = o.key.strip_prefix(prefix)?.strip_prefix("v/")?;
            let (version, rest) = rel.split_once('/')?;
            (!rest.is_empty() && expired.iter().any(|v| v == version)).then(|| o.key.clone())
        })
        .collect()
}

/// Removes the objects [`gc_plan`] selects; returns the versions whose objects are gone
/// (for the caller to drop from `manifest.retired` when it next writes the manifest: this
/// function never writes the manifest, which has one writer, the job).
pub fn gc(
    store: &dyn Store,
    prefix: &str,
    manifest: &Manifest,
    now: u64,
    grace: u64,
) -> Result<Vec<String>> {
    let listing = store.list(&format!("{prefix}v/"))?;
    for key in gc_plan(&listing, prefix, manifest, now, grace) {
        store.delete(&key)?;
    }
    Ok(expired_versions(manifest, now, grace))
}

fn expired_versions(manifest: &Manifest, now: u64, grace: u64) -> Vec<String> {
    manifest
        .retired
        .iter()
        .filter(|r| r.retired_at.saturating_add(grace) <= now)
        .filter(|r| manifest.version.as_ref() != Some(&r.version))
        .filter(|r| manifest.target_version.as_ref() != Some(&r.version))
        .map(|r| r.version.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> WorkerConfig {
        WorkerConfig::default()
    }

    #[test]
    fn keys_map_to_titles() {
        let c = config();
        assert_eq!(
            classify_key(&c, "uploads/shows/ep1.mp4"),
            KeyRole::Media {
                title: "shows/ep1".into()
            }
        );
        assert_eq!(
            classify_key(&c, "uploads/Shows/Épisode 1.MOV"),
            KeyRole::Media {
                title: "Shows/Épisode 1".into()
            }
        );
        assert_eq!(
            classify_key(&c, "uploads/shows/ep1.Title.JSON"),
            KeyRole::TitleManifest {
                title: "shows/ep1".into()
            }
        );
        assert_eq!(title_prefix(&c, "shows/ep1"), "hls/shows/ep1/");
        for key in [
            "hls/shows/ep1/master.m3u8",
            "hls/shows/ep1.mp4",
            "other/ep1.mp4",
            "uploads/notes.txt",
            "uploads/shows/",
            "uploads/.mp4",
            "uploads/a//b.mp4",
            "uploads/a/../b.mp4",
            "uploads/what?.mp4",
            "uploads/star*.mp4",
        ] {
            assert!(
                matches!(classify_key(&c, key), KeyRole::Ignored(_)),
                "{key}"
            );
        }
    }

    #[test]
    fn title_manifest_rules() {
        let c = config();
        let key = "uploads/shows/ep1.title.json";
        let ok = TitleManifest::parse(
            &c,
            key,
            br#"{"inputs": ["shows/ep1_1080.mp4", "shows/ep1_720.mp4"]}"#,
        )
        .unwrap();
        assert_eq!(
            ok,
            ["uploads/shows/ep1_1080.mp4", "uploads/shows/ep1_720.mp4"]
        );
        for bad in [
            r#"{"inputs": []}"#,
            r#"{"inputs": ["shows/a.mp4"], "extra": 1}"#,
            r#"{"inputs": ["other/a.mp4"]}"#,
            r#"{"inputs": ["shows/a.txt"]}"#,
            r#"{"inputs": ["shows/a.mp4", "shows/a.mp4"]}"#,
            r#"{"inputs": ["shows/b.title.json"]}"#,
            r#"["shows/a.mp4"]"#,
        ] {
            let err = TitleManifest::parse(&c, key, bad.as_bytes()).unwrap_err();
            assert!(!err.is_retryable(), "{bad}");
        }
    }

    fn info(key: &str) -> ObjectInfo {
        ObjectInfo {
            key: key.into(),
            size: 1,
            etag: "e".into(),
            last_modified: None,
            content_type: None,
            cache_control: None,
        }
    }

    #[test]
    fn gc_removes_only_expired_retired_versions() {
        let prefix = "hls/t/";
        let (live, old, recent, failed) = (
            "aaaaaaaaaaaa",
            "bbbbbbbbbbbb",
            "cccccccccccc",
            "dddddddddddd",
        );
        let listing: Vec<ObjectInfo> = [live, old, recent, failed, "eeeeeeeeeeee"]
            .iter()
            .flat_map(|v| {
                [
                    info(&format!("{prefix}v/{v}/video_180p/init.mp4")),
                    info(&format!("{prefix}v/{v}/video_180p/index.m3u8")),
                ]
            })
            .chain([info("hls/t/master.m3u8"), info("hls/t/manifest.json")])
            .collect();
        let mut m = Manifest::processing(Vec::new(), 0);
        m.state = State::Complete;
        m.version = Some(live.into());
        m.retired = vec![
            RetiredVersion {
                version: old.into(),
                retired_at: 1_000,
            },
            RetiredVersion {
                version: recent.into(),
                retired_at: 9_000,
            },
            RetiredVersion {
                version: failed.into(),
                retired_at: 2_000,
            },
            // A retired entry naming the live version (re-published) is never collected.
            RetiredVersion {
                version: live.into(),
                retired_at: 0,
            },
        ];
        let plan = gc_plan(&listing, prefix, &m, 10_000, 3_600);
        let versions: Vec<&str> = plan.iter().map(|k| &k[8..20]).collect();
        assert_eq!(versions, [old, old, failed, failed]);
        assert!(gc_plan(&listing, prefix, &m, 4_000, 3_600).is_empty());
        m.target_version = Some(old.into());
        let plan = gc_plan(&listing, prefix, &m, 10_000, 3_600);
        assert!(plan.iter().all(|k| k.contains(failed)), "{plan:?}");
    }

    #[test]
    fn nested_titles_are_not_removed_with_their_parent() {
        assert!(is_title_object("master.m3u8"));
        assert!(is_title_object("v/0123456789ab/video_180p/seg_00001.m4s"));
        assert!(!is_title_object("ep1/master.m3u8"));
        assert!(!is_title_object("v/ep1/master.m3u8"));
        assert!(!is_title_object("v/0123456789ab"));
    }

    #[test]
    fn batch_failures_need_message_ids() {
        let failed = |id: Option<&str>| Handled {
            message_id: id.map(String::from),
            bucket: None,
            key: None,
            outcome: Outcome::Failed {
                title: None,
                reason: "x".into(),
                retryable: false,
            },
        };
        let ok = Handled {
            message_id: Some("b".into()),
            bucket: None,
            key: None,
            outcome: Outcome::Ignored { reason: "y".into() },
        };
        // Only retryable failures are delivered again.
        let retryable = |id: &str| Handled {
            message_id: Some(id.into()),
            bucket: None,
            key: None,
            outcome: Outcome::Failed {
                title: None,
                reason: "SlowDown".into(),
                retryable: true,
            },
        };
        assert_eq!(
            retryable_batch_item_failures(&[
                failed(Some("corrupt")),
                retryable("throttled"),
                ok.clone(),
                retryable("throttled"),
            ]),
            Some(vec!["throttled".to_string()])
        );
        assert_eq!(
            retryable_batch_item_failures(&[failed(None), ok.clone()]),
            Some(vec![])
        );
        // A retryable failure without a message id cannot be reported per item.
        let mut anonymous = retryable("x");
        anonymous.message_id = None;
        assert_eq!(retryable_batch_item_failures(&[ok, anonymous]), None);
    }

    #[test]
    fn invalidation_references_are_per_title_and_version() {
        let a = invalidation_reference("hls/shows/ep1/", "0123456789ab");
        assert_eq!(a, invalidation_reference("hls/shows/ep1/", "0123456789ab"));
        assert_ne!(a, invalidation_reference("hls/shows/ep1/", "0123456789ac"));
        assert_ne!(a, invalidation_reference("hls/shows/ep2/", "0123456789ab"));
        assert!(a.starts_with("hlspipe-") && a.len() == 40);
    }
}
