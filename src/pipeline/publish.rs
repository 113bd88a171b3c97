//! Writes a packaged title through a [`Store`] in the order that keeps players safe
//! (DESIGN.md "Publish protocol"):
//! 1. every object under `v/<version>/` (init and media segments), in parallel;
//! 2. the media playlists;
//! 3. `master.m3u8` in one PUT: the flip, conditional on the master read just before the
//!    last check of the sources, so that no job whose check passed before another job's flip
//!    lands its master over that flip;
//! 4. `manifest.json` with `complete`.
//!
//! A failure at any step leaves the previous `master.m3u8` in place, so nothing a
//! player can reach points at a missing object, and writes a `failed` manifest.

use crate::error::{Error, Result};
use crate::media::object::{Object, Piece};
use crate::media::package::PackagedTitle;
use crate::media::source::Source;
use crate::pipeline::manifest::{jitter, UPDATE_ATTEMPTS};
use crate::pipeline::pool::try_map_bounded;
use crate::store::{Precondition, Store};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

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
    /// No object is started after this instant (the Lambda function's deadline, less a
    /// margin): the publish stops with [`Error::OutOfTime`], the master untouched.
    pub deadline: Option<Instant>,
}

/// Writes `title` in publish order and returns the ETag of the master it wrote (a reader of
/// the master can tell whether a later flip replaced it). The caller writes the manifests
/// (it has the clock).
pub fn publish(
    store: &dyn Store,
    title: &PackagedTitle,
    sources: &[Arc<dyn Source>],
    opts: &PublishOptions<'_>,
) -> Result<String> {
    let present = present_objects(store, title, opts.prefix)?;
    publish_with(store, title, sources, &present, opts)
}

/// [`publish`], once the objects `present` are known.
pub(crate) fn publish_with(
    store: &dyn Store,
    title: &PackagedTitle,
    sources: &[Arc<dyn Source>],
    present: &HashMap<String, u64>,
    opts: &PublishOptions<'_>,
) -> Result<String> {
    write_all(store, &in_input_order(&title.media), sources, present, opts)?;
    write_all(
        store,
        &title.playlists.iter().collect::<Vec<_>>(),
        sources,
        present,
        opts,
    )?;
    flip(store, &title.master, sources, opts)
}

/// The title's stage-1 objects cut into shares of about `share_bytes` each (indexes into the
/// publish order; the last share may be smaller), for workers that each write one
/// ([`write_share`]). A function of the title alone, so every worker that packages the same
/// version cuts the same shares. One share when `share_bytes` is 0 or the media fits in one.
pub fn shares(title: &PackagedTitle, share_bytes: u64) -> Vec<std::ops::Range<usize>> {
    let ordered = in_input_order(&title.media);
    let mut shares = Vec::new();
    let (mut start, mut bytes) = (0, 0u64);
    for (i, o) in ordered.iter().enumerate() {
        bytes += o.body.len();
        if share_bytes > 0 && bytes >= share_bytes && i + 1 < ordered.len() {
            shares.push(start..i + 1);
            (start, bytes) = (i + 1, 0);
        }
    }
    shares.push(start..ordered.len());
    shares
}

/// Writes one share of the title's stage-1 objects ([`shares`]), skipping those already
/// written: no playlist, no flip. The worker that finds every share written publishes the
/// title, whose own pass then finds every object present.
pub fn write_share(
    store: &dyn Store,
    title: &PackagedTitle,
    share: std::ops::Range<usize>,
    sources: &[Arc<dyn Source>],
    opts: &PublishOptions<'_>,
) -> Result<()> {
    let ordered = in_input_order(&title.media);
    let Some(objects) = ordered.get(share.clone()) else {
        return Err(Error::Settings(format!(
            "share {share:?} is outside the title's {} objects",
            ordered.len()
        )));
    };
    let present = present_objects(store, title, opts.prefix)?;
    write_all(store, objects, sources, &present, opts)
}

/// The flip: HEAD the master, run `before_flip`, then PUT the master only if it is still the
/// one the HEAD saw (`If-Match`, or `If-None-Match: *` when there was none). Another job that
/// flips in between makes the PUT fail; then both steps run again, and `before_flip` (the
/// sources still current?) decides whether this job may flip at all. A job whose check passed
/// can therefore never land its master over a flip that happened after its HEAD, and any flip
/// before its HEAD came from a newer upload, which its check sees.
pub(crate) fn flip(
    store: &dyn Store,
    master: &Object,
    sources: &[Arc<dyn Source>],
    opts: &PublishOptions<'_>,
) -> Result<String> {
    let key = format!("{}{}", opts.prefix, master.key);
    let mut attempt = 0;
    loop {
        let seen = store.head(&key)?.map(|info| info.etag);
        if let Some(check) = opts.before_flip {
            check()?;
        }
        let condition = seen
            .as_deref()
            .map_or(Precondition::Absent, Precondition::Etag);
        match store.put_if(&key, master, sources, condition) {
            Ok(etag) => {
                (opts.progress)(master.body.len());
                return Ok(etag);
            }
            Err(e) if e.precondition_failed() && attempt + 1 < UPDATE_ATTEMPTS => {
                attempt += 1;
                std::thread::sleep(jitter(attempt));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether the master at `key` is still the one this job wrote (its ETag `flipped`).
pub fn master_is(store: &dyn Store, key: &str, flipped: &str) -> Result<bool> {
    Ok(store.head(key)?.is_some_and(|info| info.etag == flipped))
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

/// The objects of the title's version already in the store, with their sizes: what an
/// earlier attempt at the same version wrote before it was stopped (out of time, killed).
/// A version's objects are a function of its sources and settings (the version names
/// both), and a store write is atomic, so an object present at its full size is the one
/// this run would write. One listing of `v/<version>/`.
pub(crate) fn present_objects(
    store: &dyn Store,
    title: &PackagedTitle,
    prefix: &str,
) -> Result<HashMap<String, u64>> {
    let folder = format!("{prefix}v/{}/", title.version);
    Ok(store
        .list(&folder)?
        .into_iter()
        .map(|info| (info.key, info.size))
        .collect())
}

/// Writes `objects` with bounded concurrency, skipping those already `present` at their
/// size; stops handing out work at the first error, or once the deadline has passed, and
/// returns it.
pub(crate) fn write_all(
    store: &dyn Store,
    objects: &[&Object],
    sources: &[Arc<dyn Source>],
    present: &HashMap<String, u64>,
    opts: &PublishOptions<'_>,
) -> Result<()> {
    try_map_bounded(objects, opts.concurrency, |obj| {
        write_one(store, obj, sources, present, opts, objects.len())
    })
    .map(|_| ())
}

/// Whether `obj` is in the store at its size already (`present`: [`present_objects`]).
pub(crate) fn is_present(
    obj: &Object,
    present: &HashMap<String, u64>,
    opts: &PublishOptions<'_>,
) -> bool {
    present.get(&format!("{}{}", opts.prefix, obj.key)) == Some(&obj.body.len())
}

/// Writes `obj` unless it is `present` at its size; refuses once the deadline has passed
/// (`of`: how many objects the pass had, for the message).
pub(crate) fn write_one(
    store: &dyn Store,
    obj: &Object,
    sources: &[Arc<dyn Source>],
    present: &HashMap<String, u64>,
    opts: &PublishOptions<'_>,
    of: usize,
) -> Result<()> {
    if !is_present(obj, present, opts) {
        if opts.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(Error::OutOfTime(format!(
                "{of} of the title's objects not yet written"
            )));
        }
        store.put(&format!("{}{}", opts.prefix, obj.key), obj, sources)?;
    }
    (opts.progress)(obj.body.len());
    Ok(())
}
