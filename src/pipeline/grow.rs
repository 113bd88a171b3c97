//! Progressive publish (DESIGN.md "Publish protocol" 2): a title with no live version plays
//! while its segments are still being written.
//!
//! 1. The objects no playlist lists (init segments, the previews) are written first.
//! 2. The segments follow in the order they play, every rendition in step (sorted by start
//!    time), `concurrency` at a time. Each rendition's `event.m3u8` (RFC 8216 § 6.2.1,
//!    `EXT-X-PLAYLIST-TYPE:EVENT`) lists the segments written without a gap from the first,
//!    rewritten at most once a second while it grows: a playlist never names an object not
//!    yet written, and every version is the one before with lines appended.
//! 3. Once every rendition lists its first segment, the master naming the growing playlists
//!    is flipped (the same conditional write as a complete title's flip): the title plays.
//! 4. At the end every `event.m3u8` gets `EXT-X-ENDLIST`; the VOD playlists (`index.m3u8`,
//!    `iframes.m3u8`: the same bytes a complete publish writes) follow, and the master is
//!    flipped to them. A player that started on the growing playlists keeps them to the end
//!    (EVENT with ENDLIST: no type change under it, which RFC 8216 forbids and which stalled
//!    hls.js before its PR #7754); a player that starts later gets the VOD ones, cached for
//!    a year.
//!
//! Two jobs of the same version (a redelivered event) may run at once: a growing playlist is
//! written only over the version it read (`If-Match`), and only if it lists more, so it never
//! shrinks. A job that stops half-way leaves the playlists where its objects end; the retry
//! finds those objects present and goes on.

use crate::error::Result;
use crate::media::object::Object;
use crate::media::package::{GrowingPlaylist, PackagedTitle};
use crate::media::source::Source;
use crate::pipeline::manifest::{jitter, UPDATE_ATTEMPTS};
use crate::pipeline::pool::try_map_bounded;
use crate::pipeline::publish::{
    flip, is_present, present_objects, publish_with, write_all, write_one, PublishOptions,
};
use crate::store::{Precondition, Store};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A growing playlist is rewritten at most this often while it grows.
const REWRITE_EVERY: Duration = Duration::from_secs(1);

/// How a progressive publish is going, as the manifest records it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Growth {
    /// Segments written (all renditions), and of how many.
    pub segments_done: usize,
    pub segments_total: usize,
    /// Seconds every rendition lists: what a viewer can watch now.
    pub seconds_playable: f64,
    /// Whether the master is out: the title plays.
    pub playable: bool,
}

/// Writes `title` progressively and returns the ETag of the final master (as
/// [`crate::pipeline::publish::publish`] does). `report` hears of the growth after every round of playlist
/// writes. A title whose segments are all written already (by the fleet's shares) and that
/// has no growing playlist yet has nothing to grow: it is published whole.
pub fn publish_progressively(
    store: &dyn Store,
    title: &PackagedTitle,
    sources: &[Arc<dyn Source>],
    opts: &PublishOptions<'_>,
    report: &(dyn Fn(Growth) + Sync),
) -> Result<String> {
    let present = present_objects(store, title, opts.prefix)?;
    match publish_growing(store, title, sources, &present, opts, report)? {
        Some(master) => Ok(master),
        None => publish_with(store, title, sources, &present, opts),
    }
}

/// [`publish_progressively`] once the objects `present` are known; `None` when there is
/// nothing to grow.
fn publish_growing(
    store: &dyn Store,
    title: &PackagedTitle,
    sources: &[Arc<dyn Source>],
    present: &HashMap<String, u64>,
    opts: &PublishOptions<'_>,
    report: &(dyn Fn(Growth) + Sync),
) -> Result<Option<String>> {
    let mut entry_of: HashMap<&str, (usize, usize)> = HashMap::new();
    for (p, g) in title.growing.iter().enumerate() {
        for (i, key) in g.segments.iter().enumerate() {
            entry_of.insert(key.as_str(), (p, i));
        }
    }
    let (mut listed, unlisted): (Vec<&Object>, Vec<&Object>) = title
        .media
        .iter()
        .partition(|o| entry_of.contains_key(o.key.as_str()));
    // Growing playlists from a run that stopped must still get their end, even when every
    // segment is there already: players that started on them would wait for more forever.
    let grown_before = title
        .growing
        .iter()
        .any(|g| present.contains_key(&format!("{}{}", opts.prefix, g.key)));
    if !grown_before && listed.iter().all(|o| is_present(o, present, opts)) {
        return Ok(None);
    }
    write_all(store, &unlisted, sources, present, opts)?;
    let starts: Vec<Vec<f64>> = title.growing.iter().map(start_times).collect();
    let when = |o: &Object| {
        let (p, i) = entry_of.get(o.key.as_str()).copied().unwrap_or_default();
        (starts[p][i], p)
    };
    listed.sort_by(|a, b| {
        let (ta, pa) = when(a);
        let (tb, pb) = when(b);
        ta.total_cmp(&tb).then(pa.cmp(&pb))
    });
    let grower = Grower::new(store, title, sources, opts, report);
    try_map_bounded(&listed, opts.concurrency, |obj| {
        write_one(store, obj, sources, present, opts, listed.len())?;
        let (p, i) = entry_of.get(obj.key.as_str()).copied().unwrap_or_default();
        grower.written(p, i)
    })?;
    grower.finish()?;
    let vod: Vec<&Object> = title.playlists.iter().collect();
    write_all(store, &vod, sources, present, opts)?;
    flip(store, &title.master, sources, opts).map(Some)
}

/// When each entry of a playlist starts, in seconds.
fn start_times(g: &GrowingPlaylist) -> Vec<f64> {
    let mut at = 0.0;
    g.spec
        .segments
        .iter()
        .map(|e| {
            let start = at;
            at += e.duration;
            start
        })
        .collect()
}

/// The growing playlists' state across the writing threads.
struct Grower<'a> {
    store: &'a dyn Store,
    title: &'a PackagedTitle,
    sources: &'a [Arc<dyn Source>],
    opts: &'a PublishOptions<'a>,
    report: &'a (dyn Fn(Growth) + Sync),
    state: Mutex<GrowState>,
}

struct GrowState {
    /// Per playlist, per entry: written.
    written: Vec<Vec<bool>>,
    segments_done: usize,
    /// Per playlist: entries written without a gap from the first.
    ready: Vec<usize>,
    /// Per playlist: entries its last written version lists, when, and its ETag.
    listed: Vec<Listed>,
    master_out: bool,
}

#[derive(Default)]
struct Listed {
    entries: usize,
    at: Option<Instant>,
    etag: Option<String>,
}

impl<'a> Grower<'a> {
    fn new(
        store: &'a dyn Store,
        title: &'a PackagedTitle,
        sources: &'a [Arc<dyn Source>],
        opts: &'a PublishOptions<'a>,
        report: &'a (dyn Fn(Growth) + Sync),
    ) -> Grower<'a> {
        let n = title.growing.len();
        Grower {
            store,
            title,
            sources,
            opts,
            report,
            state: Mutex::new(GrowState {
                written: title
                    .growing
                    .iter()
                    .map(|g| vec![false; g.segments.len()])
                    .collect(),
                segments_done: 0,
                ready: vec![0; n],
                listed: (0..n).map(|_| Listed::default()).collect(),
                master_out: false,
            }),
        }
    }

    /// Entry `i` of playlist `p` is written: the playlists that are due are rewritten, and
    /// the master flipped once every rendition lists a segment.
    fn written(&self, p: usize, i: usize) -> Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let s = &mut *state;
        if let Some(done) = s.written.get_mut(p).and_then(|w| w.get_mut(i)) {
            if !*done {
                *done = true;
                s.segments_done += 1;
            }
        }
        if let (Some(ready), Some(w)) = (s.ready.get_mut(p), s.written.get(p)) {
            while w.get(*ready).copied().unwrap_or(false) {
                *ready += 1;
            }
        }
        let mut rewrote = false;
        for (q, g) in self.title.growing.iter().enumerate() {
            let (ready, listed) = (s.ready[q], &mut s.listed[q]);
            let due =
                listed.at.is_none_or(|t| t.elapsed() >= REWRITE_EVERY) || ready == g.segments.len();
            if ready > listed.entries && due {
                self.put_growing(g, ready, false, listed)?;
                rewrote = true;
            }
        }
        if !rewrote {
            return Ok(());
        }
        if !s.master_out && s.listed.iter().all(|l| l.entries > 0) {
            flip(
                self.store,
                &self.title.event_master(),
                self.sources,
                self.opts,
            )?;
            s.master_out = true;
        }
        (self.report)(self.growth(s));
        Ok(())
    }

    fn growth(&self, s: &GrowState) -> Growth {
        let playable = self
            .title
            .growing
            .iter()
            .zip(&s.listed)
            .map(|(g, l)| g.seconds(l.entries))
            .fold(f64::INFINITY, f64::min);
        Growth {
            segments_done: s.segments_done,
            segments_total: s.written.iter().map(Vec::len).sum(),
            seconds_playable: if playable.is_finite() { playable } else { 0.0 },
            playable: s.master_out,
        }
    }

    /// Every segment is written: each growing playlist gets its last version, with
    /// `EXT-X-ENDLIST`.
    fn finish(&self) -> Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let s = &mut *state;
        for (g, listed) in self.title.growing.iter().zip(&mut s.listed) {
            self.put_growing(g, g.segments.len(), true, listed)?;
        }
        Ok(())
    }

    /// Writes the version of `g` listing `upto` entries (ended or not) unless the one in
    /// the store lists as much already; only over the version read, so that another job of
    /// the same version can never make it shorter.
    fn put_growing(
        &self,
        g: &GrowingPlaylist,
        upto: usize,
        ended: bool,
        listed: &mut Listed,
    ) -> Result<()> {
        let obj = g.object(upto, ended);
        let key = format!("{}{}", self.opts.prefix, g.key);
        let mut attempt = 0;
        loop {
            // First over our own last version; after a lost race, over what is there.
            let condition = match &listed.etag {
                Some(etag) => Precondition::Etag(etag),
                None => Precondition::Absent,
            };
            match self.store.put_if(&key, &obj, &[], condition) {
                Ok(etag) => {
                    (self.opts.progress)(obj.body.len());
                    *listed = Listed {
                        entries: upto,
                        at: Some(Instant::now()),
                        etag: Some(etag),
                    };
                    return Ok(());
                }
                Err(e) if e.precondition_failed() && attempt + 1 < UPDATE_ATTEMPTS => {
                    attempt += 1;
                    let Some(there) = self.store.get_versioned(&key)? else {
                        listed.etag = None;
                        continue;
                    };
                    let text = String::from_utf8_lossy(&there.bytes);
                    let (entries, there_ended) = (
                        text.lines().filter(|l| l.starts_with("#EXTINF:")).count(),
                        text.lines().any(|l| l == "#EXT-X-ENDLIST"),
                    );
                    if entries > upto || (entries == upto && (there_ended || !ended)) {
                        // Another job is ahead: its version stands.
                        *listed = Listed {
                            entries,
                            at: Some(Instant::now()),
                            etag: Some(there.etag),
                        };
                        return Ok(());
                    }
                    listed.etag = Some(there.etag);
                    std::thread::sleep(jitter(attempt));
                }
                Err(e) => return Err(e),
            }
        }
    }
}
