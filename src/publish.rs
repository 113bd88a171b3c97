//! Writes a packaged title through a [`Store`] in the order that keeps players safe
//! (DESIGN.md "Publish protocol"):
//! 1. every object under `v/<version>/` (init and media segments), in parallel;
//! 2. the media playlists;
//! 3. `master.m3u8` in one PUT: the flip;
//! 4. `manifest.json` with `complete`.
//!
//! A failure at any step leaves the previous `master.m3u8` in place, so nothing a
//! player can reach points at a missing object, and writes a `failed` manifest.

use crate::error::{Error, Result};
use crate::object::{cache_control, content_type, Body, Object, Piece};
use crate::package::{PackagedTitle, Rendition};
use crate::source::Source;
use crate::store::Store;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub const MANIFEST_KEY: &str = "manifest.json";
pub const MASTER_KEY: &str = "master.m3u8";

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Processing,
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
    #[serde(default)]
    pub renditions: Vec<Rendition>,
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
}

impl Manifest {
    pub fn processing(sources: Vec<SourceInfo>, started_at: u64) -> Self {
        Manifest {
            state: State::Processing,
            sources,
            version: None,
            target_version: None,
            retired: Vec::new(),
            renditions: Vec::new(),
            duration: None,
            error: None,
            warnings: Vec::new(),
            started_at,
            finished_at: None,
            elapsed_seconds: None,
        }
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
        serde_json::from_slice(bytes).map_err(|e| Error::Store {
            key: MANIFEST_KEY.into(),
            reason: format!("unreadable manifest: {e}"),
        })
    }
}

/// Publishing options.
pub struct PublishOptions<'a> {
    /// Key prefix of the title in the store (`hls/shows/ep1/`, or empty).
    pub prefix: &'a str,
    /// Objects written at once.
    pub concurrency: usize,
    /// Called with the bytes of each object once written.
    pub progress: &'a (dyn Fn(u64) + Sync),
    /// Called after the media playlists, just before the master flip; an error stops
    /// the publish with the previous master in place. The worker checks there that its
    /// sources are still the versions it read, so that a slow job for an older upload
    /// cannot flip the master after a newer upload's job already did.
    pub before_flip: Option<&'a (dyn Fn() -> Result<()> + Sync)>,
}

/// Writes `title` in publish order. The caller writes the manifests (it has the clock).
pub fn publish(
    store: &dyn Store,
    title: &PackagedTitle,
    sources: &[Arc<dyn Source>],
    opts: &PublishOptions<'_>,
) -> Result<()> {
    write_all(store, &in_input_order(&title.media), sources, opts)?;
    write_all(
        store,
        &title.playlists.iter().collect::<Vec<_>>(),
        sources,
        opts,
    )?;
    if let Some(check) = opts.before_flip {
        check()?;
    }
    write_all(store, &[&title.master], sources, opts)
}

/// Stage-1 objects in the order their bytes sit in the inputs (objects made only
/// of bytes, the init segments, first). In an interleaved MP4 the video and audio
/// segments of one stretch of time share the same region of the file; written side
/// by side, they share a read-ahead source's blocks (one ranged GET each) instead of
/// the audio pass reading the whole input a second time.
fn in_input_order(objects: &[Object]) -> Vec<&Object> {
    let first_range = |o: &Object| {
        o.body.pieces().iter().find_map(|p| match p {
            Piece::Source { input, offset, .. } => Some((*input, *offset)),
            Piece::Bytes(_) => None,
        })
    };
    let mut ordered: Vec<&Object> = objects.iter().collect();
    ordered.sort_by_key(|o| first_range(o));
    ordered
}

/// Writes a manifest at the title's prefix.
pub fn write_manifest(store: &dyn Store, prefix: &str, manifest: &Manifest) -> Result<()> {
    let obj = manifest.to_object();
    store.put(&format!("{prefix}{}", obj.key), &obj, &[])
}

/// Writes `objects` with bounded concurrency; stops handing out work at the first
/// error and returns it.
fn write_all(
    store: &dyn Store,
    objects: &[&Object],
    sources: &[Arc<dyn Source>],
    opts: &PublishOptions<'_>,
) -> Result<()> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    let workers = opts.concurrency.clamp(1, 64).min(objects.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                if failed.load(Ordering::Relaxed) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(obj) = objects.get(i) else { break };
                let key = format!("{}{}", opts.prefix, obj.key);
                match store.put(&key, obj, sources) {
                    Ok(()) => (opts.progress)(obj.body.len()),
                    Err(e) => {
                        failed.store(true, Ordering::Relaxed);
                        if let Ok(mut slot) = first_error.lock() {
                            slot.get_or_insert(e);
                        }
                        break;
                    }
                }
            });
        }
    });
    match first_error.into_inner() {
        Ok(Some(e)) => Err(e),
        _ => Ok(()),
    }
}
